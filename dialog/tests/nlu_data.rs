//! Checks of the NLU data that need no model: the labelled turns are well formed and balanced,
//! no held-out turn is a near-copy of a training turn, the checked-in weights were trained on
//! exactly this data, and the fake NLU keeps the contract cases.

mod nlu_common;

use dialog::nlu::data::{file_sha256, load_turns, Split};
use dialog::nlu::FakeNlu;
use dialog::{Intent, SentimentLabel};
use nlu_common::{check_contract, data_dir};
use retrieval::Language;
use std::collections::HashSet;

/// Character trigrams of the letters and digits of a text, lower-cased.
fn trigrams(text: &str) -> HashSet<String> {
    let chars: Vec<char> = text
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    chars
        .windows(3.min(chars.len()).max(1))
        .map(|w| w.iter().collect())
        .collect()
}

#[test]
fn labelled_turns_cover_every_intent_in_both_splits() -> anyhow::Result<()> {
    for code in ["en", "zh"] {
        let turns = load_turns(&data_dir().join(format!("{code}.jsonl")))?;
        assert!(turns.len() >= 400, "{code}: only {} turns", turns.len());
        let texts: HashSet<&str> = turns.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(texts.len(), turns.len(), "{code}: duplicate turns");
        for intent in Intent::ALL {
            for split in [Split::Train, Split::Test] {
                let n = turns
                    .iter()
                    .filter(|t| t.intent == intent && t.split == split)
                    .count();
                let min = if split == Split::Train { 30 } else { 10 };
                assert!(n >= min, "{code} {intent:?} {split:?}: {n} turns");
            }
        }
        for label in [
            SentimentLabel::Negative,
            SentimentLabel::Neutral,
            SentimentLabel::Positive,
        ] {
            assert!(turns.iter().filter(|t| t.sentiment == label).count() >= 20);
        }
    }
    Ok(())
}

#[test]
fn no_held_out_turn_is_a_near_copy_of_a_training_turn() -> anyhow::Result<()> {
    for code in ["en", "zh"] {
        let turns = load_turns(&data_dir().join(format!("{code}.jsonl")))?;
        let train: Vec<_> = turns
            .iter()
            .filter(|t| t.split == Split::Train)
            .map(|t| (t, trigrams(&t.text)))
            .collect();
        for test in turns.iter().filter(|t| t.split == Split::Test) {
            let a = trigrams(&test.text);
            for (t, b) in &train {
                let jaccard = a.intersection(b).count() as f64 / a.union(b).count().max(1) as f64;
                assert!(
                    jaccard < 0.6,
                    "{code}: held-out {:?} is close to training {:?} ({jaccard:.2})",
                    test.text,
                    t.text
                );
            }
        }
    }
    Ok(())
}

#[test]
fn checked_in_weights_were_trained_on_this_data() -> anyhow::Result<()> {
    for code in ["en", "zh"] {
        let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
            data_dir().join(format!("model_{code}.json")),
        )?)?;
        for (field, file) in [
            ("data_sha256", format!("{code}.jsonl")),
            ("lexicon_sha256", "lexicon.json".to_string()),
        ] {
            let digest = file_sha256(&data_dir().join(&file))?;
            assert_eq!(
                meta[field].as_str(),
                Some(digest.as_str()),
                "{file} changed since model_{code} was trained: run \
                 `cargo run -p dialog --example train_nlu`"
            );
        }
    }
    Ok(())
}

#[test]
fn fake_nlu_keeps_the_contract() -> anyhow::Result<()> {
    check_contract(&FakeNlu::new()?)
}

#[test]
fn fake_nlu_reads_language() -> anyhow::Result<()> {
    let r = dialog::Understand::understand(&FakeNlu::new()?, "太贵了", Language::Zh)?;
    assert_eq!(r.language, Language::Zh);
    assert!(r.has_keyword("too_expensive"));
    Ok(())
}
