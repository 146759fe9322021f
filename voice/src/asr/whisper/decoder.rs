//! Whisper's text decoder with key/value caches: the cross-attention keys and values are computed
//! once per window, the self-attention ones grow by the tokens fed, so a step costs the same at
//! token 3 and token 100. Same weights and arithmetic as candle-transformers' decoder.

use crate::VoiceError;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, IndexOp, Module, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How the decoder's per-token matrices are stored (the cross-attention projection of the audio,
/// run once per window on many rows, stays f32 either way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecoderWeights {
    /// As loaded: every token's pass reads ~194 MB of weights for Whisper base (106 MB of it the
    /// tied output projection).
    F32,
    /// 8-bit blocks (ggml Q8_0, 32 weights per f16 scale) for the per-token matrices. The output
    /// projection's 8-bit scores only shortlist the next token: the best
    /// [`RESCORED_CANDIDATES`] are scored again in f32 and the choice is made among those, so
    /// the 8-bit rounding cannot swap two close words. See BENCHMARKS.md `asr.base.rtf` for
    /// what it gains and the corpus tests for what it costs in accuracy.
    #[default]
    Q8,
}

/// How many of the best 8-bit scores are scored again in f32 before the greedy choice.
pub(crate) const RESCORED_CANDIDATES: usize = 8;

/// `y = x · Wᵀ + b`, the weight either f32 (`Wᵀ` stored contiguous for `(rows, d_in)` inputs) or
/// quantized (candle's `QMatMul`, `W` as `(d_out, d_in)` blocks).
#[derive(Debug, Clone)]
struct Linear {
    kernel: Kernel,
    bias: Option<Tensor>,
}

#[derive(Debug, Clone)]
enum Kernel {
    /// `(d_in, d_out)`.
    F32(Tensor),
    Quantized(QMatMul),
}

