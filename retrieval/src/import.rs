//! CRM import from CSV or JSON lines: columns mapped by configuration, values cleaned (trimmed,
//! typed, missing markers dropped, duplicates refused), phones normalized to E.164 and stored only
//! as a keyed hash plus a sealed copy, call logs fused to customers by that hash. Bad rows are
//! reported with line numbers and reasons; good rows are written in one transaction, so a failed
//! import stores nothing and a repeated import changes nothing.

use crate::privacy::SealedPhone;
use crate::store::operations::write_call_logs;
use crate::store::profiles::write_profiles;
use crate::store::{CallLog, ProfileRecord};
use crate::{CustomerProfile, Language, PhoneNumber, PrivacyKeys, RetrievalError, SqlStore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Where each customer attribute comes from: the column (CSV header or JSON key) holding it.
/// `None` means the export has no such column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CrmMapping {
    /// The CRM's own key; without it a customer is keyed by phone hash.
    pub customer_id: Option<String>,
    pub name: String,
    pub phone: String,
    pub language: Option<String>,
    pub age: Option<String>,
    pub region: Option<String>,
    pub occupation: Option<String>,
    pub income_band: Option<String>,
    pub children_in_school: Option<String>,
    pub recent_purchases: Option<String>,
    /// A date (`2024-05-01`, `2024/05/01 14:30`) or milliseconds since the epoch.
    pub last_contact: Option<String>,
    /// Several values separated by `;`, `|` or `,` (or a JSON array).
    pub interests: Option<String>,
    pub price_sensitivity: Option<String>,
    pub segment: Option<String>,
    pub do_not_call: Option<String>,
    /// Country code for numbers written without one (`86`, `1`, `44`).
    pub default_country: String,
    /// Language of customers whose row names none.
    pub default_language: Language,
}

impl Default for CrmMapping {
    fn default() -> Self {
        let some = |s: &str| Some(s.to_string());
        Self {
            customer_id: some("customer_id"),
            name: "name".into(),
            phone: "phone".into(),
            language: some("language"),
            age: some("age"),
            region: some("region"),
            occupation: some("occupation"),
            income_band: some("income_band"),
            children_in_school: some("children_in_school"),
            recent_purchases: some("recent_purchases"),
            last_contact: some("last_contact"),
            interests: some("interests"),
            price_sensitivity: some("price_sensitivity"),
            segment: some("segment"),
            do_not_call: some("do_not_call"),
            default_country: "86".into(),
            default_language: Language::Zh,
        }
    }
}

/// Where each field of a CRM call log comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallLogMapping {
    pub phone: String,
    pub started_at: String,
    pub duration_s: Option<String>,
    pub outcome: String,
    pub notes: Option<String>,
    pub default_country: String,
}

impl Default for CallLogMapping {
    fn default() -> Self {
        Self {
            phone: "phone".into(),
            started_at: "started_at".into(),
            duration_s: Some("duration_s".into()),
            outcome: "outcome".into(),
            notes: Some("notes".into()),
            default_country: "86".into(),
        }
    }
}

/// The file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Comma-separated with a header line.
    Csv,
    /// One JSON object per line.
    JsonLines,
}

