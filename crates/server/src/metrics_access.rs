//! Who may read `/metrics` (`[metrics]`).
//!
//! The metrics name every operation and error code, the audit lag and the
//! sign-in refusals: a map of the installation's use. They are not for
//! anonymous callers, and never for environments, which reach the whole
//! HTTP surface through the API forward. A scraper is let in by its address
//! (loopback by default) or by a bearer token read from a file, as
//! Prometheus's `authorization.credentials_file` sends it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// `[metrics]`: who may read `/metrics`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Client address blocks (CIDR) that may read the metrics without a
    /// token. Default: loopback only. Environment addresses
    /// (`cloudshell.network_pool`) are refused even when listed.
    pub allowed_addresses: Vec<String>,
    /// A file holding a bearer token: a request with `Authorization: Bearer
    /// <token>` may read the metrics from any address but an environment's.
    pub token_file: Option<PathBuf>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            allowed_addresses: vec!["127.0.0.0/8".into(), "::1/128".into()],
            token_file: None,
        }
    }
}

impl MetricsSettings {
    /// Checks the address blocks (the token file is read at start).
    pub fn validate(&self) -> Result<(), String> {
        self.blocks().map(drop)
    }

    fn blocks(&self) -> Result<Vec<IpNet>, String> {
        self.allowed_addresses
            .iter()
            .map(|b| {
                b.parse::<IpNet>().map_err(|_| {
                    format!("metrics.allowed_addresses: {b:?} is not a CIDR block like 10.0.0.0/8")
                })
            })
            .collect()
    }
}

/// Why a metrics reader could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The token file could not be read.
    #[error("cannot read metrics.token_file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The token file holds no token.
    #[error("metrics.token_file {0} is empty")]
    Empty(PathBuf),
    /// A setting is malformed.
    #[error("{0}")]
    Invalid(String),
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Serve the metrics.
    Allow,
    /// The caller is an environment.
    Environment,
    /// Neither an allowed address nor the token.
    Refuse,
}

/// `[metrics]` made ready for requests.
#[derive(Clone)]
pub struct MetricsAccess {
    allowed: Vec<IpNet>,
    token: Option<Vec<u8>>,
    environments: Option<IpNet>,
}

// The token stays out of debug output.
impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsAccess")
            .field("allowed", &self.allowed)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("environments", &self.environments)
            .finish()
    }
}

impl MetricsAccess {
    /// Reads the token file; `environments` is the pool environment links
    /// come from, whose addresses are always refused.
    pub fn new(
        settings: &MetricsSettings,
        environments: Option<IpNet>,
    ) -> Result<MetricsAccess, AccessError> {
        let allowed = settings.blocks().map_err(AccessError::Invalid)?;
        let token = match &settings.token_file {
            None => None,
            Some(path) => Some(read_token(path)?),
        };
        Ok(MetricsAccess {
            allowed,
            token,
            environments,
        })
    }

    /// Whether a request from `peer` with this `Authorization` header may
    /// read the metrics.
    pub fn check(&self, peer: IpAddr, authorization: Option<&[u8]>) -> Verdict {
        let peer = peer.to_canonical();
        if self.environments.is_some_and(|pool| pool.contains(&peer)) {
            return Verdict::Environment;
        }
        if let (Some(token), Some(given)) = (&self.token, authorization) {
            let given = given.strip_prefix(b"Bearer ").unwrap_or_default();
            if bool::from(given.ct_eq(token)) {
                return Verdict::Allow;
            }
        }
        if self.allowed.iter().any(|block| block.contains(&peer)) {
            Verdict::Allow
        } else {
            Verdict::Refuse
        }
    }
}

fn read_token(path: &Path) -> Result<Vec<u8>, AccessError> {
    let text = std::fs::read_to_string(path).map_err(|source| AccessError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(AccessError::Empty(path.to_path_buf()));
    }
    Ok(token.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(allowed: &[&str], token: Option<&str>, pool: Option<&str>) -> MetricsAccess {
        MetricsAccess {
            allowed: allowed.iter().map(|b| b.parse().expect("block")).collect(),
            token: token.map(|t| t.as_bytes().to_vec()),
            environments: pool.map(|p| p.parse().expect("pool")),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn loopback_only_by_default() {
        let a = MetricsAccess::new(&MetricsSettings::default(), None).expect("access");
        assert_eq!(a.check(ip("127.0.0.1"), None), Verdict::Allow);
        assert_eq!(a.check(ip("::1"), None), Verdict::Allow);
        assert_eq!(a.check(ip("::ffff:127.0.0.1"), None), Verdict::Allow);
        assert_eq!(a.check(ip("192.0.2.7"), None), Verdict::Refuse);
        assert_eq!(
            a.check(ip("192.0.2.7"), Some(b"Bearer anything")),
            Verdict::Refuse,
            "no token configured, none accepted"
        );
    }

    #[test]
    fn the_token_lets_in_any_address_but_an_environment() {
        let a = access(&[], Some("s3cret"), Some("10.213.0.0/16"));
        assert_eq!(
            a.check(ip("192.0.2.7"), Some(b"Bearer s3cret")),
            Verdict::Allow
        );
        assert_eq!(
            a.check(ip("192.0.2.7"), Some(b"Bearer s3cre")),
            Verdict::Refuse
        );
        assert_eq!(a.check(ip("192.0.2.7"), Some(b"s3cret")), Verdict::Refuse);
        assert_eq!(a.check(ip("127.0.0.1"), None), Verdict::Refuse);
        assert_eq!(
            a.check(ip("10.213.4.2"), Some(b"Bearer s3cret")),
            Verdict::Environment
        );
    }

    #[test]
    fn environments_are_refused_even_when_listed() {
        let a = access(&["0.0.0.0/0"], None, Some("10.213.0.0/16"));
        assert_eq!(a.check(ip("10.213.0.6"), None), Verdict::Environment);
        assert_eq!(a.check(ip("10.214.0.6"), None), Verdict::Allow);
    }

    #[test]
    fn bad_settings_are_refused() {
        let bad = MetricsSettings {
            allowed_addresses: vec!["localhost".into()],
            token_file: None,
        };
        assert!(bad
            .validate()
            .expect_err("not a block")
            .contains("\"localhost\""));
        let dir = tempfile::tempdir().expect("dir");
        let empty = dir.path().join("token");
        std::fs::write(&empty, "\n").expect("write");
        let settings = MetricsSettings {
            token_file: Some(empty),
            ..MetricsSettings::default()
        };
        assert!(matches!(
            MetricsAccess::new(&settings, None),
            Err(AccessError::Empty(_))
        ));
    }
}
