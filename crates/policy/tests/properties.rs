//! Properties over generated policies and requests: parsing never panics,
//! parse → serialize → parse gives the same document, evaluation never panics
//! and is deterministic.

use proptest::prelude::*;
use serde_json::{json, Map, Value};

use seashell_policy::{evaluate, explain, parse, Context, PolicyKind, PolicySet, Request};

const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnEquals",
    "ArnLike",
    "ArnNotEquals",
    "ArnNotLike",
    "Null",
];

const KEYS: &[&str] = &[
    "aws:username",
    "aws:SourceIp",
    "aws:CurrentTime",
    "aws:MultiFactorAuthPresent",
    "aws:PrincipalTag/team",
    "cloudshell:VpcIds",
    "aws:TagKeys",
    "aws:SourceArn",
    "n",
];

/// Values of every type the operators take, plus some that no operator takes.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("true".to_string()),
        Just("false".to_string()),
        (0i64..100).prop_map(|n| n.to_string()),
        Just("2024-06-01T12:00:00Z".to_string()),
        Just("1717243200".to_string()),
        Just("10.0.0.0/8".to_string()),
        Just("2001:db8::/32".to_string()),
        Just("QmluYXJ5".to_string()),
        Just("arn:aws:cloudshell:*:123456789012:environment/*".to_string()),
        Just("${aws:username}".to_string()),
        Just("${aws:PrincipalTag/team, 'none'}".to_string()),
        Just("${*}${?}${$}".to_string()),
        "[a-z*?]{0,6}",
        any::<String>(),
    ]
}

fn operator() -> impl Strategy<Value = String> {
    (
        prop::sample::select(OPERATORS),
        prop_oneof![Just(""), Just("ForAnyValue:"), Just("ForAllValues:")],
        any::<bool>(),
    )
        .prop_map(|(op, q, if_exists)| {
            let suffix = if if_exists { "IfExists" } else { "" };
            format!("{q}{op}{suffix}")
        })
}

fn condition() -> impl Strategy<Value = Value> {
    prop::collection::vec(
        (
            operator(),
            prop::collection::vec(
                (
                    prop::sample::select(KEYS),
                    prop::collection::vec(value(), 1..3),
                ),
                1..3,
            ),
        ),
        0..3,
    )
    .prop_map(|ops| {
        let mut block = Map::new();
        for (op, keys) in ops {
            let mut k = Map::new();
            for (key, values) in keys {
                k.insert(key.to_string(), json!(values));
            }
            block.insert(op, Value::Object(k));
        }
        Value::Object(block)
    })
}

fn action() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        Just("cloudshell:*".to_string()),
        Just("cloudshell:Create*".to_string()),
        Just("iam:Get?ser".to_string()),
        Just("sts:GetCallerIdentity".to_string()),
        "[a-z]{1,8}:[A-Za-z*?]{1,8}",
    ]
}

fn resource() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("*".to_string()),
        Just("arn:aws:iam::*:user/${aws:username}".to_string()),
        Just("arn:aws:s3:::bucket/*".to_string()),
        Just("arn:aws:cloudshell:*:123456789012:environment/*".to_string()),
        "arn:aws:[a-z]{1,5}:[a-z0-9*-]{0,9}:[0-9*]{0,12}:[a-z/*?]{1,10}",
    ]
}

fn statement() -> impl Strategy<Value = Value> {
    (
        prop::option::of("[A-Za-z0-9]{1,8}"),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(action(), 1..4),
        any::<bool>(),
        prop::collection::vec(resource(), 1..3),
        condition(),
    )
        .prop_map(
            |(sid, allow, not_action, actions, not_resource, resources, cond)| {
                let mut s = Map::new();
                if let Some(sid) = sid {
                    s.insert("Sid".into(), sid.into());
                }
                s.insert("Effect".into(), if allow { "Allow" } else { "Deny" }.into());
                s.insert(
                    if not_action { "NotAction" } else { "Action" }.into(),
                    json!(actions),
                );
                s.insert(
                    if not_resource {
                        "NotResource"
                    } else {
                        "Resource"
                    }
                    .into(),
                    json!(resources),
                );
                if cond.as_object().is_some_and(|c| !c.is_empty()) {
                    s.insert("Condition".into(), cond);
                }
                Value::Object(s)
            },
        )
}

