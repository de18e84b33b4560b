//! Reading a request's SigV4 authentication, from the `Authorization` header
//! or from pre-signed query parameters, into a [`ParsedAuth`].
//!
//! Parsing is purely structural: it never looks at the clock, the endpoint's
//! configuration or any secret, and it never panics, whatever the input (it
//! is fuzzed). Values echoed into error messages are clipped so that a huge
//! header cannot make a huge response.

use std::time::SystemTime;

use crate::canonical::{parse_query, ALGORITHM};
use crate::signing_key::CredentialScope;
use crate::time::{self, UnixSeconds};
use crate::{Error, Request};

/// Where the signature was carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthLocation {
    /// `Authorization: AWS4-HMAC-SHA256 …` header.
    Header,
    /// Pre-signed URL (`X-Amz-Algorithm`, `X-Amz-Signature`, … in the query).
    Query {
        /// `X-Amz-Expires`: seconds after the request time the URL stays valid.
        expires_secs: u64,
    },
}

/// Which header supplied the request time (header authentication).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateSource {
    /// `X-Amz-Date` (header or, for pre-signed URLs, query parameter).
    XAmzDate,
    /// The HTTP `Date` header, used only when `X-Amz-Date` is absent.
    Date,
}

/// A request's authentication as sent, before any check.
///
/// `Debug` leaves out the session token, which is a credential.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedAuth {
    /// Header or query authentication.
    pub location: AuthLocation,
    /// The access key id from the credential.
    pub access_key_id: String,
    /// The credential scope (date, region, service).
    pub scope: CredentialScope,
    /// The signed header names, lower-cased, in the order the signer listed them.
    pub signed_headers: Vec<String>,
    /// The signature as sent (hex).
    pub signature: String,
    /// The request time in ISO-8601 basic format, as it enters the string to sign.
    pub amz_date: String,
    /// Which header or parameter supplied the request time.
    pub date_source: DateSource,
    /// `X-Amz-Security-Token`, if any: the server must check that it belongs
    /// to the access key and has not expired (`ExpiredToken`).
    pub session_token: Option<String>,
    /// `X-Amz-Content-Sha256`, if the client declared the payload hash.
    pub content_sha256: Option<String>,
    pub(crate) request_time: UnixSeconds,
}

impl std::fmt::Debug for ParsedAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedAuth")
            .field("location", &self.location)
            .field("access_key_id", &self.access_key_id)
            .field("scope", &self.scope)
            .field("signed_headers", &self.signed_headers)
            .field("signature", &self.signature)
            .field("amz_date", &self.amz_date)
            .field("date_source", &self.date_source)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("content_sha256", &self.content_sha256)
            .finish()
    }
}

impl ParsedAuth {
    /// The request time as a `SystemTime`.
    pub fn request_time(&self) -> SystemTime {
        time::from_unix(self.request_time)
    }
}

const CLIP: usize = 128;

/// Shortens user-supplied text for an error message, on a char boundary.
fn clip(s: &str) -> String {
    match s.char_indices().nth(CLIP) {
        Some((end, _)) => format!("{}...", &s[..end]),
        None => s.to_owned(),
    }
}

/// The value of a header that may appear at most once. Several copies or a
/// value that is not UTF-8 are reported as `Err(())`, which callers turn
/// into the error fitting the header.
fn single_header<'r>(req: &Request<'r>, name: &str) -> Result<Option<&'r str>, ()> {
    let mut found = None;
    for (n, v) in req.headers {
        if n.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return Err(());
            }
            found = Some(std::str::from_utf8(v).map_err(|_| ())?.trim());
        }
    }
    Ok(found)
}

