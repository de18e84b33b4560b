//! Starting and stopping the server.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use seashell_audit::{DeliveryConfig, DeliverySink, Sink};

use crate::bootstrap::{self, FirstAccount};
use crate::config::Config;
use crate::envs::Environments;
use crate::http;
use crate::indexer::Indexer;
use crate::limits::{ConnectionLimit, Holdings, LimitSettings, Limits};
use crate::metrics::{Metrics, RequestLabels};
use crate::metrics_access::MetricsAccess;
use crate::services::cloudshell::files::UrlKey;
use crate::state::AppState;
use crate::store::Store;

/// How long shutdown waits for requests in flight.
const GRACE: Duration = Duration::from_secs(20);
/// How often audit delivery files are cut.
const DELIVERY_TICK: Duration = Duration::from_secs(5);
/// How often rate limiters forget addresses that are idle again.
const PRUNE_TICK: Duration = Duration::from_secs(60);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory could not be prepared.
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Bootstrapping the first account failed.
    #[error(transparent)]
    Bootstrap(#[from] bootstrap::BootstrapError),
    /// The audit trail could not be opened.
    #[error("cannot open the audit trail: {0}")]
    Audit(#[from] seashell_audit::SinkError),
    /// The listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// TLS material could not be loaded.
    #[error("cannot load the TLS certificate or key: {0}")]
    Tls(std::io::Error),
    /// `[metrics]` could not be set up.
    #[error(transparent)]
    Metrics(#[from] crate::metrics_access::AccessError),
    /// `trusted_proxies` is invalid.
    #[error("{0}")]
    TrustedProxies(String),
}

/// A server that is listening.
#[derive(Debug)]
pub struct Running {
    /// The address it listens on (useful with port 0).
    pub local_addr: SocketAddr,
    /// The first account, and the administrator's one-time password if it
    /// was created just now.
    pub first_account: FirstAccount,
    state: Arc<AppState>,
    handle: axum_server::Handle,
    task: tokio::task::JoinHandle<Result<(), std::io::Error>>,
    delivery: tokio::task::JoinHandle<()>,
    indexer_task: tokio::task::JoinHandle<()>,
    prepare_task: tokio::task::JoinHandle<()>,
    duties: tokio::task::JoinHandle<()>,
    prune: tokio::task::JoinHandle<()>,
}

/// Creates the data directory readable by its owner only.
pub fn prepare_data_dir(path: &Path) -> Result<(), ServeError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |source| ServeError::DataDir {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(path).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(err)
}

/// Opens the state, bootstraps the first account and starts listening.
pub async fn start(config: Config) -> Result<Running, ServeError> {
    prepare_data_dir(&config.data_dir)?;
    let store = Store::open(&config.database_url()).await?;
    let first_account = bootstrap::ensure_first_account(&store, &config.data_dir).await?;
    let audit =
        Arc::new(DeliverySink::open(DeliveryConfig::new(config.data_dir.join("audit"))).await?);
    let listen = config.listen;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            // One process-wide crypto provider; a second install is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
            Some(
                axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .map_err(ServeError::Tls)?,
            )
        }
        _ => None,
    };

    let listener = std::net::TcpListener::bind(listen).map_err(|source| ServeError::Listen {
        addr: listen,
        source,
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ServeError::Listen {
            addr: listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: listen,
        source,
    })?;
    // URLs handed out (data-channel streams, file transfers) name the
    // address actually bound, also when the port was chosen by the system.
    let mut config = config;
    if config.public_url.is_none() {
        let scheme = if config.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        config.public_url = Some(format!("{scheme}://{local_addr}"));
    }
    // Records journalled but not indexed when the last run died.
    match crate::indexer::catch_up(
        &store,
        &DeliveryConfig::new(config.data_dir.join("audit")).journal,
    )
    .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(records = n, "audit history caught up with the journal"),
        Err(e) => tracing::error!(error = %e, "cannot catch the audit history up with the journal"),
    }
    let (indexer, indexer_task) = Indexer::spawn(store.clone());
    let file_urls =
        UrlKey::load_or_create(&config.data_dir).map_err(|source| ServeError::DataDir {
            path: config.data_dir.join("file-url.key"),
            source,
        })?;
    let envs = Environments::new(
        store.clone(),
        config.cloudshell.clone(),
        config.data_dir.clone(),
        &config.public_url(),
        Some((local_addr, config.tls_cert.is_some())),
    );
    let limits = Limits::new(&config.limits);
    let metrics_access = MetricsAccess::new(&config.metrics, config.cloudshell.pool_block())?;
    let trusted_proxies = config
        .trusted_proxies()
        .map_err(ServeError::TrustedProxies)?;
    let state = Arc::new(AppState {
        limits,
        metrics_access,
        trusted_proxies,
        config,
        store,
        audit,
        metrics: Metrics::new(),
        indexer,
        envs,
        file_urls,
    });
    // Environments become available once their backend is ready (the
    // default image may be built first); the API answers meanwhile.
    let preparing = state.envs.clone();
    let prepare_task = tokio::spawn(async move { preparing.prepare().await });
    let duties = crate::envs::duties::spawn(state.clone());
    let app = http::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    let connections = Holdings::new(
        state.config.limits.max_connections,
        state.config.limits.max_connections_per_address,
    );
    let refused = |outcome: &str| {
        state
            .metrics
            .requests
            .get_or_create(&RequestLabels {
                service: "http".into(),
                operation: "Connect".into(),
                outcome: outcome.into(),
            })
            .clone()
    };
    // Keystrokes and acknowledgements are small writes: without
    // TCP_NODELAY each waits for the peer's delayed ACK (~40 ms).
    let acceptor = ConnectionLimit::new(
        axum_server::accept::NoDelayAcceptor::new(),
        connections,
        refused("refused_total_limit"),
        refused("refused_address_limit"),
    );
    let task = match tls {
        Some(tls) => {
            // The TLS acceptor allows 10 s for the handshake.
            let mut server = axum_server::from_tcp_rustls(listener, tls)
                .map(|a| a.acceptor(acceptor))
                .handle(handle.clone());
            tune(server.http_builder(), &state.config.limits);
            tokio::spawn(async move { server.serve(app).await })
        }
        None => {
            let mut server = axum_server::from_tcp(listener)
                .acceptor(acceptor)
                .handle(handle.clone());
            tune(server.http_builder(), &state.config.limits);
            tokio::spawn(async move { server.serve(app).await })
        }
    };
    let pruned = state.clone();
    let prune = tokio::spawn(async move {
        let mut tick = tokio::time::interval(PRUNE_TICK);
        loop {
            tick.tick().await;
            pruned.limits.prune();
        }
    });
    let audit = state.audit.clone();
    let delivery = tokio::spawn(async move {
        let mut tick = tokio::time::interval(DELIVERY_TICK);
        loop {
            // Partial batches go out on the tick, full ones as soon as they
            // fill; either way off the request path.
            tokio::select! {
                _ = tick.tick() => {}
                () = audit.batch_ready() => {}
            }
            if let Err(e) = audit.deliver_due().await {
                tracing::error!(error = %e, "audit delivery failed; records stay in the journal");
            }
        }
    });
    tracing::info!(%local_addr, "listening");
    Ok(Running {
        local_addr,
        first_account,
        state,
        handle,
        task,
        delivery,
        indexer_task,
        prepare_task,
        duties,
        prune,
    })
}

