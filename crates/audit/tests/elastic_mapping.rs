//! Records this crate writes, read back from real delivery files and run
//! through the rules of Elastic's AWS CloudTrail ingest pipeline
//! (`packages/aws/data_stream/cloudtrail/elasticsearch/ingest_pipeline/default.yml`
//! in elastic/integrations), re-stated here: empty and null values are
//! dropped first; `eventSource` becomes `event.provider`, `eventName`
//! `event.action`; `event.outcome` is `failure` when `errorCode` or
//! `errorMessage` is present, else `success`, except that `ConsoleLogin`
//! takes it from `responseElements.ConsoleLogin`.
//!
//! The checks: a successful CreateEnvironment fires the "AWS CloudShell
//! Environment Created" detection rule, a denied call does not, sign-in
//! outcomes map, and no secret survives into any field.

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use flate2::read::GzDecoder;
use seashell_audit::elastic::{cloudshell_environment_created, field, ingest};
use seashell_audit::{
    ConsoleLogin, DeliveryConfig, DeliverySink, LoginOutcome, Record, RedactedRecord,
    SessionAttributes, Sink, TlsDetails, UserIdentity,
};
use serde_json::{json, Value};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn alice() -> UserIdentity {
    UserIdentity::iam_user("111122223333", "alice", "AIDAEXAMPLE").with_access_key_id("ASIAEXAMPLE")
}

fn create_environment(identity: UserIdentity) -> seashell_audit::RecordBuilder {
    Record::api_call(
        "cloudshell.amazonaws.com",
        "CreateEnvironment",
        "eu-west-1",
        identity,
    )
    .source_ip("203.0.113.10")
    .user_agent("Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0")
    .request_id("0f1e2d3c-0000-4000-8000-000000000001")
    .session_credential_from_console(true)
    .tls_details(TlsDetails {
        tls_version: Some("TLSv1.3".into()),
        cipher_suite: Some("TLS_AES_128_GCM_SHA256".into()),
        client_provided_host_header: Some("cloudshell.eu-west-1.shell.example".into()),
    })
}

/// Writes `records` through a delivery sink and reads them back from the
/// gzip files, the way the integration's S3 input would.
async fn through_delivery(
    records: &[RedactedRecord],
) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let config = DeliveryConfig::new(dir.path());
    let sink = DeliverySink::open(config.clone()).await?;
    for r in records {
        sink.write(r).await?;
    }
    sink.flush().await?;
    let mut files = Vec::new();
    collect_gz(&config.root, &mut files)?;
    let mut out = Vec::new();
    for f in files {
        let mut text = String::new();
        GzDecoder::new(std::fs::File::open(f)?).read_to_string(&mut text)?;
        let doc: Value = serde_json::from_str(&text)?;
        out.extend(doc["Records"].as_array().cloned().unwrap_or_default());
    }
    assert_eq!(out.len(), records.len());
    Ok(out)
}

fn collect_gz(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_gz(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "gz") {
            out.push(path);
        }
    }
    Ok(())
}

#[tokio::test]
async fn successful_create_environment_fires_the_rule() -> TestResult {
    let record = create_environment(alice())
        .request_parameters(json!({}))
        .response_elements(json!({"EnvironmentId": "env-1", "Status": "CREATING"}))
        .build();
    let delivered = through_delivery(std::slice::from_ref(&record)).await?;
    let doc = ingest(&delivered[0]);
    assert!(cloudshell_environment_created(&doc), "{doc:#?}");
    assert_eq!(field(&doc, "user.name"), Some("alice"));
    assert_eq!(field(&doc, "user.id"), Some("AIDAEXAMPLE"));
    assert_eq!(field(&doc, "cloud.account.id"), Some("111122223333"));
    assert_eq!(field(&doc, "cloud.region"), Some("eu-west-1"));
    assert_eq!(field(&doc, "source.ip"), Some("203.0.113.10"));
    assert_eq!(
        field(&doc, "user_agent.original"),
        Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0")
    );
    assert_eq!(
        field(&doc, "aws.cloudtrail.user_identity.type"),
        Some("IAMUser")
    );
    assert_eq!(
        field(&doc, "aws.cloudtrail.user_identity.arn"),
        Some("arn:aws:iam::111122223333:user/alice")
    );
    assert_eq!(field(&doc, "aws.cloudtrail.event_version"), Some("1.11"));
    assert_eq!(field(&doc, "aws.cloudtrail.event_type"), Some("AwsApiCall"));
    assert_eq!(
        field(&doc, "aws.cloudtrail.event_category"),
        Some("Management")
    );
    assert_eq!(
        field(&doc, "event.id"),
        Some(record.event_id.to_string().as_str())
    );
    assert_eq!(field(&doc, "tls.version_protocol"), Some("tls"));
    assert_eq!(field(&doc, "tls.version"), Some("1.3"));
    assert_eq!(
        doc.get("aws.cloudtrail.management_event"),
        Some(&json!(true))
    );
    // `{}` request parameters are empty, so dropped before mapping.
    assert!(!doc.contains_key("aws.cloudtrail.request_parameters"));
    Ok(())
}

