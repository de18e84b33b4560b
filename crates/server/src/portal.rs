//! The IAM Identity Center access portal at `/start` (DESIGN §3): an
//! identity-store user signs in once (password, and MFA code when they have
//! a device), sees the accounts and roles assigned to them, opens the
//! console as a role or copies command-line credentials, approves the
//! device logins of tools (SSO-OIDC), sets their password from an
//! invitation and registers an MFA device. Pages are plain HTML forms;
//! every POST needs the same origin and the session's CSRF token.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use seashell_audit::{EventType, Record};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::http::sso::{identity_of, PORTAL_EVENT_SOURCE};
use crate::services::sso_oidc::SESSION_LIFETIME;
use crate::services::sso_portal;
use crate::signin::{
    cookie_header, cookie_value, escape, hash_password, random_token, same_origin, token_hash,
    verify_password, DUMMY_HASH, GENERIC_FAILURE,
};
use crate::state::AppState;
use crate::store::console::SigninKind;
use crate::store::now_ms;
use crate::store::sso::{PortalSession, SsoUser};
use crate::{mfa, password_policy};

/// The portal session cookie (HttpOnly; forms carry the CSRF token).
pub const PORTAL_COOKIE: &str = "seashell_portal";
/// How long an invitation link stays valid.
pub const INVITATION_MS: i64 = 7 * 24 * 3600 * 1000;

/// The portal's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/start", get(home))
        .route("/start/", get(home))
        .route("/start/signin", post(signin))
        .route("/start/signout", post(signout))
        .route("/start/device", get(device_page).post(device_answer))
        .route("/start/credentials", post(credentials))
        .route("/start/console", post(console))
        .route("/start/setup", get(setup_page).post(setup))
        .route("/start/mfa", get(mfa_page).post(mfa_enable))
        .route("/start/{directory}", get(directory_home))
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{} · Seashell access portal</title></head>
<body><main>{body}</main></body></html>"#,
        escape(title)
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    crate::console::harden(headers);
    response
}

/// A page with a heading and one message.
pub fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    page(
        status,
        title,
        &format!(
            "<h1>{}</h1><p role=\"alert\">{}</p><p><a href=\"/start\">Back to the access portal</a></p>",
            escape(title),
            escape(message)
        ),
    )
}

fn redirect(to: &str) -> Response {
    let location = HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/start"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// Only portal paths are followed after sign-in, so `next` cannot send the
/// user to another site.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with("/start")
                && !n.contains("//")
                && !n.contains('\\')
                && n.chars().all(|c| c.is_ascii_graphic()) =>
        {
            n
        }
        _ => "/start",
    }
}

/// The live portal session of the request, with its token's hash.
pub async fn session_of(state: &AppState, headers: &HeaderMap) -> Option<(String, PortalSession)> {
    let hash = token_hash(&cookie_value(headers, PORTAL_COOKIE)?);
    match state.store.portal_session(&hash).await {
        Ok(session) => session.map(|s| (hash, s)),
        Err(e) => {
            tracing::error!(error = %e, "cannot read portal session");
            None
        }
    }
}

/// The session of a state-changing request: same origin, live session,
/// the session's CSRF token in the form.
#[allow(clippy::result_large_err)] // A ready answer.
pub async fn checked_session(
    state: &AppState,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<(String, PortalSession), Response> {
    same_origin(state, headers)?;
    let Some((hash, session)) = session_of(state, headers).await else {
        return Err(redirect("/start"));
    };
    let ok: bool = csrf.as_bytes().ct_eq(session.csrf_token.as_bytes()).into();
    if !ok {
        return Err(message_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "The form is missing the session's token; reload the portal and try again.",
        ));
    }
    Ok((hash, session))
}

fn signin_page(
    state: &AppState,
    status: StatusCode,
    message: &str,
    directory: &str,
    next: &str,
) -> Response {
    let external = match &state.config.sso.identity_provider {
        Some(idp) => format!(
            r#"<p><a id="idp-signin" href="/start/idp/login?next={}">Sign in with {}</a></p>"#,
            escape(&form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()),
            escape(&idp.name)
        ),
        None => String::new(),
    };
    page(
        status,
        "Sign in",
        &format!(
            r#"<h1>Sign in to the access portal</h1><p role="alert">{}</p>
<form method="post" action="/start/signin">
<input type="hidden" name="directory" value="{}"><input type="hidden" name="next" value="{}">
<label>Username <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<label>MFA code <input name="mfa_code" inputmode="numeric" autocomplete="one-time-code"></label>
<button type="submit">Sign in</button></form>{external}"#,
            escape(message),
            escape(directory),
            escape(next)
        ),
    )
}

