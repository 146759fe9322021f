//! The product's configuration: defaults, then a TOML file, then environment variables with the
//! `RINGWISE_` prefix (nested keys joined by `__`, e.g. `RINGWISE_LLM__THREADS=1`). Each crate
//! owns its section's type; this module only composes them.

use dialog::policy::DialogConfig;
use dialog::policy::PhrasingMode;
use dialog::LlmConfig;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use retrieval::RetrievalConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use voice::VoiceConfig;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub voice: VoiceConfig,
    pub llm: LlmConfig,
    pub retrieval: RetrievalConfig,
    pub dialog: DialogSection,
    pub server: ServerConfig,
    /// Call sessions: timeouts, barge-in, look-ahead, re-prompt and goodbye lines.
    pub session: crate::session::SessionConfig,
    /// The call centre's dialer defaults (`[dialer]`: calling window, per-region rules, time
    /// zones, attempts, back-off, caps, hand-off pacing). A campaign YAML's `dialer:` keys
    /// override them key by key.
    pub dialer: crate::dialer::DialerConfig,
    /// Call grading and reports (`[qa.grader]`: disclosure and forbidden phrases, latency and
    /// talk thresholds; `[qa.report]`: time zone of the by-hour chart, title).
    pub qa: qa::QaConfig,
}

/// Which campaign script and NLU model the dialogue manager uses, and its settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct DialogSection {
    /// The campaign script (YAML).
    pub campaign: PathBuf,
    /// Folder of the NLU model (weights, lexicon).
    pub nlu_dir: PathBuf,
    /// A passing `ringwise qualify` report (JSON) for the configured GGUF. Without one, every
    /// reply is a template; with one, LLM phrasing is switched on in `phrasing` mode.
    pub qualify_report: Option<PathBuf>,
    /// `opener` or `paraphrase`; used only with a passing `qualify_report`.
    pub phrasing: Option<PhrasingMode>,
    /// Where call records, recordings and the demo's CRM files go.
    pub data_dir: PathBuf,
    /// Policy, guard and retrieval budgets (`[dialog.manager]`).
    pub manager: DialogConfig,
}

impl Default for DialogSection {
    fn default() -> Self {
        Self {
            campaign: PathBuf::from("dialog/data/campaigns/family_education_insurance.yaml"),
            nlu_dir: PathBuf::from("dialog/data/nlu"),
            qualify_report: None,
            phrasing: None,
            data_dir: PathBuf::from("data"),
            manager: DialogConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Address the gRPC server listens on.
    pub listen: String,
    /// Bearer tokens and their roles (`[[server.auth.tokens]]`).
    pub auth: crate::auth::AuthConfig,
    /// Load shedding, timeouts and tracing at the edge (`[server.edge]`).
    pub edge: crate::edge::EdgeConfig,
    /// Live calls this process takes; one more is refused with RESOURCE_EXHAUSTED.
    pub max_calls: usize,
    /// Address of the Prometheus `/metrics` endpoint; empty turns it off.
    pub metrics_listen: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:50051".into(),
            auth: crate::auth::AuthConfig::default(),
            edge: crate::edge::EdgeConfig::default(),
            max_calls: 16,
            metrics_listen: "127.0.0.1:9464".into(),
        }
    }
}

impl Config {
    /// Loads defaults ← `file` (if given, it must exist) ← `RINGWISE_*` environment.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(Box::new(figment::Error::from(format!(
                    "config file {} does not exist",
                    path.display()
                ))));
            }
            fig = fig.merge(Toml::file(path));
        }
        fig.merge(Env::prefixed("RINGWISE_").split("__"))
            .extract()
            .map_err(Box::new)
    }

    /// This configuration with everything it writes under `dir`: the SQLite store
    /// (`ringwise.db`), the vector and lexical indexes, and the data folder (recordings, keys).
    /// What an evaluation, a benchmark or a test runs on, apart from the user's data.
    pub fn with_data_in(mut self, dir: &Path) -> Self {
        self.retrieval.database_url = format!("sqlite://{}", dir.join("ringwise.db").display());
        self.retrieval.index_dir = dir.join("index");
        self.retrieval.lexical_dir = dir.join("lexical");
        self.dialog.data_dir = dir.join("data");
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the closure's error type.
    fn file_then_env_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "ringwise.toml",
                "[llm]\nthreads = 3\n[voice]\nvad_hangover_ms = 450\n",
            )?;
            jail.set_env("RINGWISE_LLM__THREADS", "1");
            let c = Config::load(Some(Path::new("ringwise.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.llm.threads, 1);
            assert_eq!(c.voice.vad_hangover_ms, 450);
            assert_eq!(c.server.listen, ServerConfig::default().listen);
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn dialer_defaults_come_from_the_config_and_a_campaign_overrides_them() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "ringwise.toml",
                "[dialer]\nmax_attempts = 5\n[dialer.window]\nopen = \"09:00\"\nclose = \"20:00\"\n[dialer.regions.\"杭州\"]\nopen = \"10:00\"\nclose = \"18:00\"\n",
            )?;
            let c = Config::load(Some(Path::new("ringwise.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(c.dialer.max_attempts, 5);
            let spec = crate::campaign::CampaignSpec::parse_over(
                "id: c1\nname: C1\ndialer:\n  max_attempts: 2\n",
                &c.dialer,
            )
            .map_err(|e| e.to_string())?;
            // The campaign's key wins; the rest is the call centre's.
            assert_eq!(spec.dialer.max_attempts, 2);
            assert_eq!(spec.dialer.window, c.dialer.window);
            assert!(spec.dialer.regions.contains_key("杭州"));
            let plain = crate::campaign::CampaignSpec::parse_over("id: c2\nname: C2\n", &c.dialer)
                .map_err(|e| e.to_string())?;
            assert_eq!(plain.dialer, c.dialer);
            // A mistake in the campaign still names its line.
            let bad = crate::campaign::CampaignSpec::parse_over(
                "id: c3\nname: C3\ndialer:\n  max_attempts: many\n",
                &c.dialer,
            )
            .unwrap_err()
            .to_string();
            assert!(bad.contains("line 4"), "{bad}");
            Ok(())
        });
    }

    #[test]
    fn missing_file_is_an_error() {
        assert!(Config::load(Some(Path::new("/nonexistent/ringwise.toml"))).is_err());
    }
}
