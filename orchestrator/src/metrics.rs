//! Prometheus metrics of calls, turns, per-stage latencies, errors and the dialer ([`Metrics`]),
//! and the tiny HTTP endpoint serving them at `GET /metrics` ([`serve_metrics`]).
//!
//! Built on `prometheus-client`, the Prometheus project's own Rust client: OpenMetrics text
//! output, typed label sets, no protobuf dependency (the older `prometheus` crate pulls one in by
//! default). The endpoint is plain hyper 1 over hyper-util, both already compiled for tonic.
//!
//! Labels never carry a phone number, a customer id or any other per-person value: `stage` is a
//! closed set ([`STAGES`]), and the free-form `outcome` and `kind` labels keep only values made of
//! lowercase letters and `_` (at most 32 characters, no digits) and at most [`MAX_LABEL_VALUES`]
//! distinct values each; anything else is counted as `other`. That also bounds the number of
//! series a scrape returns.
//!
//! Metric names (`ringwise_` prefix): `calls_started_total`, `calls_ended_total{outcome}`,
//! `active_calls`, `turns_total`, `stage_latency_seconds{stage}` (histogram),
//! `barge_ins_total`, `errors_total{kind}`, `dialer_queue_depth`, `live_lines`,
//! `handoffs_total{abandoned}`.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The pipeline stages whose latency [`Metrics::observe_stage`] records: VAD end-of-speech
/// detection, the final ASR result, the dialogue turn, the first TTS audio, and voice to voice
/// (end of caller speech → first bot audio frame on the wire).
pub const STAGES: [&str; 5] = [
    "vad_endpoint",
    "asr_final",
    "dialog",
    "tts_first_audio",
    "v2v",
];

/// Distinct values kept per free-form label (`outcome`, `kind`); later ones count as `other`.
pub const MAX_LABEL_VALUES: usize = 32;

/// Latency buckets in seconds: 10 ms to 5 s, with edges at the product's targets (150 ms
/// barge-in stop, 450 / 800 / 1200 ms voice to voice).
const LATENCY_BUCKETS_S: [f64; 17] = [
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0,
];

type Label = [(&'static str, String); 1];
type StaticLabel = [(&'static str, &'static str); 1];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_S)
}

