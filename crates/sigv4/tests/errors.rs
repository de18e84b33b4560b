//! Every way verification can fail, with the AWS code, status and message
//! the server will send.

mod common;

use std::time::Duration;

use common::{sign_with_aws, OwnedRequest, SignSpec};
use seashell_sigv4::{
    canonical_request, parse, string_to_sign, CanonicalParts, CredentialScope, Error,
    ServiceConfig, SigningKey, Verified,
};

fn config() -> ServiceConfig {
    ServiceConfig::new("iam", ["us-east-1"])
}

fn verify_at(
    req: &OwnedRequest,
    config: &ServiceConfig,
    offset_secs: i64,
) -> Result<Verified, Error> {
    let now = if offset_secs >= 0 {
        common::suite_time() + Duration::from_secs(offset_secs.unsigned_abs())
    } else {
        common::suite_time() - Duration::from_secs(offset_secs.unsigned_abs())
    };
    req.with(|r| {
        seashell_sigv4::verify(r, config, now, |akid, scope| {
            (akid == common::AKID).then(|| SigningKey::derive(common::SECRET, scope))
        })
    })
}

fn verify(req: &OwnedRequest) -> Result<Verified, Error> {
    verify_at(req, &config(), 0)
}

fn signed() -> OwnedRequest {
    let mut spec = SignSpec::new("POST", "http://127.0.0.1:8080/iam/", "iam", "us-east-1");
    spec.body = b"Action=ListUsers&Version=2010-05-08";
    spec.headers = vec![("content-type", "application/x-www-form-urlencoded")];
    sign_with_aws(&spec)
}

fn presigned(expiry: Duration) -> OwnedRequest {
    let mut spec = SignSpec::new(
        "GET",
        "http://127.0.0.1:8080/iam/?Action=GetUser",
        "iam",
        "us-east-1",
    );
    spec.presign = Some(expiry);
    sign_with_aws(&spec)
}

fn authorization(req: &OwnedRequest) -> String {
    String::from_utf8(req.header("authorization").expect("signed").to_vec()).expect("utf-8")
}

fn with_authorization(req: &OwnedRequest, f: impl FnOnce(String) -> String) -> OwnedRequest {
    let mut out = req.clone();
    out.set_header("Authorization", f(authorization(req)).as_bytes());
    out
}

#[test]
fn baseline_verifies() {
    verify(&signed()).expect("signed request verifies");
    verify(&presigned(Duration::from_secs(900))).expect("presigned request verifies");
}

#[test]
fn missing_authentication() {
    let mut req = signed();
    req.remove_header("authorization");
    let err = verify(&req).expect_err("unsigned");
    assert_eq!(err, Error::MissingAuthentication);
    assert_eq!(
        (err.code(), err.status()),
        ("MissingAuthenticationToken", 403)
    );
    assert_eq!(err.to_string(), "Missing Authentication Token");
}

#[test]
fn both_header_and_query_authentication() {
    let mut req = presigned(Duration::from_secs(900));
    req.headers.push((
        "Authorization".into(),
        authorization(&signed()).into_bytes(),
    ));
    assert_eq!(verify(&req), Err(Error::AmbiguousAuthentication));
}

#[test]
fn unsupported_algorithms() {
    for value in [
        "AWS4-ECDSA-P256-SHA256 Credential=AKIDEXAMPLE/20150830/iam/aws4_request, SignedHeaders=host, Signature=00",
        "AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
        "Bearer abc",
        "",
    ] {
        let req = with_authorization(&signed(), |_| value.to_owned());
        let err = verify(&req).expect_err(value);
        assert!(matches!(err, Error::UnsupportedAlgorithm(_)), "{value}: {err:?}");
        assert_eq!((err.code(), err.status()), ("IncompleteSignature", 400));
    }
    let mut req = presigned(Duration::from_secs(900));
    req.query = req.query.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1");
    assert_eq!(
        verify(&req),
        Err(Error::UnsupportedAlgorithm("AWS4-HMAC-SHA1".into()))
    );
}

