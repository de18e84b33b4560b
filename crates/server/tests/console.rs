//! The web console's server side, on SQLite and PostgreSQL: the embedded
//! page and assets with their Content-Security-Policy, sign-in answering
//! the page's script in JSON, sign-in refused from a foreign origin, and
//! the per-user preferences with their CSRF check, and the CSRF check of
//! cookie-authenticated CloudShell calls. (The console itself is
//! tested in a browser: crates/cli/tests/console_browser.rs.)

mod common;

use seashell_server::console::CONTENT_SECURITY_POLICY;
use serde_json::Value;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test(flavor = "multi_thread")]
async fn page_signin_and_preferences() {
    for db in common::databases().await {
        let backend = db.backend;
        let running = seashell_server::start(common::server_config(&db))
            .await
            .expect("start");
        let base = format!("http://{}", running.local_addr);
        let account = running.first_account.account_id.clone();
        let one_time = running
            .first_account
            .new_password
            .clone()
            .expect("one-time password");
        let http = client();

        // The page and the scripts it names, all under the policy.
        let page = http.get(format!("{base}/")).send().await.expect("page");
        assert_eq!(page.status(), 200);
        assert_eq!(
            page.headers()["content-security-policy"],
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(page.headers()["x-frame-options"], "DENY");
        // The server-rendered sign-in pages (the no-script fallback) too,
        // the form and a refusal alike.
        let form = http
            .get(format!("{base}/signin"))
            .send()
            .await
            .expect("form");
        let refused = http
            .post(format!("{base}/signin"))
            .form(&[("account", "nobody"), ("username", "x"), ("password", "y")])
            .send()
            .await
            .expect("refusal");
        for r in [&form, &refused] {
            assert_eq!(
                r.headers()["content-security-policy"],
                CONTENT_SECURITY_POLICY
            );
            assert_eq!(r.headers()["x-frame-options"], "DENY");
            assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        }
        let html = page.text().await.expect("html");
        let script = html
            .split("src=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("a script")
            .to_string();
        assert!(script.starts_with("/assets/"), "{html}");
        assert!(!html.contains("<script>"), "no inline script: {html}");
        let js = http
            .get(format!("{base}{script}"))
            .send()
            .await
            .expect("js");
        assert_eq!(js.status(), 200);
        assert!(js.headers()["content-type"]
            .to_str()
            .expect("type")
            .contains("javascript"));
        assert!(js.bytes().await.expect("bytes").len() > 10_000);
        let missing = http
            .get(format!("{base}/assets/nothing.js"))
            .send()
            .await
            .expect("404");
        assert_eq!(missing.status(), 404);

        // Sign-in from another site's page is refused before anything is
        // checked.
        let form = [
            ("account", account.as_str()),
            ("username", "admin"),
            ("password", one_time.as_str()),
            ("new_password", "Console-test-2026!"),
        ];
        let foreign = http
            .post(format!("{base}/signin/password"))
            .header("origin", "https://evil.example")
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .expect("foreign");
        assert_eq!(foreign.status(), 403, "{backend}");

        // The page's script gets JSON: a refusal with its code, then the
        // session's cookies.
        let wrong = http
            .post(format!("{base}/signin"))
            .header("origin", &base)
            .header("accept", "application/json")
            .form(&[
                ("account", account.as_str()),
                ("username", "admin"),
                ("password", "wrong"),
            ])
            .send()
            .await
            .expect("wrong");
        assert_eq!(wrong.status(), 401);
        let body: Value = wrong.json().await.expect("json");
        assert_eq!(body["code"], "Failed");
        assert_eq!(body["message"], seashell_server::signin::GENERIC_FAILURE);
        let change = http
            .post(format!("{base}/signin"))
            .header("origin", &base)
            .header("accept", "application/json")
            .form(&form[..3])
            .send()
            .await
            .expect("change");
        assert_eq!(change.status(), 403);
        let body: Value = change.json().await.expect("json");
        assert_eq!(body["code"], "PasswordChangeRequired");
        let ok = http
            .post(format!("{base}/signin/password"))
            .header("origin", &base)
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .expect("sign in");
        assert_eq!(ok.status(), 200, "{backend}");
        let mut cookie = Vec::new();
        let mut csrf = String::new();
        for v in ok.headers().get_all("set-cookie") {
            let pair = v
                .to_str()
                .expect("cookie")
                .split(';')
                .next()
                .unwrap_or_default()
                .to_string();
            if let Some(token) = pair.strip_prefix("seashell_csrf=") {
                csrf = token.to_string();
            }
            cookie.push(pair);
        }
        let cookie = cookie.join("; ");
        let who: Value = http
            .get(format!("{base}/whoami"))
            .header("cookie", &cookie)
            .send()
            .await
            .expect("whoami")
            .json()
            .await
            .expect("json");
        assert_eq!(who["UserName"], "admin");
        assert_eq!(who["Regions"][0], "us-east-1");

        // Preferences: none at first, saved with the CSRF token only, kept.
        let get = |c: &str| {
            http.get(format!("{base}/console/preferences"))
                .header("cookie", c.to_string())
                .send()
        };
        assert_eq!(
            get(&cookie).await.expect("get").text().await.expect("text"),
            "{}"
        );
        assert_eq!(get("").await.expect("anonymous").status(), 401);
        let put = |token: &str, body: &str| {
            http.put(format!("{base}/console/preferences"))
                .header("cookie", &cookie)
                .header("x-csrf-token", token.to_string())
                .body(body.to_string())
                .send()
        };
        let prefs = r#"{"fontSize":"large","theme":"dark","safePaste":false}"#;
        assert_eq!(put("wrong", prefs).await.expect("put").status(), 403);
        assert_eq!(put(&csrf, "[1]").await.expect("put").status(), 400);
        let big = format!("{{\"x\":\"{}\"}}", "a".repeat(5000));
        assert_eq!(put(&csrf, &big).await.expect("put").status(), 413);
        assert_eq!(put(&csrf, prefs).await.expect("put").status(), 204);
        let saved: Value = get(&cookie).await.expect("get").json().await.expect("json");
        assert_eq!(saved["theme"], "dark");
        assert_eq!(saved["safePaste"], false);

        // A CloudShell call with the session cookie needs the session's CSRF
        // token: without it, or with another, it is refused before anything
        // is done, so another site's form or fetch cannot act as the user.
        let call = |token: Option<String>| {
            let mut r = http
                .post(format!("{base}/cloudshell/createEnvironment"))
                .header("cookie", &cookie)
                .json(&serde_json::json!({}));
            if let Some(t) = token {
                r = r.header("x-csrf-token", t);
            }
            r.send()
        };
        for token in [None, Some("wrong".to_string()), Some(String::new())] {
            let refused = call(token.clone()).await.expect("call");
            assert_eq!(refused.status(), 403, "{backend}: {token:?}");
            let body: Value = refused.json().await.expect("json");
            assert_eq!(body["code"], "InvalidCsrfToken", "{backend}: {token:?}");
        }
        let listed = http
            .post(format!("{base}/cloudshell/describeEnvironments"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("describe");
        assert_eq!(listed.status(), 200, "{backend}");
        let listed: Value = listed.json().await.expect("json");
        assert_eq!(
            listed["Environments"].as_array().map(Vec::len),
            Some(0),
            "{backend}: the refused calls created nothing"
        );

        // Sign-out in JSON, then the preferences are out of reach.
        let out = http
            .post(format!("{base}/signout"))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("accept", "application/json")
            .send()
            .await
            .expect("signout");
        assert_eq!(out.status(), 204);
        assert_eq!(get(&cookie).await.expect("get").status(), 401);

        running.run_until(async {}).await.expect("stop");
        db.drop_db().await;
    }
}

/// Behind a TLS-terminating proxy (`public_url` of `https://`, no TLS of
/// its own) the session cookies are `Secure` and every response carries
/// HSTS; over plain HTTP neither, or the browser would drop the cookies.
#[tokio::test(flavor = "multi_thread")]
async fn behind_a_tls_proxy_cookies_are_secure_and_hsts_is_sent() {
    for public in [Some("https://shell.example.test"), None] {
        let db = common::sqlite().await;
        let mut config = common::server_config(&db);
        config.public_url = public.map(str::to_owned);
        let running = seashell_server::start(config).await.expect("start");
        let base = format!("http://{}", running.local_addr);
        let http = client();
        let signed_in = common::first_console_sign_in(&running).await;
        assert_eq!(signed_in.status(), 303, "{public:?}");
        let cookies: Vec<String> = signed_in
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().expect("ascii").to_string())
            .collect();
        assert!(
            cookies.iter().any(|c| c.starts_with("seashell_session=")),
            "{cookies:?}"
        );
        let health = http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("health");
        match public {
            Some(_) => {
                assert!(
                    cookies.iter().all(|c| c.contains("; Secure")),
                    "{cookies:?}"
                );
                for r in [&signed_in, &health] {
                    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
                }
            }
            None => {
                assert!(cookies.iter().all(|c| !c.contains("Secure")), "{cookies:?}");
                assert!(health.headers().get("strict-transport-security").is_none());
            }
        }
        running.run_until(async {}).await.expect("stop");
    }
}
