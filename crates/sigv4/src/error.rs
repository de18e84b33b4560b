//! Verification failures, each carrying the AWS error code, HTTP status and
//! message that real AWS services return for the same fault.
//!
//! The `Display` text of every variant is the message AWS sends, so the server
//! can write `{code, message}` (or the Query protocol's XML) without a second
//! table. Wordings follow what boto3 users see from IAM and STS; where AWS
//! differs between services, the IAM/STS form is used because those are the
//! Query-protocol services Seashell imitates most closely.

/// Why a request's SigV4 authentication was rejected.
///
/// Map a variant to a response with [`Error::code`], [`Error::status`] and its
/// `Display` text (the AWS message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request carries neither an `Authorization` header nor query-string
    /// authentication.
    #[error("Missing Authentication Token")]
    MissingAuthentication,

    /// The request carries both an `Authorization` header and
    /// `X-Amz-Algorithm` query authentication; AWS refuses to guess which one
    /// counts.
    #[error(
        "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
    )]
    AmbiguousAuthentication,

    /// The algorithm is not `AWS4-HMAC-SHA256` (for example SigV2, SigV4a or
    /// a bearer token).
    #[error("Unsupported AWS 'algorithm': '{0}'.")]
    UnsupportedAlgorithm(String),

    /// The `Authorization` header is not `AWS4-HMAC-SHA256 Credential=…,
    /// SignedHeaders=…, Signature=…`; the text says what is wrong.
    #[error("{0}")]
    MalformedAuthorization(String),

    /// Query-string authentication lacks a parameter or has a malformed one;
    /// the text says which.
    #[error("{0}")]
    MalformedQueryAuthentication(String),

    /// The `Credential` is not `AKID/YYYYMMDD/region/service/aws4_request`.
    #[error("Invalid Credential: '{0}'. Credential must have the form 'AccessKeyId/Date/Region/Service/aws4_request'.")]
    MalformedCredential(String),

    /// The credential scope ends in something other than `aws4_request`.
    #[error("Credential should be scoped with a valid terminator: 'aws4_request', not '{0}'.")]
    InvalidTerminator(String),

    /// Neither `X-Amz-Date` nor `Date` is present (header authentication).
    #[error(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    )]
    MissingDate,

    /// The request date cannot be parsed.
    #[error("Date must be in ISO-8601 'basic format'. Got '{0}'. See http://en.wikipedia.org/wiki/ISO_8601")]
    MalformedDate(String),

    /// `host` (or, with header authentication, the date header in use) is not
    /// among the signed headers. AWS requires both so that a signature cannot
    /// be replayed against another endpoint or time.
    #[error("'{0}' must be a 'SignedHeader' in the AWS Authorization.")]
    HeaderNotSigned(&'static str),

    /// The credential scope's date is not the date part of the request time.
    #[error("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{request_date}', from '{request_time}'.")]
    ScopeDateMismatch {
        /// The date in the credential scope.
        scope_date: String,
        /// The `YYYYMMDD` part of the request time.
        request_date: String,
        /// The request time in ISO-8601 basic format.
        request_time: String,
    },

    /// The credential scope names another service than the endpoint's.
    #[error("Credential should be scoped to correct service: '{expected}'. ")]
    WrongService {
        /// The service this endpoint verifies for.
        expected: String,
        /// The service named in the credential scope.
        got: String,
    },

    /// The credential scope names a region this server does not serve.
    #[error("Credential should be scoped to a valid region, not '{0}'. ")]
    RegionNotConfigured(String),

    /// The access key id is unknown (or disabled): the caller's key lookup
    /// found nothing.
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey,

    /// The signature does not match. The canonical request and string to
    /// sign the server computed are kept for the server's debug log; they are
    /// not part of the message because IAM and STS do not disclose them.
    #[error("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")]
    SignatureMismatch {
        /// The canonical request the server computed.
        canonical_request: String,
        /// The string to sign the server computed.
        string_to_sign: String,
    },

    /// The request time is older than the allowed clock skew.
    #[error("Signature expired: {request_time} is now earlier than {earliest} ({now} - {skew_minutes} min.)")]
    SignatureExpired {
        /// The request time (ISO-8601 basic format).
        request_time: String,
        /// The earliest acceptable request time.
        earliest: String,
        /// The server's clock.
        now: String,
        /// The allowed skew in minutes.
        skew_minutes: u64,
    },

    /// The request time is further in the future than the allowed clock skew.
    #[error("Signature not yet current: {request_time} is still later than {latest} ({now} + {skew_minutes} min.)")]
    SignatureNotYetCurrent {
        /// The request time (ISO-8601 basic format).
        request_time: String,
        /// The latest acceptable request time.
        latest: String,
        /// The server's clock.
        now: String,
        /// The allowed skew in minutes.
        skew_minutes: u64,
    },

    /// A pre-signed URL is used after `X-Amz-Date + X-Amz-Expires`.
    #[error("Request has expired")]
    PresignedUrlExpired {
        /// When the URL stopped being valid (ISO-8601 basic format).
        expired_at: String,
        /// The server's clock (ISO-8601 basic format).
        now: String,
    },

    /// `X-Amz-Expires` is longer than the endpoint allows (at most 7 days).
    #[error("X-Amz-Expires must be less than a week (in seconds) that is 604800")]
    ExpiresTooLong(u64),

    /// `X-Amz-Content-Sha256` is neither a SHA-256 hex digest nor
    /// `UNSIGNED-PAYLOAD` (streaming and trailer modes are not supported).
    #[error("x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a valid sha256 value.")]
    InvalidContentSha256(String),

    /// `X-Amz-Content-Sha256` declares a digest the body does not have.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    ContentSha256Mismatch {
        /// The digest the client declared.
        declared: String,
        /// The digest of the body received.
        computed: String,
    },

    /// `UNSIGNED-PAYLOAD` was declared for a service that requires the body
    /// to be signed.
    #[error("UNSIGNED-PAYLOAD is not supported by this service.")]
    UnsignedPayloadNotAllowed,
}

