//! Evaluation logic: matching rules and how policy types combine.

use super::*;
use crate::context::Context;
use crate::limits::PolicyKind;
use crate::parse::parse;

const ALICE: &str = "arn:aws:iam::123456789012:user/alice";

fn doc(json: &str) -> PolicyDocument {
    parse(json, PolicyKind::Unchecked).unwrap_or_else(|e| panic!("{json}: {e}"))
}

fn allow(action: &str, resource: &str) -> PolicyDocument {
    doc(&format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}]}}"#
    ))
}

fn verdict(set: &PolicySet<'_>, action: &str, resource: &str, ctx: &Context) -> Verdict {
    evaluate(&Request::new(ALICE, action, resource, ctx), set).verdict
}

#[test]
fn actions_match_case_insensitively_with_wildcards() {
    let ctx = Context::new();
    for (pattern, action, expected) in [
        ("cloudshell:*", "cloudshell:CreateSession", true),
        ("CloudShell:createsession", "cloudshell:CreateSession", true),
        ("cloudshell:Create*", "CLOUDSHELL:CREATEENVIRONMENT", true),
        (
            "cloudshell:Get?nvironmentStatus",
            "cloudshell:GetEnvironmentStatus",
            true,
        ),
        ("cloudshell:Get?", "cloudshell:GetEnvironmentStatus", false),
        ("iam:*", "cloudshell:CreateSession", false),
        ("*", "anything:AtAll", true),
        ("cloud*:Put*", "cloudshell:PutCredentials", true),
    ] {
        let d = allow(pattern, "*");
        let set = PolicySet::new().identity("p", &d);
        let expected = if expected {
            Verdict::Allow
        } else {
            Verdict::ImplicitDeny
        };
        assert_eq!(
            verdict(&set, action, "*", &ctx),
            expected,
            "{pattern} vs {action}"
        );
    }
}

#[test]
fn resources_match_case_sensitively_per_part() {
    let ctx = Context::new();
    let d = allow("s3:GetObject", "arn:aws:s3:::bucket/home/*");
    let set = PolicySet::new().identity("p", &d);
    assert_eq!(
        verdict(&set, "s3:GetObject", "arn:aws:s3:::bucket/home/a/b", &ctx),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&set, "s3:GetObject", "arn:aws:s3:::Bucket/home/a", &ctx),
        Verdict::ImplicitDeny
    );
    assert_eq!(
        verdict(&set, "s3:GetObject", "arn:aws:s3:::bucket/other", &ctx),
        Verdict::ImplicitDeny
    );
    assert_eq!(
        verdict(&set, "s3:GetObject", "*", &ctx),
        Verdict::ImplicitDeny
    );
}

#[test]
fn explicit_deny_wins_wherever_it_is() {
    let ctx = Context::new();
    let all = allow("*", "*");
    let deny = doc(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoDelete","Effect":"Deny","Action":"cloudshell:Delete*","Resource":"*"}]}"#,
    );
    let set = PolicySet::new()
        .identity("Admin", &all)
        .identity("Guard", &deny);
    let d = evaluate(
        &Request::new(ALICE, "cloudshell:DeleteEnvironment", "*", &ctx),
        &set,
    );
    assert_eq!(d.verdict, Verdict::ExplicitDeny);
    assert_eq!(
        d.statement().copied(),
        Some(StatementRef {
            policy: "Guard",
            policy_type: PolicyType::Identity,
            index: 0,
            sid: Some("NoDelete")
        })
    );
    assert_eq!(
        d.to_string(),
        "explicitly denied by statement \"NoDelete\" of identity-based policy \"Guard\""
    );
    // A deny in a boundary or an SCP also wins over an identity allow.
    let set = PolicySet::new()
        .identity("Admin", &all)
        .boundary("B", &deny);
    assert_eq!(
        verdict(&set, "cloudshell:DeleteEnvironment", "*", &ctx),
        Verdict::ExplicitDeny
    );
    let set = PolicySet::new()
        .identity("Admin", &all)
        .service_control_level(vec![
            NamedPolicy {
                name: "FullAWSAccess",
                document: &all,
            },
            NamedPolicy {
                name: "G",
                document: &deny,
            },
        ]);
    let d = evaluate(
        &Request::new(ALICE, "cloudshell:DeleteEnvironment", "*", &ctx),
        &set,
    );
    assert_eq!(d.verdict, Verdict::ExplicitDeny);
    assert_eq!(
        d.denial_phrase("cloudshell:DeleteEnvironment"),
        "with an explicit deny in a service control policy"
    );
}

