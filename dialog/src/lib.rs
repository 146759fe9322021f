//! Dialogue manager: decides what the bot says next. Holds the local language model engine
//! (llama.cpp) behind the [`LanguageModel`] trait; NLU, policy and scripts join it in the dialog
//! wave.

pub mod config;
pub mod error;
pub mod llm;
pub mod nlu;
pub mod policy;

pub use config::LlmConfig;
pub use error::DialogError;
pub use llm::{ChatMessage, GenerationOutput, GenerationRequest, LanguageModel, Role, StopReason};
pub use nlu::{Intent, Keyword, NluResult, Sentiment, SentimentLabel, Understand};
pub use policy::{
    Action, BotReply, Campaign, ConversationState, DialogConfig, DialogEvent, DialogManager,
    Outcome,
};
