//! The campaign script: product, facts, templates per action and language, FAQ and
//! recommendations, loaded from YAML and validated at load time (never at call time).

use crate::policy::templates::{placeholders, TemplateKind};
use crate::{DialogError, Intent};
use retrieval::Language;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One value per language the campaign speaks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerLanguage<T> {
    #[serde(default)]
    pub en: Option<T>,
    #[serde(default)]
    pub zh: Option<T>,
}

impl<T> PerLanguage<T> {
    pub fn get(&self, language: Language) -> Option<&T> {
        match language {
            Language::En => self.en.as_ref(),
            Language::Zh => self.zh.as_ref(),
        }
    }
}

/// Template variants (2–4) of one action, per language.
pub type Variants = PerLanguage<Vec<String>>;

/// Which pitch a customer hears first: the saving or the cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    PriceSensitive,
    QualityOriented,
}

impl Segment {
    pub fn as_str(self) -> &'static str {
        match self {
            Segment::PriceSensitive => "price_sensitive",
            Segment::QualityOriented => "quality_oriented",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pitches {
    pub price_sensitive: Variants,
    pub quality_oriented: Variants,
}

/// The templates of every scripted action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    pub greet: Variants,
    pub pitch: Pitches,
    pub discount_offer: Variants,
    pub offer_callback: Variants,
    pub book_callback: Variants,
    /// Callback booked without a time the caller named.
    pub book_callback_unspecified: Variants,
    pub advisor_follow_up: Variants,
    pub hand_off: Variants,
    pub do_not_call: Variants,
    pub disclose_bot: Variants,
    pub close_converted: Variants,
    pub close_refused: Variants,
    pub clarify: Variants,
}

/// A product question with its approved answer, spoken exactly as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaqEntry {
    pub id: String,
    /// Ways callers ask it.
    pub questions: PerLanguage<Vec<String>>,
    pub answer: PerLanguage<String>,
    /// Exact names (product, rider, plan) that identify this entry when said verbatim.
    #[serde(default)]
    pub names: Vec<String>,
}

/// A second product recommended when the caller's words or profile show a need for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recommendation {
    pub id: String,
    pub product: PerLanguage<String>,
    /// NLU keyword keys that trigger it (e.g. `child_school`).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Profile: recommended when `children_in_school` is at least this.
    #[serde(default)]
    pub min_children_in_school: Option<u8>,
    /// Profile: recommended when the customer has one of these interests.
    #[serde(default)]
    pub interests: Vec<String>,
    /// Snippets (profile summary, call history) containing one of these words trigger it too.
    #[serde(default)]
    pub snippet_words: Vec<String>,
    pub say: Variants,
}

/// A campaign as written in its YAML file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    pub id: String,
    pub name: String,
    pub languages: Vec<Language>,
    pub company: PerLanguage<String>,
    pub agent: PerLanguage<String>,
    pub product: PerLanguage<String>,
    /// Said in place of `{customer_name}` when the profile has no name.
    pub customer_name_fallback: PerLanguage<String>,
    /// Pitch for customers whose profile says nothing about price sensitivity.
    pub default_segment: Segment,
    /// Named facts (price, discount, cover…) usable as `{slot}` in every template.
    pub facts: BTreeMap<String, PerLanguage<String>>,
    pub script: Script,
    /// Short openers said before the template, chosen by the caller's intent.
    #[serde(default)]
    pub openers: BTreeMap<Intent, Variants>,
    #[serde(default)]
    pub faq: Vec<FaqEntry>,
    #[serde(default)]
    pub recommendations: Vec<Recommendation>,
}

/// The script's named choice points an experiment may vary, each with the templates it fixes:
/// variant `i` of a choice point is variant `i` of each of its templates. `pitch_order` is the
/// pitch variants (which the campaign writes as orderings: saving first, cover first, …);
/// `after_refusal` is what the bot says after a first refusal (the callback offer).
pub const CHOICE_POINTS: [(&str, &[&str]); 3] = [
    ("opening", &["script.greet"]),
    (
        "pitch_order",
        &[
            "script.pitch.price_sensitive",
            "script.pitch.quality_oriented",
        ],
    ),
    ("after_refusal", &["script.offer_callback"]),
];

/// Slots every template may use besides the campaign's facts.
pub const COMMON_SLOTS: [&str; 4] = ["agent", "company", "product", "customer_name"];

impl Campaign {
    /// Reads and validates a campaign file.
    pub fn load(path: &Path) -> Result<Self, DialogError> {
        let source = std::fs::read_to_string(path).map_err(|e| DialogError::Campaign {
            path: path.display().to_string(),
            message: format!("cannot read the file: {e}"),
        })?;
        Self::parse(&source, &path.display().to_string())
    }

