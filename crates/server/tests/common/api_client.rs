//! A client for the CloudShell API signed with the AWS SDK's SigV4 signer.
//! Self-contained, so other crates' tests can include it with `#[path]`.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A SigV4-signing client of one server's CloudShell API.
#[derive(Clone)]
pub struct Api {
    /// `http://127.0.0.1:port`.
    pub base: String,
    key: (String, String, Option<String>),
    region: String,
    http: reqwest::Client,
}

/// An answer: status, error code (from `x-amzn-ErrorType`) and body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The error code, for errors.
    pub code: Option<String>,
    /// The JSON body.
    pub body: Value,
}

impl Answer {
    /// The body, or a panic naming the error.
    pub fn ok(self) -> Value {
        assert_eq!(self.status, 200, "{self:?}");
        self.body
    }

    /// The error code, or a panic if the call succeeded.
    pub fn err(&self) -> &str {
        assert_ne!(self.status, 200, "expected an error: {self:?}");
        self.code.as_deref().unwrap_or_default()
    }
}

impl Api {
    /// A client with a long-term access key, in us-east-1.
    pub fn new(base: &str, key: (&str, &str)) -> Api {
        Api {
            base: base.to_string(),
            key: (key.0.to_string(), key.1.to_string(), None),
            region: "us-east-1".into(),
            http: reqwest::Client::new(),
        }
    }

    /// The same caller in another region.
    pub fn in_region(&self, region: &str) -> Api {
        Api {
            region: region.to_string(),
            ..self.clone()
        }
    }

    /// Calls `operation` (lowerCamel) with `body`.
    pub async fn call(&self, operation: &str, body: Value) -> Answer {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
        let url = format!("{}/cloudshell/{operation}", self.base);
        let text = body.to_string();
        let identity = aws_credential_types::Credentials::new(
            &self.key.0,
            &self.key.1,
            self.key.2.clone(),
            None,
            "test",
        )
        .into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("cloudshell")
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .expect("signing params")
            .into();
        let headers = [("content-type", "application/json")];
        let signable = SignableRequest::new(
            "POST",
            &url,
            headers.iter().copied(),
            SignableBody::Bytes(text.as_bytes()),
        )
        .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        let mut req = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(text);
        for (name, value) in instructions.headers() {
            req = req.header(name, value);
        }
        let reply = req.send().await.expect("send");
        let status = reply.status().as_u16();
        let code = reply
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = reply.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, code, body }
    }

    /// createEnvironment (public) and its id.
    pub async fn create_environment(&self) -> String {
        let v = self.call("createEnvironment", json!({})).await.ok();
        v["EnvironmentId"]
            .as_str()
            .expect("EnvironmentId")
            .to_string()
    }

    /// Polls getEnvironmentStatus until `status` (or panics after 60 s).
    pub async fn wait_status(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self
                .call("getEnvironmentStatus", json!({"EnvironmentId": id}))
                .await
                .ok();
            if v["Status"] == status {
                return v;
            }
            assert!(Instant::now() < deadline, "{id} never became {status}: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A running environment's id.
    pub async fn running_environment(&self) -> String {
        let id = self.create_environment().await;
        self.call("startEnvironment", json!({"EnvironmentId": id}))
            .await
            .ok();
        self.wait_status(&id, "RUNNING").await;
        id
    }
}
