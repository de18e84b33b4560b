//! The login story of the IAM Identity Center blog, for real, against a
//! running `seashell serve`: the administrator sets up an organization, its
//! Identity Center, a user in a group, two permission sets and their
//! assignments with the real AWS CLI; the user sets a password from an
//! invitation, `seashell sso login` shows a device code that the user
//! approves in the portal, and then the real AWS CLI and boto3, with the
//! blog's `~/.aws/config`, get each account's role credentials from that one
//! login; the token refreshes; removing an assignment revokes credentials
//! already handed out within a minute; `seashell sso logout` ends the
//! login; the portal's console and command-line access work; every step is
//! in the audit trail with the SSO user in `userIdentity`.
//!
//! Needs `SEASHELL_TEST_AWS_BIN` (`scripts/aws-clients.sh`).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::sso::{csrf_of, s, Admin, Browser};
use common::{aws_bin, seashell, text, Server};
use serde_json::Value;

const PASSWORD: &str = "Correct-Horse-Battery-9";

/// What the blog's five setup steps create.
struct Org {
    dev: String,
    prod: String,
    instance: String,
    store: String,
    user_id: String,
    power_user_set: String,
}

/// The blog's five steps: an organization with dev and prod accounts,
/// Identity Center, a user in a group, permission sets, assignments.
fn set_up(admin: &Admin) -> Org {
    admin.ok(&[
        "organizations",
        "create-organization",
        "--feature-set",
        "ALL",
    ]);
    let mut accounts = Vec::new();
    for name in ["dev", "prod"] {
        let created = admin.ok(&[
            "organizations",
            "create-account",
            "--email",
            &format!("{name}@example.com"),
            "--account-name",
            name,
        ]);
        let status = admin.ok(&[
            "organizations",
            "describe-create-account-status",
            "--create-account-request-id",
            &s(&created, "/CreateAccountStatus/Id"),
        ]);
        assert_eq!(s(&status, "/CreateAccountStatus/State"), "SUCCEEDED");
        accounts.push(s(&status, "/CreateAccountStatus/AccountId"));
    }
    let instances = admin.ok(&["sso-admin", "list-instances"]);
    let instance = s(&instances, "/Instances/0/InstanceArn");
    let store = s(&instances, "/Instances/0/IdentityStoreId");
    let user = admin.ok(&[
        "identitystore",
        "create-user",
        "--identity-store-id",
        &store,
        "--user-name",
        "alice",
        "--display-name",
        "Alice Kim",
        "--name",
        "GivenName=Alice,FamilyName=Kim",
        "--emails",
        "Value=alice@example.com,Type=work,Primary=true",
    ]);
    let user_id = s(&user, "/UserId");
    let group = admin.ok(&[
        "identitystore",
        "create-group",
        "--identity-store-id",
        &store,
        "--display-name",
        "Developers",
    ]);
    let group_id = s(&group, "/GroupId");
    admin.ok(&[
        "identitystore",
        "create-group-membership",
        "--identity-store-id",
        &store,
        "--group-id",
        &group_id,
        "--member-id",
        &format!("UserId={user_id}"),
    ]);
    let mut sets = Vec::new();
    for (name, policies) in [
        (
            "AdministratorAccess",
            vec!["arn:aws:iam::aws:policy/AdministratorAccess"],
        ),
        (
            "PowerUserDeveloperAccess",
            vec![
                "arn:aws:iam::aws:policy/ReadOnlyAccess",
                "arn:aws:iam::aws:policy/AWSCloudShellFullAccess",
            ],
        ),
    ] {
        let set = admin.ok(&[
            "sso-admin",
            "create-permission-set",
            "--instance-arn",
            &instance,
            "--name",
            name,
            "--session-duration",
            "PT4H",
        ]);
        let arn = s(&set, "/PermissionSet/PermissionSetArn");
        for policy in policies {
            admin.ok(&[
                "sso-admin",
                "attach-managed-policy-to-permission-set",
                "--instance-arn",
                &instance,
                "--permission-set-arn",
                &arn,
                "--managed-policy-arn",
                policy,
            ]);
        }
        sets.push(arn);
    }
    let (dev, prod) = (accounts[0].clone(), accounts[1].clone());
    for (account, set) in [(&prod, &sets[0]), (&dev, &sets[1])] {
        admin.ok(&[
            "sso-admin",
            "create-account-assignment",
            "--instance-arn",
            &instance,
            "--target-id",
            account,
            "--target-type",
            "AWS_ACCOUNT",
            "--permission-set-arn",
            set,
            "--principal-type",
            "GROUP",
            "--principal-id",
            &group_id,
        ]);
    }
    Org {
        dev,
        prod,
        instance,
        store,
        user_id,
        power_user_set: sets[1].clone(),
    }
}

