//! Unit tests for every operator family, qualifier and absent-key rule.

use super::*;

fn cond(op: &str, key: &str, values: &[&str]) -> Condition {
    let operator = Operator::parse(op).expect("operator parses");
    Condition::new(
        op,
        operator,
        key,
        values.iter().map(|s| s.to_string()).collect(),
        true,
    )
    .expect("values compile")
}

fn eval(op: &str, key: &str, values: &[&str], ctx: &Context) -> bool {
    cond(op, key, values).evaluate(ctx).expect("resolvable")
}

fn ctx1(key: &str, value: &str) -> Context {
    let mut c = Context::new();
    c.insert(key, value);
    c
}

fn ctxn(key: &str, values: &[&str]) -> Context {
    let mut c = Context::new();
    c.insert_multi(key, values.iter().copied());
    c
}

#[test]
fn string_equals_family() {
    let c = ctx1("k", "Alice");
    assert!(eval("StringEquals", "k", &["Alice"], &c));
    assert!(!eval("StringEquals", "k", &["alice"], &c));
    assert!(
        eval("StringEquals", "k", &["x", "Alice"], &c),
        "values are ORed"
    );
    assert!(
        !eval("StringEquals", "k", &["Al*"], &c),
        "no wildcards in Equals"
    );
    assert!(eval("StringNotEquals", "k", &["Bob"], &c));
    assert!(!eval("StringNotEquals", "k", &["Bob", "Alice"], &c), "NOR");
    assert!(eval("StringEqualsIgnoreCase", "k", &["aLICE"], &c));
    assert!(!eval("StringNotEqualsIgnoreCase", "k", &["ALICE"], &c));
    assert!(eval("StringNotEqualsIgnoreCase", "k", &["Bob"], &c));
    assert!(eval("StringLike", "k", &["A*e"], &c));
    assert!(eval("StringLike", "k", &["?lice"], &c));
    assert!(
        !eval("StringLike", "k", &["a*"], &c),
        "Like is case-sensitive"
    );
    assert!(eval("StringNotLike", "k", &["B*"], &c));
    assert!(!eval("StringNotLike", "k", &["B*", "A*"], &c));
}

#[test]
fn ignore_case_is_unicode_aware() {
    let c = ctx1("k", "ÉCOLE");
    assert!(eval("StringEqualsIgnoreCase", "k", &["école"], &c));
}

#[test]
fn empty_strings() {
    let c = ctx1("k", "");
    assert!(eval("StringEquals", "k", &[""], &c));
    assert!(!eval("StringEquals", "k", &["x"], &c));
    assert!(eval("StringLike", "k", &["*"], &c));
    assert!(!eval("StringLike", "k", &["?"], &c));
    // An empty string is a value: the key is present.
    assert!(eval("Null", "k", &["false"], &c));
}

#[test]
fn numeric_family() {
    let c = ctx1("n", "10");
    assert!(eval("NumericEquals", "n", &["10"], &c));
    assert!(eval("NumericEquals", "n", &["10.0"], &c));
    assert!(!eval("NumericNotEquals", "n", &["10"], &c));
    assert!(eval("NumericNotEquals", "n", &["11"], &c));
    assert!(eval("NumericLessThan", "n", &["11"], &c));
    assert!(!eval("NumericLessThan", "n", &["10"], &c));
    assert!(eval("NumericLessThanEquals", "n", &["10"], &c));
    assert!(eval("NumericGreaterThan", "n", &["9.5"], &c));
    assert!(!eval("NumericGreaterThan", "n", &["10"], &c));
    assert!(eval("NumericGreaterThanEquals", "n", &["10"], &c));
    assert!(eval("NumericLessThan", "n", &["-1", "20"], &c), "ORed");
    // A request value that is not a number satisfies nothing, negated or not.
    let bad = ctx1("n", "ten");
    assert!(!eval("NumericEquals", "n", &["10"], &bad));
    assert!(!eval("NumericNotEquals", "n", &["10"], &bad));
}

