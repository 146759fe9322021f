//! Time expressions in a caller turn, for booking callbacks: "tomorrow at 3", "half past four",
//! "in 20 minutes", 明天下午三点, 半小时后, 周五上午. Rule-based; returns at most one absolute
//! mention (day, part of day and clock time merged) and one relative mention per turn.

use super::{text, DayRef, PartOfDay, TimeMention};
use retrieval::Language;

/// Time mentions of an already normalised text.
pub fn extract(normalized: &str, language: Language) -> Vec<TimeMention> {
    match language {
        Language::En => english(normalized),
        Language::Zh => mandarin(normalized),
    }
}

/// Builds the absolute mention as it is found.
#[derive(Default)]
struct Absolute {
    day: Option<DayRef>,
    part: Option<PartOfDay>,
    hour: Option<u8>,
    minute: Option<u8>,
    /// `Some(true)` for pm, `Some(false)` for am.
    pm: Option<bool>,
    /// First and last matched unit.
    span: Option<(usize, usize)>,
}

impl Absolute {
    fn mark(&mut self, start: usize, end: usize) {
        self.span = Some(match self.span {
            Some((s, e)) => (s.min(start), e.max(end)),
            None => (start, end),
        });
    }

    /// A bare hour is read in business hours: 1–7 is afternoon or evening.
    fn finish(self, matched: String) -> Option<TimeMention> {
        self.span?;
        let hour = self.hour.map(|h| match (self.pm, self.part) {
            (Some(true), _) => h % 12 + 12,
            (Some(false), _) | (None, Some(PartOfDay::Morning)) => h % 12,
            (None, Some(PartOfDay::Afternoon | PartOfDay::Evening)) if h < 12 => h + 12,
            (None, Some(PartOfDay::Noon)) if h < 6 => h + 12,
            (None, None) if (1..=7).contains(&h) => h + 12,
            _ => h,
        });
        Some(TimeMention {
            matched,
            day: self.day,
            part_of_day: self.part,
            hour,
            minute: self.hour.map(|_| self.minute.unwrap_or(0)),
            after_minutes: None,
        })
    }
}

fn english_number(word: &str) -> Option<u32> {
    const WORDS: [&str; 13] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve",
    ];
    if let Ok(n) = word.parse::<u32>() {
        return Some(n);
    }
    if let Some(n) = WORDS.iter().position(|w| *w == word) {
        return Some(n as u32);
    }
    match word {
        "fifteen" => Some(15),
        "twenty" => Some(20),
        "thirty" => Some(30),
        "forty" => Some(40),
        "fifty" => Some(50),
        "a" | "an" => Some(1),
        _ => None,
    }
}

/// "3pm" → (3, Some(true)); "10" → (10, None).
fn english_hour(word: &str) -> Option<(u8, Option<bool>)> {
    let (num, pm) = if let Some(n) = word.strip_suffix("pm") {
        (n, Some(true))
    } else if let Some(n) = word.strip_suffix("am") {
        (n, Some(false))
    } else {
        (word, None)
    };
    let n = english_number(num).filter(|n| (1..=12).contains(n))?;
    if num == "a" || num == "an" {
        return None;
    }
    Some((n as u8, pm))
}

