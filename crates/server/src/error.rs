//! Errors as the caller sees them: an HTTP status, AWS's error code and a
//! message, written in the protocol of the service that failed.

use http::StatusCode;

use crate::protocol::query::Fault;

/// An error to return to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// AWS's error code, e.g. `AccessDenied`.
    pub code: String,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// `400 ValidationError` (Query protocol's name for bad input).
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "ValidationError", message)
    }

    /// `400 InvalidAction`: an operation the service does not have.
    pub fn invalid_action(action: &str) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("Could not find operation {action}"),
        )
    }

    /// `500 InternalFailure`. The detail goes to the log, not to the caller.
    ///
    /// A database that cannot be reached or written (connections refused or
    /// cut, the pool's connect timeout, a full disk) is the service's
    /// passing trouble, not an unknown error: `503 ServiceUnavailable`,
    /// which clients retry, with a message that names nothing internal.
    pub fn internal<E: std::fmt::Display + std::any::Any>(detail: &E) -> ApiError {
        let any = detail as &dyn std::any::Any;
        let unavailable = any
            .downcast_ref::<crate::store::StoreError>()
            .is_some_and(crate::store::StoreError::is_unavailable)
            || any
                .downcast_ref::<sqlx::Error>()
                .is_some_and(crate::store::unavailable);
        if unavailable {
            tracing::warn!(error = %detail, "database unavailable");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The service cannot use its database at the moment; the request was not carried out. Try again shortly.",
            );
        }
        tracing::error!(error = %detail, "internal failure");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "The request processing has failed because of an unknown error.",
        )
    }

    /// Whether the caller (4xx) or the service (5xx) is at fault.
    pub fn fault(&self) -> Fault {
        if self.status.is_server_error() {
            Fault::Receiver
        } else {
            Fault::Sender
        }
    }
}
