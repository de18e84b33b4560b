//! IAM Identity Center administration (`/sso-admin/`, JSON 1.1,
//! `SWBExternalService`, signed as `sso`): instances, permission sets and
//! their policies, account assignments and provisioning.
//!
//! Work AWS does asynchronously (assignments, provisioning) is done before
//! the reply; the status answered is `SUCCEEDED` and kept, so the
//! `Describe…Status` operations read it back.

use seashell_policy::PolicyKind;
use serde_json::{json, Value};

use crate::authz::{self, RequestInfo};
use crate::builtin;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::services::identitystore::access_denied;
use crate::services::json_api::{bad, handled, read_only, timestamp, unknown_operation, Input};
use crate::services::Handled;
use crate::state::AppState;
use crate::store::identity_center::{
    format_session_duration, parse_session_duration, Assignment, CenterError, Instance,
    PermissionSet,
};
use crate::store::now_ms;

/// The `X-Amz-Target` prefix.
pub const TARGET_PREFIX: &str = "SWBExternalService.";
/// The CloudTrail event source.
pub const EVENT_SOURCE: &str = "sso.amazonaws.com";

const CREATION: &str = "ASSIGNMENT_CREATION";
const DELETION: &str = "ASSIGNMENT_DELETION";
const PROVISIONING: &str = "PROVISIONING";

/// Handles one SSO Admin operation.
pub async fn handle(
    state: &AppState,
    caller: &Caller,
    info: &RequestInfo,
    operation: &str,
    body: &[u8],
) -> Result<Handled, ApiError> {
    let input = Input::new(body, "ValidationException")?;
    let ctx = Ctx {
        state,
        caller,
        info,
        operation,
    };
    if operation == "ListInstances" {
        return list_instances(&ctx).await;
    }
    let instance_arn = input.req("InstanceArn")?;
    match operation {
        "CreatePermissionSet" => create_permission_set(&ctx, &input, instance_arn).await,
        "ListPermissionSets" => {
            let instance = ctx.instance(instance_arn, instance_arn).await?;
            let sets = state
                .store
                .list_permission_sets(&instance.instance_arn)
                .await
                .map_err(|e| ApiError::internal(&e))?;
            let arns: Vec<&str> = sets.iter().map(|p| p.permission_set_arn.as_str()).collect();
            Ok(ctx.reply(
                json!({"PermissionSets": arns}),
                json!({"instanceArn": instance_arn}),
                None,
            ))
        }
        "DescribeAccountAssignmentCreationStatus" => {
            describe_status(&ctx, &input, instance_arn, CREATION).await
        }
        "DescribeAccountAssignmentDeletionStatus" => {
            describe_status(&ctx, &input, instance_arn, DELETION).await
        }
        "DescribePermissionSetProvisioningStatus" => {
            describe_status(&ctx, &input, instance_arn, PROVISIONING).await
        }
        _ => permission_set_operation(&ctx, &input, instance_arn).await,
    }
}

struct Ctx<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    info: &'a RequestInfo,
    operation: &'a str,
}

impl Ctx<'_> {
    async fn authorize(&self, resource: &str) -> Result<(), ApiError> {
        authz::authorize(
            &self.state.store,
            self.caller,
            self.info,
            &format!("sso:{}", self.operation),
            resource,
            &[],
        )
        .await
    }

    /// The instance named, after authorizing the operation on `resource`
    /// and checking the caller's account owns the instance.
    async fn instance(&self, instance_arn: &str, resource: &str) -> Result<Instance, ApiError> {
        self.authorize(resource).await?;
        let instance = self
            .state
            .store
            .instance_by_arn(instance_arn)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .ok_or_else(|| not_found(format!("Instance {instance_arn} does not exist.")))?;
        if instance.owner_account != self.caller.account_id {
            return Err(access_denied());
        }
        Ok(instance)
    }

    fn reply(&self, body: Value, params: Value, response: Option<Value>) -> Handled {
        handled(body, read_only(self.operation), params, response)
    }
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new(
        http::StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        message,
    )
}

fn center_error(e: CenterError) -> ApiError {
    match e {
        CenterError::NotFound(m) => not_found(m),
        CenterError::Conflict(m) => {
            ApiError::new(http::StatusCode::CONFLICT, "ConflictException", m)
        }
        CenterError::Invalid(m) => bad("ValidationException", m),
        CenterError::AlreadyInOrganization => bad("ValidationException", e.to_string()),
        CenterError::Store(e) => ApiError::internal(&e),
    }
}

