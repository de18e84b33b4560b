//! The model of CloudTrail `LookupEvents` (API 2013-11-01, JSON 1.1):
//! request, validation, record matching, and the response's `Event`.
//!
//! Member names follow botocore's `cloudtrail/2013-11-01/service-2.json`.
//! Timestamps travel as epoch seconds (JSON numbers), as JSON 1.1 does.

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::record::{EventCategory, Record};

/// The most events one page may hold (`MaxResults` 1–50, default 50).
pub const MAX_RESULTS: usize = 50;

/// Longest `AttributeValue` the API accepts.
pub const MAX_ATTRIBUTE_VALUE_LEN: usize = 2000;

/// What a lookup attribute filters on (`LookupAttributeKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LookupAttributeKey {
    /// `eventID`.
    EventId,
    /// `eventName`.
    EventName,
    /// `readOnly`, given as `"true"` or `"false"`.
    ReadOnly,
    /// The user name, role session name or `root` (see
    /// [`crate::UserIdentity::lookup_username`]).
    Username,
    /// The `type` of any entry of `resources`.
    ResourceType,
    /// The ARN, or the name at its end, of any entry of `resources`.
    ResourceName,
    /// `eventSource`.
    EventSource,
    /// `userIdentity.accessKeyId`.
    AccessKeyId,
}

/// One filter of a lookup (`LookupAttribute`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupAttribute {
    /// The attribute to filter on.
    #[serde(rename = "AttributeKey")]
    pub key: LookupAttributeKey,
    /// The value it must have.
    #[serde(rename = "AttributeValue")]
    pub value: String,
}

/// The body of a `LookupEvents` request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LookupEventsRequest {
    /// Filters; the API accepts at most one.
    #[serde(
        rename = "LookupAttributes",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub lookup_attributes: Vec<LookupAttribute>,
    /// Only events at or after this time.
    #[serde(
        rename = "StartTime",
        default,
        with = "epoch_seconds_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_time: Option<DateTime<Utc>>,
    /// Only events at or before this time.
    #[serde(
        rename = "EndTime",
        default,
        with = "epoch_seconds_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub end_time: Option<DateTime<Utc>>,
    /// `insight` asks for Insights events; otherwise management events.
    #[serde(
        rename = "EventCategory",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub event_category: Option<String>,
    /// Page size, 1–50.
    #[serde(
        rename = "MaxResults",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_results: Option<i64>,
    /// Where the previous page ended.
    #[serde(rename = "NextToken", default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// A resource as `LookupEvents` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupResource {
    /// For example `AWS::CloudShell::Environment`.
    #[serde(
        rename = "ResourceType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_type: Option<String>,
    /// The resource's ARN.
    #[serde(
        rename = "ResourceName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_name: Option<String>,
}

/// One event of a `LookupEvents` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The record's `eventID`.
    #[serde(rename = "EventId")]
    pub event_id: String,
    /// The record's `eventName`.
    #[serde(rename = "EventName")]
    pub event_name: String,
    /// `"true"` or `"false"` (a string in this API).
    #[serde(rename = "ReadOnly")]
    pub read_only: String,
    /// The access key that signed the request.
    #[serde(
        rename = "AccessKeyId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub access_key_id: Option<String>,
    /// The record's `eventTime`, as epoch seconds on the wire.
    #[serde(rename = "EventTime", with = "epoch_seconds")]
    pub event_time: DateTime<Utc>,
    /// The record's `eventSource`.
    #[serde(rename = "EventSource")]
    pub event_source: String,
    /// User name, role session name or `root`.
    #[serde(rename = "Username", default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The record's resources.
    #[serde(rename = "Resources", default)]
    pub resources: Vec<LookupResource>,
    /// The whole record as a JSON string.
    #[serde(rename = "CloudTrailEvent")]
    pub cloud_trail_event: String,
}

impl Event {
    /// The lookup view of `record`.
    ///
    /// # Errors
    /// When the record cannot be encoded as JSON.
    pub fn from_record(record: &Record) -> Result<Self, serde_json::Error> {
        Ok(Self {
            event_id: record.event_id.to_string(),
            event_name: record.event_name.clone(),
            read_only: record.read_only.to_string(),
            access_key_id: record.user_identity.access_key_id.clone(),
            event_time: record.event_time,
            event_source: record.event_source.clone(),
            username: record.user_identity.lookup_username().map(str::to_owned),
            resources: record
                .resources
                .iter()
                .map(|r| LookupResource {
                    resource_type: r.resource_type.clone(),
                    resource_name: r.arn.clone(),
                })
                .collect(),
            cloud_trail_event: serde_json::to_string(record)?,
        })
    }
}

