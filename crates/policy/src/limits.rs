//! What kind of policy a document is, and the size IAM allows for it.

/// Where a policy document is used. It decides the size limit and which
/// elements a statement must or must not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// A customer managed policy (6,144 characters).
    Managed,
    /// An inline policy embedded in a user (2,048 characters).
    InlineUser,
    /// An inline policy embedded in a group (5,120 characters).
    InlineGroup,
    /// An inline policy embedded in a role (10,240 characters).
    InlineRole,
    /// A role trust policy (2,048 characters): needs `Principal`, has no
    /// `Resource`.
    Trust,
    /// Another resource-based policy (20,480 characters): needs `Principal`.
    Resource,
    /// A service control policy of an organization (5,120 characters).
    ServiceControl,
    /// A session policy passed to AssumeRole or GetFederationToken
    /// (2,048 characters).
    Session,
    /// A document of any kind that is only being checked, with no limit on
    /// size and no rule about `Principal` or `Resource`.
    Unchecked,
}

impl PolicyKind {
    /// The maximum size, in characters that are not white space, as IAM
    /// counts it; `None` for [`PolicyKind::Unchecked`].
    pub fn size_limit(self) -> Option<usize> {
        Some(match self {
            PolicyKind::Managed => 6_144,
            PolicyKind::InlineUser => 2_048,
            PolicyKind::InlineGroup => 5_120,
            PolicyKind::InlineRole => 10_240,
            PolicyKind::Trust => 2_048,
            PolicyKind::Resource => 20_480,
            PolicyKind::ServiceControl => 5_120,
            PolicyKind::Session => 2_048,
            PolicyKind::Unchecked => return None,
        })
    }

    /// Whether statements name a principal (resource-based policies).
    pub(crate) fn principal_rule(self) -> Rule {
        match self {
            PolicyKind::Trust | PolicyKind::Resource => Rule::Required,
            PolicyKind::Unchecked => Rule::Optional,
            _ => Rule::Forbidden,
        }
    }

    /// Whether statements name resources.
    pub(crate) fn resource_rule(self) -> Rule {
        match self {
            PolicyKind::Trust => Rule::Forbidden,
            PolicyKind::Unchecked => Rule::Optional,
            _ => Rule::Required,
        }
    }
}

/// Whether an element must, may or must not appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    Required,
    Optional,
    Forbidden,
}

/// The size of a policy document as IAM counts it against the limits: every
/// character except white space.
pub fn policy_size(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_ignores_white_space() {
        assert_eq!(policy_size("{ \"a\" :\n\t1 }"), 7);
        assert_eq!(policy_size("é"), 1, "characters, not bytes");
    }

    #[test]
    fn limits() {
        assert_eq!(PolicyKind::Managed.size_limit(), Some(6144));
        assert_eq!(PolicyKind::InlineUser.size_limit(), Some(2048));
        assert_eq!(PolicyKind::Unchecked.size_limit(), None);
    }
}