fn permission_set_json(p: &PermissionSet) -> Value {
    let mut v = json!({
        "Name": p.name,
        "PermissionSetArn": p.permission_set_arn,
        "CreatedDate": timestamp(p.created_at),
        "SessionDuration": format_session_duration(p.session_duration_secs),
    });
    if let Some(d) = &p.description {
        v["Description"] = json!(d);
    }
    if let Some(r) = &p.relay_state {
        v["RelayState"] = json!(r);
    }
    v
}

async fn list_instances(ctx: &Ctx<'_>) -> Result<Handled, ApiError> {
    ctx.authorize("*").await?;
    let instance = ctx
        .state
        .store
        .instance_of(&ctx.caller.account_id)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .filter(|i| i.owner_account == ctx.caller.account_id);
    let list: Vec<Value> = instance
        .iter()
        .map(|i| {
            json!({
                "InstanceArn": i.instance_arn,
                "IdentityStoreId": i.identity_store_id,
                "OwnerAccountId": i.owner_account,
                "Name": "Seashell",
                "CreatedDate": timestamp(i.created_at),
                "Status": "ACTIVE",
            })
        })
        .collect();
    Ok(ctx.reply(json!({"Instances": list}), json!({}), None))
}

async fn create_permission_set(
    ctx: &Ctx<'_>,
    input: &Input,
    instance_arn: &str,
) -> Result<Handled, ApiError> {
    let name = input.req("Name")?;
    let name_ok = name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if !name_ok {
        return Err(input.invalid(format!(
            "1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+ and have length between 1 and 32"
        )));
    }
    let description = input.opt("Description")?;
    if description.is_some_and(|d| d.chars().count() > 700) {
        return Err(input.invalid("Description must be at most 700 characters."));
    }
    let duration = input.opt("SessionDuration")?.unwrap_or("PT1H");
    let secs = parse_session_duration(duration).map_err(center_error)?;
    let relay = input.opt("RelayState")?;
    let instance = ctx.instance(instance_arn, instance_arn).await?;
    let ps = ctx
        .state
        .store
        .create_permission_set(&instance.instance_arn, name, description, secs, relay)
        .await
        .map_err(center_error)?;
    let body = json!({"PermissionSet": permission_set_json(&ps)});
    Ok(ctx.reply(
        body.clone(),
        json!({"instanceArn": instance_arn, "name": name, "sessionDuration": duration}),
        Some(json!({"permissionSet": body["PermissionSet"]})),
    ))
}

