//! The profile a dialogue turn needs: a customer's static, dynamic and implicit attributes plus
//! the few snippets (profile summary, call history, product knowledge) most relevant to what the
//! caller just said. [`ProfileStore`] is the one door dialog uses to get it.

use crate::RetrievalError;
use serde::{Deserialize, Serialize};

/// The language a customer is called in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    En,
    Zh,
}

impl Language {
    /// `"en"` or `"zh"`.
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Zh => "zh",
        }
    }

    /// Parses `en`, `en-US`, `zh`, `zh-CN`, … (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        if s == "en" || s.starts_with("en-") || s.starts_with("en_") {
            Some(Language::En)
        } else if s == "zh" || s.starts_with("zh-") || s.starts_with("zh_") || s == "cmn" {
            Some(Language::Zh)
        } else {
            None
        }
    }
}

/// Everything known about one customer that may shape a conversation. Raw phone numbers are
/// never part of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CustomerProfile {
    pub customer_id: String,
    pub display_name: String,
    pub language: Language,
    // Static attributes.
    pub age: Option<u32>,
    pub region: Option<String>,
    pub occupation: Option<String>,
    /// 1 (lowest) to 5.
    pub income_band: Option<u8>,
    pub children_in_school: Option<u8>,
    // Dynamic attributes.
    pub recent_purchases: Option<u32>,
    /// Milliseconds since the Unix epoch.
    pub last_contact_ms: Option<i64>,
    pub calls_so_far: u32,
    // Implicit (inferred) attributes.
    pub interests: Vec<String>,
    /// 0 (buys on quality) to 1 (buys on price).
    pub price_sensitivity: Option<f32>,
    /// Segment name from the clustering job, e.g. `price_sensitive` or `quality_oriented`.
    pub segment: Option<String>,
    // Consent.
    pub do_not_call: bool,
}

/// What a snippet is about (the `kind` payload field of the index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnippetKind {
    Profile,
    History,
    Knowledge,
}

impl SnippetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SnippetKind::Profile => "profile",
            SnippetKind::History => "history",
            SnippetKind::Knowledge => "knowledge",
        }
    }
}

/// One retrieved piece of text with its relevance (higher is closer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snippet {
    pub kind: SnippetKind,
    pub text: String,
    pub score: f32,
}

/// The compact context handed to dialog for one turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ProfileContext {
    pub profile: CustomerProfile,
    /// Most relevant first, at most the `k` asked for.
    pub snippets: Vec<Snippet>,
}

/// Where dialog gets a customer's profile and turn context from.
#[async_trait::async_trait]
pub trait ProfileStore: Send + Sync {
    /// The customer's profile, or `None` if unknown (or erased).
    async fn profile(&self, customer_id: &str) -> Result<Option<CustomerProfile>, RetrievalError>;

    /// The profile plus the `k` snippets most relevant to `turn_text` (this customer's profile
    /// summary and call history, and the campaign's product knowledge).
    async fn context(
        &self,
        customer_id: &str,
        campaign_id: &str,
        turn_text: &str,
        k: usize,
    ) -> Result<ProfileContext, RetrievalError>;

    /// The same context, for a turn whose embedding the caller already has (dialog's NLU embeds
    /// every turn with the same sentence model): `turn_vec` must come from the store's embedder.
    /// Stores that do not embed ignore it; the default is [`context`](Self::context).
    async fn context_with_embedding(
        &self,
        customer_id: &str,
        campaign_id: &str,
        turn_text: &str,
        turn_vec: &[f32],
        k: usize,
    ) -> Result<ProfileContext, RetrievalError> {
        let _ = turn_vec;
        self.context(customer_id, campaign_id, turn_text, k).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes_parse() {
        assert_eq!(Language::parse("zh-CN"), Some(Language::Zh));
        assert_eq!(Language::parse(" EN "), Some(Language::En));
        assert_eq!(Language::parse("fr"), None);
        assert_eq!(Language::Zh.code(), "zh");
    }
}
