//! Account aliases (an account has at most one).

use super::params::{self, page};
use super::shapes::truncation;
use super::{internal, Ctx, Reply};
use crate::error::ApiError;

/// Checks an alias: 3 to 63 lower-case letters, digits and single hyphens,
/// not starting or ending with a hyphen.
fn alias(ctx: &Ctx<'_>) -> Result<String, ApiError> {
    let a = params::required(ctx.req, "AccountAlias", "accountAlias")?;
    let ok = (3..=63).contains(&a.len())
        && a.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !a.starts_with('-')
        && !a.ends_with('-')
        && !a.contains("--");
    if !ok {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value '{}' at 'accountAlias' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-z0-9]([a-z0-9]|-(?!-)){{1,61}}[a-z0-9]$",
            a.chars().take(64).collect::<String>()
        )));
    }
    Ok(a.to_string())
}

/// `CreateAccountAlias`: replaces any alias the account had.
pub async fn create_alias(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let a = alias(ctx)?;
    ctx.authorize("*").await?;
    ctx.store().set_account_alias(ctx.account(), &a).await?;
    Ok(ctx.empty())
}

/// `DeleteAccountAlias`.
pub async fn delete_alias(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let a = alias(ctx)?;
    ctx.authorize("*").await?;
    ctx.store().delete_account_alias(ctx.account(), &a).await?;
    Ok(ctx.empty())
}

/// `ListAccountAliases`.
pub async fn list_aliases(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let page = page(ctx.req)?;
    ctx.authorize("*").await?;
    let aliases: Vec<String> = ctx
        .store()
        .account_alias(ctx.account())
        .await
        .map_err(internal)?
        .into_iter()
        .collect();
    let paged = page.apply(aliases, Clone::clone);
    Ok(ctx.reply(|w| {
        w.open("AccountAliases", None);
        for a in &paged.items {
            w.element("member", a);
        }
        w.close("AccountAliases");
        truncation(w, paged.marker.as_deref());
    }))
}
