//! Runs every case of the AWS SigV4 test suite (tests/data/aws-signing-test-suite,
//! Apache-2.0, see NOTICE there) through the verifier, in both the header
//! and the pre-signed query form.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::OwnedRequest;
use seashell_sigv4::{parse, Error, ServiceConfig, SigningKey};

struct Case {
    name: String,
    dir: PathBuf,
    context: serde_json::Value,
}

impl Case {
    fn read(&self, file: &str) -> Vec<u8> {
        fs::read(self.dir.join(file)).unwrap_or_else(|e| panic!("{}/{file}: {e}", self.name))
    }

    fn read_str(&self, file: &str) -> String {
        String::from_utf8(self.read(file)).expect("utf-8 expectation file")
    }

    fn secret(&self) -> &str {
        self.context["credentials"]["secret_access_key"]
            .as_str()
            .expect("secret in context.json")
    }

    fn config(&self, query_form: bool) -> ServiceConfig {
        let normalize = self.context["normalize"].as_bool().unwrap_or(true);
        let omit_token = self.context["omit_session_token"]
            .as_bool()
            .unwrap_or(false);
        ServiceConfig::new(
            self.context["service"].as_str().expect("service"),
            [self.context["region"].as_str().expect("region")],
        )
        .normalize_path(normalize)
        .query_session_token_unsigned(query_form && omit_token)
    }
}

fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/aws-signing-test-suite/v4");
    let mut cases: Vec<Case> = fs::read_dir(&root)
        .expect("test suite directory")
        .map(|entry| {
            let dir = entry.expect("dir entry").path();
            let name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .expect("case name")
                .to_owned();
            let context =
                serde_json::from_slice(&fs::read(dir.join("context.json")).expect("context.json"))
                    .expect("context.json is JSON");
            Case { name, dir, context }
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(cases.len(), 38, "the suite has 38 SigV4 cases");
    cases
}

/// Parses the suite's raw HTTP/1.1 text: request line, headers (lines that
/// start with whitespace continue the previous value), blank line, body.
fn parse_http(raw: &[u8]) -> OwnedRequest {
    let text = String::from_utf8(raw.to_vec()).expect("utf-8 request");
    let (head, body) = match text.split_once("\n\n") {
        Some((head, body)) => (head.to_owned(), body.as_bytes().to_vec()),
        None => (text.trim_end_matches('\n').to_owned(), Vec::new()),
    };
    let mut lines = head.lines();
    let request_line = lines.next().expect("request line");
    let (method, rest) = request_line.split_once(' ').expect("method");
    let target = rest.strip_suffix(" HTTP/1.1").expect("HTTP/1.1");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().expect("continuation after a header");
            last.1.push(b'\n');
            last.1.extend_from_slice(line.as_bytes());
        } else {
            let (name, value) = line.split_once(':').expect("header colon");
            headers.push((name.to_owned(), value.as_bytes().to_vec()));
        }
    }
    OwnedRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body,
    }
}

fn verify_case(
    case: &Case,
    req: &OwnedRequest,
    config: &ServiceConfig,
    secret: &str,
) -> Result<(), Error> {
    req.with(|r| {
        seashell_sigv4::verify(r, config, common::suite_time(), |akid, scope| {
            (akid == common::AKID).then(|| SigningKey::derive(secret, scope))
        })
    })
    .map(|v| {
        assert_eq!(v.access_key_id, common::AKID, "{}", case.name);
        assert_eq!(v.scope.date, "20150830");
        assert_eq!(v.region(), "us-east-1");
        assert_eq!(v.service(), "service");
    })
}

