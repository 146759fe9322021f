//! The eval harness: scripted and simulated callers and replays of recorded calls, run in CI to
//! catch dialogue regressions. Filled in by the evals wave; for now it only names the crate.
