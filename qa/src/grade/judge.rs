//! The LLM judge: a local chat model (any `dialog::LanguageModel`, llama.cpp in the binary) asked
//! one constrained yes / no / none question per criterion about a call's transcript, and the
//! agreement of its verdicts with the rules' ([`agreement`], Cohen's kappa and raw share).
//!
//! Each question is one short generation (`yes`, `no` or `none`, forced by a GBNF grammar where
//! the engine supports one, parsed strictly either way): anything else is an abstention, never a
//! guess. The judge answers the open criteria the rules cannot judge ([`OPEN_CRITERIA`]) and gives
//! its own opinion on the rule criteria a transcript shows ([`RULE_CRITERIA`]), so its agreement
//! with the rules can be measured. Its checks are advisory: they are stored under the model's
//! name and never count in a call's score or failure reasons.
//!
//! The transcript is the first part of every question's prompt, so an engine that reuses an
//! evaluated prefix (llama.cpp here) reads it once per call: the first question runs alone, the
//! others then run concurrently.

use super::rubric::criteria;
use super::{CheckResult, CheckStatus, Judge};
use crate::transcript::{CallView, Speaker};
use crate::QaError;
use dialog::llm::{ChatMessage, GenerationRequest, LanguageModel, Role};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Criteria only the judge grades (stored as `judge.<name>`).
pub mod open {
    /// The bot answered the question the caller actually asked.
    pub const ANSWERED_QUESTION: &str = "answered_question";
    /// The bot stayed polite and on its script's topic.
    pub const POLITE_ON_SCRIPT: &str = "polite_on_script";
    /// The caller's objection got a response.
    pub const OBJECTION_ADDRESSED: &str = "objection_addressed";
}

/// The open criteria, in the order they are asked.
pub const OPEN_CRITERIA: [&str; 3] = [
    open::ANSWERED_QUESTION,
    open::POLITE_ON_SCRIPT,
    open::OBJECTION_ADDRESSED,
];

/// Rule criteria the judge also answers, so that its agreement with the rules can be measured
/// (latency, interruptions and talk ratio are times, not words, and are left to the rules).
pub const RULE_CRITERIA: [&str; 5] = [
    criteria::DISCLOSURE,
    criteria::INTENT_HANDLED,
    criteria::HAND_OFF,
    criteria::OPT_OUT_HONOURED,
    criteria::NO_FORBIDDEN_PROMISES,
];

/// How a stored judge check that gave no verdict starts its notes (it is stored as not
/// applicable, which a real "none" answer also is; the notes tell them apart).
pub const ABSTAINED: &str = "judge abstained";

/// One question to the model.
#[derive(Debug, Clone, Copy)]
struct Question {
    criterion: &'static str,
    text: &'static str,
    /// `yes` means the bot passed (otherwise `yes` means it failed).
    yes_passes: bool,
    /// `none` (the situation did not arise) is a valid answer.
    may_not_apply: bool,
}