#[test]
fn not_action_with_deny_denies_everything_else() {
    let ctx = Context::new();
    let all = allow("*", "*");
    let d = doc(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotAction":["cloudshell:*","sts:GetCallerIdentity"],"Resource":"*"}]}"#,
    );
    let set = PolicySet::new()
        .identity("all", &all)
        .identity("only-shell", &d);
    assert_eq!(
        verdict(&set, "cloudshell:CreateSession", "*", &ctx),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&set, "sts:getcalleridentity", "*", &ctx),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&set, "iam:CreateUser", "*", &ctx),
        Verdict::ExplicitDeny
    );
}

#[test]
fn not_resource() {
    let ctx = Context::new();
    let d = doc(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","NotResource":"arn:aws:iam::*:user/admin*"}]}"#,
    );
    let set = PolicySet::new().identity("p", &d);
    assert_eq!(
        verdict(
            &set,
            "iam:GetUser",
            "arn:aws:iam::123456789012:user/bob",
            &ctx
        ),
        Verdict::Allow
    );
    assert_eq!(
        verdict(
            &set,
            "iam:GetUser",
            "arn:aws:iam::123456789012:user/admin1",
            &ctx
        ),
        Verdict::ImplicitDeny
    );
}

#[test]
fn conditions_and_across_operators_and_keys() {
    let d = doc(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*",
        "Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"},
                     "IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]},
                     "StringEquals":{"aws:RequestedRegion":"eu-west-1","aws:username":"alice"}}}]}"#,
    );
    let set = PolicySet::new().identity("p", &d);
    let mut ctx = Context::new();
    ctx.insert("aws:MultiFactorAuthPresent", "true")
        .insert("aws:SourceIp", "2001:db8::1")
        .insert("aws:RequestedRegion", "eu-west-1")
        .insert("aws:username", "alice");
    assert_eq!(verdict(&set, "x:y", "*", &ctx), Verdict::Allow);
    for (key, value) in [
        ("aws:MultiFactorAuthPresent", "false"),
        ("aws:SourceIp", "192.168.1.1"),
        ("aws:RequestedRegion", "us-east-1"),
        ("aws:username", "bob"),
    ] {
        let mut c = ctx.clone();
        c.insert(key, value);
        assert_eq!(
            verdict(&set, "x:y", "*", &c),
            Verdict::ImplicitDeny,
            "{key}={value}"
        );
        c.remove(key);
        assert_eq!(
            verdict(&set, "x:y", "*", &c),
            Verdict::ImplicitDeny,
            "{key} absent"
        );
    }
}

