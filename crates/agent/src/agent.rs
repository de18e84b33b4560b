//! State shared by the control connection and the sessions.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use seashell_protocol::agent_channel::{
    AgentMessage, AgentStatus, SessionEndReason, SessionId, Shell,
};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::credentials::CredentialStore;
use crate::files::Home;
use crate::init::Reaper;
use crate::session::pty::{PtyError, ShellEnv, ShellUser};
use crate::session::{self, OpenRequest, SessionHandle, SessionSettings};

/// Everything the agent is told at start.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The environment served, checked against the server's hello.
    pub environment_id: Option<String>,
    /// The home directory.
    pub home: PathBuf,
    /// Who the shells run as.
    pub user: ShellUser,
    /// Variables every shell gets unless the server passes its own
    /// (the credentials endpoint's address and token).
    pub shell_env: ShellEnv,
    /// Per-session settings.
    pub session: SessionSettings,
    /// Most concurrent sessions.
    pub max_sessions: usize,
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A session with that id is running.
    #[error("session {0} exists already")]
    Exists(SessionId),
    /// Too many sessions are running.
    #[error("at most {0} sessions may run at once")]
    Limit(usize),
    /// The shell could not be started.
    #[error(transparent)]
    Pty(#[from] PtyError),
}

/// Where messages for the server go: the current connection, if any.
#[derive(Debug, Default)]
struct Outbox {
    generation: u64,
    sender: Option<mpsc::Sender<AgentMessage>>,
    /// Tells the current connection that a newer one replaced it.
    replaced: Option<oneshot::Sender<()>>,
    /// Session-end reports not yet written to a connection. They wait here,
    /// rather than in a connection's queue, so that one made while a
    /// connection is being replaced reaches the next.
    reports: Vec<AgentMessage>,
}

/// The agent's shared state.
#[derive(Debug)]
pub struct Agent {
    config: AgentConfig,
    started: Instant,
    reaper: Arc<Reaper>,
    credentials: Arc<CredentialStore>,
    home: Option<Home>,
    sessions: Mutex<HashMap<SessionId, SessionHandle>>,
    outbox: Mutex<Outbox>,
    reports_waiting: Notify,
}

/// Messages queued for the connection's writer before senders wait.
pub const OUTBOX_CAPACITY: usize = 1024;

impl Agent {
    /// The agent's state. `home` is `None` if the home directory could not
    /// be opened; file transfers then fail and shells still start.
    pub fn new(
        config: AgentConfig,
        reaper: Arc<Reaper>,
        credentials: Arc<CredentialStore>,
        home: Option<Home>,
    ) -> Arc<Self> {
        Arc::new(Self {
            config,
            started: Instant::now(),
            reaper,
            credentials,
            home,
            sessions: Mutex::new(HashMap::new()),
            outbox: Mutex::new(Outbox::default()),
            reports_waiting: Notify::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The process reaper.
    pub fn reaper(&self) -> &Reaper {
        &self.reaper
    }

    /// The credentials being served.
    pub fn credentials(&self) -> &CredentialStore {
        &self.credentials
    }

    /// The home directory, if it could be opened.
    pub fn home(&self) -> Option<&Home> {
        self.home.as_ref()
    }

    /// Makes `sender` the current connection's outbox and tells the
    /// previous connection, if any, that it is replaced. Returns the new
    /// connection's generation and the signal that will tell it the same.
    ///
    /// Every session is detached: clients reached through an earlier
    /// connection are gone with it, and the new server attaches the ones it
    /// relays for.
    pub fn connect(&self, sender: mpsc::Sender<AgentMessage>) -> (u64, oneshot::Receiver<()>) {
        let (replace, replaced) = oneshot::channel();
        let generation = {
            let mut outbox = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
            outbox.generation += 1;
            outbox.sender = Some(sender);
            if let Some(previous) = outbox.replaced.replace(replace) {
                let _ = previous.send(());
            }
            outbox.generation
        };
        for handle in self.handles() {
            handle.detach();
        }
        (generation, replaced)
    }

    /// Takes the session-end reports waiting to be written.
    pub fn take_reports(&self) -> Vec<AgentMessage> {
        std::mem::take(
            &mut self
                .outbox
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .reports,
        )
    }

    /// Resolves when a report is waiting (at once if one arrived since the
    /// last call).
    pub async fn report_waiting(&self) {
        self.reports_waiting.notified().await;
    }

    /// Forgets the connection of `generation`, unless a newer one replaced
    /// it already, and detaches every session: their clients were reached
    /// through it.
    pub fn disconnect(&self, generation: u64) {
        {
            let mut outbox = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
            if outbox.generation != generation {
                return;
            }
            outbox.sender = None;
            outbox.replaced = None;
        }
        for handle in self.handles() {
            handle.detach();
        }
    }

    /// Drops the current connection's outbox, so its writer finishes once
    /// it has sent what is queued.
    pub fn close_outbox(&self) {
        self.outbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sender = None;
    }

    fn sender(&self) -> Option<mpsc::Sender<AgentMessage>> {
        self.outbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sender
            .clone()
    }

    /// Sends a message to the server if one is connected; otherwise drops
    /// it (data-channel frames stay in their session's outgoing buffer).
    pub async fn send(&self, message: AgentMessage) {
        if let Some(sender) = self.sender() {
            let _ = sender.send(message).await;
        }
    }

    /// Queues a report the server must not miss. The connection's writer
    /// sends it after everything queued before it; if no server is
    /// connected, the next connection sends it first.
    pub fn report(&self, message: AgentMessage) {
        self.outbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reports
            .push(message);
        self.reports_waiting.notify_one();
    }

    /// Starts a session.
    pub fn open_session(
        self: &Arc<Self>,
        id: SessionId,
        shell: Shell,
        cols: u16,
        rows: u16,
        env: BTreeMap<String, String>,
    ) -> Result<(), OpenError> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions.contains_key(&id) {
            return Err(OpenError::Exists(id));
        }
        if sessions.len() >= self.config.max_sessions {
            return Err(OpenError::Limit(self.config.max_sessions));
        }
        let handle = session::start(
            self.clone(),
            OpenRequest {
                id: id.clone(),
                shell,
                cols,
                rows,
                env,
            },
        )?;
        sessions.insert(id, handle);
        Ok(())
    }

    /// The session with `id`, if it is running.
    pub fn session(&self, id: &SessionId) -> Option<SessionHandle> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Forgets a session that has ended.
    pub fn remove_session(&self, id: &SessionId) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    fn handles(&self) -> Vec<SessionHandle> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// The status report.
    pub fn status(&self) -> AgentStatus {
        let now = Instant::now();
        let mut sessions: Vec<_> = self
            .handles()
            .iter()
            .map(|h| h.info().summary(now))
            .collect();
        sessions.sort_by(|a, b| a.session_id.cmp(&b.session_id));
        AgentStatus {
            agent_version: self.config.session.agent_version.clone(),
            uptime_ms: u64::try_from(now.saturating_duration_since(self.started).as_millis())
                .unwrap_or(u64::MAX),
            sessions,
            credentials_expiration: self.credentials.expiration(),
            home_used_bytes: self.home.as_ref().and_then(Home::used_bytes),
        }
    }

    /// Ends every session because the environment is stopping, and waits
    /// until each has reported its end.
    pub async fn shutdown(&self) {
        let closing: Vec<_> = self
            .handles()
            .into_iter()
            .map(|h| {
                tokio::spawn(async move { h.close(SessionEndReason::EnvironmentStopping).await })
            })
            .collect();
        for task in closing {
            let _ = task.await;
        }
    }
}