async fn home(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    show_home(&state, &headers, "").await
}

async fn directory_home(
    State(state): State<Arc<AppState>>,
    Path(directory): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !directory.starts_with("d-") {
        return page(StatusCode::NOT_FOUND, "Not found", "<h1>Not found</h1>");
    }
    show_home(&state, &headers, &directory).await
}

async fn show_home(state: &AppState, headers: &HeaderMap, directory: &str) -> Response {
    let Some((_, session)) = session_of(state, headers).await else {
        return signin_page(state, StatusCode::OK, "", directory, "/start");
    };
    let roles = match state.store.sso_user_roles(&session.user.user_id).await {
        Ok(roles) => roles,
        Err(e) => {
            tracing::error!(error = %e, "cannot list assignments");
            return message_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "The accounts cannot be listed right now.",
            );
        }
    };
    let mut accounts: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for r in roles {
        accounts
            .entry((r.account_id, r.account_name, r.account_email))
            .or_default()
            .push(r.permission_set_name);
    }
    let csrf = escape(&session.csrf_token);
    let mut body = format!(
        "<h1>AWS access portal</h1><p>Signed in as <strong>{}</strong>.</p>",
        escape(&session.user.user_name)
    );
    if accounts.is_empty() {
        body.push_str("<p>No accounts are assigned to you yet.</p>");
    }
    body.push_str("<ul aria-label=\"Accounts\">");
    for ((id, name, email), sets) in &accounts {
        body.push_str(&format!(
            "<li><h2>{} <span>{}</span></h2><p>{}</p><ul aria-label=\"Roles in {}\">",
            escape(name),
            escape(id),
            escape(email),
            escape(name)
        ));
        for set in sets {
            let hidden = format!(
                r#"<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="account_id" value="{}"><input type="hidden" name="role_name" value="{}">"#,
                escape(id),
                escape(set)
            );
            body.push_str(&format!(
                r#"<li data-account="{}" data-role="{}"><strong>{}</strong>
<form method="post" action="/start/console">{hidden}<button type="submit">Management console</button></form>
<form method="post" action="/start/credentials">{hidden}<button type="submit">Command line or programmatic access</button></form></li>"#,
                escape(id),
                escape(set),
                escape(set)
            ));
        }
        body.push_str("</ul></li>");
    }
    body.push_str(&format!(
        r#"</ul><p><a href="/start/mfa">Register an MFA device</a></p>
<form method="post" action="/start/signout"><input type="hidden" name="csrf" value="{csrf}"><button type="submit">Sign out</button></form>"#
    ));
    page(StatusCode::OK, "Accounts", &body)
}

/// The sign-in form's fields.
#[derive(Deserialize)]
struct SigninForm {
    #[serde(default)]
    directory: String,
    username: String,
    password: String,
    mfa_code: Option<String>,
    next: Option<String>,
}

async fn signin(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SigninForm>,
) -> Response {
    if let Err(refused) = same_origin(&state, &headers) {
        return refused;
    }
    let next = safe_next(form.next.as_deref()).to_string();
    if let Err(secs) = crate::signin::throttle(&state, peer) {
        let mut response = signin_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            &crate::signin::throttled_message(secs),
            &form.directory,
            &next,
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return response;
    }
    match attempt(&state, &form, &peer.ip().to_string()).await {
        Ok(token) => signed_in(&state, &token, &next),
        Err(message) => signin_page(
            &state,
            StatusCode::UNAUTHORIZED,
            message,
            &form.directory,
            &next,
        ),
    }
}

