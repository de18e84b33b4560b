//! Checking a parsed authentication against the endpoint's configuration,
//! the server's clock and the caller's key.

use std::time::{Duration, SystemTime};

use crate::canonical::{self, CanonicalParts};
use crate::parse::{self, AuthLocation, ParsedAuth, QUERY_SECURITY_TOKEN, QUERY_SIGNATURE};
use crate::signing_key::{CredentialScope, SigningKey};
use crate::time::{self, UnixSeconds};
use crate::{Error, Payload, Request};

/// The payload-hash value that tells the verifier the body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The longest a pre-signed URL may live: AWS caps `X-Amz-Expires` at 7 days
/// because a signing key is itself only trusted for that long.
pub const MAX_PRESIGN_EXPIRY: Duration = Duration::from_secs(604_800);

/// The clock skew AWS tolerates between client and server.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// What one endpoint (one SigV4 service) accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// The service signing name the credential scope must carry (`iam`,
    /// `sts`, `cloudshell`, `cloudtrail`).
    pub service: String,
    /// The regions this server serves; a scope naming another is refused.
    pub regions: Vec<String>,
    /// Whether `X-Amz-Content-Sha256: UNSIGNED-PAYLOAD` is accepted (and, for
    /// pre-signed URLs without a declared hash, tried after the body hash).
    pub allow_unsigned_payload: bool,
    /// Whether the path is normalized before signing; true for every AWS
    /// service except S3.
    pub normalize_path: bool,
    /// How far the request time may be from the server's clock.
    pub max_clock_skew: Duration,
    /// The longest `X-Amz-Expires` accepted; never more than 7 days.
    pub max_presign_expiry: Duration,
    /// Whether a pre-signed URL's `X-Amz-Security-Token` was added after
    /// signing (left out of the canonical query), as a few AWS services
    /// expect. False for the services Seashell implements.
    pub query_session_token_unsigned: bool,
}

impl ServiceConfig {
    /// A configuration for `service` in `regions` with AWS's defaults:
    /// signed payloads only, normalized paths, 15 minutes of skew, pre-signed
    /// URLs valid for at most 7 days.
    pub fn new<I, S>(service: impl Into<String>, regions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ServiceConfig {
            service: service.into(),
            regions: regions.into_iter().map(Into::into).collect(),
            allow_unsigned_payload: false,
            normalize_path: true,
            max_clock_skew: DEFAULT_CLOCK_SKEW,
            max_presign_expiry: MAX_PRESIGN_EXPIRY,
            query_session_token_unsigned: false,
        }
    }

    /// Sets [`ServiceConfig::allow_unsigned_payload`].
    pub fn allow_unsigned_payload(mut self, allow: bool) -> Self {
        self.allow_unsigned_payload = allow;
        self
    }

    /// Sets [`ServiceConfig::normalize_path`].
    pub fn normalize_path(mut self, normalize: bool) -> Self {
        self.normalize_path = normalize;
        self
    }

    /// Sets [`ServiceConfig::max_clock_skew`].
    pub fn max_clock_skew(mut self, skew: Duration) -> Self {
        self.max_clock_skew = skew;
        self
    }

    /// Sets [`ServiceConfig::max_presign_expiry`], capped at 7 days.
    pub fn max_presign_expiry(mut self, expiry: Duration) -> Self {
        self.max_presign_expiry = expiry.min(MAX_PRESIGN_EXPIRY);
        self
    }

    /// Sets [`ServiceConfig::query_session_token_unsigned`].
    pub fn query_session_token_unsigned(mut self, unsigned: bool) -> Self {
        self.query_session_token_unsigned = unsigned;
        self
    }
}

/// A request whose signature checked out.
///
/// `Debug` leaves out the session token, which is a credential.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// The access key id that signed.
    pub access_key_id: String,
    /// The credential scope: signing date, region and service.
    pub scope: CredentialScope,
    /// The request time (`X-Amz-Date`).
    pub request_time: SystemTime,
    /// `X-Amz-Security-Token`, if sent. The server must check that it
    /// belongs to `access_key_id` and is unexpired (`ExpiredToken` if not).
    pub session_token: Option<String>,
    /// The headers the signature covers, lower-case.
    pub signed_headers: Vec<String>,
    /// For a pre-signed URL, when it stops being valid.
    pub presigned_until: Option<SystemTime>,
    /// Whether the body was left unsigned (`UNSIGNED-PAYLOAD`).
    pub unsigned_payload: bool,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("access_key_id", &self.access_key_id)
            .field("scope", &self.scope)
            .field("request_time", &self.request_time)
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("signed_headers", &self.signed_headers)
            .field("presigned_until", &self.presigned_until)
            .field("unsigned_payload", &self.unsigned_payload)
            .finish()
    }
}