#[tokio::test]
async fn assumed_role_maps_user_name_to_the_role() -> TestResult {
    let created = Utc
        .with_ymd_and_hms(2026, 11, 24, 9, 0, 0)
        .single()
        .ok_or("date")?;
    let identity = UserIdentity::assumed_role(
        "111122223333",
        "ShellUsers",
        "AROAEXAMPLE",
        "bob@example.com",
        SessionAttributes {
            creation_date: created,
            mfa_authenticated: true,
        },
    )
    .with_access_key_id("ASIAROLE");
    let record = create_environment(identity).build();
    let doc = ingest(&through_delivery(std::slice::from_ref(&record)).await?[0]);
    assert!(cloudshell_environment_created(&doc));
    assert_eq!(field(&doc, "user.name"), Some("ShellUsers"));
    assert_eq!(
        field(
            &doc,
            "aws.cloudtrail.user_identity.session_context.mfa_authenticated"
        ),
        Some("true")
    );
    assert_eq!(
        field(
            &doc,
            "aws.cloudtrail.user_identity.session_context.session_issuer.type"
        ),
        Some("Role")
    );
    Ok(())
}

#[tokio::test]
async fn denied_call_maps_to_failure_and_does_not_fire() -> TestResult {
    let record = create_environment(alice())
        .error(
            "AccessDeniedException",
            "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: cloudshell:CreateEnvironment",
        )
        .build();
    let doc = ingest(&through_delivery(std::slice::from_ref(&record)).await?[0]);
    assert_eq!(field(&doc, "event.outcome"), Some("failure"));
    assert_eq!(
        field(&doc, "aws.cloudtrail.error_code"),
        Some("AccessDeniedException")
    );
    assert!(!cloudshell_environment_created(&doc));
    Ok(())
}

#[tokio::test]
async fn console_login_outcomes() -> TestResult {
    let login = |identity, outcome, mfa| {
        ConsoleLogin {
            identity,
            region: "us-east-1".into(),
            login_to: "https://shell.example/console/home".into(),
            mfa_used: mfa,
            mfa_identifier: None,
            mobile: false,
            outcome,
        }
        .into_builder()
        .source_ip("198.51.100.20")
        .user_agent("Mozilla/5.0")
        .build()
    };
    let records = [
        login(alice(), LoginOutcome::Success, true),
        login(alice(), LoginOutcome::failed_authentication(), false),
        login(
            ConsoleLogin::unknown_user("111122223333"),
            LoginOutcome::failed_authentication(),
            false,
        ),
    ];
    let delivered = through_delivery(&records).await?;
    let by_id = |r: &RedactedRecord| {
        delivered
            .iter()
            .find(|v| v["eventID"] == json!(r.event_id.to_string()))
            .map(ingest)
            .ok_or("record not delivered")
    };
    let ok = by_id(&records[0])?;
    assert_eq!(field(&ok, "event.provider"), Some("signin.amazonaws.com"));
    assert_eq!(field(&ok, "event.action"), Some("ConsoleLogin"));
    assert_eq!(field(&ok, "event.outcome"), Some("success"));
    assert_eq!(ok.get("event.category"), Some(&json!(["authentication"])));
    assert_eq!(
        field(&ok, "aws.cloudtrail.event_type"),
        Some("AwsConsoleSignIn")
    );
    assert_eq!(
        ok.get("aws.cloudtrail.console_login.additional_eventdata.mfa_used"),
        Some(&json!(true))
    );
    assert_eq!(
        ok.get("aws.cloudtrail.console_login.additional_eventdata.mobile_version"),
        Some(&json!(false))
    );
    assert_eq!(
        field(
            &ok,
            "aws.cloudtrail.console_login.additional_eventdata.login_to"
        ),
        Some("https://shell.example/console/home")
    );

    let bad = by_id(&records[1])?;
    assert_eq!(field(&bad, "event.outcome"), Some("failure"));
    assert_eq!(
        field(&bad, "aws.cloudtrail.error_message"),
        Some("Failed authentication")
    );
    assert_eq!(
        bad.get("aws.cloudtrail.console_login.additional_eventdata.mfa_used"),
        Some(&json!(false))
    );

    let unknown = by_id(&records[2])?;
    assert_eq!(field(&unknown, "event.outcome"), Some("failure"));
    assert_eq!(
        field(&unknown, "user.name"),
        Some("HIDDEN_DUE_TO_SECURITY_REASONS")
    );
    Ok(())
}

