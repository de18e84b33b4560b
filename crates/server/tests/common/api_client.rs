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
    /// The JSON body (a string when it is not JSON).
    pub body: Value,
    /// `x-amzn-RequestId`: the `requestID` of the call's audit record.
    pub request_id: Option<String>,
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

    /// A client with temporary credentials (access key, secret, session
    /// token), in us-east-1.
    pub fn with_session(base: &str, key: (&str, &str, &str)) -> Api {
        Api {
            base: base.to_string(),
            key: (
                key.0.to_string(),
                key.1.to_string(),
                Some(key.2.to_string()),
            ),
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
        self.try_call(operation, body).await.expect("send")
    }

    /// Calls `operation` (lowerCamel) with `body`; an error if no answer
    /// came (the server is down, the connection was cut).
    pub async fn try_call(&self, operation: &str, body: Value) -> Result<Answer, String> {
        let url = format!("{}/cloudshell/{operation}", self.base);
        self.send_signed(
            "cloudshell",
            &url,
            &[("content-type", "application/json")],
            body.to_string(),
        )
        .await
    }

    /// An AWS Query call (`Action=…&Version=…`) to `service` (`iam`,
    /// `sts`), form-encoded; the XML reply is the body, as a string.
    pub async fn try_query(&self, service: &str, form: &str) -> Result<Answer, String> {
        let url = format!("{}/{service}/", self.base);
        self.send_signed(
            service,
            &url,
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            form.to_string(),
        )
        .await
    }

    /// A JSON 1.1 call (`X-Amz-Target: <target>`) to `service`, e.g.
    /// CloudTrail's `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`.
    pub async fn try_json11(
        &self,
        service: &str,
        target: &str,
        body: Value,
    ) -> Result<Answer, String> {
        let url = format!("{}/{service}/", self.base);
        self.send_signed(
            service,
            &url,
            &[
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", target),
            ],
            body.to_string(),
        )
        .await
    }

    async fn send_signed(
        &self,
        service: &str,
        url: &str,
        headers: &[(&str, &str)],
        text: String,
    ) -> Result<Answer, String> {
        use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
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
            .name(service)
            .time(std::time::SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .expect("signing params")
            .into();
        let signable = SignableRequest::new(
            "POST",
            url,
            headers.iter().copied(),
            SignableBody::Bytes(text.as_bytes()),
        )
        .expect("signable");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        let mut req = self.http.post(url).body(text);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        for (name, value) in instructions.headers() {
            req = req.header(name, value);
        }
        let reply = req.send().await.map_err(|e| e.to_string())?;
        let status = reply.status().as_u16();
        let header = |name: &str| {
            reply
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let code = header("x-amzn-errortype");
        let request_id = header("x-amzn-requestid");
        let text = reply.text().await.map_err(|e| e.to_string())?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer {
            status,
            code,
            body,
            request_id,
        })
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
