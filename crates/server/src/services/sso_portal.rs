//! The SSO portal API (DESIGN §2, botocore's `sso`): the accounts and roles
//! assigned to the holder of an access token, their role credentials, and
//! Logout. Requests carry the access token from SSO-OIDC CreateToken in the
//! `x-amz-sso_bearer_token` header instead of a signature.

use base64::Engine;
use http::StatusCode;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::ids;
use crate::signin::token_hash;
use crate::state::AppState;
use crate::store::now_ms;
use crate::store::sso::{AssignedRole, SsoToken, SsoUser, TokenKind};

/// The header the access token travels in.
pub const TOKEN_HEADER: &str = "x-amz-sso_bearer_token";
const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "UnauthorizedException",
        "Session token not found or invalid",
    )
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "InvalidRequestException", message)
}

/// The live token a request carries.
pub async fn token_of(state: &AppState, token: Option<&str>) -> Result<SsoToken, ApiError> {
    let token = token.filter(|t| !t.is_empty()).ok_or_else(unauthorized)?;
    state
        .store
        .sso_token(&token_hash(token), TokenKind::Access)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(unauthorized)
}

/// What an operation gives back.
#[derive(Debug)]
pub struct PortalReply {
    /// The JSON reply.
    pub body: Value,
    /// Whose token it was.
    pub user: SsoUser,
    /// `requestParameters` of the audit record.
    pub request_parameters: Value,
    /// `responseElements` of the audit record (never a secret).
    pub response_elements: Option<Value>,
}

/// A page of `items` from the opaque `next_token`, and the token of the
/// next page if any.
fn page<T: Clone>(
    items: &[T],
    next_token: Option<&str>,
    max_results: Option<&str>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = match max_results {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| invalid(format!("max_result must be between 1 and {MAX_PAGE}.")))?,
    };
    let start = match next_token {
        None => 0,
        Some(token) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|n| *n <= items.len())
            .ok_or_else(|| invalid("The next_token is not valid."))?,
    };
    let end = (start + size).min(items.len());
    let next = (end < items.len())
        .then(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(end.to_string()));
    Ok((items[start..end].to_vec(), next))
}

async fn roles_of(state: &AppState, user: &SsoUser) -> Result<Vec<AssignedRole>, ApiError> {
    state
        .store
        .sso_user_roles(&user.user_id)
        .await
        .map_err(|e| ApiError::internal(&e))
}

/// `GET /assignment/accounts`.
pub async fn list_accounts(
    state: &AppState,
    token: &SsoToken,
    next_token: Option<&str>,
    max_results: Option<&str>,
) -> Result<PortalReply, ApiError> {
    let mut accounts: Vec<(String, String, String)> = Vec::new();
    for role in roles_of(state, &token.user).await? {
        if accounts.last().map(|a| &a.0) != Some(&role.account_id) {
            accounts.push((role.account_id, role.account_name, role.account_email));
        }
    }
    let (shown, next) = page(&accounts, next_token, max_results)?;
    let list: Vec<Value> = shown
        .iter()
        .map(|(id, name, email)| json!({"accountId": id, "accountName": name, "emailAddress": email}))
        .collect();
    let mut body = json!({ "accountList": list });
    if let Some(next) = next {
        body["nextToken"] = json!(next);
    }
    Ok(PortalReply {
        body,
        user: token.user.clone(),
        request_parameters: json!({}),
        response_elements: None,
    })
}

/// `GET /assignment/roles`.
pub async fn list_account_roles(
    state: &AppState,
    token: &SsoToken,
    account_id: Option<&str>,
    next_token: Option<&str>,
    max_results: Option<&str>,
) -> Result<PortalReply, ApiError> {
    let account_id = account_id
        .filter(|a| !a.is_empty())
        .ok_or_else(|| invalid("account_id is required."))?;
    let roles: Vec<String> = roles_of(state, &token.user)
        .await?
        .into_iter()
        .filter(|r| r.account_id == account_id)
        .map(|r| r.permission_set_name)
        .collect();
    let (shown, next) = page(&roles, next_token, max_results)?;
    let list: Vec<Value> = shown
        .iter()
        .map(|name| json!({"roleName": name, "accountId": account_id}))
        .collect();
    let mut body = json!({ "roleList": list });
    if let Some(next) = next {
        body["nextToken"] = json!(next);
    }
    Ok(PortalReply {
        body,
        user: token.user.clone(),
        request_parameters: json!({"accountId": account_id}),
        response_elements: None,
    })
}

