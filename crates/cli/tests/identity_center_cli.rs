//! IAM Identity Center administered with the real AWS CLI (v1, from PyPI)
//! against a running `seashell serve`, following the blog's setup steps:
//! an organization with member accounts for dev and prod, identity-store
//! users and a group, a permission set with managed and inline policies,
//! and the group assigned to both accounts. The materialized
//! `AWSReservedSSO_…` roles are checked from inside the member accounts
//! (through the `OrganizationAccountAccessRole` that CreateAccount makes,
//! as in AWS), as are re-syncing, removal with the last assignment,
//! refusals, service control policies and the audit trail.
//!
//! Needs `SEASHELL_TEST_AWS_BIN` (`scripts/aws-clients.sh`) and
//! `SEASHELL_TEST_POSTGRES_URL` (`scripts/postgres.sh`).

mod common;

use std::process::Command;

use common::{aws_bin, fresh_postgres_database, text, Server};
use serde_json::{json, Value};

/// Credentials for a client; `token` for temporary ones.
struct Keys {
    id: String,
    secret: String,
    token: Option<String>,
}

fn client(server: &Server, keys: &Keys) -> Command {
    let mut cmd = common::client(&aws_bin().join("aws"), server, &keys.id, &keys.secret);
    cmd.env(
        "AWS_ENDPOINT_URL_ORGANIZATIONS",
        server.endpoint("organizations"),
    )
    .env(
        "AWS_ENDPOINT_URL_IDENTITYSTORE",
        server.endpoint("identitystore"),
    )
    .env("AWS_ENDPOINT_URL_SSO_ADMIN", server.endpoint("sso-admin"))
    .env("AWS_ENDPOINT_URL_CLOUDSHELL", server.endpoint("cloudshell"));
    if let Some(token) = &keys.token {
        cmd.env("AWS_SESSION_TOKEN", token);
    }
    cmd
}

fn aws(server: &Server, keys: &Keys, args: &[&str]) -> Result<Value, String> {
    let out = client(server, keys)
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

fn ok(server: &Server, keys: &Keys, args: &[&str]) -> Value {
    aws(server, keys, args).unwrap_or_else(|e| panic!("aws {args:?} failed: {e}"))
}

/// Runs a command that must fail with `code`; the error text.
fn refused(server: &Server, keys: &Keys, args: &[&str], code: &str) -> String {
    match aws(server, keys, args) {
        Ok(v) => panic!("aws {args:?} should have failed with {code}, printed {v}"),
        Err(e) => {
            assert!(
                e.contains(&format!("({code}")),
                "aws {args:?}: expected {code}, got {e}"
            );
            e
        }
    }
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// Credentials of the member account's administrator: a session of the
/// account's `OrganizationAccountAccessRole`, assumed from the management
/// account.
fn member_admin(server: &Server, admin: &Keys, account: &str) -> Keys {
    let creds = ok(
        server,
        admin,
        &[
            "sts",
            "assume-role",
            "--role-arn",
            &format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole"),
            "--role-session-name",
            "admin",
        ],
    );
    Keys {
        id: s(&creds["Credentials"]["AccessKeyId"]),
        secret: s(&creds["Credentials"]["SecretAccessKey"]),
        token: Some(s(&creds["Credentials"]["SessionToken"])),
    }
}

/// The `AWSReservedSSO_` roles of the account the keys belong to.
fn sso_roles(server: &Server, keys: &Keys) -> Vec<Value> {
    let listed = ok(
        server,
        keys,
        &[
            "iam",
            "list-roles",
            "--path-prefix",
            "/aws-reserved/sso.amazonaws.com/",
        ],
    );
    listed["Roles"].as_array().expect("roles").clone()
}

fn attached(server: &Server, keys: &Keys, role: &str) -> Vec<String> {
    let listed = ok(
        server,
        keys,
        &["iam", "list-attached-role-policies", "--role-name", role],
    );
    listed["AttachedPolicies"]
        .as_array()
        .expect("policies")
        .iter()
        .map(|p| s(&p["PolicyArn"]))
        .collect()
}

fn inline_names(server: &Server, keys: &Keys, role: &str) -> Vec<String> {
    let listed = ok(
        server,
        keys,
        &["iam", "list-role-policies", "--role-name", role],
    );
    listed["PolicyNames"]
        .as_array()
        .expect("names")
        .iter()
        .map(s)
        .collect()
}

const READ_ONLY: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";
const CLOUDSHELL: &str = "arn:aws:iam::aws:policy/AWSCloudShellFullAccess";
const INLINE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ChangePassword","Resource":"*"}]}"#;
const DENY_CLOUDSHELL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"cloudshell:*","Resource":"*"}]}"#;

