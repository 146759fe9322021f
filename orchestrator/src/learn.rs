//! The `ringwise train`, `score` and `segments` commands: propensity models and customer
//! segments from `qa`, run on the blocking pool with a progress display on stderr.

use crate::Config;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use qa::propensity::{self, ModelKind, PropensityModel, TrainOptions};
use qa::segments::{self, SegmentOptions, Segmentation, TimeOptions};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What `ringwise train` was asked.
#[derive(Debug, Clone)]
pub struct TrainArgs {
    pub csv: PathBuf,
    pub id: String,
    pub label: String,
    pub out: PathBuf,
    /// `logistic`, `gbm` or `both`.
    pub model: String,
    pub seed: u64,
    /// Record the model in the store's `model_versions` and promote it if it beats the active
    /// version on this run's held-out rows.
    pub register: bool,
    /// Also write the split as `train.csv` (fit + calibration rows) and `test.csv` here, for
    /// scripts/propensity_compare.sh.
    pub export_split: Option<PathBuf>,
}

fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// `ringwise train`: reads the CSV, trains, saves the best model to `out` (and each learner to
/// `out/<kind>` when several were trained), optionally registers it.
pub async fn train(config: &Config, args: TrainArgs) -> anyhow::Result<String> {
    let kinds = match args.model.as_str() {
        "logistic" => vec![ModelKind::Logistic],
        "gbm" => vec![ModelKind::Gbm],
        "both" => vec![ModelKind::Logistic, ModelKind::Gbm],
        other => anyhow::bail!("unknown --model {other:?}: use logistic, gbm or both"),
    };
    let opts = TrainOptions {
        seed: args.seed,
        kinds,
        ..TrainOptions::default()
    };
    let a = args.clone();
    let (report, data, text) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let bar = spinner(&format!("reading {}", a.csv.display()));
        let data = propensity::read_csv(&a.csv, &a.id, Some(&a.label))?;
        let report = propensity::train(&data, &a.id, &a.label, &opts, &mut |step| {
            bar.set_message(step.to_string())
        })?;
        bar.set_message(format!("saving to {}", a.out.display()));
        let mut text = format!(
            "{}: {} rows, {} features, {} positive ({:.1}%); split (seed {}): {} fit, {} calibrate, {} held out\n\n",
            a.csv.display(),
            data.rows(),
            data.cols(),
            data.positives(),
            100.0 * data.positives() as f64 / data.rows() as f64,
            a.seed,
            report.split.train.len(),
            report.split.calibrate.len(),
            report.split.test.len(),
        );
        let _ = writeln!(
            text,
            "{:<9} {:>6} {:>7} {:>8} {:>8} {:>7} {:>7} {:>7}",
            "model", "AUC", "lift@10", "prec@10", "prec@.2", "Brier", "ECE", "train s"
        );
        for m in &report.models {
            let x = &m.card.metrics;
            let _ = writeln!(
                text,
                "{:<9} {:>6.4} {:>7.2} {:>8.3} {:>8.3} {:>7.4} {:>7.4} {:>7.2}",
                m.kind().as_str(),
                x.auc,
                x.lift_top10,
                x.precision_top10,
                x.precision_at_cutoff,
                x.brier,
                x.ece,
                m.card.train_s
            );
        }
        let best = report.best();
        let sha = best.save(&a.out)?;
        let _ = write!(
            text,
            "\nsaved {} (best held-out AUC) to {} (sha256 {})",
            best.kind().as_str(),
            a.out.display(),
            &sha[..16]
        );
        if report.models.len() > 1 {
            for m in &report.models {
                let dir = a.out.join(m.kind().as_str());
                m.save(&dir)?;
                let _ = write!(text, "\n  {} also in {}", m.kind().as_str(), dir.display());
            }
        }
        if let Some(dir) = &a.export_split {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut fit: Vec<usize> = report.split.train.clone();
            fit.extend_from_slice(&report.split.calibrate);
            fit.sort_unstable();
            data.subset(&fit)
                .write_csv(&dir.join("train.csv"), &a.id, &a.label)?;
            data.subset(&report.split.test)
                .write_csv(&dir.join("test.csv"), &a.id, &a.label)?;
            let _ = write!(text, "\nsplit written to {}/{{train,test}}.csv", dir.display());
        }
        bar.finish_and_clear();
        Ok((report, data, text))
    })
    .await??;
    let mut text = text;
    if args.register {
        crate::demo::ensure_sqlite_folder(&config.retrieval.database_url)?;
        let store = retrieval::SqlStore::connect(&config.retrieval.database_url).await?;
        let held_out = data.subset(&report.split.test);
        let p = propensity::register(
            &store,
            report.best(),
            &args.out,
            &held_out,
            crate::session::now_ms(),
        )
        .await?;
        let _ = write!(
            text,
            "\nregistered {} as version {}: {} ({})",
            propensity::MODEL_NAME,
            p.version,
            if p.promoted {
                "now active"
            } else {
                "not promoted"
            },
            p.reason
        );
    }
    Ok(text)
}