/// Names of the query parameters that carry pre-signed authentication.
mod param {
    pub const ALGORITHM: &str = "X-Amz-Algorithm";
    pub const CREDENTIAL: &str = "X-Amz-Credential";
    pub const DATE: &str = "X-Amz-Date";
    pub const EXPIRES: &str = "X-Amz-Expires";
    pub const SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
    pub const SIGNATURE: &str = "X-Amz-Signature";
    pub const SECURITY_TOKEN: &str = "X-Amz-Security-Token";
    pub const CONTENT_SHA256: &str = "X-Amz-Content-Sha256";
}

pub(crate) use param::SECURITY_TOKEN as QUERY_SECURITY_TOKEN;
pub(crate) use param::SIGNATURE as QUERY_SIGNATURE;

/// Parses the request's authentication.
///
/// Errors: [`Error::MissingAuthentication`] when there is none,
/// [`Error::AmbiguousAuthentication`] when both forms are present, and the
/// `Malformed*`, [`Error::UnsupportedAlgorithm`], [`Error::InvalidTerminator`],
/// [`Error::MissingDate`] and [`Error::HeaderNotSigned`] variants for
/// structural faults.
pub fn parse(req: &Request<'_>) -> Result<ParsedAuth, Error> {
    let authorization = single_header(req, "authorization").map_err(|()| {
        Error::MalformedAuthorization("Only one UTF-8 Authorization header is allowed.".to_owned())
    })?;
    let query = QueryAuth::collect(req.query)?;
    match (authorization, query.is_present()) {
        (Some(_), true) => Err(Error::AmbiguousAuthentication),
        (Some(value), false) => parse_header_auth(req, value),
        (None, true) => parse_query_auth(req, query),
        (None, false) => Err(Error::MissingAuthentication),
    }
}

fn parse_header_auth(req: &Request<'_>, value: &str) -> Result<ParsedAuth, Error> {
    let (algorithm, components) = value.split_once(' ').unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(Error::UnsupportedAlgorithm(clip(algorithm)));
    }

    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for component in components
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        let Some((key, val)) = component.split_once('=') else {
            return Err(Error::MalformedAuthorization(format!(
                "Authorization header requires each component to be of the form 'key=value', got '{}'.",
                clip(component)
            )));
        };
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(Error::MalformedAuthorization(format!(
                    "Authorization header has an unknown component '{}'.",
                    clip(other)
                )))
            }
        };
        if slot.replace(val.trim()).is_some() {
            return Err(Error::MalformedAuthorization(format!(
                "Authorization header has component '{}' more than once.",
                clip(key.trim())
            )));
        }
    }

    let missing: String = [
        ("Credential", credential.is_none()),
        ("Signature", signature.is_none()),
        ("SignedHeaders", signed_headers.is_none()),
    ]
    .iter()
    .filter(|(_, absent)| *absent)
    .map(|(name, _)| format!("Authorization header requires '{name}' parameter. "))
    .collect();
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(Error::MalformedAuthorization(missing.trim_end().to_owned()));
    };

    let (access_key_id, scope) = parse_credential(credential)?;
    let signed_headers = parse_signed_headers(signed_headers).ok_or_else(|| {
        Error::MalformedAuthorization(format!(
            "SignedHeaders must be a ';'-separated list of header names, got '{}'.",
            clip(signed_headers)
        ))
    })?;

    let (amz_date, request_time, date_source) = header_date(req)?;

    let session_token = single_header(req, "x-amz-security-token")
        .map_err(|()| {
            Error::MalformedAuthorization(
                "Only one UTF-8 X-Amz-Security-Token header is allowed.".to_owned(),
            )
        })?
        .map(str::to_owned);
    let content_sha256 = declared_content_sha256(req)?;

    let auth = ParsedAuth {
        location: AuthLocation::Header,
        access_key_id,
        scope,
        signed_headers,
        signature: signature.to_owned(),
        amz_date,
        date_source,
        session_token,
        content_sha256,
        request_time,
    };
    require_signed(&auth, "host")?;
    // AWS requires the header that dates the request to be signed, so the
    // date a replay would have to forge is covered twice.
    match auth.date_source {
        DateSource::XAmzDate => require_signed(&auth, "x-amz-date")?,
        DateSource::Date => require_signed(&auth, "date")?,
    }
    Ok(auth)
}

