//! What every request handler shares.

use std::sync::Arc;

use seashell_audit::DeliverySink;

use crate::config::Config;
use crate::envs::Environments;
use crate::indexer::Indexer;
use crate::metrics::Metrics;
use crate::services::cloudshell::files::UrlKey;
use crate::store::Store;

/// Shared server state.
#[derive(Debug)]
pub struct AppState {
    /// The configuration in force.
    pub config: Config,
    /// The database.
    pub store: Store,
    /// The audit trail: journal first, then CloudTrail delivery files.
    pub audit: Arc<DeliverySink>,
    /// Metrics.
    pub metrics: Metrics,
    /// Copies audit records into the database for `LookupEvents`.
    pub indexer: Indexer,
    /// Environments, sessions and their agents.
    pub envs: Environments,
    /// Signs the pre-signed file transfer URLs.
    pub file_urls: UrlKey,
    /// Per-address limits: pending upgrades, sign-in and SSO-OIDC rates.
    pub limits: crate::limits::Limits,
    /// Who may read `/metrics`.
    pub metrics_access: crate::metrics_access::MetricsAccess,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: crate::http::client_address::TrustedProxies,
}

impl AppState {
    /// The region used when a request names none (the first configured).
    pub fn default_region(&self) -> &str {
        self.config
            .regions
            .first()
            .map(String::as_str)
            .unwrap_or("us-east-1")
    }
}
