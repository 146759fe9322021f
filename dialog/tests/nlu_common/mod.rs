//! Shared by the NLU tests: where the data lives, and the contract cases
//! (`data/nlu/contract.jsonl`) every `Understand` implementation must keep.

use dialog::nlu::{DayRef, TimeMention};
use dialog::{Intent, Understand};
use retrieval::Language;
use serde::Deserialize;
use std::path::PathBuf;

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/nlu")
}

#[derive(Debug, Deserialize)]
struct ExpectedTime {
    day: Option<DayRef>,
    hour: Option<u8>,
    minute: Option<u8>,
    after_minutes: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct Case {
    language: String,
    text: String,
    intent: Intent,
    /// (key, negated) pairs that must be among the keywords.
    keywords: Vec<(String, bool)>,
    time: Option<ExpectedTime>,
}

fn time_matches(t: &TimeMention, e: &ExpectedTime) -> bool {
    (e.day.is_none() || t.day == e.day)
        && (e.hour.is_none() || t.hour == e.hour)
        && (e.minute.is_none() || t.minute == e.minute)
        && (e.after_minutes.is_none() || t.after_minutes == e.after_minutes)
}

/// Runs every contract case through `nlu`; fails listing all broken cases.
pub fn check_contract(nlu: &dyn Understand) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(data_dir().join("contract.jsonl"))?;
    let mut failures = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: Case = serde_json::from_str(line)?;
        let language = Language::parse(&case.language)
            .ok_or_else(|| anyhow::anyhow!("unknown language {}", case.language))?;
        let r = nlu.understand(&case.text, language)?;
        let found: Vec<(String, bool)> = r
            .keywords
            .iter()
            .map(|k| (k.key.clone(), k.negated))
            .collect();
        let keywords_ok = case.keywords.iter().all(|k| found.contains(k));
        let time_ok = case
            .time
            .as_ref()
            .is_none_or(|e| r.times.iter().any(|t| time_matches(t, e)));
        if r.intent != case.intent || !keywords_ok || !time_ok || r.language != language {
            failures.push(format!(
                "{:?}: intent {:?} (want {:?}), keywords {found:?} (want {:?}), times {:?}",
                case.text, r.intent, case.intent, case.keywords, r.times
            ));
        }
    }
    anyhow::ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}
