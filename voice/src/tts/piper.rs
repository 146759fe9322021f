//! Piper TTS through piper-rs (onnxruntime loaded dynamically from the PyPI wheel).
