//! The runner: every scenario of a suite through one [`Driver`], up to `jobs` at a time, each in
//! its own task with a time limit, so a scenario that crashes the bot (a panic, an error, a hang)
//! is a failed scenario and the run goes on. Results come back in suite order whatever the
//! finishing order; the progress callback sees each as it finishes.

use crate::check::{check, Failure};
use crate::driver::Driver;
use crate::error::EvalError;
use crate::results::{RunResults, ScenarioResult, Verdict, RESULTS_VERSION};
use crate::scenario::Scenario;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How a suite is run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Scenarios at a time.
    pub jobs: usize,
    /// Wall-clock limit of one scenario.
    pub timeout: Duration,
    /// Only scenarios whose id contains this.
    pub filter: Option<String>,
    /// Names the run in reports (e.g. the model or script version).
    pub label: String,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            timeout: Duration::from_secs(120),
            filter: None,
            label: String::new(),
        }
    }
}

/// One finished scenario, for a progress display.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    pub done: usize,
    pub total: usize,
    pub result: &'a ScenarioResult,
}

/// Runs `scenarios` (those of the driver's mode, matching the filter) and the files that did
/// not load (reported as errors), calling `progress` as each finishes.
pub async fn run_suite(
    scenarios: Vec<Scenario>,
    load_errors: Vec<EvalError>,
    driver: Arc<dyn Driver>,
    options: &RunOptions,
    progress: &mut (dyn FnMut(Progress<'_>) + Send),
) -> RunResults {
    let started = Instant::now();
    let mode = driver.mode();
    let mut results: Vec<Option<ScenarioResult>> = Vec::new();
    let mut skipped = Vec::new();
    let selected: Vec<Scenario> = scenarios
        .into_iter()
        .filter(|s| {
            options
                .filter
                .as_ref()
                .is_none_or(|f| s.id.contains(f.as_str()))
        })
        .filter(|s| {
            let runs = s.runs_in(mode);
            if !runs {
                skipped.push(s.id.clone());
            }
            runs
        })
        .collect();
    let total = selected.len() + load_errors.len();
    let mut done = 0;
    for e in load_errors {
        let r = ScenarioResult::load_error(&e);
        done += 1;
        progress(Progress {
            done,
            total,
            result: &r,
        });
        results.push(Some(r));
    }
    let offset = results.len();
    results.resize(offset + selected.len(), None);
    let limit = Arc::new(Semaphore::new(options.jobs.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, scenario) in selected.into_iter().enumerate() {
        let (driver, limit, timeout) = (driver.clone(), limit.clone(), options.timeout);
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let scenario = Arc::new(scenario);
            let t = Instant::now();
            // A panic inside the bot stays inside this inner task.
            let mut inner = {
                let (driver, scenario) = (driver.clone(), scenario.clone());
                tokio::spawn(async move { driver.run(&scenario).await })
            };
            let outcome = tokio::time::timeout(timeout, &mut inner).await;
            if outcome.is_err() {
                inner.abort();
            }
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let result = match outcome {
                Ok(Ok(Ok(transcript))) => {
                    let failures = check(&scenario, mode, &transcript);
                    ScenarioResult::finished(&scenario, mode, transcript, failures, ms)
                }
                Ok(Ok(Err(e))) => ScenarioResult::crashed(
                    &scenario,
                    mode,
                    Failure::call("bot_error", e.to_string()),
                    ms,
                ),
                Ok(Err(join)) => {
                    let message = if join.is_panic() {
                        let payload = join.into_panic();
                        let text = payload
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "a panic without a message".into());
                        format!("the bot crashed (panic): {text}")
                    } else {
                        "the scenario task was cancelled".into()
                    };
                    ScenarioResult::crashed(&scenario, mode, Failure::call("crash", message), ms)
                }
                Err(_) => ScenarioResult::crashed(
                    &scenario,
                    mode,
                    Failure::call(
                        "timeout",
                        format!("no result within {:.0} s", timeout.as_secs_f64()),
                    ),
                    ms,
                ),
            };
            (i, result)
        });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, result)) => {
                done += 1;
                progress(Progress {
                    done,
                    total,
                    result: &result,
                });
                results[offset + i] = Some(result);
            }
            Err(e) => tracing::error!(error = %e, "an eval task failed outside its scenario"),
        }
    }
    RunResults {
        version: RESULTS_VERSION,
        label: options.label.clone(),
        bot: driver.label(),
        mode,
        jobs: options.jobs.max(1),
        wall_s: started.elapsed().as_secs_f64(),
        skipped,
        scenarios: results.into_iter().flatten().collect(),
    }
}

impl RunResults {
    /// Whether the run is a regression: any scenario failed or errored.
    pub fn failed(&self) -> bool {
        self.scenarios.iter().any(|s| s.verdict != Verdict::Pass)
    }
}
