//! The qualification suite on the deterministic fake LLM: every labelled case gets the policy
//! action its label names, every template satisfies its own labels, the report has per-action
//! rates, and a model without a passing report cannot switch phrasing on.
#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

use dialog::llm::FakeLlm;
use dialog::policy::{
    qualify, Guard, GuardConfig, Phraser, PhrasingAuthority, PhrasingMode, QualifyConfig,
};
use dialog::{DialogError, LanguageModel};
use retrieval::{Embedder, FakeEmbedder};
use std::sync::Arc;

#[tokio::test]
async fn the_suite_is_sound_and_reports_per_action() -> anyhow::Result<()> {
    let llm: Arc<dyn LanguageModel> = Arc::new(FakeLlm);
    let embedder: Arc<dyn Embedder> = Arc::new(FakeEmbedder::default());
    let report = qualify(llm.clone(), Some(embedder), &QualifyConfig::default()).await?;
    assert!(
        report.policy_mismatches.is_empty(),
        "{:#?}",
        report.policy_mismatches
    );
    assert!(report.label_errors.is_empty(), "{:#?}", report.label_errors);
    assert!(report.cases >= 50, "{}", report.cases);
    assert_eq!(report.modes.len(), 2);
    for m in &report.modes {
        // The fake echoes the prompt: the guard rejects every phrasing, nothing wrong gets out.
        assert_eq!(m.total.wrong_accepted, 0, "{:?}", m.accepted);
        assert_eq!(m.total.fallbacks, m.total.cases);
        assert!(!m.passed);
        for action in [
            "pitch",
            "discount_offer",
            "advisor_follow_up",
            "hand_off",
            "offer_callback",
            "book_callback",
            "add_to_do_not_call",
            "disclose_bot",
            "recommend",
            "clarify",
            "close",
        ] {
            assert!(m.per_action.contains_key(action), "no {action} cases");
        }
        assert!(m.injections.cases >= 10);
    }
    let md = report.to_markdown();
    assert!(md.contains("NOT qualified"), "{md}");
    assert!(md.contains("| discount_offer |"), "{md}");

    // Phrasing can only be switched on with a passing report for the same model and mode.
    let refused = Phraser::new(
        llm,
        PhrasingMode::Paraphrase,
        Guard::new(GuardConfig::default(), None),
        PhrasingAuthority::Qualified(&report),
    );
    assert!(matches!(refused, Err(DialogError::NotQualified { .. })));
    Ok(())
}
