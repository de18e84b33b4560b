//! Environments and homes belong to the principal's stable ID, not its ARN
//! (docs/security.md §5.3): a user deleted and created again under the same
//! name starts with no environment and an empty home, and two roles'
//! sessions with the same session name never share one. Real environments
//! (runc, the minimal image), on SQLite and PostgreSQL; and the migration
//! that moves homes stored under an ARN to the new key.

mod common;

use std::borrow::Cow;
use std::time::{Duration, Instant};

use common::cloudshell::{config, sh, Api, Cleanup};
use seashell_server::store::iam::Owner;
use serde_json::json;

const CLOUDSHELL: &str = "arn:aws:iam::aws:policy/AWSCloudShellFullAccess";

/// A user with the CloudShell policy and an access key.
async fn cloudshell_user(running: &seashell_server::Running, name: &str) -> (String, String) {
    let store = &running.state().store;
    let account = &running.first_account.account_id;
    let u = store.create_user(account, name, "/").await.expect("user");
    store
        .attach_policy(Owner::User, &u.user_id, CLOUDSHELL)
        .await
        .expect("attach");
    store.create_access_key(&u.user_id).await.expect("key")
}

/// The text of the first `<tag>` in an XML reply.
fn xml_field(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no {tag} in {xml}"))
        + open.len();
    let end = xml[start..].find("</").expect("closing tag") + start;
    xml[start..end].to_string()
}

/// `sts:AssumeRole` as `api`'s caller, and a client with the session.
async fn assume(api: &Api, role_arn: &str, session_name: &str) -> Api {
    let form = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName={session_name}",
        role_arn.replace(':', "%3A").replace('/', "%2F")
    );
    let answer = api.try_query("sts", &form).await.expect("send");
    assert_eq!(answer.status, 200, "{answer:?}");
    let xml = answer.body.as_str().expect("XML").to_string();
    Api::with_session(
        &api.base,
        (
            &xml_field(&xml, "AccessKeyId"),
            &xml_field(&xml, "SecretAccessKey"),
            &xml_field(&xml, "SessionToken"),
        ),
    )
}

