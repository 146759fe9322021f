//! Bearer-token authentication and roles at the gRPC edge: an [`AuthLayer`] (tower) maps
//! `authorization: Bearer <token>` to a [`Role`] in the request's extensions, [`require`] checks it.
//!
//! Tokens come from the config file or, better, from environment variables named there
//! ([`TokenEntry::token_env`]). They are kept only as SHA-256 digests, compared in constant time,
//! removed from the request before it reaches a handler, and never printed: not by `Debug`, not
//! when the config is serialized, not in logs (the layer logs the role and the path only).
//!
//! Open paths, served without a token: the standard health service (`/grpc.health.v1.Health/…`,
//! probed by load balancers) and server reflection (`/grpc.reflection.…`, the API's schema, no
//! data), so `grpcurl` can list the API.
//!
//! A server with no token configured refuses to start ([`AuthConfigError::NoTokens`]) unless the
//! development setting [`AuthConfig::allow_anonymous_as`] names the role that requests without an
//! `authorization` header get. Failing closed was chosen over "open when unconfigured" because a
//! forgotten `[server.auth]` section would otherwise publish recordings and customer data.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::Status;

/// Who a caller of the API is. Each bearer token maps to one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Runs campaigns: creates, starts, pauses and stops them, and lists and reads calls.
    Operator,
    /// Quality assurance: reads calls, transcripts and grades; never raw audio.
    Qa,
    /// QA lead: everything `qa` may do, plus raw call recordings.
    #[serde(alias = "qa_admin")]
    QaAdmin,
    /// Everything, including customer import and erase and the number of human agents.
    Admin,
}

/// One thing the API lets a caller do; [`Permission::roles`] says who may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Create, start, pause, resume and stop campaigns, and read their status.
    ManageCampaigns,
    /// List calls and read a call's record (outcome, timings, actions).
    ReadCalls,
    /// Read a call's transcript.
    ReadTranscripts,
    /// Read a call's QA grade.
    ReadGrades,
    /// Download a call's raw audio recording.
    ReadRawAudio,
    /// Read a customer's profile (masked fields).
    ReadCustomers,
    /// Import customers from a CRM export.
    ImportCustomers,
    /// Erase a customer and everything stored about them.
    EraseCustomers,
    /// Set the number of human agents available for hand-offs.
    SetAgents,
}

impl Permission {
    /// The roles that hold this permission. `Admin` holds every one.
    pub fn roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            Permission::ManageCampaigns => &[Operator, Admin],
            Permission::ReadCalls => &[Operator, Qa, QaAdmin, Admin],
            Permission::ReadTranscripts | Permission::ReadGrades => &[Qa, QaAdmin, Admin],
            Permission::ReadRawAudio => &[QaAdmin, Admin],
            Permission::ReadCustomers
            | Permission::ImportCustomers
            | Permission::EraseCustomers
            | Permission::SetAgents => &[Admin],
        }
    }
}

impl Role {
    /// Every role, least privileged first.
    pub const ALL: [Role; 4] = [Role::Operator, Role::Qa, Role::QaAdmin, Role::Admin];

