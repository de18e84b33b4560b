//! SigV4 request parsing and verification: any request, never a panic.
//!
//! The input is read as lines: method, path, query, then `name: value`
//! headers; a blank line ends the headers and the rest is the body.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use seashell_sigv4::{Payload, Request, ServiceConfig, SigningKey};

fn text(line: Option<&[u8]>) -> &str {
    std::str::from_utf8(line.unwrap_or_default()).unwrap_or("")
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head.split(|b| *b == b'\n');
    let method = text(lines.next());
    let path = text(lines.next());
    let query = text(lines.next());
    let headers: Vec<(&str, &[u8])> = lines
        .filter_map(|l| {
            let colon = l.iter().position(|b| *b == b':')?;
            let name = std::str::from_utf8(&l[..colon]).ok()?;
            Some((name, l[colon + 1..].trim_ascii()))
        })
        .collect();
    let request = Request { method, path, query, headers: &headers, payload: Payload::Bytes(body) };
    let config = ServiceConfig::new("sts", ["us-east-1"]).allow_unsigned_payload(true);
    let now = UNIX_EPOCH + Duration::from_secs(1_440_938_160);
    if let Ok(parsed) = seashell_sigv4::parse(&request) {
        let _ = parsed.check(&config, now);
        let key = SigningKey::derive("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", &parsed.scope);
        let _ = parsed.verify(&request, &config, now, &key);
    }
});