impl Format {
    /// `.csv` or `.jsonl`/`.ndjson`, from a file name.
    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRow {
    /// 1-based line in the file (the CSV header is line 1).
    pub line: usize,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub accepted: usize,
    pub rejected: Vec<RejectedRow>,
}

/// One input row: its line and the values of the wanted columns, in the order asked for.
struct RawRow {
    line: usize,
    values: Vec<Option<String>>,
}

/// Reads the wanted columns of every row. A required column missing from a CSV header fails
/// the whole import; a malformed line becomes a rejected row.
fn read_rows(
    input: &str,
    format: Format,
    columns: &[Option<&str>],
    required: &[&str],
    rejected: &mut Vec<RejectedRow>,
) -> Result<Vec<RawRow>, RetrievalError> {
    let clean = |v: &str| -> Option<String> {
        let v = v.trim();
        let missing = v.is_empty()
            || ["null", "n/a", "na", "none", "-", "?"]
                .iter()
                .any(|m| v.eq_ignore_ascii_case(m));
        (!missing).then(|| v.to_string())
    };
    let mut rows = Vec::new();
    match format {
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(input.as_bytes());
            let headers = reader
                .headers()
                .map_err(|e| RetrievalError::InvalidInput(format!("CSV header: {e}")))?
                .clone();
            let position = |name: &str| headers.iter().position(|h| h.trim() == name);
            for r in required {
                if position(r).is_none() {
                    return Err(RetrievalError::InvalidInput(format!(
                        "column {r:?} is not in the CSV header; map the right column in the import mapping"
                    )));
                }
            }
            let at: Vec<Option<usize>> = columns.iter().map(|c| c.and_then(position)).collect();
            let mut records = Vec::new();
            for record in reader.records() {
                match record {
                    Ok(rec) => records.push(rec),
                    Err(e) => rejected.push(RejectedRow {
                        line: e.position().map_or(0, |p| p.line() as usize),
                        reason: format!("unreadable CSV: {e}"),
                    }),
                }
            }
            // Cleaning the values (trim, missing markers, copies) on every core.
            rows = par_map(&records, |rec| RawRow {
                line: rec.position().map_or(0, |p| p.line() as usize),
                values: at
                    .iter()
                    .map(|i| i.and_then(|i| rec.get(i)).and_then(clean))
                    .collect(),
            });
        }
        Format::JsonLines => {
            for (i, line) in input.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let object = match serde_json::from_str::<serde_json::Value>(line) {
                    Ok(serde_json::Value::Object(o)) => o,
                    Ok(_) => {
                        rejected.push(RejectedRow {
                            line: i + 1,
                            reason: "not a JSON object".into(),
                        });
                        continue;
                    }
                    Err(e) => {
                        rejected.push(RejectedRow {
                            line: i + 1,
                            reason: format!("unreadable JSON: {e}"),
                        });
                        continue;
                    }
                };
                let text = |v: &serde_json::Value| match v {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => clean(s),
                    serde_json::Value::Array(items) => clean(
                        &items
                            .iter()
                            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                            .collect::<Vec<_>>()
                            .join(";"),
                    ),
                    other => clean(&other.to_string()),
                };
                rows.push(RawRow {
                    line: i + 1,
                    values: columns
                        .iter()
                        .map(|c| c.and_then(|c| object.get(c)).and_then(text))
                        .collect(),
                });
            }
        }
    }
    Ok(rows)
}