/// The body of a `LookupEvents` response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LookupEventsResponse {
    /// Matching events, newest first.
    #[serde(rename = "Events")]
    pub events: Vec<Event>,
    /// Present when more events follow.
    #[serde(rename = "NextToken", default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// A request the API rejects; [`LookupError::code`] is the exception name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// Bad or too many lookup attributes.
    #[error("{0}")]
    InvalidLookupAttributes(String),
    /// Start after end.
    #[error("Start time must be before or equal to end time.")]
    InvalidTimeRange,
    /// `MaxResults` outside 1–50.
    #[error("MaxResults must be between 1 and 50, not {0}.")]
    InvalidMaxResults(i64),
    /// A token this service did not issue.
    #[error("Invalid NextToken.")]
    InvalidNextToken,
    /// An unknown `EventCategory`.
    #[error("Invalid EventCategory {0:?}; the only valid value is insight.")]
    InvalidEventCategory(String),
}

impl LookupError {
    /// The error code (exception shape name) the API returns.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidLookupAttributes(_) => "InvalidLookupAttributesException",
            Self::InvalidTimeRange => "InvalidTimeRangeException",
            Self::InvalidMaxResults(_) => "InvalidMaxResultsException",
            Self::InvalidNextToken => "InvalidNextTokenException",
            Self::InvalidEventCategory(_) => "InvalidEventCategoryException",
        }
    }
}

/// Where a page ended: events are ordered newest first by
/// (`eventTime`, `eventID`), and the next page starts strictly after this
/// key. Storage back ends page with it as
/// `(event_time, event_id) < (cursor.event_time, cursor.event_id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PageCursor {
    /// `eventTime` of the last event returned.
    pub event_time: DateTime<Utc>,
    /// `eventID` of the last event returned.
    pub event_id: Uuid,
}

impl PageCursor {
    /// The cursor just past `record`.
    #[must_use]
    pub fn after(record: &Record) -> Self {
        Self {
            event_time: record.event_time,
            event_id: record.event_id,
        }
    }

    /// The sort key of `record` (compare with [`PageCursor`]s).
    #[must_use]
    pub fn key_of(record: &Record) -> Self {
        Self::after(record)
    }

    /// Parses a `NextToken`.
    ///
    /// # Errors
    /// [`LookupError::InvalidNextToken`] when `token` was not made by
    /// [`PageCursor`]'s `Display`.
    pub fn parse(token: &str) -> Result<Self, LookupError> {
        let mut parts = token.splitn(3, ':');
        let (Some("v1"), Some(secs), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(LookupError::InvalidNextToken);
        };
        let secs: i64 = secs.parse().map_err(|_| LookupError::InvalidNextToken)?;
        let event_time = Utc
            .timestamp_opt(secs, 0)
            .single()
            .ok_or(LookupError::InvalidNextToken)?;
        let event_id = Uuid::parse_str(id).map_err(|_| LookupError::InvalidNextToken)?;
        Ok(Self {
            event_time,
            event_id,
        })
    }
}

impl fmt::Display for PageCursor {
    /// The `NextToken` text: `v1:<epoch seconds>:<eventID>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1:{}:{}", self.event_time.timestamp(), self.event_id)
    }
}

/// A validated lookup: what to match and how to page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupQuery {
    /// The one attribute filter, if any.
    pub attribute: Option<LookupAttribute>,
    /// Earliest `eventTime` included.
    pub start_time: Option<DateTime<Utc>>,
    /// Latest `eventTime` included.
    pub end_time: Option<DateTime<Utc>>,
    /// Page size (1–50).
    pub max_results: usize,
    /// Resume after this key.
    pub after: Option<PageCursor>,
    /// Insights events were asked for; Seashell records none.
    pub insights: bool,
}

impl Default for LookupQuery {
    fn default() -> Self {
        Self {
            attribute: None,
            start_time: None,
            end_time: None,
            max_results: MAX_RESULTS,
            after: None,
            insights: false,
        }
    }
}

