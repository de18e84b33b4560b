//! The `seashell` command: `seashell serve` runs the server; `seashell admin`
//! administers a data directory directly.

mod admin;
mod image;
mod logging;
mod serve;

use clap::{Parser, Subcommand};

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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("seashell: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(255);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Admin(cmd) => admin::run(cmd).await,
            Command::Image(cmd) => image::run(cmd).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seashell: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
