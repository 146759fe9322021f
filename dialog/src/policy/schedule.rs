//! Callback times said back to the caller: a [`TimeMention`] found by NLU ("tomorrow at 3",
//! 明天下午三点) rendered in the call's language. Only what the caller said is rendered.

use crate::nlu::{DayRef, PartOfDay, TimeMention};
use retrieval::Language;

const EN_WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const ZH_WEEKDAYS: [&str; 7] = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];

/// Whether a mention names anything a callback can be booked for.
pub fn is_bookable(t: &TimeMention) -> bool {
    t.day.is_some() || t.part_of_day.is_some() || t.hour.is_some() || t.after_minutes.is_some()
}

/// The time said back, e.g. "tomorrow afternoon at 3 pm" or "明天下午3点".
pub fn render_time(t: &TimeMention, language: Language) -> String {
    match language {
        Language::En => render_en(t),
        Language::Zh => render_zh(t),
    }
}

fn render_en(t: &TimeMention) -> String {
    if let (Some(m), None, None) = (t.after_minutes, t.day, t.hour) {
        return format!("in {m} minutes");
    }
    let mut parts: Vec<String> = Vec::new();
    let this_part = t.day == Some(DayRef::Today)
        && matches!(
            t.part_of_day,
            Some(PartOfDay::Morning | PartOfDay::Afternoon | PartOfDay::Evening)
        );
    match t.day {
        _ if this_part => parts.push("this".into()),
        Some(DayRef::Today) => parts.push("today".into()),
        Some(DayRef::Tomorrow) => parts.push("tomorrow".into()),
        Some(DayRef::DayAfterTomorrow) => parts.push("the day after tomorrow".into()),
        Some(DayRef::Weekday(n)) => {
            let name = EN_WEEKDAYS[usize::from(n.clamp(1, 7)) - 1];
            parts.push(format!("on {name}"));
        }
        Some(DayRef::Weekend) => parts.push("at the weekend".into()),
        Some(DayRef::NextWeek) => parts.push("next week".into()),
        None => {}
    }
    if let Some(p) = t.part_of_day {
        let alone = parts.is_empty();
        parts.push(
            match (p, alone) {
                (PartOfDay::Noon, _) => "at noon",
                (PartOfDay::Morning, true) => "in the morning",
                (PartOfDay::Afternoon, true) => "in the afternoon",
                (PartOfDay::Evening, true) => "in the evening",
                (PartOfDay::Morning, false) => "morning",
                (PartOfDay::Afternoon, false) => "afternoon",
                (PartOfDay::Evening, false) => "evening",
            }
            .into(),
        );
    }
    if let Some(h) = t.hour {
        let (h12, suffix) = match h {
            0 => (12, "am"),
            1..=11 => (h, "am"),
            12 => (12, "pm"),
            _ => (h - 12, "pm"),
        };
        match t.minute.filter(|m| *m > 0) {
            Some(m) => parts.push(format!("at {h12}:{m:02} {suffix}")),
            None => parts.push(format!("at {h12} {suffix}")),
        }
    }
    parts.join(" ")
}

fn render_zh(t: &TimeMention) -> String {
    if let (Some(m), None, None) = (t.after_minutes, t.day, t.hour) {
        return format!("{m}分钟后");
    }
    let mut s = String::new();
    match t.day {
        Some(DayRef::Today) => s.push_str("今天"),
        Some(DayRef::Tomorrow) => s.push_str("明天"),
        Some(DayRef::DayAfterTomorrow) => s.push_str("后天"),
        Some(DayRef::Weekday(n)) => s.push_str(ZH_WEEKDAYS[usize::from(n.clamp(1, 7)) - 1]),
        Some(DayRef::Weekend) => s.push_str("周末"),
        Some(DayRef::NextWeek) => s.push_str("下周"),
        None => {}
    }
    let part = t.part_of_day.or(match t.hour {
        Some(h) if h < 12 => Some(PartOfDay::Morning),
        Some(12) => Some(PartOfDay::Noon),
        Some(h) if h < 18 => Some(PartOfDay::Afternoon),
        Some(_) => Some(PartOfDay::Evening),
        None => None,
    });
    if let Some(p) = part {
        s.push_str(match p {
            PartOfDay::Morning => "上午",
            PartOfDay::Noon => "中午",
            PartOfDay::Afternoon => "下午",
            PartOfDay::Evening => "晚上",
        });
    }
    if let Some(h) = t.hour {
        let h12 = if h > 12 { h - 12 } else { h };
        s.push_str(&format!("{h12}点"));
        match t.minute.filter(|m| *m > 0) {
            Some(30) => s.push('半'),
            Some(m) => s.push_str(&format!("{m}分")),
            None => {}
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mention(
        day: Option<DayRef>,
        part: Option<PartOfDay>,
        hour: Option<u8>,
        minute: Option<u8>,
    ) -> TimeMention {
        TimeMention {
            matched: String::new(),
            day,
            part_of_day: part,
            hour,
            minute,
            after_minutes: None,
        }
    }

    #[test]
    fn renders_in_both_languages() {
        let t = mention(
            Some(DayRef::Tomorrow),
            Some(PartOfDay::Afternoon),
            Some(15),
            None,
        );
        assert_eq!(render_time(&t, Language::En), "tomorrow afternoon at 3 pm");
        assert_eq!(render_time(&t, Language::Zh), "明天下午3点");
        let t = mention(Some(DayRef::Weekday(5)), None, Some(10), Some(30));
        assert_eq!(render_time(&t, Language::En), "on Friday at 10:30 am");
        assert_eq!(render_time(&t, Language::Zh), "周五上午10点半");
        let t = mention(Some(DayRef::Today), Some(PartOfDay::Evening), None, None);
        assert_eq!(render_time(&t, Language::En), "this evening");
    }
}