    /// Parses and validates campaign YAML; `origin` names the source in errors.
    pub fn parse(source: &str, origin: &str) -> Result<Self, DialogError> {
        let campaign: Campaign =
            serde_yaml_ng::from_str(source).map_err(|e| DialogError::Campaign {
                path: origin.to_string(),
                message: e.to_string(),
            })?;
        campaign
            .validate(source)
            .map_err(|message| DialogError::Campaign {
                path: origin.to_string(),
                message,
            })?;
        Ok(campaign)
    }

    /// Every template of the script with its field path and kind, for validation and checks.
    pub fn templates(&self) -> Vec<(String, TemplateKind, &Variants)> {
        let s = &self.script;
        let mut all = vec![
            ("script.greet".to_string(), TemplateKind::Scripted, &s.greet),
            (
                "script.pitch.price_sensitive".to_string(),
                TemplateKind::Scripted,
                &s.pitch.price_sensitive,
            ),
            (
                "script.pitch.quality_oriented".to_string(),
                TemplateKind::Scripted,
                &s.pitch.quality_oriented,
            ),
            (
                "script.discount_offer".into(),
                TemplateKind::Scripted,
                &s.discount_offer,
            ),
            (
                "script.offer_callback".into(),
                TemplateKind::Scripted,
                &s.offer_callback,
            ),
            (
                "script.book_callback".into(),
                TemplateKind::Callback,
                &s.book_callback,
            ),
            (
                "script.book_callback_unspecified".into(),
                TemplateKind::Scripted,
                &s.book_callback_unspecified,
            ),
            (
                "script.advisor_follow_up".into(),
                TemplateKind::Scripted,
                &s.advisor_follow_up,
            ),
            (
                "script.hand_off".into(),
                TemplateKind::Scripted,
                &s.hand_off,
            ),
            (
                "script.do_not_call".into(),
                TemplateKind::Scripted,
                &s.do_not_call,
            ),
            (
                "script.disclose_bot".into(),
                TemplateKind::Scripted,
                &s.disclose_bot,
            ),
            (
                "script.close_converted".into(),
                TemplateKind::Scripted,
                &s.close_converted,
            ),
            (
                "script.close_refused".into(),
                TemplateKind::Scripted,
                &s.close_refused,
            ),
            ("script.clarify".into(), TemplateKind::Scripted, &s.clarify),
        ];
        for (intent, v) in &self.openers {
            all.push((
                format!("openers.{}", intent.as_str()),
                TemplateKind::Opener,
                v,
            ));
        }
        for r in &self.recommendations {
            all.push((
                format!("recommendations[{}].say", r.id),
                TemplateKind::Recommendation,
                &r.say,
            ));
        }
        all
    }

    fn validate(&self, source: &str) -> Result<(), String> {
        if self.id.trim().is_empty() {
            return Err("field `id` is empty".into());
        }
        if self.languages.is_empty() {
            return Err("field `languages` is empty: list at least one of en, zh".into());
        }
        let line = |text: &str| line_of(source, text);
        for lang in &self.languages {
            let code = lang.code();
            for (field, v) in [
                ("company", &self.company),
                ("agent", &self.agent),
                ("product", &self.product),
                ("customer_name_fallback", &self.customer_name_fallback),
            ] {
                if v.get(*lang).is_none_or(|s| s.trim().is_empty()) {
                    return Err(format!("field `{field}.{code}` is missing"));
                }
            }
            for (key, fact) in &self.facts {
                let value = fact
                    .get(*lang)
                    .ok_or_else(|| format!("field `facts.{key}.{code}` is missing"))?;
                if value.contains(['{', '}']) {
                    return Err(format!(
                        "field `facts.{key}.{code}`{}: a fact is plain text, without {{slots}}",
                        line(value)
                    ));
                }
            }
        }
        for (path, kind, variants) in self.templates() {
            let (min, max) = if kind == TemplateKind::Opener {
                (1, 4)
            } else {
                (2, 4)
            };
            for lang in &self.languages {
                let code = lang.code();
                let list = variants
                    .get(*lang)
                    .ok_or_else(|| format!("field `{path}.{code}` is missing"))?;
                if list.len() < min || list.len() > max {
                    return Err(format!(
                        "field `{path}.{code}` has {} variants; write {min} to {max}",
                        list.len()
                    ));
                }
                for (i, text) in list.iter().enumerate() {
                    let names = placeholders(text)
                        .map_err(|e| format!("field `{path}.{code}[{i}]`{}: {e}", line(text)))?;
                    for name in names {
                        if !self.slot_allowed(kind, name) {
                            return Err(format!(
                                "field `{path}.{code}[{i}]`{}: unknown slot {{{name}}}; known: {}",
                                line(text),
                                self.known_slots(kind).join(", ")
                            ));
                        }
                    }
                }
            }
        }
        let mut ids = BTreeSet::new();
        for entry in &self.faq {
            if !ids.insert(entry.id.as_str()) {
                return Err(format!("faq id `{}` is used twice", entry.id));
            }
            for lang in &self.languages {
                let code = lang.code();
                let answer = entry
                    .answer
                    .get(*lang)
                    .ok_or_else(|| format!("field `faq[{}].answer.{code}` is missing", entry.id))?;
                if answer.contains(['{', '}']) {
                    return Err(format!(
                        "field `faq[{}].answer.{code}`{}: an answer is spoken as written, without {{slots}}",
                        entry.id,
                        line(answer)
                    ));
                }
                if entry.questions.get(*lang).is_none_or(Vec::is_empty) {
                    return Err(format!(
                        "field `faq[{}].questions.{code}` needs at least one question",
                        entry.id
                    ));
                }
            }
        }
        for r in &self.recommendations {
            if r.keywords.is_empty()
                && r.min_children_in_school.is_none()
                && r.interests.is_empty()
                && r.snippet_words.is_empty()
            {
                return Err(format!(
                    "recommendations[{}] has no trigger: set keywords, min_children_in_school, interests or snippet_words",
                    r.id
                ));
            }
            for lang in &self.languages {
                if r.product.get(*lang).is_none() {
                    return Err(format!(
                        "field `recommendations[{}].product.{}` is missing",
                        r.id,
                        lang.code()
                    ));
                }
            }
        }
        Ok(())
    }