#[test]
fn malformed_authorization_header() {
    let base = signed();
    let without_signature = with_authorization(&base, |a| {
        a.split(", Signature=")
            .next()
            .unwrap_or_default()
            .to_owned()
    });
    let err = verify(&without_signature).expect_err("no signature");
    assert_eq!(
        err.to_string(),
        "Authorization header requires 'Signature' parameter."
    );
    assert_eq!((err.code(), err.status()), ("IncompleteSignature", 400));

    let only_algorithm = with_authorization(&base, |_| "AWS4-HMAC-SHA256".to_owned());
    assert_eq!(
        verify(&only_algorithm).expect_err("nothing").to_string(),
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter."
    );

    let cases = [
        with_authorization(&base, |a| format!("{a}, Signature=00")),
        with_authorization(&base, |a| format!("{a}, Extra=1")),
        with_authorization(&base, |a| format!("{a}, junk")),
        with_authorization(&base, |a| a.replace("SignedHeaders=", "SignedHeaders=;")),
        with_authorization(&base, |a| {
            a.replace("SignedHeaders=", "SignedHeaders=bad header;")
        }),
    ];
    for req in &cases {
        assert!(
            matches!(verify(req), Err(Error::MalformedAuthorization(_))),
            "{}",
            authorization(req)
        );
    }

    let mut twice = base.clone();
    twice
        .headers
        .push(("authorization".into(), authorization(&base).into_bytes()));
    assert!(matches!(
        verify(&twice),
        Err(Error::MalformedAuthorization(_))
    ));

    let mut not_utf8 = base.clone();
    not_utf8.set_header("Authorization", b"AWS4-HMAC-SHA256 \xff\xfe");
    assert!(matches!(
        verify(&not_utf8),
        Err(Error::MalformedAuthorization(_))
    ));
}

#[test]
fn malformed_credentials() {
    let base = signed();
    for replacement in [
        "Credential=AKIDEXAMPLE/20150830/us-east-1/iam",
        "Credential=AKIDEXAMPLE/2015083/us-east-1/iam/aws4_request",
        "Credential=/20150830/us-east-1/iam/aws4_request",
        "Credential=AKIDEXAMPLE/20150830//iam/aws4_request",
        "Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request/extra",
    ] {
        let req = with_authorization(&base, |a| {
            a.replace(
                "Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request",
                replacement,
            )
        });
        let err = verify(&req).expect_err(replacement);
        assert!(
            matches!(err, Error::MalformedCredential(_)),
            "{replacement}: {err:?}"
        );
    }
    let req = with_authorization(&base, |a| a.replace("aws4_request", "aws5_request"));
    let err = verify(&req).expect_err("terminator");
    assert_eq!(err, Error::InvalidTerminator("aws5_request".into()));
    assert_eq!(
        err.to_string(),
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'."
    );
}

#[test]
fn query_authentication_faults() {
    let base = presigned(Duration::from_secs(900));
    let drop_param = |name: &str| {
        let mut req = base.clone();
        req.query = req
            .query
            .split('&')
            .filter(|p| !p.starts_with(&format!("{name}=")))
            .collect::<Vec<_>>()
            .join("&");
        req
    };
    for name in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
    ] {
        let err = verify(&drop_param(name)).expect_err(name);
        assert!(
            matches!(err, Error::MalformedQueryAuthentication(_)),
            "{name}: {err:?}"
        );
        assert_eq!(
            (err.code(), err.status()),
            ("AuthorizationQueryParametersError", 400)
        );
    }
    for bad in ["abc", "-1", "+5", "", "99999999999999999999999"] {
        let mut req = base.clone();
        req.query = req
            .query
            .replace("X-Amz-Expires=900", &format!("X-Amz-Expires={bad}"));
        assert_eq!(
            verify(&req),
            Err(Error::MalformedQueryAuthentication(
                "X-Amz-Expires should be a number".into()
            )),
            "{bad}"
        );
    }
    let mut twice = base.clone();
    twice.query.push_str("&X-Amz-Date=20150830T123600Z");
    assert!(matches!(
        verify(&twice),
        Err(Error::MalformedQueryAuthentication(_))
    ));

    let mut bad_date = base.clone();
    bad_date.query = bad_date
        .query
        .replace("X-Amz-Date=20150830T123600Z", "X-Amz-Date=2015-08-30");
    assert_eq!(
        verify(&bad_date),
        Err(Error::MalformedDate("2015-08-30".into()))
    );
}

