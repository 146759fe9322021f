//! Calling windows in the callee's local time: which IANA zone a customer lives in (from the
//! profile's region), when the window opens next (DST-correct through chrono-tz), local day
//! boundaries for the daily cap, and a booked callback's time as an instant.

use super::config::{DialerConfig, WindowRule};
use super::DialerError;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use dialog::nlu::{DayRef, PartOfDay, TimeMention};
use std::collections::HashMap;

/// Built-in region → zone table for the regions the demo CRM (`retrieval::synth`) and common
/// CRM exports use. Chinese city names map to China Standard Time, English-speaking cities to
/// their own zone (US cities to their US zone, UK cities to `Europe/London`).
const REGION_ZONES: &[(&str, &str)] = &[
    ("上海", "Asia/Shanghai"),
    ("北京", "Asia/Shanghai"),
    ("广州", "Asia/Shanghai"),
    ("深圳", "Asia/Shanghai"),
    ("成都", "Asia/Shanghai"),
    ("杭州", "Asia/Shanghai"),
    ("武汉", "Asia/Shanghai"),
    ("南京", "Asia/Shanghai"),
    ("天津", "Asia/Shanghai"),
    ("重庆", "Asia/Shanghai"),
    ("shanghai", "Asia/Shanghai"),
    ("beijing", "Asia/Shanghai"),
    ("guangzhou", "Asia/Shanghai"),
    ("shenzhen", "Asia/Shanghai"),
    ("香港", "Asia/Hong_Kong"),
    ("hong kong", "Asia/Hong_Kong"),
    ("台北", "Asia/Taipei"),
    ("taipei", "Asia/Taipei"),
    ("london", "Europe/London"),
    ("manchester", "Europe/London"),
    ("birmingham", "Europe/London"),
    ("leeds", "Europe/London"),
    ("liverpool", "Europe/London"),
    ("bristol", "Europe/London"),
    ("glasgow", "Europe/London"),
    ("edinburgh", "Europe/London"),
    ("dublin", "Europe/Dublin"),
    ("new york", "America/New_York"),
    ("boston", "America/New_York"),
    ("philadelphia", "America/New_York"),
    ("washington", "America/New_York"),
    ("atlanta", "America/New_York"),
    ("miami", "America/New_York"),
    ("chicago", "America/Chicago"),
    ("houston", "America/Chicago"),
    ("dallas", "America/Chicago"),
    ("denver", "America/Denver"),
    ("phoenix", "America/Phoenix"),
    ("los angeles", "America/Los_Angeles"),
    ("san francisco", "America/Los_Angeles"),
    ("seattle", "America/Los_Angeles"),
    ("toronto", "America/Toronto"),
    ("vancouver", "America/Vancouver"),
    ("sydney", "Australia/Sydney"),
    ("melbourne", "Australia/Melbourne"),
];

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Open hours per weekday (Monday first); `None` is a closed day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WeekHours([Option<(NaiveTime, NaiveTime)>; 7]);

impl WeekHours {
    fn parse(rule: &WindowRule, what: &str) -> Result<Self, DialerError> {
        let all = parse_span(&rule.open, &rule.close, what)?;
        let mut days = [Some(all); 7];
        for (day, spec) in &rule.days {
            let i = WEEKDAYS
                .iter()
                .position(|d| d.eq_ignore_ascii_case(day.trim()))
                .ok_or_else(|| {
                    DialerError::Config(format!(
                        "{what}: unknown weekday {day:?} (use mon, tue, wed, thu, fri, sat, sun)"
                    ))
                })?;
            let spec = spec.trim();
            days[i] = if spec.eq_ignore_ascii_case("closed") {
                None
            } else {
                let (open, close) = spec.split_once('-').ok_or_else(|| {
                    DialerError::Config(format!(
                        "{what}: {day} = {spec:?} is neither \"closed\" nor \"HH:MM-HH:MM\""
                    ))
                })?;
                Some(parse_span(open, close, what)?)
            };
        }
        Ok(Self(days))
    }

    /// The hours both allow, day by day.
    fn intersect(&self, other: &WeekHours) -> WeekHours {
        let mut out = self.0;
        for (mine, theirs) in out.iter_mut().zip(other.0) {
            *mine = match (*mine, theirs) {
                (Some((o1, c1)), Some((o2, c2))) if o1.max(o2) < c1.min(c2) => {
                    Some((o1.max(o2), c1.min(c2)))
                }
                _ => None,
            };
        }
        WeekHours(out)
    }
}

