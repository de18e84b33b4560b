//! File upload and download through pre-signed URLs on the server itself.
//!
//! `getFileUploadUrls` / `getFileDownloadUrls` return a URL
//! `/v1/files/<EnvironmentId>?op=…&path=…&principal=…&expires=…&signature=…`
//! whose signature is an HMAC-SHA256, under a key only the server holds,
//! over the method, the environment, the path, the principal, the access
//! key that asked for it (`key`), a random URL id (`id`) and the expiry.
//! A URL works for one purpose (upload or download) and at most
//! [`MAX_TTL_SECONDS`], and only while the credentials that asked for it
//! are valid: a console session that signed out (its credentials are
//! revoked), revoked or expired temporary credentials, a deleted or
//! deactivated access key all end their URLs. An upload URL works once
//! (its id is spent in the store). The bytes stream through the agent into
//! or out of the home directory, where the agent confines every path
//! (`openat2`).

use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt as _;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

use super::{environment_arn, Operation};
use crate::authz::{self, RequestInfo};
use crate::caller::Caller;
use crate::envs::{conflict, status, validation};
use crate::error::ApiError;
use crate::services::Handled;
use crate::state::AppState;

/// Longest a pre-signed URL lives.
pub const MAX_TTL_SECONDS: i64 = 15 * 60;
/// The home directory, as absolute paths name it.
pub const HOME: &str = "/home/cloudshell-user";

/// The key that signs file URLs, kept in the data directory (mode 0600) so
/// URLs survive a restart of the server within their lifetime.
#[derive(Clone)]
pub struct UrlKey(Arc<[u8; 32]>);

impl std::fmt::Debug for UrlKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlKey(***)")
    }
}

impl UrlKey {
    /// Reads the key from `<data_dir>/file-url.key`, creating it first.
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<UrlKey> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = data_dir.join("file-url.key");
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => {
                let mut key = [0u8; 32];
                key.copy_from_slice(&bytes);
                return Ok(UrlKey(Arc::new(key)));
            }
            Ok(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} is not a 32-byte key", path.display()),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let tmp = data_dir.join("file-url.key.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&key)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(UrlKey(Arc::new(key)))
    }

    fn sign(&self, fields: &Signed<'_>) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.0.as_slice()).expect("HMAC takes any key length");
        for part in fields.parts() {
            // Length-prefixed, so no two field lists sign alike.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        hex::encode(mac.finalize().into_bytes())
    }

    fn verify(&self, fields: &Signed<'_>, signature: &str) -> bool {
        let Ok(given) = hex::decode(signature) else {
            return false;
        };
        let mut mac =
            Hmac::<Sha256>::new_from_slice(self.0.as_slice()).expect("HMAC takes any key length");
        for part in fields.parts() {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.verify_slice(&given).is_ok()
    }
}

#[derive(Clone, Copy)]
struct Signed<'a> {
    op: &'a str,
    environment_id: &'a str,
    path: &'a str,
    principal: &'a str,
    /// The access key id of the credentials that asked for the URL (for a
    /// console session, its temporary credentials).
    key: &'a str,
    /// A random id: what a spent upload URL is remembered by.
    id: &'a str,
    expires: i64,
}

impl Signed<'_> {
    fn parts(&self) -> [String; 7] {
        [
            self.op.to_string(),
            self.environment_id.to_string(),
            self.path.to_string(),
            self.principal.to_string(),
            self.key.to_string(),
            self.id.to_string(),
            self.expires.to_string(),
        ]
    }
}

