//! Telephony audio plumbing on the recorded speech clips in `tests/data`: the phone-line
//! simulation, streaming resampling and call recording, on real voices rather than tones.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use voice::audio::{
    read_wav, resample, telephone_band, CallRecorder, StreamResampler, FRAME_MS, SAMPLE_RATE,
    TELEPHONE_RATE,
};

/// The system allocator, counting allocations made by the current thread (tests run in
/// parallel threads, so a global count would mix them up).
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

/// Every `asr_*.wav` clip in `tests/data` (all 16 kHz mono speech).
fn speech_clips() -> anyhow::Result<Vec<PathBuf>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut clips: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    clips.retain(|p| {
        p.extension().is_some_and(|e| e == "wav")
            && p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("asr_"))
    });
    clips.sort();
    anyhow::ensure!(!clips.is_empty(), "no speech clips in {}", dir.display());
    Ok(clips)
}

fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt().max(1e-9)
}

#[test]
fn speech_over_the_phone_line_keeps_length_timing_and_most_of_the_signal() -> anyhow::Result<()> {
    for clip in speech_clips()? {
        let audio = read_wav(&clip)?;
        anyhow::ensure!(audio.sample_rate == SAMPLE_RATE, "{}", clip.display());
        let line = telephone_band(&audio.samples)?;
        assert!(
            line.len().abs_diff(audio.samples.len()) <= 1,
            "{}: {} → {}",
            clip.display(),
            audio.samples.len(),
            line.len()
        );
        // Speech lives mostly below 3.7 kHz: the waveform stays close, at the same timing.
        let corr = correlation(&audio.samples, &line);
        assert!(corr > 0.9, "{}: correlation {corr:.3}", clip.display());
    }
    Ok(())
}

#[test]
fn streaming_speech_in_frames_equals_one_shot() -> anyhow::Result<()> {
    for clip in speech_clips()? {
        let audio = read_wav(&clip)?;
        for (from, to) in [(SAMPLE_RATE, TELEPHONE_RATE), (SAMPLE_RATE, 22_050)] {
            let whole = resample(&audio.samples, from, to)?;
            let mut stream = StreamResampler::new(from, to)?;
            let mut streamed = Vec::with_capacity(whole.len());
            for frame in audio.samples.chunks((from * FRAME_MS / 1000) as usize) {
                stream.process(frame, &mut streamed)?;
            }
            stream.finish(&mut streamed)?;
            assert_eq!(streamed, whole, "{} {from} → {to}", clip.display());
        }
    }
    Ok(())
}

#[test]
fn a_call_of_two_voices_records_to_two_channels() -> anyhow::Result<()> {
    let clips = speech_clips()?;
    let caller = read_wav(&clips[0])?.samples;
    let bot = read_wav(&clips[clips.len() - 1])?.samples;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("call.wav");

    // The caller talks, then the bot answers while the caller line carries silence.
    let mut rec = CallRecorder::create(&path, SAMPLE_RATE)?;
    for frame in caller.chunks(320) {
        rec.push_caller(frame)?;
    }
    rec.align()?;
    for frame in bot.chunks(320) {
        rec.push_bot(frame)?;
        rec.push_caller(&vec![0; frame.len()])?;
    }
    let info = rec.finish()?;
    assert_eq!(info.frames as usize, caller.len() + bot.len());

    let mut reader = hound::WavReader::open(&path)?;
    assert_eq!(reader.spec().channels, 2);
    let samples: Vec<i16> = reader.samples::<i16>().collect::<Result<_, _>>()?;
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    assert_eq!(&left[..caller.len()], &caller[..]);
    assert!(left[caller.len()..].iter().all(|&s| s == 0));
    assert!(right[..caller.len()].iter().all(|&s| s == 0));
    assert_eq!(&right[caller.len()..], &bot[..]);
    Ok(())
}

#[test]
fn streaming_resampler_does_not_allocate_per_frame() -> anyhow::Result<()> {
    // The counter does see this thread's allocations.
    let probe = allocations();
    drop(std::hint::black_box(vec![1u8; 16]));
    assert!(allocations() > probe);

    let speech = read_wav(&speech_clips()?[0])?.samples;
    for (from, to) in [
        (TELEPHONE_RATE, SAMPLE_RATE),
        (SAMPLE_RATE, TELEPHONE_RATE),
        (22_050, SAMPLE_RATE),
    ] {
        let input = resample(&speech, SAMPLE_RATE, from)?;
        let frame = (from * FRAME_MS / 1000) as usize;
        let mut stream = StreamResampler::new(from, to)?;
        let mut out = Vec::with_capacity(4 * frame);
        // Warm up: first blocks, first output.
        for chunk in input.chunks(frame).take(5) {
            out.clear();
            stream.process(chunk, &mut out)?;
        }
        let before = allocations();
        for chunk in input.chunks(frame).skip(5) {
            out.clear();
            stream.process(chunk, &mut out)?;
        }
        let made = allocations() - before;
        assert_eq!(made, 0, "{from} → {to}: {made} allocations in steady state");
    }
    Ok(())
}