    /// The role's name as written in the config (`operator`, `qa`, `qa-admin`, `admin`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Qa => "qa",
            Role::QaAdmin => "qa-admin",
            Role::Admin => "admin",
        }
    }

    /// Whether this role holds `permission`.
    pub fn may(self, permission: Permission) -> bool {
        permission.roles().contains(&self)
    }

    /// Whether this role may download raw call audio (`qa-admin` and `admin` only).
    pub fn may_read_raw_audio(self) -> bool {
        self.may(Permission::ReadRawAudio)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The role an authenticated request was given, or a gRPC status to return: `UNAUTHENTICATED`
/// when the request carries no role (the [`AuthLayer`] is missing or the path is an open one),
/// `PERMISSION_DENIED` naming the roles that would do when the role is not in `allowed`.
///
/// Handlers call it with `request.extensions()` (tonic's `Extensions` is `http::Extensions`).
pub fn require(request_extensions: &http::Extensions, allowed: &[Role]) -> Result<Role, Status> {
    let Some(role) = request_extensions.get::<Role>().copied() else {
        return Err(Status::unauthenticated(
            "this call needs a bearer token: send `authorization: Bearer <token>` metadata",
        ));
    };
    if allowed.contains(&role) {
        return Ok(role);
    }
    let needed = allowed
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    Err(Status::permission_denied(format!(
        "role `{role}` may not make this call; it needs one of: {needed}"
    )))
}

/// [`require`] for one [`Permission`].
pub fn require_permission(
    request_extensions: &http::Extensions,
    permission: Permission,
) -> Result<Role, Status> {
    require(request_extensions, permission.roles())
}

/// A bearer token read from the config file. `Debug` and `Serialize` print `<redacted>`, so a
/// logged or dumped config (`ringwise config`) never shows it.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct SecretToken(String);

impl SecretToken {
    /// Wraps a token (tests and programmatic configs).
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for SecretToken {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("<redacted>")
    }
}

/// One accepted token and the role it grants: exactly one of `token` (in the file) or
/// `token_env` (the name of an environment variable holding it, so it stays out of the file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// The role this token grants.
    pub role: Role,
    /// The token itself. Prefer `token_env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<SecretToken>,
    /// Name of an environment variable holding the token, e.g. `RINGWISE_ADMIN_TOKEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
}

/// `[server.auth]`: who may call the API.
///
/// ```toml
/// [server.auth]
/// tokens = [
///   { role = "admin", token_env = "RINGWISE_ADMIN_TOKEN" },
///   { role = "qa", token_env = "RINGWISE_QA_TOKEN" },
/// ]
/// # allow_anonymous_as = "operator"   # development only: no header → this role
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Accepted tokens and their roles. Each token is at least [`MIN_TOKEN_LEN`] characters and
    /// grants one role.
    pub tokens: Vec<TokenEntry>,
    /// Development only: requests without an `authorization` header get this role instead of
    /// `UNAUTHENTICATED` (a wrong token is still refused). Without it, a server with no tokens
    /// refuses to start. Default: none.
    pub allow_anonymous_as: Option<Role>,
}

/// The shortest token accepted (e.g. `openssl rand -hex 32` gives 64 characters).
pub const MIN_TOKEN_LEN: usize = 16;

/// Why an [`AuthConfig`] cannot be used. Messages never contain a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    /// No token configured and no `allow_anonymous_as`.
    #[error(
        "no API token configured: add [[server.auth.tokens]] entries ({{ role = \"admin\", \
         token_env = \"RINGWISE_ADMIN_TOKEN\" }}), or set server.auth.allow_anonymous_as for \
         development"
    )]
    NoTokens,
    /// An entry has both or neither of `token` and `token_env`.
    #[error(
        "server.auth.tokens[{index}] (role {role}): give exactly one of `token` or `token_env`"
    )]
    TokenSource {
        /// Position in `tokens`.
        index: usize,
        /// The entry's role.
        role: Role,
    },
    /// `token_env` names a variable that is unset or empty.
    #[error(
        "server.auth.tokens[{index}] (role {role}): environment variable {var} is unset or empty"
    )]
    MissingEnv {
        /// Position in `tokens`.
        index: usize,
        /// The entry's role.
        role: Role,
        /// The variable's name.
        var: String,
    },
    /// The token is shorter than [`MIN_TOKEN_LEN`].
    #[error(
        "server.auth.tokens[{index}] (role {role}): token is shorter than {MIN_TOKEN_LEN} \
         characters; generate one with `openssl rand -hex 32`"
    )]
    TooShort {
        /// Position in `tokens`.
        index: usize,
        /// The entry's role.
        role: Role,
    },
    /// Two entries carry the same token.
    #[error("server.auth.tokens[{index}] (role {role}) repeats the token of entry {first}")]
    Duplicate {
        /// Position of the repeat.
        index: usize,
        /// Its role.
        role: Role,
        /// Position of the first entry with this token.
        first: usize,
    },
}

/// The checked token table shared by every clone of the layer.
struct Authenticator {
    /// SHA-256 of each token with its role; comparing fixed-length digests hides token lengths.
    digests: Vec<([u8; 32], Role)>,
    anonymous: Option<Role>,
}

