//! Report contents on hand-made calls: figures, the HTML's sections and links, escaping and
//! masking of what callers said, the model before/after section only when given, JSON and CSV.

use anyhow::Context;
use qa::grade::{Grader, GraderConfig};
use qa::report::{self, GradedCall, MetricDelta, ModelComparison, ReportConfig};
use qa::synth::{synthetic_calls, CallScript, Exchange};
use qa::CallView;

fn graded(scripts: &[CallScript]) -> anyhow::Result<Vec<GradedCall>> {
    let grader = Grader::new(GraderConfig::default())?;
    Ok(scripts
        .iter()
        .map(|s| {
            let call = CallView::from_record(&s.to_record());
            let grade = grader.grade(&call, 0);
            GradedCall { call, grade }
        })
        .collect())
}

/// A caller who says markup and their phone number.
fn hostile_call() -> CallScript {
    CallScript {
        id: "call-<x>/1".into(),
        outcome: "converted".into(),
        exchanges: vec![Exchange {
            caller: "<script>alert('x')</script> call me on 138 1234 5678 & thanks".into(),
            intent: "purchase_intent".into(),
            sentiment: 0.5,
            bot: "Great, you are all set.".into(),
            action: "close".into(),
            close_outcome: Some("converted".into()),
            ..Exchange::default()
        }],
        ..CallScript::default()
    }
}

#[test]
fn report_figures_match_the_calls() -> anyhow::Result<()> {
    let calls = graded(&synthetic_calls(400, 5))?;
    let r = report::build(&calls, &ReportConfig::default(), 1500.0, 0)?;
    assert_eq!(r.totals.calls, 400);
    let converted = calls
        .iter()
        .filter(|c| c.call.outcome == "converted")
        .count();
    assert_eq!(r.totals.converted, converted);
    assert!(r.totals.answered < 400 && r.totals.answered > 300);
    // Segments and hours add up to all calls.
    assert_eq!(
        r.outcomes_by_segment.iter().map(|s| s.calls).sum::<usize>(),
        400
    );
    assert_eq!(
        r.conversion_by_hour.iter().map(|h| h.calls).sum::<usize>(),
        400
    );
    assert_eq!(r.conversion_by_hour.len(), 24);
    // The Pareto is sorted and ends at 100%.
    assert!(r.failures.windows(2).all(|w| w[0].calls >= w[1].calls));
    let last = r.failures.last().context("failure reasons")?;
    assert!((last.cumulative - 1.0).abs() < 1e-9);
    // Every reply is in the histogram; the slow ones are counted.
    assert_eq!(r.latency.histogram.iter().sum::<usize>(), r.latency.replies);
    assert!(r.latency.over_threshold > 0);
    assert!(r.latency.p50_ms < r.latency.p95_ms);
    // One rubric row per criterion, rates in 0..=1.
    assert_eq!(r.rubric.len(), qa::grade::rubric::criteria::ALL.len());
    assert!(r.rubric.iter().all(|x| (0.0..=1.0).contains(&x.pass_rate)));
    Ok(())
}

#[test]
fn report_files_escape_mask_and_link() -> anyhow::Result<()> {
    let mut scripts = synthetic_calls(30, 8);
    scripts.push(hostile_call());
    let calls = graded(&scripts)?;
    let dir = tempfile::tempdir()?;
    let mut r = report::build(&calls, &ReportConfig::default(), 1500.0, 0)?;
    let files = report::write(&r, &calls, dir.path())?;
    assert_eq!(files.call_pages, 31);
    let index = std::fs::read_to_string(&files.index)?;
    for id in [
        "id=\"summary\"",
        "id=\"chart-outcomes-by-segment\"",
        "id=\"chart-failure-pareto\"",
        "id=\"chart-latency\"",
        "id=\"chart-conversion-by-hour\"",
        "id=\"rubric-table\"",
        "id=\"failure-table\"",
        "id=\"calls-table\"",
    ] {
        assert!(index.contains(id), "index.html lacks {id}");
    }
    assert_eq!(index.matches("<svg").count(), 4);
    assert!(
        !index.contains("model-comparison"),
        "no before/after unless given"
    );
    assert!(
        !index.contains("<script"),
        "nothing executable in the report"
    );
    assert_eq!(index.matches("class=\"call-link\"").count(), 31);
    // Every call link leads to a page, and every evidence link to a turn anchor on it.
    for row in &r.calls {
        let page = std::fs::read_to_string(dir.path().join(&row.page))
            .with_context(|| format!("page of {}", row.call_id))?;
        for link in page.split("href=\"#turn-").skip(1) {
            let n = link.split('"').next().unwrap_or_default();
            assert!(
                page.contains(&format!("id=\"turn-{n}\"")),
                "{}: evidence link to missing turn {n}",
                row.page
            );
        }
    }
    // The hostile call: markup escaped, number masked, file name safe.
    let row = r
        .calls
        .iter()
        .find(|c| c.call_id == "call-<x>/1")
        .context("hostile row")?;
    assert_eq!(row.page, "calls/call-_x__1.html");
    let page = std::fs::read_to_string(dir.path().join(&row.page))?;
    assert!(!page.contains("<script"));
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(page.contains("*** **** **78 &amp; thanks"));
    assert!(!page.contains("1234 5678"));
    assert!(index.contains("call-&lt;x&gt;/1"));

    // JSON is the report; CSV has a header and a row per call.
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&files.json)?)?;
    assert_eq!(json["totals"]["calls"], 31);
    let mut csv = csv::Reader::from_path(&files.csv)?;
    let headers = csv.headers()?.clone();
    assert_eq!(&headers[0], "call_id");
    assert!(headers.iter().any(|h| h == "primary_failure"));
    assert_eq!(csv.records().count(), 31);

    // The learning loop's before/after shows when given.
    r.model_comparison = Some(ModelComparison {
        model: "propensity".into(),
        before_version: "v1".into(),
        after_version: "v2 <qa labels>".into(),
        evaluated_on: "seeded 20% held-out split".into(),
        metrics: vec![
            MetricDelta {
                name: "auc".into(),
                before: 0.71,
                after: 0.74,
                higher_is_better: true,
            },
            MetricDelta {
                name: "log_loss".into(),
                before: 0.30,
                after: 0.32,
                higher_is_better: false,
            },
        ],
        promoted: true,
        note: String::new(),
    });
    let index = report::html::index_page(&r)?;
    assert!(index.contains("id=\"model-comparison\""));
    assert!(index.contains("v2 &lt;qa labels&gt;"));
    assert!(index.contains("class=\"num better\">+0.0300"));
    assert!(index.contains("class=\"num worse\">+0.0200"));
    Ok(())
}

#[test]
fn a_bad_time_zone_is_a_clear_error() -> anyhow::Result<()> {
    let config = ReportConfig {
        time_zone: "Mars/Olympus".into(),
        ..ReportConfig::default()
    };
    let e = report::build(&[], &config, 1500.0, 0).expect_err("bad zone");
    assert!(e.to_string().contains("IANA"), "{e}");
    // An empty report still renders.
    let r = report::build(&[], &ReportConfig::default(), 1500.0, 0)?;
    let index = report::html::index_page(&r)?;
    assert_eq!(index.matches("<svg").count(), 4);
    Ok(())
}
