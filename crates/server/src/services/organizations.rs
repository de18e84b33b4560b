//! AWS Organizations (`/organizations/`, JSON 1.1,
//! `AWSOrganizationsV20161128`): the organization of the caller's account,
//! member accounts, and service control policies on the root and accounts.
//!
//! Only the management account's principals administer the organization;
//! members may describe it.

use seashell_policy::PolicyKind;
use serde_json::{json, Value};

use crate::authz::{self, RequestInfo};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::services::json_api::{bad, handled, read_only, timestamp, unknown_operation, Input};
use crate::services::Handled;
use crate::state::AppState;
use crate::store::identity_center::{
    CenterError, OrgAccount, Organization, Scp, FULL_AWS_ACCESS_ID,
};

/// The `X-Amz-Target` prefix.
pub const TARGET_PREFIX: &str = "AWSOrganizationsV20161128.";
/// The CloudTrail event source.
pub const EVENT_SOURCE: &str = "organizations.amazonaws.com";

const SCP_TYPE: &str = "SERVICE_CONTROL_POLICY";

/// Handles one Organizations operation.
pub async fn handle(
    state: &AppState,
    caller: &Caller,
    info: &RequestInfo,
    operation: &str,
    body: &[u8],
) -> Result<Handled, ApiError> {
    let input = Input::new(body, "InvalidInputException")?;
    let ctx = Ctx {
        state,
        caller,
        info,
        operation,
    };
    match operation {
        "CreateOrganization" => create_organization(&ctx, &input).await,
        "DescribeOrganization" => describe_organization(&ctx).await,
        "CreateAccount" => create_account(&ctx, &input).await,
        "DescribeCreateAccountStatus" => describe_create_account_status(&ctx, &input).await,
        "ListAccounts" => list_accounts(&ctx).await,
        "DescribeAccount" => describe_account(&ctx, &input).await,
        "ListRoots" => list_roots(&ctx).await,
        "CreatePolicy" => create_policy(&ctx, &input).await,
        "ListPolicies" => list_policies(&ctx, &input).await,
        "AttachPolicy" | "DetachPolicy" => attach_or_detach(&ctx, &input).await,
        "DeletePolicy" => delete_policy(&ctx, &input).await,
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
    async fn authorize(&self, resource: &str) -> Result<(), ApiError> {
        authz::authorize(
            &self.state.store,
            self.caller,
            self.info,
            &format!("organizations:{}", self.operation),
            resource,
            &[],
        )
        .await
    }

    /// The caller's organization, any member may see.
    async fn organization(&self) -> Result<Organization, ApiError> {
        self.state
            .store
            .organization_of(&self.caller.account_id)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .ok_or_else(|| {
                bad(
                    "AWSOrganizationsNotInUseException",
                    "Your account is not a member of an organization.",
                )
            })
    }

    /// The caller's organization, which the caller's account must manage;
    /// the operation authorized on `resource(org)` (`*` for the operations
    /// IAM gives no resource type, as in AWS's service authorization
    /// reference).
    async fn managed(
        &self,
        resource: impl FnOnce(&Organization) -> String,
    ) -> Result<Organization, ApiError> {
        let org = self.organization().await?;
        // Checked first: the organization's resources are in the management
        // account, so for anyone else they would be another account's.
        if org.management_account != self.caller.account_id {
            return Err(not_management());
        }
        self.authorize(&resource(&org)).await?;
        Ok(org)
    }

    fn reply(&self, body: Value, params: Value, response: Option<Value>) -> Handled {
        handled(body, read_only(self.operation), params, response)
    }
}

fn not_management() -> ApiError {
    ApiError::new(
        http::StatusCode::BAD_REQUEST,
        "AccessDeniedException",
        "You don't have permissions to access this resource: only the organization's management account may perform this operation.",
    )
}

fn center_error(e: CenterError, not_found: &str) -> ApiError {
    match e {
        CenterError::NotFound(m) => bad(not_found, m),
        CenterError::Conflict(m) => bad("ConstraintViolationException", m),
        CenterError::Invalid(m) => bad("ConstraintViolationException", m),
        CenterError::AlreadyInOrganization => bad(
            "AlreadyInOrganizationException",
            "The AWS account is already a member of an organization.",
        ),
        CenterError::Store(e) => ApiError::internal(&e),
    }
}

fn organization_json(org: &Organization, management_email: &str) -> Value {
    json!({
        "Id": org.organization_id,
        "Arn": org.arn(),
        "FeatureSet": "ALL",
        "MasterAccountArn": account_arn(org, &org.management_account),
        "MasterAccountId": org.management_account,
        "MasterAccountEmail": management_email,
        "AvailablePolicyTypes": [{"Type": SCP_TYPE, "Status": "ENABLED"}],
    })
}

fn account_arn(org: &Organization, account_id: &str) -> String {
    format!(
        "arn:aws:organizations::{}:account/{}/{account_id}",
        org.management_account, org.organization_id
    )
}

fn account_json(org: &Organization, a: &OrgAccount) -> Value {
    json!({
        "Id": a.account_id,
        "Arn": account_arn(org, &a.account_id),
        "Email": a.email,
        "Name": a.name,
        "Status": "ACTIVE",
        "State": "ACTIVE",
        "JoinedMethod": if a.account_id == org.management_account { "INVITED" } else { "CREATED" },
        "JoinedTimestamp": timestamp(a.joined_at),
    })
}

fn policy_arn(org: &Organization, policy_id: &str) -> String {
    if policy_id == FULL_AWS_ACCESS_ID {
        format!("arn:aws:organizations::aws:policy/service_control_policy/{policy_id}")
    } else {
        format!(
            "arn:aws:organizations::{}:policy/{}/service_control_policy/{policy_id}",
            org.management_account, org.organization_id
        )
    }
}

fn policy_summary(org: &Organization, p: &Scp) -> Value {
    json!({
        "Id": p.policy_id,
        "Arn": policy_arn(org, &p.policy_id),
        "Name": p.name,
        "Description": p.description,
        "Type": SCP_TYPE,
        "AwsManaged": p.aws_managed,
    })
}

/// The status of a CreateAccount request. Accounts are created at once, so
/// the request's ID is derived from the account's and nothing else needs
/// keeping.
fn create_account_status(a: &OrgAccount) -> Value {
    json!({
        "Id": format!("car-{}", a.account_id),
        "AccountName": a.name,
        "State": "SUCCEEDED",
        "RequestedTimestamp": timestamp(a.joined_at),
        "CompletedTimestamp": timestamp(a.joined_at),
        "AccountId": a.account_id,
    })
}

fn check_email(input: &Input, email: &str) -> Result<(), ApiError> {
    let ok = email.len() <= 64
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok {
        Ok(())
    } else {
        Err(input.invalid(format!(
            "You provided a value that does not match the required pattern: Email {email}"
        )))
    }
}

async fn create_organization(ctx: &Ctx<'_>, input: &Input) -> Result<Handled, ApiError> {
    ctx.authorize("*").await?;
    let feature_set = input.opt("FeatureSet")?.unwrap_or("ALL");
    if feature_set != "ALL" {
        return Err(input
            .invalid("Only the ALL feature set is supported (service control policies need it)."));
    }
    let account = &ctx.caller.account_id;
    let store = &ctx.state.store;
    let alias = store
        .account_alias(account)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let name = alias.unwrap_or_else(|| "Management account".to_string());
    let email = management_email(account);
    let (org, _instance) = store
        .create_organization(account, &name, &email)
        .await
        .map_err(|e| center_error(e, "InvalidInputException"))?;
    let body = json!({"Organization": organization_json(&org, &email)});
    Ok(ctx.reply(
        body.clone(),
        json!({"featureSet": feature_set}),
        Some(json!({"organization": body["Organization"]})),
    ))
}

/// The management account's address: CreateOrganization takes none, and
/// Seashell accounts have no root user with an email.
fn management_email(account_id: &str) -> String {
    format!("management-{account_id}@seashell.invalid")
}

async fn describe_organization(ctx: &Ctx<'_>) -> Result<Handled, ApiError> {
    ctx.authorize("*").await?;
    let org = ctx.organization().await?;
    let email = ctx
        .state
        .store
        .org_account(&org.organization_id, &org.management_account)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_or_else(|| management_email(&org.management_account), |a| a.email);
    Ok(ctx.reply(
        json!({"Organization": organization_json(&org, &email)}),
        Value::Null,
        None,
    ))
}

async fn create_account(ctx: &Ctx<'_>, input: &Input) -> Result<Handled, ApiError> {
    let email = input.req("Email")?;
    let name = input.req("AccountName")?;
    let role = input
        .opt("RoleName")?
        .unwrap_or("OrganizationAccountAccessRole");
    check_email(input, email)?;
    if name.len() > 50 || !name.chars().all(|c| (' '..='~').contains(&c)) {
        return Err(input.invalid("AccountName must be 1 to 50 printable ASCII characters."));
    }
    if role.is_empty()
        || role.len() > 64
        || !role
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    {
        return Err(input.invalid(format!("RoleName {role} is not a valid role name.")));
    }
    let org = ctx.managed(|_| "*".to_string()).await?;
    let account = ctx
        .state
        .store
        .create_member_account(&org, name, email, role)
        .await
        .map_err(|e| center_error(e, "InvalidInputException"))?;
    let status = create_account_status(&account);
    Ok(ctx.reply(
        json!({"CreateAccountStatus": status}),
        json!({"accountName": name, "email": email, "roleName": role}),
        Some(json!({"createAccountStatus": status})),
    ))
}

async fn describe_create_account_status(ctx: &Ctx<'_>, input: &Input) -> Result<Handled, ApiError> {
    let id = input.req("CreateAccountRequestId")?;
    let org = ctx.managed(|_| "*".to_string()).await?;
    let not_found = || {
        bad(
            "CreateAccountStatusNotFoundException",
            format!("We can't find a create account request with the ID {id}."),
        )
    };
    let account_id = id.strip_prefix("car-").ok_or_else(not_found)?;
    let account = ctx
        .state
        .store
        .org_account(&org.organization_id, account_id)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .filter(|a| a.account_id != org.management_account)
        .ok_or_else(not_found)?;
    Ok(ctx.reply(
        json!({"CreateAccountStatus": create_account_status(&account)}),
        json!({"createAccountRequestId": id}),
        None,
    ))
}

async fn list_accounts(ctx: &Ctx<'_>) -> Result<Handled, ApiError> {
    let org = ctx.managed(|_| "*".to_string()).await?;
    let accounts = ctx
        .state
        .store
        .list_org_accounts(&org.organization_id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let list: Vec<Value> = accounts.iter().map(|a| account_json(&org, a)).collect();
    Ok(ctx.reply(json!({"Accounts": list}), Value::Null, None))
}

async fn describe_account(ctx: &Ctx<'_>, input: &Input) -> Result<Handled, ApiError> {
    let id = input.req("AccountId")?;
    let org = ctx.managed(|o| account_arn(o, id)).await?;
    let account = ctx
        .state
        .store
        .org_account(&org.organization_id, id)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| {
            bad(
                "AccountNotFoundException",
                format!("You specified an account that doesn't exist: {id}"),
            )
        })?;
    Ok(ctx.reply(
        json!({"Account": account_json(&org, &account)}),
        json!({"accountId": id}),
        None,
    ))
}

async fn list_roots(ctx: &Ctx<'_>) -> Result<Handled, ApiError> {
    let org = ctx.managed(|_| "*".to_string()).await?;
    let root = json!({
        "Id": org.root_id(),
        "Arn": format!("arn:aws:organizations::{}:root/{}/{}", org.management_account, org.organization_id, org.root_id()),
        "Name": "Root",
        "PolicyTypes": [{"Type": SCP_TYPE, "Status": "ENABLED"}],
    });
    Ok(ctx.reply(json!({"Roots": [root]}), Value::Null, None))
}

async fn create_policy(ctx: &Ctx<'_>, input: &Input) -> Result<Handled, ApiError> {
    let content = input.req("Content")?;
    let description = input.opt("Description")?.unwrap_or_default();
    let name = input.req("Name")?;
    let kind = input.req("Type")?;
    if kind != SCP_TYPE {
        return Err(bad(
            "PolicyTypeNotAvailableForOrganizationException",
            format!("The policy type {kind} is not available in this organization."),
        ));
    }
    if name.len() > 128 || description.len() > 512 {
        return Err(input.invalid("Name or Description is too long."));
    }
    let org = ctx.managed(|_| "*".to_string()).await?;
    if let Err(e) = seashell_policy::parse(content, PolicyKind::ServiceControl) {
        return Err(bad("MalformedPolicyDocumentException", e.to_string()));
    }
    let scp = ctx
        .state
        .store
        .create_scp(&org.organization_id, name, description, content)
        .await
        .map_err(|e| match e {
            CenterError::Conflict(m) => bad("DuplicatePolicyException", m),
            other => center_error(other, "InvalidInputException"),
        })?;
    let summary = policy_summary(&org, &scp);
    Ok(ctx.reply(
        json!({"Policy": {"PolicySummary": summary, "Content": content}}),
        json!({"name": name, "description": description, "type": kind, "content": content}),
        Some(json!({"policy": {"policySummary": summary}})),
    ))
}

async fn list_policies(ctx: &Ctx<'_>, input: &Input) -> Result<Handled, ApiError> {
    let filter = input.req("Filter")?;
    let org = ctx.managed(|_| "*".to_string()).await?;
    let policies = if filter == SCP_TYPE {
        ctx.state
            .store
            .list_scps(&org.organization_id)
            .await
            .map_err(|e| ApiError::internal(&e))?
    } else {
        Vec::new()
    };
    let list: Vec<Value> = policies.iter().map(|p| policy_summary(&org, p)).collect();
    Ok(ctx.reply(json!({"Policies": list}), json!({"filter": filter}), None))
}

async fn attach_or_detach(ctx: &Ctx<'_>, input: &Input) -> Result<Handled, ApiError> {
    let policy_id = input.req("PolicyId")?;
    let target = input.req("TargetId")?;
    let org = ctx.managed(|o| policy_arn(o, policy_id)).await?;
    let store = &ctx.state.store;
    let attach = ctx.operation == "AttachPolicy";
    let result = if attach {
        store.attach_scp(&org, policy_id, target).await
    } else {
        store.detach_scp(&org, policy_id, target).await
    };
    result.map_err(|e| match e {
        CenterError::NotFound(m) if m.contains("PolicyId") => bad("PolicyNotFoundException", m),
        CenterError::NotFound(m) => bad("TargetNotFoundException", m),
        CenterError::Conflict(m) if attach => bad("DuplicatePolicyAttachmentException", m),
        CenterError::Conflict(m) => bad("PolicyNotAttachedException", m),
        other => center_error(other, "InvalidInputException"),
    })?;
    Ok(ctx.reply(
        json!({}),
        json!({"policyId": policy_id, "targetId": target}),
        None,
    ))
}

async fn delete_policy(ctx: &Ctx<'_>, input: &Input) -> Result<Handled, ApiError> {
    let policy_id = input.req("PolicyId")?;
    let org = ctx.managed(|o| policy_arn(o, policy_id)).await?;
    ctx.state
        .store
        .delete_scp(&org.organization_id, policy_id)
        .await
        .map_err(|e| match e {
            CenterError::NotFound(m) => bad("PolicyNotFoundException", m),
            CenterError::Conflict(m) => bad("PolicyInUseException", m),
            other => center_error(other, "InvalidInputException"),
        })?;
    Ok(ctx.reply(json!({}), json!({"policyId": policy_id}), None))
}
