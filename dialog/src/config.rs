//! Typed configuration of the language model engine: which GGUF, how many threads and
//! concurrent sequences, and the default sampling of a [`crate::GenerationRequest`].

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LlmConfig {
    /// GGUF file to load. Any llama.cpp model works; the chat template is read from the file.
    pub model_path: PathBuf,
    /// Threads llama.cpp uses for decoding. Its worker threads spin while waiting: on a box
    /// that also runs ASR and TTS (or builds), 2 threads on 2 cores stalled decoding tenfold,
    /// while 1 stayed steady. Raise it only on cores the LLM has to itself; measure.
    pub threads: u32,
    /// KV cache size in tokens, shared by all sequences: the system prompt is stored once for
    /// every call that shares it. A request needs its prompt plus `max_tokens` cells.
    pub context_tokens: u32,
    /// Requests decoded together in one batch (llama.cpp sequences). Finished calls keep their
    /// evaluated conversation in their sequence for the next turn until the cells are needed.
    pub parallel: u32,
    /// Most tokens in one decode step: one per generating sequence plus prompt chunks of newly
    /// arrived requests.
    pub batch_tokens: u32,
    /// Default cap on generated tokens per reply.
    pub max_tokens: u32,
    /// Default sampling temperature; 0 means greedy (then top-k, top-p and seed are unused).
    pub temperature: f32,
    /// Default top-k cut before sampling (0 keeps every token).
    pub top_k: u32,
    /// Default nucleus (top-p) cut before sampling (1.0 keeps every token).
    pub top_p: f32,
    /// Default seed of the sampler's random draw.
    pub seed: u32,
    /// Requests queued for the worker before callers wait (back-pressure).
    pub queue_depth: usize,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            model_path: PathBuf::from("models/llm/SmolLM2-135M-Instruct.Q4_1.gguf"),
            threads: 1,
            context_tokens: 4096,
            parallel: 8,
            batch_tokens: 512,
            max_tokens: 64,
            temperature: 0.0,
            top_k: 40,
            top_p: 0.95,
            seed: 42,
            queue_depth: 16,
        }
    }
}