impl LookupQuery {
    /// Validates a request as the API does.
    ///
    /// # Errors
    /// The [`LookupError`] the API would return.
    pub fn from_request(request: &LookupEventsRequest) -> Result<Self, LookupError> {
        let attribute = match request.lookup_attributes.as_slice() {
            [] => None,
            [one] => Some(validate_attribute(one)?),
            _ => {
                return Err(LookupError::InvalidLookupAttributes(
                    "You can specify only one lookup attribute.".into(),
                ))
            }
        };
        if let (Some(start), Some(end)) = (request.start_time, request.end_time) {
            if start > end {
                return Err(LookupError::InvalidTimeRange);
            }
        }
        let max_results = match request.max_results {
            None => MAX_RESULTS,
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| (1..=MAX_RESULTS).contains(n))
                .ok_or(LookupError::InvalidMaxResults(n))?,
        };
        let insights = match request.event_category.as_deref() {
            None => false,
            Some("insight") => true,
            Some(other) => return Err(LookupError::InvalidEventCategory(other.to_owned())),
        };
        let after = request
            .next_token
            .as_deref()
            .map(PageCursor::parse)
            .transpose()?;
        Ok(Self {
            attribute,
            start_time: request.start_time,
            end_time: request.end_time,
            max_results,
            after,
            insights,
        })
    }

    /// Whether `record` is in the result set (ignoring paging).
    #[must_use]
    pub fn matches(&self, record: &Record) -> bool {
        // Lookup serves management events only; Insights events are never recorded.
        if self.insights
            || !record.management_event
            || record.event_category != EventCategory::Management
        {
            return false;
        }
        if self.start_time.is_some_and(|t| record.event_time < t)
            || self.end_time.is_some_and(|t| record.event_time > t)
        {
            return false;
        }
        self.attribute
            .as_ref()
            .is_none_or(|a| attribute_matches(a, record))
    }

    /// Whether `record` comes after the page cursor (or there is none).
    #[must_use]
    pub fn is_after_cursor(&self, record: &Record) -> bool {
        self.after.is_none_or(|c| PageCursor::key_of(record) < c)
    }
}

fn validate_attribute(attribute: &LookupAttribute) -> Result<LookupAttribute, LookupError> {
    let value = &attribute.value;
    if value.is_empty() || value.chars().count() > MAX_ATTRIBUTE_VALUE_LEN {
        return Err(LookupError::InvalidLookupAttributes(format!(
            "AttributeValue must be 1 to {MAX_ATTRIBUTE_VALUE_LEN} characters."
        )));
    }
    if attribute.key == LookupAttributeKey::ReadOnly && value != "true" && value != "false" {
        return Err(LookupError::InvalidLookupAttributes(
            "ReadOnly must be true or false.".into(),
        ));
    }
    Ok(attribute.clone())
}

/// Exact, case-sensitive matching, as the API does.
fn attribute_matches(attribute: &LookupAttribute, record: &Record) -> bool {
    let value = attribute.value.as_str();
    match attribute.key {
        LookupAttributeKey::EventId => record.event_id.to_string() == value.to_ascii_lowercase(),
        LookupAttributeKey::EventName => record.event_name == value,
        LookupAttributeKey::ReadOnly => record.read_only.to_string() == value,
        LookupAttributeKey::Username => record.user_identity.lookup_username() == Some(value),
        LookupAttributeKey::ResourceType => record
            .resources
            .iter()
            .any(|r| r.resource_type.as_deref() == Some(value)),
        LookupAttributeKey::ResourceName => record.resources.iter().any(|r| {
            r.arn
                .as_deref()
                .is_some_and(|arn| arn == value || arn.rsplit(['/', ':']).next() == Some(value))
        }),
        LookupAttributeKey::EventSource => record.event_source == value,
        LookupAttributeKey::AccessKeyId => {
            record.user_identity.access_key_id.as_deref() == Some(value)
        }
    }
}

/// JSON 1.1 timestamps: epoch seconds as a number (fractions allowed).
/// ISO 8601 strings are accepted too, for hand-written requests.
mod epoch_seconds {
    use super::{DateTime, Deserialize, Deserializer, Serializer, TimeZone, Utc};

