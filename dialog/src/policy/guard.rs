//! The guard in front of every LLM-phrased reply: rule checks (length, language, numbers, price
//! claims, leaked prompt) and a semantic check against the approved template (embedding or
//! bigram similarity, negation count, who-does-what pronoun order, day and period words). Any
//! failure means the template is spoken instead.

use retrieval::{Embedder, Language};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Which check rejected a phrasing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Empty,
    Length,
    Language,
    Number,
    PriceClaim,
    LeakedPrompt,
    Similarity,
    Negation,
    Subject,
    DayWord,
    OpenerContent,
    Repetition,
}

impl Check {
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Empty => "empty",
            Check::Length => "length",
            Check::Language => "language",
            Check::Number => "number",
            Check::PriceClaim => "price_claim",
            Check::LeakedPrompt => "leaked_prompt",
            Check::Similarity => "similarity",
            Check::Negation => "negation",
            Check::Subject => "subject",
            Check::DayWord => "day_word",
            Check::OpenerContent => "opener_content",
            Check::Repetition => "repetition",
        }
    }
}

/// Why a phrasing was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub check: Check,
    pub detail: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.check.as_str(), self.detail)
    }
}

fn reject(check: Check, detail: impl Into<String>) -> Result<(), Rejection> {
    Err(Rejection {
        check,
        detail: detail.into(),
    })
}

/// Thresholds of the guard.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GuardConfig {
    /// A paraphrase may be this much shorter / longer than the template (in characters).
    pub min_length_ratio: f32,
    pub max_length_ratio: f32,
    /// Longest opener, in characters (English / Chinese).
    pub opener_max_chars_en: usize,
    pub opener_max_chars_zh: usize,
    /// Least cosine between the paraphrase and the template (English, sentence embeddings).
    pub min_similarity_dense: f32,
    /// Least character-bigram similarity (Chinese, or English without an embedder).
    pub min_similarity_lexical: f32,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            min_length_ratio: 0.5,
            max_length_ratio: 1.8,
            opener_max_chars_en: 48,
            opener_max_chars_zh: 12,
            min_similarity_dense: 0.8,
            min_similarity_lexical: 0.5,
        }
    }
}

/// Words that commit to money or terms; a phrasing may use one only if the template does.
const PRICE_CLAIMS_EN: [&str; 14] = [
    "free",
    "no charge",
    "no cost",
    "discount",
    "% ",
    "percent",
    "off ",
    "cheaper",
    "refund",
    "guarantee",
    "waive",
    "bonus",
    "cashback",
    "price",
];
const PRICE_CLAIMS_ZH: [&str; 10] = [
    "免费", "折", "优惠", "返", "退款", "保证", "赠送", "便宜", "%", "价",
];
/// Signs that the prompt, not a reply, came out.
const LEAK_MARKERS: [&str; 22] = [
    "system",
    "instruction",
    "prompt",
    "template",
    "rewrite",
    "paraphrase",
    "rephrase",
    "assistant",
    "as an ai",
    "language model",
    "<|",
    "|>",
    "caller said",
    "the caller",
    "message:",
    "customer:",
    "line:",
    "指令",
    "提示",
    "模板",
    "改写",
    "用户",
];
const NEGATIONS_EN: [&str; 11] = [
    "not", "no", "never", "cannot", "without", "nothing", "none", "nobody", "neither", "nor",
    "unable",
];
const NEGATIONS_ZH: [char; 7] = ['不', '没', '无', '别', '未', '非', '勿'];
const FIRST_EN: [&str; 12] = [
    "i", "i'm", "i'll", "i've", "i'd", "me", "my", "we", "we'll", "we're", "us", "our",
];
const SECOND_EN: [&str; 7] = [
    "you", "you'll", "you're", "you've", "you'd", "your", "yours",
];
const DAY_WORDS_EN: [&str; 22] = [
    "today",
    "tomorrow",
    "tonight",
    "yesterday",
    "morning",
    "afternoon",
    "evening",
    "noon",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "week",
    "month",
    "year",
    "annual",
    "daily",
    "weekly",
    "monthly",
];
const DAY_WORDS_ZH: [&str; 20] = [
    "今天", "明天", "后天", "昨天", "今晚", "上午", "下午", "晚上", "中午", "早上", "周", "星期",
    "月", "年", "礼拜", "每天", "日", "小时", "分钟", "季度",
];
const EN_UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const EN_TENS: [&str; 8] = [
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// Rule guard plus semantic check.
pub struct Guard {
    pub config: GuardConfig,
    embedder: Option<Arc<dyn Embedder>>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("config", &self.config)
            .field("dense", &self.embedder.is_some())
            .finish()
    }
}

