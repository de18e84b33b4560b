//! Server configuration: built-in defaults, then a TOML file, then `SEASHELL_*`
//! environment variables and command-line flags (the command line applies
//! those last two through [`Overrides`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::envs::settings::CloudShellSettings;
pub use crate::limits::{LimitSettings, RateSettings};
pub use crate::metrics_access::MetricsSettings;

/// Everything `seashell serve` can be told.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on. Default `127.0.0.1:8080`: reachable from this
    /// machine only, until an administrator decides otherwise.
    pub listen: SocketAddr,
    /// Where Seashell keeps its state: the SQLite database, the audit journal
    /// and delivery files, the first administrator's one-time password.
    pub data_dir: PathBuf,
    /// `postgres://…` to keep state in PostgreSQL; default a SQLite file in
    /// the data directory.
    pub database_url: Option<String>,
    /// The URL people use to reach the console (printed at first start);
    /// default derived from `listen`.
    pub public_url: Option<String>,
    /// `text` (default) or `json` logs.
    pub log_format: LogFormat,
    /// PEM certificate chain for HTTPS; with `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS; with `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// The regions this installation serves.
    pub regions: Vec<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Reverse proxies (CIDR blocks) whose `X-Forwarded-For` names the
    /// client, for the per-address limits, the lockout and the trail
    /// (`http/client_address.rs`). Default none: the TCP peer is the client.
    pub trusted_proxies: Vec<String>,
    /// Environments and the CloudShell service (`[cloudshell]`).
    pub cloudshell: CloudShellSettings,
    /// IAM Identity Center sign-in (`[sso]`).
    pub sso: SsoSettings,
    /// Connection and request limits per client address (`[limits]`).
    pub limits: LimitSettings,
    /// Who may read `/metrics` (`[metrics]`).
    pub metrics: MetricsSettings,
}

/// `[sso]`: how identity-store users may sign in to the portal.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SsoSettings {
    /// An external OpenID Connect identity provider (`[sso.identity_provider]`):
    /// the portal offers "Sign in with <name>" and maps its users and
    /// groups into the identity store.
    pub identity_provider: Option<IdentityProvider>,
}

/// An external OpenID Connect identity provider.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IdentityProvider {
    /// The name the portal shows ("Sign in with <name>").
    pub name: String,
    /// The issuer URL (discovery at `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// This server's client id at the provider.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
    /// The claim that names the user in the identity store.
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The claim listing the user's groups (group display names).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// The identity store users land in (`d-…`); the first instance's when
    /// unset.
    #[serde(default)]
    pub identity_store_id: Option<String>,
}

// The secret stays out of logs and debug output.
impl std::fmt::Debug for IdentityProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityProvider")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("username_claim", &self.username_claim)
            .field("groups_claim", &self.groups_claim)
            .field("identity_store_id", &self.identity_store_id)
            .finish_non_exhaustive()
    }
}

fn default_username_claim() -> String {
    "preferred_username".into()
}

fn default_groups_claim() -> String {
    "groups".into()
}

/// Log output format.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("log format {other:?} is not text or json")),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: default_data_dir(),
            database_url: None,
            public_url: None,
            log_format: LogFormat::Text,
            tls_cert: None,
            tls_key: None,
            regions: vec!["us-east-1".into(), "eu-west-1".into()],
            max_body_bytes: 1 << 20,
            trusted_proxies: Vec::new(),
            cloudshell: CloudShellSettings::default(),
            sso: SsoSettings::default(),
            limits: LimitSettings::default(),
            metrics: MetricsSettings::default(),
        }
    }
}

/// `/var/lib/seashell` for root, `$XDG_DATA_HOME/seashell` (or
/// `~/.local/share/seashell`) for anyone else.
pub fn default_data_dir() -> PathBuf {
    let is_root = std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || std::env::var("HOME").map(|h| h == "/root").unwrap_or(false);
    if is_root {
        return PathBuf::from("/var/lib/seashell");
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(xdg).join("seashell");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/seashell"),
        None => PathBuf::from("seashell-data"),
    }
}

