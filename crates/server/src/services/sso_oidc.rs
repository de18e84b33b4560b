//! SSO-OIDC (DESIGN §2): how tools sign in to IAM Identity Center.
//! RegisterClient, StartDeviceAuthorization and CreateToken with the device
//! code and refresh token grants (RFC 8628, RFC 6749 §6), in botocore's
//! `sso-oidc` shapes. The operations are unsigned: clients authenticate with
//! their secret, and the user approves each device in the portal.

use std::time::Duration;

use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::signin::{random_token, token_hash};
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::sso::{DeviceStatus, NewToken, OidcClient, SsoUser, TokenKind};

/// Registered clients stay valid for 90 days, as AWS's do.
pub const CLIENT_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);
/// How long the user has to approve a device.
pub const DEVICE_CODE_LIFETIME: Duration = Duration::from_secs(600);
/// The polling interval tools are told.
pub const POLL_INTERVAL_S: i64 = 1;
/// Access tokens of clients that can refresh them live an hour.
pub const REFRESHABLE_ACCESS_LIFETIME: Duration = Duration::from_secs(3600);
/// The sign-in session: access tokens without a refresh token, and the
/// refresh tokens that keep a session going, end after this (AWS's default
/// Identity Center session duration).
pub const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// The scope that lets a client refresh its tokens and reach the accounts.
pub const ACCOUNT_ACCESS_SCOPE: &str = "sso:account:access";
/// The OAuth device code grant type.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// An SSO-OIDC error: its exception name (`x-amzn-ErrorType`), HTTP status
/// and the OAuth `error` / `error_description` members of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcError {
    /// HTTP status.
    pub status: StatusCode,
    /// The exception, e.g. `AuthorizationPendingException`.
    pub exception: &'static str,
    /// The OAuth error code, e.g. `authorization_pending`.
    pub error: &'static str,
    /// What went wrong, for people.
    pub description: String,
}

impl OidcError {
    fn new(exception: &'static str, error: &'static str, description: impl Into<String>) -> Self {
        let status = match exception {
            "InvalidClientException" => StatusCode::UNAUTHORIZED,
            "InternalServerException" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        OidcError {
            status,
            exception,
            error,
            description: description.into(),
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("InvalidRequestException", "invalid_request", description)
    }

    fn invalid_client() -> Self {
        Self::new(
            "InvalidClientException",
            "invalid_client",
            "The client is unknown, its secret is wrong, or its registration has expired.",
        )
    }

    /// Too many requests from the client's address (botocore's
    /// `SlowDownException`, which RegisterClient, StartDeviceAuthorization
    /// and CreateToken may raise).
    pub fn slow_down(retry_after_secs: u64) -> Self {
        Self::new(
            "SlowDownException",
            "slow_down",
            format!(
                "Too many requests from your address; try again in {retry_after_secs} seconds."
            ),
        )
    }

    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("InvalidGrantException", "invalid_grant", description)
    }

    fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal failure");
        Self::new(
            "InternalServerException",
            "server_error",
            "The request processing has failed because of an unknown error.",
        )
    }

    /// The reply body.
    pub fn body(&self) -> Value {
        json!({"error": self.error, "error_description": self.description})
    }
}

