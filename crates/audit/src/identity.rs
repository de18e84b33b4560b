//! `userIdentity`: who made the request, in CloudTrail's shape.
//!
//! Members are omitted when unknown, as CloudTrail does; `sessionContext` is
//! present only for temporary credentials (assumed roles, federation, console
//! sessions).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::time_format;

/// The kind of principal behind a request (`userIdentity.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IdentityType {
    /// A long-term user of the account.
    #[serde(rename = "IAMUser")]
    IamUser,
    /// Temporary credentials from assuming a role (includes SSO sessions).
    AssumedRole,
    /// The account's root user.
    Root,
    /// Temporary credentials from a federation token.
    FederatedUser,
    /// A service acting on its own behalf.
    #[serde(rename = "AWSService")]
    AwsService,
    /// A user of an IAM Identity Center identity store (portal sign-in,
    /// SSO-OIDC tokens, the SSO portal API).
    IdentityCenterUser,
    /// The caller could not be identified (for example a failed sign-in).
    Unknown,
}

impl IdentityType {
    /// The name CloudTrail prints for this type.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IamUser => "IAMUser",
            Self::AssumedRole => "AssumedRole",
            Self::Root => "Root",
            Self::FederatedUser => "FederatedUser",
            Self::AwsService => "AWSService",
            Self::IdentityCenterUser => "IdentityCenterUser",
            Self::Unknown => "Unknown",
        }
    }
}

/// The `userIdentity` element of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    /// The kind of principal.
    #[serde(rename = "type")]
    pub identity_type: IdentityType,
    /// Unique id of the principal (`AIDA…` for users, `AROA…:session` for roles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// ARN of the principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Account that owns the principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Access key that signed the request (never its secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Friendly name of a user (absent for assumed roles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// Present when the request used temporary credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_context: Option<SessionContext>,
    /// The service that made the request on the principal's behalf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_by: Option<String>,
    /// For an Identity Center user, who in which identity store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<OnBehalfOf>,
}

/// `userIdentity.onBehalfOf`: an identity-store user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnBehalfOf {
    /// The identity store's UserId.
    pub user_id: String,
    /// `arn:aws:identitystore::<account>:identitystore/<d-…>`.
    pub identity_store_arn: String,
}

impl UserIdentity {
    /// An identity of `identity_type` with every optional member unset.
    #[must_use]
    pub fn new(identity_type: IdentityType) -> Self {
        Self {
            identity_type,
            principal_id: None,
            arn: None,
            account_id: None,
            access_key_id: None,
            user_name: None,
            session_context: None,
            invoked_by: None,
            on_behalf_of: None,
        }
    }

    /// An identity-store user of IAM Identity Center, in the account that
    /// holds the instance. `user_name` is kept so LookupEvents can find the
    /// user's records by name.
    #[must_use]
    pub fn identity_center_user(
        account_id: &str,
        identity_store_id: &str,
        user_id: &str,
        user_name: &str,
    ) -> Self {
        Self {
            principal_id: Some(user_id.to_owned()),
            account_id: Some(account_id.to_owned()),
            user_name: Some(user_name.to_owned()),
            on_behalf_of: Some(OnBehalfOf {
                user_id: user_id.to_owned(),
                identity_store_arn: format!(
                    "arn:aws:identitystore::{account_id}:identitystore/{identity_store_id}"
                ),
            }),
            ..Self::new(IdentityType::IdentityCenterUser)
        }
    }

    /// A long-term user: `arn:aws:iam::<account>:user/<name>`.
    #[must_use]
    pub fn iam_user(account_id: &str, user_name: &str, principal_id: &str) -> Self {
        Self {
            principal_id: Some(principal_id.to_owned()),
            arn: Some(format!("arn:aws:iam::{account_id}:user/{user_name}")),
            account_id: Some(account_id.to_owned()),
            user_name: Some(user_name.to_owned()),
            ..Self::new(IdentityType::IamUser)
        }
    }

