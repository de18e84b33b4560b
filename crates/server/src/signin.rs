//! Console sign-in and sign-out (DESIGN §3).
//!
//! `POST /signin` checks the account (ID or alias), user name, password and,
//! when the user has an MFA device, a one-time code. Success starts a console
//! session: an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when people
//! reach the server over HTTPS, `Config::serves_https`), a CSRF token the
//! page sends back in `X-CSRF-Token` on every change, and
//! temporary credentials (`ASIA…`) that live and die with the session. A
//! first administrator's one-time password must be changed first
//! (`POST /signin/password`). Every attempt is a `ConsoleLogin` record.
//! Failures never say which part was wrong; repeated failures lock the user
//! out for a time that doubles with each further failure.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore;
use seashell_audit::signin::{ConsoleLogin, LoginOutcome};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::state::AppState;
use crate::store::console::{ConsoleSession, SigninKind, ALL_SOURCES};
use crate::store::StoreError;
use crate::store::{now_ms, User};
use crate::{ids, mfa, password, password_policy};

/// The session cookie.
pub const SESSION_COOKIE: &str = "seashell_session";
/// The cookie carrying the CSRF token for the page's scripts.
pub const CSRF_COOKIE: &str = "seashell_csrf";
/// The header a page sends the CSRF token back in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a console session (and its credentials) lasts.
pub const SESSION_MS: i64 = 12 * 3600 * 1000;
/// Failures from one address allowed before that address is locked out.
const FREE_FAILURES: i64 = 5;
/// Failures from all addresses together allowed before the per-user
/// backstop locks out every address the user has not signed in from. Far
/// above [`FREE_FAILURES`]: one address, held back by its own lock (at most
/// one guess per 15 minutes once locked), needs about a day to get there,
/// while a guesser spreading over many addresses (cheap with IPv6) reaches
/// it within minutes.
const BACKSTOP_FREE_FAILURES: i64 = 100;
/// The longest lockout.
const MAX_LOCK_MS: i64 = 15 * 60 * 1000;
/// What every failed sign-in is told, whatever was wrong.
pub const GENERIC_FAILURE: &str = "Your authentication information is incorrect. Please try again.";

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SigninForm {
    /// Account ID or alias.
    pub account: String,
    /// IAM user name.
    pub username: String,
    /// Password.
    pub password: String,
    /// MFA code, when the user has a device.
    #[serde(default)]
    pub mfa_code: Option<String>,
}

/// The password-change form (first sign-in, or a reset required).
#[derive(Debug, Deserialize)]
pub struct PasswordChangeForm {
    /// Account ID or alias.
    pub account: String,
    /// IAM user name.
    pub username: String,
    /// The current (one-time) password.
    pub password: String,
    /// The new password.
    pub new_password: String,
    /// MFA code, when the user has a device.
    #[serde(default)]
    pub mfa_code: Option<String>,
}

/// Why a sign-in did not start a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Wrong account, user, password or code, or locked out: one message.
    Failed,
    /// The password is right but an MFA code is needed.
    MfaRequired,
    /// The password is right but must be changed first.
    PasswordChangeRequired,
    /// The new password does not meet the policy.
    WeakPassword(String),
    /// Too many attempts from the client's address: nothing was checked;
    /// try again after this many seconds.
    Throttled(u64),
    /// The sign-in's audit record could not be written, so no session was
    /// started: a sign-in the trail does not show must not happen.
    Unavailable,
}

/// A started session: what the browser gets.
#[derive(Debug, Clone)]
pub struct Started {
    /// The session token (cookie value).
    pub token: String,
    /// The CSRF token.
    pub csrf_token: String,
    /// Who signed in.
    pub user: User,
}

pub(crate) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// SHA-256 (hex) of a token, as stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn unix_now() -> u64 {
    u64::try_from(now_ms() / 1000).unwrap_or_default()
}

