//! Each CloudShell operation: its request, authorization and reply.

use seashell_policy::Context;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{decode, environment_arn, reply, Origin};
use crate::authz::{self, RequestInfo};
use crate::caller::Caller;
use crate::envs::VpcConfig;
use crate::envs::{status, validation};
use crate::error::ApiError;
use crate::services::Handled;
use crate::state::AppState;

/// The operations, by their URL path (`/cloudshell/<lowerCamelName>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // Each is the API operation of the same name.
pub enum Operation {
    CreateEnvironment,
    DescribeEnvironments,
    GetEnvironmentStatus,
    StartEnvironment,
    StopEnvironment,
    DeleteEnvironment,
    CreateSession,
    ResumeSession,
    DeleteSession,
    SendHeartBeat,
    GetLayout,
    UpdateLayout,
    PutCredentials,
    GetFileUploadUrls,
    GetFileDownloadUrls,
    ApproveCommand,
}

const ALL: &[Operation] = &[
    Operation::CreateEnvironment,
    Operation::DescribeEnvironments,
    Operation::GetEnvironmentStatus,
    Operation::StartEnvironment,
    Operation::StopEnvironment,
    Operation::DeleteEnvironment,
    Operation::CreateSession,
    Operation::ResumeSession,
    Operation::DeleteSession,
    Operation::SendHeartBeat,
    Operation::GetLayout,
    Operation::UpdateLayout,
    Operation::PutCredentials,
    Operation::GetFileUploadUrls,
    Operation::GetFileDownloadUrls,
    Operation::ApproveCommand,
];

impl Operation {
    /// The operation named by a request path's last segment.
    pub fn from_path(name: &str) -> Option<Operation> {
        ALL.iter().copied().find(|op| op.path() == name)
    }