#[test]
fn dates() {
    let mut no_date = signed();
    no_date.remove_header("x-amz-date");
    let err = verify(&no_date).expect_err("no date");
    assert_eq!(err, Error::MissingDate);
    assert_eq!((err.code(), err.status()), ("IncompleteSignature", 400));

    let mut bad = signed();
    bad.set_header("X-Amz-Date", b"20150830T123600");
    assert_eq!(
        verify(&bad),
        Err(Error::MalformedDate("20150830T123600".into()))
    );

    // Scope date from another day than X-Amz-Date.
    let req = with_authorization(&signed(), |a| a.replace("/20150830/", "/20150831/"));
    let err = verify(&req).expect_err("scope date");
    assert_eq!(
        err.to_string(),
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20150831' != '20150830', from '20150830T123600Z'."
    );
    assert_eq!((err.code(), err.status()), ("SignatureDoesNotMatch", 403));
}

/// A request dated by the HTTP `Date` header, signed with this crate's own
/// building blocks (no AWS SDK signs without X-Amz-Date).
#[test]
fn date_header_fallback() {
    let date = "Sun, 30 Aug 2015 12:36:00 GMT";
    let signed_headers = vec!["date".to_owned(), "host".to_owned()];
    let mut req = OwnedRequest {
        method: "GET".into(),
        path: "/iam/".into(),
        query: "Action=ListUsers&Version=2010-05-08".into(),
        headers: vec![
            ("Host".into(), b"127.0.0.1:8080".to_vec()),
            ("Date".into(), date.as_bytes().to_vec()),
        ],
        body: Vec::new(),
    };
    let headers = req.header_refs();
    let creq = canonical_request(
        &req.method,
        &req.path,
        &req.query,
        &headers,
        CanonicalParts {
            signed_headers: &signed_headers,
            payload_hash: &seashell_sigv4::sha256_hex(b""),
            skip_query: &[],
            normalize_path: true,
        },
    );
    let scope = CredentialScope::new("20150830", "us-east-1", "iam");
    let sts = string_to_sign("20150830T123600Z", &scope.to_string(), &creq);
    let signature = hex::encode(SigningKey::derive(common::SECRET, &scope).sign(&sts));
    drop(headers);
    req.headers.push((
        "Authorization".into(),
        format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}, SignedHeaders=date;host, Signature={signature}").into_bytes(),
    ));
    let v = verify(&req).expect("Date header accepted");
    assert_eq!(v.request_time, common::suite_time());

    let unsigned_date = with_authorization(&req, |a| {
        a.replace("SignedHeaders=date;host", "SignedHeaders=host")
    });
    assert_eq!(verify(&unsigned_date), Err(Error::HeaderNotSigned("date")));
}

#[test]
fn host_and_date_must_be_signed() {
    let req = with_authorization(&signed(), |a| a.replace("host;", ""));
    let err = verify(&req).expect_err("host unsigned");
    assert_eq!(err, Error::HeaderNotSigned("host"));
    assert_eq!(
        err.to_string(),
        "'host' must be a 'SignedHeader' in the AWS Authorization."
    );

    let req = with_authorization(&signed(), |a| a.replace(";x-amz-date", ""));
    assert_eq!(verify(&req), Err(Error::HeaderNotSigned("x-amz-date")));

    let mut req = presigned(Duration::from_secs(900));
    req.query = req
        .query
        .replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=x-amz-date");
    assert_eq!(verify(&req), Err(Error::HeaderNotSigned("host")));
}

