//! The LLM judge: strict parsing with scripted and garbage-producing fake models (abstentions,
//! never panics), its agreement with the rules, the judge cases' files, and the real Qwen judge
//! on two calls (skipped with a message when `models/` lacks it).

use anyhow::Context;
use dialog::llm::{FakeLlm, GenerationOutput, GenerationRequest, LanguageModel, StopReason};
use dialog::DialogError;
use qa::grade::judge::{agreement, is_abstention, open, Verdict, ABSTAINED};
use qa::grade::rubric::criteria;
use qa::grade::{CheckStatus, Grader, GraderConfig, JudgeConfig, LlmJudge};
use qa::synth::{CallScript, Exchange};
use qa::CallView;
use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Answers each question by a phrase it contains; `default` otherwise.
struct Scripted {
    answers: Vec<(&'static str, &'static str)>,
    default: &'static str,
}

impl LanguageModel for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn generate(
        &self,
        request: &GenerationRequest,
        _cancel: &CancellationToken,
        on_token: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<GenerationOutput, DialogError> {
        let question = request
            .messages
            .last()
            .map(|m| m.content.as_str())
            .unwrap_or_default();
        let question = question.rsplit("Question:").next().unwrap_or_default();
        let text = self
            .answers
            .iter()
            .find(|(phrase, _)| question.contains(phrase))
            .map_or(self.default, |(_, a)| *a)
            .to_string();
        let _ = on_token(&text);
        Ok(GenerationOutput {
            text,
            stop_reason: StopReason::EndOfTurn,
            prompt_tokens: 0,
            cached_prompt_tokens: 0,
            generated_tokens: 1,
            first_token_ms: 0.0,
            total_ms: 0.0,
        })
    }
}

fn call() -> CallView {
    let script = CallScript {
        outcome: "converted".into(),
        exchanges: vec![
            Exchange {
                caller: "That's too expensive.".into(),
                intent: "price_objection".into(),
                bot: "I can offer you 20% off for six months.".into(),
                action: "discount_offer".into(),
                ..Exchange::default()
            },
            Exchange {
                caller: "Okay, sign me up.".into(),
                intent: "purchase_intent".into(),
                bot: "Great, you are all set.".into(),
                action: "close".into(),
                close_outcome: Some("converted".into()),
                ..Exchange::default()
            },
        ],
        ..CallScript::default()
    };
    CallView::from_record(&script.to_record())
}

#[test]
fn good_answers_become_judge_checks_under_the_model_name() -> anyhow::Result<()> {
    let model = Scripted {
        answers: vec![
            ("guaranteed return", "no"), // no forbidden promise → pass
            ("ask the Bot a question", "none"),
            ("polite", " Yes.\n"),
            ("ask not to be called", "none"),
            ("complain, get angry", "none"),
        ],
        default: "yes",
    };
    let judge = LlmJudge::new(Arc::new(model), JudgeConfig::default());
    let grader = Grader::new(GraderConfig::default())?.with_judge(Box::new(judge));
    let grade = grader.grade(&call(), 0);
    let status = |c: &str| grade.check(&format!("judge.{c}")).map(|c| c.status);
    assert_eq!(status(criteria::DISCLOSURE), Some(CheckStatus::Pass));
    assert_eq!(
        status(criteria::NO_FORBIDDEN_PROMISES),
        Some(CheckStatus::Pass)
    );
    assert_eq!(status(criteria::INTENT_HANDLED), Some(CheckStatus::Pass));
    assert_eq!(status(criteria::HAND_OFF), Some(CheckStatus::NotApplicable));
    assert_eq!(
        status(open::ANSWERED_QUESTION),
        Some(CheckStatus::NotApplicable)
    );
    assert_eq!(status(open::POLITE_ON_SCRIPT), Some(CheckStatus::Pass));
    assert_eq!(status(open::OBJECTION_ADDRESSED), Some(CheckStatus::Pass));
    let judged: Vec<_> = grade
        .checks
        .iter()
        .filter(|c| c.criterion.starts_with("judge."))
        .collect();
    assert_eq!(judged.len(), 8);
    assert!(judged
        .iter()
        .all(|c| c.grader == "scripted" && !is_abstention(c)));
    // Advisory: the judge's checks do not change the call's score.
    let rules_only = Grader::new(GraderConfig::default())?.grade(&call(), 0);
    assert_eq!(grade.score(), rules_only.score());
    assert_eq!(grade.max_score(), rules_only.max_score());
    // They survive the stored form.
    let back = qa::CallGrade::from_record(&grade.to_record())?;
    assert_eq!(back.checks.len(), grade.checks.len());
    Ok(())
}