/// Values given on the command line or in `SEASHELL_*` variables; each set
/// one replaces the file's.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)] // Each field overrides the `Config` field of the same name.
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub log_format: Option<LogFormat>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub regions: Option<Vec<String>>,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    #[error("invalid configuration file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: toml::de::Error,
    },
    /// A value is not acceptable.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then `file` if given, then `overrides`; then validates.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Config, ConfigError> {
        let mut config = match file {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse {
                    path: path.to_path_buf(),
                    source,
                })?
            }
        };
        let Overrides {
            listen,
            data_dir,
            database_url,
            public_url,
            log_format,
            tls_cert,
            tls_key,
            regions,
        } = overrides;
        set(&mut config.listen, listen);
        set(&mut config.data_dir, data_dir);
        set_opt(&mut config.database_url, database_url);
        set_opt(&mut config.public_url, public_url);
        set(&mut config.log_format, log_format);
        set_opt(&mut config.tls_cert, tls_cert);
        set_opt(&mut config.tls_key, tls_key);
        set(&mut config.regions, regions);
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "tls_cert and tls_key go together: give both or neither".into(),
            ));
        }
        self.cloudshell.validate().map_err(ConfigError::Invalid)?;
        self.limits.validate().map_err(ConfigError::Invalid)?;
        self.metrics.validate().map_err(ConfigError::Invalid)?;
        self.trusted_proxies().map_err(ConfigError::Invalid)?;
        if self.regions.is_empty() {
            return Err(ConfigError::Invalid("at least one region is needed".into()));
        }
        for region in &self.regions {
            let ok = !region.is_empty()
                && region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return Err(ConfigError::Invalid(format!(
                    "region {region:?} must be lower-case letters, digits and hyphens, like us-east-1"
                )));
            }
        }
        if let Some(url) = &self.database_url {
            if !(url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:"))
            {
                return Err(ConfigError::Invalid(format!(
                    "database_url must start with postgres:// or sqlite:, not {:?}",
                    url.split(':').next().unwrap_or_default()
                )));
            }
        }
        Ok(())
    }

    /// The trusted proxies. Environments' addresses cannot be among them:
    /// a shell could then name any client it liked.
    pub fn trusted_proxies(&self) -> Result<crate::http::client_address::TrustedProxies, String> {
        let proxies = crate::http::client_address::TrustedProxies::parse(&self.trusted_proxies)?;
        if let Some(pool) = self.cloudshell.pool_block() {
            if let Some(block) = proxies
                .blocks()
                .iter()
                .find(|b| pool.contains(*b) || b.contains(&pool))
            {
                return Err(format!(
                    "trusted_proxies: {block} overlaps cloudshell.network_pool, \
                     the environments' addresses"
                ));
            }
        }
        Ok(proxies)
    }

    /// The database to use: the configured URL or the SQLite file in the
    /// data directory (created if missing, in WAL mode).
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("seashell.db").display()
            ),
        }
    }

    /// Whether people reach the server over HTTPS: its own TLS, or a
    /// `public_url` of `https://` in front of it (a TLS-terminating proxy).
    /// Cookies are then `Secure` and responses carry HSTS.
    pub fn serves_https(&self) -> bool {
        self.public_url().starts_with("https://")
    }

    /// The console's base URL.
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => {
                let scheme = if self.tls_cert.is_some() {
                    "https"
                } else {
                    "http"
                };
                format!("{scheme}://{}", self.listen)
            }
        }
    }

    /// Whether `region` is served here.
    pub fn has_region(&self, region: &str) -> bool {
        self.regions.iter().any(|r| r == region)
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

fn set_opt<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_safe_for_one_machine() {
        let c = Config::load(None, Overrides::default()).expect("defaults are valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert!(c.database_url().starts_with("sqlite://"));
        assert_eq!(c.regions, vec!["us-east-1", "eu-west-1"]);
        assert_eq!(c.public_url(), "http://127.0.0.1:8080");
    }

    #[test]
    fn file_then_overrides() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("seashell.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\nregions = [\"ap-south-1\"]\nlog_format = \"json\"\n",
        )
        .expect("write");
        let c = Config::load(Some(&file), Overrides::default()).expect("valid");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.log_format, LogFormat::Json);
        let c = Config::load(
            Some(&file),
            Overrides {
                listen: Some("127.0.0.1:9100".parse().expect("addr")),
                ..Overrides::default()
            },
        )
        .expect("valid");
        assert_eq!(c.listen.port(), 9100);
        assert_eq!(c.regions, vec!["ap-south-1"]);
    }

    #[test]
    fn trusted_proxies_are_blocks_outside_the_environments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("seashell.toml");
        std::fs::write(&file, "trusted_proxies = [\"10.0.0.0/24\", \"::1/128\"]\n").expect("write");
        let c = Config::load(Some(&file), Overrides::default()).expect("valid");
        assert_eq!(c.trusted_proxies().expect("valid").blocks().len(), 2);
        for bad in ["10.213.4.0/24", "10.0.0.0/8", "proxy.example.com"] {
            std::fs::write(&file, format!("trusted_proxies = [\"{bad}\"]\n")).expect("write");
            let e = Config::load(Some(&file), Overrides::default()).expect_err(bad);
            assert!(e.to_string().contains("trusted_proxies"), "{bad}: {e}");
        }
    }

    #[test]
    fn limits_come_from_their_section() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("seashell.toml");
        std::fs::write(
            &file,
            "[limits]\nheader_read_timeout_secs = 5\nmax_connections_per_address = 64\n\
             body_min_rate_bytes = 100\n[limits.signin]\nburst = 3\n",
        )
        .expect("write");
        let c = Config::load(Some(&file), Overrides::default()).expect("valid");
        assert_eq!(
            c.limits.header_read_timeout(),
            Some(std::time::Duration::from_secs(5))
        );
        assert_eq!(c.limits.max_connections_per_address, 64);
        assert_eq!(c.limits.max_connections, 8192);
        let body = c.limits.body_deadline().expect("on by default");
        assert_eq!(
            (body.grace, body.min_rate_bytes),
            (std::time::Duration::from_secs(20), 100)
        );
        assert_eq!((c.limits.signin.burst, c.limits.signin.per_minute), (3, 30));
        assert_eq!(c.limits.sso_oidc, LimitSettings::default().sso_oidc);
        std::fs::write(&file, "[limits.sso_oidc]\nper_minute = 0\n").expect("write");
        let e = Config::load(Some(&file), Overrides::default()).expect_err("zero rate");
        assert!(e.to_string().contains("limits.sso_oidc"), "{e}");
        std::fs::write(&file, "[limits]\nmax_connections = 0\n").expect("write");
        let e = Config::load(Some(&file), Overrides::default()).expect_err("zero cap");
        assert!(e.to_string().contains("limits.max_connections"), "{e}");
    }

    #[test]
    fn bad_configurations_are_refused_clearly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("seashell.toml");
        std::fs::write(&file, "listne = \"x\"\n").expect("write");
        let e = Config::load(Some(&file), Overrides::default()).expect_err("unknown key");
        assert!(e.to_string().contains("listne"), "{e}");
        let e = Config::load(
            None,
            Overrides {
                tls_cert: Some("c.pem".into()),
                ..Overrides::default()
            },
        )
        .expect_err("half TLS");
        assert!(e.to_string().contains("tls_key"), "{e}");
        let e = Config::load(
            None,
            Overrides {
                regions: Some(vec!["US East".into()]),
                ..Overrides::default()
            },
        )
        .expect_err("bad region");
        assert!(e.to_string().contains("US East"), "{e}");
        let e = Config::load(
            None,
            Overrides {
                database_url: Some("mysql://x".into()),
                ..Overrides::default()
            },
        )
        .expect_err("bad db");
        assert!(e.to_string().contains("mysql"), "{e}");
        let missing = Config::load(
            Some(Path::new("/nonexistent/seashell.toml")),
            Overrides::default(),
        );
        assert!(matches!(missing, Err(ConfigError::Read { .. })));
    }
}
