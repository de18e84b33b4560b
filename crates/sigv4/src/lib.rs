//! AWS Signature Version 4 verification for the Seashell server.
//!
//! Real AWS clients (the AWS CLI, boto3, the AWS SDKs) sign every request to
//! IAM, STS, CloudShell and CloudTrail with SigV4; this crate decides whether
//! such a signature is genuine, exactly as AWS does, and says why not in AWS's
//! own error codes and messages.
//!
//! It is pure: no I/O, no async, no clock of its own. The server describes
//! the request as a [`Request`], says what the endpoint accepts with a
//! [`ServiceConfig`], passes its clock, and supplies the signing key for the
//! access key id (derived with [`SigningKey::derive`], cacheable per key,
//! date, region and service).
//!
//! ```
//! use std::time::{Duration, SystemTime, UNIX_EPOCH};
//! use seashell_sigv4::{verify, Payload, Request, ServiceConfig, SigningKey};
//!
//! let headers: Vec<(&str, &[u8])> = vec![
//!     ("host", b"example.amazonaws.com"),
//!     ("x-amz-date", b"20150830T123600Z"),
//!     ("authorization", b"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
//! ];
//! let request = Request {
//!     method: "GET",
//!     path: "/",
//!     query: "",
//!     headers: &headers,
//!     payload: Payload::Bytes(b""),
//! };
//! let config = ServiceConfig::new("service", ["us-east-1"]);
//! let now = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
//! let verified = verify(&request, &config, now, |access_key_id, scope| {
//!     (access_key_id == "AKIDEXAMPLE")
//!         .then(|| SigningKey::derive("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", scope))
//! })
//! .map_err(|e| (e.code(), e.status(), e.to_string()))?;
//! assert_eq!(verified.access_key_id, "AKIDEXAMPLE");
//! assert_eq!(verified.region(), "us-east-1");
//! # Ok::<(), (&str, u16, String)>(())
//! ```
//!
//! A server whose key lookup is asynchronous uses the steps separately:
//! [`parse`], then [`ParsedAuth::check`] (no key needed), then its own
//! lookup, then [`ParsedAuth::verify`].

#![warn(missing_docs)]

mod canonical;
mod error;
mod parse;
mod signing_key;
mod time;
mod verify;

pub use canonical::{
    canonical_header_value, canonical_query, canonical_request, canonical_uri, sha256_hex,
    string_to_sign, uri_encode, CanonicalParts, ALGORITHM,
};
pub use error::Error;
pub use parse::{parse, AuthLocation, DateSource, ParsedAuth};
pub use signing_key::{CredentialScope, SigningKey};
pub use verify::{
    verify, ServiceConfig, Verified, DEFAULT_CLOCK_SKEW, MAX_PRESIGN_EXPIRY, UNSIGNED_PAYLOAD,
};

/// One request header as received: its name (any case) and raw value.
pub type Header<'a> = (&'a str, &'a [u8]);

/// The parts of an HTTP request that SigV4 covers, as they arrived.
///
/// The server adapts its `http::Request` to this: `path` and `query` are the
/// URI's raw (still percent-encoded) path and query string, and `headers`
/// must include `host` (for HTTP/2, the `:authority`), because hyper keeps
/// the authority in the URI rather than the header map.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The raw path exactly as received, e.g. `/iam` or
    /// `/cloudshell/createSession`: before any routing prefix is stripped,
    /// since the client signed the whole of it.
    pub path: &'a str,
    /// The raw query string without the `?` (empty if none).
    pub query: &'a str,
    /// Every header, in the order received (order matters for repeated ones).
    pub headers: &'a [Header<'a>],
    /// The body, or its digest.
    pub payload: Payload<'a>,
}

/// The request body as far as the signature is concerned.
#[derive(Clone, Copy)]
pub enum Payload<'a> {
    /// The whole body.
    Bytes(&'a [u8]),
    /// The SHA-256 digest of the body, computed by the caller (for example
    /// while streaming it to disk).
    Sha256([u8; 32]),
}

impl std::fmt::Debug for Request<'_> {
    // Header values and the query string carry signatures and session tokens;
    // a debug log must not become a credential store.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| *n).collect();
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query_len", &self.query.len())
            .field("header_names", &names)
            .field("payload", &self.payload)
            .finish()
    }
}

impl std::fmt::Debug for Payload<'_> {
    // Bodies can hold secrets (IAM passwords, access keys); print only sizes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Payload::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
            Payload::Sha256(d) => write!(f, "Sha256({})", hex::encode(d)),
        }
    }
}
