//! The CloudShell API against real environments (runc, the minimal image,
//! the static agent as init), on SQLite and PostgreSQL: the guide's launch
//! sequence, the lifecycle and its wrong-state errors, the guide's policies
//! end to end, quotas, retention, and the audit records of it all.

mod common;

#[path = "common/data_channel.rs"]
mod data_channel;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::api_client::Api;
use common::cloudshell::{config, Cleanup};
use seashell_server::store::iam::Owner;
use serde_json::{json, Value};

/// A policy printed in the CloudShell guide, from the shared conformance
/// data.
fn guide_policy(name: &str) -> String {
    let path = match std::env::var_os("SEASHELL_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir).join("seed-policies.json"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/conformance/seed-policies.json"),
    };
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set SEASHELL_CONFORMANCE_DIR)", path.display()));
    let data: Value = serde_json::from_str(&text).expect("conformance JSON");
    for case in data["cases"].as_array().expect("cases") {
        let names = case["policy_names"].as_array().cloned().unwrap_or_default();
        for (i, n) in names.iter().enumerate() {
            if n == name {
                return case["policies"][i].to_string();
            }
        }
    }
    panic!("no policy {name} in the conformance data");
}

fn journal(data_dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(data_dir.join("audit/audit.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn records<'a>(journal: &'a [Value], event: &str) -> Vec<&'a Value> {
    journal
        .iter()
        .filter(|r| r["eventSource"] == "cloudshell.amazonaws.com" && r["eventName"] == event)
        .collect()
}

/// A user with access keys and the given policies (managed ARNs or inline
/// documents).
async fn user(
    running: &seashell_server::Running,
    name: &str,
    managed: &[&str],
    inline: &[(&str, String)],
) -> (String, String) {
    let store = &running.state().store;
    let account = &running.first_account.account_id;
    let u = store.create_user(account, name, "/").await.expect("user");
    for arn in managed {
        store
            .attach_policy(Owner::User, &u.user_id, arn)
            .await
            .expect("attach");
    }
    for (policy, doc) in inline {
        store
            .put_inline_policy(Owner::User, &u.user_id, policy, doc)
            .await
            .expect("inline");
    }
    store.create_access_key(&u.user_id).await.expect("key")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_sequence_lifecycle_and_audit() {
    for db in common::databases().await {
        let backend = db.backend;
        let cfg = config(&db);
        let guard = Cleanup(cfg.clone());
        let running = seashell_server::start(cfg.clone()).await.expect("start");
        let base = format!("http://{}", running.local_addr);
        let key = common::admin_key(&running).await;
        let api = Api::new(&base, (&key.0, &key.1));

        // CreateEnvironment is idempotent per principal and region.
        let created = api.call("createEnvironment", json!({})).await.ok();
        let id = created["EnvironmentId"].as_str().expect("id").to_string();
        assert_eq!(created["Status"], "CREATING", "{backend}");
        let again = api.call("createEnvironment", json!({})).await.ok();
        assert_eq!(again["EnvironmentId"], id.as_str());
        let started = api
            .call("startEnvironment", json!({"EnvironmentId": id}))
            .await
            .ok();
        assert!(["CREATING", "RUNNING"].contains(&started["Status"].as_str().unwrap_or_default()));
        api.wait_status(&id, "RUNNING").await;
        let listed = api.call("describeEnvironments", json!({})).await.ok();
        assert_eq!(listed["Environments"][0]["EnvironmentId"], id.as_str());
        assert_eq!(listed["Environments"][0]["Status"], "RUNNING");
        // Another region is another environment.
        let other = api.in_region("eu-west-1").create_environment().await;
        assert_ne!(other, id);
        let eu = api
            .in_region("eu-west-1")
            .call("describeEnvironments", json!({}))
            .await
            .ok();
        assert_eq!(eu["Environments"].as_array().map(Vec::len), Some(1));

        // One shell per tab: the same TabId is the same shell.
        let s1 = api
            .call(
                "createSession",
                json!({"EnvironmentId": id, "TabId": "tab-1"}),
            )
            .await
            .ok();
        let session = s1["SessionId"].as_str().expect("SessionId").to_string();
        assert!(s1["TokenValue"].as_str().is_some_and(|t| t.len() >= 40));
        assert_eq!(
            s1["StreamUrl"],
            format!("ws://{}/v1/data-channel/{session}", running.local_addr)
        );
        let s1b = api
            .call(
                "createSession",
                json!({"EnvironmentId": id, "TabId": "tab-1"}),
            )
            .await
            .ok();
        assert_eq!(s1b["SessionId"], session.as_str());
        assert_ne!(
            s1b["TokenValue"], s1["TokenValue"],
            "a fresh token each time"
        );
        let s2 = api
            .call(
                "createSession",
                json!({"EnvironmentId": id, "TabId": "tab-2"}),
            )
            .await
            .ok();
        assert_ne!(s2["SessionId"], session.as_str());
        let resumed = api
            .call(
                "resumeSession",
                json!({"EnvironmentId": id, "SessionId": session}),
            )
            .await
            .ok();
        assert_eq!(resumed["SessionId"], session.as_str());
        api.call("sendHeartBeat", json!({"EnvironmentId": id}))
            .await
            .ok();
        api.call(
            "updateLayout",
            json!({"EnvironmentId": id, "Layout": "{\"tabs\":[\"tab-1\",\"tab-2\"]}"}),
        )
        .await
        .ok();
        let layout = api
            .call("getLayout", json!({"EnvironmentId": id}))
            .await
            .ok();
        assert_eq!(layout["Layout"], "{\"tabs\":[\"tab-1\",\"tab-2\"]}");
        api.call(
            "deleteSession",
            json!({"EnvironmentId": id, "SessionId": s2["SessionId"]}),
        )
        .await
        .ok();
        let gone = api
            .call(
                "resumeSession",
                json!({"EnvironmentId": id, "SessionId": s2["SessionId"]}),
            )
            .await;
        assert_eq!(gone.err(), "ConflictException", "{gone:?}");

        // Bad input: a clear error, nothing changes.
        for (op, body, code) in [
            (
                "createSession",
                json!({"EnvironmentId": id, "TabId": "t", "Shell": "fish"}),
                "ValidationException",
            ),
            (
                "getEnvironmentStatus",
                json!({"EnvironmentId": "no-such-environment"}),
                "ResourceNotFoundException",
            ),
            ("getEnvironmentStatus", json!({}), "ValidationException"),
            (
                "createEnvironment",
                json!({"VpcConfig": {"VpcId": "not-a-vpc"}}),
                "ValidationException",
            ),
            ("noSuchOperation", json!({}), "UnknownOperationException"),
        ] {
            let a = api.call(op, body).await;
            assert_eq!(a.err(), code, "{backend} {op}: {a:?}");
            assert!(
                a.body["message"].as_str().is_some_and(|m| !m.is_empty()),
                "{a:?}"
            );
        }

        // Stop suspends (sessions end); a start while suspending is refused
        // clearly; start resumes.
        let stopping = api
            .call("stopEnvironment", json!({"EnvironmentId": id}))
            .await
            .ok();
        assert_eq!(stopping["Status"], "SUSPENDING");
        let early = api
            .call("startEnvironment", json!({"EnvironmentId": id}))
            .await;
        if early.status != 200 {
            assert_eq!(early.err(), "ConflictException");
        }
        api.wait_status(&id, "SUSPENDED").await;
        let ended = api
            .call(
                "resumeSession",
                json!({"EnvironmentId": id, "SessionId": session}),
            )
            .await;
        assert_eq!(
            ended.err(),
            "ConflictException",
            "sessions end with the environment"
        );
        let resuming = api
            .call("startEnvironment", json!({"EnvironmentId": id}))
            .await
            .ok();
        assert_eq!(resuming["Status"], "RESUMING");
        api.wait_status(&id, "RUNNING").await;
        // A new session in a resumed environment; the old tab is a new shell.
        let s3 = api
            .call(
                "createSession",
                json!({"EnvironmentId": id, "TabId": "tab-1"}),
            )
            .await
            .ok();
        assert_ne!(s3["SessionId"], session.as_str());

        // Delete removes the environment and its home for good.
        let homes = cfg.cloudshell.runtime_dir(&cfg.data_dir).join("homes");
        let count_homes = || std::fs::read_dir(&homes).map(|d| d.count()).unwrap_or(0);
        assert_eq!(count_homes(), 2, "{backend}: one home per region");
        let deleting = api
            .call("deleteEnvironment", json!({"EnvironmentId": id}))
            .await
            .ok();
        assert_eq!(deleting["Status"], "DELETING");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let a = api
                .call("getEnvironmentStatus", json!({"EnvironmentId": id}))
                .await;
            if a.status == 404 {
                assert_eq!(a.err(), "ResourceNotFoundException");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never deleted: {a:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(count_homes(), 1, "{backend}: the home is deleted with it");
        let recreated = api.create_environment().await;
        // Let its start finish, so the cleanup finds the container.
        api.wait_status(&recreated, "RUNNING").await;
        assert_ne!(recreated, id, "a new environment after a delete");

        // Someone else's environment does not exist for the caller.
        let bob = user(
            &running,
            "bob",
            &["arn:aws:iam::aws:policy/AWSCloudShellFullAccess"],
            &[],
        )
        .await;
        let bob_api = Api::new(&base, (&bob.0, &bob.1));
        let theirs = bob_api
            .call("getEnvironmentStatus", json!({"EnvironmentId": other}))
            .await;
        assert_eq!(theirs.err(), "ResourceNotFoundException");

        running.state().indexer.flush().await;
        let j = journal(&cfg.data_dir);
        let create = records(&j, "CreateEnvironment");
        assert!(!create.is_empty());
        let ok = create
            .iter()
            .find(|r| r["errorCode"].is_null())
            .expect("a successful create");
        assert_eq!(ok["readOnly"], false);
        assert_eq!(ok["eventType"], "AwsApiCall");
        assert!(ok["requestParameters"]["EnvironmentId"].is_string(), "{ok}");
        // The Elastic rule for CloudShell environment creation fires on it.
        let ecs = seashell_audit::elastic::ingest(ok);
        assert!(
            seashell_audit::elastic::cloudshell_environment_created(&ecs),
            "{ecs:?}"
        );
        let status = records(&j, "GetEnvironmentStatus");
        assert!(status.iter().all(|r| r["readOnly"] == true));
        assert!(status
            .iter()
            .any(|r| r["requestParameters"]["EnvironmentId"] == id.as_str()));
        let denied = status
            .iter()
            .find(|r| r["errorCode"] == "ResourceNotFoundException")
            .expect("the failed lookup is recorded");
        assert!(denied["requestParameters"]["EnvironmentId"].is_string());
        let sessions = records(&j, "CreateSession");
        assert!(
            sessions
                .iter()
                .all(|r| r["responseElements"]["TokenValue"].is_null()),
            "tokens are never recorded"
        );
        for name in [
            "StartEnvironment",
            "StopEnvironment",
            "DeleteEnvironment",
            "DeleteSession",
            "SendHeartBeat",
            "UpdateLayout",
            "GetLayout",
            "ResumeSession",
            "DescribeEnvironments",
        ] {
            assert!(!records(&j, name).is_empty(), "{backend}: no {name} record");
        }
        let text =
            std::fs::read_to_string(cfg.data_dir.join("audit/audit.jsonl")).unwrap_or_default();
        assert!(!text.contains(s1["TokenValue"].as_str().unwrap_or("-")));

        running.run_until(async {}).await.expect("stop");
        drop(guard);
        db.drop_db().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_policies_behave_as_it_says() {
    let db = common::databases().await.remove(0);
    let cfg = config(&db);
    let guard = Cleanup(cfg.clone());
    let running = seashell_server::start(cfg.clone()).await.expect("start");
    let base = format!("http://{}", running.local_addr);

    // The guide's minimal launch policy: enough to open a shell.
    let launcher = user(
        &running,
        "launcher",
        &[],
        &[("CloudShellUser", guide_policy("CloudShellUser"))],
    )
    .await;
    let launcher = Api::new(&base, (&launcher.0, &launcher.1));
    let id = launcher.running_environment().await;
    launcher
        .call("createSession", json!({"EnvironmentId": id, "TabId": "t"}))
        .await
        .ok();
    let denied = launcher.call("describeEnvironments", json!({})).await;
    assert_eq!(denied.err(), "AccessDeniedException");
    assert!(
        denied.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("cloudshell:DescribeEnvironments")),
        "{denied:?}"
    );

    // Without CreateSession there is no shell.
    let no_session = user(
        &running,
        "nosession",
        &[],
        &[(
            "NoSession",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["cloudshell:CreateEnvironment","cloudshell:GetEnvironmentStatus","cloudshell:StartEnvironment"],"Resource":"*"}]}"#.to_string(),
        )],
    )
    .await;
    let no_session = Api::new(&base, (&no_session.0, &no_session.1));
    let nid = no_session.running_environment().await;
    let refused = no_session
        .call("createSession", json!({"EnvironmentId": nid, "TabId": "t"}))
        .await;
    assert_eq!(refused.err(), "AccessDeniedException");
    assert!(refused.body["message"]
        .as_str()
        .is_some_and(|m| m.contains("cloudshell:CreateSession")));

    // DenyUploadDownload blocks the two URL operations and nothing else.
    let no_files = user(
        &running,
        "nofiles",
        &[],
        &[("DenyUploadDownload", guide_policy("DenyUploadDownload"))],
    )
    .await;
    let no_files = Api::new(&base, (&no_files.0, &no_files.1));
    let fid = no_files.running_environment().await;
    for (op, member) in [
        ("getFileUploadUrls", "FileUploadPath"),
        ("getFileDownloadUrls", "FileDownloadPath"),
    ] {
        let a = no_files
            .call(op, json!({"EnvironmentId": fid, member: "notes.txt"}))
            .await;
        assert_eq!(a.err(), "AccessDeniedException", "{op}");
        assert!(
            a.body["message"]
                .as_str()
                .is_some_and(|m| m.contains("explicit deny")),
            "{a:?}"
        );
    }
    no_files
        .call("createSession", json!({"EnvironmentId": fid, "TabId": "t"}))
        .await
        .ok();
    no_files
        .call("putCredentials", json!({"EnvironmentId": fid}))
        .await
        .ok();

    // DenyCredentialForwarding: no PutCredentials.
    let no_creds = user(
        &running,
        "nocreds",
        &[],
        &[(
            "DenyCredentialForwarding",
            guide_policy("DenyCredentialForwarding"),
        )],
    )
    .await;
    let no_creds = Api::new(&base, (&no_creds.0, &no_creds.1));
    let cid = no_creds.running_environment().await;
    let a = no_creds
        .call("putCredentials", json!({"EnvironmentId": cid}))
        .await;
    assert_eq!(a.err(), "AccessDeniedException");
    let env = running
        .state()
        .store
        .environment(&cid)
        .await
        .expect("read")
        .expect("env");
    assert!(
        env.credentials_access_key_id.is_none(),
        "nothing was forwarded"
    );

    // A VPC-only policy refuses public environments but not VPC ones.
    let vpc_only = user(
        &running,
        "vpconly",
        &["arn:aws:iam::aws:policy/AWSCloudShellFullAccess"],
        &[(
            "DenyCloudShellNonVpcEnvironments",
            guide_policy("DenyCloudShellNonVpcEnvironments"),
        )],
    )
    .await;
    let vpc_only = Api::new(&base, (&vpc_only.0, &vpc_only.1));
    let public = vpc_only.call("createEnvironment", json!({})).await;
    assert_eq!(public.err(), "AccessDeniedException");
    let vpc = json!({"EnvironmentName": "dev", "VpcConfig": {"VpcId": "vpc-1", "SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}});
    let made = vpc_only.call("createEnvironment", vpc).await.ok();
    assert!(made["EnvironmentId"].is_string());
    // Files never go to or from a VPC environment.
    let vid = made["EnvironmentId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    vpc_only.wait_status(&vid, "RUNNING").await;
    let a = vpc_only
        .call(
            "getFileUploadUrls",
            json!({"EnvironmentId": vid, "FileUploadPath": "x"}),
        )
        .await;
    assert_eq!(a.err(), "ValidationException");

    running.run_until(async {}).await.expect("stop");
    drop(guard);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_are_enforced_with_clear_errors() {
    let db = common::databases().await.remove(0);
    let mut cfg = config(&db);
    cfg.cloudshell.monthly_hours = 5;
    let guard = Cleanup(cfg.clone());
    let running = seashell_server::start(cfg.clone()).await.expect("start");
    let base = format!("http://{}", running.local_addr);
    let key = common::admin_key(&running).await;
    let api = Api::new(&base, (&key.0, &key.1));
    let id = api.running_environment().await;

    // 10 concurrent shells per account per region.
    let mut first = None;
    for tab in 0..10 {
        let s = api
            .call(
                "createSession",
                json!({"EnvironmentId": id, "TabId": format!("tab-{tab}")}),
            )
            .await
            .ok();
        first.get_or_insert(s["SessionId"].clone());
    }
    let eleventh = api
        .call(
            "createSession",
            json!({"EnvironmentId": id, "TabId": "tab-10"}),
        )
        .await;
    assert_eq!(eleventh.status, 402);
    assert_eq!(eleventh.err(), "ServiceQuotaExceededException");
    assert!(eleventh.body["message"]
        .as_str()
        .is_some_and(|m| m.contains("10 concurrent shells")));
    // Reattaching a tab is not a new shell.
    api.call(
        "createSession",
        json!({"EnvironmentId": id, "TabId": "tab-3"}),
    )
    .await
    .ok();

    // Two VPC environments per principal.
    for name in ["one", "two"] {
        let made = api.call(
            "createEnvironment",
            json!({"EnvironmentName": name, "VpcConfig": {"VpcId": "vpc-0a", "SubnetIds": ["subnet-0b"], "SecurityGroupIds": ["sg-0c"]}}),
        )
        .await
        .ok();
        api.wait_status(made["EnvironmentId"].as_str().expect("id"), "RUNNING")
            .await;
    }
    let third = api
        .call(
            "createEnvironment",
            json!({"EnvironmentName": "three", "VpcConfig": {"VpcId": "vpc-0a", "SubnetIds": ["subnet-0b"], "SecurityGroupIds": ["sg-0c"]}}),
        )
        .await;
    assert_eq!(third.err(), "ServiceQuotaExceededException");

    // The monthly usage quota: once the account's hours in the region are
    // used up, new shells and starts are refused; another region is not.
    let account = running.first_account.account_id.clone();
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    running
        .state()
        .store
        .add_usage(&account, "us-east-1", &month, 5 * 3600)
        .await
        .expect("usage");
    // A shell is free again, so only the usage quota stands in the way.
    api.call(
        "deleteSession",
        json!({"EnvironmentId": id, "SessionId": first}),
    )
    .await
    .ok();
    let spent = api
        .call(
            "createSession",
            json!({"EnvironmentId": id, "TabId": "fresh"}),
        )
        .await;
    assert_eq!(spent.err(), "ServiceQuotaExceededException");
    assert!(
        spent.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("monthly usage quota")),
        "{spent:?}"
    );
    api.in_region("eu-west-1").running_environment().await;

    // Usage is metered while environments run.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let used = running
        .state()
        .store
        .usage(&account, "eu-west-1", &month)
        .await
        .expect("usage");
    assert!(used >= 1, "running time is metered: {used}");

    running.run_until(async {}).await.expect("stop");
    drop(guard);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_at_most_its_maximum_of_environments() {
    let db = common::databases().await.remove(0);
    let mut cfg = config(&db);
    cfg.cloudshell.max_running_environments = 2;
    // Two regions to fill the server, ten to race for a place.
    let racing_regions: Vec<String> = (1..=10).map(|n| format!("race-{n}")).collect();
    cfg.regions = ["us-east-1", "us-west-2"].map(String::from).to_vec();
    cfg.regions.extend(racing_regions.iter().cloned());
    let guard = Cleanup(cfg.clone());
    let running = seashell_server::start(cfg.clone()).await.expect("start");
    let base = format!("http://{}", running.local_addr);
    let key = common::admin_key(&running).await;
    let api = Api::new(&base, (&key.0, &key.1));
    // One principal's environments in several regions (a named one needs
    // a VPC).
    let create = |region: &str| {
        let api = api.in_region(region);
        async move { api.call("createEnvironment", json!({})).await }
    };
    let first = api.running_environment().await;
    let west = api.in_region("us-west-2");
    let second = create("us-west-2").await.ok()["EnvironmentId"]
        .as_str()
        .expect("id")
        .to_string();
    west.wait_status(&second, "RUNNING").await;

    // The third is refused, says why, and leaves no environment behind.
    let full = create("race-1").await;
    assert_eq!(full.status, 503, "{full:?}");
    assert_eq!(full.err(), "ServiceUnavailableException");
    assert!(
        full.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("max_running_environments")),
        "{full:?}"
    );
    let listed = api
        .in_region("race-1")
        .call("describeEnvironments", json!({}))
        .await
        .ok();
    assert_eq!(
        listed["Environments"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );

    // A stopped one frees its place; ten creates at once race for it, and
    // only one of them gets it.
    west.call("stopEnvironment", json!({ "EnvironmentId": second }))
        .await
        .ok();
    west.wait_status(&second, "SUSPENDED").await;
    // Connections opened first, so the ten calls reach the server together.
    futures_util::future::join_all(racing_regions.iter().map(|r| {
        let api = api.in_region(r);
        async move { api.call("describeEnvironments", json!({})).await.ok() }
    }))
    .await;
    let racing = futures_util::future::join_all(racing_regions.iter().map(|r| create(r))).await;
    let admitted: Vec<_> = racing
        .iter()
        .zip(&racing_regions)
        .filter(|(a, _)| a.status == 200)
        .collect();
    assert_eq!(admitted.len(), 1, "{racing:?}");
    assert!(
        racing
            .iter()
            .filter(|a| a.status != 200)
            .all(|a| a.status == 503 && a.err() == "ServiceUnavailableException"),
        "{racing:?}"
    );
    let (answer, region) = admitted[0];
    let third = answer.body["EnvironmentId"].as_str().expect("id");
    api.in_region(region).wait_status(third, "RUNNING").await;

    // Starting the stopped one again is refused the same way while two run.
    let start = west
        .call("startEnvironment", json!({ "EnvironmentId": second }))
        .await;
    assert_eq!(start.err(), "ServiceUnavailableException", "{start:?}");
    api.call("deleteEnvironment", json!({ "EnvironmentId": first }))
        .await
        .ok();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let start = west
            .call("startEnvironment", json!({ "EnvironmentId": second }))
            .await;
        if start.status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not started after a delete freed a place: {start:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    west.wait_status(&second, "RUNNING").await;

    running.run_until(async {}).await.expect("stop");
    drop(guard);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_end_and_unused_homes_are_deleted() {
    let db = common::databases().await.remove(0);
    let mut cfg = config(&db);
    cfg.cloudshell.idle_timeout_seconds = Some(3);
    cfg.cloudshell.suspend_after_seconds = 2;
    let guard = Cleanup(cfg.clone());
    let running = seashell_server::start(cfg.clone()).await.expect("start");
    let base = format!("http://{}", running.local_addr);
    let key = common::admin_key(&running).await;
    let api = Api::new(&base, (&key.0, &key.1));
    let id = api.running_environment().await;
    let s = api
        .call("createSession", json!({"EnvironmentId": id, "TabId": "t"}))
        .await
        .ok();
    let session = s["SessionId"].as_str().expect("id").to_string();
    let store = &running.state().store;
    let mut client = data_channel::DataChannelClient::connect(
        s["StreamUrl"].as_str().expect("url"),
        s["TokenValue"].as_str().expect("token"),
    )
    .await
    .expect("connect");

    // Console heartbeats keep an idle session alive.
    for _ in 0..10 {
        api.call("sendHeartBeat", json!({"EnvironmentId": id}))
            .await
            .ok();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let row = store.session(&session).await.expect("read").expect("row");
    assert!(row.ended_at.is_none(), "heartbeats reset the idle clock");

    // Without them it ends for inactivity, then the environment without
    // sessions is suspended after the grace period.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let row = store.session(&session).await.expect("read").expect("row");
        if row.ended_at.is_some() {
            assert_eq!(row.end_reason.as_deref(), Some("idle_timeout"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the idle session never ended"
        );
        // The socket closes when the session ends: that is expected here.
        let _ = client.pump_for(Duration::from_millis(200)).await;
    }
    // The client is told why.
    let _ = client.wait_closed(Duration::from_secs(10)).await;
    assert!(
        client
            .channel_closed()
            .is_some_and(|m| m.contains("no input for too long")),
        "{:?}",
        client.channel_closed()
    );
    api.wait_status(&id, "SUSPENDED").await;

    // Retention: a home unused past the period is deleted by the janitor,
    // with an AwsServiceEvent record; using the region resets the clock.
    let account = running.first_account.account_id.clone();
    let arn = running.first_account.admin.arn();
    let admin_id = running.first_account.admin.user_id.clone();
    let homes = cfg.cloudshell.runtime_dir(&cfg.data_dir).join("homes");
    let count = || std::fs::read_dir(&homes).map(|d| d.count()).unwrap_or(0);
    assert_eq!(count(), 1);
    let recent = seashell_server::store::now_ms() - 100 * 86_400_000;
    store
        .set_home_last_used(&account, &admin_id, "us-east-1", recent)
        .await
        .expect("age");
    seashell_server::envs::duties::run_once(running.state()).await;
    assert_eq!(count(), 1, "100 days is within the 120-day retention");
    // Using the region again restarts the clock.
    let old = seashell_server::store::now_ms() - 121 * 86_400_000;
    store
        .set_home_last_used(&account, &admin_id, "us-east-1", old)
        .await
        .expect("age");
    api.call("startEnvironment", json!({"EnvironmentId": id}))
        .await
        .ok();
    api.wait_status(&id, "RUNNING").await;
    seashell_server::envs::duties::run_once(running.state()).await;
    assert_eq!(count(), 1, "a home used again is kept");
    api.call("stopEnvironment", json!({"EnvironmentId": id}))
        .await
        .ok();
    api.wait_status(&id, "SUSPENDED").await;
    let old = seashell_server::store::now_ms() - 121 * 86_400_000;
    store
        .set_home_last_used(&account, &admin_id, "us-east-1", old)
        .await
        .expect("age");
    seashell_server::envs::duties::run_once(running.state()).await;
    assert_eq!(count(), 0, "the home was deleted");
    let gone = api
        .call("getEnvironmentStatus", json!({"EnvironmentId": id}))
        .await;
    assert_eq!(gone.err(), "ResourceNotFoundException");
    running.state().indexer.flush().await;
    let j = journal(&cfg.data_dir);
    let event = j
        .iter()
        .find(|r| r["eventType"] == "AwsServiceEvent")
        .expect("the janitor's record");
    assert_eq!(event["eventSource"], "cloudshell.amazonaws.com");
    assert_eq!(event["recipientAccountId"], account.as_str());
    assert_eq!(event["userIdentity"]["type"], "AWSService");
    assert_eq!(event["requestParameters"]["EnvironmentId"], id.as_str());
    assert_eq!(event["additionalEventData"]["principalArn"], arn.as_str());

    running.run_until(async {}).await.expect("stop");
    drop(guard);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_its_maximum_duration_whatever_it_does() {
    let db = common::databases().await.remove(0);
    let mut cfg = config(&db);
    cfg.cloudshell.max_session_seconds = Some(4);
    let guard = Cleanup(cfg.clone());
    let running = seashell_server::start(cfg.clone()).await.expect("start");
    let base = format!("http://{}", running.local_addr);
    let key = common::admin_key(&running).await;
    let api = Api::new(&base, (&key.0, &key.1));
    let id = api.running_environment().await;
    let s = api
        .call("createSession", json!({"EnvironmentId": id, "TabId": "t"}))
        .await
        .ok();
    let mut client = data_channel::DataChannelClient::connect(
        s["StreamUrl"].as_str().expect("url"),
        s["TokenValue"].as_str().expect("token"),
    )
    .await
    .expect("connect");
    // Typing and heartbeats all along: the session still ends.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while client.channel_closed().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the session outlived its maximum"
        );
        api.call("sendHeartBeat", json!({"EnvironmentId": id}))
            .await
            .ok();
        if client.closed().is_none() {
            let _ = client.type_line("true").await;
            let _ = client.pump_for(Duration::from_millis(300)).await;
        } else {
            break;
        }
    }
    assert!(
        client
            .channel_closed()
            .is_some_and(|m| m.contains("maximum duration")),
        "{:?}",
        client.channel_closed()
    );
    // The server records the end right after the agent told the client.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let row = loop {
        let row = running
            .state()
            .store
            .session(s["SessionId"].as_str().expect("id"))
            .await
            .expect("read")
            .expect("row");
        if row.end_reason.is_some() || std::time::Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(row.end_reason.as_deref(), Some("max_duration"));

    running.run_until(async {}).await.expect("stop");
    drop(guard);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_commands_run_in_the_latest_shell_and_stay_out_of_the_journal() {
    let db = common::databases().await.remove(0);
    let cfg = config(&db);
    let guard = Cleanup(cfg.clone());
    let running = seashell_server::start(cfg.clone()).await.expect("start");
    let base = format!("http://{}", running.local_addr);
    let key = common::admin_key(&running).await;
    let api = Api::new(&base, (&key.0, &key.1));
    let id = api.running_environment().await;

    // No shell yet: nowhere to run it.
    let none = api
        .call(
            "approveCommand",
            json!({"EnvironmentId": id, "Command": "true"}),
        )
        .await;
    assert_eq!(none.err(), "ConflictException", "{none:?}");
    assert!(
        none.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("open a shell first")),
        "{none:?}"
    );

    // Two shells: the command goes to the one opened last.
    let first = api
        .call("createSession", json!({"EnvironmentId": id, "TabId": "t1"}))
        .await
        .ok();
    let second = api
        .call("createSession", json!({"EnvironmentId": id, "TabId": "t2"}))
        .await
        .ok();
    let mut older = data_channel::DataChannelClient::connect(
        first["StreamUrl"].as_str().expect("url"),
        first["TokenValue"].as_str().expect("token"),
    )
    .await
    .expect("connect");
    let mut latest = data_channel::DataChannelClient::connect(
        second["StreamUrl"].as_str().expect("url"),
        second["TokenValue"].as_str().expect("token"),
    )
    .await
    .expect("connect");
    // A marker that only a shell's arithmetic produces, never the echo
    // of the command line; the tab must survive as it is.
    let command = "echo approved-$((20+22))\t# s3cr3t-marker";
    api.call(
        "approveCommand",
        json!({"EnvironmentId": id, "Command": command}),
    )
    .await
    .ok();
    latest
        .wait_for("approved-42", Duration::from_secs(15))
        .await
        .expect("the command ran in the latest shell");
    older
        .pump_for(Duration::from_millis(500))
        .await
        .expect("pump");
    assert!(
        !older.text().contains("approved-42"),
        "the older shell ran it too: {:?}",
        older.text()
    );

    // Refused: more than one line, control characters, empty, too long.
    for (bad, rule) in [
        ("echo one\necho two".to_string(), "single line"),
        ("echo one\recho two".to_string(), "single line"),
        ("echo \u{3}".to_string(), "control characters"),
        (String::new(), "empty"),
        ("x".repeat(65413), "at most 65412"),
    ] {
        let refused = api
            .call(
                "approveCommand",
                json!({"EnvironmentId": id, "Command": bad}),
            )
            .await;
        assert_eq!(refused.err(), "ValidationException", "{refused:?}");
        assert!(
            refused.body["message"]
                .as_str()
                .is_some_and(|m| m.contains(rule)),
            "{rule}: {refused:?}"
        );
    }
    // The longest command allowed is taken (and a shell reads it).
    let longest = format!("#{}", "x".repeat(65411));
    api.call(
        "approveCommand",
        json!({"EnvironmentId": id, "Command": longest}),
    )
    .await
    .ok();

    // Without cloudshell:ApproveCommand, no command runs.
    let launcher = user(
        &running,
        "launcher",
        &[],
        &[(
            "NoApprove",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["cloudshell:CreateEnvironment","cloudshell:GetEnvironmentStatus","cloudshell:StartEnvironment","cloudshell:CreateSession"],"Resource":"*"}]}"#.to_string(),
        )],
    )
    .await;
    let launcher = Api::new(&base, (&launcher.0, &launcher.1));
    let lid = launcher.running_environment().await;
    launcher
        .call("createSession", json!({"EnvironmentId": lid, "TabId": "t"}))
        .await
        .ok();
    let denied = launcher
        .call(
            "approveCommand",
            json!({"EnvironmentId": lid, "Command": "true"}),
        )
        .await;
    assert_eq!(denied.err(), "AccessDeniedException", "{denied:?}");
    assert!(
        denied.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("cloudshell:ApproveCommand")),
        "{denied:?}"
    );
    // Nor in someone else's environment.
    let theirs = api
        .call(
            "approveCommand",
            json!({"EnvironmentId": lid, "Command": "true"}),
        )
        .await;
    assert_eq!(theirs.err(), "ResourceNotFoundException", "{theirs:?}");

    // Once the shells are gone there is nothing to run it in again.
    for s in [&first, &second] {
        api.call(
            "deleteSession",
            json!({"EnvironmentId": id, "SessionId": s["SessionId"]}),
        )
        .await
        .ok();
    }
    let gone = api
        .call(
            "approveCommand",
            json!({"EnvironmentId": id, "Command": "true"}),
        )
        .await;
    assert_eq!(gone.err(), "ConflictException", "{gone:?}");

    // The journal has the calls, the command's length, never its text.
    running.state().indexer.flush().await;
    let text = std::fs::read_to_string(cfg.data_dir.join("audit/audit.jsonl")).expect("journal");
    assert!(!text.contains("s3cr3t-marker"), "the command was recorded");
    assert!(!text.contains("approved-$"), "the command was recorded");
    let j = journal(&cfg.data_dir);
    let approved = records(&j, "ApproveCommand");
    let ok: Vec<_> = approved
        .iter()
        .filter(|r| r["errorCode"].is_null())
        .collect();
    assert_eq!(ok.len(), 2, "{approved:?}");
    assert_eq!(ok[0]["requestParameters"]["EnvironmentId"], json!(id));
    assert_eq!(
        ok[0]["requestParameters"]["CommandLength"],
        json!(command.len())
    );
    assert!(ok[0]["requestParameters"].get("Command").is_none());
    assert!(approved
        .iter()
        .any(|r| r["errorCode"] == "AccessDeniedException"));

    running.run_until(async {}).await.expect("stop");
    drop(guard);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn homes_survive_a_restart_of_the_server() {
    let db = common::databases().await.remove(0);
    let cfg = config(&db);
    let guard = Cleanup(cfg.clone());
    let sh = |running: &seashell_server::Running, id: &str, script: &str| {
        let rt = running.state().envs.runtime().expect("runtime");
        rt.exec(
            &seashell_runtime::EnvironmentId::new(id).expect("id"),
            seashell_runtime::ExecUser::CloudshellUser,
            &["sh", "-c", script],
            Duration::from_secs(30),
        )
        .expect("exec")
    };

    let running = seashell_server::start(cfg.clone()).await.expect("start");
    let key = common::admin_key(&running).await;
    let api = Api::new(&format!("http://{}", running.local_addr), (&key.0, &key.1));
    let id = api.running_environment().await;
    assert_eq!(sh(&running, &id, "echo kept > ~/notes.txt").code, 0);
    api.call("stopEnvironment", json!({"EnvironmentId": id}))
        .await
        .ok();
    api.wait_status(&id, "SUSPENDED").await;
    running.run_until(async {}).await.expect("stop");

    // A new server process on the same state: the environment, its status
    // and its home are all there.
    let running = seashell_server::start(cfg.clone()).await.expect("restart");
    let api = Api::new(&format!("http://{}", running.local_addr), (&key.0, &key.1));
    let listed = api.call("describeEnvironments", json!({})).await.ok();
    assert_eq!(listed["Environments"][0]["EnvironmentId"], id.as_str());
    assert_eq!(listed["Environments"][0]["Status"], "SUSPENDED");
    api.call("startEnvironment", json!({"EnvironmentId": id}))
        .await
        .ok();
    api.wait_status(&id, "RUNNING").await;
    let out = sh(&running, &id, "cat ~/notes.txt");
    assert_eq!(out.stdout.trim(), "kept", "{out:?}");

    running.run_until(async {}).await.expect("stop");
    drop(guard);
    db.drop_db().await;
}
