//! The scenario file format (YAML, one scenario per file): language, customer profile, caller
//! turns (text, audio files, silence, noise, talking over the bot) or a simulated persona, and
//! expectations per turn and per call. Loading checks everything it can (unknown keys, wrong
//! types, unknown labels, bad regexes, missing audio files) and names the file, line and key.

use crate::error::EvalError;
use dialog::{Intent, SentimentLabel};
use regex::Regex;
use retrieval::{CustomerProfile, Language};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// How a scenario is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Caller text straight into the dialogue manager.
    Text,
    /// Caller turns spoken (TTS or the scenario's audio files) through the whole call path.
    Audio,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Text => "text",
            Mode::Audio => "audio",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "text" => Some(Mode::Text),
            "audio" => Some(Mode::Audio),
            _ => None,
        }
    }
}

/// The bot's action kinds a scenario can name (the dialogue policy's, plus what the call
/// session does on its own: a re-prompt after silence and the close for no input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Greet,
    Pitch,
    DiscountOffer,
    AnswerFaq,
    AdvisorFollowUp,
    HandOff,
    OfferCallback,
    BookCallback,
    AddToDoNotCall,
    DiscloseBot,
    Recommend,
    Clarify,
    Close,
    /// The session asks "are you still there?" after silence.
    Reprompt,
    /// The session ends the call after silence.
    NoInputClose,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Greet => "greet",
            ActionKind::Pitch => "pitch",
            ActionKind::DiscountOffer => "discount_offer",
            ActionKind::AnswerFaq => "answer_faq",
            ActionKind::AdvisorFollowUp => "advisor_follow_up",
            ActionKind::HandOff => "hand_off",
            ActionKind::OfferCallback => "offer_callback",
            ActionKind::BookCallback => "book_callback",
            ActionKind::AddToDoNotCall => "add_to_do_not_call",
            ActionKind::DiscloseBot => "disclose_bot",
            ActionKind::Recommend => "recommend",
            ActionKind::Clarify => "clarify",
            ActionKind::Close => "close",
            ActionKind::Reprompt => "reprompt",
            ActionKind::NoInputClose => "no_input_close",
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    Converted,
    Callback,
    Refused,
    HandedOff,
    DoNotCall,
    /// The caller said nothing; the session closed the call.
    NoInput,
    /// The scripted turns ran out before the call reached an outcome.
    Open,
}

impl OutcomeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Converted => "converted",
            OutcomeKind::Callback => "callback",
            OutcomeKind::Refused => "refused",
            OutcomeKind::HandedOff => "handed_off",
            OutcomeKind::DoNotCall => "do_not_call",
            OutcomeKind::NoInput => "no_input",
            OutcomeKind::Open => "open",
        }
    }
}

/// A regular expression from a scenario, kept with its source text.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    pub regex: Regex,
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let source = String::deserialize(d)?;
        let regex = Regex::new(&source)
            .map_err(|e| serde::de::Error::custom(format!("bad regex {source:?}: {e}")))?;
        Ok(Self { source, regex })
    }
}

/// The customer the bot calls. Every field is optional; `generated: N` draws a seeded
/// synthetic profile instead (fields given beside it override the draw).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProfileSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated: Option<u64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_sensitivity: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children_in_school: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interests: Vec<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub calls_so_far: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ProfileSpec {
    /// The profile for customer `customer_id` in `language`.
    pub fn to_profile(&self, customer_id: &str, language: Language) -> CustomerProfile {
        let mut p = match self.generated {
            Some(seed) => generated_profile(seed),
            None => CustomerProfile::default(),
        };
        p.customer_id = customer_id.to_string();
        p.language = language;
        if !self.display_name.is_empty() {
            p.display_name = self.display_name.clone();
        }
        if self.segment.is_some() {
            p.segment = self.segment.clone();
        }
        if self.price_sensitivity.is_some() {
            p.price_sensitivity = self.price_sensitivity;
        }
        if self.children_in_school.is_some() {
            p.children_in_school = self.children_in_school;
        }
        if self.age.is_some() {
            p.age = self.age;
        }
        if !self.interests.is_empty() {
            p.interests = self.interests.clone();
        }
        if self.calls_so_far > 0 {
            p.calls_so_far = self.calls_so_far;
        }
        p
    }
}

