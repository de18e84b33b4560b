//! Arbitrary requests never panic the parser or the verifier: every input
//! gives `Ok` or a typed error.

mod common;

use proptest::prelude::*;
use seashell_sigv4::{parse, Payload, Request, ServiceConfig, SigningKey};

/// Header names: the ones the parser looks at, in odd cases, or anything.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Authorization".to_owned()),
        Just("authorization".to_owned()),
        Just("X-Amz-Date".to_owned()),
        Just("date".to_owned()),
        Just("host".to_owned()),
        Just("x-amz-security-token".to_owned()),
        Just("X-Amz-Content-Sha256".to_owned()),
        "[A-Za-z-]{1,12}",
        ".{0,8}",
    ]
}

/// Values: near-miss Authorization headers and dates, or arbitrary bytes.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        (
            prop_oneof![Just("AWS4-HMAC-SHA256".to_owned()), Just("AWS4-HMAC-SHA256 ".to_owned()), ".{0,6}"],
            "(Credential=[A-Z0-9/_a-z-]{0,40})?",
            "(, ?SignedHeaders=[a-z;=-]{0,20})?",
            "(, ?Signature=[0-9a-fA-F]{0,70})?",
            ".{0,10}",
        )
            .prop_map(|(a, c, h, s, junk)| format!("{a} {c}{h}{s}{junk}").into_bytes()),
        "[0-9TZ]{0,18}".prop_map(String::into_bytes),
        Just(b"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".to_vec()),
        Just(b"20150830T123600Z".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..40),
    ]
}

/// Query strings: pre-signed parameters with hostile values, or anything.
fn query() -> impl Strategy<Value = String> {
    let param = prop_oneof![
        Just("X-Amz-Algorithm=AWS4-HMAC-SHA256".to_owned()),
        Just("X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fiam%2Faws4_request".to_owned()),
        Just("X-Amz-Date=20150830T123600Z".to_owned()),
        Just("X-Amz-SignedHeaders=host".to_owned()),
        "X-Amz-Expires=[0-9+-]{0,22}",
        "X-Amz-Signature=[0-9a-f%]{0,66}",
        "X-Amz-(Credential|Date|SignedHeaders|Security-Token|Content-Sha256)=[%A-Za-z0-9/+;=]{0,20}",
        ".{0,12}",
    ];
    proptest::collection::vec(param, 0..9).prop_map(|ps| ps.join("&"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_and_verify_never_panic(
        method in prop_oneof![Just("GET".to_owned()), ".{0,6}"],
        path in prop_oneof![Just("/".to_owned()), "[/.a-z%0-9]{0,20}", ".{0,16}"],
        query in query(),
        headers in proptest::collection::vec((header_name(), header_value()), 0..8),
        body in proptest::collection::vec(any::<u8>(), 0..16),
        now_offset in -1_000_000i64..1_000_000,
        allow_unsigned in any::<bool>(),
    ) {
        let header_refs: Vec<(&str, &[u8])> =
            headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        let req = Request {
            method: &method,
            path: &path,
            query: &query,
            headers: &header_refs,
            payload: Payload::Bytes(&body),
        };
        let config = ServiceConfig::new("iam", ["us-east-1"]).allow_unsigned_payload(allow_unsigned);
        let now = if now_offset >= 0 {
            common::suite_time() + std::time::Duration::from_secs(now_offset.unsigned_abs())
        } else {
            common::suite_time() - std::time::Duration::from_secs(now_offset.unsigned_abs())
        };
        if let Ok(auth) = parse(&req) {
            let _ = auth.check(&config, now);
            let _ = auth.canonical_request(&req, &config);
        }
        let result = seashell_sigv4::verify(&req, &config, now, |_, scope| {
            Some(SigningKey::derive(common::SECRET, scope))
        });
        if let Err(e) = result {
            // Every error maps to a response.
            prop_assert!(!e.code().is_empty());
            prop_assert!(e.status() == 400 || e.status() == 403);
            prop_assert!(!e.to_string().is_empty() || e.code() == "IncompleteSignature");
        }
    }

    /// Headers the signer did not sign may be added or reordered (proxies do
    /// this) without breaking a genuine signature.
    #[test]
    fn unsigned_headers_do_not_matter(
        extra in proptest::collection::vec(("x-extra-[a-z]{1,6}", "[ -~]{0,20}"), 0..5),
    ) {
        let spec = common::SignSpec::new("POST", "http://127.0.0.1:8080/iam/", "iam", "us-east-1");
        let mut req = common::sign_with_aws(&spec);
        for (name, value) in extra {
            req.headers.insert(0, (name, value.into_bytes()));
        }
        let config = ServiceConfig::new("iam", ["us-east-1"]);
        let result = req.with(|r| {
            seashell_sigv4::verify(r, &config, common::suite_time(), |_, scope| {
                Some(SigningKey::derive(common::SECRET, scope))
            })
        });
        prop_assert!(result.is_ok(), "{:?}", result);
    }
}
