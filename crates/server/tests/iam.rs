//! IAM state and authorization on both databases: groups, managed and inline
//! policies, versions, quotas, delete conflicts, and the decisions and
//! `AccessDenied` messages the authorizer gives.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use seashell_policy::{Context, PolicyKind};
use seashell_server::authz::{self, RequestInfo};
use seashell_server::bootstrap::ensure_first_account;
use seashell_server::caller::Caller;
use seashell_server::error::ApiError;
use seashell_server::store::iam::{IamError, Owner};
use seashell_server::store::{Store, User};

fn caller(user: &User) -> Caller {
    Caller {
        account_id: user.account_id.clone(),
        arn: user.arn(),
        principal_id: user.user_id.clone(),
        user_name: user.name.clone(),
        user_id: user.user_id.clone(),
        access_key_id: "AKIATESTTESTTESTTEST".to_string(),
        session: None,
        role: None,
    }
}

fn policy_arn(arn: &str) -> Context {
    let mut keys = Context::new();
    keys.insert("iam:PolicyARN", arn);
    keys
}

fn info() -> RequestInfo {
    RequestInfo::new(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)), false, "us-east-1")
}

async fn check(store: &Store, who: &Caller, action: &str, resource: &str) -> Result<(), ApiError> {
    authz::authorize(store, who, &info(), action, resource, &[]).await
}

const GET_AND_LIST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:Get*","iam:List*"],"Resource":"*"}]}"#;
const LIST_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:List*","Resource":"*"}]}"#;

