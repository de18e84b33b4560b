//! The services, one module each.

pub mod cloudshell;
pub mod cloudtrail;
pub mod iam;
pub mod identitystore;
mod json_api;
pub mod organizations;
pub mod sso_admin;
pub mod sso_oidc;
pub mod sso_portal;
pub mod sts;

use serde_json::Value;

/// What a handled operation gives back: the reply body and what the audit
/// record says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    /// The reply body, in the service's protocol.
    pub body: String,
    /// Whether the operation only reads.
    pub read_only: bool,
    /// `requestParameters` of the audit record.
    pub request_parameters: Option<Value>,
    /// `responseElements` of the audit record.
    pub response_elements: Option<Value>,
}