fn english(normalized: &str) -> Vec<TimeMention> {
    let words: Vec<&str> = text::words(normalized);
    let at = |i: usize| words.get(i).copied().unwrap_or("");
    let mut abs = Absolute::default();
    let mut relative: Option<TimeMention> = None;
    const WEEKDAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let mut used = 1;
        match w {
            "today" => abs.day = Some(DayRef::Today),
            "tonight" => {
                abs.day = Some(DayRef::Today);
                abs.part = Some(PartOfDay::Evening);
            }
            "tomorrow" | "tmrw" | "tmr" | "tomorow" => {
                if i >= 2 && words[i - 2] == "day" && words[i - 1] == "after" {
                    abs.day = Some(DayRef::DayAfterTomorrow);
                    abs.mark(i - 2, i);
                } else {
                    abs.day = Some(DayRef::Tomorrow);
                }
            }
            "weekend" => abs.day = Some(DayRef::Weekend),
            "week" if i >= 1 && words[i - 1] == "next" => {
                abs.day = Some(DayRef::NextWeek);
                abs.mark(i - 1, i);
            }
            "morning" => abs.part = Some(PartOfDay::Morning),
            "noon" | "midday" | "lunchtime" => abs.part = Some(PartOfDay::Noon),
            "lunch" if i >= 1 && words[i - 1] == "after" => abs.part = Some(PartOfDay::Afternoon),
            "lunch" => abs.part = Some(PartOfDay::Noon),
            "afternoon" => abs.part = Some(PartOfDay::Afternoon),
            "evening" | "night" => abs.part = Some(PartOfDay::Evening),
            "half" | "quarter" if matches!(at(i + 1), "past" | "to") => {
                if let Some((h, pm)) = english_hour(at(i + 2)) {
                    let (h, m) = match (w, at(i + 1)) {
                        ("half", "past") => (h, 30),
                        ("quarter", "past") => (h, 15),
                        (_, _) => ((h + 10) % 12 + 1, if w == "half" { 30 } else { 45 }),
                    };
                    abs.hour = Some(h);
                    abs.minute = Some(m);
                    abs.pm = pm;
                    used = 3;
                } else {
                    used = 0;
                }
            }
            "in" | "me" | "after" => {
                // "in 20 minutes", "give me an hour", "in a couple of hours", "in half an hour"
                let mut j = i + 1;
                let qty: Option<f64> = match (at(j), at(j + 1), at(j + 2)) {
                    ("half", "an", _) => {
                        j += 2;
                        Some(0.5)
                    }
                    ("a", "couple", "of") => {
                        j += 3;
                        Some(2.0)
                    }
                    ("a", "few", _) => {
                        j += 2;
                        Some(3.0)
                    }
                    (n, _, _) => english_number(n).map(|n| {
                        j += 1;
                        f64::from(n)
                    }),
                };
                let per_unit = match at(j) {
                    "minute" | "minutes" | "mins" | "min" => Some(1.0),
                    "hour" | "hours" | "hrs" => Some(60.0),
                    _ => None,
                };
                match (qty, per_unit) {
                    (Some(q), Some(u)) if relative.is_none() => {
                        relative = Some(TimeMention {
                            matched: words[i..=j].join(" "),
                            day: None,
                            part_of_day: None,
                            hour: None,
                            minute: None,
                            after_minutes: Some((q * u).round() as u32),
                        });
                        i = j + 1;
                        continue;
                    }
                    _ if w == "after" => {
                        used = 0;
                        if let Some((h, pm)) = english_hour(at(i + 1)) {
                            abs.hour = Some(h);
                            abs.pm = pm;
                            abs.mark(i, i + 1);
                            i += 2;
                            continue;
                        }
                    }
                    _ => used = 0,
                }
            }
            _ => {
                used = 0;
                if let Some(d) = WEEKDAYS.iter().position(|d| *d == w) {
                    abs.day = Some(DayRef::Weekday(d as u8 + 1));
                    used = 1;
                } else if let Some((h, pm)) = english_hour(w) {
                    let before = if i > 0 { words[i - 1] } else { "" };
                    let after = at(i + 1);
                    let cue = matches!(before, "at" | "around" | "about" | "before" | "by")
                        || pm.is_some()
                        || matches!(after, "pm" | "am" | "oclock");
                    if cue {
                        abs.hour = Some(h);
                        abs.pm = pm.or(match after {
                            "pm" => Some(true),
                            "am" => Some(false),
                            _ => None,
                        });
                        used = 1;
                        if matches!(after, "pm" | "am" | "oclock") {
                            used = 2;
                        } else if after.len() == 2 {
                            if let Some(m) = after.parse::<u8>().ok().filter(|m| *m < 60) {
                                abs.minute = Some(m);
                                used = 2;
                            }
                        }
                    }
                }
            }
        }
        if used > 0 {
            abs.mark(i, i + used - 1);
            i += used;
        } else {
            i += 1;
        }
    }
    let matched = abs
        .span
        .map(|(s, e)| words[s..=e.min(words.len() - 1)].join(" "))
        .unwrap_or_default();
    abs.finish(matched).into_iter().chain(relative).collect()
}

