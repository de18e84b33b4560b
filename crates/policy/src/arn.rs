//! ARN patterns, as used in `Resource` and the `Arn…` condition operators.
//!
//! An ARN has six colon-separated parts,
//! `arn:partition:service:region:account-id:resource`; the resource part may
//! itself hold colons. IAM matches a pattern part by part, so a wildcard in the
//! region never swallows the account, while a wildcard in the resource part
//! spans the rest of the string, colons included.

use crate::context::Context;
use crate::pattern::{glob_match, Case, Pattern, Piece, Syntax, Unresolved};

/// Number of colon-separated parts in an ARN.
const PARTS: usize = 6;

/// A compiled `Resource` entry or `Arn…` condition value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArnPattern {
    /// `*`: every resource.
    Any,
    /// An ARN pattern, one compiled pattern per part.
    Parts(Box<[Pattern; PARTS]>),
    /// A condition value that is not an ARN at all: matched as a whole string.
    Whole(Pattern),
    /// Starts like an ARN but has fewer than six parts: matches nothing, since
    /// its wildcards could not be confined to their parts.
    Never,
}

impl ArnPattern {
    /// Compiles `text`. With `variables`, `${…}` is a policy variable (and the
    /// colons inside `${aws:username}` do not split parts).
    pub(crate) fn compile(text: &str, variables: bool) -> ArnPattern {
        let syntax = Syntax {
            wildcards: true,
            variables,
        };
        if text == "*" {
            return ArnPattern::Any;
        }
        match split_pattern(text, variables) {
            Some(parts) => {
                let compiled = parts.map(|p| Pattern::compile(p, syntax));
                ArnPattern::Parts(Box::new(compiled))
            }
            None if text.starts_with("arn:") => ArnPattern::Never,
            None => ArnPattern::Whole(Pattern::compile(text, syntax)),
        }
    }