#[test]
fn wrong_service_and_region() {
    let err =
        verify_at(&signed(), &ServiceConfig::new("sts", ["us-east-1"]), 0).expect_err("service");
    assert_eq!(
        err.to_string(),
        "Credential should be scoped to correct service: 'sts'. "
    );
    assert_eq!((err.code(), err.status()), ("SignatureDoesNotMatch", 403));

    let err = verify_at(
        &signed(),
        &ServiceConfig::new("iam", ["eu-west-1", "eu-west-2"]),
        0,
    )
    .expect_err("region");
    assert_eq!(err, Error::RegionNotConfigured("us-east-1".into()));
    assert_eq!(
        err.to_string(),
        "Credential should be scoped to a valid region, not 'us-east-1'. "
    );
}

#[test]
fn unknown_access_key() {
    let req = signed();
    let err = req
        .with(|r| seashell_sigv4::verify(r, &config(), common::suite_time(), |_, _| None))
        .expect_err("unknown key");
    assert_eq!(err, Error::UnknownAccessKey);
    assert_eq!((err.code(), err.status()), ("InvalidClientTokenId", 403));
    assert_eq!(
        err.to_string(),
        "The security token included in the request is invalid."
    );
}

#[test]
fn wrong_signature() {
    let req = with_authorization(&signed(), |a| {
        let (head, sig) = a.rsplit_once("Signature=").expect("signature");
        let mut sig: Vec<u8> = sig.bytes().collect();
        sig[0] = if sig[0] == b'a' { b'b' } else { b'a' };
        format!("{head}Signature={}", String::from_utf8_lossy(&sig))
    });
    let err = verify(&req).expect_err("bad signature");
    assert!(matches!(err, Error::SignatureMismatch { .. }));
    assert_eq!((err.code(), err.status()), ("SignatureDoesNotMatch", 403));
    assert_eq!(
        err.to_string(),
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );
    if let Error::SignatureMismatch {
        canonical_request,
        string_to_sign,
    } = err
    {
        assert!(
            canonical_request.starts_with("POST\n/iam/\n\n"),
            "{canonical_request}"
        );
        assert!(string_to_sign.starts_with("AWS4-HMAC-SHA256\n20150830T123600Z\n"));
    }

    // A signature that is not hex at all is simply wrong, not malformed.
    let req = with_authorization(&signed(), |a| {
        let (head, _) = a.rsplit_once("Signature=").expect("signature");
        format!("{head}Signature=not-hex")
    });
    assert!(matches!(verify(&req), Err(Error::SignatureMismatch { .. })));
}