/// A path as the guide allows it: relative to the home directory, or
/// absolute under it. Returns the path relative to home; the agent still
/// resolves it beneath home, so a symlink cannot lead out.
pub fn home_relative(path: &str) -> Result<String, ApiError> {
    if path.is_empty() || path.len() > 4096 || path.contains('\0') {
        return Err(validation(
            "The path must be 1 to 4096 characters, without NUL.",
        ));
    }
    let relative = if path.starts_with('/') {
        match path.strip_prefix(HOME) {
            Some(rest) if rest.starts_with('/') => rest.trim_start_matches('/'),
            _ => {
                return Err(validation(format!(
                    "The path {path:?} is outside {HOME}; give a path in the home directory."
                )))
            }
        }
    } else {
        path
    };
    if relative.split('/').any(|c| c == "..") {
        return Err(validation(format!(
            "The path {path:?} leaves the home directory."
        )));
    }
    let relative = relative.trim_end_matches('/');
    if relative.is_empty() || relative.split('/').all(|c| c.is_empty() || c == ".") {
        return Err(validation(format!("The path {path:?} names no file.")));
    }
    Ok(relative.to_string())
}

/// What a `getFileUploadUrls` / `getFileDownloadUrls` request asks for,
/// checked by [`super::input::parse`].
#[derive(Debug, Clone, Copy)]
pub struct Transfer<'a> {
    /// `EnvironmentId`.
    pub environment_id: &'a str,
    /// The path as given.
    pub path: &'a str,
    /// The path relative to home ([`home_relative`]).
    pub relative: &'a str,
}

/// `getFileUploadUrls` / `getFileDownloadUrls`.
pub(super) async fn presign(
    state: &AppState,
    caller: &Caller,
    info: &RequestInfo,
    operation: Operation,
    transfer: Transfer<'_>,
) -> Result<Handled, ApiError> {
    let upload = operation == Operation::GetFileUploadUrls;
    let member = if upload {
        "FileUploadPath"
    } else {
        "FileDownloadPath"
    };
    let id = transfer.environment_id;
    let relative = transfer.relative;
    let resource = environment_arn(&info.region, &caller.account_id, id);
    authz::authorize(
        &state.store,
        caller,
        info,
        operation.action(),
        &resource,
        &[],
    )
    .await?;
    let env = state.envs.owned(caller, id).await?;
    if env.vpc_config.is_some() {
        return Err(validation(
            "Files cannot be uploaded to or downloaded from a VPC environment.",
        ));
    }
    if env.status != status::RUNNING {
        return Err(conflict(format!(
            "The environment must be RUNNING to transfer files; it is {}.",
            env.status
        )));
    }
    let expires = chrono::Utc::now().timestamp() + MAX_TTL_SECONDS;
    let op = if upload { "upload" } else { "download" };
    let mut nonce = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let url_id = hex::encode(nonce);
    let fields = Signed {
        op,
        environment_id: id,
        path: relative,
        principal: &caller.principal_id,
        key: &caller.access_key_id,
        id: &url_id,
        expires,
    };
    let signature = state.file_urls.sign(&fields);
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("op", op)
        .append_pair("path", relative)
        .append_pair("principal", &caller.principal_id)
        .append_pair("key", &caller.access_key_id)
        .append_pair("id", &url_id)
        .append_pair("expires", &expires.to_string())
        .append_pair("signature", &signature)
        .finish();
    let url = format!("{}/v1/files/{id}?{query}", state.config.public_url());
    let expires_at = chrono::DateTime::from_timestamp(expires, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let params = json!({"EnvironmentId": id, member: transfer.path});
    let response = if upload {
        json!({"FileUploadPresignedUrl": url, "FileUploadPresignedFields": {}, "ExpiresAt": expires_at})
    } else {
        json!({"FileDownloadPresignedUrl": url, "ExpiresAt": expires_at})
    };
    Ok(Handled {
        body: response.to_string(),
        read_only: false,
        request_parameters: Some(params),
        // The URL is a bearer credential: only its expiry is recorded.
        response_elements: Some(json!({"ExpiresAt": expires_at})),
    })
}

/// The query of a pre-signed URL.
#[derive(Debug, Deserialize)]
pub struct FileQuery {
    op: String,
    path: String,
    principal: String,
    key: String,
    id: String,
    expires: i64,
    signature: String,
}

fn refuse(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let message = message.into();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json!({"code": code, "message": message}).to_string(),
    )
        .into_response()
}

