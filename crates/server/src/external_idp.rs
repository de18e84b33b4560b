//! Portal sign-in through an external OpenID Connect identity provider
//! (`[sso.identity_provider]`): issuer discovery, the authorization code
//! flow with PKCE and a nonce (the `oauth2` crate), and the ID token checked
//! with `jsonwebtoken` against the provider's published keys (signature with
//! an asymmetric algorithm only, issuer, audience, expiry) plus the nonce;
//! then the provider's user mapped into the identity store and their groups
//! synchronized from its groups claim. (The `openidconnect` crate would do
//! the same, but its RSA dependency enables `lazy_static/spin_no_std`
//! across the build, which breaks the `jmespath` crate the command line
//! uses.)
//!
//! - `GET /start/idp/login?next=…` sends the browser to the provider; the
//!   state is bound to the browser by an `HttpOnly` cookie and to the
//!   server by a stored row (with the PKCE verifier and nonce), each usable
//!   once within ten minutes.
//! - `GET /start/idp/callback?code=…&state=…` finishes: a portal session,
//!   then `next`.
//!
//! A provider's user is the identity-store user whose external id is
//! `<issuer> <subject>`, created on first sign-in with the username claim as
//! name. A local user of the same name is never taken over: the sign-in is
//! refused until an administrator resolves the clash.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::IdentityProvider;
use crate::portal::{self, safe_next};
use crate::signin::{cookie_header, cookie_header_same_site, token_hash};
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::sso::SsoUser;
use crate::store::StoreError;

/// The cookie binding a pending sign-in to the browser that started it.
const STATE_COOKIE: &str = "seashell_idp_state";
/// How long the user has at the provider.
const LOGIN_MS: i64 = 10 * 60 * 1000;

/// The routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/start/idp/login", get(login))
        .route("/start/idp/callback", get(callback))
}

/// Why a sign-in through the provider failed; the message is for the user.
#[derive(Debug, thiserror::Error)]
enum IdpError {
    #[error("No external identity provider is configured.")]
    NotConfigured,
    #[error("The identity provider cannot be reached or answered wrongly; try again later.")]
    Provider(String),
    #[error("The sign-in expired or was started in another browser; start again.")]
    BadState,
    #[error("The identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("The identity provider's answer could not be verified.")]
    Invalid(String),
    #[error("A user named {0} already exists in the identity store and is not linked to this identity provider; ask your administrator.")]
    NameTaken(String),
    #[error("This user cannot sign in.")]
    Disabled,
    #[error("The sign-in cannot be completed right now.")]
    Internal(String),
}

impl From<StoreError> for IdpError {
    fn from(e: StoreError) -> Self {
        IdpError::Internal(e.to_string())
    }
}

fn http_client() -> Result<oauth2::reqwest::Client, IdpError> {
    // No redirects: a provider must not be able to point the server at
    // other addresses.
    oauth2::reqwest::ClientBuilder::new()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(|e| IdpError::Internal(e.to_string()))
}

fn redirect_url(state: &AppState) -> String {
    format!("{}/start/idp/callback", state.config.public_url())
}

/// What discovery tells (OpenID Connect Discovery 1.0 §3).
#[derive(Debug, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

async fn discover(
    idp: &IdentityProvider,
    http: &oauth2::reqwest::Client,
) -> Result<Metadata, IdpError> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        idp.issuer.trim_end_matches('/')
    );
    let metadata: Metadata = http
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| IdpError::Provider(format!("discovery: {e}")))?
        .json()
        .await
        .map_err(|e| IdpError::Provider(format!("discovery: {e}")))?;
    // The document must be the configured issuer's own (§4.3).
    if metadata.issuer != idp.issuer {
        return Err(IdpError::Provider(format!(
            "discovery names the issuer {} instead of {}",
            metadata.issuer, idp.issuer
        )));
    }
    Ok(metadata)
}

/// The token response with the ID token.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdTokenFields {
    id_token: Option<String>,
}

impl oauth2::ExtraTokenFields for IdTokenFields {}

type OidcClient = oauth2::Client<
    BasicErrorResponse,
    StandardTokenResponse<IdTokenFields, BasicTokenType>,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