/// Checks credentials; on success starts a session. `new_password`, when
/// given, replaces the password first (and satisfies a required change).
async fn attempt(
    state: &AppState,
    account: &str,
    username: &str,
    password_given: &str,
    mfa_code: Option<&str>,
    new_password: Option<&str>,
    source_ip: &str,
) -> Result<Started, Refusal> {
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "sign-in failed on the server's side");
        Refusal::Failed
    };
    let account_id = state
        .store
        .resolve_account(account.trim())
        .await
        .map_err(|e| internal(&e))?;
    let user = match &account_id {
        Some(a) => state
            .store
            .user_by_name(a, username.trim())
            .await
            .map_err(|e| internal(&e))?,
        None => None,
    };
    let Some(user) = user else {
        // Spend the time a password check would, so timing does not tell
        // whether the user exists.
        let _ = verify_password(password_given, &DUMMY_HASH).await;
        audit_login(
            state,
            account_id.as_deref().unwrap_or(account),
            None,
            false,
            false,
            source_ip,
        )
        .await;
        return Err(Refusal::Failed);
    };
    let now = now_ms();
    // A locked account is refused without checking anything, so it gives a
    // guesser nothing to learn.
    let source = lock_source(source_ip);
    let locked = locked_out(state, SigninKind::Console, &user.user_id, &source, now)
        .await
        .map_err(|e| internal(&e))?;
    let password_ok = !locked && {
        let hash = state
            .store
            .password_hash(&user.user_id)
            .await
            .map_err(|e| internal(&e))?;
        match hash.as_deref() {
            Some(h) => verify_password(password_given, h).await,
            None => false,
        }
    };
    if !password_ok {
        if !locked {
            count_failure(state, SigninKind::Console, &user.user_id, &source).await;
        }
        audit_login(
            state,
            &user.account_id,
            Some(&user),
            false,
            false,
            source_ip,
        )
        .await;
        return Err(Refusal::Failed);
    }
    let device = state
        .store
        .enabled_mfa_device(&user.user_id)
        .await
        .map_err(|e| internal(&e))?;
    let mfa_used = match (&device, mfa_code.filter(|c| !c.trim().is_empty())) {
        (None, _) => false,
        (Some(_), None) => return Err(Refusal::MfaRequired),
        (Some(d), Some(code)) => {
            let step = mfa::verify(&d.secret_base32, code, unix_now());
            let fresh = match step {
                Some(s) => state
                    .store
                    .consume_mfa_step(&d.serial_number, s)
                    .await
                    .map_err(|e| internal(&e))?,
                None => false,
            };
            if !fresh {
                // A wrong or replayed code counts like a wrong password, so
                // codes cannot be guessed without limit either.
                count_failure(state, SigninKind::Console, &user.user_id, &source).await;
                audit_login(state, &user.account_id, Some(&user), true, false, source_ip).await;
                return Err(Refusal::Failed);
            }
            true
        }
    };
    match new_password {
        Some(new) => {
            password_policy::check(new, &user.name).map_err(Refusal::WeakPassword)?;
            if new == password_given {
                return Err(Refusal::WeakPassword(
                    "The new password must differ from the current one.".into(),
                ));
            }
            let hash = hash_password(new).await.map_err(|e| internal(&e))?;
            state
                .store
                .set_password(&user.user_id, &hash, false)
                .await
                .map_err(|e| internal(&e))?;
            if user.name == crate::bootstrap::ADMIN_USER {
                // The one-time password is spent: do not leave it on disk.
                let _ = std::fs::remove_file(
                    state.config.data_dir.join(crate::bootstrap::PASSWORD_FILE),
                );
            }
        }
        None if user.password_reset_required => return Err(Refusal::PasswordChangeRequired),
        None => {}
    }
    let _ = state
        .store
        .clear_signin_failures(SigninKind::Console, &user.user_id, &source)
        .await;
    let token = random_token(32);
    let csrf_token = random_token(32);
    let expires = now + SESSION_MS;
    let hash = token_hash(&token);
    state
        .store
        .create_console_session(&hash, &user.user_id, &csrf_token, mfa_used, expires)
        .await
        .map_err(|e| internal(&e))?;
    // The session's own temporary credentials, for the shells it opens.
    let session_token = ids::session_token();
    state
        .store
        .create_temporary_credentials(
            &ids::temporary_access_key_id(),
            &ids::secret_access_key(),
            &session_token,
            &user.user_id,
            Some(&hash),
            mfa_used,
            expires,
        )
        .await
        .map_err(|e| internal(&e))?;
    if !audit_login(
        state,
        &user.account_id,
        Some(&user),
        mfa_used,
        true,
        source_ip,
    )
    .await
    {
        if let Err(e) = state.store.revoke_console_session(&hash).await {
            tracing::error!(error = %e, "cannot end the unrecorded console session");
        }
        return Err(Refusal::Unavailable);
    }
    Ok(Started {
        token,
        csrf_token,
        user,
    })
}

/// The source that failed sign-ins are counted under: the client's address
/// as the per-address rate limit keys it (IPv4 as is, IPv6 by its /64), so
/// one host cannot get fresh counts by moving within its prefix.
pub fn lock_source(source_ip: &str) -> String {
    match source_ip.parse::<std::net::IpAddr>() {
        Ok(ip) => crate::limits::client_key(ip).to_string(),
        Err(_) => source_ip.to_string(),
    }
}

