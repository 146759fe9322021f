//! Synthetic CRM generator for demos and tests: seeded, with Chinese and English customers,
//! realistic attribute distributions, messy phone spellings, and a conversion outcome that
//! really depends on the attributes (so a propensity model has something true to learn).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One customer as a CRM export would hold it, plus the simulated outcome of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyntheticCustomer {
    pub customer_id: String,
    pub name: String,
    /// As typed by an agent: spacing and prefixes vary; a few are invalid on purpose.
    pub phone_raw: String,
    /// "zh" or "en".
    pub language: String,
    pub age: u32,
    pub region: String,
    pub occupation: String,
    /// 1 (lowest) to 5.
    pub income_band: u8,
    pub children_in_school: u8,
    pub recent_purchases: u32,
    pub days_since_last_contact: u32,
    /// 0 (buys on quality) to 1 (buys on price).
    pub price_sensitivity: f32,
    /// Local hour (9–20) at which this customer tends to answer.
    pub best_hour: u8,
    /// Whether the simulated call converted.
    pub converted: bool,
    /// The model's conversion probability that drew `converted` (for checking learners).
    pub true_propensity: f32,
}

const ZH_SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙",
];
const ZH_GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "勇", "军", "杰", "婷", "涛",
];
const ZH_REGIONS: &[&str] = &[
    "上海", "北京", "广州", "深圳", "成都", "杭州", "武汉", "南京",
];
const EN_FIRST: &[&str] = &[
    "James", "Mary", "John", "Linda", "David", "Susan", "Michael", "Karen", "Daniel", "Emma",
];
const EN_LAST: &[&str] = &[
    "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Thomas", "Clark",
];
const EN_REGIONS: &[&str] = &[
    "London",
    "Manchester",
    "Toronto",
    "Sydney",
    "Chicago",
    "Dublin",
];
const OCCUPATIONS: &[&str] = &[
    "teacher",
    "engineer",
    "nurse",
    "driver",
    "retail",
    "manager",
    "self-employed",
    "retired",
];

fn pick<'a>(rng: &mut ChaCha8Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.random_range(0..xs.len())]
}

fn logistic(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Generates `n` customers from `seed`; the same seed always gives the same customers.
/// About `zh_share` of them are Mandarin speakers.
pub fn generate(n: usize, seed: u64, zh_share: f64) -> Vec<SyntheticCustomer> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let zh = rng.random_bool(zh_share.clamp(0.0, 1.0));
            let age = (22.0 + rng.random::<f32>().powf(1.3) * 58.0) as u32;
            let occupation = if age >= 62 {
                "retired"
            } else {
                pick(&mut rng, &OCCUPATIONS[..7])
            };
            let income_band = (1
                + rng.random_range(0..5)
                + u8::from(occupation == "manager" || occupation == "engineer"))
            .min(5);
            let children_in_school = if (28..=50).contains(&age) {
                rng.random_range(0..3)
            } else {
                0
            };
            let recent_purchases = rng.random_range(0..4) + u32::from(income_band >= 4);
            let days_since_last_contact = rng.random_range(1..400);
            let price_sensitivity = (0.9 - 0.15 * f32::from(income_band)
                + rng.random_range(-0.2..0.2)
                + if age >= 62 { 0.2 } else { 0.0 })
            .clamp(0.0, 1.0);
            let best_hour = if occupation == "retired" {
                rng.random_range(9..12)
            } else {
                rng.random_range(17..21)
            };
            // The true conversion model: children and recent purchases help, long silence and
            // price sensitivity hurt, middle incomes buy most.
            let score =
                -2.2 + 0.55 * f32::from(children_in_school) + 0.35 * recent_purchases as f32
                    - 0.004 * days_since_last_contact as f32
                    - 1.2 * price_sensitivity
                    + if (2..=4).contains(&income_band) {
                        0.5
                    } else {
                        0.0
                    };
            let true_propensity = logistic(score);
            let converted = rng.random::<f32>() < true_propensity;
            let (name, region, language, phone_raw) = if zh {
                let digits = format!(
                    "1{}{:09}",
                    rng.random_range(3..10),
                    rng.random_range(0..1_000_000_000u32)
                );
                let phone = match rng.random_range(0..5) {
                    0 => format!("+86 {} {} {}", &digits[..3], &digits[3..7], &digits[7..]),
                    1 => format!("0086-{digits}"),
                    2 => format!("{}-{}-{}", &digits[..3], &digits[3..7], &digits[7..]),
                    3 if rng.random_bool(0.1) => digits[..7].to_string(), // truncated: invalid
                    _ => digits,
                };
                let given: String = (0..rng.random_range(1..3))
                    .map(|_| pick(&mut rng, ZH_GIVEN))
                    .collect();
                (
                    format!("{}{given}", pick(&mut rng, ZH_SURNAMES)),
                    pick(&mut rng, ZH_REGIONS),
                    "zh",
                    phone,
                )
            } else {
                let (area, line) = (
                    rng.random_range(201..990),
                    rng.random_range(0..10_000_000u32),
                );
                let phone = match rng.random_range(0..4) {
                    0 => format!("+1 ({area}) {:03}-{:04}", line / 10_000, line % 10_000),
                    1 => format!("1-{area}-{:03}-{:04}", line / 10_000, line % 10_000),
                    2 if rng.random_bool(0.1) => format!("{area}-{:03}", line / 10_000), // too short
                    _ => format!("{area}{line:07}"),
                };
                let name = format!("{} {}", pick(&mut rng, EN_FIRST), pick(&mut rng, EN_LAST));
                (name, pick(&mut rng, EN_REGIONS), "en", phone)
            };
            SyntheticCustomer {
                customer_id: format!("cust-{seed}-{i:06}"),
                name,
                phone_raw,
                language: language.into(),
                age,
                region: region.into(),
                occupation: occupation.into(),
                income_band,
                children_in_school,
                recent_purchases,
                days_since_last_contact,
                price_sensitivity,
                best_hour,
                converted,
                true_propensity,
            }
        })
        .collect()
}

