//! `seashell admin …`: administration straight on a data directory.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use seashell_server::{bootstrap, server, store::Store, Config, Overrides};

/// Administration commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create the first account and administrator if missing, and print the
    /// account ID and a new access key pair for the administrator. Works
    /// before the first `seashell serve` or while it runs.
    Bootstrap {
        /// The server's data directory.
        #[arg(long, env = "SEASHELL_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// The server's database, if not the SQLite file in the data directory.
        #[arg(long, env = "SEASHELL_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Show CloudShell usage: the environments' running time per account,
    /// region and month, against the monthly quota.
    Usage {
        /// The server's TOML configuration file (for its quota and data
        /// directory).
        #[arg(long, env = "SEASHELL_CONFIG")]
        config: Option<PathBuf>,
        /// The server's data directory.
        #[arg(long, env = "SEASHELL_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// The server's database, if not the SQLite file in the data directory.
        #[arg(long, env = "SEASHELL_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Only this account.
        #[arg(long)]
        account: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
}

/// How to print results.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    /// `Name<TAB>value` lines.
    Text,
    /// One JSON object.
    Json,
}

/// Runs an administration command.
pub async fn run(cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::Usage {
            config,
            data_dir,
            database_url,
            account,
            output,
        } => {
            let config = Config::load(
                config.as_deref(),
                Overrides {
                    data_dir,
                    database_url,
                    ..Overrides::default()
                },
            )?;
            let store = Store::open(&config.database_url())
                .await
                .context("cannot open the database")?;
            let rows = store.all_usage().await?;
            store.close().await;
            let quota = config.cloudshell.monthly_hours;
            let rows: Vec<_> = rows
                .into_iter()
                .filter(|(a, ..)| account.as_ref().is_none_or(|want| want == a))
                .collect();
            match output {
                Output::Json => {
                    let list: Vec<serde_json::Value> = rows
                        .iter()
                        .map(|(account, region, month, seconds)| {
                            serde_json::json!({
                                "AccountId": account,
                                "Region": region,
                                "Month": month,
                                "Seconds": seconds,
                                "QuotaHours": quota,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::json!({ "Usage": list }));
                }
                Output::Text => {
                    for (account, region, month, seconds) in &rows {
                        println!(
                            "{account}\t{region}\t{month}\t{:.2} h\tof {quota} h",
                            *seconds as f64 / 3600.0
                        );
                    }
                }
            }
            Ok(())
        }
        AdminCommand::Bootstrap {
            data_dir,
            database_url,
            output,
        } => {
            let config = Config::load(
                None,
                Overrides {
                    data_dir,
                    database_url,
                    ..Overrides::default()
                },
            )?;
            server::prepare_data_dir(&config.data_dir)?;
            let store = Store::open(&config.database_url()).await?;
            let first = bootstrap::ensure_first_account(&store, &config.data_dir).await?;
            let (key_id, secret) = store
                .create_access_key(&first.admin.user_id)
                .await
                .context("cannot create an access key")?;
            store.close().await;
            let fields = [
                ("AccountId", first.account_id.as_str()),
                ("UserName", first.admin.name.as_str()),
                ("Arn", &first.admin.arn()),
                ("AccessKeyId", key_id.as_str()),
                ("SecretAccessKey", secret.as_str()),
            ];
            match output {
                Output::Json => {
                    let map: serde_json::Map<String, serde_json::Value> = fields
                        .iter()
                        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
                        .collect();
                    println!("{}", serde_json::Value::Object(map));
                }
                Output::Text => {
                    for (k, v) in fields {
                        println!("{k}\t{v}");
                    }
                }
            }
            Ok(())
        }
    }
}
