//! Query-protocol requests (IAM, STS): any query string and form body,
//! never a panic; a request that decodes can be read by every parameter
//! reader the services use, and its CloudTrail `requestParameters` is an
//! object that records every parameter (a dropped one would hide part of a
//! call from the audit trail).
#![no_main]

use libfuzzer_sys::fuzz_target;
use seashell_server::protocol::query::QueryRequest;
use seashell_server::services::iam::{params, request_parameters};

fuzz_target!(|data: &[u8]| {
    // The query string is the input up to the first newline, the body the rest.
    let (query, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    for version in ["2010-05-08", "2011-06-15"] {
        let Ok(req) = QueryRequest::decode(query, body, version) else {
            continue;
        };
        if let Some(tree) = request_parameters(&req) {
            assert!(tree.is_object(), "requestParameters is an object");
            assert_eq!(leaves(&tree), req.params.len(), "every parameter is recorded");
        }
        let _ = params::required(&req, "UserName", "userName");
        let _ = params::name(&req, "RoleName", "roleName", 64);
        let _ = params::path(&req, "Path", "path");
        let _ = params::path_prefix(&req);
        let _ = params::document(&req, "PolicyDocument", "policyDocument");
        let _ = params::policy_arn(&req);
        let _ = params::boolean(&req, "SetAsDefault", "setAsDefault");
        let _ = params::integer(&req, "DurationSeconds", "durationSeconds", 900, 43_200);
        let _ = params::page(&req);
        for prefix in ["ActionNames", "ResourceArns", "PolicyArns", "Tags"] {
            let members = params::list(&req, prefix);
            assert!(members.len() <= req.params.len());
        }
    }
});

fn leaves(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::String(_) => 1,
        serde_json::Value::Array(items) => items.iter().map(leaves).sum(),
        serde_json::Value::Object(map) => map.values().map(leaves).sum(),
        _ => 0,
    }
}
