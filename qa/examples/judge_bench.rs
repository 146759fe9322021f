//! Measures the LLM judge: every GGUF given runs over the hand-made calls of
//! `qa/tests/judge_cases` (English and Chinese, each with its correct verdicts) and the bench
//! prints, per model, its agreement with the rules per rule criterion and with the truth per
//! criterion (raw share and Cohen's kappa over pass / fail / n/a), its abstention rate and its
//! seconds per call; the rules' own agreement with the truth is printed for reference.
//! Run: `cargo run -p qa --example judge_bench -- [--model PATH]... [--threads N] [--cases DIR]
//! [--limit N]` (default models: the Qwen judge and SmolLM2 under `models/llm`).
#![allow(clippy::print_stdout)]

use anyhow::Context;
use qa::grade::judge::{cohen_kappa, Verdict, RULE_CRITERIA};
use qa::grade::{CheckStatus, Grader, GraderConfig, JudgeConfig, LlmJudge};
use qa::synth::CallScript;
use qa::CallView;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[allow(dead_code)]
    description: String,
    call: CallScript,
    truth: BTreeMap<String, String>,
}

/// A verdict as a category (abstentions are kept apart before this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cat {
    Pass,
    Fail,
    Na,
}

fn cat_of_status(s: CheckStatus) -> Cat {
    match s {
        CheckStatus::Pass => Cat::Pass,
        CheckStatus::Fail => Cat::Fail,
        CheckStatus::NotApplicable => Cat::Na,
    }
}

fn cat_of_truth(s: &str) -> anyhow::Result<Cat> {
    Ok(match s {
        "pass" => Cat::Pass,
        "fail" => Cat::Fail,
        "n/a" => Cat::Na,
        other => anyhow::bail!("truth {other:?}: use pass, fail or n/a"),
    })
}

#[derive(Default)]
struct Tally {
    pairs: Vec<(Cat, Cat)>,
    abstained: usize,
}

impl Tally {
    fn line(&self) -> String {
        let n = self.pairs.len();
        let agreed = self.pairs.iter().filter(|(a, b)| a == b).count();
        let kappa = cohen_kappa(&self.pairs).map_or("  -  ".to_string(), |k| format!("{k:+.2}"));
        format!(
            "{agreed:>2}/{n:<2} {:>5.1}%  kappa {kappa}{}",
            if n == 0 {
                0.0
            } else {
                100.0 * agreed as f64 / n as f64
            },
            if self.abstained > 0 {
                format!("  ({} abstained)", self.abstained)
            } else {
                String::new()
            }
        )
    }

