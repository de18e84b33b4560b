//! A real shell in the default image (Debian with the AWS CLI and boto3),
//! with networking and the API at its fixed address: typed into through
//! the data channel, it answers `aws sts get-caller-identity` and boto3's
//! `get_caller_identity()` with the signed-in identity, without any
//! configuration by the user; credentials are refreshed into it and
//! withdrawn at sign-out; without PutCredentials it has none.
//!
//! The default image is built once into
//! `target/tmp/seashell-default-image/default` (about 75 seconds and 170 MB
//! from Debian's mirror; the runtime's default-image test shares it) and
//! reused afterwards.

mod common;

#[path = "common/data_channel.rs"]
mod data_channel;

use std::path::PathBuf;
use std::time::Duration;

use common::api_client::Api;
use common::cloudshell::{config, Cleanup};
use data_channel::DataChannelClient;
use seashell_runtime::image::{self, BuildOptions, ImageKind, NoProgress};
use seashell_server::store::iam::Owner;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

/// What the AWS CLI prints when the credentials endpoint has nothing to
/// serve (the agent's answer, which botocore passes on).
const NO_CREDENTIALS: &str = "no credentials are available in this environment";

/// The default image, built on first use and kept under `target/tmp`.
fn default_image() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("seashell-default-image")
        .join("default");
    std::fs::create_dir_all(dir.parent().expect("parent")).expect("cache dir");
    let options = BuildOptions {
        kind: ImageKind::Default,
        output: dir.clone(),
        force: false,
        mirror: None,
    };
    let report = image::build(&options, &mut NoProgress).unwrap_or_else(|e| {
        panic!(
            "building the default image failed (log: {}): {e}",
            image::build_log_path(&dir).display()
        )
    });
    report.path
}

/// A CloudShell call from the console: cookie and CSRF token, no SigV4.
async fn console_call(base: &str, cookie: &str, csrf: &str, op: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{base}/cloudshell/{op}"))
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .header("x-seashell-region", "us-east-1")
        .json(&body)
        .send()
        .await
        .expect("call");
    let status = r.status();
    let v: Value = r.json().await.expect("json");
    assert_eq!(status, 200, "{op}: {v}");
    v
}

