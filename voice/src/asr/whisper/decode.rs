//! Decoding for one audio window: the forced start sequence, token suppression, a loop guard
//! against repeated n-grams of any length, against a stretch of words or characters said again
//! anywhere in the text ([`tandem_repeat_at`]) and against a decode that starts its utterance
//! over in other words ([`restart_at`]), average log-probability and the no-speech probability,
//! drafts (the previous hypothesis) verified in one pass, and sampling at a temperature for the
//! fallback (Whisper's reference decoding: a suspect greedy result, by [`compression_ratio`],
//! log-probability or the loop guard, is decoded again hotter).

use super::decoder::{NextTokenScores, TextDecoder, RESCORED_CANDIDATES};
use super::tokens::SpecialTokens;
use crate::{Language, VoiceError};
use candle_core::{IndexOp, Tensor};
use candle_transformers::models::whisper::model::Whisper;
use std::sync::atomic::{AtomicBool, Ordering};

/// The error of a decode stopped by its submitter (nobody waits for it).
pub(crate) fn cancelled() -> VoiceError {
    VoiceError::engine("whisper", "the decode was cancelled")
}

/// What one greedy pass produced.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decoded {
    /// Text tokens (no special tokens), after the loop guard cut any repetition.
    pub tokens: Vec<u32>,
    /// Sum of the chosen tokens' log-probabilities, `<|endoftext|>` included when it was reached.
    pub sum_logprob: f32,
    /// Probability of `<|nocaptions|>` at the start-of-transcript position.
    pub no_speech_prob: f32,
    /// True when the loop guard stopped decoding.
    pub looped: bool,
    /// Decoder forward passes run (one for the prefix and draft, one per further token).
    pub passes: usize,
    /// Draft tokens the greedy choice agreed with.
    pub draft_accepted: usize,
}

impl Decoded {
    /// Whisper's `avg_logprob`: the sum over text tokens plus end-of-text, divided by their count.
    pub fn avg_logprob(&self) -> f32 {
        self.sum_logprob / (self.tokens.len() + 1) as f32
    }
}

/// Inputs of one pass that do not depend on the audio.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DecodeRequest<'a> {
    /// `<|startofprev|>` + prompt tokens (may be empty), then the start-of-transcript sequence.
    pub prefix: &'a [u32],
    /// Index of `<|startoftranscript|>` in `prefix`.
    pub sot_index: usize,
    pub special: &'a SpecialTokens,
    /// Token ids never sampled (config's `suppress_ids`, every special token but end-of-text).
    pub suppress: &'a [u32],
    /// Additionally suppressed at the first step (config's `suppress_ids_begin`).
    pub suppress_begin: &'a [u32],
    /// Most text tokens to produce.
    pub max_tokens: usize,
    /// 0 for greedy decoding; above 0, tokens are sampled from the softmax of the logits
    /// divided by it (the temperature fallback), with a generator seeded by `seed`.
    pub temperature: f32,
    pub seed: u64,
}

/// Whisper's reference thresholds: a decode whose text compresses better than this (zlib) is
/// repetitive and is decoded again at a higher temperature…
pub(crate) const COMPRESSION_RATIO_THRESHOLD: f32 = 2.4;
/// …and so is one whose average log-probability is below this (unless it is silence).
pub(crate) const FALLBACK_LOGPROB_THRESHOLD: f32 = -1.0;

