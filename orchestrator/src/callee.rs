//! Simulated callees: the far end of a call, played by a persona derived from the customer's
//! profile and segment (price-sensitive, busy, angry, curious, hard refusal, no answer,
//! voicemail, hangs up mid-pitch, interrupts the bot, silent). A callee hears the bot's audio
//! through its own VAD + Whisper, picks its next line by its persona's rules from what it heard
//! (lines in `orchestrator/data/personas.yaml`), and speaks it in a voice unlike the bot's
//! (the bot's voices pitched down and slowed), one 20 ms frame per tick of its
//! line clock, over a [`CalleeLink`]: the in-process line or a real gRPC `Call` stream. Seeded:
//! the same seed gives the same persona, lines and pauses.

use crate::ears::Ears;
use crate::engines::VadFactory;
use crate::session::CallEvent;
use crate::transport::{FarEnd, LineCodec, LineInput};
use anyhow::Context;
use async_trait::async_trait;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use voice::audio::{resample, FRAME_SAMPLES};
use voice::{AsrOptions, Language, Listener, SpeechEvent, SpeechToText, TextToSpeech, SAMPLE_RATE};

const FRAME: u64 = voice::FRAME_MS as u64;

/// How a simulated callee behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonaKind {
    /// Objects to the price; buys after a discount.
    PriceSensitive,
    /// Asks to be called back at a time.
    Busy,
    /// Complains (a hand-off).
    Angry,
    /// Asks what the plan covers, then buys.
    Curious,
    /// Refuses and asks to be taken off the list.
    HardRefusal,
    /// Never picks up.
    NoAnswer,
    /// An answering machine.
    Voicemail,
    /// Hangs up a few seconds into the pitch.
    HangsUpMidPitch,
    /// Talks over the pitch to ask the price, then buys after a discount.
    Interrupter,
    /// Picks up and says nothing.
    Silent,
}

impl PersonaKind {
    pub const ALL: [PersonaKind; 10] = [
        PersonaKind::PriceSensitive,
        PersonaKind::Busy,
        PersonaKind::Angry,
        PersonaKind::Curious,
        PersonaKind::HardRefusal,
        PersonaKind::NoAnswer,
        PersonaKind::Voicemail,
        PersonaKind::HangsUpMidPitch,
        PersonaKind::Interrupter,
        PersonaKind::Silent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PersonaKind::PriceSensitive => "price_sensitive",
            PersonaKind::Busy => "busy",
            PersonaKind::Angry => "angry",
            PersonaKind::Curious => "curious",
            PersonaKind::HardRefusal => "hard_refusal",
            PersonaKind::NoAnswer => "no_answer",
            PersonaKind::Voicemail => "voicemail",
            PersonaKind::HangsUpMidPitch => "hangs_up_mid_pitch",
            PersonaKind::Interrupter => "interrupter",
            PersonaKind::Silent => "silent",
        }
    }

    /// The outcome the dialogue policy should reach with this callee.
    pub fn expected_outcome(self) -> &'static str {
        match self {
            PersonaKind::PriceSensitive | PersonaKind::Curious | PersonaKind::Interrupter => {
                "converted"
            }
            PersonaKind::Busy => "callback",
            PersonaKind::Angry => "handed_off",
            PersonaKind::HardRefusal => "do_not_call",
            PersonaKind::NoAnswer => "no_answer",
            PersonaKind::Voicemail => "voicemail",
            PersonaKind::HangsUpMidPitch => "hung_up",
            PersonaKind::Silent => "no_input",
        }
    }

    /// The persona a customer plays, drawn with `seed` from weights that follow the profile:
    /// price-sensitive customers object to price, those called often before are more often
    /// angry or refuse, parents with children in school are more often curious. A base rate of
    /// no-answer, voicemail, silence, hang-ups and interruptions applies to everyone.
    pub fn for_customer(profile: &retrieval::CustomerProfile, seed: u64) -> Self {
        let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
        for b in profile.customer_id.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(h);
        let price = f64::from(profile.price_sensitivity.unwrap_or(0.5));
        let called = f64::from(profile.calls_so_far.min(5));
        let kids = f64::from(profile.children_in_school.unwrap_or(0).min(3));
        let weights = [
            (PersonaKind::PriceSensitive, 1.0 + 3.0 * price),
            (PersonaKind::Busy, 1.5),
            (PersonaKind::Angry, 0.6 + 0.4 * called),
            (PersonaKind::Curious, 0.8 + 0.5 * kids),
            (PersonaKind::HardRefusal, 0.8 + 0.3 * called),
            (PersonaKind::NoAnswer, 0.8),
            (PersonaKind::Voicemail, 0.5),
            (PersonaKind::HangsUpMidPitch, 0.4),
            (PersonaKind::Interrupter, 0.8),
            (PersonaKind::Silent, 0.3),
        ];
        let total: f64 = weights.iter().map(|(_, w)| w).sum();
        let mut pick = rng.random::<f64>() * total;
        for (kind, w) in weights {
            if pick < w {
                return kind;
            }
            pick -= w;
        }
        PersonaKind::Busy
    }
}