impl Guard {
    /// `embedder` (English sentence embeddings) powers the semantic similarity for English;
    /// without it, and for Chinese, character bigrams are compared.
    pub fn new(config: GuardConfig, embedder: Option<Arc<dyn Embedder>>) -> Self {
        Self { config, embedder }
    }

    /// Checks an LLM paraphrase of `template`. `facts` are the campaign's fact values (their
    /// numbers are allowed too); `prompt` is everything the model was shown.
    pub fn check_paraphrase(
        &self,
        reply: &str,
        template: &str,
        facts: &[&str],
        prompt: &str,
        language: Language,
    ) -> Result<(), Rejection> {
        let reply = reply.trim();
        if reply.is_empty() {
            return reject(Check::Empty, "no text");
        }
        check_language(reply, language)?;
        check_repetition(reply, template)?;
        let (r, t) = (
            reply.chars().count() as f32,
            template.chars().count() as f32,
        );
        if r < t * self.config.min_length_ratio || r > t * self.config.max_length_ratio {
            return reject(
                Check::Length,
                format!("{r} characters for a {t}-character template"),
            );
        }
        check_leak(reply, template, prompt)?;
        let allowed: BTreeSet<String> = numbers(template, language)
            .into_iter()
            .chain(facts.iter().flat_map(|f| numbers(f, language)))
            .collect();
        let said = numbers(reply, language);
        if let Some(n) = said.iter().find(|n| !allowed.contains(*n)) {
            return reject(
                Check::Number,
                format!("{n} is in neither the template nor the facts"),
            );
        }
        if let Some(n) = numbers(template, language)
            .into_iter()
            .find(|n| !said.contains(n))
        {
            return reject(Check::Number, format!("the template's {n} is missing"));
        }
        check_price_claims(reply, template, language)?;
        self.check_semantics(reply, template, language)
    }

    /// Checks a short LLM opener said before the template: one short sentence that carries no
    /// content (no number, price word, day word, negation or promise).
    pub fn check_opener(
        &self,
        opener: &str,
        prompt: &str,
        language: Language,
    ) -> Result<(), Rejection> {
        let opener = opener.trim();
        if opener.is_empty() {
            return reject(Check::Empty, "no text");
        }
        let max = match language {
            Language::En => self.config.opener_max_chars_en,
            Language::Zh => self.config.opener_max_chars_zh,
        };
        let n = opener.chars().count();
        if n > max {
            return reject(Check::Length, format!("{n} characters > {max}"));
        }
        if crate::policy::templates::split_sentences(opener).len() > 1 {
            return reject(Check::Length, "more than one sentence");
        }
        check_language(opener, language)?;
        check_repetition(opener, "")?;
        check_leak(opener, "", prompt)?;
        if let Some(n) = numbers(opener, language).into_iter().next() {
            return reject(Check::Number, format!("an opener says no number ({n})"));
        }
        check_price_claims(opener, "", language)?;
        if negations(opener, language) > 0 {
            return reject(Check::Negation, "an opener carries no negation");
        }
        if let Some(w) = day_words(opener, language).into_iter().next() {
            return reject(Check::DayWord, format!("an opener names no time ({w})"));
        }
        let lower = opener.to_lowercase();
        let promises_en = [
            "will", "'ll", "can", "going to", "promise", "sure to", "send", "call",
        ];
        let promises_zh = ["会", "可以", "能", "给您", "保证", "马上", "帮您"];
        let promise = match language {
            Language::En => promises_en
                .iter()
                .find(|p| contains_word(&lower, p))
                .copied(),
            Language::Zh => promises_zh.iter().find(|p| opener.contains(**p)).copied(),
        };
        if let Some(p) = promise {
            return reject(
                Check::OpenerContent,
                format!("an opener makes no promise ({p})"),
            );
        }
        Ok(())
    }

