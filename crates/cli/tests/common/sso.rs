//! What the IAM Identity Center tests share: the administrator's AWS CLI
//! with every Identity Center endpoint, and a browser's side of the portal
//! (cookies, forms, redirects) without a browser.

use serde_json::Value;

use super::{aws_bin, text, Server};

/// The administrator's keys and the server, for AWS CLI calls.
pub struct Admin<'a> {
    pub server: &'a Server,
    pub key_id: String,
    pub secret: String,
}

impl Admin<'_> {
    pub fn aws(&self, args: &[&str]) -> Result<Value, String> {
        let out = super::client(
            &aws_bin().join("aws"),
            self.server,
            &self.key_id,
            &self.secret,
        )
        .env(
            "AWS_ENDPOINT_URL_ORGANIZATIONS",
            self.server.endpoint("organizations"),
        )
        .env(
            "AWS_ENDPOINT_URL_IDENTITYSTORE",
            self.server.endpoint("identitystore"),
        )
        .env(
            "AWS_ENDPOINT_URL_SSO_ADMIN",
            self.server.endpoint("sso-admin"),
        )
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

    pub fn ok(&self, args: &[&str]) -> Value {
        self.aws(args)
            .unwrap_or_else(|e| panic!("aws {args:?} failed: {e}"))
    }
}

/// A string member of `v` at `pointer`.
pub fn s(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} missing in {v}"))
        .to_string()
}

/// The browser's side of the portal, with its cookies.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: String,
    /// Every URL [`Browser::follow`] went through.
    pub visited: Vec<String>,
}

impl Browser {
    /// A browser with no cookies, for `server`'s portal.
    pub fn new(server: &Server) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: format!("http://{}", server.addr),
            cookie: String::new(),
            visited: Vec::new(),
        }
    }

    /// `GET base+path`: status and body (redirects not followed).
    pub async fn get(&mut self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("GET");
        self.keep_cookies(&r);
        (r.status().as_u16(), r.text().await.expect("body"))
    }

    /// `POST base+path` as a same-origin form.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("origin", &self.base)
            .form(form)
            .send()
            .await
            .expect("POST");
        self.keep_cookies(&r);
        r
    }

    /// Takes the response's cookies, replacing those of the same name
    /// (cookies are per host, whatever the port, as in a browser).
    pub fn keep_cookies(&mut self, r: &reqwest::Response) {
        for value in r.headers().get_all("set-cookie") {
            let pair = value
                .to_str()
                .expect("cookie")
                .split(';')
                .next()
                .unwrap_or("");
            let name = pair.split('=').next().unwrap_or("");
            let mut kept: Vec<String> = self
                .cookie
                .split("; ")
                .filter(|c| !c.is_empty() && !c.starts_with(&format!("{name}=")))
                .map(str::to_string)
                .collect();
            if !pair.ends_with('=') {
                kept.push(pair.to_string());
            }
            self.cookie = kept.join("; ");
        }
    }

    /// `GET url` (absolute), following redirects while keeping cookies;
    /// the final URL, status and body.
    pub async fn follow(&mut self, url: &str) -> (String, u16, String) {
        let mut url = url.to_string();
        for _ in 0..20 {
            self.visited.push(url.clone());
            let r = self
                .http
                .get(&url)
                .header("cookie", &self.cookie)
                .send()
                .await
                .expect("GET");
            self.keep_cookies(&r);
            let status = r.status().as_u16();
            if !(300..400).contains(&status) {
                return (url, status, r.text().await.expect("body"));
            }
            let location = r.headers()["location"]
                .to_str()
                .expect("location")
                .to_string();
            url = r.url().join(&location).expect("location URL").to_string();
        }
        panic!("too many redirects from {url}");
    }

    /// Submits the first form of `page` (at `page_url`) with its hidden
    /// fields plus `fields`, and follows the redirects; as [`Browser::follow`].
    pub async fn submit(
        &mut self,
        page_url: &str,
        page: &str,
        fields: &[(&str, &str)],
    ) -> (String, u16, String) {
        let at = page.find("<form").expect("a form");
        let form = &page[at..];
        let action = attr(form, "action").expect("form action");
        let action = reqwest::Url::parse(page_url)
            .expect("page URL")
            .join(&action.replace("&amp;", "&"))
            .expect("action URL");
        let mut body: Vec<(String, String)> = Vec::new();
        let end = form.find("</form>").unwrap_or(form.len());
        for input in form[..end].split("<input").skip(1) {
            if attr(input, "type").as_deref() == Some("hidden") {
                if let (Some(n), Some(v)) = (attr(input, "name"), attr(input, "value")) {
                    body.push((n, v));
                }
            }
        }
        for (k, v) in fields {
            body.push(((*k).to_string(), (*v).to_string()));
        }
        let origin = action.origin().ascii_serialization();
        let r = self
            .http
            .post(action.clone())
            .header("cookie", &self.cookie)
            .header("origin", origin)
            .form(&body)
            .send()
            .await
            .expect("POST");
        self.keep_cookies(&r);
        let status = r.status().as_u16();
        if !(300..400).contains(&status) {
            return (action.to_string(), status, r.text().await.expect("body"));
        }
        let location = r.headers()["location"]
            .to_str()
            .expect("location")
            .to_string();
        let next = action.join(&location).expect("location URL").to_string();
        self.follow(&next).await
    }

    /// A cookie's value.
    pub fn cookie_value(&self, name: &str) -> Option<String> {
        self.cookie
            .split("; ")
            .find_map(|c| c.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    }
}

/// The value of the first hidden `csrf` field of a page.
pub fn csrf_of(page: &str) -> String {
    let at = page.find(r#"name="csrf" value=""#).expect("csrf field");
    let rest = &page[at + r#"name="csrf" value=""#.len()..];
    rest[..rest.find('"').expect("end")].to_string()
}

/// The value of attribute `name` in the first tag of `html`.
fn attr(html: &str, name: &str) -> Option<String> {
    let tag = &html[..html.find('>').unwrap_or(html.len())];
    let key = format!("{name}=\"");
    let at = tag.find(&key)? + key.len();
    let rest = &tag[at..];
    Some(rest[..rest.find('"')?].to_string())
}
