//! IAM's policy evaluation logic.
//!
//! 1. An explicit `Deny` in any policy that applies decides: [`Verdict::ExplicitDeny`].
//! 2. Every level of service control policies, when given, must allow.
//! 3. A resource-based policy (a role trust policy) that names the principal
//!    itself, in the same account, allows on its own. One that names only the
//!    account delegates to the account's identity policies.
//! 4. Otherwise an identity-based policy must allow, and so must the
//!    permissions boundary and session policies, when given.
//! 5. Anything else is an [`Verdict::ImplicitDeny`].
//!
//! The decision names the statement or the missing grant that decided it, so
//! callers can say why a request was denied.

use std::fmt;

use crate::arn::split_arn;
use crate::context::{Principal, Request};
use crate::document::{Effect, PolicyDocument, PrincipalBlock, PrincipalType, Statement};
use crate::pattern::{Case, Unresolved};

/// Where a policy comes from; decides its role in evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyType {
    /// Attached to the principal (managed or inline, directly or through a group).
    Identity,
    /// Attached to the resource; a role's trust policy is one.
    Resource,
    /// The principal's permissions boundary.
    PermissionsBoundary,
    /// A service control policy of the principal's organization.
    ServiceControl,
    /// A session policy passed when the session was created.
    Session,
}

impl PolicyType {
    /// How AWS names this type in denial messages.
    pub fn description(self) -> &'static str {
        match self {
            PolicyType::Identity => "identity-based policy",
            PolicyType::Resource => "resource-based policy",
            PolicyType::PermissionsBoundary => "permissions boundary",
            PolicyType::ServiceControl => "service control policy",
            PolicyType::Session => "session policy",
        }
    }
}

/// A policy document with the name used to explain decisions.
#[derive(Debug, Clone, Copy)]
pub struct NamedPolicy<'a> {
    /// The policy's name (e.g. `AWSCloudShellFullAccess` or an inline name).
    pub name: &'a str,
    /// The parsed document.
    pub document: &'a PolicyDocument,
}

/// Every policy that bears on one request.
#[derive(Debug, Clone, Default)]
pub struct PolicySet<'a> {
    identity: Vec<NamedPolicy<'a>>,
    resource: Vec<NamedPolicy<'a>>,
    resource_required: bool,
    boundary: Option<Vec<NamedPolicy<'a>>>,
    session: Option<Vec<NamedPolicy<'a>>>,
    service_control: Vec<Vec<NamedPolicy<'a>>>,
}

impl<'a> PolicySet<'a> {
    /// An empty set: every request is implicitly denied.
    pub fn new() -> PolicySet<'a> {
        PolicySet::default()
    }

    /// Adds an identity-based policy.
    pub fn identity(mut self, name: &'a str, document: &'a PolicyDocument) -> Self {
        self.identity.push(NamedPolicy { name, document });
        self
    }

    /// Adds a resource-based policy.
    pub fn resource(mut self, name: &'a str, document: &'a PolicyDocument) -> Self {
        self.resource.push(NamedPolicy { name, document });
        self
    }

    /// Sets a role trust policy: like a resource-based policy, except that it
    /// must allow the request (as for `sts:AssumeRole`).
    pub fn trust(mut self, name: &'a str, document: &'a PolicyDocument) -> Self {
        self.resource.push(NamedPolicy { name, document });
        self.resource_required = true;
        self
    }

    /// Adds a policy to the permissions boundary. Once any is added, the
    /// boundary must allow every request.
    pub fn boundary(mut self, name: &'a str, document: &'a PolicyDocument) -> Self {
        self.boundary
            .get_or_insert_with(Vec::new)
            .push(NamedPolicy { name, document });
        self
    }

    /// Adds a session policy. Once any is added, session policies must allow
    /// every request.
    pub fn session(mut self, name: &'a str, document: &'a PolicyDocument) -> Self {
        self.session
            .get_or_insert_with(Vec::new)
            .push(NamedPolicy { name, document });
        self
    }

    /// Adds one level of service control policies (the organization root, an
    /// organizational unit, the account). Each level must allow the request.
    pub fn service_control_level(mut self, policies: Vec<NamedPolicy<'a>>) -> Self {
        self.service_control.push(policies);
        self
    }

    fn all(&self) -> impl Iterator<Item = (PolicyType, &NamedPolicy<'a>)> {
        let tag = |ty| move |p| (ty, p);
        self.identity
            .iter()
            .map(tag(PolicyType::Identity))
            .chain(self.resource.iter().map(tag(PolicyType::Resource)))
            .chain(
                self.boundary
                    .iter()
                    .flatten()
                    .map(tag(PolicyType::PermissionsBoundary)),
            )
            .chain(self.session.iter().flatten().map(tag(PolicyType::Session)))
            .chain(
                self.service_control
                    .iter()
                    .flatten()
                    .map(tag(PolicyType::ServiceControl)),
            )
    }
}

