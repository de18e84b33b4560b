//! Device login to IAM Identity Center (SSO-OIDC: RegisterClient,
//! StartDeviceAuthorization, CreateToken) and portal Logout, plus the token
//! cache botocore and the AWS CLI read (`~/.aws/sso/cache/<sha1>.json`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use crate::api::ApiError;

/// The device code grant.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// `clientId`.
    pub client_id: String,
    /// `clientSecret`.
    pub client_secret: String,
    /// When the registration ends.
    pub expires_at: SystemTime,
}

/// A device authorization in progress.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceAuthorization {
    /// What the tool polls with.
    pub device_code: String,
    /// What the user confirms.
    pub user_code: String,
    /// Where the user goes.
    pub verification_uri: String,
    /// The same, with the code filled in.
    pub verification_uri_complete: Option<String>,
    /// Seconds until the codes expire.
    pub expires_in: u64,
    /// Seconds between polls.
    #[serde(default = "one")]
    pub interval: u64,
}

fn one() -> u64 {
    1
}

/// Tokens from CreateToken.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tokens {
    /// For the portal API.
    pub access_token: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// For the refresh grant, when the client may refresh.
    pub refresh_token: Option<String>,
}

/// A poll's answer.
#[derive(Debug)]
pub enum Poll {
    /// The user approved: the tokens.
    Done(Tokens),
    /// Not yet.
    Pending,
    /// Polling too fast: wait longer.
    SlowDown,
}

/// A client of one Seashell's SSO-OIDC endpoint (`…/sso-oidc`).
#[derive(Debug, Clone)]
pub struct SsoOidc {
    endpoint: String,
    http: reqwest::Client,
}

impl SsoOidc {
    /// A client of `endpoint`.
    pub fn new(endpoint: &str, http: reqwest::Client) -> SsoOidc {
        SsoOidc {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            http,
        }
    }

