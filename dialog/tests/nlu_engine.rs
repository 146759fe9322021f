//! The real NLU on the real files: held-out accuracy and macro-F1 above a bound, the contract
//! cases, and retraining from the data reproduces the checked-in weights' predictions. Needs
//! `models/all-MiniLM-L6-v2` (run scripts/setup.sh).

mod nlu_common;

use dialog::nlu::classifier::FeatureVec;
use dialog::nlu::data::{load_turns, Scores, Split};
use dialog::nlu::features::{idf, SparseScheme};
use dialog::nlu::lexicon::Lexicon;
use dialog::nlu::model::{parts, TurnClassifier};
use dialog::nlu::NluEngine;
use dialog::{Intent, Understand};
use nlu_common::{check_contract, data_dir};
use retrieval::{BertEmbedder, Embedder, Language};
use std::path::PathBuf;
use std::sync::Arc;

/// (language, macro-F1, accuracy) bounds the trained models meet with margin. Measured 0.901 /
/// 0.901 (en) and 0.912 / 0.912 (zh) on 2026-11-26, see BENCHMARKS.md `nlu.macro_f1_*`; the
/// issue's target is 0.9.
const BOUNDS: [(Language, f64, f64); 2] = [(Language::En, 0.88, 0.88), (Language::Zh, 0.88, 0.88)];

fn embedder() -> anyhow::Result<Arc<dyn Embedder>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/all-MiniLM-L6-v2");
    anyhow::ensure!(
        dir.join("model.safetensors").exists(),
        "{} is missing: run scripts/setup.sh",
        dir.display()
    );
    Ok(Arc::new(BertEmbedder::load(&dir)?))
}

fn index(i: Intent) -> usize {
    Intent::ALL.iter().position(|x| *x == i).unwrap_or(0)
}

#[test]
fn held_out_accuracy_and_macro_f1_meet_the_bound() -> anyhow::Result<()> {
    let engine = NluEngine::load(&data_dir(), Some(embedder()?))?;
    for (language, min_macro_f1, min_accuracy) in BOUNDS {
        let turns = load_turns(&data_dir().join(format!("{}.jsonl", language.code())))?;
        let (mut gold, mut predicted) = (Vec::new(), Vec::new());
        for t in turns.iter().filter(|t| t.split == Split::Test) {
            gold.push(index(t.intent));
            predicted.push(index(engine.understand(&t.text, language)?.intent));
        }
        let s = Scores::compute(&gold, &predicted, Intent::ALL.len());
        assert!(
            s.macro_f1 >= min_macro_f1 && s.accuracy >= min_accuracy,
            "{}: macro-F1 {:.3}, accuracy {:.3}",
            language.code(),
            s.macro_f1,
            s.accuracy
        );
    }
    Ok(())
}

#[test]
fn opt_outs_with_their_own_negation_stay_opt_outs() -> anyhow::Result<()> {
    let engine = NluEngine::load(&data_dir(), Some(embedder()?))?;
    let cases = [
        ("以后别再给我打电话了", Language::Zh, Intent::OptOut),
        ("以后別再給我打電話了", Language::Zh, Intent::OptOut),
        ("不 别再打了", Language::Zh, Intent::OptOut),
        ("明天再给我打电话", Language::Zh, Intent::CallbackRequest),
        ("don't call me again", Language::En, Intent::OptOut),
        ("never call me again", Language::En, Intent::OptOut),
        (
            "not interested and dont call me again",
            Language::En,
            Intent::OptOut,
        ),
        ("not interested", Language::En, Intent::Refusal),
        (
            "its not too expensive actually, lets go ahead",
            Language::En,
            Intent::PurchaseIntent,
        ),
    ];
    let wrong = misclassified(&engine, &cases)?;
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}

/// The cases whose intent is not the one wanted, as "text: got, want" lines.
fn misclassified(
    engine: &NluEngine,
    cases: &[(&str, Language, Intent)],
) -> anyhow::Result<Vec<String>> {
    let mut wrong = Vec::new();
    for &(text, language, want) in cases {
        let r = engine.understand(text, language)?;
        if r.intent != want {
            wrong.push(format!("{text:?}: {:?}, want {want:?}", r.intent));
        }
    }
    Ok(wrong)
}

