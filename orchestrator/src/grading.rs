//! The `ringwise qa run` and `ringwise report` commands: the rule grader from `qa` over the
//! configured store (with the dialogue policy's own thresholds), a progress bar on stderr, and
//! the report written to a folder.

use crate::Config;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use qa::grade::Grader;
use std::fmt::Write as _;
use std::path::Path;

async fn open_store(config: &Config) -> anyhow::Result<retrieval::SqlStore> {
    crate::demo::ensure_sqlite_folder(&config.retrieval.database_url)?;
    retrieval::SqlStore::connect(&config.retrieval.database_url)
        .await
        .with_context(|| {
            format!(
                "opening the store retrieval.database_url = {:?}",
                config.retrieval.database_url
            )
        })
}

/// The LLM judge of `ringwise qa run`, when `--judge` or `qa.judge_model` asks for one: the
/// GGUF on llama.cpp, behind `dialog::LanguageModel`.
async fn load_judge(config: &Config, judge: bool) -> anyhow::Result<Option<qa::LlmJudge>> {
    let path = match (&config.qa.judge_model, judge) {
        (Some(path), _) => path.clone(),
        (None, true) => std::path::PathBuf::from(qa::config::DEFAULT_JUDGE_MODEL),
        (None, false) => return Ok(None),
    };
    anyhow::ensure!(
        path.is_file(),
        "the judge model {} is missing: run scripts/setup.sh (without JUDGE_MODEL=0) or set qa.judge_model to a GGUF",
        path.display()
    );
    let llm_config = dialog::LlmConfig {
        model_path: path.clone(),
        threads: config.qa.judge_threads.max(1),
        ..config.llm.clone()
    };
    let model =
        tokio::task::spawn_blocking(move || dialog::llm::llama::LlamaCppModel::load(&llm_config))
            .await?
            .with_context(|| format!("loading the judge model {}", path.display()))?;
    Ok(Some(qa::LlmJudge::new(
        std::sync::Arc::new(model),
        qa::JudgeConfig::default(),
    )))
}

/// `ringwise qa run`: grades every call the rule grader has not graded; a second run grades none.
/// With a judge (`--judge` or `qa.judge_model`), the calls graded now are judged too.
pub async fn qa_run(config: &Config, judge: bool) -> anyhow::Result<String> {
    let store = open_store(config).await?;
    let mut grader_config = config.qa.grader.clone();
    grader_config.policy = config.dialog.manager.policy.clone();
    let mut grader = Grader::new(grader_config)?;
    let judge_name = match load_judge(config, judge).await? {
        Some(j) => {
            let name = qa::Judge::name(&j).to_string();
            grader = grader.with_judge(Box::new(j));
            Some(name)
        }
        None => None,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} calls graded [{elapsed}] {per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let summary = qa::run::grade_ungraded(
        &store,
        &grader,
        config.qa.page.max(1),
        crate::session::now_ms(),
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )
    .await?;
    bar.finish_and_clear();
    let mut s = format!(
        "{} call(s) graded in {:.2} s ({} failed checks)",
        summary.graded, summary.elapsed_s, summary.checks_failed
    );
    if let Some(name) = judge_name {
        let _ = write!(s, "\njudge: {name} (advisory judge.* checks)");
    }
    if summary.graded == 0 {
        s.push_str(": every stored call already has a grade");
    } else {
        s.push_str("\nprimary failure reasons:");
        for (reason, n) in &summary.by_primary_failure {
            let _ = write!(s, "\n  {reason:<24} {n}");
        }
    }
    Ok(s)
}

/// `ringwise report --out DIR`: the QA report of every graded call.
pub async fn report(
    config: &Config,
    dir: &Path,
    model_comparison: Option<&Path>,
) -> anyhow::Result<String> {
    let comparison: Option<qa::ModelComparison> = match model_comparison {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading the model comparison {}", p.display()))?;
            Some(serde_json::from_str(&text).with_context(|| {
                format!(
                    "{}: not a model comparison (JSON with model, before_version, after_version, evaluated_on, metrics, promoted, note)",
                    p.display()
                )
            })?)
        }
        None => None,
    };
    let store = open_store(config).await?;
    let keys = crate::demo::demo_keys(config, &config.dialog.data_dir)?;
    let bar = ProgressBar::new_spinner();
    bar.set_message("reading graded calls");
    let (calls, ungraded) = qa::report::load_graded(&store, Some(&keys)).await?;
    // Campaign experiments: the arms stored calls played.
    let arms = store.call_arms().await?;
    bar.set_message(format!("writing the report of {} calls", calls.len()));
    let (report_config, threshold) = (config.qa.report.clone(), config.qa.grader.v2v_threshold_ms);
    let dir_owned = dir.to_path_buf();
    let (files, totals) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let mut report =
            qa::report::build(&calls, &report_config, threshold, crate::session::now_ms())?;
        report.totals.ungraded = ungraded;
        report.model_comparison = comparison;
        report.experiments = qa::report::experiments::sections(&arms);
        if report.experiments.iter().any(|e| !e.bandit.is_empty()) {
            report.regret = Some(qa::experiment::RegretScenario::default().run()?);
        }
        let files = qa::report::write(&report, &calls, &dir_owned)?;
        Ok((files, report.totals))
    })
    .await??;
    bar.finish_and_clear();
    let mut s = format!(
        "report of {} graded call(s) ({} answered, {} converted, mean score {:.1}%): {}\n  {}\n  {}\n  {} call pages in {}",
        totals.calls,
        totals.answered,
        totals.converted,
        totals.mean_score_pct,
        files.index.display(),
        files.json.display(),
        files.csv.display(),
        files.call_pages,
        dir.join("calls").display()
    );
    if ungraded > 0 {
        let _ = write!(
            s,
            "\n{ungraded} call(s) not graded yet: run `ringwise qa run` first"
        );
    }
    Ok(s)
}
