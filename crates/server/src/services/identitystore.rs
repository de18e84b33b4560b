//! The identity store of IAM Identity Center (`/identitystore/`, JSON 1.1,
//! `AWSIdentityStore`): users, groups and group memberships.
//!
//! A store belongs to its organization's Identity Center instance; only
//! principals of the organization's management account administer it.

use serde_json::{json, Value};

use crate::authz::{self, RequestInfo};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::services::json_api::{bad, handled, read_only, timestamp, unknown_operation, Input};
use crate::services::Handled;
use crate::state::AppState;
use crate::store::identity_center::{CenterError, Instance, Membership, SsoGroup, SsoUser};

/// The `X-Amz-Target` prefix.
pub const TARGET_PREFIX: &str = "AWSIdentityStore.";
/// The CloudTrail event source.
pub const EVENT_SOURCE: &str = "identitystore.amazonaws.com";

/// Handles one identity store operation.
pub async fn handle(
    state: &AppState,
    caller: &Caller,
    info: &RequestInfo,
    operation: &str,
    body: &[u8],
) -> Result<Handled, ApiError> {
    let input = Input::new(body, "ValidationException")?;
    let store_id = input.req("IdentityStoreId")?.to_string();
    let ctx = Ctx {
        state,
        caller,
        info,
        operation,
    };
    let instance = ctx.instance(&store_id).await?;
    let params = json!({"identityStoreId": store_id});
    match operation {
        "CreateUser" => create_user(&ctx, &input, &instance).await,
        "DescribeUser" => {
            let user = ctx.user(&instance, input.req("UserId")?).await?;
            Ok(ctx.reply(
                user_json(&user),
                with(params, "userId", &user.user_id),
                None,
            ))
        }
        "ListUsers" => list_users(&ctx, &input, &instance).await,
        "DeleteUser" => {
            let id = input.req("UserId")?;
            ctx.state
                .store
                .delete_sso_user(&instance.identity_store_id, id)
                .await
                .map_err(center_error)?;
            Ok(ctx.reply(json!({}), with(params, "userId", id), None))
        }
        "CreateGroup" => create_group(&ctx, &input, &instance).await,
        "DescribeGroup" => {
            let group = ctx.group(&instance, input.req("GroupId")?).await?;
            Ok(ctx.reply(
                group_json(&group),
                with(params, "groupId", &group.group_id),
                None,
            ))
        }
        "ListGroups" => list_groups(&ctx, &input, &instance).await,
        "DeleteGroup" => {
            let id = input.req("GroupId")?;
            ctx.state
                .store
                .delete_sso_group(&instance.identity_store_id, id)
                .await
                .map_err(center_error)?;
            Ok(ctx.reply(json!({}), with(params, "groupId", id), None))
        }
        "CreateGroupMembership" => create_membership(&ctx, &input, &instance).await,
        "ListGroupMemberships" => {
            let group = ctx.group(&instance, input.req("GroupId")?).await?;
            let list: Vec<Value> = ctx
                .state
                .store
                .list_memberships(&group.group_id)
                .await
                .map_err(|e| ApiError::internal(&e))?
                .iter()
                .map(|m| membership_json(&instance, m))
                .collect();
            Ok(ctx.reply(
                json!({"GroupMemberships": list}),
                with(params, "groupId", &group.group_id),
                None,
            ))
        }
        "DeleteGroupMembership" => {
            let id = input.req("MembershipId")?;
            ctx.state
                .store
                .delete_membership(&instance.identity_store_id, id)
                .await
                .map_err(center_error)?;
            Ok(ctx.reply(json!({}), with(params, "membershipId", id), None))
        }
        "GetUserId" => {
            let value = unique_attribute(&input, "UserName")?;
            let user = ctx
                .state
                .store
                .sso_user_by_name(&instance.identity_store_id, &value)
                .await
                .map_err(|e| ApiError::internal(&e))?
                .ok_or_else(|| not_found("USER", &value))?;
            Ok(ctx.reply(
                json!({"IdentityStoreId": instance.identity_store_id, "UserId": user.user_id, "UserArn": user_arn(&user.user_id)}),
                params,
                None,
            ))
        }
        "GetGroupId" => {
            let value = unique_attribute(&input, "DisplayName")?;
            let group = ctx
                .state
                .store
                .sso_group_by_name(&instance.identity_store_id, &value)
                .await
                .map_err(|e| ApiError::internal(&e))?
                .ok_or_else(|| not_found("GROUP", &value))?;
            Ok(ctx.reply(
                json!({"IdentityStoreId": instance.identity_store_id, "GroupId": group.group_id, "GroupArn": group_arn(&group.group_id)}),
                params,
                None,
            ))
        }
        other => Err(unknown_operation(other)),
    }
}

