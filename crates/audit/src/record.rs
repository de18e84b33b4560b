//! The CloudTrail record (eventVersion 1.11) and the builder the server uses
//! once per request.
//!
//! Member names, order and omission rules follow what CloudTrail writes:
//! `requestParameters` and `responseElements` are always present (JSON
//! `null` when there is nothing to say), `errorCode`/`errorMessage` appear
//! only on failure, and other optional members are left out when unset.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::identity::UserIdentity;
use crate::redact::RedactedRecord;
use crate::time_format;

/// The `eventVersion` this crate writes.
pub const EVENT_VERSION: &str = "1.11";

/// What produced the record (`eventType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// An API request (console, CLI, SDK or from inside a shell).
    AwsApiCall,
    /// A console sign-in attempt (`ConsoleLogin`).
    AwsConsoleSignIn,
    /// Something the service did on its own (for example an idle shutdown).
    AwsServiceEvent,
}

/// The category of the event (`eventCategory`). Seashell records
/// management events only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum EventCategory {
    /// Control-plane operations on resources.
    #[default]
    Management,
}

/// One entry of `resources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// ARN of the resource.
    #[serde(rename = "ARN", default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// Account that owns the resource.
    #[serde(rename = "accountId", default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// CloudFormation-style type, for example `AWS::CloudShell::Environment`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
}

impl Resource {
    /// A resource with all three members set.
    #[must_use]
    pub fn new(
        resource_type: impl Into<String>,
        arn: impl Into<String>,
        account_id: impl Into<String>,
    ) -> Self {
        Self {
            arn: Some(arn.into()),
            account_id: Some(account_id.into()),
            resource_type: Some(resource_type.into()),
        }
    }
}

/// `tlsDetails`: the TLS parameters of the client's connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsDetails {
    /// For example `TLSv1.3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    /// For example `TLS_AES_128_GCM_SHA256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher_suite: Option<String>,
    /// The `Host` (or SNI name) the client asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_provided_host_header: Option<String>,
}

/// One CloudTrail record.
///
/// Build one with [`Record::api_call`] or [`crate::ConsoleLogin`]; both hand
/// back a [`RedactedRecord`], the only form a sink accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// Always [`EVENT_VERSION`] for records written by this crate.
    pub event_version: String,
    /// Who made the request.
    pub user_identity: UserIdentity,
    /// When the request was made, in whole seconds.
    #[serde(with = "time_format::required")]
    pub event_time: DateTime<Utc>,
    /// The service endpoint, for example `cloudshell.amazonaws.com`.
    pub event_source: String,
    /// The operation in PascalCase, for example `CreateEnvironment`.
    pub event_name: String,
    /// The region the request was sent to.
    pub aws_region: String,
    /// The client's address.
    #[serde(
        rename = "sourceIPAddress",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_ip_address: Option<String>,
    /// The client's `User-Agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The error code, only when the request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The error message, only when the request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The request's parameters (redacted); `null` when none.
    #[serde(default)]
    pub request_parameters: Option<Value>,
    /// The response's elements (redacted); `null` when none or on failure.
    #[serde(default)]
    pub response_elements: Option<Value>,
    /// Extra, event-specific data (for example ConsoleLogin's `MFAUsed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_event_data: Option<Value>,
    /// The id the service returned for the request.
    #[serde(rename = "requestID", default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// This record's unique id (UUID v4).
    #[serde(rename = "eventID")]
    pub event_id: Uuid,
    /// Whether the operation only reads.
    pub read_only: bool,
    /// Resources the request referred to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<Resource>,
    /// What produced the record.
    pub event_type: EventType,
    /// Whether this is a management (control-plane) event.
    pub management_event: bool,
    /// The account the record is delivered to (the resource owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_account_id: Option<String>,
    /// Always `Management` here.
    pub event_category: EventCategory,
    /// TLS parameters of the client's connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_details: Option<TlsDetails>,
    /// Whether the credentials came from a console session. CloudTrail
    /// prints the member only when true, as the string `"true"`.
    #[serde(
        default,
        skip_serializing_if = "is_false",
        with = "crate::identity::bool_string"
    )]
    pub session_credential_from_console: bool,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes `&T`