#[test]
fn date_family_with_time_zones_and_epochs() {
    let c = ctx1("aws:CurrentTime", "2024-06-01T12:00:00Z");
    assert!(eval(
        "DateEquals",
        "aws:CurrentTime",
        &["2024-06-01T14:00:00+02:00"],
        &c
    ));
    assert!(eval("DateEquals", "aws:CurrentTime", &["1717243200"], &c));
    assert!(!eval(
        "DateNotEquals",
        "aws:CurrentTime",
        &["1717243200"],
        &c
    ));
    assert!(eval(
        "DateNotEquals",
        "aws:CurrentTime",
        &["2024-06-01"],
        &c
    ));
    assert!(eval("DateLessThan", "aws:CurrentTime", &["2024-06-02"], &c));
    assert!(!eval(
        "DateLessThan",
        "aws:CurrentTime",
        &["2024-06-01T07:00:00-05:00"],
        &c
    ));
    assert!(eval(
        "DateLessThanEquals",
        "aws:CurrentTime",
        &["2024-06-01T07:00:00-05:00"],
        &c
    ));
    assert!(eval(
        "DateGreaterThan",
        "aws:CurrentTime",
        &["2024-06-01"],
        &c
    ));
    assert!(eval(
        "DateGreaterThanEquals",
        "aws:CurrentTime",
        &["2024-06-01T12:00:00Z"],
        &c
    ));
    assert!(!eval(
        "DateGreaterThan",
        "aws:CurrentTime",
        &["2024-06-01T12:00:00Z"],
        &c
    ));
    // Epoch on the request side too.
    let epoch = ctx1("t", "1717243200");
    assert!(eval("DateEquals", "t", &["2024-06-01T12:00:00Z"], &epoch));
}

#[test]
fn bool_operator() {
    let c = ctx1("aws:SecureTransport", "true");
    assert!(eval("Bool", "aws:SecureTransport", &["true"], &c));
    assert!(eval("Bool", "aws:SecureTransport", &["TRUE"], &c));
    assert!(!eval("Bool", "aws:SecureTransport", &["false"], &c));
    assert!(!eval(
        "Bool",
        "aws:SecureTransport",
        &["false"],
        &Context::new()
    ));
    assert!(eval(
        "BoolIfExists",
        "aws:SecureTransport",
        &["false"],
        &Context::new()
    ));
    assert!(!eval(
        "Bool",
        "aws:SecureTransport",
        &["true"],
        &ctx1("aws:SecureTransport", "maybe")
    ));
}

#[test]
fn binary_equals() {
    let c = ctx1("k", "QmluYXJ5");
    assert!(eval("BinaryEquals", "k", &["QmluYXJ5"], &c));
    assert!(eval(
        "BinaryEquals",
        "k",
        &["QmluYXJ5"],
        &ctx1("k", "QmluYXJ5\n")
    ));
    assert!(!eval("BinaryEquals", "k", &["QmluYXJ4"], &c));
}

#[test]
fn ip_addresses_v4_and_v6() {
    let v4 = ctx1("aws:SourceIp", "203.0.113.7");
    assert!(eval("IpAddress", "aws:SourceIp", &["203.0.113.0/24"], &v4));
    assert!(eval("IpAddress", "aws:SourceIp", &["203.0.113.7"], &v4));
    assert!(!eval(
        "IpAddress",
        "aws:SourceIp",
        &["198.51.100.0/24"],
        &v4
    ));
    assert!(eval(
        "NotIpAddress",
        "aws:SourceIp",
        &["198.51.100.0/24"],
        &v4
    ));
    assert!(!eval(
        "NotIpAddress",
        "aws:SourceIp",
        &["10.0.0.0/8", "203.0.113.0/24"],
        &v4
    ));
    let v6 = ctx1("aws:SourceIp", "2001:db8:85a3::8a2e:370:7334");
    assert!(eval("IpAddress", "aws:SourceIp", &["2001:db8::/32"], &v6));
    assert!(!eval("IpAddress", "aws:SourceIp", &["2001:db9::/32"], &v6));
    assert!(
        !eval("IpAddress", "aws:SourceIp", &["203.0.113.0/24"], &v6),
        "families differ"
    );
    assert!(eval(
        "IpAddress",
        "aws:SourceIp",
        &["0.0.0.0/0", "::/0"],
        &v6
    ));
    let mapped = ctx1("aws:SourceIp", "::ffff:203.0.113.7");
    assert!(eval(
        "IpAddress",
        "aws:SourceIp",
        &["203.0.113.0/24"],
        &mapped
    ));
    assert!(!eval(
        "IpAddress",
        "aws:SourceIp",
        &["0.0.0.0/0"],
        &ctx1("aws:SourceIp", "localhost")
    ));
}