    /// Meaning checks of a paraphrase against its template.
    fn check_semantics(
        &self,
        reply: &str,
        template: &str,
        language: Language,
    ) -> Result<(), Rejection> {
        let (neg_r, neg_t) = (negations(reply, language), negations(template, language));
        if neg_r != neg_t {
            return reject(
                Check::Negation,
                format!("{neg_r} negations where the template has {neg_t}"),
            );
        }
        let (p_r, p_t) = (persons(reply, language), persons(template, language));
        if p_r != p_t {
            return reject(
                Check::Subject,
                format!("speaker/listener order {p_r:?} where the template has {p_t:?}"),
            );
        }
        let (d_r, d_t) = (day_words(reply, language), day_words(template, language));
        if d_r != d_t {
            return reject(
                Check::DayWord,
                format!("{d_r:?} where the template has {d_t:?}"),
            );
        }
        let (similarity, min) = match (&self.embedder, language) {
            (Some(e), Language::En) => {
                let v = e.embed(&[reply, template]).map_err(|e| Rejection {
                    check: Check::Similarity,
                    detail: format!("embedding failed: {e}"),
                })?;
                let sim = match v.as_slice() {
                    [a, b] => a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>(),
                    _ => 0.0,
                };
                (sim, self.config.min_similarity_dense)
            }
            _ => (
                bigram_dice(reply, template),
                self.config.min_similarity_lexical,
            ),
        };
        if similarity < min {
            return reject(
                Check::Similarity,
                format!("similarity {similarity:.2} < {min:.2}"),
            );
        }
        Ok(())
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}')
}

fn check_language(text: &str, language: Language) -> Result<(), Rejection> {
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    let cjk = letters.iter().filter(|c| is_cjk(**c)).count();
    let latin = letters.iter().filter(|c| c.is_ascii_alphabetic()).count();
    match language {
        Language::En if cjk > 0 || latin * 10 < letters.len() * 9 => {
            reject(Check::Language, "not English")
        }
        Language::Zh if cjk * 10 < letters.len() * 7 => reject(Check::Language, "not Chinese"),
        _ => Ok(()),
    }
}

fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace(['’', '‘'], "'")
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(|w| w.trim_matches('\'').to_string())
        .collect()
}

fn contains_word(lower: &str, phrase: &str) -> bool {
    if phrase.starts_with('\'') {
        return lower.contains(phrase);
    }
    let w = words(lower);
    let p = words(phrase);
    !p.is_empty() && w.windows(p.len()).any(|win| win == p.as_slice())
}

fn check_leak(text: &str, template: &str, prompt: &str) -> Result<(), Rejection> {
    let lower = text.to_lowercase();
    let template = template.to_lowercase();
    if let Some(m) = LEAK_MARKERS
        .iter()
        .find(|m| lower.contains(*m) && !template.contains(*m))
    {
        return reject(Check::LeakedPrompt, format!("says \"{m}\""));
    }
    // Five words (or, for Chinese, four characters) in a row from the prompt, including the
    // caller's words, that the template does not have.
    let reply_words = words(text);
    let prompt_words = words(prompt);
    let template_words = words(&template);
    for win in reply_words.windows(5) {
        let in_prompt = prompt_words.windows(5).any(|p| p == win);
        let in_template = template_words.windows(5).any(|p| p == win);
        if in_prompt && !in_template {
            return reject(Check::LeakedPrompt, format!("copies \"{}\"", win.join(" ")));
        }
    }
    let cjk = |t: &str| -> Vec<char> { t.chars().filter(|c| is_cjk(*c)).collect() };
    let template_cjk: String = cjk(&template).into_iter().collect();
    let prompt_cjk: String = cjk(prompt).into_iter().collect();
    for win in cjk(text).windows(4) {
        let gram: String = win.iter().collect();
        if prompt_cjk.contains(&gram) && !template_cjk.contains(&gram) {
            return reject(Check::LeakedPrompt, format!("copies \"{gram}\""));
        }
    }
    Ok(())
}

/// A phrase said twice that the template does not repeat: small models loop ("I'm sorry, and
/// I'm sorry, I'm sorry").
fn check_repetition(reply: &str, template: &str) -> Result<(), Rejection> {
    let allowed = repeated_phrases(template);
    match repeated_phrases(reply).difference(&allowed).next() {
        Some(p) => reject(Check::Repetition, format!("says \"{p}\" twice")),
        None => Ok(()),
    }
}