#[tokio::test]
async fn no_field_carries_a_secret() -> TestResult {
    let secrets = [
        "hunter2-password",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN",
        "tv-0123456789abcdef",
        "428817",
        "913375",
        "client-secret-xyz",
        "refresh-token-abc",
        "access-token-def",
        "-----BEGIN PRIVATE KEY-----MIIEv",
        "echo my file contents",
    ];
    let records = [
        Record::api_call("iam.amazonaws.com", "CreateLoginProfile", "us-east-1", alice())
            .request_parameters(json!({"userName": "bob", "password": secrets[0], "passwordResetRequired": true}))
            .build(),
        Record::api_call("iam.amazonaws.com", "CreateAccessKey", "us-east-1", alice())
            .response_elements(json!({"accessKey": {"userName": "bob", "accessKeyId": "AKIANEWKEY",
                "secretAccessKey": secrets[1], "status": "Active"}}))
            .build(),
        Record::api_call("sts.amazonaws.com", "GetSessionToken", "us-east-1", alice())
            .request_parameters(json!({"tokenCode": secrets[4], "serialNumber": "arn:aws:iam::111122223333:mfa/alice"}))
            .response_elements(json!({"credentials": {"accessKeyId": "ASIANEW", "SecretAccessKey": secrets[1],
                "sessionToken": secrets[2], "expiration": "2026-11-24T13:00:00Z"}}))
            .build(),
        Record::api_call("cloudshell.amazonaws.com", "CreateSession", "us-east-1", alice())
            .response_elements(json!({"SessionId": "s-1", "TokenValue": secrets[3], "StreamUrl": "wss://x/s-1"}))
            .build(),
        Record::api_call("iam.amazonaws.com", "EnableMFADevice", "us-east-1", alice())
            .request_parameters(json!({"userName": "alice", "AuthenticationCode1": secrets[4], "AuthenticationCode2": secrets[5]}))
            .build(),
        Record::api_call("sso-oauth.amazonaws.com", "CreateToken", "us-east-1", alice())
            .request_parameters(json!({"clientId": "c", "clientSecret": secrets[6], "refreshToken": secrets[7], "grantType": "refresh_token"}))
            .response_elements(json!({"accessToken": secrets[8], "tokenType": "Bearer", "expiresIn": 28800}))
            .build(),
        Record::api_call("cloudshell.amazonaws.com", "PutFile", "us-east-1", alice())
            .request_parameters(json!({"EnvironmentId": "env-1", "Path": "id_rsa", "PrivateKey": secrets[9], "FileContents": secrets[10]}))
            .build(),
    ];
    let delivered = through_delivery(&records).await?;
    for value in &delivered {
        let doc = ingest(value);
        let text = serde_json::to_string(&doc)?;
        for secret in secrets {
            assert!(!text.contains(secret), "secret {secret:?} in {text}");
        }
    }
    // The key id of a returned credential is kept for investigations.
    let keys: Vec<String> = delivered
        .iter()
        .map(|v| v["responseElements"].to_string())
        .collect();
    assert!(keys.iter().any(|k| k.contains("AKIANEWKEY")));
    assert!(keys.iter().any(|k| k.contains("ASIANEW")));
    Ok(())
}
