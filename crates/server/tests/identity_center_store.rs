//! The Identity Center store on both databases: organizations and member
//! accounts, SCP levels, the identity store, permission sets, and the
//! materialization rule (a role while assignments remain, kept equal to the
//! set, gone with the last assignment); refused changes leave nothing.

mod common;

use seashell_server::builtin::{ADMINISTRATOR_ACCESS, READ_ONLY_ACCESS};
use seashell_server::store::iam::Owner;
use seashell_server::store::identity_center::{
    sso_role_name, Assignment, CenterError, FULL_AWS_ACCESS_ID, SSO_INLINE_POLICY_NAME,
    SSO_ROLE_PATH,
};
use seashell_server::store::Store;

const INLINE: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;

#[tokio::test]
async fn identity_center_state_on_both_databases() {
    for db in common::databases().await {
        let backend = db.backend;
        let store = Store::open(&db.url)
            .await
            .unwrap_or_else(|e| panic!("{backend}: {e}"));
        check(&store, backend).await;
        store.close().await;
        db.drop_db().await;
    }
}

async fn check(store: &Store, backend: &str) {
    let management = store.create_account().await.expect("account");
    let (org, instance) = store
        .create_organization(&management, "Management", "m@example.com")
        .await
        .expect("organization");
    assert!(matches!(
        store
            .create_organization(&management, "Again", "m@example.com")
            .await,
        Err(CenterError::AlreadyInOrganization)
    ));
    assert!(instance
        .instance_arn
        .starts_with("arn:aws:sso:::instance/ssoins-"));
    assert_eq!(instance.owner_account, management);
    assert!(org.root_id().starts_with("r-"));

    let dev = store
        .create_member_account(
            &org,
            "dev",
            "dev@example.com",
            "OrganizationAccountAccessRole",
        )
        .await
        .expect("dev");
    let prod = store
        .create_member_account(
            &org,
            "prod",
            "prod@example.com",
            "OrganizationAccountAccessRole",
        )
        .await
        .expect("prod");
    assert!(matches!(
        store
            .create_member_account(
                &org,
                "dup",
                "DEV@example.com",
                "OrganizationAccountAccessRole"
            )
            .await,
        Err(CenterError::Conflict(_))
    ));
    assert_eq!(
        store
            .list_org_accounts(&org.organization_id)
            .await
            .expect("list")
            .len(),
        3,
        "{backend}: the refused account left no row"
    );
    let access = store
        .role_by_name(&dev.account_id, "OrganizationAccountAccessRole")
        .await
        .expect("role")
        .expect("the access role exists");
    assert_eq!(
        store
            .attached_policies(Owner::Role, &access.role_id)
            .await
            .expect("policies"),
        vec![ADMINISTRATOR_ACCESS.to_string()]
    );

    // SCP levels: none for the management account; root and account for
    // members, each with FullAWSAccess until changed.
    assert!(store
        .scp_levels(&management)
        .await
        .expect("levels")
        .is_none());
    let levels = store
        .scp_levels(&dev.account_id)
        .await
        .expect("levels")
        .expect("member");
    assert_eq!(levels.len(), 2);
    assert!(levels
        .iter()
        .all(|l| l.len() == 1 && l[0].policy_id == FULL_AWS_ACCESS_ID));
    let scp = store
        .create_scp(&org.organization_id, "Deny", "", INLINE)
        .await
        .expect("scp");
    store
        .attach_scp(&org, &scp.policy_id, &dev.account_id)
        .await
        .expect("attach");
    assert!(matches!(
        store
            .attach_scp(&org, &scp.policy_id, &dev.account_id)
            .await,
        Err(CenterError::Conflict(_))
    ));
    assert!(matches!(
        store.delete_scp(&org.organization_id, &scp.policy_id).await,
        Err(CenterError::Conflict(_))
    ));
    let levels = store
        .scp_levels(&dev.account_id)
        .await
        .expect("levels")
        .expect("member");
    assert_eq!(levels[1].len(), 2, "{backend}");
    assert!(matches!(
        store
            .detach_scp(&org, FULL_AWS_ACCESS_ID, &org.root_id())
            .await,
        Err(CenterError::Invalid(_))
    ));
    assert_eq!(
        store
            .scps_for_target(&org.organization_id, &org.root_id())
            .await
            .expect("root")
            .len(),
        1,
        "{backend}: the refused detach changed nothing"
    );

    // Identity store.
    let sid = &instance.identity_store_id;
    let alice = store
        .create_sso_user(sid, "alice", "Alice", Some("a@example.com"))
        .await
        .expect("alice");
    let bob = store
        .create_sso_user(sid, "bob", "Bob", None)
        .await
        .expect("bob");
    assert!(matches!(
        store.create_sso_user(sid, "ALICE", "Other", None).await,
        Err(CenterError::Conflict(_))
    ));
    let devs = store
        .create_sso_group(sid, "Developers", None)
        .await
        .expect("group");
    store
        .create_membership(sid, &devs.group_id, &alice.user_id)
        .await
        .expect("member");
    assert!(matches!(
        store
            .create_membership(sid, &devs.group_id, &alice.user_id)
            .await,
        Err(CenterError::Conflict(_))
    ));

    // Permission set and assignments.
    let ps = store
        .create_permission_set(&instance.instance_arn, "PowerUser", None, 7_200, None)
        .await
        .expect("set");
    store
        .attach_permission_set_policy(
            &instance.instance_arn,
            &ps.permission_set_arn,
            READ_ONLY_ACCESS,
        )
        .await
        .expect("attach");
    store
        .set_permission_set_inline(&instance.instance_arn, &ps.permission_set_arn, Some(INLINE))
        .await
        .expect("inline");
    let to_group = |account: &str| Assignment {
        account_id: account.to_string(),
        permission_set_arn: ps.permission_set_arn.clone(),
        principal_type: "GROUP".into(),
        principal_id: devs.group_id.clone(),
    };
    let to_bob = Assignment {
        principal_type: "USER".into(),
        principal_id: bob.user_id.clone(),
        ..to_group(&dev.account_id)
    };

    // A role of that name already in prod: the assignment is refused and
    // leaves no assignment row behind.
    let name_prod = sso_role_name("PowerUser", &ps.permission_set_arn, &prod.account_id);
    let squatter = store
        .create_role(&prod.account_id, &name_prod, "/", "{}", None, 3600)
        .await
        .expect("squatter");
    assert!(matches!(
        store
            .create_assignment(&instance, &to_group(&prod.account_id))
            .await,
        Err(CenterError::Conflict(_))
    ));
    assert!(
        store
            .list_assignments(&prod.account_id, &ps.permission_set_arn)
            .await
            .expect("list")
            .is_empty(),
        "{backend}: the failed assignment left nothing"
    );
    store
        .delete_role(&squatter.role_id)
        .await
        .expect("delete squatter");

    store
        .create_assignment(&instance, &to_group(&dev.account_id))
        .await
        .expect("dev");
    store
        .create_assignment(&instance, &to_group(&prod.account_id))
        .await
        .expect("prod");
    store
        .create_assignment(&instance, &to_bob)
        .await
        .expect("bob");
    let name = sso_role_name("PowerUser", &ps.permission_set_arn, &dev.account_id);
    let role = store
        .role_by_name(&dev.account_id, &name)
        .await
        .expect("role")
        .expect("materialized");
    assert_eq!(role.path, SSO_ROLE_PATH);
    assert_eq!(role.max_session_duration, 7_200);
    assert_eq!(
        store
            .attached_policies(Owner::Role, &role.role_id)
            .await
            .expect("attached"),
        vec![READ_ONLY_ACCESS.to_string()]
    );
    assert_eq!(
        store
            .inline_policy(Owner::Role, &role.role_id, SSO_INLINE_POLICY_NAME)
            .await
            .expect("inline"),
        Some(INLINE.to_string())
    );
    assert_eq!(
        store
            .provisioned_role(&dev.account_id, &ps.permission_set_arn)
            .await
            .expect("recorded"),
        Some(role.role_id.clone())
    );

    // Roles a user may use: through the group, and directly.
    let alice_roles = store.sso_user_roles(&alice.user_id).await.expect("roles");
    let mut accounts: Vec<&str> = alice_roles.iter().map(|r| r.account_id.as_str()).collect();
    accounts.sort_unstable();
    let mut expected = vec![dev.account_id.as_str(), prod.account_id.as_str()];
    expected.sort_unstable();
    assert_eq!(accounts, expected, "{backend}");
    let dev_role = alice_roles
        .iter()
        .find(|r| r.account_id == dev.account_id)
        .expect("dev");
    assert_eq!(dev_role.role_name, name);
    assert_eq!(dev_role.role_id, role.role_id);
    assert_eq!(dev_role.account_name, "dev");
    assert_eq!(dev_role.account_email, "dev@example.com");
    assert_eq!(dev_role.permission_set_name, "PowerUser");
    assert_eq!(dev_role.session_duration_secs, 7_200);
    let bob_roles = store.sso_user_roles(&bob.user_id).await.expect("roles");
    assert_eq!(bob_roles.len(), 1, "{backend}: bob is assigned in dev only");

    // Changes to the set reach the roles.
    store
        .detach_permission_set_policy(
            &instance.instance_arn,
            &ps.permission_set_arn,
            READ_ONLY_ACCESS,
        )
        .await
        .expect("detach");
    store
        .set_permission_set_inline(&instance.instance_arn, &ps.permission_set_arn, None)
        .await
        .expect("delete inline");
    assert!(store
        .attached_policies(Owner::Role, &role.role_id)
        .await
        .expect("attached")
        .is_empty());
    assert!(store
        .inline_policies(Owner::Role, &role.role_id)
        .await
        .expect("inline")
        .is_empty());

    // The role stays while one assignment remains, and goes with the last.
    store
        .delete_assignment(&instance, &to_group(&dev.account_id))
        .await
        .expect("delete");
    assert!(
        store
            .role_by_id(&role.role_id)
            .await
            .expect("role")
            .is_some(),
        "bob's assignment keeps it"
    );
    assert!(matches!(
        store
            .delete_assignment(&instance, &to_group(&dev.account_id))
            .await,
        Err(CenterError::NotFound(_))
    ));
    store
        .delete_sso_user(sid, &bob.user_id)
        .await
        .expect("delete bob");
    assert!(
        store
            .role_by_id(&role.role_id)
            .await
            .expect("role")
            .is_none(),
        "{backend}"
    );
    assert!(store
        .provisioned_role(&dev.account_id, &ps.permission_set_arn)
        .await
        .expect("row")
        .is_none());
    assert!(
        matches!(
            store
                .delete_permission_set(&instance.instance_arn, &ps.permission_set_arn)
                .await,
            Err(CenterError::Conflict(_))
        ),
        "prod still has an assignment"
    );
    store
        .delete_sso_group(sid, &devs.group_id)
        .await
        .expect("delete group");
    assert!(store
        .sso_user_roles(&alice.user_id)
        .await
        .expect("roles")
        .is_empty());
    assert!(store
        .provisioned_accounts(&ps.permission_set_arn)
        .await
        .expect("none")
        .is_empty());
    store
        .delete_permission_set(&instance.instance_arn, &ps.permission_set_arn)
        .await
        .expect("delete set");
}
