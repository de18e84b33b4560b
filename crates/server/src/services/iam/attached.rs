//! Managed policies attached to users, groups and roles.

use super::params::{self, page};
use super::policies::{find, Found};
use super::shapes::truncation;
use super::{groups, internal, no_such_entity, no_such_user, roles, Ctx, Reply};
use crate::error::ApiError;
use crate::store::iam::Owner;

/// The user, group or role an operation is about.
pub(super) struct Target {
    /// Which kind of entity.
    pub owner: Owner,
    /// Its ARN (authorization is on it).
    pub arn: String,
    /// Its ID, if it exists.
    pub id: Option<String>,
    /// Its name, as given.
    pub name: String,
}

impl Target {
    /// The ID of an entity that must exist.
    pub fn existing_id(&self) -> Result<&str, ApiError> {
        self.id.as_deref().ok_or_else(|| match self.owner {
            Owner::User => no_such_user(&self.name),
            Owner::Group | Owner::Role => no_such_entity(format!(
                "The {} with name {} cannot be found.",
                self.owner.noun(),
                self.name
            )),
        })
    }
}

/// Which kind of entity an operation such as `AttachGroupPolicy` is about.
pub(super) fn owner_of(action: &str) -> Owner {
    if action.contains("Group") {
        Owner::Group
    } else if action.contains("Role") {
        Owner::Role
    } else {
        Owner::User
    }
}

/// Reads the target entity of the operation (`UserName`, `GroupName` or `RoleName`).
pub(super) async fn target(ctx: &Ctx<'_>) -> Result<Target, ApiError> {
    let owner = owner_of(&ctx.req.action);
    match owner {
        Owner::User => {
            let (arn, user) = ctx.named_user().await?;
            Ok(Target {
                owner,
                arn,
                id: user.map(|u| u.user_id),
                name: ctx.req.param("UserName").unwrap_or_default().to_string(),
            })
        }
        Owner::Group => {
            let (arn, group) = groups::named(ctx).await?;
            Ok(Target {
                owner,
                arn,
                id: group.map(|g| g.group_id),
                name: ctx.req.param("GroupName").unwrap_or_default().to_string(),
            })
        }
        Owner::Role => {
            let (arn, role) = roles::named(ctx).await?;
            Ok(Target {
                owner,
                arn,
                id: role.map(|r| r.role_id),
                name: ctx.req.param("RoleName").unwrap_or_default().to_string(),
            })
        }
    }
}

/// `Attach{User,Group,Role}Policy`.
pub async fn attach(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let policy_arn = params::policy_arn(ctx.req)?;
    let target = target(ctx).await?;
    ctx.authorize_with(&target.arn, &[("iam:PolicyARN", policy_arn)])
        .await?;
    let id = target.existing_id()?;
    if find(ctx, policy_arn).await?.is_none() {
        return Err(no_such_entity(format!(
            "Policy {policy_arn} does not exist or is not attachable."
        )));
    }
    ctx.store()
        .attach_policy(target.owner, id, policy_arn)
        .await?;
    Ok(ctx.empty())
}

/// `Detach{User,Group,Role}Policy`.
pub async fn detach(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let policy_arn = params::policy_arn(ctx.req)?;
    let target = target(ctx).await?;
    ctx.authorize_with(&target.arn, &[("iam:PolicyARN", policy_arn)])
        .await?;
    let id = target.existing_id()?;
    ctx.store()
        .detach_policy(target.owner, id, policy_arn)
        .await?;
    Ok(ctx.empty())
}

/// The path of a policy ARN (`arn:aws:iam::acct:policy/a/b/Name` → `/a/b/`).
fn policy_path(arn: &str) -> &str {
    let resource = arn.split(':').nth(5).unwrap_or_default();
    let rest = resource.strip_prefix("policy").unwrap_or(resource);
    match rest.rfind('/') {
        Some(i) => &rest[..=i],
        None => "/",
    }
}

/// `ListAttached{User,Group,Role}Policies`.
pub async fn list(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let prefix = match ctx.req.param("PathPrefix") {
        Some(_) => params::path_prefix(ctx.req)?,
        None => "/",
    };
    let page = page(ctx.req)?;
    let target = target(ctx).await?;
    ctx.authorize(&target.arn).await?;
    let id = target.existing_id()?;
    let mut arns = ctx
        .store()
        .attached_policies(target.owner, id)
        .await
        .map_err(internal)?;
    arns.retain(|a| policy_path(a).starts_with(prefix));
    let mut attached = Vec::with_capacity(arns.len());
    for arn in arns {
        let name = match find(ctx, &arn).await? {
            Some(Found::Builtin(b)) => b.name.to_string(),
            Some(Found::Customer(p)) => p.name,
            // Deleted since: IAM refuses to delete attached policies, so
            // this is a built-in that a newer release dropped.
            None => arn.rsplit('/').next().unwrap_or_default().to_string(),
        };
        attached.push((name, arn));
    }
    let paged = page.apply(attached, |(_, arn)| arn.clone());
    Ok(ctx.reply(|w| {
        w.open("AttachedPolicies", None);
        for (name, arn) in &paged.items {
            w.open("member", None)
                .element("PolicyName", name)
                .element("PolicyArn", arn)
                .close("member");
        }
        w.close("AttachedPolicies");
        truncation(w, paged.marker.as_deref());
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_policy_arns() {
        assert_eq!(policy_path("arn:aws:iam::aws:policy/ReadOnlyAccess"), "/");
        assert_eq!(
            policy_path("arn:aws:iam::123456789012:policy/a/b/P"),
            "/a/b/"
        );
    }

    #[test]
    fn owners() {
        assert_eq!(owner_of("AttachGroupPolicy"), Owner::Group);
        assert_eq!(owner_of("ListRolePolicies"), Owner::Role);
        assert_eq!(owner_of("PutUserPolicy"), Owner::User);
    }
}