/// The customers as a CRM export in CSV, with the column names [`crate::import::CrmMapping`]
/// expects by default; last contact is dated back from `now_ms`.
pub fn to_csv(customers: &[SyntheticCustomer], now_ms: i64) -> String {
    let mut out = String::from(
        "customer_id,name,phone,language,age,region,occupation,income_band,children_in_school,\
         recent_purchases,last_contact,interests,price_sensitivity,segment,do_not_call\n",
    );
    for c in customers {
        let interests = if c.children_in_school > 0 {
            "education"
        } else {
            "car insurance"
        };
        let last = now_ms - i64::from(c.days_since_last_contact) * 86_400_000;
        out.push_str(&format!(
            "{},\"{}\",\"{}\",{},{},{},{},{},{},{},{last},{interests},{:.2},,no\n",
            c.customer_id,
            c.name,
            c.phone_raw,
            c.language,
            c.age,
            c.region,
            c.occupation,
            c.income_band,
            c.children_in_school,
            c.recent_purchases,
            c.price_sensitivity,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PhoneNumber;

    #[test]
    fn same_seed_same_customers() {
        assert_eq!(generate(50, 7, 0.5), generate(50, 7, 0.5));
        assert_ne!(generate(50, 7, 0.5), generate(50, 8, 0.5));
    }

    #[test]
    fn languages_names_and_phones_look_real() {
        let people = generate(2000, 1, 0.5);
        let zh = people.iter().filter(|c| c.language == "zh").count();
        assert!((900..1100).contains(&zh), "{zh} zh of 2000");
        for c in people.iter().filter(|c| c.language == "zh").take(50) {
            assert!(
                c.name
                    .chars()
                    .all(|ch| ('\u{4e00}'..='\u{9fff}').contains(&ch)),
                "{}",
                c.name
            );
        }
        let valid = people
            .iter()
            .filter(|c| {
                PhoneNumber::parse(&c.phone_raw, if c.language == "zh" { "86" } else { "1" })
                    .is_ok()
            })
            .count();
        // Most numbers parse; a few are broken on purpose, as in real exports.
        assert!(valid > 1900 && valid < 2000, "{valid} valid of 2000");
    }

    #[test]
    fn conversion_depends_on_the_attributes() {
        let people = generate(20_000, 3, 0.5);
        let rate = |f: &dyn Fn(&SyntheticCustomer) -> bool| {
            let group: Vec<_> = people.iter().filter(|c| f(c)).collect();
            group.iter().filter(|c| c.converted).count() as f64 / group.len().max(1) as f64
        };
        let overall = rate(&|_| true);
        assert!(
            (0.05..0.30).contains(&overall),
            "overall conversion {overall:.3}"
        );
        let parents = rate(&|c| c.children_in_school >= 1);
        let others = rate(&|c| c.children_in_school == 0);
        assert!(
            parents > others * 1.5,
            "parents {parents:.3} vs others {others:.3}"
        );
        let thrifty = rate(&|c| c.price_sensitivity > 0.7);
        let relaxed = rate(&|c| c.price_sensitivity < 0.3);
        assert!(
            relaxed > thrifty,
            "relaxed {relaxed:.3} vs price-sensitive {thrifty:.3}"
        );
    }
}
