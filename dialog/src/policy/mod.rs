//! The dialogue manager: campaign script, deterministic policy, templates, conversation state,
//! FAQ retrieval, the guard for LLM phrasing and the qualification suite that decides whether a
//! model may phrase replies at all.

pub mod campaign;
pub mod faq;
pub mod guard;
pub mod manager;
pub mod phrasing;
pub mod qualify;
pub mod rules;
pub mod schedule;
pub mod state;
pub mod templates;

pub use campaign::{Campaign, Segment, CHOICE_POINTS};
pub use faq::{FaqIndex, FaqMatch};
pub use guard::{Check, Guard, GuardConfig, Rejection};
pub use manager::{BotReply, DialogConfig, DialogEvent, DialogManager};
pub use phrasing::{Phraser, PhrasingAuthority, PhrasingMode};
pub use qualify::{qualify, QualifyConfig, QualifyReport};
pub use rules::{Action, Decision, HandOffReason, Policy, PolicyConfig};
pub use schedule::render_time;
pub use state::{ConversationState, Outcome, ReplyMode, Turn, VariantChoice};