/// The blog's `~/.aws/config`, with the services section that points the
/// AWS CLI at Seashell.
fn write_config(home: &Path, server: &Server, org: &Org) -> PathBuf {
    let base = format!("http://{}", server.addr);
    let config = format!(
        "[sso-session my-org]\nsso_start_url = {base}/start\nsso_region = ap-northeast-2\n\
         sso_registration_scopes = sso:account:access\n\n\
         [profile prod]\nsso_session = my-org\nsso_account_id = {prod}\n\
         sso_role_name = AdministratorAccess\nregion = ap-northeast-2\nservices = seashell\n\n\
         [profile dev]\nsso_session = my-org\nsso_account_id = {dev}\n\
         sso_role_name = PowerUserDeveloperAccess\nregion = ap-northeast-2\nservices = seashell\n\n\
         [services seashell]\nsts =\n  endpoint_url = {base}/sts\nsso =\n  endpoint_url = {base}/sso\n\
         sso_oidc =\n  endpoint_url = {base}/sso-oidc\n",
        prod = org.prod,
        dev = org.dev,
    );
    std::fs::create_dir_all(home).expect("home");
    let path = home.join("config");
    std::fs::write(&path, config).expect("config");
    path
}

/// A command run as the SSO user: only the config file, no keys.
fn as_user(program: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"));
    cmd
}

fn caller_arn(home: &Path, profile: &str) -> Result<String, String> {
    let out = as_user(&aws_bin().join("aws"), home)
        .args(["sts", "get-caller-identity", "--profile", profile])
        .args(["--output", "json"])
        .output()
        .expect("aws");
    let (stdout, stderr) = text(&out);
    if !out.status.success() {
        return Err(stderr);
    }
    let v: Value = serde_json::from_str(&stdout).map_err(|e| e.to_string())?;
    Ok(s(&v, "/Arn"))
}