/// A seeded synthetic profile (the same seed gives the same customer).
fn generated_profile(seed: u64) -> CustomerProfile {
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        h = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let names = ["Alex", "Sam", "Jordan", "Lee", "Morgan", "Chris"];
    let name = names[(next() % names.len() as u64) as usize];
    let price = (next() % 100) as f32 / 100.0;
    let children = (next() % 3) as u8;
    let age = 25 + (next() % 35) as u32;
    CustomerProfile {
        display_name: name.to_string(),
        price_sensitivity: Some(price),
        children_in_school: Some(children),
        age: Some(age),
        interests: if children > 0 {
            vec!["education".into()]
        } else {
            Vec::new()
        },
        ..CustomerProfile::default()
    }
}

/// A simulated caller that reacts to the bot's actions instead of fixed turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonaKind {
    /// Objects to the price; buys after a discount.
    PriceSensitive,
    /// Asks to be called back, then names a time.
    Busy,
    /// Complains.
    Angry,
    /// Asks what the plan covers, then buys.
    Curious,
    /// Refuses and asks to be taken off the list.
    HardRefusal,
    /// Says nothing at all.
    Silent,
}

impl PersonaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PersonaKind::PriceSensitive => "price_sensitive",
            PersonaKind::Busy => "busy",
            PersonaKind::Angry => "angry",
            PersonaKind::Curious => "curious",
            PersonaKind::HardRefusal => "hard_refusal",
            PersonaKind::Silent => "silent",
        }
    }
}

/// A persona caller: its kind and how many turns it may take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonaSpec {
    pub kind: PersonaKind,
    #[serde(default = "default_persona_turns")]
    pub max_turns: usize,
}

fn default_persona_turns() -> usize {
    8
}

/// What the bot must do in reply to one caller turn. Every field is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TurnExpect {
    /// The NLU intent label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<Intent>,
    /// Any of these intents.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub intent_any: Vec<Intent>,
    /// The NLU sentiment label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentiment: Option<SentimentLabel>,
    /// Lexicon keywords the NLU must find (not negated).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// The bot's action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<ActionKind>,
    /// Any of these actions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub action_any: Vec<ActionKind>,
    /// None of these actions.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_action: Vec<ActionKind>,
    /// Fields the action must carry (a subset of its JSON form), e.g. `{id: price}`,
    /// `{reason: complaint}`, `{time: {day: tomorrow, hour: 15}}`. Text mode only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_detail: Option<serde_json::Value>,
    /// The policy rule that decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Phrases the reply must contain (case-insensitive).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub say: Vec<String>,
    /// Phrases the reply must not contain (case-insensitive).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_say: Vec<String>,
    /// Regexes the reply must match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub say_match: Vec<Pattern>,
    /// Regexes the reply must not match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_match: Vec<Pattern>,
    /// Whether the bot must have stopped speaking for the caller (a barge-in clear; audio mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub barged_in: Option<bool>,
    /// Latency budget of this turn: the dialogue turn in text mode, voice to voice in audio mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<f64>,
}

/// One caller turn: words (`say`), a recording (`audio`), silence or noise.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallerTurn {
    /// What the caller says (spoken by TTS in audio mode unless `audio` is given). With
    /// `noise_ms`, what a recognizer made of the noise (text mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub say: Option<String>,
    /// A WAV file of the caller (relative to the scenario file), for audio mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<PathBuf>,
    /// The caller says nothing for this long.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silence_ms: Option<u64>,
    /// Line noise for this long (audio mode); text mode sends `say` if given, else silence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noise_ms: Option<u64>,
    /// The caller starts talking this long after the bot's reply starts (talking over it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub barge_in_ms: Option<u64>,
    #[serde(skip_serializing_if = "is_default_expect")]
    pub expect: TurnExpect,
}

fn is_default_expect(e: &TurnExpect) -> bool {
    serde_json::to_value(e).is_ok_and(|v| v.as_object().is_some_and(|o| o.is_empty()))
}

impl CallerTurn {
    /// Whether the caller says nothing the dialogue could hear in text mode.
    pub fn is_silent_in_text(&self) -> bool {
        self.say.as_deref().is_none_or(|s| s.trim().is_empty())
    }
}

