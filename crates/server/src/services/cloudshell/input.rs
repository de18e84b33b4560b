//! Each operation's request body, decoded and checked before anything is
//! authorized or done. The handlers and the `cloudshell_input` fuzz target
//! go through the same [`parse`], so what the fuzzer proves holds for the
//! service.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::files::home_relative;
use super::Operation;
use crate::envs::{validation, VpcConfig};
use crate::error::ApiError;

/// The largest layout kept (the console's tabs and panes as JSON).
pub const MAX_LAYOUT: usize = 64 * 1024;

/// A request body that decoded and passed the checks that need no state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// `CreateEnvironment`: a name only together with a VPC.
    CreateEnvironment {
        /// `EnvironmentName`, checked.
        name: Option<String>,
        /// `VpcConfig`, checked.
        vpc: Option<VpcConfig>,
    },
    /// `DescribeEnvironments` (any JSON object or nothing).
    DescribeEnvironments,
    /// The operations that name only an environment.
    Environment {
        /// `EnvironmentId`.
        environment_id: String,
    },
    /// `CreateSession`.
    CreateSession {
        /// `EnvironmentId`.
        environment_id: String,
        /// `TabId`, if given.
        tab_id: Option<String>,
        /// `Shell`, if given (checked by the environment).
        shell: Option<String>,
    },
    /// `ResumeSession` and `DeleteSession`.
    Session {
        /// `EnvironmentId`.
        environment_id: String,
        /// `SessionId`.
        session_id: String,
    },
    /// `UpdateLayout`, at most [`MAX_LAYOUT`] bytes.
    UpdateLayout {
        /// `EnvironmentId`.
        environment_id: String,
        /// `Layout`.
        layout: String,
    },
    /// `GetFileUploadUrls` and `GetFileDownloadUrls`.
    FileTransfer {
        /// `EnvironmentId`.
        environment_id: String,
        /// The path as given, for the audit record.
        path: String,
        /// The same path relative to the home directory.
        relative: String,
    },
    /// `ApproveCommand`.
    ApproveCommand {
        /// `EnvironmentId`.
        environment_id: String,
        /// The command, never recorded.
        command: String,
    },
}

/// Decodes and checks `operation`'s body.
pub fn parse(operation: Operation, body: &[u8]) -> Result<Input, ApiError> {
    use Operation::*;
    Ok(match operation {
        CreateEnvironment => {
            let req: CreateEnvironmentRequest = decode(body)?;
            if let Some(name) = &req.environment_name {
                check_name(name)?;
            }
            match &req.vpc_config {
                Some(vpc) => check_vpc(vpc)?,
                None if req.environment_name.is_some() => {
                    return Err(validation(
                        "EnvironmentName names VPC environments; give VpcConfig with it.",
                    ))
                }
                None => {}
            }
            Input::CreateEnvironment {
                name: req.environment_name,
                vpc: req.vpc_config,
            }
        }
        DescribeEnvironments => {
            let _: serde_json::Map<String, serde_json::Value> = decode(body)?;
            Input::DescribeEnvironments
        }
        GetEnvironmentStatus | StartEnvironment | StopEnvironment | DeleteEnvironment
        | SendHeartBeat | GetLayout | PutCredentials => {
            let req: EnvironmentRequest = decode(body)?;
            Input::Environment {
                environment_id: req.environment_id,
            }
        }
        CreateSession => {
            let req: CreateSessionRequest = decode(body)?;
            Input::CreateSession {
                environment_id: req.environment_id,
                tab_id: req.tab_id,
                shell: req.shell,
            }
        }
        ResumeSession | DeleteSession => {
            let req: SessionRequest = decode(body)?;
            Input::Session {
                environment_id: req.environment_id,
                session_id: req.session_id,
            }
        }
        UpdateLayout => {
            let req: UpdateLayoutRequest = decode(body)?;
            if req.layout.len() > MAX_LAYOUT {
                return Err(validation(format!(
                    "Layout is longer than {MAX_LAYOUT} bytes."
                )));
            }
            Input::UpdateLayout {
                environment_id: req.environment_id,
                layout: req.layout,
            }
        }
        GetFileUploadUrls | GetFileDownloadUrls => {
            let req: PresignRequest = decode(body)?;
            let (member, path) = if operation == GetFileUploadUrls {
                ("FileUploadPath", req.file_upload_path)
            } else {
                ("FileDownloadPath", req.file_download_path)
            };
            let path = path.ok_or_else(|| validation(format!("{member} is required.")))?;
            let relative = home_relative(&path)?;
            Input::FileTransfer {
                environment_id: req.environment_id,
                path,
                relative,
            }
        }
        ApproveCommand => {
            let req: ApproveCommandRequest = decode(body)?;
            Input::ApproveCommand {
                environment_id: req.environment_id,
                command: req.command,
            }
        }
    })
}

/// Decodes a request body; an empty body is `{}`.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| validation(format!("The request body is not valid: {e}")))
}

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

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PresignRequest {
    environment_id: String,
    #[serde(default)]
    file_upload_path: Option<String>,
    #[serde(default)]
    file_download_path: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_decode_into_checked_inputs() {
        assert_eq!(
            parse(Operation::DescribeEnvironments, b" ").expect("an empty body is {}"),
            Input::DescribeEnvironments
        );
        assert!(parse(Operation::DescribeEnvironments, b"[]").is_err());
        let vpc = br#"{"EnvironmentName":"dev_1","VpcConfig":{"VpcId":"vpc-0a","SubnetIds":["subnet-1"],"SecurityGroupIds":["sg-2"]}}"#;
        assert!(matches!(
            parse(Operation::CreateEnvironment, vpc).expect("a VPC environment"),
            Input::CreateEnvironment { name: Some(n), vpc: Some(_) } if n == "dev_1"
        ));
        for bad in [
            &br#"{"EnvironmentName":"dev"}"#[..],
            br#"{"EnvironmentName":"a b","VpcConfig":{"VpcId":"vpc-0a","SubnetIds":["subnet-1"],"SecurityGroupIds":["sg-2"]}}"#,
            br#"{"VpcConfig":{"VpcId":"vpc-xyz","SubnetIds":["subnet-1"],"SecurityGroupIds":["sg-2"]}}"#,
            br#"{"VpcConfig":{"VpcId":"vpc-0a","SubnetIds":[],"SecurityGroupIds":["sg-2"]}}"#,
        ] {
            assert!(parse(Operation::CreateEnvironment, bad).is_err());
        }
        let long = format!(
            r#"{{"EnvironmentId":"e","Layout":"{}"}}"#,
            "x".repeat(MAX_LAYOUT + 1)
        );
        assert!(parse(Operation::UpdateLayout, long.as_bytes()).is_err());
        assert_eq!(
            parse(
                Operation::GetFileDownloadUrls,
                br#"{"EnvironmentId":"e","FileDownloadPath":"/home/cloudshell-user/a/b.txt"}"#
            )
            .expect("a path in home"),
            Input::FileTransfer {
                environment_id: "e".into(),
                path: "/home/cloudshell-user/a/b.txt".into(),
                relative: "a/b.txt".into(),
            }
        );
        // The upload path is required for an upload, whatever else is given.
        assert!(parse(
            Operation::GetFileUploadUrls,
            br#"{"EnvironmentId":"e","FileDownloadPath":"a"}"#
        )
        .is_err());
        assert!(parse(
            Operation::GetFileUploadUrls,
            br#"{"EnvironmentId":"e","FileUploadPath":"../etc/passwd"}"#
        )
        .is_err());
    }
}
