//! Managed policies: the built-in ones (AWS managed, read-only) and customer
//! managed policies with their versions.

use seashell_policy::PolicyKind;
use serde_json::json;

use super::params::{self, page};
use super::shapes::{self, truncation, PolicyView};
use super::{internal, invalid_input, malformed, no_such_entity, Ctx, Reply};
use crate::authz;
use crate::builtin::{self, BuiltinPolicy};
use crate::error::ApiError;
use crate::store::iam::{ManagedPolicy, PolicyVersion};

/// A managed policy found by ARN.
pub(super) enum Found {
    /// Built in.
    Builtin(&'static BuiltinPolicy),
    /// Customer managed, in the caller's account.
    Customer(ManagedPolicy),
}

pub(super) fn no_such_policy(arn: &str) -> ApiError {
    no_such_entity(format!("Policy {arn} was not found."))
}

/// The managed policy with this ARN, if it exists and the caller's account may see it.
pub(super) async fn find(ctx: &Ctx<'_>, arn: &str) -> Result<Option<Found>, ApiError> {
    if let Some(b) = builtin::by_arn(arn) {
        return Ok(Some(Found::Builtin(b)));
    }
    let policy = ctx.store().policy_by_arn(arn).await.map_err(internal)?;
    Ok(policy
        .filter(|p| p.account_id == ctx.account())
        .map(Found::Customer))
}

/// The customer managed policy named by `PolicyArn`, after authorizing on it.
async fn customer(ctx: &Ctx<'_>) -> Result<ManagedPolicy, ApiError> {
    let arn = params::policy_arn(ctx.req)?;
    ctx.authorize(arn).await?;
    match find(ctx, arn).await? {
        Some(Found::Customer(p)) => Ok(p),
        Some(Found::Builtin(_)) => Err(invalid_input(format!(
            "Policy {arn} is an AWS managed policy and cannot be changed."
        ))),
        None => Err(no_such_policy(arn)),
    }
}

fn version_id<'a>(ctx: &'a Ctx<'a>) -> Result<&'a str, ApiError> {
    let v = params::required(ctx.req, "VersionId", "versionId")?;
    let digits = v.strip_prefix('v').unwrap_or_default();
    let (number, suffix) = digits.split_once('.').unwrap_or((digits, ""));
    let ok = !number.is_empty()
        && !number.starts_with('0')
        && number.bytes().all(|b| b.is_ascii_digit())
        && suffix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !ok {
        return Err(ApiError::validation(
            "1 validation error detected: Value at 'versionId' failed to satisfy constraint: Member must satisfy regular expression pattern: v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?",
        ));
    }
    Ok(v)
}

/// `CreatePolicy`: validated by the policy engine as a managed policy.
pub async fn create(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let name = params::name(ctx.req, "PolicyName", "policyName", 128)?;
    let path = params::path(ctx.req, "Path", "path")?;
    let document = params::document(ctx.req, "PolicyDocument", "policyDocument")?;
    let description = ctx.req.param("Description");
    if description.is_some_and(|d| d.chars().count() > 1000) {
        return Err(ApiError::validation(
            "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000",
        ));
    }
    ctx.authorize(&ctx.arn("policy", path, name)).await?;
    authz::cache()
        .parsed(document, PolicyKind::Managed)
        .map_err(|e| malformed(&e))?;
    let policy = ctx
        .store()
        .create_policy(ctx.account(), name, path, description, document)
        .await?;
    let view = PolicyView::customer(&policy, 0);
    let mut reply = ctx.reply(|w| {
        w.open("Policy", None);
        view.write(w, true);
        w.close("Policy");
    });
    reply.response = Some(json!({ "policy": view.json() }));
    Ok(reply)
}

/// `GetPolicy`.
pub async fn get(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let arn = params::policy_arn(ctx.req)?;
    ctx.authorize(arn).await?;
    let found = find(ctx, arn).await?.ok_or_else(|| no_such_policy(arn))?;
    let counts = ctx
        .store()
        .attachment_counts(ctx.account())
        .await
        .map_err(internal)?;
    let count = counts.get(arn).copied().unwrap_or(0);
    let view = match &found {
        Found::Builtin(b) => PolicyView::builtin(b, count),
        Found::Customer(p) => PolicyView::customer(p, count),
    };
    Ok(ctx.reply(|w| {
        w.open("Policy", None);
        view.write(w, true);
        w.close("Policy");
    }))
}

/// `ListPolicies`: built-in (`AWS`), customer managed (`Local`) or both (`All`).
pub async fn list(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let scope =
        params::one_of(ctx.req, "Scope", "scope", &["All", "AWS", "Local"])?.unwrap_or("All");
    let only_attached = params::boolean(ctx.req, "OnlyAttached", "onlyAttached")?.unwrap_or(false);
    params::one_of(
        ctx.req,
        "PolicyUsageFilter",
        "policyUsageFilter",
        &["PermissionsPolicy", "PermissionsBoundary"],
    )?;
    let prefix = params::path_prefix(ctx.req)?;
    let page = page(ctx.req)?;
    ctx.authorize(&ctx.arn("policy", prefix, "")).await?;
    let counts = ctx
        .store()
        .attachment_counts(ctx.account())
        .await
        .map_err(internal)?;
    let count = |arn: &str| counts.get(arn).copied().unwrap_or(0);
    let customer = if scope == "AWS" {
        Vec::new()
    } else {
        ctx.store()
            .list_policies(ctx.account())
            .await
            .map_err(internal)?
    };
    let mut views: Vec<PolicyView<'_>> = Vec::new();
    if scope != "Local" {
        views.extend(
            builtin::all()
                .iter()
                .map(|b| PolicyView::builtin(b, count(b.arn))),
        );
    }
    views.extend(
        customer
            .iter()
            .map(|p| PolicyView::customer(p, count(&p.arn))),
    );
    views.retain(|v| v.path.starts_with(prefix) && (!only_attached || v.attachment_count > 0));
    views.sort_by(|a, b| a.arn.cmp(b.arn));
    let paged = page.apply(views, |v| v.arn.to_string());
    Ok(ctx.reply(|w| {
        w.open("Policies", None);
        for v in &paged.items {
            w.open("member", None);
            v.write(w, false);
            w.close("member");
        }
        w.close("Policies");
        truncation(w, paged.marker.as_deref());
    }))
}

/// `DeletePolicy`: refused while attached or with versions besides the default.
pub async fn delete(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let policy = customer(ctx).await?;
    let versions = ctx
        .store()
        .policy_versions(&policy.policy_id)
        .await
        .map_err(internal)?;
    ctx.store().delete_policy(&policy).await?;
    for v in versions {
        authz::cache().forget(&v.document);
    }
    Ok(ctx.empty())
}

/// `CreatePolicyVersion`: at most five versions; `SetAsDefault` puts it in force.
pub async fn create_version(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let document = params::document(ctx.req, "PolicyDocument", "policyDocument")?;
    let set_default = params::boolean(ctx.req, "SetAsDefault", "setAsDefault")?.unwrap_or(false);
    let policy = customer(ctx).await?;
    authz::cache()
        .parsed(document, PolicyKind::Managed)
        .map_err(|e| malformed(&e))?;
    let previous = if set_default {
        ctx.store()
            .policy_version(&policy.policy_id, &policy.default_version)
            .await
            .map_err(internal)?
    } else {
        None
    };
    let version = ctx
        .store()
        .create_policy_version(&policy.policy_id, document, set_default)
        .await?;
    if let Some(old) = previous {
        // The replaced default no longer takes part in any decision.
        if old.document != document {
            authz::cache().forget(&old.document);
        }
    }
    Ok(ctx.reply(|w| {
        w.open("PolicyVersion", None);
        shapes::policy_version(w, &version, set_default, false);
        w.close("PolicyVersion");
    }))
}

/// `GetPolicyVersion`: the document, percent-encoded as IAM returns it.
pub async fn get_version(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let arn = params::policy_arn(ctx.req)?;
    let version_id = version_id(ctx)?;
    ctx.authorize(arn).await?;
    let not_found = || no_such_entity(format!("Policy {arn} version {version_id} does not exist."));
    let (version, is_default) = match find(ctx, arn).await?.ok_or_else(|| no_such_policy(arn))? {
        Found::Builtin(b) if version_id == "v1" => (
            PolicyVersion {
                version_id: "v1".to_string(),
                document: b.text.to_string(),
                created_at: shapes::BUILTIN_CREATED_MS,
            },
            true,
        ),
        Found::Builtin(_) => return Err(not_found()),
        Found::Customer(p) => {
            let v = ctx
                .store()
                .policy_version(&p.policy_id, version_id)
                .await
                .map_err(internal)?
                .ok_or_else(not_found)?;
            let is_default = v.version_id == p.default_version;
            (v, is_default)
        }
    };
    Ok(ctx.reply(|w| {
        w.open("PolicyVersion", None);
        shapes::policy_version(w, &version, is_default, true);
        w.close("PolicyVersion");
    }))
}

/// `ListPolicyVersions`.
pub async fn list_versions(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let arn = params::policy_arn(ctx.req)?;
    let page = page(ctx.req)?;
    ctx.authorize(arn).await?;
    let (versions, default) = match find(ctx, arn).await?.ok_or_else(|| no_such_policy(arn))? {
        Found::Builtin(b) => (
            vec![PolicyVersion {
                version_id: "v1".to_string(),
                document: b.text.to_string(),
                created_at: shapes::BUILTIN_CREATED_MS,
            }],
            "v1".to_string(),
        ),
        Found::Customer(p) => (
            ctx.store()
                .policy_versions(&p.policy_id)
                .await
                .map_err(internal)?,
            p.default_version,
        ),
    };
    let paged = page.apply(versions, |v| {
        format!("{:020}", u64::MAX - version_number(&v.version_id))
    });
    Ok(ctx.reply(|w| {
        w.open("Versions", None);
        for v in &paged.items {
            w.open("member", None);
            shapes::policy_version(w, v, v.version_id == default, false);
            w.close("member");
        }
        w.close("Versions");
        truncation(w, paged.marker.as_deref());
    }))
}

/// The number of `vN`, for ordering.
fn version_number(id: &str) -> u64 {
    id.trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `DeletePolicyVersion`: any version but the default.
pub async fn delete_version(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let version_id = version_id(ctx)?;
    let policy = customer(ctx).await?;
    ctx.store()
        .delete_policy_version(&policy, version_id)
        .await?;
    Ok(ctx.empty())
}
