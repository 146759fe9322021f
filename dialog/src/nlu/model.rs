//! One language's trained classifiers (intent and sentiment) with their features and files:
//! `model_{en,zh}.safetensors` (weights) and `model_{en,zh}.json` (how they were trained, and the
//! SHA-256 of the data file they came from, so a test can tell stale weights).

use super::classifier::{FeatureVec, LinearClassifier, TrainConfig};
use super::data::LabelledTurn;
use super::features::SparseScheme;
use super::lexicon::Lexicon;
use super::{features, text, time, Intent, SentimentLabel};
use crate::DialogError;
use candle_core::{Device, Tensor};
use retrieval::{Embedder, Language};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How many words of a turn the sentence embedder reads ([`text::head_words`]): the labelled
/// turns have at most 17, so this only bounds the cost of a rambling turn (~50 tokens).
pub const MAX_EMBEDDED_WORDS: usize = 32;

/// Sentiment classes in the classifier's order.
pub const SENTIMENT_CLASSES: [SentimentLabel; 3] = [
    SentimentLabel::Negative,
    SentimentLabel::Neutral,
    SentimentLabel::Positive,
];

/// Which inputs a model reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureSet {
    /// Hashed n-grams and lexicon cues.
    Ngrams,
    /// The sentence embedding only.
    Embedding,
    /// Both (embedding, n-grams and cues), concatenated.
    EmbeddingAndNgrams,
}

impl FeatureSet {
    pub fn uses_embedding(self) -> bool {
        self != FeatureSet::Ngrams
    }

    pub fn uses_ngrams(self) -> bool {
        self != FeatureSet::Embedding
    }
}

/// How a model was trained: the JSON next to its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    pub language: Language,
    pub features: FeatureSet,
    /// SHA-256 of the JSONL data file the model was trained on.
    pub data_sha256: String,
    /// SHA-256 of the lexicon whose cues were features.
    pub lexicon_sha256: String,
    pub train_examples: usize,
    pub train: TrainConfig,
    /// Mean macro-F1 of the intent classifier over the cross-validation folds of the training
    /// split (how the feature set, L2 and cue weight were chosen; the held-out split played no
    /// part).
    pub cv_macro_f1: f64,
    /// Value of each lexicon cue in the sparse features (chosen by cross-validation; files
    /// written before it was a choice used [`features::DEFAULT_CUE_WEIGHT`]).
    #[serde(default = "default_cue_weight")]
    pub cue_weight: f32,
    /// Longest Mandarin character n-gram (chosen by cross-validation; files written before it
    /// was a choice used [`features::DEFAULT_MAX_CHAR_NGRAM`]).
    #[serde(default = "default_max_char_ngram")]
    pub max_char_ngram: usize,
    /// Whether n-gram buckets weigh their inverse document frequency over the training turns
    /// (stored as the tensor `ngram.idf` beside the weights) rather than 1.
    #[serde(default)]
    pub idf: bool,
}

fn default_cue_weight() -> f32 {
    features::DEFAULT_CUE_WEIGHT
}

fn default_max_char_ngram() -> usize {
    features::DEFAULT_MAX_CHAR_NGRAM
}

/// Intent and sentiment classifiers for one language.
#[derive(Debug, Clone)]
pub struct TurnClassifier {
    pub meta: ModelMeta,
    /// How the sparse features are made (from `meta`, with the stored IDF weights).
    scheme: SparseScheme,
    intent: LinearClassifier,
    sentiment: LinearClassifier,
}

/// The name of the IDF tensor in a model's safetensors file.
const IDF_TENSOR: &str = "ngram.idf";

/// Class probabilities of one turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Probabilities {
    /// In [`Intent::ALL`] order.
    pub intent: Vec<f32>,
    /// In [`SENTIMENT_CLASSES`] order.
    pub sentiment: Vec<f32>,
}

/// Lexicon cues of a normalised text: each keyword with its polarity, whether it names a time,
/// whether it is a question.
fn cues(normalized: &str, language: Language, lexicon: &Lexicon) -> Vec<String> {
    let mut out: Vec<String> = lexicon
        .keywords(normalized, language)
        .into_iter()
        .map(|k| format!("kw:{}{}", k.key, if k.negated { ":neg" } else { "" }))
        .collect();
    if !time::extract(normalized, language).is_empty() {
        out.push("time".into());
    }
    let trimmed = normalized.trim_end();
    if trimmed.ends_with('?') || trimmed.ends_with('吗') || trimmed.ends_with('呢') {
        out.push("question".into());
    }
    out
}

/// What a turn's features are made of before the model's weighting: its sentence embedding
/// (empty when not read), its n-gram buckets and its lexicon cues (both empty when not read).
#[derive(Debug, Clone, PartialEq)]
pub struct TurnParts {
    pub dense: Vec<f32>,
    pub buckets: Vec<u32>,
    pub cues: Vec<String>,
}