/// The outcome of evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The request is allowed.
    Allow,
    /// Nothing allows the request.
    ImplicitDeny,
    /// A `Deny` statement applies.
    ExplicitDeny,
}

/// A statement, identified for explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementRef<'a> {
    /// The policy's name.
    pub policy: &'a str,
    /// The policy's type.
    pub policy_type: PolicyType,
    /// The statement's position in the policy, from 0.
    pub index: usize,
    /// The statement's `Sid`, if it has one.
    pub sid: Option<&'a str>,
}

impl fmt::Display for StatementRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sid {
            Some(sid) => write!(f, "statement {sid:?}")?,
            None => write!(f, "statement {}", self.index)?,
        }
        write!(
            f,
            " of {} {:?}",
            self.policy_type.description(),
            self.policy
        )
    }
}

/// Why a decision came out as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason<'a> {
    /// This statement allowed the request.
    AllowedBy(StatementRef<'a>),
    /// This `Deny` statement denied the request.
    DeniedBy(StatementRef<'a>),
    /// No identity-based policy allows the request.
    NoIdentityAllow,
    /// A resource-based policy was needed (a trust policy, or a resource in
    /// another account) and none allows the request.
    NoResourceAllow,
    /// The permissions boundary does not allow the request.
    NoBoundaryAllow,
    /// The session policies do not allow the request.
    NoSessionAllow,
    /// This level of service control policies does not allow the request.
    NoServiceControlAllow {
        /// The level, from 0 (the organization root).
        level: usize,
    },
}

/// The decision for one request, with its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'a> {
    /// Allow, implicit deny or explicit deny.
    pub verdict: Verdict,
    /// What decided it.
    pub reason: Reason<'a>,
}

impl<'a> Decision<'a> {
    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    /// The statement that decided, if one did (an allow or an explicit deny).
    pub fn statement(&self) -> Option<&StatementRef<'a>> {
        match &self.reason {
            Reason::AllowedBy(s) | Reason::DeniedBy(s) => Some(s),
            _ => None,
        }
    }

    /// The end of AWS's `AccessDenied` message for this decision, e.g.
    /// "because no identity-based policy allows the cloudshell:CreateSession
    /// action" or "with an explicit deny in an identity-based policy".
    pub fn denial_phrase(&self, action: &str) -> String {
        match self.reason {
            Reason::AllowedBy(_) => String::new(),
            Reason::DeniedBy(s) => {
                let article = if s.policy_type == PolicyType::Identity {
                    "an"
                } else {
                    "a"
                };
                format!(
                    "with an explicit deny in {article} {}",
                    s.policy_type.description()
                )
            }
            Reason::NoIdentityAllow => {
                format!("because no identity-based policy allows the {action} action")
            }
            Reason::NoResourceAllow => {
                format!("because no resource-based policy allows the {action} action")
            }
            Reason::NoBoundaryAllow => {
                format!("because no permissions boundary allows the {action} action")
            }
            Reason::NoSessionAllow => {
                format!("because no session policy allows the {action} action")
            }
            Reason::NoServiceControlAllow { .. } => {
                format!("because no service control policy allows the {action} action")
            }
        }
    }
}

impl fmt::Display for Decision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            Reason::AllowedBy(s) => write!(f, "allowed by {s}"),
            Reason::DeniedBy(s) => write!(f, "explicitly denied by {s}"),
            Reason::NoIdentityAllow => {
                f.write_str("implicitly denied: no identity-based policy allows it")
            }
            Reason::NoResourceAllow => f.write_str(
                "implicitly denied: no resource-based policy allows it for this principal",
            ),
            Reason::NoBoundaryAllow => {
                f.write_str("implicitly denied: the permissions boundary does not allow it")
            }
            Reason::NoSessionAllow => {
                f.write_str("implicitly denied: the session policy does not allow it")
            }
            Reason::NoServiceControlAllow { level } => write!(
                f,
                "implicitly denied: the service control policies at level {level} do not allow it"
            ),
        }
    }
}

/// How a resource-based statement named the principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PrincipalMatch {
    /// Identity-based statements name no principal.
    Implicit,
    /// Through the principal's account: the account's own policies decide.
    Account,
    /// The principal itself (or everyone).
    Specific,
}