fn oauth_client(
    state: &AppState,
    idp: &IdentityProvider,
    metadata: &Metadata,
) -> Result<OidcClient, IdpError> {
    let bad = |e: oauth2::url::ParseError| IdpError::Provider(e.to_string());
    Ok(oauth2::Client::new(ClientId::new(idp.client_id.clone()))
        .set_client_secret(ClientSecret::new(idp.client_secret.clone()))
        .set_auth_uri(AuthUrl::new(metadata.authorization_endpoint.clone()).map_err(bad)?)
        .set_token_uri(TokenUrl::new(metadata.token_endpoint.clone()).map_err(bad)?)
        .set_redirect_uri(RedirectUrl::new(redirect_url(state)).map_err(bad)?))
}

/// Signature algorithms an ID token may use: asymmetric ones only, so a
/// token cannot be "signed" with a public key as an HMAC secret.
const ID_TOKEN_ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// The verified claims of an ID token: signed by one of the provider's
/// published keys, for this client, from this issuer, unexpired, and with
/// the nonce of this sign-in.
async fn verify_id_token(
    idp: &IdentityProvider,
    metadata: &Metadata,
    http: &oauth2::reqwest::Client,
    token: &str,
    nonce: &str,
) -> Result<Value, IdpError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| IdpError::Invalid(e.to_string()))?;
    if !ID_TOKEN_ALGORITHMS.contains(&header.alg) {
        return Err(IdpError::Invalid(format!(
            "algorithm {:?} refused",
            header.alg
        )));
    }
    let keys: jsonwebtoken::jwk::JwkSet = http
        .get(&metadata.jwks_uri)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| IdpError::Provider(format!("keys: {e}")))?
        .json()
        .await
        .map_err(|e| IdpError::Provider(format!("keys: {e}")))?;
    let jwk = match &header.kid {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or_else(|| IdpError::Invalid("no published key signed the ID token".into()))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| IdpError::Invalid(e.to_string()))?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[idp.issuer.as_str()]);
    validation.set_audience(&[idp.client_id.as_str()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 60;
    let claims: Value = jsonwebtoken::decode(token, &key, &validation)
        .map_err(|e| IdpError::Invalid(e.to_string()))?
        .claims;
    let same_nonce = claims
        .get("nonce")
        .and_then(Value::as_str)
        .is_some_and(|n| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                n.as_bytes(),
                nonce.as_bytes(),
            ))
        });
    if !same_nonce {
        return Err(IdpError::Invalid("the nonce does not match".into()));
    }
    Ok(claims)
}

fn respond(result: Result<Response, IdpError>) -> Response {
    match result {
        Ok(r) => r,
        Err(e) => {
            let status = match &e {
                IdpError::NotConfigured => StatusCode::NOT_FOUND,
                IdpError::Provider(_) => StatusCode::BAD_GATEWAY,
                IdpError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::UNAUTHORIZED,
            };
            match &e {
                IdpError::Provider(d) | IdpError::Invalid(d) | IdpError::Internal(d) => {
                    tracing::warn!(detail = %d, "identity provider sign-in failed");
                }
                other => tracing::info!(reason = %other, "identity provider sign-in refused"),
            }
            portal::message_page(status, "Sign in", &e.to_string())
        }
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login(State(state): State<Arc<AppState>>, Query(q): Query<LoginQuery>) -> Response {
    respond(start(&state, q.next.as_deref()).await)
}

async fn start(state: &AppState, next: Option<&str>) -> Result<Response, IdpError> {
    let idp = state
        .config
        .sso
        .identity_provider
        .as_ref()
        .ok_or(IdpError::NotConfigured)?;
    let http = http_client()?;
    let metadata = discover(idp, &http).await?;
    let client = oauth_client(state, idp, &metadata)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let nonce = CsrfToken::new_random();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new(idp.groups_claim.clone()))
        .add_extra_param("nonce", nonce.secret())
        .set_pkce_challenge(challenge)
        .url();
    state
        .store
        .create_idp_login(
            &token_hash(csrf.secret()),
            verifier.secret(),
            nonce.secret(),
            safe_next(next),
            now_ms() + LOGIN_MS,
        )
        .await?;
    let location =
        HeaderValue::from_str(url.as_str()).map_err(|e| IdpError::Internal(e.to_string()))?;
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    // Lax, not Strict: the provider's redirect back is a cross-site
    // navigation, and the cookie must come with it.
    let cookie = cookie_header_same_site(
        STATE_COOKIE,
        csrf.secret(),
        LOGIN_MS / 1000,
        state.config.serves_https(),
        true,
        "Lax",
    );
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let mut response = respond(finish(&state, &headers, q, &peer.ip().to_string()).await);
    // The state is spent either way.
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(STATE_COOKIE, "", 0, state.config.serves_https(), true),
    );
    response
}

