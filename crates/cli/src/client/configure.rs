//! `seashell configure`: the AWS CLI's `aws configure` for Seashell. It
//! writes the keys to the shared credentials file and a profile whose
//! `services` section points cloudshell, iam, sts, sso, sso-oidc and
//! cloudtrail at the Seashell server, so that the AWS CLI, boto3 and this
//! command all use Seashell with `--profile <name>`. `get`, `set` and
//! `list` read and edit single settings.

use std::io::{BufRead, Write};
use std::path::Path;

use clap::{Args, Subcommand};

use super::exit::CliError;
use super::ini::{config_section, Ini};
use super::settings::{self, GlobalArgs, ProcessEnv};

/// The services a Seashell server answers, and their path under its base
/// URL (DESIGN §2).
pub const SERVICES: [(&str, &str); 6] = [
    ("cloudshell", "/cloudshell"),
    ("iam", "/iam"),
    ("sts", "/sts"),
    ("sso", "/sso"),
    // botocore keys the services section by service id: `SSO OIDC`.
    ("sso_oidc", "/sso-oidc"),
    ("cloudtrail", "/cloudtrail"),
];

const CREDENTIAL_KEYS: [&str; 3] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];

/// `seashell configure`.
#[derive(Debug, Args)]
pub struct ConfigureArgs {
    #[command(subcommand)]
    pub action: Option<ConfigureAction>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `configure get|set|list`.
#[derive(Debug, Subcommand)]
pub enum ConfigureAction {
    /// Print a setting of the profile (e.g. `region`, `services`,
    /// `aws_access_key_id`, or a nested `cloudshell.endpoint_url` of its
    /// services section).
    Get {
        /// The setting.
        name: String,
    },
    /// Set a setting of the profile.
    Set {
        /// The setting.
        name: String,
        /// Its value.
        value: String,
    },
    /// List the profile's settings and where each comes from (keys masked).
    List,
}

/// `****************ABCD`, as the AWS CLI masks keys.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("{}{tail}", "*".repeat(16))
}

/// Writes `ini` to `path` through a temporary file renamed over it, so a
/// reader never sees half a file. The temporary file is always made anew
/// (`O_EXCL`, after removing a leftover): a leftover from an interrupted
/// run, or a symlink planted in its place, would otherwise keep its own
/// mode or send the secrets elsewhere. `private` files get mode 0600
/// before anything is written to them, whatever the umask.
fn write_file(path: &Path, ini: &Ini, private: bool) -> Result<(), CliError> {
    let fail = |e: std::io::Error| CliError::other(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let tmp = path.with_extension("seashell-tmp");
    let fail_tmp = |e: std::io::Error| CliError::other(format!("{}: {e}", tmp.display()));
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail_tmp(e)),
        _ => {}
    }
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(if private { 0o600 } else { 0o644 });
        }
        let mut f = options.open(&tmp).map_err(fail_tmp)?;
        #[cfg(unix)]
        if private {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(fail_tmp)?;
        }
        f.write_all(ini.render().as_bytes()).map_err(fail_tmp)?;
    }
    std::fs::rename(&tmp, path).map_err(fail)
}

/// The profile the command works on.
fn profile(global: &GlobalArgs) -> String {
    global
        .profile
        .clone()
        .or_else(|| settings::Env::var(&ProcessEnv, "AWS_PROFILE"))
        .unwrap_or_else(|| "default".into())
}

/// Writes `profile` for `base_url` into the two files' documents.
pub fn apply(
    config: &mut Ini,
    credentials: &mut Ini,
    profile: &str,
    base_url: &str,
    key: (&str, &str),
    region: &str,
    output: &str,
) {
    let base = base_url.trim_end_matches('/');
    let section = config_section(profile);
    if !key.0.is_empty() {
        credentials.set(profile, "aws_access_key_id", key.0);
    }
    if !key.1.is_empty() {
        credentials.set(profile, "aws_secret_access_key", key.1);
    }
    config.set(&section, "region", region);
    config.set(&section, "output", output);
    config.set(&section, "services", profile);
    let services = format!("services {profile}");
    for (service, path) in SERVICES {
        config.set_nested(&services, service, "endpoint_url", &format!("{base}{path}"));
    }
}