/// Whisper base hears the opt-out clip of the voice corpus (asr_en_05, "Please remove my number
/// from your list.") as "hunger" whenever the audio is cut at the end of the speech, as on a call
/// (its encoder window is the speech plus 0.3 s, not Whisper's 30 s). An opt-out must survive
/// the misheard word: the rest of the sentence carries it.
#[test]
fn opt_outs_misheard_by_asr_stay_opt_outs() -> anyhow::Result<()> {
    let engine = NluEngine::load(&data_dir(), Some(embedder()?))?;
    let cases = [
        "Please remove my hunger from your list.",
        "Please remove my hunger from your lives.",
        "Please remove my hunger from your lips.",
        "please remove my numb from your list",
        "take me of your list",
    ]
    .map(|text| (text, Language::En, Intent::OptOut));
    let wrong = misclassified(&engine, &cases)?;
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}

#[test]
fn the_turn_embedding_is_exposed_for_reuse() -> anyhow::Result<()> {
    let embedder = embedder()?;
    let engine = NluEngine::load(&data_dir(), Some(embedder.clone()))?;
    let text = "does the policy cover my kids";
    let r = engine.understand(text, Language::En)?;
    let mine = r.embedding.ok_or_else(|| anyhow::anyhow!("no embedding"))?;
    let again = embedder.embed(&[text])?.pop().unwrap_or_default();
    assert_eq!(mine.len(), embedder.dim());
    let cosine: f32 = mine.iter().zip(&again).map(|(a, b)| a * b).sum();
    assert!(cosine > 0.999, "cosine {cosine}");
    // Mandarin reads no embedding (MiniLM is English-only), and an empty turn none either.
    assert!(engine
        .understand("太贵了", Language::Zh)?
        .embedding
        .is_none());
    assert!(engine.understand(" ", Language::En)?.embedding.is_none());
    Ok(())
}

#[test]
fn real_nlu_keeps_the_contract() -> anyhow::Result<()> {
    check_contract(&NluEngine::load(&data_dir(), Some(embedder()?))?)
}

#[test]
fn retraining_reproduces_the_checked_in_model() -> anyhow::Result<()> {
    let embedder = embedder()?;
    let lexicon = Lexicon::load(&data_dir().join("lexicon.json"))?;
    for language in [Language::En, Language::Zh] {
        let stored = TurnClassifier::load(&data_dir(), language)?;
        let turns = load_turns(&data_dir().join(format!("{}.jsonl", language.code())))?;
        let (train, test): (Vec<_>, Vec<_>) =
            turns.into_iter().partition(|t| t.split == Split::Train);
        let turn_parts = |ts: &[dialog::nlu::data::LabelledTurn]| {
            let texts: Vec<&str> = ts.iter().map(|t| t.text.as_str()).collect();
            parts(
                &texts,
                language,
                stored.meta.features,
                Some(embedder.as_ref()),
                &lexicon,
                stored.meta.max_char_ngram,
            )
        };
        let train_parts = turn_parts(&train)?;
        // The IDF weights, too, come from the training turns alone.
        let scheme = SparseScheme {
            cue_weight: stored.meta.cue_weight,
            max_char_ngram: stored.meta.max_char_ngram,
            idf: stored.meta.idf.then(|| {
                idf(&train_parts
                    .iter()
                    .map(|p| p.buckets.clone())
                    .collect::<Vec<_>>())
            }),
        };
        if let (Some(a), Some(b)) = (&scheme.idf, &stored.scheme().idf) {
            let worst = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(
                worst < 1e-5,
                "{}: stored IDF differs by {worst}",
                language.code()
            );
        }
        let assemble = |ps: &[dialog::nlu::model::TurnParts]| -> Vec<FeatureVec> {
            ps.iter().map(|p| p.assemble(&scheme)).collect()
        };
        let retrained = TurnClassifier::train(
            &train,
            &assemble(&train_parts),
            &stored.meta.train,
            stored.meta.clone(),
            scheme.clone(),
        )?;
        let argmax = |p: Vec<f32>| {
            p.iter()
                .enumerate()
                .fold((0, f32::MIN), |a, (i, &v)| if v > a.1 { (i, v) } else { a })
                .0
        };
        let test_features = assemble(&turn_parts(&test)?);
        let differing = test_features
            .iter()
            .filter(|f| {
                argmax(stored.probabilities(f).intent) != argmax(retrained.probabilities(f).intent)
            })
            .count();
        // Same data, same seedless training: the same predictions (a tie may flip on another
        // CPU's float rounding, hence one turn of slack).
        assert!(
            differing <= 1,
            "{}: {differing} held-out predictions differ from the checked-in weights; run \
             `cargo run -p dialog --example train_nlu`",
            language.code()
        );
    }
    Ok(())
}
