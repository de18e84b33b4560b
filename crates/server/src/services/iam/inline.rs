//! Inline policies embedded in users, groups and roles.

use seashell_policy::PolicyKind;

use super::attached::target;
use super::params::{self, page};
use super::shapes::{encode_document, truncation};
use super::{internal, malformed, no_such_entity, Ctx, Reply};
use crate::authz;
use crate::error::ApiError;
use crate::store::iam::Owner;

fn kind(owner: Owner) -> PolicyKind {
    match owner {
        Owner::User => PolicyKind::InlineUser,
        Owner::Group => PolicyKind::InlineGroup,
        Owner::Role => PolicyKind::InlineRole,
    }
}

/// The reply member naming the owner (`UserName`, `GroupName`, `RoleName`).
fn owner_member(owner: Owner) -> &'static str {
    match owner {
        Owner::User => "UserName",
        Owner::Group => "GroupName",
        Owner::Role => "RoleName",
    }
}

/// `Put{User,Group,Role}Policy`: adds or replaces, validated for the owner's kind.
pub async fn put(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let name = params::name(ctx.req, "PolicyName", "policyName", 128)?;
    let document = params::document(ctx.req, "PolicyDocument", "policyDocument")?;
    let target = target(ctx).await?;
    ctx.authorize(&target.arn).await?;
    let id = target.existing_id()?;
    authz::cache()
        .parsed(document, kind(target.owner))
        .map_err(|e| malformed(&e))?;
    let previous = ctx
        .store()
        .inline_policy(target.owner, id, name)
        .await
        .map_err(internal)?;
    ctx.store()
        .put_inline_policy(target.owner, id, name, document)
        .await?;
    if let Some(old) = previous.filter(|old| old != document) {
        authz::cache().forget(&old);
    }
    Ok(ctx.empty())
}

/// `Get{User,Group,Role}Policy`: the document, percent-encoded as IAM returns it.
pub async fn get(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let name = params::name(ctx.req, "PolicyName", "policyName", 128)?;
    let target = target(ctx).await?;
    ctx.authorize(&target.arn).await?;
    let id = target.existing_id()?;
    let document = ctx
        .store()
        .inline_policy(target.owner, id, name)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            no_such_entity(format!(
                "The {} policy with name {name} cannot be found.",
                target.owner.noun()
            ))
        })?;
    Ok(ctx.reply(|w| {
        w.element(owner_member(target.owner), &target.name)
            .element("PolicyName", name)
            .element("PolicyDocument", &encode_document(&document));
    }))
}

/// `Delete{User,Group,Role}Policy`.
pub async fn delete(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let name = params::name(ctx.req, "PolicyName", "policyName", 128)?;
    let target = target(ctx).await?;
    ctx.authorize(&target.arn).await?;
    let id = target.existing_id()?;
    let previous = ctx
        .store()
        .inline_policy(target.owner, id, name)
        .await
        .map_err(internal)?;
    ctx.store()
        .delete_inline_policy(target.owner, id, name)
        .await?;
    if let Some(old) = previous {
        authz::cache().forget(&old);
    }
    Ok(ctx.empty())
}

/// `List{User,Group,Role}Policies`: the names.
pub async fn list(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let page = page(ctx.req)?;
    let target = target(ctx).await?;
    ctx.authorize(&target.arn).await?;
    let id = target.existing_id()?;
    let names: Vec<String> = ctx
        .store()
        .inline_policies(target.owner, id)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let paged = page.apply(names, Clone::clone);
    Ok(ctx.reply(|w| {
        w.open("PolicyNames", None);
        for n in &paged.items {
            w.element("member", n);
        }
        w.close("PolicyNames");
        truncation(w, paged.marker.as_deref());
    }))
}