impl TurnParts {
    /// The classifier's input: the n-grams weighted and normalised, the cues added.
    pub fn assemble(&self, scheme: &SparseScheme) -> FeatureVec {
        let mut sparse = features::weigh(&self.buckets, scheme.idf.as_deref());
        features::add_cues(&mut sparse, &self.cues, scheme.cue_weight);
        FeatureVec {
            dense: self.dense.clone(),
            sparse,
        }
    }
}

/// Features of `texts` for a model reading `set` whose sparse part is made as `scheme` says;
/// `embedder` is needed when the set uses the embedding.
pub fn featurize(
    texts: &[&str],
    language: Language,
    set: FeatureSet,
    embedder: Option<&dyn Embedder>,
    lexicon: &Lexicon,
    scheme: &SparseScheme,
) -> Result<Vec<FeatureVec>, DialogError> {
    Ok(parts(
        texts,
        language,
        set,
        embedder,
        lexicon,
        scheme.max_char_ngram,
    )?
    .iter()
    .map(|p| p.assemble(scheme))
    .collect())
}

/// The [`TurnParts`] of `texts` for a model reading `set`, Mandarin n-grams up to
/// `max_char_ngram` characters.
pub fn parts(
    texts: &[&str],
    language: Language,
    set: FeatureSet,
    embedder: Option<&dyn Embedder>,
    lexicon: &Lexicon,
    max_char_ngram: usize,
) -> Result<Vec<TurnParts>, DialogError> {
    let dense: Vec<Vec<f32>> = if set.uses_embedding() {
        let embedder = embedder.ok_or_else(|| {
            DialogError::Nlu("this NLU model needs a sentence embedder; none was given".into())
        })?;
        let heads: Vec<&str> = texts
            .iter()
            .map(|t| text::head_words(t, MAX_EMBEDDED_WORDS))
            .collect();
        let mut out = Vec::with_capacity(texts.len());
        for chunk in heads.chunks(32) {
            out.extend(
                embedder
                    .embed(chunk)
                    .map_err(|e| DialogError::Nlu(format!("embedding the turn: {e}")))?,
            );
        }
        out
    } else {
        vec![Vec::new(); texts.len()]
    };
    Ok(texts
        .iter()
        .zip(dense)
        .map(|(t, dense)| {
            if set.uses_ngrams() {
                let normalized = text::normalize(t, language);
                TurnParts {
                    dense,
                    buckets: features::ngram_buckets(&normalized, language, max_char_ngram),
                    cues: cues(&normalized, language, lexicon),
                }
            } else {
                TurnParts {
                    dense,
                    buckets: Vec::new(),
                    cues: Vec::new(),
                }
            }
        })
        .collect())
}

fn intent_index(intent: Intent) -> usize {
    Intent::ALL.iter().position(|i| *i == intent).unwrap_or(0)
}

fn sentiment_index(label: SentimentLabel) -> usize {
    SENTIMENT_CLASSES
        .iter()
        .position(|s| *s == label)
        .unwrap_or(1)
}

fn paths(dir: &Path, language: Language) -> (PathBuf, PathBuf) {
    let stem = format!("model_{}", language.code());
    (
        dir.join(format!("{stem}.safetensors")),
        dir.join(format!("{stem}.json")),
    )
}

impl TurnClassifier {
    /// Trains both classifiers on `turns` whose features are `features` (same order), made as
    /// `scheme` says (its fields must agree with `meta`'s).
    pub fn train(
        turns: &[LabelledTurn],
        features: &[FeatureVec],
        config: &TrainConfig,
        meta: ModelMeta,
        scheme: SparseScheme,
    ) -> Result<Self, DialogError> {
        if scheme.idf.is_some() != meta.idf
            || scheme.cue_weight != meta.cue_weight
            || scheme.max_char_ngram != meta.max_char_ngram
        {
            return Err(DialogError::InvalidRequest(
                "the sparse feature scheme does not match the model metadata".into(),
            ));
        }
        let intents: Vec<usize> = turns.iter().map(|t| intent_index(t.intent)).collect();
        let sentiments: Vec<usize> = turns.iter().map(|t| sentiment_index(t.sentiment)).collect();
        Ok(Self {
            meta,
            scheme,
            intent: LinearClassifier::train(features, &intents, Intent::ALL.len(), config)?,
            sentiment: LinearClassifier::train(
                features,
                &sentiments,
                SENTIMENT_CLASSES.len(),
                config,
            )?,
        })
    }

    pub fn probabilities(&self, features: &FeatureVec) -> Probabilities {
        Probabilities {
            intent: self.intent.probabilities(features),
            sentiment: self.sentiment.probabilities(features),
        }
    }