#[test]
fn variables_in_resources() {
    let d = doc(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*AccessKey*",
        "Resource":"arn:aws:iam::${aws:PrincipalAccount}:user/${aws:username}"}]}"#,
    );
    let set = PolicySet::new().identity("own-keys", &d);
    let mut ctx = Context::new();
    ctx.insert("aws:username", "alice")
        .insert("aws:PrincipalAccount", "123456789012");
    assert_eq!(
        verdict(
            &set,
            "iam:CreateAccessKey",
            "arn:aws:iam::123456789012:user/alice",
            &ctx
        ),
        Verdict::Allow
    );
    assert_eq!(
        verdict(
            &set,
            "iam:CreateAccessKey",
            "arn:aws:iam::123456789012:user/bob",
            &ctx
        ),
        Verdict::ImplicitDeny
    );
    assert_eq!(
        verdict(
            &set,
            "iam:CreateAccessKey",
            "arn:aws:iam::999999999999:user/alice",
            &ctx
        ),
        Verdict::ImplicitDeny
    );
    // Without the key the statement does not apply, even with a wildcard-y value.
    let mut no_user = ctx.clone();
    no_user.remove("aws:username");
    assert_eq!(
        verdict(
            &set,
            "iam:CreateAccessKey",
            "arn:aws:iam::123456789012:user/alice",
            &no_user
        ),
        Verdict::ImplicitDeny
    );
    // A user named "*" gets only the user literally named "*".
    let mut star = ctx.clone();
    star.insert("aws:username", "*");
    assert_eq!(
        verdict(
            &set,
            "iam:CreateAccessKey",
            "arn:aws:iam::123456789012:user/alice",
            &star
        ),
        Verdict::ImplicitDeny
    );
    // Defaults and escapes.
    let d = doc(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*",
        "Resource":"arn:aws:s3:::${aws:PrincipalTag/team, 'shared'}/${*}literal"}]}"#,
    );
    let set = PolicySet::new().identity("team", &d);
    assert_eq!(
        verdict(&set, "s3:GetObject", "arn:aws:s3:::shared/*literal", &ctx),
        Verdict::Allow
    );
    assert_eq!(
        verdict(&set, "s3:GetObject", "arn:aws:s3:::shared/xliteral", &ctx),
        Verdict::ImplicitDeny
    );
    let mut tagged = ctx.clone();
    tagged.insert("aws:PrincipalTag/team", "blue");
    assert_eq!(
        verdict(&set, "s3:GetObject", "arn:aws:s3:::blue/*literal", &tagged),
        Verdict::Allow
    );
}

#[test]
fn version_2008_does_not_substitute() {
    let mut ctx = Context::new();
    ctx.insert("aws:username", "alice");
    let d = doc(
        r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam::*:user/${aws:username}"}]}"#,
    );
    let set = PolicySet::new().identity("old", &d);
    assert_eq!(
        verdict(
            &set,
            "iam:GetUser",
            "arn:aws:iam::123456789012:user/alice",
            &ctx
        ),
        Verdict::ImplicitDeny
    );
    assert_eq!(
        verdict(
            &set,
            "iam:GetUser",
            "arn:aws:iam::123456789012:user/${aws:username}",
            &ctx
        ),
        Verdict::Allow
    );
    let d = doc(
        r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:username":"${aws:username}"}}}]}"#,
    );
    let set = PolicySet::new().identity("old-cond", &d);
    assert_eq!(verdict(&set, "x:y", "*", &ctx), Verdict::ImplicitDeny);
}

#[test]
fn permissions_boundary_must_also_allow() {
    let ctx = Context::new();
    let all = allow("*", "*");
    let shell_only = allow("cloudshell:*", "*");
    let set = PolicySet::new()
        .identity("Admin", &all)
        .boundary("ShellOnly", &shell_only);
    assert_eq!(
        verdict(&set, "cloudshell:CreateSession", "*", &ctx),
        Verdict::Allow
    );
    let d = evaluate(&Request::new(ALICE, "iam:CreateUser", "*", &ctx), &set);
    assert_eq!(d.verdict, Verdict::ImplicitDeny);
    assert_eq!(d.reason, Reason::NoBoundaryAllow);
    assert_eq!(
        d.denial_phrase("iam:CreateUser"),
        "because no permissions boundary allows the iam:CreateUser action"
    );
    // The boundary alone grants nothing.
    let set = PolicySet::new().boundary("ShellOnly", &shell_only);
    let d = evaluate(
        &Request::new(ALICE, "cloudshell:CreateSession", "*", &ctx),
        &set,
    );
    assert_eq!(d.reason, Reason::NoIdentityAllow);
}

#[test]
fn session_policies_must_also_allow() {
    let ctx = Context::new();
    let all = allow("*", "*");
    let read = allow("iam:Get*", "*");
    let set = PolicySet::new().identity("Admin", &all).session("s", &read);
    assert_eq!(verdict(&set, "iam:GetUser", "*", &ctx), Verdict::Allow);
    let d = evaluate(&Request::new(ALICE, "iam:DeleteUser", "*", &ctx), &set);
    assert_eq!(d.reason, Reason::NoSessionAllow);
}