impl Verified {
    /// The region from the credential scope (`aws:RequestedRegion`).
    pub fn region(&self) -> &str {
        &self.scope.region
    }

    /// The service from the credential scope.
    pub fn service(&self) -> &str {
        &self.scope.service
    }
}

impl ParsedAuth {
    /// Checks everything that needs no key: the scope's service, region and
    /// date, the request time against `now`, and `X-Amz-Expires`.
    ///
    /// Run it before looking up the key so that stale or misdirected
    /// requests cost no database read.
    pub fn check(&self, config: &ServiceConfig, now: SystemTime) -> Result<(), Error> {
        if self.scope.service != config.service {
            return Err(Error::WrongService {
                expected: config.service.clone(),
                got: self.scope.service.clone(),
            });
        }
        if !config.regions.contains(&self.scope.region) {
            return Err(Error::RegionNotConfigured(self.scope.region.clone()));
        }
        let request_date = self.amz_date.get(..8).unwrap_or_default();
        if self.scope.date != request_date {
            return Err(Error::ScopeDateMismatch {
                scope_date: self.scope.date.clone(),
                request_date: request_date.to_owned(),
                request_time: self.amz_date.clone(),
            });
        }
        self.check_time(config, time::to_unix(now).unwrap_or(0))
    }

    fn check_time(&self, config: &ServiceConfig, now: UnixSeconds) -> Result<(), Error> {
        let skew = secs(config.max_clock_skew);
        let skew_minutes = config.max_clock_skew.as_secs() / 60;
        let t = self.request_time;
        if t > now.saturating_add(skew) {
            return Err(Error::SignatureNotYetCurrent {
                request_time: self.amz_date.clone(),
                latest: time::format_amz_date(now.saturating_add(skew)),
                now: time::format_amz_date(now),
                skew_minutes,
            });
        }
        match self.location {
            AuthLocation::Header => {
                if t < now.saturating_sub(skew) {
                    return Err(Error::SignatureExpired {
                        request_time: self.amz_date.clone(),
                        earliest: time::format_amz_date(now.saturating_sub(skew)),
                        now: time::format_amz_date(now),
                        skew_minutes,
                    });
                }
            }
            AuthLocation::Query { expires_secs } => {
                // The field is public, so cap it here too: no configuration
                // may stretch a signing key's trust beyond AWS's 7 days.
                let max = config.max_presign_expiry.min(MAX_PRESIGN_EXPIRY).as_secs();
                if expires_secs > max {
                    return Err(Error::ExpiresTooLong(expires_secs));
                }
                let until = t.saturating_add(i64::try_from(expires_secs).unwrap_or(i64::MAX));
                if now > until {
                    return Err(Error::PresignedUrlExpired {
                        expired_at: time::format_amz_date(until),
                        now: time::format_amz_date(now),
                    });
                }
            }
        }
        Ok(())
    }