/// Phrases (two words, or three Chinese characters) that occur more than once in a text.
fn repeated_phrases(text: &str) -> BTreeSet<String> {
    let chars: Vec<char> = text.chars().filter(|c| is_cjk(*c)).collect();
    let grams = words(text)
        .windows(2)
        .map(|w| w.join(" "))
        .chain(chars.windows(3).map(|w| w.iter().collect::<String>()))
        .collect::<Vec<_>>();
    let mut seen = BTreeSet::new();
    grams
        .into_iter()
        .filter(|g| !seen.insert(g.clone()))
        .collect()
}

fn check_price_claims(reply: &str, template: &str, language: Language) -> Result<(), Rejection> {
    let (r, t) = (
        format!("{} ", reply.to_lowercase()),
        format!("{} ", template.to_lowercase()),
    );
    let claim = match language {
        Language::En => PRICE_CLAIMS_EN
            .iter()
            .find(|w| contains_claim(&r, w) && !contains_claim(&t, w)),
        Language::Zh => PRICE_CLAIMS_ZH
            .iter()
            .find(|w| r.contains(**w) && !t.contains(**w)),
    };
    match claim {
        Some(w) => reject(
            Check::PriceClaim,
            format!("\"{}\" is not in the template", w.trim()),
        ),
        None => Ok(()),
    }
}

fn contains_claim(lower: &str, claim: &str) -> bool {
    if claim.chars().all(|c| c.is_alphabetic() || c == ' ') {
        contains_word(lower, claim.trim())
    } else {
        lower.contains(claim)
    }
}

/// Every number in a text, normalized ("1,000" → "1000", "fifteen" → "15", 五十 → "50").
pub fn numbers(text: &str, language: Language) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let mut s = String::new();
            while i < chars.len() {
                let d = chars[i];
                let joins = (d == ',' || d == '.')
                    && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit())
                    && !s.is_empty();
                if d.is_ascii_digit() || joins {
                    if d != ',' {
                        s.push(d);
                    }
                    i += 1;
                } else {
                    break;
                }
            }
            let mut value: f64 = s.parse().unwrap_or(0.0);
            if chars.get(i) == Some(&'万') {
                value *= 10_000.0;
                i += 1;
            }
            out.push(format_number(value));
            continue;
        }
        if zh_digit(c).is_some() || matches!(c, '十' | '百' | '千' | '万') {
            let start = i;
            while i < chars.len()
                && (zh_digit(chars[i]).is_some() || matches!(chars[i], '十' | '百' | '千' | '万'))
            {
                i += 1;
            }
            let run: String = chars[start..i].iter().collect();
            if let Some(v) = zh_big_number(&run) {
                out.push(format_number(v));
            }
            continue;
        }
        i += 1;
    }
    if language == Language::En {
        out.extend(english_number_words(text));
    }
    out
}

/// Value of one Chinese digit character.
fn zh_digit(c: char) -> Option<u32> {
    Some(match c {
        '零' | '〇' => 0,
        '一' => 1,
        '二' | '两' => 2,
        '三' => 3,
        '四' => 4,
        '五' => 5,
        '六' => 6,
        '七' => 7,
        '八' => 8,
        '九' => 9,
        _ => return None,
    })
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// 五十万 → 500000, 两千三百 → 2300, 八五 → 85 (digit-by-digit, as in 八五折).
fn zh_big_number(run: &str) -> Option<f64> {
    if !run.contains(['十', '百', '千', '万']) {
        // Digit by digit: 八五 → 85.
        return run
            .chars()
            .try_fold(0f64, |acc, c| Some(acc * 10.0 + f64::from(zh_digit(c)?)));
    }
    let mut total = 0f64;
    let mut section = 0f64;
    let mut digit = 0f64;
    for c in run.chars() {
        match c {
            '十' => {
                section += if digit == 0.0 { 1.0 } else { digit } * 10.0;
                digit = 0.0;
            }
            '百' => {
                section += digit * 100.0;
                digit = 0.0;
            }
            '千' => {
                section += digit * 1000.0;
                digit = 0.0;
            }
            '万' => {
                total += (section + digit).max(1.0) * 10_000.0;
                section = 0.0;
                digit = 0.0;
            }
            _ => digit = f64::from(zh_digit(c)?),
        }
    }
    Some(total + section + digit)
}

fn english_number_words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<u64> = None;
    let mut total = 0u64;
    let flush = |current: &mut Option<u64>, total: &mut u64, out: &mut Vec<String>| {
        if let Some(c) = current.take() {
            out.push((*total + c).to_string());
        }
        *total = 0;
    };
    for w in words(text) {
        let w = w.as_str();
        if let Some(u) = EN_UNITS.iter().position(|x| *x == w) {
            current = Some(current.unwrap_or(0) + u as u64);
        } else if let Some(t) = EN_TENS.iter().position(|x| *x == w) {
            current = Some(current.unwrap_or(0) + 20 + 10 * t as u64);
        } else if w == "hundred" {
            current = Some(current.unwrap_or(1) * 100);
        } else if w == "thousand" || w == "million" {
            let m = if w == "thousand" { 1_000 } else { 1_000_000 };
            total += current.unwrap_or(1) * m;
            current = Some(0);
        } else if w == "and" && current.is_some() {
            continue;
        } else {
            flush(&mut current, &mut total, &mut out);
        }
    }
    flush(&mut current, &mut total, &mut out);
    // "one" is mostly a pronoun ("the right one"); it is not a number claim.
    out.retain(|n| n != "1");
    out
}

