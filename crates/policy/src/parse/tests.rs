//! Parser and validator tests: what IAM accepts, and where each refusal points.

use super::*;

fn ok(json: &str) -> PolicyDocument {
    parse(json, PolicyKind::Managed).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn errors(json: &str, kind: PolicyKind) -> Vec<(String, ErrorKind)> {
    match parse(json, kind) {
        Ok(_) => panic!("expected {json} to be refused"),
        Err(e) => e
            .errors()
            .iter()
            .map(|e| (e.pointer.clone(), e.kind))
            .collect(),
    }
}

fn one_error(json: &str) -> (String, ErrorKind) {
    let mut errs = errors(json, PolicyKind::Managed);
    assert_eq!(errs.len(), 1, "{json}: {errs:?}");
    errs.remove(0)
}

#[test]
fn versions() {
    let v12 = ok(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
    );
    assert_eq!(v12.version(), Version::V2012_10_17);
    let v08 = ok(
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
    );
    assert_eq!(v08.version(), Version::V2008_10_17);
    let absent = ok(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#);
    assert_eq!(
        absent.version(),
        Version::V2008_10_17,
        "absent means 2008-10-17"
    );
    assert_eq!(
        one_error(
            r#"{"Version":"2012-10-18","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#
        ),
        ("/Version".into(), ErrorKind::UnsupportedVersion)
    );
    assert_eq!(
        one_error(r#"{"Version":2012,"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#),
        ("/Version".into(), ErrorKind::InvalidType)
    );
}

#[test]
fn statement_as_object_or_array_and_string_or_list_values() {
    let single = ok(
        r#"{"Id":"p1","Statement":{"Sid":"A","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#,
    );
    assert_eq!(single.id(), Some("p1"));
    assert_eq!(single.statements().len(), 1);
    let list = ok(r#"{"Statement":[
        {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":["arn:aws:s3:::b/*","arn:aws:s3:::c"]},
        {"Effect":"Deny","NotAction":"iam:*","NotResource":"arn:aws:iam::*:user/x"}]}"#);
    let s = &list.statements()[1];
    assert_eq!(s.effect(), Effect::Deny);
    assert!(s.action().is_negated());
    assert!(s.resource().map(|r| r.is_negated()).unwrap_or(false));
    assert_eq!(list.statements()[0].action().patterns().count(), 2);
}

#[test]
fn malformed_json_is_reported_with_its_position() {
    let errs = parse(r#"{"Statement": [}"#, PolicyKind::Managed).expect_err("refused");
    assert_eq!(errs.errors().len(), 1);
    assert_eq!(errs.errors()[0].kind, ErrorKind::MalformedJson);
    assert!(errs.errors()[0].message.contains("line 1"), "{}", errs);
    for junk in ["", "null", "[]", "\"x\"", "42", "{", "\u{0}"] {
        let e = parse(junk, PolicyKind::Managed).expect_err(junk);
        assert!(
            e.has(ErrorKind::MalformedJson) || e.has(ErrorKind::InvalidType),
            "{junk}: {e}"
        );
    }
}

#[test]
fn unknown_elements_point_at_themselves() {
    assert_eq!(
        one_error(r#"{"Statement":{"Effect":"Allow","Actions":"*","Action":"*","Resource":"*"}}"#),
        ("/Statement/Actions".into(), ErrorKind::UnknownElement)
    );
    assert_eq!(
        one_error(
            r#"{"Statements":[],"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
        ),
        ("/Statements".into(), ErrorKind::UnknownElement)
    );
    let e = parse(
        r#"{"Statement":[{"effect":"Allow","Action":"*","Resource":"*"}]}"#,
        PolicyKind::Managed,
    )
    .expect_err("refused");
    assert!(e.to_string().contains("did you mean Effect?"), "{e}");
}

#[test]
fn both_action_and_not_action() {
    assert_eq!(
        one_error(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"s3:*","Resource":"*"}]}"#
        ),
        ("/Statement/0".into(), ErrorKind::ConflictingElements)
    );
    assert_eq!(
        one_error(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","NotResource":"*"}]}"#
        ),
        ("/Statement/0".into(), ErrorKind::ConflictingElements)
    );
}

#[test]
fn missing_and_invalid_elements() {
    assert_eq!(
        one_error(r#"{"Statement":[{"Action":"*","Resource":"*"}]}"#),
        ("/Statement/0".into(), ErrorKind::MissingElement)
    );
    assert_eq!(
        one_error(r#"{"Statement":[{"Effect":"allow","Action":"*","Resource":"*"}]}"#),
        ("/Statement/0/Effect".into(), ErrorKind::InvalidValue)
    );
    assert_eq!(
        one_error(r#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#),
        ("/Statement/0".into(), ErrorKind::MissingElement)
    );
    assert_eq!(
        one_error(r#"{"Statement":[{"Effect":"Allow","Action":"*"}]}"#),
        ("/Statement/0".into(), ErrorKind::MissingElement)
    );
    assert_eq!(
        one_error(r#"{"Version":"2012-10-17"}"#),
        (String::new(), ErrorKind::MissingElement)
    );
    assert_eq!(
        one_error(r#"{"Statement":[]}"#),
        ("/Statement".into(), ErrorKind::InvalidValue)
    );
    assert_eq!(
        one_error(r#"{"Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]}"#),
        ("/Statement/0/Action".into(), ErrorKind::InvalidValue)
    );
    assert_eq!(
        one_error(r#"{"Statement":[{"Effect":"Allow","Action":["s3:x",1],"Resource":"*"}]}"#),
        ("/Statement/0/Action/1".into(), ErrorKind::InvalidType)
    );
    assert_eq!(
        one_error(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":[]}]}"#
        ),
        ("/Statement/0/Condition".into(), ErrorKind::InvalidType)
    );
    assert_eq!(
        one_error(r#"{"Statement":["x"]}"#),
        ("/Statement/0".into(), ErrorKind::InvalidType)
    );
}

#[test]
fn unknown_condition_operators() {
    assert_eq!(
        one_error(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
            {"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqual":{"k":"v"}}}]}"#
        ),
        (
            "/Statement/1/Condition/StringEqual".into(),
            ErrorKind::UnknownConditionOperator
        )
    );
    assert_eq!(
        one_error(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NullIfExists":{"k":"true"}}}]}"#
        ),
        (
            "/Statement/0/Condition/NullIfExists".into(),
            ErrorKind::UnknownConditionOperator
        )
    );
}

#[test]
fn condition_values() {
    let doc = ok(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*",
        "Condition":{"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"s3:max-keys":10},
        "StringEquals":{"aws:username":["a","b"]}}}]}"#,
    );
    let conds = doc.statements()[0].conditions();
    assert_eq!(conds.len(), 3);
    let bool_cond = conds.iter().find(|c| c.key() == "aws:SecureTransport");
    assert_eq!(
        bool_cond.map(|c| c.values().collect::<Vec<_>>()),
        Some(vec!["true"])
    );
    assert_eq!(
        one_error(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericLessThan":{"n":["1","x"]}}}]}"#
        ),
        (
            "/Statement/0/Condition/NumericLessThan/n/1".into(),
            ErrorKind::InvalidValue
        )
    );
    assert_eq!(
        one_error(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/40"}}}]}"#
        ),
        (
            "/Statement/0/Condition/IpAddress/aws:SourceIp".into(),
            ErrorKind::InvalidValue
        )
    );
    assert_eq!(
        one_error(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":{"x":1}}}}]}"#
        ),
        (
            "/Statement/0/Condition/StringEquals/k".into(),
            ErrorKind::InvalidType
        )
    );
    assert_eq!(
        one_error(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":[]}}}]}"#
        ),
        (
            "/Statement/0/Condition/StringEquals/k".into(),
            ErrorKind::InvalidValue
        )
    );
    assert_eq!(
        one_error(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":"k"}}]}"#
        ),
        (
            "/Statement/0/Condition/StringEquals".into(),
            ErrorKind::InvalidType
        )
    );
    // JSON pointer escaping of a key holding "/".
    assert_eq!(
        one_error(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:PrincipalTag/x":"soon"}}}]}"#
        ),
        (
            "/Statement/0/Condition/DateLessThan/aws:PrincipalTag~1x".into(),
            ErrorKind::InvalidValue
        )
    );
}

#[test]
fn bad_arns_and_actions() {
    assert_eq!(
        one_error(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"bucket"}]}"#),
        ("/Statement/0/Resource".into(), ErrorKind::InvalidArn)
    );
    assert_eq!(
        one_error(
            r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":["*","arn:aws:s3"]}]}"#
        ),
        ("/Statement/0/Resource/1".into(), ErrorKind::InvalidArn)
    );
    for action in ["cloudshell", "cloud shell:x", ":x", "s3:", "s3:a:b", ""] {
        let json =
            format!(r#"{{"Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"*"}}]}}"#);
        assert_eq!(
            one_error(&json),
            ("/Statement/0/Action".into(), ErrorKind::InvalidAction),
            "{action}"
        );
    }
}

#[test]
fn duplicate_sids() {
    assert_eq!(
        one_error(
            r#"{"Statement":[{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},
            {"Sid":"B","Effect":"Allow","Action":"*","Resource":"*"},
            {"Sid":"A","Effect":"Deny","Action":"*","Resource":"*"}]}"#
        ),
        ("/Statement/2/Sid".into(), ErrorKind::DuplicateSid)
    );
    assert_eq!(
        one_error(
            r#"{"Statement":[{"Sid":"has space","Effect":"Allow","Action":"*","Resource":"*"}]}"#
        ),
        ("/Statement/0/Sid".into(), ErrorKind::InvalidValue)
    );
}

#[test]
fn size_limits_count_characters_without_white_space() {
    let statement =
        r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*"}"#;
    let build = |n: usize| {
        let items: Vec<String> = (0..n).map(|_| statement.to_string()).collect();
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
            items.join(",")
        )
    };
    // Find the largest document under each limit and check the next is refused.
    for (kind, limit) in [(PolicyKind::InlineUser, 2048), (PolicyKind::Managed, 6144)] {
        let mut n = 1;
        while policy_size(&build(n + 1)) <= limit {
            n += 1;
        }
        assert!(parse(&build(n), kind).is_ok());
        let e = parse(&build(n + 1), kind).expect_err("over the limit");
        assert_eq!(e.errors().len(), 1);
        assert_eq!(e.errors()[0].kind, ErrorKind::SizeLimitExceeded);
        // White space does not count.
        let padded = build(n).replace(',', " ,\n\t ");
        assert!(policy_size(&padded) == policy_size(&build(n)));
        assert!(parse(&padded, kind).is_ok());
    }
}

#[test]
fn principals() {
    let trust = parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Principal":{"AWS":["arn:aws:iam::123456789012:root","111122223333"],"Service":"cloudshell.amazonaws.com"},
            "Action":"sts:AssumeRole"}]}"#,
        PolicyKind::Trust,
    )
    .expect("trust policy parses");
    let p = trust.statements()[0].principal().expect("has principal");
    assert_eq!(p.entries().len(), 3);
    // Principal is refused in identity policies, required in trust policies.
    assert_eq!(
        one_error(
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#
        ),
        ("/Statement/0/Principal".into(), ErrorKind::UnknownElement)
    );
    let errs = errors(
        r#"{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#,
        PolicyKind::Trust,
    );
    assert_eq!(
        errs,
        vec![("/Statement/0".into(), ErrorKind::MissingElement)]
    );
    let errs = errors(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}]}"#,
        PolicyKind::Trust,
    );
    assert_eq!(
        errs,
        vec![("/Statement/0/Resource".into(), ErrorKind::UnknownElement)]
    );
    for bad in [
        r#"{"AWS":"arn:aws:iam::123456789012:user/*"}"#,
        r#"{"AWS":"alice"}"#,
        r#"{"Users":"x"}"#,
        r#""everyone""#,
        r#"{}"#,
    ] {
        let json = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":{bad},"Action":"sts:AssumeRole"}}]}}"#
        );
        let e = parse(&json, PolicyKind::Trust).expect_err(bad);
        assert!(e.has(ErrorKind::InvalidPrincipal), "{bad}: {e}");
    }
}

#[test]
fn every_error_is_collected() {
    let e = parse(
        r#"{"Version":"1999","Statement":[{"Effect":"Maybe","Action":"nope","Resource":"x"},
            {"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bogus":{}}}]}"#,
        PolicyKind::Managed,
    )
    .expect_err("refused");
    let kinds: Vec<ErrorKind> = e.errors().iter().map(|e| e.kind).collect();
    for k in [
        ErrorKind::UnsupportedVersion,
        ErrorKind::InvalidValue,
        ErrorKind::InvalidAction,
        ErrorKind::InvalidArn,
        ErrorKind::UnknownConditionOperator,
    ] {
        assert!(kinds.contains(&k), "{k:?} in {e}");
    }
}

#[test]
fn serialization_round_trips() {
    let doc = ok(r#"{"Version":"2012-10-17","Id":"x","Statement":[
        {"Sid":"A","Effect":"Allow","NotAction":["iam:*"],"Resource":"arn:aws:s3:::b/${aws:username}/*",
         "Condition":{"ForAnyValue:StringLike":{"aws:TagKeys":["a*","b"]},"Bool":{"aws:SecureTransport":"true"}}}]}"#);
    let text = doc.to_string();
    let again = ok(&text);
    assert_eq!(doc, again);
    assert_eq!(again.to_string(), text);
}

#[test]
fn deeply_nested_input_does_not_panic() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse(&deep, PolicyKind::Unchecked).is_err());
    let deep_obj = format!(
        r#"{{"Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{{"StringEquals":{{"k":{}1{}}}}}}}}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    assert!(parse(&deep_obj, PolicyKind::Unchecked).is_err());
}