    /// Writes `model_{lang}.safetensors` and `model_{lang}.json` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), DialogError> {
        let (weights, meta) = paths(dir, self.meta.language);
        let mut tensors = HashMap::new();
        self.intent.to_tensors("intent", &mut tensors)?;
        self.sentiment.to_tensors("sentiment", &mut tensors)?;
        if let Some(idf) = &self.scheme.idf {
            tensors.insert(
                IDF_TENSOR.to_string(),
                Tensor::from_slice(idf, idf.len(), &Device::Cpu)
                    .map_err(|e| DialogError::Nlu(format!("candle: {e}")))?,
            );
        }
        candle_core::safetensors::save(&tensors, &weights).map_err(|e| DialogError::NluFile {
            path: weights.clone(),
            message: e.to_string(),
        })?;
        let json = serde_json::to_string_pretty(&self.meta)
            .map_err(|e| DialogError::Nlu(format!("model metadata: {e}")))?;
        std::fs::write(&meta, json + "\n").map_err(|e| DialogError::NluFile {
            path: meta,
            message: e.to_string(),
        })
    }

    /// Reads the model of `language` from `dir`.
    pub fn load(dir: &Path, language: Language) -> Result<Self, DialogError> {
        let (weights, meta_path) = paths(dir, language);
        for p in [&weights, &meta_path] {
            if !p.exists() {
                return Err(DialogError::NluFile {
                    path: p.clone(),
                    message: "missing; train it with `cargo run -p dialog --example train_nlu`"
                        .into(),
                });
            }
        }
        let meta: ModelMeta =
            serde_json::from_str(&super::data::read(&meta_path)?).map_err(|e| {
                DialogError::NluFile {
                    path: meta_path.clone(),
                    message: e.to_string(),
                }
            })?;
        let tensors: HashMap<String, Tensor> =
            candle_core::safetensors::load(&weights, &Device::Cpu).map_err(|e| {
                DialogError::NluFile {
                    path: weights.clone(),
                    message: e.to_string(),
                }
            })?;
        let intent = LinearClassifier::from_tensors("intent", &tensors, Intent::ALL.len())?;
        let sentiment =
            LinearClassifier::from_tensors("sentiment", &tensors, SENTIMENT_CLASSES.len())?;
        if meta.features.uses_embedding() == (intent.dense_dim() == 0) {
            return Err(DialogError::NluFile {
                path: weights,
                message: format!(
                    "the weights do not fit the feature set {:?} of {}",
                    meta.features,
                    meta_path.display()
                ),
            });
        }
        let idf = match tensors.get(IDF_TENSOR) {
            Some(t) if meta.idf => {
                let idf: Vec<f32> = t.to_vec1().map_err(|e| DialogError::NluFile {
                    path: weights.clone(),
                    message: format!("{IDF_TENSOR}: {e}"),
                })?;
                if idf.len() != features::HASH_DIM {
                    return Err(DialogError::NluFile {
                        path: weights,
                        message: format!(
                            "{IDF_TENSOR} has {} values, expected {}",
                            idf.len(),
                            features::HASH_DIM
                        ),
                    });
                }
                Some(idf)
            }
            None if meta.idf => {
                return Err(DialogError::NluFile {
                    path: weights,
                    message: format!(
                        "{} asks for IDF weights but {IDF_TENSOR} is missing",
                        meta_path.display()
                    ),
                })
            }
            _ => None,
        };
        if !(1..=8).contains(&meta.max_char_ngram) {
            return Err(DialogError::NluFile {
                path: meta_path,
                message: format!("max_char_ngram {} is not in 1..=8", meta.max_char_ngram),
            });
        }
        Ok(Self {
            scheme: SparseScheme {
                cue_weight: meta.cue_weight,
                max_char_ngram: meta.max_char_ngram,
                idf,
            },
            meta,
            intent,
            sentiment,
        })
    }

    /// How this model makes its sparse features.
    pub fn scheme(&self) -> &SparseScheme {
        &self.scheme
    }

    /// Size of the embedding this model reads (0 for none).
    pub fn dense_dim(&self) -> usize {
        self.intent.dense_dim()
    }

    /// Features of one turn for this model.
    pub fn featurize(
        &self,
        text: &str,
        embedder: Option<&Arc<dyn Embedder>>,
        lexicon: &Lexicon,
    ) -> Result<FeatureVec, DialogError> {
        featurize(
            &[text],
            self.meta.language,
            self.meta.features,
            embedder.map(|e| e.as_ref()),
            lexicon,
            &self.scheme,
        )?
        .pop()
        .ok_or_else(|| DialogError::Nlu("the embedder returned no vector".into()))
    }
}
