//! STS (`/sts/`, Query protocol, version 2011-06-15).

use crate::caller::Caller;
use crate::error::ApiError;
use crate::protocol::query::{reply, QueryRequest};
use crate::services::Handled;

/// The XML namespace of STS replies.
pub const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// The API version.
pub const VERSION: &str = "2011-06-15";
/// The CloudTrail event source.
pub const EVENT_SOURCE: &str = "sts.amazonaws.com";

/// Handles one STS operation for an authenticated caller.
pub fn handle(caller: &Caller, req: &QueryRequest, request_id: &str) -> Result<Handled, ApiError> {
    match req.action.as_str() {
        // Needs no permission, as in AWS: anyone may ask who they are.
        "GetCallerIdentity" => Ok(Handled {
            body: reply("GetCallerIdentity", XMLNS, request_id, |w| {
                w.element("Arn", &caller.arn)
                    .element("UserId", &caller.principal_id)
                    .element("Account", &caller.account_id);
            }),
            read_only: true,
            request_parameters: None,
            response_elements: None,
        }),
        other => Err(ApiError::invalid_action(other)),
    }
}