#[tokio::test]
async fn iam_state_and_authorization_on_both_databases() {
    for db in common::databases().await {
        let backend = db.backend;
        let store = Store::open(&db.url)
            .await
            .unwrap_or_else(|e| panic!("{backend}: {e}"));
        let first = ensure_first_account(&store, db.data_dir.path())
            .await
            .expect("bootstrap");
        let account = first.account_id.clone();
        let admin = caller(&first.admin);
        let alice_user = store
            .create_user(&account, "alice", "/staff/")
            .await
            .expect("create alice");
        let alice = caller(&alice_user);
        let bob_arn = format!("arn:aws:iam::{account}:user/bob");

        // The administrator may do anything; a user with no policy nothing,
        // and the denial reads as AWS writes it.
        check(&store, &admin, "iam:CreateUser", &bob_arn)
            .await
            .expect("admin allowed");
        let denied = check(&store, &alice, "iam:CreateUser", &bob_arn)
            .await
            .expect_err("alice denied");
        assert_eq!(denied.status.as_u16(), 403, "{backend}");
        assert_eq!(denied.code, "AccessDenied");
        assert_eq!(
            denied.message,
            format!(
                "User: arn:aws:iam::{account}:user/staff/alice is not authorized to perform: \
                 iam:CreateUser on resource: {bob_arn} because no identity-based policy \
                 allows the iam:CreateUser action"
            ),
            "{backend}"
        );

        // Renaming onto a taken name (any case) is refused.
        let bob = store
            .create_user(&account, "bob", "/")
            .await
            .expect("create bob");
        assert!(matches!(
            store.update_user(&bob, Some("ALICE"), None).await,
            Err(IamError::AlreadyExists(_))
        ));
        let robert = store
            .update_user(&bob, Some("robert"), Some("/eng/"))
            .await
            .expect("rename");
        assert_eq!(
            robert.arn(),
            format!("arn:aws:iam::{account}:user/eng/robert")
        );
        store
            .delete_user(&robert.user_id)
            .await
            .expect("delete robert");

        // A customer managed policy attached to a group applies to members.
        let policy = store
            .create_policy(&account, "ReadIam", "/", Some("read"), GET_AND_LIST)
            .await
            .expect("create policy");
        assert_eq!(policy.arn, format!("arn:aws:iam::{account}:policy/ReadIam"));
        assert!(matches!(
            store
                .create_policy(&account, "readiam", "/", None, GET_AND_LIST)
                .await,
            Err(IamError::AlreadyExists(_))
        ));
        let group = store
            .create_group(&account, "readers", "/")
            .await
            .expect("group");
        store
            .attach_policy(Owner::Group, &group.group_id, &policy.arn)
            .await
            .expect("attach");
        check(&store, &alice, "iam:GetUser", &alice.arn)
            .await
            .expect_err("not yet a member");
        store
            .add_user_to_group(&group.group_id, &alice_user.user_id)
            .await
            .expect("join");
        check(&store, &alice, "iam:GetUser", &alice.arn)
            .await
            .expect("member may read");
        check(&store, &alice, "iam:DeleteUser", &alice.arn)
            .await
            .expect_err("but not delete");

        // An inline deny wins over the group's allow.
        store
            .put_inline_policy(
                Owner::User,
                &alice_user.user_id,
                "NoGetUser",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iam:GetUser","Resource":"*"}]}"#,
            )
            .await
            .expect("put inline");
        let denied = check(&store, &alice, "iam:GetUser", &alice.arn)
            .await
            .expect_err("explicit deny");
        assert!(
            denied
                .message
                .ends_with("with an explicit deny in an identity-based policy"),
            "{backend}: {}",
            denied.message
        );
        store
            .delete_inline_policy(Owner::User, &alice_user.user_id, "NoGetUser")
            .await
            .expect("delete inline");
        assert!(matches!(
            store
                .delete_inline_policy(Owner::User, &alice_user.user_id, "NoGetUser")
                .await,
            Err(IamError::NotFound(_))
        ));

        // A new default version takes effect at once; up to five versions.
        let v2 = store
            .create_policy_version(&policy.policy_id, LIST_ONLY, true)
            .await
            .expect("v2");
        assert_eq!(v2.version_id, "v2");
        check(&store, &alice, "iam:GetUser", &alice.arn)
            .await
            .expect_err("v2 does not allow GetUser");
        check(&store, &alice, "iam:ListUsers", &alice.arn)
            .await
            .expect("v2 allows ListUsers");
        for expected in ["v3", "v4", "v5"] {
            let v = store
                .create_policy_version(&policy.policy_id, GET_AND_LIST, false)
                .await
                .expect("version");
            assert_eq!(v.version_id, expected, "{backend}");
        }
        let before = store.iam_row_counts().await.expect("counts");
        assert!(matches!(
            store
                .create_policy_version(&policy.policy_id, GET_AND_LIST, true)
                .await,
            Err(IamError::Limit(_))
        ));
        assert_eq!(store.iam_row_counts().await.expect("counts"), before);
        let reread = store
            .policy_by_arn(&policy.arn)
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(reread.default_version, "v2", "{backend}: unchanged");

        // Deletions refuse while dependents remain, and change nothing.
        let before = store.iam_row_counts().await.expect("counts");
        for refused in [
            store.delete_user(&alice_user.user_id).await,
            store.delete_group(&group.group_id).await,
            store.delete_policy(&reread).await,
        ] {
            assert!(
                matches!(refused, Err(IamError::Conflict(_))),
                "{backend}: {refused:?}"
            );
        }
        assert_eq!(store.iam_row_counts().await.expect("counts"), before);
        assert!(matches!(
            store.delete_policy_version(&reread, "v2").await,
            Err(IamError::Conflict(_))
        ));

        // Access keys: two at most.
        store
            .create_access_key_checked(&alice_user.user_id)
            .await
            .expect("key 1");
        let (second, _, _) = store
            .create_access_key_checked(&alice_user.user_id)
            .await
            .expect("key 2");
        assert!(matches!(
            store.create_access_key_checked(&alice_user.user_id).await,
            Err(IamError::Limit(_))
        ));
        store
            .set_access_key_active(&alice_user.user_id, &second, false)
            .await
            .expect("deactivate");
        let keys = store
            .list_access_keys(&alice_user.user_id)
            .await
            .expect("keys");
        assert_eq!(keys.iter().filter(|k| k.active).count(), 1, "{backend}");
        assert!(matches!(
            store.delete_access_key(&first.admin.user_id, &second).await,
            Err(IamError::NotFound(_))
        ));

        // Login profiles: one per user.
        let profile = store
            .create_login_profile(&alice_user, "$argon2id$stand-in", true)
            .await
            .expect("profile");
        assert!(profile.password_reset_required);
        assert!(matches!(
            store
                .create_login_profile(&alice_user, "$argon2id$other", false)
                .await,
            Err(IamError::AlreadyExists(_))
        ));

        // Taking everything away lets the deletions through.
        store
            .remove_user_from_group(&group.group_id, &alice_user.user_id)
            .await
            .expect("leave");
        store
            .detach_policy(Owner::Group, &group.group_id, &policy.arn)
            .await
            .expect("detach");
        for v in ["v1", "v3", "v4", "v5"] {
            store
                .delete_policy_version(&reread, v)
                .await
                .expect("delete version");
        }
        store.delete_policy(&reread).await.expect("delete policy");
        store
            .delete_group(&group.group_id)
            .await
            .expect("delete group");
        for k in store
            .list_access_keys(&alice_user.user_id)
            .await
            .expect("keys")
        {
            store
                .delete_access_key(&alice_user.user_id, &k.access_key_id)
                .await
                .expect("delete key");
        }
        store
            .delete_login_profile(&alice_user)
            .await
            .expect("delete profile");
        store
            .delete_user(&alice_user.user_id)
            .await
            .expect("delete user");
        assert!(store
            .user_by_name(&account, "alice")
            .await
            .expect("lookup")
            .is_none());

        // A group's inline policy applies to its members; roles refuse
        // deletion while they have policies.
        let ops = store
            .create_group(&account, "ops", "/")
            .await
            .expect("group");
        let dave_user = store
            .create_user(&account, "dave", "/")
            .await
            .expect("dave");
        let dave = caller(&dave_user);
        store
            .put_inline_policy(
                Owner::Group,
                &ops.group_id,
                "ListRoles",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListRoles","Resource":"*"}]}"#,
            )
            .await
            .expect("group inline");
        check(&store, &dave, "iam:ListRoles", "*")
            .await
            .expect_err("not a member yet");
        store
            .add_user_to_group(&ops.group_id, &dave_user.user_id)
            .await
            .expect("join");
        check(&store, &dave, "iam:ListRoles", "*")
            .await
            .expect("member");
        let role = store
            .create_role(
                &account,
                "Auditor",
                "/",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
                None,
                3600,
            )
            .await
            .expect("role");
        assert!(matches!(
            store
                .create_role(&account, "AUDITOR", "/", &role.trust_policy, None, 3600)
                .await,
            Err(IamError::AlreadyExists(_))
        ));
        store
            .attach_policy(
                Owner::Role,
                &role.role_id,
                "arn:aws:iam::aws:policy/ReadOnlyAccess",
            )
            .await
            .expect("attach");
        assert!(matches!(
            store.delete_role(&role.role_id).await,
            Err(IamError::Conflict(_))
        ));
        let counts = store.attachment_counts(&account).await.expect("counts");
        assert_eq!(
            counts.get("arn:aws:iam::aws:policy/ReadOnlyAccess"),
            Some(&1),
            "{backend}"
        );
        store
            .detach_policy(
                Owner::Role,
                &role.role_id,
                "arn:aws:iam::aws:policy/ReadOnlyAccess",
            )
            .await
            .expect("detach");
        store.delete_role(&role.role_id).await.expect("delete role");

        // Aliases are unique across accounts.
        store
            .set_account_alias(&account, "example-corp")
            .await
            .expect("alias");
        let other = store.create_account().await.expect("account");
        assert!(matches!(
            store.set_account_alias(&other, "example-corp").await,
            Err(IamError::AlreadyExists(_))
        ));
        assert_eq!(
            store.account_alias(&account).await.expect("alias"),
            Some("example-corp".to_string())
        );

        store.close().await;
        db.drop_db().await;
    }
}

