//! What every client command starts from: the resolved settings, the API
//! client, and the printing of results (query, format, pager).

use std::io::{IsTerminal, Write};
use std::process::{Command, Stdio};

use serde_json::Value;

use super::exit::CliError;
use super::output::{self, Style};
use super::query::Query;
use super::settings::{self, ColorChoice, GlobalArgs, ProcessEnv, Resolved};
use seashell_client::CloudShell;

/// One invocation's settings.
#[derive(Debug)]
pub struct Context {
    /// The global options as given.
    pub args: GlobalArgs,
    /// The settings resolved from flags, environment and profile.
    pub resolved: Resolved,
    query: Option<Query>,
}

impl Context {
    /// Resolves the settings; turns on `--debug` logging.
    pub fn new(args: &GlobalArgs) -> Result<Context, CliError> {
        if args.debug {
            let filter = tracing_subscriber::EnvFilter::new(
                "seashell=debug,seashell_client=debug,aws_config=debug,aws_credential_types=debug",
            );
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .try_init();
        }
        let config = settings::read_ini(&settings::config_path(&ProcessEnv))?;
        let resolved = settings::resolve(args, &ProcessEnv, &config)?;
        tracing::debug!(
            profile = %resolved.profile,
            region = ?resolved.region,
            endpoint = ?resolved.endpoint,
            output = ?resolved.output,
            "resolved settings"
        );
        let query = args.query.as_deref().map(Query::compile).transpose()?;
        Ok(Context {
            args: args.clone(),
            resolved,
            query,
        })
    }

    /// The region: the flag, environment or profile as resolved, else
    /// the SDK's region chain (aws-config: also instance metadata), else
    /// the AWS CLI's configuration error.
    pub async fn region(&self) -> Result<String, CliError> {
        if let Some(region) = &self.resolved.region {
            return Ok(region.clone());
        }
        settings::sdk_region(&self.resolved).await.ok_or_else(|| {
            CliError::config(
                "You must specify a region. You can also configure your region by running \"seashell configure\".",
            )
        })
    }

    /// The API client, with credentials from the chain.
    pub async fn api(&self) -> Result<CloudShell, CliError> {
        let endpoint = self.resolved.endpoint.clone().ok_or_else(|| {
            CliError::config(
                "No CloudShell endpoint is configured: give --endpoint-url, set AWS_ENDPOINT_URL_CLOUDSHELL, or run \"seashell configure\".",
            )
        })?;
        let mut resolved = self.resolved.clone();
        let region = self.region().await?;
        resolved.region = Some(region.clone());
        let credentials = settings::credentials(&resolved).await;
        let tls = seashell_client::tls::client_config(resolved.ca_bundle.as_deref())
            .map_err(|e| CliError::config(e.to_string()))?;
        let http = seashell_client::api::http_client(settings::timeouts(&self.args), &tls)?;
        Ok(CloudShell::new(&endpoint, &region, credentials, http).with_tls(tls))
    }

    /// Whether tables are colored.
    fn color(&self) -> bool {
        match self.args.color.unwrap_or(ColorChoice::Auto) {
            ColorChoice::On => true,
            ColorChoice::Off => false,
            ColorChoice::Auto => std::io::stdout().is_terminal(),
        }
    }

    /// Applies `--query`, renders in the output format and writes to
    /// stdout (through the pager on a terminal).
    pub fn print(&self, operation: &str, value: &Value) -> Result<(), CliError> {
        let value = match &self.query {
            Some(q) => q.search(value)?,
            None => value.clone(),
        };
        let width = terminal_size::terminal_size_of(std::io::stdout())
            .map(|(w, _)| w.0 as usize)
            .unwrap_or(80);
        let style = Style {
            format: self.resolved.output,
            color: self.color(),
            width,
        };
        let text = output::render(&style, operation, &value);
        self.write(&text)
    }

    /// Writes `text` to stdout, through the pager when stdout is a
    /// terminal and a pager is configured.
    pub fn write(&self, text: &str) -> Result<(), CliError> {
        if text.is_empty() {
            return Ok(());
        }
        if let (Some(pager), true) = (&self.resolved.pager, std::io::stdout().is_terminal()) {
            let child = Command::new("sh")
                .args(["-c", pager])
                .env(
                    "LESS",
                    std::env::var("LESS").unwrap_or_else(|_| "FRX".into()),
                )
                .stdin(Stdio::piped())
                .spawn();
            if let Ok(mut child) = child {
                if let Some(mut stdin) = child.stdin.take() {
                    // A pager quit early closes its input; that is fine.
                    let _ = stdin.write_all(text.as_bytes());
                }
                let _ = child.wait();
                return Ok(());
            }
        }
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            Ok(()) => Ok(()),
            // A closed pipe (`| head`) is not an error.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Err(e) => Err(CliError::other(format!("writing the output: {e}"))),
        }
    }
}
