//! The options every client command takes, and their resolution with the
//! AWS CLI's precedence: command-line flag, then environment variable, then
//! the profile in `~/.aws/config` (or `AWS_CONFIG_FILE`). Credentials and
//! region come from the AWS SDK for Rust's provider chains (aws-config).

use std::path::PathBuf;
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use clap::{Args, ValueEnum};

use super::exit::CliError;
use super::ini::{config_section, Ini};

/// Output formats (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// JSON, indented by four spaces.
    Json,
    /// Tab-separated lines.
    Text,
    /// Boxed tables.
    Table,
    /// YAML.
    Yaml,
    /// YAML, one document per page, as a stream.
    YamlStream,
}

impl OutputFormat {
    fn parse(value: &str) -> Option<OutputFormat> {
        OutputFormat::from_str(value, true).ok()
    }
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Always.
    On,
    /// Never.
    Off,
    /// When stdout is a terminal.
    Auto,
}

/// The AWS CLI's global options.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Use a specific profile from your config and credentials files.
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// The region to use (overrides AWS_REGION, AWS_DEFAULT_REGION and the profile).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Override the CloudShell endpoint (e.g. http://127.0.0.1:8080/cloudshell).
    #[arg(long = "endpoint-url", global = true, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// The formatting style for command output.
    #[arg(long, global = true, value_enum)]
    pub output: Option<OutputFormat>,
    /// A JMESPath query to filter the response data.
    #[arg(long, global = true, value_name = "JMESPATH")]
    pub query: Option<String>,
    /// Disable automatic pagination.
    #[arg(long = "no-paginate", global = true)]
    pub no_paginate: bool,
    /// The total number of items to return (a NextToken resumes).
    #[arg(long = "max-items", global = true, value_name = "N")]
    pub max_items: Option<usize>,
    /// A token to resume from, as a previous --max-items output gave.
    #[arg(long = "starting-token", global = true, value_name = "TOKEN")]
    pub starting_token: Option<String>,
    /// Turn on debug logging (to stderr; no secrets).
    #[arg(long, global = true)]
    pub debug: bool,
    /// Disable the pager for output.
    #[arg(long = "no-cli-pager", global = true)]
    pub no_cli_pager: bool,
    /// Turn on/off color output.
    #[arg(long, global = true, value_enum)]
    pub color: Option<ColorChoice>,
    /// The maximum socket connect time in seconds (0: wait forever).
    #[arg(long = "cli-connect-timeout", global = true, value_name = "SECONDS")]
    pub cli_connect_timeout: Option<u64>,
    /// The maximum socket read time in seconds (0: wait forever).
    #[arg(long = "cli-read-timeout", global = true, value_name = "SECONDS")]
    pub cli_read_timeout: Option<u64>,
    /// The CA certificate bundle (PEM) to trust besides the system's, for a
    /// Seashell whose certificate a private CA signed.
    #[arg(long = "ca-bundle", global = true, value_name = "PATH")]
    pub ca_bundle: Option<PathBuf>,
}

