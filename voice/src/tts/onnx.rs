//! onnxruntime for the neural voices (Piper and the Mandarin FastSpeech2): the library loaded
//! once per process from the PyPI wheel's file, and sessions opened one way for every model.

use crate::error::require_file;
use crate::VoiceError;
use ort::session::Session;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The onnxruntime library this process loaded (or the reason it could not).
static ORT_LIB: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Loads onnxruntime from `lib` once per process. The file is checked first: ort rc.12 was seen
/// to hang, not fail, when the library is missing.
pub(crate) fn init_onnxruntime(lib: &Path) -> Result<(), VoiceError> {
    require_file(lib)?;
    let lib = lib.canonicalize()?;
    let loaded = ORT_LIB.get_or_init(|| {
        // An absolute path, so the loader never picks up another libonnxruntime.so already in
        // the process (sherpa-onnx brings an older one) by its name.
        match ort::init_from(&lib) {
            Ok(environment) => {
                environment.with_name("voice").commit();
                tracing::info!(lib = %lib.display(), "loaded onnxruntime");
                Ok(lib.clone())
            }
            Err(e) => Err(e.to_string()),
        }
    });
    match loaded {
        Ok(first) if *first != lib => {
            tracing::warn!(
                loaded = %first.display(),
                requested = %lib.display(),
                "onnxruntime is already loaded from another file; keeping it"
            );
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(reason) => Err(VoiceError::engine(
            "onnxruntime",
            format!(
                "{reason} (onnxruntime 1.24 from scripts/models.lock is expected: run scripts/setup.sh)"
            ),
        )),
    }
}

/// Opens `model` on the loaded onnxruntime. `threads` caps the threads one inference uses
/// (within and across operators); `None` keeps onnxruntime's default (one per core).
pub(crate) fn open_session(model: &Path, threads: Option<usize>) -> Result<Session, VoiceError> {
    let format_error = |e: &dyn std::fmt::Display| VoiceError::ModelFormat {
        path: model.to_path_buf(),
        reason: e.to_string(),
    };
    let mut builder = Session::builder().map_err(|e| format_error(&e))?;
    if let Some(threads) = threads {
        builder = builder
            .with_intra_threads(threads)
            .map_err(|e| format_error(&e))?;
        builder = builder
            .with_inter_threads(threads)
            .map_err(|e| format_error(&e))?;
    }
    builder
        .commit_from_file(model)
        .map_err(|e| format_error(&e))
}
