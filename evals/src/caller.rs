//! The scenario's caller as drivers see it: the next caller turn given what the bot just did.
//! Fixed turns are played in order; a persona picks its next line from the bot's last action
//! (seeded, so a persona scenario replays the same call).

use crate::scenario::{CallerTurn, PersonaKind, Scenario};
use retrieval::Language;

/// Produces caller turns for one call.
#[derive(Debug)]
pub struct Caller {
    kind: Script,
    language: Language,
    said: usize,
    seed: u64,
}

#[derive(Debug)]
enum Script {
    Fixed(Vec<CallerTurn>),
    Persona { kind: PersonaKind, max_turns: usize },
}

impl Caller {
    pub fn new(scenario: &Scenario) -> Self {
        let file = &scenario.file;
        let kind = match &file.persona {
            Some(p) => Script::Persona {
                kind: p.kind,
                max_turns: p.max_turns,
            },
            None => Script::Fixed(file.turns.clone()),
        };
        Self {
            kind,
            language: file.language,
            said: 0,
            seed: scenario.seed(),
        }
    }

    /// The next turn after the bot's last action (`greet` after the greeting), or `None` when
    /// the caller has nothing more to say.
    pub fn next(&mut self, last_action: &str) -> Option<CallerTurn> {
        let turn = match &self.kind {
            Script::Fixed(turns) => turns.get(self.said).cloned(),
            Script::Persona { kind, max_turns } => {
                if self.said >= *max_turns {
                    None
                } else {
                    persona_line(*kind, last_action, self.language, self.seed, self.said).map(
                        |say| match say {
                            Some(text) => CallerTurn {
                                say: Some(text.to_string()),
                                ..CallerTurn::default()
                            },
                            None => CallerTurn {
                                silence_ms: Some(7000),
                                ..CallerTurn::default()
                            },
                        },
                    )
                }
            }
        };
        if turn.is_some() {
            self.said += 1;
        }
        turn
    }
}

/// A persona's reply to the bot's action: `Some(None)` is silence, `None` ends its part.
fn persona_line(
    kind: PersonaKind,
    last_action: &str,
    language: Language,
    seed: u64,
    turn: usize,
) -> Option<Option<&'static str>> {
    let pick = |lines: &[&'static str]| {
        let i = (seed.wrapping_mul(31).wrapping_add(turn as u64) % lines.len() as u64) as usize;
        Some(Some(lines[i]))
    };
    let zh = language == Language::Zh;
    let lines = |e: &[&'static str], z: &[&'static str]| if zh { pick(z) } else { pick(e) };
    match kind {
        PersonaKind::Silent => Some(None),
        PersonaKind::Angry => lines(
            &[
                "Why do you keep calling me? I want to make a complaint.",
                "This is the third call this week, I want to complain about your company.",
            ],
            &[
                "你们怎么老打电话？我要投诉！",
                "一周打了三次了，我要投诉你们公司。",
            ],
        ),
        PersonaKind::HardRefusal => lines(
            &[
                "Not interested. Take me off your list and stop calling me.",
                "No. Remove my number from your list.",
            ],
            &[
                "不需要，把我从名单里删掉，别再打了。",
                "不感兴趣，别再给我打电话了。",
            ],
        ),
        PersonaKind::Busy => match last_action {
            "offer_callback" => lines(
                &["Tomorrow at 3 in the afternoon.", "Tomorrow morning at 10."],
                &["明天下午三点吧。", "明天上午十点。"],
            ),
            "greet" | "pitch" | "clarify" | "recommend" => lines(
                &[
                    "I'm in a meeting, I don't have time right now.",
                    "I'm driving, this is a bad time.",
                ],
                &["我在开会，现在没时间。", "我在开车，现在不方便。"],
            ),
            _ => None,
        },
        PersonaKind::PriceSensitive => match last_action {
            "greet" => lines(&["Okay, go on."], &["嗯，你说吧。"]),
            "pitch" | "recommend" | "answer_faq" | "clarify" => lines(
                &["That sounds nice, but it's too expensive for me."],
                &["听起来不错，但是太贵了。"],
            ),
            "discount_offer" => lines(
                &["Okay, that works for me. Sign me up."],
                &["那行，给我办一份吧。"],
            ),
            _ => None,
        },
        PersonaKind::Curious => match last_action {
            "greet" => lines(&["Sure, what is it about?"], &["好的，是什么内容？"]),
            "pitch" | "clarify" | "recommend" if turn < 3 => lines(
                &["What does the plan cover exactly?"],
                &["这个保险都保哪些？"],
            ),
            "answer_faq" | "pitch" | "recommend" | "clarify" | "advisor_follow_up" => lines(
                &["Sounds good, sign me up."],
                &["听起来不错，给我办一份吧。"],
            ),
            _ => None,
        },
    }
}