fn run_form(case: &Case, form: &str) {
    let query_form = form == "query";
    let config = case.config(query_form);
    let signed = parse_http(&case.read(&format!("{form}-signed-request.txt")));
    let label = format!("{} ({form})", case.name);

    // Canonical request and string to sign match the suite byte for byte.
    let auth = signed
        .with(parse)
        .unwrap_or_else(|e| panic!("{label}: parse: {e:?}"));
    let creq = signed
        .with(|r| auth.canonical_request(r, &config))
        .unwrap_or_else(|e| panic!("{label}: canonical request: {e:?}"));
    assert_eq!(
        String::from_utf8_lossy(&creq),
        case.read_str(&format!("{form}-canonical-request.txt")),
        "{label}: canonical request"
    );
    let sts = auth.string_to_sign(&creq);
    assert_eq!(
        sts,
        case.read_str(&format!("{form}-string-to-sign.txt")),
        "{label}: string to sign"
    );
    assert_eq!(
        auth.signature,
        case.read_str(&format!("{form}-signature.txt")),
        "{label}: signature parsed"
    );

    // The genuine request verifies, and carries its session token.
    verify_case(case, &signed, &config, case.secret())
        .unwrap_or_else(|e| panic!("{label}: verify: {e:?}"));
    let expected_token = case.context["credentials"]["token"].as_str();
    assert_eq!(
        auth.session_token.as_deref(),
        expected_token,
        "{label}: token"
    );

    // One flipped signature character.
    let mut tampered = signed.clone();
    if query_form {
        let sig = auth.signature.clone();
        let flipped = flip_hex(&sig);
        tampered.query = tampered.query.replace(&sig, &flipped);
    } else {
        let value = String::from_utf8(signed.header("authorization").expect("auth").to_vec())
            .expect("utf-8");
        let flipped = value.replace(&auth.signature, &flip_hex(&auth.signature));
        tampered.set_header("Authorization", flipped.as_bytes());
    }
    assert!(
        matches!(
            verify_case(case, &tampered, &config, case.secret()),
            Err(Error::SignatureMismatch { .. })
        ),
        "{label}: flipped signature accepted"
    );

    // A different body.
    let mut tampered = signed.clone();
    tampered.body.push(b'!');
    let err =
        verify_case(case, &tampered, &config, case.secret()).expect_err("body change accepted");
    assert!(
        matches!(
            err,
            Error::SignatureMismatch { .. } | Error::ContentSha256Mismatch { .. }
        ),
        "{label}: body change gave {err:?}"
    );

    // Each signed header, changed by one byte.
    for name in &auth.signed_headers {
        let mut tampered = signed.clone();
        let Some(value) = tampered.header(name).map(<[u8]>::to_vec) else {
            continue;
        };
        let mut value = value;
        match value.iter_mut().rev().find(|b| b.is_ascii_alphanumeric()) {
            Some(b) => *b = if *b == b'0' { b'1' } else { b'0' },
            None => value.push(b'x'),
        }
        tampered.set_header(name, &value);
        assert!(
            verify_case(case, &tampered, &config, case.secret()).is_err(),
            "{label}: change to signed header {name} accepted"
        );
    }

    // The wrong secret.
    let wrong = format!("{}x", case.secret());
    assert!(
        matches!(
            verify_case(case, &signed, &config, &wrong),
            Err(Error::SignatureMismatch { .. })
        ),
        "{label}: wrong secret accepted"
    );
}

fn flip_hex(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    if let Some(c) = chars.get_mut(10) {
        *c = if *c == '0' { '1' } else { '0' };
    }
    chars.into_iter().collect()
}

#[test]
fn every_case_header_form() {
    for case in cases() {
        run_form(&case, "header");
    }
}

#[test]
fn every_case_query_form() {
    for case in cases() {
        run_form(&case, "query");
    }
}

/// The unsigned request (`request.txt`) has no authentication at all.
#[test]
fn unsigned_requests_are_missing_authentication() {
    for case in cases() {
        let req = parse_http(&case.read("request.txt"));
        assert_eq!(
            req.with(parse),
            Err(Error::MissingAuthentication),
            "{}",
            case.name
        );
    }
}

/// Normalized cases signed without normalization are refused when the
/// normalization differs, and vice versa, so the setting really matters.
#[test]
fn normalization_setting_is_honoured() {
    for case in cases()
        .iter()
        .filter(|c| c.name == "get-slashes-unnormalized")
    {
        let signed = parse_http(&case.read("header-signed-request.txt"));
        let config = case.config(false).normalize_path(true);
        assert!(matches!(
            verify_case(case, &signed, &config, case.secret()),
            Err(Error::SignatureMismatch { .. })
        ));
    }
}