/// Checks the form; on success starts a portal session and returns its
/// token. Refusals say nothing about which part was wrong.
async fn attempt(
    state: &AppState,
    form: &SigninForm,
    source_ip: &str,
) -> Result<String, &'static str> {
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "portal sign-in failed on the server's side");
        GENERIC_FAILURE
    };
    let directory = Some(form.directory.as_str()).filter(|d| !d.is_empty());
    let instance = state
        .store
        .sso_instance(directory)
        .await
        .map_err(|e| internal(&e))?;
    let user = match &instance {
        Some(i) => state
            .store
            .sign_in_user_by_name(&i.identity_store_id, form.username.trim())
            .await
            .map_err(|e| internal(&e))?,
        None => None,
    };
    let Some(user) = user.filter(|u| !u.disabled) else {
        let _ = verify_password(&form.password, &DUMMY_HASH).await;
        audit_signin(state, None, false, source_ip, "PASSWORD").await;
        return Err(GENERIC_FAILURE);
    };
    let now = now_ms();
    let source = crate::signin::lock_source(source_ip);
    let locked = crate::signin::locked_out(state, SigninKind::Portal, &user.user_id, &source, now)
        .await
        .map_err(|e| internal(&e))?;
    let password_ok = !locked
        && match user.password_hash.as_deref() {
            Some(h) => verify_password(&form.password, h).await,
            None => {
                let _ = verify_password(&form.password, &DUMMY_HASH).await;
                false
            }
        };
    if !password_ok {
        if !locked {
            crate::signin::count_failure(state, SigninKind::Portal, &user.user_id, &source).await;
        }
        audit_signin(state, Some(&user), false, source_ip, "PASSWORD").await;
        return Err(GENERIC_FAILURE);
    }
    let device = state
        .store
        .sso_mfa_device(&user.user_id)
        .await
        .map_err(|e| internal(&e))?;
    let code = form
        .mfa_code
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    let mfa_used = match (&device, code) {
        (None, _) => false,
        (Some(_), None) => return Err("Enter the code from your MFA device."),
        (Some((device_id, secret)), Some(code)) => {
            let unix = u64::try_from(now / 1000).unwrap_or_default();
            let fresh = match mfa::verify(secret, code, unix) {
                Some(step) => state
                    .store
                    .consume_sso_mfa_step(device_id, step)
                    .await
                    .map_err(|e| internal(&e))?,
                None => false,
            };
            if !fresh {
                crate::signin::count_failure(state, SigninKind::Portal, &user.user_id, &source)
                    .await;
                audit_signin(state, Some(&user), false, source_ip, "PASSWORD").await;
                return Err(GENERIC_FAILURE);
            }
            true
        }
    };
    let _ = state
        .store
        .clear_signin_failures(SigninKind::Portal, &user.user_id, &source)
        .await;
    start_session(state, &user, mfa_used, source_ip, "PASSWORD")
        .await
        .map_err(|e| internal(&e))
}

/// Starts a portal session for a user who proved who they are (with
/// `credential_type`: `PASSWORD` or `EXTERNAL_IDP`), audited; its token.
pub async fn start_session(
    state: &AppState,
    user: &SsoUser,
    mfa_used: bool,
    source_ip: &str,
    credential_type: &str,
) -> Result<String, SessionError> {
    let token = random_token(32);
    let expires = now_ms() + i64::try_from(SESSION_LIFETIME.as_millis()).unwrap_or(i64::MAX);
    state
        .store
        .create_portal_session(
            &token_hash(&token),
            &user.user_id,
            &random_token(32),
            mfa_used,
            expires,
        )
        .await?;
    if !audit_signin(state, Some(user), true, source_ip, credential_type).await {
        // A sign-in the trail does not show must not happen.
        state
            .store
            .revoke_portal_session(&token_hash(&token))
            .await?;
        return Err(SessionError::Unrecorded);
    }
    Ok(token)
}

/// Why a portal session was not started.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The sign-in's audit record could not be written.
    #[error("the sign-in record cannot be written; no session was started")]
    Unrecorded,
}

/// The answer to a successful sign-in: the session cookie, then `next`.
pub fn signed_in(state: &AppState, token: &str, next: &str) -> Response {
    let mut response = redirect(safe_next(Some(next)));
    let max_age = i64::try_from(SESSION_LIFETIME.as_secs()).unwrap_or(i64::MAX);
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(
            PORTAL_COOKIE,
            token,
            max_age,
            state.config.serves_https(),
            true,
        ),
    );
    response
}