/// Evaluates `request` against `policies`.
///
/// ```
/// use seashell_policy::{evaluate, parse, Context, PolicyKind, PolicySet, Request, Verdict};
/// let full = parse(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"cloudshell:*","Resource":"*"}]}"#,
///     PolicyKind::Managed).unwrap();
/// let set = PolicySet::new().identity("AWSCloudShellFullAccess", &full);
/// let ctx = Context::new();
/// let req = Request::new("arn:aws:iam::123456789012:user/alice", "cloudshell:CreateSession", "*", &ctx);
/// let decision = evaluate(&req, &set);
/// assert_eq!(decision.verdict, Verdict::Allow);
/// assert_eq!(decision.statement().unwrap().policy, "AWSCloudShellFullAccess");
/// ```
pub fn evaluate<'a>(request: &Request<'_>, policies: &PolicySet<'a>) -> Decision<'a> {
    match decide(request, policies) {
        Ok(d) | Err(d) => d,
    }
}

/// `Err` carries an explicit deny, to stop at the first one with `?`.
fn decide<'a>(req: &Request<'_>, set: &PolicySet<'a>) -> Result<Decision<'a>, Decision<'a>> {
    let identity = scan(req, &set.identity, PolicyType::Identity)?;
    let resource = scan(req, &set.resource, PolicyType::Resource)?;
    let boundary = set
        .boundary
        .as_ref()
        .map(|b| scan(req, b, PolicyType::PermissionsBoundary))
        .transpose()?;
    let session = set
        .session
        .as_ref()
        .map(|s| scan(req, s, PolicyType::Session))
        .transpose()?;
    let mut scp_levels = Vec::new();
    for level in &set.service_control {
        scp_levels.push(scan(req, level, PolicyType::ServiceControl)?);
    }

    let deny = |reason| Decision {
        verdict: Verdict::ImplicitDeny,
        reason,
    };
    if let Some(level) = scp_levels.iter().position(Option::is_none) {
        return Ok(deny(Reason::NoServiceControlAllow { level }));
    }
    let cross_account = is_cross_account(req);
    if let Some((stmt, PrincipalMatch::Specific)) = resource {
        if !cross_account {
            return Ok(Decision {
                verdict: Verdict::Allow,
                reason: Reason::AllowedBy(stmt),
            });
        }
    }
    if resource.is_none() && (set.resource_required || cross_account) {
        return Ok(deny(Reason::NoResourceAllow));
    }
    let Some((allowed_by, _)) = identity else {
        return Ok(deny(Reason::NoIdentityAllow));
    };
    if matches!(boundary, Some(None)) {
        return Ok(deny(Reason::NoBoundaryAllow));
    }
    if matches!(session, Some(None)) {
        return Ok(deny(Reason::NoSessionAllow));
    }
    Ok(Decision {
        verdict: Verdict::Allow,
        reason: Reason::AllowedBy(allowed_by),
    })
}