/// `ringwise score`: writes `id,probability` for every row of `csv` to `out`. When the CSV also
/// has the model's label column, the held-out figures on it are reported too.
pub async fn score(
    model_dir: &Path,
    csv: &Path,
    out: &Path,
    id: Option<&str>,
) -> anyhow::Result<String> {
    let (model_dir, csv, out) = (
        model_dir.to_path_buf(),
        csv.to_path_buf(),
        out.to_path_buf(),
    );
    let id = id.map(str::to_string);
    tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let bar = spinner(&format!("loading {}", model_dir.display()));
        let model = PropensityModel::load(&model_dir)?;
        let id = id.unwrap_or_else(|| model.card.id_column.clone());
        bar.set_message(format!("reading {}", csv.display()));
        let data =
            propensity::read_features(&csv, &id, model.features(), Some(&model.card.label_column))?;
        bar.set_message(format!("scoring {} rows", data.rows()));
        let p = model.score(&data)?;
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let mut w =
            csv::Writer::from_path(&out).with_context(|| format!("writing {}", out.display()))?;
        w.write_record([id.as_str(), "probability"])?;
        for (row_id, q) in data.ids.iter().zip(&p) {
            w.write_record([row_id.as_str(), &format!("{q:.6}")])?;
        }
        w.flush()?;
        bar.finish_and_clear();
        let mut text = format!(
            "{} rows scored with {} model {} -> {}",
            data.rows(),
            model.kind().as_str(),
            model_dir.display(),
            out.display()
        );
        if data.labels.len() == data.rows()
            && data.positives() > 0
            && data.positives() < data.rows()
        {
            let m = propensity::Metrics::of(&p, &data.labels, model.card.metrics.cutoff);
            let _ = write!(
                text,
                "\nlabel `{}` present: AUC {:.4}, top-decile lift {:.2}, Brier {:.4}",
                model.card.label_column, m.auc, m.lift_top10, m.brier
            );
        }
        Ok(text)
    })
    .await?
}

/// What `ringwise segments` was asked.
#[derive(Debug, Clone)]
pub struct SegmentArgs {
    pub seed: u64,
    pub k_min: usize,
    pub k_max: usize,
    /// IANA zone for contacts whose customer has no dialer time zone.
    pub zone: String,
    /// Store each customer's segment name in `profiles.segment`.
    pub write: bool,
    pub json: bool,
}

