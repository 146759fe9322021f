//! The gRPC server's tower stack: request tracing, authentication, load shedding over a
//! concurrency limit, and a per-request timeout, each refusal a proper gRPC status.
//!
//! [`edge_layers`] builds it for `tonic::transport::Server::builder().layer(..)`. A request
//! passes the layers in this order (a refusal answers at once; inner layers do not run):
//!
//! 1. [`GrpcTrace`]: a `grpc` span with `method` (the gRPC path) and `call_id` (the `x-call-id`
//!    header, when present and loggable), around everything below.
//! 2. [`ErrorStatus`]: turns errors from below into gRPC responses: tower's `Overloaded` becomes
//!    `RESOURCE_EXHAUSTED`. tonic's server would also map `Overloaded` (to "Too many active
//!    requests for the connection", wrong for a server-wide limit) but not other errors, and a
//!    stack that answers in gRPC on its own can be tested without a server.
//! 3. [`AuthLayer`](crate::auth::AuthLayer): `UNAUTHENTICATED`, else the [`Role`](crate::auth::Role)
//!    in the request's extensions. It sits outside the limit so that unauthenticated traffic is
//!    refused even when the server is full.
//! 4. `LoadShed` + `ConcurrencyLimit` (one semaphore for the whole server, however many
//!    connections): a request that finds all `max_concurrent_requests` slots taken is refused
//!    with `RESOURCE_EXHAUSTED` at once instead of queueing.
//! 5. [`UnaryTimeout`]: `DEADLINE_EXCEEDED` after `request_timeout_s`, except for the methods in
//!    `untimed_methods`.
//!
//! What the limit and the timeout cover: tower sees a request until its handler returns the
//! response *head*. A streaming response body (the bot's side of the `Call` stream) is sent after
//! that, so a live call holds no slot and no timer: the number of live calls is bounded by the
//! dialer's lines, not here. A method whose handler awaits its request stream before answering
//! (client streaming, or a bidirectional method that reads the first message before returning)
//! must be listed in `untimed_methods`, else the timeout cuts it. A client's own `grpc-timeout`
//! is applied by tonic's server in any case.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tonic::Status;
use tower::limit::{ConcurrencyLimit, GlobalConcurrencyLimitLayer};
use tower::load_shed::{LoadShed, LoadShedLayer};
use tower::{BoxError, Layer, Service, ServiceBuilder};
use tracing::Instrument;

use crate::auth::{AuthLayer, AuthService, BoxResponseFuture};

/// `[server]` keys of the edge stack (the lead may flatten this into `ServerConfig`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EdgeConfig {
    /// Requests served at once, server-wide; one more is refused with `RESOURCE_EXHAUSTED`.
    /// Default 64.
    pub max_concurrent_requests: usize,
    /// Seconds a request may take until its response starts, else `DEADLINE_EXCEEDED`;
    /// 0 turns the timeout off. Default 30.
    pub request_timeout_s: u64,
    /// gRPC paths the timeout skips: streaming methods whose handler waits on the client.
    /// An entry ending in `/` names a whole service. Default: the `Call` and `Transcribe` streams.
    pub untimed_methods: Vec<String>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            max_concurrent_requests: 64,
            request_timeout_s: 30,
            untimed_methods: vec![
                "/ringwise.v1.Orchestrator/Call".into(),
                "/ringwise.v1.Orchestrator/Transcribe".into(),
            ],
        }
    }
}

/// The whole edge stack as one layer; see the module docs for the order.
#[derive(Debug, Clone)]
pub struct EdgeLayer {
    auth: AuthLayer,
    limit: usize,
    slots: Arc<Semaphore>,
    timeout: UnaryTimeoutLayer,
}

/// Builds the edge stack: `Server::builder().layer(edge_layers(&config, auth))`. Replace
/// tonic's own `Server::timeout` with it (tonic maps its timeout to `CANCELLED`). The
/// concurrency limit is one semaphore shared by every service the layer wraps.
pub fn edge_layers(config: &EdgeConfig, auth: AuthLayer) -> EdgeLayer {
    let limit = config.max_concurrent_requests.max(1);
    EdgeLayer {
        auth,
        limit,
        slots: Arc::new(Semaphore::new(limit)),
        timeout: UnaryTimeoutLayer::new(
            (config.request_timeout_s > 0).then(|| Duration::from_secs(config.request_timeout_s)),
            config.untimed_methods.clone(),
        ),
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = GrpcTrace<ErrorStatus<AuthService<LoadShed<ConcurrencyLimit<UnaryTimeout<S>>>>>>;

    fn layer(&self, inner: S) -> Self::Service {
        ServiceBuilder::new()
            .layer(GrpcTraceLayer)
            .layer(ErrorStatusLayer { limit: self.limit })
            .layer(self.auth.clone())
            .layer(LoadShedLayer::new())
            .layer(GlobalConcurrencyLimitLayer::with_semaphore(
                self.slots.clone(),
            ))
            .layer(self.timeout.clone())
            .service(inner)
    }
}

/// Layer of [`GrpcTrace`].
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcTraceLayer;

impl<S> Layer<S> for GrpcTraceLayer {
    type Service = GrpcTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcTrace { inner }
    }
}