/// Checks a pre-signed URL and finds the environment's agent.
async fn check(
    state: &AppState,
    environment_id: &str,
    q: &FileQuery,
    op: &str,
) -> Result<seashell_runtime::agent_hub::AgentHub, Response> {
    let fields = Signed {
        op: &q.op,
        environment_id,
        path: &q.path,
        principal: &q.principal,
        key: &q.key,
        id: &q.id,
        expires: q.expires,
    };
    let now = chrono::Utc::now().timestamp();
    if q.op != op || !state.file_urls.verify(&fields, &q.signature) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "The URL's signature does not match; ask for a new URL.",
        ));
    }
    if now > q.expires || q.expires - now > MAX_TTL_SECONDS {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "ExpiredToken",
            "The URL has expired; ask for a new one.",
        ));
    }
    credentials_valid(state, &q.key).await?;
    let env = match state.store.environment(environment_id).await {
        Ok(Some(env)) if env.principal_id == q.principal => env,
        Ok(_) => {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                format!("Environment {environment_id} was not found."),
            ))
        }
        Err(e) => {
            let err = ApiError::internal(&e);
            return Err(refuse(err.status, &err.code, err.message));
        }
    };
    if env.vpc_config.is_some() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "Files cannot be transferred to or from a VPC environment.",
        ));
    }
    let hub = match (env.status.as_str(), state.envs.hub(environment_id)) {
        (status::RUNNING, Some(hub)) => hub,
        (s, _) => {
            return Err(refuse(
                StatusCode::CONFLICT,
                "ConflictException",
                format!("The environment must be RUNNING to transfer files; it is {s}."),
            ))
        }
    };
    // Spent only once everything else passed, so a URL refused for a
    // stopped environment can be used after a start; an upload that fails
    // midway still spends it (ask for a new URL).
    if op == "upload" {
        match state
            .store
            .spend_file_url(&q.id, q.expires.saturating_mul(1000))
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(refuse(
                StatusCode::FORBIDDEN,
                "AccessDeniedException",
                "This upload URL was already used; an upload URL works once. Ask for a new one.",
            )),
            Err(e) => {
                let err = ApiError::internal(&e);
                return Err(refuse(err.status, &err.code, err.message));
            }
        }
    }
    Ok(hub)
}

/// Refuses a URL whose credentials are no longer valid: temporary
/// credentials (`ASIA…`, also a console session's) revoked — at sign-out,
/// when a user or an assignment goes — or expired, or gone; a long-term key
/// deleted or deactivated.
async fn credentials_valid(state: &AppState, key: &str) -> Result<(), Response> {
    let valid = if key.starts_with("ASIA") {
        state
            .store
            .temporary_credential(key)
            .await
            .map(|c| c.is_some_and(|c| !c.revoked && c.expires_at > crate::store::now_ms()))
    } else {
        state
            .store
            .access_key(key)
            .await
            .map(|k| k.is_some_and(|k| k.active))
    };
    match valid {
        Ok(true) => Ok(()),
        Ok(false) => Err(refuse(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "The credentials that asked for this URL are no longer valid (signed out, revoked, \
             expired, deleted or deactivated); sign in again and ask for a new URL.",
        )),
        Err(e) => {
            let err = ApiError::internal(&e);
            Err(refuse(err.status, &err.code, err.message))
        }
    }
}

fn transfer_error(e: seashell_runtime::agent_hub::HubError) -> Response {
    use seashell_protocol::agent_channel::ErrorCode;
    use seashell_runtime::agent_hub::HubError;
    match e {
        HubError::Agent { code, message } => match code {
            ErrorCode::PathOutsideHome => {
                refuse(StatusCode::FORBIDDEN, "AccessDeniedException", message)
            }
            ErrorCode::NotFound => {
                refuse(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
            }
            ErrorCode::NoSpace => refuse(
                StatusCode::INSUFFICIENT_STORAGE,
                "ServiceQuotaExceededException",
                format!("The home directory is full (its size is the hard limit): {message}"),
            ),
            ErrorCode::BadRequest => {
                refuse(StatusCode::BAD_REQUEST, "ValidationException", message)
            }
            _ => refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                message,
            ),
        },
        HubError::Body(e) => refuse(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            format!("The upload was interrupted ({e}); nothing was written."),
        ),
        other => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            format!("The environment's agent is not reachable: {other}"),
        ),
    }
}