/// Scans policies of one type: `Err` on the first applicable `Deny`, else the
/// first applicable `Allow` (preferring one that names the principal itself).
fn scan<'a>(
    req: &Request<'_>,
    policies: &[NamedPolicy<'a>],
    policy_type: PolicyType,
) -> Result<Option<(StatementRef<'a>, PrincipalMatch)>, Decision<'a>> {
    let mut allow: Option<(StatementRef<'a>, PrincipalMatch)> = None;
    for policy in policies {
        for (index, stmt) in policy.document.statements.iter().enumerate() {
            let settled = matches!(allow, Some((_, m)) if m != PrincipalMatch::Account);
            if stmt.effect == Effect::Allow && settled {
                // Once an allow is found only denies can change the outcome.
                continue;
            }
            let Some(how) = applies(stmt, req) else {
                continue;
            };
            let at = StatementRef {
                policy: policy.name,
                policy_type,
                index,
                sid: stmt.sid.as_deref(),
            };
            match stmt.effect {
                Effect::Deny => {
                    return Err(Decision {
                        verdict: Verdict::ExplicitDeny,
                        reason: Reason::DeniedBy(at),
                    })
                }
                Effect::Allow => {
                    if allow.is_none_or(|(_, m)| how > m) {
                        allow = Some((at, how));
                    }
                }
            }
        }
    }
    Ok(allow)
}

/// Whether the statement applies to the request, and how it named the principal.
fn applies(stmt: &Statement, req: &Request<'_>) -> Option<PrincipalMatch> {
    // Cheapest and most selective first: action, resource, principal, conditions.
    let action_hit = stmt.action.items.iter().any(|a| {
        a.pattern
            .matches(req.action, req.context, Case::InsensitiveAscii)
            .unwrap_or(false)
    });
    if action_hit == stmt.action.negated {
        return None;
    }
    if let Some(resource) = &stmt.resource {
        let mut hit = false;
        for item in &resource.items {
            match item.pattern.matches(req.resource, req.context) {
                Ok(true) => {
                    hit = true;
                    break;
                }
                Ok(false) => {}
                // A variable with no value makes the whole statement invalid.
                Err(Unresolved) => return None,
            }
        }
        if hit == resource.negated {
            return None;
        }
    }
    let how = match &stmt.principal {
        None => PrincipalMatch::Implicit,
        Some(block) => principal_match(block, &req.principal)?,
    };
    for condition in &stmt.conditions {
        if condition.evaluate(req.context) != Ok(true) {
            return None;
        }
    }
    Some(how)
}

fn principal_match(block: &PrincipalBlock, principal: &Principal<'_>) -> Option<PrincipalMatch> {
    let best = block
        .entries
        .iter()
        .filter_map(|(ty, value)| entry_match(*ty, value, principal))
        .max();
    if block.negated {
        // NotPrincipal: applies to everyone not listed.
        return match best {
            Some(_) => None,
            None => Some(PrincipalMatch::Specific),
        };
    }
    best
}

fn entry_match(
    ty: PrincipalType,
    value: &str,
    principal: &Principal<'_>,
) -> Option<PrincipalMatch> {
    match (ty, principal) {
        (PrincipalType::Everyone, _) => Some(PrincipalMatch::Specific),
        (PrincipalType::Aws, _) if value == "*" => Some(PrincipalMatch::Specific),
        (PrincipalType::Aws, Principal::Aws(arn)) => aws_entry_match(value, arn),
        (PrincipalType::Service, Principal::Service(s)) if value == *s => {
            Some(PrincipalMatch::Specific)
        }
        (PrincipalType::Federated, Principal::Federated(p)) if value == *p => {
            Some(PrincipalMatch::Specific)
        }
        _ => None,
    }
}

fn aws_entry_match(value: &str, arn: &str) -> Option<PrincipalMatch> {
    if value == arn {
        return Some(PrincipalMatch::Specific);
    }
    let actual = split_arn(arn)?;
    let account = actual[4];
    // An account: "123456789012" or "arn:aws:iam::123456789012:root".
    if value == account {
        return Some(PrincipalMatch::Account);
    }
    let named = split_arn(value)?;
    if named[5] == "root" && named[4] == account && named[1] == actual[1] {
        return Some(PrincipalMatch::Account);
    }
    // A role names every session of that role.
    if named[2] == "iam" && actual[2] == "sts" && named[4] == account && named[1] == actual[1] {
        let role_name = named[5].strip_prefix("role/")?.rsplit('/').next()?;
        let session_role = actual[5].strip_prefix("assumed-role/")?.split('/').next()?;
        if role_name == session_role {
            return Some(PrincipalMatch::Specific);
        }
    }
    None
}

/// Whether the resource lives in another account than the principal (only
/// decidable for resources whose ARN carries an account ID).
fn is_cross_account(req: &Request<'_>) -> bool {
    let Some(principal_account) = req.principal.account() else {
        return false;
    };
    let Some(parts) = split_arn(req.resource) else {
        return false;
    };
    let account = parts[4];
    account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && account != principal_account
}

/// A full explanation of a request, for policy simulation: the decision, every
/// statement that applies, and the context keys the policies read that the
/// request did not supply.
#[derive(Debug, Clone)]
pub struct Explanation<'a> {
    /// The decision, as [`evaluate`] gives it.
    pub decision: Decision<'a>,
    /// Every statement that applies to the request, allow or deny.
    pub matched: Vec<StatementRef<'a>>,
    /// Context keys (lower-cased) read by the policies but absent from the request.
    pub missing_context_keys: Vec<String>,
}

/// Evaluates and explains a request (slower than [`evaluate`]; for
/// simulation and error reports, not the hot path).
pub fn explain<'a>(request: &Request<'_>, policies: &PolicySet<'a>) -> Explanation<'a> {
    let decision = evaluate(request, policies);
    let mut matched = Vec::new();
    let mut missing_context_keys: Vec<String> = Vec::new();
    for (policy_type, policy) in policies.all() {
        for (index, stmt) in policy.document.statements.iter().enumerate() {
            if applies(stmt, request).is_some() {
                matched.push(StatementRef {
                    policy: policy.name,
                    policy_type,
                    index,
                    sid: stmt.sid.as_deref(),
                });
            }
        }
        for key in policy.document.context_keys() {
            if !request.context.contains(&key) && !missing_context_keys.contains(&key) {
                missing_context_keys.push(key);
            }
        }
    }
    Explanation {
        decision,
        matched,
        missing_context_keys,
    }
}

#[cfg(test)]
mod tests;