/// A callee's lines per language and kind (`orchestrator/data/personas.yaml`).
#[derive(Debug, Clone, Deserialize)]
pub struct PersonaLines {
    pub en: HashMap<String, Vec<String>>,
    pub zh: HashMap<String, Vec<String>>,
}

impl PersonaLines {
    /// Reads and checks the lines file: every kind the rules use must be there in both languages.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the callee lines {}", path.display()))?;
        let lines: Self = serde_yaml_ng::from_str(&text)
            .with_context(|| format!("parsing the callee lines {}", path.display()))?;
        for (lang, map) in [("en", &lines.en), ("zh", &lines.zh)] {
            for kind in [
                "opening",
                "filler",
                "price",
                "accept",
                "busy",
                "callback_time",
                "question",
                "complaint",
                "refusal",
                "interrupt",
                "voicemail",
            ] {
                if map.get(kind).is_none_or(|v| v.is_empty()) {
                    anyhow::bail!("{}: {lang}.{kind} has no line", path.display());
                }
            }
        }
        Ok(lines)
    }

    /// One of the lines of `kind`, other than `avoid` when there is another: asked to say it
    /// again, people put it differently.
    fn pick(
        &self,
        language: Language,
        kind: &str,
        avoid: Option<&str>,
        rng: &mut ChaCha8Rng,
    ) -> String {
        let map = match language {
            Language::English => &self.en,
            Language::Chinese => &self.zh,
        };
        let Some(lines) = map.get(kind) else {
            return String::new();
        };
        let fresh: Vec<&String> = lines.iter().filter(|l| Some(l.as_str()) != avoid).collect();
        let from = if fresh.is_empty() {
            lines.iter().collect()
        } else {
            fresh
        };
        if from.is_empty() {
            return String::new();
        }
        from[rng.random_range(0..from.len())].clone()
    }
}

/// A voice that sounds lower and slower than the one it wraps: the same samples declared at a
/// lower rate (a callee's voice must not be the bot's).
pub struct PitchedVoice {
    pub inner: Arc<dyn TextToSpeech>,
    /// Below 1 lowers pitch and tempo together.
    pub factor: f32,
}

impl TextToSpeech for PitchedVoice {
    fn sample_rate(&self) -> u32 {
        (self.inner.sample_rate() as f32 * self.factor) as u32
    }

    fn languages(&self) -> &[Language] {
        self.inner.languages()
    }

