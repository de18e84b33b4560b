//! Users and their login profiles (console passwords).

use http::StatusCode;
use serde_json::json;

use super::params::{self, page};
use super::shapes::{self, timestamp, truncation};
use super::{internal, invalid_input, no_such_user, Ctx, Reply};
use crate::error::ApiError;
use crate::password;
use crate::store::User;

/// `CreateUser`.
pub async fn create(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let name = params::name(ctx.req, "UserName", "userName", 64)?;
    let path = params::path(ctx.req, "Path", "path")?;
    ctx.authorize(&ctx.arn("user", path, name)).await?;
    if ctx.req.param("PermissionsBoundary").is_some() {
        return Err(invalid_input("Permissions boundaries are not supported."));
    }
    let user = ctx
        .store()
        .create_user(ctx.account(), name, path)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::AlreadyExists(_) => ApiError::new(
                StatusCode::CONFLICT,
                "EntityAlreadyExists",
                format!("User with name {name} already exists."),
            ),
            other => internal(other),
        })?;
    let mut reply = ctx.reply(|w| {
        w.open("User", None);
        shapes::user(w, &user);
        w.close("User");
    });
    reply.response = Some(json!({ "user": shapes::user_json(&user) }));
    Ok(reply)
}

/// `GetUser`: the named user, or the caller.
pub async fn get(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let (arn, user) = ctx.user_or_caller().await?;
    ctx.authorize(&arn).await?;
    let user = user.ok_or_else(|| no_such_user(ctx.req.param("UserName").unwrap_or_default()))?;
    Ok(ctx.reply(|w| {
        w.open("User", None);
        shapes::user(w, &user);
        w.close("User");
    }))
}

/// `ListUsers`.
pub async fn list(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let prefix = params::path_prefix(ctx.req)?;
    let page = page(ctx.req)?;
    ctx.authorize(&ctx.arn("user", prefix, "")).await?;
    let users: Vec<User> = ctx
        .store()
        .list_users(ctx.account())
        .await
        .map_err(internal)?
        .into_iter()
        .filter(|u| u.path.starts_with(prefix))
        .collect();
    let paged = page.apply(users, |u| u.name.to_lowercase());
    Ok(ctx.reply(|w| {
        w.open("Users", None);
        for u in &paged.items {
            w.open("member", None);
            shapes::user(w, u);
            w.close("member");
        }
        w.close("Users");
        truncation(w, paged.marker.as_deref());
    }))
}

/// `UpdateUser`: a new name and/or path.
pub async fn update(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let (arn, user) = ctx.named_user().await?;
    let new_name = match ctx.req.param("NewUserName") {
        Some(n) => {
            params::check_name(n, "newUserName", 64)?;
            Some(n)
        }
        None => None,
    };
    let new_path = match ctx.req.param("NewPath") {
        Some(_) => Some(params::path(ctx.req, "NewPath", "newPath")?),
        None => None,
    };
    ctx.authorize(&arn).await?;
    let user = user.ok_or_else(|| no_such_user(ctx.req.param("UserName").unwrap_or_default()))?;
    ctx.store().update_user(&user, new_name, new_path).await?;
    Ok(ctx.empty())
}

/// `DeleteUser`: refused while the user has keys, a password, policies or groups.
pub async fn delete(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let (arn, user) = ctx.named_user().await?;
    ctx.authorize(&arn).await?;
    let user = user.ok_or_else(|| no_such_user(ctx.req.param("UserName").unwrap_or_default()))?;
    ctx.store().delete_user(&user.user_id).await?;
    // The user's environments and homes go with the user. Nobody else could
    // reach them anyway (they belong to this user ID, and a user created
    // again under this name gets a new one), so a failure here only leaves
    // them to the retention janitor.
    ctx.state
        .envs
        .delete_all_of(&user.account_id, &user.user_id)
        .await;
    Ok(ctx.empty())
}

/// The shortest password accepted (IAM's default password policy).
const MIN_PASSWORD_CHARS: usize = 8;

/// Checks and hashes a password, off the async threads (Argon2id is slow on purpose).
async fn hash_password(password: &str) -> Result<String, ApiError> {
    let len = password.chars().count();
    if len > 128 {
        return Err(ApiError::validation(
            "1 validation error detected: Value at 'password' failed to satisfy constraint: Member must have length less than or equal to 128",
        ));
    }
    if len < MIN_PASSWORD_CHARS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "PasswordPolicyViolation",
            format!("Password should have a minimum length of {MIN_PASSWORD_CHARS}"),
        ));
    }
    let password = password.to_string();
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))
}

fn login_profile_reply(ctx: &Ctx<'_>, user: &User, created_at: i64, reset: bool) -> Reply {
    ctx.reply(|w| {
        w.open("LoginProfile", None)
            .element("UserName", &user.name)
            .element("CreateDate", &timestamp(created_at))
            .element(
                "PasswordResetRequired",
                if reset { "true" } else { "false" },
            )
            .close("LoginProfile");
    })
}

/// `CreateLoginProfile`: gives a user a console password.
pub async fn create_login_profile(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let (arn, user) = ctx.user_or_caller().await?;
    let password = params::required(ctx.req, "Password", "password")?;
    let reset = params::boolean(ctx.req, "PasswordResetRequired", "passwordResetRequired")?
        .unwrap_or(false);
    ctx.authorize(&arn).await?;
    let user = user.ok_or_else(|| no_such_user(ctx.req.param("UserName").unwrap_or_default()))?;
    let hash = hash_password(password).await?;
    let profile = ctx
        .store()
        .create_login_profile(&user, &hash, reset)
        .await?;
    let mut reply = login_profile_reply(ctx, &user, profile.created_at, reset);
    reply.response = Some(json!({ "loginProfile": {
        "userName": user.name,
        "createDate": timestamp(profile.created_at),
        "passwordResetRequired": reset,
    }}));
    Ok(reply)
}

/// `GetLoginProfile`.
pub async fn get_login_profile(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let (arn, user) = ctx.user_or_caller().await?;
    ctx.authorize(&arn).await?;
    let user = user.ok_or_else(|| no_such_user(ctx.req.param("UserName").unwrap_or_default()))?;
    let profile = ctx
        .store()
        .login_profile(&user.user_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            super::no_such_entity(format!(
                "Login Profile for User {} cannot be found.",
                user.name
            ))
        })?;
    Ok(login_profile_reply(
        ctx,
        &user,
        profile.created_at,
        profile.password_reset_required,
    ))
}

/// `UpdateLoginProfile`: a new password and/or whether it must be reset.
pub async fn update_login_profile(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let (arn, user) = ctx.named_user().await?;
    let reset = params::boolean(ctx.req, "PasswordResetRequired", "passwordResetRequired")?;
    ctx.authorize(&arn).await?;
    let user = user.ok_or_else(|| no_such_user(ctx.req.param("UserName").unwrap_or_default()))?;
    let hash = match ctx.req.param("Password") {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    ctx.store()
        .update_login_profile(&user, hash.as_deref(), reset)
        .await?;
    Ok(ctx.empty())
}

/// `DeleteLoginProfile`.
pub async fn delete_login_profile(ctx: &Ctx<'_>) -> Result<Reply, ApiError> {
    let (arn, user) = ctx.user_or_caller().await?;
    ctx.authorize(&arn).await?;
    let user = user.ok_or_else(|| no_such_user(ctx.req.param("UserName").unwrap_or_default()))?;
    ctx.store().delete_login_profile(&user).await?;
    Ok(ctx.empty())
}
