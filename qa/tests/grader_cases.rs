//! The rule grader on hand-made calls with known grades: every YAML file in `tests/cases` (see
//! its README) is a call script and what its checks, failure reasons and evidence must be.

use anyhow::Context;
use qa::grade::rubric::criteria;
use qa::grade::{CheckStatus, Grader, GraderConfig};
use qa::synth::CallScript;
use qa::CallView;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    call: CallScript,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    #[serde(default)]
    checks: BTreeMap<String, String>,
    failures: Option<Vec<String>>,
    #[serde(default)]
    evidence: BTreeMap<String, Vec<usize>>,
}

fn status(s: &str) -> anyhow::Result<CheckStatus> {
    Ok(match s {
        "pass" => CheckStatus::Pass,
        "fail" => CheckStatus::Fail,
        "n/a" => CheckStatus::NotApplicable,
        other => anyhow::bail!("unknown check result {other:?}: use pass, fail or n/a"),
    })
}

/// Runs one case; returns what did not match.
fn run_case(path: &Path, grader: &Grader) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)?;
    let case: Case =
        serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let view = CallView::from_record(&case.call.to_record());
    let grade = grader.grade(&view, 0);
    let mut wrong = Vec::new();
    for (criterion, want) in &case.expect.checks {
        anyhow::ensure!(
            criteria::ALL.contains(&criterion.as_str()),
            "{}: unknown criterion {criterion}",
            path.display()
        );
        let got = grade.check(criterion).map(|c| c.status);
        if got != Some(status(want)?) {
            wrong.push(format!("{criterion}: want {want}, got {got:?}"));
        }
    }
    if let Some(want) = &case.expect.failures {
        let got: Vec<&str> = grade.failures.iter().map(|f| f.reason.as_str()).collect();
        if got != *want {
            wrong.push(format!("failures: want {want:?}, got {got:?}"));
        }
    }
    for (criterion, want) in &case.expect.evidence {
        let got: Vec<usize> = grade
            .check(criterion)
            .map(|c| c.evidence.iter().map(|e| e.turn).collect())
            .unwrap_or_default();
        if got != *want {
            wrong.push(format!(
                "evidence of {criterion}: want turns {want:?}, got {got:?}"
            ));
        }
    }
    // Every check is scored within its range, and evidence points at real turns with times.
    for c in &grade.checks {
        if !(0.0..=c.max_score).contains(&c.score) {
            wrong.push(format!(
                "{}: score {} outside 0..={}",
                c.criterion, c.score, c.max_score
            ));
        }
        for e in &c.evidence {
            if e.turn >= view.turns.len() || e.at_ms.is_none() {
                wrong.push(format!(
                    "{}: evidence {e:?} has no turn or time",
                    c.criterion
                ));
            }
        }
    }
    if !wrong.is_empty() {
        wrong.insert(0, format!("{} ({})", path.display(), case.description));
        wrong.push(format!(
            "grade: {}",
            serde_json::to_string_pretty(&grade).unwrap_or_default()
        ));
    }
    Ok(wrong)
}

#[test]
fn every_case_gets_its_known_grade() -> anyhow::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let grader = Grader::new(GraderConfig::default())?;
    let mut paths: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    anyhow::ensure!(
        paths.len() >= 20,
        "expected the grader cases in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for p in &paths {
        failures.extend(run_case(p, &grader)?);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// Each rubric check has at least one passing and one failing case in the folder.
#[test]
fn every_check_has_a_passing_and_a_failing_case() -> anyhow::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut seen: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for e in std::fs::read_dir(&dir)? {
        let p = e?.path();
        if p.extension().is_none_or(|x| x != "yaml") {
            continue;
        }
        let case: Case = serde_yaml_ng::from_str(&std::fs::read_to_string(&p)?)
            .with_context(|| format!("parsing {}", p.display()))?;
        for (criterion, want) in case.expect.checks {
            let s = seen.entry(criterion).or_default();
            s.0 |= want == "pass";
            s.1 |= want == "fail";
        }
    }
    for criterion in criteria::ALL {
        let (pass, fail) = seen.get(criterion).copied().unwrap_or_default();
        assert!(
            pass && fail,
            "{criterion}: passing case {pass}, failing case {fail}"
        );
    }
    Ok(())
}

#[test]
fn grades_round_trip_through_their_stored_form() -> anyhow::Result<()> {
    let grader = Grader::new(GraderConfig::default())?;
    for script in qa::synth::synthetic_calls(200, 3) {
        let grade = grader.grade(&CallView::from_record(&script.to_record()), 42);
        let back = qa::CallGrade::from_record(&grade.to_record())?;
        assert_eq!(back.checks, grade.checks);
        assert_eq!(
            back.failures.iter().map(|f| f.reason).collect::<Vec<_>>(),
            grade.failures.iter().map(|f| f.reason).collect::<Vec<_>>()
        );
    }
    Ok(())
}

#[test]
fn a_judge_adds_prefixed_checks_and_its_errors_do_not_stop_grading() -> anyhow::Result<()> {
    struct Polite;
    impl qa::Judge for Polite {
        fn name(&self) -> &str {
            "test-judge"
        }
        fn judge(
            &self,
            call: &CallView,
            rules: &[qa::grade::CheckResult],
        ) -> Result<Vec<qa::grade::CheckResult>, qa::QaError> {
            if call.id == "bad" {
                return Err(qa::QaError::InvalidInput("model not loaded".into()));
            }
            Ok(vec![qa::grade::CheckResult {
                criterion: "politeness".into(),
                status: CheckStatus::Pass,
                score: 1.0,
                max_score: 1.0,
                grader: String::new(),
                notes: format!("{} rule checks seen", rules.len()),
                evidence: Vec::new(),
            }])
        }
    }
    let grader = Grader::new(GraderConfig::default())?.with_judge(Box::new(Polite));
    let script = CallScript::default();
    let grade = grader.grade(&CallView::from_record(&script.to_record()), 0);
    let judged = grade.check("judge.politeness").context("judge check")?;
    assert_eq!(judged.grader, "test-judge");
    assert_eq!(
        judged.notes,
        format!("{} rule checks seen", criteria::ALL.len())
    );
    let bad = CallScript {
        id: "bad".into(),
        ..CallScript::default()
    };
    let grade = grader.grade(&CallView::from_record(&bad.to_record()), 0);
    assert_eq!(grade.checks.len(), criteria::ALL.len());
    Ok(())
}

#[test]
fn an_empty_disclosure_list_is_rejected() {
    let config = GraderConfig {
        disclosure_phrases: vec![" ".into()],
        ..GraderConfig::default()
    };
    let e = Grader::new(config).expect_err("invalid");
    assert!(e.to_string().contains("disclosure_phrases"), "{e}");
}
