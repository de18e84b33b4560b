//! Condition operator names: `[ForAnyValue:|ForAllValues:]<Operator>[IfExists]`.

use std::fmt;

/// The set qualifier in front of an operator, for multivalued context keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetQualifier {
    /// `ForAnyValue:` — at least one request value must satisfy the operator;
    /// an absent key (or one with no values) gives false.
    ForAnyValue,
    /// `ForAllValues:` — every request value must satisfy the operator; an
    /// absent key (or one with no values) gives true.
    ForAllValues,
}

/// The operator proper, without qualifier or `IfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // The names are IAM's own.
pub enum OperatorKind {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

/// The kind of value an operator compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    String,
    Numeric,
    Date,
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

/// How a value comparison is made, before negation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comparison {
    Equals,
    EqualsIgnoreCase,
    Like,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

const ALL: [(&str, OperatorKind); 27] = {
    use OperatorKind::*;
    [
        ("StringEquals", StringEquals),
        ("StringNotEquals", StringNotEquals),
        ("StringEqualsIgnoreCase", StringEqualsIgnoreCase),
        ("StringNotEqualsIgnoreCase", StringNotEqualsIgnoreCase),
        ("StringLike", StringLike),
        ("StringNotLike", StringNotLike),
        ("NumericEquals", NumericEquals),
        ("NumericNotEquals", NumericNotEquals),
        ("NumericLessThan", NumericLessThan),
        ("NumericLessThanEquals", NumericLessThanEquals),
        ("NumericGreaterThan", NumericGreaterThan),
        ("NumericGreaterThanEquals", NumericGreaterThanEquals),
        ("DateEquals", DateEquals),
        ("DateNotEquals", DateNotEquals),
        ("DateLessThan", DateLessThan),
        ("DateLessThanEquals", DateLessThanEquals),
        ("DateGreaterThan", DateGreaterThan),
        ("DateGreaterThanEquals", DateGreaterThanEquals),
        ("Bool", Bool),
        ("BinaryEquals", BinaryEquals),
        ("IpAddress", IpAddress),
        ("NotIpAddress", NotIpAddress),
        ("ArnEquals", ArnEquals),
        ("ArnLike", ArnLike),
        ("ArnNotEquals", ArnNotEquals),
        ("ArnNotLike", ArnNotLike),
        ("Null", Null),
    ]
};

impl OperatorKind {
    /// IAM's name of the operator.
    pub fn name(self) -> &'static str {
        ALL.iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .unwrap_or("Null")
    }

    /// Whether the operator is a negated match (`StringNotEquals`,
    /// `NotIpAddress`, …): multiple values are combined with NOR, and an absent
    /// key makes it true.
    pub fn is_negated(self) -> bool {
        use OperatorKind::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    /// Whether policy variables are substituted in this operator's values
    /// (string and ARN operators only, as in IAM).
    pub fn takes_variables(self) -> bool {
        matches!(self.family(), Family::String | Family::Arn)
    }

    pub(crate) fn family(self) -> Family {
        use OperatorKind::*;
        match self {
            StringEquals
            | StringNotEquals
            | StringEqualsIgnoreCase
            | StringNotEqualsIgnoreCase
            | StringLike
            | StringNotLike => Family::String,
            NumericEquals
            | NumericNotEquals
            | NumericLessThan
            | NumericLessThanEquals
            | NumericGreaterThan
            | NumericGreaterThanEquals => Family::Numeric,
            DateEquals
            | DateNotEquals
            | DateLessThan
            | DateLessThanEquals
            | DateGreaterThan
            | DateGreaterThanEquals => Family::Date,
            Bool => Family::Bool,
            BinaryEquals => Family::Binary,
            IpAddress | NotIpAddress => Family::Ip,
            ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => Family::Arn,
            Null => Family::Null,
        }
    }

    pub(crate) fn comparison(self) -> Comparison {
        use OperatorKind::*;
        match self {
            StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => Comparison::EqualsIgnoreCase,
            // ArnEquals accepts wildcards exactly like ArnLike in IAM.
            StringLike | StringNotLike | ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => {
                Comparison::Like
            }
            NumericLessThan | DateLessThan => Comparison::LessThan,
            NumericLessThanEquals | DateLessThanEquals => Comparison::LessThanEquals,
            NumericGreaterThan | DateGreaterThan => Comparison::GreaterThan,
            NumericGreaterThanEquals | DateGreaterThanEquals => Comparison::GreaterThanEquals,
            _ => Comparison::Equals,
        }
    }
}

/// A parsed condition operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Operator {
    /// `ForAnyValue:` / `ForAllValues:`, if given.
    pub qualifier: Option<SetQualifier>,
    /// The operator.
    pub kind: OperatorKind,
    /// The `…IfExists` suffix: an absent key satisfies the condition.
    pub if_exists: bool,
}