#[test]
fn clock_skew_is_fifteen_minutes_either_way() {
    let req = signed();
    let cfg = config();
    verify_at(&req, &cfg, 15 * 60).expect("15 minutes late is fine");
    verify_at(&req, &cfg, -15 * 60).expect("15 minutes early is fine");

    let err = verify_at(&req, &cfg, 15 * 60 + 1).expect_err("expired");
    assert_eq!(
        err.to_string(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z (20150830T125101Z - 15 min.)"
    );
    assert_eq!((err.code(), err.status()), ("SignatureDoesNotMatch", 403));
    assert!(err.is_clock_related());

    let err = verify_at(&req, &cfg, -(15 * 60 + 1)).expect_err("future");
    assert_eq!(
        err.to_string(),
        "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z (20150830T122059Z + 15 min.)"
    );
    assert!(err.is_clock_related());

    let tight = config().max_clock_skew(Duration::from_secs(300));
    let err = verify_at(&req, &tight, 301).expect_err("5-minute skew");
    assert!(err.to_string().ends_with("- 5 min.)"), "{err}");
}

#[test]
fn presigned_expiry() {
    let req = presigned(Duration::from_secs(3600));
    let cfg = config();
    // Older than the clock skew but within X-Amz-Expires: still valid.
    verify_at(&req, &cfg, 1800).expect("within expiry");
    verify_at(&req, &cfg, 3600).expect("at expiry");
    let err = verify_at(&req, &cfg, 3601).expect_err("expired");
    assert_eq!(
        err,
        Error::PresignedUrlExpired {
            expired_at: "20150830T133600Z".into(),
            now: "20150830T133601Z".into()
        }
    );
    assert_eq!(
        (err.code(), err.status(), err.to_string().as_str()),
        ("AccessDenied", 403, "Request has expired")
    );
    // Dated too far in the future is refused like a header signature.
    assert!(matches!(
        verify_at(&req, &cfg, -(15 * 60 + 1)),
        Err(Error::SignatureNotYetCurrent { .. })
    ));
}

#[test]
fn presigned_expiry_is_capped_at_seven_days() {
    let week = presigned(Duration::from_secs(604_800));
    verify_at(&week, &config(), 604_800).expect("a week is allowed");

    let mut longer = week.clone();
    longer.query = longer
        .query
        .replace("X-Amz-Expires=604800", "X-Amz-Expires=604801");
    let err = verify(&longer).expect_err("too long");
    assert_eq!(err, Error::ExpiresTooLong(604_801));
    assert_eq!(
        (err.code(), err.status()),
        ("AuthorizationQueryParametersError", 400)
    );

    let day = config().max_presign_expiry(Duration::from_secs(86_400));
    assert_eq!(
        verify_at(&week, &day, 0),
        Err(Error::ExpiresTooLong(604_800))
    );
    let capped = config().max_presign_expiry(Duration::from_secs(10 * 86_400));
    assert_eq!(capped.max_presign_expiry, Duration::from_secs(604_800));
}

#[test]
fn content_sha256_faults() {
    for value in ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "abc", "zz"] {
        let mut req = signed();
        req.set_header("x-amz-content-sha256", value.as_bytes());
        let err = verify(&req).expect_err(value);
        assert!(
            matches!(err, Error::InvalidContentSha256(_)),
            "{value}: {err:?}"
        );
        assert_eq!((err.code(), err.status()), ("InvalidArgument", 400));
    }
    let mut req = signed();
    req.set_header(
        "x-amz-content-sha256",
        seashell_sigv4::sha256_hex(b"other").as_bytes(),
    );
    let err = verify(&req).expect_err("mismatch");
    assert!(matches!(err, Error::ContentSha256Mismatch { .. }));
    assert_eq!(
        (err.code(), err.status()),
        ("XAmzContentSHA256Mismatch", 400)
    );

    let mut req = signed();
    req.set_header("x-amz-content-sha256", b"UNSIGNED-PAYLOAD");
    let err = verify(&req).expect_err("unsigned");
    assert_eq!(err, Error::UnsignedPayloadNotAllowed);
    assert_eq!((err.code(), err.status()), ("InvalidRequest", 400));
}

#[test]
fn session_token_is_reported_for_the_server_to_check() {
    let mut spec = SignSpec::new("POST", "http://127.0.0.1:8080/iam/", "iam", "us-east-1");
    spec.session_token = Some("session-token-value");
    let req = sign_with_aws(&spec);
    let auth = req.with(parse).expect("parses");
    assert_eq!(auth.session_token.as_deref(), Some("session-token-value"));
    let v = verify(&req).expect("verifies");
    assert_eq!(v.session_token.as_deref(), Some("session-token-value"));
    assert!(v.signed_headers.iter().any(|h| h == "x-amz-security-token"));

    // Swapping the signed token breaks the signature.
    let mut swapped = req.clone();
    swapped.set_header("X-Amz-Security-Token", b"another-token");
    assert!(matches!(
        verify(&swapped),
        Err(Error::SignatureMismatch { .. })
    ));
}

#[test]
fn two_step_use_for_asynchronous_key_lookup() {
    let req = signed();
    let cfg = config();
    let now = common::suite_time();
    let auth = req.with(parse).expect("parse");
    auth.check(&cfg, now).expect("cheap checks");
    assert_eq!(auth.access_key_id, common::AKID);
    let key = SigningKey::derive(common::SECRET, &auth.scope);
    let v = req
        .with(|r| auth.verify(r, &cfg, now, &key))
        .expect("verify");
    assert_eq!(
        v.scope,
        CredentialScope::new("20150830", "us-east-1", "iam")
    );
    assert_eq!(auth.request_time(), now);
    // The key-free checks run again inside verify.
    let later = now + Duration::from_secs(3600);
    assert!(matches!(
        req.with(|r| auth.verify(r, &cfg, later, &key)),
        Err(Error::SignatureExpired { .. })
    ));
}
