//! IAM with the real AWS CLI (v1, from PyPI) and boto3 against a running
//! `seashell serve`, on SQLite and on PostgreSQL: an administrator sets up a
//! user, a group and a policy; the user's own calls are allowed or denied
//! with AWS's messages; simulation, pagination, malformed policies and a
//! batch of bad requests behave as IAM does and leave the database as it was.
//!
//! Needs `SEASHELL_TEST_AWS_BIN` (`scripts/aws-clients.sh`) and
//! `SEASHELL_TEST_POSTGRES_URL` (`scripts/postgres.sh`); `scripts/test.sh`
//! sets both.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{aws_bin, fresh_postgres_database, text, Server};
use seashell_server::store::Store;
use serde_json::Value;

/// Credentials for a client.
struct Keys {
    id: String,
    secret: String,
}

/// A client with `keys` and the server's endpoints (see [`common::client`]).
fn client(program: &Path, server: &Server, keys: &Keys) -> Command {
    common::client(program, server, &keys.id, &keys.secret)
}

/// Runs `aws <args> --output json`; the parsed output on success, the
/// error text otherwise.
fn aws(server: &Server, keys: &Keys, args: &[&str]) -> Result<Value, String> {
    let out = client(&aws_bin().join("aws"), server, keys)
        .args(args)
        .args(["--output", "json"])
        .output()
        .expect("run aws");
    let (stdout, stderr) = text(&out);
    if !out.status.success() {
        return Err(stderr);
    }
    if stdout.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&stdout).map_err(|e| format!("not JSON ({e}): {stdout}"))
}

fn aws_ok(server: &Server, keys: &Keys, args: &[&str]) -> Value {
    aws(server, keys, args).unwrap_or_else(|e| panic!("aws {args:?} failed: {e}"))
}

fn aws_err(server: &Server, keys: &Keys, args: &[&str]) -> String {
    match aws(server, keys, args) {
        Ok(v) => panic!("aws {args:?} should have failed, printed {v}"),
        Err(e) => e,
    }
}

/// Runs a Python script (with boto3) given on stdin; returns its stdout as JSON.
fn python(server: &Server, keys: &Keys, script: &str, args: &[&str]) -> Value {
    let mut child = client(&aws_bin().join("python"), server, keys)
        .arg("-")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write script");
    let out = child.wait_with_output().expect("python");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "python failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Row counts of every identity table, read straight from the database.
fn row_counts(server: &Server) -> Vec<(&'static str, i64)> {
    let url = server.database();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Store::open(&url).await.expect("open the server's database");
        let counts = store.iam_row_counts().await.expect("count rows");
        store.close().await;
        counts
    })
}

/// The CloudShell guide's policy: CloudShell allowed, file transfers denied.
const NO_TRANSFERS: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "CloudShellUser", "Effect": "Allow", "Action": ["cloudshell:*"], "Resource": "*"},
    {"Sid": "DenyUploadDownload", "Effect": "Deny",
     "Action": ["cloudshell:GetFileDownloadUrls", "cloudshell:GetFileUploadUrls"], "Resource": "*"},
    {"Sid": "OwnUser", "Effect": "Allow", "Action": ["iam:GetUser", "iam:ListAccessKeys"],
     "Resource": "arn:aws:iam::*:user/${aws:username}"}
  ]
}"#;