fn check_identity_center(server: &Server) {
    let boot = server.bootstrap();
    let admin = Keys {
        id: s(&boot["AccessKeyId"]),
        secret: s(&boot["SecretAccessKey"]),
        token: None,
    };
    let management = s(&boot["AccountId"]);

    // Step 1: an organization, managed by the caller's account.
    let org = ok(
        server,
        &admin,
        &[
            "organizations",
            "create-organization",
            "--feature-set",
            "ALL",
        ],
    );
    assert_eq!(org["Organization"]["MasterAccountId"], json!(management));
    assert!(s(&org["Organization"]["Id"]).starts_with("o-"));
    refused(
        server,
        &admin,
        &["organizations", "create-organization"],
        "AlreadyInOrganizationException",
    );
    let described = ok(server, &admin, &["organizations", "describe-organization"]);
    assert_eq!(described["Organization"]["Id"], org["Organization"]["Id"]);

    // Step 2: member accounts for dev and prod, created at once.
    let mut members = Vec::new();
    for (name, email) in [("dev", "dev@example.com"), ("prod", "prod@example.com")] {
        let created = ok(
            server,
            &admin,
            &[
                "organizations",
                "create-account",
                "--account-name",
                name,
                "--email",
                email,
            ],
        );
        let status = &created["CreateAccountStatus"];
        assert_eq!(status["State"], "SUCCEEDED", "{created}");
        let again = ok(
            server,
            &admin,
            &[
                "organizations",
                "describe-create-account-status",
                "--create-account-request-id",
                &s(&status["Id"]),
            ],
        );
        assert_eq!(
            again["CreateAccountStatus"]["AccountId"],
            status["AccountId"]
        );
        members.push(s(&status["AccountId"]));
    }
    refused(
        server,
        &admin,
        &[
            "organizations",
            "create-account",
            "--account-name",
            "again",
            "--email",
            "dev@example.com",
        ],
        "ConstraintViolationException",
    );
    let (dev, prod) = (members[0].clone(), members[1].clone());
    assert_eq!(dev.len(), 12);
    assert_ne!(dev, management);
    let accounts = ok(server, &admin, &["organizations", "list-accounts"]);
    let ids: Vec<String> = accounts["Accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| s(&a["Id"]))
        .collect();
    assert_eq!(ids, vec![management.clone(), dev.clone(), prod.clone()]);
    let account = ok(
        server,
        &admin,
        &["organizations", "describe-account", "--account-id", &dev],
    );
    assert_eq!(account["Account"]["Name"], "dev");
    assert_eq!(account["Account"]["Email"], "dev@example.com");
    let roots = ok(server, &admin, &["organizations", "list-roots"]);
    let root = s(&roots["Roots"][0]["Id"]);
    assert!(root.starts_with("r-"));
    let policies = ok(
        server,
        &admin,
        &[
            "organizations",
            "list-policies",
            "--filter",
            "SERVICE_CONTROL_POLICY",
        ],
    );
    assert_eq!(policies["Policies"][0]["Id"], "p-FullAWSAccess");
    assert_eq!(policies["Policies"][0]["AwsManaged"], true);

    // The instance came with the organization.
    let instances = ok(server, &admin, &["sso-admin", "list-instances"]);
    let instance_arn = s(&instances["Instances"][0]["InstanceArn"]);
    let store_id = s(&instances["Instances"][0]["IdentityStoreId"]);
    assert!(
        instance_arn.starts_with("arn:aws:sso:::instance/ssoins-"),
        "{instance_arn}"
    );
    assert!(
        store_id.starts_with("d-") && store_id.len() == 12,
        "{store_id}"
    );

    // Step 3: users and a group in the identity store.
    let mut users = Vec::new();
    for (user, given, family) in [("alice", "Alice", "Liddell"), ("bob", "Bob", "Builder")] {
        let created = ok(
            server,
            &admin,
            &[
                "identitystore",
                "create-user",
                "--identity-store-id",
                &store_id,
                "--user-name",
                user,
                "--display-name",
                &format!("{given} {family}"),
                "--name",
                &format!("GivenName={given},FamilyName={family}"),
                "--emails",
                &format!("Value={user}@example.com,Type=work,Primary=true"),
            ],
        );
        users.push(s(&created["UserId"]));
    }
    refused(
        server,
        &admin,
        &[
            "identitystore",
            "create-user",
            "--identity-store-id",
            &store_id,
            "--user-name",
            "ALICE",
            "--display-name",
            "Again",
        ],
        "ConflictException",
    );
    let found = ok(
        server,
        &admin,
        &[
            "identitystore",
            "list-users",
            "--identity-store-id",
            &store_id,
            "--filters",
            "AttributePath=UserName,AttributeValue=bob",
        ],
    );
    assert_eq!(found["Users"].as_array().map(Vec::len), Some(1));
    assert_eq!(found["Users"][0]["UserId"], json!(users[1]));
    let looked_up = ok(
        server,
        &admin,
        &[
            "identitystore",
            "get-user-id",
            "--identity-store-id",
            &store_id,
            "--alternate-identifier",
            r#"{"UniqueAttribute":{"AttributePath":"UserName","AttributeValue":"alice"}}"#,
        ],
    );
    assert_eq!(looked_up["UserId"], json!(users[0]));
    let described = ok(
        server,
        &admin,
        &[
            "identitystore",
            "describe-user",
            "--identity-store-id",
            &store_id,
            "--user-id",
            &users[0],
        ],
    );
    assert_eq!(described["UserName"], "alice");
    assert_eq!(described["Emails"][0]["Value"], "alice@example.com");
    let group = ok(
        server,
        &admin,
        &[
            "identitystore",
            "create-group",
            "--identity-store-id",
            &store_id,
            "--display-name",
            "Developers",
            "--description",
            "App team",
        ],
    );
    let group_id = s(&group["GroupId"]);
    let by_name = ok(
        server,
        &admin,
        &[
            "identitystore",
            "get-group-id",
            "--identity-store-id",
            &store_id,
            "--alternate-identifier",
            r#"{"UniqueAttribute":{"AttributePath":"DisplayName","AttributeValue":"Developers"}}"#,
        ],
    );
    assert_eq!(by_name["GroupId"], json!(group_id));
    for user in &users {
        ok(
            server,
            &admin,
            &[
                "identitystore",
                "create-group-membership",
                "--identity-store-id",
                &store_id,
                "--group-id",
                &group_id,
                "--member-id",
                &format!("UserId={user}"),
            ],
        );
    }
    let memberships = ok(
        server,
        &admin,
        &[
            "identitystore",
            "list-group-memberships",
            "--identity-store-id",
            &store_id,
            "--group-id",
            &group_id,
        ],
    );
    assert_eq!(
        memberships["GroupMemberships"].as_array().map(Vec::len),
        Some(2)
    );

    // Step 4: a permission set with managed and inline policies.
    refused(
        server,
        &admin,
        &[
            "sso-admin",
            "create-permission-set",
            "--instance-arn",
            &instance_arn,
            "--name",
            "TooLong",
            "--session-duration",
            "PT13H",
        ],
        "ValidationException",
    );
    let created = ok(
        server,
        &admin,
        &[
            "sso-admin",
            "create-permission-set",
            "--instance-arn",
            &instance_arn,
            "--name",
            "PowerUser",
            "--description",
            "Developers' access",
            "--session-duration",
            "PT4H",
        ],
    );
    let ps = s(&created["PermissionSet"]["PermissionSetArn"]);
    assert_eq!(created["PermissionSet"]["SessionDuration"], "PT4H");
    let ps_args = |op: &str| -> Vec<String> {
        vec![
            "sso-admin".into(),
            op.into(),
            "--instance-arn".into(),
            instance_arn.clone(),
            "--permission-set-arn".into(),
            ps.clone(),
        ]
    };
    let run = |keys: &Keys, args: Vec<String>, extra: &[&str]| -> Result<Value, String> {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.extend_from_slice(extra);
        aws(server, keys, &all)
    };
    run(
        &admin,
        ps_args("attach-managed-policy-to-permission-set"),
        &["--managed-policy-arn", READ_ONLY],
    )
    .expect("attach");
    run(
        &admin,
        ps_args("put-inline-policy-to-permission-set"),
        &["--inline-policy", INLINE],
    )
    .expect("inline");
    let got =
        run(&admin, ps_args("get-inline-policy-for-permission-set"), &[]).expect("get inline");
    assert_eq!(got["InlinePolicy"], INLINE);
    let described = run(&admin, ps_args("describe-permission-set"), &[]).expect("describe");
    assert_eq!(described["PermissionSet"]["Name"], "PowerUser");
    let listed = ok(
        server,
        &admin,
        &[
            "sso-admin",
            "list-permission-sets",
            "--instance-arn",
            &instance_arn,
        ],
    );
    assert_eq!(listed["PermissionSets"], json!([ps]));

    // Step 5: the group assigned to both accounts.
    for account in [&dev, &prod] {
        let created = ok(
            server,
            &admin,
            &[
                "sso-admin",
                "create-account-assignment",
                "--instance-arn",
                &instance_arn,
                "--target-id",
                account,
                "--target-type",
                "AWS_ACCOUNT",
                "--permission-set-arn",
                &ps,
                "--principal-type",
                "GROUP",
                "--principal-id",
                &group_id,
            ],
        );
        let status = &created["AccountAssignmentCreationStatus"];
        assert_eq!(status["Status"], "SUCCEEDED");
        let again = ok(
            server,
            &admin,
            &[
                "sso-admin",
                "describe-account-assignment-creation-status",
                "--instance-arn",
                &instance_arn,
                "--account-assignment-creation-request-id",
                &s(&status["RequestId"]),
            ],
        );
        assert_eq!(
            again["AccountAssignmentCreationStatus"]["TargetId"],
            json!(account)
        );
    }
    let assigned = ok(
        server,
        &admin,
        &[
            "sso-admin",
            "list-account-assignments",
            "--instance-arn",
            &instance_arn,
            "--account-id",
            &dev,
            "--permission-set-arn",
            &ps,
        ],
    );
    assert_eq!(
        assigned["AccountAssignments"][0]["PrincipalId"],
        json!(group_id)
    );
    let provisioned = run(
        &admin,
        ps_args("list-accounts-for-provisioned-permission-set"),
        &[],
    )
    .expect("accounts");
    let mut expected = vec![dev.clone(), prod.clone()];
    expected.sort();
    assert_eq!(provisioned["AccountIds"], json!(expected));

    // The role exists in each member account, seen by its administrator.
    let dev_admin = member_admin(server, &admin, &dev);
    let prod_admin = member_admin(server, &admin, &prod);
    let roles = sso_roles(server, &dev_admin);
    assert_eq!(roles.len(), 1, "{roles:?}");
    let role_name = s(&roles[0]["RoleName"]);
    let hash = role_name
        .strip_prefix("AWSReservedSSO_PowerUser_")
        .expect("role name");
    assert!(
        hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{role_name}"
    );
    assert_eq!(roles[0]["MaxSessionDuration"], 14_400);
    assert_eq!(
        roles[0]["Arn"],
        json!(format!(
            "arn:aws:iam::{dev}:role/aws-reserved/sso.amazonaws.com/{role_name}"
        ))
    );
    let trust = ok(
        server,
        &dev_admin,
        &["iam", "get-role", "--role-name", &role_name],
    );
    let trust_text = trust["Role"]["AssumeRolePolicyDocument"].to_string();
    assert!(
        trust_text.contains("sts:AssumeRoleWithSAML")
            && trust_text.contains(":saml-provider/AWSSSO_"),
        "{trust_text}"
    );
    assert_eq!(
        attached(server, &dev_admin, &role_name),
        vec![READ_ONLY.to_string()]
    );
    assert_eq!(
        inline_names(server, &dev_admin, &role_name),
        vec!["AwsSSOInlinePolicy".to_string()]
    );
    let prod_roles = sso_roles(server, &prod_admin);
    assert_eq!(prod_roles.len(), 1);
    assert_ne!(
        prod_roles[0]["RoleName"],
        json!(role_name),
        "the hash covers the account"
    );
    // The management account has no assignment, so no role.
    assert!(sso_roles(server, &admin).is_empty());

    // Changing the set re-syncs its roles.
    run(
        &admin,
        ps_args("attach-managed-policy-to-permission-set"),
        &["--managed-policy-arn", CLOUDSHELL],
    )
    .expect("attach");
    let mut now = attached(server, &dev_admin, &role_name);
    now.sort();
    assert_eq!(now, vec![CLOUDSHELL.to_string(), READ_ONLY.to_string()]);
    run(
        &admin,
        ps_args("detach-managed-policy-from-permission-set"),
        &["--managed-policy-arn", READ_ONLY],
    )
    .expect("detach");
    assert_eq!(
        attached(server, &dev_admin, &role_name),
        vec![CLOUDSHELL.to_string()]
    );
    run(
        &admin,
        ps_args("delete-inline-policy-from-permission-set"),
        &[],
    )
    .expect("delete inline");
    assert!(inline_names(server, &dev_admin, &role_name).is_empty());
    let provisioning = run(
        &admin,
        ps_args("provision-permission-set"),
        &["--target-type", "ALL_PROVISIONED_ACCOUNTS"],
    )
    .expect("provision");
    assert_eq!(
        provisioning["PermissionSetProvisioningStatus"]["Status"],
        "SUCCEEDED"
    );
    assert_eq!(
        sso_roles(server, &dev_admin)[0]["RoleName"],
        json!(role_name),
        "the name is stable"
    );

    // Refusals.
    let unknown = format!(
        "{}/ps-0000000000000000",
        ps.rsplit_once('/').expect("arn").0
    );
    refused(
        server,
        &admin,
        &[
            "sso-admin",
            "describe-permission-set",
            "--instance-arn",
            &instance_arn,
            "--permission-set-arn",
            &unknown,
        ],
        "ResourceNotFoundException",
    );
    refused(
        server,
        &admin,
        &[
            "sso-admin",
            "create-account-assignment",
            "--instance-arn",
            &instance_arn,
            "--target-id",
            &dev,
            "--target-type",
            "AWS_ACCOUNT",
            "--permission-set-arn",
            &unknown,
            "--principal-type",
            "GROUP",
            "--principal-id",
            &group_id,
        ],
        "ResourceNotFoundException",
    );
    refused(
        server,
        &admin,
        &[
            "sso-admin",
            "attach-managed-policy-to-permission-set",
            "--instance-arn",
            &instance_arn,
            "--permission-set-arn",
            &ps,
            "--managed-policy-arn",
            "arn:aws:iam::aws:policy/NoSuchPolicy",
        ],
        "ValidationException",
    );
    refused(
        server,
        &dev_admin,
        &[
            "sso-admin",
            "list-permission-sets",
            "--instance-arn",
            &instance_arn,
        ],
        "AccessDeniedException",
    );
    refused(
        server,
        &dev_admin,
        &[
            "identitystore",
            "list-users",
            "--identity-store-id",
            &store_id,
        ],
        "AccessDeniedException",
    );
    refused(
        server,
        &dev_admin,
        &["organizations", "list-accounts"],
        "AccessDeniedException",
    );
    refused(
        server,
        &dev_admin,
        &["organizations", "create-organization"],
        "AlreadyInOrganizationException",
    );
    assert_eq!(
        ok(server, &dev_admin, &["sso-admin", "list-instances"])["Instances"],
        json!([]),
        "members see no instance to administer"
    );
    // A set still assigned cannot be deleted.
    refused(
        server,
        &admin,
        &[
            "sso-admin",
            "delete-permission-set",
            "--instance-arn",
            &instance_arn,
            "--permission-set-arn",
            &ps,
        ],
        "ConflictException",
    );

    // Deleting the last assignment in an account deletes its role there.
    let deleted = ok(
        server,
        &admin,
        &[
            "sso-admin",
            "delete-account-assignment",
            "--instance-arn",
            &instance_arn,
            "--target-id",
            &dev,
            "--target-type",
            "AWS_ACCOUNT",
            "--permission-set-arn",
            &ps,
            "--principal-type",
            "GROUP",
            "--principal-id",
            &group_id,
        ],
    );
    assert_eq!(
        deleted["AccountAssignmentDeletionStatus"]["Status"],
        "SUCCEEDED"
    );
    assert!(sso_roles(server, &dev_admin).is_empty());
    refused(
        server,
        &dev_admin,
        &["iam", "get-role", "--role-name", &role_name],
        "NoSuchEntity",
    );
    assert_eq!(
        sso_roles(server, &prod_admin).len(),
        1,
        "prod keeps its assignment"
    );

    // Service control policies: denying cloudshell:* to dev's principals.
    let model = dev_admin_cloudshell_model(server, &dev_admin);
    let before = aws(server, &dev_admin, &["cloudshell", "describe-environments"]);
    if let Err(e) = &before {
        assert!(!e.contains("AccessDenied"), "allowed before the SCP: {e}");
    }
    let scp = ok(
        server,
        &admin,
        &[
            "organizations",
            "create-policy",
            "--name",
            "DenyCloudShell",
            "--description",
            "No shells",
            "--type",
            "SERVICE_CONTROL_POLICY",
            "--content",
            DENY_CLOUDSHELL,
        ],
    );
    let scp_id = s(&scp["Policy"]["PolicySummary"]["Id"]);
    ok(
        server,
        &admin,
        &[
            "organizations",
            "attach-policy",
            "--policy-id",
            &scp_id,
            "--target-id",
            &dev,
        ],
    );
    refused(
        server,
        &admin,
        &[
            "organizations",
            "attach-policy",
            "--policy-id",
            &scp_id,
            "--target-id",
            &dev,
        ],
        "DuplicatePolicyAttachmentException",
    );
    let denied = refused(
        server,
        &dev_admin,
        &["cloudshell", "describe-environments"],
        "AccessDenied",
    );
    assert!(denied.contains("service control policy"), "{denied}");
    // Other services stay allowed by FullAWSAccess, prod is unaffected.
    sso_roles(server, &dev_admin);
    let prod_shells = aws(
        server,
        &prod_admin,
        &["cloudshell", "describe-environments"],
    );
    if let Err(e) = &prod_shells {
        assert!(!e.contains("AccessDenied"), "prod has no SCP: {e}");
    }
    refused(
        server,
        &admin,
        &["organizations", "delete-policy", "--policy-id", &scp_id],
        "PolicyInUseException",
    );
    ok(
        server,
        &admin,
        &[
            "organizations",
            "detach-policy",
            "--policy-id",
            &scp_id,
            "--target-id",
            &dev,
        ],
    );
    ok(
        server,
        &admin,
        &["organizations", "delete-policy", "--policy-id", &scp_id],
    );
    // The root keeps at least one SCP.
    refused(
        server,
        &admin,
        &[
            "organizations",
            "detach-policy",
            "--policy-id",
            "p-FullAWSAccess",
            "--target-id",
            &root,
        ],
        "ConstraintViolationException",
    );
    drop(model);

    // Identity-store deletions take assignments with them.
    ok(
        server,
        &admin,
        &[
            "identitystore",
            "delete-group",
            "--identity-store-id",
            &store_id,
            "--group-id",
            &group_id,
        ],
    );
    assert!(
        sso_roles(server, &prod_admin).is_empty(),
        "the group's last assignment went"
    );
    run(&admin, ps_args("delete-permission-set"), &[]).expect("delete set");
    ok(
        server,
        &admin,
        &[
            "identitystore",
            "delete-user",
            "--identity-store-id",
            &store_id,
            "--user-id",
            &users[1],
        ],
    );
    refused(
        server,
        &admin,
        &[
            "identitystore",
            "describe-user",
            "--identity-store-id",
            &store_id,
            "--user-id",
            &users[1],
        ],
        "ResourceNotFoundException",
    );

    // Every call is in the trail, with the right source and readOnly.
    for (source, write, read) in [
        (
            "organizations.amazonaws.com",
            "CreateAccount",
            "ListAccounts",
        ),
        ("identitystore.amazonaws.com", "CreateUser", "ListUsers"),
        (
            "sso.amazonaws.com",
            "CreateAccountAssignment",
            "DescribePermissionSet",
        ),
    ] {
        let events = ok(
            server,
            &admin,
            &[
                "cloudtrail",
                "lookup-events",
                "--lookup-attributes",
                &format!("AttributeKey=EventSource,AttributeValue={source}"),
            ],
        );
        let records: Vec<Value> = events["Events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| serde_json::from_str(&s(&e["CloudTrailEvent"])).expect("record"))
            .collect();
        let find = |name: &str| {
            records
                .iter()
                .find(|r| r["eventName"] == name && r.get("errorCode").is_none())
                .unwrap_or_else(|| panic!("no {name} record from {source}"))
                .clone()
        };
        assert_eq!(find(write)["readOnly"], false, "{write}");
        assert_eq!(find(read)["readOnly"], true, "{read}");
        assert_eq!(find(write)["recipientAccountId"], json!(management));
    }
    let events = ok(
        server,
        &admin,
        &[
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=CreatePermissionSet",
        ],
    );
    let failed = events["Events"]
        .as_array()
        .expect("events")
        .iter()
        .any(|e| {
            let r: Value = serde_json::from_str(&s(&e["CloudTrailEvent"])).expect("record");
            r["errorCode"] == "ValidationException"
        });
    assert!(
        failed,
        "the refused CreatePermissionSet is recorded with its error"
    );
}

/// Installs the CloudShell model the server serves into the client's AWS
/// configuration, so `aws cloudshell …` exists.
fn dev_admin_cloudshell_model(server: &Server, keys: &Keys) -> tempfile::NamedTempFile {
    let url = format!("http://{}/cloudshell/model/service-2.json", server.addr);
    let out = Command::new(aws_bin().join("python"))
        .args(["-c", "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())", &url])
        .output()
        .expect("fetch model");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = tempfile::NamedTempFile::new().expect("model file");
    std::fs::write(file.path(), &out.stdout).expect("write model");
    let model = format!("file://{}", file.path().display());
    let added = client(server, keys)
        .args([
            "configure",
            "add-model",
            "--service-model",
            &model,
            "--service-name",
            "cloudshell",
        ])
        .output()
        .expect("add-model");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    file
}

#[test]
fn identity_center_with_aws_cli_on_sqlite() {
    let server = Server::start(None);
    check_identity_center(&server);
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_center_with_aws_cli_on_postgres() {
    let url = fresh_postgres_database().await;
    let server = tokio::task::block_in_place(|| Server::start(Some(url)));
    tokio::task::block_in_place(|| check_identity_center(&server));
}