#[test]
fn arn_family() {
    let c = ctx1(
        "aws:SourceArn",
        "arn:aws:cloudshell:us-east-1:123456789012:environment/e-1",
    );
    for op in ["ArnEquals", "ArnLike"] {
        assert!(eval(
            op,
            "aws:SourceArn",
            &["arn:aws:cloudshell:*:123456789012:environment/*"],
            &c
        ));
        assert!(!eval(
            op,
            "aws:SourceArn",
            &["arn:aws:cloudshell:*:999999999999:*"],
            &c
        ));
    }
    for op in ["ArnNotEquals", "ArnNotLike"] {
        assert!(eval(
            op,
            "aws:SourceArn",
            &["arn:aws:cloudshell:*:999999999999:*"],
            &c
        ));
        assert!(!eval(
            op,
            "aws:SourceArn",
            &["arn:aws:cloudshell:*:*:*"],
            &c
        ));
    }
    // A wildcard in the region does not cross into the account.
    assert!(!eval(
        "ArnLike",
        "aws:SourceArn",
        &["arn:aws:cloudshell:*:environment/e-1"],
        &c
    ));
    // Case-sensitive.
    assert!(!eval(
        "ArnLike",
        "aws:SourceArn",
        &["arn:aws:CloudShell:*:*:*"],
        &c
    ));
}

#[test]
fn null_operator() {
    let empty = Context::new();
    let c = ctx1("cloudshell:VpcIds", "vpc-1");
    assert!(eval("Null", "cloudshell:VpcIds", &["true"], &empty));
    assert!(!eval("Null", "cloudshell:VpcIds", &["true"], &c));
    assert!(eval("Null", "cloudshell:VpcIds", &["false"], &c));
    assert!(!eval("Null", "cloudshell:VpcIds", &["false"], &empty));
    // A multivalued key with no values counts as absent.
    assert!(eval(
        "Null",
        "cloudshell:VpcIds",
        &["true"],
        &ctxn("cloudshell:VpcIds", &[])
    ));
}

#[test]
fn absent_keys() {
    let empty = Context::new();
    assert!(!eval("StringEquals", "k", &["x"], &empty));
    assert!(!eval("StringLike", "k", &["*"], &empty));
    assert!(!eval("NumericLessThan", "k", &["1"], &empty));
    // Negated operators are true when the key is absent.
    assert!(eval("StringNotEquals", "k", &["x"], &empty));
    assert!(eval("StringNotLike", "k", &["x"], &empty));
    assert!(eval("NotIpAddress", "k", &["10.0.0.0/8"], &empty));
    assert!(eval("ArnNotLike", "k", &["arn:*:*:*:*:*"], &empty));
    assert!(eval("DateNotEquals", "k", &["2024-01-01"], &empty));
    // IfExists: true when absent, otherwise the operator decides.
    assert!(eval("StringEqualsIfExists", "k", &["x"], &empty));
    assert!(eval("StringEqualsIfExists", "k", &["x"], &ctx1("k", "x")));
    assert!(!eval("StringEqualsIfExists", "k", &["x"], &ctx1("k", "y")));
    assert!(eval("NumericLessThanIfExists", "k", &["1"], &empty));
}

#[test]
fn key_names_are_case_insensitive() {
    let c = ctx1("aws:PrincipalTag/Team", "blue");
    assert!(eval("StringEquals", "AWS:principaltag/team", &["blue"], &c));
    assert!(!eval(
        "StringEquals",
        "aws:principaltag/team",
        &["Blue"],
        &c
    ));
}

#[test]
fn for_any_value() {
    let c = ctxn("aws:TagKeys", &["env", "team"]);
    assert!(eval(
        "ForAnyValue:StringEquals",
        "aws:TagKeys",
        &["team"],
        &c
    ));
    assert!(!eval(
        "ForAnyValue:StringEquals",
        "aws:TagKeys",
        &["owner"],
        &c
    ));
    assert!(eval("ForAnyValue:StringLike", "aws:TagKeys", &["te*"], &c));
    // Negated: some request value is outside the policy set.
    assert!(eval(
        "ForAnyValue:StringNotEquals",
        "aws:TagKeys",
        &["env"],
        &c
    ));
    assert!(!eval(
        "ForAnyValue:StringNotEquals",
        "aws:TagKeys",
        &["env", "team"],
        &c
    ));
    // Absent key and empty set: false, unless IfExists.
    assert!(!eval(
        "ForAnyValue:StringEquals",
        "aws:TagKeys",
        &["env"],
        &Context::new()
    ));
    assert!(!eval(
        "ForAnyValue:StringNotEquals",
        "aws:TagKeys",
        &["env"],
        &Context::new()
    ));
    assert!(!eval(
        "ForAnyValue:StringEquals",
        "aws:TagKeys",
        &["env"],
        &ctxn("aws:TagKeys", &[])
    ));
    assert!(eval(
        "ForAnyValue:StringEqualsIfExists",
        "aws:TagKeys",
        &["env"],
        &Context::new()
    ));
    // A single value behaves as a one-element set.
    assert!(eval(
        "ForAnyValue:StringEquals",
        "aws:TagKeys",
        &["env"],
        &ctx1("aws:TagKeys", "env")
    ));
}

