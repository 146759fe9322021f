//! Tries the LLM as the NLU fallback for low-confidence turns: on every held-out turn where the
//! classifier's confidence is below a threshold, the configured GGUF (SmolLM2-135M by default)
//! picks an intent under a GBNF grammar that allows only the nine labels. Prints the accuracy of
//! classifier and LLM on those turns and the macro-F1 with and without the fallback.
//! Needs `models/` (scripts/setup.sh). Run: `cargo run -p dialog --example nlu_llm_fallback`.
#![allow(clippy::print_stdout)]

use dialog::llm::llama::LlamaCppModel;
use dialog::nlu::data::{load_turns, Scores, Split};
use dialog::nlu::NluEngine;
use dialog::{ChatMessage, GenerationRequest, Intent, LanguageModel, LlmConfig, Role, Understand};
use retrieval::{BertEmbedder, Embedder, Language};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// (gold, classifier, confidence, LLM choice) of one held-out turn.
type Row = (Intent, Intent, f32, Option<Intent>);

const THRESHOLDS: [f32; 3] = [0.5, 0.7, 0.9];

const SYSTEM: &str = "You label one thing a person said when a sales agent phoned them about \
insurance, a loan or a phone plan. Reply with exactly one label:\n\
enquiry: asks about the product, price, cover or process (\"what does it cover?\")\n\
complaint: unhappy about service, billing or earlier calls (\"you charged me twice\")\n\
purchase_intent: wants to buy or sign up (\"ok, sign me up\")\n\
price_objection: too expensive or wants a discount (\"that's too much\")\n\
refusal: says no or not interested (\"no thanks, I already have one\")\n\
callback_request: asks to be called at another time (\"call me tomorrow at 3\")\n\
opt_out: wants no more calls (\"take me off your list\")\n\
asks_if_robot: asks whether the agent is a machine (\"are you a robot?\")\n\
other: greetings, small talk, anything else (\"hello?\")";

fn grammar() -> String {
    let labels: Vec<String> = Intent::ALL
        .iter()
        .map(|i| format!("\"{}\"", i.as_str()))
        .collect();
    format!("root ::= {}", labels.join(" | "))
}

fn main() -> anyhow::Result<()> {
    retrieval::embed::set_cpu_threads_once();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("data/nlu");
    let embedder: Arc<dyn Embedder> = Arc::new(BertEmbedder::load(
        &root.join("../models/all-MiniLM-L6-v2"),
    )?);
    let engine = NluEngine::load(&dir, Some(embedder))?;
    let llm = LlamaCppModel::load(&LlmConfig {
        model_path: root.join("../models/llm/SmolLM2-135M-Instruct.Q4_1.gguf"),
        ..LlmConfig::default()
    })?;
    let grammar = grammar();
    let index = |i: Intent| Intent::ALL.iter().position(|x| *x == i).unwrap_or(0);
    for language in [Language::En, Language::Zh] {
        let code = language.code();
        let turns: Vec<_> = load_turns(&dir.join(format!("{code}.jsonl")))?
            .into_iter()
            .filter(|t| t.split == Split::Test)
            .collect();
        // The LLM is asked about every turn below the highest threshold.
        let mut rows: Vec<Row> = Vec::new();
        let mut llm_ms = Vec::new();
        for t in &turns {
            let r = engine.understand(&t.text, language)?;
            let llm_intent = if r.confidence < THRESHOLDS[THRESHOLDS.len() - 1] {
                let mut request = GenerationRequest::new(vec![
                    ChatMessage::new(Role::System, SYSTEM),
                    ChatMessage::new(Role::User, t.text.clone()),
                ]);
                request.max_tokens = 8;
                request.grammar = Some(grammar.clone());
                let out = llm.generate(&request, &CancellationToken::new(), &mut |_| {
                    ControlFlow::Continue(())
                })?;
                llm_ms.push(out.total_ms);
                Intent::parse(&out.text)
            } else {
                None
            };
            rows.push((t.intent, r.intent, r.confidence, llm_intent));
        }
        for tau in THRESHOLDS {
            let low: Vec<_> = rows.iter().filter(|r| r.2 < tau).collect();
            let correct = |f: &dyn Fn(&Row) -> Intent| low.iter().filter(|r| f(r) == r.0).count();
            let clf = correct(&|r| r.1);
            let llm_ok = correct(&|r| r.3.unwrap_or(Intent::Other));
            let gold: Vec<usize> = rows.iter().map(|r| index(r.0)).collect();
            let with: Vec<usize> = rows
                .iter()
                .map(|r| index(if r.2 < tau { r.3.unwrap_or(r.1) } else { r.1 }))
                .collect();
            let without: Vec<usize> = rows.iter().map(|r| index(r.1)).collect();
            println!(
                "nlu.llm_fallback_{code}.tau_{tau} low-confidence turns {} of {}: classifier correct {clf}, LLM correct {llm_ok}; macro-F1 without {:.3}, with fallback {:.3}",
                low.len(),
                rows.len(),
                Scores::compute(&gold, &without, Intent::ALL.len()).macro_f1,
                Scores::compute(&gold, &with, Intent::ALL.len()).macro_f1,
            );
        }
        llm_ms.sort_by(f64::total_cmp);
        if let Some(p50) = llm_ms.get(llm_ms.len() / 2) {
            println!(
                "nlu.llm_fallback_ms_p50_{code} {p50:.1} ms per LLM intent choice ({} calls)",
                llm_ms.len()
            );
        }
    }
    Ok(())
}