/// Why an operator name is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OperatorError {
    Unknown,
    NullIfExists,
}

impl Operator {
    /// Parses an operator name. Names are matched case-insensitively.
    pub(crate) fn parse(text: &str) -> Result<Operator, OperatorError> {
        let (qualifier, rest) = if let Some(r) = strip_prefix_ci(text, "ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), r)
        } else if let Some(r) = strip_prefix_ci(text, "ForAllValues:") {
            (Some(SetQualifier::ForAllValues), r)
        } else {
            (None, text)
        };
        let lookup = |name: &str| {
            ALL.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, k)| *k)
        };
        let (kind, if_exists) = match lookup(rest) {
            Some(kind) => (kind, false),
            None => {
                let base = strip_suffix_ci(rest, "IfExists").ok_or(OperatorError::Unknown)?;
                (lookup(base).ok_or(OperatorError::Unknown)?, true)
            }
        };
        if kind == OperatorKind::Null && if_exists {
            return Err(OperatorError::NullIfExists);
        }
        Ok(Operator {
            qualifier,
            kind,
            if_exists,
        })
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.qualifier {
            Some(SetQualifier::ForAnyValue) => f.write_str("ForAnyValue:")?,
            Some(SetQualifier::ForAllValues) => f.write_str("ForAllValues:")?,
            None => {}
        }
        f.write_str(self.kind.name())?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let at = s.len().checked_sub(suffix.len())?;
    let tail = s.get(at..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &s[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operator_round_trips() {
        for (name, kind) in ALL {
            for q in ["", "ForAnyValue:", "ForAllValues:"] {
                for suffix in ["", "IfExists"] {
                    let text = format!("{q}{name}{suffix}");
                    if kind == OperatorKind::Null && suffix == "IfExists" {
                        assert_eq!(Operator::parse(&text), Err(OperatorError::NullIfExists));
                        continue;
                    }
                    let op = Operator::parse(&text).expect(&text);
                    assert_eq!(op.kind, kind);
                    assert_eq!(op.if_exists, !suffix.is_empty());
                    assert_eq!(op.to_string(), text);
                }
            }
        }
    }

    #[test]
    fn unknown_operators() {
        for text in [
            "",
            "StringEqual",
            "ForAnyValue:",
            "IfExists",
            "ForSomeValues:StringEquals",
            "StringEqualsIfExistsIfExists",
            "ForAnyValue:ForAllValues:StringEquals",
        ] {
            assert_eq!(Operator::parse(text), Err(OperatorError::Unknown), "{text}");
        }
    }

    #[test]
    fn names_are_case_insensitive() {
        let op = Operator::parse("forallvalues:stringequalsifexists").expect("parses");
        assert_eq!(op.qualifier, Some(SetQualifier::ForAllValues));
        assert_eq!(op.kind, OperatorKind::StringEquals);
        assert!(op.if_exists);
    }

    #[test]
    fn negation() {
        assert!(OperatorKind::StringNotLike.is_negated());
        assert!(OperatorKind::NotIpAddress.is_negated());
        assert!(!OperatorKind::Bool.is_negated());
        assert!(!OperatorKind::Null.is_negated());
    }
}
