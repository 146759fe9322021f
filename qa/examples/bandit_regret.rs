//! The `bandit.regret_vs_fixed_split` benchmark: the Thompson bandit's cumulative regret against
//! a fixed equal split on the seeded simulated callees of
//! [`qa::experiment::RegretScenario::default`] (three segments answering three script variants
//! differently). Prints the figures and the BENCHMARKS.md keys.
#![allow(clippy::print_stdout)] // A benchmark binary: its output is the point.

fn main() -> anyhow::Result<()> {
    let scenario = qa::experiment::RegretScenario::default();
    let t = std::time::Instant::now();
    let curve = scenario.run()?;
    let s = &curve.summary;
    println!("{}", curve.scenario);
    println!("{}", qa::report::experiments::regret_summary(&curve));
    println!(
        "bandit.regret_vs_fixed_split={:.1}/{:.1}",
        s.bandit_regret, s.fixed_split_regret
    );
    println!(
        "bandit.regret_ratio={:.3} (bandit / fixed split; {:.2} s)",
        s.bandit_regret / s.fixed_split_regret.max(f64::MIN_POSITIVE),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
