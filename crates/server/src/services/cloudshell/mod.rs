//! The CloudShell API (DESIGN §2): REST-JSON operations under
//! `/cloudshell/`, each authorized with its `cloudshell:` action and
//! recorded with its PascalCase event name. The work is done by
//! [`crate::envs::Environments`]; this module decodes, authorizes and
//! shapes replies.

pub mod files;
pub mod input;
pub mod model;
pub mod openapi;
mod operations;

use serde_json::Value;

use crate::authz::RequestInfo;
use crate::caller::Caller;
use crate::error::ApiError;
use crate::services::Handled;
use crate::state::AppState;

pub use operations::Operation;

/// `eventSource` of CloudShell records.
pub const EVENT_SOURCE: &str = "cloudshell.amazonaws.com";

/// Where a request came from, beyond its caller.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The console session (token hash) for console requests.
    pub console_session: Option<&'a str>,
}

/// Runs one operation.
pub async fn handle(
    state: &AppState,
    caller: &Caller,
    info: &RequestInfo,
    operation: Operation,
    body: &[u8],
    origin: Origin<'_>,
) -> Result<Handled, ApiError> {
    operations::run(state, caller, info, operation, body, origin).await
}

/// A successful reply: its JSON and the audit record's parts.
fn reply(
    operation: Operation,
    response: Value,
    request_parameters: Option<Value>,
    response_elements: Option<Value>,
) -> Handled {
    Handled {
        body: response.to_string(),
        read_only: operation.read_only(),
        request_parameters,
        response_elements,
    }
}

/// The ARN of an environment (or of all of a region's, `*`).
pub fn environment_arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:cloudshell:{region}:{account}:environment/{id}")
}
