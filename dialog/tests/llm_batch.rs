//! Concurrent calls on the real llama.cpp engine (SmolLM2-135M-Instruct from models/, fetched by
//! scripts/setup.sh): requests decoded together in one batch give what each gives alone, each
//! keeps its own grammar, and cancelling one stops it within a token without disturbing others.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

use dialog::llm::llama::LlamaCppModel;
use dialog::{
    ChatMessage, GenerationOutput, GenerationRequest, LanguageModel, LlmConfig, Role, StopReason,
};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Barrier, OnceLock};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

fn real() -> &'static LlamaCppModel {
    static MODEL: OnceLock<LlamaCppModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        let config = LlmConfig {
            model_path: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../models/llm/SmolLM2-135M-Instruct.Q4_1.gguf"),
            // One thread: steady on a busy machine (tests run in parallel; see shared MODELS.md).
            threads: 1,
            ..LlmConfig::default()
        };
        LlamaCppModel::load(&config).unwrap_or_else(|e| panic!("{e} (run scripts/setup.sh)"))
    })
}

const SYSTEM: &str = "You are Ava, a friendly phone agent for Sunrise Insurance. Answer the \
caller in one or two short, polite sentences.";

fn request(user: &str) -> GenerationRequest {
    let mut r = GenerationRequest::new(vec![
        ChatMessage::new(Role::System, SYSTEM),
        ChatMessage::new(Role::User, user),
    ]);
    r.max_tokens = 24;
    r
}

const QUESTIONS: [&str; 4] = [
    "How much does the car insurance cost per month?",
    "I am busy right now, can you call me tomorrow?",
    "Does the policy cover theft and fire?",
    "Tell me a long story about insurance.",
];

/// One generation as a caller sees it: the output, when its first piece arrived and when it
/// ended.
struct Seen {
    out: GenerationOutput,
    streamed: String,
    first_piece: Option<Instant>,
    done: Instant,
}

fn run(req: &GenerationRequest, cancel: &CancellationToken) -> Seen {
    let mut streamed = String::new();
    let mut first_piece = None;
    let out = real()
        .generate(req, cancel, &mut |p| {
            first_piece.get_or_insert_with(Instant::now);
            streamed.push_str(p);
            ControlFlow::Continue(())
        })
        .expect("generation");
    Seen {
        out,
        streamed,
        first_piece,
        done: Instant::now(),
    }
}

