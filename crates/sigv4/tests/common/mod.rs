//! Helpers shared by the integration tests: an owned request that lends
//! itself as a `seashell_sigv4::Request`, and signing with the `aws-sigv4`
//! crate, AWS's own Rust signer, as the reference.

#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use seashell_sigv4::{Payload, Request};

pub const AKID: &str = "AKIDEXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// 2015-08-30T12:36:00Z, the test suite's clock.
pub fn suite_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

/// A request that owns its parts.
#[derive(Debug, Clone, Default)]
pub struct OwnedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl OwnedRequest {
    pub fn header_refs(&self) -> Vec<(&str, &[u8])> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect()
    }

    /// Lends the request to `f` as a `seashell_sigv4::Request`.
    pub fn with<R>(&self, f: impl FnOnce(&Request<'_>) -> R) -> R {
        let headers = self.header_refs();
        let req = Request {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            payload: Payload::Bytes(&self.body),
        };
        f(&req)
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub fn set_header(&mut self, name: &str, value: &[u8]) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_vec()));
    }

    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}

/// How to sign with `aws-sigv4`.
#[derive(Debug, Clone)]
pub struct SignSpec<'a> {
    pub method: &'a str,
    /// Absolute URI, already percent-encoded as it will be sent.
    pub uri: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
    pub service: &'a str,
    pub region: &'a str,
    pub time: SystemTime,
    pub session_token: Option<&'a str>,
    /// `Some(expiry)` for a pre-signed URL.
    pub presign: Option<Duration>,
    /// Sign `UNSIGNED-PAYLOAD` instead of the body's hash.
    pub unsigned_body: bool,
    pub secret: &'a str,
}

impl<'a> SignSpec<'a> {
    pub fn new(method: &'a str, uri: &'a str, service: &'a str, region: &'a str) -> Self {
        SignSpec {
            method,
            uri,
            headers: Vec::new(),
            body: b"",
            service,
            region,
            time: suite_time(),
            session_token: None,
            presign: None,
            unsigned_body: false,
            secret: SECRET,
        }
    }
}

/// Signs with `aws-sigv4` and returns the request as the server receives
/// it: raw path and query, the signer's headers plus `host`.
pub fn sign_with_aws(spec: &SignSpec<'_>) -> OwnedRequest {
    let identity: Identity = Credentials::new(
        AKID,
        spec.secret,
        spec.session_token.map(str::to_owned),
        None,
        "test",
    )
    .into();
    let mut settings = SigningSettings::default();
    if let Some(expiry) = spec.presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expiry);
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(spec.region)
        .name(spec.service)
        .time(spec.time)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let body = if spec.unsigned_body {
        SignableBody::UnsignedPayload
    } else {
        SignableBody::Bytes(spec.body)
    };
    let signable = SignableRequest::new(spec.method, spec.uri, spec.headers.iter().copied(), body)
        .expect("signable request");
    let (instructions, _signature) = sign(signable, &params).expect("sign").into_parts();

    let mut builder = http::Request::builder().method(spec.method).uri(spec.uri);
    for (name, value) in &spec.headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder.body(()).expect("http request");
    instructions.apply_to_request_http1x(&mut request);

    let uri = request.uri().clone();
    let authority = uri.authority().expect("absolute uri").as_str().to_owned();
    let mut headers = vec![("host".to_owned(), authority.into_bytes())];
    for (name, value) in request.headers() {
        headers.push((name.as_str().to_owned(), value.as_bytes().to_vec()));
    }
    OwnedRequest {
        method: spec.method.to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers,
        body: spec.body.to_vec(),
    }
}