#[test]
fn for_all_values() {
    let c = ctxn("aws:TagKeys", &["env", "team"]);
    assert!(eval(
        "ForAllValues:StringEquals",
        "aws:TagKeys",
        &["env", "team", "x"],
        &c
    ));
    assert!(!eval(
        "ForAllValues:StringEquals",
        "aws:TagKeys",
        &["env"],
        &c
    ));
    assert!(eval("ForAllValues:StringLike", "aws:TagKeys", &["*"], &c));
    // Negated: no request value is in the policy set.
    assert!(eval(
        "ForAllValues:StringNotEquals",
        "aws:TagKeys",
        &["owner"],
        &c
    ));
    assert!(!eval(
        "ForAllValues:StringNotEquals",
        "aws:TagKeys",
        &["env"],
        &c
    ));
    // Absent key and empty set: true.
    assert!(eval(
        "ForAllValues:StringEquals",
        "aws:TagKeys",
        &["env"],
        &Context::new()
    ));
    assert!(eval(
        "ForAllValues:StringEquals",
        "aws:TagKeys",
        &["env"],
        &ctxn("aws:TagKeys", &[])
    ));
    // A value of the wrong type fails the whole set.
    let nums = ctxn("n", &["1", "x"]);
    assert!(!eval("ForAllValues:NumericLessThan", "n", &["5"], &nums));
}

#[test]
fn multivalued_key_without_qualifier() {
    let c = ctxn("k", &["a", "b"]);
    assert!(eval("StringEquals", "k", &["b"], &c));
    assert!(!eval("StringNotEquals", "k", &["b"], &c));
    assert!(eval("StringNotEquals", "k", &["c"], &c));
}

#[test]
fn policy_variables_in_condition_values() {
    let mut c = ctx1("s3:prefix", "home/alice/docs");
    c.insert("aws:username", "alice");
    assert!(eval(
        "StringLike",
        "s3:prefix",
        &["home/${aws:username}/*"],
        &c
    ));
    assert!(!eval(
        "StringLike",
        "s3:prefix",
        &["home/${aws:PrincipalTag/x, 'bob'}/*"],
        &c
    ));
    assert!(eval(
        "StringLike",
        "s3:prefix",
        &["home/${aws:PrincipalTag/x, 'alice'}/*"],
        &c
    ));
    assert!(eval(
        "StringEquals",
        "aws:username",
        &["${aws:username}"],
        &c
    ));
    // An unresolvable variable makes the statement inapplicable.
    let cd = cond(
        "StringEquals",
        "aws:username",
        &["${aws:PrincipalTag/missing}"],
    );
    assert_eq!(cd.evaluate(&c), Err(Unresolved));
    // Numeric operators do not substitute variables: the value must be a number.
    let op = Operator::parse("NumericEquals").expect("parses");
    assert!(Condition::new("NumericEquals", op, "n", vec!["${n}".into()], true).is_err());
}

#[test]
fn invalid_policy_values_are_reported() {
    for (op, value) in [
        ("NumericEquals", "ten"),
        ("DateLessThan", "tomorrow"),
        ("Bool", "yes"),
        ("BinaryEquals", "%%%"),
        ("IpAddress", "10.0.0.0/33"),
        ("Null", "maybe"),
    ] {
        let operator = Operator::parse(op).expect("parses");
        let err = Condition::new(op, operator, "k", vec!["ok".into(), value.into()], true);
        assert!(matches!(err, Err((_, _))), "{op} {value}");
    }
}

#[test]
fn context_keys_include_variables() {
    let c = cond("StringLike", "s3:prefix", &["home/${aws:username}/*"]);
    assert_eq!(c.context_keys(), vec!["s3:prefix", "aws:username"]);
}