/// Whether sign-ins (and MFA codes) of `user_id` from `source` (see
/// [`lock_source`]) are refused right now after too many failures: those
/// from that source, or, for a source the user has never signed in from,
/// those from all sources together past the backstop's threshold. Failures
/// from elsewhere never lock out an address the user signs in from, so a
/// user name alone no longer lets anyone keep the user locked out.
pub async fn locked_out(
    state: &AppState,
    kind: SigninKind,
    user_id: &str,
    source: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let here = state.store.signin_failures(kind, user_id, source).await?;
    if here.locked_until > now {
        return Ok(true);
    }
    if here.known {
        return Ok(false);
    }
    let all = state
        .store
        .signin_failures(kind, user_id, ALL_SOURCES)
        .await?;
    Ok(all.locked_until > now)
}

/// Counts a wrong password or MFA code of `user_id` from `source`: after
/// [`FREE_FAILURES`] from that source, each further one locks that source
/// out for twice as long as the last (from one second up to 15 minutes);
/// the same schedule applies to all sources together past
/// [`BACKSTOP_FREE_FAILURES`]. Each count is one atomic statement, so
/// guesses sent in parallel are all counted.
pub async fn count_failure(state: &AppState, kind: SigninKind, user_id: &str, source: &str) {
    for (counted, free) in [
        (source, FREE_FAILURES),
        (ALL_SOURCES, BACKSTOP_FREE_FAILURES),
    ] {
        let count = match state
            .store
            .record_signin_failure(kind, user_id, counted)
            .await
        {
            Ok(count) => count,
            Err(e) => {
                tracing::error!(error = %e, "could not count a failed sign-in");
                return;
            }
        };
        if count > free {
            let shift = u32::try_from((count - free - 1).min(20)).unwrap_or(20);
            // From now, not from when the attempt began: the password check
            // before it may have taken a while.
            let until = now_ms() + (1000i64 << shift).min(MAX_LOCK_MS);
            if let Err(e) = state.store.lock_signin(kind, user_id, counted, until).await {
                tracing::error!(error = %e, "could not lock out a user after failed sign-ins");
            }
        }
    }
}

/// Password checks are slow on purpose (Argon2id). They run on the blocking
/// pool, at most one per core at a time, so a flood of sign-ins cannot stall
/// the server's other requests and shells.
static HASHING: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
});

pub(crate) async fn verify_password(given: &str, stored: &str) -> bool {
    let Ok(_permit) = HASHING.acquire().await else {
        return false;
    };
    let (given, stored) = (given.to_owned(), stored.to_owned());
    tokio::task::spawn_blocking(move || password::verify(&given, &stored))
        .await
        .unwrap_or(false)
}

pub(crate) async fn hash_password(new: &str) -> Result<String, String> {
    let _permit = HASHING.acquire().await.map_err(|e| e.to_string())?;
    let new = new.to_owned();
    tokio::task::spawn_blocking(move || password::hash(&new).map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())?
}

/// An Argon2id hash of a random password, checked against when the user does
/// not exist so both paths take as long.
pub(crate) static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| password::hash(&random_token(16)).unwrap_or_default());

async fn audit_login(
    state: &AppState,
    account_id: &str,
    user: Option<&User>,
    mfa_used: bool,
    success: bool,
    source_ip: &str,
) -> bool {
    let identity = match user {
        Some(u) => seashell_audit::UserIdentity::iam_user(&u.account_id, &u.name, &u.user_id),
        None => ConsoleLogin::unknown_user(account_id),
    };
    let record = ConsoleLogin {
        identity,
        region: state.default_region().to_string(),
        login_to: format!("{}/", state.config.public_url()),
        mfa_used,
        mfa_identifier: None,
        mobile: false,
        outcome: if success {
            LoginOutcome::Success
        } else {
            LoginOutcome::failed_authentication()
        },
    }
    .into_builder()
    .source_ip(source_ip)
    .build();
    crate::http::audit(state, record).await
}

/// A `Set-Cookie` value, `SameSite=Strict`.
pub(crate) fn cookie_header(
    name: &str,
    value: &str,
    max_age_s: i64,
    secure: bool,
    http_only: bool,
) -> HeaderValue {
    cookie_header_same_site(name, value, max_age_s, secure, http_only, "Strict")
}