/// A Chinese or Arabic number at `chars[i..]` (up to 99): value and length.
fn chinese_number(chars: &[char], i: usize) -> Option<(u32, usize)> {
    let digit = |c: char| match c {
        '零' => Some(0),
        '一' => Some(1),
        '二' | '两' => Some(2),
        '三' => Some(3),
        '四' => Some(4),
        '五' => Some(5),
        '六' => Some(6),
        '七' => Some(7),
        '八' => Some(8),
        '九' => Some(9),
        _ => None,
    };
    let arabic: String = chars[i..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    if !arabic.is_empty() {
        return arabic.parse().ok().map(|n| (n, arabic.len()));
    }
    let c0 = *chars.get(i)?;
    let c1 = chars.get(i + 1).copied();
    let c2 = chars.get(i + 2).copied();
    if c0 == '十' {
        return Some(match c1.and_then(digit) {
            Some(d) if d > 0 => (10 + d, 2),
            _ => (10, 1),
        });
    }
    let d0 = digit(c0)?;
    if c1 == Some('十') {
        return Some(match c2.and_then(digit) {
            Some(d) if d > 0 => (d0 * 10 + d, 3),
            _ => (d0 * 10, 2),
        });
    }
    Some((d0, 1))
}

fn starts(chars: &[char], i: usize, s: &str) -> bool {
    s.chars()
        .enumerate()
        .all(|(n, c)| chars.get(i + n) == Some(&c))
}

fn first_of(chars: &[char], i: usize, options: &[&str]) -> Option<usize> {
    options
        .iter()
        .find(|o| starts(chars, i, o))
        .map(|o| o.chars().count())
}

fn mandarin(normalized: &str) -> Vec<TimeMention> {
    let chars = text::chars_no_space(normalized);
    let mut abs = Absolute::default();
    let mut relative: Option<TimeMention> = None;
    let weekday = |c: char| match c {
        '一' => Some(1),
        '二' => Some(2),
        '三' => Some(3),
        '四' => Some(4),
        '五' => Some(5),
        '六' => Some(6),
        '日' | '天' => Some(7),
        _ => None,
    };
    let mut i = 0;
    while i < chars.len() {
        let mut used = 0;
        let fixed: &[(&str, Option<DayRef>, Option<PartOfDay>)] = &[
            ("今晚", Some(DayRef::Today), Some(PartOfDay::Evening)),
            ("今天", Some(DayRef::Today), None),
            ("明早", Some(DayRef::Tomorrow), Some(PartOfDay::Morning)),
            ("明晚", Some(DayRef::Tomorrow), Some(PartOfDay::Evening)),
            ("明天", Some(DayRef::Tomorrow), None),
            ("后天", Some(DayRef::DayAfterTomorrow), None),
            ("周末", Some(DayRef::Weekend), None),
            ("下个星期", Some(DayRef::NextWeek), None),
            ("下星期", Some(DayRef::NextWeek), None),
            ("下个礼拜", Some(DayRef::NextWeek), None),
            ("下礼拜", Some(DayRef::NextWeek), None),
            ("下周", Some(DayRef::NextWeek), None),
            ("早上", None, Some(PartOfDay::Morning)),
            ("上午", None, Some(PartOfDay::Morning)),
            ("午饭以后", None, Some(PartOfDay::Afternoon)),
            ("午饭后", None, Some(PartOfDay::Afternoon)),
            ("中午", None, Some(PartOfDay::Noon)),
            ("下午", None, Some(PartOfDay::Afternoon)),
            ("傍晚", None, Some(PartOfDay::Evening)),
            ("晚上", None, Some(PartOfDay::Evening)),
        ];
        if let Some(n) = first_of(
            &chars,
            i,
            &["下星期", "下礼拜", "下周", "星期", "礼拜", "周"],
        ) {
            if let Some(d) = chars.get(i + n).copied().and_then(weekday) {
                abs.day = Some(DayRef::Weekday(d));
                used = n + 1;
            }
        }
        for (s, day, part) in fixed.iter().filter(|_| used == 0) {
            if starts(&chars, i, s) {
                if day.is_some() {
                    abs.day = *day;
                }
                if part.is_some() {
                    abs.part = *part;
                }
                used = s.chars().count();
                break;
            }
        }
        if used == 0 {
            // Relative: 半小时后, 二十分钟以后, 过两个小时, 一个小时后.
            let after_prefix = chars.get(i) == Some(&'过');
            let j = i + usize::from(after_prefix);
            let qty = if chars.get(j) == Some(&'半') {
                Some((0.5, 1))
            } else {
                chinese_number(&chars, j).map(|(n, l)| (f64::from(n), l))
            };
            if let Some((q, l)) = qty {
                let mut k = j + l;
                if chars.get(k) == Some(&'个') {
                    k += 1;
                }
                let unit = first_of(&chars, k, &["小时", "钟头"])
                    .map(|n| (n, 60.0))
                    .or_else(|| first_of(&chars, k, &["分钟"]).map(|n| (n, 1.0)));
                if let Some((n, per)) = unit {
                    k += n;
                    let suffix = first_of(&chars, k, &["以后", "之后", "后"]).unwrap_or(0);
                    if (after_prefix || suffix > 0) && relative.is_none() {
                        relative = Some(TimeMention {
                            matched: chars[i..k + suffix].iter().collect(),
                            day: None,
                            part_of_day: None,
                            hour: None,
                            minute: None,
                            after_minutes: Some((q * per).round() as u32),
                        });
                        i = k + suffix;
                        continue;
                    }
                }
                // Clock time: 三点, 4点半, 五点差一刻, 两点十分.
                // 一点 is mostly "a bit" (便宜一点): a clock time only right after 明天, 下午, ….
                let k = j + l;
                let a_bit = chars.get(j) == Some(&'一')
                    && l == 1
                    && abs.span.is_none_or(|(_, e)| e + 1 != i);
                if !after_prefix
                    && !a_bit
                    && chars.get(k) == Some(&'点')
                    && (1..=12).contains(&(q as u32))
                {
                    let mut h = q as u8;
                    let mut m = 0u8;
                    let mut end = k + 1;
                    if chars.get(end) == Some(&'半') {
                        m = 30;
                        end += 1;
                    } else if starts(&chars, end, "一刻") {
                        m = 15;
                        end += 2;
                    } else if starts(&chars, end, "三刻") {
                        m = 45;
                        end += 2;
                    } else if starts(&chars, end, "差一刻") {
                        h = (h + 10) % 12 + 1;
                        m = 45;
                        end += 3;
                    } else if let Some((mm, ml)) = chinese_number(&chars, end) {
                        if chars.get(end + ml) == Some(&'分') && mm < 60 {
                            m = mm as u8;
                            end += ml + 1;
                        }
                    }
                    abs.hour = Some(h);
                    abs.minute = Some(m);
                    used = end - i;
                }
            }
        }
        if used > 0 {
            abs.mark(i, i + used - 1);
            i += used;
        } else {
            i += 1;
        }
    }
    let matched = abs
        .span
        .map(|(s, e)| chars[s..=e.min(chars.len() - 1)].iter().collect())
        .unwrap_or_default();
    abs.finish(matched).into_iter().chain(relative).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(t: &str, lang: Language) -> TimeMention {
        let found = extract(&text::normalize(t, lang), lang);
        found.into_iter().next().expect("a time mention")
    }

    #[test]
    fn english_times() {
        let t = one("Can you call me back tomorrow at three?", Language::En);
        assert_eq!(
            (t.day, t.hour, t.minute),
            (Some(DayRef::Tomorrow), Some(15), Some(0))
        );
        let t = one("call back at half past four please", Language::En);
        assert_eq!((t.hour, t.minute), (Some(16), Some(30)));
        let t = one("try calling at about quarter to five", Language::En);
        assert_eq!((t.hour, t.minute), (Some(16), Some(45)));
        let t = one("call me tomorrow morning before nine", Language::En);
        assert_eq!((t.part_of_day, t.hour), (Some(PartOfDay::Morning), Some(9)));
        let t = one("could you call me again in 20 minutes", Language::En);
        assert_eq!(t.after_minutes, Some(20));
        let t = one("give me an hour and call back", Language::En);
        assert_eq!(t.after_minutes, Some(60));
        let t = one("can we talk on Friday morning instead", Language::En);
        assert_eq!(t.day, Some(DayRef::Weekday(5)));
        let t = one("call me back on thursday at 2", Language::En);
        assert_eq!((t.day, t.hour), (Some(DayRef::Weekday(4)), Some(14)));
        let t = one("can you phone back around 7 pm", Language::En);
        assert_eq!(t.hour, Some(19));
        assert!(extract("i have two kids", Language::En).is_empty());
    }

    #[test]
    fn mandarin_times() {
        let t = one("你明天下午三点再打给我吧", Language::Zh);
        assert_eq!((t.day, t.hour), (Some(DayRef::Tomorrow), Some(15)));
        assert_eq!(t.matched, "明天下午三点");
        let t = one("四点半再打过来吧", Language::Zh);
        assert_eq!((t.hour, t.minute), (Some(16), Some(30)));
        let t = one("五点差一刻左右打给我", Language::Zh);
        assert_eq!((t.hour, t.minute), (Some(16), Some(45)));
        let t = one("我在接孩子放学 半小时后打给我", Language::Zh);
        assert_eq!(t.after_minutes, Some(30));
        let t = one("我在商场呢 过两个小时再打", Language::Zh);
        assert_eq!(t.after_minutes, Some(120));
        let t = one("下周二再打给我", Language::Zh);
        assert_eq!(t.day, Some(DayRef::Weekday(2)));
        let t = one("明天早上九点前打给我", Language::Zh);
        assert_eq!((t.part_of_day, t.hour), (Some(PartOfDay::Morning), Some(9)));
        assert!(extract("我有两个孩子", Language::Zh).is_empty());
        assert!(extract("能不能便宜一点", Language::Zh).is_empty());
        assert_eq!(one("明天一点", Language::Zh).hour, Some(13));
    }
}
