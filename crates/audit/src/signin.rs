//! `ConsoleLogin` records: one per console sign-in attempt.
//!
//! CloudTrail's shape: `eventSource` `signin.amazonaws.com`, `eventType`
//! `AwsConsoleSignIn`, `requestParameters` null, `responseElements`
//! `{"ConsoleLogin": "Success"|"Failure"}`, `additionalEventData` with
//! `LoginTo`, `MobileVersion` and `MFAUsed` (`"Yes"`/`"No"`), no
//! `requestID`, and on failure only an `errorMessage` ("Failed
//! authentication"), never an `errorCode`.

use serde_json::{Map, Value};

use crate::identity::{IdentityType, UserIdentity};
use crate::record::{EventType, Record, RecordBuilder};
use crate::redact::HIDDEN;

/// The `eventSource` of sign-in records.
pub const SIGNIN_EVENT_SOURCE: &str = "signin.amazonaws.com";

/// The `errorMessage` CloudTrail writes for a failed sign-in.
pub const FAILED_AUTHENTICATION: &str = "Failed authentication";

/// The outcome of a sign-in attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// The principal signed in.
    Success,
    /// The attempt was refused; the message becomes `errorMessage`.
    Failure {
        /// For example [`FAILED_AUTHENTICATION`].
        message: String,
    },
}

impl LoginOutcome {
    /// A failure with CloudTrail's usual message.
    #[must_use]
    pub fn failed_authentication() -> Self {
        Self::Failure {
            message: FAILED_AUTHENTICATION.to_owned(),
        }
    }
}

/// The details of one console sign-in attempt.
#[derive(Debug, Clone)]
pub struct ConsoleLogin {
    /// Who signed in (see [`ConsoleLogin::unknown_user`] for a name that
    /// matched no user).
    pub identity: UserIdentity,
    /// The region of the sign-in endpoint.
    pub region: String,
    /// The console URL the user was heading to (`LoginTo`).
    pub login_to: String,
    /// Whether a second factor was used (`MFAUsed`).
    pub mfa_used: bool,
    /// The MFA device's ARN, if one was used (`MFAIdentifier`).
    pub mfa_identifier: Option<String>,
    /// Whether the sign-in came from the mobile console (`MobileVersion`).
    pub mobile: bool,
    /// Success or failure.
    pub outcome: LoginOutcome,
}

impl ConsoleLogin {
    /// The identity CloudTrail records when the name typed matched no user:
    /// the name is hidden because people sometimes type a password there.
    #[must_use]
    pub fn unknown_user(account_id: &str) -> UserIdentity {
        UserIdentity {
            account_id: Some(account_id.to_owned()),
            user_name: Some(HIDDEN.to_owned()),
            ..UserIdentity::new(IdentityType::IamUser)
        }
    }

    /// Starts the record; chain `source_ip`, `user_agent`, `tls_details`
    /// and finish with [`RecordBuilder::build`].
    #[must_use]
    pub fn into_builder(self) -> RecordBuilder {
        let yes_no = |b: bool| if b { "Yes" } else { "No" };
        let mut data = Map::new();
        data.insert("LoginTo".into(), Value::String(self.login_to));
        data.insert("MobileVersion".into(), yes_no(self.mobile).into());
        if let Some(mfa) = self.mfa_identifier {
            data.insert("MFAIdentifier".into(), Value::String(mfa));
        }
        data.insert("MFAUsed".into(), yes_no(self.mfa_used).into());
        let builder = Record::api_call(
            SIGNIN_EVENT_SOURCE,
            "ConsoleLogin",
            self.region,
            self.identity,
        )
        .event_type(EventType::AwsConsoleSignIn)
        .additional_event_data(Value::Object(data));
        match self.outcome {
            LoginOutcome::Success => builder.response_elements(Value::Object(Map::from_iter([(
                "ConsoleLogin".to_owned(),
                Value::from("Success"),
            )]))),
            // CloudTrail writes no errorCode for sign-in failures.
            LoginOutcome::Failure { message } => {
                builder
                    .error_message(message)
                    .response_elements(Value::Object(Map::from_iter([(
                        "ConsoleLogin".to_owned(),
                        Value::from("Failure"),
                    )])))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn login(outcome: LoginOutcome, identity: UserIdentity) -> crate::RedactedRecord {
        ConsoleLogin {
            identity,
            region: "us-east-1".into(),
            login_to: "https://shell.example/console".into(),
            mfa_used: true,
            mfa_identifier: None,
            mobile: false,
            outcome,
        }
        .into_builder()
        .source_ip("198.51.100.7")
        .user_agent("Mozilla/5.0")
        .build()
    }

    #[test]
    fn success_shape() {
        let rec = login(
            LoginOutcome::Success,
            UserIdentity::iam_user("111122223333", "alice", "AIDAEXAMPLE"),
        );
        let v = serde_json::to_value(&rec).unwrap_or_default();
        assert_eq!(v["eventSource"], "signin.amazonaws.com");
        assert_eq!(v["eventName"], "ConsoleLogin");
        assert_eq!(v["eventType"], "AwsConsoleSignIn");
        assert_eq!(v["responseElements"], json!({"ConsoleLogin": "Success"}));
        assert_eq!(
            v["additionalEventData"],
            json!({"LoginTo": "https://shell.example/console", "MobileVersion": "No", "MFAUsed": "Yes"})
        );
        assert_eq!(v.get("requestParameters"), Some(&Value::Null));
        assert!(v.get("requestID").is_none());
        assert!(v.get("errorCode").is_none() && v.get("errorMessage").is_none());
        assert_eq!(v["readOnly"], false);
    }

    #[test]
    fn failure_shape_for_unknown_user() {
        let rec = login(
            LoginOutcome::failed_authentication(),
            ConsoleLogin::unknown_user("111122223333"),
        );
        let v = serde_json::to_value(&rec).unwrap_or_default();
        assert_eq!(v["responseElements"], json!({"ConsoleLogin": "Failure"}));
        assert_eq!(v["errorMessage"], "Failed authentication");
        assert!(v.get("errorCode").is_none());
        assert_eq!(
            v["userIdentity"],
            json!({"type": "IAMUser", "accountId": "111122223333", "userName": HIDDEN})
        );
        assert!(rec.is_failure());
    }
}