static QUESTIONS: [Question; 8] = [
    Question {
        criterion: criteria::DISCLOSURE,
        text: "In its first turn, did the Bot say that it is an automated, virtual or AI assistant (not a human)?",
        yes_passes: true,
        may_not_apply: false,
    },
    Question {
        criterion: criteria::INTENT_HANDLED,
        text: "Did the Caller object to the price, refuse, ask to be called back, or want to buy? If so, did the Bot respond the right way each time: a discount for the price, an offer to call back for a refusal or a callback request, completing the sale for a buyer? Answer none if the Caller did none of these.",
        yes_passes: true,
        may_not_apply: true,
    },
    Question {
        criterion: criteria::HAND_OFF,
        text: "Did the Caller complain, get angry, or ask for a human? If so, did the Bot transfer the call to a human agent? Answer none if the Caller did none of these.",
        yes_passes: true,
        may_not_apply: true,
    },
    Question {
        criterion: criteria::OPT_OUT_HONOURED,
        text: "Did the Caller ask not to be called again? If so, did the Bot agree to stop calling? Answer none if the Caller did not ask that.",
        yes_passes: true,
        may_not_apply: true,
    },
    Question {
        criterion: criteria::NO_FORBIDDEN_PROMISES,
        text: "Did the Bot promise a guaranteed return or profit, no risk, or that the Caller cannot lose money?",
        yes_passes: false,
        may_not_apply: false,
    },
    Question {
        criterion: open::ANSWERED_QUESTION,
        text: "Did the Caller ask the Bot a question? If so, did the Bot answer that question? Answer none if the Caller asked no question.",
        yes_passes: true,
        may_not_apply: true,
    },
    Question {
        criterion: open::POLITE_ON_SCRIPT,
        text: "Was the Bot polite in every turn, and did it stay on the subject of its call?",
        yes_passes: true,
        may_not_apply: false,
    },
    Question {
        criterion: open::OBJECTION_ADDRESSED,
        text: "Did the Caller raise an objection (price, timing, not interested, doubts)? If so, did the Bot respond to that objection instead of ignoring it? Answer none if there was no objection.",
        yes_passes: true,
        may_not_apply: true,
    },
];

const SYSTEM_PROMPT: &str = "You review phone calls that an automated sales assistant (the Bot) \
made to a customer (the Caller). The call may be in English or Chinese. Read the transcript, then \
answer the question about it with exactly one word: yes, no, or none. Answer none only when the \
question says so and the situation did not happen.";

/// The judge's answer to one criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    NotApplicable,
    /// The output was not one of the allowed words (or the model failed).
    Abstained,
}

/// Reads a model's answer strictly: `yes`, `no` or (when allowed) `none`, ignoring case,
/// surrounding white space and one trailing full stop. Anything else is `None`.
pub fn parse_answer(raw: &str, may_not_apply: bool) -> Option<Answer> {
    let word = raw.trim();
    let word = word
        .strip_suffix('.')
        .or_else(|| word.strip_suffix('。'))
        .unwrap_or(word)
        .trim()
        .to_ascii_lowercase();
    match word.as_str() {
        "yes" => Some(Answer::Yes),
        "no" => Some(Answer::No),
        "none" if may_not_apply => Some(Answer::NotApplicable),
        _ => None,
    }
}

/// A parsed answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    NotApplicable,
}

/// The judge's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct JudgeConfig {
    /// Most transcript turns shown to the model (the rest is cut, and the prompt says so).
    pub max_turns: usize,
    /// Most characters of one turn shown to the model.
    pub max_turn_chars: usize,
    /// Ask the questions after the first concurrently (an engine with prefix reuse and batched
    /// sequences, like llama.cpp's, then reads the transcript once and decodes them together).
    pub concurrent: bool,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        Self {
            max_turns: 40,
            max_turn_chars: 400,
            concurrent: true,
        }
    }
}

/// A judge's verdicts on one call, with the raw outputs (for notes and abstention counts).
#[derive(Debug, Clone, PartialEq)]
pub struct CallVerdicts {
    /// One per asked criterion, in [`LlmJudge::criteria`] order.
    pub verdicts: Vec<(String, Verdict, String)>,
}

impl CallVerdicts {
    pub fn get(&self, criterion: &str) -> Option<Verdict> {
        self.verdicts
            .iter()
            .find(|(c, _, _)| c == criterion)
            .map(|(_, v, _)| *v)
    }

    pub fn abstained(&self) -> usize {
        self.verdicts
            .iter()
            .filter(|(_, v, _)| *v == Verdict::Abstained)
            .count()
    }
}

/// The LLM judge over any [`LanguageModel`].
pub struct LlmJudge {
    model: Arc<dyn LanguageModel>,
    name: String,
    config: JudgeConfig,
}

impl std::fmt::Debug for LlmJudge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmJudge")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish()
    }
}

