//! Secret hygiene: what never reaches a sink.
//!
//! Members are matched by name, case-insensitively and ignoring `_` and `-`
//! (`SecretAccessKey`, `secret_access_key` and `secretAccessKey` are one
//! name), at any depth of `requestParameters`, `responseElements` and
//! `additionalEventData`. A matched member's value is replaced with
//! [`HIDDEN`], as CloudTrail does, except a secret access key, which is
//! removed outright so that a returned credential keeps only its
//! `accessKeyId` (CloudTrail's own `CreateAccessKey` and `AssumeRole`
//! records look like that).

use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::record::Record;

/// The marker CloudTrail writes in place of a secret.
pub const HIDDEN: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

/// Names (normalised: lower case, no `_`/`-`) whose values are hidden.
const HIDDEN_NAMES: &[&str] = &[
    // Passwords and one-time codes.
    "password",
    "passwd",
    "passphrase",
    "otp",
    "totp",
    "mfacode",
    "tokencode",
    "authenticationcode1",
    "authenticationcode2",
    "code",
    "devicecode",
    "usercode",
    "authorizationcode",
    "codeverifier",
    // Session material.
    "token",
    "tokenvalue",
    "sessiontoken",
    "securitytoken",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "bearertoken",
    "authorizationtoken",
    "authorization",
    "cookie",
    "apikey",
    // Keys and client secrets.
    "secret",
    "clientsecret",
    "privatekey",
    "keymaterial",
    "secretstring",
    "secretbinary",
    "seedbase32string",
    "qrcodepng",
    // File and terminal contents.
    "content",
    "contents",
    "filecontent",
    "filecontents",
    "body",
    "userdata",
    "terminalinput",
    "terminaloutput",
];

/// Name endings whose values are hidden (`AdminPassword`, `SharedSecret`…).
const HIDDEN_SUFFIXES: &[&str] = &[
    "password",
    "secret",
    "privatekey",
    "sessiontoken",
    "accesstoken",
    "refreshtoken",
    "idtoken",
    "passphrase",
];

/// Names whose members are removed: secret halves of access keys.
const REMOVED_NAMES: &[&str] = &["secretaccesskey", "secretkey", "awssecretaccesskey"];

fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// What redaction does with a member, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Keep the value (after redacting inside it).
    Keep,
    /// Replace the value with [`HIDDEN`].
    Hide,
    /// Drop the member.
    Remove,
}

/// How a member named `name` is treated.
#[must_use]
pub fn treatment(name: &str) -> Treatment {
    let name = normalise(name);
    if REMOVED_NAMES.contains(&name.as_str()) {
        Treatment::Remove
    } else if HIDDEN_NAMES.contains(&name.as_str())
        || HIDDEN_SUFFIXES.iter().any(|s| name.ends_with(s))
    {
        Treatment::Hide
    } else {
        Treatment::Keep
    }
}

/// Removes secrets from `value` in place, at every depth.
pub fn redact_value(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|name, _| treatment(name) != Treatment::Remove);
            for (name, member) in map.iter_mut() {
                match treatment(name) {
                    // Null stays null: there was nothing to hide.
                    Treatment::Hide if !member.is_null() => {
                        *member = Value::String(HIDDEN.to_owned());
                    }
                    _ => redact_value(member),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        _ => {}
    }
}

/// Removes secrets from every free-form payload of `record`.
pub fn redact_record(record: &mut Record) {
    for payload in [
        &mut record.request_parameters,
        &mut record.response_elements,
        &mut record.additional_event_data,
    ]
    .into_iter()
    .flatten()
    {
        redact_value(payload);
    }
}

/// A record whose payloads have been through [`redact_record`]: the only
/// form sinks accept, so no code path can hand a sink an unredacted record.
#[derive(Debug, Clone, PartialEq)]
pub struct RedactedRecord(Record);

impl RedactedRecord {
    /// Redacts `record`.
    #[must_use]
    pub fn new(mut record: Record) -> Self {
        redact_record(&mut record);
        Self(record)
    }

