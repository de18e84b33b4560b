//! SSO-OIDC and the SSO portal API over HTTP, on SQLite and PostgreSQL: the
//! error of every wrong step a device login can take, in botocore's shapes
//! (`x-amzn-ErrorType` and `{error, error_description}`), refresh tokens
//! that work once, Logout.

mod common;

use seashell_server::portal;
use seashell_server::store::identity_center::Assignment;
use serde_json::{json, Value};

struct Reply {
    status: u16,
    kind: String,
    body: Value,
}

async fn post(base: &str, path: &str, body: Value) -> Reply {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let kind = r
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().expect("ascii").to_string())
        .unwrap_or_default();
    let body = r.json().await.unwrap_or(Value::Null);
    Reply { status, kind, body }
}

fn form_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Signs `user` in at the portal; the session cookie.
async fn portal_sign_in(base: &str, user: &str, password: &str) -> String {
    let r = form_client()
        .post(format!("{base}/start/signin"))
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 303);
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|c| c.split(';').next())
        .find(|c| c.starts_with("seashell_portal="))
        .expect("portal cookie")
        .to_string()
}

/// Answers a device code in the portal.
async fn answer(base: &str, cookie: &str, code: &str, decision: &str) -> u16 {
    let page = form_client()
        .get(format!("{base}/start/device?user_code={code}"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    let marker = r#"name="csrf" value=""#;
    let at = page.find(marker).expect("csrf") + marker.len();
    let csrf = &page[at..at + page[at..].find('"').expect("end")];
    form_client()
        .post(format!("{base}/start/device"))
        .header("cookie", cookie)
        .form(&[("csrf", csrf), ("user_code", code), ("decision", decision)])
        .send()
        .await
        .expect("answer")
        .status()
        .as_u16()
}

const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_login_errors_and_refresh() {
    for db in common::databases().await {
        let backend = db.backend;
        let running = seashell_server::start(common::server_config(&db))
            .await
            .expect("start");
        let base = format!("http://{}", running.local_addr);
        let store = &running.state().store;
        let account = running.first_account.account_id.clone();

        // Nobody to sign in to yet: the start URL answers no instance.
        let client = post(
            &base,
            "/sso-oidc/client/register",
            json!({"clientName": "test", "clientType": "public", "scopes": ["sso:account:access"]}),
        )
        .await;
        assert_eq!(client.status, 200, "{backend}: {:?}", client.body);
        let (id, secret) = (
            client.body["clientId"].as_str().expect("id").to_string(),
            client.body["clientSecret"]
                .as_str()
                .expect("secret")
                .to_string(),
        );
        let start = |url: &str| json!({"clientId": id, "clientSecret": secret, "startUrl": url});
        let none = post(
            &base,
            "/sso-oidc/device_authorization",
            start(&format!("{base}/start")),
        )
        .await;
        assert_eq!(none.kind, "InvalidRequestException", "{backend}");

        let (_, instance) = store
            .create_organization(&account, "management", "admin@example.com")
            .await
            .expect("organization");
        let user = store
            .create_sso_user(&instance.identity_store_id, "frank", "Frank", None)
            .await
            .expect("user");
        let link = portal::invite(store, &user.user_id).await.expect("invite");
        let token = link.split("token=").nth(1).expect("token");
        let r = form_client()
            .post(format!("{base}/start/setup"))
            .form(&[
                ("token", token),
                ("password", "Frank-2026-portal"),
                ("confirm", "Frank-2026-portal"),
            ])
            .send()
            .await
            .expect("setup");
        assert_eq!(r.status(), 200, "{backend}");
        let set = store
            .create_permission_set(&instance.instance_arn, "Admin", None, 3600, None)
            .await
            .expect("set");
        store
            .create_assignment(
                &instance,
                &Assignment {
                    account_id: account.clone(),
                    permission_set_arn: set.permission_set_arn.clone(),
                    principal_type: "USER".into(),
                    principal_id: user.user_id.clone(),
                },
            )
            .await
            .expect("assignment");

        // Bad clients and start URLs.
        let wrong_secret = post(
            &base,
            "/sso-oidc/device_authorization",
            json!({"clientId": id, "clientSecret": "nope", "startUrl": format!("{base}/start")}),
        )
        .await;
        assert_eq!(
            (wrong_secret.status, wrong_secret.kind.as_str()),
            (401, "InvalidClientException"),
            "{backend}"
        );
        assert_eq!(wrong_secret.body["error"], "invalid_client");
        let elsewhere = post(
            &base,
            "/sso-oidc/device_authorization",
            start("https://x.example/begin"),
        )
        .await;
        assert_eq!(elsewhere.kind, "InvalidRequestException", "{backend}");
        let bad_type = post(
            &base,
            "/sso-oidc/client/register",
            json!({"clientName": "t", "clientType": "confidential"}),
        )
        .await;
        assert_eq!(bad_type.kind, "InvalidClientMetadataException", "{backend}");
        let bad_scope = post(
            &base,
            "/sso-oidc/client/register",
            json!({"clientName": "t", "clientType": "public", "scopes": ["admin:everything"]}),
        )
        .await;
        assert_eq!(bad_scope.kind, "InvalidScopeException", "{backend}");
        let not_json = reqwest::Client::new()
            .post(format!("{base}/sso-oidc/token"))
            .body("{")
            .send()
            .await
            .expect("post");
        assert_eq!(not_json.status(), 400);

        // Polling before the user answers, too fast, after a denial.
        let device = post(
            &base,
            "/sso-oidc/device_authorization",
            start(&format!("{base}/start")),
        )
        .await;
        assert_eq!(device.status, 200, "{backend}: {:?}", device.body);
        let code = device.body["deviceCode"]
            .as_str()
            .expect("code")
            .to_string();
        let user_code = device.body["userCode"]
            .as_str()
            .expect("user code")
            .to_string();
        assert_eq!(
            device.body["verificationUri"],
            format!("{base}/start/device").as_str()
        );
        let poll = |code: &str| json!({"clientId": id, "clientSecret": secret, "grantType": GRANT, "deviceCode": code});
        let pending = post(&base, "/sso-oidc/token", poll(&code)).await;
        assert_eq!(pending.kind, "AuthorizationPendingException", "{backend}");
        assert_eq!(pending.body["error"], "authorization_pending");
        let fast = post(&base, "/sso-oidc/token", poll(&code)).await;
        assert_eq!(fast.kind, "SlowDownException", "{backend}");
        let cookie = portal_sign_in(&base, "frank", "Frank-2026-portal").await;
        assert_eq!(answer(&base, &cookie, &user_code, "deny").await, 200);
        let denied = post(&base, "/sso-oidc/token", poll(&code)).await;
        assert_eq!(denied.kind, "AccessDeniedException", "{backend}");
        let unknown = post(&base, "/sso-oidc/token", poll("not-a-device-code")).await;
        assert_eq!(unknown.kind, "InvalidGrantException", "{backend}");
        let grant = post(
            &base,
            "/sso-oidc/token",
            json!({"clientId": id, "clientSecret": secret, "grantType": "password"}),
        )
        .await;
        assert_eq!(grant.kind, "UnsupportedGrantTypeException", "{backend}");

        // Approved: tokens once; the device code cannot be used again.
        let device = post(
            &base,
            "/sso-oidc/device_authorization",
            start(&format!("{base}/start")),
        )
        .await;
        let code = device.body["deviceCode"]
            .as_str()
            .expect("code")
            .to_string();
        let user_code = device.body["userCode"]
            .as_str()
            .expect("user code")
            .to_string();
        assert_eq!(answer(&base, &cookie, &user_code, "allow").await, 200);
        let tokens = post(&base, "/sso-oidc/token", poll(&code)).await;
        assert_eq!(tokens.status, 200, "{backend}: {:?}", tokens.body);
        assert_eq!(tokens.body["tokenType"], "Bearer");
        let expires_in = tokens.body["expiresIn"].as_i64().expect("expiresIn");
        assert!((3000..=3600).contains(&expires_in), "an hour: {expires_in}");
        let again = post(&base, "/sso-oidc/token", poll(&code)).await;
        assert_eq!(
            again.kind, "InvalidGrantException",
            "{backend}: a device code works once"
        );
        let access = tokens.body["accessToken"]
            .as_str()
            .expect("access")
            .to_string();
        let refresh = tokens.body["refreshToken"]
            .as_str()
            .expect("refresh")
            .to_string();

        // A refresh token works once.
        let refresh_body = |t: &str| json!({"clientId": id, "clientSecret": secret, "grantType": "refresh_token", "refreshToken": t});
        let refreshed = post(&base, "/sso-oidc/token", refresh_body(&refresh)).await;
        assert_eq!(refreshed.status, 200, "{backend}");
        assert_ne!(refreshed.body["accessToken"], access.as_str());
        let reused = post(&base, "/sso-oidc/token", refresh_body(&refresh)).await;
        assert_eq!(
            reused.kind, "InvalidGrantException",
            "{backend}: a refresh token works once"
        );

        // The portal API with the token; Logout ends it.
        let http = reqwest::Client::new();
        let roles: Value = http
            .get(format!("{base}/sso/assignment/roles?account_id={account}"))
            .header("x-amz-sso_bearer_token", &access)
            .send()
            .await
            .expect("roles")
            .json()
            .await
            .expect("json");
        assert_eq!(
            roles["roleList"][0]["roleName"], "Admin",
            "{backend}: {roles}"
        );
        let missing = http
            .get(format!("{base}/sso/assignment/roles"))
            .header("x-amz-sso_bearer_token", &access)
            .send()
            .await
            .expect("roles");
        assert_eq!(missing.status(), 400);
        let out = http
            .post(format!("{base}/sso/logout"))
            .header("x-amz-sso_bearer_token", &access)
            .send()
            .await
            .expect("logout");
        assert_eq!(out.status(), 200);
        let after = http
            .get(format!("{base}/sso/assignment/accounts"))
            .header("x-amz-sso_bearer_token", &access)
            .send()
            .await
            .expect("accounts");
        assert_eq!(after.status(), 401, "{backend}: logged out");
        let newer = refreshed.body["refreshToken"].as_str().expect("refresh");
        let after_logout = post(&base, "/sso-oidc/token", refresh_body(newer)).await;
        assert_eq!(
            after_logout.kind, "InvalidGrantException",
            "{backend}: Logout ends the refresh token too"
        );

        running.run_until(async {}).await.expect("stop");
        db.drop_db().await;
    }
}
