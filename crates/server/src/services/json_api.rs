//! Helpers the JSON 1.1 services share: reading request members, building
//! errors in the services' codes and the [`Handled`] reply.

use http::StatusCode;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::services::Handled;

/// A 400 error with the given code.
pub(crate) fn bad(code: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// The request body as a JSON object (an empty body is `{}`).
pub(crate) fn body_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(bad(
            "SerializationException",
            "The request body is not a JSON object.",
        )),
    }
}

/// A request's members, with the service's name for invalid input.
pub(crate) struct Input {
    pub(crate) members: Map<String, Value>,
    /// `ValidationException`, or Organizations' `InvalidInputException`.
    invalid: &'static str,
}

impl Input {
    pub(crate) fn new(body: &[u8], invalid: &'static str) -> Result<Input, ApiError> {
        Ok(Input {
            members: body_object(body)?,
            invalid,
        })
    }

    /// An error in the service's code for invalid input.
    pub(crate) fn invalid(&self, message: impl Into<String>) -> ApiError {
        bad(self.invalid, message)
    }

    /// An optional string member.
    pub(crate) fn opt(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.members.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(self.invalid(format!("{name} must be a string."))),
        }
    }

    /// A required, non-empty string member.
    pub(crate) fn req(&self, name: &str) -> Result<&str, ApiError> {
        match self.opt(name)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(self.invalid(format!(
                "1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"
            ))),
        }
    }

    /// A member of any JSON type.
    pub(crate) fn value(&self, name: &str) -> Option<&Value> {
        self.members.get(name).filter(|v| !v.is_null())
    }
}

/// Milliseconds since the epoch as a JSON 1.1 timestamp (epoch seconds).
pub(crate) fn timestamp(ms: i64) -> Value {
    serde_json::json!(ms as f64 / 1000.0)
}

/// The reply of an operation, with what its audit record says.
pub(crate) fn handled(
    body: Value,
    read_only: bool,
    request_parameters: Value,
    response_elements: Option<Value>,
) -> Handled {
    Handled {
        body: body.to_string(),
        read_only,
        request_parameters: Some(request_parameters),
        response_elements,
    }
}

/// Whether an operation only reads, by its name.
pub(crate) fn read_only(operation: &str) -> bool {
    ["List", "Describe", "Get"]
        .iter()
        .any(|p| operation.starts_with(p))
}

/// `UnknownOperationException` for an operation the service lacks.
pub(crate) fn unknown_operation(operation: &str) -> ApiError {
    bad(
        "UnknownOperationException",
        format!("Unknown operation {operation}"),
    )
}
