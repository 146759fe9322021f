//! `ringwise qa run` on a temporary SQLite store: calls stored the way the orchestrator stores
//! them are graded once (a second run grades none), grades read back whole, the report loads
//! them with masked phone numbers, and erasing a customer removes their QA rows. The same run
//! on the PostgreSQL of our machine kind (skipped with a message when it is absent).

use anyhow::Context;
use base64::Engine;
use qa::grade::{Grader, GraderConfig, RULES_GRADER};
use qa::run::grade_ungraded;
use qa::synth::{synthetic_calls, CallScript};
use retrieval::store::Customer;
use retrieval::{PhoneNumber, PrivacyKeys, SqlStore};

fn keys() -> anyhow::Result<PrivacyKeys> {
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(PrivacyKeys::from_base64(
        &b64.encode([7u8; 32]),
        &b64.encode([9u8; 32]),
    )?)
}

async fn store_scripts(
    store: &SqlStore,
    keys: &PrivacyKeys,
    scripts: &[CallScript],
) -> anyhow::Result<()> {
    for s in scripts {
        store
            .upsert_customer(&Customer {
                id: s.customer_id.clone(),
                display_name: s.customer_name.clone(),
                language: s.language.clone(),
                created_at_ms: 0,
            })
            .await?;
        let phone = PhoneNumber::parse("+8613812345678", "86")?;
        sqlx::query("UPDATE customers SET phone_sealed = $1 WHERE id = $2")
            .bind(keys.encrypt(phone.e164())?)
            .bind(&s.customer_id)
            .execute(store.pool())
            .await?;
        store
            .store_call(&s.to_stored(), keys, async |_| Ok(()))
            .await?;
    }
    Ok(())
}

#[tokio::test]
async fn qa_run_grades_each_call_once_and_the_report_reads_the_grades() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}/qa.db", dir.path().display());
    let store = SqlStore::connect(&url).await?;
    let keys = keys()?;
    let scripts = synthetic_calls(60, 11);
    store_scripts(&store, &keys, &scripts).await?;
    let grader = Grader::new(GraderConfig::default())?;

    let mut seen = Vec::new();
    let first = grade_ungraded(&store, &grader, 25, 1_000, &mut |done, total| {
        seen.push((done, total))
    })
    .await?;
    assert_eq!(first.graded, 60);
    assert_eq!(seen.first(), Some(&(0, 60)));
    assert_eq!(seen.last(), Some(&(60, 60)));
    let second = grade_ungraded(&store, &grader, 25, 2_000, &mut |_, _| {}).await?;
    assert_eq!(second.graded, 0, "a second run grades nothing");

    // What was stored is what the grader said, read back whole.
    let ids: Vec<String> = scripts.iter().map(|s| s.id.clone()).collect();
    let stored = store.qa_call_grades(RULES_GRADER, &ids).await?;
    assert_eq!(stored.len(), 60);
    for (script, record) in scripts.iter().zip(&stored) {
        let want = grader.grade(&qa::CallView::from_record(&script.to_record()), 1_000);
        let got = qa::CallGrade::from_record(record)?;
        assert_eq!(got.checks, want.checks, "call {}", script.id);
        assert_eq!(
            got.failures.iter().map(|f| f.reason).collect::<Vec<_>>(),
            want.failures.iter().map(|f| f.reason).collect::<Vec<_>>()
        );
    }
    let reasons = store.qa_failure_reasons().await?;
    assert!(reasons
        .iter()
        .any(|(_, r)| r.iter().any(|r| r == "no_answer")));

    // A new call is the only one the next run grades.
    let late = CallScript {
        id: "call-late".into(),
        customer_id: "cust-late".into(),
        ..CallScript::default()
    };
    store_scripts(&store, &keys, std::slice::from_ref(&late)).await?;
    let third = grade_ungraded(&store, &grader, 25, 3_000, &mut |_, _| {}).await?;
    assert_eq!(third.graded, 1);

    // The report's loader: every graded call, phone masked.
    let (graded, ungraded) = qa::report::load_graded(&store, Some(&keys)).await?;
    assert_eq!((graded.len(), ungraded), (61, 0));
    let phone = graded[0]
        .call
        .phone_masked
        .as_deref()
        .context("masked phone")?;
    assert_eq!(phone, "+86 138****5678");

    // Erasure takes the customer's QA rows with the calls.
    let erased = store.erase_customer("cust-late").await?;
    assert_eq!(erased.qa_calls, 1);
    assert!(erased.qa_grades >= 10);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM qa_calls WHERE call_id = 'call-late'")
        .fetch_one(store.pool())
        .await?;
    assert_eq!(left, 0);
    Ok(())
}

/// `qa run` on PostgreSQL (127.0.0.1:5432, or `DATABASE_URL_PG`): our calls are graded once,
/// exactly as the grader grades them, and erasure removes a customer's QA rows. The database is
/// shared with other runs, so every id carries a unique tag and only our rows are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qa_run_on_postgres_grades_each_call_once() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let store = match SqlStore::connect(&url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("SKIP: PostgreSQL not reachable at {url}: {e}");
            return Ok(());
        }
    };
    let tag = format!(
        "qa-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos()
    );
    let mut scripts = synthetic_calls(30, 12);
    for s in &mut scripts {
        s.id = format!("{tag}-{}", s.id);
        s.customer_id = format!("{tag}-{}", s.customer_id);
    }
    let keys = keys()?;
    store_scripts(&store, &keys, &scripts).await?;
    let grader = Grader::new(GraderConfig::default())?;
    let first = grade_ungraded(&store, &grader, 25, 1_000, &mut |_, _| {}).await?;
    assert!(first.graded >= 30, "{first:?}");
    let ids: Vec<String> = scripts.iter().map(|s| s.id.clone()).collect();
    let stored = store.qa_call_grades(RULES_GRADER, &ids).await?;
    assert_eq!(stored.len(), 30);
    for (script, record) in scripts.iter().zip(&stored) {
        let want = grader.grade(&qa::CallView::from_record(&script.to_record()), 1_000);
        assert_eq!(
            qa::CallGrade::from_record(record)?.checks,
            want.checks,
            "{}",
            script.id
        );
    }
    let ours = format!("{tag}-%");
    let count = |table: &'static str| {
        let (store, ours) = (store.clone(), ours.clone());
        async move {
            sqlx::query_scalar::<_, i64>(&format!(
                "SELECT COUNT(*) FROM {table} WHERE call_id LIKE $1"
            ))
            .bind(ours)
            .fetch_one(store.pool())
            .await
        }
    };
    let grades = count("qa_grades").await?;
    assert_eq!(count("qa_calls").await?, 30);
    grade_ungraded(&store, &grader, 25, 2_000, &mut |_, _| {}).await?;
    assert_eq!(
        count("qa_grades").await?,
        grades,
        "a second run grades none of ours again"
    );

    let customer = &scripts[0].customer_id;
    let theirs = scripts
        .iter()
        .filter(|s| &s.customer_id == customer)
        .count();
    let erased = store.erase_customer(customer).await?;
    assert_eq!(erased.qa_calls as usize, theirs);
    assert_eq!(count("qa_calls").await? as usize, 30 - theirs);
    Ok(())
}
