//! The campaign dialer against a real store: SQLite in a temporary folder, and PostgreSQL at
//! 127.0.0.1:5432 (database `test`, or `DATABASE_URL_PG`) when one answers — skipped with a
//! message otherwise. Calling windows per time zone and weekday, do-not-call, callbacks,
//! attempts and back-off, the refusal cooldown, lines, two dialers racing for one queue, and a
//! seeded hand-off pacing simulation that prints `dialer.handoff_abandon_rate`.

#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

use chrono::TimeZone;
use chrono_tz::Tz;
use orchestrator::dialer::{
    CallOutcome, CampaignDialer, DialTicket, DialerConfig, HandOffDesk, NextCall, RunState, Scorer,
    WaitReason, WindowRule,
};
use retrieval::store::{ProfileRecord, QueueStatus};
use retrieval::{CustomerProfile, SqlStore};
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

/// One database to run a case on, with a tag that keeps its ids apart from other runs.
struct Db {
    name: &'static str,
    url: String,
    store: SqlStore,
    tag: String,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    fn id(&self, s: &str) -> String {
        format!("{s}-{}", self.tag)
    }
}

fn unique_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

async fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("dialer.db").display());
    Db {
        name: "sqlite",
        store: SqlStore::connect(&url).await.unwrap(),
        url,
        tag: unique_tag(),
        _dir: Some(dir),
    }
}

async fn postgres() -> Option<Db> {
    let url = std::env::var("DATABASE_URL_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    match SqlStore::connect(&url).await {
        Ok(store) => Some(Db {
            name: "postgres",
            url,
            store,
            tag: unique_tag(),
            _dir: None,
        }),
        Err(e) => {
            eprintln!("SKIP postgres dialer case: PostgreSQL not reachable at {url}: {e}");
            None
        }
    }
}

async fn backends() -> Vec<Db> {
    let mut dbs = vec![sqlite().await];
    dbs.extend(postgres().await);
    dbs
}

/// Local wall-clock time in `zone` as ms since the epoch.
fn local(zone: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
    zone.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .earliest()
        .unwrap()
        .timestamp_millis()
}

async fn add_customer(db: &Db, id: &str, region: &str, do_not_call: bool) {
    let profile = CustomerProfile {
        customer_id: id.to_string(),
        display_name: format!("Customer {id}"),
        region: Some(region.to_string()),
        do_not_call,
        ..Default::default()
    };
    let record = ProfileRecord {
        profile,
        phone: None,
        created_at_ms: 0,
    };
    db.store
        .upsert_profiles(&[record], "test", 0)
        .await
        .unwrap();
}

/// Scores from a table (ids by prefix before the run tag), so a case decides who comes first.
struct FixedScorer(HashMap<String, f64>);

impl Scorer for FixedScorer {
    fn name(&self) -> &str {
        "fixed"
    }
    fn score(&self, profile: &CustomerProfile, _now_ms: i64) -> f64 {
        let key = profile.customer_id.split('-').next().unwrap_or_default();
        self.0.get(key).copied().unwrap_or(0.5)
    }
}

fn scorer(pairs: &[(&str, f64)]) -> Arc<dyn Scorer> {
    Arc::new(FixedScorer(
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    ))
}

/// A configuration in which lines and agents never bind.
fn roomy() -> DialerConfig {
    DialerConfig {
        max_lines: 100,
        agents: 100,
        ..Default::default()
    }
}

async fn dialer(db: &Db, config: DialerConfig, scorer: Arc<dyn Scorer>) -> CampaignDialer {
    CampaignDialer::new(db.store.clone(), config, scorer).unwrap()
}

async fn dial(d: &CampaignDialer, campaign: &str, now: i64) -> Option<DialTicket> {
    match d.next_call(campaign, now, 0).await.unwrap() {
        NextCall::Dial(t) => Some(t),
        _ => None,
    }
}

async fn finish(
    d: &CampaignDialer,
    t: &DialTicket,
    outcome: CallOutcome,
    callback: Option<i64>,
    at: i64,
) {
    let done = d.attempt_done(t, outcome, callback, at).unwrap();
    d.store().complete_attempt(&done).await.unwrap();
}