/// What a successful operation gives back: the reply and, for the audit
/// record, who it was for.
#[derive(Debug)]
pub struct OidcReply {
    /// The JSON reply.
    pub body: Value,
    /// The identity-store user the tokens were issued to (CreateToken).
    pub user: Option<SsoUser>,
    /// `requestParameters` of the audit record (never a secret).
    pub request_parameters: Value,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, OidcError> {
    serde_json::from_slice(body)
        .map_err(|e| OidcError::invalid_request(format!("The request body is not valid: {e}")))
}

fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, OidcError> {
    value
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OidcError::invalid_request(format!("{name} is required.")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegisterClientRequest {
    client_name: Option<String>,
    client_type: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
}

/// `POST /client/register`.
pub async fn register_client(state: &AppState, body: &[u8]) -> Result<OidcReply, OidcError> {
    let req: RegisterClientRequest = parse(body)?;
    let name = required(&req.client_name, "clientName")?;
    let client_type = required(&req.client_type, "clientType")?;
    if client_type != "public" {
        return Err(OidcError::new(
            "InvalidClientMetadataException",
            "invalid_client_metadata",
            "clientType must be public.",
        ));
    }
    if name.len() > 256 || name.chars().any(char::is_control) {
        return Err(OidcError::new(
            "InvalidClientMetadataException",
            "invalid_client_metadata",
            "clientName must be at most 256 printable characters.",
        ));
    }
    for scope in &req.scopes {
        let known = scope == ACCOUNT_ACCESS_SCOPE
            || scope == "openid"
            || scope.starts_with("sso:")
            || scope.starts_with("codewhisperer:");
        if !known || scope.len() > 128 {
            return Err(OidcError::new(
                "InvalidScopeException",
                "invalid_scope",
                format!("The scope {scope:.128} is not supported."),
            ));
        }
    }
    let client_id = random_token(16);
    let secret = random_token(48);
    let issued_at = now_ms();
    let expires_at = issued_at + millis(CLIENT_LIFETIME);
    state
        .store
        .create_oidc_client(
            &client_id,
            &token_hash(&secret),
            name,
            client_type,
            &req.scopes.join(" "),
            expires_at,
        )
        .await
        .map_err(|e| OidcError::internal(&e))?;
    Ok(OidcReply {
        body: json!({
            "clientId": client_id,
            "clientSecret": secret,
            "clientIdIssuedAt": issued_at / 1000,
            "clientSecretExpiresAt": expires_at / 1000,
        }),
        user: None,
        request_parameters: json!({
            "clientName": name,
            "clientType": client_type,
            "scopes": req.scopes,
        }),
    })
}

/// The registered client, if `secret` is its secret and it has not expired.
async fn authenticate_client(
    state: &AppState,
    client_id: &str,
    secret: &str,
) -> Result<OidcClient, OidcError> {
    let client = state
        .store
        .oidc_client(client_id)
        .await
        .map_err(|e| OidcError::internal(&e))?
        .ok_or_else(OidcError::invalid_client)?;
    let matches: bool = token_hash(secret)
        .as_bytes()
        .ct_eq(client.client_secret_hash.as_bytes())
        .into();
    if !matches || client.expires_at <= now_ms() {
        return Err(OidcError::invalid_client());
    }
    Ok(client)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartDeviceAuthorizationRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    start_url: Option<String>,
}

/// The identity store a start URL names: `<base>/start` is the first
/// instance's, `<base>/start/<d-…>` names one. Only the path counts, since
/// the server may be reached under several names.
pub fn start_url_directory(start_url: &str) -> Option<Option<String>> {
    let rest = start_url
        .split_once("://")
        .map_or(start_url, |(_, rest)| rest);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let path = path.split(['#', '?']).next().unwrap_or_default();
    let path = path.trim_end_matches('/');
    match path.strip_prefix("/start") {
        Some("") => Some(None),
        Some(rest) => {
            let id = rest.strip_prefix('/')?;
            let valid = id.starts_with("d-")
                && id.len() <= 64
                && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            valid.then(|| Some(id.to_string()))
        }
        None => None,
    }
}

/// `POST /device_authorization`.
pub async fn start_device_authorization(
    state: &AppState,
    body: &[u8],
) -> Result<OidcReply, OidcError> {
    let req: StartDeviceAuthorizationRequest = parse(body)?;
    let client_id = required(&req.client_id, "clientId")?;
    let secret = required(&req.client_secret, "clientSecret")?;
    let start_url = required(&req.start_url, "startUrl")?;
    let client = authenticate_client(state, client_id, secret).await?;
    let directory = start_url_directory(start_url).ok_or_else(|| {
        OidcError::invalid_request(format!(
            "{start_url:.256} is not this server's start URL ({}/start).",
            state.config.public_url()
        ))
    })?;
    let instance = state
        .store
        .sso_instance(directory.as_deref())
        .await
        .map_err(|e| OidcError::internal(&e))?;
    if instance.is_none() {
        return Err(OidcError::invalid_request(
            "No IAM Identity Center instance answers at this start URL.",
        ));
    }
    let device_code = random_token(32);
    let user_code = user_code();
    state
        .store
        .create_device_authorization(
            &token_hash(&device_code),
            &user_code,
            &client.client_id,
            POLL_INTERVAL_S,
            now_ms() + millis(DEVICE_CODE_LIFETIME),
        )
        .await
        .map_err(|e| OidcError::internal(&e))?;
    let verification = format!("{}/start/device", state.config.public_url());
    Ok(OidcReply {
        body: json!({
            "deviceCode": device_code,
            "userCode": user_code,
            "verificationUri": verification,
            "verificationUriComplete": format!("{verification}?user_code={user_code}"),
            "expiresIn": DEVICE_CODE_LIFETIME.as_secs(),
            "interval": POLL_INTERVAL_S,
        }),
        user: None,
        request_parameters: json!({"clientId": client.client_id, "startUrl": start_url}),
    })
}

/// Eight letters in two groups, from an alphabet without look-alikes.
fn user_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let mut rng = rand::rngs::OsRng;
    let mut code = String::with_capacity(9);
    for i in 0..8 {
        if i == 4 {
            code.push('-');
        }
        code.push(char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]));
    }
    code
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateTokenRequest {
    client_id: Option<String>,
    client_secret: Option<String>,
    grant_type: Option<String>,
    device_code: Option<String>,
    refresh_token: Option<String>,
}

/// `POST /token`.
pub async fn create_token(state: &AppState, body: &[u8]) -> Result<OidcReply, OidcError> {
    let req: CreateTokenRequest = parse(body)?;
    let client_id = required(&req.client_id, "clientId")?;
    let secret = required(&req.client_secret, "clientSecret")?;
    let grant_type = required(&req.grant_type, "grantType")?;
    let client = authenticate_client(state, client_id, secret).await?;
    let parameters = json!({"clientId": client.client_id, "grantType": grant_type});
    let (body, user) = match grant_type {
        DEVICE_CODE_GRANT => {
            let device_code = required(&req.device_code, "deviceCode")?;
            redeem_device_code(state, &client, device_code).await?
        }
        "refresh_token" => {
            let refresh_token = required(&req.refresh_token, "refreshToken")?;
            refresh(state, &client, refresh_token).await?
        }
        other => {
            return Err(OidcError::new(
                "UnsupportedGrantTypeException",
                "unsupported_grant_type",
                format!("The grant type {other:.128} is not supported."),
            ))
        }
    };
    Ok(OidcReply {
        body,
        user: Some(user),
        request_parameters: parameters,
    })
}

async fn redeem_device_code(
    state: &AppState,
    client: &OidcClient,
    device_code: &str,
) -> Result<(Value, SsoUser), OidcError> {
    let hash = token_hash(device_code);
    let store = &state.store;
    let auth = store
        .device_authorization(&hash)
        .await
        .map_err(|e| OidcError::internal(&e))?
        .filter(|a| a.client_id == client.client_id)
        .ok_or_else(|| OidcError::invalid_grant("The device code is not valid."))?;
    let now = now_ms();
    if auth.expires_at <= now {
        return Err(OidcError::new(
            "ExpiredTokenException",
            "expired_token",
            "The device code has expired; start again.",
        ));
    }
    match auth.status {
        DeviceStatus::Pending => {
            let too_soon = now - auth.last_poll_at < auth.interval_secs * 1000;
            store
                .poll_device_authorization(&hash, now)
                .await
                .map_err(|e| OidcError::internal(&e))?;
            return Err(if too_soon {
                OidcError::new(
                    "SlowDownException",
                    "slow_down",
                    "Polling too fast; wait the interval between requests.",
                )
            } else {
                OidcError::new(
                    "AuthorizationPendingException",
                    "authorization_pending",
                    "The user has not approved the request yet.",
                )
            });
        }
        DeviceStatus::Denied => {
            return Err(OidcError::new(
                "AccessDeniedException",
                "access_denied",
                "The user denied the request.",
            ))
        }
        DeviceStatus::Redeemed => {
            return Err(OidcError::invalid_grant(
                "The device code has already been used.",
            ))
        }
        DeviceStatus::Approved => {}
    }
    let user = match &auth.user_id {
        Some(id) => store
            .sso_user_by_id(id)
            .await
            .map_err(|e| OidcError::internal(&e))?,
        None => None,
    }
    .filter(|u| !u.disabled)
    .ok_or_else(|| OidcError::invalid_grant("The user who approved the request cannot sign in."))?;
    let refreshable = client_can_refresh(client);
    let session_end = now + millis(SESSION_LIFETIME);
    let issued = Issued::new(refreshable, session_end);
    let stored = store
        .redeem_device_authorization(&hash, &issued.records(client, &user, auth.mfa_used))
        .await
        .map_err(|e| OidcError::internal(&e))?;
    if !stored {
        return Err(OidcError::invalid_grant(
            "The device code has already been used.",
        ));
    }
    Ok((issued.reply(), user))
}

async fn refresh(
    state: &AppState,
    client: &OidcClient,
    refresh_token: &str,
) -> Result<(Value, SsoUser), OidcError> {
    let hash = token_hash(refresh_token);
    let store = &state.store;
    let old = store
        .sso_token(&hash, TokenKind::Refresh)
        .await
        .map_err(|e| OidcError::internal(&e))?
        .filter(|t| t.client_id == client.client_id)
        .ok_or_else(|| {
            OidcError::invalid_grant("The refresh token is not valid, or the session has ended.")
        })?;
    // A refresh continues the session; it never extends it.
    let issued = Issued::new(true, old.expires_at);
    let rotated = store
        .rotate_refresh_token(&hash, &issued.records(client, &old.user, old.mfa_used))
        .await
        .map_err(|e| OidcError::internal(&e))?;
    if !rotated {
        return Err(OidcError::invalid_grant(
            "The refresh token has already been used.",
        ));
    }
    Ok((issued.reply(), old.user))
}

fn client_can_refresh(client: &OidcClient) -> bool {
    client.scopes.split(' ').any(|s| s == ACCOUNT_ACCESS_SCOPE)
}

/// Tokens about to be issued.
struct Issued {
    access_token: String,
    access_expires_at: i64,
    refresh: Option<(String, i64)>,
}

impl Issued {
    /// An access token, plus a refresh token for clients registered with
    /// the account access scope, both ending no later than `session_end`.
    fn new(refreshable: bool, session_end: i64) -> Issued {
        let now = now_ms();
        let access_life = if refreshable {
            REFRESHABLE_ACCESS_LIFETIME
        } else {
            SESSION_LIFETIME
        };
        Issued {
            access_token: format!("aoa{}", random_token(48)),
            access_expires_at: (now + millis(access_life)).min(session_end),
            refresh: refreshable.then(|| (format!("aor{}", random_token(48)), session_end)),
        }
    }