fn is_false(value: &bool) -> bool {
    !*value
}

impl Record {
    /// Starts an `AwsApiCall` record for one request, stamped now with a
    /// fresh event id, `readOnly` false, management category, and the
    /// recipient account defaulting to the caller's account.
    #[must_use]
    pub fn api_call(
        event_source: impl Into<String>,
        event_name: impl Into<String>,
        aws_region: impl Into<String>,
        user_identity: UserIdentity,
    ) -> RecordBuilder {
        let recipient_account_id = user_identity.account_id.clone();
        RecordBuilder {
            record: Self {
                event_version: EVENT_VERSION.to_owned(),
                user_identity,
                event_time: Utc::now().trunc_subsecs(0),
                event_source: event_source.into(),
                event_name: event_name.into(),
                aws_region: aws_region.into(),
                source_ip_address: None,
                user_agent: None,
                error_code: None,
                error_message: None,
                request_parameters: None,
                response_elements: None,
                additional_event_data: None,
                request_id: None,
                event_id: Uuid::new_v4(),
                read_only: false,
                resources: Vec::new(),
                event_type: EventType::AwsApiCall,
                management_event: true,
                recipient_account_id,
                event_category: EventCategory::Management,
                tls_details: None,
                session_credential_from_console: false,
            },
        }
    }

    /// Whether the request failed (CloudTrail consumers treat any record
    /// carrying `errorCode` or `errorMessage` as a failure).
    #[must_use]
    pub fn is_failure(&self) -> bool {
        self.error_code.is_some() || self.error_message.is_some()
    }

    /// The account records are filed under: the recipient, else the caller's.
    #[must_use]
    pub fn delivery_account(&self) -> Option<&str> {
        self.recipient_account_id
            .as_deref()
            .or(self.user_identity.account_id.as_deref())
    }
}

/// Fills in one record; [`RecordBuilder::build`] redacts it.
#[derive(Debug, Clone)]
pub struct RecordBuilder {
    record: Record,
}

impl RecordBuilder {
    /// Overrides the event time (truncated to whole seconds, as printed).
    #[must_use]
    pub fn event_time(mut self, time: DateTime<Utc>) -> Self {
        self.record.event_time = time.trunc_subsecs(0);
        self
    }

    /// Overrides the event id (for example to reuse a request's id).
    #[must_use]
    pub fn event_id(mut self, id: Uuid) -> Self {
        self.record.event_id = id;
        self
    }

    /// Sets the client's address.
    #[must_use]
    pub fn source_ip(mut self, address: impl Into<String>) -> Self {
        self.record.source_ip_address = Some(address.into());
        self
    }