#[test]
fn garbage_output_is_an_abstention_not_a_panic() -> anyhow::Result<()> {
    // The deterministic fake answers "Noted: <prompt>." to everything: every answer abstains,
    // the judge reports an error for the call, and the call keeps its rule grade.
    let judge = LlmJudge::new(Arc::new(FakeLlm), JudgeConfig::default());
    let verdicts = judge.verdicts(&call());
    assert_eq!(verdicts.abstained(), verdicts.verdicts.len());
    let err = qa::Judge::judge(&judge, &call(), &[]).expect_err("all abstained");
    assert!(err.to_string().contains("abstained"), "{err}");
    let grader = Grader::new(GraderConfig::default())?.with_judge(Box::new(judge));
    let grade = grader.grade(&call(), 0);
    assert_eq!(grade.checks.len(), criteria::ALL.len());

    // Some garbage among good answers: those criteria are stored as abstentions.
    let model = Scripted {
        answers: vec![("polite", "Yes, the bot was polite"), ("objection", "是")],
        default: "yes",
    };
    let judge = LlmJudge::new(Arc::new(model), JudgeConfig::default());
    let checks = qa::Judge::judge(&judge, &call(), &[])?;
    let abstained: Vec<&str> = checks
        .iter()
        .filter(|c| is_abstention(c))
        .map(|c| c.criterion.as_str())
        .collect();
    assert_eq!(
        abstained,
        ["judge.polite_on_script", "judge.objection_addressed"]
    );
    assert!(checks
        .iter()
        .filter(|c| is_abstention(c))
        .all(|c| c.notes.starts_with(ABSTAINED)));
    Ok(())
}

#[test]
fn an_unanswered_call_is_not_asked_about() {
    let script = CallScript {
        greeting: String::new(),
        outcome: "no_answer".into(),
        end_reason: "no_answer".into(),
        ..CallScript::default()
    };
    let view = CallView::from_record(&script.to_record());
    let judge = LlmJudge::new(Arc::new(FakeLlm), JudgeConfig::default());
    let v = judge.verdicts(&view);
    assert!(v
        .verdicts
        .iter()
        .all(|(_, verdict, _)| *verdict == Verdict::NotApplicable));
}

#[test]
fn agreement_with_the_rules_is_counted_per_criterion() -> anyhow::Result<()> {
    // A judge that always says "yes": disclosure agrees with the rules on a disclosing call.
    let judge = LlmJudge::new(
        Arc::new(Scripted {
            answers: vec![("polite", "maybe")],
            default: "yes",
        }),
        JudgeConfig::default(),
    );
    let grader = Grader::new(GraderConfig::default())?.with_judge(Box::new(judge));
    let grades = [grader.grade(&call(), 0), grader.grade(&call(), 0)];
    let table = agreement(grades.iter().map(|g| g.checks.as_slice()));
    let disclosure = table
        .iter()
        .find(|a| a.criterion == criteria::DISCLOSURE)
        .context("disclosure row")?;
    assert_eq!((disclosure.compared, disclosure.agreed), (2, 2));
    assert_eq!(disclosure.raw, 1.0);
    // A judge's opinion on an open criterion has no rule to agree with.
    assert!(table.iter().all(|a| a.criterion != open::POLITE_ON_SCRIPT));
    // "yes" to "did the bot promise a guaranteed return" fails the check the rules pass.
    let forbidden = table
        .iter()
        .find(|a| a.criterion == criteria::NO_FORBIDDEN_PROMISES)
        .context("forbidden row")?;
    assert_eq!(forbidden.agreed, 0);
    Ok(())
}