/// Whisper's `compression_ratio`: UTF-8 length of `text` over its zlib-compressed length
/// (default level). Normal speech is below 2; a sentence said three times is near 3.
pub(crate) fn compression_ratio(text: &str) -> f32 {
    use std::io::Write;
    if text.is_empty() {
        return 0.0;
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let compressed = z.write_all(text.as_bytes()).and_then(|()| z.finish());
    compressed.map_or(0.0, |c| text.len() as f32 / c.len().max(1) as f32)
}

/// Sampling at a temperature, with a seeded generator (splitmix64), so a fallback decode of
/// the same audio gives the same text every time.
struct Sampler {
    temperature: f32,
    state: u64,
}

impl Sampler {
    fn for_request(req: &DecodeRequest<'_>) -> Option<Self> {
        (req.temperature > 0.0).then_some(Self {
            temperature: req.temperature,
            state: req.seed,
        })
    }

    /// Uniform in [0, 1).
    fn next_unit(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A token drawn from `softmax(logprobs / temperature)`.
    fn draw(&mut self, logprobs: &[f32]) -> Option<u32> {
        let max = logprobs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if !max.is_finite() {
            return None;
        }
        let t = f64::from(self.temperature);
        let weight = |lp: f32| (f64::from(lp - max) / t).exp();
        let total: f64 = logprobs.iter().map(|&lp| weight(lp)).sum();
        let mut u = self.next_unit() * total;
        let mut last = None;
        for (id, &lp) in logprobs.iter().enumerate() {
            let w = weight(lp);
            if w > 0.0 {
                last = Some(id as u32);
                if u < w {
                    return last;
                }
                u -= w;
            }
        }
        last
    }
}

/// Runs the decoder greedily over `audio_features` (the encoder output), with fresh caches.
///
/// `draft` is a guess of the text tokens (the previous decode of the same, shorter audio). It is
/// fed in one pass with the prefix, and kept for as long as the greedy choice agrees with it, so
/// the tokens are exactly those of plain greedy decoding, but the agreed part costs one batched
/// pass instead of one pass per token.
///
/// `stop` is checked before every decoder pass: once set, decoding ends with [`cancelled`].
pub(crate) fn greedy(
    decoder: &TextDecoder,
    audio_features: &Tensor,
    req: &DecodeRequest<'_>,
    draft: &[u32],
    stop: &AtomicBool,
) -> Result<Decoded, VoiceError> {
    let mut state = decoder.start(audio_features)?;
    let mut tokens: Vec<u32> = req.prefix.to_vec();
    let sample_begin = tokens.len();
    let mut sampler = Sampler::for_request(req);
    // A sampled decode goes its own way: the greedy hypothesis is no use as its draft.
    let draft = if sampler.is_some() { &[] } else { draft };
    let draft = &draft[..draft.len().min(req.max_tokens)];
    let mut first = tokens.clone();
    first.extend_from_slice(draft);
    let hidden = decoder.forward(&first, &mut state)?;
    let mut passes = 1;
    // Rows: the start-of-transcript position (no-speech probability), then the positions whose
    // next token is text token 0, 1, …, draft.len().
    let rows = Tensor::cat(
        &[
            hidden.narrow(0, req.sot_index, 1)?,
            hidden.narrow(0, sample_begin - 1, draft.len() + 1)?,
        ],
        0,
    )?;
    let mut scores = decoder.scores(&rows)?;
    // From the output projection's scores (8-bit ones are close enough for a probability
    // compared with a threshold).
    let at_sot = log_softmax(&scores.row(0)?);
    let no_speech_prob = at_sot
        .get(req.special.no_speech as usize)
        .map_or(0.0, |lp| lp.exp());
    // `scores` row `step - base` holds the scores for text token `step`.
    let mut base: isize = -1;
    let mut draft_live = true;
    let mut draft_accepted = 0;
    let mut sum_logprob = 0f32;
    let mut looped = false;
    for step in 0..req.max_tokens {
        let (next, lp) = choose(
            &scores,
            (step as isize - base) as usize,
            req,
            step,
            sampler.as_mut(),
        )?;
        sum_logprob += lp;
        if next == req.special.eot {
            break;
        }
        tokens.push(next);
        if stop_on_loop(&mut tokens, sample_begin) {
            looped = true;
            break;
        }
        let in_draft = draft_live && step < draft.len();
        if in_draft && next == draft[step] {
            // Already in the cache, and its successor's scores are the next row.
            draft_accepted += 1;
            continue;
        }
        if in_draft {
            state.truncate(sample_begin + step)?;
        }
        draft_live = false;
        if stop.load(Ordering::Relaxed) {
            return Err(cancelled());
        }
        let hidden = decoder.forward(&[next], &mut state)?;
        scores = decoder.scores(&hidden)?;
        passes += 1;
        base = step as isize + 1;
    }
    looped |= cut_trailing_repeat(&mut tokens, sample_begin);
    Ok(Decoded {
        tokens: tokens.split_off(sample_begin),
        sum_logprob,
        no_speech_prob,
        looped,
        passes,
        draft_accepted,
    })
}

/// The greedy choice at `step` from row `i` of `scores` ([`pick`], rescoring 8-bit products).
fn choose(
    scores: &NextTokenScores<'_>,
    i: usize,
    req: &DecodeRequest<'_>,
    step: usize,
    sampler: Option<&mut Sampler>,
) -> Result<(u32, f32), VoiceError> {
    let logits = scores.row(i)?;
    if scores.is_exact() {
        pick(logits, req, step, None, sampler)
    } else {
        let rescore = |ids: &[u32]| scores.exact(i, ids);
        pick(logits, req, step, Some(&rescore), sampler)
    }
}

/// f32 logits of the given token ids at the position being decided.
type Rescore<'a> = &'a dyn Fn(&[u32]) -> Result<Vec<f32>, VoiceError>;

/// The greedy choice at `step`: suppressed tokens masked out, then the most likely token and
/// its log-probability. With `rescore` (the logits are 8-bit products), the best
/// [`RESCORED_CANDIDATES`] are scored again in f32 and the choice is the best of those (the
/// normaliser of the log-probability keeps the 8-bit scores of the rest). With `sampler`, the
/// token is drawn at its temperature instead (from every token); the log-probability returned
/// is always the untempered one, as Whisper's reference sums it.
fn pick(
    mut logits: Vec<f32>,
    req: &DecodeRequest<'_>,
    step: usize,
    rescore: Option<Rescore<'_>>,
    sampler: Option<&mut Sampler>,
) -> Result<(u32, f32), VoiceError> {
    let begin: &[u32] = if step == 0 { req.suppress_begin } else { &[] };
    for &id in req.suppress.iter().chain(begin) {
        if let Some(l) = logits.get_mut(id as usize) {
            *l = f32::NEG_INFINITY;
        }
    }
    let candidates: Vec<u32> = match rescore {
        None => Vec::new(),
        Some(rescore) => {
            let shortlist = top_k(&logits, RESCORED_CANDIDATES);
            for (&id, value) in shortlist.iter().zip(rescore(&shortlist)?) {
                logits[id as usize] = value;
            }
            shortlist
        }
    };
    let logprobs = log_softmax(&logits);
    let best = if let Some(sampler) = sampler {
        sampler.draw(&logprobs)
    } else if candidates.is_empty() {
        logprobs
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(id, _)| id as u32)
    } else {
        candidates
            .iter()
            .copied()
            .max_by(|a, b| logprobs[*a as usize].total_cmp(&logprobs[*b as usize]))
    };
    best.map(|id| (id, logprobs[id as usize]))
        .ok_or_else(|| VoiceError::engine("whisper", "decoder produced no logits"))
}

/// Indices of the `k` largest finite values of `values`, best first.
fn top_k(values: &[f32], k: usize) -> Vec<u32> {
    if k == 0 {
        return Vec::new();
    }
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    for (id, &v) in values.iter().enumerate() {
        if !v.is_finite() || (best.len() == k && v <= best[k - 1].1) {
            continue;
        }
        let at = best.partition_point(|&(_, b)| b >= v);
        best.insert(at, (id as u32, v));
        best.truncate(k);
    }
    best.into_iter().map(|(id, _)| id).collect()
}

/// The loop guard while decoding: when the text now ends in a repeated n-gram
/// ([`repeated_tail`]), cuts the repeat off and says so.
fn stop_on_loop(tokens: &mut Vec<u32>, sample_begin: usize) -> bool {
    cut_repeat(tokens, sample_begin, repeated_tail)
}

/// The end-of-decode half of the loop guard: cuts a repeat the text ended in ([`trailing_repeat`]).
fn cut_trailing_repeat(tokens: &mut Vec<u32>, sample_begin: usize) -> bool {
    cut_repeat(tokens, sample_begin, trailing_repeat)
}

/// Truncates the text tokens after `sample_begin` to the length `find` says to keep, if it
/// finds a repeat.
fn cut_repeat(
    tokens: &mut Vec<u32>,
    sample_begin: usize,
    find: fn(&[u32]) -> Option<usize>,
) -> bool {
    let Some(keep) = find(&tokens[sample_begin..]) else {
        return false;
    };
    tracing::debug!(
        tokens = tokens.len() - sample_begin,
        keep,
        "whisper loop guard: repeated text cut"
    );
    tokens.truncate(sample_begin + keep);
    true
}

/// candle-transformers' own decoder, as decoding was before the caches: every step re-runs all
/// tokens. The reference [`greedy`] is checked against, and the baseline of `asr_bench`.
pub(crate) fn greedy_reference(
    model: &mut Whisper,
    audio_features: &Tensor,
    req: &DecodeRequest<'_>,
) -> Result<Decoded, VoiceError> {
    let device = audio_features.device().clone();
    model.reset_kv_cache();
    let mut tokens: Vec<u32> = req.prefix.to_vec();
    let sample_begin = tokens.len();
    let mut sum_logprob = 0f32;
    let mut no_speech_prob = 0f32;
    let mut looped = false;
    let mut passes = 0;
    let mut sampler = Sampler::for_request(req);
    for step in 0..req.max_tokens {
        passes += 1;
        let input = Tensor::new(tokens.as_slice(), &device)?.unsqueeze(0)?;
        // candle's decoder caches only the cross-attention keys/values; the first step fills them.
        let hidden = model.decoder.forward(&input, audio_features, step == 0)?;
        let last = tokens.len() - 1;
        if step == 0 {
            let at_sot = model
                .decoder
                .final_linear(&hidden.i((.., req.sot_index..req.sot_index + 1))?)?;
            let at_sot: Vec<f32> = at_sot.flatten_all()?.to_vec1()?;
            let logprobs = log_softmax(&at_sot);
            no_speech_prob = logprobs
                .get(req.special.no_speech as usize)
                .map_or(0.0, |lp| lp.exp());
        }
        let logits = model
            .decoder
            .final_linear(&hidden.i((.., last..last + 1))?)?;
        let logits = logits.flatten_all()?.to_vec1()?;
        let (next, lp) = pick(logits, req, step, None, sampler.as_mut())?;
        sum_logprob += lp;
        if next == req.special.eot {
            break;
        }
        tokens.push(next);
        if stop_on_loop(&mut tokens, sample_begin) {
            looped = true;
            break;
        }
    }
    looped |= cut_trailing_repeat(&mut tokens, sample_begin);
    Ok(Decoded {
        tokens: tokens.split_off(sample_begin),
        sum_logprob,
        no_speech_prob,
        looped,
        passes,
        draft_accepted: 0,
    })
}

fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|&l| (l - max).exp()).sum();
    let log_sum = max + sum.ln();
    logits.iter().map(|&l| l - log_sum).collect()
}