fn parse_span(open: &str, close: &str, what: &str) -> Result<(NaiveTime, NaiveTime), DialerError> {
    let (o, c) = (parse_hhmm(open, what)?, parse_hhmm(close, what)?);
    if o >= c {
        return Err(DialerError::Config(format!(
            "{what}: window {open}-{close} is empty (close must be after open; windows cannot span midnight)"
        )));
    }
    Ok((o, c))
}

fn parse_hhmm(s: &str, what: &str) -> Result<NaiveTime, DialerError> {
    let bad = || DialerError::Config(format!("{what}: {s:?} is not a time of day \"HH:MM\""));
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h == 24 && m == 0 {
        // "24:00": the end of the day.
        return NaiveTime::from_hms_opt(23, 59, 59).ok_or_else(bad);
    }
    NaiveTime::from_hms_opt(h, m, 0).ok_or_else(bad)
}

fn parse_zone(name: &str, what: &str) -> Result<Tz, DialerError> {
    name.trim().parse::<Tz>().map_err(|_| {
        DialerError::Config(format!(
            "{what}: {name:?} is not an IANA time zone name (e.g. \"Asia/Shanghai\", \"America/New_York\")"
        ))
    })
}

/// The calling windows of one dialer configuration, checked and compiled.
#[derive(Debug, Clone)]
pub struct CallingWindows {
    default: WeekHours,
    /// Region or zone name (lower case) → its rule already intersected with the default.
    rules: HashMap<String, WeekHours>,
    zones: HashMap<String, Tz>,
    default_zone: Tz,
}

impl CallingWindows {
    /// Checks and compiles the windows, region rules and zone names of `config`.
    pub fn new(config: &DialerConfig) -> Result<Self, DialerError> {
        let default = WeekHours::parse(&config.window, "dialer.window")?;
        let mut rules = HashMap::new();
        for (key, rule) in &config.regions {
            let what = format!("dialer.regions.{key:?}");
            let hours = WeekHours::parse(rule, &what)?;
            rules.insert(key.trim().to_lowercase(), default.intersect(&hours));
        }
        let mut zones = HashMap::new();
        for (region, zone) in &config.region_time_zones {
            let what = format!("dialer.region_time_zones.{region:?}");
            zones.insert(region.trim().to_lowercase(), parse_zone(zone, &what)?);
        }
        let default_zone = parse_zone(&config.default_time_zone, "dialer.default_time_zone")?;
        Ok(Self {
            default,
            rules,
            zones,
            default_zone,
        })
    }

    /// The zone a customer is called in, from the profile's region: the configured
    /// `region_time_zones`, then the built-in table of cities, then a region that is itself an
    /// IANA name, then any other region written in Chinese characters (China Standard Time);
    /// anything else, and no region at all, gets `default_time_zone`.
    pub fn zone_of(&self, region: Option<&str>) -> Tz {
        let Some(region) = region.map(str::trim).filter(|r| !r.is_empty()) else {
            return self.default_zone;
        };
        let key = region.to_lowercase();
        if let Some(z) = self.zones.get(&key) {
            return *z;
        }
        if let Some(z) = REGION_ZONES
            .iter()
            .find(|(r, _)| *r == key)
            .and_then(|(_, z)| z.parse::<Tz>().ok())
        {
            return z;
        }
        if let Ok(z) = region.parse::<Tz>() {
            return z;
        }
        if region.chars().any(is_han) {
            return Tz::Asia__Shanghai;
        }
        self.default_zone
    }

    /// Parses a stored zone name, falling back to `default_time_zone` (with a warning) when
    /// the name is not one chrono-tz knows.
    pub fn parse_zone_or_default(&self, name: &str) -> Tz {
        name.parse::<Tz>().unwrap_or_else(|_| {
            tracing::warn!(
                zone = name,
                "unknown time zone in the dial queue; using the default"
            );
            self.default_zone
        })
    }

    fn hours(&self, zone: Tz, region: Option<&str>) -> WeekHours {
        let mut hours = self.default;
        for key in [
            region.map(|r| r.trim().to_lowercase()),
            Some(zone.name().to_lowercase()),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(rule) = self.rules.get(&key) {
                hours = hours.intersect(rule);
            }
        }
        hours
    }