/// What the whole call must look like.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallExpect {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<OutcomeKind>,
    /// Actions that must happen somewhere in the call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions_include: Vec<ActionKind>,
    /// Actions that must never happen.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions_exclude: Vec<ActionKind>,
    /// Phrases no reply (greeting included) may contain.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub never_say: Vec<String>,
    /// Regexes no reply may match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub never_match: Vec<Pattern>,
    /// Latency budget of every turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_latency_ms: Option<f64>,
    /// Replies are well-formed text (no empty reply, no unfilled `{slot}`, English sentences
    /// start with a capital). On unless set to false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub well_formed: Option<bool>,
}

/// Where a captured scenario came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Source {
    pub call_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub campaign_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub outcome: String,
    /// QA grades at capture time (`criterion: score/max (grader) notes`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub qa: Vec<String>,
}

/// A scenario file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub language: Language,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Seeds the template variants (and the persona); default: from the scenario id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The modes this scenario runs in (default: text only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modes: Vec<Mode>,
    #[serde(default)]
    pub profile: ProfileSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona: Option<PersonaSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub turns: Vec<CallerTurn>,
    #[serde(default)]
    pub expect: CallExpect,
    /// Criteria for an LLM judge, in plain words (kept as data; reported, not judged here).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub judge: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// A loaded, checked scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file's path relative to the suite folder, without `.yaml` (`en/price_talk`).
    pub id: String,
    pub path: PathBuf,
    pub file: ScenarioFile,
}

impl Scenario {
    pub fn name(&self) -> &str {
        if self.file.name.is_empty() {
            &self.id
        } else {
            &self.file.name
        }
    }

    /// The scenario's seed: given, or a stable hash of its id.
    pub fn seed(&self) -> u64 {
        self.file.seed.unwrap_or_else(|| {
            self.id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            })
        })
    }

    pub fn runs_in(&self, mode: Mode) -> bool {
        if self.file.modes.is_empty() {
            mode == Mode::Text
        } else {
            self.file.modes.contains(&mode)
        }
    }

    /// The customer id the scenario's call uses.
    pub fn customer_id(&self) -> String {
        format!("eval-{}", self.id.replace('/', "-"))
    }

    pub fn profile(&self) -> CustomerProfile {
        self.file
            .profile
            .to_profile(&self.customer_id(), self.file.language)
    }

    /// Parses and checks one scenario from text; `id` names it, `path` is for messages and
    /// relative audio files.
    pub fn parse(id: &str, path: &Path, text: &str) -> Result<Self, EvalError> {
        let file: ScenarioFile =
            serde_yaml_ng::from_str(text).map_err(|e| EvalError::Scenario {
                path: path.to_path_buf(),
                message: yaml_message(&e),
            })?;
        let bad = |needle: &str, message: String| EvalError::Scenario {
            path: path.to_path_buf(),
            message: match line_of(text, needle) {
                Some(line) => format!("line {line}: {message}"),
                None => message,
            },
        };
        if file.persona.is_some() && !file.turns.is_empty() {
            return Err(bad(
                "persona:",
                "`persona` and `turns` are exclusive: a scenario has a simulated caller or fixed turns".into(),
            ));
        }
        if file.persona.is_none() && file.turns.is_empty() {
            return Err(bad(
                "language:",
                "the scenario has no `turns` and no `persona`: give the caller something to do"
                    .into(),
            ));
        }
        for (i, t) in file.turns.iter().enumerate() {
            let key = format!("turns[{i}]");
            let kinds = [
                t.say.is_some() && t.noise_ms.is_none(),
                t.silence_ms.is_some(),
                t.noise_ms.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() > 1 {
                return Err(bad(
                    t.say.as_deref().unwrap_or("silence_ms"),
                    format!("{key}: give one of `say`, `silence_ms`, `noise_ms` (noise may carry `say` as its recognized text)"),
                ));
            }
            if t.say.is_none()
                && t.audio.is_none()
                && t.silence_ms.is_none()
                && t.noise_ms.is_none()
            {
                return Err(bad(
                    "turns:",
                    format!("{key}: the turn has no `say`, `audio`, `silence_ms` or `noise_ms`"),
                ));
            }
            if let Some(audio) = &t.audio {
                let full = path.parent().unwrap_or(Path::new(".")).join(audio);
                if !full.is_file() {
                    return Err(bad(
                        &audio.to_string_lossy(),
                        format!(
                            "{key}.audio: audio file {} not found (paths are relative to the scenario file)",
                            full.display()
                        ),
                    ));
                }
            }
            if let Some(detail) = &t.expect.action_detail {
                if !detail.is_object() {
                    return Err(bad(
                        "action_detail",
                        format!("{key}.expect.action_detail: give a map of the action's fields, e.g. {{id: price}}"),
                    ));
                }
            }
        }
        Ok(Self {
            id: id.to_string(),
            path: path.to_path_buf(),
            file,
        })
    }

    /// Reads one scenario file.
    pub fn load(id: &str, path: &Path) -> Result<Self, EvalError> {
        let text = std::fs::read_to_string(path).map_err(|e| EvalError::Scenario {
            path: path.to_path_buf(),
            message: format!("cannot read it: {e}"),
        })?;
        Self::parse(id, path, &text)
    }
}