fn judge_cases() -> anyhow::Result<Vec<(PathBuf, serde_yaml_ng::Value)>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/judge_cases");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&p)?)
                .with_context(|| format!("parsing {}", p.display()))?;
            out.push((p, v));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[test]
fn judge_cases_are_well_formed_and_cover_both_languages() -> anyhow::Result<()> {
    let known: Vec<&str> = LlmJudge::criteria().collect();
    let mut languages = BTreeMap::new();
    for (path, v) in judge_cases()? {
        let script: CallScript = serde_yaml_ng::from_value(v["call"].clone())
            .with_context(|| format!("{}: call", path.display()))?;
        *languages.entry(script.language.clone()).or_insert(0) += 1;
        let truth: BTreeMap<String, String> = serde_yaml_ng::from_value(v["truth"].clone())
            .with_context(|| format!("{}: truth", path.display()))?;
        anyhow::ensure!(!truth.is_empty(), "{}: no truth", path.display());
        for (c, t) in &truth {
            anyhow::ensure!(
                known.contains(&c.as_str()),
                "{}: the judge does not answer {c}",
                path.display()
            );
            anyhow::ensure!(
                ["pass", "fail", "n/a"].contains(&t.as_str()),
                "{}: {c}: {t}",
                path.display()
            );
        }
    }
    assert!(
        languages.get("en").copied().unwrap_or(0) >= 10,
        "{languages:?}"
    );
    assert!(
        languages.get("zh").copied().unwrap_or(0) >= 8,
        "{languages:?}"
    );
    Ok(())
}

/// The real judge (Qwen2.5-Coder-0.5B on llama.cpp) on one English and one Chinese call: every
/// answer is parsed or abstains, and most criteria get a verdict.
#[test]
fn the_qwen_judge_answers_in_the_allowed_words() -> anyhow::Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(qa::config::DEFAULT_JUDGE_MODEL);
    if !path.is_file() {
        eprintln!(
            "SKIPPED: {} is missing; run scripts/setup.sh (without JUDGE_MODEL=0) to fetch the judge model",
            path.display()
        );
        return Ok(());
    }
    let model = dialog::llm::llama::LlamaCppModel::load(&dialog::LlmConfig {
        model_path: path,
        threads: 1,
        ..dialog::LlmConfig::default()
    })?;
    let judge = LlmJudge::new(Arc::new(model), JudgeConfig::default());
    for name in ["en_price_discounted.yaml", "zh_opt_out_honoured.yaml"] {
        let (_, v) = judge_cases()?
            .into_iter()
            .find(|(p, _)| p.ends_with(name))
            .context(name)?;
        let script: CallScript = serde_yaml_ng::from_value(v["call"].clone())?;
        let verdicts = judge.verdicts(&CallView::from_record(&script.to_record()));
        assert_eq!(verdicts.verdicts.len(), 8);
        assert!(verdicts.abstained() <= 2, "{name}: {:?}", verdicts.verdicts);
    }
    Ok(())
}

#[test]
fn the_report_shows_the_judge_agreement_table_only_with_judge_checks() -> anyhow::Result<()> {
    let judge = LlmJudge::new(
        Arc::new(Scripted {
            answers: vec![],
            default: "yes",
        }),
        JudgeConfig::default(),
    );
    let with_judge = Grader::new(GraderConfig::default())?.with_judge(Box::new(judge));
    let rules_only = Grader::new(GraderConfig::default())?;
    for (grader, shown) in [(&with_judge, true), (&rules_only, false)] {
        let calls = vec![qa::GradedCall {
            call: call(),
            grade: grader.grade(&call(), 0),
        }];
        let report = qa::report::build(&calls, &qa::report::ReportConfig::default(), 1500.0, 0)?;
        assert_eq!(!report.judge_agreement.is_empty(), shown);
        let html = qa::report::html::index_page(&report)?;
        assert_eq!(html.contains("id=\"judge-agreement-table\""), shown);
    }
    Ok(())
}