/// The portal sign-in's record: `UserAuthentication` from
/// `signin.amazonaws.com`, as CloudTrail records Identity Center sign-ins.
async fn audit_signin(
    state: &AppState,
    user: Option<&SsoUser>,
    success: bool,
    source_ip: &str,
    credential_type: &str,
) -> bool {
    let identity = match user {
        Some(u) => identity_of(state, u).await,
        None => seashell_audit::UserIdentity::new(seashell_audit::IdentityType::Unknown),
    };
    let record = Record::api_call(
        seashell_audit::signin::SIGNIN_EVENT_SOURCE,
        "UserAuthentication",
        state.default_region(),
        identity,
    )
    .event_type(EventType::AwsConsoleSignIn)
    .source_ip(source_ip)
    .additional_event_data(json!({
        "LoginTo": format!("{}/start", state.config.public_url()),
        "CredentialType": credential_type,
    }));
    let record = if success {
        record.response_elements(json!({"UserAuthentication": "Success"}))
    } else {
        record
            .error("Failed", GENERIC_FAILURE)
            .response_elements(json!({"UserAuthentication": "Failure"}))
    };
    crate::http::audit(state, record.build()).await
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn signout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let (hash, _) = match checked_session(&state, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    if let Err(e) = state.store.revoke_portal_session(&hash).await {
        tracing::error!(error = %e, "cannot end portal session");
    }
    let mut response = redirect("/start");
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(PORTAL_COOKIE, "", 0, state.config.serves_https(), true),
    );
    response
}

#[derive(Deserialize)]
struct DeviceQuery {
    user_code: Option<String>,
}

async fn device_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<DeviceQuery>,
) -> Response {
    let code = q
        .user_code
        .as_deref()
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| c.len() <= 16 && c.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    let Some((_, session)) = session_of(&state, &headers).await else {
        let next = match &code {
            Some(c) => format!("/start/device?user_code={c}"),
            None => "/start/device".to_string(),
        };
        return signin_page(
            &state,
            StatusCode::OK,
            "Sign in to approve the request.",
            "",
            &next,
        );
    };
    let Some(code) = code else {
        return page(
            StatusCode::OK,
            "Authorize request",
            r#"<h1>Authorize request</h1><form method="get" action="/start/device">
<label>Code <input name="user_code" autocomplete="off" required></label><button type="submit">Next</button></form>"#,
        );
    };
    match state.store.pending_device_authorization(&code).await {
        Ok(Some(_)) => page(
            StatusCode::OK,
            "Authorize request",
            &format!(
                r#"<h1>Authorize request</h1><p>A tool asks to use your access as <strong>{}</strong>. Allow it only if the code it shows is <strong id="user-code">{}</strong>.</p>
<form method="post" action="/start/device"><input type="hidden" name="csrf" value="{}"><input type="hidden" name="user_code" value="{}">
<button type="submit" name="decision" value="allow">Allow access</button>
<button type="submit" name="decision" value="deny">Deny</button></form>"#,
                escape(&session.user.user_name),
                escape(&code),
                escape(&session.csrf_token),
                escape(&code)
            ),
        ),
        Ok(None) => message_page(
            StatusCode::NOT_FOUND,
            "Authorize request",
            "This code is not valid, was already used, or has expired. Start the login again.",
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot read device authorization");
            message_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Error",
                "The request cannot be read right now.",
            )
        }
    }
}

#[derive(Deserialize)]
struct DeviceForm {
    csrf: String,
    user_code: String,
    decision: String,
}