/// Runs each request in a `grpc` span carrying `method` and `call_id`, and logs (debug) how long
/// it took to its response head and the gRPC status when the response is an immediate error.
#[derive(Debug, Clone)]
pub struct GrpcTrace<S> {
    inner: S,
}

/// The request header whose value tags a request's span with a call id.
pub const CALL_ID_HEADER: &str = "x-call-id";

/// The `x-call-id` value if it is safe to log: at most 64 characters from `[A-Za-z0-9._:-]`,
/// and not a bare number (digits and separators only), which might be a phone number.
pub fn loggable_call_id(value: &http::HeaderValue) -> Option<&str> {
    let s = value.to_str().ok()?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    let numeric = s
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | ':' | '-'));
    (!s.is_empty() && s.len() <= 64 && s.chars().all(allowed) && !numeric).then_some(s)
}

impl<S, B, ResBody> Service<http::Request<B>> for GrpcTrace<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxResponseFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let span = tracing::info_span!(
            "grpc",
            method = req.uri().path(),
            call_id = tracing::field::Empty
        );
        if let Some(id) = req.headers().get(CALL_ID_HEADER) {
            span.record("call_id", loggable_call_id(id).unwrap_or("<unloggable>"));
        }
        let start = Instant::now();
        let future = span.in_scope(|| self.inner.call(req));
        Box::pin(
            async move {
                let result = future.await;
                let elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
                match &result {
                    Ok(resp) => match Status::from_header_map(resp.headers()) {
                        Some(status) => tracing::debug!(
                            elapsed_ms,
                            grpc_status = ?status.code(),
                            "request answered with an error"
                        ),
                        None => tracing::debug!(elapsed_ms, "response started"),
                    },
                    Err(_) => tracing::debug!(elapsed_ms, "request failed below the edge"),
                }
                result
            }
            .instrument(span),
        )
    }
}

/// Layer of [`ErrorStatus`].
#[derive(Debug, Clone, Copy)]
pub struct ErrorStatusLayer {
    /// The concurrency limit, quoted in the `RESOURCE_EXHAUSTED` message.
    pub limit: usize,
}

impl<S> Layer<S> for ErrorStatusLayer {
    type Service = ErrorStatus<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ErrorStatus {
            inner,
            limit: self.limit,
        }
    }
}

/// Answers errors of the services below with gRPC statuses: `Overloaded` (load shedding) →
/// `RESOURCE_EXHAUSTED`, a `tonic::Status` → itself, anything else → `INTERNAL` (logged; its
/// text is not sent to the client).
#[derive(Debug, Clone)]
pub struct ErrorStatus<S> {
    inner: S,
    limit: usize,
}

impl<S, B, ResBody> Service<http::Request<B>> for ErrorStatus<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxResponseFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let future = self.inner.call(req);
        let limit = self.limit;
        Box::pin(async move {
            match future.await {
                Ok(resp) => Ok(resp),
                Err(err) => Ok(status_for(err.into(), limit).into_http()),
            }
        })
    }
}

fn status_for(err: BoxError, limit: usize) -> Status {
    if err.is::<tower::load_shed::error::Overloaded>() {
        tracing::debug!("request shed: every request slot is taken");
        return Status::resource_exhausted(format!(
            "server busy: all {limit} request slots are in use; retry with backoff"
        ));
    }
    match Status::try_from_error(err) {
        Ok(status) => status,
        Err(err) => {
            tracing::warn!(error = %err, "request failed at the gRPC edge");
            Status::internal("internal error at the server edge")
        }
    }
}

/// Layer of [`UnaryTimeout`].
#[derive(Debug, Clone)]
pub struct UnaryTimeoutLayer {
    timeout: Option<Duration>,
    untimed: Arc<[String]>,
}

impl UnaryTimeoutLayer {
    /// `timeout` for every path but `untimed` ones (exact paths, or prefixes ending in `/`);
    /// `None` turns it off.
    pub fn new(timeout: Option<Duration>, untimed: Vec<String>) -> Self {
        Self {
            timeout,
            untimed: untimed.into(),
        }
    }
}

