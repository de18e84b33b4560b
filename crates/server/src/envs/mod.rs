//! Environments and their sessions: the state machine behind the CloudShell
//! API (DESIGN §4). The database holds what the API promises (status,
//! sessions, tokens); the runtime holds the containers; one multiplexed
//! agent connection per running environment carries sessions, credentials
//! and files.
//!
//! Transitions of one environment are serialized by a per-environment lock
//! and run in the background: the API moves the status (`CREATING`,
//! `RESUMING`, `SUSPENDING`, `DELETING`) at once and answers, and
//! `getEnvironmentStatus` shows the result. Nothing a caller does waits on
//! a container for long: calls that need a running environment wait a
//! bounded time and then say why not.

pub mod backend;
mod credentials;
pub mod duties;
mod errors;
mod lifecycle;
mod sessions;
pub mod settings;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex as StdMutex};

use seashell_protocol::agent_channel::{AttachMode, SessionId};
use seashell_runtime::agent_hub::AgentHub;
use seashell_runtime::{EnvironmentId, HomeKey};
use tokio::sync::{watch, Mutex};

use crate::caller::Caller;
use crate::error::ApiError;
use crate::store::cloudshell::EnvironmentRow;
use crate::store::Store;

pub use backend::{Backend, Unavailable};
pub use errors::{conflict, not_found, quota_exceeded, unavailable, validation};
pub use lifecycle::VpcConfig;
pub use sessions::CreatedSession;
pub use settings::CloudShellSettings;

/// The statuses of the API.
pub mod status {
    /// Being created and started for the first time.
    pub const CREATING: &str = "CREATING";
    /// Running: sessions can be opened.
    pub const RUNNING: &str = "RUNNING";
    /// Being stopped.
    pub const SUSPENDING: &str = "SUSPENDING";
    /// Stopped; the home is kept, everything else is gone.
    pub const SUSPENDED: &str = "SUSPENDED";
    /// Being started again.
    pub const RESUMING: &str = "RESUMING";
    /// Being deleted with its home.
    pub const DELETING: &str = "DELETING";
}

/// What the gateway gets for a redeemed data-channel token.
#[derive(Debug, Clone)]
pub struct StreamGrant {
    /// The environment's agent connection.
    pub hub: AgentHub,
    /// The session, as the agent knows it.
    pub session: SessionId,
    /// Whether the client resumes (resumeSession) or starts fresh
    /// (createSession).
    pub mode: AttachMode,
    /// The environment.
    pub environment_id: String,
    /// Who the token was issued to.
    pub principal_arn: String,
}

/// Where the backend is: being prepared at start, ready, or unavailable.
#[derive(Debug, Clone)]
enum BackendState {
    Preparing,
    Ready(Arc<Backend>),
    Unavailable(String),
}

/// Environments, sessions and their agents. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Environments {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    settings: CloudShellSettings,
    data_dir: PathBuf,
    /// The base URL of stream URLs (`ws[s]://host`).
    stream_base: String,
    /// The server's bound address and whether it speaks TLS, for the
    /// environments' way to the API.
    api: Option<(std::net::SocketAddr, bool)>,
    backend: watch::Receiver<BackendState>,
    backend_tx: watch::Sender<BackendState>,
    /// True once the start-up reconciliation is over: until then nothing
    /// may create or remove containers, or the reconciliation could remove
    /// a container started meanwhile.
    reconciled: watch::Receiver<bool>,
    reconciled_tx: watch::Sender<bool>,
    hubs: StdMutex<HashMap<String, AgentHub>>,
    locks: StdMutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Serializes the host-capacity check with the start it admits.
    admission: Mutex<()>,
}

