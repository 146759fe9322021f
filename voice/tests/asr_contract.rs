//! The [`SpeechToText`] contract, run once against the fake and against Whisper (base, real
//! model from scripts/setup.sh): frames in at the pace a phone line delivers them, at least one
//! partial for a long utterance, a final close to the reference, and a stream that resets after
//! `finish`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use voice::asr::whisper::WhisperAsr;
use voice::asr::FakeAsr;
use voice::audio::read_wav;
use voice::{AsrOptions, SpeechToText};

fn clip() -> (Vec<i16>, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let audio = read_wav(&dir.join("asr_en_01.wav")).expect("test clip");
    let text = std::fs::read_to_string(dir.join("asr_en_01.txt")).expect("reference");
    (audio.samples, text.trim().to_string())
}

fn contract(asr: &dyn SpeechToText, samples: &[i16], reference: &str) {
    assert!(
        samples.len() > 24_000,
        "the contract needs an utterance over 1.5 s"
    );
    let mut stream = asr.start(&AsrOptions::default()).expect("start");
    let mut partials = 0;
    // Real time: a stream may hand a partial back on a later push than the one that asked for
    // it (Whisper decodes on its workers), so the audio must not all arrive at once.
    let started = Instant::now();
    for (i, frame) in samples.chunks(320).enumerate() {
        let due = started + Duration::from_millis(20 * i as u64);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        if let Some(p) = stream.push(frame).expect("push") {
            assert!(!p.is_final, "a partial must not be final");
            partials += 1;
        }
    }
    assert!(
        partials >= 1,
        "no partial for a {} ms utterance",
        samples.len() / 16
    );
    let fin = stream.finish().expect("finish");
    assert!(fin.is_final);
    let norm = |s: &str| {
        s.to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace())
            .collect::<String>()
    };
    assert_eq!(
        norm(&fin.text).split_whitespace().collect::<Vec<_>>(),
        norm(reference).split_whitespace().collect::<Vec<_>>()
    );
    // Reset: nothing pushed since, so the next final is empty and nothing is replayed.
    assert!(stream.finish().expect("finish").text.is_empty());
}

#[test]
fn fake_meets_the_contract() {
    let (samples, reference) = clip();
    contract(
        &FakeAsr {
            script: vec![reference.clone()],
        },
        &samples,
        &reference,
    );
}

#[test]
fn whisper_base_meets_the_contract() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/whisper-base");
    let asr = WhisperAsr::load(&dir, 2).unwrap_or_else(|e| panic!("{e}"));
    let (samples, reference) = clip();
    contract(&asr, &samples, &reference);
}