/// Runs `seashell configure …`.
pub async fn run(args: ConfigureArgs) -> Result<(), CliError> {
    let env = ProcessEnv;
    let config_path = settings::config_path(&env);
    let credentials_path = settings::credentials_path(&env);
    let mut config = settings::read_ini(&config_path)?;
    let mut credentials = settings::read_ini(&credentials_path)?;
    let profile = profile(&args.global);
    let section = config_section(&profile);
    match args.action {
        Some(ConfigureAction::Get { name }) => {
            let value = if CREDENTIAL_KEYS.contains(&name.as_str()) {
                credentials
                    .get(&profile, &name)
                    .or_else(|| config.get(&section, &name))
            } else if let Some((key, sub)) = name.split_once('.') {
                config.get_nested(&section, key, sub).or_else(|| {
                    let services = config.get(&section, "services")?;
                    config.get_nested(&format!("services {services}"), key, sub)
                })
            } else {
                config.get(&section, &name)
            };
            match value {
                Some(v) => {
                    println!("{v}");
                    Ok(())
                }
                // Not set: nothing printed, exit code 1, as the AWS CLI.
                None => Err(CliError::partial(String::new())),
            }
        }
        Some(ConfigureAction::Set { name, value }) => {
            if CREDENTIAL_KEYS.contains(&name.as_str()) {
                credentials.set(&profile, &name, &value);
                write_file(&credentials_path, &credentials, true)
            } else {
                match name.split_once('.') {
                    Some((key, sub)) => config.set_nested(&section, key, sub, &value),
                    None => config.set(&section, &name, &value),
                }
                write_file(&config_path, &config, false)
            }
        }
        Some(ConfigureAction::List) => list(
            &args.global,
            &profile,
            &config,
            &credentials,
            &config_path,
            &credentials_path,
        ),
        None => interactive(
            &args.global,
            &profile,
            config,
            credentials,
            &config_path,
            &credentials_path,
        ),
    }
}

fn list(
    global: &GlobalArgs,
    profile: &str,
    config: &Ini,
    credentials: &Ini,
    config_path: &Path,
    credentials_path: &Path,
) -> Result<(), CliError> {
    let env = ProcessEnv;
    let section = config_section(profile);
    let resolved = settings::resolve(global, &env, config)?;
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    let profile_row = match (&global.profile, settings::Env::var(&env, "AWS_PROFILE")) {
        (Some(p), _) => (p.clone(), "manual".to_string(), "--profile".to_string()),
        (None, Some(p)) => (p, "env".into(), "AWS_PROFILE".into()),
        (None, None) => ("<not set>".into(), "None".into(), "None".into()),
    };
    rows.push((
        "profile".into(),
        profile_row.0,
        profile_row.1,
        profile_row.2,
    ));
    for (name, key, var) in [
        ("access_key", "aws_access_key_id", "AWS_ACCESS_KEY_ID"),
        (
            "secret_key",
            "aws_secret_access_key",
            "AWS_SECRET_ACCESS_KEY",
        ),
    ] {
        let row =
            if let Some(v) = settings::Env::var(&env, var).filter(|_| global.profile.is_none()) {
                (mask(&v), "env".to_string(), var.to_string())
            } else if let Some(v) = credentials.get(profile, key) {
                (
                    mask(v),
                    "shared-credentials-file".into(),
                    credentials_path.display().to_string(),
                )
            } else if let Some(v) = config.get(&section, key) {
                (
                    mask(v),
                    "config-file".into(),
                    config_path.display().to_string(),
                )
            } else {
                ("<not set>".into(), "None".into(), "None".into())
            };
        rows.push((name.into(), row.0, row.1, row.2));
    }
    let region_row = match (
        &global.region,
        settings::Env::var(&env, "AWS_REGION"),
        settings::Env::var(&env, "AWS_DEFAULT_REGION"),
    ) {
        (Some(r), _, _) => (r.clone(), "manual".to_string(), "--region".to_string()),
        (None, Some(r), _) => (r, "env".into(), "AWS_REGION".into()),
        (None, None, Some(r)) => (r, "env".into(), "AWS_DEFAULT_REGION".into()),
        _ => match config.get(&section, "region") {
            Some(r) => (
                r.to_string(),
                "config-file".into(),
                config_path.display().to_string(),
            ),
            None => ("<not set>".into(), "None".into(), "None".into()),
        },
    };
    rows.push(("region".into(), region_row.0, region_row.1, region_row.2));
    rows.push((
        "endpoint".into(),
        resolved.endpoint.unwrap_or_else(|| "<not set>".into()),
        String::new(),
        String::new(),
    ));
    let mut out = format!(
        "{:>10} {:>24} {:>16}    {}\n",
        "Name", "Value", "Type", "Location"
    );
    out.push_str(&format!(
        "{:>10} {:>24} {:>16}    {}\n",
        "----", "-----", "----", "--------"
    ));
    for (n, v, t, l) in rows {
        out.push_str(&format!("{n:>10} {v:>24} {t:>16}    {l}\n"));
    }
    print!("{out}");
    Ok(())
}