/// The operations on one permission set.
async fn permission_set_operation(
    ctx: &Ctx<'_>,
    input: &Input,
    instance_arn: &str,
) -> Result<Handled, ApiError> {
    let known = [
        "DescribePermissionSet",
        "DeletePermissionSet",
        "AttachManagedPolicyToPermissionSet",
        "DetachManagedPolicyFromPermissionSet",
        "ListManagedPoliciesInPermissionSet",
        "PutInlinePolicyToPermissionSet",
        "GetInlinePolicyForPermissionSet",
        "DeleteInlinePolicyFromPermissionSet",
        "ProvisionPermissionSet",
        "CreateAccountAssignment",
        "DeleteAccountAssignment",
        "ListAccountAssignments",
        "ListAccountsForProvisionedPermissionSet",
    ];
    if !known.contains(&ctx.operation) {
        return Err(unknown_operation(ctx.operation));
    }
    let ps_arn = input.req("PermissionSetArn")?;
    let instance = ctx.instance(instance_arn, ps_arn).await?;
    let store = &ctx.state.store;
    let ps = store
        .permission_set(&instance.instance_arn, ps_arn)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| {
            not_found(format!(
                "Could not find PermissionSet with PermissionSetArn {ps_arn}."
            ))
        })?;
    let params = json!({"instanceArn": instance_arn, "permissionSetArn": ps_arn});
    let empty = json!({});
    match ctx.operation {
        "DescribePermissionSet" => Ok(ctx.reply(
            json!({"PermissionSet": permission_set_json(&ps)}),
            params,
            None,
        )),
        "DeletePermissionSet" => {
            store
                .delete_permission_set(&instance.instance_arn, ps_arn)
                .await
                .map_err(center_error)?;
            Ok(ctx.reply(empty, params, None))
        }
        "AttachManagedPolicyToPermissionSet" | "DetachManagedPolicyFromPermissionSet" => {
            let policy = input.req("ManagedPolicyArn")?;
            let mut params = params;
            params["managedPolicyArn"] = json!(policy);
            if ctx.operation.starts_with("Attach") {
                if builtin::by_arn(policy).is_none() {
                    return Err(input.invalid(format!(
                        "ManagedPolicyArn {policy} is not an AWS managed policy this server has."
                    )));
                }
                store
                    .attach_permission_set_policy(&instance.instance_arn, ps_arn, policy)
                    .await
                    .map_err(center_error)?;
            } else {
                store
                    .detach_permission_set_policy(&instance.instance_arn, ps_arn, policy)
                    .await
                    .map_err(center_error)?;
            }
            Ok(ctx.reply(empty, params, None))
        }
        "ListManagedPoliciesInPermissionSet" => {
            let list: Vec<Value> = store
                .permission_set_policies(ps_arn)
                .await
                .map_err(|e| ApiError::internal(&e))?
                .iter()
                .map(|arn| json!({"Arn": arn, "Name": arn.rsplit('/').next().unwrap_or(arn)}))
                .collect();
            Ok(ctx.reply(json!({"AttachedManagedPolicies": list}), params, None))
        }
        "PutInlinePolicyToPermissionSet" => {
            let document = input.req("InlinePolicy")?;
            seashell_policy::parse(document, PolicyKind::InlineRole).map_err(|e| {
                input.invalid(format!("The inline policy is not a valid policy: {e}"))
            })?;
            store
                .set_permission_set_inline(&instance.instance_arn, ps_arn, Some(document))
                .await
                .map_err(center_error)?;
            if let Some(old) = &ps.inline_policy {
                authz::cache().forget(old);
            }
            Ok(ctx.reply(empty, params, None))
        }
        "GetInlinePolicyForPermissionSet" => Ok(ctx.reply(
            json!({"InlinePolicy": ps.inline_policy.clone().unwrap_or_default()}),
            params,
            None,
        )),
        "DeleteInlinePolicyFromPermissionSet" => {
            store
                .set_permission_set_inline(&instance.instance_arn, ps_arn, None)
                .await
                .map_err(center_error)?;
            if let Some(old) = &ps.inline_policy {
                authz::cache().forget(old);
            }
            Ok(ctx.reply(empty, params, None))
        }
        "ProvisionPermissionSet" => provision(ctx, input, &instance, &ps, params).await,
        "CreateAccountAssignment" | "DeleteAccountAssignment" => {
            change_assignment(ctx, input, &instance, &ps).await
        }
        "ListAccountAssignments" => {
            let account = input.req("AccountId")?;
            let list: Vec<Value> = store
                .list_assignments(account, ps_arn)
                .await
                .map_err(|e| ApiError::internal(&e))?
                .iter()
                .map(|a| {
                    json!({
                        "AccountId": a.account_id,
                        "PermissionSetArn": a.permission_set_arn,
                        "PrincipalType": a.principal_type,
                        "PrincipalId": a.principal_id,
                    })
                })
                .collect();
            let mut params = params;
            params["accountId"] = json!(account);
            Ok(ctx.reply(json!({"AccountAssignments": list}), params, None))
        }
        _ => {
            let accounts = store
                .provisioned_accounts(ps_arn)
                .await
                .map_err(|e| ApiError::internal(&e))?;
            Ok(ctx.reply(json!({"AccountIds": accounts}), params, None))
        }
    }
}

async fn provision(
    ctx: &Ctx<'_>,
    input: &Input,
    instance: &Instance,
    ps: &PermissionSet,
    mut params: Value,
) -> Result<Handled, ApiError> {
    let target_type = input.req("TargetType")?;
    let target = match target_type {
        "AWS_ACCOUNT" => Some(input.req("TargetId")?),
        "ALL_PROVISIONED_ACCOUNTS" => None,
        other => return Err(input.invalid(format!("TargetType {other} is not valid."))),
    };
    ctx.state
        .store
        .provision_permission_set(&instance.instance_arn, &ps.permission_set_arn, target)
        .await
        .map_err(center_error)?;
    let mut status = json!({
        "Status": "SUCCEEDED",
        "RequestId": uuid::Uuid::new_v4().to_string(),
        "PermissionSetArn": ps.permission_set_arn,
        "CreatedDate": timestamp(now_ms()),
    });
    if let Some(t) = target {
        status["AccountId"] = json!(t);
    }
    record(ctx, instance, PROVISIONING, &status).await?;
    params["targetType"] = json!(target_type);
    if let Some(t) = target {
        params["targetId"] = json!(t);
    }
    Ok(ctx.reply(
        json!({"PermissionSetProvisioningStatus": status}),
        params,
        Some(json!({"permissionSetProvisioningStatus": status})),
    ))
}

