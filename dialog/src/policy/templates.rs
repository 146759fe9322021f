//! Template text: `{slot}` placeholders filled from the campaign and the profile, a
//! deterministic variant choice seeded per call, and sentence splitting for TTS.

use std::collections::BTreeMap;

/// What a template is for; decides which slots it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateKind {
    /// A scripted action: common slots and facts.
    Scripted,
    /// The callback confirmation: also `{callback_time}`.
    Callback,
    /// A recommendation: also `{recommended_product}`.
    Recommendation,
    /// A short opener: no slots at all.
    Opener,
}

impl TemplateKind {
    /// The one slot this kind adds to the common ones and the facts.
    pub fn extra_slot(self) -> Option<&'static str> {
        match self {
            TemplateKind::Callback => Some("callback_time"),
            TemplateKind::Recommendation => Some("recommended_product"),
            TemplateKind::Scripted | TemplateKind::Opener => None,
        }
    }
}

/// The slot names of a template, in order; an error for an unclosed or empty `{}`.
pub fn placeholders(template: &str) -> Result<Vec<&str>, String> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("a `}` without its `{`".into());
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| "a `{` without its `}`".to_string())?;
        let name = &after[..close];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`{{{name}}}` is not a slot name (letters, digits, _)"
            ));
        }
        names.push(name);
        rest = &after[close + 1..];
    }
    Ok(names)
}

/// Fills a template whose slots were validated at load time. A slot missing from `slots`
/// (a bug, since loading checks them) is left visible as `{name}` and logged.
pub fn render(template: &str, slots: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match slots.get(name) {
                    Some(v) => out.push_str(v),
                    None => {
                        tracing::error!(slot = name, "template slot has no value");
                        out.push_str(&rest[open..open + close + 2]);
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Starts every sentence with a capital letter (for English: a slot such as "the Family Shield
/// plan" may open a template).
pub fn capitalize_sentences(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at_start = true;
    let mut prev: Option<char> = None;
    for c in text.chars() {
        if at_start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
            at_start = false;
        } else {
            if c.is_alphanumeric() {
                at_start = false;
            }
            out.push(c);
        }
        // A `.` inside a number (33.15) ends nothing; `?`, `!` and a `.` before a space do.
        if matches!(c, '?' | '!') || (c.is_whitespace() && prev == Some('.')) {
            at_start = true;
        }
        prev = Some(c);
    }
    out
}

/// Picks one of `n` variants, stable for a given call seed, turn and template.
pub fn choose_variant(n: usize, seed: u64, turn: usize, key: &str) -> usize {
    if n == 0 {
        return 0;
    }
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in key
        .bytes()
        .chain((turn as u64).to_le_bytes())
        .chain(seed.to_le_bytes())
    {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    // splitmix64 finalizer: FNV's low bits barely depend on the input.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h % n as u64) as usize
}

/// Splits a reply into sentences (`.`, `?`, `!`, `。`, `？`, `！`), each trimmed, none empty.
/// A `.` between digits (a price like 57.80) does not end a sentence.
pub fn split_sentences(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        current.push(c);
        let ends = match c {
            '。' | '？' | '！' => true,
            '?' | '!' => true,
            '.' => {
                let digit_before = i > 0 && chars[i - 1].is_ascii_digit();
                let digit_after = chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
                !(digit_before && digit_after)
            }
            _ => false,
        };
        if ends {
            push_trimmed(&mut out, &mut current);
        }
    }
    push_trimmed(&mut out, &mut current);
    out
}

fn push_trimmed(out: &mut Vec<String>, current: &mut String) {
    let t = current.trim();
    if !t.is_empty() {
        out.push(t.to_string());
    }
    current.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_and_checked() {
        assert_eq!(
            placeholders("Hi {customer_name}, {price} now").ok(),
            Some(vec!["customer_name", "price"])
        );
        assert!(placeholders("oops {price").is_err());
        assert!(placeholders("oops price}").is_err());
        assert!(placeholders("{two words}").is_err());
    }

    #[test]
    fn render_fills_slots() {
        let slots = BTreeMap::from([("price".to_string(), "39 dollars".to_string())]);
        assert_eq!(render("Only {price}.", &slots), "Only 39 dollars.");
    }

    #[test]
    fn sentences_start_with_a_capital() {
        assert_eq!(
            capitalize_sentences("the plan is 33.15 dollars. the end? yes"),
            "The plan is 33.15 dollars. The end? Yes"
        );
        assert_eq!(capitalize_sentences("每月39元。"), "每月39元。");
    }

    #[test]
    fn variant_choice_is_stable_and_spread() {
        let a = choose_variant(3, 7, 2, "script.greet");
        assert_eq!(a, choose_variant(3, 7, 2, "script.greet"));
        let seen: std::collections::BTreeSet<usize> =
            (0..50).map(|s| choose_variant(3, s, 0, "k")).collect();
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn sentences_split_in_both_languages() {
        assert_eq!(
            split_sentences("It is 57.80 a month. Shall I? Yes!"),
            vec!["It is 57.80 a month.", "Shall I?", "Yes!"]
        );
        assert_eq!(
            split_sentences("每月39元。您看可以吗？"),
            vec!["每月39元。", "您看可以吗？"]
        );
    }
}
