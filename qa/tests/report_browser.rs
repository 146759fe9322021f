//! The report in a real browser: headless Debian chromium loads `index.html` and a call page
//! from disk and the rendered DOM must hold the charts, tables and links; a screenshot must be
//! written. Skipped, saying so, when chromium is not installed (scripts/setup.sh installs it).

use anyhow::Context;
use qa::grade::{Grader, GraderConfig};
use qa::report::{self, GradedCall, ReportConfig};
use qa::synth::synthetic_calls;
use qa::CallView;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| {
            std::env::var_os("PATH")
                .map(|paths| {
                    std::env::split_paths(&paths)
                        .map(|d| d.join(name))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .find(|p| p.is_file())
}

/// Runs chromium headless with `args` and the page, returning stdout; kills it after 90 s.
fn run_chromium(
    bin: &Path,
    profile: &Path,
    args: &[String],
    page: &Path,
) -> anyhow::Result<String> {
    let out = tempfile::NamedTempFile::new()?;
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--allow-file-access-from-files",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(out.reopen()?)
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    anyhow::ensure!(status.success(), "chromium exited with {status}");
    Ok(std::fs::read_to_string(out.path())?)
}

#[test]
fn headless_chromium_renders_the_report() -> anyhow::Result<()> {
    let Some(bin) = chromium() else {
        eprintln!(
            "SKIPPED headless_chromium_renders_the_report: no chromium on PATH \
             (run scripts/setup.sh, or set CHROMIUM=/path/to/chromium)"
        );
        return Ok(());
    };
    let grader = Grader::new(GraderConfig::default())?;
    let calls: Vec<GradedCall> = synthetic_calls(120, 21)
        .iter()
        .map(|s| {
            let call = CallView::from_record(&s.to_record());
            let grade = grader.grade(&call, 0);
            GradedCall { call, grade }
        })
        .collect();
    let dir = tempfile::tempdir()?;
    let mut r = report::build(&calls, &ReportConfig::default(), 1500.0, 1_765_000_000_000)?;
    // A campaign experiment: an A/B split of the openings and a bandit over the pitch order.
    let mut arms = Vec::new();
    for (i, c) in calls.iter().enumerate() {
        let converted = c.call.outcome == "converted";
        for (choice, arm, by_bandit) in [
            ("ab", if i % 2 == 0 { "A" } else { "B" }, false),
            ("pitch_order", if i % 3 == 0 { "v0" } else { "v1" }, true),
        ] {
            arms.push(retrieval::store::CallArm {
                call_id: c.call.id.clone(),
                customer_id: c.call.customer_id.clone(),
                campaign_id: c.call.campaign_id.clone(),
                experiment: "opening-test".into(),
                choice: choice.into(),
                arm: arm.into(),
                segment: c.call.segment.clone(),
                converted,
                by_bandit,
            });
        }
    }
    r.experiments = report::experiments::sections(&arms);
    r.regret = Some(qa::experiment::RegretScenario::default().run()?);
    let files = report::write(&r, &calls, dir.path())?;
    let profile = tempfile::tempdir()?;

    let dom = run_chromium(&bin, profile.path(), &["--dump-dom".into()], &files.index)?;
    for id in [
        "chart-outcomes-by-segment",
        "chart-failure-pareto",
        "chart-latency",
        "chart-conversion-by-hour",
        "chart-bandit-regret",
    ] {
        let at = dom
            .find(&format!("id=\"{id}\""))
            .with_context(|| format!("rendered DOM lacks figure {id}"))?;
        assert!(
            dom[at..].trim_start_matches(|c| c != '<').contains("<svg"),
            "figure {id} has no svg"
        );
    }
    assert_eq!(dom.matches("<svg").count(), 5, "five inline charts");
    assert!(dom.matches("<rect").count() > 20, "charts have bars");
    // The experiments section: arms, the verdict in words, the bandit's plays, the regret.
    assert!(dom.contains("id=\"experiments\"") && dom.contains("opening-test"));
    assert!(dom.contains("class=\"ab-table\"") && dom.contains("class=\"bandit-table\""));
    let verdict = dom
        .find("class=\"ab-verdict\"")
        .context("rendered DOM lacks the A/B verdict")?;
    assert!(
        dom[verdict..].contains("No significant difference yet")
            || dom[verdict..].contains("points better than"),
        "the verdict says what the comparison found"
    );
    assert!(dom.contains("id=\"regret-summary\"") && dom.contains("fixed equal split"));
    for id in ["rubric-table", "failure-table", "calls-table"] {
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "rendered DOM lacks {id}"
        );
    }
    assert_eq!(dom.matches("class=\"call-link\"").count(), 120);
    assert!(dom.contains("disclosure") && dom.contains("bot_failure_latency"));

    // A call page: the transcript's turn anchors and evidence links.
    let row = r
        .calls
        .iter()
        .find(|c| c.checks_failed > 0 && c.turns > 4)
        .context("a call with a failed check")?;
    let page = dir.path().join(&row.page);
    let dom = run_chromium(&bin, profile.path(), &["--dump-dom".into()], &page)?;
    assert!(dom.contains("id=\"transcript\"") && dom.contains("id=\"turn-0\""));
    assert!(dom.contains("class=\"evidence\""));
    assert!(dom.contains("href=\"../index.html\""));

    // And it paints: a screenshot of the index.
    let shot = dir.path().join("index.png");
    run_chromium(
        &bin,
        profile.path(),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1200,2400".into(),
            "--hide-scrollbars".into(),
        ],
        &files.index,
    )?;
    let png = std::fs::read(&shot).context("chromium wrote no screenshot")?;
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "screenshot of {} bytes",
        png.len()
    );
    Ok(())
}
