//! The real AWS CLI (v1, from PyPI) and boto3 against a running `seashell
//! serve`, on SQLite and on PostgreSQL.
//!
//! Needs `SEASHELL_TEST_AWS_BIN` (the bin directory `scripts/aws-clients.sh`
//! prints) and `SEASHELL_TEST_POSTGRES_URL` (`scripts/postgres.sh`);
//! `scripts/test.sh` sets both.

mod common;

use common::{aws_bin, aws_json, client, fresh_postgres_database, text, Server};

/// Returns the secrets it used, for the audit check.
fn check_get_caller_identity(server: &Server) -> Vec<String> {
    let keys = server.bootstrap();
    let key_id = keys["AccessKeyId"].as_str().expect("key id");
    let secret = keys["SecretAccessKey"].as_str().expect("secret");
    let account = keys["AccountId"].as_str().expect("account");
    let arn = format!("arn:aws:iam::{account}:user/admin");
    let aws = aws_bin().join("aws");
    let python = aws_bin().join("python");

    // The AWS CLI signs with SigV4 and reads the Query protocol's XML.
    let out = client(&aws, server, key_id, secret)
        .args(["sts", "get-caller-identity", "--output", "json"])
        .output()
        .expect("run aws");
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "aws sts get-caller-identity failed: {stderr}"
    );
    let reply: serde_json::Value = serde_json::from_str(&stdout).expect("JSON output");
    assert_eq!(reply["Arn"], arn.as_str());
    assert_eq!(reply["Account"], account);
    assert!(reply["UserId"]
        .as_str()
        .is_some_and(|u| u.starts_with("AIDA")));

    // boto3 likewise.
    let out = client(&python, server, key_id, secret)
        .args([
            "-c",
            "import boto3, json; print(json.dumps(boto3.client('sts').get_caller_identity()['Arn']))",
        ])
        .output()
        .expect("run python");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "boto3 failed: {stderr}");
    assert_eq!(stdout.trim(), format!("\"{arn}\""));

    // GetSessionToken: temporary credentials that act as the same user.
    let mut cmd = client(&aws, server, key_id, secret);
    cmd.args([
        "sts",
        "get-session-token",
        "--duration-seconds",
        "900",
        "--output",
        "json",
    ]);
    let session = aws_json(&mut cmd);
    let temp = &session["Credentials"];
    let temp_key = temp["AccessKeyId"].as_str().expect("key");
    let temp_secret = temp["SecretAccessKey"].as_str().expect("secret");
    let temp_token = temp["SessionToken"].as_str().expect("token");
    assert!(temp_key.starts_with("ASIA"));
    let mut cmd = client(&aws, server, temp_key, temp_secret);
    cmd.env("AWS_SESSION_TOKEN", temp_token).args([
        "sts",
        "get-caller-identity",
        "--output",
        "json",
    ]);
    assert_eq!(aws_json(&mut cmd)["Arn"], arn.as_str());
    // Session credentials cannot mint more of themselves, and a bad duration
    // is refused.
    let out = client(&aws, server, temp_key, temp_secret)
        .env("AWS_SESSION_TOKEN", temp_token)
        .args(["sts", "get-session-token"])
        .output()
        .expect("run aws");
    assert!(text(&out).1.contains("(AccessDenied)"), "{}", text(&out).1);
    let out = client(&aws, server, key_id, secret)
        .args(["sts", "get-session-token", "--duration-seconds", "129601"])
        .output()
        .expect("run aws");
    assert!(
        text(&out).1.contains("(ValidationError)"),
        "{}",
        text(&out).1
    );

    // A wrong secret and an unknown key get AWS's own errors.
    let out = client(
        &aws,
        server,
        key_id,
        "wrong-secret-wrong-secret-wrong-secret-00",
    )
    .args(["sts", "get-caller-identity"])
    .output()
    .expect("run aws");
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("An error occurred (SignatureDoesNotMatch) when calling the GetCallerIdentity operation"),
        "{stderr}"
    );
    let out = client(&aws, server, "AKIAAAAAAAAAAAAAAAAA", secret)
        .args(["sts", "get-caller-identity"])
        .output()
        .expect("run aws");
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("(InvalidClientTokenId)")
            && stderr.contains("The security token included in the request is invalid"),
        "{stderr}"
    );

    // Every call is in the audit journal, and no secret is.
    let journal =
        std::fs::read_to_string(server.data_dir.path().join("audit/audit.jsonl")).expect("journal");
    let records: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect();
    let calls: Vec<_> = records
        .iter()
        .filter(|r| {
            r["eventName"] == "GetCallerIdentity" && r["eventSource"] == "sts.amazonaws.com"
        })
        .collect();
    assert_eq!(calls.len(), 5, "{journal}");
    assert_eq!(
        calls
            .iter()
            .filter(|r| r.get("errorCode").is_none())
            .count(),
        3
    );
    assert!(calls
        .iter()
        .any(|r| r["errorCode"] == "SignatureDoesNotMatch"
            && r["userIdentity"]["accessKeyId"] == key_id));
    assert!(calls
        .iter()
        .any(|r| r["userIdentity"]["arn"] == arn.as_str()
            && r["readOnly"] == true
            && r["userAgent"]
                .as_str()
                .is_some_and(|ua| ua.contains("aws-cli/"))));
    for secret_text in [secret, "wrong-secret-wrong-secret-wrong-secret-00"] {
        assert!(
            !journal.contains(secret_text),
            "a secret reached the audit journal"
        );
    }
    vec![
        secret.to_string(),
        "wrong-secret-wrong-secret-wrong-secret-00".to_string(),
        temp_secret.to_string(),
        temp_token.to_string(),
    ]
}