    /// The payload hashes the signer may have used, most likely first.
    fn payload_hashes(
        &self,
        req: &Request<'_>,
        config: &ServiceConfig,
    ) -> Result<Vec<String>, Error> {
        let actual = match req.payload {
            Payload::Bytes(body) => canonical::sha256_hex(body),
            Payload::Sha256(digest) => hex::encode(digest),
        };
        match self.content_sha256.as_deref() {
            Some(UNSIGNED_PAYLOAD) if config.allow_unsigned_payload => {
                Ok(vec![UNSIGNED_PAYLOAD.to_owned()])
            }
            Some(UNSIGNED_PAYLOAD) => Err(Error::UnsignedPayloadNotAllowed),
            Some(declared)
                if declared.len() == 64 && declared.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                if declared.eq_ignore_ascii_case(&actual) {
                    // The signer hashed the header's text, so sign that text.
                    Ok(vec![declared.to_owned()])
                } else {
                    Err(Error::ContentSha256Mismatch {
                        declared: declared.to_owned(),
                        computed: actual,
                    })
                }
            }
            Some(other) => Err(Error::InvalidContentSha256(
                other.chars().take(128).collect(),
            )),
            None => {
                let mut hashes = vec![actual];
                // A pre-signed URL cannot know the body it will be used with,
                // so signers for uploads sign UNSIGNED-PAYLOAD without saying so.
                if config.allow_unsigned_payload
                    && matches!(self.location, AuthLocation::Query { .. })
                {
                    hashes.push(UNSIGNED_PAYLOAD.to_owned());
                }
                Ok(hashes)
            }
        }
    }

    fn skipped_query_params(&self, config: &ServiceConfig) -> &'static [&'static str] {
        match self.location {
            AuthLocation::Header => &[],
            AuthLocation::Query { .. } if config.query_session_token_unsigned => {
                &[QUERY_SIGNATURE, QUERY_SECURITY_TOKEN]
            }
            AuthLocation::Query { .. } => &[QUERY_SIGNATURE],
        }
    }

    fn canonical_request_with(
        &self,
        req: &Request<'_>,
        config: &ServiceConfig,
        payload_hash: &str,
    ) -> Vec<u8> {
        canonical::canonical_request(
            req.method,
            req.path,
            req.query,
            req.headers,
            CanonicalParts {
                signed_headers: &self.signed_headers,
                payload_hash,
                skip_query: self.skipped_query_params(config),
                normalize_path: config.normalize_path,
            },
        )
    }

    /// The canonical request the signer should have built (with the most
    /// likely payload hash). Fails only on payload-hash faults.
    pub fn canonical_request(
        &self,
        req: &Request<'_>,
        config: &ServiceConfig,
    ) -> Result<Vec<u8>, Error> {
        let hashes = self.payload_hashes(req, config)?;
        let hash = hashes
            .first()
            .map(String::as_str)
            .unwrap_or(UNSIGNED_PAYLOAD);
        Ok(self.canonical_request_with(req, config, hash))
    }

    /// The string to sign for a canonical request under this authentication's
    /// time and scope.
    pub fn string_to_sign(&self, canonical_request: &[u8]) -> String {
        canonical::string_to_sign(&self.amz_date, &self.scope.to_string(), canonical_request)
    }

    /// Verifies the signature with the signing key derived for
    /// `self.access_key_id` and `self.scope`, after re-running
    /// [`ParsedAuth::check`].
    pub fn verify(
        &self,
        req: &Request<'_>,
        config: &ServiceConfig,
        now: SystemTime,
        key: &SigningKey,
    ) -> Result<Verified, Error> {
        self.check(config, now)?;
        let hashes = self.payload_hashes(req, config)?;
        let mut first_attempt = None;
        for hash in &hashes {
            let creq = self.canonical_request_with(req, config, hash);
            let sts = self.string_to_sign(&creq);
            if key.verify(&sts, &self.signature) {
                return Ok(self.verified(hash == UNSIGNED_PAYLOAD));
            }
            first_attempt.get_or_insert((creq, sts));
        }
        let (creq, sts) = first_attempt.unwrap_or_default();
        Err(Error::SignatureMismatch {
            canonical_request: String::from_utf8_lossy(&creq).into_owned(),
            string_to_sign: sts,
        })
    }

    fn verified(&self, unsigned_payload: bool) -> Verified {
        let presigned_until = match self.location {
            AuthLocation::Header => None,
            AuthLocation::Query { expires_secs } => Some(time::from_unix(
                self.request_time
                    .saturating_add(i64::try_from(expires_secs).unwrap_or(i64::MAX)),
            )),
        };
        Verified {
            access_key_id: self.access_key_id.clone(),
            scope: self.scope.clone(),
            request_time: self.request_time(),
            session_token: self.session_token.clone(),
            signed_headers: self.signed_headers.clone(),
            presigned_until,
            unsigned_payload,
        }
    }
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Parses, checks and verifies a request in one call.
///
/// `signing_key` is asked for the key of an access key id and scope; it
/// returns `None` for an unknown (or inactive) key, which becomes
/// [`Error::UnknownAccessKey`]. It is called only after every check that
/// needs no key has passed, so it can be a cache in front of a database.
pub fn verify<F>(
    req: &Request<'_>,
    config: &ServiceConfig,
    now: SystemTime,
    signing_key: F,
) -> Result<Verified, Error>
where
    F: FnOnce(&str, &CredentialScope) -> Option<SigningKey>,
{
    let auth = parse::parse(req)?;
    auth.check(config, now)?;
    let key = signing_key(&auth.access_key_id, &auth.scope).ok_or(Error::UnknownAccessKey)?;
    auth.verify(req, config, now, &key)
}