fn who(db: &Db, t: &Option<DialTicket>) -> Option<String> {
    t.as_ref().map(|t| {
        t.customer_id
            .trim_end_matches(&format!("-{}", db.tag))
            .to_string()
    })
}

#[tokio::test]
async fn calling_window_follows_each_customers_time_zone() {
    for db in backends().await {
        let (sh, ny) = (db.id("sh"), db.id("ny"));
        add_customer(&db, &sh, "上海", false).await;
        add_customer(&db, &ny, "New York", false).await;
        let d = dialer(&db, roomy(), scorer(&[("sh", 0.9), ("ny", 0.1)])).await;
        let campaign = db.id("window");
        d.open(&campaign, None, 0).await.unwrap();
        d.enqueue(&campaign, &[&sh, &ny], 0).await.unwrap();
        // Wednesday 2025-06-11 13:00 UTC: 21:00 in Shanghai (closed), 09:00 in New York (open).
        let now = local(Tz::UTC, 2025, 6, 11, 13, 0);
        let t = dial(&d, &campaign, now).await;
        assert_eq!(who(&db, &t).as_deref(), Some("ny"), "{}", db.name);
        // Shanghai waits for its own 08:00, which is 00:00 UTC.
        let row = d
            .store()
            .dial_queue_row(&campaign, &sh)
            .await
            .unwrap()
            .unwrap();
        let opening = local(Tz::Asia__Shanghai, 2025, 6, 12, 8, 0);
        assert_eq!(row.next_attempt_at_ms, opening, "{}", db.name);
        assert_eq!(row.time_zone, "Asia/Shanghai");
        assert_eq!(
            d.next_call(&campaign, now + MIN, 0).await.unwrap(),
            NextCall::Wait(WaitReason::NothingDue {
                next_due_at_ms: Some(opening)
            })
        );
        let t = dial(&d, &campaign, opening).await;
        assert_eq!(who(&db, &t).as_deref(), Some("sh"), "{}", db.name);
    }
}

#[tokio::test]
async fn weekday_rules_close_sundays_and_shorten_saturdays() {
    for db in backends().await {
        let lon = db.id("lon");
        add_customer(&db, &lon, "London", false).await;
        let mut config = roomy();
        let mut uk = WindowRule::default();
        uk.days.insert("sun".into(), "closed".into());
        uk.days.insert("sat".into(), "10:00-16:00".into());
        config.regions.insert("Europe/London".into(), uk);
        let d = dialer(&db, config, scorer(&[])).await;
        let campaign = db.id("weekday");
        d.open(&campaign, None, 0).await.unwrap();
        d.enqueue(&campaign, &[&lon], 0).await.unwrap();
        let london = Tz::Europe__London;
        // Saturday 2025-06-14 09:00: the Saturday window opens at 10:00.
        let sat = local(london, 2025, 6, 14, 9, 0);
        assert!(dial(&d, &campaign, sat).await.is_none(), "{}", db.name);
        let row = d
            .store()
            .dial_queue_row(&campaign, &lon)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.next_attempt_at_ms, local(london, 2025, 6, 14, 10, 0));
        // Saturday 16:30 is past the short Saturday; Sunday is closed: Monday 08:00.
        let late_sat = local(london, 2025, 6, 14, 16, 30);
        assert!(dial(&d, &campaign, late_sat).await.is_none());
        let row = d
            .store()
            .dial_queue_row(&campaign, &lon)
            .await
            .unwrap()
            .unwrap();
        let monday = local(london, 2025, 6, 16, 8, 0);
        assert_eq!(row.next_attempt_at_ms, monday, "{}", db.name);
        let sunday_noon = local(london, 2025, 6, 15, 12, 0);
        assert!(dial(&d, &campaign, sunday_noon).await.is_none());
        assert!(dial(&d, &campaign, monday).await.is_some(), "{}", db.name);
    }
}