/// Role credentials an identity-store user was just given.
#[derive(Debug, Clone)]
pub struct RoleCredentials {
    /// `ASIA…`.
    pub access_key_id: String,
    /// The secret.
    pub secret: String,
    /// The session token.
    pub session_token: String,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
    /// The role they are a session of.
    pub role: AssignedRole,
}

/// Issues credentials for `role_name` (a permission set's name) in
/// `account_id`, if the user is assigned it there. The session is named
/// after the user, so the caller's ARN ends in their user name.
pub async fn issue_role_credentials(
    state: &AppState,
    user: &SsoUser,
    mfa_used: bool,
    account_id: &str,
    role_name: &str,
) -> Result<RoleCredentials, ApiError> {
    let role = roles_of(state, user)
        .await?
        .into_iter()
        .find(|r| r.account_id == account_id && r.permission_set_name == role_name)
        .ok_or_else(|| ApiError::new(StatusCode::FORBIDDEN, "ForbiddenException", "No access"))?;
    let creds = RoleCredentials {
        access_key_id: ids::temporary_access_key_id(),
        secret: ids::secret_access_key(),
        session_token: ids::session_token(),
        expires_at: now_ms() + role.session_duration_secs * 1000,
        role,
    };
    state
        .store
        .create_role_credentials(
            &creds.access_key_id,
            &creds.secret,
            &creds.session_token,
            &creds.role.role_id,
            &session_name(&user.user_name),
            mfa_used,
            creds.expires_at,
            Some(&user.user_id),
        )
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(creds)
}

/// A role session name for a user name: STS's alphabet (`[\w+=,.@-]`),
/// 2 to 64 characters.
pub fn session_name(user_name: &str) -> String {
    let mut name: String = user_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    while name.len() < 2 {
        name.push('_');
    }
    name
}

/// `GET /federation/credentials`.
pub async fn get_role_credentials(
    state: &AppState,
    token: &SsoToken,
    account_id: Option<&str>,
    role_name: Option<&str>,
) -> Result<PortalReply, ApiError> {
    let account_id = account_id
        .filter(|a| !a.is_empty())
        .ok_or_else(|| invalid("account_id is required."))?;
    let role_name = role_name
        .filter(|r| !r.is_empty())
        .ok_or_else(|| invalid("role_name is required."))?;
    let creds =
        issue_role_credentials(state, &token.user, token.mfa_used, account_id, role_name).await?;
    Ok(PortalReply {
        body: json!({"roleCredentials": {
            "accessKeyId": creds.access_key_id,
            "secretAccessKey": creds.secret,
            "sessionToken": creds.session_token,
            "expiration": creds.expires_at,
        }}),
        user: token.user.clone(),
        request_parameters: json!({"accountId": account_id, "roleName": role_name}),
        response_elements: Some(json!({
            "roleCredentials": {"accessKeyId": creds.access_key_id, "expiration": creds.expires_at},
            "roleArn": format!(
                "arn:aws:iam::{}:role/aws-reserved/sso.amazonaws.com/{}",
                creds.role.account_id, creds.role.role_name
            ),
        })),
    })
}

/// `POST /logout`.
pub async fn logout(state: &AppState, token: &SsoToken) -> Result<PortalReply, ApiError> {
    state
        .store
        .revoke_sso_tokens(&token.client_id, &token.user.user_id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(PortalReply {
        body: json!({}),
        user: token.user.clone(),
        request_parameters: json!({}),
        response_elements: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_walk_the_whole_list_once() {
        let items: Vec<u32> = (0..45).collect();
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (shown, next) = page(&items, token.as_deref(), Some("20")).expect("a page");
            seen.extend(shown);
            match next {
                Some(n) => token = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, items);
        assert!(page(&items, Some("bogus!"), None).is_err());
        assert!(page(&items, None, Some("0")).is_err());
        assert!(page(&items, None, Some("101")).is_err());
    }

    #[test]
    fn session_names_fit_sts_rules() {
        assert_eq!(session_name("alice@example.com"), "alice@example.com");
        assert_eq!(session_name("a b/c"), "a_b_c");
        assert_eq!(session_name("x"), "x_");
        assert_eq!(session_name(&"y".repeat(80)).len(), 64);
    }
}