fn number<T: TryFrom<i64>>(
    what: &str,
    v: &Option<String>,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<T>, String> {
    let Some(v) = v else { return Ok(None) };
    let f: f64 = v
        .parse()
        .map_err(|_| format!("{what} {v:?} is not a number"))?;
    if f.fract() != 0.0 || !range.contains(&(f as i64)) {
        return Err(format!(
            "{what} {v:?} is not a whole number in {}..={}",
            range.start(),
            range.end()
        ));
    }
    T::try_from(f as i64)
        .map(Some)
        .map_err(|_| format!("{what} {v:?} is out of range"))
}

fn flag(what: &str, v: &Option<String>) -> Result<bool, String> {
    let Some(v) = v else { return Ok(false) };
    match v.to_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "是" => Ok(true),
        "0" | "false" | "no" | "n" | "否" => Ok(false),
        _ => Err(format!("{what} {v:?} is not yes/no")),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2024-05-01`, `2024/5/1`, either with ` 14:30[:15]` or `T14:30[:15][Z]` (UTC), or epoch
/// milliseconds → milliseconds since the epoch.
pub fn parse_time_ms(v: &str) -> Option<i64> {
    let v = v.trim();
    if v.chars().all(|c| c.is_ascii_digit()) && v.len() >= 10 {
        return v.parse().ok();
    }
    let (date, time) = match v.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t.trim_end_matches('Z'))),
        None => (v, None),
    };
    let ymd: Vec<i64> = date
        .split(['-', '/'])
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [y, m, d] = ymd[..] else { return None };
    if !(1900..=2200).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if let Some(t) = time {
        let hms: Vec<i64> = t
            .split(':')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        let (h, mi, s) = match hms[..] {
            [h, mi] => (h, mi, 0),
            [h, mi, s] => (h, mi, s),
            _ => return None,
        };
        if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..61).contains(&s) {
            return None;
        }
        secs += h * 3600 + mi * 60 + s;
    }
    Some(secs * 1000)
}

fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    crate::privacy::hex(&h.finalize()[..10])
}

/// The columns a customer row is read from, in the order `check_customer` expects.
fn customer_columns(m: &CrmMapping) -> Vec<Option<&str>> {
    vec![
        m.customer_id.as_deref(),
        Some(m.name.as_str()),
        Some(m.phone.as_str()),
        m.language.as_deref(),
        m.age.as_deref(),
        m.region.as_deref(),
        m.occupation.as_deref(),
        m.income_band.as_deref(),
        m.children_in_school.as_deref(),
        m.recent_purchases.as_deref(),
        m.last_contact.as_deref(),
        m.interests.as_deref(),
        m.price_sensitivity.as_deref(),
        m.segment.as_deref(),
        m.do_not_call.as_deref(),
    ]
}

/// Imports customers. Rows are checked in chunks and the accepted ones written as their chunk
/// comes, all in one transaction (a database failure stores none of them). Importing the same
/// file again accepts the same rows and leaves the store as it was.
pub async fn import_customers(
    store: &SqlStore,
    keys: &PrivacyKeys,
    mapping: &CrmMapping,
    format: Format,
    input: &str,
    now_ms: i64,
) -> Result<ImportReport, RetrievalError> {
    let m = mapping;
    let started = std::time::Instant::now();
    let mut report = ImportReport::default();
    let stored = store.phone_hashes().await?;
    // Reading, per-row checks, phone normalization, keyed hash and encryption depend on nothing
    // but the row: they run on every core, off the async runtime. Duplicates are then refused
    // in file order, last, so only a row that would be accepted claims its id and phone.
    // Chunks are checked on the blocking pool while the previous chunk is written, so the
    // checks and SQLite's single writer overlap.
    let (chunks, mut checked_chunks) =
        tokio::sync::mpsc::channel::<Vec<(usize, Result<ProfileRecord, String>)>>(2);
    let checker = {
        let (m, keys, input) = (m.clone(), keys.clone(), input.to_string());
        tokio::task::spawn_blocking(move || -> Result<Vec<RejectedRow>, RetrievalError> {
            let mut rejected = Vec::new();
            let rows = read_rows(
                &input,
                format,
                &customer_columns(&m),
                &[m.name.as_str(), m.phone.as_str()],
                &mut rejected,
            )?;
            for chunk in rows.chunks(CHECK_CHUNK_ROWS) {
                let checked = par_map(chunk, |row| check_customer(row, &m, &keys, &stored, now_ms));
                let lines = chunk.iter().map(|r| r.line);
                if chunks.blocking_send(lines.zip(checked).collect()).is_err() {
                    break; // the writer failed; its error is the import's
                }
            }
            Ok(rejected)
        })
    };
    let mut seen_ids: HashMap<String, usize> = HashMap::new();
    let mut seen_phones: HashMap<String, usize> = HashMap::new();
    let mut tx = store.pool().begin().await?;
    let (mut checking_ms, mut writing_ms) = (0u64, 0u64);
    loop {
        let waited = std::time::Instant::now();
        let Some(chunk) = checked_chunks.recv().await else {
            break;
        };
        checking_ms += waited.elapsed().as_millis() as u64;
        let mut records = Vec::with_capacity(chunk.len());
        for (line, checked) in chunk {
            let unique = checked.and_then(|r| {
                let hash = r.phone.as_ref().map_or("", |p| p.hash.as_str());
                if let Some(first) = seen_ids.get(&r.profile.customer_id) {
                    return Err(format!("duplicate customer id, first on line {first}"));
                }
                if let Some(first) = seen_phones.get(hash) {
                    return Err(format!("duplicate phone number, first on line {first}"));
                }
                seen_ids.insert(r.profile.customer_id.clone(), line);
                seen_phones.insert(hash.to_string(), line);
                Ok(r)
            });
            match unique {
                Ok(r) => records.push(r),
                Err(reason) => report.rejected.push(RejectedRow { line, reason }),
            }
        }
        let writing = std::time::Instant::now();
        write_profiles(&mut tx, &records, "crm-import", now_ms).await?;
        writing_ms += writing.elapsed().as_millis() as u64;
        report.accepted += records.len();
    }
    let mut unreadable = checker
        .await
        .map_err(|e| RetrievalError::Task(format!("import row checks: {e}")))??;
    report.rejected.append(&mut unreadable);
    let committing = std::time::Instant::now();
    tx.commit().await?;
    store.profiles_changed();
    report.rejected.sort_by_key(|r| r.line);
    tracing::info!(
        accepted = report.accepted,
        rejected = report.rejected.len(),
        total_ms = started.elapsed().as_millis() as u64,
        waiting_for_checks_ms = checking_ms,
        writing_ms,
        commit_ms = committing.elapsed().as_millis() as u64,
        "customers imported"
    );
    Ok(report)
}

/// Rows checked per batch handed to the writer.
const CHECK_CHUNK_ROWS: usize = 8192;

/// Runs `f` over `items` on every available core (scoped threads over contiguous chunks) and
/// returns the results in the order of `items`.
fn par_map<I: Sync, T: Send>(items: &[I], f: impl Fn(&I) -> T + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len() / 1024 + 1);
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let f = &f;
    std::thread::scope(|s| {
        let workers: Vec<_> = items
            .chunks(items.len().div_ceil(threads))
            .map(|chunk| s.spawn(move || chunk.iter().map(f).collect::<Vec<T>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Cleans and checks one customer row and seals its phone; duplicates are the caller's.
fn check_customer(
    row: &RawRow,
    m: &CrmMapping,
    keys: &PrivacyKeys,
    stored: &HashMap<String, String>,
    now_ms: i64,
) -> Result<ProfileRecord, String> {
    let v = &row.values;
    let name = v[1].clone().ok_or("missing name")?;
    let phone_raw = v[2].as_deref().ok_or("missing phone number")?;
    let phone = PhoneNumber::parse(phone_raw, &m.default_country).map_err(|e| e.to_string())?;
    let sealed: SealedPhone = keys.seal_phone(&phone).map_err(|e| e.to_string())?;
    let owner = stored.get(&sealed.hash);
    let customer_id = match (&v[0], owner) {
        (Some(id), Some(owner)) if id != owner => {
            return Err(format!("phone number belongs to stored customer {owner}"))
        }
        (Some(id), _) => id.clone(),
        (None, Some(owner)) => owner.clone(),
        (None, None) => format!("crm-{}", &sealed.hash[..16]),
    };
    let language = match &v[3] {
        Some(l) => Language::parse(l).ok_or_else(|| format!("language {l:?} is not en or zh"))?,
        None => m.default_language,
    };
    let price_sensitivity = match &v[12] {
        Some(p) => {
            let x: f32 = p
                .parse()
                .map_err(|_| format!("price_sensitivity {p:?} is not a number"))?;
            if !(0.0..=1.0).contains(&x) {
                return Err(format!("price_sensitivity {p:?} is not between 0 and 1"));
            }
            Some(x)
        }
        None => None,
    };
    let last_contact_ms = match &v[10] {
        Some(t) => {
            Some(parse_time_ms(t).ok_or_else(|| format!("last_contact {t:?} is not a date"))?)
        }
        None => None,
    };
    let mut interests: Vec<String> = v[11]
        .as_deref()
        .unwrap_or("")
        .split([';', '|', ','])
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    interests.sort();
    interests.dedup();
    let profile = CustomerProfile {
        customer_id,
        display_name: name,
        language,
        age: number("age", &v[4], 0..=120)?,
        region: v[5].clone(),
        occupation: v[6].as_ref().map(|s| s.to_lowercase()),
        income_band: number("income_band", &v[7], 1..=5)?,
        children_in_school: number("children_in_school", &v[8], 0..=20)?,
        recent_purchases: number("recent_purchases", &v[9], 0..=100_000)?,
        last_contact_ms,
        calls_so_far: 0,
        interests,
        price_sensitivity,
        segment: v[13].clone(),
        do_not_call: flag("do_not_call", &v[14])?,
    };
    Ok(ProfileRecord {
        profile,
        phone: Some(sealed),
        created_at_ms: now_ms,
    })
}

/// Imports CRM call logs, each fused to the stored customer with the same phone hash. Logs whose
/// number matches no customer are rejected; a log imported before (same customer and start) is
/// kept once.
pub async fn import_call_logs(
    store: &SqlStore,
    keys: &PrivacyKeys,
    mapping: &CallLogMapping,
    format: Format,
    input: &str,
) -> Result<ImportReport, RetrievalError> {
    let m = mapping;
    let columns = vec![
        Some(m.phone.as_str()),
        Some(m.started_at.as_str()),
        m.duration_s.as_deref(),
        Some(m.outcome.as_str()),
        m.notes.as_deref(),
    ];
    let mut report = ImportReport::default();
    let rows = read_rows(
        input,
        format,
        &columns,
        &[m.phone.as_str(), m.started_at.as_str(), m.outcome.as_str()],
        &mut report.rejected,
    )?;
    let customers = store.phone_hashes().await?;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut logs = Vec::with_capacity(rows.len());
    for row in rows {
        let v = &row.values;
        let log = (|| -> Result<CallLog, String> {
            let raw = v[0].as_deref().ok_or("missing phone number")?;
            let phone = PhoneNumber::parse(raw, &m.default_country).map_err(|e| e.to_string())?;
            let hash = keys.phone_hash(&phone);
            let customer_id = customers
                .get(&hash)
                .ok_or_else(|| format!("no stored customer has phone number {phone}"))?;
            let t = v[1].as_deref().ok_or("missing start time")?;
            let started_at_ms =
                parse_time_ms(t).ok_or_else(|| format!("start time {t:?} is not a date"))?;
            let outcome = v[3].as_ref().ok_or("missing outcome")?.to_lowercase();
            let id = format!(
                "log-{}",
                short_hash(&[hash.as_str(), started_at_ms.to_string().as_str()])
            );
            if let Some(first) = seen.get(&id) {
                return Err(format!("duplicate call log, first on line {first}"));
            }
            seen.insert(id.clone(), row.line);
            Ok(CallLog {
                id,
                customer_id: customer_id.clone(),
                started_at_ms,
                duration_s: number("duration_s", &v[2], 0..=86_400)?,
                outcome,
                notes: v[4].clone().unwrap_or_default(),
            })
        })();
        match log {
            Ok(l) => logs.push(l),
            Err(reason) => report.rejected.push(RejectedRow {
                line: row.line,
                reason,
            }),
        }
    }
    let mut tx = store.pool().begin().await?;
    write_call_logs(&mut tx, &logs).await?;
    tx.commit().await?;
    store.profiles_changed();
    report.accepted = logs.len();
    report.rejected.sort_by_key(|r| r.line);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_the_usual_spellings() {
        assert_eq!(parse_time_ms("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_time_ms("2024-03-01"), Some(1_709_251_200_000));
        assert_eq!(parse_time_ms("2024/3/1 01:00"), Some(1_709_254_800_000));
        assert_eq!(
            parse_time_ms("2024-03-01T01:00:00Z"),
            Some(1_709_254_800_000)
        );
        assert_eq!(parse_time_ms("1709251200000"), Some(1_709_251_200_000));
        for bad in ["yesterday", "2024-13-01", "2024-02", "2024-03-01 25:00"] {
            assert_eq!(parse_time_ms(bad), None, "{bad}");
        }
    }
}