async fn device_answer(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<DeviceForm>,
) -> Response {
    let (_, session) = match checked_session(&state, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let approve = match form.decision.as_str() {
        "allow" => true,
        "deny" => false,
        _ => {
            return message_page(
                StatusCode::BAD_REQUEST,
                "Authorize request",
                "Choose Allow or Deny.",
            )
        }
    };
    let code = form.user_code.trim().to_ascii_uppercase();
    match state
        .store
        .answer_device_authorization(&code, &session.user.user_id, session.mfa_used, approve)
        .await
    {
        Ok(true) if approve => page(
            StatusCode::OK,
            "Request approved",
            "<h1 role=\"status\">Request approved</h1><p>You can close this window and go back to the command line.</p>",
        ),
        Ok(true) => page(
            StatusCode::OK,
            "Request denied",
            "<h1 role=\"status\">Request denied</h1><p>The tool gets no access.</p>",
        ),
        Ok(false) => message_page(StatusCode::NOT_FOUND, "Authorize request", "This code is not valid, was already used, or has expired. Start the login again."),
        Err(e) => {
            tracing::error!(error = %e, "cannot answer device authorization");
            message_page(StatusCode::INTERNAL_SERVER_ERROR, "Error", "The answer cannot be recorded right now.")
        }
    }
}

/// A role chosen on the accounts page.
#[derive(Debug, Deserialize)]
pub struct RoleForm {
    /// The session's CSRF token.
    pub csrf: String,
    /// The account.
    pub account_id: String,
    /// The permission set's name.
    pub role_name: String,
}

async fn credentials(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<RoleForm>,
) -> Response {
    let (_, session) = match checked_session(&state, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let issued = sso_portal::issue_role_credentials(
        &state,
        &session.user,
        session.mfa_used,
        &form.account_id,
        &form.role_name,
    )
    .await;
    let record = Record::api_call(
        PORTAL_EVENT_SOURCE,
        "GetRoleCredentials",
        state.default_region(),
        identity_of(&state, &session.user).await,
    )
    .source_ip(peer.ip().to_string())
    .read_only(false)
    .request_parameters(json!({"accountId": form.account_id, "roleName": form.role_name}));
    let record = match &issued {
        Ok(c) => record.response_elements(json!({
            "roleCredentials": {"accessKeyId": c.access_key_id, "expiration": c.expires_at}
        })),
        Err(e) => record.error(e.code.clone(), e.message.clone()),
    };
    if !crate::http::audit(&state, record.build()).await {
        return message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            "The audit trail cannot be written; no credentials were issued.",
        );
    }
    let creds = match issued {
        Ok(c) => c,
        Err(_) => {
            return message_page(
                StatusCode::FORBIDDEN,
                "No access",
                "You are not assigned this role in this account.",
            )
        }
    };
    let expires = chrono::DateTime::from_timestamp_millis(creds.expires_at)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    let exports = format!(
        "export AWS_ACCESS_KEY_ID=\"{}\"\nexport AWS_SECRET_ACCESS_KEY=\"{}\"\nexport AWS_SESSION_TOKEN=\"{}\"",
        creds.access_key_id, creds.secret, creds.session_token
    );
    let file = format!(
        "[{}_{}]\naws_access_key_id={}\naws_secret_access_key={}\naws_session_token={}",
        creds.role.account_id,
        form.role_name,
        creds.access_key_id,
        creds.secret,
        creds.session_token
    );
    page(
        StatusCode::OK,
        "Command line access",
        &format!(
            r#"<h1>Command line or programmatic access</h1><p>{} in account {}; valid until <time>{}</time>.</p>
<h2>Set environment variables</h2><pre id="exports">{}</pre>
<h2>Add a profile to your AWS credentials file</h2><pre id="credentials-file">{}</pre>
<p><a href="/start">Back to the accounts</a></p>"#,
            escape(&form.role_name),
            escape(&creds.role.account_id),
            escape(&expires),
            escape(&exports),
            escape(&file)
        ),
    )
}

/// "Management console": a console session as the role, whose shells get
/// the role's credentials; then the console's page.
async fn console(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<RoleForm>,
) -> Response {
    let (_, session) = match checked_session(&state, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let user = &session.user;
    let role = match state.store.sso_user_roles(&user.user_id).await {
        Ok(roles) => roles
            .into_iter()
            .find(|r| r.account_id == form.account_id && r.permission_set_name == form.role_name),
        Err(e) => {
            tracing::error!(error = %e, "cannot list assignments");
            None
        }
    };
    let record = Record::api_call(
        PORTAL_EVENT_SOURCE,
        "Federate",
        state.default_region(),
        identity_of(&state, user).await,
    )
    .source_ip(peer.ip().to_string())
    .read_only(false)
    .request_parameters(json!({"accountId": form.account_id, "roleName": form.role_name}));
    let Some(role) = role else {
        let record = record.error("ForbiddenException", "No access");
        crate::http::audit(&state, record.build()).await;
        return message_page(
            StatusCode::FORBIDDEN,
            "No access",
            "You are not assigned this role in this account.",
        );
    };
    let token = random_token(32);
    let csrf_token = random_token(32);
    let hash = token_hash(&token);
    // The console session lasts the permission set's session duration, as
    // AWS's federated console sessions do.
    let max_age = role.session_duration_secs;
    let expires_at = now_ms() + max_age * 1000;
    let (key, secret, session_token) = (
        crate::ids::temporary_access_key_id(),
        crate::ids::secret_access_key(),
        crate::ids::session_token(),
    );
    let session_name = sso_portal::session_name(&user.user_name);
    let created = state
        .store
        .create_federated_console_session(
            &hash,
            &role.role_id,
            &session_name,
            &user.user_id,
            &csrf_token,
            session.mfa_used,
            expires_at,
            (&key, &secret, &session_token),
        )
        .await;
    if let Err(e) = created {
        tracing::error!(error = %e, "cannot start federated console session");
        return message_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "The console session cannot be started right now.",
        );
    }
    let record = record.response_elements(json!({
        "roleArn": format!(
            "arn:aws:iam::{}:role/aws-reserved/sso.amazonaws.com/{}",
            role.account_id, role.role_name
        ),
        "accessKeyId": key,
    }));
    if !crate::http::audit(&state, record.build()).await {
        let _ = state.store.revoke_console_session(&hash).await;
        return message_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            "The audit trail cannot be written; the console was not opened.",
        );
    }
    let secure = state.config.serves_https();
    let mut response = redirect("/");
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        cookie_header(crate::signin::SESSION_COOKIE, &token, max_age, secure, true),
    );
    headers.append(
        header::SET_COOKIE,
        cookie_header(
            crate::signin::CSRF_COOKIE,
            &csrf_token,
            max_age,
            secure,
            false,
        ),
    );
    response
}

