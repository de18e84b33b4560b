//! The parsed form of a policy document, and its JSON serialization.

use serde_json::{Map, Value};

use crate::arn::ArnPattern;
use crate::condition::Condition;
use crate::pattern::Pattern;

/// The policy language version (`Version` element).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `2008-10-17`, the default when `Version` is absent: no policy variables.
    V2008_10_17,
    /// `2012-10-17`: policy variables are substituted.
    V2012_10_17,
}

impl Version {
    /// The version string.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2008_10_17 => "2008-10-17",
            Version::V2012_10_17 => "2012-10-17",
        }
    }

    /// Whether `${…}` policy variables are substituted.
    pub fn has_variables(self) -> bool {
        self == Version::V2012_10_17
    }
}

/// A statement's `Effect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Grants.
    Allow,
    /// Denies, overriding any grant.
    Deny,
}

impl Effect {
    /// `Allow` or `Deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        }
    }
}

/// A parsed, validated policy document. Parse it once with
/// [`parse`](crate::parse) and evaluate it as often as needed; it is
/// `Send + Sync` and cheap to share behind an `Arc`.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyDocument {
    pub(crate) version: Version,
    pub(crate) id: Option<String>,
    pub(crate) statements: Vec<Statement>,
}

impl PolicyDocument {
    /// The language version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The `Id` element.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The statements, in document order.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// Every context key the document's conditions and variables read,
    /// lower-cased and without repeats (for "missing context values" reports).
    pub fn context_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for s in &self.statements {
            for k in s.context_keys() {
                if !keys.iter().any(|have| have == k) {
                    keys.push(k.to_string());
                }
            }
        }
        keys
    }

    /// The document as JSON, in IAM's element names. Parsing the result gives
    /// back an equal document.
    pub fn to_json(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("Version".into(), self.version.as_str().into());
        if let Some(id) = &self.id {
            doc.insert("Id".into(), id.clone().into());
        }
        let statements = self.statements.iter().map(Statement::to_json).collect();
        doc.insert("Statement".into(), Value::Array(statements));
        Value::Object(doc)
    }
}

impl std::fmt::Display for PolicyDocument {
    /// Compact JSON.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub(crate) sid: Option<String>,
    pub(crate) effect: Effect,
    pub(crate) principal: Option<PrincipalBlock>,
    pub(crate) action: ActionBlock,
    pub(crate) resource: Option<ResourceBlock>,
    pub(crate) conditions: Vec<Condition>,
}

impl Statement {
    /// The `Sid`, if any.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// Allow or Deny.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// `Principal` / `NotPrincipal`, if the statement has either.
    pub fn principal(&self) -> Option<&PrincipalBlock> {
        self.principal.as_ref()
    }

    /// `Action` / `NotAction`.
    pub fn action(&self) -> &ActionBlock {
        &self.action
    }

    /// `Resource` / `NotResource`, if the statement has either.
    pub fn resource(&self) -> Option<&ResourceBlock> {
        self.resource.as_ref()
    }

    /// The conditions, all of which must hold.
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    fn context_keys(&self) -> impl Iterator<Item = &str> {
        let cond_keys = self.conditions.iter().flat_map(|c| c.context_keys());
        let res_keys = self
            .resource
            .iter()
            .flat_map(|r| r.items.iter().flat_map(|i| i.pattern.variable_keys()));
        cond_keys.chain(res_keys)
    }

    fn to_json(&self) -> Value {
        let mut s = Map::new();
        if let Some(sid) = &self.sid {
            s.insert("Sid".into(), sid.clone().into());
        }
        s.insert("Effect".into(), self.effect.as_str().into());
        if let Some(p) = &self.principal {
            let name = if p.negated {
                "NotPrincipal"
            } else {
                "Principal"
            };
            s.insert(name.into(), p.to_json());
        }
        let name = if self.action.negated {
            "NotAction"
        } else {
            "Action"
        };
        s.insert(
            name.into(),
            strings(self.action.items.iter().map(|a| &a.text)),
        );
        if let Some(r) = &self.resource {
            let name = if r.negated { "NotResource" } else { "Resource" };
            s.insert(name.into(), strings(r.items.iter().map(|a| &a.text)));
        }
        if !self.conditions.is_empty() {
            let mut block: Map<String, Value> = Map::new();
            for c in &self.conditions {
                let op = block
                    .entry(c.operator_text().to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(keys) = op {
                    keys.insert(c.key().to_string(), strings(c.values()));
                }
            }
            s.insert("Condition".into(), Value::Object(block));
        }
        Value::Object(s)
    }
}

fn strings<S: ToString>(items: impl Iterator<Item = S>) -> Value {
    Value::Array(items.map(|s| Value::String(s.to_string())).collect())
}

/// `Action` or `NotAction`.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionBlock {
    pub(crate) negated: bool,
    pub(crate) items: Vec<ActionPattern>,
}

impl ActionBlock {
    /// Whether this is `NotAction`.
    pub fn is_negated(&self) -> bool {
        self.negated
    }

    /// The action patterns as written.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|a| a.text.as_str())
    }
}

/// One action pattern such as `cloudshell:*` or `iam:Get*`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ActionPattern {
    pub(crate) text: String,
    pub(crate) pattern: Pattern,
}

/// `Resource` or `NotResource`.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceBlock {
    pub(crate) negated: bool,
    pub(crate) items: Vec<ResourcePattern>,
}

impl ResourceBlock {
    /// Whether this is `NotResource`.
    pub fn is_negated(&self) -> bool {
        self.negated
    }

    /// The resource patterns as written.
    pub fn patterns(&self) -> impl Iterator<Item = &str> {
        self.items.iter().map(|a| a.text.as_str())
    }
}

/// One resource pattern: `*` or an ARN with wildcards and variables.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResourcePattern {
    pub(crate) text: String,
    pub(crate) pattern: ArnPattern,
}

/// The type of principal an entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PrincipalType {
    /// `"Principal": "*"`: everyone.
    Everyone,
    /// `"AWS"`: accounts, users, roles, sessions.
    Aws,
    /// `"Service"`: service principals.
    Service,
    /// `"Federated"`: identity providers.
    Federated,
    /// `"CanonicalUser"`.
    CanonicalUser,
}

impl PrincipalType {
    /// The element name inside `Principal`.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::Everyone => "*",
            PrincipalType::Aws => "AWS",
            PrincipalType::Service => "Service",
            PrincipalType::Federated => "Federated",
            PrincipalType::CanonicalUser => "CanonicalUser",
        }
    }
}

/// `Principal` or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalBlock {
    pub(crate) negated: bool,
    pub(crate) entries: Vec<(PrincipalType, String)>,
}

impl PrincipalBlock {
    /// Whether this is `NotPrincipal`.
    pub fn is_negated(&self) -> bool {
        self.negated
    }

    /// The entries: type and value (an account ID, an ARN, a service name, `*`).
    pub fn entries(&self) -> &[(PrincipalType, String)] {
        &self.entries
    }

    fn to_json(&self) -> Value {
        if let [(PrincipalType::Everyone, _)] = self.entries.as_slice() {
            return Value::String("*".into());
        }
        let mut map = Map::new();
        for (ty, value) in &self.entries {
            let list = map
                .entry(ty.as_str().to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = list {
                items.push(Value::String(value.clone()));
            }
        }
        Value::Object(map)
    }
}
