//! The eval harness: dialogue regression tests from scenario files and recorded calls. A
//! scenario (YAML, [`scenario`]) scripts a caller — fixed turns, silence, noise, talking over the
//! bot, or a persona — and says what the bot must do; a [`Driver`] plays the call (text mode
//! straight into the dialogue manager here, audio mode through the orchestrator's gRPC call
//! path); [`run_suite`] runs a folder of them in parallel, [`check`] judges each, and [`report`]
//! writes the terminal table, JUnit XML, Markdown and HTML. [`compare`] puts two saved runs side
//! by side; [`capture`] turns a stored call into a scenario.

pub mod caller;
pub mod capture;
pub mod check;
pub mod compare;
pub mod driver;
pub mod error;
pub mod report;
pub mod results;
pub mod run;
pub mod scenario;
pub mod transcript;

pub use check::{check, Failure};
pub use compare::{compare, Comparison};
pub use driver::{Driver, NoInput, ScenarioProfiles, TextDriver};
pub use error::EvalError;
pub use results::{RunResults, ScenarioResult, Verdict};
pub use run::{run_suite, RunOptions};
pub use scenario::{load_dir, Mode, Scenario, ScenarioFile};
pub use transcript::{ObservedTurn, Transcript};
