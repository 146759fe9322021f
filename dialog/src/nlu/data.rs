//! The labelled caller turns (`data/nlu/{en,zh}.jsonl`) and the scores computed on them:
//! accuracy, per-intent precision / recall / F1 and macro-F1.

use super::{Intent, SentimentLabel};
use crate::DialogError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Which side of the fixed train / held-out split a turn is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Test,
}

/// One labelled caller turn: a line of the JSONL file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelledTurn {
    pub text: String,
    pub intent: Intent,
    pub sentiment: SentimentLabel,
    pub split: Split,
}

/// Reads a JSONL file of labelled turns (blank lines skipped).
pub fn load_turns(path: &Path) -> Result<Vec<LabelledTurn>, DialogError> {
    let text = read(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| DialogError::NluFile {
                path: path.to_path_buf(),
                message: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}

/// SHA-256 (hex) of a file: the trained weights record the digest of the data they came from.
pub fn file_sha256(path: &Path) -> Result<String, DialogError> {
    let bytes = std::fs::read(path).map_err(|e| DialogError::NluFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

pub(crate) fn read(path: &Path) -> Result<String, DialogError> {
    std::fs::read_to_string(path).map_err(|e| DialogError::NluFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassScore {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Number of gold examples of this class.
    pub support: usize,
}

/// Scores of predicted against gold labels over `classes` classes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scores {
    pub accuracy: f64,
    /// Mean F1 over the classes that have gold examples or predictions.
    pub macro_f1: f64,
    pub per_class: Vec<ClassScore>,
}

impl Scores {
    /// Compares `predicted` with `gold` (class indices, same length).
    pub fn compute(gold: &[usize], predicted: &[usize], classes: usize) -> Self {
        let mut tp = vec![0usize; classes];
        let mut gold_n = vec![0usize; classes];
        let mut pred_n = vec![0usize; classes];
        for (&g, &p) in gold.iter().zip(predicted) {
            gold_n[g] += 1;
            pred_n[p] += 1;
            if g == p {
                tp[g] += 1;
            }
        }
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let per_class: Vec<ClassScore> = (0..classes)
            .map(|c| {
                let precision = ratio(tp[c], pred_n[c]);
                let recall = ratio(tp[c], gold_n[c]);
                let f1 = if precision + recall == 0.0 {
                    0.0
                } else {
                    2.0 * precision * recall / (precision + recall)
                };
                ClassScore {
                    precision,
                    recall,
                    f1,
                    support: gold_n[c],
                }
            })
            .collect();
        let present: Vec<f64> = (0..classes)
            .filter(|&c| gold_n[c] + pred_n[c] > 0)
            .map(|c| per_class[c].f1)
            .collect();
        Self {
            accuracy: ratio(tp.iter().sum(), gold.len()),
            macro_f1: present.iter().sum::<f64>() / present.len().max(1) as f64,
            per_class,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_of_a_small_confusion() {
        let s = Scores::compute(&[0, 0, 1, 1], &[0, 1, 1, 1], 2);
        assert!((s.accuracy - 0.75).abs() < 1e-9);
        assert!((s.per_class[0].precision - 1.0).abs() < 1e-9);
        assert!((s.per_class[1].precision - 2.0 / 3.0).abs() < 1e-9);
        assert!((s.macro_f1 - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-9);
    }
}