fn header_date(req: &Request<'_>) -> Result<(String, UnixSeconds, DateSource), Error> {
    let x_amz_date = single_header(req, "x-amz-date")
        .map_err(|()| Error::MalformedDate("multiple X-Amz-Date headers".to_owned()))?;
    if let Some(value) = x_amz_date {
        let t = time::parse_amz_date(value).ok_or_else(|| Error::MalformedDate(clip(value)))?;
        return Ok((value.to_owned(), t, DateSource::XAmzDate));
    }
    let date = single_header(req, "date")
        .map_err(|()| Error::MalformedDate("multiple Date headers".to_owned()))?;
    match date {
        Some(value) => {
            let t =
                time::parse_http_date(value).ok_or_else(|| Error::MalformedDate(clip(value)))?;
            Ok((time::format_amz_date(t), t, DateSource::Date))
        }
        None => Err(Error::MissingDate),
    }
}

fn declared_content_sha256(req: &Request<'_>) -> Result<Option<String>, Error> {
    single_header(req, "x-amz-content-sha256")
        .map(|v| v.map(str::to_owned))
        .map_err(|()| Error::InvalidContentSha256("several values".to_owned()))
}

fn require_signed(auth: &ParsedAuth, name: &'static str) -> Result<(), Error> {
    if auth.signed_headers.iter().any(|h| h == name) {
        Ok(())
    } else {
        Err(Error::HeaderNotSigned(name))
    }
}

/// Splits `AKID/YYYYMMDD/region/service/aws4_request`.
fn parse_credential(credential: &str) -> Result<(String, CredentialScope), Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, terminator] = parts.as_slice() else {
        return Err(Error::MalformedCredential(clip(credential)));
    };
    let well_formed = !akid.is_empty()
        && date.len() == 8
        && date.bytes().all(|b| b.is_ascii_digit())
        && !region.is_empty()
        && !service.is_empty();
    if !well_formed {
        return Err(Error::MalformedCredential(clip(credential)));
    }
    if *terminator != "aws4_request" {
        return Err(Error::InvalidTerminator(clip(terminator)));
    }
    Ok((
        (*akid).to_owned(),
        CredentialScope::new(*date, *region, *service),
    ))
}

/// Splits `host;x-amz-date`: names must be non-empty HTTP tokens. Returned
/// lower-cased, since canonical header names are.
fn parse_signed_headers(list: &str) -> Option<Vec<String>> {
    let is_token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    list.split(';')
        .map(|name| {
            (!name.is_empty() && name.bytes().all(is_token_char)).then(|| name.to_ascii_lowercase())
        })
        .collect()
}

/// The authentication parameters found in a query string.
#[derive(Default)]
struct QueryAuth {
    algorithm: Option<String>,
    credential: Option<String>,
    date: Option<String>,
    expires: Option<String>,
    signed_headers: Option<String>,
    signature: Option<String>,
    security_token: Option<String>,
    content_sha256: Option<String>,
}

const QUERY_REQUIRED: &str = "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.";

impl QueryAuth {
    fn collect(raw_query: &str) -> Result<Self, Error> {
        let mut found = QueryAuth::default();
        for (name, value) in parse_query(raw_query) {
            let slot = match name.as_slice() {
                n if n == param::ALGORITHM.as_bytes() => &mut found.algorithm,
                n if n == param::CREDENTIAL.as_bytes() => &mut found.credential,
                n if n == param::DATE.as_bytes() => &mut found.date,
                n if n == param::EXPIRES.as_bytes() => &mut found.expires,
                n if n == param::SIGNED_HEADERS.as_bytes() => &mut found.signed_headers,
                n if n == param::SIGNATURE.as_bytes() => &mut found.signature,
                n if n == param::SECURITY_TOKEN.as_bytes() => &mut found.security_token,
                n if n == param::CONTENT_SHA256.as_bytes() => &mut found.content_sha256,
                _ => continue,
            };
            let name = String::from_utf8_lossy(&name).into_owned();
            let value = String::from_utf8(value).map_err(|_| {
                Error::MalformedQueryAuthentication(format!("{name} must be UTF-8."))
            })?;
            if slot.replace(value).is_some() {
                return Err(Error::MalformedQueryAuthentication(format!(
                    "{name} must appear only once."
                )));
            }
        }
        Ok(found)
    }