/// Whether `path` exists in the home of a running environment.
fn has_file(running: &seashell_server::Running, id: &str, path: &str) -> bool {
    sh(
        running,
        id,
        &format!("test -e {path} && echo yes || echo no"),
    )
    .trim()
        == "yes"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_user_and_another_roles_session_get_fresh_homes() {
    for db in common::databases().await {
        let backend = db.backend;
        let cfg = config(&db);
        let guard = Cleanup(cfg.clone());
        let running = seashell_server::start(cfg.clone()).await.expect("start");
        let base = format!("http://{}", running.local_addr);
        let store = &running.state().store;
        let account = running.first_account.account_id.clone();
        let admin_key = common::admin_key(&running).await;
        let admin = Api::new(&base, (&admin_key.0, &admin_key.1));
        let homes = cfg.cloudshell.runtime_dir(&cfg.data_dir).join("homes");
        let home_files = || {
            std::fs::read_dir(&homes)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n.ends_with(".ext4"))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };

        // alice keeps a file in her home.
        let key = cloudshell_user(&running, "alice").await;
        let alice = Api::new(&base, (&key.0, &key.1));
        let old_id = alice.running_environment().await;
        sh(&running, &old_id, "echo private > ~/secret.txt");
        assert!(has_file(&running, &old_id, "~/secret.txt"), "{backend}");
        assert_eq!(home_files().len(), 1, "{backend}");

        // The administrator deletes alice with the real IAM API.
        let iam = |form: String| {
            let admin = admin.clone();
            async move {
                let a = admin.try_query("iam", &form).await.expect("send");
                assert_eq!(a.status, 200, "{form}: {a:?}");
            }
        };
        iam(format!(
            "Action=DeleteAccessKey&Version=2010-05-08&UserName=alice&AccessKeyId={}",
            key.0
        ))
        .await;
        iam(format!(
            "Action=DetachUserPolicy&Version=2010-05-08&UserName=alice&PolicyArn={}",
            CLOUDSHELL.replace(':', "%3A").replace('/', "%2F")
        ))
        .await;
        iam("Action=DeleteUser&Version=2010-05-08&UserName=alice".to_string()).await;

        // Her environment and home go with her.
        let deadline = Instant::now() + Duration::from_secs(60);
        while store.environment(&old_id).await.expect("read").is_some() {
            assert!(
                Instant::now() < deadline,
                "{backend}: the deleted user's environment stays"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(home_files().is_empty(), "{backend}: {:?}", home_files());

        // A new alice: same name, same ARN, nothing of the old one's.
        let key = cloudshell_user(&running, "alice").await;
        let alice = Api::new(&base, (&key.0, &key.1));
        let listed = alice.call("describeEnvironments", json!({})).await.ok();
        assert_eq!(listed["Environments"], json!([]), "{backend}");
        let gone = alice
            .call("getEnvironmentStatus", json!({"EnvironmentId": old_id}))
            .await;
        assert_eq!(gone.err(), "ResourceNotFoundException", "{backend}");
        let new_id = alice.running_environment().await;
        assert_ne!(new_id, old_id);
        assert!(
            !has_file(&running, &new_id, "~/secret.txt"),
            "{backend}: the new alice sees the old alice's home"
        );
        sh(&running, &new_id, "echo mine > ~/secret.txt");

        // Two roles, one session name: two environments, two homes.
        let trust = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"sts:AssumeRole"}}]}}"#
        );
        let mut sessions = Vec::new();
        for name in ["Dev", "Ops"] {
            let role = store
                .create_role(&account, name, "/", &trust, None, 3600)
                .await
                .expect("role");
            store
                .attach_policy(Owner::Role, &role.role_id, CLOUDSHELL)
                .await
                .expect("attach");
            sessions.push(assume(&admin, &role.arn(), "same-name").await);
        }
        let dev_id = sessions[0].running_environment().await;
        sh(&running, &dev_id, "echo dev > ~/dev.txt");
        let ops_listed = sessions[1]
            .call("describeEnvironments", json!({}))
            .await
            .ok();
        assert_eq!(ops_listed["Environments"], json!([]), "{backend}");
        let ops_id = sessions[1].running_environment().await;
        assert_ne!(ops_id, dev_id, "{backend}");
        assert!(
            !has_file(&running, &ops_id, "~/dev.txt"),
            "{backend}: another role's session of the same name shares the home"
        );
        let foreign = sessions[1]
            .call("getEnvironmentStatus", json!({"EnvironmentId": dev_id}))
            .await;
        assert_eq!(foreign.err(), "ResourceNotFoundException", "{backend}");
        // The same role and session name again is the same principal
        // (`aws:userid` AROA…:same-name), as in AWS.
        let dev_again = assume(&admin, &sessions_role_arn(&account, "Dev"), "same-name").await;
        let listed = dev_again.call("describeEnvironments", json!({})).await.ok();
        assert_eq!(
            listed["Environments"][0]["EnvironmentId"],
            dev_id.as_str(),
            "{backend}"
        );
        assert_eq!(home_files().len(), 3, "{backend}: {:?}", home_files());

        running.run_until(async {}).await.expect("stop");
        drop(guard);
        db.drop_db().await;
    }
}

fn sessions_role_arn(account: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:role/{name}")
}