/// Runs the requests at the same time, one caller thread each, started together.
fn together(requests: &[GenerationRequest]) -> Vec<Seen> {
    let start = Barrier::new(requests.len());
    std::thread::scope(|s| {
        let handles: Vec<_> = requests
            .iter()
            .map(|r| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    run(r, &CancellationToken::new())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn same_as_alone(n: usize) {
    let requests: Vec<_> = QUESTIONS[..n].iter().map(|q| request(q)).collect();
    let alone: Vec<_> = requests
        .iter()
        .map(|r| run(r, &CancellationToken::new()).out)
        .collect();
    let seen = together(&requests);
    for (a, t) in alone.iter().zip(&seen) {
        assert_eq!(
            a.text, t.out.text,
            "batched greedy output differs from alone"
        );
        assert_eq!(a.generated_tokens, t.out.generated_tokens);
        assert_eq!(t.streamed, t.out.text);
    }
    // They really ran together: every request had its first token before any had finished.
    let last_first = seen.iter().filter_map(|s| s.first_piece).max().unwrap();
    let first_done = seen.iter().map(|s| s.done).min().unwrap();
    assert!(
        last_first < first_done,
        "requests were served one after another, not decoded together"
    );
    // Every request after the first reused the system prompt's evaluated prefix.
    let reused = seen
        .iter()
        .filter(|s| s.out.cached_prompt_tokens > 20)
        .count();
    assert!(
        reused >= n - 1,
        "system prompt prefix not shared: {reused} of {n}"
    );
}

#[test]
fn two_requests_decoded_together_give_the_same_tokens_as_alone() {
    same_as_alone(2);
}

#[test]
fn four_requests_decoded_together_give_the_same_tokens_as_alone() {
    same_as_alone(4);
}

#[test]
fn each_sequence_keeps_its_own_grammar() {
    let mut yes_no = request("Say yes or no: do you want a quote?");
    yes_no.grammar = Some(r#"root ::= "yes" | "no""#.into());
    let mut colour = request("What colour is your car?");
    colour.grammar = Some(r#"root ::= "red" | "green" | "blue""#.into());
    let mut digits = request("How many cars do you have?");
    digits.grammar = Some(r#"root ::= [1-9] [0-9]?"#.into());
    let free = request("Does the policy cover theft and fire?");
    let seen = together(&[yes_no, colour, digits, free]);
    let texts: Vec<&str> = seen.iter().map(|s| s.out.text.as_str()).collect();
    assert!(matches!(texts[0], "yes" | "no"), "{texts:?}");
    assert!(matches!(texts[1], "red" | "green" | "blue"), "{texts:?}");
    assert!(
        !texts[2].is_empty() && texts[2].len() <= 2 && texts[2].chars().all(|c| c.is_ascii_digit()),
        "{texts:?}"
    );
    assert!(
        texts[3].split_whitespace().count() > 3,
        "the request without a grammar was constrained: {texts:?}"
    );
}

#[test]
fn cancelling_one_call_stops_it_within_a_token_and_leaves_the_other_alone() {
    let mut long = request("Tell me a long story about insurance.");
    long.max_tokens = 48;
    let other = request("Does the policy cover theft and fire?");
    let other_alone = run(&other, &CancellationToken::new()).out;

    let start = Barrier::new(2);
    let (cancelled, other_together) = std::thread::scope(|s| {
        let barge_in = s.spawn(|| {
            start.wait();
            let cancel = CancellationToken::new();
            let mut pieces = 0;
            let mut pieces_after_cancel = 0;
            let out = real()
                .generate(&long, &cancel, &mut |_| {
                    pieces += 1;
                    if cancel.is_cancelled() {
                        pieces_after_cancel += 1;
                    } else if pieces == 3 {
                        // The caller starts speaking: barge-in from the caller's side.
                        cancel.cancel();
                    }
                    ControlFlow::Continue(())
                })
                .expect("generation");
            (out, pieces, pieces_after_cancel)
        });
        let other = s.spawn(|| {
            start.wait();
            run(&other, &CancellationToken::new()).out
        });
        (barge_in.join().unwrap(), other.join().unwrap())
    });
    let (out, pieces, after) = cancelled;
    assert_eq!(out.stop_reason, StopReason::Cancelled, "{out:?}");
    assert_eq!(pieces, 3 + after);
    assert!(
        out.generated_tokens <= 4,
        "{} tokens generated for 3 pieces before the cancel",
        out.generated_tokens
    );
    assert!(after <= 1, "{after} pieces after the cancel");
    assert_eq!(other_together.text, other_alone.text);
}

#[test]
fn a_calls_next_turn_reuses_its_previous_turn() {
    let first = request("Hello, who is calling?");
    let reply = run(&first, &CancellationToken::new()).out;
    let mut next = GenerationRequest::new(vec![
        ChatMessage::new(Role::System, SYSTEM),
        ChatMessage::new(Role::User, "Hello, who is calling?"),
        ChatMessage::new(Role::Assistant, reply.text.clone()),
        ChatMessage::new(Role::User, "Ok, and what do you want?"),
    ]);
    next.max_tokens = 8;
    let out = run(&next, &CancellationToken::new()).out;
    assert!(
        out.cached_prompt_tokens >= reply.prompt_tokens,
        "previous turn not reused: {} of the first turn's {} prompt tokens",
        out.cached_prompt_tokens,
        reply.prompt_tokens
    );
}
