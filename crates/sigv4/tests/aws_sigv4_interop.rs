//! Requests signed by `aws-sigv4` (the AWS SDK for Rust's signer) verify,
//! across services, regions, methods, bodies, paths, query strings, session
//! tokens and both signature locations.

mod common;

use std::time::Duration;

use common::{sign_with_aws, OwnedRequest, SignSpec};
use seashell_sigv4::{Error, ServiceConfig, SigningKey, Verified};

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

fn verify(req: &OwnedRequest, config: &ServiceConfig) -> Result<Verified, Error> {
    req.with(|r| {
        seashell_sigv4::verify(r, config, common::suite_time(), |akid, scope| {
            (akid == common::AKID).then(|| SigningKey::derive(common::SECRET, scope))
        })
    })
}

struct Shape {
    method: &'static str,
    uri: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: &'static [u8],
}

fn shapes() -> Vec<Shape> {
    vec![
        // AWS Query protocol (IAM, STS): form body on POST /.
        Shape {
            method: "POST",
            uri: "http://127.0.0.1:8080/iam/",
            headers: vec![("content-type", "application/x-www-form-urlencoded; charset=utf-8")],
            body: b"Action=ListUsers&Version=2010-05-08",
        },
        // REST-JSON (CloudShell) with a label that needed encoding.
        Shape {
            method: "POST",
            uri: "http://127.0.0.1:8080/cloudshell/createSession",
            headers: vec![("content-type", "application/json")],
            body: br#"{"EnvironmentId":"env-1","TabId":"tab 1"}"#,
        },
        // JSON 1.1 (CloudTrail) with X-Amz-Target.
        Shape {
            method: "POST",
            uri: "https://cloudtrail.us-east-1.amazonaws.com/",
            headers: vec![
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", "CloudTrail_20131101.LookupEvents"),
            ],
            body: b"{}",
        },
        // GET with a query string needing encoding and a path with escapes.
        Shape {
            method: "GET",
            uri: "http://127.0.0.1:8080/iam/?Action=GetUser&UserName=al%20ice%2Bbob&Version=2010-05-08&empty=&z=%E1%88%B4",
            headers: vec![("x-custom", "  padded    value  ")],
            body: b"",
        },
        Shape {
            method: "GET",
            uri: "http://127.0.0.1:8080/files/a%20b/c%2Fd/./e/../f",
            headers: vec![],
            body: b"",
        },
        Shape {
            method: "PUT",
            uri: "http://127.0.0.1:8080/upload/home/notes.txt?partNumber=2&uploadId=x~y",
            headers: vec![("content-type", "application/octet-stream")],
            body: &[0, 159, 146, 150, 255, 10, 13],
        },
        Shape {
            method: "DELETE",
            uri: "http://127.0.0.1:8080/cloudshell/deleteEnvironment",
            headers: vec![],
            body: b"",
        },
    ]
}

