//! The caller's public environment, created and started when needed, as
//! the console does before it opens a shell.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::exit::CliError;
use seashell_client::CloudShell;

/// How long an environment may take to become RUNNING.
const START_PATIENCE: Duration = Duration::from_secs(180);

/// The id of the caller's public environment in the region, RUNNING.
pub async fn running(api: &CloudShell) -> Result<String, CliError> {
    let listed = api.call("describeEnvironments", &json!({})).await?;
    let public = listed
        .get("Environments")
        .and_then(Value::as_array)
        .and_then(|envs| envs.iter().find(|e| e.get("EnvironmentName").is_none()))
        .and_then(|e| e.get("EnvironmentId"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let id = match public {
        Some(id) => id,
        None => {
            let created = api.call("createEnvironment", &json!({})).await?;
            created
                .get("EnvironmentId")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| {
                    CliError::other("createEnvironment answered without an EnvironmentId")
                })?
        }
    };
    let deadline = Instant::now() + START_PATIENCE;
    let mut started = false;
    loop {
        let status = api
            .call("getEnvironmentStatus", &json!({"EnvironmentId": id}))
            .await?;
        match status
            .get("Status")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "RUNNING" => return Ok(id),
            "SUSPENDED" if !started => {
                started = true;
                api.call("startEnvironment", &json!({"EnvironmentId": id}))
                    .await?;
            }
            "SUSPENDED" => {
                let reason = status
                    .get("StatusReason")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given");
                return Err(CliError::other(format!(
                    "The environment {id} could not start: {reason}"
                )));
            }
            "DELETING" => {
                return Err(CliError::other(format!(
                    "The environment {id} is being deleted"
                )))
            }
            _ => {}
        }
        if Instant::now() > deadline {
            return Err(CliError::other(format!(
                "The environment {id} did not start within {} s",
                START_PATIENCE.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