#[derive(Deserialize)]
struct SetupQuery {
    token: Option<String>,
}

async fn setup_page(State(state): State<Arc<AppState>>, Query(q): Query<SetupQuery>) -> Response {
    let token = q.token.unwrap_or_default();
    match state.store.sso_invitation_user(&token_hash(&token)).await {
        Ok(Some(user)) => setup_form(StatusCode::OK, "", &user, &token),
        _ => message_page(StatusCode::NOT_FOUND, "Set up your password", "This invitation is not valid, was already used, or has expired. Ask your administrator for a new one."),
    }
}

fn setup_form(status: StatusCode, message: &str, user: &SsoUser, token: &str) -> Response {
    page(
        status,
        "Set up your password",
        &format!(
            r#"<h1>Set up your password</h1><p>User <strong>{}</strong></p><p role="alert">{}</p>
<form method="post" action="/start/setup"><input type="hidden" name="token" value="{}">
<label>New password <input name="password" type="password" autocomplete="new-password" required></label>
<label>Confirm password <input name="confirm" type="password" autocomplete="new-password" required></label>
<button type="submit">Set password</button></form>"#,
            escape(&user.user_name),
            escape(message),
            escape(token)
        ),
    )
}

#[derive(Deserialize)]
struct SetupForm {
    token: String,
    password: String,
    confirm: String,
}

async fn setup(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Response {
    if let Err(refused) = same_origin(&state, &headers) {
        return refused;
    }
    let hash = token_hash(&form.token);
    let user = match state.store.sso_invitation_user(&hash).await {
        Ok(Some(user)) => user,
        _ => {
            return message_page(
                StatusCode::NOT_FOUND,
                "Set up your password",
                "This invitation is not valid, was already used, or has expired.",
            )
        }
    };
    if form.password != form.confirm {
        return setup_form(
            StatusCode::BAD_REQUEST,
            "The passwords do not match.",
            &user,
            &form.token,
        );
    }
    if let Err(why) = password_policy::check(&form.password, &user.user_name) {
        return setup_form(StatusCode::BAD_REQUEST, &why, &user, &form.token);
    }
    let password_hash = match hash_password(&form.password).await {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "cannot hash password");
            return setup_form(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The password cannot be set right now.",
                &user,
                &form.token,
            );
        }
    };
    match state
        .store
        .accept_sso_invitation(&hash, &user.user_id, &password_hash)
        .await
    {
        Ok(true) => page(
            StatusCode::OK,
            "Password set",
            "<h1 role=\"status\">Password set</h1><p><a href=\"/start\">Sign in to the access portal</a></p>",
        ),
        _ => message_page(StatusCode::NOT_FOUND, "Set up your password", "This invitation is not valid, was already used, or has expired."),
    }
}