impl<S> Layer<S> for UnaryTimeoutLayer {
    type Service = UnaryTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        UnaryTimeout {
            inner,
            layer: self.clone(),
        }
    }
}

/// Answers `DEADLINE_EXCEEDED` when a request's response has not started within the timeout,
/// dropping the handler's future. Paths listed as untimed are passed through.
#[derive(Debug, Clone)]
pub struct UnaryTimeout<S> {
    inner: S,
    layer: UnaryTimeoutLayer,
}

impl<S, B, ResBody> Service<http::Request<B>> for UnaryTimeout<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxResponseFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path();
        let untimed = self.layer.untimed.iter().any(|m| {
            if m.ends_with('/') {
                path.starts_with(m.as_str())
            } else {
                path == m
            }
        });
        let timeout = match self.layer.timeout {
            Some(t) if !untimed => t,
            _ => return Box::pin(self.inner.call(req)),
        };
        let future = self.inner.call(req);
        Box::pin(async move {
            match tokio::time::timeout(timeout, future).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::info!(timeout_ms = timeout.as_millis(), "request timed out");
                    Ok(Status::deadline_exceeded(format!(
                        "the server's limit of {} ms for this request was reached",
                        timeout.as_millis()
                    ))
                    .into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{require, AuthConfig, Role, SecretToken, TokenEntry};
    use std::convert::Infallible;
    use tokio::sync::Notify;
    use tonic::codegen::http::uri::PathAndQuery;
    use tower::ServiceExt;

    const TOKEN: &str = "operator-token-0123456789";

    fn auth() -> AuthLayer {
        let config = AuthConfig {
            tokens: vec![TokenEntry {
                role: Role::Operator,
                token: Some(SecretToken::new(TOKEN)),
                token_env: None,
            }],
            allow_anonymous_as: None,
        };
        AuthLayer::from_config(&config).expect("valid auth config")
    }

    fn request(path: &str) -> http::Request<()> {
        http::Request::builder()
            .uri(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(())
            .expect("request")
    }

    fn code(resp: &http::Response<String>) -> Option<tonic::Code> {
        Status::from_header_map(resp.headers()).map(|s| s.code())
    }

    #[tokio::test]
    async fn a_saturated_service_answers_resource_exhausted() {
        let release = Arc::new(Notify::new());
        let config = EdgeConfig {
            max_concurrent_requests: 1,
            ..EdgeConfig::default()
        };
        let svc = edge_layers(&config, auth()).layer(tower::service_fn({
            let release = release.clone();
            move |_req: http::Request<()>| {
                let release = release.clone();
                async move {
                    release.notified().await;
                    Ok::<_, Infallible>(http::Response::new("done".to_owned()))
                }
            }
        }));

        // The first request takes the only slot and waits inside the handler.
        let mut first = svc.clone();
        let first = first
            .ready()
            .await
            .expect("ready")
            .call(request("/t.S/Hold"));
        let first = tokio::spawn(first);
        tokio::task::yield_now().await;

        let resp = svc
            .clone()
            .oneshot(request("/t.S/Other"))
            .await
            .expect("answered");
        assert_eq!(code(&resp), Some(tonic::Code::ResourceExhausted));

        release.notify_one();
        let resp = first.await.expect("join").expect("answered");
        assert_eq!(code(&resp), None);
        assert_eq!(resp.body(), "done");

        // The slot is free again.
        release.notify_one();
        let resp = svc.oneshot(request("/t.S/Again")).await.expect("answered");
        assert_eq!(resp.body(), "done");
    }

    #[tokio::test]
    async fn timeout_answers_deadline_exceeded_except_for_untimed_methods() {
        let layer = UnaryTimeoutLayer::new(
            Some(Duration::from_millis(50)),
            vec!["/t.S/Stream".into(), "/t.Live/".into()],
        );
        let svc = layer.layer(tower::service_fn(|req: http::Request<()>| async move {
            if req.uri().path() != "/t.S/Unary" {
                tokio::time::sleep(Duration::from_millis(200)).await;
                return Ok::<_, Infallible>(http::Response::new("streaming".to_owned()));
            }
            std::future::pending::<()>().await;
            Ok(http::Response::new(String::new()))
        }));
        let resp = svc
            .clone()
            .oneshot(request("/t.S/Unary"))
            .await
            .expect("ok");
        assert_eq!(code(&resp), Some(tonic::Code::DeadlineExceeded));
        for path in ["/t.S/Stream", "/t.Live/Any"] {
            let resp = svc.clone().oneshot(request(path)).await.expect("ok");
            assert_eq!(code(&resp), None, "{path}");
            assert_eq!(resp.body(), "streaming");
        }
    }

    #[test]
    fn call_ids_are_logged_only_when_safe() {
        let hv = |s: &'static str| http::HeaderValue::from_static(s);
        let uuid = hv("3f2b8c1e-9d4a-4e7b-8c2f-1a2b3c4d5e6f");
        assert_eq!(loggable_call_id(&uuid), uuid.to_str().ok());
        assert_eq!(loggable_call_id(&hv("call-42")), Some("call-42"));
        assert_eq!(loggable_call_id(&hv("15551234567")), None);
        assert_eq!(loggable_call_id(&hv("555-123-4567")), None);
        assert_eq!(loggable_call_id(&hv("+15551234567")), None);
        assert_eq!(loggable_call_id(&hv("a b")), None);
        assert_eq!(loggable_call_id(&hv("")), None);
    }

    /// A hand-written gRPC service (no generated code) for the in-process server test.
    #[derive(Clone)]
    struct TestService {
        started: Arc<Notify>,
        release: Arc<Notify>,
    }

    impl tonic::server::NamedService for TestService {
        const NAME: &'static str = "test.Edge";
    }

    impl Service<http::Request<tonic::body::Body>> for TestService {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = BoxResponseFuture<Self::Response, Infallible>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
            let (started, release) = (self.started.clone(), self.release.clone());
            let hold = req.uri().path() == "/test.Edge/Hold";
            let handler = tower::service_fn(move |req: tonic::Request<String>| {
                let (started, release) = (started.clone(), release.clone());
                async move {
                    let role = require(req.extensions(), &[Role::Operator])?;
                    if hold {
                        started.notify_one();
                        release.notified().await;
                    }
                    Ok::<_, Status>(tonic::Response::new(role.to_string()))
                }
            });
            Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.unary(handler, req).await)
            })
        }
    }

    async fn unary(
        channel: &tonic::transport::Channel,
        path: &'static str,
        token: Option<&str>,
    ) -> Result<String, Status> {
        let mut client = tonic::client::Grpc::new(channel.clone());
        client
            .ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let mut req = tonic::Request::new(String::from("hi"));
        req.metadata_mut()
            .insert(CALL_ID_HEADER, "call-7".parse().expect("ascii"));
        if let Some(t) = token {
            let value = format!("Bearer {t}").parse().expect("ascii");
            req.metadata_mut().insert("authorization", value);
        }
        let codec = tonic_prost::ProstCodec::<String, String>::default();
        let resp = client
            .unary(req, PathAndQuery::from_static(path), codec)
            .await?;
        Ok(resp.into_inner())
    }

    /// The edge stack in a real tonic server on 127.0.0.1 with a real client.
    #[tokio::test]
    async fn in_process_server_answers_grpc_statuses() -> anyhow::Result<()> {
        let service = TestService {
            started: Arc::new(Notify::new()),
            release: Arc::new(Notify::new()),
        };
        let config = EdgeConfig {
            max_concurrent_requests: 1,
            ..EdgeConfig::default()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .layer(edge_layers(&config, auth()))
                .add_service(service.clone())
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    shutdown.clone().cancelled_owned(),
                ),
        );
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
            .connect()
            .await?;

        assert_eq!(
            unary(&channel, "/test.Edge/Who", Some(TOKEN)).await?,
            "operator"
        );
        let err = unary(&channel, "/test.Edge/Who", None)
            .await
            .expect_err("no token");
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        let err = unary(&channel, "/test.Edge/Who", Some("wrong-token-0123456789"))
            .await
            .expect_err("wrong token");
        assert_eq!(err.code(), tonic::Code::Unauthenticated);

        // One slot: while a request holds it, the next is shed at once.
        let held = tokio::spawn({
            let channel = channel.clone();
            async move { unary(&channel, "/test.Edge/Hold", Some(TOKEN)).await }
        });
        service.started.notified().await;
        let err = unary(&channel, "/test.Edge/Who", Some(TOKEN))
            .await
            .expect_err("server full");
        assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
        assert!(err.message().contains("request slots"), "{err:?}");
        service.release.notify_one();
        assert_eq!(held.await??, "operator");
        assert_eq!(
            unary(&channel, "/test.Edge/Who", Some(TOKEN)).await?,
            "operator"
        );

        shutdown.cancel();
        server.await??;
        Ok(())
    }
}