async fn shell(created: &Value) -> DataChannelClient {
    let url = created["StreamUrl"].as_str().expect("StreamUrl");
    let token = created["TokenValue"].as_str().expect("TokenValue");
    let mut client = DataChannelClient::connect(url, token)
        .await
        .expect("connect");
    client.resize(200, 50).await.expect("resize");
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tools_in_a_shell_use_the_signed_in_identity() {
    let image_dir = tokio::task::spawn_blocking(default_image)
        .await
        .expect("build");
    let db = common::databases().await.remove(0);
    let mut cfg = config(&db);
    cfg.cloudshell.image = "default".into();
    cfg.cloudshell.image_dir = Some(image_dir);
    cfg.cloudshell.network = true;
    cfg.cloudshell.network_pool = "10.219.0.0/24".into();
    let guard = Cleanup(cfg.clone());
    let running = seashell_server::start(cfg.clone()).await.expect("start");
    let base = format!("http://{}", running.local_addr);
    let account = running.first_account.account_id.clone();
    let admin_arn = running.first_account.admin.arn();

    // From the console: the session's own credentials go into the shell.
    let (cookie, csrf) = common::console_sign_in(&running).await;
    let env = console_call(&base, &cookie, &csrf, "createEnvironment", json!({})).await;
    let id = env["EnvironmentId"].as_str().expect("id").to_string();
    console_call(
        &base,
        &cookie,
        &csrf,
        "startEnvironment",
        json!({"EnvironmentId": id}),
    )
    .await;
    // The first start imports the image (a copy of about 800 MB, owned by
    // the environments' mapped ids): minutes on a small machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        let s = console_call(
            &base,
            &cookie,
            &csrf,
            "getEnvironmentStatus",
            json!({"EnvironmentId": id}),
        )
        .await;
        if s["Status"] == "RUNNING" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never running: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    console_call(
        &base,
        &cookie,
        &csrf,
        "putCredentials",
        json!({"EnvironmentId": id}),
    )
    .await;
    let created = console_call(
        &base,
        &cookie,
        &csrf,
        "createSession",
        json!({"EnvironmentId": id, "TabId": "console-tab"}),
    )
    .await;
    let mut sh = shell(&created).await;
    sh.type_line("echo READY-$((6*7))").await.expect("type");
    sh.wait_for("READY-42", WAIT).await.expect("prompt");
    sh.type_line("aws sts get-caller-identity --query Arn --output text; echo DONE-$((1+1))")
        .await
        .expect("type");
    let out = sh.wait_for("DONE-2", WAIT).await.expect("aws");
    assert!(out.contains(&admin_arn), "{out}");
    sh.type_line(
        "python3 -c \"import boto3; print('BOTO', boto3.client('sts').get_caller_identity()['Account'])\"",
    )
    .await
    .expect("type");
    let out = sh
        .wait_for(&format!("BOTO {account}"), WAIT)
        .await
        .expect("boto3");
    assert!(!out.contains("Traceback"), "{out}");
    sh.type_line("aws iam get-user --query User.UserName --output text; echo DONE-$((2+1))")
        .await
        .expect("type");
    let out = sh.wait_for("DONE-3", WAIT).await.expect("iam");
    assert!(out.contains("admin"), "{out}");
    // The API's other routes answer, but the metrics are not for
    // environments, even though the server's default lets loopback in.
    sh.type_line(
        "b=${AWS_ENDPOINT_URL_STS%/sts}; echo HEALTH $(curl -s -o /dev/null -w '%{http_code}' $b/healthz) METRICS $(curl -s -o /dev/null -w '%{http_code}' $b/metrics); echo DONE-$((9+1))",
    )
    .await
    .expect("type");
    let out = sh.wait_for("DONE-10", WAIT).await.expect("metrics");
    assert!(out.contains("HEALTH 200"), "{out}");
    assert!(out.contains("METRICS 403"), "{out}");
    // Nothing was written into the user's files.
    sh.type_line("ls -a ~/.aws 2>&1 | head -1; echo DONE-$((3+1))")
        .await
        .expect("type");
    let out = sh.wait_for("DONE-4", WAIT).await.expect("ls");
    assert!(out.contains("No such file"), "{out}");

    // The calls made from inside carry exec-env/CloudShell.
    running.state().indexer.flush().await;
    let journal = std::fs::read_to_string(cfg.data_dir.join("audit/audit.jsonl")).expect("journal");
    let inside: Vec<Value> = journal
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["eventName"] == "GetCallerIdentity" || r["eventName"] == "GetUser")
        .collect();
    assert!(inside.len() >= 3, "{inside:?}");
    assert!(
        inside.iter().all(|r| r["userAgent"]
            .as_str()
            .is_some_and(|ua| ua.contains("exec-env/CloudShell"))),
        "{inside:?}"
    );

    // Sign-out withdraws them from the shell.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{base}/signout"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("sign out");
    assert_eq!(r.status(), 303);
    let deadline = std::time::Instant::now() + WAIT;
    let mut n = 10;
    loop {
        n += 1;
        sh.type_line(&format!(
            "aws sts get-caller-identity --query Arn --output text 2>&1 | tail -1; echo DONE-$(({n}+0))"
        ))
        .await
        .expect("type");
        let out = sh.wait_for(&format!("DONE-{n}"), WAIT).await.expect("aws");
        // Revoked at once by the server; withdrawn from the shell within a
        // round of the background duties.
        if out.contains(NO_CREDENTIALS) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "credentials outlived the console session"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Programmatic callers get credentials issued for their principal;
    // without PutCredentials the shell has none.
    let store = &running.state().store;
    let denied = store
        .create_user(&account, "nocreds", "/")
        .await
        .expect("user");
    store
        .put_inline_policy(
            Owner::User,
            &denied.user_id,
            "DenyCredentialForwarding",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"cloudshell:*","Resource":"*"},{"Effect":"Deny","Action":"cloudshell:PutCredentials","Resource":"*"},{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}"#,
        )
        .await
        .expect("policy");
    let key = store.create_access_key(&denied.user_id).await.expect("key");
    let api = Api::new(&base, (&key.0, &key.1));
    let nid = api.running_environment().await;
    assert_eq!(
        api.call("putCredentials", json!({"EnvironmentId": nid}))
            .await
            .err(),
        "AccessDeniedException"
    );
    let created = api
        .call("createSession", json!({"EnvironmentId": nid, "TabId": "t"}))
        .await
        .ok();
    let mut sh = shell(&created).await;
    sh.type_line("aws sts get-caller-identity 2>&1 | tail -2; echo DONE-$((4+4))")
        .await
        .expect("type");
    let out = sh.wait_for("DONE-8", WAIT).await.expect("aws");
    assert!(out.contains(NO_CREDENTIALS), "{out}");

    let allowed = store
        .create_user(&account, "programmatic", "/")
        .await
        .expect("user");
    store
        .attach_policy(
            Owner::User,
            &allowed.user_id,
            "arn:aws:iam::aws:policy/AdministratorAccess",
        )
        .await
        .expect("attach");
    let key = store
        .create_access_key(&allowed.user_id)
        .await
        .expect("key");
    let api = Api::new(&base, (&key.0, &key.1));
    let pid = api.running_environment().await;
    api.call("putCredentials", json!({"EnvironmentId": pid}))
        .await
        .ok();
    let created = api
        .call("createSession", json!({"EnvironmentId": pid, "TabId": "t"}))
        .await
        .ok();
    let mut sh = shell(&created).await;
    sh.type_line("aws sts get-caller-identity --query Arn --output text; echo DONE-$((5+4))")
        .await
        .expect("type");
    let out = sh.wait_for("DONE-9", WAIT).await.expect("aws");
    assert!(out.contains(&allowed.arn()), "{out}");

    // An IAM Identity Center user opens the console from the access portal
    // as a permission set's role: the shell has that role's session, and
    // loses it within a round of the duties once the assignment goes.
    sso_console_shell(&running, &base, &account).await;

    running.run_until(async {}).await.expect("stop");
    drop(guard);
    db.drop_db().await;
}

