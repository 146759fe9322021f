//! The dialogue scenarios again with the real SmolLM2 (models/llm, fetched by scripts/setup.sh)
//! phrasing replies behind the guard: actions never change, no forbidden phrase is ever spoken,
//! and the guard's fallbacks are counted. Slow (one generation per turn).
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

mod common;

use common::{bert, fake_nlu, models, run, scenarios};
use dialog::llm::llama::LlamaCppModel;
use dialog::policy::{Guard, GuardConfig, Phraser, PhrasingAuthority, PhrasingMode, ReplyMode};
use dialog::{LanguageModel, LlmConfig};
use std::sync::{Arc, OnceLock};

fn smollm2() -> Arc<dyn LanguageModel> {
    static MODEL: OnceLock<Arc<dyn LanguageModel>> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let config = LlmConfig {
                model_path: models().join("llm/SmolLM2-135M-Instruct.Q4_1.gguf"),
                threads: 1,
                ..LlmConfig::default()
            };
            Arc::new(
                LlamaCppModel::load(&config)
                    .unwrap_or_else(|e| panic!("{e} (run scripts/setup.sh)")),
            )
        })
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialogues_with_llm_phrasing_keep_every_action() -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let (mut attempts, mut accepted, mut fallbacks) = (0, 0, 0);
    for mode in [PhrasingMode::Opener, PhrasingMode::Paraphrase] {
        for (file, s) in scenarios() {
            let phraser = Phraser::new(
                smollm2(),
                mode,
                Guard::new(GuardConfig::default(), Some(bert())),
                PhrasingAuthority::Evaluation,
            )?;
            let manager = s.manager(fake_nlu(), Some(bert()))?.with_phraser(phraser);
            let (p, state) = run(&file, &s, &manager, false).await?;
            problems.extend(p);
            attempts += state.phrasing.attempts;
            accepted += state.phrasing.accepted;
            fallbacks += state.phrasing.fallbacks;
            // Every phrased turn either spoke the LLM's words or fell back, with the reason.
            for t in state
                .turns
                .iter()
                .filter(|t| t.caller.is_some() && t.decision.action.kind() != "answer_faq")
            {
                assert!(
                    (t.mode != ReplyMode::Template) ^ t.fallback.is_some(),
                    "{file}: {t:?}"
                );
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(attempts > 0);
    assert_eq!(attempts, accepted + fallbacks);
    eprintln!("LLM phrasing over the dialogues: {attempts} attempts, {accepted} accepted, {fallbacks} fell back to the template");
    Ok(())
}
