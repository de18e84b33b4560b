//! AWS managed policies that every Seashell installation has, under AWS's
//! ARNs, so policies and tools written for AWS refer to them unchanged.

use std::sync::LazyLock;

use seashell_policy::{parse, PolicyDocument, PolicyKind};

/// A built-in managed policy.
#[derive(Debug)]
pub struct BuiltinPolicy {
    /// Its name.
    pub name: &'static str,
    /// `arn:aws:iam::aws:policy/<name>`.
    pub arn: &'static str,
    /// The document as text.
    pub text: &'static str,
    /// The parsed document.
    pub document: PolicyDocument,
}

/// `AdministratorAccess`.
pub const ADMINISTRATOR_ACCESS: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
/// `AWSCloudShellFullAccess`.
pub const CLOUDSHELL_FULL_ACCESS: &str = "arn:aws:iam::aws:policy/AWSCloudShellFullAccess";
/// `ReadOnlyAccess`.
pub const READ_ONLY_ACCESS: &str = "arn:aws:iam::aws:policy/ReadOnlyAccess";

const SOURCES: [(&str, &str, &str); 3] = [
    (
        "AdministratorAccess",
        ADMINISTRATOR_ACCESS,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    ),
    (
        "AWSCloudShellFullAccess",
        CLOUDSHELL_FULL_ACCESS,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["cloudshell:*"],"Resource":"*"}]}"#,
    ),
    (
        "ReadOnlyAccess",
        READ_ONLY_ACCESS,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[
            "cloudshell:DescribeEnvironments","cloudshell:GetEnvironmentStatus",
            "iam:Get*","iam:List*","iam:SimulateCustomPolicy","iam:SimulatePrincipalPolicy",
            "sts:GetCallerIdentity","cloudtrail:LookupEvents","cloudtrail:Get*","cloudtrail:Describe*",
            "cloudtrail:List*"],"Resource":"*"}]}"#,
    ),
];

static BUILTINS: LazyLock<Vec<BuiltinPolicy>> = LazyLock::new(|| {
    SOURCES
        .iter()
        .filter_map(|&(name, arn, text)| {
            // The sources are constants checked by a test; a failure here
            // would drop the policy (and so deny), never grant.
            parse(text, PolicyKind::Managed)
                .ok()
                .map(|document| BuiltinPolicy {
                    name,
                    arn,
                    text,
                    document,
                })
        })
        .collect()
});

/// Every built-in policy.
pub fn all() -> &'static [BuiltinPolicy] {
    &BUILTINS
}

/// The built-in policy with this ARN.
pub fn by_arn(arn: &str) -> Option<&'static BuiltinPolicy> {
    BUILTINS.iter().find(|p| p.arn == arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses() {
        assert_eq!(all().len(), SOURCES.len());
        assert!(by_arn(CLOUDSHELL_FULL_ACCESS).is_some());
        assert!(by_arn("arn:aws:iam::aws:policy/Nope").is_none());
    }
}