    /// A role session: principal `<role id>:<session>`, ARN
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`, issuer the role.
    #[must_use]
    pub fn assumed_role(
        account_id: &str,
        role_name: &str,
        role_id: &str,
        session_name: &str,
        attributes: SessionAttributes,
    ) -> Self {
        Self {
            principal_id: Some(format!("{role_id}:{session_name}")),
            arn: Some(format!(
                "arn:aws:sts::{account_id}:assumed-role/{role_name}/{session_name}"
            )),
            account_id: Some(account_id.to_owned()),
            session_context: Some(SessionContext {
                session_issuer: Some(SessionIssuer {
                    issuer_type: Some(IssuerType::Role),
                    principal_id: Some(role_id.to_owned()),
                    arn: Some(format!("arn:aws:iam::{account_id}:role/{role_name}")),
                    account_id: Some(account_id.to_owned()),
                    user_name: Some(role_name.to_owned()),
                }),
                web_id_federation_data: Some(WebIdFederationData::default()),
                attributes: Some(attributes),
                source_identity: None,
            }),
            ..Self::new(IdentityType::AssumedRole)
        }
    }

    /// The account's root user: `arn:aws:iam::<account>:root`.
    #[must_use]
    pub fn root(account_id: &str) -> Self {
        Self {
            principal_id: Some(account_id.to_owned()),
            arn: Some(format!("arn:aws:iam::{account_id}:root")),
            account_id: Some(account_id.to_owned()),
            ..Self::new(IdentityType::Root)
        }
    }

    /// Sets the access key that signed the request.
    #[must_use]
    pub fn with_access_key_id(mut self, access_key_id: impl Into<String>) -> Self {
        self.access_key_id = Some(access_key_id.into());
        self
    }

    /// Sets the session context (temporary credentials).
    #[must_use]
    pub fn with_session_context(mut self, context: SessionContext) -> Self {
        self.session_context = Some(context);
        self
    }

    /// The name LookupEvents reports as `Username`: the user name, else the
    /// role session name (last ARN segment of an assumed role), else `root`.
    #[must_use]
    pub fn lookup_username(&self) -> Option<&str> {
        if let Some(name) = self.user_name.as_deref() {
            return Some(name);
        }
        match self.identity_type {
            IdentityType::Root => Some("root"),
            IdentityType::AssumedRole | IdentityType::FederatedUser => self
                .arn
                .as_deref()
                .and_then(|arn| arn.rsplit('/').next())
                .filter(|s| !s.is_empty()),
            _ => None,
        }
    }
}

/// `userIdentity.sessionContext`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    /// Source of the temporary credentials (the role, for assumed roles).
    /// CloudTrail prints `{}` for sessions that have no issuer (console
    /// sessions of long-term users), which `Some(SessionIssuer::default())` gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_issuer: Option<SessionIssuer>,
    /// Web identity federation details; `{}` when the session is not federated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_id_federation_data: Option<WebIdFederationData>,
    /// When the session began and whether it was MFA-authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<SessionAttributes>,
    /// The source identity set when the role was assumed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
}

impl SessionContext {
    /// The context CloudTrail writes for a long-term user's console
    /// session: an empty issuer and federation data (`{}`), and the
    /// session's attributes.
    #[must_use]
    pub fn user_session(attributes: SessionAttributes) -> Self {
        Self {
            session_issuer: Some(SessionIssuer::default()),
            web_id_federation_data: Some(WebIdFederationData::default()),
            attributes: Some(attributes),
            source_identity: None,
        }
    }
}

/// The kind of principal that issued a session (`sessionIssuer.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IssuerType {
    /// A role (assumed-role and SSO sessions).
    Role,
    /// A user (federation tokens).
    #[serde(rename = "IAMUser")]
    IamUser,
    /// The root user.
    Root,
}

/// `userIdentity.sessionContext.sessionIssuer`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer {
    /// Kind of issuer.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub issuer_type: Option<IssuerType>,
    /// Unique id of the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// ARN of the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Account that owns the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Friendly name of the issuer (the role name for roles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
}

/// `userIdentity.sessionContext.webIdFederationData`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebIdFederationData {
    /// The identity provider that authenticated the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub federated_provider: Option<String>,
    /// Claims passed by the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `userIdentity.sessionContext.attributes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributes {
    /// When the temporary credentials were issued.
    #[serde(with = "time_format::required")]
    pub creation_date: DateTime<Utc>,
    /// Whether the session was authenticated with MFA. CloudTrail prints
    /// this as the string `"true"` or `"false"`.
    #[serde(with = "bool_string")]
    pub mfa_authenticated: bool,
}

