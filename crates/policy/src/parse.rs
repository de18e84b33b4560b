//! From JSON text to a validated [`PolicyDocument`], collecting every problem
//! with a JSON pointer to where it is.

use serde_json::{Map, Value};

use crate::arn::{check_resource, ArnPattern};
use crate::condition::{Condition, Operator, OperatorError};
use crate::document::{
    ActionBlock, ActionPattern, Effect, PolicyDocument, PrincipalBlock, PrincipalType,
    ResourceBlock, ResourcePattern, Statement, Version,
};
use crate::error::{ErrorKind, Pointer, PolicyError, ValidationError};
use crate::limits::{policy_size, PolicyKind, Rule};
use crate::pattern::{Pattern, Syntax};

const TOP_LEVEL: [&str; 3] = ["Version", "Id", "Statement"];
const STATEMENT: [&str; 9] = [
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
];

/// Parses and validates a policy document of the given kind.
///
/// Every problem is reported, each with a JSON pointer to where it is; the
/// document is returned only when there are none. This function never panics,
/// whatever the input.
///
/// ```
/// use seashell_policy::{parse, PolicyKind};
/// let doc = parse(
///     r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"cloudshell:*","Resource":"*"}}"#,
///     PolicyKind::Managed,
/// ).unwrap();
/// assert_eq!(doc.statements().len(), 1);
///
/// let err = parse(r#"{"Statement":[{"Effect":"Allow","Action":"x:y","Resource":"*","Condition":{"StringEqual":{}}}]}"#,
///     PolicyKind::Managed).unwrap_err();
/// assert_eq!(err.errors()[0].pointer, "/Statement/0/Condition/StringEqual");
/// ```
pub fn parse(json: &str, kind: PolicyKind) -> Result<PolicyDocument, PolicyError> {
    let mut p = Parser {
        kind,
        version: Version::V2008_10_17,
        errors: Vec::new(),
    };
    if let Some(limit) = kind.size_limit() {
        let size = policy_size(json);
        if size > limit {
            p.error(
                &Pointer::root(),
                ErrorKind::SizeLimitExceeded,
                format!(
                    "the policy has {size} characters (white space not counted); \
                     the limit for this kind of policy is {limit}"
                ),
            );
        }
    }
    let value: Value = match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => {
            p.error(
                &Pointer::root(),
                ErrorKind::MalformedJson,
                format!("the document is not valid JSON: {e}"),
            );
            return Err(PolicyError::new(p.errors));
        }
    };
    let doc = p.document(&value);
    match doc {
        Some(doc) if p.errors.is_empty() => Ok(doc),
        _ => Err(PolicyError::new(p.errors)),
    }
}

struct Parser {
    kind: PolicyKind,
    version: Version,
    errors: Vec<ValidationError>,
}

impl Parser {
    fn error(&mut self, at: &Pointer, kind: ErrorKind, message: impl Into<String>) {
        self.errors.push(ValidationError {
            pointer: at.as_str().to_string(),
            kind,
            message: message.into(),
        });
    }

    fn unknown_elements(&mut self, obj: &Map<String, Value>, at: &Pointer, known: &[&str]) {
        for key in obj.keys() {
            if !known.contains(&key.as_str()) {
                let hint = known
                    .iter()
                    .find(|k| k.eq_ignore_ascii_case(key) || key.starts_with(*k))
                    .map(|k| format!(" (did you mean {k}?)"))
                    .unwrap_or_default();
                self.error(
                    &at.join(key),
                    ErrorKind::UnknownElement,
                    format!("{key} is not a policy element{hint}"),
                );
            }
        }
    }

