//! `seashell serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use seashell_server::{Config, LogFormat, Overrides};

/// Runs the server. Settings come from built-in defaults, then the TOML file
/// given with --config, then SEASHELL_* environment variables, then flags.
/// The defaults suit a single machine: listen on 127.0.0.1:8080, SQLite in
/// the data directory, regions us-east-1 and eu-west-1.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file (keys as the long flags, with underscores:
    /// listen, data_dir, database_url, public_url, log_format, tls_cert,
    /// tls_key, regions, max_body_bytes, and a [cloudshell] section for
    /// environments: see docs/cloudshell.md).
    #[arg(long, env = "SEASHELL_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "SEASHELL_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory: database, audit trail, first administrator's one-time
    /// password [default: /var/lib/seashell for root, else
    /// $XDG_DATA_HOME/seashell or ~/.local/share/seashell].
    #[arg(long, env = "SEASHELL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Keep state in PostgreSQL (postgres://user:password@host/db) instead
    /// of the SQLite file in the data directory.
    #[arg(long, env = "SEASHELL_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The URL people use to reach the console [default: from --listen].
    #[arg(long, env = "SEASHELL_PUBLIC_URL")]
    public_url: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "SEASHELL_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, env = "SEASHELL_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "SEASHELL_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Regions served, comma-separated [default: us-east-1,eu-west-1].
    #[arg(long, env = "SEASHELL_REGIONS", value_delimiter = ',')]
    regions: Option<Vec<String>>,
}

impl ServeArgs {
    /// The configuration these arguments describe.
    pub fn config(&self) -> anyhow::Result<Config> {
        let overrides = Overrides {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            database_url: self.database_url.clone(),
            public_url: self.public_url.clone(),
            log_format: self.log_format,
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
            regions: self.regions.clone(),
        };
        Ok(Config::load(self.config.as_deref(), overrides)?)
    }
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    crate::logging::init(config.log_format);
    raise_open_file_limit();
    let url = config.public_url();
    let running = seashell_server::start(config)
        .await
        .context("cannot start")?;
    let first = &running.first_account;
    println!("Seashell is listening on {}", running.local_addr);
    println!("Console: {url}/  (account {})", first.account_id);
    match (&first.new_password, &first.password_file) {
        (Some(password), Some(file)) => {
            println!("First sign-in: user admin, one-time password {password}");
            println!(
                "(also in {}; you will be asked to change it)",
                file.display()
            );
        }
        (None, Some(file)) => println!(
            "The administrator's one-time password is in {} until it is changed.",
            file.display()
        ),
        _ => {}
    }
    running.run_until(shutdown_signal()).await?;
    Ok(())
}

/// Raises the soft limit on open files to the hard limit: the server holds
/// about one descriptor per session and two per environment, and a service
/// manager's default soft limit (1024) would end it near 480 environments.
fn raise_open_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::info!(from = soft, to = hard, "raised the open-file limit"),
            Err(e) => tracing::warn!(error = %e, soft, "cannot raise the open-file limit"),
        },
        Ok((soft, _)) => tracing::debug!(limit = soft, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