fn interactive(
    global: &GlobalArgs,
    profile: &str,
    mut config: Ini,
    mut credentials: Ini,
    config_path: &Path,
    credentials_path: &Path,
) -> Result<(), CliError> {
    let section = config_section(profile);
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut ask =
        |prompt: &str, current: Option<String>, masked: bool| -> Result<String, CliError> {
            let shown = match &current {
                Some(v) if masked => mask(v),
                Some(v) => v.clone(),
                None => "None".into(),
            };
            eprint!("{prompt} [{shown}]: ");
            let _ = std::io::stderr().flush();
            let answer = match lines.next() {
                Some(Ok(line)) => line.trim().to_string(),
                Some(Err(e)) => return Err(CliError::other(format!("reading the answer: {e}"))),
                None => String::new(),
            };
            Ok(if answer.is_empty() {
                current.unwrap_or_default()
            } else {
                answer
            })
        };
    let current_base = config
        .get(&section, "services")
        .and_then(|s| config.get_nested(&format!("services {s}"), "cloudshell", "endpoint_url"))
        .map(|u| u.trim_end_matches("/cloudshell").to_string());
    let base = match &global.endpoint_url {
        Some(url) => url.clone(),
        None => ask("Seashell URL", current_base, false)?,
    };
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(CliError::usage(format!(
            "The Seashell URL must start with http:// or https://: {base:?}"
        )));
    }
    let key_id = ask(
        "AWS Access Key ID",
        credentials
            .get(profile, "aws_access_key_id")
            .map(str::to_string),
        true,
    )?;
    let secret = ask(
        "AWS Secret Access Key",
        credentials
            .get(profile, "aws_secret_access_key")
            .map(str::to_string),
        true,
    )?;
    let region = match &global.region {
        Some(r) => r.clone(),
        None => ask(
            "Default region name",
            config
                .get(&section, "region")
                .map(str::to_string)
                .or(Some("us-east-1".into())),
            false,
        )?,
    };
    let output = ask(
        "Default output format",
        config
            .get(&section, "output")
            .map(str::to_string)
            .or(Some("json".into())),
        false,
    )?;
    apply(
        &mut config,
        &mut credentials,
        profile,
        &base,
        (&key_id, &secret),
        &region,
        &output,
    );
    write_file(credentials_path, &credentials, true)?;
    write_file(config_path, &config, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_points_every_service_at_seashell() {
        let mut config = Ini::parse("[default]\nregion = us-west-2\n").expect("ini");
        let mut creds = Ini::default();
        apply(
            &mut config,
            &mut creds,
            "seashell",
            "http://127.0.0.1:8080/",
            ("AKID", "SECRET"),
            "us-east-1",
            "json",
        );
        let text = config.render();
        assert!(
            text.contains(
                "[profile seashell]\nregion = us-east-1\noutput = json\nservices = seashell\n"
            ),
            "{text}"
        );
        for (service, path) in SERVICES {
            assert_eq!(
                config.get_nested("services seashell", service, "endpoint_url"),
                Some(format!("http://127.0.0.1:8080{path}").as_str())
            );
        }
        assert_eq!(config.get("default", "region"), Some("us-west-2"));
        assert_eq!(creds.get("seashell", "aws_access_key_id"), Some("AKID"));
        assert_eq!(mask("AKIAIOSFODNN7EXAMPLE"), "****************MPLE");
    }
}
