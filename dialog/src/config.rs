//! Typed configuration of the language model engine.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LlmConfig {
    /// GGUF file to load. Any llama.cpp model works; the chat template is read from the file.
    pub model_path: PathBuf,
    /// Threads llama.cpp uses for decoding (1 is steady on a busy 2-core box; measure).
    pub threads: u32,
    /// Context window in tokens.
    pub context_tokens: u32,
    /// Default cap on generated tokens per reply.
    pub max_tokens: u32,
    /// Default sampling temperature; 0 means greedy.
    pub temperature: f32,
    /// Requests queued for the worker before callers wait (back-pressure).
    pub queue_depth: usize,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            model_path: PathBuf::from("models/llm/SmolLM2-135M-Instruct.Q4_1.gguf"),
            threads: 2,
            context_tokens: 2048,
            max_tokens: 64,
            temperature: 0.0,
            queue_depth: 16,
        }
    }
}
