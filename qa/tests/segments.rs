//! Segments on the seeded synthetic CRM: K-Means is deterministic for a seed and names its
//! segments readably; best time to call recovers the hours customers answer at from call
//! history stored in a real SQLite store.

use qa::segments::{self, SegmentOptions, Segmentation, TimeOptions};
use rand::{Rng, SeedableRng};
use retrieval::store::{CallLog, ProfileRecord};
use retrieval::synth::{self, SyntheticCustomer};
use retrieval::{CustomerProfile, Language};

const NOW_MS: i64 = 1_780_000_000_000;

fn profile(c: &SyntheticCustomer) -> CustomerProfile {
    CustomerProfile {
        customer_id: c.customer_id.clone(),
        display_name: c.name.clone(),
        language: Language::parse(&c.language).unwrap_or_default(),
        age: Some(c.age),
        region: Some(c.region.clone()),
        occupation: Some(c.occupation.clone()),
        income_band: Some(c.income_band),
        children_in_school: Some(c.children_in_school),
        recent_purchases: Some(c.recent_purchases),
        last_contact_ms: Some(NOW_MS - i64::from(c.days_since_last_contact) * 86_400_000),
        price_sensitivity: Some(c.price_sensitivity),
        ..Default::default()
    }
}

fn rows(customers: &[SyntheticCustomer]) -> Vec<Vec<f64>> {
    customers
        .iter()
        .map(|c| segments::profile_features(&profile(c), NOW_MS))
        .collect()
}

#[test]
fn kmeans_segments_are_deterministic_and_named() {
    let people = synth::generate(1200, 11, 0.5);
    let x = rows(&people);
    let opts = SegmentOptions::default();
    let a = Segmentation::fit(&x, &opts).expect("fit");
    let b = Segmentation::fit(&x, &opts).expect("fit");
    assert_eq!(a.segments, b.segments);
    assert_eq!(a.silhouettes, b.silhouettes);
    assert!((opts.k_min..=opts.k_max).contains(&a.k));
    assert_eq!(a.segments.iter().map(|s| s.size).sum::<usize>(), 1200);
    let mut names: Vec<&str> = a.segments.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), a.k, "names are unique: {names:?}");
    for s in &a.segments {
        assert!(!s.description.is_empty());
        assert!(
            s.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{}",
            s.name
        );
    }
    // Sizes largest first, and every customer is assigned the segment it was counted in.
    assert!(a.segments.windows(2).all(|w| w[0].size >= w[1].size));
    let mut counts = vec![0; a.k];
    for r in &x {
        counts[a.assign(r)] += 1;
    }
    assert_eq!(
        counts,
        a.segments.iter().map(|s| s.size).collect::<Vec<_>>()
    );
    // The synthetic CRM has parents of school children aged 28–50: some segment is families.
    assert!(
        a.segments
            .iter()
            .any(|s| s.description.ends_with("families")),
        "{:?}",
        a.segments
            .iter()
            .map(|s| &s.description)
            .collect::<Vec<_>>()
    );
}

#[test]
fn too_few_profiles_is_an_error() {
    let x = rows(&synth::generate(10, 1, 0.5));
    let err = Segmentation::fit(&x, &SegmentOptions::default()).expect_err("too few");
    assert!(err.to_string().contains("too few"), "{err}");
}

#[test]
fn best_time_recovers_when_customers_answer() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = retrieval::SqlStore::connect(&format!(
            "sqlite://{}",
            tmp.path().join("db.sqlite").display()
        ))
        .await
        .expect("store");
        let people = synth::generate(400, 5, 0.0);
        let records: Vec<ProfileRecord> = people
            .iter()
            .map(|c| ProfileRecord {
                profile: profile(c),
                phone: None,
                created_at_ms: NOW_MS,
            })
            .collect();
        store
            .upsert_profiles(&records, "test", NOW_MS)
            .await
            .expect("profiles");
        // Eight calls each at random hours 9–20 (UTC) over past days: a customer answers at
        // their best hour 80% of the time, otherwise 20%; an answered call converts 15%.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let day0 = NOW_MS - NOW_MS % 86_400_000 - 30 * 86_400_000;
        let mut logs = Vec::new();
        for c in &people {
            for k in 0..8 {
                let hour = rng.random_range(9..21u8);
                let answered = rng.random_bool(if hour == c.best_hour { 0.8 } else { 0.2 });
                let outcome = match (answered, rng.random_bool(0.15)) {
                    (false, _) => "no answer",
                    (true, true) => "sale",
                    (true, false) => "refused",
                };
                let at = day0 + k * 86_400_000 + i64::from(hour) * 3_600_000;
                logs.push(CallLog {
                    id: format!("{}-{k}", c.customer_id),
                    customer_id: c.customer_id.clone(),
                    started_at_ms: at,
                    duration_s: Some(60),
                    outcome: outcome.into(),
                    notes: String::new(),
                });
            }
        }
        store.insert_call_logs(&logs).await.expect("logs");

        let contacts = segments::load_contacts(&store).await.expect("contacts");
        assert_eq!(contacts.len(), logs.len());
        let retired: std::collections::HashSet<&str> = people
            .iter()
            .filter(|c| c.occupation == "retired")
            .map(|c| c.customer_id.as_str())
            .collect();
        let segment_of = |id: &str| {
            Some(
                if retired.contains(id) {
                    "retired"
                } else {
                    "working"
                }
                .to_string(),
            )
        };
        let times = segments::best_times(&contacts, &segment_of, &TimeOptions::default());
        assert_eq!(times.len(), 2);
        for t in &times {
            let want = if t.segment == "retired" {
                9..12
            } else {
                17..21
            };
            assert!(
                t.best_hours.iter().all(|h| want.contains(h)),
                "{}: best hours {:?}",
                t.segment,
                t.best_hours
            );
            assert_eq!(t.best_hours.len(), 3);
            assert!(t.conversion_rate > 0.05 && t.conversion_rate < 0.3);
        }
    });
}
