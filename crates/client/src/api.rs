//! Signed calls of the CloudShell API (`POST <endpoint>/<lowerCamelOp>`, a
//! JSON body, SigV4 with service `cloudshell`).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use serde_json::{json, Value};

/// Why a call failed, in the classes the command line maps to exit codes.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The service answered with an error (`{code, message}`).
    #[error("An error occurred ({code}) when calling the {operation} operation: {message}")]
    Service {
        /// The PascalCase operation.
        operation: String,
        /// The HTTP status.
        status: u16,
        /// The error code (`x-amzn-ErrorType` or the body's `code`).
        code: String,
        /// The error message.
        message: String,
    },
    /// No credentials could be found or loaded.
    #[error("Unable to locate credentials: {0}")]
    Credentials(String),
    /// The request could not be signed.
    #[error("cannot sign the request: {0}")]
    Signing(String),
    /// The endpoint could not be reached, or the answer not read.
    #[error("Could not connect to the endpoint URL: \"{url}\": {reason}")]
    Connect {
        /// The URL called.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The answer was not what the API sends.
    #[error("unexpected answer from {url}: {reason}")]
    Protocol {
        /// The URL called.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
}

/// Timeouts of the HTTP connection (`--cli-connect-timeout`,
/// `--cli-read-timeout`; `None` waits forever, as 0 means in the AWS CLI).
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Time to establish the connection.
    pub connect: Option<Duration>,
    /// Time to wait for each read.
    pub read: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Some(Duration::from_secs(60)),
            read: Some(Duration::from_secs(60)),
        }
    }
}

/// A client of one CloudShell endpoint, in one region, with one identity.
#[derive(Clone, Debug)]
pub struct CloudShell {
    endpoint: String,
    region: String,
    credentials: SharedCredentialsProvider,
    http: reqwest::Client,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// Builds the HTTP client every part of the library uses, trusting what
/// `tls` trusts (see [`crate::tls::client_config`]).
pub fn http_client(
    timeouts: Timeouts,
    tls: &Arc<rustls::ClientConfig>,
) -> Result<reqwest::Client, ApiError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("seashell-cli/", env!("CARGO_PKG_VERSION")))
        .use_preconfigured_tls(rustls::ClientConfig::clone(tls));
    if let Some(t) = timeouts.connect {
        builder = builder.connect_timeout(t);
    }
    if let Some(t) = timeouts.read {
        builder = builder.read_timeout(t);
    }
    builder.build().map_err(|e| ApiError::Connect {
        url: String::new(),
        reason: e.to_string(),
    })
}

/// `"describeEnvironments"` → `"DescribeEnvironments"`.
pub fn pascal_case(operation: &str) -> String {
    let mut chars = operation.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

impl CloudShell {
    /// A client of `endpoint` (the CloudShell base, e.g.
    /// `http://127.0.0.1:8080/cloudshell`).
    pub fn new(
        endpoint: &str,
        region: &str,
        credentials: SharedCredentialsProvider,
        http: reqwest::Client,
    ) -> CloudShell {
        CloudShell {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            region: region.to_string(),
            credentials,
            http,
            tls: None,
        }
    }

    /// The same client, opening `wss://` data channels with `tls` (the
    /// configuration its HTTP client was built with).
    pub fn with_tls(mut self, tls: Arc<rustls::ClientConfig>) -> CloudShell {
        self.tls = Some(tls);
        self
    }

    /// The TLS configuration for data channels, if one was given.
    pub fn tls(&self) -> Option<&Arc<rustls::ClientConfig>> {
        self.tls.as_ref()
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The region requests are signed for.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The HTTP client (for the pre-signed file URLs).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Calls `operation` (lowerCamel, e.g. `describeEnvironments`) with
    /// `body`; the reply's JSON body.
    #[tracing::instrument(level = "debug", skip(self, body), fields(endpoint = %self.endpoint))]
    pub async fn call(&self, operation: &str, body: &Value) -> Result<Value, ApiError> {
        let url = format!("{}/{operation}", self.endpoint);
        let text = body.to_string();
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| ApiError::Credentials(error_chain(&e)))?;
        let identity = credentials.into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("cloudshell")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| ApiError::Signing(e.to_string()))?
            .into();
        let headers = [("content-type", "application/json")];
        let signable = SignableRequest::new(
            "POST",
            &url,
            headers.iter().copied(),
            SignableBody::Bytes(text.as_bytes()),
        )
        .map_err(|e| ApiError::Signing(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| ApiError::Signing(e.to_string()))?
            .into_parts();
        let mut request = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(text);
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        tracing::debug!(%url, "sending request");
        let reply = request.send().await.map_err(|e| ApiError::Connect {
            url: url.clone(),
            reason: error_chain(&e),
        })?;
        let status = reply.status().as_u16();
        let header_code = reply
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            // The header may carry `Code:uri`, as AWS services send it.
            .map(|v| v.split(':').next().unwrap_or(v).to_string());
        let bytes = reply.bytes().await.map_err(|e| ApiError::Connect {
            url: url.clone(),
            reason: error_chain(&e),
        })?;
        tracing::debug!(status, bytes = bytes.len(), "received answer");
        let parsed: Option<Value> = if bytes.is_empty() {
            Some(json!({}))
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        if (200..300).contains(&status) {
            return parsed.ok_or_else(|| ApiError::Protocol {
                url,
                reason: format!("the body is not JSON (HTTP {status})"),
            });
        }
        let body = parsed.unwrap_or(Value::Null);
        let field = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| body.get(*n).and_then(Value::as_str))
                .map(str::to_string)
        };
        let code = header_code
            .or_else(|| field(&["code", "Code", "__type"]))
            .unwrap_or_else(|| format!("HTTP{status}"));
        let message = field(&["message", "Message"]).unwrap_or_else(|| {
            String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned()
        });
        Err(ApiError::Service {
            operation: pascal_case(operation),
            status,
            code,
            message,
        })
    }
}

/// An error and its sources, as one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_as_the_errors_say() {
        assert_eq!(pascal_case("describeEnvironments"), "DescribeEnvironments");
        assert_eq!(pascal_case(""), "");
    }

    #[test]
    fn service_errors_read_as_the_aws_cli_prints_them() {
        let e = ApiError::Service {
            operation: "GetEnvironmentStatus".into(),
            status: 404,
            code: "ResourceNotFoundException".into(),
            message: "no such environment".into(),
        };
        assert_eq!(
            e.to_string(),
            "An error occurred (ResourceNotFoundException) when calling the GetEnvironmentStatus operation: no such environment"
        );
    }
}