fn policy() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just(Some("2012-10-17")),
            Just(Some("2008-10-17")),
            Just(None)
        ],
        prop::collection::vec(statement(), 1..5),
    )
        .prop_map(|(version, statements)| {
            let mut doc = Map::new();
            if let Some(v) = version {
                doc.insert("Version".into(), v.into());
            }
            doc.insert("Statement".into(), Value::Array(statements));
            Value::Object(doc).to_string()
        })
}

fn context() -> impl Strategy<Value = Context> {
    prop::collection::vec(
        (
            prop::sample::select(KEYS),
            prop::collection::vec(value(), 0..3),
        ),
        0..6,
    )
    .prop_map(|entries| {
        let mut ctx = Context::new();
        for (key, values) in entries {
            if values.len() == 1 {
                ctx.insert(key, values[0].clone());
            } else {
                ctx.insert_multi(key, values);
            }
        }
        ctx
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsing_arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse(&text, PolicyKind::Managed);
        let _ = parse(&text, PolicyKind::Trust);
    }

    #[test]
    fn parsing_mutated_policies_never_panics(p in policy(), cut in 0usize..400, junk in any::<String>()) {
        let mut text = p;
        let at = (0..=cut.min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.insert_str(at, &junk);
        let _ = parse(&text, PolicyKind::Unchecked);
    }

    #[test]
    fn round_trip(p in policy()) {
        if let Ok(doc) = parse(&p, PolicyKind::Unchecked) {
            let text = doc.to_string();
            let again = parse(&text, PolicyKind::Unchecked);
            prop_assert!(again.is_ok(), "serialized form must parse: {text}");
            let again = again.unwrap_or_else(|_| unreachable!());
            prop_assert_eq!(&doc, &again);
            prop_assert_eq!(text, again.to_string());
        }
    }

    #[test]
    fn evaluation_never_panics_and_is_deterministic(
        policies in prop::collection::vec(policy(), 0..4),
        boundary in prop::option::of(policy()),
        ctx in context(),
        action in prop_oneof![action(), any::<String>()],
        resource in prop_oneof![resource(), any::<String>()],
        principal in prop_oneof![
            Just("arn:aws:iam::123456789012:user/alice".to_string()),
            Just("arn:aws:sts::123456789012:assumed-role/Ops/alice".to_string()),
            any::<String>(),
        ],
    ) {
        let docs: Vec<_> = policies.iter().filter_map(|p| parse(p, PolicyKind::Unchecked).ok()).collect();
        let names: Vec<String> = (0..docs.len()).map(|i| format!("p{i}")).collect();
        let boundary_doc = boundary.and_then(|b| parse(&b, PolicyKind::Unchecked).ok());
        let mut set = PolicySet::new();
        for (name, doc) in names.iter().zip(&docs) {
            set = set.identity(name, doc);
        }
        if let Some(b) = &boundary_doc {
            set = set.boundary("boundary", b);
        }
        let req = Request::new(&principal, &action, &resource, &ctx);
        let first = evaluate(&req, &set);
        let second = evaluate(&req, &set);
        prop_assert_eq!(first, second);
        let explained = explain(&req, &set);
        prop_assert_eq!(explained.decision, first);
        // A decisive statement is always among the matched ones.
        if let Some(s) = first.statement() {
            prop_assert!(explained.matched.contains(s));
        }
    }
}

/// The round-trip property is only worth something if most generated
/// policies are valid: check the generator.
#[test]
fn generated_policies_are_mostly_valid() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = policy();
    let mut valid = 0;
    let mut with_conditions = 0;
    for _ in 0..300 {
        let Ok(tree) = strategy.new_tree(&mut runner) else {
            continue;
        };
        if let Ok(doc) = parse(&tree.current(), PolicyKind::Unchecked) {
            valid += 1;
            if doc.statements().iter().any(|s| !s.conditions().is_empty()) {
                with_conditions += 1;
            }
        }
    }
    assert!(valid >= 60, "only {valid} of 300 generated policies parse");
    assert!(
        with_conditions >= 20,
        "only {with_conditions} valid policies have conditions"
    );
}
