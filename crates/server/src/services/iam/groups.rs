//! Groups and their members.

use serde_json::json;

use super::params::{self, page};
use super::shapes::{self, truncation};
use super::{internal, no_such_entity, no_such_user, Ctx, Reply};
use crate::error::ApiError;
use crate::store::iam::Group;

fn no_such_group(name: &str) -> ApiError {
    no_such_entity(format!("The group with name {name} cannot be found."))
}

/// The group named by `GroupName`: its ARN and the group if it exists.
pub(super) async fn named(ctx: &Ctx<'_>) -> Result<(String, Option<Group>), ApiError> {
    let name = params::name(ctx.req, "GroupName", "groupName", 128)?;
    let group = ctx
        .store()
        .group_by_name(ctx.account(), name)
        .await
        .map_err(internal)?;
    let arn = group
        .as_ref()
        .map(Group::arn)
        .unwrap_or_else(|| ctx.arn("group", "/", name));
    Ok((arn, group))
}

/// The group named by `GroupName`, which must exist, after authorizing on it.
pub(super) async fn authorized(ctx: &Ctx<'_>) -> Result<Group, ApiError> {
    let (arn, group) = named(ctx).await?;
    ctx.authorize(&arn).await?;
    group.ok_or_else(|| no_such_group(ctx.req.param("GroupName").unwrap_or_default()))
}

/// `CreateGroup`.
pub async fn create(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let name = params::name(ctx.req, "GroupName", "groupName", 128)?;
    let path = params::path(ctx.req, "Path", "path")?;
    ctx.authorize(&ctx.arn("group", path, name)).await?;
    let group = ctx.store().create_group(ctx.account(), name, path).await?;
    let mut reply = ctx.reply(|w| {
        w.open("Group", None);
        shapes::group(w, &group);
        w.close("Group");
    });
    reply.response = Some(json!({ "group": shapes::group_json(&group) }));
    Ok(reply)
}

/// `GetGroup`: the group and its members.
pub async fn get(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let page = page(ctx.req)?;
    let group = authorized(ctx).await?;
    let members = ctx
        .store()
        .group_members(&group.group_id)
        .await
        .map_err(internal)?;
    let paged = page.apply(members, |u| u.name.to_lowercase());
    Ok(ctx.reply(|w| {
        w.open("Group", None);
        shapes::group(w, &group);
        w.close("Group").open("Users", None);
        for u in &paged.items {
            w.open("member", None);
            shapes::user(w, u);
            w.close("member");
        }
        w.close("Users");
        truncation(w, paged.marker.as_deref());
    }))
}

fn group_list(ctx: &Ctx<'_>, groups: Vec<Group>, page: &params::Page) -> Reply {
    let paged = page.apply(groups, |g| g.name.to_lowercase());
    ctx.reply(|w| {
        w.open("Groups", None);
        for g in &paged.items {
            w.open("member", None);
            shapes::group(w, g);
            w.close("member");
        }
        w.close("Groups");
        truncation(w, paged.marker.as_deref());
    })
}

/// `ListGroups`.
pub async fn list(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let prefix = params::path_prefix(ctx.req)?;
    let page = page(ctx.req)?;
    ctx.authorize(&ctx.arn("group", prefix, "")).await?;
    let groups: Vec<Group> = ctx
        .store()
        .list_groups(ctx.account())
        .await
        .map_err(internal)?
        .into_iter()
        .filter(|g| g.path.starts_with(prefix))
        .collect();
    Ok(group_list(ctx, groups, &page))
}

/// `ListGroupsForUser`.
pub async fn list_for_user(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let page = page(ctx.req)?;
    let (arn, user) = ctx.named_user().await?;
    ctx.authorize(&arn).await?;
    let user = user.ok_or_else(|| no_such_user(ctx.req.param("UserName").unwrap_or_default()))?;
    let groups = ctx
        .store()
        .groups_for_user(&user.user_id)
        .await
        .map_err(internal)?;
    Ok(group_list(ctx, groups, &page))
}

/// `DeleteGroup`: refused while it has members or policies.
pub async fn delete(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let group = authorized(ctx).await?;
    ctx.store().delete_group(&group.group_id).await?;
    Ok(ctx.empty())
}

/// The group (authorized on) and the member named by `UserName`.
async fn membership(ctx: &Ctx<'_>) -> Result<(Group, crate::store::User), ApiError> {
    let user_name = params::name(ctx.req, "UserName", "userName", 128)?;
    let group = authorized(ctx).await?;
    let user = ctx
        .store()
        .user_by_name(ctx.account(), user_name)
        .await
        .map_err(internal)?
        .ok_or_else(|| no_such_user(user_name))?;
    Ok((group, user))
}

/// `AddUserToGroup`.
pub async fn add_user(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let (group, user) = membership(ctx).await?;
    ctx.store()
        .add_user_to_group(&group.group_id, &user.user_id)
        .await?;
    Ok(ctx.empty())
}

/// `RemoveUserFromGroup`.
pub async fn remove_user(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let (group, user) = membership(ctx).await?;
    let removed = ctx
        .store()
        .remove_user_from_group(&group.group_id, &user.user_id)
        .await
        .map_err(internal)?;
    if !removed {
        return Err(no_such_entity(format!(
            "User {} is not in group {}.",
            user.name, group.name
        )));
    }
    Ok(ctx.empty())
}
