//! Rewrites a GGUF in another weight type with llama.cpp's own quantizer. The bundled SmolLM2 is
//! published as Q4_1, for which ggml on x86 has only its per-row dot product. Q4_0 weights are
//! repacked at load for ggml's x86 gemv/gemm kernels: one call about twice as fast as Q4_1, but
//! batching 8 calls gains as little over one call as with Q4_1 (BENCHMARKS.md `llm.*`). Q8_0 has
//! no repacked kernel on x86 and no tinyBLAS either in this build (`GGML_LLAMAFILE=OFF`,
//! .cargo/config.toml).

use crate::DialogError;
use std::ffi::CString;
use std::path::Path;

/// Weight types a GGUF can be rewritten to. Every tensor gets the type (norms stay F32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightType {
    /// 8-bit blocks; from Q4_1 it adds at most half a step of 1/127 of each 32-value block's
    /// largest weight.
    Q8_0,
    /// 4-bit blocks: repacked for AVX2 at load; from Q4_1 it loses the per-block offset (a second
    /// rounding: run `qualify` on the result).
    Q4_0,
}

impl WeightType {
    /// Parses `q8_0` / `q4_0` (any case).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "q8_0" => Some(Self::Q8_0),
            "q4_0" => Some(Self::Q4_0),
            _ => None,
        }
    }

    fn ftype(self) -> llama_cpp_sys_2::llama_ftype {
        match self {
            Self::Q8_0 => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q8_0,
            Self::Q4_0 => llama_cpp_sys_2::LLAMA_FTYPE_MOSTLY_Q4_0,
        }
    }
}

/// Writes `src` re-quantized to `to` at `dst` (through `dst` + `.tmp`, renamed when complete, so
/// an interrupted run leaves no half file under the final name). The token embedding (also the
/// output layer of tied models) is kept at Q8_0 or better. Blocks for a few seconds per 100 MB.
pub fn requantize(src: &Path, dst: &Path, to: WeightType, threads: u32) -> Result<(), DialogError> {
    if !src.exists() {
        return Err(DialogError::ModelMissing {
            path: src.to_path_buf(),
        });
    }
    super::llama::backend()?;
    let tmp = dst.with_extension("gguf.tmp");
    let c_path = |p: &Path| {
        CString::new(p.to_string_lossy().into_owned())
            .map_err(|_| DialogError::InvalidRequest(format!("path {} has a NUL", p.display())))
    };
    let (c_src, c_tmp) = (c_path(src)?, c_path(&tmp)?);
    // SAFETY: plain C call returning a struct by value.
    let mut params = unsafe { llama_cpp_sys_2::llama_model_quantize_default_params() };
    params.nthread = i32::try_from(threads).unwrap_or(1).max(1);
    params.ftype = to.ftype();
    params.allow_requantize = true;
    // One type for every weight matrix: no per-tensor mixture chosen by llama.cpp's heuristics.
    params.pure_ = true;
    params.token_embedding_type = llama_cpp_sys_2::GGML_TYPE_Q8_0;
    params.output_tensor_type = llama_cpp_sys_2::GGML_TYPE_Q8_0;
    // SAFETY: both paths are valid NUL-terminated strings and `params` outlives the call; the
    // pointers left in `params` are the defaults' nulls.
    let status =
        unsafe { llama_cpp_sys_2::llama_model_quantize(c_src.as_ptr(), c_tmp.as_ptr(), &params) };
    if status != 0 {
        let _ = std::fs::remove_file(&tmp);
        return Err(DialogError::Llm(format!(
            "llama.cpp could not quantize {} to {to:?} (status {status})",
            src.display()
        )));
    }
    std::fs::rename(&tmp, dst).map_err(|e| {
        DialogError::Llm(format!(
            "moving {} to {}: {e}",
            tmp.display(),
            dst.display()
        ))
    })
}