/// If `tokens` ends with the same n-gram repeated too often (Whisper's "6-6-6-6…" loops, or a
/// whole sentence said again), returns how many tokens to keep: everything before the
/// repetition plus one copy of the n-gram. n-grams of every length are checked: a limit of 16
/// tokens let a 13-word sentence through four times on noisy phone audio (issue 22).
pub(crate) fn repeated_tail(tokens: &[u32]) -> Option<usize> {
    for n in 1..=tokens.len() / 2 {
        // Longer n-grams need fewer repeats to be a loop rather than speech ("no, no, no"). A
        // phrase of six tokens or more said twice in a row is taken as a loop: base repeated all
        // of asr_en_05 ("Please remove my number from your list.", 8 tokens) three times instead
        // of ending, 24 decoder steps for 8 tokens of text.
        let repeats = match n {
            1 => 8,
            2..=4 => 4,
            5 => 3,
            _ => 2,
        };
        if tokens.len() < n * repeats {
            continue;
        }
        let tail = &tokens[tokens.len() - n..];
        let all_same = (1..repeats).all(|r| {
            let end = tokens.len() - r * n;
            &tokens[end - n..end] == tail
        });
        if all_same {
            return Some(tokens.len() - (repeats - 1) * n);
        }
    }
    None
}

/// Shortest repeat [`trailing_repeat`] cuts, in tokens.
const MIN_TRAILING_REPEAT: usize = 4;

