//! Roles and their trust policies.

use seashell_policy::PolicyKind;
use serde_json::json;

use super::params::{self, page};
use super::shapes::{self, truncation};
use super::{internal, invalid_input, malformed, no_such_entity, Ctx, Reply};
use crate::authz;
use crate::error::ApiError;
use crate::store::iam::Role;

/// The role named by `RoleName`: its ARN and the role if it exists.
pub(super) async fn named(ctx: &Ctx<'_>) -> Result<(String, Option<Role>), ApiError> {
    let name = params::name(ctx.req, "RoleName", "roleName", 64)?;
    let role = ctx
        .store()
        .role_by_name(ctx.account(), name)
        .await
        .map_err(internal)?;
    let arn = role
        .as_ref()
        .map(Role::arn)
        .unwrap_or_else(|| ctx.arn("role", "/", name));
    Ok((arn, role))
}

async fn authorized(ctx: &Ctx<'_>) -> Result<Role, ApiError> {
    let (arn, role) = named(ctx).await?;
    ctx.authorize(&arn).await?;
    role.ok_or_else(|| {
        no_such_entity(format!(
            "The role with name {} cannot be found.",
            ctx.req.param("RoleName").unwrap_or_default()
        ))
    })
}

/// `CreateRole`: the trust policy is validated as one.
pub async fn create(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let name = params::name(ctx.req, "RoleName", "roleName", 64)?;
    let path = params::path(ctx.req, "Path", "path")?;
    let trust = params::document(
        ctx.req,
        "AssumeRolePolicyDocument",
        "assumeRolePolicyDocument",
    )?;
    let description = ctx.req.param("Description");
    if description.is_some_and(|d| d.chars().count() > 1000) {
        return Err(ApiError::validation(
            "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000",
        ));
    }
    let max_session = params::integer(
        ctx.req,
        "MaxSessionDuration",
        "maxSessionDuration",
        3600,
        43200,
    )?
    .unwrap_or(3600);
    ctx.authorize(&ctx.arn("role", path, name)).await?;
    if ctx.req.param("PermissionsBoundary").is_some() {
        return Err(invalid_input("Permissions boundaries are not supported."));
    }
    authz::cache()
        .parsed(trust, PolicyKind::Trust)
        .map_err(|e| malformed(&e))?;
    let role = ctx
        .store()
        .create_role(ctx.account(), name, path, trust, description, max_session)
        .await?;
    let mut reply = ctx.reply(|w| {
        w.open("Role", None);
        shapes::role(w, &role, true);
        w.close("Role");
    });
    reply.response = Some(json!({ "role": shapes::role_json(&role) }));
    Ok(reply)
}

/// `GetRole`.
pub async fn get(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let role = authorized(ctx).await?;
    Ok(ctx.reply(|w| {
        w.open("Role", None);
        shapes::role(w, &role, true);
        w.close("Role");
    }))
}

/// `ListRoles`.
pub async fn list(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let prefix = params::path_prefix(ctx.req)?;
    let page = page(ctx.req)?;
    ctx.authorize(&ctx.arn("role", prefix, "")).await?;
    let roles: Vec<Role> = ctx
        .store()
        .list_roles(ctx.account())
        .await
        .map_err(internal)?
        .into_iter()
        .filter(|r| r.path.starts_with(prefix))
        .collect();
    let paged = page.apply(roles, |r| r.name.to_lowercase());
    Ok(ctx.reply(|w| {
        w.open("Roles", None);
        for r in &paged.items {
            w.open("member", None);
            // ListRoles shows the trust policy too, as IAM does.
            shapes::role(w, r, true);
            w.close("member");
        }
        w.close("Roles");
        truncation(w, paged.marker.as_deref());
    }))
}

/// `DeleteRole`: refused while it has policies.
pub async fn delete(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let role = authorized(ctx).await?;
    ctx.store().delete_role(&role.role_id).await?;
    authz::cache().forget(&role.trust_policy);
    Ok(ctx.empty())
}

/// `UpdateAssumeRolePolicy`: replaces the trust policy.
pub async fn update_trust(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let document = params::document(ctx.req, "PolicyDocument", "policyDocument")?;
    let role = authorized(ctx).await?;
    authz::cache()
        .parsed(document, PolicyKind::Trust)
        .map_err(|e| malformed(&e))?;
    ctx.store()
        .set_trust_policy(&role.role_id, document)
        .await
        .map_err(internal)?;
    if role.trust_policy != document {
        authz::cache().forget(&role.trust_policy);
    }
    Ok(ctx.empty())
}