    /// Whether `arn` matches.
    pub(crate) fn matches(&self, arn: &str, ctx: &Context) -> Result<bool, Unresolved> {
        match self {
            ArnPattern::Any => Ok(true),
            ArnPattern::Never => Ok(false),
            ArnPattern::Whole(p) => p.matches(arn, ctx, Case::Sensitive),
            ArnPattern::Parts(parts) => {
                let Some(actual) = split_arn(arn) else {
                    return Ok(false);
                };
                for (pattern, text) in parts.iter().zip(actual) {
                    if !pattern.with_pieces(ctx, |pieces| part_match(pieces, text))? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }

    /// Lower-cased context keys used as variables.
    pub(crate) fn variable_keys(&self) -> Vec<&str> {
        match self {
            ArnPattern::Any | ArnPattern::Never => Vec::new(),
            ArnPattern::Whole(p) => p.variable_keys().collect(),
            ArnPattern::Parts(parts) => parts.iter().flat_map(|p| p.variable_keys()).collect(),
        }
    }
}

fn part_match(pieces: &[Piece<'_>], text: &str) -> bool {
    glob_match(pieces, text, Case::Sensitive)
}

/// Splits a concrete ARN into its six parts.
pub(crate) fn split_arn(arn: &str) -> Option<[&str; PARTS]> {
    let mut it = arn.splitn(PARTS, ':');
    let parts = [
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    ];
    if parts[0] != "arn" {
        return None;
    }
    Some(parts)
}

/// Splits a pattern at its first five colons that are not inside `${…}`.
fn split_pattern(text: &str, variables: bool) -> Option<[&str; PARTS]> {
    let mut cuts = [0usize; PARTS - 1];
    let mut found = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() && found < cuts.len() {
        if variables && bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'{') {
            if let Some(close) = text[i..].find('}') {
                i += close + 1;
                continue;
            }
        }
        if bytes[i] == b':' {
            cuts[found] = i;
            found += 1;
        }
        i += 1;
    }
    if found < cuts.len() {
        return None;
    }
    let parts = [
        &text[..cuts[0]],
        &text[cuts[0] + 1..cuts[1]],
        &text[cuts[1] + 1..cuts[2]],
        &text[cuts[2] + 1..cuts[3]],
        &text[cuts[3] + 1..cuts[4]],
        &text[cuts[4] + 1..],
    ];
    // The first part must be the literal `arn` (a wildcard there is not an ARN).
    if parts[0] != "arn" {
        return None;
    }
    Some(parts)
}

/// Why an ARN pattern is not acceptable in a policy, if it is not.
pub(crate) fn check_resource(text: &str, variables: bool) -> Result<(), String> {
    if text == "*" {
        return Ok(());
    }
    if !text.starts_with("arn:") {
        return Err(format!("Resource {text} must be in ARN format or \"*\"."));
    }
    let Some(parts) = split_pattern(text, variables) else {
        return Err(format!(
            "Resource {text} must be in ARN format or \"*\": an ARN has six parts, \
             arn:partition:service:region:account-id:resource."
        ));
    };
    if parts[1].is_empty() {
        return Err(format!("Resource {text} has an empty partition."));
    }
    if parts[2].is_empty() {
        return Err(format!("Resource {text} has an empty service."));
    }
    if parts[5].is_empty() {
        return Err(format!("Resource {text} has an empty resource part."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, arn: &str) -> bool {
        ArnPattern::compile(pattern, true)
            .matches(arn, &Context::new())
            .unwrap_or(false)
    }

    #[test]
    fn any() {
        assert!(m("*", "arn:aws:s3:::b"));
        assert!(m("*", "*"));
        assert!(m("*", "not an arn"));
    }

    #[test]
    fn per_part_wildcards() {
        assert!(m(
            "arn:aws:iam::*:user/*",
            "arn:aws:iam::123456789012:user/alice"
        ));
        assert!(!m(
            "arn:aws:iam::*:user/*",
            "arn:aws:iam::123456789012:role/alice"
        ));
        // A wildcard in the region may not swallow the account.
        assert!(!m(
            "arn:aws:ec2:*:subnet/x",
            "arn:aws:ec2:us-east-1:123456789012:subnet/x"
        ));
        // The resource part spans colons.
        assert!(m(
            "arn:aws:logs:*:*:log-group:*",
            "arn:aws:logs:us-east-1:1:log-group:g:log-stream:s"
        ));
        // Case-sensitive.
        assert!(!m("arn:aws:s3:::Bucket", "arn:aws:s3:::bucket"));
        // A pattern ARN never matches the `*` resource of actions without
        // resource-level permissions.
        assert!(!m("arn:aws:s3:::*", "*"));
        // Empty region and account must be empty.
        assert!(!m("arn:aws:s3:::b", "arn:aws:s3:x::b"));
        assert!(m("arn:aws:s3:*:*:b", "arn:aws:s3:::b"));
    }

    #[test]
    fn variables_do_not_split_parts() {
        let mut ctx = Context::new();
        ctx.insert("aws:username", "alice");
        let p = ArnPattern::compile("arn:aws:iam::123456789012:user/${aws:username}", true);
        assert_eq!(
            p.matches("arn:aws:iam::123456789012:user/alice", &ctx),
            Ok(true)
        );
        assert_eq!(
            p.matches("arn:aws:iam::123456789012:user/bob", &ctx),
            Ok(false)
        );
        assert_eq!(
            p.matches("arn:aws:iam::123456789012:user/alice", &Context::new()),
            Err(Unresolved)
        );
    }

    #[test]
    fn resource_validation() {
        assert!(check_resource("*", true).is_ok());
        assert!(check_resource("arn:aws:s3:::bucket/*", true).is_ok());
        assert!(check_resource("arn:aws:iam::${aws:PrincipalAccount}:user/x", true).is_ok());
        assert!(check_resource("bucket", true).is_err());
        assert!(check_resource("arn:aws:s3", true).is_err());
        assert!(check_resource("arn::s3:::b", true).is_err());
        assert!(check_resource("arn:aws:s3:::", true).is_err());
        assert!(check_resource("", true).is_err());
    }

    #[test]
    fn split_concrete() {
        assert_eq!(
            split_arn("arn:aws:sts::1:assumed-role/R/s"),
            Some(["arn", "aws", "sts", "", "1", "assumed-role/R/s"])
        );
        assert_eq!(split_arn("arn:aws:sts"), None);
        assert_eq!(split_arn("nra:a:b:c:d:e"), None);
    }
}