/// Signs arbitrary bodies with SigV4 (botocore's signer) and posts them.
const RAW_REQUESTS: &str = r#"
import json, sys, urllib.request, urllib.error
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
import os
url = sys.argv[1]
creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
out = []
for body_hex in json.load(open(sys.argv[2])):
    data = bytes.fromhex(body_hex)
    req = AWSRequest(method="POST", url=url, data=data,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(creds, "iam", "us-east-1").add_auth(req)
    r = urllib.request.Request(url, data=data, headers=dict(req.headers.items()), method="POST")
    try:
        resp = urllib.request.urlopen(r)
        out.append([resp.status, resp.read().decode("utf-8", "replace")])
    except urllib.error.HTTPError as e:
        out.append([e.code, e.read().decode("utf-8", "replace")])
print(json.dumps(out))
"#;

/// boto3's own pagination over `Marker`, and the raw first page.
const PAGINATE: &str = r#"
import boto3, json
iam = boto3.client("iam")
first = iam.list_users(MaxItems=2)
second = iam.list_users(MaxItems=2, Marker=first["Marker"])
names = [u["UserName"] for page in iam.get_paginator("list_users").paginate(PaginationConfig={"PageSize": 2}) for u in page["Users"]]
doc = iam.get_user_policy(UserName="alice", PolicyName="SeeGroups")["PolicyDocument"]
print(json.dumps({"first": [u["UserName"] for u in first["Users"]], "truncated": first["IsTruncated"],
                  "second": [u["UserName"] for u in second["Users"]], "all": names, "doc": doc}))
"#;

fn check_iam(server: &Server) {
    let boot = server.bootstrap();
    let admin = Keys {
        id: boot["AccessKeyId"].as_str().expect("key").to_string(),
        secret: boot["SecretAccessKey"]
            .as_str()
            .expect("secret")
            .to_string(),
    };
    let account = boot["AccountId"].as_str().expect("account").to_string();
    let alice_arn = format!("arn:aws:iam::{account}:user/alice");

    // The administrator sets up a user, a group and a customer managed policy.
    let created = aws_ok(
        server,
        &admin,
        &["iam", "create-user", "--user-name", "alice"],
    );
    assert_eq!(created["User"]["Arn"], alice_arn.as_str());
    assert!(created["User"]["UserId"]
        .as_str()
        .is_some_and(|u| u.starts_with("AIDA")));
    let err = aws_err(
        server,
        &admin,
        &["iam", "create-user", "--user-name", "ALICE"],
    );
    assert!(err.contains("(EntityAlreadyExists)"), "{err}");
    aws_ok(
        server,
        &admin,
        &["iam", "create-group", "--group-name", "shell-users"],
    );
    aws_ok(
        server,
        &admin,
        &[
            "iam",
            "add-user-to-group",
            "--group-name",
            "shell-users",
            "--user-name",
            "alice",
        ],
    );
    let policy = aws_ok(
        server,
        &admin,
        &[
            "iam",
            "create-policy",
            "--policy-name",
            "CloudShellNoTransfers",
            "--policy-document",
            NO_TRANSFERS,
        ],
    );
    let policy_arn = policy["Policy"]["Arn"].as_str().expect("arn").to_string();
    assert_eq!(
        policy_arn,
        format!("arn:aws:iam::{account}:policy/CloudShellNoTransfers")
    );
    assert_eq!(policy["Policy"]["DefaultVersionId"], "v1");
    aws_ok(
        server,
        &admin,
        &[
            "iam",
            "attach-group-policy",
            "--group-name",
            "shell-users",
            "--policy-arn",
            &policy_arn,
        ],
    );
    // Documents come back percent-encoded; botocore decodes them.
    let version = aws_ok(
        server,
        &admin,
        &[
            "iam",
            "get-policy-version",
            "--policy-arn",
            &policy_arn,
            "--version-id",
            "v1",
        ],
    );
    let sent: Value = serde_json::from_str(NO_TRANSFERS).expect("json");
    assert_eq!(version["PolicyVersion"]["Document"], sent);
    assert_eq!(version["PolicyVersion"]["IsDefaultVersion"], true);
    let attached = aws_ok(
        server,
        &admin,
        &[
            "iam",
            "list-attached-group-policies",
            "--group-name",
            "shell-users",
        ],
    );
    assert_eq!(
        attached["AttachedPolicies"][0]["PolicyName"],
        "CloudShellNoTransfers"
    );
    let groups = aws_ok(
        server,
        &admin,
        &["iam", "list-groups-for-user", "--user-name", "alice"],
    );
    assert_eq!(groups["Groups"][0]["GroupName"], "shell-users");
    aws_ok(
        server,
        &admin,
        &[
            "iam",
            "put-user-policy",
            "--user-name",
            "alice",
            "--policy-name",
            "SeeGroups",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListGroupsForUser","Resource":"*"}]}"#,
        ],
    );
    let key = aws_ok(
        server,
        &admin,
        &["iam", "create-access-key", "--user-name", "alice"],
    );
    let alice = Keys {
        id: key["AccessKey"]["AccessKeyId"]
            .as_str()
            .expect("id")
            .to_string(),
        secret: key["AccessKey"]["SecretAccessKey"]
            .as_str()
            .expect("secret")
            .to_string(),
    };
    assert_eq!(key["AccessKey"]["Status"], "Active");
    assert_eq!(alice.secret.len(), 40);
    let listed = aws_ok(
        server,
        &admin,
        &["iam", "list-access-keys", "--user-name", "alice"],
    );
    assert_eq!(
        listed["AccessKeyMetadata"][0]["AccessKeyId"],
        alice.id.as_str()
    );
    assert!(listed["AccessKeyMetadata"][0]
        .get("SecretAccessKey")
        .is_none());
    let password = "Correct-Horse-Battery-9";
    let profile = aws_ok(
        server,
        &admin,
        &[
            "iam",
            "create-login-profile",
            "--user-name",
            "alice",
            "--password",
            password,
            "--password-reset-required",
        ],
    );
    assert_eq!(profile["LoginProfile"]["PasswordResetRequired"], true);

    // The new user is who they say, may read themselves, and nothing more.
    let me = aws_ok(server, &alice, &["sts", "get-caller-identity"]);
    assert_eq!(me["Arn"], alice_arn.as_str());
    let own = aws_ok(server, &alice, &["iam", "get-user"]);
    assert_eq!(own["User"]["UserName"], "alice");
    let err = aws_err(server, &alice, &["iam", "list-users"]);
    assert!(
        err.contains(&format!(
            "An error occurred (AccessDenied) when calling the ListUsers operation: User: \
             {alice_arn} is not authorized to perform: iam:ListUsers on resource: \
             arn:aws:iam::{account}:user/ because no identity-based policy allows the \
             iam:ListUsers action"
        )),
        "{err}"
    );
    let err = aws_err(server, &alice, &["iam", "get-user", "--user-name", "admin"]);
    assert!(
        err.contains(&format!(
            "User: {alice_arn} is not authorized to perform: iam:GetUser on resource: \
             arn:aws:iam::{account}:user/admin"
        )),
        "{err}"
    );

    // The guide's deny, simulated: uploads explicitly denied, sessions allowed.
    let sim = aws_ok(
        server,
        &admin,
        &[
            "iam",
            "simulate-custom-policy",
            "--policy-input-list",
            NO_TRANSFERS,
            "--action-names",
            "cloudshell:GetFileUploadUrls",
            "cloudshell:CreateSession",
        ],
    );
    let results = sim["EvaluationResults"].as_array().expect("results");
    assert_eq!(results[0]["EvalActionName"], "cloudshell:GetFileUploadUrls");
    assert_eq!(results[0]["EvalDecision"], "explicitDeny");
    assert_eq!(
        results[0]["MatchedStatements"][0]["SourcePolicyId"],
        "PolicyInputList.1"
    );
    assert_eq!(results[1]["EvalDecision"], "allowed");
    let sim = aws_ok(
        server,
        &admin,
        &[
            "iam",
            "simulate-principal-policy",
            "--policy-source-arn",
            &alice_arn,
            "--action-names",
            "cloudshell:GetFileDownloadUrls",
            "iam:DeleteUser",
            "iam:GetUser",
            "--resource-arns",
            &alice_arn,
            "--context-entries",
            "ContextKeyName=aws:username,ContextKeyValues=alice,ContextKeyType=string",
        ],
    );
    let decisions: Vec<&str> = sim["EvaluationResults"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["EvalDecision"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(decisions, ["explicitDeny", "implicitDeny", "allowed"]);
    assert_eq!(
        sim["EvaluationResults"][2]["MatchedStatements"][0]["SourcePolicyId"],
        "CloudShellNoTransfers"
    );

    // Pagination: the CLI's --max-items and --starting-token, and boto3's Marker.
    for i in 1..=4 {
        aws_ok(
            server,
            &admin,
            &["iam", "create-user", "--user-name", &format!("user{i}")],
        );
    }
    let page = aws_ok(server, &admin, &["iam", "list-users", "--max-items", "3"]);
    let names: Vec<&str> = page["Users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["UserName"].as_str())
        .collect();
    assert_eq!(names, ["admin", "alice", "user1"]);
    let token = page["NextToken"].as_str().expect("NextToken");
    let rest = aws_ok(
        server,
        &admin,
        &["iam", "list-users", "--starting-token", token],
    );
    assert_eq!(rest["Users"].as_array().map(Vec::len), Some(3));
    let paged = python(server, &admin, PAGINATE, &[]);
    assert_eq!(paged["first"], serde_json::json!(["admin", "alice"]));
    assert_eq!(paged["truncated"], true);
    assert_eq!(paged["second"], serde_json::json!(["user1", "user2"]));
    assert_eq!(paged["all"].as_array().map(Vec::len), Some(6));
    assert_eq!(
        paged["doc"]["Statement"][0]["Action"],
        "iam:ListGroupsForUser"
    );
    let aws_policies = aws_ok(server, &admin, &["iam", "list-policies", "--scope", "AWS"]);
    assert!(aws_policies["Policies"]
        .as_array()
        .expect("policies")
        .iter()
        .any(
            |p| p["Arn"] == "arn:aws:iam::aws:policy/AdministratorAccess"
                && p["AttachmentCount"] == 1
        ));

    // A malformed policy is refused with the engine's reason, and not stored.
    let before = row_counts(server);
    let err = aws_err(
        server,
        &admin,
        &[
            "iam",
            "create-policy",
            "--policy-name",
            "Broken",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser"}]}"#,
        ],
    );
    assert!(
        err.contains("(MalformedPolicyDocument)") && err.contains("/Statement/0"),
        "{err}"
    );
    let err = aws_err(
        server,
        &admin,
        &[
            "iam",
            "get-policy",
            "--policy-arn",
            &format!("arn:aws:iam::{account}:policy/Broken"),
        ],
    );
    assert!(err.contains("(NoSuchEntity)"), "{err}");
    let local = aws_ok(
        server,
        &admin,
        &["iam", "list-policies", "--scope", "Local"],
    );
    assert_eq!(local["Policies"].as_array().map(Vec::len), Some(1));

    // Deletion conflicts while the user still has keys, groups, policies.
    let err = aws_err(
        server,
        &admin,
        &["iam", "delete-user", "--user-name", "alice"],
    );
    assert!(err.contains("(DeleteConflict)"), "{err}");
    assert_eq!(row_counts(server), before, "refused calls changed nothing");

    // A batch of bad requests: each a Query-protocol error, none a change.
    let big_doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"iam:GetUser","Resource":[{}]}}]}}"#,
        (0..400)
            .map(|i| format!("\"arn:aws:iam::{account}:user/u{i}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let enc = |s: &str| -> String { form_encode(s) };
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (vec![0xff, 0xfe, 0x00, b'=', b'&', 0x80], 400, "ValidationError"),
        (b"Action=CreateUser&Version=2010-05-08".to_vec(), 400, "ValidationError"),
        (b"Action=NoSuchThing&Version=2010-05-08".to_vec(), 400, "InvalidAction"),
        (b"Action=CreateUser&Version=2011-06-15&UserName=x".to_vec(), 400, "ValidationError"),
        (b"Action=CreateUser&Version=2010-05-08&UserName=bad%20name".to_vec(), 400, "ValidationError"),
        (
            format!("Action=CreateUser&Version=2010-05-08&UserName={}", "a".repeat(65)).into_bytes(),
            400,
            "ValidationError",
        ),
        (
            b"Action=CreateUser&Version=2010-05-08&UserName=x&UserName=y".to_vec(),
            400,
            "ValidationError",
        ),
        (
            format!(
                "Action=CreatePolicy&Version=2010-05-08&PolicyName=Big&PolicyDocument={}",
                enc(&big_doc)
            )
            .into_bytes(),
            400,
            "MalformedPolicyDocument",
        ),
        (
            b"Action=PutUserPolicy&Version=2010-05-08&UserName=alice&PolicyName=p&PolicyDocument=%7B".to_vec(),
            400,
            "MalformedPolicyDocument",
        ),
        (
            b"Action=CreateAccessKey&Version=2010-05-08&UserName=nobody".to_vec(),
            404,
            "NoSuchEntity",
        ),
        (
            b"Action=CreateAccessKey&Version=2010-05-08&UserName=alice".to_vec(),
            409,
            "LimitExceeded",
        ),
        (
            b"Action=AttachUserPolicy&Version=2010-05-08&UserName=alice&PolicyArn=arn:aws:iam::aws:policy/Nope".to_vec(),
            404,
            "NoSuchEntity",
        ),
        (
            b"Action=CreateGroup&Version=2010-05-08&GroupName=shell-users".to_vec(),
            409,
            "EntityAlreadyExists",
        ),
        (b"Action=ListUsers&Version=2010-05-08&MaxItems=0".to_vec(), 400, "ValidationError"),
        (b"Action=ListUsers&Version=2010-05-08&Marker=%25%25".to_vec(), 400, "ValidationError"),
        (
            format!("Action=DeletePolicy&Version=2010-05-08&PolicyArn={policy_arn}").into_bytes(),
            409,
            "DeleteConflict",
        ),
    ];
    // Alice's second key fills her quota, so the LimitExceeded case is real.
    aws_ok(
        server,
        &admin,
        &["iam", "create-access-key", "--user-name", "alice"],
    );
    let before = row_counts(server);
    let file = server.data_dir.path().join("bad-requests.json");
    let hex: Vec<String> = cases.iter().map(|(b, _, _)| hex_encode(b)).collect();
    std::fs::write(&file, serde_json::to_string(&hex).expect("json")).expect("write cases");
    let replies = python(
        server,
        &admin,
        RAW_REQUESTS,
        &[&server.endpoint("iam/"), file.to_str().expect("utf-8 path")],
    );
    for ((body, status, code), reply) in cases.iter().zip(replies.as_array().expect("replies")) {
        let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
        assert_eq!(reply[0], *status, "{shown}: {reply}");
        let xml = reply[1].as_str().unwrap_or_default();
        assert!(
            xml.contains("<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">")
                && xml.contains(&format!("<Code>{code}</Code>"))
                && xml.contains("<RequestId>"),
            "{shown}: {xml}"
        );
    }
    assert_eq!(row_counts(server), before, "bad requests changed nothing");

    check_roles(server, &admin, &account);

    // A deactivated key stops working at once.
    aws_ok(
        server,
        &admin,
        &[
            "iam",
            "update-access-key",
            "--user-name",
            "alice",
            "--access-key-id",
            &alice.id,
            "--status",
            "Inactive",
        ],
    );
    let err = aws_err(server, &alice, &["sts", "get-caller-identity"]);
    assert!(err.contains("(InvalidClientTokenId)"), "{err}");

    // The audit trail: every call recorded with readOnly right, and no secret.
    let journal =
        std::fs::read_to_string(server.data_dir.path().join("audit/audit.jsonl")).expect("journal");
    let records: Vec<Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect();
    let find = |name: &str| {
        records
            .iter()
            .find(|r| r["eventSource"] == "iam.amazonaws.com" && r["eventName"] == name)
            .unwrap_or_else(|| panic!("no {name} record"))
    };
    assert_eq!(find("CreateUser")["readOnly"], false);
    assert_eq!(find("CreateUser")["requestParameters"]["userName"], "alice");
    assert_eq!(find("GetPolicyVersion")["readOnly"], true);
    assert_eq!(find("SimulateCustomPolicy")["readOnly"], true);
    assert_eq!(
        find("CreateAccessKey")["responseElements"]["accessKey"]["accessKeyId"],
        alice.id.as_str()
    );
    assert_eq!(
        find("CreateLoginProfile")["requestParameters"]["password"],
        "HIDDEN_DUE_TO_SECURITY_REASONS"
    );
    assert!(records.iter().any(|r| r["eventName"] == "ListUsers"
        && r["errorCode"] == "AccessDenied"
        && r["userIdentity"]["arn"] == alice_arn.as_str()));
    for secret in [alice.secret.as_str(), admin.secret.as_str(), password] {
        assert!(
            !journal.contains(secret),
            "a secret reached the audit journal"
        );
    }
}

/// Roles: trust policies validated as such, attached and inline policies,
/// and deletion only once they are gone.
fn check_roles(server: &Server, admin: &Keys, account: &str) {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::ACCOUNT:root"},"Action":"sts:AssumeRole"}]}"#
        .replace("ACCOUNT", account);
    let role = aws_ok(
        server,
        admin,
        &[
            "iam",
            "create-role",
            "--role-name",
            "Auditor",
            "--path",
            "/ops/",
            "--assume-role-policy-document",
            &trust,
        ],
    );
    assert_eq!(
        role["Role"]["Arn"],
        format!("arn:aws:iam::{account}:role/ops/Auditor")
    );
    let sent: Value = serde_json::from_str(&trust).expect("json");
    assert_eq!(role["Role"]["AssumeRolePolicyDocument"], sent);
    // A trust policy names a principal and no resource.
    let err = aws_err(
        server,
        admin,
        &[
            "iam",
            "update-assume-role-policy",
            "--role-name",
            "Auditor",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#,
        ],
    );
    assert!(err.contains("(MalformedPolicyDocument)"), "{err}");
    aws_ok(
        server,
        admin,
        &[
            "iam",
            "attach-role-policy",
            "--role-name",
            "Auditor",
            "--policy-arn",
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
        ],
    );
    aws_ok(
        server,
        admin,
        &[
            "iam",
            "put-role-policy",
            "--role-name",
            "Auditor",
            "--policy-name",
            "Trail",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"cloudtrail:LookupEvents","Resource":"*"}]}"#,
        ],
    );
    let got = aws_ok(
        server,
        admin,
        &[
            "iam",
            "get-role-policy",
            "--role-name",
            "Auditor",
            "--policy-name",
            "Trail",
        ],
    );
    assert_eq!(got["RoleName"], "Auditor");
    assert_eq!(
        got["PolicyDocument"]["Statement"][0]["Action"],
        "cloudtrail:LookupEvents"
    );
    let sim = aws_ok(
        server,
        admin,
        &[
            "iam",
            "simulate-principal-policy",
            "--policy-source-arn",
            &format!("arn:aws:iam::{account}:role/ops/Auditor"),
            "--action-names",
            "cloudtrail:LookupEvents",
            "iam:CreateUser",
        ],
    );
    assert_eq!(sim["EvaluationResults"][0]["EvalDecision"], "allowed");
    assert_eq!(sim["EvaluationResults"][1]["EvalDecision"], "implicitDeny");
    let err = aws_err(
        server,
        admin,
        &["iam", "delete-role", "--role-name", "Auditor"],
    );
    assert!(err.contains("(DeleteConflict)"), "{err}");
    aws_ok(
        server,
        admin,
        &[
            "iam",
            "detach-role-policy",
            "--role-name",
            "Auditor",
            "--policy-arn",
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
        ],
    );
    aws_ok(
        server,
        admin,
        &[
            "iam",
            "delete-role-policy",
            "--role-name",
            "Auditor",
            "--policy-name",
            "Trail",
        ],
    );
    let listed = aws_ok(
        server,
        admin,
        &["iam", "list-role-policies", "--role-name", "Auditor"],
    );
    assert_eq!(listed["PolicyNames"], serde_json::json!([]));
    aws_ok(
        server,
        admin,
        &["iam", "delete-role", "--role-name", "Auditor"],
    );
    let err = aws_err(
        server,
        admin,
        &["iam", "get-role", "--role-name", "Auditor"],
    );
    assert!(err.contains("(NoSuchEntity)"), "{err}");
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Percent-encodes a form value.
fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn iam_with_aws_cli_and_boto3_on_sqlite() {
    let server = Server::start(None);
    check_iam(&server);
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_with_aws_cli_and_boto3_on_postgres() {
    let url = fresh_postgres_database().await;
    let server = tokio::task::block_in_place(|| Server::start(Some(url)));
    tokio::task::block_in_place(|| check_iam(&server));
}