    fn raw(&self) -> f64 {
        let n = self.pairs.len().max(1);
        self.pairs.iter().filter(|(a, b)| a == b).count() as f64 / n as f64
    }
}

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut models: Vec<PathBuf> = Vec::new();
    let mut threads = 1u32;
    let mut cases_dir = root.join("qa/tests/judge_cases");
    let mut limit = usize::MAX;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--model" => models.push(PathBuf::from(value()?)),
            "--threads" => threads = value()?.parse().context("--threads N")?,
            "--cases" => cases_dir = PathBuf::from(value()?),
            "--limit" => limit = value()?.parse().context("--limit N")?,
            other => anyhow::bail!(
                "unknown argument {other}; use --model PATH (repeatable), --threads N, --cases DIR, --limit N"
            ),
        }
    }
    if models.is_empty() {
        models = vec![
            root.join(qa::config::DEFAULT_JUDGE_MODEL),
            root.join("models/llm/SmolLM2-135M-Instruct.Q4_1.gguf"),
        ];
    }

    let mut paths: Vec<PathBuf> = std::fs::read_dir(&cases_dir)
        .with_context(|| format!("reading {}", cases_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    paths.truncate(limit);
    let mut cases = Vec::new();
    for p in &paths {
        let case: Case = serde_yaml_ng::from_str(&std::fs::read_to_string(p)?)
            .with_context(|| format!("parsing {}", p.display()))?;
        cases.push((CallView::from_record(&case.call.to_record()), case));
    }
    let zh = cases.iter().filter(|(v, _)| v.language == "zh").count();
    println!(
        "{} calls ({} en, {zh} zh) from {}; {threads} thread(s)",
        cases.len(),
        cases.len() - zh,
        cases_dir.display()
    );

    let rules = Grader::new(GraderConfig::default())?;
    let graded: Vec<_> = cases.iter().map(|(v, _)| rules.grade(v, 0)).collect();

    // The rules against the truth, for reference.
    let mut rules_truth: BTreeMap<&str, Tally> = BTreeMap::new();
    for ((_, case), grade) in cases.iter().zip(&graded) {
        for c in RULE_CRITERIA {
            if let (Some(t), Some(r)) = (case.truth.get(c), grade.check(c)) {
                rules_truth
                    .entry(c)
                    .or_default()
                    .pairs
                    .push((cat_of_truth(t)?, cat_of_status(r.status)));
            }
        }
    }
    println!("\nrules vs truth");
    for (c, t) in &rules_truth {
        println!("  {c:<22} {}", t.line());
    }

    for model_path in &models {
        if !model_path.is_file() {
            println!(
                "\n{}: missing, skipped (run scripts/setup.sh)",
                model_path.display()
            );
            continue;
        }
        let config = dialog::LlmConfig {
            model_path: model_path.clone(),
            threads,
            ..dialog::LlmConfig::default()
        };
        let load = Instant::now();
        let model = dialog::llm::llama::LlamaCppModel::load(&config)?;
        let load_s = load.elapsed().as_secs_f64();
        let judge = LlmJudge::new(Arc::new(model), JudgeConfig::default());
        let name = qa::Judge::name(&judge).to_string();
        let mut vs_rules: BTreeMap<String, Tally> = BTreeMap::new();
        let mut vs_truth: BTreeMap<String, Tally> = BTreeMap::new();
        let mut by_lang: BTreeMap<String, Tally> = BTreeMap::new();
        let (mut asked, mut abstained) = (0usize, 0usize);
        let mut seconds = Vec::new();
        // criterion → verdict → count: a judge that always says the same is no judge.
        let mut answers: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for ((view, case), grade) in cases.iter().zip(&graded) {
            let t = Instant::now();
            let verdicts = judge.verdicts(view);
            seconds.push(t.elapsed().as_secs_f64());
            for (criterion, verdict, _raw) in &verdicts.verdicts {
                asked += 1;
                *answers
                    .entry(criterion.clone())
                    .or_default()
                    .entry(format!("{verdict:?}"))
                    .or_default() += 1;
                let judged = match verdict {
                    Verdict::Pass => Some(Cat::Pass),
                    Verdict::Fail => Some(Cat::Fail),
                    Verdict::NotApplicable => Some(Cat::Na),
                    Verdict::Abstained => None,
                };
                if judged.is_none() {
                    abstained += 1;
                }
                let add = |map: &mut BTreeMap<String, Tally>, key: &str, other: Cat| {
                    let tally = map.entry(key.to_string()).or_default();
                    match judged {
                        Some(j) => tally.pairs.push((other, j)),
                        None => tally.abstained += 1,
                    }
                };
                if RULE_CRITERIA.contains(&criterion.as_str()) {
                    if let Some(r) = grade.check(criterion) {
                        add(&mut vs_rules, criterion.as_str(), cat_of_status(r.status));
                    }
                }
                if let Some(t) = case.truth.get(criterion) {
                    let t = cat_of_truth(t)?;
                    add(&mut vs_truth, criterion.as_str(), t);
                    add(&mut by_lang, view.language.as_str(), t);
                }
            }
        }
        let pooled = |map: &BTreeMap<String, Tally>| {
            let mut all = Tally::default();
            for t in map.values() {
                all.pairs.extend(&t.pairs);
                all.abstained += t.abstained;
            }
            all
        };
        let mut sorted = seconds.clone();
        sorted.sort_by(f64::total_cmp);
        let mean = seconds.iter().sum::<f64>() / seconds.len().max(1) as f64;
        println!("\n== judge {name} (loaded in {load_s:.1} s)");
        println!("judge vs rules (rule criteria)");
        for (c, t) in &vs_rules {
            println!("  {c:<22} {}", t.line());
        }
        let rules_all = pooled(&vs_rules);
        println!("  {:<22} {}", "ALL", rules_all.line());
        println!("judge vs truth");
        for (c, t) in &vs_truth {
            println!("  {c:<22} {}", t.line());
        }
        let truth_all = pooled(&vs_truth);
        println!("  {:<22} {}", "ALL", truth_all.line());
        for (lang, t) in &by_lang {
            println!("  {:<22} {}", format!("ALL {lang}"), t.line());
        }
        println!("verdicts given");
        for (c, counts) in &answers {
            let counts: Vec<String> = counts.iter().map(|(v, n)| format!("{v} {n}")).collect();
            println!("  {c:<22} {}", counts.join(", "));
        }
        let mean_kappa = |map: &BTreeMap<String, Tally>| {
            let ks: Vec<f64> = map.values().filter_map(|t| cohen_kappa(&t.pairs)).collect();
            ks.iter().sum::<f64>() / ks.len().max(1) as f64
        };
        println!(
            "mean per-criterion kappa: {:+.3} vs rules, {:+.3} vs truth",
            mean_kappa(&vs_rules),
            mean_kappa(&vs_truth)
        );
        println!(
            "abstained {abstained}/{asked} answers ({:.1}%)",
            100.0 * abstained as f64 / asked.max(1) as f64
        );
        println!(
            "seconds per call: mean {mean:.2}, p50 {:.2}, max {:.2}",
            sorted.get(sorted.len() / 2).copied().unwrap_or(0.0),
            sorted.last().copied().unwrap_or(0.0)
        );
        let key = if name.to_lowercase().contains("qwen") {
            "qwen05b"
        } else if name.to_lowercase().contains("smol") {
            "smollm2"
        } else {
            "other"
        };
        println!(
            "qa.judge_agreement_{key} = {:.3} raw vs rules (kappa {}), {:.3} raw vs truth (kappa {})",
            rules_all.raw(),
            cohen_kappa(&rules_all.pairs).map_or("-".into(), |k| format!("{k:.3}")),
            truth_all.raw(),
            cohen_kappa(&truth_all.pairs).map_or("-".into(), |k| format!("{k:.3}")),
        );
        println!("qa.judge_s_per_call[{key}] = {mean:.2}");
    }
    Ok(())
}
