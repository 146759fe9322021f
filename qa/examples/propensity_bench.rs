//! Propensity benchmark: both learners on the Caravan data (CoIL 2000) on the default seeded
//! split (held-out AUC and top-decile lift), then the time to train both on 100,000 rows
//! resampled from Caravan (with replacement, seeded). Prints `key=value` lines for
//! BENCHMARKS.md. Needs models/data/caravan.csv (scripts/setup.sh).
//!
//! `cargo run -p qa --example propensity_bench [-- --rows 100000]`
#![allow(clippy::print_stdout)]

use qa::propensity::{self, ModelKind, TrainOptions};
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let rows: usize = args
        .iter()
        .position(|a| a == "--rows")
        .and_then(|i| args.get(i + 1))
        .map_or(Ok(100_000), |v| v.parse())?;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/data/caravan.csv");
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run scripts/setup.sh",
        path.display()
    );
    let data = propensity::read_csv(&path, "customer_id", Some("Purchase"))?;
    let opts = TrainOptions::default();
    let report = propensity::train(&data, "customer_id", "Purchase", &opts, &mut |_| {})?;
    for m in &report.models {
        let k = m.kind().as_str();
        let x = &m.card.metrics;
        println!("propensity.auc_{k}={:.4}", x.auc);
        println!("propensity.lift_top10_{k}={:.2}", x.lift_top10);
        println!("propensity.precision_top10_{k}={:.3}", x.precision_top10);
        println!("propensity.brier_{k}={:.4}", x.brier);
        println!("propensity.ece_{k}={:.4}", x.ece);
        println!("propensity.setting_{k}={}", m.card.setting);
        println!("propensity.train_s_caravan_{k}={:.2}", m.card.train_s);
    }
    let best = report.best();
    println!("propensity.best={}", best.kind().as_str());
    println!("propensity.auc={:.4}", best.card.metrics.auc);
    println!("propensity.lift_top10={:.2}", best.card.metrics.lift_top10);

    // 100k rows resampled from Caravan: the shape of a large CRM (85 features, ~6% buyers).
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(100);
    let idx: Vec<usize> = (0..rows)
        .map(|_| rng.random_range(0..data.rows()))
        .collect();
    let mut big = data.subset(&idx);
    big.ids = (0..rows).map(|i| format!("r{i}")).collect();
    for kind in [ModelKind::Logistic, ModelKind::Gbm] {
        let opts = TrainOptions {
            kinds: vec![kind],
            ..TrainOptions::default()
        };
        let started = Instant::now();
        let r = propensity::train(&big, "customer_id", "Purchase", &opts, &mut |_| {})?;
        println!(
            "propensity.train_s_100k_{}={:.2} (rows {rows}, fit {:.2} s, held-out AUC {:.4} on resampled rows)",
            kind.as_str(),
            started.elapsed().as_secs_f64(),
            r.best().card.train_s,
            r.best().card.metrics.auc
        );
    }
    let started = Instant::now();
    propensity::train(&big, "customer_id", "Purchase", &opts, &mut |_| {})?;
    println!(
        "propensity.train_s_100k={:.2} (both learners, split, calibration and held-out scoring)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
