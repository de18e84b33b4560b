//! `seashell sso login` and `seashell sso logout`: the AWS CLI's device
//! login to IAM Identity Center, against Seashell. Login reads the
//! `[sso-session …]` (or a legacy profile's `sso_start_url`/`sso_region`),
//! registers a client, shows the verification URL and code, polls
//! CreateToken until the user approves in the portal, and writes the token
//! where botocore reads it, so the AWS CLI and boto3 then get role
//! credentials for every profile of that session from this one login.

use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use seashell_client::sso::{self, CachedToken, Poll, Registration, SsoOidc};

use super::exit::CliError;
use super::ini::{config_section, Ini};
use super::settings::{self, Env, GlobalArgs, ProcessEnv};

/// A registration is replaced when it has less than this left.
const REGISTRATION_MARGIN: Duration = Duration::from_secs(15 * 60);
/// Added to the interval on each SlowDownException, as RFC 8628 says.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// `seashell sso`.
#[derive(Debug, Args)]
pub struct SsoArgs {
    #[command(subcommand)]
    pub action: SsoAction,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// `sso login|logout`.
#[derive(Debug, Subcommand)]
pub enum SsoAction {
    /// Sign in to IAM Identity Center and cache the token the AWS CLI,
    /// boto3 and this command use for the session's profiles.
    Login {
        /// The `[sso-session NAME]` to sign in to (else the profile's).
        #[arg(long = "sso-session", value_name = "NAME")]
        sso_session: Option<String>,
        /// Print the URL and code only; do not try to open a browser.
        #[arg(long = "no-browser")]
        no_browser: bool,
        /// Use the device code flow (the only flow; accepted for the AWS
        /// CLI's sake).
        #[arg(long = "use-device-code")]
        use_device_code: bool,
    },
    /// Log the cached tokens out at the portal and remove them.
    Logout,
}

/// What to sign in to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoTarget {
    /// The `sso-session` name, or `None` for a legacy profile.
    pub session: Option<String>,
    /// `sso_start_url`.
    pub start_url: String,
    /// `sso_region`.
    pub region: String,
    /// `sso_registration_scopes`.
    pub scopes: Vec<String>,
}

/// Finds the SSO settings: `--sso-session`, else the profile's
/// `sso_session`, else the profile's own `sso_start_url` and `sso_region`.
pub fn target(config: &Ini, profile: &str, session: Option<&str>) -> Result<SsoTarget, CliError> {
    let profile_section = config_section(profile);
    let session = session.map(str::to_string).or_else(|| {
        config
            .get(&profile_section, "sso_session")
            .map(str::to_string)
    });
    let section = match &session {
        Some(name) => {
            let section = format!("sso-session {name}");
            if !config.has_section(&section) {
                return Err(CliError::config(format!(
                    "The specified sso-session does not exist: \"{name}\""
                )));
            }
            section
        }
        None => profile_section,
    };
    let get = |key: &str| config.get(&section, key).map(str::to_string);
    let missing: Vec<&str> = ["sso_start_url", "sso_region"]
        .into_iter()
        .filter(|k| get(k).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(CliError::config(format!(
            "Missing the following required SSO configuration values: {}. To make sure this \
             profile is properly configured to use SSO, please run: seashell configure sso",
            missing.join(", ")
        )));
    }
    let scopes = match get("sso_registration_scopes") {
        Some(s) => s
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        // An sso-session refreshes its token: it needs the account access
        // scope, which the AWS CLI asks for by default.
        None if session.is_some() => vec!["sso:account:access".to_string()],
        None => Vec::new(),
    };
    Ok(SsoTarget {
        session,
        start_url: get("sso_start_url").unwrap_or_default(),
        region: get("sso_region").unwrap_or_default(),
        scopes,
    })
}

/// A service's endpoint: `AWS_ENDPOINT_URL_<ID>`, the profile's services
/// section (`<id> = endpoint_url = …`), `AWS_ENDPOINT_URL`, else the
/// Seashell path next to the start URL's `/start`.
pub fn endpoint(
    env: &dyn Env,
    config: &Ini,
    profile: &str,
    service_id: &str,
    start_url: &str,
) -> Result<String, CliError> {
    let ignore = env
        .var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !ignore {
        if let Some(url) = env.var(&format!("AWS_ENDPOINT_URL_{}", service_id.to_uppercase())) {
            return Ok(url);
        }
        let services = config.get(&config_section(profile), "services");
        if let Some(services) = services {
            let section = format!("services {services}");
            let nested = config
                .get_nested(&section, service_id, "endpoint_url")
                .or_else(|| {
                    config.get_nested(&section, &service_id.replace('_', "-"), "endpoint_url")
                });
            if let Some(url) = nested {
                return Ok(url.to_string());
            }
        }
        if let Some(url) = env.var("AWS_ENDPOINT_URL") {
            return Ok(url);
        }
    }
    let base = start_url
        .find("/start")
        .map(|i| &start_url[..i])
        .filter(|b| b.starts_with("http://") || b.starts_with("https://"))
        .ok_or_else(|| {
            CliError::config(format!(
                "No {service_id} endpoint is configured, and the start URL {start_url} is not a \
                 Seashell portal URL (<base>/start)"
            ))
        })?;
    let path = service_id.replace('_', "-");
    Ok(format!("{base}/{path}"))
}