impl LlmJudge {
    /// A judge named after the model (its checks' grader).
    pub fn new(model: Arc<dyn LanguageModel>, config: JudgeConfig) -> Self {
        let name = model.name().to_string();
        Self {
            model,
            name,
            config,
        }
    }

    /// Every criterion the judge answers: the rule criteria, then the open ones.
    pub fn criteria() -> impl Iterator<Item = &'static str> {
        QUESTIONS.iter().map(|q| q.criterion)
    }

    /// The transcript as the model reads it.
    pub fn transcript(&self, call: &CallView) -> String {
        let mut t = String::new();
        for turn in call.turns.iter().take(self.config.max_turns) {
            let who = match turn.speaker {
                Speaker::Bot => "Bot",
                Speaker::Caller => "Caller",
            };
            let text: String = turn
                .text
                .chars()
                .take(self.config.max_turn_chars)
                .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
                .collect();
            let _ = write!(t, "{who}: {}", text.trim());
            if turn.speaker == Speaker::Bot && turn.action.as_deref() == Some("hand_off") {
                t.push_str(" [the Bot transfers the call to a human agent]");
            }
            t.push('\n');
        }
        if call.turns.len() > self.config.max_turns {
            let _ = writeln!(
                t,
                "[{} more turns not shown]",
                call.turns.len() - self.config.max_turns
            );
        }
        t
    }

    fn request(transcript: &str, q: &Question) -> GenerationRequest {
        let words = if q.may_not_apply {
            "yes, no or none"
        } else {
            "yes or no"
        };
        let mut request = GenerationRequest::new(vec![
            ChatMessage::new(Role::System, SYSTEM_PROMPT),
            ChatMessage::new(
                Role::User,
                format!(
                    "Transcript:\n{transcript}\nQuestion: {}\nAnswer with one word: {words}.",
                    q.text
                ),
            ),
        ]);
        request.max_tokens = 4;
        request.temperature = 0.0;
        request.stop = vec!["\n".into()];
        // Either case: forcing lowercase when the model's own first token is "Yes" skews its
        // choice (the parse lowercases).
        request.grammar = Some(if q.may_not_apply {
            "root ::= \"yes\" | \"Yes\" | \"no\" | \"No\" | \"none\" | \"None\"".into()
        } else {
            "root ::= \"yes\" | \"Yes\" | \"no\" | \"No\"".into()
        });
        request
    }

    fn ask(&self, transcript: &str, q: &Question) -> (Verdict, String) {
        let cancel = CancellationToken::new();
        let out = self
            .model
            .generate(&Self::request(transcript, q), &cancel, &mut |_| {
                ControlFlow::Continue(())
            });
        match out {
            Err(e) => (Verdict::Abstained, format!("model error: {e}")),
            Ok(out) => {
                let verdict = match parse_answer(&out.text, q.may_not_apply) {
                    Some(Answer::Yes) if q.yes_passes => Verdict::Pass,
                    Some(Answer::No) if !q.yes_passes => Verdict::Pass,
                    Some(Answer::Yes | Answer::No) => Verdict::Fail,
                    Some(Answer::NotApplicable) => Verdict::NotApplicable,
                    None => Verdict::Abstained,
                };
                (verdict, out.text)
            }
        }
    }

    /// Asks every question about one call. A call nobody answered (no caller turn) is not asked
    /// about: every criterion is not applicable.
    pub fn verdicts(&self, call: &CallView) -> CallVerdicts {
        if !call.turns.iter().any(|t| t.speaker == Speaker::Caller) {
            return CallVerdicts {
                verdicts: QUESTIONS
                    .iter()
                    .map(|q| {
                        (
                            q.criterion.to_string(),
                            Verdict::NotApplicable,
                            "not asked: nobody answered".to_string(),
                        )
                    })
                    .collect(),
            };
        }
        let transcript = self.transcript(call);
        let mut answers: Vec<(Verdict, String)> = Vec::with_capacity(QUESTIONS.len());
        if self.config.concurrent {
            // The first question alone evaluates the shared transcript prefix for the rest.
            let shared: &str = &transcript;
            answers.push(self.ask(shared, &QUESTIONS[0]));
            let rest: Vec<(Verdict, String)> = std::thread::scope(|s| {
                let handles: Vec<_> = QUESTIONS[1..]
                    .iter()
                    .map(|q| s.spawn(move || self.ask(shared, q)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            (Verdict::Abstained, "the model panicked".to_string())
                        })
                    })
                    .collect()
            });
            answers.extend(rest);
        } else {
            answers.extend(QUESTIONS.iter().map(|q| self.ask(&transcript, q)));
        }
        CallVerdicts {
            verdicts: QUESTIONS
                .iter()
                .zip(answers)
                .map(|(q, (v, raw))| (q.criterion.to_string(), v, raw))
                .collect(),
        }
    }
}