/// `ringwise segments`: K-Means segments of the store's profiles, and their best times to call.
pub async fn segments(config: &Config, args: SegmentArgs) -> anyhow::Result<String> {
    let zone: chrono_tz::Tz = args
        .zone
        .parse()
        .map_err(|_| anyhow::anyhow!("--zone {:?} is not an IANA time zone", args.zone))?;
    crate::demo::ensure_sqlite_folder(&config.retrieval.database_url)?;
    let store = retrieval::SqlStore::connect(&config.retrieval.database_url).await?;
    let now = crate::session::now_ms();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} profiles read [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let profiles = segments::load_profiles(&store, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .await?;
    bar.finish_and_clear();
    let rows: Vec<Vec<f64>> = profiles
        .iter()
        .map(|p| segments::profile_features(p, now))
        .collect();
    let opts = SegmentOptions {
        seed: args.seed,
        k_min: args.k_min,
        k_max: args.k_max,
        ..SegmentOptions::default()
    };
    let fit = tokio::task::spawn_blocking(move || {
        let bar = spinner("k-means: choosing k by silhouette");
        let fit = Segmentation::fit(&rows, &opts).map(|s| (s, rows));
        bar.finish_and_clear();
        fit
    })
    .await??;
    let (seg, rows) = fit;
    let assigned: std::collections::HashMap<String, String> = profiles
        .iter()
        .zip(&rows)
        .map(|(p, r)| {
            (
                p.customer_id.clone(),
                seg.segments[seg.assign(r)].name.clone(),
            )
        })
        .collect();
    let contacts = segments::load_contacts(&store).await?;
    let times = segments::best_times(
        &contacts,
        &|id| assigned.get(id).cloned(),
        &TimeOptions {
            default_zone: zone,
            ..TimeOptions::default()
        },
    );
    let written = if args.write {
        let pairs: Vec<(String, String)> = assigned.into_iter().collect();
        Some(segments::write_segments(&store, &pairs, now).await?)
    } else {
        None
    };
    if args.json {
        return Ok(serde_json::to_string_pretty(&serde_json::json!({
            "segmentation": seg,
            "best_times": times,
            "profiles_written": written,
        }))?);
    }
    let mut s = format!(
        "{} profiles, k = {} (silhouette {})\n",
        profiles.len(),
        seg.k,
        seg.silhouettes
            .iter()
            .map(|(k, v)| format!("k{k} {v:.3}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for g in &seg.segments {
        let c = &g.centroid;
        let _ = writeln!(
            s,
            "\n[{}] {} — {} customers ({})\n    age {:.0}, income band {:.1}, children {:.1}, purchases {:.1}, {:.0} days since contact, price sensitivity {:.2}, {:.1} calls",
            g.index, g.description, g.size, g.name, c[0], c[1], c[2], c[3], c[4], c[5], c[6]
        );
        match times.iter().find(|t| t.segment == g.name) {
            Some(t) => {
                let _ = writeln!(
                    s,
                    "    {} attempts, answer {:.0}%, conversion when answered {:.1}%; best hours {}; best days {}",
                    t.attempts,
                    100.0 * t.answer_rate,
                    100.0 * t.conversion_rate,
                    t.best_hours
                        .iter()
                        .map(|h| format!("{h:02}:00"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    t.best_weekdays
                        .iter()
                        .map(|d| segments::best_time::weekday_name(*d))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            None => {
                let _ = writeln!(s, "    no call history yet");
            }
        }
    }
    if let Some(n) = written {
        let _ = write!(s, "\nsegment names written to {n} profiles");
    }
    Ok(s)
}

/// `ringwise retrain`: the learning loop over the store. Every stored call becomes a row (the
/// customer's profile features at the time of the call); the QA labels leave out calls the bot
/// lost or that reached nobody (`qa::learning`). Trains on them, saves the model under
/// `models_dir/propensity-<time>`, compares it with the active version on this run's held-out
/// calls and promotes it only if its AUC is higher; writes `model_comparison.json` (for
/// `ringwise report --model-comparison`) beside it. With `if_due`, does nothing while the active
/// version is younger than `qa.retrain_every_days`.
pub async fn retrain(config: &Config, models_dir: &Path, if_due: bool) -> anyhow::Result<String> {
    crate::demo::ensure_sqlite_folder(&config.retrieval.database_url)?;
    let store = retrieval::SqlStore::connect(&config.retrieval.database_url).await?;
    let now = crate::session::now_ms();
    let previous = propensity::active_model(&store).await?;
    if let (true, Some((active, _))) = (if_due, &previous) {
        let age_days = (now - active.created_at_ms) / 86_400_000;
        let every = i64::from(config.qa.retrain_every_days);
        if age_days < every {
            return Ok(format!(
                "not due: the active version {} is {age_days} days old (qa.retrain_every_days = {every})",
                active.version
            ));
        }
    }
    let set = qa::learning::store_training_set(&store).await?;
    let opts = TrainOptions::default();
    let graded = set.graded.clone();
    let raw = set.raw.clone();
    let o = opts.clone();
    let (with_qa, without_qa) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let bar = spinner("training with the QA labels");
        let with_qa = propensity::train(&graded, "customer_id", "converted", &o, &mut |s| {
            bar.set_message(format!("with QA labels: {s}"))
        })
        .context("training on the QA-labelled calls")?;
        let without_qa = propensity::train(&raw, "customer_id", "converted", &o, &mut |s| {
            bar.set_message(format!("raw outcomes: {s}"))
        })
        .context("training on the raw outcomes")?;
        bar.finish_and_clear();
        Ok((with_qa, without_qa))
    })
    .await??;
    let held_out = set.graded.subset(&with_qa.split.test);
    let read = |m: &PropensityModel| -> anyhow::Result<propensity::Metrics> {
        Ok(propensity::Metrics::of(
            &m.score(&held_out)?,
            &held_out.labels,
            opts.cutoff,
        ))
    };
    let new = read(with_qa.best())?;
    let raw_same_rows = read(without_qa.best())?;
    let before = match &previous {
        Some((_, m)) => read(m).ok(),
        None => None,
    };
    let dir = models_dir.join(format!("propensity-{now}"));
    with_qa.best().save(&dir)?;
    let promotion = propensity::register(&store, with_qa.best(), &dir, &held_out, now).await?;
    // Before: the active version when there was one, else the same learners without the QA
    // labels (what training on raw outcomes would have given).
    let baseline = before.unwrap_or(raw_same_rows);
    let delta = |name: &str, f: fn(&propensity::Metrics) -> f64| qa::report::MetricDelta {
        name: name.to_string(),
        before: f(&baseline),
        after: f(&new),
        higher_is_better: name != "brier",
    };
    let comparison = qa::ModelComparison {
        model: propensity::MODEL_NAME.to_string(),
        before_version: match (&promotion.previous, &before) {
            (Some((v, _)), Some(_)) => v.clone(),
            _ => "raw outcomes (no QA labels)".to_string(),
        },
        after_version: promotion.version.clone(),
        evaluated_on: format!(
            "{} held-out calls of this run (seed {}, QA labels), {} of them conversions",
            held_out.rows(),
            opts.seed,
            held_out.positives()
        ),
        metrics: vec![
            delta("auc", |m| m.auc),
            delta("lift_top10", |m| m.lift_top10),
            delta("brier", |m| m.brier),
        ],
        promoted: promotion.promoted,
        note: format!(
            "{}. QA labels left out {} of {} calls (bot failures, nobody reached); {} calls had no \
             grade yet. The same learners on the raw outcomes: AUC {:.4}, lift {:.2} on the same rows.",
            promotion.reason,
            set.excluded,
            set.raw.rows(),
            set.ungraded,
            raw_same_rows.auc,
            raw_same_rows.lift_top10
        ),
    };
    let json_path = dir.join("model_comparison.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&comparison)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    Ok(format!(
        "{} calls ({} without a profile), {} kept by the QA labels; {} held out\n\
         new {}: AUC {:.4}, lift {:.2} (raw outcomes: AUC {:.4}, lift {:.2}){}\n{}\n\
         saved to {}; before/after for the report: {}",
        set.calls,
        set.without_profile,
        set.graded.rows(),
        held_out.rows(),
        promotion.version,
        new.auc,
        new.lift_top10,
        raw_same_rows.auc,
        raw_same_rows.lift_top10,
        before
            .map(|b| format!(
                "; active before: AUC {:.4}, lift {:.2}",
                b.auc, b.lift_top10
            ))
            .unwrap_or_default(),
        if promotion.promoted {
            format!("promoted: {}", promotion.reason)
        } else {
            format!("not promoted: {}", promotion.reason)
        },
        dir.display(),
        json_path.display()
    ))
}