/// Whether a finished decode ends by saying again what it has just said, from its start: a
/// stretch `X Y` followed by `X` again (a whole second copy, or the model ending part-way
/// through one: "Yes, I found the Lord God, go ahead. Yes, I found the Lord"). Whisper stops
/// by itself after such a repeat too often for [`repeated_tail`] to catch it while decoding
/// (a five-token phrase needs three copies there). The repeat must be at least
/// [`MIN_TRAILING_REPEAT`] tokens, half of its period, and hold three different tokens ("no,
/// no, no, no" stays). Returns how many tokens to keep: up to where the repeat starts.
pub(crate) fn trailing_repeat(tokens: &[u32]) -> Option<usize> {
    let len = tokens.len();
    for period in MIN_TRAILING_REPEAT..=len.saturating_sub(MIN_TRAILING_REPEAT) {
        // How many of the last tokens equal the token `period` before them.
        let run = (0..len - period)
            .take_while(|&i| tokens[len - 1 - i] == tokens[len - 1 - i - period])
            .count();
        if run < MIN_TRAILING_REPEAT.max(period.div_ceil(2)) {
            continue;
        }
        let repeat = &tokens[len - run..];
        let distinct = repeat
            .iter()
            .enumerate()
            .filter(|(i, t)| !repeat[..*i].contains(t))
            .count();
        if distinct >= 3 {
            return Some(len - run);
        }
    }
    None
}