async fn finish(
    state: &AppState,
    headers: &HeaderMap,
    q: CallbackQuery,
    source_ip: &str,
) -> Result<Response, IdpError> {
    let idp = state
        .config
        .sso
        .identity_provider
        .as_ref()
        .ok_or(IdpError::NotConfigured)?;
    let given = q.state.as_deref().ok_or(IdpError::BadState)?;
    let cookie = crate::signin::cookie_value(headers, STATE_COOKIE).ok_or(IdpError::BadState)?;
    let same: bool = subtle::ConstantTimeEq::ct_eq(given.as_bytes(), cookie.as_bytes()).into();
    if !same {
        return Err(IdpError::BadState);
    }
    let (verifier, nonce, next) = state
        .store
        .take_idp_login(&token_hash(given))
        .await?
        .ok_or(IdpError::BadState)?;
    if let Some(error) = q.error {
        let detail = q.error_description.unwrap_or_default();
        return Err(IdpError::Refused(format!("{error:.64} {detail:.200}")));
    }
    let code = q.code.ok_or(IdpError::BadState)?;
    let http = http_client()?;
    let metadata = discover(idp, &http).await?;
    let client = oauth_client(state, idp, &metadata)?;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier))
        .request_async(&http)
        .await
        .map_err(|e| IdpError::Refused(format!("{e}")))?;
    let id_token = tokens
        .extra_fields()
        .id_token
        .clone()
        .ok_or_else(|| IdpError::Invalid("no ID token".into()))?;
    let payload = verify_id_token(idp, &metadata, &http, &id_token, &nonce).await?;
    let subject = payload
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or_else(|| IdpError::Invalid("no subject".into()))?;
    let user_name = payload
        .get(&idp.username_claim)
        .and_then(Value::as_str)
        .or_else(|| payload.get("email").and_then(Value::as_str))
        .unwrap_or(subject)
        .to_string();
    let display_name = payload
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(&user_name)
        .to_string();
    let email = payload.get("email").and_then(Value::as_str);
    let groups: Vec<String> = payload
        .get(&idp.groups_claim)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter(|g| !g.is_empty() && g.len() <= 128)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let user = map_user(
        state,
        idp,
        &format!("{} {subject}", idp.issuer),
        &user_name,
        &display_name,
        email,
        &groups,
    )
    .await?;
    let token = portal::start_session(state, &user, false, source_ip, "EXTERNAL_IDP")
        .await
        .map_err(|e| IdpError::Internal(e.to_string()))?;
    Ok(portal::signed_in(state, &token, &next))
}

/// The identity-store user of an external identity, created on first
/// sign-in; its groups set to the provider's.
async fn map_user(
    state: &AppState,
    idp: &IdentityProvider,
    external_id: &str,
    user_name: &str,
    display_name: &str,
    email: Option<&str>,
    groups: &[String],
) -> Result<SsoUser, IdpError> {
    let store = &state.store;
    let user = match store.sso_user_by_external_id(external_id).await? {
        Some(user) => user,
        None => {
            let instance = store
                .sso_instance(idp.identity_store_id.as_deref())
                .await?
                .ok_or_else(|| IdpError::Internal("no Identity Center instance".into()))?;
            match store
                .create_external_sso_user(
                    &instance.identity_store_id,
                    user_name,
                    display_name,
                    email,
                    external_id,
                )
                .await
            {
                Ok(user) => user,
                Err(StoreError::AlreadyExists(_)) => {
                    return Err(IdpError::NameTaken(user_name.to_string()))
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    if user.disabled {
        return Err(IdpError::Disabled);
    }
    store
        .set_external_user_groups(
            &user.identity_store_id,
            &user.user_id,
            &format!("{} group ", idp.issuer),
            groups,
        )
        .await?;
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asymmetric_algorithms_sign_id_tokens() {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            assert!(!ID_TOKEN_ALGORITHMS.contains(&alg));
        }
        assert!(ID_TOKEN_ALGORITHMS.contains(&Algorithm::RS256));
    }
}