/// Creates a one-time password set-up link for `user_id`; the path and
/// query to give the user (`/start/setup?token=…`).
pub async fn invite(
    state: &crate::store::Store,
    user_id: &str,
) -> Result<String, crate::store::StoreError> {
    let token = random_token(32);
    state
        .create_sso_invitation(&token_hash(&token), user_id, now_ms() + INVITATION_MS)
        .await?;
    Ok(format!("/start/setup?token={token}"))
}

async fn mfa_page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let Some((_, session)) = session_of(&state, &headers).await else {
        return signin_page(&state, StatusCode::OK, "", "", "/start/mfa");
    };
    let secret = mfa::new_secret();
    let device_id = uuid::Uuid::new_v4().to_string();
    if let Err(e) = state
        .store
        .create_sso_mfa_device(&device_id, &session.user.user_id, &secret)
        .await
    {
        tracing::error!(error = %e, "cannot register MFA device");
        return message_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error",
            "The device cannot be registered right now.",
        );
    }
    let uri = format!(
        "otpauth://totp/Seashell:{}?secret={secret}&issuer=Seashell",
        session.user.user_name
    );
    page(
        StatusCode::OK,
        "Register an MFA device",
        &format!(
            r#"<h1>Register an MFA device</h1><p>Add this key to your authenticator app: <code id="mfa-secret">{}</code> (<code>{}</code>), then enter the code it shows.</p>
<form method="post" action="/start/mfa"><input type="hidden" name="csrf" value="{}"><input type="hidden" name="device_id" value="{}">
<label>MFA code <input name="code" inputmode="numeric" autocomplete="one-time-code" required></label><button type="submit">Register</button></form>"#,
            escape(&secret),
            escape(&uri),
            escape(&session.csrf_token),
            escape(&device_id)
        ),
    )
}

#[derive(Deserialize)]
struct MfaForm {
    csrf: String,
    device_id: String,
    code: String,
}

async fn mfa_enable(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<MfaForm>,
) -> Response {
    let (_, session) = match checked_session(&state, &headers, &form.csrf).await {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let user_id = &session.user.user_id;
    let secret = match state
        .store
        .pending_sso_mfa_secret(&form.device_id, user_id)
        .await
    {
        Ok(Some(s)) => s,
        _ => {
            return message_page(
                StatusCode::NOT_FOUND,
                "Register an MFA device",
                "Start the registration again.",
            )
        }
    };
    let unix = u64::try_from(now_ms() / 1000).unwrap_or_default();
    let enabled = match mfa::verify(&secret, form.code.trim(), unix) {
        Some(step) => state
            .store
            .enable_sso_mfa_device(&form.device_id, user_id, step)
            .await
            .unwrap_or(false),
        None => false,
    };
    if enabled {
        page(
            StatusCode::OK,
            "MFA device registered",
            "<h1 role=\"status\">MFA device registered</h1><p>Sign-ins now ask for its code. <a href=\"/start\">Back to the accounts</a></p>",
        )
    } else {
        page(
            StatusCode::BAD_REQUEST,
            "Register an MFA device",
            "<h1>Register an MFA device</h1><p role=\"alert\">The code is not right. <a href=\"/start/mfa\">Start again</a></p>",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_portal_paths_are_followed_after_sign_in() {
        assert_eq!(
            safe_next(Some("/start/device?user_code=BCDF-GHJK")),
            "/start/device?user_code=BCDF-GHJK"
        );
        assert_eq!(safe_next(Some("https://evil.example/start")), "/start");
        assert_eq!(safe_next(Some("//evil.example/start")), "/start");
        assert_eq!(safe_next(Some("/start//evil.example")), "/start");
        assert_eq!(safe_next(Some("/start\\evil")), "/start");
        assert_eq!(safe_next(Some("/console")), "/start");
        assert_eq!(safe_next(None), "/start");
    }
}