    /// The redacted record.
    #[must_use]
    pub fn into_inner(self) -> Record {
        self.0
    }
}

impl Deref for RedactedRecord {
    type Target = Record;

    fn deref(&self) -> &Record {
        &self.0
    }
}

impl From<Record> for RedactedRecord {
    fn from(record: Record) -> Self {
        Self::new(record)
    }
}

impl Serialize for RedactedRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RedactedRecord {
    /// Redacts again after reading: redaction is idempotent, and records read
    /// from elsewhere get the same guarantee.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Record::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hides_secrets_case_insensitively_at_any_depth() {
        let mut v = json!({
            "UserName": "alice",
            "Password": "hunter2",
            "newPassword": "n3w",
            "OLD_PASSWORD": "old",
            "AuthenticationCode1": "123456",
            "authenticationCode2": "654321",
            "otp": "000111",
            "clientSecret": "cs",
            "refreshToken": "rt",
            "accessToken": "at",
            "TokenValue": "tv",
            "nested": [{"PrivateKey": "-----BEGIN"}, {"fileContents": "data"}],
            "SessionId": "sess-1",
            "NextToken": "page-2",
            "PasswordResetRequired": true
        });
        redact_value(&mut v);
        assert_eq!(
            v,
            json!({
                "UserName": "alice",
                "Password": HIDDEN,
                "newPassword": HIDDEN,
                "OLD_PASSWORD": HIDDEN,
                "AuthenticationCode1": HIDDEN,
                "authenticationCode2": HIDDEN,
                "otp": HIDDEN,
                "clientSecret": HIDDEN,
                "refreshToken": HIDDEN,
                "accessToken": HIDDEN,
                "TokenValue": HIDDEN,
                "nested": [{"PrivateKey": HIDDEN}, {"fileContents": HIDDEN}],
                "SessionId": "sess-1",
                "NextToken": "page-2",
                "PasswordResetRequired": true
            })
        );
    }

    #[test]
    fn credential_keeps_access_key_id_and_loses_secret() {
        let mut v = json!({
            "credentials": {
                "accessKeyId": "ASIAEXAMPLE",
                "secretAccessKey": "wJalrXUtnFEMI/K7MDENG",
                "sessionToken": "IQoJb3JpZ2lu",
                "expiration": "2026-11-24T13:00:00Z"
            },
            "AccessKey": {"AccessKeyId": "AKIAEXAMPLE", "SecretAccessKey": "s3cr3t", "Status": "Active"}
        });
        redact_value(&mut v);
        assert_eq!(
            v,
            json!({
                "credentials": {
                    "accessKeyId": "ASIAEXAMPLE",
                    "sessionToken": HIDDEN,
                    "expiration": "2026-11-24T13:00:00Z"
                },
                "AccessKey": {"AccessKeyId": "AKIAEXAMPLE", "Status": "Active"}
            })
        );
    }

    #[test]
    fn hides_whole_subtrees_and_keeps_null() {
        let mut v = json!({"Content": {"lines": ["a", "b"]}, "password": null});
        redact_value(&mut v);
        assert_eq!(v, json!({"Content": HIDDEN, "password": null}));
    }

    #[test]
    fn redaction_is_idempotent() {
        let mut v = json!({"Password": "x", "a": [{"secret_access_key": "y"}]});
        redact_value(&mut v);
        let once = v.clone();
        redact_value(&mut v);
        assert_eq!(v, once);
        assert_eq!(v, json!({"Password": HIDDEN, "a": [{}]}));
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(treatment("Secret-Access_Key"), Treatment::Remove);
        assert_eq!(treatment("MasterUserPassword"), Treatment::Hide);
        assert_eq!(treatment("ProcurementPortalSharedSecret"), Treatment::Hide);
        assert_eq!(treatment("SecretArn"), Treatment::Keep);
        assert_eq!(treatment("PasswordLastUsed"), Treatment::Keep);
        assert_eq!(treatment("EnvironmentId"), Treatment::Keep);
    }
}