/// Where the environment's values come from (the process environment, or a
/// map in tests).
pub trait Env {
    /// The variable `name`, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

/// `~/.aws/config`, or `AWS_CONFIG_FILE`.
pub fn config_path(env: &dyn Env) -> PathBuf {
    env.var("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home(env).join(".aws").join("config"))
}

/// `~/.aws/credentials`, or `AWS_SHARED_CREDENTIALS_FILE`.
pub fn credentials_path(env: &dyn Env) -> PathBuf {
    env.var("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home(env).join(".aws").join("credentials"))
}

/// `$HOME`, else the current directory.
pub fn home(env: &dyn Env) -> PathBuf {
    env.var("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Reads an INI file; a missing file is empty.
pub fn read_ini(path: &std::path::Path) -> Result<Ini, CliError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ini::parse(&text).map_err(|e| {
            CliError::config(format!(
                "Unable to parse config file: {}: {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ini::default()),
        Err(e) => Err(CliError::config(format!("{}: {e}", path.display()))),
    }
}

/// The settings of one invocation, resolved except for credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The profile name.
    pub profile: String,
    /// Whether the profile was named on the command line (then its
    /// credentials win over the environment's, as in the AWS CLI).
    pub profile_from_flag: bool,
    /// The region, when one is configured anywhere.
    pub region: Option<String>,
    /// The output format.
    pub output: OutputFormat,
    /// The CloudShell endpoint, when one is configured anywhere.
    pub endpoint: Option<String>,
    /// The pager command (`None`: no pager).
    pub pager: Option<String>,
    /// The extra CA bundle: `--ca-bundle`, `AWS_CA_BUNDLE` or the
    /// profile's `ca_bundle`.
    pub ca_bundle: Option<PathBuf>,
}

/// Resolves the profile's settings with flag > environment > profile.
pub fn resolve(args: &GlobalArgs, env: &dyn Env, config: &Ini) -> Result<Resolved, CliError> {
    let (profile, profile_from_flag) = match &args.profile {
        Some(p) => (p.clone(), true),
        None => (
            env.var("AWS_PROFILE")
                .or_else(|| env.var("AWS_DEFAULT_PROFILE"))
                .unwrap_or_else(|| "default".into()),
            false,
        ),
    };
    let section = config_section(&profile);
    let exists = config.has_section(&section)
        || (profile == "default" && config.has_section("profile default"));
    if profile != "default" && !exists && profile_from_flag {
        // Credentials-only profiles are checked by the credential chain.
        let creds = read_ini(&credentials_path(env))?;
        if !creds.has_section(&profile) {
            return Err(CliError::config(format!(
                "The config profile ({profile}) could not be found"
            )));
        }
    }
    let from_profile = |key: &str| {
        config
            .get(&section, key)
            .or_else(|| {
                (profile == "default")
                    .then(|| config.get("profile default", key))
                    .flatten()
            })
            .map(str::to_string)
    };
    let region = args
        .region
        .clone()
        .or_else(|| env.var("AWS_REGION"))
        .or_else(|| env.var("AWS_DEFAULT_REGION"))
        .or_else(|| from_profile("region"));
    let output = match &args.output {
        Some(o) => *o,
        None => {
            let named = env
                .var("AWS_DEFAULT_OUTPUT")
                .or_else(|| from_profile("output"));
            match named {
                Some(name) => OutputFormat::parse(&name).ok_or_else(|| {
                    CliError::config(format!(
                        "Invalid output format {name:?}: expected json, text, table, yaml or yaml-stream"
                    ))
                })?,
                None => OutputFormat::Json,
            }
        }
    };
    let services_endpoint = from_profile("services").and_then(|services| {
        config
            .get_nested(
                &format!("services {services}"),
                "cloudshell",
                "endpoint_url",
            )
            .map(str::to_string)
    });
    let ignore_configured = env
        .var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let endpoint = args.endpoint_url.clone().or_else(|| {
        if ignore_configured {
            return None;
        }
        env.var("AWS_ENDPOINT_URL_CLOUDSHELL")
            .or_else(|| env.var("AWS_ENDPOINT_URL"))
            .or(services_endpoint)
            .or_else(|| from_profile("endpoint_url"))
    });
    let pager = if args.no_cli_pager {
        None
    } else {
        env.var("AWS_PAGER")
            .or_else(|| {
                // An empty AWS_PAGER disables the pager.
                if std::env::var_os("AWS_PAGER").is_some() {
                    return Some(String::new());
                }
                from_profile("cli_pager")
            })
            .or_else(|| env.var("PAGER"))
            .or_else(|| Some("less -R".into()))
            .filter(|p| !p.trim().is_empty())
    };
    let ca_bundle = args.ca_bundle.clone().or_else(|| {
        env.var("AWS_CA_BUNDLE")
            .or_else(|| from_profile("ca_bundle"))
            .map(PathBuf::from)
    });
    Ok(Resolved {
        profile,
        profile_from_flag,
        region,
        output,
        endpoint,
        pager,
        ca_bundle,
    })
}

/// The HTTP timeouts of `--cli-connect-timeout` and `--cli-read-timeout`.
pub fn timeouts(args: &GlobalArgs) -> seashell_client::api::Timeouts {
    let pick = |flag: Option<u64>, default: Duration| match flag {
        Some(0) => None,
        Some(s) => Some(Duration::from_secs(s)),
        None => Some(default),
    };
    seashell_client::api::Timeouts {
        connect: pick(args.cli_connect_timeout, Duration::from_secs(60)),
        read: pick(args.cli_read_timeout, Duration::from_secs(60)),
    }
}

/// The credential provider: the profile's alone when `--profile` was given
/// (it beats the environment), the SDK's default chain otherwise
/// (environment, profile with assume-role/SSO/credential_process,
/// container credentials).
pub async fn credentials(resolved: &Resolved) -> SharedCredentialsProvider {
    let region = resolved.region.clone().map(aws_config::Region::new);
    if resolved.profile_from_flag {
        let provider = aws_config::profile::ProfileFileCredentialsProvider::builder()
            .profile_name(&resolved.profile)
            .configure(&provider_config(region))
            .build();
        return SharedCredentialsProvider::new(provider);
    }
    let chain = aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
        .profile_name(&resolved.profile)
        .configure(provider_config(region))
        .build()
        .await;
    SharedCredentialsProvider::new(chain)
}

/// The region from the SDK's providers (aws-config: environment,
/// profile, instance metadata), when the command line, the environment or
/// the profile as read here gives none.
pub async fn sdk_region(resolved: &Resolved) -> Option<String> {
    use aws_config::meta::region::RegionProviderChain;
    let config = provider_config(None);
    let chain = RegionProviderChain::first_try(
        aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(
        aws_config::profile::region::ProfileFileRegionProvider::builder()
            .profile_name(&resolved.profile)
            .configure(&config)
            .build(),
    )
    .or_else(
        aws_config::imds::region::ImdsRegionProvider::builder()
            .configure(&config)
            .build(),
    );
    chain.region().await.map(|r| r.to_string())
}

/// The providers' settings: the region, and an HTTPS client (rustls with
/// ring, the TLS stack the rest of Seashell uses) for the providers that
/// call out (STS assume-role, SSO, container credentials).
fn provider_config(
    region: Option<aws_config::Region>,
) -> aws_config::provider_config::ProviderConfig {
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_config::provider_config::ProviderConfig::default().with_http_client(http);
    match region {
        Some(r) => config.with_region(Some(r)),
        None => config,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config() -> Ini {
        Ini::parse(
            "[default]\nregion = us-west-2\noutput = text\n\n[profile seashell]\nregion = eu-west-1\noutput = table\nservices = seashell\ncli_pager = more\n\n[services seashell]\ncloudshell =\n  endpoint_url = http://127.0.0.1:8080/cloudshell\n",
        )
        .expect("config")
    }

    #[test]
    fn the_profile_gives_what_nothing_else_does() {
        let r = resolve(
            &GlobalArgs::default(),
            &[("HOME", "/nonexistent")],
            &config(),
        )
        .expect("resolve");
        assert_eq!(r.profile, "default");
        assert_eq!(r.region.as_deref(), Some("us-west-2"));
        assert_eq!(r.output, OutputFormat::Text);
        assert_eq!(r.endpoint, None);
        let r = resolve(
            &GlobalArgs::default(),
            &[("AWS_PROFILE", "seashell")],
            &config(),
        )
        .expect("resolve");
        assert_eq!(r.profile, "seashell");
        assert_eq!(r.region.as_deref(), Some("eu-west-1"));
        assert_eq!(r.output, OutputFormat::Table);
        assert_eq!(
            r.endpoint.as_deref(),
            Some("http://127.0.0.1:8080/cloudshell")
        );
        assert_eq!(r.pager.as_deref(), Some("more"));
    }

    #[test]
    fn the_environment_beats_the_profile() {
        let env = [
            ("AWS_PROFILE", "seashell"),
            ("AWS_DEFAULT_REGION", "ap-south-1"),
            ("AWS_DEFAULT_OUTPUT", "yaml"),
            ("AWS_ENDPOINT_URL_CLOUDSHELL", "http://env/cloudshell"),
            ("AWS_PAGER", "cat"),
        ];
        let r = resolve(&GlobalArgs::default(), &env, &config()).expect("resolve");
        assert_eq!(r.region.as_deref(), Some("ap-south-1"));
        assert_eq!(r.output, OutputFormat::Yaml);
        assert_eq!(r.endpoint.as_deref(), Some("http://env/cloudshell"));
        assert_eq!(r.pager.as_deref(), Some("cat"));
        // AWS_REGION beats AWS_DEFAULT_REGION.
        let env = [
            ("AWS_REGION", "sa-east-1"),
            ("AWS_DEFAULT_REGION", "ap-south-1"),
        ];
        let r = resolve(&GlobalArgs::default(), &env, &config()).expect("resolve");
        assert_eq!(r.region.as_deref(), Some("sa-east-1"));
    }

    #[test]
    fn flags_beat_the_environment() {
        let args = GlobalArgs {
            profile: Some("seashell".into()),
            region: Some("us-east-2".into()),
            output: Some(OutputFormat::Json),
            endpoint_url: Some("http://flag/cloudshell".into()),
            no_cli_pager: true,
            ..GlobalArgs::default()
        };
        let env = [
            ("AWS_PROFILE", "default"),
            ("AWS_REGION", "sa-east-1"),
            ("AWS_DEFAULT_OUTPUT", "yaml"),
            ("AWS_ENDPOINT_URL", "http://env/cloudshell"),
            ("AWS_PAGER", "cat"),
        ];
        let r = resolve(&args, &env, &config()).expect("resolve");
        assert_eq!(r.profile, "seashell");
        assert!(r.profile_from_flag);
        assert_eq!(r.region.as_deref(), Some("us-east-2"));
        assert_eq!(r.output, OutputFormat::Json);
        assert_eq!(r.endpoint.as_deref(), Some("http://flag/cloudshell"));
        assert_eq!(r.pager, None);
    }

    #[test]
    fn a_missing_profile_and_a_bad_output_are_configuration_errors() {
        let args = GlobalArgs {
            profile: Some("nope".into()),
            ..GlobalArgs::default()
        };
        let e = resolve(&args, &[("HOME", "/nonexistent")], &config()).unwrap_err();
        assert_eq!(e.code, 253);
        assert_eq!(e.message, "The config profile (nope) could not be found");
        let e = resolve(
            &GlobalArgs::default(),
            &[("AWS_DEFAULT_OUTPUT", "xml")],
            &config(),
        )
        .unwrap_err();
        assert_eq!(e.code, 253);
    }
}