    /// Sets the client's `User-Agent`.
    #[must_use]
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.record.user_agent = Some(user_agent.into());
        self
    }

    /// Sets the request id returned to the client.
    #[must_use]
    pub fn request_id(mut self, request_id: impl Into<String>) -> Self {
        self.record.request_id = Some(request_id.into());
        self
    }

    /// Sets the request's parameters; secrets are removed at [`Self::build`].
    #[must_use]
    pub fn request_parameters(mut self, parameters: Value) -> Self {
        self.record.request_parameters = Some(parameters).filter(|v| !v.is_null());
        self
    }

    /// Sets the response's elements; secrets are removed at [`Self::build`].
    #[must_use]
    pub fn response_elements(mut self, elements: Value) -> Self {
        self.record.response_elements = Some(elements).filter(|v| !v.is_null());
        self
    }

    /// Sets `additionalEventData`.
    #[must_use]
    pub fn additional_event_data(mut self, data: Value) -> Self {
        self.record.additional_event_data = Some(data).filter(|v| !v.is_null());
        self
    }

    /// Marks the request failed with `code` and `message`. Response elements
    /// are dropped: a failed call returned none.
    #[must_use]
    pub fn error(mut self, code: impl Into<String>, message: impl Into<String>) -> Self {
        self.record.error_code = Some(code.into());
        self.record.error_message = Some(message.into());
        self.record.response_elements = None;
        self
    }

    /// Marks the request failed with a message and no code (the way
    /// CloudTrail records failed sign-ins). Response elements are dropped;
    /// set any that the failure still reports afterwards.
    #[must_use]
    pub fn error_message(mut self, message: impl Into<String>) -> Self {
        self.record.error_code = None;
        self.record.error_message = Some(message.into());
        self.record.response_elements = None;
        self
    }

    /// Sets whether the operation only reads.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.record.read_only = read_only;
        self
    }

    /// Adds a resource the request referred to.
    #[must_use]
    pub fn resource(mut self, resource: Resource) -> Self {
        self.record.resources.push(resource);
        self
    }

    /// Sets the account the record is delivered to.
    #[must_use]
    pub fn recipient_account_id(mut self, account_id: impl Into<String>) -> Self {
        self.record.recipient_account_id = Some(account_id.into());
        self
    }

    /// Sets the event type (default `AwsApiCall`).
    #[must_use]
    pub fn event_type(mut self, event_type: EventType) -> Self {
        self.record.event_type = event_type;
        self
    }

    /// Sets whether this is a management event (default true).
    #[must_use]
    pub fn management_event(mut self, management: bool) -> Self {
        self.record.management_event = management;
        self
    }

    /// Sets the connection's TLS parameters.
    #[must_use]
    pub fn tls_details(mut self, details: TlsDetails) -> Self {
        self.record.tls_details = Some(details);
        self
    }

    /// Marks the credentials as coming from a console session.
    #[must_use]
    pub fn session_credential_from_console(mut self, from_console: bool) -> Self {
        self.record.session_credential_from_console = from_console;
        self
    }

    /// The record as filled in so far, for inspection before building.
    #[must_use]
    pub fn peek(&self) -> &Record {
        &self.record
    }

    /// Finishes the record, removing secrets from its payloads.
    #[must_use]
    pub fn build(self) -> RedactedRecord {
        RedactedRecord::new(self.record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityType;
    use chrono::TimeZone;
    use serde_json::json;

    fn alice() -> UserIdentity {
        UserIdentity::iam_user("111122223333", "alice", "AIDAEXAMPLE")
            .with_access_key_id("AKIAEXAMPLE")
    }

    #[test]
    fn success_record_has_cloudtrail_members_in_order() {
        let at = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 1).single();
        let Some(at) = at else { panic!("valid date") };
        let rec = Record::api_call(
            "cloudshell.amazonaws.com",
            "CreateEnvironment",
            "eu-west-1",
            alice(),
        )
        .event_time(at + chrono::Duration::milliseconds(500))
        .source_ip("203.0.113.9")
        .user_agent("aws-cli/2.15.0")
        .request_id("req-1")
        .request_parameters(json!({"EnvironmentName": "default"}))
        .response_elements(json!({"EnvironmentId": "env-1", "Status": "CREATING"}))
        .build();
        let text = serde_json::to_string(&rec).unwrap_or_default();
        let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, Value>>(&text)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        // serde_json's Map is sorted, so check order on the text itself.
        let order = [
            "eventVersion",
            "userIdentity",
            "eventTime",
            "eventSource",
            "eventName",
            "awsRegion",
            "sourceIPAddress",
            "userAgent",
            "requestParameters",
            "responseElements",
            "requestID",
            "eventID",
            "readOnly",
            "eventType",
            "managementEvent",
            "recipientAccountId",
            "eventCategory",
        ];
        let positions: Vec<usize> = order
            .iter()
            .filter_map(|k| text.find(&format!("\"{k}\":")))
            .collect();
        assert_eq!(positions.len(), order.len(), "{text}");
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert_eq!(keys.len(), order.len(), "no other members: {text}");
        assert!(text.contains("\"eventVersion\":\"1.11\""));
        assert!(text.contains("\"eventTime\":\"2026-11-24T12:00:01Z\""));
        assert!(text.contains("\"eventCategory\":\"Management\""));
        assert!(text.contains("\"recipientAccountId\":\"111122223333\""));
        assert!(!text.contains("errorCode") && !text.contains("errorMessage"));
        assert!(!text.contains("sessionCredentialFromConsole"));
        assert!(!rec.is_failure());
        assert_eq!(rec.event_id.get_version_num(), 4);
    }

    #[test]
    fn failure_record_carries_error_and_null_response() {
        let rec = Record::api_call("cloudshell.amazonaws.com", "DeleteEnvironment", "us-east-1", alice())
            .response_elements(json!({"ignored": true}))
            .error("AccessDeniedException", "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: cloudshell:DeleteEnvironment")
            .build();
        let v = serde_json::to_value(&rec).unwrap_or_default();
        assert_eq!(v["errorCode"], "AccessDeniedException");
        assert!(v["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("not authorized")));
        assert_eq!(v.get("responseElements"), Some(&Value::Null));
        assert_eq!(v.get("requestParameters"), Some(&Value::Null));
        assert!(rec.is_failure());
    }

    #[test]
    fn optional_members_and_round_trip() {
        let rec = Record::api_call(
            "cloudshell.amazonaws.com",
            "CreateSession",
            "us-east-1",
            alice(),
        )
        .resource(Resource::new(
            "AWS::CloudShell::Environment",
            "arn:aws:cloudshell:us-east-1:111122223333:environment/env-1",
            "111122223333",
        ))
        .tls_details(TlsDetails {
            tls_version: Some("TLSv1.3".into()),
            cipher_suite: Some("TLS_AES_128_GCM_SHA256".into()),
            client_provided_host_header: Some("cloudshell.us-east-1.example".into()),
        })
        .session_credential_from_console(true)
        .recipient_account_id("444455556666")
        .build();
        let v = serde_json::to_value(&rec).unwrap_or_default();
        assert_eq!(v["sessionCredentialFromConsole"], "true");
        assert_eq!(
            v["resources"][0]["ARN"],
            "arn:aws:cloudshell:us-east-1:111122223333:environment/env-1"
        );
        assert_eq!(v["resources"][0]["type"], "AWS::CloudShell::Environment");
        assert_eq!(
            v["tlsDetails"]["clientProvidedHostHeader"],
            "cloudshell.us-east-1.example"
        );
        assert_eq!(rec.delivery_account(), Some("444455556666"));
        let back: Result<Record, _> = serde_json::from_value(v);
        assert_eq!(back.ok().as_ref(), Some(&*rec));
    }

    #[test]
    fn reads_a_cloudtrail_style_record() {
        // Shape of a record as CloudTrail delivers it (older eventVersion,
        // string booleans, members Seashell does not write).
        let text = r#"{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:s","arn":"arn:aws:sts::123456789012:assumed-role/R/s","accountId":"123456789012","accessKeyId":"ASIAEXAMPLE","sessionContext":{"sessionIssuer":{"type":"Role","principalId":"AROAEXAMPLE","arn":"arn:aws:iam::123456789012:role/R","accountId":"123456789012","userName":"R"},"webIdFederationData":{},"attributes":{"creationDate":"2023-07-19T21:11:57Z","mfaAuthenticated":"false"}}},"eventTime":"2023-07-19T21:17:28Z","eventSource":"cloudshell.amazonaws.com","eventName":"SendHeartBeat","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.1","userAgent":"Mozilla/5.0","requestParameters":{"EnvironmentId":"e"},"responseElements":null,"requestID":"r","eventID":"6f2b5b1e-3f0e-4d2a-9c1e-0c2f0a7c1b11","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"123456789012","eventCategory":"Management","sharedEventID":"x","sessionCredentialFromConsole":"true"}"#;
        let rec: Result<Record, _> = serde_json::from_str(text);
        let Ok(rec) = rec else { panic!("{rec:?}") };
        assert_eq!(rec.user_identity.identity_type, IdentityType::AssumedRole);
        assert!(rec.session_credential_from_console);
        assert_eq!(rec.request_parameters, Some(json!({"EnvironmentId": "e"})));
        assert_eq!(rec.response_elements, None);
    }
}
