//! Access keys. The secret is returned once, by `CreateAccessKey`, and never
//! reaches the audit record.

use serde_json::json;

use super::params::{self, page};
use super::shapes::{timestamp, truncation};
use super::{internal, no_such_user, Ctx, Reply};
use crate::error::ApiError;

fn status(active: bool) -> &'static str {
    if active {
        "Active"
    } else {
        "Inactive"
    }
}

/// Checks an access key ID parameter (`[\w]+`, 16 to 128 characters).
fn key_id<'a>(ctx: &'a Ctx<'_>) -> Result<&'a str, ApiError> {
    let id = params::required(ctx.req, "AccessKeyId", "accessKeyId")?;
    let ok = (16..=128).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !ok {
        return Err(ApiError::validation(
            "1 validation error detected: Value at 'accessKeyId' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w]+",
        ));
    }
    Ok(id)
}

/// `CreateAccessKey`: for the named user, or the caller.
pub async fn create(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let (arn, user) = ctx.user_or_caller().await?;
    ctx.authorize(&arn).await?;
    let user = user.ok_or_else(|| no_such_user(ctx.req.param("UserName").unwrap_or_default()))?;
    let (id, secret, created) = ctx.store().create_access_key_checked(&user.user_id).await?;
    let mut reply = ctx.reply(|w| {
        w.open("AccessKey", None)
            .element("UserName", &user.name)
            .element("AccessKeyId", &id)
            .element("Status", "Active")
            .element("SecretAccessKey", &secret)
            .element("CreateDate", &timestamp(created))
            .close("AccessKey");
    });
    // As CloudTrail records it: the key's ID, never its secret.
    reply.response = Some(json!({ "accessKey": {
        "userName": user.name, "accessKeyId": id, "status": "Active",
        "createDate": timestamp(created),
    }}));
    Ok(reply)
}

/// `ListAccessKeys`.
pub async fn list(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let (arn, user) = ctx.user_or_caller().await?;
    let page = page(ctx.req)?;
    ctx.authorize(&arn).await?;
    let user = user.ok_or_else(|| no_such_user(ctx.req.param("UserName").unwrap_or_default()))?;
    let keys = ctx
        .store()
        .list_access_keys(&user.user_id)
        .await
        .map_err(internal)?;
    let paged = page.apply(keys, |k| format!("{:020}{}", k.created_at, k.access_key_id));
    Ok(ctx.reply(|w| {
        w.open("AccessKeyMetadata", None);
        for k in &paged.items {
            w.open("member", None)
                .element("UserName", &user.name)
                .element("AccessKeyId", &k.access_key_id)
                .element("Status", status(k.active))
                .element("CreateDate", &timestamp(k.created_at))
                .close("member");
        }
        w.close("AccessKeyMetadata");
        truncation(w, paged.marker.as_deref());
    }))
}

/// `UpdateAccessKey`: activates or deactivates a key.
pub async fn update(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let (arn, user) = ctx.user_or_caller().await?;
    let id = key_id(ctx)?;
    let active = match params::one_of(ctx.req, "Status", "status", &["Active", "Inactive"])? {
        Some(s) => s == "Active",
        None => {
            params::required(ctx.req, "Status", "status")?;
            false
        }
    };
    ctx.authorize(&arn).await?;
    let user = user.ok_or_else(|| no_such_user(ctx.req.param("UserName").unwrap_or_default()))?;
    ctx.store()
        .set_access_key_active(&user.user_id, id, active)
        .await?;
    Ok(ctx.empty())
}

/// `DeleteAccessKey`.
pub async fn delete(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let (arn, user) = ctx.user_or_caller().await?;
    let id = key_id(ctx)?;
    ctx.authorize(&arn).await?;
    let user = user.ok_or_else(|| no_such_user(ctx.req.param("UserName").unwrap_or_default()))?;
    ctx.store().delete_access_key(&user.user_id, id).await?;
    Ok(ctx.empty())
}
