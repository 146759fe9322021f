//! Mandarin speech through espeak-ng's `cmn` voice, until a Chinese neural voice is available.
