//! Portal sign-in through an external OpenID Connect identity provider: the
//! OpenID-certified `oidc-provider` from npm (web/e2e/oidc-provider.mjs),
//! started on loopback, and `seashell serve` configured to use it. A user
//! of the provider signs in (authorization code with PKCE, the ID token
//! checked), lands in the identity store with the provider's groups, and
//! sees the accounts those groups are assigned; a local user's name cannot
//! be taken over; a replayed or forged callback is refused; the sign-in is
//! audited.
//!
//! Needs `SEASHELL_TEST_AWS_BIN` and Node.js with the console's
//! `web/node_modules` (installed by the server's build).

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use common::sso::{s, Admin, Browser};
use common::Server;
use serde_json::Value;

const CLIENT_SECRET: &str = "test-only-client-secret-5d1c";

/// The provider process, killed when dropped.
struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn start_provider(redirect_uri: &str) -> Provider {
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web");
    assert!(
        web.join("node_modules/oidc-provider").is_dir(),
        "web/node_modules/oidc-provider is missing: build the server (its build runs npm ci)"
    );
    let port = free_port().to_string();
    let mut child = Command::new("node")
        .arg(web.join("e2e/oidc-provider.mjs"))
        .args([port.as_str(), redirect_uri, "seashell", CLIENT_SECRET])
        .current_dir(&web)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node (Node.js is needed for this test)");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let issuer = loop {
        let line = lines
            .next()
            .expect("the provider printed its issuer before exiting")
            .expect("read");
        if let Some(issuer) = line.strip_prefix("oidc-provider listening on ") {
            break issuer.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Provider { child, issuer }
}

/// Signs in at the provider as `login` starting from the portal; the last
/// page reached and its URL.
async fn sign_in_with_provider(browser: &mut Browser, login: &str) -> (String, u16, String) {
    let start = format!("{}/start/idp/login?next=/start", browser.base);
    let (url, status, page) = browser.follow(&start).await;
    assert_eq!(status, 200, "{url}: {page}");
    assert!(
        page.contains("name=\"login\""),
        "the provider's login page: {page}"
    );
    let (url, status, page) = browser
        .submit(&url, &page, &[("login", login), ("password", "any")])
        .await;
    if url.starts_with(&browser.base) {
        return (url, status, page);
    }
    // The provider asks for consent once per client.
    assert!(
        page.contains("name=\"prompt\" value=\"consent\""),
        "{url}: {page}"
    );
    browser.submit(&url, &page, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_user_signs_in_with_their_groups() {
    let seashell_port = free_port();
    let base = format!("http://127.0.0.1:{seashell_port}");
    let provider = start_provider(&format!("{base}/start/idp/callback"));
    let config_dir = tempfile::tempdir().expect("tempdir");
    let config = config_dir.path().join("seashell.toml");
    std::fs::write(
        &config,
        format!(
            "public_url = \"{base}\"\n\n[sso.identity_provider]\nname = \"Example IdP\"\n\
             issuer = \"{}\"\nclient_id = \"seashell\"\nclient_secret = \"{CLIENT_SECRET}\"\n",
            provider.issuer
        ),
    )
    .expect("config");
    let server = Server::start_with(None, &format!("127.0.0.1:{seashell_port}"), Some(&config));
    let keys = server.bootstrap();
    let admin = Admin {
        server: &server,
        key_id: keys["AccessKeyId"].as_str().expect("key").to_string(),
        secret: keys["SecretAccessKey"]
            .as_str()
            .expect("secret")
            .to_string(),
    };

    // The administrator's side: a dev account, a local Developers group
    // assigned to it, and a local user alice.
    admin.ok(&[
        "organizations",
        "create-organization",
        "--feature-set",
        "ALL",
    ]);
    let created = admin.ok(&[
        "organizations",
        "create-account",
        "--email",
        "dev@example.com",
        "--account-name",
        "dev",
    ]);
    let dev = s(
        &admin.ok(&[
            "organizations",
            "describe-create-account-status",
            "--create-account-request-id",
            &s(&created, "/CreateAccountStatus/Id"),
        ]),
        "/CreateAccountStatus/AccountId",
    );
    let instances = admin.ok(&["sso-admin", "list-instances"]);
    let instance = s(&instances, "/Instances/0/InstanceArn");
    let store = s(&instances, "/Instances/0/IdentityStoreId");
    let group = s(
        &admin.ok(&[
            "identitystore",
            "create-group",
            "--identity-store-id",
            &store,
            "--display-name",
            "Developers",
        ]),
        "/GroupId",
    );
    admin.ok(&[
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
    ]);
    let set = s(
        &admin.ok(&[
            "sso-admin",
            "create-permission-set",
            "--instance-arn",
            &instance,
            "--name",
            "ReadOnly",
        ]),
        "/PermissionSet/PermissionSetArn",
    );
    admin.ok(&[
        "sso-admin",
        "attach-managed-policy-to-permission-set",
        "--instance-arn",
        &instance,
        "--permission-set-arn",
        &set,
        "--managed-policy-arn",
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
    ]);
    admin.ok(&[
        "sso-admin",
        "create-account-assignment",
        "--instance-arn",
        &instance,
        "--target-id",
        &dev,
        "--target-type",
        "AWS_ACCOUNT",
        "--permission-set-arn",
        &set,
        "--principal-type",
        "GROUP",
        "--principal-id",
        &group,
    ]);

    // The portal offers the provider.
    let mut browser = Browser::new(&server);
    let (status, page) = browser.get("/start").await;
    assert_eq!(status, 200);
    assert!(page.contains("Sign in with Example IdP"), "{page}");

    // carol signs in at the provider and lands in the portal, with the
    // account her Developers group is assigned.
    let (url, status, page) = sign_in_with_provider(&mut browser, "carol").await;
    assert_eq!(status, 200, "{url}: {page}");
    assert!(url.ends_with("/start"), "{url}");
    assert!(
        page.contains("Signed in as <strong>carol</strong>"),
        "{page}"
    );
    assert!(page.contains(&dev) && page.contains("ReadOnly"), "{page}");
    let carol = s(
        &admin.ok(&[
            "identitystore",
            "get-user-id",
            "--identity-store-id",
            &store,
            "--alternate-identifier",
            r#"{"UniqueAttribute":{"AttributePath":"UserName","AttributeValue":"carol"}}"#,
        ]),
        "/UserId",
    );
    // Her other group, which the identity store lacked, now exists with
    // her in it.
    let groups = admin.ok(&[
        "identitystore",
        "list-groups",
        "--identity-store-id",
        &store,
    ]);
    let auditors = groups["Groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["DisplayName"] == "Auditors")
        .unwrap_or_else(|| panic!("Auditors created: {groups}"));
    let members = admin.ok(&[
        "identitystore",
        "list-group-memberships",
        "--identity-store-id",
        &store,
        "--group-id",
        auditors["GroupId"].as_str().expect("id"),
    ]);
    assert!(
        members["GroupMemberships"]
            .as_array()
            .expect("memberships")
            .iter()
            .any(|m| m["MemberId"]["UserId"] == carol.as_str()),
        "{members}"
    );

    // The callback carol's browser went through cannot be used again, even
    // with its state cookie put back.
    let callback = browser
        .visited
        .iter()
        .find(|u| u.contains("/start/idp/callback"))
        .expect("the callback was visited")
        .clone();
    let state = callback
        .split("state=")
        .nth(1)
        .and_then(|s| s.split('&').next())
        .expect("state")
        .to_string();
    let replay = browser
        .http
        .get(&callback)
        .header("cookie", format!("seashell_idp_state={state}"))
        .send()
        .await
        .expect("replay");
    assert_eq!(replay.status().as_u16(), 401, "a used state is refused");

    // A provider user named like a local user does not take the account.
    let mut other = Browser::new(&server);
    let (_, status, page) = sign_in_with_provider(&mut other, "alice").await;
    assert_eq!(status, 401, "{page}");
    assert!(
        page.contains("not linked to this identity provider"),
        "{page}"
    );

    // A callback whose state this browser did not start is refused, and a
    // used one cannot be replayed.
    let mut third = Browser::new(&server);
    let (status, page) = third
        .get("/start/idp/callback?code=forged&state=forged")
        .await;
    assert_eq!(status, 401, "{page}");
    let start = format!("{base}/start/idp/login?next=/start");
    let r = third
        .http
        .get(&start)
        .header("cookie", &third.cookie)
        .send()
        .await
        .expect("login");
    third.keep_cookies(&r);
    assert_eq!(r.status().as_u16(), 303);
    let auth = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(auth.starts_with(&provider.issuer), "{auth}");
    assert!(auth.contains("code_challenge_method=S256"), "PKCE: {auth}");
    assert!(auth.contains("nonce="), "a nonce: {auth}");

    // The sign-in is audited as the identity-store user, through the
    // provider.
    let found = admin.ok(&[
        "cloudtrail",
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=EventName,AttributeValue=UserAuthentication",
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
            .any(|r| r["userIdentity"]["userName"] == "carol"
                && r["additionalEventData"]["CredentialType"] == "EXTERNAL_IDP"),
        "{records:?}"
    );
}