    fn records<'a>(
        &'a self,
        client: &'a OidcClient,
        user: &'a SsoUser,
        mfa_used: bool,
    ) -> Vec<NewToken<'a>> {
        let mut out = vec![NewToken {
            token_hash: token_hash(&self.access_token),
            kind: TokenKind::Access,
            client_id: &client.client_id,
            user_id: &user.user_id,
            mfa_used,
            expires_at: self.access_expires_at,
        }];
        if let Some((token, expires_at)) = &self.refresh {
            out.push(NewToken {
                token_hash: token_hash(token),
                kind: TokenKind::Refresh,
                client_id: &client.client_id,
                user_id: &user.user_id,
                mfa_used,
                expires_at: *expires_at,
            });
        }
        out
    }

    fn reply(&self) -> Value {
        let expires_in = ((self.access_expires_at - now_ms()) / 1000).max(0);
        let mut body = json!({
            "accessToken": self.access_token,
            "tokenType": "Bearer",
            "expiresIn": expires_in,
        });
        if let Some((token, _)) = &self.refresh {
            body["refreshToken"] = json!(token);
        }
        body
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_urls_name_a_directory_by_path() {
        assert_eq!(
            start_url_directory("http://127.0.0.1:8080/start"),
            Some(None)
        );
        assert_eq!(
            start_url_directory("https://shell.example/start/#/"),
            Some(None)
        );
        assert_eq!(
            start_url_directory("https://shell.example/start/d-1234567890"),
            Some(Some("d-1234567890".into()))
        );
        assert_eq!(start_url_directory("https://shell.example/"), None);
        assert_eq!(start_url_directory("https://shell.example/started"), None);
        assert_eq!(
            start_url_directory("https://shell.example/start/../etc"),
            None
        );
    }

    #[test]
    fn user_codes_are_two_groups_of_four_unambiguous_letters() {
        for _ in 0..100 {
            let code = user_code();
            assert_eq!(code.len(), 9);
            assert_eq!(&code[4..5], "-");
            assert!(code
                .chars()
                .filter(|c| *c != '-')
                .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)));
        }
    }
}