impl Authenticator {
    fn new(
        config: &AuthConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, AuthConfigError> {
        let mut digests: Vec<([u8; 32], Role)> = Vec::with_capacity(config.tokens.len());
        for (index, entry) in config.tokens.iter().enumerate() {
            let role = entry.role;
            let token = match (&entry.token, &entry.token_env) {
                (Some(t), None) => t.0.trim().to_owned(),
                (None, Some(var)) => env(var)
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| AuthConfigError::MissingEnv {
                        index,
                        role,
                        var: var.clone(),
                    })?,
                _ => return Err(AuthConfigError::TokenSource { index, role }),
            };
            if token.chars().count() < MIN_TOKEN_LEN {
                return Err(AuthConfigError::TooShort { index, role });
            }
            let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            if let Some(first) = digests.iter().position(|(d, _)| *d == digest) {
                return Err(AuthConfigError::Duplicate { index, role, first });
            }
            digests.push((digest, role));
        }
        if digests.is_empty() && config.allow_anonymous_as.is_none() {
            return Err(AuthConfigError::NoTokens);
        }
        Ok(Self {
            digests,
            anonymous: config.allow_anonymous_as,
        })
    }

    /// The role for a presented token. Every entry is compared, in constant time each.
    fn role_for(&self, token: &str) -> Option<Role> {
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found = None;
        for (digest, role) in &self.digests {
            if bool::from(digest.ct_eq(&presented)) {
                found = Some(*role);
            }
        }
        found
    }

    fn authenticate(&self, headers: &http::HeaderMap) -> Result<Role, Status> {
        let Some(value) = headers.get(http::header::AUTHORIZATION) else {
            return self.anonymous.ok_or_else(|| {
                Status::unauthenticated(
                    "missing bearer token: send `authorization: Bearer <token>` metadata",
                )
            });
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                Status::unauthenticated(
                    "malformed authorization metadata: expected `Bearer <token>`",
                )
            })?;
        self.role_for(token).ok_or_else(|| {
            Status::unauthenticated("unknown bearer token: check the token for this server")
        })
    }
}

/// Whether `path` is served without a token: health checks and server reflection.
pub fn is_open_path(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

/// tower layer authenticating every gRPC request (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<Authenticator>,
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("tokens", &self.auth.digests.len())
            .field("allow_anonymous_as", &self.auth.anonymous)
            .finish()
    }
}

impl AuthLayer {
    /// Checks `config`, reading `token_env` variables from the process environment. Fails when
    /// an entry is invalid, or when no token is configured and `allow_anonymous_as` is unset.
    pub fn from_config(config: &AuthConfig) -> Result<Self, AuthConfigError> {
        Self::from_config_with_env(config, |var| std::env::var(var).ok())
    }

