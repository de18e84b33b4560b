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
    /// Print a one-time link (valid 7 days) with which an IAM Identity
    /// Center user sets their password: what AWS sends as an invitation
    /// email. A new link replaces none of the old ones; each works once.
    InviteSsoUser {
        /// The user's name in the identity store.
        #[arg(long = "user-name")]
        user_name: String,
        /// The identity store (`d-…`); the first instance's when omitted.
        #[arg(long = "identity-store-id")]
        identity_store_id: Option<String>,
        /// The server's TOML configuration file (for its public URL, data
        /// directory and database).
        #[arg(long, env = "SEASHELL_CONFIG")]
        config: Option<PathBuf>,
        /// The server's data directory.
        #[arg(long, env = "SEASHELL_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// The server's database, if not the SQLite file in the data directory.
        #[arg(long, env = "SEASHELL_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// The URL users reach the server at (else the configuration's).
        #[arg(long = "public-url")]
        public_url: Option<String>,
    },
    /// Disable an IAM Identity Center user (sign-ins refused; portal
    /// sessions, tokens, role credentials and console sessions revoked at
    /// once), or enable them again.
    SetSsoUserStatus {
        /// The user's name in the identity store.
        #[arg(long = "user-name")]
        user_name: String,
        /// `enabled` or `disabled`.
        #[arg(long, value_parser = ["enabled", "disabled"])]
        status: String,
        /// The identity store (`d-…`); the first instance's when omitted.
        #[arg(long = "identity-store-id")]
        identity_store_id: Option<String>,
        /// The server's TOML configuration file.
        #[arg(long, env = "SEASHELL_CONFIG")]
        config: Option<PathBuf>,
        /// The server's data directory.
        #[arg(long, env = "SEASHELL_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// The server's database, if not the SQLite file in the data directory.
        #[arg(long, env = "SEASHELL_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
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
        AdminCommand::InviteSsoUser {
            user_name,
            identity_store_id,
            config,
            data_dir,
            database_url,
            public_url,
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
            let user = sso_user(&store, identity_store_id.as_deref(), &user_name).await?;
            let link = seashell_server::portal::invite(&store, &user.user_id).await?;
            store.close().await;
            let base = public_url.unwrap_or_else(|| config.public_url());
            println!("{}{link}", base.trim_end_matches('/'));
            Ok(())
        }
        AdminCommand::SetSsoUserStatus {
            user_name,
            status,
            identity_store_id,
            config,
            data_dir,
            database_url,
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
            let user = sso_user(&store, identity_store_id.as_deref(), &user_name).await?;
            store
                .set_sso_user_disabled(&user.user_id, status == "disabled")
                .await?;
            store.close().await;
            println!("{user_name}\t{status}");
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

/// An identity-store user by name, in the given or the first instance.
async fn sso_user(
    store: &Store,
    identity_store_id: Option<&str>,
    user_name: &str,
) -> anyhow::Result<seashell_server::store::sso::SsoUser> {
    let instance = store
        .sso_instance(identity_store_id)
        .await?
        .context("no IAM Identity Center instance: create an organization first")?;
    store
        .sign_in_user_by_name(&instance.identity_store_id, user_name)
        .await?
        .with_context(|| {
            format!(
                "no user {user_name} in the identity store {}",
                instance.identity_store_id
            )
        })
}
