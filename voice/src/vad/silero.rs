//! Silero VAD through sherpa-rs (sherpa-onnx's C API from the PyPI wheel).