struct Ctx<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    info: &'a RequestInfo,
    operation: &'a str,
}

impl Ctx<'_> {
    /// The instance whose store is named, after authorizing the operation
    /// on the store and checking the caller's account owns it.
    async fn instance(&self, store_id: &str) -> Result<Instance, ApiError> {
        let resource = format!(
            "arn:aws:identitystore::{}:identitystore/{store_id}",
            self.caller.account_id
        );
        authz::authorize(
            &self.state.store,
            self.caller,
            self.info,
            &format!("identitystore:{}", self.operation),
            &resource,
            &[],
        )
        .await?;
        let instance = self
            .state
            .store
            .instance_by_store(store_id)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .ok_or_else(|| not_found("IDENTITY_STORE", store_id))?;
        if instance.owner_account != self.caller.account_id {
            return Err(access_denied());
        }
        Ok(instance)
    }

    async fn user(&self, instance: &Instance, id: &str) -> Result<SsoUser, ApiError> {
        self.state
            .store
            .sso_user(&instance.identity_store_id, id)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .ok_or_else(|| not_found("USER", id))
    }

    async fn group(&self, instance: &Instance, id: &str) -> Result<SsoGroup, ApiError> {
        self.state
            .store
            .sso_group(&instance.identity_store_id, id)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .ok_or_else(|| not_found("GROUP", id))
    }

    fn reply(&self, body: Value, params: Value, response: Option<Value>) -> Handled {
        handled(body, read_only(self.operation), params, response)
    }
}

fn with(mut params: Value, key: &str, value: &str) -> Value {
    params[key] = json!(value);
    params
}

/// `AccessDeniedException` for a store of another account's organization.
pub(crate) fn access_denied() -> ApiError {
    ApiError::new(
        http::StatusCode::FORBIDDEN,
        "AccessDeniedException",
        "Only principals of the organization's management account can administer its IAM Identity Center instance.",
    )
}

fn not_found(kind: &str, id: &str) -> ApiError {
    ApiError::new(
        http::StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        format!("{kind} not found: {id}"),
    )
}

fn center_error(e: CenterError) -> ApiError {
    match e {
        CenterError::NotFound(m) => {
            ApiError::new(http::StatusCode::NOT_FOUND, "ResourceNotFoundException", m)
        }
        CenterError::Conflict(m) => {
            ApiError::new(http::StatusCode::CONFLICT, "ConflictException", m)
        }
        CenterError::Invalid(m) => bad("ValidationException", m),
        CenterError::AlreadyInOrganization => bad("ValidationException", e.to_string()),
        CenterError::Store(e) => ApiError::internal(&e),
    }
}

fn user_arn(id: &str) -> String {
    format!("arn:aws:identitystore:::user/{id}")
}

fn group_arn(id: &str) -> String {
    format!("arn:aws:identitystore:::group/{id}")
}

fn user_json(u: &SsoUser) -> Value {
    let mut v = json!({
        "IdentityStoreId": u.identity_store_id,
        "UserId": u.user_id,
        "UserArn": user_arn(&u.user_id),
        "Revision": "1",
        "UserName": u.user_name,
        "DisplayName": u.display_name,
        "UserStatus": "ENABLED",
        "CreatedAt": timestamp(u.created_at),
    });
    if let Some(email) = &u.email {
        v["Emails"] = json!([{"Value": email, "Type": "work", "Primary": true}]);
    }
    v
}

