//! Reader for CTranslate2's `model.bin` (the format faster-whisper ships) and the mapping of its
//! Whisper tensors onto the Hugging Face names candle-transformers' Whisper model loads.

use crate::VoiceError;
use candle_core::{DType, Device, Tensor};
use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Format version this reader understands (`u32` at the start of the file).
const SUPPORTED_VERSION: u32 = 6;

/// One variable of a CTranslate2 model, still in its stored dtype.
#[derive(Debug, Clone)]
pub(crate) struct Ct2Var {
    pub dims: Vec<usize>,
    pub dtype: Ct2DType,
    pub data: Vec<u8>,
}

/// Element types of CTranslate2 variables (the `u8` code in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ct2DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl Ct2DType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::BF16,
            _ => return None,
        })
    }
    fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }
}

/// A parsed `model.bin`: its spec name and variables, aliases resolved to copies of their target.
#[derive(Debug)]
pub(crate) struct Ct2Model {
    pub path: PathBuf,
    pub spec: String,
    pub vars: HashMap<String, Ct2Var>,
    /// `alias → target`, as stored.
    pub aliases: HashMap<String, String>,
}

impl Ct2Model {
    /// Reads and parses the whole file.
    pub fn read(path: &Path) -> Result<Self, VoiceError> {
        crate::error::require_file(path)?;
        let bytes = std::fs::read(path)?;
        Self::parse(path, &bytes)
    }