/// `aws cloudtrail lookup-events` finds the calls made so far. Returns the
/// secrets it created, for the audit check.
fn check_lookup_events(server: &Server) -> Vec<String> {
    let keys = server.bootstrap();
    let key_id = keys["AccessKeyId"].as_str().expect("key id");
    let secret = keys["SecretAccessKey"].as_str().expect("secret");
    let aws = aws_bin().join("aws");
    let lookup = |args: &[&str]| {
        let mut cmd = client(&aws, server, key_id, secret);
        cmd.args(["cloudtrail", "lookup-events", "--output", "json"])
            .args(args);
        aws_json(&mut cmd)
    };

    let by_name = lookup(&[
        "--lookup-attributes",
        "AttributeKey=EventName,AttributeValue=GetCallerIdentity",
    ]);
    let events = by_name["Events"].as_array().expect("Events");
    // The three successful calls and the wrong-secret one belong to the
    // account; the call with an unknown key belongs to no account.
    assert_eq!(events.len(), 4, "{by_name}");
    for e in events {
        assert_eq!(e["EventName"], "GetCallerIdentity");
        assert_eq!(e["EventSource"], "sts.amazonaws.com");
        let inner: serde_json::Value =
            serde_json::from_str(e["CloudTrailEvent"].as_str().expect("CloudTrailEvent"))
                .expect("record JSON");
        assert_eq!(inner["eventVersion"], "1.11");
        assert_eq!(inner["eventName"], "GetCallerIdentity");
    }
    // Newest first.
    let times: Vec<f64> = events
        .iter()
        .map(|e| e["EventTime"].as_f64().unwrap_or_default())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // Paging through one event at a time visits each exactly once.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut args = vec![
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=GetCallerIdentity",
            "--max-items",
            "1",
        ];
        if let Some(t) = &token {
            args.extend(["--starting-token", t.as_str()]);
        }
        let page = lookup(&args);
        for e in page["Events"].as_array().expect("Events") {
            seen.push(e["EventId"].as_str().expect("EventId").to_string());
        }
        match page["NextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(seen.len(), 4);
    assert_eq!(unique.len(), 4);

    // A time range: nothing in the future, everything in the last hour.
    let future = lookup(&["--start-time", "2100-01-01T00:00:00Z"]);
    assert_eq!(future["Events"].as_array().map(Vec::len), Some(0));
    let hour_ago = (chrono_now_secs() - 3600).to_string();
    let recent = lookup(&[
        "--start-time",
        &hour_ago,
        "--lookup-attributes",
        "AttributeKey=EventName,AttributeValue=GetCallerIdentity",
    ]);
    assert_eq!(recent["Events"].as_array().map(Vec::len), Some(4));

    // Username and read-only filters; the lookups themselves are recorded.
    let by_user = lookup(&[
        "--lookup-attributes",
        "AttributeKey=Username,AttributeValue=admin",
    ]);
    assert!(by_user["Events"].as_array().expect("Events").len() >= 2);
    let lookups = lookup(&[
        "--lookup-attributes",
        "AttributeKey=EventName,AttributeValue=LookupEvents",
    ]);
    assert!(!lookups["Events"].as_array().expect("Events").is_empty());
    let writes = lookup(&[
        "--lookup-attributes",
        "AttributeKey=ReadOnly,AttributeValue=false",
    ]);
    assert!(writes["Events"]
        .as_array()
        .expect("Events")
        .iter()
        .all(|e| e["ReadOnly"] == "false"));

    // A bad attribute gets CloudTrail's own error.
    let out = client(&aws, server, key_id, secret)
        .args([
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            "AttributeKey=ReadOnly,AttributeValue=maybe",
        ])
        .output()
        .expect("run aws");
    assert!(
        text(&out).1.contains("InvalidLookupAttributesException"),
        "{}",
        text(&out).1
    );

    // A user with no policy may not read the trail.
    let mut create = client(&aws, server, key_id, secret);
    create.args([
        "iam",
        "create-user",
        "--user-name",
        "nobody",
        "--output",
        "json",
    ]);
    aws_json(&mut create);
    let mut keys = client(&aws, server, key_id, secret);
    keys.args([
        "iam",
        "create-access-key",
        "--user-name",
        "nobody",
        "--output",
        "json",
    ]);
    let nobody = aws_json(&mut keys);
    let out = client(
        &aws,
        server,
        nobody["AccessKey"]["AccessKeyId"].as_str().expect("key"),
        nobody["AccessKey"]["SecretAccessKey"]
            .as_str()
            .expect("secret"),
    )
    .args(["cloudtrail", "lookup-events"])
    .output()
    .expect("run aws");
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("(AccessDenied)")
            && stderr.contains("user/nobody is not authorized to perform: cloudtrail:LookupEvents"),
        "{stderr}"
    );
    check_elastic_mapping(server);
    vec![
        secret.to_string(),
        nobody["AccessKey"]["SecretAccessKey"]
            .as_str()
            .expect("secret")
            .to_string(),
    ]
}