#[test]
fn every_service_control_level_must_allow() {
    let ctx = Context::new();
    let all = allow("*", "*");
    let shell = allow("cloudshell:*", "*");
    let set = PolicySet::new()
        .identity("Admin", &all)
        .service_control_level(vec![NamedPolicy {
            name: "FullAWSAccess",
            document: &all,
        }])
        .service_control_level(vec![NamedPolicy {
            name: "ShellOnly",
            document: &shell,
        }]);
    assert_eq!(
        verdict(&set, "cloudshell:CreateSession", "*", &ctx),
        Verdict::Allow
    );
    let d = evaluate(&Request::new(ALICE, "iam:CreateUser", "*", &ctx), &set);
    assert_eq!(d.reason, Reason::NoServiceControlAllow { level: 1 });
    // SCPs grant nothing on their own.
    let set = PolicySet::new().service_control_level(vec![NamedPolicy {
        name: "FullAWSAccess",
        document: &all,
    }]);
    assert_eq!(
        verdict(&set, "cloudshell:CreateSession", "*", &ctx),
        Verdict::ImplicitDeny
    );
}

#[test]
fn trust_policies_grant_by_principal() {
    let ctx = Context::new();
    let role = "arn:aws:iam::123456789012:role/Ops";
    let trust_user = parse(
        &format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{ALICE}"}},"Action":"sts:AssumeRole"}}]}}"#),
        PolicyKind::Trust,
    )
    .expect("parses");
    let trust_account = parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole",
            "Condition":{"StringEquals":{"sts:ExternalId":"xyz"}}}]}"#,
        PolicyKind::Trust,
    )
    .expect("parses");
    let assume = allow("sts:AssumeRole", "*");

    // Named directly, same account: the trust policy is enough.
    let set = PolicySet::new().trust("trust", &trust_user);
    let d = evaluate(&Request::new(ALICE, "sts:AssumeRole", role, &ctx), &set);
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(
        d.statement().map(|s| s.policy_type),
        Some(PolicyType::Resource)
    );
    // Someone else is not named.
    let bob = "arn:aws:iam::123456789012:user/bob";
    assert_eq!(
        evaluate(&Request::new(bob, "sts:AssumeRole", role, &ctx), &set).verdict,
        Verdict::ImplicitDeny
    );

    // Named through the account: the identity policy must allow too.
    let mut with_id = Context::new();
    with_id.insert("sts:ExternalId", "xyz");
    let set = PolicySet::new().trust("trust", &trust_account);
    let d = evaluate(&Request::new(bob, "sts:AssumeRole", role, &with_id), &set);
    assert_eq!(d.reason, Reason::NoIdentityAllow);
    let set = PolicySet::new()
        .identity("assume", &assume)
        .trust("trust", &trust_account);
    assert_eq!(
        evaluate(&Request::new(bob, "sts:AssumeRole", role, &with_id), &set).verdict,
        Verdict::Allow
    );
    // The trust policy's condition still applies.
    let d = evaluate(&Request::new(bob, "sts:AssumeRole", role, &ctx), &set);
    assert_eq!(d.reason, Reason::NoResourceAllow);

    // Another account's user needs both, even when named directly.
    let outsider = "arn:aws:iam::999999999999:user/eve";
    let trust_outsider = parse(
        &format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{outsider}"}},"Action":"sts:AssumeRole"}}]}}"#),
        PolicyKind::Trust,
    )
    .expect("parses");
    let set = PolicySet::new().trust("trust", &trust_outsider);
    assert_eq!(
        evaluate(&Request::new(outsider, "sts:AssumeRole", role, &ctx), &set).reason,
        Reason::NoIdentityAllow
    );
    let set = PolicySet::new()
        .identity("assume", &assume)
        .trust("trust", &trust_outsider);
    assert_eq!(
        evaluate(&Request::new(outsider, "sts:AssumeRole", role, &ctx), &set).verdict,
        Verdict::Allow
    );
    // And an identity allow alone does not reach into another account.
    let set = PolicySet::new().identity("assume", &assume);
    assert_eq!(
        evaluate(&Request::new(outsider, "sts:AssumeRole", role, &ctx), &set).reason,
        Reason::NoResourceAllow
    );
}

