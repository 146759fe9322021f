//! Prints llama.cpp speed on the configured GGUF: time to first token (system prompt cached and
//! not), decode tokens/s, for 1 and 2 threads. Run: `cargo run -p dialog --example llm_bench`.
#![allow(clippy::print_stdout)]

use dialog::llm::llama::LlamaCppModel;
use dialog::{ChatMessage, GenerationRequest, LanguageModel, LlmConfig, Role};
use std::ops::ControlFlow;
use tokio_util::sync::CancellationToken;

const SYSTEM: &str =
    "You are Ava, a friendly phone agent for Sunrise Insurance. You are calling customers \
about car insurance. Answer the caller in one or two short, polite sentences.";

fn main() -> anyhow::Result<()> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models/llm/SmolLM2-135M-Instruct.Q4_1.gguf");
    let questions = [
        "How much does the car insurance cost per month?",
        "I am busy right now, can you call me tomorrow?",
        "Does the policy cover theft and fire?",
        "I already have insurance with another company.",
        "What discount can you give me if I sign today?",
    ];
    for threads in [1u32, 2] {
        // Each thread count gets its own process-wide model; llama.cpp's backend is shared.
        let model = LlamaCppModel::load(&LlmConfig {
            model_path: path.clone(),
            threads,
            ..LlmConfig::default()
        })?;
        let (mut first_cold, mut first_warm, mut tokens, mut decode_ms) =
            (0.0, Vec::new(), 0u32, 0.0);
        for (i, q) in questions.iter().enumerate() {
            let mut req = GenerationRequest::new(vec![
                ChatMessage::new(Role::System, SYSTEM),
                ChatMessage::new(Role::User, *q),
            ]);
            req.max_tokens = 48;
            let out = model.generate(&req, &CancellationToken::new(), &mut |_| {
                ControlFlow::Continue(())
            })?;
            if i == 0 {
                first_cold = out.first_token_ms;
            } else {
                first_warm.push(out.first_token_ms);
            }
            tokens += out.generated_tokens.saturating_sub(1);
            decode_ms += out.total_ms - out.first_token_ms;
        }
        first_warm.sort_by(f64::total_cmp);
        println!(
            "llm threads={threads} first_token_ms cold={first_cold:.1} warm_p50={:.1} decode_tokens_per_s={:.1}",
            first_warm[first_warm.len() / 2],
            f64::from(tokens) / (decode_ms / 1e3)
        );
    }
    Ok(())
}
