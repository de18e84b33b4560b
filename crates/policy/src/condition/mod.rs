//! The `Condition` element: operators, keys, values and their evaluation.
//!
//! IAM's rules, all implemented here:
//! - several operators in a block, and several keys under one operator, are ANDed;
//! - several values for one key are ORed (NORed for negated operators);
//! - key names are case-insensitive, values case-sensitive unless the operator
//!   says otherwise;
//! - a key absent from the request makes a condition false, except that negated
//!   operators (`StringNotEquals`, …) are then true, `…IfExists` is true and
//!   `Null` tests exactly for absence;
//! - `ForAnyValue:` needs one request value to satisfy the operator (false
//!   for an absent key), `ForAllValues:` needs every request value to (true for
//!   an absent key).

mod operator;
pub(crate) mod value;

use std::net::IpAddr;

use ipnet::IpNet;

pub(crate) use operator::{Family, OperatorError};
pub use operator::{Operator, OperatorKind, SetQualifier};

use crate::arn::ArnPattern;
use crate::context::Context;
use crate::pattern::{glob_match, Case, Pattern, Piece, Syntax, Unresolved};
use operator::Comparison;

/// One `operator → key → values` test of a statement's `Condition` element.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    operator: Operator,
    operator_text: String,
    key: String,
    key_lower: String,
    values: Vec<ConditionValue>,
}

/// A policy-side value, compiled for its operator.
#[derive(Debug, Clone, PartialEq)]
struct ConditionValue {
    text: String,
    compiled: Compiled,
}

#[derive(Debug, Clone, PartialEq)]
enum Compiled {
    Str(Pattern),
    Number(f64),
    Date(i128),
    Bool(bool),
    Binary(Vec<u8>),
    Ip(IpNet),
    Arn(ArnPattern),
    Null(bool),
}

/// A request-side value, parsed once for the operator's family.
enum Actual<'a> {
    Str(&'a str),
    Number(f64),
    Date(i128),
    Bool(bool),
    Binary(Vec<u8>),
    Ip(IpAddr),
}

impl Condition {
    /// Compiles a condition. `variables` enables policy variables (Version
    /// 2012-10-17). On failure returns the index of the first bad value and why.
    pub(crate) fn new(
        operator_text: &str,
        operator: Operator,
        key: &str,
        values: Vec<String>,
        variables: bool,
    ) -> Result<Condition, (usize, String)> {
        let kind = operator.kind;
        let mut compiled_values = Vec::with_capacity(values.len());
        for (i, text) in values.into_iter().enumerate() {
            let compiled = compile_value(kind, &text, variables).map_err(|why| (i, why))?;
            compiled_values.push(ConditionValue { text, compiled });
        }
        Ok(Condition {
            operator,
            operator_text: operator_text.to_string(),
            key: key.to_string(),
            key_lower: key.to_ascii_lowercase(),
            values: compiled_values,
        })
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The operator as written in the policy.
    pub fn operator_text(&self) -> &str {
        &self.operator_text
    }

    /// The condition key as written in the policy.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The values as written in the policy.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.values.iter().map(|v| v.text.as_str())
    }

    /// Context keys this condition reads: its key and any policy variables.
    pub fn context_keys(&self) -> Vec<&str> {
        let mut keys = vec![self.key_lower.as_str()];
        for v in &self.values {
            match &v.compiled {
                Compiled::Str(p) => keys.extend(p.variable_keys()),
                Compiled::Arn(p) => keys.extend(p.variable_keys()),
                _ => {}
            }
        }
        keys
    }