    /// Whether the query attempts pre-signed authentication at all. Any of
    /// the three parameters that only a signer adds counts, so a URL that
    /// lost its algorithm is reported as incomplete rather than unsigned.
    fn is_present(&self) -> bool {
        self.algorithm.is_some() || self.credential.is_some() || self.signature.is_some()
    }
}

fn parse_query_auth(req: &Request<'_>, q: QueryAuth) -> Result<ParsedAuth, Error> {
    let required = || Error::MalformedQueryAuthentication(QUERY_REQUIRED.to_owned());
    let algorithm = q.algorithm.ok_or_else(required)?;
    if algorithm != ALGORITHM {
        return Err(Error::UnsupportedAlgorithm(clip(&algorithm)));
    }
    let (Some(credential), Some(date), Some(expires), Some(signed_headers), Some(signature)) = (
        q.credential,
        q.date,
        q.expires,
        q.signed_headers,
        q.signature,
    ) else {
        return Err(required());
    };

    let (access_key_id, scope) = parse_credential(&credential)?;
    let signed_headers = parse_signed_headers(&signed_headers).ok_or_else(|| {
        Error::MalformedQueryAuthentication(format!(
            "X-Amz-SignedHeaders must be a ';'-separated list of header names, got '{}'.",
            clip(&signed_headers)
        ))
    })?;
    let request_time =
        time::parse_amz_date(&date).ok_or_else(|| Error::MalformedDate(clip(&date)))?;
    // Digits only: `u64::from_str` would also take a leading '+'.
    let expires_secs = Some(expires.as_str())
        .filter(|e| !e.is_empty() && e.len() <= 19 && e.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|e| e.parse::<u64>().ok())
        .ok_or_else(|| {
            Error::MalformedQueryAuthentication("X-Amz-Expires should be a number".to_owned())
        })?;

    let content_sha256 = match declared_content_sha256(req)? {
        Some(header) => Some(header),
        None => q.content_sha256,
    };

    let auth = ParsedAuth {
        location: AuthLocation::Query { expires_secs },
        access_key_id,
        scope,
        signed_headers,
        signature,
        amz_date: date,
        date_source: DateSource::XAmzDate,
        session_token: q.security_token,
        content_sha256,
        request_time,
    };
    require_signed(&auth, "host")?;
    Ok(auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_respects_char_boundaries() {
        let long = "é".repeat(200);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), CLIP + 3);
        assert_eq!(clip("short"), "short");
    }

    #[test]
    fn credential_parts() {
        let (akid, scope) =
            parse_credential("AKID/20150830/us-east-1/iam/aws4_request").expect("valid");
        assert_eq!(akid, "AKID");
        assert_eq!(scope, CredentialScope::new("20150830", "us-east-1", "iam"));
        assert!(parse_credential("AKID/2015083a/us-east-1/iam/aws4_request").is_err());
        assert!(parse_credential("").is_err());
        assert!(parse_credential("////").is_err());
    }

    #[test]
    fn signed_header_lists() {
        assert_eq!(
            parse_signed_headers("Host;x-amz-date"),
            Some(vec!["host".to_owned(), "x-amz-date".to_owned()])
        );
        assert_eq!(parse_signed_headers(""), None);
        assert_eq!(parse_signed_headers("host;"), None);
        assert_eq!(parse_signed_headers("ho st"), None);
        assert_eq!(parse_signed_headers("host:x"), None);
    }
}
