//! The canonical request and string to sign, built exactly as AWS signers
//! build them for every service except S3.
//!
//! The inputs are the request as it arrived on the wire: the path still
//! percent-encoded, the query string raw. That is what makes the "double
//! encoding" rule come out right: signers encode the path once to send it and
//! once more to sign it, so encoding the received path once more reproduces
//! their canonical URI.

use percent_encoding::{percent_decode, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};

use crate::Header;

/// Everything but RFC 3986 unreserved characters is encoded, as SigV4
/// requires; this differs from form encoding (which keeps `*` and turns
/// spaces into `+`).
const QUERY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The same set for paths, where `/` separates segments and stays literal.
const PATH_ENCODE: &AsciiSet = &QUERY_ENCODE.remove(b'/');

/// The SigV4 algorithm name, first line of the string to sign.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The canonical URI: the received path, optionally normalized (dot segments
/// and empty segments removed), then percent-encoded once more.
///
/// Normalization is what every AWS service except S3 does, so a client that
/// sends `/a/./b` or `//a//` signs the tidy path.
pub fn canonical_uri(raw_path: &str, normalize: bool) -> String {
    let path = if normalize {
        normalize_path(raw_path)
    } else if raw_path.is_empty() {
        "/".to_owned()
    } else {
        raw_path.to_owned()
    };
    utf8_percent_encode(&path, PATH_ENCODE).to_string()
}

/// Removes `.` and `..` segments (RFC 3986 §5.2.4) and empty segments,
/// keeping a trailing slash when the input had one.
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    // "/a/b/", "/a/b/." and "/a/b/c/.." all name a directory: keep the slash
    // that says so, since signers do.
    let names_directory = ["/", "/.", "/.."].iter().any(|end| path.ends_with(end));
    if out.is_empty() || names_directory {
        out.push('/');
    }
    out
}

/// Splits a raw query string into decoded `(name, value)` pairs, in order.
///
/// Decoding follows `application/x-www-form-urlencoded` (`+` is a space),
/// as the AWS SDKs do before re-encoding; empty `&&` pieces are skipped and a
/// name without `=` has an empty value.
pub fn parse_query(raw_query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw_query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (form_decode(name), form_decode(value))
        })
        .collect()
}

fn form_decode(s: &str) -> Vec<u8> {
    let plus_as_space: Vec<u8> = s
        .bytes()
        .map(|b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&plus_as_space).collect()
}

/// Percent-encodes bytes with the SigV4 (RFC 3986 unreserved) set.
pub fn uri_encode(bytes: &[u8]) -> String {
    percent_encoding::percent_encode(bytes, QUERY_ENCODE).to_string()
}

/// The canonical query string: every parameter decoded, re-encoded with the
/// SigV4 set, sorted by encoded name then encoded value, joined with `&`.
///
/// `skip` names a parameter left out: `X-Amz-Signature` for pre-signed URLs,
/// whose signature cannot sign itself (and, where a service adds the session
/// token after signing, `X-Amz-Security-Token`).
pub fn canonical_query(raw_query: &str, skip: &[&str]) -> String {
    let mut pairs: Vec<(String, String)> = parse_query(raw_query)
        .into_iter()
        .filter(|(name, _)| !skip.iter().any(|s| s.as_bytes() == name.as_slice()))
        .map(|(name, value)| (uri_encode(&name), uri_encode(&value)))
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// A header value as signed: surrounding whitespace trimmed, every inner run
/// of whitespace (including folded line breaks) made one space.
///
/// botocore folds all whitespace, not only spaces; doing the same accepts its
/// signatures and those of signers that fold spaces only, which differ solely
/// for values with tabs or line breaks that HTTP/1.1 servers reject anyway.
pub fn canonical_header_value(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    for word in value
        .split(|b| b.is_ascii_whitespace() || *b == 0x0b)
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(word);
    }
    out
}

/// The canonical headers block: one `name:value\n` line per signed header,
/// in the order of `signed_headers`, where a header sent several times has
/// its values joined with `,` in the order received. A signed header that is
/// absent is signed with an empty value, which then fails the comparison as
/// it should.
pub fn canonical_headers(headers: &[Header<'_>], signed_headers: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for name in signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut first = true;
        for (_, value) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&canonical_header_value(value));
        }
        out.push(b'\n');
    }
    out
}

/// The parts of a canonical request besides the request itself.
#[derive(Debug, Clone, Copy)]
pub struct CanonicalParts<'a> {
    /// The `SignedHeaders` list, lower-case names in the order the signer
    /// gave them.
    pub signed_headers: &'a [String],
    /// The hashed payload line: a lower-case SHA-256 hex digest or
    /// `UNSIGNED-PAYLOAD`.
    pub payload_hash: &'a str,
    /// Query parameters left out of the canonical query string.
    pub skip_query: &'a [&'a str],
    /// Whether the path is normalized (every service but S3).
    pub normalize_path: bool,
}

/// Builds the canonical request:
///
/// ```text
/// METHOD\nURI\nQUERY\nHEADERS\n\nSIGNED;HEADERS\nPAYLOAD-HASH
/// ```
///
/// Returned as bytes because header values need not be UTF-8.
pub fn canonical_request(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &[Header<'_>],
    parts: CanonicalParts<'_>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(raw_path, parts.normalize_path).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(raw_query, parts.skip_query).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&canonical_headers(headers, parts.signed_headers));
    out.push(b'\n');
    out.extend_from_slice(parts.signed_headers.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(parts.payload_hash.as_bytes());
    out
}

/// Builds the string to sign from the request time (`YYYYMMDDTHHMMSSZ`), the
/// credential scope (`date/region/service/aws4_request`) and the canonical
/// request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request)
    )
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_paths() {
        let cases = [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/a/./b", "/a/b"),
            ("/a/../b/", "/b/"),
            ("/a/b/..", "/a/"),
            ("/..", "/"),
            ("/../..", "/"),
            ("//example//", "/example/"),
            ("/example/..", "/"),
            ("/./", "/"),
            ("a/b", "/a/b"),
            ("/a/b/.", "/a/b/"),
            ("/a%2F..", "/a%2F.."),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_path(input), expected, "{input:?}");
        }
    }

    #[test]
    fn encodes_path_once_more() {
        assert_eq!(canonical_uri("/a%20b/c d", true), "/a%2520b/c%20d");
        assert_eq!(canonical_uri("/-._~", true), "/-._~");
        assert_eq!(canonical_uri("//x", false), "//x");
    }

    #[test]
    fn canonical_query_sorts_encoded() {
        assert_eq!(canonical_query("b=2&a=1&a=0", &[]), "a=0&a=1&b=2");
        assert_eq!(canonical_query("x&y=", &[]), "x=&y=");
        assert_eq!(canonical_query("a+b=c%2fd&&", &[]), "a%20b=c%2Fd");
        assert_eq!(canonical_query("aA=1&a%5B=2", &[]), "a%5B=2&aA=1");
        assert_eq!(
            canonical_query("X-Amz-Signature=s&k=v", &["X-Amz-Signature"]),
            "k=v"
        );
        assert_eq!(canonical_query("", &[]), "");
    }

    #[test]
    fn folds_header_whitespace() {
        assert_eq!(canonical_header_value(b"  a   b\t\tc \n d  "), b"a b c d");
        assert_eq!(canonical_header_value(b""), b"");
        assert_eq!(canonical_header_value(b"\"a   b\""), b"\"a b\"");
    }
}
