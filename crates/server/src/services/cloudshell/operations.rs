//! Each CloudShell operation: its request, authorization and reply.

use seashell_policy::Context;
use serde_json::{json, Value};

use super::input::{parse, Input};
use super::{environment_arn, reply, Origin};
use crate::authz::{self, RequestInfo};
use crate::caller::Caller;
use crate::envs::status;
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
    /// Every operation, in the model's order.
    pub fn all() -> &'static [Operation] {
        ALL
    }

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
    match parse(operation, body)? {
        Input::CreateEnvironment { name, vpc } => {
            let mut keys = Context::new();
            if let Some(vpc) = &vpc {
                keys.insert_multi("cloudshell:VpcIds", [vpc.vpc_id.clone()]);
                keys.insert_multi("cloudshell:SubnetIds", vpc.subnet_ids.iter().cloned());
                keys.insert_multi(
                    "cloudshell:SecurityGroupIds",
                    vpc.security_group_ids.iter().cloned(),
                );
            }
            authorize(env_arn("*"), keys).await?;
            let env = envs
                .create(caller, region, name.as_deref(), vpc.as_ref())
                .await?;
            let mut params = json!({});
            if let Some(name) = &name {
                params["EnvironmentName"] = json!(name);
            }
            if let Some(vpc) = &vpc {
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
        Input::DescribeEnvironments => {
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
        Input::Environment { environment_id } => {
            let id = environment_id.as_str();
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
        Input::CreateSession {
            environment_id,
            tab_id,
            shell,
        } => {
            let id = environment_id.as_str();
            authorize(env_arn(id), Context::new()).await?;
            let tab = tab_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let created = envs
                .create_session(caller, id, &tab, shell.as_deref())
                .await?;
            let params = json!({"EnvironmentId": id, "TabId": tab, "Shell": shell});
            Ok(reply(
                operation,
                json!({"SessionId": created.session_id, "TokenValue": created.token, "StreamUrl": created.stream_url}),
                Some(params),
                // The token opens a shell: it never goes into the record.
                Some(json!({"SessionId": created.session_id, "StreamUrl": created.stream_url})),
            ))
        }
        Input::Session {
            environment_id,
            session_id,
        } => {
            let id = environment_id.as_str();
            authorize(env_arn(id), Context::new()).await?;
            let params = Some(json!({"EnvironmentId": id, "SessionId": session_id}));
            if operation == Operation::DeleteSession {
                envs.delete_session(caller, id, &session_id).await?;
                return Ok(reply(operation, json!({}), params, None));
            }
            let created = envs.resume_session(caller, id, &session_id).await?;
            Ok(reply(
                operation,
                json!({"SessionId": created.session_id, "TokenValue": created.token, "StreamUrl": created.stream_url}),
                params,
                Some(json!({"SessionId": created.session_id, "StreamUrl": created.stream_url})),
            ))
        }
        Input::UpdateLayout {
            environment_id,
            layout,
        } => {
            let id = environment_id.as_str();
            authorize(env_arn(id), Context::new()).await?;
            envs.owned(caller, id).await?;
            state
                .store
                .set_layout(id, &layout)
                .await
                .map_err(|e| ApiError::internal(&e))?;
            Ok(reply(
                operation,
                json!({}),
                Some(json!({"EnvironmentId": id})),
                None,
            ))
        }
        Input::FileTransfer {
            environment_id,
            path,
            relative,
        } => {
            let transfer = super::files::Transfer {
                environment_id: &environment_id,
                path: &path,
                relative: &relative,
            };
            super::files::presign(state, caller, info, operation, transfer).await
        }
        Input::ApproveCommand {
            environment_id,
            command,
        } => {
            let id = environment_id.as_str();
            authorize(env_arn(id), Context::new()).await?;
            envs.approve_command(caller, id, &command).await?;
            // The command itself is never recorded: it may hold secrets.
            let params = json!({"EnvironmentId": id, "CommandLength": command.len()});
            Ok(reply(operation, json!({}), Some(params), None))
        }
    }
}