/// The portal's "Management console" as a permission set's role, then
/// CloudShell from that console session.
async fn sso_console_shell(running: &seashell_server::Running, base: &str, account: &str) {
    use seashell_server::store::identity_center::Assignment;
    let store = &running.state().store;
    let (_, instance) = store
        .create_organization(account, "management", "admin@example.com")
        .await
        .expect("organization");
    let user = store
        .create_sso_user(&instance.identity_store_id, "erin", "Erin Cho", None)
        .await
        .expect("user");
    let hash = seashell_server::password::hash("Erin-portal-2026!").expect("hash");
    store
        .set_sso_password(&user.user_id, &hash)
        .await
        .expect("password");
    let set = store
        .create_permission_set(&instance.instance_arn, "CloudShellAdmin", None, 3600, None)
        .await
        .expect("permission set");
    store
        .attach_permission_set_policy(
            &instance.instance_arn,
            &set.permission_set_arn,
            "arn:aws:iam::aws:policy/AdministratorAccess",
        )
        .await
        .expect("attach");
    let assignment = Assignment {
        account_id: account.to_string(),
        permission_set_arn: set.permission_set_arn.clone(),
        principal_type: "USER".into(),
        principal_id: user.user_id.clone(),
    };
    store
        .create_assignment(&instance, &assignment)
        .await
        .expect("assignment");

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let pair = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|c| c.split(';').next())
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(str::to_string)
    };
    let r = client
        .post(format!("{base}/start/signin"))
        .form(&[("username", "erin"), ("password", "Erin-portal-2026!")])
        .send()
        .await
        .expect("portal sign-in");
    assert_eq!(r.status(), 303);
    let portal = pair(&r, "seashell_portal").expect("portal cookie");
    let page = client
        .get(format!("{base}/start"))
        .header("cookie", &portal)
        .send()
        .await
        .expect("portal")
        .text()
        .await
        .expect("page");
    let marker = r#"name="csrf" value=""#;
    let at = page.find(marker).expect("csrf") + marker.len();
    let portal_csrf = &page[at..at + page[at..].find('"').expect("end")];
    let r = client
        .post(format!("{base}/start/console"))
        .header("cookie", &portal)
        .form(&[
            ("csrf", portal_csrf),
            ("account_id", account),
            ("role_name", "CloudShellAdmin"),
        ])
        .send()
        .await
        .expect("federate");
    assert_eq!(r.status(), 303);
    let session = pair(&r, "seashell_session").expect("console session");
    let csrf_pair = pair(&r, "seashell_csrf").expect("csrf cookie");
    let csrf = csrf_pair.trim_start_matches("seashell_csrf=").to_string();
    let cookie = format!("{session}; {csrf_pair}");

    let env = console_call(base, &cookie, &csrf, "createEnvironment", json!({})).await;
    let id = env["EnvironmentId"].as_str().expect("id").to_string();
    console_call(
        base,
        &cookie,
        &csrf,
        "startEnvironment",
        json!({"EnvironmentId": id}),
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        let s = console_call(
            base,
            &cookie,
            &csrf,
            "getEnvironmentStatus",
            json!({"EnvironmentId": id}),
        )
        .await;
        if s["Status"] == "RUNNING" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never running: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    console_call(
        base,
        &cookie,
        &csrf,
        "putCredentials",
        json!({"EnvironmentId": id}),
    )
    .await;
    let created = console_call(
        base,
        &cookie,
        &csrf,
        "createSession",
        json!({"EnvironmentId": id, "TabId": "sso-tab"}),
    )
    .await;
    let mut sh = shell(&created).await;
    sh.type_line("aws sts get-caller-identity --query Arn --output text; echo DONE-$((20+1))")
        .await
        .expect("type");
    let out = sh.wait_for("DONE-21", WAIT).await.expect("aws");
    let role = format!("arn:aws:sts::{account}:assumed-role/AWSReservedSSO_CloudShellAdmin_");
    assert!(out.contains(&role) && out.contains("/erin"), "{out}");

    // Removing the assignment revokes the session's role credentials and
    // withdraws them from the shell.
    store
        .delete_assignment(&instance, &assignment)
        .await
        .expect("unassign");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut n = 30;
    loop {
        n += 1;
        sh.type_line(&format!(
            "aws sts get-caller-identity --query Arn --output text 2>&1 | tail -1; echo DONE-$(({n}+0))"
        ))
        .await
        .expect("type");
        let out = sh.wait_for(&format!("DONE-{n}"), WAIT).await.expect("aws");
        let tail = &out[out.rfind("--output text").unwrap_or(0)..];
        if !tail.contains("assumed-role/AWSReservedSSO_CloudShellAdmin_") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the shell kept its role credentials a minute after the assignment went"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
