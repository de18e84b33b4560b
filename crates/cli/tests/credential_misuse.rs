//! Mixed-up credentials, sent by boto3 with its own signer: a long-term
//! access key (`AKIA…`) with a session token — a made-up one, or the real
//! token of someone's temporary credentials — and temporary credentials
//! (`ASIA…`) without their session token or with another one's. AWS refuses
//! each with `InvalidClientTokenId` ("The security token included in the
//! request is invalid"); so must Seashell, while the same keys used
//! properly keep working.
//!
//! Needs `SEASHELL_TEST_AWS_BIN` (`scripts/aws-clients.sh`).

mod common;

use common::{aws_bin, aws_json, client, text, Server};
use serde_json::{json, Value};

/// Calls `sts:GetCallerIdentity` once per case, with exactly the
/// credentials of the case (`token` null = none);
/// prints one JSON line per case: `{"arn": …}` or `{"code": …, "message": …}`.
const PROBE: &str = r#"
import json, sys, boto3, botocore.exceptions
for case in json.loads(sys.argv[1]):
    sts = boto3.client("sts", aws_access_key_id=case["id"],
                       aws_secret_access_key=case["secret"],
                       aws_session_token=case["token"])
    try:
        print(json.dumps({"arn": sts.get_caller_identity()["Arn"]}))
    except botocore.exceptions.ClientError as e:
        err = e.response["Error"]
        print(json.dumps({"code": err.get("Code"), "message": err.get("Message"),
                          "status": e.response["ResponseMetadata"]["HTTPStatusCode"]}))
"#;

fn probe(server: &Server, cases: &[Value]) -> Vec<Value> {
    // The environment's own keys are set to nonsense so that only the
    // explicit ones of each case can be used.
    let out = client(&aws_bin().join("python"), server, "AKIANOTUSED", "unused")
        .args(["-c", PROBE, &Value::from(cases.to_vec()).to_string()])
        .output()
        .expect("run python");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "boto3 probe failed: {stderr}");
    let answers: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(answers.len(), cases.len(), "{stdout}");
    answers
}

fn session_token(server: &Server, id: &str, secret: &str) -> (String, String, String) {
    let reply = aws_json(client(&aws_bin().join("aws"), server, id, secret).args([
        "sts",
        "get-session-token",
        "--output",
        "json",
    ]));
    let c = &reply["Credentials"];
    let field = |name: &str| c[name].as_str().expect(name).to_string();
    (
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("SessionToken"),
    )
}

#[test]
fn keys_and_session_tokens_must_belong_together() {
    let server = Server::start(None);
    let keys = server.bootstrap();
    let admin_id = keys["AccessKeyId"].as_str().expect("id").to_string();
    let admin_secret = keys["SecretAccessKey"]
        .as_str()
        .expect("secret")
        .to_string();
    let account = keys["AccountId"].as_str().expect("account").to_string();
    let aws = aws_bin().join("aws");
    aws_json(client(&aws, &server, &admin_id, &admin_secret).args([
        "iam",
        "create-user",
        "--user-name",
        "bob",
        "--output",
        "json",
    ]));
    let made = aws_json(client(&aws, &server, &admin_id, &admin_secret).args([
        "iam",
        "create-access-key",
        "--user-name",
        "bob",
        "--output",
        "json",
    ]));
    let bob_id = made["AccessKey"]["AccessKeyId"]
        .as_str()
        .expect("id")
        .to_string();
    let bob_secret = made["AccessKey"]["SecretAccessKey"]
        .as_str()
        .expect("secret")
        .to_string();
    assert!(bob_id.starts_with("AKIA"), "{bob_id}");
    let (asia_id, asia_secret, asia_token) = session_token(&server, &admin_id, &admin_secret);
    let (_, _, other_token) = session_token(&server, &admin_id, &admin_secret);
    assert!(asia_id.starts_with("ASIA"), "{asia_id}");
    let (bob_asia_id, bob_asia_secret, bob_asia_token) =
        session_token(&server, &bob_id, &bob_secret);

    let case = |id: &str, secret: &str, token: Option<&str>| json!({"id": id, "secret": secret, "token": token});
    let made_up = "FwoGZXIvYXdzEJr//////////wEaDHNvbWV0aGluZ2Vsc2UiK2NvbWVzIGhlcmU=";
    let cases = [
        // Used properly, every credential works.
        case(&bob_id, &bob_secret, None),
        case(&asia_id, &asia_secret, Some(&asia_token)),
        case(&bob_asia_id, &bob_asia_secret, Some(&bob_asia_token)),
        // A long-term key with a made-up session token.
        case(&bob_id, &bob_secret, Some(made_up)),
        // A long-term key with the real session token of another
        // principal's temporary credentials, and with the one of its own
        // user's.
        case(&bob_id, &bob_secret, Some(&asia_token)),
        case(&bob_id, &bob_secret, Some(&bob_asia_token)),
        // Temporary credentials without their token, with another
        // credential's real token, with a made-up one.
        case(&asia_id, &asia_secret, None),
        case(&asia_id, &asia_secret, Some(&other_token)),
        case(&asia_id, &asia_secret, Some(made_up)),
    ];
    let answers = probe(&server, &cases);
    let bob_arn = format!("arn:aws:iam::{account}:user/bob");
    let admin_arn = format!("arn:aws:iam::{account}:user/admin");
    assert_eq!(answers[0], json!({"arn": bob_arn}));
    assert_eq!(answers[1], json!({"arn": admin_arn}));
    assert_eq!(answers[2], json!({"arn": bob_arn}));
    for (i, answer) in answers.iter().enumerate().skip(3) {
        assert_eq!(
            answer,
            &json!({
                "code": "InvalidClientTokenId",
                "message": "The security token included in the request is invalid.",
                "status": 403,
            }),
            "case {i}: {}",
            cases[i]
        );
    }

    // The AWS CLI gives the same refusal for a long-term key with a token.
    let out = client(&aws, &server, &bob_id, &bob_secret)
        .env("AWS_SESSION_TOKEN", &asia_token)
        .args(["sts", "get-caller-identity"])
        .output()
        .expect("run aws");
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("(InvalidClientTokenId)")
            && stderr.contains("The security token included in the request is invalid"),
        "{stderr}"
    );
}