/// Runs `seashell sso login` until it shows the code; the user approves it
/// in the portal (signing in first); the login's output.
async fn login_approved_in_portal(home: &Path, browser: &mut Browser) -> String {
    let mut child = as_user(Path::new(env!("CARGO_BIN_EXE_seashell")), home)
        .args(["sso", "login", "--sso-session", "my-org", "--no-browser"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("seashell sso login");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut printed = String::new();
    let code = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no code shown; printed so far:\n{printed}"));
        printed.push_str(&line);
        printed.push('\n');
        let is_code = line.len() == 9
            && line.as_bytes()[4] == b'-'
            && line
                .chars()
                .filter(|c| *c != '-')
                .all(|c| c.is_ascii_uppercase());
        if is_code {
            break line;
        }
    };
    assert!(
        printed.contains("/start/device"),
        "the verification URL is shown: {printed}"
    );
    // The user follows the link: not signed in yet, so the portal asks.
    let (status, page) = browser
        .get(&format!("/start/device?user_code={code}"))
        .await;
    assert_eq!(status, 200);
    assert!(page.contains("Sign in"), "{page}");
    let next = format!("/start/device?user_code={code}");
    let r = browser
        .post(
            "/start/signin",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("next", &next),
            ],
        )
        .await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], next.as_str());
    let (status, page) = browser.get(&next).await;
    assert_eq!(status, 200);
    assert!(page.contains(&code), "the page shows the code: {page}");
    let csrf = csrf_of(&page);
    let r = browser
        .post(
            "/start/device",
            &[("csrf", &csrf), ("user_code", &code), ("decision", "allow")],
        )
        .await;
    let status = r.status().as_u16();
    let body = r.text().await.expect("body");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Request approved"), "{body}");
    let out = child.wait_with_output().expect("login");
    for line in rx.try_iter() {
        printed.push_str(&line);
        printed.push('\n');
    }
    assert!(
        out.status.success(),
        "login failed: {}\n{printed}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("Successfully logged into Start URL"),
        "{printed}"
    );
    printed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blogs_daily_flow_with_the_real_aws_cli() {
    // The blog works in ap-northeast-2.
    let config_dir = tempfile::tempdir().expect("tempdir");
    let config = config_dir.path().join("seashell.toml");
    std::fs::write(&config, "regions = [\"us-east-1\", \"ap-northeast-2\"]\n").expect("config");
    let server = Server::start_with(None, "127.0.0.1:0", Some(&config));
    let keys = server.bootstrap();
    let admin = Admin {
        server: &server,
        key_id: keys["AccessKeyId"].as_str().expect("key").to_string(),
        secret: keys["SecretAccessKey"]
            .as_str()
            .expect("secret")
            .to_string(),
    };
    let org = set_up(&admin);

    // The invitation: a one-time link with which the user sets a password.
    let out = seashell()
        .args([
            "admin",
            "invite-sso-user",
            "--user-name",
            "alice",
            "--data-dir",
        ])
        .arg(server.data_dir.path())
        .args(["--public-url", &format!("http://{}", server.addr)])
        .output()
        .expect("invite");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let path = link
        .strip_prefix(&format!("http://{}", server.addr))
        .expect("a link to this server")
        .to_string();
    let token = path.split("token=").nth(1).expect("token").to_string();
    let mut browser = Browser::new(&server);
    let (status, page) = browser.get(&path).await;
    assert_eq!(status, 200);
    assert!(page.contains("alice"), "{page}");
    let weak = browser
        .post(
            "/start/setup",
            &[
                ("token", &token),
                ("password", "short"),
                ("confirm", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status().as_u16(), 400, "a weak password is refused");
    let set = browser
        .post(
            "/start/setup",
            &[
                ("token", &token),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(set.status().as_u16(), 200);
    let again = browser
        .post(
            "/start/setup",
            &[
                ("token", &token),
                ("password", PASSWORD),
                ("confirm", PASSWORD),
            ],
        )
        .await;
    assert_eq!(again.status().as_u16(), 404, "an invitation works once");

    // A wrong password is refused with the generic message.
    let wrong = browser
        .post(
            "/start/signin",
            &[("username", "alice"), ("password", "nope")],
        )
        .await;
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong
        .text()
        .await
        .expect("body")
        .contains("Your authentication information is incorrect"));
    // A sign-in form posted from another site is refused.
    let foreign = reqwest::Client::new()
        .post(format!("http://{}/start/signin", server.addr))
        .header("origin", "https://evil.example")
        .form(&[("username", "alice"), ("password", PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(foreign.status().as_u16(), 403);

    // One login...
    let home = server.data_dir.path().join("alice-home");
    write_config(&home, &server, &org);
    login_approved_in_portal(&home, &mut browser).await;
    let cache = home.join(".aws/sso/cache/063b06ca21ff862fb6d05839b8f962c8f1afdec6.json");
    let cached: Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).expect("token cache")).expect("json");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the token cache is private");
    }
    for key in [
        "startUrl",
        "region",
        "accessToken",
        "expiresAt",
        "clientId",
        "clientSecret",
        "registrationExpiresAt",
        "refreshToken",
    ] {
        assert!(cached.get(key).is_some(), "{key} in {cached}");
    }
    assert_eq!(cached["region"], "ap-northeast-2");

    // ...serves every profile of the session, with the real AWS CLI.
    let role_hash = |arn: &str, set: &str| {
        let prefix = format!("assumed-role/AWSReservedSSO_{set}_");
        let at = arn.find(&prefix).unwrap_or_else(|| panic!("{arn}"));
        arn[at + prefix.len()..]
            .split('/')
            .next()
            .unwrap_or("")
            .to_string()
    };
    let prod_arn = caller_arn(&home, "prod").expect("prod");
    assert!(
        prod_arn.starts_with(&format!(
            "arn:aws:sts::{}:assumed-role/AWSReservedSSO_AdministratorAccess_",
            org.prod
        )) && prod_arn.ends_with("/alice"),
        "{prod_arn}"
    );
    assert_eq!(role_hash(&prod_arn, "AdministratorAccess").len(), 16);
    let dev_arn = caller_arn(&home, "dev").expect("dev");
    assert!(
        dev_arn.starts_with(&format!(
            "arn:aws:sts::{}:assumed-role/AWSReservedSSO_PowerUserDeveloperAccess_",
            org.dev
        )) && dev_arn.ends_with("/alice"),
        "{dev_arn}"
    );
    // ...and boto3 with the same file.
    let out = as_user(&aws_bin().join("python"), &home)
        .args([
            "-c",
            "import boto3, json; s = boto3.Session(profile_name='dev'); \
             c = s.get_credentials().get_frozen_credentials(); \
             print(json.dumps({'arn': s.client('sts').get_caller_identity()['Arn'], \
             'key': c.access_key, 'secret': c.secret_key, 'token': c.token}))",
        ])
        .output()
        .expect("python");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "boto3: {stderr}");
    let boto: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(boto["arn"], dev_arn.as_str());

    // The portal API lists what the token reaches.
    let access_token = cached["accessToken"].as_str().expect("token").to_string();
    let http = reqwest::Client::new();
    let accounts: Value = http
        .get(format!("http://{}/sso/assignment/accounts", server.addr))
        .header("x-amz-sso_bearer_token", &access_token)
        .send()
        .await
        .expect("accounts")
        .json()
        .await
        .expect("json");
    let mut ids: Vec<&str> = accounts["accountList"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|a| a["accountId"].as_str())
        .collect();
    ids.sort_unstable();
    let mut want = vec![org.dev.as_str(), org.prod.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);
    let unassigned = http
        .get(format!(
            "http://{}/sso/federation/credentials?account_id={}&role_name=PowerUserDeveloperAccess",
            server.addr, org.prod
        ))
        .header("x-amz-sso_bearer_token", &access_token)
        .send()
        .await
        .expect("credentials");
    assert_eq!(
        unassigned.status().as_u16(),
        403,
        "no role outside the assignments"
    );
    let bogus = http
        .get(format!("http://{}/sso/assignment/accounts", server.addr))
        .header("x-amz-sso_bearer_token", "aoa-not-a-token")
        .send()
        .await
        .expect("accounts");
    assert_eq!(bogus.status().as_u16(), 401);
    assert_eq!(bogus.headers()["x-amzn-errortype"], "UnauthorizedException");

    // The token refreshes: make it near its end, forget the role
    // credentials the AWS CLI may have cached, and call again.
    let mut near_end = cached.clone();
    near_end["expiresAt"] = Value::String(seashell_client::sso::iso8601(
        std::time::SystemTime::now() + Duration::from_secs(60),
    ));
    std::fs::write(&cache, near_end.to_string()).expect("rewrite cache");
    let _ = std::fs::remove_dir_all(home.join(".aws/cli/cache"));
    assert!(caller_arn(&home, "prod")
        .expect("prod after refresh")
        .ends_with("/alice"));
    let refreshed: Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).expect("cache")).expect("json");
    assert_ne!(
        refreshed["accessToken"], cached["accessToken"],
        "botocore refreshed the token through CreateToken"
    );
    let old_token = http
        .get(format!("http://{}/sso/assignment/accounts", server.addr))
        .header("x-amz-sso_bearer_token", &access_token)
        .send()
        .await
        .expect("accounts");
    assert_eq!(
        old_token.status().as_u16(),
        200,
        "the old access token lives its hour"
    );

    // The portal: the accounts page, command-line access, the console as a
    // role.
    let (status, home_page) = browser.get("/start").await;
    assert_eq!(status, 200);
    assert!(
        home_page.contains(&org.dev) && home_page.contains(&org.prod),
        "{home_page}"
    );
    let csrf = csrf_of(&home_page);
    let r = browser
        .post(
            "/start/credentials",
            &[
                ("csrf", &csrf),
                ("account_id", &org.prod),
                ("role_name", "AdministratorAccess"),
            ],
        )
        .await;
    assert_eq!(r.status().as_u16(), 200);
    let page = r.text().await.expect("page");
    assert!(
        page.contains("export AWS_ACCESS_KEY_ID=&quot;ASIA"),
        "{page}"
    );
    let refused = browser
        .post(
            "/start/credentials",
            &[
                ("csrf", "wrong"),
                ("account_id", &org.prod),
                ("role_name", "AdministratorAccess"),
            ],
        )
        .await;
    assert_eq!(refused.status().as_u16(), 403, "the CSRF token is checked");
    let r = browser
        .post(
            "/start/console",
            &[
                ("csrf", &csrf),
                ("account_id", &org.prod),
                ("role_name", "AdministratorAccess"),
            ],
        )
        .await;
    assert_eq!(r.status().as_u16(), 303);
    let (status, who) = browser.get("/whoami").await;
    assert_eq!(status, 200, "{who}");
    let who: Value = serde_json::from_str(&who).expect("json");
    assert_eq!(
        who["Arn"],
        prod_arn.as_str(),
        "the console session is the role's"
    );
    let console_csrf = browser.cookie_value("seashell_csrf").expect("csrf cookie");
    let envs = browser
        .http
        .post(format!(
            "http://{}/cloudshell/describeEnvironments",
            server.addr
        ))
        .header("cookie", &browser.cookie)
        .header("x-csrf-token", &console_csrf)
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("describe");
    assert_eq!(
        envs.status().as_u16(),
        200,
        "CloudShell answers the federated console"
    );

    // Removing the dev assignment revokes the dev credentials boto3 holds,
    // within a minute.
    admin.ok(&[
        "sso-admin",
        "delete-account-assignment",
        "--instance-arn",
        &org.instance,
        "--target-id",
        &org.dev,
        "--target-type",
        "AWS_ACCOUNT",
        "--permission-set-arn",
        &org.power_user_set,
        "--principal-type",
        "GROUP",
        "--principal-id",
        &s(
            &admin.ok(&[
                "identitystore",
                "get-group-id",
                "--identity-store-id",
                &org.store,
                "--alternate-identifier",
                r#"{"UniqueAttribute":{"AttributePath":"DisplayName","AttributeValue":"Developers"}}"#,
            ]),
            "/GroupId",
        ),
    ]);
    let removed = Instant::now();
    loop {
        let out = as_user(&aws_bin().join("aws"), &home)
            .env("AWS_ACCESS_KEY_ID", boto["key"].as_str().expect("key"))
            .env(
                "AWS_SECRET_ACCESS_KEY",
                boto["secret"].as_str().expect("secret"),
            )
            .env("AWS_SESSION_TOKEN", boto["token"].as_str().expect("token"))
            .env("AWS_DEFAULT_REGION", "ap-northeast-2")
            .env("AWS_ENDPOINT_URL_STS", server.endpoint("sts"))
            .args(["sts", "get-caller-identity"])
            .output()
            .expect("aws");
        if !out.status.success() {
            break;
        }
        assert!(
            removed.elapsed() < Duration::from_secs(60),
            "the dev credentials still work a minute after the assignment went"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(
        caller_arn(&home, "dev").is_err(),
        "no new dev credentials either"
    );
    assert_eq!(
        caller_arn(&home, "prod").expect("prod still assigned"),
        prod_arn
    );

    // Logout ends the login.
    let current: Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).expect("cache")).expect("json");
    let out = as_user(Path::new(env!("CARGO_BIN_EXE_seashell")), &home)
        .args(["sso", "logout"])
        .output()
        .expect("logout");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!cache.exists(), "the token cache is removed");
    let after = http
        .get(format!("http://{}/sso/assignment/accounts", server.addr))
        .header(
            "x-amz-sso_bearer_token",
            current["accessToken"].as_str().expect("t"),
        )
        .send()
        .await
        .expect("accounts");
    assert_eq!(
        after.status().as_u16(),
        401,
        "the logged-out token is refused"
    );

    // MFA: alice registers a device; sign-ins then need its code, each code
    // once.
    let (status, page) = browser.get("/start/mfa").await;
    assert_eq!(status, 200, "{page}");
    let after = |page: &str, marker: &str, end: char| {
        let at = page
            .find(marker)
            .unwrap_or_else(|| panic!("{marker} in {page}"))
            + marker.len();
        page[at..at + page[at..].find(end).expect("end")].to_string()
    };
    let secret = after(&page, r#"<code id="mfa-secret">"#, '<');
    let device = after(&page, r#"name="device_id" value=""#, '"');
    let csrf = csrf_of(&page);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let previous = seashell_server::mfa::code_at(&secret, now - 30).expect("code");
    let r = browser
        .post(
            "/start/mfa",
            &[("csrf", &csrf), ("device_id", &device), ("code", &previous)],
        )
        .await;
    assert_eq!(r.status().as_u16(), 200);
    assert!(r
        .text()
        .await
        .expect("body")
        .contains("MFA device registered"));
    let mut fresh = Browser::new(&server);
    let no_code = fresh
        .post(
            "/start/signin",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(no_code.status().as_u16(), 401);
    assert!(no_code
        .text()
        .await
        .expect("body")
        .contains("Enter the code from your MFA device"));
    let current = seashell_server::mfa::code_at(&secret, now).expect("code");
    let with_code = fresh
        .post(
            "/start/signin",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("mfa_code", &current),
            ],
        )
        .await;
    assert_eq!(with_code.status().as_u16(), 303, "the right code signs in");
    let replayed = Browser::new(&server)
        .post(
            "/start/signin",
            &[
                ("username", "alice"),
                ("password", PASSWORD),
                ("mfa_code", &current),
            ],
        )
        .await;
    assert_eq!(replayed.status().as_u16(), 401, "a code works once");

    // Disabling the user revokes what they still hold, at once.
    let out = seashell()
        .args([
            "admin",
            "set-sso-user-status",
            "--user-name",
            "alice",
            "--status",
            "disabled",
            "--data-dir",
        ])
        .arg(server.data_dir.path())
        .output()
        .expect("disable");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, _) = browser.get("/whoami").await;
    assert_eq!(status, 401, "the federated console session ended");
    let (_, page) = browser.get("/start").await;
    assert!(page.contains("Sign in"), "the portal session ended: {page}");
    let denied = browser
        .post(
            "/start/signin",
            &[("username", "alice"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        denied.status().as_u16(),
        401,
        "a disabled user cannot sign in"
    );

    // Every step is in the audit trail, with the SSO user.
    for event in [
        "UserAuthentication",
        "CreateToken",
        "GetRoleCredentials",
        "Federate",
    ] {
        let found = admin.ok(&[
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            &format!("AttributeKey=EventName,AttributeValue={event}"),
        ]);
        let records: Vec<Value> = found["Events"]
            .as_array()
            .expect("events")
            .iter()
            .filter_map(|e| e["CloudTrailEvent"].as_str())
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect();
        assert!(
            records
                .iter()
                .any(|r| r["userIdentity"]["type"] == "IdentityCenterUser"
                    && r["userIdentity"]["userName"] == "alice"
                    && r["userIdentity"]["onBehalfOf"]["userId"] == org.user_id.as_str()
                    && r["errorCode"].is_null()),
            "{event}: {records:?}"
        );
    }
}