async fn record(
    ctx: &Ctx<'_>,
    instance: &Instance,
    kind: &str,
    status: &Value,
) -> Result<(), ApiError> {
    let id = status["RequestId"].as_str().unwrap_or_default();
    ctx.state
        .store
        .record_sso_request(&instance.instance_arn, kind, id, &status.to_string())
        .await
        .map_err(|e| ApiError::internal(&e))
}

async fn change_assignment(
    ctx: &Ctx<'_>,
    input: &Input,
    instance: &Instance,
    ps: &PermissionSet,
) -> Result<Handled, ApiError> {
    let target = input.req("TargetId")?;
    let target_type = input.req("TargetType")?;
    let principal_type = input.req("PrincipalType")?;
    let principal_id = input.req("PrincipalId")?;
    if target_type != "AWS_ACCOUNT" {
        return Err(input.invalid(format!("TargetType {target_type} is not valid.")));
    }
    if target.len() != 12 || !target.bytes().all(|b| b.is_ascii_digit()) {
        return Err(input.invalid(format!("TargetId {target} is not an account ID.")));
    }
    if !["USER", "GROUP"].contains(&principal_type) {
        return Err(input.invalid(format!("PrincipalType {principal_type} is not valid.")));
    }
    let assignment = Assignment {
        account_id: target.to_string(),
        permission_set_arn: ps.permission_set_arn.clone(),
        principal_type: principal_type.to_string(),
        principal_id: principal_id.to_string(),
    };
    let creating = ctx.operation == "CreateAccountAssignment";
    let store = &ctx.state.store;
    if creating {
        store.create_assignment(instance, &assignment).await
    } else {
        store.delete_assignment(instance, &assignment).await
    }
    .map_err(center_error)?;
    let status = json!({
        "Status": "SUCCEEDED",
        "RequestId": uuid::Uuid::new_v4().to_string(),
        "TargetId": target,
        "TargetType": target_type,
        "PermissionSetArn": ps.permission_set_arn,
        "PrincipalType": principal_type,
        "PrincipalId": principal_id,
        "CreatedDate": timestamp(now_ms()),
    });
    let (kind, member, audit) = if creating {
        (
            CREATION,
            "AccountAssignmentCreationStatus",
            "accountAssignmentCreationStatus",
        )
    } else {
        (
            DELETION,
            "AccountAssignmentDeletionStatus",
            "accountAssignmentDeletionStatus",
        )
    };
    record(ctx, instance, kind, &status).await?;
    Ok(ctx.reply(
        json!({member: status}),
        json!({
            "instanceArn": instance.instance_arn,
            "targetId": target,
            "targetType": target_type,
            "permissionSetArn": ps.permission_set_arn,
            "principalType": principal_type,
            "principalId": principal_id,
        }),
        Some(json!({audit: status})),
    ))
}

async fn describe_status(
    ctx: &Ctx<'_>,
    input: &Input,
    instance_arn: &str,
    kind: &str,
) -> Result<Handled, ApiError> {
    let (member, id_member) = match kind {
        CREATION => (
            "AccountAssignmentCreationStatus",
            "AccountAssignmentCreationRequestId",
        ),
        DELETION => (
            "AccountAssignmentDeletionStatus",
            "AccountAssignmentDeletionRequestId",
        ),
        _ => (
            "PermissionSetProvisioningStatus",
            "ProvisionPermissionSetRequestId",
        ),
    };
    let id = input.req(id_member)?;
    let instance = ctx.instance(instance_arn, instance_arn).await?;
    let text = ctx
        .state
        .store
        .sso_request(&instance.instance_arn, kind, id)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| not_found(format!("Request {id} does not exist.")))?;
    let status: Value = serde_json::from_str(&text).map_err(|e| ApiError::internal(&e))?;
    Ok(ctx.reply(
        json!({member: status}),
        json!({"instanceArn": instance_arn, id_member: id}),
        None,
    ))
}
