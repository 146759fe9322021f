//! Keyword and sentiment lexicons for English and Mandarin (`data/nlu/lexicon.json`), matched
//! on normalised words (en) or characters (zh) with negation: a negator shortly before a match
//! within the same clause ("not too expensive", 不贵, 不是没时间) marks it negated, except for
//! keys whose phrases carry their own negation (`fixed_polarity`: 以后别再给我打电话了 is an
//! opt-out, not a negated one).

use super::{text, Keyword};
use crate::DialogError;
use retrieval::Language;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// How many words (en) or characters (zh) before a match a negator may stand: "not too
/// expensive", "isn't really too expensive"; 不贵, 不是没时间 (but not 没时间不需要).
const fn negation_window(language: Language) -> usize {
    match language {
        Language::En => 3,
        Language::Zh => 2,
    }
}

#[derive(Debug, Deserialize)]
struct KeyPhrases {
    key: String,
    phrases: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct LanguageFile {
    negators: Vec<String>,
    clause_breaks: Vec<String>,
    /// Keys never marked negated: their phrases already say "don't" ("dont call me", 别再打),
    /// and a negator before them is part of the same request (以后别再给我打电话, "no, never
    /// call me"), not its opposite.
    #[serde(default)]
    fixed_polarity: Vec<String>,
    keywords: Vec<KeyPhrases>,
    blockers: Vec<KeyPhrases>,
    sentiment: BTreeMap<String, f32>,
}

#[derive(Debug, Deserialize)]
struct LexiconFile {
    en: LanguageFile,
    zh: LanguageFile,
}

/// A phrase cut into units: words (en) or characters (zh).
type Units = Vec<String>;

#[derive(Debug)]
struct Entry {
    key: String,
    phrase: Units,
    /// Never negated (see `LanguageFile::fixed_polarity`).
    fixed_polarity: bool,
    /// Longer phrases containing this one that cancel it (贵公司 is not 贵).
    blockers: Vec<Units>,
}

#[derive(Debug)]
struct LanguageLexicon {
    language: Language,
    negators: Vec<String>,
    clause_breaks: Vec<Units>,
    /// Longest phrase first, so "too expensive" wins over "expensive".
    keywords: Vec<Entry>,
    sentiment: Vec<(Units, f32)>,
}

/// Both languages' lexicons.
#[derive(Debug)]
pub struct Lexicon {
    en: LanguageLexicon,
    zh: LanguageLexicon,
}

/// A clause cut into units.
struct Clause {
    units: Vec<String>,
}

impl Lexicon {
    /// Reads a lexicon file (see `data/nlu/lexicon.json`).
    pub fn load(path: &Path) -> Result<Self, DialogError> {
        Self::parse(&super::data::read(path)?).map_err(|message| DialogError::NluFile {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses the JSON text of a lexicon file.
    pub fn parse(json: &str) -> Result<Self, String> {
        let file: LexiconFile = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Ok(Self {
            en: LanguageLexicon::new(file.en, Language::En),
            zh: LanguageLexicon::new(file.zh, Language::Zh),
        })
    }

    fn of(&self, language: Language) -> &LanguageLexicon {
        match language {
            Language::En => &self.en,
            Language::Zh => &self.zh,
        }
    }

    /// Keywords found in an already normalised text, in order of appearance; one per key and
    /// polarity.
    pub fn keywords(&self, normalized: &str, language: Language) -> Vec<Keyword> {
        let lex = self.of(language);
        let mut found: Vec<(usize, Keyword)> = Vec::new();
        let mut offset = 0;
        for clause in lex.clauses(normalized) {
            let mut taken: Vec<(String, usize, usize)> = Vec::new();
            for entry in &lex.keywords {
                for start in find_all(&clause.units, &entry.phrase) {
                    let end = start + entry.phrase.len();
                    let overlaps_same_key = taken
                        .iter()
                        .any(|(k, s, e)| *k == entry.key && start < *e && *s < end);
                    if overlaps_same_key || lex.blocked(&clause.units, entry, start, end) {
                        continue;
                    }
                    taken.push((entry.key.clone(), start, end));
                    let keyword = Keyword {
                        key: entry.key.clone(),
                        matched: lex.join(&clause.units[start..end]),
                        negated: !entry.fixed_polarity && lex.negated(&clause.units, start),
                    };
                    if !found
                        .iter()
                        .any(|(_, k)| k.key == keyword.key && k.negated == keyword.negated)
                    {
                        found.push((offset + start, keyword));
                    }
                }
            }
            offset += clause.units.len();
        }
        found.sort_by_key(|(pos, _)| *pos);
        found.into_iter().map(|(_, k)| k).collect()
    }

    /// Lexicon sentiment of a normalised text in -1..1 (tanh of the summed polarities; a
    /// negated word counts half, with the opposite sign).
    pub fn sentiment(&self, normalized: &str, language: Language) -> f32 {
        let lex = self.of(language);
        let mut sum = 0.0;
        for clause in lex.clauses(normalized) {
            let mut covered = vec![false; clause.units.len()];
            for (phrase, value) in &lex.sentiment {
                for start in find_all(&clause.units, phrase) {
                    let end = start + phrase.len();
                    if covered[start..end].iter().any(|c| *c) {
                        continue;
                    }
                    covered[start..end].iter_mut().for_each(|c| *c = true);
                    sum += if lex.negated(&clause.units, start) {
                        -0.5 * value
                    } else {
                        *value
                    };
                }
            }
        }
        sum.tanh()
    }
}

impl LanguageLexicon {
    fn new(file: LanguageFile, language: Language) -> Self {
        let units = |p: &str| split_units(&text::normalize(p, language), language);
        let mut keywords: Vec<Entry> = file
            .keywords
            .iter()
            .flat_map(|kp| {
                let blockers: Vec<Units> = file
                    .blockers
                    .iter()
                    .filter(|b| b.key == kp.key)
                    .flat_map(|b| b.phrases.iter().map(|p| units(p)))
                    .collect();
                let fixed_polarity = file.fixed_polarity.contains(&kp.key);
                kp.phrases.iter().map(move |p| Entry {
                    key: kp.key.clone(),
                    phrase: units(p),
                    fixed_polarity,
                    blockers: blockers.clone(),
                })
            })
            .filter(|e| !e.phrase.is_empty())
            .collect();
        keywords.sort_by_key(|e| std::cmp::Reverse(e.phrase.len()));
        let mut sentiment: Vec<(Units, f32)> = file
            .sentiment
            .iter()
            .map(|(p, v)| (units(p), *v))
            .filter(|(u, _)| !u.is_empty())
            .collect();
        sentiment.sort_by_key(|(u, _)| std::cmp::Reverse(u.len()));
        Self {
            language,
            negators: file
                .negators
                .iter()
                .map(|n| text::normalize(n, language))
                .collect(),
            clause_breaks: file
                .clause_breaks
                .iter()
                .map(|b| units(b))
                .filter(|b| !b.is_empty())
                .collect(),
            keywords,
            sentiment,
        }
    }

    /// Clauses split at punctuation and at clause-break words ("but", 但是).
    fn clauses(&self, normalized: &str) -> Vec<Clause> {
        let mut out = Vec::new();
        for clause in text::clauses(normalized) {
            let mut current = Vec::new();
            let units = split_units(clause, self.language);
            let mut i = 0;
            while i < units.len() {
                if let Some(b) = self
                    .clause_breaks
                    .iter()
                    .find(|b| units[i..].starts_with(b))
                {
                    out.push(Clause {
                        units: std::mem::take(&mut current),
                    });
                    i += b.len();
                } else {
                    current.push(units[i].clone());
                    i += 1;
                }
            }
            out.push(Clause { units: current });
        }
        out.retain(|c| !c.units.is_empty());
        out
    }

    /// Odd number of negators in the window before `start`.
    fn negated(&self, units: &[String], start: usize) -> bool {
        let from = start.saturating_sub(negation_window(self.language));
        units[from..start]
            .iter()
            .filter(|u| self.negators.contains(u))
            .count()
            % 2
            == 1
    }

    fn blocked(&self, units: &[String], entry: &Entry, start: usize, end: usize) -> bool {
        entry.blockers.iter().any(|b| {
            find_all(units, b)
                .into_iter()
                .any(|s| s < end && start < s + b.len())
        })
    }

    fn join(&self, units: &[String]) -> String {
        match self.language {
            Language::En => units.join(" "),
            Language::Zh => units.concat(),
        }
    }
}

/// Words (en) or non-space characters (zh; a run of Latin letters or digits stays one unit, so
/// "ai" and "chatgpt" are words there too).
fn split_units(normalized: &str, language: Language) -> Units {
    match language {
        Language::En => text::words(normalized)
            .into_iter()
            .map(str::to_string)
            .collect(),
        Language::Zh => {
            let mut out: Units = Vec::new();
            let mut latin = String::new();
            for c in text::chars_no_space(normalized) {
                if c.is_ascii_alphanumeric() {
                    latin.push(c);
                    continue;
                }
                if !latin.is_empty() {
                    out.push(std::mem::take(&mut latin));
                }
                out.push(c.to_string());
            }
            if !latin.is_empty() {
                out.push(latin);
            }
            out
        }
    }
}

/// Start positions of `needle` in `haystack`.
fn find_all(haystack: &[String], needle: &[String]) -> Vec<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return Vec::new();
    }
    (0..=haystack.len() - needle.len())
        .filter(|&i| haystack[i..i + needle.len()] == *needle)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexicon() -> Lexicon {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/nlu/lexicon.json");
        Lexicon::load(&path).expect("lexicon")
    }

    fn keys(lex: &Lexicon, t: &str, lang: Language) -> Vec<(String, bool)> {
        lex.keywords(&text::normalize(t, lang), lang)
            .into_iter()
            .map(|k| (k.key, k.negated))
            .collect()
    }

    #[test]
    fn negation_in_both_languages() {
        let lex = lexicon();
        let en = keys(&lex, "It's not too expensive", Language::En);
        assert!(en.contains(&("too_expensive".into(), true)), "{en:?}");
        let en = keys(&lex, "no, too expensive", Language::En);
        assert!(en.contains(&("too_expensive".into(), false)), "{en:?}");
        let zh = keys(&lex, "这个不贵", Language::Zh);
        assert!(zh.contains(&("too_expensive".into(), true)), "{zh:?}");
        let zh = keys(&lex, "太贵了", Language::Zh);
        assert!(zh.contains(&("too_expensive".into(), false)), "{zh:?}");
        let zh = keys(&lex, "不是没时间", Language::Zh);
        assert!(zh.contains(&("no_time".into(), true)), "{zh:?}");
        let zh = keys(&lex, "贵公司是哪家", Language::Zh);
        assert!(!zh.iter().any(|(k, _)| k == "too_expensive"), "{zh:?}");
    }

    #[test]
    fn an_opt_out_is_never_negated_by_its_own_negation() {
        let lex = lexicon();
        for (t, lang) in [
            ("以后别再给我打电话了", Language::Zh),
            ("以后別再給我打電話了", Language::Zh),
            ("不 别再打了", Language::Zh),
            ("你们不要给我打电话", Language::Zh),
            ("don't call me again", Language::En),
            ("dont call me again", Language::En),
            ("never call me again", Language::En),
            ("no, never call this number again", Language::En),
            ("not interested and don't call me again", Language::En),
        ] {
            let k = keys(&lex, t, lang);
            assert!(k.contains(&("do_not_call".into(), false)), "{t}: {k:?}");
            assert!(!k.contains(&("do_not_call".into(), true)), "{t}: {k:?}");
        }
        // "明天再给我打电话" asks for a callback: no opt-out phrase in it.
        let k = keys(&lex, "明天再给我打电话", Language::Zh);
        assert!(!k.iter().any(|(key, _)| key == "do_not_call"), "{k:?}");
        // Other keys still follow negation.
        let k = keys(&lex, "not interested", Language::En);
        assert!(k.contains(&("not_interested".into(), false)), "{k:?}");
        let k = keys(&lex, "it's not too expensive", Language::En);
        assert!(k.contains(&("too_expensive".into(), true)), "{k:?}");
        let k = keys(&lex, "别再打给我了", Language::Zh);
        assert!(k.contains(&("callback".into(), true)), "{k:?}");
    }

    #[test]
    fn sentiment_sign_follows_negation() {
        let lex = lexicon();
        assert!(lex.sentiment("this is great", Language::En) > 0.3);
        assert!(lex.sentiment("this is not great", Language::En) < 0.0);
        assert!(lex.sentiment("太差了", Language::Zh) < -0.3);
    }
}