    /// [`AuthLayer::from_config`] with `env` standing in for the environment.
    pub fn from_config_with_env(
        config: &AuthConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, AuthConfigError> {
        let auth = Authenticator::new(config, env)?;
        if let Some(role) = auth.anonymous {
            tracing::warn!(
                role = %role,
                "server.auth.allow_anonymous_as is set: requests without a token are served as \
                 this role (development only)"
            );
        }
        Ok(Self {
            auth: Arc::new(auth),
        })
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around the gRPC routes.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

/// Boxed response future of the edge services.
pub type BoxResponseFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B, ResBody> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Default + Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = BoxResponseFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if is_open_path(req.uri().path()) {
            return Box::pin(self.inner.call(req));
        }
        match self.auth.authenticate(req.headers()) {
            Ok(role) => {
                tracing::debug!(role = %role, path = req.uri().path(), "authenticated");
                // Handlers never see the token, so they cannot log it by accident.
                req.headers_mut().remove(http::header::AUTHORIZATION);
                req.extensions_mut().insert(role);
                Box::pin(self.inner.call(req))
            }
            Err(status) => {
                tracing::info!(
                    path = req.uri().path(),
                    reason = status.message(),
                    "request refused: unauthenticated"
                );
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, ServiceExt};

    const ADMIN: &str = "admin-token-0123456789abcdef";
    const QA: &str = "qa-token-0123456789abcdef";

    fn config() -> AuthConfig {
        AuthConfig {
            tokens: vec![
                TokenEntry {
                    role: Role::Admin,
                    token: None,
                    token_env: Some("TEST_ADMIN_TOKEN".into()),
                },
                TokenEntry {
                    role: Role::Qa,
                    token: Some(SecretToken::new(QA)),
                    token_env: None,
                },
            ],
            allow_anonymous_as: None,
        }
    }

    fn env(var: &str) -> Option<String> {
        (var == "TEST_ADMIN_TOKEN").then(|| ADMIN.to_owned())
    }

    /// Calls a service behind the layer that answers with the role it saw in a header.
    async fn call(
        layer: &AuthLayer,
        path: &str,
        authorization: Option<&str>,
    ) -> http::Response<String> {
        let svc = layer.layer(tower::service_fn(|req: http::Request<()>| async move {
            let role = req.extensions().get::<Role>().map(|r| r.as_str());
            assert!(req.headers().get(http::header::AUTHORIZATION).is_none());
            Ok::<_, std::convert::Infallible>(http::Response::new(
                role.unwrap_or("none").to_owned(),
            ))
        }));
        let mut req = http::Request::builder().uri(path);
        if let Some(a) = authorization {
            req = req.header(http::header::AUTHORIZATION, a);
        }
        let req = req.body(()).expect("request");
        svc.oneshot(req).await.expect("infallible")
    }

    fn code(resp: &http::Response<String>) -> Option<tonic::Code> {
        Status::from_header_map(resp.headers()).map(|s| s.code())
    }

    #[tokio::test]
    async fn tokens_map_to_roles() {
        let layer = AuthLayer::from_config_with_env(&config(), env).expect("valid config");
        let resp = call(&layer, "/ringwise.v1.X/Y", Some(&format!("Bearer {ADMIN}"))).await;
        assert_eq!(code(&resp), None);
        assert_eq!(resp.body(), "admin");
        let resp = call(&layer, "/ringwise.v1.X/Y", Some(&format!("bearer  {QA} "))).await;
        assert_eq!(resp.body(), "qa");
    }

    #[tokio::test]
    async fn wrong_missing_or_malformed_token_is_unauthenticated() {
        let layer = AuthLayer::from_config_with_env(&config(), env).expect("valid config");
        for auth in [
            Some("Bearer not-a-configured-token-at-all"),
            None,
            Some(ADMIN),
            Some("Basic YWRtaW46YWRtaW4="),
            Some("Bearer "),
        ] {
            let resp = call(&layer, "/ringwise.v1.X/Y", auth).await;
            assert_eq!(
                code(&resp),
                Some(tonic::Code::Unauthenticated),
                "authorization {auth:?}"
            );
            assert_eq!(resp.body(), "", "the handler must not run");
        }
    }

    #[tokio::test]
    async fn health_and_reflection_are_open() {
        let layer = AuthLayer::from_config_with_env(&config(), env).expect("valid config");
        for path in [
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        ] {
            let resp = call(&layer, path, None).await;
            assert_eq!(code(&resp), None, "{path}");
            assert_eq!(resp.body(), "none");
        }
    }

    #[tokio::test]
    async fn anonymous_role_only_when_configured() {
        let empty = AuthConfig::default();
        assert!(matches!(
            AuthLayer::from_config_with_env(&empty, env),
            Err(AuthConfigError::NoTokens)
        ));
        let dev = AuthConfig {
            allow_anonymous_as: Some(Role::Operator),
            ..config()
        };
        let layer = AuthLayer::from_config_with_env(&dev, env).expect("valid config");
        assert_eq!(call(&layer, "/a/b", None).await.body(), "operator");
        let resp = call(&layer, "/a/b", Some("Bearer wrong-token-0123456789")).await;
        assert_eq!(code(&resp), Some(tonic::Code::Unauthenticated));
    }

    #[test]
    fn bad_entries_are_refused_without_printing_tokens() {
        let mut c = config();
        c.tokens[1].token = Some(SecretToken::new("tiny-tok"));
        let err = AuthLayer::from_config_with_env(&c, env).expect_err("too short");
        assert!(matches!(err, AuthConfigError::TooShort { index: 1, .. }));
        assert!(!err.to_string().contains("tiny-tok"));

        let mut c = config();
        c.tokens[1].token = Some(SecretToken::new(ADMIN));
        let err = AuthLayer::from_config_with_env(&c, env).expect_err("duplicate");
        assert!(matches!(err, AuthConfigError::Duplicate { first: 0, .. }));
        assert!(!err.to_string().contains(ADMIN));

        let err = AuthLayer::from_config_with_env(&config(), |_| None).expect_err("unset env");
        assert!(err.to_string().contains("TEST_ADMIN_TOKEN"), "{err}");

        let mut c = config();
        c.tokens[0].token = Some(SecretToken::new(QA));
        assert!(matches!(
            AuthLayer::from_config_with_env(&c, env),
            Err(AuthConfigError::TokenSource { index: 0, .. })
        ));
    }

    #[test]
    fn require_checks_the_role() {
        let mut ext = http::Extensions::new();
        let status = require(&ext, &[Role::Admin]).expect_err("no role");
        assert_eq!(status.code(), tonic::Code::Unauthenticated);

        ext.insert(Role::Qa);
        assert_eq!(
            require_permission(&ext, Permission::ReadTranscripts).expect("qa reads transcripts"),
            Role::Qa
        );
        let status = require_permission(&ext, Permission::ReadRawAudio).expect_err("no audio");
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        assert!(
            status.message().contains("qa-admin, admin"),
            "{}",
            status.message()
        );
        assert!(status.message().contains("`qa`"), "{}", status.message());

        ext.insert(Role::Operator);
        assert!(require_permission(&ext, Permission::ManageCampaigns).is_ok());
        assert!(require_permission(&ext, Permission::ReadTranscripts).is_err());
    }

    #[test]
    fn roles_and_permissions() {
        assert!(!Role::Operator.may_read_raw_audio());
        assert!(!Role::Qa.may_read_raw_audio());
        assert!(Role::QaAdmin.may_read_raw_audio());
        assert!(Role::Admin.may_read_raw_audio());
        for p in [
            Permission::ManageCampaigns,
            Permission::ReadCalls,
            Permission::ReadTranscripts,
            Permission::ReadGrades,
            Permission::ReadRawAudio,
            Permission::ReadCustomers,
            Permission::ImportCustomers,
            Permission::EraseCustomers,
            Permission::SetAgents,
        ] {
            assert!(Role::Admin.may(p), "admin may {p:?}");
            // qa-admin holds everything qa holds.
            assert!(!Role::Qa.may(p) || Role::QaAdmin.may(p), "{p:?}");
        }
        assert!(!Role::Operator.may(Permission::EraseCustomers));
        assert!(!Role::QaAdmin.may(Permission::ImportCustomers));
    }

    #[test]
    fn roles_parse_from_config_names() {
        #[derive(Deserialize)]
        struct R {
            r: Vec<Role>,
        }
        let r: R = serde_json::from_str(r#"{"r":["operator","qa","qa-admin","qa_admin","admin"]}"#)
            .expect("role names");
        assert_eq!(
            r.r,
            [
                Role::Operator,
                Role::Qa,
                Role::QaAdmin,
                Role::QaAdmin,
                Role::Admin
            ]
        );
        for role in Role::ALL {
            assert_eq!(
                serde_json::to_string(&role).expect("serialize"),
                format!("\"{role}\"")
            );
        }
    }

    #[test]
    fn debug_and_serialize_redact_tokens() {
        let c = config();
        let debug = format!("{c:?}");
        assert!(!debug.contains(QA), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
        let json = serde_json::to_string(&c).expect("serialize");
        assert!(!json.contains(QA), "{json}");
        let layer = AuthLayer::from_config_with_env(&c, env).expect("valid config");
        let debug = format!("{layer:?}");
        assert!(!debug.contains(QA) && !debug.contains(ADMIN), "{debug}");
    }
}