impl Kernel {
    /// `weight` is `(d_out, d_in)`.
    fn new(weight: &Tensor, weights: DecoderWeights) -> Result<Self, VoiceError> {
        Ok(match weights {
            DecoderWeights::F32 => Kernel::F32(weight.t()?.contiguous()?),
            DecoderWeights::Q8 => Kernel::Quantized(QMatMul::from_qtensor(QTensor::quantize(
                &weight.contiguous()?,
                GgmlDType::Q8_0,
            )?)?),
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor, VoiceError> {
        Ok(match self {
            Kernel::F32(w_t) => x.matmul(w_t)?,
            Kernel::Quantized(q) => q.forward(&x.contiguous()?)?,
        })
    }
}

impl Linear {
    fn new(
        weight: &Tensor,
        bias: Option<Tensor>,
        weights: DecoderWeights,
    ) -> Result<Self, VoiceError> {
        Ok(Self {
            kernel: Kernel::new(weight, weights)?,
            bias,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor, VoiceError> {
        let y = self.kernel.forward(x)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

#[derive(Debug, Clone)]
struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor, VoiceError> {
        Ok(candle_nn::ops::layer_norm(
            &x.contiguous()?,
            &self.weight,
            &self.bias,
            1e-5,
        )?)
    }
}

/// One residual block: causal self-attention, cross-attention over the audio, MLP.
#[derive(Debug, Clone)]
struct Block {
    attn_ln: LayerNorm,
    /// Query, key and value fused: `(d, 3d)`; the key has no bias (zeros).
    qkv: Linear,
    attn_out: Linear,
    cross_ln: LayerNorm,
    cross_q: Linear,
    /// Key and value of the audio features fused: `(d, 2d)`.
    cross_kv: Linear,
    cross_out: Linear,
    mlp_ln: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

/// The decoder's weights. Stateless: caches live in [`DecoderState`].
#[derive(Debug, Clone)]
pub(crate) struct TextDecoder {
    /// `(n_vocab, d)`.
    token_embedding: Tensor,
    /// The output projection: the token embeddings again (tied), stored as [`DecoderWeights`]
    /// says (in 8-bit blocks it only shortlists, [`NextTokenScores::exact`] decides).
    output: Kernel,
    /// `(n_text_ctx, d)`.
    positional: Tensor,
    blocks: Vec<Block>,
    ln: LayerNorm,
    n_head: usize,
    d: usize,
}

/// Per-window caches: cross-attention keys/values of the audio and the self-attention keys and
/// values of every token fed so far.
#[derive(Debug)]
pub(crate) struct DecoderState {
    /// Per block: `(heads, head_dim, audio_ctx)` keys (pre-scaled), `(heads, audio_ctx, head_dim)` values.
    cross: Vec<(Tensor, Tensor)>,
    /// Per block: `(heads, head_dim, len)` keys (pre-scaled), `(heads, len, head_dim)` values.
    self_kv: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl DecoderState {
    /// Forgets every token at position `len` and later (a rejected draft).
    pub fn truncate(&mut self, len: usize) -> Result<(), VoiceError> {
        if len >= self.len {
            return Ok(());
        }
        for kv in &mut self.self_kv {
            *kv = match kv.take() {
                Some(_) if len == 0 => None,
                Some((k, v)) => Some((
                    k.narrow(2, 0, len)?.contiguous()?,
                    v.narrow(1, 0, len)?.contiguous()?,
                )),
                None => None,
            };
        }
        self.len = len;
        Ok(())
    }
}

impl TextDecoder {
    /// Builds the decoder from the Hugging Face-named tensors [`super::ct2::hf_tensors`] made.
    pub fn new(
        tensors: &HashMap<String, Tensor>,
        n_layers: usize,
        n_head: usize,
        weights: DecoderWeights,
    ) -> Result<Self, VoiceError> {
        let get = |name: &str| -> Result<Tensor, VoiceError> {
            tensors
                .get(name)
                .cloned()
                .ok_or_else(|| VoiceError::engine("whisper", format!("tensor {name} is missing")))
        };
        let linear = |p: &str| -> Result<Linear, VoiceError> {
            Linear::new(
                &get(&format!("{p}.weight"))?,
                Some(get(&format!("{p}.bias"))?),
                weights,
            )
        };
        let norm = |p: &str| -> Result<LayerNorm, VoiceError> {
            Ok(LayerNorm {
                weight: get(&format!("{p}.weight"))?,
                bias: get(&format!("{p}.bias"))?,
            })
        };
        let token_embedding = get("model.decoder.embed_tokens.weight")?;
        let d = token_embedding.dim(1)?;
        let device = token_embedding.device().clone();
        let zeros = Tensor::zeros(d, DType::F32, &device)?;
        let mut blocks = Vec::with_capacity(n_layers);
        for i in 0..n_layers {
            let p = format!("model.decoder.layers.{i}");
            let a = format!("{p}.self_attn");
            let qkv_w = Tensor::cat(
                &[
                    get(&format!("{a}.q_proj.weight"))?,
                    get(&format!("{a}.k_proj.weight"))?,
                    get(&format!("{a}.v_proj.weight"))?,
                ],
                0,
            )?;
            let qkv_b = Tensor::cat(
                &[
                    get(&format!("{a}.q_proj.bias"))?,
                    zeros.clone(),
                    get(&format!("{a}.v_proj.bias"))?,
                ],
                0,
            )?;
            let c = format!("{p}.encoder_attn");
            let kv_w = Tensor::cat(
                &[
                    get(&format!("{c}.k_proj.weight"))?,
                    get(&format!("{c}.v_proj.weight"))?,
                ],
                0,
            )?;
            let kv_b = Tensor::cat(&[zeros.clone(), get(&format!("{c}.v_proj.bias"))?], 0)?;
            blocks.push(Block {
                attn_ln: norm(&format!("{p}.self_attn_layer_norm"))?,
                qkv: Linear::new(&qkv_w, Some(qkv_b), weights)?,
                attn_out: linear(&format!("{a}.out_proj"))?,
                cross_ln: norm(&format!("{p}.encoder_attn_layer_norm"))?,
                cross_q: linear(&format!("{c}.q_proj"))?,
                cross_kv: Linear::new(&kv_w, Some(kv_b), DecoderWeights::F32)?,
                cross_out: linear(&format!("{c}.out_proj"))?,
                mlp_ln: norm(&format!("{p}.final_layer_norm"))?,
                fc1: linear(&format!("{p}.fc1"))?,
                fc2: linear(&format!("{p}.fc2"))?,
            });
        }
        Ok(Self {
            // In 8-bit blocks alone the output projection turned "remove my number" into
            // "remove my hunger" on an AVX2 host (every clip's words had matched on the host
            // where it was first measured): its best candidates are rescored in f32.
            output: Kernel::new(&token_embedding, weights)?,
            token_embedding,
            positional: get("model.decoder.embed_positions.weight")?,
            blocks,
            ln: norm("model.decoder.layer_norm")?,
            n_head,
            d,
        })
    }

    /// Most tokens a window can hold.
    pub fn n_ctx(&self) -> usize {
        self.positional.dim(0).unwrap_or(0)
    }

    fn head_dim(&self) -> usize {
        self.d / self.n_head
    }

    /// Whisper scales queries and keys each by `head_dim^-1/4`.
    fn scale(&self) -> f64 {
        (self.head_dim() as f64).powf(-0.25)
    }

    /// Fresh caches for one window: projects `audio_features` (`(1, audio_ctx, d)`, the encoder
    /// output) to every block's cross-attention keys and values.
    pub fn start(&self, audio_features: &Tensor) -> Result<DecoderState, VoiceError> {
        let xa = audio_features.squeeze(0)?;
        let (t, _) = xa.dims2()?;
        let (h, hd) = (self.n_head, self.head_dim());
        let mut cross = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            let kv = b.cross_kv.forward(&xa)?; // (t, 2d)
            let k = (kv.narrow(1, 0, self.d)? * self.scale())?
                .reshape((t, h, hd))?
                .permute((1, 2, 0))?
                .contiguous()?; // (h, hd, t)
            let v = kv
                .narrow(1, self.d, self.d)?
                .reshape((t, h, hd))?
                .transpose(0, 1)?
                .contiguous()?; // (h, t, hd)
            cross.push((k, v));
        }
        Ok(DecoderState {
            cross,
            self_kv: vec![None; self.blocks.len()],
            len: 0,
        })
    }

    /// Feeds `tokens` at positions `state.len()..`, extends the caches and returns the final
    /// layer-normed hidden states `(tokens.len(), d)`.
    pub fn forward(&self, tokens: &[u32], state: &mut DecoderState) -> Result<Tensor, VoiceError> {
        let n = tokens.len();
        let offset = state.len;
        if n == 0 || offset + n > self.n_ctx() {
            return Err(VoiceError::engine(
                "whisper",
                format!(
                    "decoder input of {n} tokens at position {offset} exceeds the {}-token context",
                    self.n_ctx()
                ),
            ));
        }
        let device = self.token_embedding.device();
        let ids = Tensor::new(tokens, device)?;
        let mut x = self
            .token_embedding
            .embedding(&ids)?
            .add(&self.positional.narrow(0, offset, n)?)?;
        let mask = if n > 1 {
            Some(causal_mask(n, offset, device)?)
        } else {
            None
        };
        let (h, hd, d) = (self.n_head, self.head_dim(), self.d);
        for (i, b) in self.blocks.iter().enumerate() {
            // Self-attention over the cache plus the new tokens.
            let qkv = b.qkv.forward(&b.attn_ln.forward(&x)?)?; // (n, 3d)
            let q = (qkv.narrow(1, 0, d)? * self.scale())?
                .reshape((n, h, hd))?
                .transpose(0, 1)?
                .contiguous()?; // (h, n, hd)
            let k = (qkv.narrow(1, d, d)? * self.scale())?
                .reshape((n, h, hd))?
                .permute((1, 2, 0))?
                .contiguous()?; // (h, hd, n)
            let v = qkv
                .narrow(1, 2 * d, d)?
                .reshape((n, h, hd))?
                .transpose(0, 1)?
                .contiguous()?; // (h, n, hd)
            let (k, v) = match state.self_kv[i].take() {
                Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 1)?),
                None => (k, v),
            };
            let attn = attention(&q, &k, &v, mask.as_ref())?; // (n, d)
            state.self_kv[i] = Some((k, v));
            x = (x + b.attn_out.forward(&attn)?)?;

            // Cross-attention over the audio.
            let q = b
                .cross_q
                .forward(&b.cross_ln.forward(&x)?)?
                .affine(self.scale(), 0.0)?
                .reshape((n, h, hd))?
                .transpose(0, 1)?
                .contiguous()?;
            let (ck, cv) = &state.cross[i];
            let attn = attention(&q, ck, cv, None)?;
            x = (x + b.cross_out.forward(&attn)?)?;

            let mlp = b
                .fc2
                .forward(&b.fc1.forward(&b.mlp_ln.forward(&x)?)?.gelu()?)?;
            x = (x + mlp)?;
        }
        state.len += n;
        self.ln.forward(&x)
    }

    /// Scores of the next token after each of the hidden states `(rows, d)` (output projection
    /// tied to the token embeddings).
    pub fn scores(&self, hidden: &Tensor) -> Result<NextTokenScores<'_>, VoiceError> {
        Ok(NextTokenScores {
            logits: self.output.forward(hidden)?,
            hidden: hidden.clone(),
            decoder: self,
        })
    }
}

/// Next-token logits of some positions, as the output projection computed them, and the means
/// to compute a few of them exactly.
pub(crate) struct NextTokenScores<'a> {
    /// `(rows, n_vocab)`.
    logits: Tensor,
    /// `(rows, d)`.
    hidden: Tensor,
    decoder: &'a TextDecoder,
}

impl NextTokenScores<'_> {
    /// Logits of row `i`.
    pub fn row(&self, i: usize) -> Result<Vec<f32>, VoiceError> {
        row(&self.logits, i)
    }

    /// True when [`Self::row`] is already the f32 product (no rescoring needed).
    pub fn is_exact(&self) -> bool {
        matches!(self.decoder.output, Kernel::F32(_))
    }

    /// The f32 logits of tokens `ids` at row `i`: the hidden state times those tokens'
    /// embeddings.
    pub fn exact(&self, i: usize, ids: &[u32]) -> Result<Vec<f32>, VoiceError> {
        let device = self.hidden.device();
        let ids = Tensor::new(ids, device)?;
        let rows = self.decoder.token_embedding.index_select(&ids, 0)?; // (k, d)
        let h = self.hidden.i(i)?.unsqueeze(1)?; // (d, 1)
        Ok(rows.matmul(&h)?.squeeze(1)?.to_vec1()?)
    }
}

/// `softmax(q·k) · v` per head; `q (h, n, hd)`, `k (h, hd, t)`, `v (h, t, hd)` → `(n, h·hd)`.
fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: Option<&Tensor>,
) -> Result<Tensor, VoiceError> {
    let mut qk = q.matmul(k)?; // (h, n, t)
    if let Some(mask) = mask {
        qk = qk.broadcast_add(mask)?;
    }
    let w = candle_nn::ops::softmax_last_dim(&qk)?;
    let out = w.matmul(v)?; // (h, n, hd)
    Ok(out.transpose(0, 1)?.flatten_from(1)?)
}

/// `(n, offset + n)`: new token `i` sees every cached token and new tokens up to itself.
fn causal_mask(n: usize, offset: usize, device: &Device) -> Result<Tensor, VoiceError> {
    let t = offset + n;
    let mask: Vec<f32> = (0..n)
        .flat_map(|i| {
            (0..t).map(move |j| {
                if j > offset + i {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Ok(Tensor::from_vec(mask, (n, t), device)?)
}

/// The row `i` of a `(rows, n_vocab)` logits tensor as a vector.
pub(crate) fn row(logits: &Tensor, i: usize) -> Result<Vec<f32>, VoiceError> {
    Ok(logits.i(i)?.to_vec1()?)
}