#[tokio::test]
async fn do_not_call_customers_are_never_dialed() {
    for db in backends().await {
        let (optout, later, ok) = (db.id("optout"), db.id("later"), db.id("ok"));
        add_customer(&db, &optout, "上海", true).await;
        add_customer(&db, &later, "上海", false).await;
        add_customer(&db, &ok, "上海", false).await;
        let d = dialer(&db, roomy(), scorer(&[("later", 0.9), ("ok", 0.1)])).await;
        let campaign = db.id("dnc");
        d.open(&campaign, None, 0).await.unwrap();
        let report = d
            .enqueue(&campaign, &[&optout, &later, &ok, &db.id("ghost")], 0)
            .await
            .unwrap();
        assert_eq!((report.queued, report.do_not_call), (2, 1), "{}", db.name);
        assert_eq!(report.unknown, vec![db.id("ghost")]);
        // Enqueueing again changes nothing.
        let again = d.enqueue(&campaign, &[&optout, &later], 0).await.unwrap();
        assert_eq!((again.queued, again.already_queued), (0, 2));
        // `later` opts out during another call after enqueue: the claim reads consent now.
        d.store()
            .set_do_not_call(&later, true, "call", 1)
            .await
            .unwrap();
        let now = local(Tz::Asia__Shanghai, 2025, 6, 11, 10, 0);
        let t = dial(&d, &campaign, now).await;
        assert_eq!(who(&db, &t).as_deref(), Some("ok"), "{}", db.name);
        assert_eq!(
            d.next_call(&campaign, now, 1).await.unwrap(),
            NextCall::Wait(WaitReason::NothingDue {
                next_due_at_ms: None
            })
        );
        let row = d
            .store()
            .dial_queue_row(&campaign, &later)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, QueueStatus::DoNotCall);
        let status = d.status(&campaign).await.unwrap();
        assert_eq!(status.counts.do_not_call, 2, "{}", db.name);
        assert_eq!(status.counts.attempts, 1);
        assert!(d
            .store()
            .dial_attempts(&campaign)
            .await
            .unwrap()
            .iter()
            .all(|a| a.customer_id == ok));
    }
}

#[tokio::test]
async fn callbacks_come_due_at_their_time_before_fresh_candidates() {
    for db in backends().await {
        let ids = ["cbk", "mid", "low"].map(|s| db.id(s));
        for id in &ids {
            add_customer(&db, id, "上海", false).await;
        }
        let d = dialer(
            &db,
            roomy(),
            scorer(&[("cbk", 0.9), ("mid", 0.6), ("low", 0.3)]),
        )
        .await;
        let campaign = db.id("callbacks");
        d.open(&campaign, None, 0).await.unwrap();
        d.enqueue(&campaign, &ids, 0).await.unwrap();
        let sh = Tz::Asia__Shanghai;
        let t0 = local(sh, 2025, 6, 11, 10, 0);
        let first = dial(&d, &campaign, t0).await.unwrap();
        assert!(first.customer_id.starts_with("cbk-"));
        // "Call me back at 11." Then the next best fresh candidate is dialed meanwhile.
        let eleven = local(sh, 2025, 6, 11, 11, 0);
        finish(
            &d,
            &first,
            CallOutcome::Callback,
            Some(eleven),
            t0 + 2 * MIN,
        )
        .await;
        let mid = dial(&d, &campaign, t0 + 3 * MIN).await.unwrap();
        assert!(mid.customer_id.starts_with("mid-"), "{}", db.name);
        finish(&d, &mid, CallOutcome::NoAnswer, None, t0 + 4 * MIN).await;
        // At 11:00 the callback is due and goes first, though `low` is fresh and due too.
        let cb = dial(&d, &campaign, eleven).await.unwrap();
        assert!(cb.customer_id.starts_with("cbk-"), "{}", db.name);
        assert!(cb.callback);
        assert_eq!(cb.attempt_no, 2);
        // A callback booked for 22:00 (outside the window) moves to 08:00 the next day.
        let late = local(sh, 2025, 6, 11, 22, 0);
        finish(&d, &cb, CallOutcome::Callback, Some(late), eleven + MIN).await;
        let low = dial(&d, &campaign, eleven + 2 * MIN).await.unwrap();
        assert!(low.customer_id.starts_with("low-"));
        finish(&d, &low, CallOutcome::Refused, None, eleven + 3 * MIN).await;
        assert!(dial(&d, &campaign, late).await.is_none(), "{}", db.name);
        let morning = local(sh, 2025, 6, 12, 8, 0);
        let row = d
            .store()
            .dial_queue_row(&campaign, &ids[0])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.next_attempt_at_ms, morning);
        let cb2 = dial(&d, &campaign, morning).await.unwrap();
        assert!(cb2.customer_id.starts_with("cbk-") && cb2.callback);
    }
}

