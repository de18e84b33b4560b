//! Every policy printed in the CloudShell user guide, with the decision the
//! guide gives, from `shared/conformance/seed-policies.json`, loaded as it is.

use std::path::PathBuf;

use seashell_policy::{evaluate, parse, Context, PolicyKind, PolicySet, Request, Verdict};
use serde::Deserialize;

#[derive(Deserialize)]
struct Corpus {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    policies: Vec<serde_json::Value>,
    policy_names: Vec<String>,
    request: CaseRequest,
    expected: String,
}

#[derive(Deserialize)]
struct CaseRequest {
    principal: String,
    action: String,
    resource: String,
    #[serde(default)]
    context: serde_json::Map<String, serde_json::Value>,
}

/// The conformance data lives beside the repository, in `shared/`; the
/// `SEASHELL_CONFORMANCE_DIR` variable may point elsewhere.
fn corpus_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("SEASHELL_CONFORMANCE_DIR") {
        return PathBuf::from(dir).join("seed-policies.json");
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    for candidate in [
        root.join("../shared/conformance"),
        root.join("shared/conformance"),
    ] {
        let file = candidate.join("seed-policies.json");
        if file.is_file() {
            return file;
        }
    }
    panic!(
        "seed-policies.json not found beside the repository (../shared/conformance); \
         set SEASHELL_CONFORMANCE_DIR"
    );
}

fn context_of(map: &serde_json::Map<String, serde_json::Value>) -> Context {
    let mut ctx = Context::new();
    for (key, value) in map {
        match value {
            serde_json::Value::Array(items) => {
                let values: Vec<String> = items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .collect();
                ctx.insert_multi(key, values);
            }
            serde_json::Value::String(s) => {
                ctx.insert(key, s.clone());
            }
            other => {
                ctx.insert(key, other.to_string());
            }
        }
    }
    ctx
}

#[test]
fn every_seed_policy_gives_the_documented_decision() {
    let path = corpus_path();
    let text = std::fs::read_to_string(&path).expect("read seed-policies.json");
    let corpus: Corpus = serde_json::from_str(&text).expect("seed-policies.json parses");
    assert!(
        corpus.cases.len() >= 50,
        "the corpus holds the guide's cases"
    );

    let mut failures = Vec::new();
    for case in &corpus.cases {
        assert_eq!(
            case.policies.len(),
            case.policy_names.len(),
            "{}",
            case.name
        );
        let documents: Vec<_> = case
            .policies
            .iter()
            .map(|p| {
                parse(&p.to_string(), PolicyKind::Managed)
                    .unwrap_or_else(|e| panic!("{}: the guide's policy must parse: {e}", case.name))
            })
            .collect();
        let mut set = PolicySet::new();
        for (name, doc) in case.policy_names.iter().zip(&documents) {
            set = set.identity(name, doc);
        }
        let ctx = context_of(&case.request.context);
        let request = Request::new(
            &case.request.principal,
            &case.request.action,
            &case.request.resource,
            &ctx,
        );
        let decision = evaluate(&request, &set);
        let expected = match case.expected.as_str() {
            "Allow" => Verdict::Allow,
            "ImplicitDeny" => Verdict::ImplicitDeny,
            "ExplicitDeny" => Verdict::ExplicitDeny,
            other => panic!("{}: unknown expected decision {other}", case.name),
        };
        if decision.verdict != expected {
            failures.push(format!(
                "{}: expected {:?}, got {:?} ({decision})",
                case.name, expected, decision.verdict
            ));
        }
        // A decision other than an implicit deny always names its statement.
        if decision.verdict != Verdict::ImplicitDeny {
            assert!(decision.statement().is_some(), "{}", case.name);
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