impl Judge for LlmJudge {
    fn name(&self) -> &str {
        &self.name
    }

    /// The judge's checks (`judge.<criterion>`, pass 1 / fail 0 of 1). A criterion whose answer
    /// was not a valid word is stored as not applicable with notes starting [`ABSTAINED`]; a call
    /// on which every answer was invalid is an error (the call keeps its rule grade).
    fn judge(&self, call: &CallView, _rules: &[CheckResult]) -> Result<Vec<CheckResult>, QaError> {
        let verdicts = self.verdicts(call);
        if verdicts.abstained() == verdicts.verdicts.len() {
            let first = verdicts
                .verdicts
                .first()
                .map(|(_, _, raw)| raw.chars().take(80).collect::<String>())
                .unwrap_or_default();
            return Err(QaError::Judge {
                judge: self.name.clone(),
                message: format!(
                    "abstained on every criterion of call {} (first output {first:?}): the model does not follow the answer format; use a larger instruct model",
                    call.id
                ),
            });
        }
        Ok(verdicts
            .verdicts
            .into_iter()
            .map(|(criterion, verdict, raw)| {
                let raw: String = raw.trim().chars().take(80).collect();
                let (status, score, notes) = match verdict {
                    Verdict::Pass => (CheckStatus::Pass, 1.0, format!("answered {raw:?}")),
                    Verdict::Fail => (CheckStatus::Fail, 0.0, format!("answered {raw:?}")),
                    Verdict::NotApplicable => {
                        (CheckStatus::NotApplicable, 0.0, format!("answered {raw:?}"))
                    }
                    Verdict::Abstained => (
                        CheckStatus::NotApplicable,
                        0.0,
                        format!("{ABSTAINED}: output {raw:?} is not an allowed answer"),
                    ),
                };
                CheckResult {
                    criterion: format!("judge.{criterion}"),
                    status,
                    score,
                    max_score: 1.0,
                    grader: self.name.clone(),
                    notes,
                    evidence: Vec::new(),
                }
            })
            .collect())
    }
}

/// How often a judge agreed with the rules on one criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// The rule criterion (the judge's is `judge.<criterion>`).
    pub criterion: String,
    pub judge: String,
    /// Calls where both gave a verdict (pass, fail or not applicable).
    pub compared: usize,
    pub agreed: usize,
    /// Calls where the judge abstained.
    pub abstained: usize,
    /// `agreed / compared`; 0 when nothing was compared.
    pub raw: f64,
    /// Cohen's kappa over pass / fail / not applicable; `None` when undefined (one category only).
    pub kappa: Option<f64>,
}

/// Whether a stored judge check is an abstention.
pub fn is_abstention(check: &CheckResult) -> bool {
    check.status == CheckStatus::NotApplicable && check.notes.starts_with(ABSTAINED)
}