    fn document(&mut self, value: &Value) -> Option<PolicyDocument> {
        let root = Pointer::root();
        let Value::Object(obj) = value else {
            self.error(
                &root,
                ErrorKind::InvalidType,
                "a policy document must be a JSON object",
            );
            return None;
        };
        self.unknown_elements(obj, &root, &TOP_LEVEL);
        match obj.get("Version") {
            None => {}
            Some(Value::String(v)) if v == "2012-10-17" => self.version = Version::V2012_10_17,
            Some(Value::String(v)) if v == "2008-10-17" => {}
            Some(Value::String(v)) => self.error(
                &root.join("Version"),
                ErrorKind::UnsupportedVersion,
                format!("Version {v:?} is not supported; use \"2012-10-17\""),
            ),
            Some(_) => self.error(
                &root.join("Version"),
                ErrorKind::InvalidType,
                "Version must be a string",
            ),
        }
        let id = match obj.get("Id") {
            None => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(_) => {
                self.error(
                    &root.join("Id"),
                    ErrorKind::InvalidType,
                    "Id must be a string",
                );
                None
            }
        };
        let at = root.join("Statement");
        let statements = match obj.get("Statement") {
            None => {
                self.error(
                    &root,
                    ErrorKind::MissingElement,
                    "a policy document needs a Statement element",
                );
                Vec::new()
            }
            Some(Value::Object(s)) => self.statement(s, &at).into_iter().collect(),
            Some(Value::Array(items)) if items.is_empty() => {
                self.error(&at, ErrorKind::InvalidValue, "Statement must not be empty");
                Vec::new()
            }
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let at = at.join(i);
                    match item {
                        Value::Object(s) => out.extend(self.statement(s, &at)),
                        _ => self.error(
                            &at,
                            ErrorKind::InvalidType,
                            "each statement must be a JSON object",
                        ),
                    }
                }
                out
            }
            Some(_) => {
                self.error(
                    &at,
                    ErrorKind::InvalidType,
                    "Statement must be an object or an array of objects",
                );
                Vec::new()
            }
        };
        self.duplicate_sids(obj.get("Statement"));
        Some(PolicyDocument {
            version: self.version,
            id,
            statements,
        })
    }

    fn duplicate_sids(&mut self, raw: Option<&Value>) {
        // Pointers use the raw array index, since invalid statements are skipped.
        let Some(Value::Array(items)) = raw else {
            return;
        };
        let sid_at = |i: usize| {
            items
                .get(i)
                .and_then(|s| s.get("Sid"))
                .and_then(Value::as_str)
        };
        for i in 0..items.len() {
            let Some(sid) = sid_at(i) else { continue };
            if let Some(first) = (0..i).find(|&j| sid_at(j) == Some(sid)) {
                self.error(
                    &Pointer::root().join("Statement").join(i).join("Sid"),
                    ErrorKind::DuplicateSid,
                    format!(
                        "Sid {sid:?} is already used by statement {first}; Sids must be unique"
                    ),
                );
            }
        }
    }

    fn statement(&mut self, obj: &Map<String, Value>, at: &Pointer) -> Option<Statement> {
        let before = self.errors.len();
        self.unknown_elements(obj, at, &STATEMENT);

        let sid = match obj.get("Sid") {
            None => None,
            Some(Value::String(s)) => {
                let iam_kind = !matches!(self.kind, PolicyKind::Resource | PolicyKind::Unchecked);
                if iam_kind && !s.chars().all(|c| c.is_ascii_alphanumeric()) {
                    self.error(
                        &at.join("Sid"),
                        ErrorKind::InvalidValue,
                        format!("Sid {s:?} may hold only letters A-Z, a-z and digits 0-9"),
                    );
                }
                Some(s.clone())
            }
            Some(_) => {
                self.error(
                    &at.join("Sid"),
                    ErrorKind::InvalidType,
                    "Sid must be a string",
                );
                None
            }
        };

        let effect = match obj.get("Effect") {
            Some(Value::String(e)) if e == "Allow" => Some(Effect::Allow),
            Some(Value::String(e)) if e == "Deny" => Some(Effect::Deny),
            Some(Value::String(e)) => {
                self.error(
                    &at.join("Effect"),
                    ErrorKind::InvalidValue,
                    format!("Effect {e:?} must be \"Allow\" or \"Deny\" (case matters)"),
                );
                None
            }
            Some(_) => {
                self.error(
                    &at.join("Effect"),
                    ErrorKind::InvalidType,
                    "Effect must be a string",
                );
                None
            }
            None => {
                self.error(
                    at,
                    ErrorKind::MissingElement,
                    "the statement needs an Effect",
                );
                None
            }
        };

        let action = self.pair(obj, at, "Action", "NotAction", Rule::Required);
        let action = action.map(|(negated, name, values)| {
            let items = self.actions(&at.join(name), values);
            ActionBlock { negated, items }
        });

        let resource = self.pair(
            obj,
            at,
            "Resource",
            "NotResource",
            self.kind.resource_rule(),
        );
        let resource = resource.map(|(negated, name, values)| {
            let items = self.resources(&at.join(name), values);
            ResourceBlock { negated, items }
        });

        let principal = self.pair(
            obj,
            at,
            "Principal",
            "NotPrincipal",
            self.kind.principal_rule(),
        );
        let principal = principal.map(|(negated, name, value)| {
            let entries = self.principals(&at.join(name), value);
            PrincipalBlock { negated, entries }
        });

        let conditions = match obj.get("Condition") {
            None => Vec::new(),
            Some(Value::Object(block)) => self.conditions(block, &at.join("Condition")),
            Some(_) => {
                self.error(
                    &at.join("Condition"),
                    ErrorKind::InvalidType,
                    "Condition must be an object of operators",
                );
                Vec::new()
            }
        };

        if self.errors.len() > before {
            return None;
        }
        Some(Statement {
            sid,
            effect: effect?,
            principal,
            action: action?,
            resource,
            conditions,
        })
    }

    /// Looks up one of two mutually exclusive elements (`Action`/`NotAction`…)
    /// and applies the kind's rule; returns (negated, element name, value).
    fn pair<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        at: &Pointer,
        name: &'static str,
        not_name: &'static str,
        rule: Rule,
    ) -> Option<(bool, &'static str, &'v Value)> {
        let found = match (obj.get(name), obj.get(not_name)) {
            (Some(_), Some(_)) => {
                self.error(
                    at,
                    ErrorKind::ConflictingElements,
                    format!("a statement cannot have both {name} and {not_name}"),
                );
                return None;
            }
            (Some(v), None) => Some((false, name, v)),
            (None, Some(v)) => Some((true, not_name, v)),
            (None, None) => None,
        };
        match (rule, &found) {
            (Rule::Required, None) => self.error(
                at,
                ErrorKind::MissingElement,
                format!("the statement needs {name} or {not_name}"),
            ),
            (Rule::Forbidden, Some((_, n, _))) => self.error(
                &at.join(n),
                ErrorKind::UnknownElement,
                format!("{n} is not allowed in this kind of policy"),
            ),
            _ => {}
        }
        found
    }

    /// A string or a non-empty array of strings.
    fn strings<'v>(&mut self, at: &Pointer, value: &'v Value) -> Vec<(Pointer, &'v str)> {
        match value {
            Value::String(s) => vec![(at.clone(), s.as_str())],
            Value::Array(items) if items.is_empty() => {
                self.error(at, ErrorKind::InvalidValue, "the list must not be empty");
                Vec::new()
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push((at.join(i), s.as_str())),
                        _ => self.error(&at.join(i), ErrorKind::InvalidType, "expected a string"),
                    }
                }
                out
            }
            _ => {
                self.error(
                    at,
                    ErrorKind::InvalidType,
                    "expected a string or an array of strings",
                );
                Vec::new()
            }
        }
    }

    fn actions(&mut self, at: &Pointer, value: &Value) -> Vec<ActionPattern> {
        let syntax = Syntax {
            wildcards: true,
            variables: false,
        };
        let mut out = Vec::new();
        for (at, text) in self.strings(at, value) {
            if let Err(why) = check_action(text) {
                self.error(&at, ErrorKind::InvalidAction, why);
                continue;
            }
            out.push(ActionPattern {
                text: text.to_string(),
                pattern: Pattern::compile(text, syntax),
            });
        }
        out
    }

    fn resources(&mut self, at: &Pointer, value: &Value) -> Vec<ResourcePattern> {
        let variables = self.version.has_variables();
        let mut out = Vec::new();
        for (at, text) in self.strings(at, value) {
            if let Err(why) = check_resource(text, variables) {
                self.error(&at, ErrorKind::InvalidArn, why);
                continue;
            }
            out.push(ResourcePattern {
                text: text.to_string(),
                pattern: ArnPattern::compile(text, variables),
            });
        }
        out
    }

    fn principals(&mut self, at: &Pointer, value: &Value) -> Vec<(PrincipalType, String)> {
        match value {
            Value::String(s) if s == "*" => vec![(PrincipalType::Everyone, "*".to_string())],
            Value::Object(map) if !map.is_empty() => {
                let mut out = Vec::new();
                for (name, v) in map {
                    let at = at.join(name);
                    let ty = match name.as_str() {
                        "AWS" => PrincipalType::Aws,
                        "Service" => PrincipalType::Service,
                        "Federated" => PrincipalType::Federated,
                        "CanonicalUser" => PrincipalType::CanonicalUser,
                        _ => {
                            self.error(
                                &at,
                                ErrorKind::InvalidPrincipal,
                                format!(
                                    "{name} is not a principal type; use AWS, Service, \
                                     Federated or CanonicalUser"
                                ),
                            );
                            continue;
                        }
                    };
                    for (at, text) in self.strings(&at, v) {
                        match check_principal(ty, text) {
                            Ok(()) => out.push((ty, text.to_string())),
                            Err(why) => self.error(&at, ErrorKind::InvalidPrincipal, why),
                        }
                    }
                }
                out
            }
            _ => {
                self.error(
                    at,
                    ErrorKind::InvalidPrincipal,
                    "a principal must be \"*\" or an object such as {\"AWS\": \"arn:…\"}",
                );
                Vec::new()
            }
        }
    }

    fn conditions(&mut self, block: &Map<String, Value>, at: &Pointer) -> Vec<Condition> {
        let mut out = Vec::new();
        for (op_text, keys) in block {
            let op_at = at.join(op_text);
            let operator = match Operator::parse(op_text) {
                Ok(op) => op,
                Err(OperatorError::Unknown) => {
                    self.error(
                        &op_at,
                        ErrorKind::UnknownConditionOperator,
                        format!("{op_text} is not a condition operator"),
                    );
                    continue;
                }
                Err(OperatorError::NullIfExists) => {
                    self.error(
                        &op_at,
                        ErrorKind::UnknownConditionOperator,
                        "the Null operator has no IfExists form",
                    );
                    continue;
                }
            };
            let Value::Object(keys) = keys else {
                self.error(
                    &op_at,
                    ErrorKind::InvalidType,
                    "a condition operator must map condition keys to values",
                );
                continue;
            };
            if keys.is_empty() {
                self.error(
                    &op_at,
                    ErrorKind::InvalidValue,
                    "a condition operator needs at least one condition key",
                );
            }
            for (key, values) in keys {
                let key_at = op_at.join(key);
                if key.trim().is_empty() {
                    self.error(&key_at, ErrorKind::InvalidValue, "empty condition key");
                    continue;
                }
                let Some(list) = self.condition_values(&key_at, values) else {
                    continue;
                };
                let variables = self.version.has_variables();
                match Condition::new(op_text, operator, key, list, variables) {
                    Ok(c) => out.push(c),
                    Err((i, why)) => {
                        let at = if values.is_array() {
                            key_at.join(i)
                        } else {
                            key_at
                        };
                        self.error(&at, ErrorKind::InvalidValue, why);
                    }
                }
            }
        }
        out
    }

    /// Condition values: strings, numbers or booleans, alone or in an array.
    fn condition_values(&mut self, at: &Pointer, value: &Value) -> Option<Vec<String>> {
        let scalar = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        match value {
            Value::Array(items) if items.is_empty() => {
                self.error(at, ErrorKind::InvalidValue, "a condition key needs a value");
                None
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match scalar(item) {
                        Some(s) => out.push(s),
                        None => {
                            self.error(
                                &at.join(i),
                                ErrorKind::InvalidType,
                                "condition values must be strings, numbers or booleans",
                            );
                            return None;
                        }
                    }
                }
                Some(out)
            }
            other => match scalar(other) {
                Some(s) => Some(vec![s]),
                None => {
                    self.error(
                        at,
                        ErrorKind::InvalidType,
                        "condition values must be strings, numbers or booleans",
                    );
                    None
                }
            },
        }
    }
}