/// A `Set-Cookie` value with the given `SameSite` (`Strict` or `Lax`).
pub(crate) fn cookie_header_same_site(
    name: &str,
    value: &str,
    max_age_s: i64,
    secure: bool,
    http_only: bool,
    same_site: &str,
) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; SameSite={same_site}; Max-Age={max_age_s}");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether the caller is the console's script, which asks for JSON answers
/// instead of pages and redirects.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

fn started_response(state: &AppState, started: &Started, json: bool) -> Response {
    let secure = state.config.serves_https();
    let max_age = SESSION_MS / 1000;
    let mut response = if json {
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({"UserName": started.user.name})),
        )
            .into_response()
    } else {
        (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, HeaderValue::from_static("/"))],
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        cookie_header(SESSION_COOKIE, &started.token, max_age, secure, true),
    );
    // Readable by the page's scripts, which echo it in X-CSRF-Token; useless
    // to another site, which can neither read it nor set the header.
    headers.append(
        header::SET_COOKIE,
        cookie_header(CSRF_COOKIE, &started.csrf_token, max_age, secure, false),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn refusal_response(refusal: &Refusal, json: bool) -> Response {
    let (status, message) = match refusal {
        Refusal::Failed => (StatusCode::UNAUTHORIZED, GENERIC_FAILURE.to_string()),
        Refusal::MfaRequired => (
            StatusCode::UNAUTHORIZED,
            "Enter the code from your MFA device.".to_string(),
        ),
        Refusal::PasswordChangeRequired => (
            StatusCode::FORBIDDEN,
            "You must change your password before you sign in.".to_string(),
        ),
        Refusal::WeakPassword(why) => (StatusCode::BAD_REQUEST, why.clone()),
        Refusal::Throttled(secs) => (StatusCode::TOO_MANY_REQUESTS, throttled_message(*secs)),
        Refusal::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The audit trail cannot be written, so you were not signed in. Try again later."
                .to_string(),
        ),
    };
    let code = match refusal {
        Refusal::Failed => "Failed",
        Refusal::MfaRequired => "MfaRequired",
        Refusal::PasswordChangeRequired => "PasswordChangeRequired",
        Refusal::WeakPassword(_) => "PasswordPolicy",
        Refusal::Throttled(_) => "Throttled",
        Refusal::Unavailable => "Unavailable",
    };
    let mut response = if json {
        (
            status,
            axum::Json(serde_json::json!({"code": code, "message": message})),
        )
            .into_response()
    } else {
        let page = match refusal {
            Refusal::PasswordChangeRequired | Refusal::WeakPassword(_) => password_page(&message),
            _ => signin_page(&message),
        };
        (status, Html(page)).into_response()
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert("x-seashell-signin", HeaderValue::from_static(code));
    if let Refusal::Throttled(secs) = refusal {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
    }
    crate::console::harden(response.headers_mut());
    response
}

/// `GET /signin`: the form, which no other site may frame.
pub async fn signin_form() -> Response {
    let mut response = Html(signin_page("")).into_response();
    crate::console::harden(response.headers_mut());
    response
}

/// Refuses a sign-in posted from a page of another site (login CSRF: a
/// foreign page signing the browser in as the attacker). Browsers send
/// `Origin` on every POST; programs may leave it out.
#[allow(clippy::result_large_err)]
pub(crate) fn same_origin(state: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    crate::gateway::check_origin(headers, &state.config.public_url())
}

/// What a throttled sign-in is told.
pub(crate) fn throttled_message(secs: u64) -> String {
    format!("Too many sign-in attempts from your address. Try again in {secs} seconds.")
}

/// Takes a sign-in token for the peer's address (docs/security.md §5.1):
/// `Err(seconds)` when none is left. Checked before any password is
/// verified or anything is written; a throttled attempt is not audited
/// either, so a flood grows no journal.
pub(crate) fn throttle(state: &AppState, peer: SocketAddr) -> Result<(), u64> {
    state.limits.signin.check(peer.ip()).map_err(|wait| {
        tracing::debug!(%peer, "sign-in throttled");
        state
            .metrics
            .requests
            .get_or_create(&crate::metrics::RequestLabels {
                service: "signin".into(),
                operation: "ConsoleLogin".into(),
                outcome: "Throttled".into(),
            })
            .inc();
        crate::limits::retry_after_secs(wait)
    })
}

/// `POST /signin`.
pub async fn signin(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SigninForm>,
) -> Response {
    if let Err(refused) = same_origin(&state, &headers) {
        return refused;
    }
    let json = wants_json(&headers);
    if let Err(secs) = throttle(&state, peer) {
        return refusal_response(&Refusal::Throttled(secs), json);
    }
    let ip = peer.ip().to_string();
    match attempt(
        &state,
        &form.account,
        &form.username,
        &form.password,
        form.mfa_code.as_deref(),
        None,
        &ip,
    )
    .await
    {
        Ok(started) => started_response(&state, &started, json),
        Err(refusal) => refusal_response(&refusal, json),
    }
}

/// `POST /signin/password`: change the password and sign in.
pub async fn change_password(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<PasswordChangeForm>,
) -> Response {
    if let Err(refused) = same_origin(&state, &headers) {
        return refused;
    }
    let json = wants_json(&headers);
    if let Err(secs) = throttle(&state, peer) {
        return refusal_response(&Refusal::Throttled(secs), json);
    }
    let ip = peer.ip().to_string();
    let result = attempt(
        &state,
        &form.account,
        &form.username,
        &form.password,
        form.mfa_code.as_deref(),
        Some(&form.new_password),
        &ip,
    )
    .await;
    match result {
        Ok(started) => started_response(&state, &started, json),
        Err(refusal) => refusal_response(&refusal, json),
    }
}

/// The session named by the request's cookie, if live.
pub async fn session_of(state: &AppState, headers: &HeaderMap) -> Option<(String, ConsoleSession)> {
    let token = cookie_value(headers, SESSION_COOKIE)?;
    let hash = token_hash(&token);
    match state.store.console_session(&hash).await {
        Ok(Some(session)) => Some((hash, session)),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "cannot read console session");
            None
        }
    }
}