fn group_json(g: &SsoGroup) -> Value {
    let mut v = json!({
        "IdentityStoreId": g.identity_store_id,
        "GroupId": g.group_id,
        "GroupArn": group_arn(&g.group_id),
        "Revision": "1",
        "DisplayName": g.display_name,
        "CreatedAt": timestamp(g.created_at),
    });
    if let Some(d) = &g.description {
        v["Description"] = json!(d);
    }
    v
}

fn membership_json(instance: &Instance, m: &Membership) -> Value {
    json!({
        "IdentityStoreId": instance.identity_store_id,
        "MembershipId": m.membership_id,
        "MembershipArn": format!("arn:aws:identitystore:::membership/{}", m.membership_id),
        "GroupId": m.group_id,
        "MemberId": {"UserId": m.user_id},
    })
}

/// Checks a name-like attribute: 1 to `max` characters, no control
/// characters.
fn check_text(input: &Input, name: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(input.invalid(format!(
            "1 validation error detected: Value at '{name}' failed to satisfy constraint: Member must have length between 1 and {max} and contain no control characters"
        )));
    }
    Ok(())
}

async fn create_user(
    ctx: &Ctx<'_>,
    input: &Input,
    instance: &Instance,
) -> Result<Handled, ApiError> {
    let user_name = input.req("UserName")?;
    check_text(input, "userName", user_name, 128)?;
    if user_name.chars().any(char::is_whitespace) {
        return Err(input.invalid("UserName must not contain white space."));
    }
    let name = input.value("Name");
    let from_name = name.and_then(|n| {
        let formatted = n.get("Formatted").and_then(Value::as_str);
        let given = n.get("GivenName").and_then(Value::as_str);
        let family = n.get("FamilyName").and_then(Value::as_str);
        formatted.map(str::to_string).or(match (given, family) {
            (Some(g), Some(f)) => Some(format!("{g} {f}")),
            (Some(x), None) | (None, Some(x)) => Some(x.to_string()),
            _ => None,
        })
    });
    let display = match input.opt("DisplayName")? {
        Some(d) => d.to_string(),
        None => from_name.ok_or_else(|| input.invalid("DisplayName is required."))?,
    };
    check_text(input, "displayName", &display, 1024)?;
    let email = match input.value("Emails") {
        None => None,
        Some(Value::Array(list)) => {
            let primary = list
                .iter()
                .find(|e| e.get("Primary").and_then(Value::as_bool) == Some(true))
                .or_else(|| list.first());
            primary
                .and_then(|e| e.get("Value"))
                .and_then(Value::as_str)
                .map(str::to_string)
        }
        Some(_) => return Err(input.invalid("Emails must be a list.")),
    };
    let user = ctx
        .state
        .store
        .create_sso_user(
            &instance.identity_store_id,
            user_name,
            &display,
            email.as_deref(),
        )
        .await
        .map_err(center_error)?;
    let body = json!({
        "IdentityStoreId": instance.identity_store_id,
        "UserId": user.user_id,
        "UserArn": user_arn(&user.user_id),
        "Revision": "1",
    });
    Ok(ctx.reply(
        body,
        json!({"identityStoreId": instance.identity_store_id, "userName": user_name, "displayName": display}),
        Some(json!({"userId": user.user_id, "identityStoreId": instance.identity_store_id})),
    ))
}

/// The value of a `[{AttributePath, AttributeValue}]` filter on `path`.
fn filter_value(input: &Input, path: &str) -> Result<Option<String>, ApiError> {
    let Some(filters) = input.value("Filters") else {
        return Ok(None);
    };
    let list = filters
        .as_array()
        .ok_or_else(|| input.invalid("Filters must be a list."))?;
    match list.as_slice() {
        [] => Ok(None),
        [f] => {
            let attr = f
                .get("AttributePath")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if attr != path {
                return Err(input.invalid(format!(
                    "Filtering on {attr} is not supported; filter on {path}."
                )));
            }
            Ok(f.get("AttributeValue")
                .and_then(Value::as_str)
                .map(str::to_string))
        }
        _ => Err(input.invalid("At most one filter may be given.")),
    }
}

