//! The client commands of `seashell`: the CloudShell API (`cloudshell`),
//! `connect`, `cp`, `configure`, `sso` and `completion`, with the AWS CLI's
//! conventions for configuration, output and exit codes.

pub mod archive;
pub mod argv;
pub mod cloudshell;
pub mod configure;
pub mod connect;
pub mod context;
pub mod cp;
pub mod environment;
pub mod exit;
pub mod ini;
pub mod model;
pub mod output;
pub mod query;
pub mod settings;
pub mod sso;
pub mod timestamps;

use clap::Args;

pub use exit::CliError;
pub use settings::GlobalArgs;

/// `seashell cloudshell …`.
#[derive(Debug, Args)]
pub struct CloudshellArgs {
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Runs a client command future, turning Ctrl-C into exit code 130 and an
/// error into its message on stderr and its exit code.
pub async fn finish(
    work: impl std::future::Future<Output = Result<u8, CliError>>,
) -> std::process::ExitCode {
    let result = tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => Err(CliError { code: exit::INTERRUPTED, message: String::new() }),
    };
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            if !e.message.is_empty() {
                eprintln!("\n{}", e.message);
            }
            std::process::ExitCode::from(e.code)
        }
    }
}
