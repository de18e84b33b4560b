//! Policy simulation: `SimulateCustomPolicy` (given documents) and
//! `SimulatePrincipalPolicy` (a user's, group's or role's own policies, plus
//! any given), explained by the policy engine.

use std::sync::Arc;

use seashell_policy::{
    explain, parse, Context, Effect, PolicyDocument, PolicyKind, PolicySet, Request, StatementRef,
    Verdict,
};

use super::params::{self, page};
use super::shapes::truncation;
use super::{internal, invalid_input, no_such_entity, Ctx, Reply};
use crate::authz::{self, LoadedPolicy};
use crate::error::ApiError;
use crate::store::iam::Owner;

/// Most (action, resource) pairs one simulation evaluates, so that one
/// request cannot keep the server busy for long.
const MAX_EVALUATIONS: usize = 1000;

/// The role a simulated policy plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Identity,
    Boundary,
    Resource,
}

/// A policy taking part in a simulation.
struct Input {
    /// `SourcePolicyId` in the result.
    id: String,
    /// `SourcePolicyType` in the result.
    source_type: &'static str,
    role: Role,
    document: Arc<PolicyDocument>,
}

/// Reads and parses the documents of a `…InputList` parameter.
fn inputs(ctx: &Ctx<'_>, list: &str, role: Role) -> Result<Vec<Input>, ApiError> {
    params::list(ctx.req, list)
        .into_iter()
        .enumerate()
        .map(|(i, text)| {
            if text.chars().count() > params::MAX_DOCUMENT_CHARS {
                return Err(invalid_input(format!("{list}.{} is too long.", i + 1)));
            }
            // Not cached: these documents are the caller's, used once.
            let document = parse(&text, PolicyKind::Unchecked)
                .map(Arc::new)
                .map_err(|e| invalid_input(format!("{list}.{}: {e}", i + 1)))?;
            Ok(Input {
                id: format!("{list}.{}", i + 1),
                source_type: "IAM Policy",
                role,
                document,
            })
        })
        .collect()
}

/// The context of a simulated request, from `ContextEntries`.
fn context(ctx: &Ctx<'_>) -> Result<Context, ApiError> {
    const TYPES: [&str; 12] = [
        "string",
        "stringList",
        "numeric",
        "numericList",
        "boolean",
        "booleanList",
        "ip",
        "ipList",
        "binary",
        "binaryList",
        "date",
        "dateList",
    ];
    let mut context = Context::new();
    for i in 1.. {
        let prefix = format!("ContextEntries.member.{i}");
        let name = ctx.req.param(&format!("{prefix}.ContextKeyName"));
        let kind = ctx.req.param(&format!("{prefix}.ContextKeyType"));
        let values = params::list(ctx.req, &format!("{prefix}.ContextKeyValues"));
        let Some(name) = name else {
            if kind.is_some() || !values.is_empty() {
                return Err(invalid_input(format!("{prefix} has no ContextKeyName.")));
            }
            break;
        };
        if !(5..=256).contains(&name.chars().count()) {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{name}' at 'contextEntries.{i}.member.contextKeyName' failed to satisfy constraint: Member must have length between 5 and 256"
            )));
        }
        if let Some(k) = kind {
            if !TYPES.contains(&k) {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{k}' at 'contextEntries.{i}.member.contextKeyType' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                    TYPES.join(", ")
                )));
            }
        }
        let multi = kind.is_some_and(|k| k.ends_with("List"));
        match values.as_slice() {
            [one] if !multi => {
                context.insert(name, one.as_str());
            }
            _ => {
                context.insert_multi(name, values);
            }
        }
    }
    Ok(context)
}