/// The server's records, as Elastic's CloudTrail integration indexes them:
/// allowed calls are successes, denied ones failures, with the right
/// provider, action and user.
fn check_elastic_mapping(server: &Server) {
    use seashell_audit::elastic::{field, ingest};
    let journal =
        std::fs::read_to_string(server.data_dir.path().join("audit/audit.jsonl")).expect("journal");
    let docs: Vec<_> = journal
        .lines()
        .map(|l| ingest(&serde_json::from_str(l).expect("record")))
        .collect();
    let allowed = docs
        .iter()
        .find(|d| {
            field(d, "event.action") == Some("GetCallerIdentity")
                && field(d, "event.outcome") == Some("success")
        })
        .expect("an allowed call");
    assert_eq!(field(allowed, "event.provider"), Some("sts.amazonaws.com"));
    assert_eq!(field(allowed, "user.name"), Some("admin"));
    assert_eq!(field(allowed, "source.ip"), Some("127.0.0.1"));
    let denied = docs
        .iter()
        .find(|d| {
            field(d, "aws.cloudtrail.error_code") == Some("AccessDenied")
                && field(d, "event.action") == Some("LookupEvents")
        })
        .expect("a denied call");
    assert_eq!(field(denied, "event.outcome"), Some("failure"));
    assert_eq!(
        field(denied, "event.provider"),
        Some("cloudtrail.amazonaws.com")
    );
    assert_eq!(field(denied, "event.action"), Some("LookupEvents"));
    assert_eq!(field(denied, "user.name"), Some("nobody"));
    let bad_signature = docs
        .iter()
        .find(|d| field(d, "aws.cloudtrail.error_code") == Some("SignatureDoesNotMatch"))
        .expect("a bad signature");
    assert_eq!(field(bad_signature, "event.outcome"), Some("failure"));
}

