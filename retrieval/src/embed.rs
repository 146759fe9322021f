//! Sentence embeddings: all-MiniLM-L6-v2 (BERT) on candle, mean-pooled over the attention mask
//! and L2-normalized, so a dot product is the cosine similarity. [`FakeEmbedder`] hashes words
//! into a fixed-size vector for unit tests.

use crate::RetrievalError;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use std::path::Path;
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

/// Fixes the CPU thread count candle's matrix products use, through `RAYON_NUM_THREADS`, when the
/// environment does not already set it: call it first thing in `main`, before any other thread
/// exists (it writes the process environment).
///
/// Why: candle 0.11 asks for its thread count on every matrix product, and without
/// `RAYON_NUM_THREADS` that means `num_cpus::get_physical()`, which parses `/proc/cpuinfo` each
/// time. A MiniLM pass (~50 products) spent a quarter of its time there: per-turn embedding p50
/// 17.0 → 13.0 ms, p95 24.8 → 18.3 ms on 2 cores (2026-11-26, see `nlu.latency_ms_p95` in
/// BENCHMARKS.md).
/// The value set is the one candle would have computed (the physical cores); rayon's global pool
/// reads it too.
pub fn set_cpu_threads_once() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var(
            "RAYON_NUM_THREADS",
            num_cpus::get_physical().max(1).to_string(),
        );
    }
}

/// The body of an async `main`: fixes candle's thread count ([`set_cpu_threads_once`]) while the
/// process still has one thread, then runs `main` to completion on a new multi-threaded tokio
/// runtime. Use it instead of `#[tokio::main]`, which starts the runtime's threads first.
pub fn block_on_main<T>(main: impl std::future::Future<Output = T>) -> std::io::Result<T> {
    set_cpu_threads_once();
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(main))
}

/// Turns texts into unit vectors of a fixed dimension.
pub trait Embedder: Send + Sync {
    fn dim(&self) -> usize;
    /// Embeds a batch; the output has one unit-length vector per input, in order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, RetrievalError>;
}

/// A BERT sentence encoder (sentence-transformers layout) on the CPU.
pub struct BertEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    dim: usize,
}

impl std::fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEmbedder")
            .field("dim", &self.dim)
            .finish()
    }
}

impl BertEmbedder {
    /// Loads `model.safetensors`, `config.json` and `tokenizer.json` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, RetrievalError> {
        let file = |name: &str| {
            let p = dir.join(name);
            if p.exists() {
                Ok(p)
            } else {
                Err(RetrievalError::ModelMissing { path: p })
            }
        };
        let (weights, config_path, tok_path) = (
            file("model.safetensors")?,
            file("config.json")?,
            file("tokenizer.json")?,
        );
        let config_text =
            std::fs::read_to_string(&config_path).map_err(|source| RetrievalError::Io {
                path: config_path.clone(),
                source,
            })?;
        let config: Config = serde_json::from_str(&config_text)
            .map_err(|e| RetrievalError::Embed(format!("{}: {e}", config_path.display())))?;
        let mut tokenizer = Tokenizer::from_file(&tok_path)
            .map_err(|e| RetrievalError::Embed(format!("{}: {e}", tok_path.display())))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: 256,
                ..Default::default()
            }))
            .map_err(|e| RetrievalError::Embed(format!("tokenizer truncation: {e}")))?;
        // SAFETY: the file is memory-mapped read-only and not modified while the model lives.
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &Device::Cpu)? };
        let model = BertModel::load(vb, &config)?;
        Ok(Self {
            model,
            tokenizer,
            dim: config.hidden_size,
        })
    }
}

impl Embedder for BertEmbedder {
    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, RetrievalError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| RetrievalError::Embed(format!("tokenizing: {e}")))?;
        let n = encodings.len();
        let len = encodings.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for e in &encodings {
            ids.extend_from_slice(e.get_ids());
            mask.extend_from_slice(e.get_attention_mask());
        }
        let device = Device::Cpu;
        let ids = Tensor::from_vec(ids, (n, len), &device)?;
        let mask = Tensor::from_vec(mask, (n, len), &device)?;
        let token_type = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &token_type, Some(&mask))?;
        // Mean over real tokens only, then L2-normalize.
        let mask_f = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask_f)?.sum(1)?;
        let counts = mask_f.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norm)?.to_vec2::<f32>()?)
    }
}

/// Deterministic fake: each lower-cased word adds to a hashed coordinate; normalized.
#[derive(Debug, Clone)]
pub struct FakeEmbedder {
    pub dim: usize,
}

impl Default for FakeEmbedder {
    fn default() -> Self {
        Self { dim: 64 }
    }
}

impl Embedder for FakeEmbedder {
    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, RetrievalError> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; self.dim];
                for w in t
                    .to_lowercase()
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| !w.is_empty())
                {
                    // FNV-1a: stable across runs and platforms.
                    let h = w.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                    });
                    v[(h % self.dim as u64) as usize] += 1.0;
                }
                normalize(&mut v);
                v
            })
            .collect())
    }
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}