/// CloudTrail prints some booleans as JSON strings; accept either on input.
pub(crate) mod bool_string {
    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's `with` passes `&T`
    pub(crate) fn serialize<S: Serializer>(value: &bool, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if *value { "true" } else { "false" })
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<bool, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Bool(bool),
            Text(String),
        }
        match Either::deserialize(deserializer)? {
            Either::Bool(b) => Ok(b),
            Either::Text(t) if t.eq_ignore_ascii_case("true") => Ok(true),
            Either::Text(t) if t.eq_ignore_ascii_case("false") => Ok(false),
            Either::Text(t) => Err(serde::de::Error::custom(format!(
                "expected \"true\" or \"false\", found {t:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn iam_user_omits_unknown_members() {
        let id = UserIdentity::iam_user("111122223333", "alice", "AIDAEXAMPLE")
            .with_access_key_id("AKIAEXAMPLE");
        let v = serde_json::to_value(&id).ok();
        assert_eq!(
            v,
            Some(json!({
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLE",
                "arn": "arn:aws:iam::111122223333:user/alice",
                "accountId": "111122223333",
                "accessKeyId": "AKIAEXAMPLE",
                "userName": "alice"
            }))
        );
        assert_eq!(id.lookup_username(), Some("alice"));
    }

    #[test]
    fn assumed_role_has_cloudtrail_session_context() {
        let created = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single();
        let Some(created) = created else {
            panic!("valid date");
        };
        let id = UserIdentity::assumed_role(
            "111122223333",
            "Admin",
            "AROAEXAMPLE",
            "bob",
            SessionAttributes {
                creation_date: created,
                mfa_authenticated: true,
            },
        );
        let v = serde_json::to_value(&id).unwrap_or_default();
        assert_eq!(v["type"], "AssumedRole");
        assert_eq!(v["principalId"], "AROAEXAMPLE:bob");
        assert_eq!(v["arn"], "arn:aws:sts::111122223333:assumed-role/Admin/bob");
        assert_eq!(v["sessionContext"]["sessionIssuer"]["type"], "Role");
        assert_eq!(v["sessionContext"]["sessionIssuer"]["userName"], "Admin");
        assert_eq!(v["sessionContext"]["webIdFederationData"], json!({}));
        assert_eq!(
            v["sessionContext"]["attributes"],
            json!({"creationDate": "2026-01-02T03:04:05Z", "mfaAuthenticated": "true"})
        );
        assert_eq!(id.lookup_username(), Some("bob"));
        let back: Result<UserIdentity, _> = serde_json::from_value(v);
        assert_eq!(back.ok(), Some(id));
    }

    #[test]
    fn console_session_of_a_user_prints_empty_issuer() {
        let created = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single();
        let Some(created) = created else {
            panic!("valid date");
        };
        let id = UserIdentity::iam_user("111122223333", "alice", "AIDAEXAMPLE")
            .with_session_context(SessionContext::user_session(SessionAttributes {
                creation_date: created,
                mfa_authenticated: false,
            }));
        let v = serde_json::to_value(&id).unwrap_or_default();
        assert_eq!(
            v["sessionContext"],
            json!({"sessionIssuer": {}, "webIdFederationData": {},
                   "attributes": {"creationDate": "2026-01-02T03:04:05Z", "mfaAuthenticated": "false"}})
        );
    }

    #[test]
    fn root_lookup_name_is_root() {
        assert_eq!(UserIdentity::root("1").lookup_username(), Some("root"));
        assert_eq!(
            UserIdentity::new(IdentityType::Unknown).lookup_username(),
            None
        );
    }

    #[test]
    fn mfa_flag_accepts_string_or_bool() {
        let a: Result<SessionAttributes, _> = serde_json::from_value(
            json!({"creationDate": "2026-01-02T03:04:05Z", "mfaAuthenticated": false}),
        );
        assert_eq!(a.map(|a| a.mfa_authenticated).ok(), Some(false));
        let b: Result<SessionAttributes, _> = serde_json::from_value(
            json!({"creationDate": "2026-01-02T03:04:05Z", "mfaAuthenticated": "maybe"}),
        );
        assert!(b.is_err());
    }
}
