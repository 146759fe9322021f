//! Whisper on candle: loads the CTranslate2 `model.bin` shipped in registry packages, computes
//! the log-mel front end and decodes greedily with the language forced per call.