/// serde_yaml_ng's message with the line first: "line 12 column 7: turns[1].expect: unknown
/// field `acton`, expected one of …".
fn yaml_message(e: &serde_yaml_ng::Error) -> String {
    let text = e.to_string();
    match e.location() {
        Some(loc) => {
            // The library appends " at line L column C"; say it once, up front.
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            let body = text.replace(&suffix, "");
            format!("line {} column {}: {body}", loc.line(), loc.column())
        }
        None => text,
    }
}

/// The 1-based line of the first occurrence of `needle`.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

/// Every scenario under `dir` (`*.yaml`, `*.yml`, recursively, in path order): the ones that
/// loaded and, separately, the files that did not with their errors.
pub fn load_dir(dir: &Path) -> Result<(Vec<Scenario>, Vec<EvalError>), EvalError> {
    let mut files = Vec::new();
    collect(dir, &mut files).map_err(|e| EvalError::Io {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    if files.is_empty() {
        return Err(EvalError::Io {
            path: dir.to_path_buf(),
            message: "no scenario files (*.yaml) found".into(),
        });
    }
    files.sort();
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for path in files {
        let id = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .with_extension("")
            .to_string_lossy()
            .replace('\\', "/");
        match Scenario::load(&id, &path) {
            Ok(s) => ok.push(s),
            Err(e) => bad.push(e),
        }
    }
    Ok((ok, bad))
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if dir.is_file() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, EvalError> {
        Scenario::parse("t", Path::new("suite/t.yaml"), text)
    }

    #[test]
    fn unknown_keys_name_the_line_and_key() {
        let err = parse("language: en\nturns:\n  - say: hi\n    expect:\n      acton: pitch\n")
            .expect_err("unknown key");
        let msg = err.to_string();
        assert!(msg.contains("suite/t.yaml"), "{msg}");
        assert!(msg.contains("line 5"), "{msg}");
        assert!(msg.contains("acton"), "{msg}");
    }

    #[test]
    fn wrong_types_and_labels_are_named() {
        let err =
            parse("language: en\nturns:\n  - say: hi\n    expect:\n      max_latency_ms: fast\n")
                .expect_err("type");
        assert!(err.to_string().contains("max_latency_ms"), "{err}");
        let err = parse("language: en\nturns:\n  - say: hi\n    expect:\n      action: dance\n")
            .expect_err("label");
        assert!(err.to_string().contains("dance"), "{err}");
        let err = parse("language: fr\nturns:\n  - say: hi\n").expect_err("language");
        assert!(err.to_string().contains("line 1"), "{err}");
    }

    #[test]
    fn bad_regex_and_missing_audio_are_named() {
        let err = parse("language: en\nturns:\n  - say: hi\n    expect:\n      say_match: ['(']\n")
            .expect_err("regex");
        assert!(err.to_string().contains("bad regex"), "{err}");
        let err = parse("language: en\nturns:\n  - audio: clips/nope.wav\n").expect_err("audio");
        let msg = err.to_string();
        assert!(
            msg.contains("clips/nope.wav") && msg.contains("line 3"),
            "{msg}"
        );
    }

    #[test]
    fn seeds_are_stable_and_profiles_generated() {
        let s = parse("language: zh\nprofile: {generated: 3, segment: price_sensitive}\nturns:\n  - say: 你好\n")
            .expect("valid");
        assert_eq!(s.seed(), s.seed());
        let p = s.profile();
        assert_eq!(p.segment.as_deref(), Some("price_sensitive"));
        assert_eq!(p, s.profile());
        assert!(s.runs_in(Mode::Text) && !s.runs_in(Mode::Audio));
    }
}
