//! Whisper's tokenizer (the `tokenizers` crate on `tokenizer.json`), its special token ids, and
//! the suppression lists from the CTranslate2 `config.json`.

use crate::{Language, VoiceError};
use serde::Deserialize;
use std::path::Path;
use tokenizers::Tokenizer;

/// Ids of the special tokens decoding needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpecialTokens {
    pub eot: u32,
    pub sot: u32,
    pub sot_prev: u32,
    pub transcribe: u32,
    pub no_timestamps: u32,
    /// `<|nocaptions|>` (older name of `<|nospeech|>`).
    pub no_speech: u32,
}

/// The model's text side: tokenizer, special ids, suppression lists.
#[derive(Debug)]
pub(crate) struct WhisperTokenizer {
    tokenizer: Tokenizer,
    pub special: SpecialTokens,
    /// Never sampled: the config's list plus every special token above end-of-text.
    pub suppress: Vec<u32>,
    /// Not sampled as the first token: the config's `suppress_ids_begin` (space, end-of-text).
    pub suppress_begin: Vec<u32>,
    multilingual: bool,
}

/// The parts of faster-whisper's `config.json` used here.
#[derive(Debug, Default, Deserialize)]
struct Ct2WhisperConfig {
    #[serde(default)]
    suppress_ids: Vec<u32>,
    #[serde(default)]
    suppress_ids_begin: Vec<u32>,
}

impl WhisperTokenizer {
    pub fn load(dir: &Path, n_vocab: usize, multilingual: bool) -> Result<Self, VoiceError> {
        let path = dir.join("tokenizer.json");
        crate::error::require_file(&path)?;
        let tokenizer = Tokenizer::from_file(&path).map_err(|e| VoiceError::ModelFormat {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let id = |token: &str| {
            tokenizer
                .token_to_id(token)
                .ok_or_else(|| VoiceError::ModelFormat {
                    path: path.clone(),
                    reason: format!("special token {token} is not in the vocabulary"),
                })
        };
        let special = SpecialTokens {
            eot: id("<|endoftext|>")?,
            sot: id("<|startoftranscript|>")?,
            sot_prev: id("<|startofprev|>")?,
            transcribe: id("<|transcribe|>")?,
            no_timestamps: id("<|notimestamps|>")?,
            no_speech: id("<|nospeech|>").or_else(|_| id("<|nocaptions|>"))?,
        };

        let config_path = dir.join("config.json");
        let config: Ct2WhisperConfig = match std::fs::read(&config_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| VoiceError::ModelFormat {
                path: config_path.clone(),
                reason: e.to_string(),
            })?,
            Err(e) => {
                tracing::warn!(path = %config_path.display(), error = %e, "no Whisper config.json: default token suppression");
                Ct2WhisperConfig::default()
            }
        };
        let mut suppress = config.suppress_ids;
        // Timestamps, language and task tokens never appear in a no-timestamps transcript.
        suppress.extend(special.eot + 1..n_vocab as u32);
        suppress.sort_unstable();
        suppress.dedup();
        let suppress_begin = if config.suppress_ids_begin.is_empty() {
            [tokenizer.token_to_id("Ġ"), Some(special.eot)]
                .into_iter()
                .flatten()
                .collect()
        } else {
            config.suppress_ids_begin
        };
        Ok(Self {
            tokenizer,
            special,
            suppress,
            suppress_begin,
            multilingual,
        })
    }

    /// `<|startoftranscript|>` [`<|lang|>` `<|transcribe|>`] `<|notimestamps|>`.
    pub fn sot_sequence(&self, language: Language) -> Result<Vec<u32>, VoiceError> {
        let s = &self.special;
        if !self.multilingual {
            return match language {
                Language::English => Ok(vec![s.sot, s.no_timestamps]),
                other => Err(VoiceError::InvalidInput(format!(
                    "this Whisper model is English-only and cannot transcribe {}: use the multilingual base model",
                    other.code()
                ))),
            };
        }
        let lang = format!("<|{}|>", language.code());
        let lang = self.tokenizer.token_to_id(&lang).ok_or_else(|| {
            VoiceError::engine(
                "whisper",
                format!("language token {lang} is not in the vocabulary"),
            )
        })?;
        Ok(vec![s.sot, lang, s.transcribe, s.no_timestamps])
    }

    /// `<|startofprev|>` + the prompt's tokens (the last `max_tokens` of them), or nothing.
    pub fn prompt_prefix(
        &self,
        prompt: Option<&str>,
        max_tokens: usize,
    ) -> Result<Vec<u32>, VoiceError> {
        let Some(prompt) = prompt.map(str::trim).filter(|p| !p.is_empty()) else {
            return Ok(Vec::new());
        };
        // Whisper encodes the prompt with a leading space, as text that followed earlier speech.
        let enc = self
            .tokenizer
            .encode(format!(" {prompt}"), false)
            .map_err(|e| VoiceError::engine("whisper tokenizer", e))?;
        let ids = enc.get_ids();
        let ids = &ids[ids.len().saturating_sub(max_tokens)..];
        let mut out = Vec::with_capacity(ids.len() + 1);
        out.push(self.special.sot_prev);
        out.extend_from_slice(ids);
        Ok(out)
    }

    pub fn decode(&self, tokens: &[u32]) -> Result<String, VoiceError> {
        let text = self
            .tokenizer
            .decode(tokens, true)
            .map_err(|e| VoiceError::engine("whisper tokenizer", e))?;
        Ok(text.trim().to_string())
    }
}