    /// Evaluates the condition against the request context.
    pub(crate) fn evaluate(&self, ctx: &Context) -> Result<bool, Unresolved> {
        let kind = self.operator.kind;
        let present = ctx.lookup(&self.key_lower).filter(|v| !v.is_empty());
        if kind == OperatorKind::Null {
            // `"Null": {"k": "true"}` holds when k is absent; "false" when present.
            let absent = present.is_none();
            return Ok(self
                .values
                .iter()
                .any(|v| matches!(v.compiled, Compiled::Null(want) if want == absent)));
        }
        let Some(actual) = present else {
            return Ok(match self.operator.qualifier {
                Some(SetQualifier::ForAllValues) => true,
                Some(SetQualifier::ForAnyValue) => self.operator.if_exists,
                None => self.operator.if_exists || kind.is_negated(),
            });
        };
        let negated = kind.is_negated();
        // Whether one request value satisfies the (possibly negated) operator.
        let satisfies = |value: &str| -> Result<Option<bool>, Unresolved> {
            let Some(actual) = parse_actual(kind.family(), value) else {
                return Ok(None);
            };
            let mut any = false;
            for v in &self.values {
                if self.value_matches(&v.compiled, &actual, value, ctx)? {
                    any = true;
                    break;
                }
            }
            Ok(Some(any != negated))
        };
        match self.operator.qualifier {
            None => {
                // A request value that cannot be read as the operator's type
                // (a date that is not a date…) never satisfies it, negated or not.
                let mut positive = false;
                for value in actual {
                    match satisfies(value)? {
                        None => return Ok(false),
                        Some(s) => positive |= s != negated,
                    }
                }
                Ok(positive != negated)
            }
            Some(SetQualifier::ForAnyValue) => {
                for value in actual {
                    if satisfies(value)? == Some(true) {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Some(SetQualifier::ForAllValues) => {
                for value in actual {
                    if satisfies(value)? != Some(true) {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }
    }

    /// Whether one policy value matches one request value (before negation).
    fn value_matches(
        &self,
        policy: &Compiled,
        actual: &Actual<'_>,
        raw: &str,
        ctx: &Context,
    ) -> Result<bool, Unresolved> {
        let cmp = self.operator.kind.comparison();
        Ok(match (policy, actual) {
            (Compiled::Str(p), Actual::Str(s)) => match cmp {
                Comparison::EqualsIgnoreCase => p.with_pieces(ctx, |pieces| {
                    let policy_chars = pieces.iter().flat_map(|piece| match piece {
                        Piece::Lit(l) => l.chars(),
                        _ => "".chars(),
                    });
                    policy_chars
                        .flat_map(char::to_lowercase)
                        .eq(s.chars().flat_map(char::to_lowercase))
                })?,
                _ => p.with_pieces(ctx, |pieces| glob_match(pieces, s, Case::Sensitive))?,
            },
            (Compiled::Number(p), Actual::Number(a)) => compare(cmp, a, p),
            (Compiled::Date(p), Actual::Date(a)) => compare(cmp, a, p),
            (Compiled::Bool(p), Actual::Bool(a)) => p == a,
            (Compiled::Binary(p), Actual::Binary(a)) => p == a,
            (Compiled::Ip(net), Actual::Ip(ip)) => net.contains(ip),
            (Compiled::Arn(p), Actual::Str(_)) => p.matches(raw, ctx)?,
            _ => false,
        })
    }
}

fn compare<T: PartialOrd>(cmp: Comparison, actual: &T, policy: &T) -> bool {
    match cmp {
        Comparison::LessThan => actual < policy,
        Comparison::LessThanEquals => actual <= policy,
        Comparison::GreaterThan => actual > policy,
        Comparison::GreaterThanEquals => actual >= policy,
        _ => actual == policy,
    }
}

fn parse_actual(family: Family, s: &str) -> Option<Actual<'_>> {
    Some(match family {
        Family::String | Family::Arn | Family::Null => Actual::Str(s),
        Family::Numeric => Actual::Number(value::parse_number(s)?),
        Family::Date => Actual::Date(value::parse_date(s)?),
        Family::Bool => Actual::Bool(value::parse_bool(s)?),
        Family::Binary => Actual::Binary(value::parse_binary(s)?),
        Family::Ip => Actual::Ip(value::parse_ip(s)?),
    })
}

fn compile_value(kind: OperatorKind, text: &str, variables: bool) -> Result<Compiled, String> {
    let variables = variables && kind.takes_variables();
    let bad = |what: &str| format!("{text:?} is not {what}, as {} requires", kind.name());
    Ok(match kind.family() {
        Family::String => Compiled::Str(Pattern::compile(
            text,
            Syntax {
                wildcards: kind.comparison() == Comparison::Like,
                variables,
            },
        )),
        Family::Arn => Compiled::Arn(ArnPattern::compile(text, variables)),
        Family::Numeric => {
            Compiled::Number(value::parse_number(text).ok_or_else(|| bad("a number"))?)
        }
        Family::Date => Compiled::Date(
            value::parse_date(text)
                .ok_or_else(|| bad("an ISO 8601 date or epoch time in seconds"))?,
        ),
        Family::Bool => {
            Compiled::Bool(value::parse_bool(text).ok_or_else(|| bad("true or false"))?)
        }
        Family::Binary => {
            Compiled::Binary(value::parse_binary(text).ok_or_else(|| bad("base64-encoded data"))?)
        }
        Family::Ip => {
            Compiled::Ip(value::parse_cidr(text).ok_or_else(|| bad("an IP address or CIDR block"))?)
        }
        Family::Null => {
            Compiled::Null(value::parse_bool(text).ok_or_else(|| bad("true or false"))?)
        }
    })
}

#[cfg(test)]
mod tests;
