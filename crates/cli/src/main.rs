//! The `seashell` command: `seashell serve` runs the server; `seashell admin`
//! administers a data directory directly; the client commands
//! (`cloudshell`, `connect`, `cp`, `configure`, `completion`) talk to a
//! server as the AWS CLI talks to AWS.

mod admin;
mod client;
mod image;
mod logging;
mod serve;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Seashell: a self-hosted cloud shell.
#[derive(Debug, Parser)]
#[command(name = "seashell", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the Seashell server.
    Serve(serve::ServeArgs),
    /// Administer a Seashell data directory directly (works with or without
    /// a running server).
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Build environment images.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Call the CloudShell API (one command per operation).
    Cloudshell(client::CloudshellArgs),
    /// Open a shell of your environment in this terminal (or run one
    /// command with --command).
    Connect(client::connect::ConnectArgs),
    /// Copy files between this machine and your environment
    /// (`seashell cp file :path`, `seashell cp :path file`).
    Cp(client::cp::CpArgs),
    /// Write a profile for Seashell (as `aws configure`); get, set and
    /// list its settings.
    Configure(client::configure::ConfigureArgs),
    /// Sign in to IAM Identity Center with a device code (`sso login`), or
    /// log out (`sso logout`), as the AWS CLI does.
    Sso(client::sso::SsoArgs),
    /// Print a shell completion script (bash, zsh, fish, …).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// The whole command tree: the derived commands plus the CloudShell
/// operations made from the service model.
fn command_tree() -> clap::Command {
    Cli::command().mut_subcommand("cloudshell", |c| {
        let ops = client::cloudshell::command();
        c.about(ops.get_about().cloned().unwrap_or_default())
            .subcommand_required(true)
            .arg_required_else_help(true)
            .subcommands(ops.get_subcommands().cloned())
    })
}

fn main() -> std::process::ExitCode {
    let argv = client::argv::hoist_global_options(std::env::args_os().collect());
    let matches = match command_tree().try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    std::process::ExitCode::SUCCESS
                }
                // Bad syntax or an unknown parameter, as the AWS CLI v2.
                _ => std::process::ExitCode::from(client::exit::USAGE),
            };
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return std::process::ExitCode::from(client::exit::USAGE);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("seashell: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(255);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Cloudshell(args) => {
                let ops = matches.subcommand_matches("cloudshell");
                let work = async {
                    match ops {
                        Some(m) => client::cloudshell::run(&args.global, m).await,
                        None => Err(client::CliError::usage("an operation is required")),
                    }
                };
                Ok(Some(client::finish(async { work.await.map(|()| 0) }).await))
            }
            Command::Connect(args) => Ok(Some(client::finish(client::connect::run(args)).await)),
            Command::Cp(args) => Ok(Some(client::finish(client::cp::run(args)).await)),
            Command::Configure(args) => {
                let work = async { client::configure::run(args).await.map(|()| 0) };
                Ok(Some(client::finish(work).await))
            }
            Command::Sso(args) => Ok(Some(client::finish(client::sso::run(args)).await)),
            Command::Completion { shell } => {
                let mut tree = command_tree();
                clap_complete::generate(shell, &mut tree, "seashell", &mut std::io::stdout());
                Ok(None)
            }
            Command::Serve(args) => serve::run(args).await.map(|()| None),
            Command::Admin(cmd) => admin::run(cmd).await.map(|()| None),
            Command::Image(cmd) => image::run(cmd).await.map(|()| None),
        }
    });
    match result {
        Ok(Some(code)) => code,
        Ok(None) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seashell: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
