//! The language model engine: chat messages in, tokens streamed out, cancellable between tokens.
//! [`llama::LlamaCppModel`] runs a GGUF on llama.cpp, decoding concurrent calls together in one
//! batch; [`FakeLlm`] is a deterministic stand-in for unit tests.

pub mod llama;
pub mod quantize;

use crate::{DialogError, LlmConfig};
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// One generation. Put the static system prompt first: engines reuse its evaluated prefix.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    pub messages: Vec<ChatMessage>,
    pub max_tokens: u32,
    /// 0 → greedy.
    pub temperature: f32,
    /// Top-k cut before sampling (0 keeps every token); unused when greedy.
    pub top_k: u32,
    /// Nucleus cut before sampling (1.0 keeps every token); unused when greedy.
    pub top_p: f32,
    pub seed: u32,
    /// Generation stops before any of these strings; they are not part of the output.
    pub stop: Vec<String>,
    /// Optional GBNF grammar (root rule `root`) constraining the output.
    pub grammar: Option<String>,
}

impl GenerationRequest {
    /// A request with the default sampling of [`LlmConfig::default`] (greedy, 64 tokens).
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self::configured(messages, &LlmConfig::default())
    }

    /// A request with the sampling and `max_tokens` the configuration sets.
    pub fn configured(messages: Vec<ChatMessage>, config: &LlmConfig) -> Self {
        Self {
            messages,
            max_tokens: config.max_tokens,
            temperature: config.temperature,
            top_k: config.top_k,
            top_p: config.top_p,
            seed: config.seed,
            stop: Vec::new(),
            grammar: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model ended its turn.
    EndOfTurn,
    /// A stop string was produced.
    StopString,
    /// `max_tokens` reached.
    MaxTokens,
    /// The token fired or the sink returned `Break`.
    Cancelled,
}

/// What a generation produced, with its timings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationOutput {
    pub text: String,
    pub stop_reason: StopReason,
    pub prompt_tokens: u32,
    /// Prompt tokens whose evaluation was reused from the KV cache (a prefix shared with an
    /// earlier or concurrent request: the system prompt, or the call's previous turns).
    pub cached_prompt_tokens: u32,
    pub generated_tokens: u32,
    /// From submission (time queued for the engine included) to the first sampled token.
    pub first_token_ms: f64,
    /// From submission to the end of the generation.
    pub total_ms: f64,
}

/// A chat language model. One loaded model serves every call of the process.
pub trait LanguageModel: Send + Sync {
    /// Short name of the loaded model (file stem), for logs and reports.
    fn name(&self) -> &str;
    /// Generates a reply, handing each new piece of text to `on_token` as it is decoded. Blocks
    /// the calling thread: run it on a dedicated thread or `spawn_blocking`. Calls from several
    /// threads at once are served concurrently. Stops within one token when `cancel` fires or
    /// `on_token` returns `Break`.
    fn generate(
        &self,
        request: &GenerationRequest,
        cancel: &CancellationToken,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<GenerationOutput, DialogError>;
}

/// Cuts `text` at the first stop string, if any; returns whether it cut.
pub(crate) fn cut_at_stop(text: &mut String, stop: &[String]) -> bool {
    let cut = stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min();
    if let Some(at) = cut {
        text.truncate(at);
        true
    } else {
        false
    }
}

/// Deterministic fake: replies "Noted: <last user message>." one word per token.
#[derive(Debug, Default)]
pub struct FakeLlm;

impl LanguageModel for FakeLlm {
    fn name(&self) -> &str {
        "fake"
    }

    fn generate(
        &self,
        request: &GenerationRequest,
        cancel: &CancellationToken,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<GenerationOutput, DialogError> {
        let last = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .ok_or_else(|| {
                DialogError::InvalidRequest("a generation needs at least one user message".into())
            })?;
        let reply = format!("Noted: {}.", last.content.trim());
        let mut out = GenerationOutput {
            text: String::new(),
            stop_reason: StopReason::EndOfTurn,
            prompt_tokens: request
                .messages
                .iter()
                .map(|m| m.content.split_whitespace().count() as u32)
                .sum(),
            cached_prompt_tokens: 0,
            generated_tokens: 0,
            first_token_ms: 0.0,
            total_ms: 0.0,
        };
        for (i, word) in reply.split_inclusive(' ').enumerate() {
            if cancel.is_cancelled() {
                out.stop_reason = StopReason::Cancelled;
                break;
            }
            if i as u32 >= request.max_tokens {
                out.stop_reason = StopReason::MaxTokens;
                break;
            }
            let before = out.text.len();
            out.text.push_str(word);
            if cut_at_stop(&mut out.text, &request.stop) {
                let piece = out.text[before.min(out.text.len())..].to_string();
                if !piece.is_empty() {
                    let _ = on_token(&piece);
                }
                out.generated_tokens += 1;
                out.stop_reason = StopReason::StopString;
                break;
            }
            out.generated_tokens += 1;
            if on_token(word).is_break() {
                out.stop_reason = StopReason::Cancelled;
                break;
            }
        }
        Ok(out)
    }
}
