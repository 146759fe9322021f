//! Text normalisation shared by the lexicon and the classifier features: lower case, one form
//! of apostrophe (dropped, as ASR often drops it), full-width to ASCII, traditional to simplified
//! characters for the common ones, and clause splitting at punctuation.

use retrieval::Language;

/// Traditional characters Whisper tends to emit for Mandarin, mapped to their simplified form.
const TRADITIONAL: &[(char, char)] = &[
    ('貴', '贵'),
    ('時', '时'),
    ('間', '间'),
    ('沒', '没'),
    ('們', '们'),
    ('機', '机'),
    ('嗎', '吗'),
    ('態', '态'),
    ('別', '别'),
    ('話', '话'),
    ('電', '电'),
    ('錢', '钱'),
    ('買', '买'),
    ('賣', '卖'),
    ('這', '这'),
    ('個', '个'),
    ('說', '说'),
    ('還', '还'),
    ('來', '来'),
    ('給', '给'),
    ('號', '号'),
    ('碼', '码'),
    ('對', '对'),
    ('請', '请'),
    ('過', '过'),
    ('會', '会'),
    ('費', '费'),
    ('險', '险'),
    ('務', '务'),
    ('經', '经'),
    ('後', '后'),
    ('麼', '么'),
    ('點', '点'),
    ('週', '周'),
    ('聯', '联'),
    ('繫', '系'),
    ('擾', '扰'),
    ('訴', '诉'),
    ('單', '单'),
    ('刪', '删'),
    ('訂', '订'),
    ('為', '为'),
    ('煩', '烦'),
    ('兒', '儿'),
    ('學', '学'),
];

/// Lower-cases and unifies characters (English `%` becomes ` percent `); keeps punctuation
/// (clause breaks) and spaces.
pub fn normalize(text: &str, language: Language) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = match c {
            // Full-width ASCII (Ａ, ０, ？) → ASCII.
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            '’' | '‘' | '`' | '\'' => continue,
            '%' if language == Language::En => {
                out.push_str(" percent ");
                continue;
            }
            _ => c,
        };
        let c = match language {
            Language::Zh => TRADITIONAL
                .iter()
                .find(|(t, _)| *t == c)
                .map_or(c, |(_, s)| *s),
            Language::En => c,
        };
        out.extend(c.to_lowercase());
    }
    out
}

/// The first `max_words` whitespace-separated words of `text` (all of it when shorter): what the
/// sentence embedder reads of a turn. Caller turns are short; a rambling one is cut so one
/// turn's encoder cost stays bounded (its attention grows with the square of the length).
pub fn head_words(text: &str, max_words: usize) -> &str {
    let mut words = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            in_word = false;
        } else if !in_word {
            if words == max_words {
                return text[..i].trim();
            }
            in_word = true;
            words += 1;
        }
    }
    text.trim()
}

/// Whether `c` ends a clause (negation does not reach across it).
pub fn is_clause_break(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | '!' | '?' | ';' | ':' | '。' | '，' | '！' | '？' | '；' | '、' | '…'
    )
}

/// English words of a normalised clause: runs of letters and digits.
pub fn words(clause: &str) -> Vec<&str> {
    clause
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Clauses of a normalised text, split at punctuation (empty clauses dropped).
pub fn clauses(text: &str) -> impl Iterator<Item = &str> {
    text.split(is_clause_break).filter(|c| !c.trim().is_empty())
}

/// Chinese characters and other non-space, non-punctuation characters of a clause, in order.
pub fn chars_no_space(clause: &str) -> Vec<char> {
    clause
        .chars()
        .filter(|c| !c.is_whitespace() && !is_clause_break(*c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_apostrophes_fullwidth_and_traditional() {
        assert_eq!(normalize("I’m NOT", Language::En), "im not");
        assert_eq!(normalize("太貴了！ＡＩ", Language::Zh), "太贵了!ai");
        assert_eq!(clauses("no, too much. ok").count(), 3);
        assert_eq!(
            words(&normalize("don't 90% off", Language::En)),
            ["dont", "90", "percent", "off"]
        );
    }

    #[test]
    fn head_words_cuts_at_a_word_boundary() {
        assert_eq!(head_words("  call me back  ", 5), "call me back");
        assert_eq!(head_words("call me  back tomorrow", 2), "call me");
        assert_eq!(head_words("太贵了 真的 太贵", 2), "太贵了 真的");
        assert_eq!(head_words("", 3), "");
    }
}