#[tokio::test]
async fn request_context_reaches_conditions() {
    for db in common::databases().await {
        let backend = db.backend;
        let store = Store::open(&db.url).await.expect("open");
        let first = ensure_first_account(&store, db.data_dir.path())
            .await
            .expect("bootstrap");
        let user = store
            .create_user(&first.account_id, "carol", "/")
            .await
            .expect("user");
        let carol = caller(&user);
        // Each statement needs one context key to be right.
        let policy = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"OwnUser","Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam::*:user/${aws:username}"},
            {"Sid":"FromTheOffice","Effect":"Allow","Action":"iam:ListUsers","Resource":"*",
             "Condition":{"IpAddress":{"aws:SourceIp":"10.1.0.0/16"},"StringEquals":{"aws:RequestedRegion":"us-east-1","aws:PrincipalType":"User"}}},
            {"Sid":"NeedsMfa","Effect":"Allow","Action":"iam:DeleteUser","Resource":"*",
             "Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}},
            {"Sid":"Plaintext","Effect":"Deny","Action":"iam:ListGroups","Resource":"*",
             "Condition":{"Bool":{"aws:SecureTransport":"false"}}},
            {"Sid":"Later","Effect":"Allow","Action":"iam:ListRoles","Resource":"*",
             "Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"},"NumericGreaterThan":{"aws:EpochTime":"1577836800"}}},
            {"Effect":"Allow","Action":"iam:ListGroups","Resource":"*"}
        ]}"#;
        store
            .put_inline_policy(Owner::User, &user.user_id, "Context", policy)
            .await
            .expect("put");
        let other = format!("arn:aws:iam::{}:user/dave", first.account_id);
        check(&store, &carol, "iam:GetUser", &carol.arn)
            .await
            .expect("own user");
        check(&store, &carol, "iam:GetUser", &other)
            .await
            .expect_err("not another user");
        check(&store, &carol, "iam:ListUsers", "*")
            .await
            .expect("from 10.1.2.3 in us-east-1");
        let elsewhere =
            RequestInfo::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), true, "us-east-1");
        authz::authorize(&store, &carol, &elsewhere, "iam:ListUsers", "*", &[])
            .await
            .expect_err("not from elsewhere");
        check(&store, &carol, "iam:DeleteUser", &other)
            .await
            .expect_err("long-term keys have no MFA");
        let e = check(&store, &carol, "iam:ListGroups", "*")
            .await
            .expect_err("plain HTTP denied");
        assert!(
            e.message.contains("explicit deny"),
            "{backend}: {}",
            e.message
        );
        authz::authorize(&store, &carol, &elsewhere, "iam:ListGroups", "*", &[])
            .await
            .expect("TLS allowed");
        check(&store, &carol, "iam:ListRoles", "*")
            .await
            .expect("time keys present");
        // Extra keys from the operation reach conditions too.
        store
            .put_inline_policy(
                Owner::User,
                &user.user_id,
                "AttachOnlyReadOnly",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:AttachUserPolicy","Resource":"*","Condition":{"ArnEquals":{"iam:PolicyARN":"arn:aws:iam::aws:policy/ReadOnlyAccess"}}}]}"#,
            )
            .await
            .expect("put");
        authz::authorize_in(
            &store,
            &carol,
            &info(),
            "iam:AttachUserPolicy",
            &carol.arn,
            &policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess"),
        )
        .await
        .expect("read-only may be attached");
        authz::authorize(
            &store,
            &carol,
            &info(),
            "iam:AttachUserPolicy",
            &carol.arn,
            &[(
                "iam:PolicyARN",
                "arn:aws:iam::aws:policy/AdministratorAccess",
            )],
        )
        .await
        .expect_err("administrator may not");
        // Multivalued keys, as CloudShell's VPC settings will be.
        store
            .put_inline_policy(
                Owner::User,
                &user.user_id,
                "OwnVpcs",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"cloudshell:CreateEnvironment","Resource":"*","Condition":{"ForAllValues:StringEquals":{"cloudshell:VpcIds":["vpc-1","vpc-2"]}}}]}"#,
            )
            .await
            .expect("put");
        let mut vpcs = Context::new();
        vpcs.insert_multi("cloudshell:VpcIds", ["vpc-1", "vpc-2"]);
        authz::authorize_in(
            &store,
            &carol,
            &info(),
            "cloudshell:CreateEnvironment",
            "*",
            &vpcs,
        )
        .await
        .expect("listed VPCs");
        vpcs.insert_multi("cloudshell:VpcIds", ["vpc-1", "vpc-9"]);
        authz::authorize_in(
            &store,
            &carol,
            &info(),
            "cloudshell:CreateEnvironment",
            "*",
            &vpcs,
        )
        .await
        .expect_err("an unlisted VPC");
        store.close().await;
        db.drop_db().await;
    }
}