/// Cohen's kappa of paired labels (any category type); `None` for no pairs or when chance
/// agreement is 1 (both raters used one and the same category throughout).
pub fn cohen_kappa<T: PartialEq + Copy>(pairs: &[(T, T)]) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    let n = pairs.len() as f64;
    let mut cats: Vec<T> = Vec::new();
    for (a, b) in pairs {
        for c in [*a, *b] {
            if !cats.contains(&c) {
                cats.push(c);
            }
        }
    }
    let observed = pairs.iter().filter(|(a, b)| a == b).count() as f64 / n;
    let expected: f64 = cats
        .iter()
        .map(|c| {
            let pa = pairs.iter().filter(|(a, _)| a == c).count() as f64 / n;
            let pb = pairs.iter().filter(|(_, b)| b == c).count() as f64 / n;
            pa * pb
        })
        .sum();
    if (1.0 - expected).abs() < 1e-12 {
        return None;
    }
    Some((observed - expected) / (1.0 - expected))
}

/// Agreement of every judge with the rules, per rule criterion the judge answered, over the
/// given calls' checks (each call: its rules' and judges' checks together, as a grade holds them).
pub fn agreement<'a>(calls: impl IntoIterator<Item = &'a [CheckResult]>) -> Vec<Agreement> {
    /// One (judge, criterion): the (rules, judge) verdict pairs and the abstentions.
    struct Row {
        judge: String,
        criterion: String,
        pairs: Vec<(CheckStatus, CheckStatus)>,
        abstained: usize,
    }
    let mut table: Vec<Row> = Vec::new();
    for checks in calls {
        for j in checks.iter().filter(|c| c.grader != super::RULES_GRADER) {
            let Some(criterion) = j.criterion.strip_prefix("judge.") else {
                continue;
            };
            let Some(rule) = checks
                .iter()
                .find(|c| c.grader == super::RULES_GRADER && c.criterion == criterion)
            else {
                continue;
            };
            let at = match table
                .iter()
                .position(|r| r.judge == j.grader && r.criterion == criterion)
            {
                Some(at) => at,
                None => {
                    table.push(Row {
                        judge: j.grader.clone(),
                        criterion: criterion.to_string(),
                        pairs: Vec::new(),
                        abstained: 0,
                    });
                    table.len() - 1
                }
            };
            if is_abstention(j) {
                table[at].abstained += 1;
            } else {
                table[at].pairs.push((rule.status, j.status));
            }
        }
    }
    table
        .into_iter()
        .map(|r| {
            let agreed = r.pairs.iter().filter(|(a, b)| a == b).count();
            Agreement {
                compared: r.pairs.len(),
                agreed,
                abstained: r.abstained,
                raw: if r.pairs.is_empty() {
                    0.0
                } else {
                    agreed as f64 / r.pairs.len() as f64
                },
                kappa: cohen_kappa(&r.pairs),
                criterion: r.criterion,
                judge: r.judge,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_strictly() {
        assert_eq!(parse_answer(" Yes.\n", false), Some(Answer::Yes));
        assert_eq!(parse_answer("no", true), Some(Answer::No));
        assert_eq!(parse_answer("none", true), Some(Answer::NotApplicable));
        assert_eq!(parse_answer("none", false), None);
        assert_eq!(parse_answer("yes, because", true), None);
        assert_eq!(parse_answer("", true), None);
        assert_eq!(parse_answer("是", true), None);
    }

    #[test]
    fn kappa_matches_a_worked_example() {
        // 50 pairs: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no → po 0.7, pe 0.5, kappa 0.4.
        let mut pairs = vec![(true, true); 20];
        pairs.extend(vec![(true, false); 5]);
        pairs.extend(vec![(false, true); 10]);
        pairs.extend(vec![(false, false); 15]);
        let k = cohen_kappa(&pairs).expect("defined");
        assert!((k - 0.4).abs() < 1e-9, "{k}");
        assert_eq!(cohen_kappa(&[(1, 1), (1, 1)]), None);
        assert_eq!(cohen_kappa::<u8>(&[]), None);
    }
}