    pub(super) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        // Whole seconds fit an f64 exactly; add the fraction if any.
        #[allow(clippy::cast_precision_loss)]
        let secs = t.timestamp() as f64 + f64::from(t.timestamp_subsec_millis()) / 1000.0;
        s.serialize_f64(secs)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Number(f64),
            Text(String),
        }
        match Wire::deserialize(d)? {
            Wire::Number(n) => from_f64(n)
                .ok_or_else(|| serde::de::Error::custom(format!("timestamp {n} is out of range"))),
            Wire::Text(t) => crate::time_format::parse(&t).map_err(serde::de::Error::custom),
        }
    }

    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // range-checked and clamped above
    fn from_f64(n: f64) -> Option<DateTime<Utc>> {
        if !n.is_finite() || n.abs() > 1e15 {
            return None;
        }
        let secs = n.floor();
        let nanos = ((n - secs) * 1e9).round().clamp(0.0, 999_999_999.0);
        Utc.timestamp_opt(secs as i64, nanos as u32).single()
    }
}

mod epoch_seconds_opt {
    use super::{epoch_seconds, DateTime, Deserialize, Deserializer, Serializer, Utc};

    #[allow(clippy::ref_option)] // serde's `with` passes `&Option<T>`
    pub(super) fn serialize<S: Serializer>(
        t: &Option<DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => epoch_seconds::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "epoch_seconds")] DateTime<Utc>);
        Option::<Wrap>::deserialize(d).map(|w| w.map(|Wrap(t)| t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::UserIdentity;
    use crate::record::Resource;
    use serde_json::json;

    fn record() -> Record {
        let at = Utc
            .timestamp_opt(1_700_000_000, 0)
            .single()
            .unwrap_or_default();
        Record::api_call(
            "cloudshell.amazonaws.com",
            "CreateEnvironment",
            "us-east-1",
            UserIdentity::iam_user("111122223333", "alice", "AIDAEXAMPLE")
                .with_access_key_id("AKIAEXAMPLE"),
        )
        .event_time(at)
        .resource(Resource::new(
            "AWS::CloudShell::Environment",
            "arn:aws:cloudshell:us-east-1:111122223333:environment/env-1",
            "111122223333",
        ))
        .build()
        .into_inner()
    }

    fn query(key: LookupAttributeKey, value: &str) -> LookupQuery {
        LookupQuery {
            attribute: Some(LookupAttribute {
                key,
                value: value.into(),
            }),
            ..LookupQuery::default()
        }
    }

    #[test]
    fn each_attribute_matches_and_mismatches() {
        let r = record();
        let id = r.event_id.to_string();
        let cases = [
            (LookupAttributeKey::EventId, id.as_str(), true),
            (
                LookupAttributeKey::EventId,
                "00000000-0000-4000-8000-000000000000",
                false,
            ),
            (LookupAttributeKey::EventName, "CreateEnvironment", true),
            (LookupAttributeKey::EventName, "createenvironment", false),
            (LookupAttributeKey::ReadOnly, "false", true),
            (LookupAttributeKey::ReadOnly, "true", false),
            (LookupAttributeKey::Username, "alice", true),
            (LookupAttributeKey::Username, "bob", false),
            (
                LookupAttributeKey::ResourceType,
                "AWS::CloudShell::Environment",
                true,
            ),
            (LookupAttributeKey::ResourceType, "AWS::IAM::User", false),
            (LookupAttributeKey::ResourceName, "env-1", true),
            (
                LookupAttributeKey::ResourceName,
                "arn:aws:cloudshell:us-east-1:111122223333:environment/env-1",
                true,
            ),
            (LookupAttributeKey::ResourceName, "env-2", false),
            (
                LookupAttributeKey::EventSource,
                "cloudshell.amazonaws.com",
                true,
            ),
            (LookupAttributeKey::EventSource, "iam.amazonaws.com", false),
            (LookupAttributeKey::AccessKeyId, "AKIAEXAMPLE", true),
            (LookupAttributeKey::AccessKeyId, "AKIAOTHER", false),
        ];
        for (key, value, expected) in cases {
            assert_eq!(query(key, value).matches(&r), expected, "{key:?}={value}");
        }
    }

    #[test]
    fn time_window_and_category() {
        let r = record();
        let t = r.event_time;
        let q = |start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>| LookupQuery {
            start_time: start,
            end_time: end,
            ..LookupQuery::default()
        };
        assert!(q(Some(t), Some(t)).matches(&r));
        assert!(!q(Some(t + chrono::Duration::seconds(1)), None).matches(&r));
        assert!(!q(None, Some(t - chrono::Duration::seconds(1))).matches(&r));
        let insights = LookupQuery {
            insights: true,
            ..LookupQuery::default()
        };
        assert!(!insights.matches(&r));
    }

    #[test]
    fn request_validation_uses_api_error_codes() {
        let parse = |v: serde_json::Value| -> Result<LookupQuery, LookupError> {
            let req: LookupEventsRequest = serde_json::from_value(v)
                .map_err(|e| LookupError::InvalidLookupAttributes(e.to_string()))?;
            LookupQuery::from_request(&req)
        };
        let ok = parse(json!({
            "LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "ConsoleLogin"}],
            "StartTime": 1_700_000_000, "EndTime": 1_700_000_100.5, "MaxResults": 10
        }));
        let Ok(ok) = ok else { panic!("{ok:?}") };
        assert_eq!(ok.max_results, 10);
        assert_eq!(ok.start_time.map(|t| t.timestamp()), Some(1_700_000_000));
        assert_eq!(ok.end_time.map(|t| t.timestamp_subsec_millis()), Some(500));

        let code = |v| parse(v).err().map(|e| e.code());
        assert_eq!(
            code(json!({"LookupAttributes": [
                {"AttributeKey": "EventName", "AttributeValue": "a"},
                {"AttributeKey": "EventName", "AttributeValue": "b"}]})),
            Some("InvalidLookupAttributesException")
        );
        assert_eq!(
            code(
                json!({"LookupAttributes": [{"AttributeKey": "ReadOnly", "AttributeValue": "yes"}]})
            ),
            Some("InvalidLookupAttributesException")
        );
        assert_eq!(
            code(json!({"StartTime": 10, "EndTime": 5})),
            Some("InvalidTimeRangeException")
        );
        assert_eq!(
            code(json!({"MaxResults": 51})),
            Some("InvalidMaxResultsException")
        );
        assert_eq!(
            code(json!({"MaxResults": 0})),
            Some("InvalidMaxResultsException")
        );
        assert_eq!(
            code(json!({"NextToken": "garbage"})),
            Some("InvalidNextTokenException")
        );
        assert_eq!(
            code(json!({"EventCategory": "data"})),
            Some("InvalidEventCategoryException")
        );
        assert!(parse(json!({"EventCategory": "insight"})).is_ok_and(|q| q.insights));
    }

    #[test]
    fn event_shape_uses_botocore_names() {
        let r = record();
        let Ok(event) = Event::from_record(&r) else {
            panic!("encodes")
        };
        let v = serde_json::to_value(&event).unwrap_or_default();
        assert_eq!(v["EventId"], r.event_id.to_string());
        assert_eq!(v["EventName"], "CreateEnvironment");
        assert_eq!(v["ReadOnly"], "false");
        assert_eq!(v["AccessKeyId"], "AKIAEXAMPLE");
        assert_eq!(v["EventTime"], json!(1_700_000_000.0));
        assert_eq!(v["EventSource"], "cloudshell.amazonaws.com");
        assert_eq!(v["Username"], "alice");
        assert_eq!(
            v["Resources"],
            json!([{"ResourceType": "AWS::CloudShell::Environment",
                    "ResourceName": "arn:aws:cloudshell:us-east-1:111122223333:environment/env-1"}])
        );
        let inner: Result<Record, _> =
            serde_json::from_str(v["CloudTrailEvent"].as_str().unwrap_or_default());
        assert_eq!(inner.ok(), Some(r));
        let back: Result<Event, _> = serde_json::from_value(v);
        assert_eq!(back.ok(), Some(event));
    }

    #[test]
    fn cursor_token_round_trips_and_orders() {
        let r = record();
        let c = PageCursor::after(&r);
        assert_eq!(PageCursor::parse(&c.to_string()), Ok(c));
        assert_eq!(
            PageCursor::parse("v1:x:y"),
            Err(LookupError::InvalidNextToken)
        );
        let q = LookupQuery {
            after: Some(c),
            ..LookupQuery::default()
        };
        assert!(
            !q.is_after_cursor(&r),
            "the cursor's own record is on the previous page"
        );
    }
}