    /// The first instant at or after `at_ms` inside the window of a customer in `zone` and
    /// `region` (`at_ms` itself when the window is open), or `None` if the rules leave no open
    /// day.
    pub fn next_opening(&self, zone: Tz, region: Option<&str>, at_ms: i64) -> Option<i64> {
        let hours = self.hours(zone, region);
        let today = local_date(zone, at_ms)?;
        for ahead in 0..8 {
            let date = today + Duration::days(ahead);
            let Some((open, close)) = hours.0[date.weekday().num_days_from_monday() as usize]
            else {
                continue;
            };
            let (start, end) = (
                instant(zone, date.and_time(open))?,
                instant(zone, date.and_time(close))?,
            );
            if at_ms < start {
                return Some(start);
            }
            if at_ms < end {
                return Some(at_ms);
            }
        }
        None
    }

    /// Whether a customer in `zone` and `region` may be called at `at_ms`.
    pub fn is_open(&self, zone: Tz, region: Option<&str>, at_ms: i64) -> bool {
        self.next_opening(zone, region, at_ms) == Some(at_ms)
    }
}

fn is_han(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{3400}'..='\u{4DBF}')
}

fn local_date(zone: Tz, at_ms: i64) -> Option<NaiveDate> {
    Some(
        DateTime::<Utc>::from_timestamp_millis(at_ms)?
            .with_timezone(&zone)
            .date_naive(),
    )
}

/// The instant of a local wall-clock time: the earlier one when the clock repeats an hour,
/// the first valid minute after a DST gap.
fn instant(zone: Tz, local: NaiveDateTime) -> Option<i64> {
    (0..=8)
        .find_map(|k| {
            zone.from_local_datetime(&(local + Duration::minutes(15 * k)))
                .earliest()
        })
        .map(|t| t.timestamp_millis())
}

/// Start of the local calendar day containing `at_ms`, and start of the next one (ms).
pub fn local_day_bounds(zone: Tz, at_ms: i64) -> Option<(i64, i64)> {
    let date = local_date(zone, at_ms)?;
    let start = instant(zone, date.and_time(NaiveTime::MIN))?;
    let next = instant(zone, (date + Duration::days(1)).and_time(NaiveTime::MIN))?;
    Some((start, next))
}

