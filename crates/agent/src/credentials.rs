//! The credentials endpoint the shells' AWS tools read (DESIGN §6).
//!
//! `GET /latest/meta-data/container/security-credentials` answers in the
//! container-credentials format that botocore and the AWS SDKs read from
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI`, authorised by the
//! `Authorization` header holding the environment's token. The same port
//! answers the IMDSv2 token dance (`PUT /latest/api/token`, then a `GET`
//! with `X-aws-ec2-metadata-token`), as real CloudShell does.
//!
//! Secrets (the token, the secret key, the session token) never reach the
//! logs: they are held as [`Secret`], whose `Debug` output is `***`.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use seashell_protocol::agent_channel::Credentials;
use seashell_protocol::Secret;
use serde::Serialize;

/// Path of the credentials document.
pub const CREDENTIALS_PATH: &str = "/latest/meta-data/container/security-credentials";
/// Path where IMDSv2 session tokens are issued.
pub const TOKEN_PATH: &str = "/latest/api/token";
/// Header carrying the requested IMDSv2 token lifetime, in seconds.
pub const TOKEN_TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
/// Header carrying an IMDSv2 token.
pub const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
/// Longest IMDSv2 token lifetime, as on EC2 (six hours).
pub const MAX_TOKEN_TTL: u64 = 21_600;
/// Most IMDSv2 tokens held at once; the oldest is forgotten beyond that.
const MAX_TOKENS: usize = 1024;

/// The credentials most recently pushed by the server.
#[derive(Debug, Default)]
pub struct CredentialStore {
    current: RwLock<Option<Served>>,
}

#[derive(Debug, Clone)]
struct Served {
    credentials: Credentials,
    last_updated: String,
}

impl CredentialStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `credentials` from now on.
    pub fn put(&self, credentials: Credentials) {
        let served = Served {
            credentials,
            last_updated: now_iso8601(),
        };
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(served);
    }

    /// Serves nothing from now on.
    pub fn withdraw(&self) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// When the served credentials expire, if any are served.
    pub fn expiration(&self) -> Option<String> {
        self.current().map(|s| s.credentials.expiration)
    }

    fn current(&self) -> Option<Served> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn now_iso8601() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The endpoint's state: the store, the environment's token, and the
/// IMDSv2 tokens issued so far.
#[derive(Debug)]
pub struct CredentialsEndpoint {
    store: Arc<CredentialStore>,
    token: Secret,
    issued: Mutex<Vec<(Secret, Instant)>>,
}

impl CredentialsEndpoint {
    /// An endpoint serving `store` to callers presenting `token`.
    pub fn new(store: Arc<CredentialStore>, token: Secret) -> Self {
        Self {
            store,
            token,
            issued: Mutex::new(Vec::new()),
        }
    }

    /// Whether an IMDSv2 token is one we issued and still valid. Every
    /// entry is compared in constant time, so the answer's timing says
    /// nothing about how close a guess was.
    fn valid_session_token(&self, presented: &Secret) -> bool {
        let now = Instant::now();
        let issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
        issued.iter().fold(false, |ok, (t, expires)| {
            ok | (t == presented && *expires > now)
        })
    }

    fn issue_session_token(&self, ttl: Duration) -> Secret {
        let token = Secret::new(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        ));
        let now = Instant::now();
        let mut issued = self.issued.lock().unwrap_or_else(PoisonError::into_inner);
        issued.retain(|(_, expires)| *expires > now);
        if issued.len() >= MAX_TOKENS {
            issued.remove(0);
        }
        issued.push((token.clone(), now + ttl));
        token
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CredentialsDocument<'a> {
    #[serde(rename = "Type")]
    kind: &'static str,
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: &'a str,
    code: &'static str,
    last_updated: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorDocument<'a> {
    code: &'a str,
    message: &'a str,
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::to_string(&ErrorDocument { code, message })
        .unwrap_or_else(|_| String::from("{}"));
    json(status, body)
}

fn header_secret(headers: &HeaderMap, name: &HeaderName) -> Option<Secret> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(Secret::from)
}

async fn get_credentials(
    State(endpoint): State<Arc<CredentialsEndpoint>>,
    headers: HeaderMap,
) -> Response {
    let span = tracing::info_span!("credentials_request", method = "GET");
    let _entered = span.enter();
    let authorization = header_secret(&headers, &AUTHORIZATION);
    let session_token = header_secret(&headers, &HeaderName::from_static(TOKEN_HEADER));
    if authorization.is_none() && session_token.is_none() {
        tracing::info!(status = 401, "no token presented");
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "an Authorization header is required",
        );
    }
    let authorised = authorization
        .as_ref()
        .is_some_and(|t| !endpoint.token.is_empty() && *t == endpoint.token)
        || session_token
            .as_ref()
            .is_some_and(|t| endpoint.valid_session_token(t));
    if !authorised {
        tracing::warn!(status = 403, "wrong token presented");
        return error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "the token presented is not valid",
        );
    }
    let Some(served) = endpoint.store.current() else {
        tracing::info!(status = 404, "no credentials to serve");
        return error(
            StatusCode::NOT_FOUND,
            "CredentialsNotFound",
            "no credentials are available in this environment",
        );
    };
    let c = &served.credentials;
    let document = CredentialsDocument {
        kind: "",
        access_key_id: &c.access_key_id,
        secret_access_key: c.secret_access_key.expose(),
        token: c.token.expose(),
        expiration: &c.expiration,
        code: "Success",
        last_updated: &served.last_updated,
    };
    match serde_json::to_string(&document) {
        Ok(body) => {
            tracing::info!(status = 200, access_key_id = %c.access_key_id, "credentials served");
            json(StatusCode::OK, body)
        }
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "could not encode the credentials",
        ),
    }
}

async fn put_token(
    State(endpoint): State<Arc<CredentialsEndpoint>>,
    headers: HeaderMap,
) -> Response {
    let span = tracing::info_span!("credentials_request", method = "PUT");
    let _entered = span.enter();
    // As on EC2: a forwarded request came through a proxy, the very
    // thing IMDSv2 exists to stop.
    if headers.contains_key("x-forwarded-for") {
        tracing::warn!(status = 403, "forwarded token request refused");
        return error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "forwarded requests are refused",
        );
    }
    let ttl = headers
        .get(TOKEN_TTL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ttl| (1..=MAX_TOKEN_TTL).contains(ttl));
    let Some(ttl) = ttl else {
        tracing::info!(status = 400, "missing or invalid token lifetime");
        return error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "X-aws-ec2-metadata-token-ttl-seconds must be between 1 and 21600",
        );
    };
    let token = endpoint.issue_session_token(Duration::from_secs(ttl));
    tracing::info!(status = 200, ttl, "session token issued");
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, "text/plain".to_owned()),
            (HeaderName::from_static(TOKEN_TTL_HEADER), ttl.to_string()),
        ],
        token.into_inner(),
    )
        .into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "NotFound", "no such resource")
}

/// The endpoint's routes.
pub fn router(endpoint: Arc<CredentialsEndpoint>) -> Router {
    Router::new()
        .route(CREDENTIALS_PATH, get(get_credentials))
        .route(TOKEN_PATH, put(put_token))
        .fallback(not_found)
        .with_state(endpoint)
}

/// Serves the endpoint on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    endpoint: Arc<CredentialsEndpoint>,
) -> std::io::Result<()> {
    axum::serve(listener, router(endpoint)).await
}
