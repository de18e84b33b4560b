//! Evaluation throughput: a typical CloudShell request against
//! (a) `AWSCloudShellFullAccess` and
//! (b) a user with 10 attached policies of 10 statements each, with conditions.
//!
//! Run with `cargo bench -p seashell-policy`; evaluations per second per core
//! are 1 / the reported time.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use seashell_policy::{evaluate, parse, Context, PolicyDocument, PolicyKind, PolicySet, Request};

const FULL_ACCESS: &str = r#"{
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["cloudshell:*"], "Resource": "*"}]
}"#;

const PRINCIPAL: &str = "arn:aws:iam::123456789012:user/alice";

fn typical_context() -> Context {
    let mut ctx = Context::new();
    ctx.insert("aws:username", "alice")
        .insert("aws:userid", "AIDAEXAMPLEALICE")
        .insert("aws:PrincipalArn", PRINCIPAL)
        .insert("aws:PrincipalAccount", "123456789012")
        .insert("aws:SourceIp", "203.0.113.7")
        .insert("aws:CurrentTime", "2026-11-24T12:00:00Z")
        .insert("aws:SecureTransport", "true")
        .insert("aws:MultiFactorAuthPresent", "true")
        .insert("aws:RequestedRegion", "eu-west-1")
        .insert("aws:PrincipalTag/team", "platform");
    ctx
}

/// Ten policies of ten statements, each with five conditions. The request is
/// allowed by the very last statement, and every third statement is a `Deny`
/// whose action matches and whose conditions are evaluated to the last one
/// (which fails), so the figure includes real condition work, not just action
/// mismatches.
fn ten_by_ten() -> Vec<PolicyDocument> {
    let services = [
        "iam",
        "sts",
        "s3",
        "ec2",
        "logs",
        "kms",
        "ssm",
        "sqs",
        "sns",
        "cloudshell",
    ];
    (0..10)
        .map(|p| {
            let statements: Vec<String> = (0..10)
                .map(|s| {
                    let service = services[(p + s) % services.len()];
                    let last = p == 9 && s == 9;
                    let deny = !last && s % 3 == 0;
                    let (effect, action, team) = if last {
                        ("Allow", "cloudshell:*".to_string(), "plat*")
                    } else if deny {
                        ("Deny", "cloudshell:*".to_string(), "security*")
                    } else {
                        ("Allow", format!("{service}:Get*"), "plat*")
                    };
                    format!(
                        r#"{{"Sid":"S{p}x{s}","Effect":"{effect}","Action":["{action}","{service}:List*"],
                        "Resource":["arn:aws:{service}:*:${{aws:PrincipalAccount}}:thing/${{aws:username}}/*","*"],
                        "Condition":{{
                          "Bool":{{"aws:MultiFactorAuthPresent":"true"}},
                          "DateLessThan":{{"aws:CurrentTime":"2030-01-01T00:00:00Z"}},
                          "IpAddress":{{"aws:SourceIp":["198.51.100.0/24","203.0.113.0/24","2001:db8::/32"]}},
                          "StringEquals":{{"aws:RequestedRegion":["us-east-1","eu-west-1"]}},
                          "StringLike":{{"aws:PrincipalTag/team":["{team}","${{aws:username}}-team"]}}}}}}"#
                    )
                })
                .collect();
            let json = format!(
                r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
                statements.join(",")
            );
            parse(&json, PolicyKind::Managed).unwrap_or_else(|e| panic!("benchmark policy: {e}"))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let ctx = typical_context();
    let request = Request::new(PRINCIPAL, "cloudshell:CreateSession", "*", &ctx);

    let full = parse(FULL_ACCESS, PolicyKind::Managed).unwrap_or_else(|e| panic!("{e}"));
    let set = PolicySet::new().identity("AWSCloudShellFullAccess", &full);
    assert!(evaluate(&request, &set).is_allowed());
    let mut group = c.benchmark_group("evaluate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("AWSCloudShellFullAccess", |b| {
        b.iter(|| evaluate(black_box(&request), black_box(&set)))
    });

    let docs = ten_by_ten();
    let names: Vec<String> = (0..docs.len()).map(|i| format!("Policy{i}")).collect();
    let mut set = PolicySet::new();
    for (name, doc) in names.iter().zip(&docs) {
        set = set.identity(name, doc);
    }
    let decision = evaluate(&request, &set);
    assert!(decision.is_allowed(), "{decision}");
    group.bench_function("10 policies x 10 statements with conditions", |b| {
        b.iter(|| evaluate(black_box(&request), black_box(&set)))
    });
    group.finish();

    let mut group = c.benchmark_group("parse");
    group.bench_function("AWSCloudShellFullAccess", |b| {
        b.iter(|| parse(black_box(FULL_ACCESS), PolicyKind::Managed))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