    fn slot_allowed(&self, kind: TemplateKind, name: &str) -> bool {
        match kind {
            TemplateKind::Opener => false,
            _ => {
                COMMON_SLOTS.contains(&name)
                    || self.facts.contains_key(name)
                    || kind.extra_slot() == Some(name)
            }
        }
    }

    fn known_slots(&self, kind: TemplateKind) -> Vec<String> {
        if kind == TemplateKind::Opener {
            return vec!["(none: openers carry no slots)".into()];
        }
        COMMON_SLOTS
            .iter()
            .map(|s| s.to_string())
            .chain(self.facts.keys().cloned())
            .chain(kind.extra_slot().map(str::to_string))
            .collect()
    }

    /// The templates of a named choice point ([`CHOICE_POINTS`]) and how many variants it has:
    /// the fewest any of its templates has in any of the campaign's languages (a variant past
    /// a shorter list is never played). An error names the known choice points.
    pub fn choice_point(&self, name: &str) -> Result<(&'static [&'static str], usize), String> {
        let Some((_, keys)) = CHOICE_POINTS.iter().find(|(n, _)| *n == name) else {
            return Err(format!(
                "unknown choice point {name:?}; known: {}",
                CHOICE_POINTS.map(|(n, _)| n).join(", ")
            ));
        };
        let templates = self.templates();
        let mut arms = usize::MAX;
        for key in keys.iter() {
            if let Some((_, _, variants)) = templates.iter().find(|(k, _, _)| k == key) {
                for lang in &self.languages {
                    arms = arms.min(variants.get(*lang).map_or(0, Vec::len));
                }
            }
        }
        Ok((*keys, if arms == usize::MAX { 0 } else { arms }))
    }

    /// Every fact value in `language`, for the guard's allowed numbers.
    pub fn fact_values(&self, language: Language) -> impl Iterator<Item = &str> {
        self.facts
            .values()
            .filter_map(move |f| f.get(language).map(String::as_str))
    }
}

/// " (line N)" for the first line of `source` containing `text`, or "".
fn line_of(source: &str, text: &str) -> String {
    let probe: String = text.chars().take(24).collect();
    source
        .lines()
        .position(|l| l.contains(&probe))
        .map(|n| format!(" (line {})", n + 1))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> String {
        format!("{}/data/campaigns/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn bundled_campaigns_load() {
        for name in [
            "family_education_insurance.yaml",
            "telecom_family_plan.yaml",
        ] {
            let c = Campaign::load(Path::new(&data(name)));
            assert!(c.is_ok(), "{name}: {:?}", c.err());
        }
    }

    #[test]
    fn unknown_slot_is_a_load_error_with_field_and_line() {
        let path = data("family_education_insurance.yaml");
        let source = std::fs::read_to_string(&path).unwrap_or_default();
        let broken = source.replacen("{discount}", "{discout}", 1);
        assert_ne!(source, broken, "the fixture uses {{discount}}");
        let err = Campaign::parse(&broken, "broken.yaml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unknown slot {discout}"), "{err}");
        assert!(err.contains("(line "), "{err}");
        assert!(err.contains("broken.yaml"), "{err}");
    }

    #[test]
    fn a_missing_field_names_it() {
        let err = Campaign::parse("id: x\nname: y\n", "tiny.yaml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("missing field `languages`"), "{err}");
    }
}