    fn synthesize(
        &self,
        text: &str,
        language: Language,
        cancel: &CancellationToken,
        sink: &mut dyn FnMut(voice::AudioChunk) -> ControlFlow<()>,
    ) -> Result<voice::SynthesisStats, voice::VoiceError> {
        let rate = self.sample_rate();
        self.inner
            .synthesize(text, language, cancel, &mut |mut chunk| {
                chunk.sample_rate = rate;
                sink(chunk)
            })
    }
}

/// The voices of simulated callers, in the demo's callees and the eval harness's audio mode
/// alike: the bot's own English and Mandarin voices pitched down (`CALLER_VOICE_FACTOR`), so a
/// caller never sounds like the bot. Not espeak-ng: through the bot's Whisper over μ-law, 4 of
/// the 23 English persona lines in espeak-ng came out empty ("Yes, hello.", "Uh-huh.") and
/// "Sorry to interrupt, how much does it cost per month?" said over the greeting came out as
/// "Aritontera"; a caller who is never heard tests the recognizer on a robot voice, not the
/// dialogue.
pub fn caller_voices(
    bot_en: &Arc<dyn TextToSpeech>,
    bot_zh: &Arc<dyn TextToSpeech>,
) -> (Arc<dyn TextToSpeech>, Arc<dyn TextToSpeech>) {
    let pitched = |inner: &Arc<dyn TextToSpeech>| -> Arc<dyn TextToSpeech> {
        Arc::new(PitchedVoice {
            inner: inner.clone(),
            factor: CALLER_VOICE_FACTOR,
        })
    };
    (pitched(bot_en), pitched(bot_zh))
}

/// How much lower and slower a simulated caller speaks than the bot.
const CALLER_VOICE_FACTOR: f32 = 0.88;

/// Synthesized callee lines by language and text.
type LineCache = HashMap<(Language, String), Arc<Vec<i16>>>;

/// The engines every simulated callee shares: its ears (VAD + Whisper, separate from the bot's
/// so the callee's decoding does not queue behind the bot's) and its voices.
pub struct CalleeEngines {
    pub new_vad: VadFactory,
    pub asr_en: Arc<dyn SpeechToText>,
    pub asr_zh: Arc<dyn SpeechToText>,
    pub voice_en: Arc<dyn TextToSpeech>,
    pub voice_zh: Arc<dyn TextToSpeech>,
    pub lines: PersonaLines,
    /// Synthesized lines (16 kHz), by language and text: callees repeat themselves.
    cache: Mutex<LineCache>,
}

impl std::fmt::Debug for CalleeEngines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CalleeEngines").finish_non_exhaustive()
    }
}

