//! Privilege escalation through IAM, tried with the real AWS CLI by a user
//! who may only read IAM and manage their own access keys: every way to
//! give themselves more (attaching AdministratorAccess, an inline policy, a
//! policy version, a group, another user's keys, a trust policy, assuming a
//! role that trusts the account, passing a role) is refused with
//! AccessDenied, and afterwards the administrator finds nothing changed.
//!
//! Needs `SEASHELL_TEST_AWS_BIN` (`scripts/aws-clients.sh`).

mod common;

use common::{aws_bin, text, Server};
use serde_json::Value;

struct Who<'a> {
    server: &'a Server,
    id: String,
    secret: String,
}

impl Who<'_> {
    fn aws(&self, args: &[&str]) -> Result<Value, String> {
        let out = common::client(&aws_bin().join("aws"), self.server, &self.id, &self.secret)
            .args(args)
            .args(["--output", "json"])
            .output()
            .expect("aws");
        let (stdout, stderr) = text(&out);
        if !out.status.success() {
            return Err(stderr);
        }
        Ok(serde_json::from_str(&stdout).unwrap_or(Value::Null))
    }

    fn ok(&self, args: &[&str]) -> Value {
        self.aws(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }
}

const EVE_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
  {"Effect":"Allow","Action":["iam:Get*","iam:List*"],"Resource":"*"},
  {"Effect":"Allow","Action":["iam:CreateAccessKey","iam:ListAccessKeys","iam:DeleteAccessKey"],
   "Resource":"arn:aws:iam::*:user/${aws:username}"}]}"#;

#[test]
fn a_user_cannot_give_themselves_more() {
    let server = Server::start(None);
    let keys = server.bootstrap();
    let admin = Who {
        server: &server,
        id: keys["AccessKeyId"].as_str().expect("key").to_string(),
        secret: keys["SecretAccessKey"]
            .as_str()
            .expect("secret")
            .to_string(),
    };
    let account = keys["AccountId"].as_str().expect("account").to_string();
    admin.ok(&["iam", "create-user", "--user-name", "eve"]);
    admin.ok(&[
        "iam",
        "put-user-policy",
        "--user-name",
        "eve",
        "--policy-name",
        "ReadAndOwnKeys",
        "--policy-document",
        EVE_POLICY,
    ]);
    admin.ok(&["iam", "create-group", "--group-name", "admins"]);
    admin.ok(&[
        "iam",
        "attach-group-policy",
        "--group-name",
        "admins",
        "--policy-arn",
        "arn:aws:iam::aws:policy/AdministratorAccess",
    ]);
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    admin.ok(&[
        "iam",
        "create-role",
        "--role-name",
        "Operators",
        "--assume-role-policy-document",
        &trust,
    ]);
    admin.ok(&[
        "iam",
        "attach-role-policy",
        "--role-name",
        "Operators",
        "--policy-arn",
        "arn:aws:iam::aws:policy/AdministratorAccess",
    ]);
    let customer = admin.ok(&[
        "iam",
        "create-policy",
        "--policy-name",
        "Narrow",
        "--policy-document",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"*"}]}"#,
    ]);
    let customer_arn = customer["Policy"]["Arn"].as_str().expect("arn").to_string();
    let made = admin.ok(&["iam", "create-access-key", "--user-name", "eve"]);
    let eve = Who {
        server: &server,
        id: made["AccessKey"]["AccessKeyId"]
            .as_str()
            .expect("id")
            .to_string(),
        secret: made["AccessKey"]["SecretAccessKey"]
            .as_str()
            .expect("secret")
            .to_string(),
    };

    // What eve may do works: reading IAM, her own keys.
    eve.ok(&["iam", "get-user"]);
    eve.ok(&["iam", "list-access-keys"]);
    let role_arn = format!("arn:aws:iam::{account}:role/Operators");
    let everything =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    let attempts: Vec<Vec<&str>> = vec![
        vec![
            "iam",
            "attach-user-policy",
            "--user-name",
            "eve",
            "--policy-arn",
            "arn:aws:iam::aws:policy/AdministratorAccess",
        ],
        vec![
            "iam",
            "put-user-policy",
            "--user-name",
            "eve",
            "--policy-name",
            "All",
            "--policy-document",
            everything,
        ],
        vec![
            "iam",
            "add-user-to-group",
            "--group-name",
            "admins",
            "--user-name",
            "eve",
        ],
        vec![
            "iam",
            "create-policy-version",
            "--policy-arn",
            &customer_arn,
            "--policy-document",
            everything,
            "--set-as-default",
        ],
        vec!["iam", "create-access-key", "--user-name", "admin"],
        vec![
            "iam",
            "update-assume-role-policy",
            "--role-name",
            "Operators",
            "--policy-document",
            &trust,
        ],
        vec!["iam", "create-user", "--user-name", "eve2"],
        vec![
            "sts",
            "assume-role",
            "--role-arn",
            &role_arn,
            "--role-session-name",
            "eve",
        ],
    ];
    for attempt in &attempts {
        let refused = eve
            .aws(attempt)
            .err()
            .unwrap_or_else(|| panic!("{attempt:?} should be refused"));
        assert!(
            refused.contains("AccessDenied") && refused.contains("user/eve is not authorized"),
            "{attempt:?}: {refused}"
        );
    }

    // Nothing changed.
    let attached = admin.ok(&["iam", "list-attached-user-policies", "--user-name", "eve"]);
    assert_eq!(
        attached["AttachedPolicies"],
        Value::Array(vec![]),
        "{attached}"
    );
    let inline = admin.ok(&["iam", "list-user-policies", "--user-name", "eve"]);
    assert_eq!(inline["PolicyNames"], serde_json::json!(["ReadAndOwnKeys"]));
    let groups = admin.ok(&["iam", "list-groups-for-user", "--user-name", "eve"]);
    assert_eq!(groups["Groups"], Value::Array(vec![]));
    let versions = admin.ok(&["iam", "list-policy-versions", "--policy-arn", &customer_arn]);
    assert_eq!(versions["Versions"].as_array().map(Vec::len), Some(1));
    let admin_keys = admin.ok(&["iam", "list-access-keys", "--user-name", "admin"]);
    assert_eq!(
        admin_keys["AccessKeyMetadata"].as_array().map(Vec::len),
        Some(1)
    );
    assert!(admin
        .aws(&["iam", "get-user", "--user-name", "eve2"])
        .is_err());
    let role = admin.ok(&["iam", "get-role", "--role-name", "Operators"]);
    assert_eq!(
        role["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"],
        format!("arn:aws:iam::{account}:root").as_str()
    );
    // Still only what she had: more reading, no writing.
    let after = eve.aws(&["iam", "create-group", "--group-name", "mine"]);
    assert!(after.is_err());
}
