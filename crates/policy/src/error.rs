//! Validation errors, each pointing at the part of the document that is wrong.

use std::fmt;

/// What kind of problem a [`ValidationError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The text is not JSON.
    MalformedJson,
    /// An element IAM does not know (e.g. `Actions`).
    UnknownElement,
    /// A required element is missing (e.g. `Effect`).
    MissingElement,
    /// Two elements that exclude each other (e.g. `Action` and `NotAction`).
    ConflictingElements,
    /// An element has the wrong JSON type.
    InvalidType,
    /// An element's value is not acceptable (e.g. `Effect: "allow"`).
    InvalidValue,
    /// The `Version` is not one IAM knows.
    UnsupportedVersion,
    /// A condition operator IAM does not know.
    UnknownConditionOperator,
    /// A resource that is not `*` or an ARN.
    InvalidArn,
    /// An action that is not `*` or `service:Action`.
    InvalidAction,
    /// A principal IAM would refuse.
    InvalidPrincipal,
    /// The document is larger than the limit for its kind.
    SizeLimitExceeded,
    /// Two statements with the same `Sid`.
    DuplicateSid,
}

impl ErrorKind {
    /// A short stable name, used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::MalformedJson => "malformed JSON",
            ErrorKind::UnknownElement => "unknown element",
            ErrorKind::MissingElement => "missing element",
            ErrorKind::ConflictingElements => "conflicting elements",
            ErrorKind::InvalidType => "invalid type",
            ErrorKind::InvalidValue => "invalid value",
            ErrorKind::UnsupportedVersion => "unsupported version",
            ErrorKind::UnknownConditionOperator => "unknown condition operator",
            ErrorKind::InvalidArn => "invalid ARN",
            ErrorKind::InvalidAction => "invalid action",
            ErrorKind::InvalidPrincipal => "invalid principal",
            ErrorKind::SizeLimitExceeded => "size limit exceeded",
            ErrorKind::DuplicateSid => "duplicate Sid",
        }
    }
}

/// One problem found in a policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Where: a JSON pointer (RFC 6901) into the document, e.g.
    /// `/Statement/1/Condition/StringEquals`; empty for the whole document.
    pub pointer: String,
    /// What kind of problem.
    pub kind: ErrorKind,
    /// What is wrong, for a person.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}: {}", self.kind.as_str(), self.message)
    }
}

/// Every problem found in a policy document (at least one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    errors: Vec<ValidationError>,
}

impl PolicyError {
    pub(crate) fn new(errors: Vec<ValidationError>) -> PolicyError {
        PolicyError { errors }
    }

    /// The problems, in document order.
    pub fn errors(&self) -> &[ValidationError] {
        &self.errors
    }

    /// Whether any problem is of `kind`.
    pub fn has(&self, kind: ErrorKind) -> bool {
        self.errors.iter().any(|e| e.kind == kind)
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid policy document: ")?;
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A JSON pointer under construction.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pointer(String);

impl Pointer {
    pub(crate) fn root() -> Pointer {
        Pointer(String::new())
    }

    /// The pointer one level down, escaping `~` and `/` as RFC 6901 says.
    pub(crate) fn join(&self, segment: impl fmt::Display) -> Pointer {
        let seg = segment.to_string().replace('~', "~0").replace('/', "~1");
        Pointer(format!("{}/{seg}", self.0))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_escapes() {
        let p = Pointer::root()
            .join("Condition")
            .join("aws:PrincipalTag/a~b");
        assert_eq!(p.as_str(), "/Condition/aws:PrincipalTag~1a~0b");
    }

    #[test]
    fn display() {
        let e = PolicyError::new(vec![ValidationError {
            pointer: "/Statement/0/Effect".into(),
            kind: ErrorKind::InvalidValue,
            message: "Effect must be Allow or Deny".into(),
        }]);
        assert_eq!(
            e.to_string(),
            "invalid policy document: /Statement/0/Effect: invalid value: Effect must be Allow or Deny"
        );
        assert!(e.has(ErrorKind::InvalidValue));
        assert!(!e.has(ErrorKind::DuplicateSid));
    }
}