/// `*`, or `service:Action` where the service prefix is letters, digits and
/// hyphens and the action is not empty (wildcards allowed in both).
fn check_action(text: &str) -> Result<(), String> {
    if text == "*" {
        return Ok(());
    }
    let Some((service, action)) = text.split_once(':') else {
        return Err(format!(
            "action {text:?} must be \"*\" or service:Action, e.g. cloudshell:CreateSession"
        ));
    };
    let service_ok = !service.is_empty()
        && service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '*' | '?'));
    if !service_ok {
        return Err(format!(
            "action {text:?} has an invalid service prefix {service:?}: use letters, digits and hyphens"
        ));
    }
    let action_ok = !action.is_empty()
        && action
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '?' | '-' | '_' | '.'));
    if !action_ok {
        return Err(format!(
            "action {text:?} has an invalid action name {action:?}"
        ));
    }
    Ok(())
}

/// What IAM accepts as a principal of each type: no partial wildcards.
fn check_principal(ty: PrincipalType, text: &str) -> Result<(), String> {
    if text == "*" {
        return Ok(());
    }
    if text.is_empty() || text.contains(['*', '?']) || text.chars().any(char::is_whitespace) {
        return Err(format!(
            "invalid principal {text:?}: principals cannot hold wildcards other than a lone \"*\""
        ));
    }
    if ty == PrincipalType::Aws {
        let account = text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit());
        let arn = crate::arn::split_arn(text).is_some_and(|p| {
            matches!(p[2], "iam" | "sts")
                && p[4].len() == 12
                && p[4].bytes().all(|b| b.is_ascii_digit())
                && !p[5].is_empty()
        });
        if !account && !arn {
            return Err(format!(
                "invalid principal {text:?}: an AWS principal is a 12-digit account ID or an \
                 IAM or STS ARN such as arn:aws:iam::123456789012:role/Name"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
