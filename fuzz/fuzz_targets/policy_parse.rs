//! Policy parser: any bytes in, never a panic; whatever parses serializes to
//! a document that parses to the same thing, and evaluates without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seashell_policy::{evaluate, parse, Context, PolicyKind, PolicySet, Request};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for kind in [PolicyKind::Managed, PolicyKind::Trust, PolicyKind::Unchecked] {
        let Ok(doc) = parse(text, kind) else {
            continue;
        };
        let again = parse(&doc.to_string(), PolicyKind::Unchecked).expect("serialized form parses");
        assert_eq!(doc, again, "round trip");
        let mut ctx = Context::new();
        ctx.insert("aws:username", "alice")
            .insert("aws:SourceIp", "203.0.113.7")
            .insert("aws:CurrentTime", "2026-11-24T12:00:00Z")
            .insert_multi("aws:TagKeys", ["env", "team"]);
        let set = PolicySet::new().identity("fuzzed", &doc).boundary("fuzzed", &doc);
        for (action, resource) in [
            ("cloudshell:CreateSession", "*"),
            ("iam:GetUser", "arn:aws:iam::123456789012:user/alice"),
        ] {
            let req = Request::new("arn:aws:iam::123456789012:user/alice", action, resource, &ctx);
            let _ = evaluate(&req, &set);
        }
    }
});
