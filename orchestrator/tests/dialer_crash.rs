//! kill -9 mid-campaign: a child process (this test binary re-invoked with
//! `RINGWISE_DIALER_CRASH_DB` set) runs a campaign of fake calls against a SQLite file, each call
//! stored with `SqlStore::store_call` in a transaction that also runs `complete_attempt_in`. The
//! parent SIGKILLs it mid-campaign, runs it again to the end, and checks that nobody was dialed
//! twice (one attempt allowed) and that every completed attempt has its call record and every
//! call record its completed attempt.

#![allow(clippy::unwrap_used)] // Test helpers may unwrap: a failure is the test failing.

use chrono::TimeZone;
use chrono_tz::Tz;
use orchestrator::dialer::{
    BaselineScorer, CallOutcome, CampaignDialer, DialTicket, DialerConfig, NextCall,
};
use retrieval::store::{complete_attempt_in, CallRecord, ProfileRecord, StoredCall, TurnRecord};
use retrieval::{CustomerProfile, PrivacyKeys, SqlStore};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Set in the child: the database URL. `RINGWISE_DIALER_CRASH_T0` carries the parent's start
/// (wall ms), so the children's campaign clock runs on across the restart.
const CHILD_DB: &str = "RINGWISE_DIALER_CRASH_DB";
const CHILD_T0: &str = "RINGWISE_DIALER_CRASH_T0";
const CAMPAIGN: &str = "crash-campaign";
const CUSTOMERS: usize = 60;
const KILL_AFTER: usize = 15;
/// Starts the child's progress lines (libtest may print the test's name before the first).
const MARK: &str = "@dialer-child: ";

fn customer(i: usize) -> String {
    format!("crash-{i:03}")
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The campaign's clock: a Monday 10:00 in Shanghai plus the wall time since the parent began.
fn campaign_now(t0: i64) -> i64 {
    let base = Tz::Asia__Shanghai
        .with_ymd_and_hms(2025, 6, 9, 10, 0, 0)
        .unwrap()
        .timestamp_millis();
    base + (wall_ms() - t0)
}

fn config() -> DialerConfig {
    DialerConfig {
        max_lines: 4,
        max_attempts: 1,
        max_callbacks: 0,
        agents: 100,
        instance_id: "crash-test".into(),
        ..Default::default()
    }
}

fn keys() -> PrivacyKeys {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    PrivacyKeys::from_base64(&key, &key).unwrap()
}

/// One fake call: 20–80 ms on the line, an outcome from the customer's number, then the call
/// record and the attempt's completion in one transaction.
async fn fake_call(
    dialer: Arc<CampaignDialer>,
    keys: Arc<PrivacyKeys>,
    ticket: DialTicket,
    t0: i64,
) -> anyhow::Result<()> {
    let n: usize = ticket
        .customer_id
        .trim_start_matches("crash-")
        .parse()
        .unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(20 + (n as u64 * 37) % 60)).await;
    let outcome = [
        CallOutcome::Converted,
        CallOutcome::Refused,
        CallOutcome::NoAnswer,
        CallOutcome::HungUp,
        CallOutcome::HandedOff,
    ][n % 5];
    let ended = campaign_now(t0);
    let done = dialer.attempt_done(&ticket, outcome, None, ended)?;
    let stored = StoredCall {
        call: CallRecord {
            id: ticket.call_id.clone(),
            customer_id: ticket.customer_id.clone(),
            campaign_id: ticket.campaign_id.clone(),
            started_at_ms: ticket.started_at_ms,
            ended_at_ms: ended,
            outcome: outcome.as_str().into(),
            turns: vec![TurnRecord {
                speaker: "bot".into(),
                text: "Hello, this is a test call.".into(),
                latency_ms: None,
            }],
        },
        attempt_id: Some(ticket.attempt_id.clone()),
        end_reason: "fake".into(),
        language: "en".into(),
        segment: ticket.segment.clone(),
        duration_ms: ended - ticket.started_at_ms,
        actions: Vec::new(),
        events: Vec::new(),
        metrics: Vec::new(),
        recording: None,
        do_not_call: false,
    };
    dialer
        .store()
        .store_call(&stored, &keys, async |conn| {
            complete_attempt_in(conn, &done).await
        })
        .await?;
    Ok(())
}