#[test]
fn role_principals_match_their_sessions_and_services_match_by_name() {
    let ctx = Context::new();
    let policy = parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/path/Ops","Service":"cloudshell.amazonaws.com"},"Action":"s3:GetObject","Resource":"*"}]}"#,
        PolicyKind::Resource,
    )
    .expect("parses");
    let set = PolicySet::new().resource("bucket", &policy);
    let session = "arn:aws:sts::123456789012:assumed-role/Ops/alice";
    assert_eq!(
        evaluate(
            &Request::new(session, "s3:GetObject", "arn:aws:s3:::b/k", &ctx),
            &set
        )
        .verdict,
        Verdict::Allow
    );
    let other = "arn:aws:sts::123456789012:assumed-role/Dev/alice";
    assert_eq!(
        evaluate(
            &Request::new(other, "s3:GetObject", "arn:aws:s3:::b/k", &ctx),
            &set
        )
        .verdict,
        Verdict::ImplicitDeny
    );
    let service = Request {
        principal: Principal::Service("cloudshell.amazonaws.com"),
        action: "s3:GetObject",
        resource: "arn:aws:s3:::b/k",
        context: &ctx,
    };
    assert_eq!(evaluate(&service, &set).verdict, Verdict::Allow);
    let anonymous = Request {
        principal: Principal::Anonymous,
        ..service
    };
    assert_eq!(evaluate(&anonymous, &set).verdict, Verdict::ImplicitDeny);
}

#[test]
fn not_principal_applies_to_everyone_else() {
    let ctx = Context::new();
    let policy = parse(
        &format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","NotPrincipal":{{"AWS":"{ALICE}"}},"Action":"s3:*","Resource":"*"}}]}}"#),
        PolicyKind::Resource,
    )
    .expect("parses");
    let all = allow("*", "*");
    let set = PolicySet::new()
        .identity("all", &all)
        .resource("only-alice", &policy);
    assert_eq!(
        verdict(&set, "s3:GetObject", "arn:aws:s3:::b/k", &ctx),
        Verdict::Allow
    );
    let bob = "arn:aws:iam::123456789012:user/bob";
    assert_eq!(
        evaluate(
            &Request::new(bob, "s3:GetObject", "arn:aws:s3:::b/k", &ctx),
            &set
        )
        .verdict,
        Verdict::ExplicitDeny
    );
}

#[test]
fn explanation_lists_matches_and_missing_keys() {
    let all = allow("cloudshell:*", "*");
    let cond = doc(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"Vpc","Effect":"Deny","Action":"cloudshell:CreateEnvironment","Resource":"*",
        "Condition":{"Null":{"cloudshell:VpcIds":"true"}}},
        {"Effect":"Allow","Action":"iam:GetUser","Resource":"arn:aws:iam::*:user/${aws:username}"}]}"#,
    );
    let set = PolicySet::new()
        .identity("Full", &all)
        .identity("VpcOnly", &cond);
    let ctx = Context::new();
    let e = explain(
        &Request::new(ALICE, "cloudshell:CreateEnvironment", "*", &ctx),
        &set,
    );
    assert_eq!(e.decision.verdict, Verdict::ExplicitDeny);
    let names: Vec<_> = e.matched.iter().map(|s| (s.policy, s.index)).collect();
    assert_eq!(names, vec![("Full", 0), ("VpcOnly", 0)]);
    assert_eq!(
        e.missing_context_keys,
        vec!["cloudshell:vpcids".to_string(), "aws:username".to_string()]
    );
}

#[test]
fn empty_set_denies_with_a_reason() {
    let ctx = Context::new();
    let d = evaluate(
        &Request::new(ALICE, "cloudshell:CreateSession", "*", &ctx),
        &PolicySet::new(),
    );
    assert_eq!(d.verdict, Verdict::ImplicitDeny);
    assert_eq!(d.reason, Reason::NoIdentityAllow);
    assert!(d.statement().is_none());
    assert_eq!(
        d.denial_phrase("cloudshell:CreateSession"),
        "because no identity-based policy allows the cloudshell:CreateSession action"
    );
}