/// Connection timeouts. HTTP/1: hyper's header read timeout, which runs
/// from the moment a connection is ready for a request head (its opening,
/// the end of each response), so it closes both a client that dribbles its
/// headers (slowloris) and an idle keep-alive connection. HTTP/2: pings
/// close a peer that stopped answering.
fn tune(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    limits: &LimitSettings,
) {
    let timer = hyper_util::rt::TokioTimer::new();
    builder
        .http1()
        .timer(timer.clone())
        .header_read_timeout(limits.header_read_timeout());
    if let Some(timeout) = limits.header_read_timeout() {
        builder
            .http2()
            .timer(timer)
            .keep_alive_interval(timeout)
            .keep_alive_timeout(timeout);
    }
}

impl Running {
    /// The shared state (for tests and administration commands).
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Waits for `signal`, then stops accepting connections, lets requests in
    /// flight finish (up to a grace period), delivers pending audit records
    /// and closes the database.
    pub async fn run_until(self, signal: impl Future<Output = ()>) -> Result<(), ServeError> {
        let handle = self.handle.clone();
        let mut task = self.task;
        tokio::select! {
            () = signal => {
                tracing::info!("shutting down");
                handle.graceful_shutdown(Some(GRACE));
                let _ = (&mut task).await;
            }
            result = &mut task => {
                if let Ok(Err(e)) = result {
                    tracing::error!(error = %e, "server stopped");
                }
            }
        }
        self.delivery.abort();
        // Environments keep running without the server; the next start
        // reattaches to them.
        self.duties.abort();
        self.prune.abort();
        self.prepare_task.abort();
        self.state.indexer.flush().await;
        self.indexer_task.abort();
        if let Err(e) = self.state.audit.flush().await {
            tracing::error!(error = %e, "audit records left in the journal for the next start");
        }
        self.state.store.close().await;
        Ok(())
    }
}