impl CalleeEngines {
    pub fn new(
        new_vad: VadFactory,
        asr_en: Arc<dyn SpeechToText>,
        asr_zh: Arc<dyn SpeechToText>,
        voice_en: Arc<dyn TextToSpeech>,
        voice_zh: Arc<dyn TextToSpeech>,
        lines: PersonaLines,
    ) -> Self {
        Self {
            new_vad,
            asr_en,
            asr_zh,
            voice_en,
            voice_zh,
            lines,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// `text` spoken by the callee voice of `language`, at 16 kHz. Blocking.
    fn say(&self, language: Language, text: &str) -> anyhow::Result<Arc<Vec<i16>>> {
        let key = (language, text.to_string());
        if let Some(pcm) = self
            .cache
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .get(&key)
        {
            return Ok(pcm.clone());
        }
        let tts = match language {
            Language::English => &self.voice_en,
            Language::Chinese => &self.voice_zh,
        };
        let mut pcm = Vec::new();
        tts.synthesize(text, language, &CancellationToken::new(), &mut |chunk| {
            pcm.extend_from_slice(&chunk.samples);
            ControlFlow::Continue(())
        })?;
        let pcm = Arc::new(resample(&pcm, tts.sample_rate(), SAMPLE_RATE)?);
        self.cache
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .insert(key, pcm.clone());
        Ok(pcm)
    }
}

/// The callee's side of a line.
#[async_trait]
pub trait CalleeLink: Send {
    /// Sends 20 ms of the callee's voice (16 kHz; the link codes it for the line).
    async fn send_audio(&mut self, pcm: &[i16]) -> anyhow::Result<()>;
    /// The bot's next event if one is waiting.
    fn poll_event(&mut self) -> Option<CallEvent>;
    /// The callee hangs up.
    async fn hang_up(&mut self);
}

/// The in-process line ([`crate::transport::ChannelTransport`]'s far end), with the callee's
/// voice coded in the line's format.
pub struct InProcessLink {
    far: FarEnd,
    codec: LineCodec,
}

impl InProcessLink {
    pub fn new(far: FarEnd) -> anyhow::Result<Self> {
        let codec = LineCodec::new(far.format)?;
        Ok(Self { far, codec })
    }
}

#[async_trait]
impl CalleeLink for InProcessLink {
    async fn send_audio(&mut self, pcm: &[i16]) -> anyhow::Result<()> {
        let bytes = self.codec.encode(pcm)?;
        self.far
            .to_bot
            .send(LineInput::Audio(bytes))
            .await
            .map_err(|_| anyhow::anyhow!("the bot's side closed the line"))
    }

    fn poll_event(&mut self) -> Option<CallEvent> {
        self.far.from_bot.try_recv().ok()
    }

    async fn hang_up(&mut self) {
        let _ = self.far.to_bot.send(LineInput::Hangup).await;
    }
}

/// What a simulated call looked like from the callee's side.
#[derive(Debug, Clone, Serialize)]
pub struct CalleeReport {
    pub persona: PersonaKind,
    /// What the callee heard the bot say (its own ASR), utterance by utterance.
    pub heard: Vec<String>,
    /// What the callee said.
    pub said: Vec<String>,
    /// The outcome the line reported at the end, if it ended normally.
    pub outcome: Option<String>,
    pub end_reason: Option<String>,
    pub hung_up: bool,
    /// Line time at the end.
    pub duration_ms: u64,
    /// Bot audio frames received, and after a `clear` (barge-in) how many were still queued.
    pub bot_frames: u64,
}

/// One simulated callee on one call.
pub struct SimulatedCallee {
    pub persona: PersonaKind,
    pub language: Language,
    pub seed: u64,
    /// Line clock speed: 1.0 is real time (a 20 ms frame every 20 ms), 4.0 four times faster.
    pub speed: f64,
    /// The callee hangs up after this much line time whatever happens.
    pub max_ms: u64,
}

/// Cue words in what the callee heard.
fn heard_any(text: &str, cues: &[&str]) -> bool {
    cues.iter().any(|c| text.contains(c))
}

/// The bot did not understand and asks to hear it again.
fn asked_to_repeat(heard: &str) -> bool {
    heard_any(
        heard,
        &[
            "didn't catch",
            "say that again",
            "sorry?",
            "pardon",
            "没听清",
            "再说一遍",
        ],
    )
}

impl SimulatedCallee {
    /// Plays the call to its end over `link`.
    pub async fn run(
        self,
        engines: Arc<CalleeEngines>,
        mut link: Box<dyn CalleeLink>,
    ) -> anyhow::Result<CalleeReport> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let asr = match self.language {
            Language::English => engines.asr_en.clone(),
            Language::Chinese => engines.asr_zh.clone(),
        };
        let stream = asr.start(&AsrOptions {
            language: self.language,
            initial_prompt: None,
        })?;
        let mut ears = Ears::new(Listener::new((engines.new_vad)()?, stream));
        let mut report = CalleeReport {
            persona: self.persona,
            heard: Vec::new(),
            said: Vec::new(),
            outcome: None,
            end_reason: None,
            hung_up: false,
            duration_ms: 0,
            bot_frames: 0,
        };
        let period = Duration::from_secs_f64(0.02 / self.speed.max(0.01));
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut line_ms: u64 = 0;
        let mut playout: VecDeque<Vec<i16>> = VecDeque::new();
        let mut speech: VecDeque<i16> = VecDeque::new();
        // A line to say once the bot has been quiet for a moment: (text, earliest line time).
        let mut next_line: Option<(String, u64)> = None;
        let mut pending_tts: Option<tokio::task::JoinHandle<anyhow::Result<Arc<Vec<i16>>>>> = None;
        let mut bot_started: Option<u64> = None;
        let mut bot_utterances = 0u32;
        let mut interrupted = false;
        // The bot's words since the callee last answered: a reply the VAD cut at its pauses
        // is answered once, after the bot has been quiet for a moment.
        let mut heard_turn: Vec<String> = Vec::new();
        let mut heard_at = 0u64;
        let silence = vec![0i16; FRAME_SAMPLES];
        if self.persona == PersonaKind::Voicemail {
            next_line = Some((
                engines
                    .lines
                    .pick(self.language, "voicemail", None, &mut rng),
                0,
            ));
        }
        loop {
            ticker.tick().await;
            line_ms += FRAME;
            // What the bot sent: audio into the playout queue, the end ends the call.
            while let Some(event) = link.poll_event() {
                match event {
                    CallEvent::Audio { pcm, .. } => {
                        report.bot_frames += 1;
                        playout.push_back(pcm);
                    }
                    CallEvent::Clear { .. } => playout.clear(),
                    CallEvent::Ended {
                        outcome, reason, ..
                    } => {
                        report.outcome = Some(outcome);
                        report.end_reason = Some(reason);
                        report.duration_ms = line_ms;
                        return Ok(report);
                    }
                    _ => {}
                }
            }
            // Play one frame of the bot into the callee's ears (silence when none is queued).
            let heard_frame = playout.pop_front().unwrap_or_else(|| silence.clone());
            ears.push(line_ms, heard_frame);
            // What the callee's ears finished.
            let events = tokio::select! {
                biased;
                e = ears.next() => Some(e?),
                _ = std::future::ready(()) => None,
            };
            for (_, _, event) in events.into_iter().flatten() {
                match event {
                    SpeechEvent::Started { .. } => bot_started = Some(line_ms),
                    SpeechEvent::Final { transcript, .. } => {
                        bot_started = None;
                        bot_utterances += 1;
                        let heard = transcript.text.trim().to_lowercase();
                        if heard.is_empty() {
                            continue;
                        }
                        report.heard.push(transcript.text.trim().to_string());
                        heard_turn.push(heard);
                        heard_at = line_ms;
                    }
                    SpeechEvent::Partial { .. } | SpeechEvent::Speculative { .. } => {}
                }
            }
            if !heard_turn.is_empty() && bot_started.is_none() && line_ms >= heard_at + 700 {
                let heard = heard_turn.join(" ");
                heard_turn.clear();
                if let Some(kind) = self.respond(&heard, report.said.len(), interrupted) {
                    let avoid = asked_to_repeat(&heard)
                        .then(|| report.said.last().map(String::as_str))
                        .flatten();
                    let text = engines.lines.pick(self.language, kind, avoid, &mut rng);
                    next_line = Some((text, line_ms + rng.random_range(100..400)));
                }
            }
            // Rules that act while the bot is still speaking (the pitch is its 2nd utterance).
            if let Some(since) = bot_started {
                let talking = line_ms.saturating_sub(since);
                let pitching = bot_utterances >= 1 && !report.said.is_empty();
                if self.persona == PersonaKind::HangsUpMidPitch && pitching && talking >= 2500 {
                    link.hang_up().await;
                    report.hung_up = true;
                    report.duration_ms = line_ms;
                    return Ok(report);
                }
                if self.persona == PersonaKind::Interrupter
                    && pitching
                    && !interrupted
                    && talking >= 1200
                    && speech.is_empty()
                {
                    interrupted = true;
                    next_line = Some((
                        engines
                            .lines
                            .pick(self.language, "interrupt", None, &mut rng),
                        line_ms,
                    ));
                }
            }
            // Synthesize the next line when it is due, then speak it frame by frame.
            if let Some((text, due)) = &next_line {
                if *due <= line_ms && pending_tts.is_none() && speech.is_empty() {
                    let (e, lang, t) = (engines.clone(), self.language, text.clone());
                    report.said.push(text.clone());
                    pending_tts = Some(tokio::task::spawn_blocking(move || e.say(lang, &t)));
                    next_line = None;
                }
            }
            if pending_tts.as_ref().is_some_and(|h| h.is_finished()) {
                if let Some(h) = pending_tts.take() {
                    let pcm = h.await??;
                    speech.extend(pcm.iter().copied());
                }
            }
            let frame: Vec<i16> = if speech.is_empty() {
                silence.clone()
            } else {
                let n = speech.len().min(FRAME_SAMPLES);
                let mut f: Vec<i16> = speech.drain(..n).collect();
                f.resize(FRAME_SAMPLES, 0);
                f
            };
            if link.send_audio(&frame).await.is_err() {
                report.end_reason = Some("line closed".into());
                report.duration_ms = line_ms;
                return Ok(report);
            }
            if line_ms >= self.max_ms {
                link.hang_up().await;
                report.hung_up = true;
                report.duration_ms = line_ms;
                return Ok(report);
            }
        }
    }

    /// Which kind of line answers what the callee just heard, or `None` to stay quiet.
    fn respond(&self, heard: &str, said: usize, interrupted: bool) -> Option<&'static str> {
        let goodbye = heard_any(heard, &["goodbye", "bye", "再见", "不打扰"]);
        if goodbye {
            return None;
        }
        let asks_time = heard_any(
            heard,
            &[
                "what time",
                "when would",
                "when should",
                "when can",
                "什么时候",
                "几点",
                "方便",
            ],
        );
        let discount = heard_any(
            heard,
            &[
                "discount",
                "%",
                "percent",
                "you would pay",
                "brings it to",
                "优惠",
                "折",
            ],
        );
        let repeat = asked_to_repeat(heard);
        use PersonaKind::*;
        match self.persona {
            Silent | Voicemail | NoAnswer => None,
            HardRefusal => Some("refusal"),
            Angry => Some("complaint"),
            Busy if asks_time => Some("callback_time"),
            Busy => Some("busy"),
            _ if said >= 5 => Some("refusal"),
            // The pitch may name a saving too: only an answer to the price objection counts.
            PriceSensitive | Interrupter if said >= 2 && discount => Some("accept"),
            PriceSensitive | Interrupter if said == 0 => Some("filler"),
            PriceSensitive | Interrupter if repeat => Some("price"),
            PriceSensitive => Some("price"),
            Interrupter if interrupted => Some("price"),
            Interrupter => Some("filler"),
            Curious if said == 0 => Some("filler"),
            Curious if said == 1 => Some("question"),
            Curious => Some("accept"),
            HangsUpMidPitch => Some("filler"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asked_again_a_callee_says_it_differently() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/personas.yaml");
        let lines = PersonaLines::load(&path).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let said = "Hmm, that's too expensive.";
        for _ in 0..20 {
            let again = lines.pick(Language::English, "price", Some(said), &mut rng);
            assert!(!again.is_empty());
            assert_ne!(again, said);
        }
        // A kind with one line keeps it; an unknown kind has none.
        let voicemail = &lines.en["voicemail"][0];
        assert_eq!(
            &lines.pick(Language::English, "voicemail", Some(voicemail), &mut rng),
            voicemail
        );
        assert_eq!(lines.pick(Language::English, "nope", None, &mut rng), "");
        assert!(asked_to_repeat(
            "sorry, could you say that again? i can tell you about the price."
        ));
    }
}