#[test]
fn header_signatures_verify() {
    let mut checked = 0;
    for service in ["iam", "sts", "cloudshell", "cloudtrail"] {
        for region in REGIONS {
            for shape in shapes() {
                for token in [
                    None,
                    Some("FwoGZXIvYXdzEJr//////////wEaDM+token/with+symbols=="),
                ] {
                    let mut spec = SignSpec::new(shape.method, shape.uri, service, region);
                    spec.headers = shape.headers.clone();
                    spec.body = shape.body;
                    spec.session_token = token;
                    let req = sign_with_aws(&spec);
                    let config = ServiceConfig::new(service, REGIONS);
                    let v = verify(&req, &config).unwrap_or_else(|e| {
                        panic!("{service} {region} {} {}: {e:?}", shape.method, shape.uri)
                    });
                    assert_eq!(v.access_key_id, common::AKID);
                    assert_eq!(v.region(), region);
                    assert_eq!(v.service(), service);
                    assert_eq!(v.session_token.as_deref(), token);
                    assert!(v.signed_headers.iter().any(|h| h == "host"));
                    assert_eq!(v.presigned_until, None);
                    assert!(!v.unsigned_payload);
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 4 * 3 * 7 * 2);
}

#[test]
fn presigned_urls_verify() {
    for service in ["sts", "cloudshell"] {
        for shape in shapes() {
            for token in [None, Some("IQoJb3JpZ2luX2Vj/token+=")] {
                let mut spec = SignSpec::new(shape.method, shape.uri, service, "eu-west-1");
                spec.headers = shape.headers.clone();
                spec.body = shape.body;
                spec.session_token = token;
                spec.presign = Some(Duration::from_secs(900));
                let req = sign_with_aws(&spec);
                assert!(req.query.contains("X-Amz-Signature="), "{}", req.query);
                let config = ServiceConfig::new(service, ["eu-west-1"]);
                let v = verify(&req, &config)
                    .unwrap_or_else(|e| panic!("{service} {} {}: {e:?}", shape.method, shape.uri));
                assert_eq!(v.session_token.as_deref(), token);
                assert_eq!(
                    v.presigned_until,
                    Some(common::suite_time() + Duration::from_secs(900))
                );
            }
        }
    }
}

#[test]
fn unsigned_payload_verifies_only_where_allowed() {
    let mut spec = SignSpec::new(
        "PUT",
        "http://127.0.0.1:8080/upload/big.bin",
        "cloudshell",
        "us-east-1",
    );
    spec.body = b"streamed bytes";
    spec.unsigned_body = true;
    // aws-sigv4 signs UNSIGNED-PAYLOAD but only sends the header when asked;
    // clients that use it (S3-style uploads) always send it.
    spec.headers = vec![("x-amz-content-sha256", "UNSIGNED-PAYLOAD")];
    let req = sign_with_aws(&spec);

    let strict = ServiceConfig::new("cloudshell", ["us-east-1"]);
    assert_eq!(verify(&req, &strict), Err(Error::UnsignedPayloadNotAllowed));

    let lenient = strict.clone().allow_unsigned_payload(true);
    let v = verify(&req, &lenient).expect("unsigned payload allowed");
    assert!(v.unsigned_payload);
}

#[test]
fn presigned_upload_with_unsigned_payload() {
    let mut spec = SignSpec::new(
        "PUT",
        "http://127.0.0.1:8080/upload/f.txt",
        "cloudshell",
        "us-east-1",
    );
    spec.presign = Some(Duration::from_secs(300));
    spec.unsigned_body = true;
    let mut req = sign_with_aws(&spec);
    req.body = b"whatever the browser uploads".to_vec();

    let strict = ServiceConfig::new("cloudshell", ["us-east-1"]);
    assert!(matches!(
        verify(&req, &strict),
        Err(Error::SignatureMismatch { .. })
    ));
    let v = verify(&req, &strict.allow_unsigned_payload(true)).expect("presigned upload");
    assert!(v.unsigned_payload);
}

#[test]
fn declared_content_sha256_is_checked_against_the_body() {
    let body = b"Action=GetCallerIdentity&Version=2011-06-15";
    let digest = seashell_sigv4::sha256_hex(body);
    let mut spec = SignSpec::new("POST", "http://127.0.0.1:8080/sts/", "sts", "us-east-1");
    spec.body = body;
    spec.headers = vec![("x-amz-content-sha256", &digest)];
    let req = sign_with_aws(&spec);
    let config = ServiceConfig::new("sts", ["us-east-1"]);
    verify(&req, &config).expect("declared hash matches");

    // The same request with a precomputed digest instead of the body.
    let headers = req.header_refs();
    let digest_bytes: [u8; 32] = hex::decode(&digest)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let r = seashell_sigv4::Request {
        method: &req.method,
        path: &req.path,
        query: &req.query,
        headers: &headers,
        payload: seashell_sigv4::Payload::Sha256(digest_bytes),
    };
    seashell_sigv4::verify(&r, &config, common::suite_time(), |_, scope| {
        Some(SigningKey::derive(common::SECRET, scope))
    })
    .expect("precomputed digest");

    let mut tampered = req.clone();
    tampered.body = b"Action=GetCallerIdentity&Version=2011-06-16".to_vec();
    assert!(matches!(
        verify(&tampered, &config),
        Err(Error::ContentSha256Mismatch { .. })
    ));
}

#[test]
fn cached_signing_key_is_reusable_across_requests() {
    let config = ServiceConfig::new("iam", ["us-east-1"]);
    let mut cache: Option<SigningKey> = None;
    let mut derivations = 0;
    for body in [
        &b"Action=ListUsers&Version=2010-05-08"[..],
        b"Action=ListRoles&Version=2010-05-08",
    ] {
        let mut spec = SignSpec::new("POST", "http://127.0.0.1:8080/iam/", "iam", "us-east-1");
        spec.body = body;
        let req = sign_with_aws(&spec);
        req.with(|r| {
            seashell_sigv4::verify(r, &config, common::suite_time(), |_, scope| {
                Some(
                    cache
                        .get_or_insert_with(|| {
                            derivations += 1;
                            SigningKey::derive(common::SECRET, scope)
                        })
                        .clone(),
                )
            })
        })
        .expect("verifies with cached key");
    }
    assert_eq!(derivations, 1);
}