/// Runs the simulation of every action on every resource.
fn run(ctx: &Ctx<'_>, inputs: &[Input], caller_arn: &str) -> Result<Reply, ApiError> {
    let actions = params::list(ctx.req, "ActionNames");
    if actions.is_empty() {
        params::required(ctx.req, "ActionNames.member.1", "actionNames")?;
    }
    if let Some(a) = actions.iter().find(|a| !(3..=128).contains(&a.len())) {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{a}' at 'actionNames' failed to satisfy constraint: Member must have length between 3 and 128"
        )));
    }
    let mut resources = params::list(ctx.req, "ResourceArns");
    if resources.is_empty() {
        resources.push("*".to_string());
    }
    if actions.len().saturating_mul(resources.len()) > MAX_EVALUATIONS {
        return Err(invalid_input(format!(
            "A simulation may evaluate at most {MAX_EVALUATIONS} action and resource pairs."
        )));
    }
    let page = page(ctx.req)?;
    let context = context(ctx)?;
    let set = inputs.iter().fold(PolicySet::new(), |set, p| match p.role {
        Role::Identity => set.identity(&p.id, &p.document),
        Role::Boundary => set.boundary(&p.id, &p.document),
        Role::Resource => set.resource(&p.id, &p.document),
    });
    let mut results = Vec::new();
    for action in &actions {
        for resource in &resources {
            let request = Request::new(caller_arn, action, resource, &context);
            let explanation = explain(&request, &set);
            let verdict = explanation.decision.verdict;
            // Only the statements that decided are shown: the denies of an
            // explicit deny, the allows of an allow.
            let wanted = match verdict {
                Verdict::ExplicitDeny => Some(Effect::Deny),
                Verdict::Allow => Some(Effect::Allow),
                Verdict::ImplicitDeny => None,
            };
            let matched: Vec<(String, &'static str)> = explanation
                .matched
                .iter()
                .filter(|s| wanted.is_some() && effect_of(inputs, s) == wanted)
                .map(|s| (s.policy.to_string(), source_type_of(inputs, s)))
                .collect();
            let decision = match verdict {
                Verdict::Allow => "allowed",
                Verdict::ImplicitDeny => "implicitDeny",
                Verdict::ExplicitDeny => "explicitDeny",
            };
            results.push(SimResult {
                key: format!("{:08}", results.len()),
                action: action.clone(),
                resource: resource.clone(),
                decision,
                matched,
                missing: explanation.missing_context_keys,
            });
        }
    }
    let paged = page.apply(results, |r| r.key.clone());
    Ok(ctx.reply(|w| {
        w.open("EvaluationResults", None);
        for r in &paged.items {
            w.open("member", None)
                .element("EvalActionName", &r.action)
                .element("EvalResourceName", &r.resource)
                .element("EvalDecision", r.decision)
                .open("MatchedStatements", None);
            for (id, source_type) in &r.matched {
                w.open("member", None)
                    .element("SourcePolicyId", id)
                    .element("SourcePolicyType", source_type)
                    .close("member");
            }
            w.close("MatchedStatements")
                .open("MissingContextValues", None);
            for key in &r.missing {
                w.element("member", key);
            }
            w.close("MissingContextValues").close("member");
        }
        w.close("EvaluationResults");
        truncation(w, paged.marker.as_deref());
    }))
}