/// The child's campaign: open (recovering what a killed run left live), enqueue everyone
/// (idempotent), and dial on four lines until the dialer says the campaign is done. Prints
/// `recovered N`, `completed N` after each stored call, and `finished`, each on its own line
/// after [`MARK`].
#[allow(clippy::print_stdout)] // the progress lines are how the parent follows the child
async fn run_child(url: &str, t0: i64) -> anyhow::Result<()> {
    let store = SqlStore::connect(url).await?;
    let dialer = Arc::new(CampaignDialer::new(
        store,
        config(),
        Arc::new(BaselineScorer),
    )?);
    let recovered = dialer.open(CAMPAIGN, None, campaign_now(t0)).await?;
    println!("\n{MARK}recovered {recovered}");
    let ids: Vec<String> = (0..CUSTOMERS).map(customer).collect();
    dialer.enqueue(CAMPAIGN, &ids, campaign_now(t0)).await?;
    let keys = Arc::new(keys());
    let mut live = tokio::task::JoinSet::new();
    let mut completed = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the campaign did not finish in 120 s"
        );
        match dialer
            .next_call(CAMPAIGN, campaign_now(t0), live.len())
            .await?
        {
            NextCall::Dial(ticket) => {
                live.spawn(fake_call(dialer.clone(), keys.clone(), ticket, t0));
                continue;
            }
            NextCall::Finished(state) if live.is_empty() => {
                println!("\n{MARK}finished {}", state.as_str());
                return Ok(());
            }
            NextCall::Finished(_) | NextCall::Wait(_) => {}
        }
        match live.join_next().await {
            Some(result) => {
                result??;
                completed += 1;
                println!("\n{MARK}completed {completed}");
            }
            None => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Runs the child's campaign when this binary was started as the child; passes at once in a
/// normal test run.
#[tokio::test]
async fn crash_child_campaign() {
    let (Ok(url), Ok(t0)) = (std::env::var(CHILD_DB), std::env::var(CHILD_T0)) else {
        return;
    };
    run_child(&url, t0.parse().unwrap()).await.unwrap();
}

fn spawn_child(url: &str, t0: i64) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_campaign",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_DB, url)
        .env(CHILD_T0, t0.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

#[test]
fn kill_9_mid_campaign_dials_nobody_twice_and_loses_no_call() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("crash.db").display());
    let store = rt.block_on(async {
        let store = SqlStore::connect(&url).await.unwrap();
        let records: Vec<ProfileRecord> = (0..CUSTOMERS)
            .map(|i| ProfileRecord {
                profile: CustomerProfile {
                    customer_id: customer(i),
                    display_name: format!("Customer {i}"),
                    region: Some(if i % 2 == 0 { "上海" } else { "杭州" }.into()),
                    children_in_school: Some((i % 3) as u8),
                    ..Default::default()
                },
                phone: None,
                created_at_ms: 0,
            })
            .collect();
        store.upsert_profiles(&records, "test", 0).await.unwrap();
        store
    });
    let t0 = wall_ms();

    // First run: SIGKILL once KILL_AFTER calls are stored, while others are live.
    let mut child = spawn_child(&url, t0);
    let stdout = child.stdout.take().unwrap();
    let mut completed_before_kill = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let line = line.strip_prefix(MARK).unwrap_or_default();
        if let Some(n) = line.strip_prefix("completed ") {
            completed_before_kill = n.trim().parse().unwrap();
            if completed_before_kill >= KILL_AFTER {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
        assert!(
            !line.starts_with("finished"),
            "the child finished before the kill"
        );
    }
    child.wait().unwrap();
    assert!(completed_before_kill >= KILL_AFTER);
    let live_at_kill = rt.block_on(async {
        store
            .dial_attempts(CAMPAIGN)
            .await
            .unwrap()
            .iter()
            .filter(|a| a.status == "dialing")
            .count()
    });

    // Second run: recovers and finishes the campaign.
    let mut child = spawn_child(&url, t0);
    let stdout = child.stdout.take().unwrap();
    let mut recovered = None;
    let mut finished = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let line = line.strip_prefix(MARK).unwrap_or_default();
        if let Some(n) = line.strip_prefix("recovered ") {
            recovered = Some(n.trim().parse::<usize>().unwrap());
        }
        finished |= line.starts_with("finished");
    }
    assert!(
        child.wait().unwrap().success(),
        "the restarted child failed"
    );
    assert!(finished, "the restarted child did not finish the campaign");
    assert_eq!(
        recovered,
        Some(live_at_kill),
        "every attempt live at the kill is recovered"
    );

    rt.block_on(async {
        let attempts = store.dial_attempts(CAMPAIGN).await.unwrap();
        let mut per_customer: HashMap<&str, usize> = HashMap::new();
        for a in &attempts {
            *per_customer.entry(a.customer_id.as_str()).or_default() += 1;
        }
        assert!(
            per_customer.values().all(|n| *n == 1),
            "a customer was dialed twice: {per_customer:?}"
        );
        assert_eq!(per_customer.len(), CUSTOMERS, "everyone was dialed once");
        let mut completed = 0;
        for a in &attempts {
            let call = store.call(&a.call_id).await.unwrap();
            match a.status.as_str() {
                "completed" => {
                    completed += 1;
                    let call =
                        call.unwrap_or_else(|| panic!("attempt {} lost its call", a.attempt_id));
                    assert_eq!(call.customer_id, a.customer_id);
                    assert_eq!(Some(call.outcome), a.outcome);
                }
                "interrupted" => assert!(call.is_none(), "an interrupted attempt has a call"),
                other => panic!("attempt {} left {other}", a.attempt_id),
            }
        }
        // No call record without its completed attempt.
        let mut records = 0;
        for i in 0..CUSTOMERS {
            records += store
                .calls_of(&customer(i))
                .await
                .unwrap()
                .iter()
                .filter(|c| c.campaign_id == CAMPAIGN)
                .count();
        }
        assert_eq!(records, completed);
        let counts = store.dial_counts(CAMPAIGN).await.unwrap();
        assert_eq!((counts.pending, counts.dialing), (0, 0));
        println!(
            "killed after {completed_before_kill} stored calls with {live_at_kill} live; \
             {completed} calls stored in all, {} interrupted, nobody dialed twice",
            attempts.len() - completed
        );
    });
}