/// The units a text is compared in, with their byte offsets: lower-cased words without
/// punctuation (English), or letters and digits one by one (Mandarin, where Whisper also writes
/// Latin words and digits).
fn text_units(text: &str, language: Language) -> Vec<(usize, String)> {
    if language == Language::Chinese {
        return text
            .char_indices()
            .filter(|(_, c)| c.is_alphanumeric())
            .map(|(i, c)| (i, String::from(c)))
            .collect();
    }
    let mut words = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(b)) => {
                let word: String = text[b..i]
                    .chars()
                    .filter(|c| c.is_alphanumeric() || *c == '\'')
                    .flat_map(char::to_lowercase)
                    .collect();
                if !word.is_empty() {
                    words.push((b, word));
                }
                start = None;
            }
            _ => {}
        }
    }
    words
}

/// Units a repeat must run for before [`tandem_repeat_at`] cuts it: the span the ASR corpus
/// test counts as a loop (4 words, or 4 Mandarin characters).
const MIN_TANDEM_UNITS: usize = 4;

/// Where a decode says again, right away, what it has just said: a stretch `X` followed by `X`
/// again, in words (English) or characters (Mandarin), anywhere in the text, not only at its
/// end and with different text after it, which the token guards cannot see ("金344,也有4,也有4,
/// 也有4,也有3", "Work for the project, work for the project, work for the increasing…" from
/// Whisper base on noisy phone audio; in Mandarin a Latin word is several characters, and one
/// character several tokens). The repeat must run for [`MIN_TANDEM_UNITS`] units and a whole
/// period, or half of one when the text ends in it ("I want to know the price. Then I want to
/// know the terms." stays; "no, no, no" and "好的好的" are too short), and hold two units that
/// are not digits, so that numbers read out ("138 0013 8000", "1-3-5-5") are never cut. Returns
/// the byte offset where the repeat begins: the text before it keeps one copy. As with
/// [`restart_at`], what follows the repeat goes too: a caller who really says a phrase twice
/// before going on ("我想问一下我想问一下价格") loses the rest of the turn.
pub(crate) fn tandem_repeat_at(text: &str, language: Language) -> Option<usize> {
    let units = text_units(text, language);
    let numeral = |u: &str| {
        u.chars()
            .all(|c| c.is_ascii_digit() || "零〇一二三四五六七八九十百千万两".contains(c))
    };
    (1..units.len()).find_map(|j| {
        (1..=j).find_map(|period| {
            let run = (j..units.len())
                .take_while(|&k| units[k].1 == units[k - period].1)
                .count();
            let words = units[j..j + run]
                .iter()
                .filter(|(_, u)| !numeral(u))
                .count();
            // A whole copy again, or a part of one the text ends in ("X Y X").
            let whole = run >= MIN_TANDEM_UNITS.max(period);
            let ending = j + run == units.len() && run >= MIN_TANDEM_UNITS.max(period.div_ceil(2));
            ((whole || ending) && words >= 2).then_some(units[j].0)
        })
    })
}

/// Words (English) or characters (Mandarin) a later sentence must begin with, the same as the
/// decode's first sentence, for the decode to count as starting over ([`restart_at`]).
const RESTART_WORDS: usize = 2;
const RESTART_CHARS: usize = 3;