struct SimResult {
    key: String,
    action: String,
    resource: String,
    decision: &'static str,
    matched: Vec<(String, &'static str)>,
    missing: Vec<String>,
}

fn input_of<'a>(inputs: &'a [Input], s: &StatementRef<'_>) -> Option<&'a Input> {
    inputs.iter().find(|p| p.id == s.policy)
}

fn effect_of(inputs: &[Input], s: &StatementRef<'_>) -> Option<Effect> {
    input_of(inputs, s)
        .and_then(|p| p.document.statements().get(s.index))
        .map(|st| st.effect())
}

fn source_type_of(inputs: &[Input], s: &StatementRef<'_>) -> &'static str {
    input_of(inputs, s).map_or("none", |p| p.source_type)
}

/// The resource-based policy given in `ResourcePolicy`, if any.
fn resource_policy(ctx: &Ctx<'_>) -> Result<Vec<Input>, ApiError> {
    let Some(text) = ctx.req.param("ResourcePolicy") else {
        return Ok(Vec::new());
    };
    let document = parse(text, PolicyKind::Resource)
        .map(Arc::new)
        .map_err(|e| invalid_input(format!("ResourcePolicy: {e}")))?;
    Ok(vec![Input {
        id: "ResourcePolicy".to_string(),
        source_type: "resource",
        role: Role::Resource,
        document,
    }])
}

/// `SimulateCustomPolicy`.
pub async fn custom(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    ctx.authorize("*").await?;
    let mut all = inputs(ctx, "PolicyInputList", Role::Identity)?;
    if all.is_empty() {
        params::required(ctx.req, "PolicyInputList.member.1", "policyInputList")?;
    }
    all.extend(inputs(
        ctx,
        "PermissionsBoundaryPolicyInputList",
        Role::Boundary,
    )?);
    all.extend(resource_policy(ctx)?);
    let caller_arn = ctx.req.param("CallerArn").unwrap_or(&ctx.caller.arn);
    run(ctx, &all, caller_arn)
}

fn loaded(policies: Vec<LoadedPolicy>) -> Vec<Input> {
    policies
        .into_iter()
        .map(|p| Input {
            id: p.name,
            source_type: p.source.as_str(),
            role: Role::Identity,
            document: p.document,
        })
        .collect()
}

/// The policies of a group or role: attached managed ones and inline ones.
async fn owned_policies(
    ctx: &Ctx<'_>,
    owner: Owner,
    id: &str,
    name: &str,
) -> Result<Vec<LoadedPolicy>, ApiError> {
    let store = ctx.store();
    let mut out = Vec::new();
    for arn in store.attached_policies(owner, id).await.map_err(internal)? {
        if let Some(p) = authz::managed_policy(store, &arn).await? {
            out.push(p);
        }
    }
    let (kind, source) = match owner {
        Owner::Role => (PolicyKind::InlineRole, authz::PolicySource::RoleInline),
        _ => (PolicyKind::InlineGroup, authz::PolicySource::GroupInline),
    };
    for (policy_name, text) in store.inline_policies(owner, id).await.map_err(internal)? {
        let document = authz::cache()
            .parsed(&text, kind)
            .map_err(|e| ApiError::internal(&e))?;
        out.push(LoadedPolicy {
            name: format!("{name}/{policy_name}"),
            source,
            document,
        });
    }
    Ok(out)
}

/// `SimulatePrincipalPolicy`: the policies of the user, group or role named
/// by `PolicySourceArn`, plus any in `PolicyInputList`.
pub async fn principal(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let source = params::required(ctx.req, "PolicySourceArn", "policySourceArn")?;
    ctx.authorize(source).await?;
    let not_found = || no_such_entity(format!("The entity {source} cannot be found."));
    let prefix = format!("arn:aws:iam::{}:", ctx.account());
    let resource = source.strip_prefix(&prefix).ok_or_else(not_found)?;
    let name = resource.rsplit('/').next().unwrap_or_default();
    let store = ctx.store();
    let policies = if resource.starts_with("user/") {
        let user = store
            .user_by_name(ctx.account(), name)
            .await
            .map_err(internal)?
            .filter(|u| u.arn() == source)
            .ok_or_else(not_found)?;
        authz::user_policies(store, &user.user_id).await?
    } else if resource.starts_with("group/") {
        let group = store
            .group_by_name(ctx.account(), name)
            .await
            .map_err(internal)?
            .filter(|g| g.arn() == source)
            .ok_or_else(not_found)?;
        owned_policies(ctx, Owner::Group, &group.group_id, &group.name).await?
    } else if resource.starts_with("role/") {
        let role = store
            .role_by_name(ctx.account(), name)
            .await
            .map_err(internal)?
            .filter(|r| r.arn() == source)
            .ok_or_else(not_found)?;
        owned_policies(ctx, Owner::Role, &role.role_id, &role.name).await?
    } else {
        return Err(not_found());
    };
    let mut all = loaded(policies);
    all.extend(inputs(ctx, "PolicyInputList", Role::Identity)?);
    all.extend(inputs(
        ctx,
        "PermissionsBoundaryPolicyInputList",
        Role::Boundary,
    )?);
    all.extend(resource_policy(ctx)?);
    let caller_arn = ctx.req.param("CallerArn").unwrap_or(source);
    run(ctx, &all, caller_arn)
}