#[test]
fn parsed_documents_are_cached_by_text() {
    let text = r#"{"Version":"2012-10-17","Statement":[{"Sid":"CacheTest","Effect":"Allow","Action":"iam:GetUser","Resource":"*"}]}"#;
    let cache = authz::cache();
    let a = cache.parsed(text, PolicyKind::Managed).expect("parses");
    let b = cache.parsed(text, PolicyKind::Managed).expect("parses");
    assert!(Arc::ptr_eq(&a, &b), "parsed once");
    cache.forget(text);
    let c = cache.parsed(text, PolicyKind::Managed).expect("parses");
    assert!(!Arc::ptr_eq(&a, &c), "parsed again after forget");
    assert!(cache.parsed("{not json", PolicyKind::Managed).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quotas_hold_under_concurrent_requests() {
    for db in common::databases().await {
        let backend = db.backend;
        let store = Store::open(&db.url).await.expect("open");
        let first = ensure_first_account(&store, db.data_dir.path())
            .await
            .expect("bootstrap");
        let user = store
            .create_user(&first.account_id, "erin", "/")
            .await
            .expect("user");
        let keys = futures_join(
            (0..6)
                .map(|_| {
                    let store = store.clone();
                    let id = user.user_id.clone();
                    tokio::spawn(async move { store.create_access_key_checked(&id).await })
                })
                .collect(),
        )
        .await;
        let created = keys.iter().filter(|r| r.is_ok()).count();
        assert_eq!(created, 2, "{backend}: {keys:?}");
        assert!(
            keys.iter()
                .all(|r| r.is_ok() || matches!(r, Err(IamError::Limit(_)))),
            "{backend}: {keys:?}"
        );

        let policy = store
            .create_policy(&first.account_id, "P", "/", None, LIST_ONLY)
            .await
            .expect("policy");
        let versions = futures_join(
            (0..8)
                .map(|_| {
                    let store = store.clone();
                    let id = policy.policy_id.clone();
                    tokio::spawn(async move {
                        store.create_policy_version(&id, GET_AND_LIST, true).await
                    })
                })
                .collect(),
        )
        .await;
        assert_eq!(
            versions.iter().filter(|r| r.is_ok()).count(),
            4,
            "{backend}: {versions:?}"
        );
        let mut ids: Vec<String> = store
            .policy_versions(&policy.policy_id)
            .await
            .expect("versions")
            .into_iter()
            .map(|v| v.version_id)
            .collect();
        ids.sort();
        assert_eq!(ids, ["v1", "v2", "v3", "v4", "v5"], "{backend}");
        store.close().await;
        db.drop_db().await;
    }
}

/// Awaits every task, in order.
async fn futures_join<T: std::fmt::Debug>(
    tasks: Vec<tokio::task::JoinHandle<Result<T, IamError>>>,
) -> Vec<Result<T, IamError>> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}