    async fn post(&self, operation: &str, path: &str, body: &Value) -> Result<Value, ApiError> {
        let url = format!("{}{path}", self.endpoint);
        let response =
            self.http
                .post(&url)
                .json(body)
                .send()
                .await
                .map_err(|e| ApiError::Connect {
                    url: url.clone(),
                    reason: crate::api::error_chain(&e),
                })?;
        let status = response.status();
        let kind = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|k| k.split(':').next().unwrap_or(k).to_string());
        let text = response.text().await.map_err(|e| ApiError::Connect {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        let message = value
            .get("error_description")
            .or_else(|| value.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        Err(ApiError::Service {
            operation: operation.to_string(),
            status: status.as_u16(),
            code: kind.unwrap_or_else(|| format!("HTTP {}", status.as_u16())),
            message,
        })
    }

    /// RegisterClient.
    pub async fn register_client(
        &self,
        name: &str,
        scopes: &[String],
    ) -> Result<Registration, ApiError> {
        let mut body = json!({"clientName": name, "clientType": "public"});
        if !scopes.is_empty() {
            body["scopes"] = json!(scopes);
        }
        let v = self
            .post("RegisterClient", "/client/register", &body)
            .await?;
        let field = |name: &str| {
            v.get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| self.protocol(format!("RegisterClient gave no {name}")))
        };
        let expires = v
            .get("clientSecretExpiresAt")
            .and_then(Value::as_u64)
            .ok_or_else(|| self.protocol("RegisterClient gave no clientSecretExpiresAt".into()))?;
        Ok(Registration {
            client_id: field("clientId")?,
            client_secret: field("clientSecret")?,
            expires_at: SystemTime::UNIX_EPOCH + Duration::from_secs(expires),
        })
    }

    /// StartDeviceAuthorization.
    pub async fn start_device_authorization(
        &self,
        registration: &Registration,
        start_url: &str,
    ) -> Result<DeviceAuthorization, ApiError> {
        let v = self
            .post(
                "StartDeviceAuthorization",
                "/device_authorization",
                &json!({
                    "clientId": registration.client_id,
                    "clientSecret": registration.client_secret,
                    "startUrl": start_url,
                }),
            )
            .await?;
        serde_json::from_value(v).map_err(|e| self.protocol(e.to_string()))
    }

    /// One CreateToken poll with the device code.
    pub async fn poll(
        &self,
        registration: &Registration,
        device_code: &str,
    ) -> Result<Poll, ApiError> {
        let result = self
            .post(
                "CreateToken",
                "/token",
                &json!({
                    "clientId": registration.client_id,
                    "clientSecret": registration.client_secret,
                    "grantType": DEVICE_CODE_GRANT,
                    "deviceCode": device_code,
                }),
            )
            .await;
        match result {
            Ok(v) => serde_json::from_value(v)
                .map(Poll::Done)
                .map_err(|e| self.protocol(e.to_string())),
            Err(ApiError::Service { code, .. }) if code == "AuthorizationPendingException" => {
                Ok(Poll::Pending)
            }
            Err(ApiError::Service { code, .. }) if code == "SlowDownException" => {
                Ok(Poll::SlowDown)
            }
            Err(e) => Err(e),
        }
    }

    fn protocol(&self, reason: String) -> ApiError {
        ApiError::Protocol {
            url: self.endpoint.clone(),
            reason,
        }
    }
}

/// The SSO portal API's Logout (`POST <sso endpoint>/logout`).
pub async fn logout(
    http: &reqwest::Client,
    sso_endpoint: &str,
    access_token: &str,
) -> Result<(), ApiError> {
    let url = format!("{}/logout", sso_endpoint.trim_end_matches('/'));
    let response = http
        .post(&url)
        .header("x-amz-sso_bearer_token", access_token)
        .send()
        .await
        .map_err(|e| ApiError::Connect {
            url: url.clone(),
            reason: crate::api::error_chain(&e),
        })?;
    let status = response.status();
    // A token the server no longer knows is logged out already.
    if status.is_success() || status.as_u16() == 401 {
        return Ok(());
    }
    Err(ApiError::Service {
        operation: "Logout".into(),
        status: status.as_u16(),
        code: response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("UnknownError")
            .to_string(),
        message: response.text().await.unwrap_or_default(),
    })
}

/// A cached token, in the format botocore reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedToken {
    /// The start URL signed in to.
    pub start_url: String,
    /// The SSO region.
    pub region: String,
    /// The access token.
    pub access_token: String,
    /// ISO 8601 UTC, `…Z`.
    pub expires_at: String,
    /// The registered client, for refreshing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Its secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// When the registration ends, ISO 8601 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_expires_at: Option<String>,
    /// The refresh token, for `sso-session` logins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// `~/.aws/sso/cache`.
pub fn cache_dir(home: &Path) -> PathBuf {
    home.join(".aws").join("sso").join("cache")
}

/// The cache file of a login: named by the SHA-1 of the `sso-session`
/// name, or of the start URL for a profile without one (botocore's rule).
pub fn cache_file(home: &Path, session_name: Option<&str>, start_url: &str) -> PathBuf {
    let key = session_name.unwrap_or(start_url);
    let digest = Sha1::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    cache_dir(home).join(format!("{hex}.json"))
}

/// Writes a cached token readable by its owner only.
pub fn write_cache(path: &Path, token: &CachedToken) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(serde_json::to_string_pretty(token)?.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Reads a cached token, if the file holds one.
pub fn read_cache(path: &Path) -> Option<CachedToken> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

const ISO8601_Z: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// ISO 8601 UTC with a `Z`, as botocore writes `expiresAt`.
pub fn iso8601(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(ISO8601_Z)
        .unwrap_or_default()
}

/// Parses an ISO 8601 / RFC 3339 time, as botocore accepts in the cache.
pub fn parse_iso8601(text: &str) -> Option<SystemTime> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(SystemTime::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_files_are_named_as_botocore_names_them() {
        // Python: hashlib.sha1(b"my-org").hexdigest(), and the same of the
        // start URL for a profile without an sso-session.
        let home = Path::new("/home/u");
        assert_eq!(
            cache_file(home, Some("my-org"), "http://127.0.0.1:8080/start"),
            home.join(".aws/sso/cache/063b06ca21ff862fb6d05839b8f962c8f1afdec6.json")
        );
        assert_eq!(
            cache_file(home, None, "http://127.0.0.1:8080/start"),
            home.join(".aws/sso/cache/09be614c9fe6ae9529fe2adfdf8792edf5d26601.json")
        );
    }

    #[test]
    fn timestamps_round_trip() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        let text = iso8601(t);
        assert_eq!(text, "2026-11-30T00:53:20Z");
        assert_eq!(parse_iso8601(&text), Some(t));
        assert_eq!(
            parse_iso8601("1970-01-01T00:00:00Z"),
            Some(SystemTime::UNIX_EPOCH)
        );
        assert_eq!(parse_iso8601("garbage"), None);
    }
}
