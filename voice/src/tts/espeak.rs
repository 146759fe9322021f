//! Speech through the espeak-ng command-line synthesizer (`espeak-ng --stdout -v <voice>`), used
//! for Mandarin (`cmn`) and usable with any espeak-ng voice.
//!
//! A stop-gap: espeak-ng's formant voice is intelligible but robotic (Whisper transcribes it
//! badly), and it stays only until a Mandarin neural voice exists behind the same
//! [`TextToSpeech`] trait. It runs the Debian `espeak-ng` program with its own data, one process
//! per sentence (a few tens of milliseconds each), so it shares no state with the espeak-ng
//! library Piper links.

use super::{synthesize_by_sentence, Chunking, SynthesisStats, TextToSpeech};
use crate::audio::AudioChunk;
use crate::{Language, VoiceConfig, VoiceError};
use std::io::Read;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tokio_util::sync::CancellationToken;

const ENGINE: &str = "espeak-ng";
const INSTALL_HINT: &str =
    "install it with `apt-get install espeak-ng espeak-ng-data` (scripts/setup.sh does)";

/// An espeak-ng voice speaking one language.
#[derive(Debug, Clone)]
pub struct EspeakTts {
    program: PathBuf,
    voice: String,
    languages: [Language; 1],
    sample_rate: u32,
}

impl EspeakTts {
    /// The Mandarin voice named in `config` (`espeak_voice_zh`, `cmn` by default).
    pub fn load(config: &VoiceConfig) -> Result<Self, VoiceError> {
        Self::new(
            Path::new("espeak-ng"),
            &config.espeak_voice_zh,
            Language::Chinese,
        )
    }

    /// Checks that `program` runs and knows `voice` (by speaking a probe word, which also tells
    /// the sample rate), and returns an engine speaking `language` with it.
    pub fn new(program: &Path, voice: &str, language: Language) -> Result<Self, VoiceError> {
        if voice.is_empty() || voice.starts_with('-') {
            return Err(VoiceError::InvalidInput(format!(
                "{voice:?} is not an espeak-ng voice name"
            )));
        }
        let mut engine = Self {
            program: program.to_path_buf(),
            voice: voice.to_owned(),
            languages: [language],
            sample_rate: 0,
        };
        let (sample_rate, samples) = engine.run("a")?;
        if samples.is_empty() {
            return Err(VoiceError::engine(
                ENGINE,
                format!("voice {voice:?} produced no audio for a probe word"),
            ));
        }
        engine.sample_rate = sample_rate;
        Ok(engine)
    }

    /// Runs espeak-ng on one piece of text; returns its sample rate and samples.
    fn run(&self, text: &str) -> Result<(u32, Vec<i16>), VoiceError> {
        let output = Command::new(&self.program)
            .args(["--stdout", "-b", "1", "-v", &self.voice, "--"])
            .arg(text)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                let reason = if e.kind() == std::io::ErrorKind::NotFound {
                    format!(
                        "program {} not found: {INSTALL_HINT}",
                        self.program.display()
                    )
                } else {
                    format!("could not run {}: {e}", self.program.display())
                };
                VoiceError::engine(ENGINE, reason)
            })?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        // espeak-ng exits 0 even for an unknown voice; it then writes nothing to stdout.
        if !output.status.success() || output.stdout.is_empty() {
            return Err(VoiceError::engine(
                ENGINE,
                format!(
                    "voice {:?} failed ({}): {} — `espeak-ng --voices` lists the voices",
                    self.voice,
                    output.status,
                    stderr.trim()
                ),
            ));
        }
        parse_wav_stream(&output.stdout)
    }
}

/// Reads espeak-ng's WAV from a pipe. Its header announces a huge data length because the
/// length is unknown when streaming, so the samples are simply what follows the header.
fn parse_wav_stream(bytes: &[u8]) -> Result<(u32, Vec<i16>), VoiceError> {
    let reader = hound::WavReader::new(std::io::Cursor::new(bytes))?;
    let spec = reader.spec();
    if spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(VoiceError::engine(
            ENGINE,
            format!("unexpected WAV format {spec:?}"),
        ));
    }
    let mut data = Vec::new();
    reader.into_inner().read_to_end(&mut data)?;
    let samples = data
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    Ok((spec.sample_rate, samples))
}

impl TextToSpeech for EspeakTts {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn languages(&self) -> &[Language] {
        &self.languages
    }

    fn synthesize(
        &self,
        text: &str,
        language: Language,
        cancel: &CancellationToken,
        sink: &mut dyn FnMut(AudioChunk) -> ControlFlow<()>,
    ) -> Result<SynthesisStats, VoiceError> {
        if !self.languages.contains(&language) {
            return Err(VoiceError::InvalidInput(format!(
                "espeak-ng voice {:?} speaks {:?}, not {:?}",
                self.voice,
                self.languages[0].code(),
                language.code()
            )));
        }
        synthesize_by_sentence(
            text,
            Chunking::Sentences,
            self.sample_rate,
            cancel,
            sink,
            |sentence| {
                let (sample_rate, samples) = self.run(sentence)?;
                if sample_rate != self.sample_rate {
                    return Err(VoiceError::engine(
                        ENGINE,
                        format!(
                            "sample rate changed from {} to {sample_rate} Hz",
                            self.sample_rate
                        ),
                    ));
                }
                Ok(samples)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_program_says_how_to_install() {
        let err = EspeakTts::new(
            Path::new("/nonexistent/espeak-ng"),
            "cmn",
            Language::Chinese,
        )
        .expect_err("a missing program must fail");
        assert!(
            err.to_string().contains("apt-get install espeak-ng"),
            "{err}"
        );
    }

    #[test]
    fn streamed_wav_header_is_skipped() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"RIFF\x24\xf0\xff\x7fWAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00");
        bytes.extend_from_slice(&22050u32.to_le_bytes());
        bytes.extend_from_slice(&44100u32.to_le_bytes());
        bytes.extend_from_slice(b"\x02\x00\x10\x00data\x00\xf0\xff\x7f");
        bytes.extend_from_slice(&[1, 0, 0xff, 0xff]);
        let (rate, samples) = parse_wav_stream(&bytes).expect("valid header");
        assert_eq!((rate, samples), (22050, vec![1, -1]));
    }
}