/// The product's metrics. Cheap to clone (an `Arc` inside); every method takes `&self` and is
/// safe to call from any thread.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    calls_started: Counter,
    calls_ended: Family<Label, Counter>,
    active_calls: Gauge,
    turns: Counter,
    stage_latency: Family<StaticLabel, Histogram, fn() -> Histogram>,
    barge_ins: Counter,
    errors: Family<Label, Counter>,
    dialer_queue_depth: Gauge,
    live_lines: Gauge,
    handoffs: Family<StaticLabel, Counter>,
    outcomes_seen: LabelValues,
    kinds_seen: LabelValues,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, all zero, in its own registry.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ringwise");
        let calls_started = Counter::default();
        let calls_ended = Family::<Label, Counter>::default();
        let active_calls = Gauge::default();
        let turns = Counter::default();
        let stage_latency =
            Family::<StaticLabel, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        let barge_ins = Counter::default();
        let errors = Family::<Label, Counter>::default();
        let dialer_queue_depth = Gauge::default();
        let live_lines = Gauge::default();
        let handoffs = Family::<StaticLabel, Counter>::default();

        registry.register("calls_started", "Calls started", calls_started.clone());
        registry.register(
            "calls_ended",
            "Calls ended, by outcome",
            calls_ended.clone(),
        );
        registry.register("active_calls", "Calls in progress", active_calls.clone());
        registry.register("turns", "Dialogue turns answered", turns.clone());
        registry.register_with_unit(
            "stage_latency",
            "Latency of a call pipeline stage",
            Unit::Seconds,
            stage_latency.clone(),
        );
        registry.register(
            "barge_ins",
            "Bot replies cut short by caller speech",
            barge_ins.clone(),
        );
        registry.register("errors", "Errors, by kind", errors.clone());
        registry.register(
            "dialer_queue_depth",
            "Customers waiting in the dialer's queue",
            dialer_queue_depth.clone(),
        );
        registry.register(
            "live_lines",
            "Lines the dialer may use now",
            live_lines.clone(),
        );
        registry.register(
            "handoffs",
            "Hand-offs to a human agent, by whether the caller was abandoned",
            handoffs.clone(),
        );

        Metrics {
            inner: Arc::new(Inner {
                registry,
                calls_started,
                calls_ended,
                active_calls,
                turns,
                stage_latency,
                barge_ins,
                errors,
                dialer_queue_depth,
                live_lines,
                handoffs,
                outcomes_seen: LabelValues::default(),
                kinds_seen: LabelValues::default(),
            }),
        }
    }

    /// A call started: counts it and raises `active_calls`. Pair with [`Metrics::call_ended`].
    pub fn call_started(&self) {
        self.inner.calls_started.inc();
        self.inner.active_calls.inc();
    }

    /// A call ended with `outcome` (e.g. `converted`, `refused`, `handoff`, `no_answer`): counts
    /// it and lowers `active_calls`.
    pub fn call_ended(&self, outcome: &str) {
        let outcome = self.inner.outcomes_seen.admit(outcome);
        self.inner
            .calls_ended
            .get_or_create(&[("outcome", outcome)])
            .inc();
        self.inner.active_calls.dec();
    }

    /// One dialogue turn answered.
    pub fn turn(&self) {
        self.inner.turns.inc();
    }

    /// A latency of `ms` milliseconds for `stage`, one of [`STAGES`] (any other name is recorded
    /// as `other`).
    pub fn observe_stage(&self, stage: &str, ms: f64) {
        let stage = STAGES
            .iter()
            .copied()
            .find(|s| *s == stage)
            .unwrap_or("other");
        self.inner
            .stage_latency
            .get_or_create(&[("stage", stage)])
            .observe(ms / 1e3);
    }

    /// Caller speech cut a bot reply short.
    pub fn barge_in(&self) {
        self.inner.barge_ins.inc();
    }

    /// An error of `kind` (e.g. `asr`, `tts`, `llm`, `store`, `transport`).
    pub fn error(&self, kind: &str) {
        let kind = self.inner.kinds_seen.admit(kind);
        self.inner.errors.get_or_create(&[("kind", kind)]).inc();
    }

    /// Customers waiting in the dialer's queue now.
    pub fn set_dialer_queue_depth(&self, n: usize) {
        self.inner.dialer_queue_depth.set(saturating_i64(n));
    }

    /// Lines the dialer may use now (bounded by configured lines and available agents).
    pub fn set_live_lines(&self, n: usize) {
        self.inner.live_lines.set(saturating_i64(n));
    }

    /// A hand-off to a human agent; `abandoned` when no agent took it in time.
    pub fn handoff(&self, abandoned: bool) {
        let value = if abandoned { "true" } else { "false" };
        self.inner
            .handoffs
            .get_or_create(&[("abandoned", value)])
            .inc();
    }

    /// All metrics in the OpenMetrics text format (ends with `# EOF`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.inner.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

fn saturating_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The values a free-form label has taken, to cap their number.
#[derive(Default)]
struct LabelValues {
    seen: Mutex<HashSet<String>>,
}

impl LabelValues {
    /// `value` if it is a safe label value (lowercase letters and `_`, 1–32 characters) and one
    /// of the first [`MAX_LABEL_VALUES`] distinct ones, else `other`.
    fn admit(&self, value: &str) -> String {
        let safe = (1..=32).contains(&value.len())
            && value.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        if !safe {
            return "other".into();
        }
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.contains(value) || seen.len() < MAX_LABEL_VALUES {
            seen.insert(value.to_owned());
            value.to_owned()
        } else {
            "other".into()
        }
    }
}

/// Connections served at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 32;

