//! Requests signed by botocore — the signer inside the AWS CLI and boto3 —
//! for iam, sts (including a pre-signed GetCallerIdentity URL), cloudtrail
//! and cloudshell, captured as they would reach a Seashell endpoint
//! (tests/data/botocore/generate.py writes requests.json).

mod common;

use common::OwnedRequest;
use seashell_sigv4::{Error, ServiceConfig, SigningKey, Verified};

struct Captured {
    name: String,
    service: String,
    region: String,
    presigned: bool,
    request: OwnedRequest,
}

fn captured() -> Vec<Captured> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/botocore/requests.json"
    );
    let text = std::fs::read_to_string(path).expect("requests.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let text_of = |v: &serde_json::Value, key: &str| v[key].as_str().expect(key).to_owned();
    json.as_array()
        .expect("array")
        .iter()
        .map(|v| Captured {
            name: text_of(v, "name"),
            service: text_of(v, "service"),
            region: text_of(v, "region"),
            presigned: v["presigned"].as_bool().expect("presigned"),
            request: OwnedRequest {
                method: text_of(v, "method"),
                path: text_of(v, "path"),
                query: text_of(v, "query"),
                headers: v["headers"]
                    .as_array()
                    .expect("headers")
                    .iter()
                    .map(|pair| {
                        let name = pair[0].as_str().expect("name").to_owned();
                        let value = pair[1].as_str().expect("value").as_bytes().to_vec();
                        (name, value)
                    })
                    .collect(),
                body: hex::decode(text_of(v, "body_hex")).expect("hex body"),
            },
        })
        .collect()
}

fn verify(c: &Captured, req: &OwnedRequest) -> Result<Verified, Error> {
    let config = ServiceConfig::new(c.service.as_str(), ["us-east-1", "eu-west-1"]);
    req.with(|r| {
        seashell_sigv4::verify(r, &config, common::suite_time(), |akid, scope| {
            (akid == common::AKID).then(|| SigningKey::derive(common::SECRET, scope))
        })
    })
}

#[test]
fn botocore_requests_verify() {
    let all = captured();
    assert_eq!(all.len(), 32);
    for c in &all {
        let v = verify(c, &c.request).unwrap_or_else(|e| panic!("{}: {e:?}", c.name));
        assert_eq!(v.region(), c.region, "{}", c.name);
        assert_eq!(v.service(), c.service, "{}", c.name);
        assert_eq!(v.presigned_until.is_some(), c.presigned, "{}", c.name);
        assert_eq!(
            v.session_token.is_some(),
            c.name.ends_with("-token"),
            "{}",
            c.name
        );
    }
}

#[test]
fn botocore_requests_fail_when_tampered() {
    for c in captured() {
        let mut body_changed = c.request.clone();
        body_changed.body.extend_from_slice(b"&Extra=1");
        let mut query_changed = c.request.clone();
        query_changed.query = if query_changed.query.is_empty() {
            "Action=DeleteUser".to_owned()
        } else {
            format!("{}&Action=DeleteUser", query_changed.query)
        };
        let mut path_changed = c.request.clone();
        path_changed.path.push_str("/x");
        for (what, req) in [
            ("body", body_changed),
            ("query", query_changed),
            ("path", path_changed),
        ] {
            if what == "body" && c.presigned {
                // A pre-signed GET has no body to protect.
                continue;
            }
            let result = verify(&c, &req);
            assert!(
                matches!(result, Err(Error::SignatureMismatch { .. })),
                "{}: {what} change gave {result:?}",
                c.name
            );
        }
    }
}