/// Where a decode starts its utterance over: a later sentence that begins like the first one
/// ([`RESTART_WORDS`] words, [`RESTART_CHARS`] Mandarin characters), or an unfinished last
/// sentence that is the first one's beginning. On windows cut to the utterance Whisper often
/// transcribes the audio again instead of ending, in other words each time, which neither the
/// exact-repeat guards nor the compression ratio see on a short text ("I pay $250 last month.
/// I pay $200 and $50 last month. I pay $250", avg log-prob -0.39, from a streamed final on
/// pink noise; "How much does the cost of the money? How"). Returns the byte offset in `text`
/// where the restart begins. A caller who says one opening twice ("I don't know. I don't
/// care.") loses the second sentence: a lost clause costs less than a repeated one.
pub(crate) fn restart_at(text: &str, language: Language) -> Option<usize> {
    let chinese = language == Language::Chinese;
    let units = |sentence: &str| -> Vec<String> {
        text_units(sentence, language)
            .into_iter()
            .map(|(_, u)| u)
            .collect()
    };
    // Sentence starts (byte offsets): after an end mark and a space; in Mandarin, or after a
    // full-width mark, right after it (Whisper writes "多少钱?" too; "2.50" is no sentence end).
    let ends = |c: char| matches!(c, '.' | '?' | '!' | '。' | '？' | '！');
    let mut starts = vec![0];
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if !ends(c) {
            continue;
        }
        let Some(&(j, n)) = chars.peek() else {
            break;
        };
        let decimal = c == '.' && n.is_ascii_digit();
        if n.is_whitespace() {
            starts.push(j + n.len_utf8());
        } else if (chinese || !c.is_ascii()) && !ends(n) && !decimal {
            starts.push(j);
        }
    }
    starts.dedup();
    let sentence = |k: usize| &text[starts[k]..starts.get(k + 1).copied().unwrap_or(text.len())];
    let first = units(sentence(0));
    let need = if chinese {
        RESTART_CHARS
    } else {
        RESTART_WORDS
    };
    (1..starts.len()).find_map(|k| {
        let s = sentence(k);
        let u = units(s);
        let unfinished = k + 1 == starts.len() && !s.trim_end().ends_with(ends);
        let begins_alike = u.len() >= need && first.len() >= need && u[..need] == first[..need];
        let fragment = unfinished && !u.is_empty() && first.starts_with(&u);
        (begins_alike || fragment).then_some(starts[k])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_guard_cuts_repeated_bigrams_to_one_copy() {
        // "6-6-6-6-" as tokens 21, 12.
        let t = [5, 7, 21, 12, 21, 12, 21, 12, 21, 12];
        assert_eq!(repeated_tail(&t), Some(4));
    }

    #[test]
    fn loop_guard_leaves_speech_alone() {
        assert_eq!(repeated_tail(&[1, 2, 3, 4, 5, 6]), None);
        // "no, no, no" — three repeats of a 2-gram is speech.
        assert_eq!(repeated_tail(&[9, 3, 4, 3, 4, 3, 4]), None);
        assert_eq!(repeated_tail(&[]), None);
    }

    #[test]
    fn loop_guard_catches_long_phrases() {
        let phrase = [10, 11, 12, 13, 14, 15];
        let t: Vec<u32> = [1, 2]
            .iter()
            .chain(phrase.iter().cycle().take(18))
            .copied()
            .collect();
        // As decoding sees it, one token at a time: stops at the end of the second copy.
        let stop = (1..=t.len()).find_map(|len| repeated_tail(&t[..len]).map(|keep| (len, keep)));
        assert_eq!(stop, Some((14, 8)));
        // A five-token phrase said twice is still speech.
        assert_eq!(repeated_tail(&[1, 2, 3, 4, 5, 1, 2, 3, 4, 5]), None);
    }

    #[test]
    fn top_k_keeps_the_largest_finite_values_best_first() {
        let v = [0.5, f32::NEG_INFINITY, 3.0, -1.0, 2.0, f32::NAN, 2.0];
        assert_eq!(top_k(&v, 3), vec![2, 4, 6]);
        assert_eq!(top_k(&v, 10), vec![2, 4, 6, 0, 3]);
        assert!(top_k(&[f32::NEG_INFINITY], 2).is_empty());
        assert!(top_k(&v, 0).is_empty());
    }

    #[test]
    fn rescoring_decides_among_the_shortlist_and_honours_suppression() {
        let special = SpecialTokens {
            eot: 0,
            sot: 1,
            sot_prev: 2,
            transcribe: 3,
            no_timestamps: 4,
            no_speech: 5,
        };
        let req = DecodeRequest {
            prefix: &[],
            sot_index: 0,
            special: &special,
            suppress: &[7],
            suppress_begin: &[],
            max_tokens: 4,
            temperature: 0.0,
            seed: 0,
        };
        // 8-bit scores: 7 (suppressed) > 10 > 11 > the rest; exactly, 11 beats 10.
        let mut logits = vec![0.0f32; 20];
        logits[7] = 9.0;
        logits[10] = 5.0;
        logits[11] = 4.9;
        let exact = |ids: &[u32]| -> Result<Vec<f32>, VoiceError> {
            assert!(!ids.contains(&7), "a suppressed token was rescored");
            Ok(ids
                .iter()
                .map(|&id| if id == 11 { 5.2 } else { 4.0 })
                .collect())
        };
        let (id, lp) = pick(logits.clone(), &req, 1, Some(&exact), None).expect("pick");
        assert_eq!(id, 11);
        assert!(lp < 0.0 && lp.is_finite());
        // Without rescoring the 8-bit best (not suppressed) wins.
        assert_eq!(
            pick(logits.clone(), &req, 1, None, None).expect("pick").0,
            10
        );
        // Sampling never draws a suppressed token, and the same seed draws the same tokens.
        let draws = |seed: u64| -> Vec<u32> {
            let hot = DecodeRequest {
                temperature: 1.0,
                seed,
                ..req
            };
            let mut sampler = Sampler::for_request(&hot).expect("a sampler above 0");
            (0..200)
                .map(|_| {
                    pick(logits.clone(), &hot, 1, None, Some(&mut sampler))
                        .expect("pick")
                        .0
                })
                .collect()
        };
        let a = draws(42);
        assert!(!a.contains(&7), "sampled a suppressed token");
        assert_eq!(a, draws(42));
        assert_ne!(a, draws(43));
        // At temperature 1 the likeliest token (10, then 11) is drawn most, but not only.
        let tens = a.iter().filter(|&&t| t == 10).count();
        assert!(
            tens > 60 && tens < 200,
            "token 10 drawn {tens} times of 200"
        );
    }

    #[test]
    fn loop_guard_catches_a_whole_sentence_said_again() {
        // A 20-token sentence (longer than the old 16-token limit) said twice after speech.
        let sentence: Vec<u32> = (100..120).collect();
        let t: Vec<u32> = [1, 2, 3]
            .iter()
            .chain(sentence.iter())
            .chain(sentence.iter())
            .copied()
            .collect();
        let stop = (1..=t.len()).find_map(|len| repeated_tail(&t[..len]).map(|keep| (len, keep)));
        assert_eq!(
            stop,
            Some((43, 23)),
            "cut to one copy at the end of the second"
        );
    }

    #[test]
    fn a_repeat_the_decode_ended_in_is_cut_where_it_starts() {
        // X Y X: the model stopped part-way through a second copy.
        let t = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 4, 5, 6, 7, 8];
        assert_eq!(trailing_repeat(&t), Some(10));
        // A whole second copy of a five-token phrase (the in-loop guard wants three).
        let t = [9, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5];
        assert_eq!(trailing_repeat(&t), Some(6));
        // Speech: no repeat, a short one, or one word said over and over.
        assert_eq!(trailing_repeat(&[1, 2, 3, 4, 5, 6, 7, 8]), None);
        assert_eq!(trailing_repeat(&[1, 2, 3, 4, 5, 6, 7, 8, 7, 8]), None);
        assert_eq!(trailing_repeat(&[5, 3, 5, 3, 5, 3, 5, 3, 5, 3]), None);
        assert_eq!(trailing_repeat(&[7; 12]), None);
        assert_eq!(trailing_repeat(&[]), None);
    }

    #[test]
    fn compression_ratio_flags_repeated_text() {
        let once = "It lives with the critical illness cover for the whole family.";
        let four = [once; 4].join(" ");
        assert!(
            compression_ratio(once) < COMPRESSION_RATIO_THRESHOLD,
            "{}",
            compression_ratio(once)
        );
        assert!(
            compression_ratio(&four) > COMPRESSION_RATIO_THRESHOLD,
            "{}",
            compression_ratio(&four)
        );
        assert_eq!(compression_ratio(""), 0.0);
    }

    #[test]
    fn log_softmax_normalises() {
        let lp = log_softmax(&[1.0, 2.0, f32::NEG_INFINITY]);
        let total: f32 = lp.iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert_eq!(lp[2], f32::NEG_INFINITY);
    }

    #[test]
    fn a_decode_that_starts_its_utterance_over_is_cut_where_it_restarts() {
        let en = Language::English;
        let looped = "I pay $250 last month. I pay $200 and $50 last month. I pay $250";
        let at = restart_at(looped, en).expect("a restart");
        assert_eq!(looped[..at].trim_end(), "I pay $250 last month.");
        let fragment = "how much does the cost of the money? How";
        let at = restart_at(fragment, en).expect("a restarted fragment");
        assert_eq!(
            fragment[..at].trim_end(),
            "how much does the cost of the money?"
        );
        let zh = "我儿子在上学，晚上才回来。我儿子在上学";
        let at = restart_at(zh, Language::Chinese).expect("a Mandarin restart");
        assert_eq!(&zh[..at], "我儿子在上学，晚上才回来。");
        // Speech: one sentence, sentences that begin differently, a finished short sentence,
        // decimals and prices.
        for text in [
            "I'm not interested. Thank you.",
            "I'm not interested, thank you.",
            "No. No, I don't want it.",
            "Yes, that sounds good. Yes.",
            "It costs $2.50 a week. Is that all?",
            "",
        ] {
            assert_eq!(restart_at(text, en), None, "{text:?}");
        }
        assert_eq!(
            restart_at("好的。你把资料发给我吧。", Language::Chinese),
            None
        );
        assert_eq!(restart_at("我不要。我不想要。", Language::Chinese), None);
        // Whisper's Mandarin often ends a sentence with an ASCII mark.
        let ascii = "每个月要多少钱?每个月";
        let at = restart_at(ascii, Language::Chinese).expect("a restart after '?'");
        assert_eq!(&ascii[..at], "每个月要多少钱?");
        assert_eq!(restart_at("一共2.50元。2.50元", Language::Chinese), None);
    }

    #[test]
    fn a_stretch_said_again_is_cut_to_one_copy() {
        let (en, zh) = (Language::English, Language::Chinese);
        let cut = |text: &'static str, language| {
            tandem_repeat_at(text, language).map(|at| text[..at].trim_end())
        };
        // Whisper base on noisy phone audio (the ASR corpus).
        assert_eq!(
            cut("Work for the project, work for the project, work for the increasing for the support", en),
            Some("Work for the project,")
        );
        // The repeat starts where the text first runs periodic: "4也有" said again.
        assert_eq!(cut("金344,也有4,也有4,也有4,也有3", zh), Some("金344,也有"));
        assert_eq!(cut("3CAN4C4C4C1C2C3C1C2C4", zh), Some("3CAN4C"));
        assert_eq!(cut("我N4,N4,N2,N3,N3,N3,N1", zh), Some("我N4,N4,N2,N3,"));
        // Three units again ("撑4 撑"): below the span the corpus test counts as a loop.
        assert_eq!(cut("Made 3 截艾 去 撑4 撑4 撑3 撑2", zh), None);
        assert_eq!(
            cut("Thank you, thank you, thank you.", en),
            Some("Thank you,")
        );
        assert_eq!(cut("我不要了我不要了", zh), Some("我不要了"));
        // Speech: short repeats, numbers read out, a phrase said again later, not right away.
        for text in [
            "No, no, no, I don't want it.",
            "Very, very expensive.",
            "My number is 138 0013 8000, 138 0013 8000.",
            "1-3-5-5-2-1-2-3-3-2-1",
            "I want to know the price. Then I want to know the terms.",
            "",
        ] {
            assert_eq!(cut(text, en), None, "{text:?}");
        }
        for text in [
            "好的好的",
            "对对对",
            "我的电话是13800138000",
            "一三八零零一三八零零零",
        ] {
            assert_eq!(cut(text, zh), None, "{text:?}");
        }
    }

    /// No reference sentence of the ASR corpus is taken for a loop by the text guards.
    #[test]
    fn the_text_guards_leave_every_corpus_sentence_alone() {
        let manifest = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/corpus/corpus.jsonl"
        );
        let manifest = std::fs::read_to_string(manifest).expect("the corpus manifest");
        let mut checked = 0;
        for line in manifest.lines() {
            let clip: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let text = clip["text"].as_str().unwrap_or_default();
            let language = match clip["lang"].as_str() {
                Some("zh") => Language::Chinese,
                _ => Language::English,
            };
            assert_eq!(tandem_repeat_at(text, language), None, "{text:?}");
            assert_eq!(restart_at(text, language), None, "{text:?}");
            checked += usize::from(!text.is_empty());
        }
        assert!(checked > 300, "{checked} sentences");
    }
}
