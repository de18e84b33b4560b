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
}

impl Caller {
    /// The caller as an audit record's `userIdentity`.
    pub fn audit_identity(&self) -> UserIdentity {
        UserIdentity::iam_user(&self.account_id, &self.user_name, &self.principal_id)
            .with_access_key_id(self.access_key_id.clone())
    }
}