/// Whether a state-changing request carries the session's CSRF token.
pub fn csrf_ok(session: &ConsoleSession, headers: &HeaderMap) -> bool {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(session.csrf_token.as_bytes())))
}

/// A cookie of the request.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// `POST /signout`: ends the session and revokes its credentials. Needs the
/// CSRF token, so another site cannot sign a user out.
pub async fn signout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some((hash, session)) = session_of(&state, &headers).await else {
        return (StatusCode::UNAUTHORIZED, "not signed in\n").into_response();
    };
    if !csrf_ok(&session, &headers) {
        return (StatusCode::FORBIDDEN, "missing or wrong CSRF token\n").into_response();
    }
    if let Err(e) = state.store.revoke_console_session(&hash).await {
        tracing::error!(error = %e, "cannot end console session");
        return (StatusCode::INTERNAL_SERVER_ERROR, "sign-out failed\n").into_response();
    }
    let secure = state.config.serves_https();
    let mut response = if wants_json(&headers) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, HeaderValue::from_static("/signin"))],
        )
            .into_response()
    };
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        cookie_header(SESSION_COOKIE, "", 0, secure, true),
    );
    h.append(
        header::SET_COOKIE,
        cookie_header(CSRF_COOKIE, "", 0, secure, false),
    );
    response
}

/// `GET /whoami`: the signed-in user and the regions served (what the
/// console's script starts from; also what tests use to check a session).
pub async fn whoami(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match session_of(&state, &headers).await {
        Some((_, session)) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            axum::Json(serde_json::json!({
                "Arn": session.arn(),
                "UserName": session.display_name(),
                "Account": session.account_id(),
                "MFAUsed": session.mfa_used,
                "Regions": state.config.regions,
            })),
        )
            .into_response(),
        None => (StatusCode::UNAUTHORIZED, "not signed in\n").into_response(),
    }
}

pub(crate) fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

fn signin_page(message: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in · Seashell</title></head>
<body><main><h1>Sign in to Seashell</h1><p role="alert">{}</p>
<form method="post" action="/signin">
<label>Account ID or alias <input name="account" autocomplete="organization" required></label>
<label>User name <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<label>MFA code <input name="mfa_code" inputmode="numeric" autocomplete="one-time-code"></label>
<button type="submit">Sign in</button></form></main></body></html>"#,
        escape(message)
    )
}

fn password_page(message: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Change password · Seashell</title></head>
<body><main><h1>Change your password</h1><p role="alert">{}</p>
<form method="post" action="/signin/password">
<label>Account ID or alias <input name="account" required></label>
<label>User name <input name="username" autocomplete="username" required></label>
<label>Current password <input name="password" type="password" autocomplete="current-password" required></label>
<label>New password <input name="new_password" type="password" autocomplete="new-password" required></label>
<label>MFA code <input name="mfa_code" inputmode="numeric" autocomplete="one-time-code"></label>
<button type="submit">Change password and sign in</button></form></main></body></html>"#,
        escape(message)
    )
}
