//! Contract tests for [`LanguageModel`], run against the fake and the real llama.cpp engine
//! (SmolLM2-135M-Instruct from models/, fetched by scripts/setup.sh).
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

use dialog::llm::llama::LlamaCppModel;
use dialog::llm::FakeLlm;
use dialog::{ChatMessage, GenerationRequest, LanguageModel, LlmConfig, Role, StopReason};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::OnceLock;
use tokio_util::sync::CancellationToken;

fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn real() -> &'static LlamaCppModel {
    static MODEL: OnceLock<LlamaCppModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        let config = LlmConfig {
            model_path: models().join("llm/SmolLM2-135M-Instruct.Q4_1.gguf"),
            // One thread: steady on a busy machine (tests run in parallel; see shared MODELS.md).
            threads: 1,
            ..LlmConfig::default()
        };
        LlamaCppModel::load(&config).unwrap_or_else(|e| panic!("{e} (run scripts/setup.sh)"))
    })
}

fn request(user: &str) -> GenerationRequest {
    let mut r = GenerationRequest::new(vec![
        ChatMessage::new(
            Role::System,
            "You are a helpful phone agent. Answer in one short sentence.",
        ),
        ChatMessage::new(Role::User, user),
    ]);
    r.max_tokens = 24;
    r
}

fn collect(
    model: &dyn LanguageModel,
    req: &GenerationRequest,
    cancel: &CancellationToken,
) -> (String, dialog::GenerationOutput) {
    let mut streamed = String::new();
    let out = model
        .generate(req, cancel, &mut |p| {
            streamed.push_str(p);
            ControlFlow::Continue(())
        })
        .expect("generation");
    (streamed, out)
}

/// The contract every implementation meets.
fn contract(model: &dyn LanguageModel) {
    // Streamed pieces add up to the returned text; the budget is respected.
    let req = request("What is car insurance?");
    let (streamed, out) = collect(model, &req, &CancellationToken::new());
    assert_eq!(
        streamed,
        out.text,
        "{}: streamed pieces differ from the text",
        model.name()
    );
    assert!(!out.text.trim().is_empty(), "{}: empty reply", model.name());
    assert!(out.generated_tokens <= req.max_tokens);
    assert!(matches!(
        out.stop_reason,
        StopReason::EndOfTurn | StopReason::MaxTokens
    ));

    // max_tokens = 2 stops after two tokens.
    let mut short = request("Tell me a long story about insurance.");
    short.max_tokens = 2;
    let (_, out) = collect(model, &short, &CancellationToken::new());
    assert_eq!(out.generated_tokens, 2, "{}", model.name());
    assert_eq!(out.stop_reason, StopReason::MaxTokens);

    // A cancelled token yields nothing.
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (streamed, out) = collect(model, &req, &cancel);
    assert_eq!(out.stop_reason, StopReason::Cancelled);
    assert!(streamed.is_empty() && out.generated_tokens == 0);

    // A sink that breaks after the first piece stops generation within one token.
    let mut pieces = 0;
    let out = model
        .generate(
            &request("Tell me a long story about insurance."),
            &CancellationToken::new(),
            &mut |_| {
                pieces += 1;
                ControlFlow::Break(())
            },
        )
        .expect("generation");
    assert_eq!(pieces, 1, "{}: pieces after Break", model.name());
    assert!(
        out.generated_tokens <= 2,
        "{}: {} tokens after Break",
        model.name(),
        out.generated_tokens
    );
    assert_eq!(out.stop_reason, StopReason::Cancelled);

    // A user message is required.
    assert!(model
        .generate(
            &GenerationRequest::new(vec![]),
            &CancellationToken::new(),
            &mut |_| ControlFlow::Continue(())
        )
        .is_err());
}

#[test]
fn fake_meets_the_contract() {
    contract(&FakeLlm);
}

#[test]
fn llama_cpp_meets_the_contract() {
    contract(real());
}

#[test]
fn llama_cpp_reuses_the_system_prompt_prefix_and_is_deterministic_when_greedy() {
    let model = real();
    let (_, a) = collect(
        model,
        &request("Do you sell home insurance?"),
        &CancellationToken::new(),
    );
    let (_, b) = collect(
        model,
        &request("Do you sell home insurance?"),
        &CancellationToken::new(),
    );
    assert_eq!(a.text, b.text, "greedy decoding must be deterministic");
    assert!(b.cached_prompt_tokens > 10, "prefix not reused: {b:?}");
    let (_, c) = collect(
        model,
        &request("I have no time now, call me later."),
        &CancellationToken::new(),
    );
    assert!(
        c.cached_prompt_tokens >= 10 && c.cached_prompt_tokens < c.prompt_tokens,
        "{c:?}"
    );
}

#[test]
fn llama_cpp_stop_string_and_grammar() {
    let model = real();
    let mut req = request("Say yes or no: do you want a quote?");
    req.grammar = Some(r#"root ::= "yes" | "no""#.into());
    let (_, out) = collect(model, &req, &CancellationToken::new());
    assert!(
        out.text == "yes" || out.text == "no",
        "grammar not applied: {:?}",
        out.text
    );

    // Greedy SmolLM2 answers this with at least two sentences.
    let mut req = request("Count from one to ten in words, separated by commas.");
    req.max_tokens = 40;
    req.stop = vec![". ".into()];
    let (streamed, out) = collect(model, &req, &CancellationToken::new());
    assert_eq!(out.stop_reason, StopReason::StopString, "{out:?}");
    assert!(!out.text.contains(". "), "{:?}", out.text);
    assert_eq!(streamed, out.text);
}

#[test]
fn missing_model_is_a_clear_error() {
    let config = LlmConfig {
        model_path: "/nonexistent/model.gguf".into(),
        ..LlmConfig::default()
    };
    let err = LlamaCppModel::load(&config).expect_err("must fail");
    assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
}