#[tokio::test]
async fn attempts_back_off_then_run_out() {
    for db in backends().await {
        let id = db.id("retry");
        add_customer(&db, &id, "上海", false).await;
        let config = DialerConfig {
            max_attempts: 3,
            retry_backoff_minutes: vec![60, 240],
            max_attempts_per_day: 3,
            ..roomy()
        };
        let d = dialer(&db, config, scorer(&[])).await;
        let campaign = db.id("backoff");
        d.open(&campaign, None, 0).await.unwrap();
        d.enqueue(&campaign, &[&id], 0).await.unwrap();
        let t0 = local(Tz::Asia__Shanghai, 2025, 6, 11, 8, 0);
        let a1 = dial(&d, &campaign, t0).await.unwrap();
        finish(&d, &a1, CallOutcome::NoAnswer, None, t0 + MIN).await;
        assert_eq!(
            d.next_call(&campaign, t0 + 30 * MIN, 0).await.unwrap(),
            NextCall::Wait(WaitReason::NothingDue {
                next_due_at_ms: Some(t0 + 61 * MIN)
            }),
            "{}",
            db.name
        );
        let a2 = dial(&d, &campaign, t0 + 61 * MIN).await.unwrap();
        assert_eq!(a2.attempt_no, 2);
        finish(&d, &a2, CallOutcome::Voicemail, None, t0 + 62 * MIN).await;
        assert!(dial(&d, &campaign, t0 + 62 * MIN + 239 * MIN)
            .await
            .is_none());
        let a3 = dial(&d, &campaign, t0 + 62 * MIN + 240 * MIN)
            .await
            .unwrap();
        finish(&d, &a3, CallOutcome::HungUp, None, t0 + 303 * MIN).await;
        let row = d
            .store()
            .dial_queue_row(&campaign, &id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((row.status, row.attempts), (QueueStatus::Exhausted, 3));
        assert_eq!(
            d.next_call(&campaign, t0 + DAY, 0).await.unwrap(),
            NextCall::Finished(RunState::Done),
            "{}",
            db.name
        );
        let counts = d.status(&campaign).await.unwrap().counts;
        assert_eq!(counts.exhausted, 1);
        assert_eq!(counts.attempts_by_outcome.get("no_answer"), Some(&1));
    }
}

#[tokio::test]
async fn one_dial_per_customer_per_local_day() {
    let db = sqlite().await;
    let id = db.id("daily");
    add_customer(&db, &id, "Chicago", false).await;
    let d = dialer(&db, roomy(), scorer(&[])).await; // back-off 60 min, one dial a day
    let campaign = db.id("daily");
    d.open(&campaign, None, 0).await.unwrap();
    d.enqueue(&campaign, &[&id], 0).await.unwrap();
    let chi = Tz::America__Chicago;
    let t0 = local(chi, 2025, 6, 11, 9, 0);
    let a1 = dial(&d, &campaign, t0).await.unwrap();
    finish(&d, &a1, CallOutcome::NoAnswer, None, t0 + MIN).await;
    // The back-off ends at 10:01, but the customer had today's dial: tomorrow 08:00 Chicago.
    assert!(dial(&d, &campaign, t0 + 61 * MIN).await.is_none());
    let row = d
        .store()
        .dial_queue_row(&campaign, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.next_attempt_at_ms, local(chi, 2025, 6, 12, 8, 0));
}

#[tokio::test]
async fn a_refusal_cools_the_customer_down_across_campaigns() {
    for db in backends().await {
        let id = db.id("cool");
        add_customer(&db, &id, "上海", false).await;
        let config = DialerConfig {
            refusal_cooldown_days: 30,
            ..roomy()
        };
        let d = dialer(&db, config, scorer(&[])).await;
        let (a, b) = (db.id("camp-a"), db.id("camp-b"));
        let t0 = local(Tz::Asia__Shanghai, 2025, 6, 11, 10, 0);
        d.open(&a, None, t0).await.unwrap();
        d.enqueue(&a, &[&id], t0).await.unwrap();
        let call = dial(&d, &a, t0).await.unwrap();
        finish(&d, &call, CallOutcome::Refused, None, t0 + 2 * MIN).await;
        let row = d.store().dial_queue_row(&a, &id).await.unwrap().unwrap();
        assert_eq!(row.status, QueueStatus::Done, "{}", db.name);
        // A second campaign a week later may not call them before the 30 days are up.
        let week = t0 + 7 * DAY;
        d.open(&b, None, week).await.unwrap();
        d.enqueue(&b, &[&id], week).await.unwrap();
        assert!(dial(&d, &b, week).await.is_none(), "{}", db.name);
        let row = d.store().dial_queue_row(&b, &id).await.unwrap().unwrap();
        assert_eq!(row.next_attempt_at_ms, t0 + 2 * MIN + 30 * DAY);
        assert!(dial(&d, &b, t0 + 2 * MIN + 30 * DAY).await.is_some());
    }
}

#[tokio::test]
async fn lines_and_agents_bound_live_calls() {
    let db = sqlite().await;
    let ids: Vec<String> = (0..6).map(|i| db.id(&format!("l{i}"))).collect();
    for id in &ids {
        add_customer(&db, id, "上海", false).await;
    }
    let now = local(Tz::Asia__Shanghai, 2025, 6, 11, 10, 0);
    let d = dialer(
        &db,
        DialerConfig {
            max_lines: 2,
            ..roomy()
        },
        scorer(&[]),
    )
    .await;
    let lines = db.id("lines");
    d.open(&lines, None, now).await.unwrap();
    d.enqueue(&lines, &ids[..3], now).await.unwrap();
    assert!(matches!(
        d.next_call(&lines, now, 0).await.unwrap(),
        NextCall::Dial(_)
    ));
    assert!(matches!(
        d.next_call(&lines, now, 1).await.unwrap(),
        NextCall::Dial(_)
    ));
    assert_eq!(
        d.next_call(&lines, now, 2).await.unwrap(),
        NextCall::Wait(WaitReason::LinesFull)
    );
    // One agent, half the calls asking for one: a second live call could strand a hand-off.
    let paced = db.id("paced");
    let config = DialerConfig {
        agents: 1,
        handoff_prior: 0.5,
        ..roomy()
    };
    d.open(&paced, Some(config), now).await.unwrap();
    d.enqueue(&paced, &ids[3..], now).await.unwrap();
    assert!(matches!(
        d.next_call(&paced, now, 0).await.unwrap(),
        NextCall::Dial(_)
    ));
    assert_eq!(
        d.next_call(&paced, now, 1).await.unwrap(),
        NextCall::Wait(WaitReason::AgentsBusy)
    );
    // The agent takes a hand-off: no new call until they are free again.
    let desk = d.desk(&paced).unwrap();
    let lease = desk.try_take_now().unwrap();
    assert_eq!(
        d.next_call(&paced, now, 0).await.unwrap(),
        NextCall::Wait(WaitReason::AgentsBusy)
    );
    drop(lease);
    // The call centre adds agents through the API: more lines open at once.
    d.set_agents(&paced, 4, now).await.unwrap();
    assert!(matches!(
        d.next_call(&paced, now, 1).await.unwrap(),
        NextCall::Dial(_)
    ));
    assert_eq!(d.status(&paced).await.unwrap().agents, 4);
    // Paused campaigns place nothing; stopped ones are finished.
    d.pause(&paced, now).await.unwrap();
    assert_eq!(
        d.next_call(&paced, now, 0).await.unwrap(),
        NextCall::Wait(WaitReason::Paused)
    );
    d.resume(&paced, now).await.unwrap();
    d.stop(&paced, now).await.unwrap();
    assert_eq!(
        d.next_call(&paced, now, 0).await.unwrap(),
        NextCall::Finished(RunState::Stopped)
    );
    assert!(d.resume(&paced, now).await.is_err());
}

#[tokio::test]
async fn two_dialers_never_claim_the_same_customer() {
    for db in backends().await {
        let ids: Vec<String> = (0..30).map(|i| db.id(&format!("race{i}"))).collect();
        for id in &ids {
            add_customer(&db, id, "上海", false).await;
        }
        let campaign = db.id("race");
        let now = local(Tz::Asia__Shanghai, 2025, 6, 11, 10, 0);
        let mut dialers = Vec::new();
        for name in ["one", "two"] {
            let config = DialerConfig {
                instance_id: name.into(),
                ..roomy()
            };
            // Each dialer has its own store and connections, as a second process would.
            let store = SqlStore::connect(&db.url).await.unwrap();
            let d = Arc::new(CampaignDialer::new(store, config, scorer(&[])).unwrap());
            d.open(&campaign, None, now).await.unwrap();
            dialers.push(d);
        }
        dialers[0].enqueue(&campaign, &ids, now).await.unwrap();
        let tasks: Vec<_> = dialers
            .iter()
            .map(|d| {
                let (d, campaign) = (d.clone(), campaign.clone());
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    while let NextCall::Dial(t) = d.next_call(&campaign, now, 0).await.unwrap() {
                        got.push(t.customer_id);
                    }
                    got
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let unique: HashSet<&String> = all.iter().collect();
        assert_eq!(all.len(), 30, "{}", db.name);
        assert_eq!(
            unique.len(),
            30,
            "{}: a customer was claimed twice",
            db.name
        );
    }
}

#[tokio::test]
async fn a_dead_dialers_live_attempts_are_recovered_not_redialed() {
    for db in backends().await {
        let ids = [db.id("live1"), db.id("live2")];
        for id in &ids {
            add_customer(&db, id, "上海", false).await;
        }
        let campaign = db.id("recover");
        let now = local(Tz::Asia__Shanghai, 2025, 6, 11, 10, 0);
        let config = DialerConfig {
            max_attempts: 2,
            ..roomy()
        };
        let first = dialer(&db, config.clone(), scorer(&[])).await;
        first.open(&campaign, None, now).await.unwrap();
        first.enqueue(&campaign, &ids, now).await.unwrap();
        let t1 = dial(&first, &campaign, now).await.unwrap();
        let t2 = dial(&first, &campaign, now).await.unwrap();
        drop(first); // the process dies with two calls live
        let second = dialer(&db, config, scorer(&[])).await;
        let later = now + 5 * MIN;
        assert_eq!(second.open(&campaign, None, later).await.unwrap(), 2);
        let attempts = second.store().dial_attempts(&campaign).await.unwrap();
        assert!(
            attempts.iter().all(|a| a.status == "interrupted"),
            "{}",
            db.name
        );
        // Nobody is dialed again before the back-off.
        assert!(dial(&second, &campaign, later).await.is_none());
        // A call that did finish after all (its record stored late) still completes.
        let done = second
            .attempt_done(&t1, CallOutcome::Converted, None, later)
            .unwrap();
        second.store().complete_attempt(&done).await.unwrap();
        let row = second
            .store()
            .dial_queue_row(&campaign, &t1.customer_id)
            .await
            .unwrap();
        assert_eq!(row.map(|r| r.status), Some(QueueStatus::Done));
        // Completing twice is refused.
        assert!(second.store().complete_attempt(&done).await.is_err());
        let status = second.status(&campaign).await.unwrap();
        assert_eq!(
            status.counts.attempts_by_outcome.get("interrupted"),
            Some(&1)
        );
        let _ = t2;
    }
}

#[tokio::test]
async fn erasure_takes_the_dial_rows_with_it_and_the_customer_is_never_dialed() {
    for db in backends().await {
        let (gone, stays) = (db.id("gone"), db.id("stays"));
        add_customer(&db, &gone, "上海", false).await;
        add_customer(&db, &stays, "上海", false).await;
        let d = dialer(&db, roomy(), scorer(&[("gone", 0.9), ("stays", 0.1)])).await;
        let campaign = db.id("erase");
        let now = local(Tz::Asia__Shanghai, 2025, 6, 11, 10, 0);
        d.open(&campaign, None, now).await.unwrap();
        d.enqueue(&campaign, &[&gone, &stays], now).await.unwrap();
        // Erased after enqueue: the erasure's transaction removes the queue row too, so the
        // higher-scored customer is never dialed.
        d.store().erase_customer(&gone).await.unwrap();
        assert!(
            d.store()
                .dial_queue_row(&campaign, &gone)
                .await
                .unwrap()
                .is_none(),
            "{}",
            db.name
        );
        let t = dial(&d, &campaign, now).await;
        assert_eq!(who(&db, &t).as_deref(), Some("stays"), "{}", db.name);
        assert!(dial(&d, &campaign, now).await.is_none(), "{}", db.name);
        // Nothing is left to remove a second time.
        let mut tx = d.store().pool().begin().await.unwrap();
        let removed = retrieval::store::erase_dial_rows_in(&mut tx, &gone)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(removed, (0, 0), "{}", db.name);
    }
}

// ---- Hand-off pacing: a seeded simulated campaign --------------------------------------------

/// splitmix64: a tiny seeded generator, so the simulation is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() * (hi - lo) as f64) as i64
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// The bot side of a call ends with this outcome.
    End(usize, &'static str),
    /// The call asks for a human.
    AskAgent(usize),
    /// A hand-off's agent is done.
    AgentDone(usize),
    /// A waiting hand-off gives up.
    GiveUp(usize),
}

struct SimReport {
    calls: usize,
    asked: u64,
    abandoned: u64,
    rate: f64,
    minutes: i64,
}

/// Runs a campaign of `customers` fake calls: 25% no answer, a quarter of the answered ask for
/// a human 40–150 s in, agents talk 2–7 minutes, a hand-off waits at most 10 s. `paced`
/// false gives the dialer's desk more agents than exist (lines only), for comparison.
async fn simulate(customers: usize, agents: usize, seed: u64, paced: bool) -> SimReport {
    let db = sqlite().await;
    let ids: Vec<String> = (0..customers).map(|i| db.id(&format!("sim{i}"))).collect();
    let records: Vec<ProfileRecord> = ids
        .iter()
        .map(|id| ProfileRecord {
            profile: CustomerProfile {
                customer_id: id.clone(),
                display_name: id.clone(),
                region: Some("上海".into()),
                ..Default::default()
            },
            phone: None,
            created_at_ms: 0,
        })
        .collect();
    db.store.upsert_profiles(&records, "sim", 0).await.unwrap();
    let config = DialerConfig {
        max_lines: 12,
        max_attempts: 1,
        agents: if paced { agents as u32 } else { 1_000 },
        handoff_prior: 0.1,
        handoff_max_wait_ms: 10_000,
        ..Default::default()
    };
    let max_wait = config.handoff_max_wait_ms as i64;
    let d = dialer(&db, config, scorer(&[])).await;
    let campaign = db.id("sim");
    let start = local(Tz::Asia__Shanghai, 2025, 6, 9, 8, 0); // a Monday
    d.open(&campaign, None, start).await.unwrap();
    d.enqueue(&campaign, &ids, start).await.unwrap();
    // The agents who really exist.
    let desk = if paced {
        d.desk(&campaign).unwrap()
    } else {
        HandOffDesk::new(agents)
    };

    let mut rng = Rng(seed);
    let mut now = start;
    let mut events: BinaryHeap<std::cmp::Reverse<(i64, u64, Event)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut push = |events: &mut BinaryHeap<_>, at: i64, e: Event| {
        seq += 1;
        events.push(std::cmp::Reverse((at, seq, e)));
    };
    let mut tickets: Vec<DialTicket> = Vec::new();
    let mut live = 0usize; // bot-side calls on the line, waiting hand-offs included
    let mut leases: HashMap<usize, orchestrator::dialer::AgentLease> = HashMap::new();
    let mut waiting: VecDeque<usize> = VecDeque::new();
    let mut served: HashSet<usize> = HashSet::new(); // waited, then got an agent
    let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
    loop {
        // Place every call the dialer allows now.
        while let NextCall::Dial(t) = d.next_call(&campaign, now, live).await.unwrap() {
            let k = tickets.len();
            tickets.push(t);
            live += 1;
            if rng.next() < 0.25 {
                push(
                    &mut events,
                    now + rng.between(20_000, 30_000),
                    Event::End(k, "no_answer"),
                );
            } else if rng.next() < 0.25 {
                push(
                    &mut events,
                    now + rng.between(40_000, 150_000),
                    Event::AskAgent(k),
                );
            } else {
                let outcome = if rng.next() < 0.15 {
                    "converted"
                } else {
                    "refused"
                };
                push(
                    &mut events,
                    now + rng.between(30_000, 240_000),
                    Event::End(k, outcome),
                );
            }
        }
        let Some(std::cmp::Reverse((at, _, event))) = events.pop() else {
            break;
        };
        now = at;
        let ended: Option<(usize, &'static str)> = match event {
            Event::End(k, outcome) => Some((k, outcome)),
            Event::AskAgent(k) => match desk.try_take_now() {
                Some(lease) => {
                    leases.insert(k, lease);
                    push(
                        &mut events,
                        now + rng.between(120_000, 420_000),
                        Event::AgentDone(k),
                    );
                    Some((k, "handed_off"))
                }
                None => {
                    waiting.push_back(k);
                    push(&mut events, now + max_wait, Event::GiveUp(k));
                    None
                }
            },
            Event::AgentDone(k) => {
                drop(leases.remove(&k));
                // The first hand-off still waiting takes the freed agent.
                match (waiting.front().copied(), desk.try_take_now()) {
                    (Some(w), Some(lease)) => {
                        waiting.pop_front();
                        served.insert(w);
                        leases.insert(w, lease);
                        push(
                            &mut events,
                            now + rng.between(120_000, 420_000),
                            Event::AgentDone(w),
                        );
                        Some((w, "handed_off"))
                    }
                    _ => None,
                }
            }
            Event::GiveUp(k) if served.contains(&k) => None,
            Event::GiveUp(k) => {
                waiting.retain(|w| *w != k);
                Some((k, "abandoned_handoff"))
            }
        };
        if let Some((k, o)) = ended {
            live -= 1;
            let done = d
                .attempt_done(&tickets[k], CallOutcome::parse(o).unwrap(), None, now)
                .unwrap();
            d.store().complete_attempt(&done).await.unwrap();
            *outcomes.entry(o).or_default() += 1;
        }
    }
    let asked = (outcomes.get("handed_off").copied().unwrap_or(0)
        + outcomes.get("abandoned_handoff").copied().unwrap_or(0)) as u64;
    let abandoned = outcomes.get("abandoned_handoff").copied().unwrap_or(0) as u64;
    let status = d.status(&campaign).await.unwrap();
    assert_eq!(
        status.counts.pending + status.counts.dialing,
        0,
        "the campaign ran out"
    );
    SimReport {
        calls: tickets.len(),
        asked,
        abandoned,
        rate: abandoned as f64 / asked.max(1) as f64,
        minutes: (now - start) / MIN,
    }
}

/// Four seeded campaigns of 400 calls with 3 agents, pooled; the same campaign paced by lines
/// alone for comparison. Prints the BENCHMARKS.md key `dialer.handoff_abandon_rate`.
#[tokio::test]
async fn handoff_pacing_keeps_abandoned_handoffs_under_the_cap() {
    let cap = DialerConfig::default().abandon_cap;
    let (mut asked, mut abandoned) = (0, 0);
    for seed in 1..=4 {
        let r = simulate(400, 3, seed, true).await;
        println!(
            "paced, seed {seed}: {} calls in {} min, {} hand-offs asked, {} abandoned ({:.4})",
            r.calls, r.minutes, r.asked, r.abandoned, r.rate
        );
        assert_eq!(r.calls, 400);
        asked += r.asked;
        abandoned += r.abandoned;
    }
    let unpaced = simulate(400, 3, 1, false).await;
    println!(
        "lines only, seed 1: {} calls in {} min, {} hand-offs asked, {} abandoned",
        unpaced.calls, unpaced.minutes, unpaced.asked, unpaced.abandoned
    );
    let rate = abandoned as f64 / asked.max(1) as f64;
    println!("dialer.handoff_abandon_rate={rate:.4}");
    println!("dialer.handoff_abandon_rate_lines_only={:.4}", unpaced.rate);
    assert!(asked >= 200, "the simulation asked for agents");
    assert!(
        rate <= cap,
        "abandoned hand-off rate {rate:.4} is over the cap {cap}"
    );
    assert!(
        unpaced.rate > cap,
        "without pacing the same agents are overrun"
    );
}