/// `PUT /v1/files/<EnvironmentId>?op=upload…`: the body becomes the file.
pub async fn upload(
    State(state): State<Arc<AppState>>,
    UrlPath(environment_id): UrlPath<String>,
    Query(q): Query<FileQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let span = tracing::info_span!("file.upload", environment = %environment_id);
    let _enter = span.enter();
    let hub = match check(&state, &environment_id, &q, "upload").await {
        Ok(hub) => hub,
        Err(r) => return r,
    };
    let size = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let stream = body
        .into_data_stream()
        .map_err(|e| std::io::Error::other(e.to_string()));
    match hub.write_file(&q.path, size, stream).await {
        Ok(written) => {
            tracing::info!(bytes = written, "uploaded");
            (
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                json!({"Path": format!("{HOME}/{}", q.path), "Size": written}).to_string(),
            )
                .into_response()
        }
        Err(e) => transfer_error(e),
    }
}

/// `GET /v1/files/<EnvironmentId>?op=download…`: the file, streamed.
pub async fn download(
    State(state): State<Arc<AppState>>,
    UrlPath(environment_id): UrlPath<String>,
    Query(q): Query<FileQuery>,
) -> Response {
    let span = tracing::info_span!("file.download", environment = %environment_id);
    let _enter = span.enter();
    let hub = match check(&state, &environment_id, &q, "download").await {
        Ok(hub) => hub,
        Err(r) => return r,
    };
    match hub.read_file(&q.path).await {
        Ok((size, stream)) => {
            let name = q.path.rsplit('/').next().unwrap_or("download");
            let disposition = format!(
                "attachment; filename=\"{}\"",
                name.replace(['"', '\\', '\r', '\n'], "_")
            );
            let mut response = Body::from_stream(stream.map_ok(Bytes::from)).into_response();
            let h = response.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            response
        }
        Err(e) => transfer_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guides_paths_resolve_in_home() {
        assert_eq!(
            home_relative("subfolder/mydownloadfile.txt")
                .ok()
                .as_deref(),
            Some("subfolder/mydownloadfile.txt")
        );
        assert_eq!(
            home_relative("/home/cloudshell-user/subfolder/mydownloadfile.txt")
                .ok()
                .as_deref(),
            Some("subfolder/mydownloadfile.txt")
        );
        assert_eq!(
            home_relative("add_prog.py").ok().as_deref(),
            Some("add_prog.py")
        );
    }

    #[test]
    fn escapes_and_non_files_are_refused() {
        for bad in [
            "",
            "../etc/passwd",
            "a/../../b",
            "/etc/passwd",
            "/home/cloudshell-user",
            "/home/cloudshell-user/",
            "/home/cloudshell-userx/file",
            "/home/cloudshell-user/../root/x",
            ".",
            "a\0b",
        ] {
            assert!(home_relative(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn signatures_bind_every_field() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = UrlKey::load_or_create(dir.path()).expect("key");
        let again = UrlKey::load_or_create(dir.path()).expect("same key");
        let f = Signed {
            op: "upload",
            environment_id: "e1",
            path: "a.txt",
            principal: "AIDAA",
            key: "AKIAA",
            id: "00",
            expires: 100,
        };
        let sig = key.sign(&f);
        assert!(again.verify(&f, &sig), "the key persists");
        for altered in [
            Signed {
                op: "download",
                ..f
            },
            Signed {
                environment_id: "e2",
                ..f
            },
            Signed { path: "b.txt", ..f },
            Signed {
                principal: "AIDAB",
                ..f
            },
            Signed { key: "AKIAB", ..f },
            Signed { id: "01", ..f },
            Signed { expires: 101, ..f },
        ] {
            assert!(!key.verify(&altered, &sig));
        }
        assert!(!key.verify(&f, "zz"));
        let mode = std::fs::metadata(dir.path().join("file-url.key"))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .expect("key file");
        assert_eq!(mode, 0o600);
    }
}