fn negations(text: &str, language: Language) -> usize {
    match language {
        Language::En => words(text)
            .iter()
            .filter(|w| NEGATIONS_EN.contains(&w.as_str()) || w.ends_with("n't"))
            .count(),
        Language::Zh => text.chars().filter(|c| NEGATIONS_ZH.contains(c)).count(),
    }
}

/// Order in which speaker (1) and listener (2) are mentioned, repeats collapsed.
fn persons(text: &str, language: Language) -> Vec<u8> {
    let mut seq: Vec<u8> = Vec::new();
    let mut push = |p: u8| {
        if seq.last() != Some(&p) {
            seq.push(p);
        }
    };
    match language {
        Language::En => {
            // "Thank you" is a formula, not the listener doing something.
            let text = text.to_lowercase().replace("thank you", "thanks");
            for w in words(&text) {
                if FIRST_EN.contains(&w.as_str()) {
                    push(1);
                } else if SECOND_EN.contains(&w.as_str()) {
                    push(2);
                }
            }
        }
        Language::Zh => {
            let chars: Vec<char> = text.chars().collect();
            for (i, c) in chars.iter().enumerate() {
                match c {
                    '我' | '咱' => push(1),
                    '您' => push(2),
                    // 你 (and 你们) is the listener; 你好 is a greeting.
                    '你' if chars.get(i + 1) != Some(&'好') => push(2),
                    _ => {}
                }
            }
        }
    }
    seq
}

fn day_words(text: &str, language: Language) -> BTreeSet<String> {
    match language {
        Language::En => {
            let w = words(text);
            DAY_WORDS_EN
                .iter()
                .filter(|d| {
                    w.iter()
                        .any(|x| x == **d || x.strip_suffix('s') == Some(**d))
                })
                .map(|d| d.to_string())
                .collect()
        }
        Language::Zh => DAY_WORDS_ZH
            .iter()
            .filter(|d| text.contains(**d))
            .map(|d| d.to_string())
            .collect(),
    }
}

fn bigram_dice(a: &str, b: &str) -> f32 {
    let grams = |t: &str| -> BTreeSet<(char, char)> {
        let c: Vec<char> = t
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect();
        c.windows(2).map(|w| (w[0], w[1])).collect()
    };
    let (x, y) = (grams(a), grams(b));
    if x.is_empty() || y.is_empty() {
        return 0.0;
    }
    2.0 * x.intersection(&y).count() as f32 / (x.len() + y.len()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_every_form() {
        assert_eq!(
            numbers("39 dollars, 1,000 or 57.80", Language::En),
            ["39", "1000", "57.8"]
        );
        assert_eq!(numbers("ninety percent off", Language::En), ["90"]);
        assert_eq!(numbers("twenty five", Language::En), ["25"]);
        assert_eq!(
            numbers("保额50万元，打八五折，五十万", Language::Zh),
            ["500000", "85", "500000"]
        );
    }

    #[test]
    fn persons_follow_order() {
        assert_eq!(persons("I'll call you tomorrow", Language::En), [1, 2]);
        assert_eq!(persons("You'll call me tomorrow", Language::En), [2, 1]);
        assert_eq!(persons("我明天给您回电话", Language::Zh), [1, 2]);
    }
}