/// The instant of a callback time the caller said ("tomorrow at 3", 明天下午, "in 20 minutes"),
/// read in the callee's zone at `now_ms`. A day without a time means 10:00; a part of day
/// without a clock time means morning 10:00, noon 12:00, afternoon 15:00, evening 19:00; a
/// weekday means its next occurrence (a week ahead if it is today), the weekend its Saturday,
/// next week its Monday. A time already past moves a day on. `None` if the mention
/// names no time at all. The dialer still moves the result into the calling window.
pub fn callback_at_ms(mention: &TimeMention, zone: Tz, now_ms: i64) -> Option<i64> {
    if let (Some(m), None, None) = (mention.after_minutes, mention.day, mention.hour) {
        return Some(now_ms + i64::from(m) * 60_000);
    }
    if mention.day.is_none() && mention.hour.is_none() && mention.part_of_day.is_none() {
        return None;
    }
    let today = local_date(zone, now_ms)?;
    let weekday = i64::from(today.weekday().num_days_from_monday()); // Monday = 0
    let date = match mention.day {
        None | Some(DayRef::Today) => today,
        Some(DayRef::Tomorrow) => today + Duration::days(1),
        Some(DayRef::DayAfterTomorrow) => today + Duration::days(2),
        Some(DayRef::Weekday(n)) => {
            let ahead = (i64::from(n.clamp(1, 7)) - 1 - weekday).rem_euclid(7);
            today + Duration::days(if ahead == 0 { 7 } else { ahead })
        }
        Some(DayRef::Weekend) => today + Duration::days((5 - weekday).rem_euclid(7)),
        Some(DayRef::NextWeek) => today + Duration::days(7 - weekday),
    };
    let hour = mention
        .hour
        .map(u32::from)
        .or(match mention.part_of_day {
            Some(PartOfDay::Morning) | None => None,
            Some(PartOfDay::Noon) => Some(12),
            Some(PartOfDay::Afternoon) => Some(15),
            Some(PartOfDay::Evening) => Some(19),
        })
        .unwrap_or(10);
    let minute = mention.minute.map(u32::from).unwrap_or(0);
    let time = NaiveTime::from_hms_opt(hour.min(23), minute.min(59), 0)?;
    let at = instant(zone, date.and_time(time))?;
    if at > now_ms {
        Some(at)
    } else {
        instant(zone, (date + Duration::days(1)).and_time(time))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(zone: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        zone.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .map(|t| t.timestamp_millis())
            .unwrap_or_default()
    }

    #[test]
    fn regions_map_to_zones() {
        let w = CallingWindows::new(&DialerConfig::default()).expect("default config is valid");
        assert_eq!(w.zone_of(Some("上海")), Tz::Asia__Shanghai);
        assert_eq!(w.zone_of(Some("长沙")), Tz::Asia__Shanghai);
        assert_eq!(w.zone_of(Some("Chicago")), Tz::America__Chicago);
        assert_eq!(w.zone_of(Some("London")), Tz::Europe__London);
        assert_eq!(w.zone_of(Some("America/New_York")), Tz::America__New_York);
        assert_eq!(w.zone_of(Some("Atlantis")), Tz::Asia__Shanghai);
        assert_eq!(w.zone_of(None), Tz::Asia__Shanghai);
    }

    #[test]
    fn window_follows_dst() {
        let w = CallingWindows::new(&DialerConfig::default()).expect("default config is valid");
        let ny = Tz::America__New_York;
        // 2025-03-09 is the spring-forward Sunday: 08:00 EDT is 12:00 UTC, not 13:00.
        let before = ms(ny, 2025, 3, 9, 7, 30);
        assert_eq!(
            w.next_opening(ny, None, before),
            Some(ms(ny, 2025, 3, 9, 8, 0))
        );
        assert_eq!(
            ms(ny, 2025, 3, 9, 8, 0),
            Utc.with_ymd_and_hms(2025, 3, 9, 12, 0, 0)
                .single()
                .map(|t| t.timestamp_millis())
                .unwrap_or_default()
        );
        // 21:00 closes; the next opening is 08:00 the next day.
        let late = ms(ny, 2025, 3, 9, 21, 0);
        assert_eq!(
            w.next_opening(ny, None, late),
            Some(ms(ny, 2025, 3, 10, 8, 0))
        );
    }

    #[test]
    fn bad_config_is_explained() {
        let mut c = DialerConfig::default();
        c.window.days.insert("sunday".into(), "closed".into());
        let e = CallingWindows::new(&c).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("unknown weekday")));
        let c = DialerConfig {
            default_time_zone: "Mars/Olympus".into(),
            ..Default::default()
        };
        assert!(CallingWindows::new(&c).is_err());
        let c = DialerConfig {
            window: WindowRule {
                open: "21:00".into(),
                close: "08:00".into(),
                days: Default::default(),
            },
            ..Default::default()
        };
        assert!(CallingWindows::new(&c).is_err());
    }

    #[test]
    fn callback_mentions_become_instants() {
        let sh = Tz::Asia__Shanghai;
        // Wednesday 2025-06-11 14:00 in Shanghai.
        let now = ms(sh, 2025, 6, 11, 14, 0);
        let mention = |day, part, hour, after| TimeMention {
            matched: String::new(),
            day,
            part_of_day: part,
            hour,
            minute: None,
            after_minutes: after,
        };
        let at = |m: &TimeMention| callback_at_ms(m, sh, now);
        assert_eq!(
            at(&mention(Some(DayRef::Tomorrow), None, Some(15), None)),
            Some(ms(sh, 2025, 6, 12, 15, 0))
        );
        assert_eq!(
            at(&mention(None, None, None, Some(20))),
            Some(now + 20 * 60_000)
        );
        // "This morning" is past: tomorrow morning.
        assert_eq!(
            at(&mention(
                Some(DayRef::Today),
                Some(PartOfDay::Morning),
                None,
                None
            )),
            Some(ms(sh, 2025, 6, 12, 10, 0))
        );
        // Friday afternoon; Wednesday means next week's.
        assert_eq!(
            at(&mention(
                Some(DayRef::Weekday(5)),
                Some(PartOfDay::Afternoon),
                None,
                None
            )),
            Some(ms(sh, 2025, 6, 13, 15, 0))
        );
        assert_eq!(
            at(&mention(Some(DayRef::Weekday(3)), None, None, None)),
            Some(ms(sh, 2025, 6, 18, 10, 0))
        );
        assert_eq!(at(&mention(None, None, None, None)), None);
    }
}