fn profile_name(args: &GlobalArgs, env: &dyn Env) -> String {
    args.profile
        .clone()
        .or_else(|| env.var("AWS_PROFILE"))
        .or_else(|| env.var("AWS_DEFAULT_PROFILE"))
        .unwrap_or_else(|| "default".into())
}

fn http(args: &GlobalArgs, env: &dyn Env, config: &Ini) -> Result<reqwest::Client, CliError> {
    let resolved = settings::resolve(args, env, config)?;
    let tls = seashell_client::tls::client_config(resolved.ca_bundle.as_deref())
        .map_err(|e| CliError::config(e.to_string()))?;
    seashell_client::api::http_client(settings::timeouts(args), &tls).map_err(CliError::from)
}

/// Runs `seashell sso …`.
pub async fn run(args: SsoArgs) -> Result<u8, CliError> {
    let env = ProcessEnv;
    let config = settings::read_ini(&settings::config_path(&env))?;
    let profile = profile_name(&args.global, &env);
    let http = http(&args.global, &env, &config)?;
    match args.action {
        SsoAction::Login {
            sso_session,
            no_browser,
            use_device_code: _,
        } => {
            let target = target(&config, &profile, sso_session.as_deref())?;
            let oidc_endpoint = endpoint(&env, &config, &profile, "sso_oidc", &target.start_url)?;
            login(
                &http,
                &oidc_endpoint,
                &target,
                &settings::home(&env),
                no_browser,
            )
            .await?;
            Ok(0)
        }
        SsoAction::Logout => {
            logout(&http, &env, &config, &profile).await?;
            Ok(0)
        }
    }
}

