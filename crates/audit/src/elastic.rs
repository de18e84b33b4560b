//! How Elastic's AWS CloudTrail integration indexes a record: a re-statement
//! of the main rules of its ingest pipeline
//! (`packages/aws/data_stream/cloudtrail/elasticsearch/ingest_pipeline/default.yml`
//! in elastic/integrations), so that records can be checked against the
//! fields detection rules query before they reach a SIEM.
//!
//! Empty and null values are dropped first; `eventSource` becomes
//! `event.provider`, `eventName` `event.action`; `event.outcome` is
//! `failure` when `errorCode` or `errorMessage` is present, else `success`,
//! except that `ConsoleLogin` takes it from `responseElements.ConsoleLogin`.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

/// An ingested document: ECS field name → value.
pub type Doc = Map<String, Value>;

/// The pipeline's first script: drop null and empty values recursively
/// (an object or list left empty is dropped too).
fn drop_empty(value: &mut Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(map) => {
            map.retain(|_, v| !drop_empty(v));
            map.is_empty()
        }
        Value::Array(items) => {
            items.retain_mut(|v| !drop_empty(v));
            items.is_empty()
        }
        _ => false,
    }
}

/// Removes and returns the value at a dotted path of `json`.
fn take(json: &mut Value, path: &str) -> Option<Value> {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop()?;
    let mut node = json;
    for p in parts {
        node = node.get_mut(p)?;
    }
    node.as_object_mut()?.remove(last)
}

fn rename(doc: &mut Doc, json: &mut Value, from: &str, to: &str) {
    if let Some(v) = take(json, from) {
        doc.insert(to.to_owned(), v);
    }
}

/// The ingest pipeline's field mapping, for the members Seashell writes.
pub fn ingest(record: &Value) -> Doc {
    let mut json = record.clone();
    drop_empty(&mut json);
    let mut doc = Doc::new();
    // Set by the integration's data stream, not by the pipeline.
    doc.insert("event.dataset".into(), json!("aws.cloudtrail"));
    doc.insert("event.kind".into(), json!("event"));
    let event_name = json.get("eventName").cloned();

    map_identity(&mut doc, &mut json);
    map_event(&mut doc, &mut json, event_name.as_ref());
    if event_name.as_ref().and_then(Value::as_str) == Some("ConsoleLogin") {
        map_console_login(&mut doc);
    }
    categorise(&mut doc);
    map_tls(&mut doc, &mut json);
    doc
}

/// `userIdentity` → `user.*`, `cloud.account.id`, `aws.cloudtrail.user_identity.*`.
fn map_identity(doc: &mut Doc, json: &mut Value) {
    rename(
        doc,
        json,
        "userIdentity.type",
        "aws.cloudtrail.user_identity.type",
    );
    rename(doc, json, "userIdentity.userName", "user.name");
    rename(doc, json, "userIdentity.principalId", "user.id");
    rename(
        doc,
        json,
        "userIdentity.arn",
        "aws.cloudtrail.user_identity.arn",
    );
    rename(doc, json, "userIdentity.accountId", "cloud.account.id");
    rename(
        doc,
        json,
        "userIdentity.accessKeyId",
        "aws.cloudtrail.user_identity.access_key_id",
    );
    rename(
        doc,
        json,
        "userIdentity.sessionContext.attributes.mfaAuthenticated",
        "aws.cloudtrail.user_identity.session_context.mfa_authenticated",
    );
    rename(
        doc,
        json,
        "userIdentity.sessionContext.attributes.creationDate",
        "aws.cloudtrail.user_identity.session_context.creation_date",
    );
    rename(
        doc,
        json,
        "userIdentity.sessionContext.sessionIssuer.type",
        "aws.cloudtrail.user_identity.session_context.session_issuer.type",
    );
    // Only assumed roles have an issuer name; it overrides user.name.
    rename(
        doc,
        json,
        "userIdentity.sessionContext.sessionIssuer.userName",
        "user.name",
    );
    rename(
        doc,
        json,
        "userIdentity.sessionContext.sessionIssuer.arn",
        "aws.cloudtrail.user_identity.session_context.session_issuer.arn",
    );
    rename(
        doc,
        json,
        "userIdentity.invokedBy",
        "aws.cloudtrail.user_identity.invoked_by",
    );
}