impl Environments {
    /// Environments served from `store`, whose backend is prepared in the
    /// background (see [`Environments::prepare`]).
    pub fn new(
        store: Store,
        settings: CloudShellSettings,
        data_dir: PathBuf,
        public_url: &str,
        api: Option<(std::net::SocketAddr, bool)>,
    ) -> Environments {
        let (backend_tx, backend) = watch::channel(BackendState::Preparing);
        let (reconciled_tx, reconciled) = watch::channel(false);
        let stream_base = if let Some(rest) = public_url.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = public_url.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            public_url.to_string()
        };
        Environments {
            inner: Arc::new(Inner {
                store,
                settings,
                data_dir,
                stream_base,
                api,
                backend,
                backend_tx,
                reconciled,
                reconciled_tx,
                hubs: StdMutex::new(HashMap::new()),
                locks: StdMutex::new(HashMap::new()),
                admission: Mutex::new(()),
            }),
        }
    }

    /// Prepares the backend (host checks, image, agent), then reconciles
    /// the database with what runs on the host. Run once at start, in the
    /// background: the default image may take minutes to build.
    pub async fn prepare(&self) {
        let settings = self.inner.settings.clone();
        let data_dir = self.inner.data_dir.clone();
        let api = self.inner.api;
        let prepared =
            tokio::task::spawn_blocking(move || backend::prepare(&settings, &data_dir, api)).await;
        let state = match prepared {
            Ok(Ok(backend)) => BackendState::Ready(Arc::new(backend)),
            // Turned off on purpose: the setting is all there is to say.
            Ok(Err(Unavailable(why))) if !self.inner.settings.enabled => {
                BackendState::Unavailable(why)
            }
            Ok(Err(Unavailable(why))) => BackendState::Unavailable(errors::host_failure(
                "Environments cannot run on this server now",
                &why,
            )),
            Err(e) => BackendState::Unavailable(errors::host_failure(
                "Environments cannot run on this server now",
                &e,
            )),
        };
        let ready = matches!(state, BackendState::Ready(_));
        let _ = self.inner.backend_tx.send(state);
        if ready {
            if let Err(e) = self.reconcile().await {
                tracing::error!(error = %e.message, "reconciling environments failed");
            }
        }
        let _ = self.inner.reconciled_tx.send(true);
    }

    /// Waits until the start-up reconciliation is over.
    async fn wait_reconciled(&self) {
        let mut rx = self.inner.reconciled.clone();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// The backend, waiting while it is prepared; the error says why
    /// environments cannot run.
    async fn backend(&self) -> Result<Arc<Backend>, ApiError> {
        let mut rx = self.inner.backend.clone();
        loop {
            match &*rx.borrow_and_update() {
                BackendState::Ready(b) => return Ok(b.clone()),
                BackendState::Unavailable(why) => return Err(unavailable(why)),
                BackendState::Preparing => {}
            }
            if rx.changed().await.is_err() {
                return Err(unavailable("environments are shutting down"));
            }
        }
    }

    /// The backend if it is ready now.
    fn backend_now(&self) -> Option<Arc<Backend>> {
        match &*self.inner.backend.borrow() {
            BackendState::Ready(b) => Some(b.clone()),
            _ => None,
        }
    }

    /// The local runtime, once ready (administration and tests).
    pub fn runtime(&self) -> Option<Arc<seashell_runtime::Runtime>> {
        self.backend_now().map(|b| b.runtime.clone())
    }

    /// Why environments cannot run, if they cannot (for status reasons).
    pub fn unavailable_reason(&self) -> Option<String> {
        match &*self.inner.backend.borrow() {
            BackendState::Unavailable(why) => Some(why.clone()),
            _ => None,
        }
    }

    /// The URL at which shells reach the API, when environments have a
    /// network that leads to it.
    fn api_base(&self) -> Option<String> {
        self.backend_now().and_then(|b| b.api_url.clone())
    }

    /// The settings in force.
    pub fn settings(&self) -> &CloudShellSettings {
        &self.inner.settings
    }

    /// The server's data directory.
    fn data_dir(&self) -> &std::path::Path {
        &self.inner.data_dir
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The lock that admits one create or start at a time past the
    /// host-capacity check.
    fn admission(&self) -> &Mutex<()> {
        &self.inner.admission
    }

    /// The per-environment transition lock.
    fn lock_of(&self, id: &str) -> Arc<Mutex<()>> {
        let mut locks = self.inner.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.to_string()).or_default().clone()
    }

    /// The agent connection of a running environment.
    pub fn hub(&self, id: &str) -> Option<AgentHub> {
        let hubs = self.inner.hubs.lock().unwrap_or_else(|p| p.into_inner());
        hubs.get(id).filter(|h| !h.is_closed()).cloned()
    }

    fn set_hub(&self, id: &str, hub: Option<AgentHub>) {
        let mut hubs = self.inner.hubs.lock().unwrap_or_else(|p| p.into_inner());
        match hub {
            Some(h) => {
                hubs.insert(id.to_string(), h);
            }
            None => {
                hubs.remove(id);
            }
        }
    }

    /// An environment of `caller`'s (by the caller's stable principal ID,
    /// never the ARN, which a re-created user or another role's session of
    /// the same name would share), or `ResourceNotFoundException` (also
    /// for someone else's: its existence is not revealed).
    pub async fn owned(&self, caller: &Caller, id: &str) -> Result<EnvironmentRow, ApiError> {
        let env = self
            .store()
            .environment(id)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        match env {
            Some(env)
                if env.account_id == caller.account_id
                    && env.principal_id == caller.principal_id =>
            {
                Ok(env)
            }
            _ => Err(not_found(id)),
        }
    }

    /// A principal's environments in a region.
    pub async fn list(
        &self,
        caller: &Caller,
        region: &str,
    ) -> Result<Vec<EnvironmentRow>, ApiError> {
        self.store()
            .environments_of(&caller.account_id, &caller.principal_id, region)
            .await
            .map_err(|e| ApiError::internal(&e))
    }

    /// The home of a public environment.
    fn home_key(env: &EnvironmentRow) -> Option<HomeKey> {
        env.vpc_config
            .is_none()
            .then(|| HomeKey::new(&env.account_id, &env.home_principal, &env.region))
    }

    fn runtime_id(id: &str) -> Result<EnvironmentId, ApiError> {
        EnvironmentId::new(id).map_err(|e| ApiError::internal(&e))
    }
}