impl Error {
    /// The AWS error code (`SignatureDoesNotMatch`, `InvalidClientTokenId`, …)
    /// the server sends for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            Error::MissingAuthentication => "MissingAuthenticationToken",
            Error::AmbiguousAuthentication
            | Error::UnsupportedAlgorithm(_)
            | Error::MalformedAuthorization(_)
            | Error::MalformedCredential(_)
            | Error::MissingDate
            | Error::MalformedDate(_) => "IncompleteSignature",
            Error::MalformedQueryAuthentication(_) | Error::ExpiresTooLong(_) => {
                "AuthorizationQueryParametersError"
            }
            Error::InvalidTerminator(_)
            | Error::HeaderNotSigned(_)
            | Error::ScopeDateMismatch { .. }
            | Error::WrongService { .. }
            | Error::RegionNotConfigured(_)
            | Error::SignatureMismatch { .. }
            | Error::SignatureExpired { .. }
            | Error::SignatureNotYetCurrent { .. } => "SignatureDoesNotMatch",
            Error::UnknownAccessKey => "InvalidClientTokenId",
            Error::PresignedUrlExpired { .. } => "AccessDenied",
            Error::InvalidContentSha256(_) => "InvalidArgument",
            Error::ContentSha256Mismatch { .. } => "XAmzContentSHA256Mismatch",
            Error::UnsignedPayloadNotAllowed => "InvalidRequest",
        }
    }

    /// The HTTP status AWS answers with for this failure: 400 for requests
    /// that are malformed, 403 for those that are well formed but not
    /// authentic or no longer valid.
    pub fn status(&self) -> u16 {
        match self {
            Error::AmbiguousAuthentication
            | Error::UnsupportedAlgorithm(_)
            | Error::MalformedAuthorization(_)
            | Error::MalformedQueryAuthentication(_)
            | Error::MalformedCredential(_)
            | Error::MissingDate
            | Error::MalformedDate(_)
            | Error::ExpiresTooLong(_)
            | Error::InvalidContentSha256(_)
            | Error::ContentSha256Mismatch { .. }
            | Error::UnsignedPayloadNotAllowed => 400,
            Error::MissingAuthentication
            | Error::InvalidTerminator(_)
            | Error::HeaderNotSigned(_)
            | Error::ScopeDateMismatch { .. }
            | Error::WrongService { .. }
            | Error::RegionNotConfigured(_)
            | Error::UnknownAccessKey
            | Error::SignatureMismatch { .. }
            | Error::SignatureExpired { .. }
            | Error::SignatureNotYetCurrent { .. }
            | Error::PresignedUrlExpired { .. } => 403,
        }
    }

    /// Whether the failure comes from the request's time rather than its
    /// content, so the server can add its clock to the response and a client
    /// can correct its skew (botocore retries these codes after adjusting).
    pub fn is_clock_related(&self) -> bool {
        matches!(
            self,
            Error::SignatureExpired { .. }
                | Error::SignatureNotYetCurrent { .. }
                | Error::PresignedUrlExpired { .. }
        )
    }
}