/// `AlternateIdentifier.UniqueAttribute`'s value on `path`.
fn unique_attribute(input: &Input, path: &str) -> Result<String, ApiError> {
    let alt = input
        .value("AlternateIdentifier")
        .ok_or_else(|| input.invalid("AlternateIdentifier is required."))?;
    if alt.get("ExternalId").is_some() {
        return Err(input.invalid("Lookup by ExternalId is not supported; use UniqueAttribute."));
    }
    let unique = alt
        .get("UniqueAttribute")
        .ok_or_else(|| input.invalid("AlternateIdentifier.UniqueAttribute is required."))?;
    let attr = unique
        .get("AttributePath")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if attr != path {
        return Err(input.invalid(format!(
            "The attribute path {attr} is not supported; use {path}."
        )));
    }
    unique
        .get("AttributeValue")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| input.invalid("AttributeValue must be a string."))
}

async fn list_users(
    ctx: &Ctx<'_>,
    input: &Input,
    instance: &Instance,
) -> Result<Handled, ApiError> {
    let filter = filter_value(input, "UserName")?;
    let users = ctx
        .state
        .store
        .list_sso_users(&instance.identity_store_id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let list: Vec<Value> = users
        .iter()
        .filter(|u| {
            filter
                .as_ref()
                .is_none_or(|f| u.user_name.eq_ignore_ascii_case(f))
        })
        .map(user_json)
        .collect();
    Ok(ctx.reply(
        json!({"Users": list}),
        json!({"identityStoreId": instance.identity_store_id}),
        None,
    ))
}

async fn create_group(
    ctx: &Ctx<'_>,
    input: &Input,
    instance: &Instance,
) -> Result<Handled, ApiError> {
    let display = input.req("DisplayName")?;
    check_text(input, "displayName", display, 1024)?;
    let description = input.opt("Description")?;
    let group = ctx
        .state
        .store
        .create_sso_group(&instance.identity_store_id, display, description)
        .await
        .map_err(center_error)?;
    Ok(ctx.reply(
        json!({
            "IdentityStoreId": instance.identity_store_id,
            "GroupId": group.group_id,
            "GroupArn": group_arn(&group.group_id),
            "Revision": "1",
        }),
        json!({"identityStoreId": instance.identity_store_id, "displayName": display}),
        Some(json!({"groupId": group.group_id, "identityStoreId": instance.identity_store_id})),
    ))
}

async fn list_groups(
    ctx: &Ctx<'_>,
    input: &Input,
    instance: &Instance,
) -> Result<Handled, ApiError> {
    let filter = filter_value(input, "DisplayName")?;
    let groups = ctx
        .state
        .store
        .list_sso_groups(&instance.identity_store_id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let list: Vec<Value> = groups
        .iter()
        .filter(|g| {
            filter
                .as_ref()
                .is_none_or(|f| g.display_name.eq_ignore_ascii_case(f))
        })
        .map(group_json)
        .collect();
    Ok(ctx.reply(
        json!({"Groups": list}),
        json!({"identityStoreId": instance.identity_store_id}),
        None,
    ))
}

async fn create_membership(
    ctx: &Ctx<'_>,
    input: &Input,
    instance: &Instance,
) -> Result<Handled, ApiError> {
    let group_id = input.req("GroupId")?;
    let user_id = input
        .value("MemberId")
        .and_then(|m| m.get("UserId"))
        .and_then(Value::as_str)
        .ok_or_else(|| input.invalid("MemberId.UserId is required."))?;
    let m = ctx
        .state
        .store
        .create_membership(&instance.identity_store_id, group_id, user_id)
        .await
        .map_err(center_error)?;
    Ok(ctx.reply(
        json!({
            "IdentityStoreId": instance.identity_store_id,
            "MembershipId": m.membership_id,
            "MembershipArn": format!("arn:aws:identitystore:::membership/{}", m.membership_id),
        }),
        json!({"identityStoreId": instance.identity_store_id, "groupId": group_id, "memberId": {"userId": user_id}}),
        Some(json!({"membershipId": m.membership_id})),
    ))
}