    fn parse(path: &Path, bytes: &[u8]) -> Result<Self, VoiceError> {
        let fmt = |reason: String| VoiceError::ModelFormat {
            path: path.to_path_buf(),
            reason,
        };
        let mut r = Reader { buf: bytes, pos: 0 };
        let version = r.u32().map_err(fmt)?;
        if version != SUPPORTED_VERSION {
            return Err(fmt(format!(
                "CTranslate2 model format version {version}, only {SUPPORTED_VERSION} is supported"
            )));
        }
        let spec = r.string().map_err(fmt)?;
        let _revision = r.u32().map_err(fmt)?;
        let n_vars = r.u32().map_err(fmt)? as usize;
        let mut vars = HashMap::with_capacity(n_vars);
        for _ in 0..n_vars {
            let name = r.string().map_err(fmt)?;
            let rank = usize::from(r.u8().map_err(fmt)?);
            let dims = (0..rank)
                .map(|_| r.u32().map(|d| d as usize))
                .collect::<Result<Vec<_>, _>>()
                .map_err(fmt)?;
            let code = r.u8().map_err(fmt)?;
            let dtype = Ct2DType::from_code(code)
                .ok_or_else(|| fmt(format!("{name}: unknown dtype code {code}")))?;
            let n_bytes = r.u32().map_err(fmt)? as usize;
            let expected = dims.iter().product::<usize>() * dtype.size();
            if n_bytes != expected {
                return Err(fmt(format!(
                    "{name}: {n_bytes} bytes stored, shape {dims:?} of {dtype:?} needs {expected}"
                )));
            }
            let data = r.take(n_bytes).map_err(fmt)?.to_vec();
            vars.insert(name, Ct2Var { dims, dtype, data });
        }
        let mut aliases = HashMap::new();
        // Older files may end right after the variables.
        if r.remaining() > 0 {
            let n_aliases = r.u32().map_err(fmt)? as usize;
            for _ in 0..n_aliases {
                let alias = r.string().map_err(fmt)?;
                let target = r.string().map_err(fmt)?;
                aliases.insert(alias, target);
            }
        }
        if r.remaining() != 0 {
            return Err(fmt(format!(
                "{} trailing bytes after the aliases",
                r.remaining()
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            spec,
            vars,
            aliases,
        })
    }

    /// Every variable and alias name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .vars
            .keys()
            .chain(self.aliases.keys())
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// The variable stored under `name`, following an alias if there is one.
    pub fn get(&self, name: &str) -> Result<&Ct2Var, VoiceError> {
        let target = self.aliases.get(name).map(String::as_str).unwrap_or(name);
        self.vars
            .get(target)
            .ok_or_else(|| self.format_error(format!("tensor {name} is missing")))
    }

    /// A scalar integer variable (head counts are stored as `i16`/`i32` scalars).
    fn scalar_int(&self, name: &str) -> Result<usize, VoiceError> {
        let v = self.get(name)?;
        let value = match (v.dtype, v.data.as_slice()) {
            (Ct2DType::I8, [a]) => i64::from(*a as i8),
            (Ct2DType::I16, [a, b]) => i64::from(i16::from_le_bytes([*a, *b])),
            (Ct2DType::I32, [a, b, c, d]) => i64::from(i32::from_le_bytes([*a, *b, *c, *d])),
            _ => {
                return Err(self.format_error(format!(
                    "{name}: expected an integer scalar, got {:?} {:?}",
                    v.dtype, v.dims
                )))
            }
        };
        usize::try_from(value)
            .map_err(|_| self.format_error(format!("{name}: negative value {value}")))
    }

    /// The variable as an f32 tensor on `device`.
    pub fn tensor(&self, name: &str, device: &Device) -> Result<Tensor, VoiceError> {
        let v = self.get(name)?;
        let dtype = match v.dtype {
            Ct2DType::F32 => DType::F32,
            Ct2DType::F16 => DType::F16,
            Ct2DType::BF16 => DType::BF16,
            other => {
                return Err(self.format_error(format!(
                "{name} is stored as {other:?}; only float models (f32/f16/bf16) are supported, \
                     convert with --quantization float16"
            )))
            }
        };
        let t = Tensor::from_raw_buffer(&v.data, dtype, &v.dims, device)?;
        Ok(t.to_dtype(DType::F32)?)
    }

    fn format_error(&self, reason: String) -> VoiceError {
        VoiceError::ModelFormat {
            path: self.path.clone(),
            reason,
        }
    }

    /// Number of `{prefix}/layer_N/…` blocks.
    fn count_layers(&self, prefix: &str) -> usize {
        let start = format!("{prefix}/layer_");
        self.vars
            .keys()
            .filter_map(|k| {
                k.strip_prefix(&start)?
                    .split('/')
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// Model dimensions read from the tensors themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WhisperDims {
    pub n_mels: usize,
    pub n_audio_ctx: usize,
    pub n_state: usize,
    pub n_audio_head: usize,
    pub n_audio_layer: usize,
    pub n_vocab: usize,
    pub n_text_ctx: usize,
    pub n_text_head: usize,
    pub n_text_layer: usize,
}

impl WhisperDims {
    pub fn read(m: &Ct2Model) -> Result<Self, VoiceError> {
        if m.spec != "WhisperSpec" {
            return Err(m.format_error(format!("spec {:?} is not a Whisper model", m.spec)));
        }
        let dims = |name: &str, rank: usize| -> Result<Vec<usize>, VoiceError> {
            let v = m.get(name)?;
            if v.dims.len() == rank {
                Ok(v.dims.clone())
            } else {
                Err(m.format_error(format!("{name}: expected rank {rank}, got {:?}", v.dims)))
            }
        };
        let conv1 = dims("encoder/conv1/weight", 3)?;
        let enc_pos = dims("encoder/position_encodings/encodings", 2)?;
        let emb = dims("decoder/embeddings/weight", 2)?;
        let dec_pos = dims("decoder/position_encodings/encodings", 2)?;
        Ok(Self {
            n_mels: conv1[1],
            n_audio_ctx: enc_pos[0],
            n_state: conv1[0],
            n_audio_head: m.scalar_int("encoder/num_heads")?,
            n_audio_layer: m.count_layers("encoder"),
            n_vocab: emb[0],
            n_text_ctx: dec_pos[0],
            n_text_head: m.scalar_int("decoder/num_heads")?,
            n_text_layer: m.count_layers("decoder"),
        })
    }

    /// Whisper's own rule: multilingual checkpoints have the larger vocabulary.
    pub fn is_multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }
}

/// Builds the tensors candle-transformers' `whisper::model::Whisper` loads, under its
/// Hugging Face names (`model.encoder.layers.0.self_attn.q_proj.weight`, …), as f32.
pub(crate) fn hf_tensors(
    m: &Ct2Model,
    dims: &WhisperDims,
    device: &Device,
) -> Result<HashMap<String, Tensor>, VoiceError> {
    let mut out = HashMap::new();
    let d = dims.n_state;
    let mut put = |hf: String, t: Tensor| {
        out.insert(hf, t);
    };
    let copy_linear =
        |put: &mut dyn FnMut(String, Tensor), ct2: &str, hf: &str| -> Result<(), VoiceError> {
            put(
                format!("{hf}.weight"),
                m.tensor(&format!("{ct2}/weight"), device)?,
            );
            put(
                format!("{hf}.bias"),
                m.tensor(&format!("{ct2}/bias"), device)?,
            );
            Ok(())
        };
    let copy_norm =
        |put: &mut dyn FnMut(String, Tensor), ct2: &str, hf: &str| -> Result<(), VoiceError> {
            put(
                format!("{hf}.weight"),
                m.tensor(&format!("{ct2}/gamma"), device)?,
            );
            put(
                format!("{hf}.bias"),
                m.tensor(&format!("{ct2}/beta"), device)?,
            );
            Ok(())
        };
    // Fused projections: rows [0, d) are the first part, [d, 2d) the second, …
    let split = |put: &mut dyn FnMut(String, Tensor),
                 ct2: &str,
                 hf: &str,
                 parts: &[&str]|
     -> Result<(), VoiceError> {
        let w = m.tensor(&format!("{ct2}/weight"), device)?;
        let b = m.tensor(&format!("{ct2}/bias"), device)?;
        let rows = w.dim(0)?;
        if rows != parts.len() * d {
            return Err(m.format_error(format!(
                "{ct2}/weight has {rows} rows, expected {} fused",
                parts.len() * d
            )));
        }
        for (i, part) in parts.iter().enumerate() {
            put(
                format!("{hf}.{part}.weight"),
                w.narrow(0, i * d, d)?.contiguous()?,
            );
            let bias = b.narrow(0, i * d, d)?.contiguous()?;
            if *part == "k_proj" {
                // Whisper's key projection has no bias; the converter stores zeros there.
                let max = bias.abs()?.max(0)?.to_scalar::<f32>()?;
                if max != 0.0 {
                    tracing::warn!(
                        tensor = ct2,
                        max,
                        "non-zero key bias ignored: candle's Whisper has none"
                    );
                }
            } else {
                put(format!("{hf}.{part}.bias"), bias);
            }
        }
        Ok(())
    };

    // The self-attention and feed-forward parts every encoder and decoder layer has.
    let self_attention_and_ffn =
        |put: &mut dyn FnMut(String, Tensor), c: &str, h: &str| -> Result<(), VoiceError> {
            split(
                put,
                &format!("{c}/self_attention/linear_0"),
                &format!("{h}.self_attn"),
                &["q_proj", "k_proj", "v_proj"],
            )?;
            copy_linear(
                put,
                &format!("{c}/self_attention/linear_1"),
                &format!("{h}.self_attn.out_proj"),
            )?;
            copy_norm(
                put,
                &format!("{c}/self_attention/layer_norm"),
                &format!("{h}.self_attn_layer_norm"),
            )?;
            copy_linear(put, &format!("{c}/ffn/linear_0"), &format!("{h}.fc1"))?;
            copy_linear(put, &format!("{c}/ffn/linear_1"), &format!("{h}.fc2"))?;
            copy_norm(
                put,
                &format!("{c}/ffn/layer_norm"),
                &format!("{h}.final_layer_norm"),
            )
        };

    // Encoder.
    copy_linear(&mut put, "encoder/conv1", "model.encoder.conv1")?;
    copy_linear(&mut put, "encoder/conv2", "model.encoder.conv2")?;
    for i in 0..dims.n_audio_layer {
        let c = format!("encoder/layer_{i}");
        let h = format!("model.encoder.layers.{i}");
        self_attention_and_ffn(&mut put, &c, &h)?;
    }
    copy_norm(&mut put, "encoder/layer_norm", "model.encoder.layer_norm")?;

    // Decoder.
    let embeddings = m.tensor("decoder/embeddings/weight", device)?;
    // candle ties the output projection to the token embeddings; the file must agree.
    let projection = m.tensor("decoder/projection/weight", device)?;
    let diff = (&projection - &embeddings)?
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f32>()?;
    if diff != 0.0 {
        return Err(m.format_error(format!(
            "decoder/projection/weight differs from decoder/embeddings/weight (max diff {diff}); \
             untied output projections are not supported"
        )));
    }
    put("model.decoder.embed_tokens.weight".into(), embeddings);
    put(
        "model.decoder.embed_positions.weight".into(),
        m.tensor("decoder/position_encodings/encodings", device)?,
    );
    for i in 0..dims.n_text_layer {
        let c = format!("decoder/layer_{i}");
        let h = format!("model.decoder.layers.{i}");
        self_attention_and_ffn(&mut put, &c, &h)?;
        copy_linear(
            &mut put,
            &format!("{c}/attention/linear_0"),
            &format!("{h}.encoder_attn.q_proj"),
        )?;
        split(
            &mut put,
            &format!("{c}/attention/linear_1"),
            &format!("{h}.encoder_attn"),
            &["k_proj", "v_proj"],
        )?;
        copy_linear(
            &mut put,
            &format!("{c}/attention/linear_2"),
            &format!("{h}.encoder_attn.out_proj"),
        )?;
        copy_norm(
            &mut put,
            &format!("{c}/attention/layer_norm"),
            &format!("{h}.encoder_attn_layer_norm"),
        )?;
    }
    copy_norm(&mut put, "decoder/layer_norm", "model.decoder.layer_norm")?;
    Ok(out)
}

/// Little-endian cursor over the file's bytes; errors are plain strings the caller wraps.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "file truncated: needed {n} bytes at offset {}, file has {}",
                    self.pos,
                    self.buf.len()
                )
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let mut b = [0u8; 2];
        self.take(2)?
            .read_exact(&mut b)
            .map_err(|e| e.to_string())?;
        Ok(u16::from_le_bytes(b))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let mut b = [0u8; 4];
        self.take(4)?
            .read_exact(&mut b)
            .map_err(|e| e.to_string())?;
        Ok(u32::from_le_bytes(b))
    }
    /// `u16` length including the trailing NUL, then the bytes.
    fn string(&mut self) -> Result<String, String> {
        let n = usize::from(self.u16()?);
        let raw = self.take(n)?;
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        String::from_utf8(raw.to_vec()).map_err(|e| format!("name is not UTF-8: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    #[test]
    fn parses_variables_and_aliases() {
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        push_str(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        push_str(&mut b, "decoder/embeddings/weight");
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.push(0);
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&1.5f32.to_le_bytes());
        b.extend_from_slice(&(-2f32).to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        push_str(&mut b, "decoder/projection/weight");
        push_str(&mut b, "decoder/embeddings/weight");
        let m = Ct2Model::parse(Path::new("mem"), &b).expect("parse");
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(
            m.names(),
            vec!["decoder/embeddings/weight", "decoder/projection/weight"]
        );
        let t = m
            .tensor("decoder/projection/weight", &Device::Cpu)
            .expect("tensor");
        assert_eq!(
            t.to_vec2::<f32>().expect("vec"),
            vec![vec![1.5], vec![-2.0]]
        );
    }

    #[test]
    fn truncated_file_is_a_format_error() {
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        push_str(&mut b, "WhisperSpec");
        let err = Ct2Model::parse(Path::new("mem"), &b).expect_err("truncated");
        assert!(matches!(err, VoiceError::ModelFormat { .. }), "{err}");
    }
}