/// Serves `GET /metrics` (OpenMetrics text) on `listener` until `shutdown` fires; any other path
/// answers 404, another method on `/metrics` 405. HTTP/1.1 only. Bind it to an address that only
/// the monitoring system reaches: the endpoint has no authentication (it holds no personal data).
pub async fn serve_metrics(
    metrics: Metrics,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "metrics endpoint listening");
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little instead of spinning.
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        if connections.len() >= MAX_CONNECTIONS {
            tracing::debug!("metrics endpoint: too many connections, closing a new one");
            continue;
        }
        let metrics = metrics.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let response = respond(&metrics, &req);
                async move { Ok::<_, Infallible>(response) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10));
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "metrics endpoint: connection ended with an error");
            }
        });
    }
    while connections.join_next().await.is_some() {}
    Ok(())
}

fn respond<B>(metrics: &Metrics, req: &http::Request<B>) -> http::Response<String> {
    let mut response = http::Response::new(String::new());
    if req.uri().path() != "/metrics" {
        *response.status_mut() = http::StatusCode::NOT_FOUND;
        *response.body_mut() = "not found: metrics are at /metrics\n".into();
    } else if req.method() != http::Method::GET {
        *response.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
        response
            .headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static("GET"));
    } else {
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ),
        );
        *response.body_mut() = metrics.render();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn render_names_every_metric_after_observations() {
        let m = Metrics::new();
        m.call_started();
        m.call_started();
        m.call_ended("converted");
        m.turn();
        for stage in STAGES {
            m.observe_stage(stage, 320.0);
        }
        m.barge_in();
        m.error("asr");
        m.set_dialer_queue_depth(17);
        m.set_live_lines(4);
        m.handoff(false);
        m.handoff(true);
        let text = m.render();
        for needle in [
            "ringwise_calls_started_total 2",
            "ringwise_calls_ended_total{outcome=\"converted\"} 1",
            "ringwise_active_calls 1",
            "ringwise_turns_total 1",
            "ringwise_stage_latency_seconds_bucket{le=\"0.45\",stage=\"v2v\"} 1",
            "ringwise_stage_latency_seconds_bucket{le=\"0.3\",stage=\"v2v\"} 0",
            "ringwise_stage_latency_seconds_count{stage=\"vad_endpoint\"} 1",
            "ringwise_barge_ins_total 1",
            "ringwise_errors_total{kind=\"asr\"} 1",
            "ringwise_dialer_queue_depth 17",
            "ringwise_live_lines 4",
            "ringwise_handoffs_total{abandoned=\"true\"} 1",
            "ringwise_handoffs_total{abandoned=\"false\"} 1",
            "# EOF",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn labels_never_carry_numbers_or_unbounded_values() {
        let m = Metrics::new();
        m.call_ended("+15551234567");
        m.error("customer 4711");
        m.observe_stage("dialog:+15551234567", 10.0);
        for i in 0..(MAX_LABEL_VALUES + 5) {
            let kind: String = std::iter::repeat_n('a', i + 1).collect();
            m.error(&kind);
        }
        let text = m.render();
        assert!(
            !text.contains("5551234567") && !text.contains("4711"),
            "{text}"
        );
        assert!(
            text.contains("ringwise_calls_ended_total{outcome=\"other\"} 1"),
            "{text}"
        );
        assert!(text.contains("stage=\"other\""), "{text}");
        assert!(
            text.contains("ringwise_errors_total{kind=\"other\"} 6"),
            "{text}"
        );
        let kinds = text.matches("ringwise_errors_total{").count();
        assert_eq!(kinds, MAX_LABEL_VALUES + 1, "{text}");
    }

    async fn get(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<String> {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok(response)
    }

    #[tokio::test]
    async fn endpoint_serves_metrics_and_404s_other_paths() -> anyhow::Result<()> {
        let metrics = Metrics::new();
        metrics.turn();
        metrics.observe_stage("asr_final", 120.0);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve_metrics(metrics.clone(), listener, shutdown.clone()));

        let response = get(addr, "/metrics").await?;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(
            response.contains("application/openmetrics-text"),
            "{response}"
        );
        assert!(response.contains("ringwise_turns_total 1"), "{response}");
        assert!(
            response.contains("ringwise_stage_latency_seconds_count{stage=\"asr_final\"} 1"),
            "{response}"
        );

        let response = get(addr, "/nope").await?;
        assert!(response.starts_with("HTTP/1.1 404"), "{response}");

        shutdown.cancel();
        server.await??;
        Ok(())
    }
}