/// Rows written before `0009_principal_ids.sql` keyed environments and
/// homes by ARN. After the upgrade a principal who still exists finds them
/// under its ID with the home file name unchanged; those of a principal who
/// is gone are reachable by no ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upgrade_keeps_existing_homes_for_their_principal() {
    for db in common::databases().await {
        let backend = db.backend;
        // The schema as it was: every migration before 0009.
        let pool = sqlx::AnyPool::connect(&db.url).await.expect("connect");
        let mut before = sqlx::migrate!("./migrations");
        let older: Vec<_> = before
            .migrations
            .iter()
            .filter(|m| m.version < 9)
            .cloned()
            .collect();
        assert_eq!(older.len(), 8);
        before.migrations = Cow::Owned(older);
        before.run(&pool).await.expect("old migrations");

        let account = "123456789012";
        let alice_arn = format!("arn:aws:iam::{account}:user/team/alice");
        let bob_arn = format!("arn:aws:iam::{account}:user/bob");
        let dev_arn = format!("arn:aws:sts::{account}:assumed-role/Dev/s1");
        let devops_arn = format!("arn:aws:sts::{account}:assumed-role/Devops/s1");
        let statements = [
            format!("INSERT INTO accounts (account_id, created_at) VALUES ('{account}', 0)"),
            format!(
                "INSERT INTO users (user_id, account_id, name, name_key, path, created_at) \
                 VALUES ('AIDAALICE', '{account}', 'alice', 'alice', '/team/', 0)"
            ),
            format!(
                "INSERT INTO iam_roles (role_id, account_id, name, name_key, path, \
                 max_session_duration, trust_policy, created_at) \
                 VALUES ('AROADEV', '{account}', 'Dev', 'dev', '/', 3600, '{{}}', 0)"
            ),
            format!(
                "INSERT INTO iam_roles (role_id, account_id, name, name_key, path, \
                 max_session_duration, trust_policy, created_at) \
                 VALUES ('AROADEVOPS', '{account}', 'Devops', 'devops', '/', 3600, '{{}}', 0)"
            ),
        ];
        for sql in statements {
            sqlx::query(&sql).execute(&pool).await.expect(&sql);
        }
        for (id, arn) in [
            ("env-alice", &alice_arn),
            ("env-bob", &bob_arn),
            ("env-dev", &dev_arn),
            ("env-devops", &devops_arn),
        ] {
            sqlx::query(
                "INSERT INTO cloudshell_environments (environment_id, account_id, principal_arn, \
                 region, name, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'us-east-1', '', 'SUSPENDED', 0, 0)",
            )
            .bind(id)
            .bind(account)
            .bind(arn)
            .execute(&pool)
            .await
            .expect("environment");
            sqlx::query(
                "INSERT INTO cloudshell_homes (account_id, principal_arn, region, last_used_at) \
                 VALUES ($1, $2, 'us-east-1', 5)",
            )
            .bind(account)
            .bind(arn)
            .execute(&pool)
            .await
            .expect("home");
        }
        pool.close().await;

        // The upgrade.
        let store = seashell_server::store::Store::open(&db.url)
            .await
            .expect("upgrade");
        let file = |principal: &str| {
            seashell_runtime::HomeKey::new(account, principal, "us-east-1").file_name()
        };
        for (principal_id, arn, id) in [
            ("AIDAALICE", &alice_arn, "env-alice"),
            ("AROADEV:s1", &dev_arn, "env-dev"),
            ("AROADEVOPS:s1", &devops_arn, "env-devops"),
            // bob is gone: his rows keep the ARN, which is no caller's ID.
            (bob_arn.as_str(), &bob_arn, "env-bob"),
        ] {
            let env = store
                .environment_by_key(account, principal_id, "us-east-1", "")
                .await
                .expect("read")
                .unwrap_or_else(|| panic!("{backend}: no environment for {principal_id}"));
            assert_eq!(env.environment_id, id, "{backend}");
            assert_eq!(env.principal_arn, *arn, "{backend}");
            // The home file is the one made before the upgrade.
            assert_eq!(file(&env.home_principal), file(arn), "{backend}");
        }
        let homes = store.homes_unused_since(i64::MAX).await.expect("homes");
        let mut keys: Vec<_> = homes
            .iter()
            .map(|h| {
                (
                    h.principal_id.clone(),
                    h.home_principal.clone(),
                    h.last_used_at,
                )
            })
            .collect();
        keys.sort();
        let mut want = vec![
            ("AIDAALICE".to_string(), alice_arn.clone(), 5),
            ("AROADEV:s1".to_string(), dev_arn.clone(), 5),
            ("AROADEVOPS:s1".to_string(), devops_arn.clone(), 5),
            (bob_arn.clone(), bob_arn.clone(), 5),
        ];
        want.sort();
        assert_eq!(keys, want, "{backend}");
        // A new user named bob would have a new ID and find nothing.
        assert!(store
            .environment_by_key(account, "AIDANEWBOB", "us-east-1", "")
            .await
            .expect("read")
            .is_none());
        drop(store);
        db.drop_db().await;
    }
}