async fn login(
    http: &reqwest::Client,
    oidc_endpoint: &str,
    target: &SsoTarget,
    home: &std::path::Path,
    no_browser: bool,
) -> Result<(), CliError> {
    let oidc = SsoOidc::new(oidc_endpoint, http.clone());
    let cache_path = sso::cache_file(home, target.session.as_deref(), &target.start_url);
    let registration = match reusable_registration(&cache_path, target) {
        Some(r) => r,
        None => {
            let name = format!(
                "seashell-client-{}",
                target.session.as_deref().unwrap_or("default")
            );
            oidc.register_client(&name, &target.scopes).await?
        }
    };
    let device = oidc
        .start_device_authorization(&registration, &target.start_url)
        .await?;
    let complete = device
        .verification_uri_complete
        .clone()
        .unwrap_or_else(|| device.verification_uri.clone());
    let opened = !no_browser && open_browser(&complete);
    if opened {
        println!(
            "Attempting to automatically open the SSO authorization page in your default browser.\n\
             If the browser does not open or you wish to use a different device to authorize this \
             request, open the following URL:\n\n{}\n\nThen enter the code:\n\n{}",
            device.verification_uri, device.user_code
        );
    } else {
        println!(
            "Browser will not be automatically opened.\nPlease visit the following URL:\n\n{}\n\n\
             Then enter the code:\n\n{}\n\nAlternatively, you may visit the following URL which \
             will autofill the code upon loading:\n{}",
            device.verification_uri, device.user_code, complete
        );
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(device.expires_in);
    let mut interval = Duration::from_secs(device.interval.max(1));
    let tokens = loop {
        tokio::time::sleep(interval).await;
        if tokio::time::Instant::now() >= deadline {
            return Err(CliError::other(
                "The device code expired before it was approved; run seashell sso login again.",
            ));
        }
        match oidc.poll(&registration, &device.device_code).await? {
            Poll::Done(tokens) => break tokens,
            Poll::Pending => {}
            Poll::SlowDown => interval += SLOW_DOWN_STEP,
        }
    };
    let now = SystemTime::now();
    let cached = CachedToken {
        start_url: target.start_url.clone(),
        region: target.region.clone(),
        access_token: tokens.access_token,
        expires_at: sso::iso8601(now + Duration::from_secs(tokens.expires_in)),
        client_id: Some(registration.client_id),
        client_secret: Some(registration.client_secret),
        registration_expires_at: Some(sso::iso8601(registration.expires_at)),
        refresh_token: tokens.refresh_token,
    };
    sso::write_cache(&cache_path, &cached)
        .map_err(|e| CliError::other(format!("{}: {e}", cache_path.display())))?;
    println!("Successfully logged into Start URL: {}", target.start_url);
    Ok(())
}

/// The client registration of an earlier login to the same place, if it
/// has a while left.
fn reusable_registration(path: &std::path::Path, target: &SsoTarget) -> Option<Registration> {
    let cached = sso::read_cache(path)?;
    if cached.start_url != target.start_url {
        return None;
    }
    let expires_at = sso::parse_iso8601(cached.registration_expires_at.as_deref()?)?;
    if expires_at < SystemTime::now() + REGISTRATION_MARGIN {
        return None;
    }
    Some(Registration {
        client_id: cached.client_id?,
        client_secret: cached.client_secret?,
        expires_at,
    })
}

/// Opens `url` with the desktop's opener, if there is a desktop.
fn open_browser(url: &str) -> bool {
    let has_display = std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some()
        || std::env::var_os("BROWSER").is_some();
    if !has_display {
        return false;
    }
    let opener = std::env::var("BROWSER").unwrap_or_else(|_| "xdg-open".to_string());
    std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

async fn logout(
    http: &reqwest::Client,
    env: &dyn Env,
    config: &Ini,
    profile: &str,
) -> Result<(), CliError> {
    let dir = sso::cache_dir(&settings::home(env));
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CliError::other(format!("{}: {e}", dir.display()))),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let Some(token) = sso::read_cache(&path) else {
            continue;
        };
        match endpoint(env, config, profile, "sso", &token.start_url) {
            Ok(sso_endpoint) => {
                if let Err(e) = sso::logout(http, &sso_endpoint, &token.access_token).await {
                    // The local copy goes anyway: logging out must not
                    // leave a usable token behind.
                    eprintln!("warning: the portal did not confirm the logout: {e}");
                }
            }
            Err(e) => eprintln!("warning: {}", e.message),
        }
        std::fs::remove_file(&path)
            .map_err(|e| CliError::other(format!("{}: {e}", path.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOG: &str = "[sso-session my-org]\nsso_start_url = http://127.0.0.1:8080/start\nsso_region = ap-northeast-2\nsso_registration_scopes = sso:account:access\n\n[profile prod]\nsso_session = my-org\nsso_account_id = 123456789012\nsso_role_name = AdministratorAccess\n\n[profile legacy]\nsso_start_url = http://127.0.0.1:8080/start\nsso_region = us-east-1\nsso_account_id = 1\nsso_role_name = R\n\n[profile broken]\nsso_session = nope\n";

    #[test]
    fn the_blogs_config_names_its_session() {
        let config = Ini::parse(BLOG).expect("ini");
        let t = target(&config, "prod", None).expect("prod");
        assert_eq!(t.session.as_deref(), Some("my-org"));
        assert_eq!(t.start_url, "http://127.0.0.1:8080/start");
        assert_eq!(t.region, "ap-northeast-2");
        assert_eq!(t.scopes, vec!["sso:account:access".to_string()]);
        assert_eq!(
            target(&config, "default", Some("my-org")).expect("session"),
            t
        );
        let legacy = target(&config, "legacy", None).expect("legacy");
        assert_eq!(legacy.session, None);
        assert!(legacy.scopes.is_empty());
        assert_eq!(
            target(&config, "broken", None).expect_err("an error").code,
            super::super::exit::CONFIG
        );
        assert_eq!(
            target(&config, "nothing", None).expect_err("an error").code,
            super::super::exit::CONFIG
        );
    }

    #[test]
    fn endpoints_follow_the_aws_cli_precedence() {
        let config = Ini::parse(&format!(
            "{BLOG}\n[profile s]\nservices = sh\n[services sh]\nsso_oidc =\n  endpoint_url = http://svc/sso-oidc\n"
        ))
        .expect("test value");
        let start = "http://127.0.0.1:8080/start";
        let none: [(&str, &str); 0] = [];
        assert_eq!(
            endpoint(&none, &config, "prod", "sso_oidc", start).expect("test value"),
            "http://127.0.0.1:8080/sso-oidc"
        );
        assert_eq!(
            endpoint(&none, &config, "s", "sso_oidc", start).expect("test value"),
            "http://svc/sso-oidc"
        );
        let env = [("AWS_ENDPOINT_URL_SSO_OIDC", "http://env/sso-oidc")];
        assert_eq!(
            endpoint(&env, &config, "s", "sso_oidc", start).expect("test value"),
            "http://env/sso-oidc"
        );
        assert!(endpoint(
            &none,
            &config,
            "prod",
            "sso",
            "https://my-org.awsapps.com/begin"
        )
        .is_err());
    }
}
