//! Who made a request, once it is authenticated.

use seashell_audit::UserIdentity;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account the caller belongs to.
    pub account_id: String,
    /// The caller's ARN.
    pub arn: String,
    /// The principal's unique ID (`AIDA…` for users).
    pub principal_id: String,
    /// The user name.
    pub user_name: String,
    /// The IAM user ID (`AIDA…`) whose attached policies apply.
    pub user_id: String,
    /// The access key the request was signed with.
    pub access_key_id: String,
    /// For temporary credentials (`ASIA…` with a session token), their
    /// session; `None` for a long-term access key.
    pub session: Option<CallerSession>,
    /// For a role session (AssumeRole), the role; then `user_id` and
    /// `user_name` are empty.
    pub role: Option<RoleSession>,
}

/// The role behind a role session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSession {
    /// `AROA…`.
    pub role_id: String,
    /// The role's name.
    pub role_name: String,
    /// The role's ARN (`arn:aws:iam::<account>:role<path><name>`).
    pub role_arn: String,
    /// `RoleSessionName`.
    pub session_name: String,
    /// For role credentials from IAM Identity Center, the identity-store
    /// user they were issued to.
    pub sso_user_id: Option<String>,
}

/// The session of temporary credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerSession {
    /// When the credentials were issued.
    pub issued_at: chrono::DateTime<chrono::Utc>,
    /// Whether they were issued after an MFA check
    /// (`aws:MultiFactorAuthPresent`).
    pub mfa_authenticated: bool,
}

impl Caller {
    /// Whether the caller proved possession of an MFA device.
    pub fn mfa_authenticated(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.mfa_authenticated)
    }
}

impl Caller {
    /// The caller as an audit record's `userIdentity`.
    pub fn audit_identity(&self) -> UserIdentity {
        if let (Some(role), Some(session)) = (&self.role, &self.session) {
            return UserIdentity::assumed_role(
                &self.account_id,
                &role.role_name,
                &role.role_id,
                &role.session_name,
                seashell_audit::SessionAttributes {
                    creation_date: session.issued_at,
                    mfa_authenticated: session.mfa_authenticated,
                },
            )
            .with_access_key_id(self.access_key_id.clone());
        }
        let identity =
            UserIdentity::iam_user(&self.account_id, &self.user_name, &self.principal_id)
                .with_access_key_id(self.access_key_id.clone());
        match &self.session {
            // Session credentials of an IAM user carry a session context.
            Some(session) => identity.with_session_context(
                seashell_audit::SessionContext::user_session(seashell_audit::SessionAttributes {
                    creation_date: session.issued_at,
                    mfa_authenticated: session.mfa_authenticated,
                }),
            ),
            None => identity,
        }
    }
}