    /// The PascalCase name: the audit record's `eventName`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateEnvironment => "CreateEnvironment",
            Operation::DescribeEnvironments => "DescribeEnvironments",
            Operation::GetEnvironmentStatus => "GetEnvironmentStatus",
            Operation::StartEnvironment => "StartEnvironment",
            Operation::StopEnvironment => "StopEnvironment",
            Operation::DeleteEnvironment => "DeleteEnvironment",
            Operation::CreateSession => "CreateSession",
            Operation::ResumeSession => "ResumeSession",
            Operation::DeleteSession => "DeleteSession",
            Operation::SendHeartBeat => "SendHeartBeat",
            Operation::GetLayout => "GetLayout",
            Operation::UpdateLayout => "UpdateLayout",
            Operation::PutCredentials => "PutCredentials",
            Operation::GetFileUploadUrls => "GetFileUploadUrls",
            Operation::GetFileDownloadUrls => "GetFileDownloadUrls",
            Operation::ApproveCommand => "ApproveCommand",
        }
    }

    /// The lowerCamel name: the URL path.
    pub fn path(self) -> String {
        let name = self.name();
        let mut chars = name.chars();
        match chars.next() {
            Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
            None => String::new(),
        }
    }

    /// The IAM action that authorizes it. Operations the Service
    /// Authorization Reference does not list (resuming, ending and keeping
    /// alive a session, the console's layout) belong to whoever may open
    /// sessions, so they are authorized as `CreateSession`.
    pub fn action(self) -> &'static str {
        match self {
            Operation::ResumeSession
            | Operation::DeleteSession
            | Operation::SendHeartBeat
            | Operation::GetLayout
            | Operation::UpdateLayout => "cloudshell:CreateSession",
            Operation::CreateEnvironment => "cloudshell:CreateEnvironment",
            Operation::DescribeEnvironments => "cloudshell:DescribeEnvironments",
            Operation::GetEnvironmentStatus => "cloudshell:GetEnvironmentStatus",
            Operation::StartEnvironment => "cloudshell:StartEnvironment",
            Operation::StopEnvironment => "cloudshell:StopEnvironment",
            Operation::DeleteEnvironment => "cloudshell:DeleteEnvironment",
            Operation::CreateSession => "cloudshell:CreateSession",
            Operation::PutCredentials => "cloudshell:PutCredentials",
            Operation::GetFileUploadUrls => "cloudshell:GetFileUploadUrls",
            Operation::GetFileDownloadUrls => "cloudshell:GetFileDownloadUrls",
            Operation::ApproveCommand => "cloudshell:ApproveCommand",
        }
    }

    /// Whether CloudTrail counts it as read-only.
    pub fn read_only(self) -> bool {
        matches!(
            self,
            Operation::DescribeEnvironments
                | Operation::GetEnvironmentStatus
                | Operation::GetLayout
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateEnvironmentRequest {
    #[serde(default)]
    environment_name: Option<String>,
    #[serde(default)]
    vpc_config: Option<VpcConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EnvironmentRequest {
    environment_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateSessionRequest {
    environment_id: String,
    #[serde(default)]
    tab_id: Option<String>,
    #[serde(default)]
    shell: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SessionRequest {
    environment_id: String,
    session_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateLayoutRequest {
    environment_id: String,
    layout: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ApproveCommandRequest {
    environment_id: String,
    command: String,
}

/// The largest layout kept (the console's tabs and panes as JSON).
const MAX_LAYOUT: usize = 64 * 1024;

fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=28).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(validation(
            "EnvironmentName must be 1 to 28 letters, digits, '-' and '_'.",
        ))
    }
}

fn check_vpc(vpc: &VpcConfig) -> Result<(), ApiError> {
    let id_ok = |id: &str, prefix: &str| {
        id.strip_prefix(prefix).is_some_and(|rest| {
            !rest.is_empty() && rest.len() <= 17 && rest.bytes().all(|b| b.is_ascii_hexdigit())
        })
    };
    if !id_ok(&vpc.vpc_id, "vpc-") {
        return Err(validation(format!(
            "VpcId {:?} is not a VPC id (vpc-…).",
            vpc.vpc_id
        )));
    }
    if vpc.subnet_ids.is_empty() || vpc.subnet_ids.len() > 16 {
        return Err(validation("VpcConfig needs 1 to 16 SubnetIds."));
    }
    if vpc.security_group_ids.is_empty() || vpc.security_group_ids.len() > 5 {
        return Err(validation("VpcConfig needs 1 to 5 SecurityGroupIds."));
    }
    for s in &vpc.subnet_ids {
        if !id_ok(s, "subnet-") {
            return Err(validation(format!("{s:?} is not a subnet id (subnet-…).")));
        }
    }
    for g in &vpc.security_group_ids {
        if !id_ok(g, "sg-") {
            return Err(validation(format!(
                "{g:?} is not a security group id (sg-…)."
            )));
        }
    }
    Ok(())
}

/// Runs `operation` for `caller`.
pub(super) async fn run(
    state: &AppState,
    caller: &Caller,
    info: &RequestInfo,
    operation: Operation,
    body: &[u8],
    origin: Origin<'_>,
) -> Result<Handled, ApiError> {
    let envs = &state.envs;
    let region = info.region.as_str();
    let account = caller.account_id.as_str();
    let authorize = |resource: String, keys: Context| async move {
        authz::authorize_in(
            &state.store,
            caller,
            info,
            operation.action(),
            &resource,
            &keys,
        )
        .await
    };
    let env_arn = |id: &str| environment_arn(region, account, id);
    match operation {
        Operation::CreateEnvironment => {
            let req: CreateEnvironmentRequest = decode(body)?;
            if let Some(name) = &req.environment_name {
                check_name(name)?;
            }
            let mut keys = Context::new();
            if let Some(vpc) = &req.vpc_config {
                check_vpc(vpc)?;
                keys.insert_multi("cloudshell:VpcIds", [vpc.vpc_id.clone()]);
                keys.insert_multi("cloudshell:SubnetIds", vpc.subnet_ids.iter().cloned());
                keys.insert_multi(
                    "cloudshell:SecurityGroupIds",
                    vpc.security_group_ids.iter().cloned(),
                );
            } else if req.environment_name.is_some() {
                return Err(validation(
                    "EnvironmentName names VPC environments; give VpcConfig with it.",
                ));
            }
            authorize(env_arn("*"), keys).await?;
            let env = envs
                .create(
                    caller,
                    region,
                    req.environment_name.as_deref(),
                    req.vpc_config.as_ref(),
                )
                .await?;
            let mut params = json!({});
            if let Some(name) = &req.environment_name {
                params["EnvironmentName"] = json!(name);
            }
            if let Some(vpc) = &req.vpc_config {
                params["VpcConfig"] = json!(vpc);
            }
            let response = json!({"EnvironmentId": env.environment_id, "Status": env.status});
            params["EnvironmentId"] = json!(env.environment_id);
            Ok(reply(
                operation,
                response.clone(),
                Some(params),
                Some(response),
            ))
        }
        Operation::DescribeEnvironments => {
            let _: Value = decode(body)?;
            authorize(env_arn("*"), Context::new()).await?;
            let list = envs.list(caller, region).await?;
            let environments: Vec<Value> = list
                .iter()
                .map(|e| {
                    let mut v = json!({"EnvironmentId": e.environment_id, "Status": e.status});
                    if !e.name.is_empty() {
                        v["EnvironmentName"] = json!(e.name);
                    }
                    if let Some(vpc) = e
                        .vpc_config
                        .as_deref()
                        .and_then(|s| serde_json::from_str::<Value>(s).ok())
                    {
                        v["VpcConfig"] = vpc;
                    }
                    v
                })
                .collect();
            Ok(reply(
                operation,
                json!({"Environments": environments}),
                None,
                None,
            ))
        }
        Operation::GetEnvironmentStatus
        | Operation::StartEnvironment
        | Operation::StopEnvironment
        | Operation::DeleteEnvironment
        | Operation::SendHeartBeat
        | Operation::GetLayout
        | Operation::PutCredentials => {
            let req: EnvironmentRequest = decode(body)?;
            let id = req.environment_id.as_str();
            authorize(env_arn(id), Context::new()).await?;
            let params = Some(json!({"EnvironmentId": id}));
            let response = match operation {
                Operation::GetEnvironmentStatus => {
                    let env = envs.owned(caller, id).await?;
                    let mut v = json!({"EnvironmentId": id, "Status": env.status});
                    let reason = env.status_reason.or_else(|| {
                        (env.status == status::CREATING || env.status == status::RESUMING)
                            .then(|| envs.unavailable_reason())
                            .flatten()
                    });
                    if let Some(reason) = reason {
                        v["StatusReason"] = json!(reason);
                    }
                    v
                }
                Operation::StartEnvironment => json!({"Status": envs.start(caller, id).await?}),
                Operation::StopEnvironment => json!({"Status": envs.stop(caller, id).await?}),
                Operation::DeleteEnvironment => json!({"Status": envs.delete(caller, id).await?}),
                Operation::SendHeartBeat => {
                    envs.heartbeat(caller, id).await?;
                    json!({})
                }
                Operation::GetLayout => {
                    let env = envs.owned(caller, id).await?;
                    json!({"Layout": env.layout.unwrap_or_default()})
                }
                _ => {
                    envs.put_credentials(caller, id, origin.console_session)
                        .await?;
                    json!({})
                }
            };
            let elements = match operation {
                Operation::GetLayout => None,
                _ => Some(response.clone()),
            };
            Ok(reply(operation, response, params, elements))
        }
        Operation::CreateSession => {
            let req: CreateSessionRequest = decode(body)?;
            let id = req.environment_id.as_str();
            authorize(env_arn(id), Context::new()).await?;
            let tab = req
                .tab_id
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let created = envs
                .create_session(caller, id, &tab, req.shell.as_deref())
                .await?;
            let params = json!({"EnvironmentId": id, "TabId": tab, "Shell": req.shell});
            Ok(reply(
                operation,
                json!({"SessionId": created.session_id, "TokenValue": created.token, "StreamUrl": created.stream_url}),
                Some(params),
                // The token opens a shell: it never goes into the record.
                Some(json!({"SessionId": created.session_id, "StreamUrl": created.stream_url})),
            ))
        }
        Operation::ResumeSession | Operation::DeleteSession => {
            let req: SessionRequest = decode(body)?;
            let id = req.environment_id.as_str();
            authorize(env_arn(id), Context::new()).await?;
            let params = Some(json!({"EnvironmentId": id, "SessionId": req.session_id}));
            if operation == Operation::DeleteSession {
                envs.delete_session(caller, id, &req.session_id).await?;
                return Ok(reply(operation, json!({}), params, None));
            }
            let created = envs.resume_session(caller, id, &req.session_id).await?;
            Ok(reply(
                operation,
                json!({"SessionId": created.session_id, "TokenValue": created.token, "StreamUrl": created.stream_url}),
                params,
                Some(json!({"SessionId": created.session_id, "StreamUrl": created.stream_url})),
            ))
        }
        Operation::UpdateLayout => {
            let req: UpdateLayoutRequest = decode(body)?;
            let id = req.environment_id.as_str();
            if req.layout.len() > MAX_LAYOUT {
                return Err(validation(format!(
                    "Layout is longer than {MAX_LAYOUT} bytes."
                )));
            }
            authorize(env_arn(id), Context::new()).await?;
            envs.owned(caller, id).await?;
            state
                .store
                .set_layout(id, &req.layout)
                .await
                .map_err(|e| ApiError::internal(&e))?;
            Ok(reply(
                operation,
                json!({}),
                Some(json!({"EnvironmentId": id})),
                None,
            ))
        }
        Operation::GetFileUploadUrls | Operation::GetFileDownloadUrls => {
            super::files::presign(state, caller, info, operation, body).await
        }
        Operation::ApproveCommand => {
            let req: ApproveCommandRequest = decode(body)?;
            let id = req.environment_id.as_str();
            authorize(env_arn(id), Context::new()).await?;
            envs.approve_command(caller, id, &req.command).await?;
            // The command itself is never recorded: it may hold secrets.
            let params = json!({"EnvironmentId": id, "CommandLength": req.command.len()});
            Ok(reply(operation, json!({}), Some(params), None))
        }
    }
}