fn chrono_now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Virtual MFA with the real AWS CLI: create a device, enable it with two
/// consecutive codes, list it, get MFA-authenticated session credentials,
/// and see a replayed code refused. Returns the secrets it saw.
fn check_mfa(server: &Server) -> Vec<String> {
    let keys = server.bootstrap();
    let key_id = keys["AccessKeyId"].as_str().expect("key id");
    let secret = keys["SecretAccessKey"].as_str().expect("secret");
    let account = keys["AccountId"].as_str().expect("account");
    let aws = aws_bin().join("aws");
    let seed_file = server.data_dir.path().join("client-home/seed.txt");
    let mut cmd = client(&aws, server, key_id, secret);
    cmd.args([
        "iam",
        "create-virtual-mfa-device",
        "--virtual-mfa-device-name",
        "admin-phone",
        "--bootstrap-method",
        "Base32StringSeed",
        "--outfile",
    ])
    .arg(&seed_file)
    .args(["--output", "json"]);
    let created = aws_json(&mut cmd);
    let serial = created["VirtualMFADevice"]["SerialNumber"]
        .as_str()
        .expect("serial")
        .to_string();
    assert_eq!(serial, format!("arn:aws:iam::{account}:mfa/admin-phone"));
    let seed = std::fs::read_to_string(&seed_file).expect("seed written by the CLI");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let step = now / 30;
    let code = |s: u64| seashell_server::mfa::code_at(&seed, s * 30).expect("code");

    // Enabling needs two consecutive codes; a wrong pair is refused.
    let out = client(&aws, server, key_id, secret)
        .args([
            "iam",
            "enable-mfa-device",
            "--user-name",
            "admin",
            "--serial-number",
            &serial,
        ])
        .args([
            "--authentication-code1",
            &code(step - 1),
            "--authentication-code2",
            &code(step + 5),
        ])
        .output()
        .expect("run aws");
    assert!(text(&out).1.contains("(InvalidInput)"), "{}", text(&out).1);
    let out = client(&aws, server, key_id, secret)
        .args([
            "iam",
            "enable-mfa-device",
            "--user-name",
            "admin",
            "--serial-number",
            &serial,
        ])
        .args([
            "--authentication-code1",
            &code(step - 1),
            "--authentication-code2",
            &code(step),
        ])
        .output()
        .expect("run aws");
    assert!(out.status.success(), "{}", text(&out).1);
    let mut cmd = client(&aws, server, key_id, secret);
    cmd.args([
        "iam",
        "list-mfa-devices",
        "--user-name",
        "admin",
        "--output",
        "json",
    ]);
    let listed = aws_json(&mut cmd);
    assert_eq!(listed["MFADevices"][0]["SerialNumber"], serial.as_str());

    // A code already used while enabling is refused; the next one works once.
    let out = client(&aws, server, key_id, secret)
        .args([
            "sts",
            "get-session-token",
            "--serial-number",
            &serial,
            "--token-code",
            &code(step),
        ])
        .output()
        .expect("run aws");
    assert!(text(&out).1.contains("(AccessDenied)"), "{}", text(&out).1);
    let next = code(step + 1);
    let mut cmd = client(&aws, server, key_id, secret);
    cmd.args([
        "sts",
        "get-session-token",
        "--serial-number",
        &serial,
        "--token-code",
        &next,
        "--output",
        "json",
    ]);
    let session = aws_json(&mut cmd);
    let temp = &session["Credentials"];
    let (tk, ts, tt) = (
        temp["AccessKeyId"].as_str().expect("key"),
        temp["SecretAccessKey"].as_str().expect("secret"),
        temp["SessionToken"].as_str().expect("token"),
    );
    let out = client(&aws, server, key_id, secret)
        .args([
            "sts",
            "get-session-token",
            "--serial-number",
            &serial,
            "--token-code",
            &next,
        ])
        .output()
        .expect("run aws");
    assert!(
        text(&out).1.contains("(AccessDenied)"),
        "replayed code: {}",
        text(&out).1
    );
    let mut cmd = client(&aws, server, tk, ts);
    cmd.env("AWS_SESSION_TOKEN", tt)
        .args(["sts", "get-caller-identity", "--output", "json"]);
    aws_json(&mut cmd);
    let journal =
        std::fs::read_to_string(server.data_dir.path().join("audit/audit.jsonl")).expect("journal");
    assert!(
        journal
            .lines()
            .any(|l| l.contains(tk) && l.contains(r#""mfaAuthenticated":"true""#)),
        "calls with MFA session credentials say so"
    );
    // A device in use cannot be deleted; deactivated, it can.
    let out = client(&aws, server, key_id, secret)
        .args([
            "iam",
            "delete-virtual-mfa-device",
            "--serial-number",
            &serial,
        ])
        .output()
        .expect("run aws");
    assert!(
        text(&out).1.contains("(DeleteConflict)"),
        "{}",
        text(&out).1
    );
    for args in [
        vec![
            "iam",
            "deactivate-mfa-device",
            "--user-name",
            "admin",
            "--serial-number",
            serial.as_str(),
        ],
        vec![
            "iam",
            "delete-virtual-mfa-device",
            "--serial-number",
            serial.as_str(),
        ],
    ] {
        let out = client(&aws, server, key_id, secret)
            .args(&args)
            .output()
            .expect("run aws");
        assert!(out.status.success(), "{args:?}: {}", text(&out).1);
    }
    vec![
        secret.to_string(),
        ts.to_string(),
        tt.to_string(),
        seed.trim().to_string(),
    ]
}

/// AssumeRole with the real AWS CLI: trust policies naming the account or a
/// user, ExternalId conditions, the role's own permissions, role sessions in
/// the audit trail. Returns the secrets it saw.
fn check_assume_role(server: &Server) -> Vec<String> {
    let keys = server.bootstrap();
    let key_id = keys["AccessKeyId"].as_str().expect("key id");
    let secret = keys["SecretAccessKey"].as_str().expect("secret");
    let account = keys["AccountId"].as_str().expect("account");
    let aws = aws_bin().join("aws");
    let admin = |args: &[&str]| {
        let mut cmd = client(&aws, server, key_id, secret);
        cmd.args(args).args(["--output", "json"]);
        aws_json(&mut cmd)
    };
    let trust_account = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"sts:ExternalId":"ops-42"}}}}}}]}}"#
    );
    admin(&[
        "iam",
        "create-role",
        "--role-name",
        "Ops",
        "--assume-role-policy-document",
        &trust_account,
    ]);
    let mut cmd = client(&aws, server, key_id, secret);
    cmd.args([
        "iam",
        "attach-role-policy",
        "--role-name",
        "Ops",
        "--policy-arn",
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
    ]);
    assert!(cmd.output().expect("run aws").status.success());
    admin(&["iam", "create-user", "--user-name", "dev"]);
    let dev = admin(&["iam", "create-access-key", "--user-name", "dev"]);
    let dev_key = dev["AccessKey"]["AccessKeyId"]
        .as_str()
        .expect("key")
        .to_string();
    let dev_secret = dev["AccessKey"]["SecretAccessKey"]
        .as_str()
        .expect("secret")
        .to_string();
    let role_arn = format!("arn:aws:iam::{account}:role/Ops");
    let assume = |k: &str, s: &str, extra: &[&str]| {
        client(&aws, server, k, s)
            .args([
                "sts",
                "assume-role",
                "--role-arn",
                &role_arn,
                "--role-session-name",
                "night-shift",
                "--output",
                "json",
            ])
            .args(extra)
            .output()
            .expect("run aws")
    };

    // The trust policy names the account: the caller's own policies must
    // allow sts:AssumeRole too, and its condition must hold.
    let out = assume(&dev_key, &dev_secret, &["--external-id", "ops-42"]);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("(AccessDenied)")
            && stderr
                .contains("user/dev is not authorized to perform: sts:AssumeRole on resource:"),
        "{stderr}"
    );
    let out = assume(key_id, secret, &[]);
    assert!(
        text(&out).1.contains("(AccessDenied)"),
        "without ExternalId: {}",
        text(&out).1
    );
    let out = assume(key_id, secret, &["--external-id", "ops-42"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let session: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let session_arn = format!("arn:aws:sts::{account}:assumed-role/Ops/night-shift");
    assert_eq!(session["AssumedRoleUser"]["Arn"], session_arn.as_str());
    let (rk, rs, rt) = (
        session["Credentials"]["AccessKeyId"]
            .as_str()
            .expect("key")
            .to_string(),
        session["Credentials"]["SecretAccessKey"]
            .as_str()
            .expect("secret")
            .to_string(),
        session["Credentials"]["SessionToken"]
            .as_str()
            .expect("token")
            .to_string(),
    );
    let as_role = |args: &[&str]| {
        client(&aws, server, &rk, &rs)
            .env("AWS_SESSION_TOKEN", &rt)
            .args(args)
            .output()
            .expect("run aws")
    };
    let out = as_role(&["sts", "get-caller-identity", "--output", "json"]);
    let who: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(who["Arn"], session_arn.as_str());
    // The session has the role's permissions: ReadOnlyAccess reads, never writes.
    assert!(as_role(&["iam", "list-users"]).status.success());
    let out = as_role(&["iam", "create-user", "--user-name", "intruder"]);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("(AccessDenied)")
            && stderr.contains(&format!(
                "User: {session_arn} is not authorized to perform: iam:CreateUser"
            )),
        "{stderr}"
    );

    // A trust policy that names the user lets them in without any policy of
    // their own.
    let trust_dev = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:user/dev"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    let mut cmd = client(&aws, server, key_id, secret);
    cmd.args([
        "iam",
        "update-assume-role-policy",
        "--role-name",
        "Ops",
        "--policy-document",
        &trust_dev,
    ]);
    assert!(cmd.output().expect("run aws").status.success());
    let out = assume(&dev_key, &dev_secret, &[]);
    assert!(out.status.success(), "{}", text(&out).1);
    // A role that does not exist is refused like one that does not trust.
    let out = client(&aws, server, &dev_key, &dev_secret)
        .args([
            "sts",
            "assume-role",
            "--role-arn",
            &format!("arn:aws:iam::{account}:role/Nope"),
            "--role-session-name",
            "x1",
        ])
        .output()
        .expect("run aws");
    assert!(text(&out).1.contains("(AccessDenied)"), "{}", text(&out).1);

    // The role session appears in the audit trail as an assumed role.
    let journal =
        std::fs::read_to_string(server.data_dir.path().join("audit/audit.jsonl")).expect("journal");
    let record: serde_json::Value = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("record"))
        .find(|r| {
            r["userIdentity"]["accessKeyId"] == rk.as_str() && r["eventName"] == "GetCallerIdentity"
        })
        .expect("the role session's call is recorded");
    assert_eq!(record["userIdentity"]["type"], "AssumedRole");
    assert_eq!(record["userIdentity"]["arn"], session_arn.as_str());
    assert_eq!(
        record["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"],
        role_arn.as_str()
    );
    vec![secret.to_string(), dev_secret, rs, rt]
}

/// No secret any test created appears in any audit sink.
async fn check_no_secrets(server: &mut Server, secrets: &[String]) {
    server.stop();
    let text = server.all_audit_text().await;
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret reached an audit sink"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_cli_and_boto3_on_sqlite() {
    let mut server = tokio::task::block_in_place(|| Server::start(None));
    let secrets = tokio::task::block_in_place(|| {
        let mut secrets = check_get_caller_identity(&server);
        secrets.extend(check_lookup_events(&server));
        secrets.extend(check_mfa(&server));
        secrets.extend(check_assume_role(&server));
        secrets
    });
    check_no_secrets(&mut server, &secrets).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_cli_and_boto3_on_postgres() {
    let url = fresh_postgres_database().await;
    let server = tokio::task::block_in_place(|| Server::start(Some(url)));
    let mut server = server;
    let secrets = tokio::task::block_in_place(|| {
        let mut secrets = check_get_caller_identity(&server);
        secrets.extend(check_lookup_events(&server));
        secrets.extend(check_mfa(&server));
        secrets.extend(check_assume_role(&server));
        secrets
    });
    check_no_secrets(&mut server, &secrets).await;
}
