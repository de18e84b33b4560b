//! The CloudShell service's errors, by the names botocore's REST-JSON
//! parsing turns into exceptions (`docs/cloudshell/README.md`).

use http::StatusCode;

use crate::error::ApiError;

/// `400 ValidationException`: the request is malformed.
pub fn validation(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "ValidationException", message)
}

/// `404 ResourceNotFoundException`: no such environment (or not the
/// caller's).
pub fn not_found(environment_id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        format!("Environment {environment_id} was not found."),
    )
}

/// `409 ConflictException`: not allowed in the environment's current state.
pub fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "ConflictException", message)
}

/// `402 ServiceQuotaExceededException`: a quota is used up.
pub fn quota_exceeded(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::PAYMENT_REQUIRED,
        "ServiceQuotaExceededException",
        message,
    )
}

/// `503 ServiceUnavailableException`: environments cannot run here now.
pub fn unavailable(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailableException",
        message,
    )
}

/// What a caller is told of a failure on the host. The details (host
/// paths, command output, the runtime's words) are for the administrator:
/// they go to the server's log under an incident number that the message
/// names, so a user can report it and the administrator can find it.
pub fn host_failure(what: &str, detail: &dyn std::fmt::Display) -> String {
    let incident = uuid::Uuid::new_v4().simple().to_string();
    let incident = &incident[..12];
    tracing::warn!(incident, detail = %detail, "{what}");
    format!("{what} (incident {incident}; the server's log has the details)")
}