/// The event's own members → `event.*`, `source.*`, `aws.cloudtrail.*`.
fn map_event(doc: &mut Doc, json: &mut Value, event_name: Option<&Value>) {
    rename(doc, json, "eventVersion", "aws.cloudtrail.event_version");
    rename(doc, json, "eventSource", "event.provider");
    if let Some(name) = event_name {
        doc.insert("event.action".into(), name.clone());
    }
    rename(doc, json, "eventCategory", "aws.cloudtrail.event_category");
    if let Some(region) = json.get("awsRegion").cloned() {
        doc.insert("cloud.region".into(), region);
    }
    rename(doc, json, "sourceIPAddress", "source.address");
    if let Some(ip) = doc
        .get("source.address")
        .and_then(Value::as_str)
        .and_then(|a| a.parse::<IpAddr>().ok())
    {
        doc.insert("source.ip".into(), json!(ip.to_string()));
    }
    rename(doc, json, "userAgent", "user_agent.original");
    rename(doc, json, "errorCode", "aws.cloudtrail.error_code");
    rename(doc, json, "errorMessage", "aws.cloudtrail.error_message");
    for (from, to) in [
        ("requestParameters", "request_parameters"),
        ("responseElements", "response_elements"),
        ("additionalEventData", "additional_eventdata"),
    ] {
        if let Some(v) = json.get(from).cloned() {
            doc.insert(format!("aws.cloudtrail.{to}"), json!(v.to_string()));
            doc.insert(format!("aws.cloudtrail.flattened.{to}"), v);
        }
    }
    rename(doc, json, "requestID", "aws.cloudtrail.request_id");
    rename(doc, json, "eventID", "event.id");
    rename(doc, json, "eventType", "aws.cloudtrail.event_type");
    rename(
        doc,
        json,
        "managementEvent",
        "aws.cloudtrail.management_event",
    );
    rename(doc, json, "readOnly", "aws.cloudtrail.read_only");
    rename(doc, json, "resources", "aws.cloudtrail.resources");
    rename(
        doc,
        json,
        "recipientAccountId",
        "aws.cloudtrail.recipient_account_id",
    );
}

/// ConsoleLogin's `additionalEventData` → booleans and the target URL.
fn map_console_login(doc: &mut Doc) {
    let aed = doc
        .get("aws.cloudtrail.flattened.additional_eventdata")
        .cloned();
    if let Some(aed) = aed {
        let yes = |v: &Value| v.as_str().map(|s| s != "No");
        if let Some(b) = aed.get("MobileVersion").and_then(yes) {
            doc.insert(
                "aws.cloudtrail.console_login.additional_eventdata.mobile_version".into(),
                json!(b),
            );
        }
        if let Some(v) = aed.get("LoginTo") {
            doc.insert(
                "aws.cloudtrail.console_login.additional_eventdata.login_to".into(),
                v.clone(),
            );
        }
        if let Some(b) = aed.get("MFAUsed").and_then(yes) {
            doc.insert(
                "aws.cloudtrail.console_login.additional_eventdata.mfa_used".into(),
                json!(b),
            );
        }
    }
}

/// `event.outcome` and, for sign-ins, `event.category`/`event.type`.
fn categorise(doc: &mut Doc) {
    // ECS categorisation: outcome first, then ConsoleLogin's own.
    let failed = doc.contains_key("aws.cloudtrail.error_code")
        || doc.contains_key("aws.cloudtrail.error_message");
    doc.insert(
        "event.outcome".into(),
        json!(if failed { "failure" } else { "success" }),
    );
    if doc.get("event.action").and_then(Value::as_str) == Some("ConsoleLogin") {
        if let Some(outcome) = doc
            .get("aws.cloudtrail.flattened.response_elements")
            .and_then(|r| r.get("ConsoleLogin"))
            .and_then(Value::as_str)
        {
            doc.insert("event.outcome".into(), json!(outcome.to_lowercase()));
        }
        doc.insert("event.category".into(), json!(["authentication"]));
        doc.insert("event.type".into(), json!(["info"]));
    }
}

/// `tlsDetails` → `tls.*`.
fn map_tls(doc: &mut Doc, json: &mut Value) {
    if let Some(tls) =
        take(json, "tlsDetails.tlsVersion").and_then(|v| v.as_str().map(str::to_owned))
    {
        if let Some((protocol, version)) = tls.split_once('v') {
            doc.insert(
                "tls.version_protocol".into(),
                json!(protocol.to_lowercase()),
            );
            doc.insert("tls.version".into(), json!(version));
        }
    }
    rename(doc, json, "tlsDetails.cipherSuite", "tls.cipher");
    rename(
        doc,
        json,
        "tlsDetails.clientProvidedHostHeader",
        "tls.client.server_name",
    );
}

/// A string field of an ingested document.
pub fn field<'a>(doc: &'a Doc, name: &str) -> Option<&'a str> {
    doc.get(name).and_then(Value::as_str)
}

/// The seed rule's KQL query:
/// `event.dataset: "aws.cloudtrail" and event.provider: "cloudshell.amazonaws.com"
///  and event.action: "CreateEnvironment" and event.outcome: "success"`.
pub fn cloudshell_environment_created(doc: &Doc) -> bool {
    field(doc, "event.dataset") == Some("aws.cloudtrail")
        && field(doc, "event.provider") == Some("cloudshell.amazonaws.com")
        && field(doc, "event.action") == Some("CreateEnvironment")
        && field(doc, "event.outcome") == Some("success")
}
