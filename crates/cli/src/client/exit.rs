//! Exit codes as the AWS CLI documents them, and the error type that
//! carries one.

use std::fmt;

/// A transfer (cp) failed in part.
pub const PARTIAL: u8 = 1;
/// Interrupted by Ctrl-C.
pub const INTERRUPTED: u8 = 130;
/// Bad syntax, an unknown parameter or a bad parameter value.
pub const USAGE: u8 = 252;
/// Bad configuration: no credentials, no region, no endpoint, a missing
/// profile.
pub const CONFIG: u8 = 253;
/// The service answered with an error.
pub const SERVICE: u8 = 254;
/// Anything else (unreachable endpoint, local I/O, …).
pub const OTHER: u8 = 255;

/// A failure of a client command: the message printed on stderr and the
/// exit code.
#[derive(Debug)]
pub struct CliError {
    /// The exit code.
    pub code: u8,
    /// The text printed on stderr.
    pub message: String,
}

impl CliError {
    /// A bad-syntax or bad-parameter error (252).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            code: USAGE,
            message: message.into(),
        }
    }

    /// A configuration error (253).
    pub fn config(message: impl Into<String>) -> CliError {
        CliError {
            code: CONFIG,
            message: message.into(),
        }
    }

    /// Any other error (255).
    pub fn other(message: impl Into<String>) -> CliError {
        CliError {
            code: OTHER,
            message: message.into(),
        }
    }

    /// A partial failure (1).
    pub fn partial(message: impl Into<String>) -> CliError {
        CliError {
            code: PARTIAL,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl From<seashell_client::ApiError> for CliError {
    fn from(e: seashell_client::ApiError) -> CliError {
        use seashell_client::ApiError;
        let code = match &e {
            ApiError::Service { .. } => SERVICE,
            ApiError::Credentials(_) => CONFIG,
            _ => OTHER,
        };
        let message = match &e {
            ApiError::Credentials(why) => format!(
                "Unable to locate credentials. You can configure credentials by running \"seashell configure\". ({why})"
            ),
            _ => e.to_string(),
        };
        CliError { code, message }
    }
}

impl From<seashell_client::files::FileError> for CliError {
    fn from(e: seashell_client::files::FileError) -> CliError {
        match e {
            seashell_client::files::FileError::Api(e) => e.into(),
            other => CliError::partial(other.to_string()),
        }
    }
}

impl From<seashell_client::command::CommandError> for CliError {
    fn from(e: seashell_client::command::CommandError) -> CliError {
        match e {
            seashell_client::command::CommandError::Api(e) => e.into(),
            other => CliError::other(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seashell_client::ApiError;

    #[test]
    fn errors_map_to_the_aws_cli_exit_codes() {
        let service = ApiError::Service {
            operation: "DeleteEnvironment".into(),
            status: 404,
            code: "ResourceNotFoundException".into(),
            message: "gone".into(),
        };
        assert_eq!(CliError::from(service).code, 254);
        assert_eq!(
            CliError::from(ApiError::Credentials("none".into())).code,
            253
        );
        let connect = ApiError::Connect {
            url: "http://x".into(),
            reason: "refused".into(),
        };
        assert_eq!(CliError::from(connect).code, 255);
        assert_eq!(CliError::usage("x").code, 252);
        assert_eq!(CliError::config("x").code, 253);
    }
}
