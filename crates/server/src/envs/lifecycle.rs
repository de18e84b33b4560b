//! Creating, starting, suspending and deleting environments, and putting
//! the database and the host back in agreement after a restart.

use std::time::Duration;

use seashell_runtime::agent_hub::AgentHub;
use seashell_runtime::{EnvironmentSpec, EnvironmentStatus};

use super::status::{CREATING, DELETING, RESUMING, RUNNING, SUSPENDED, SUSPENDING};
use super::{conflict, quota_exceeded, unavailable, Environments};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::store::cloudshell::{EnvironmentRow, EnvironmentTime};
use crate::store::{now_ms, StoreError};

/// How long the agent may take to open its socket after a start.
const AGENT_CONNECT: Duration = Duration::from_secs(20);
/// How long a call that needs a running environment waits for one.
pub(super) const WAIT_RUNNING: Duration = Duration::from_secs(30);

/// A VPC configuration as the API takes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcConfig {
    /// The VPC.
    pub vpc_id: String,
    /// Its subnets.
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    /// Security groups.
    #[serde(default)]
    pub security_group_ids: Vec<String>,
}

fn internal(e: StoreError) -> ApiError {
    ApiError::internal(&e)
}

impl Environments {
    /// `createEnvironment`: the caller's environment of that name in the
    /// region, created (and started) if it does not exist yet. Idempotent.
    pub async fn create(
        &self,
        caller: &Caller,
        region: &str,
        name: Option<&str>,
        vpc: Option<&VpcConfig>,
    ) -> Result<EnvironmentRow, ApiError> {
        let name = name.unwrap_or_default();
        let store = self.store();
        if let Some(env) = store
            .environment_by_key(&caller.account_id, &caller.principal_id, region, name)
            .await
            .map_err(internal)?
        {
            return Ok(env);
        }
        if vpc.is_some() {
            let have = store
                .count_vpc_environments(&caller.account_id, &caller.principal_id)
                .await
                .map_err(internal)?;
            let max = self.settings().max_vpc_environments;
            if u64::try_from(have).unwrap_or(u64::MAX) >= max {
                return Err(quota_exceeded(format!(
                    "You already have {have} VPC environments; the quota is {max} per principal."
                )));
            }
        }
        self.check_usage(&caller.account_id, region).await?;
        self.check_free_space()?;
        // Held until the new row counts, so two creates cannot both take
        // the last place.
        let _admission = self.check_host_capacity().await?;
        let now = now_ms();
        let env = EnvironmentRow {
            environment_id: uuid::Uuid::new_v4().to_string(),
            account_id: caller.account_id.clone(),
            principal_arn: caller.arn.clone(),
            principal_id: caller.principal_id.clone(),
            home_principal: caller.principal_id.clone(),
            region: region.to_string(),
            name: name.to_string(),
            vpc_config: vpc
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| ApiError::internal(&e))?,
            status: CREATING.to_string(),
            status_reason: None,
            layout: None,
            idle_since: Some(now),
            heartbeat_at: None,
            running_since: None,
            credentials_console_session: None,
            credentials_access_key_id: None,
            credentials_expires_at: None,
            created_at: now,
            updated_at: now,
        };
        match store.insert_environment(&env).await {
            Ok(()) => {}
            // Two creates raced: the other one's environment is the answer.
            Err(StoreError::AlreadyExists(_)) => {
                return store
                    .environment_by_key(&caller.account_id, &caller.principal_id, region, name)
                    .await
                    .map_err(internal)?
                    .ok_or_else(|| conflict("The environment is being created; try again."));
            }
            Err(e) => return Err(internal(e)),
        }
        tracing::info!(environment = %env.environment_id, %region, "environment created");
        self.spawn_provision(env.environment_id.clone());
        Ok(env)
    }

    /// `startEnvironment`: starts a suspended environment; a running or
    /// starting one is left as it is. Returns the status after the call.
    pub async fn start(&self, caller: &Caller, id: &str) -> Result<String, ApiError> {
        let env = self.owned(caller, id).await?;
        match env.status.as_str() {
            RUNNING | CREATING | RESUMING => Ok(env.status),
            SUSPENDED => {
                self.check_usage(&env.account_id, &env.region).await?;
                self.check_free_space()?;
                let _admission = self.check_host_capacity().await?;
                if self
                    .store()
                    .set_environment_status(id, &[SUSPENDED], RESUMING, None)
                    .await
                    .map_err(internal)?
                {
                    self.spawn_provision(id.to_string());
                }
                Ok(RESUMING.to_string())
            }
            SUSPENDING => Err(conflict(
                "The environment is being suspended; start it again once it is SUSPENDED.",
            )),
            other => Err(conflict(format!(
                "The environment cannot be started while it is {other}."
            ))),
        }
    }

    /// `stopEnvironment`: suspends a running environment (its sessions end,
    /// its home is kept). Returns the status after the call.
    pub async fn stop(&self, caller: &Caller, id: &str) -> Result<String, ApiError> {
        let env = self.owned(caller, id).await?;
        self.suspend(&env, "StopEnvironment").await
    }

    /// Suspends `env` if it is running (or starting); idempotent for one
    /// that is suspending or suspended.
    pub(super) async fn suspend(
        &self,
        env: &EnvironmentRow,
        why: &str,
    ) -> Result<String, ApiError> {
        let id = &env.environment_id;
        match env.status.as_str() {
            SUSPENDING | SUSPENDED => Ok(env.status.clone()),
            RUNNING | CREATING | RESUMING => {
                if self
                    .store()
                    .set_environment_status(id, &[RUNNING, CREATING, RESUMING], SUSPENDING, None)
                    .await
                    .map_err(internal)?
                {
                    tracing::info!(environment = %id, reason = why, "suspending");
                    self.spawn_suspend(id.clone());
                }
                Ok(SUSPENDING.to_string())
            }
            other => Err(conflict(format!(
                "The environment cannot be stopped while it is {other}."
            ))),
        }
    }

    /// `deleteEnvironment`: removes the environment and its home for good.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<String, ApiError> {
        let env = self.owned(caller, id).await?;
        if env.status == DELETING {
            return Ok(DELETING.to_string());
        }
        self.store()
            .set_environment_status(id, &[], DELETING, None)
            .await
            .map_err(internal)?;
        tracing::info!(environment = %id, "deleting");
        let this = self.clone();
        let id = id.to_string();
        tokio::spawn(async move { this.finish_delete(&id).await });
        Ok(DELETING.to_string())
    }

    /// Deletes every environment of a principal (and so its homes), in the
    /// background: for `DeleteUser`, whose environments nobody can reach
    /// any more.
    pub async fn delete_all_of(&self, account_id: &str, principal_id: &str) {
        let envs = match self
            .store()
            .environments_of_principal(account_id, principal_id)
            .await
        {
            Ok(envs) => envs,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list a deleted principal's environments");
                return;
            }
        };
        for env in envs {
            let id = env.environment_id;
            if let Err(e) = self
                .store()
                .set_environment_status(&id, &[], DELETING, None)
                .await
            {
                tracing::warn!(environment = %id, error = %e, "cannot delete a deleted principal's environment");
                continue;
            }
            tracing::info!(environment = %id, "deleting: its principal was deleted");
            let this = self.clone();
            tokio::spawn(async move { this.finish_delete(&id).await });
        }
    }

    /// Refuses new work once the account's monthly usage in the region is
    /// spent.
    pub(super) async fn check_usage(&self, account_id: &str, region: &str) -> Result<(), ApiError> {
        let month = chrono::Utc::now().format("%Y-%m").to_string();
        let used = self
            .store()
            .usage(account_id, region, &month)
            .await
            .map_err(internal)?;
        let limit =
            i64::try_from(self.settings().monthly_hours.saturating_mul(3600)).unwrap_or(i64::MAX);
        if used >= limit {
            return Err(quota_exceeded(format!(
                "The monthly usage quota of {} hours in {region} is used up.",
                self.settings().monthly_hours
            )));
        }
        Ok(())
    }

    /// Refuses to create or start an environment while the server runs
    /// `max_running_environments`. The guard it returns admits one: hold it
    /// until the environment's row says it is starting.
    pub(super) async fn check_host_capacity(
        &self,
    ) -> Result<tokio::sync::MutexGuard<'_, ()>, ApiError> {
        let guard = self.admission().lock().await;
        let max = self.settings().max_running_environments;
        if max == 0 {
            return Ok(guard);
        }
        let active = self
            .store()
            .count_active_environments()
            .await
            .map_err(internal)?;
        if u64::try_from(active).unwrap_or(u64::MAX) >= max {
            tracing::warn!(active, max, "refusing a start: the host is full");
            return Err(unavailable(format!(
                "The server already runs {active} environments, its maximum \
                 (cloudshell.max_running_environments); try again once one stops."
            )));
        }
        Ok(guard)
    }

    /// Refuses to create or start an environment while the data volume or
    /// the runtime's volume has less than `min_free_mib` free: a start
    /// writes a root layer and perhaps a new home, and the database and
    /// audit journal on the same disk must keep room to record the calls.
    pub(super) fn check_free_space(&self) -> Result<(), ApiError> {
        let floor = self.settings().min_free_mib;
        if floor == 0 {
            return Ok(());
        }
        let data_dir = self.data_dir();
        let runtime_dir = self.settings().runtime_dir(data_dir);
        for (what, dir) in [("data", data_dir), ("runtime", runtime_dir.as_path())] {
            // The runtime directory may not exist before the first start.
            let probe = if dir.exists() { dir } else { data_dir };
            match nix::sys::statvfs::statvfs(probe) {
                Ok(st) => {
                    let free = st.blocks_available().saturating_mul(st.fragment_size()) >> 20;
                    if free < floor {
                        tracing::warn!(volume = %probe.display(), free_mib = free, floor_mib = floor, "refusing a start: disk nearly full");
                        return Err(unavailable(format!(
                            "The server's {what} volume has {free} MiB free, less than the \
                             {floor} MiB it keeps in reserve (cloudshell.min_free_mib); \
                             no environment can be started until space is freed."
                        )));
                    }
                }
                Err(e) => {
                    tracing::warn!(volume = %probe.display(), error = %e, "cannot read free space")
                }
            }
        }
        Ok(())
    }

    /// Waits (a bounded time) until the environment runs, starting it if it
    /// is suspended.
    pub(super) async fn wait_running(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<EnvironmentRow, ApiError> {
        let deadline = tokio::time::Instant::now() + WAIT_RUNNING;
        let mut started = false;
        loop {
            let env = self.owned(caller, id).await?;
            match env.status.as_str() {
                RUNNING if self.hub(id).is_some() => return Ok(env),
                SUSPENDED if !started => {
                    started = true;
                    self.start(caller, id).await?;
                }
                SUSPENDED => {
                    let why = env
                        .status_reason
                        .unwrap_or_else(|| "it stopped while starting".into());
                    return Err(conflict(format!(
                        "The environment could not be started: {why}"
                    )));
                }
                SUSPENDING | DELETING => {
                    return Err(conflict(format!(
                        "The environment is {}; no session can be opened.",
                        env.status
                    )))
                }
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(conflict(format!(
                    "The environment is still {}; try again shortly.",
                    env.status
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn spawn_provision(&self, id: String) {
        let this = self.clone();
        tokio::spawn(async move { this.provision(&id).await });
    }

    fn spawn_suspend(&self, id: String) {
        let this = self.clone();
        tokio::spawn(async move { this.finish_suspend(&id, "environment_stopping").await });
    }

    /// Brings a CREATING or RESUMING environment to RUNNING, or back to
    /// SUSPENDED with the reason it could not start.
    async fn provision(&self, id: &str) {
        self.wait_reconciled().await;
        let lock = self.lock_of(id);
        let _held = lock.lock().await;
        let span = tracing::info_span!("environment.start", environment = %id);
        let _enter = span.enter();
        let env = match self.store().environment(id).await {
            Ok(Some(env)) if env.status == CREATING || env.status == RESUMING => env,
            Ok(_) => return,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the environment");
                return;
            }
        };
        let started = tokio::time::Instant::now();
        match self.start_container(&env).await {
            Ok(hub) => {
                let now = now_ms();
                let store = self.store();
                let home = store.touch_home(&env);
                if env.vpc_config.is_none() {
                    if let Err(e) = home.await {
                        tracing::warn!(error = %e, "cannot record the home's use");
                    }
                }
                let _ = store
                    .set_environment_time(id, EnvironmentTime::RunningSince, Some(now))
                    .await;
                let _ = store
                    .set_environment_time(id, EnvironmentTime::IdleSince, Some(now))
                    .await;
                self.set_hub(id, Some(hub.clone()));
                self.watch_hub(id.to_string(), hub);
                match store
                    .set_environment_status(id, &[CREATING, RESUMING], RUNNING, None)
                    .await
                {
                    Ok(true) => {
                        tracing::info!(ms = started.elapsed().as_millis() as u64, "running")
                    }
                    // Deleted or stopped meanwhile: the task that did so
                    // tears the container down.
                    Ok(false) => self.set_hub(id, None),
                    Err(e) => tracing::error!(error = %e, "cannot record RUNNING"),
                }
            }
            Err(failure) => {
                self.stop_container(id).await;
                let reason = match failure {
                    StartError::Unavailable(why) => why,
                    StartError::Host(why) => {
                        super::errors::host_failure("the host could not run it", &why)
                    }
                };
                let _ = self
                    .store()
                    .set_environment_status(id, &[CREATING, RESUMING], SUSPENDED, Some(&reason))
                    .await;
            }
        }
    }

    /// Runs the container (or finds it running) and connects to its agent.
    async fn start_container(&self, env: &EnvironmentRow) -> Result<AgentHub, StartError> {
        let backend = self
            .backend()
            .await
            .map_err(|e| StartError::Unavailable(e.message))?;
        let image = backend.image().await.map_err(|e| StartError::Host(e.0))?;
        let rid = Self::runtime_id(&env.environment_id).map_err(|e| StartError::Host(e.message))?;
        let home = Self::home_key(env);
        let runtime = backend.runtime.clone();
        let b = backend.clone();
        let hostname = format!(
            "cloudshell-{}",
            &env.environment_id[..8.min(env.environment_id.len())]
        );
        let rid2 = rid.clone();
        let socket = tokio::task::spawn_blocking(move || -> Result<std::path::PathBuf, String> {
            let status = runtime.status(&rid2).map_err(|e| e.to_string())?;
            if status != EnvironmentStatus::Running {
                // A container left created or exited by a crash is cleaned
                // first; a fresh one is made from the spec.
                if status != EnvironmentStatus::Stopped {
                    runtime.stop(&rid2).map_err(|e| e.to_string())?;
                }
                let mut spec = EnvironmentSpec {
                    id: rid2.clone(),
                    hostname,
                    id_map: image.id_map,
                    image,
                    limits: b.limits,
                    home,
                    init: Vec::new(),
                    ro_binds: Vec::new(),
                };
                b.agent.apply(&mut spec).map_err(|e| e.to_string())?;
                runtime.create(&spec).map_err(|e| e.to_string())?;
                runtime.start(&rid2).map_err(|e| e.to_string())?;
            }
            runtime.agent_socket(&rid2).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(StartError::Host)?;
        AgentHub::connect(&socket, rid.as_str(), AGENT_CONNECT)
            .await
            .map_err(|e| StartError::Host(format!("the environment's agent did not answer: {e}")))
    }

    /// Stops the container, if any (idempotent).
    async fn stop_container(&self, id: &str) {
        let Some(backend) = self.backend_now() else {
            return;
        };
        let Ok(rid) = Self::runtime_id(id) else {
            return;
        };
        let runtime = backend.runtime.clone();
        let done = tokio::task::spawn_blocking(move || runtime.stop(&rid)).await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(environment = %id, error = %e, "cannot stop the container")
            }
            Err(e) => tracing::error!(environment = %id, error = %e, "stop task failed"),
        }
    }

    /// Ends a SUSPENDING environment's sessions, stops its container,
    /// meters its running time and marks it SUSPENDED.
    pub(super) async fn finish_suspend(&self, id: &str, reason: &str) {
        self.wait_reconciled().await;
        let lock = self.lock_of(id);
        let _held = lock.lock().await;
        let span = tracing::info_span!("environment.suspend", environment = %id);
        let _enter = span.enter();
        match self.store().environment(id).await {
            Ok(Some(env)) if env.status == SUSPENDING => {
                self.set_hub(id, None);
                self.stop_container(id).await;
                let store = self.store();
                let _ = store.end_all_sessions(id, reason).await;
                self.meter(&env).await;
                let _ = store
                    .set_environment_time(id, EnvironmentTime::RunningSince, None)
                    .await;
                let _ = store.set_forwarded_credentials(id, None, None, None).await;
                let _ = store
                    .set_environment_status(id, &[SUSPENDING], SUSPENDED, None)
                    .await;
                tracing::info!("suspended");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot read the environment"),
        }
    }

    /// Deletes a DELETING environment: container, home volume, rows.
    pub(super) async fn finish_delete(&self, id: &str) {
        self.wait_reconciled().await;
        let lock = self.lock_of(id);
        let _held = lock.lock().await;
        let span = tracing::info_span!("environment.delete", environment = %id);
        let _enter = span.enter();
        let env = match self.store().environment(id).await {
            Ok(Some(env)) if env.status == DELETING => env,
            Ok(_) => return,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the environment");
                return;
            }
        };
        self.set_hub(id, None);
        if let Err(e) = self.delete_container_and_home(&env).await {
            tracing::error!(error = %e, "cannot delete the environment; it stays DELETING");
            let _ = self
                .store()
                .set_environment_status(
                    id,
                    &[DELETING],
                    DELETING,
                    Some(&format!("deletion failed: {e}")),
                )
                .await;
            return;
        }
        self.meter(&env).await;
        let store = self.store();
        if let Err(e) = store.delete_environment(id).await {
            tracing::error!(error = %e, "cannot remove the environment's rows");
            return;
        }
        if env.vpc_config.is_none() {
            let _ = store
                .forget_home(&env.account_id, &env.principal_id, &env.region)
                .await;
        }
        let mut locks = self.inner.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.remove(id);
        tracing::info!("deleted");
    }

    /// Removes the container and, for a public environment, the home.
    pub(super) async fn delete_container_and_home(
        &self,
        env: &EnvironmentRow,
    ) -> Result<(), String> {
        let backend = self.backend().await.map_err(|e| e.message)?;
        let rid = Self::runtime_id(&env.environment_id).map_err(|e| e.message)?;
        let home = Self::home_key(env);
        let runtime = backend.runtime.clone();
        tokio::task::spawn_blocking(move || runtime.delete(&rid, home.as_ref()))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    /// Adds the running time since `running_since` to the account's usage.
    pub(super) async fn meter(&self, env: &EnvironmentRow) {
        let Some(since) = env.running_since else {
            return;
        };
        let now = now_ms();
        let seconds = (now - since).max(0) / 1000;
        if seconds == 0 {
            return;
        }
        let month = chrono::Utc::now().format("%Y-%m").to_string();
        let store = self.store();
        if let Err(e) = store
            .add_usage(&env.account_id, &env.region, &month, seconds)
            .await
        {
            tracing::warn!(error = %e, "cannot meter usage");
            return;
        }
        // Whatever was metered is not metered again.
        let next = since + seconds * 1000;
        let _ = store
            .set_environment_time(
                &env.environment_id,
                EnvironmentTime::RunningSince,
                Some(next),
            )
            .await;
    }

    /// Follows an agent connection: records sessions that end, and notices
    /// when the agent goes away without the server stopping it.
    fn watch_hub(&self, id: String, hub: AgentHub) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut events = hub.session_events();
            loop {
                tokio::select! {
                    event = events.recv() => match event {
                        Ok(ended) => this.session_ended(&id, &ended.session_id.0, ended.reason).await,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => break,
                    },
                    () = hub.closed() => break,
                }
            }
            this.agent_gone(&id, &hub).await;
        });
    }

    /// The agent connection of `id` ended: if the environment should be
    /// running and is not, say so and clean up.
    async fn agent_gone(&self, id: &str, hub: &AgentHub) {
        // A newer, live connection replaced this one.
        if !hub.is_closed() || self.hub(id).is_some() {
            return;
        }
        let Ok(Some(env)) = self.store().environment(id).await else {
            return;
        };
        if env.status != RUNNING {
            return;
        }
        tracing::warn!(environment = %id, "the agent connection closed unexpectedly");
        self.set_hub(id, None);
        // Reconnect if the agent still runs (a dropped socket); else the
        // environment is reported suspended with the reason.
        if let Ok(hub) = self.reconnect(&env).await {
            self.set_hub(id, Some(hub.clone()));
            self.watch_hub(id.to_string(), hub);
            return;
        }
        let lock = self.lock_of(id);
        let _held = lock.lock().await;
        self.stop_container(id).await;
        let store = self.store();
        let _ = store.end_all_sessions(id, "environment_failed").await;
        self.meter(&env).await;
        let _ = store
            .set_environment_time(id, EnvironmentTime::RunningSince, None)
            .await;
        let _ = store
            .set_environment_status(
                id,
                &[RUNNING],
                SUSPENDED,
                Some("the environment stopped unexpectedly; start it again (the home is kept)"),
            )
            .await;
    }

    /// Connects to the agent of a container that is still running.
    async fn reconnect(&self, env: &EnvironmentRow) -> Result<AgentHub, String> {
        let backend = self.backend_now().ok_or("no backend")?;
        let rid = Self::runtime_id(&env.environment_id).map_err(|e| e.message)?;
        let runtime = backend.runtime.clone();
        let rid2 = rid.clone();
        let socket = tokio::task::spawn_blocking(move || {
            match runtime.status(&rid2).map_err(|e| e.to_string())? {
                EnvironmentStatus::Running => {
                    runtime.agent_socket(&rid2).map_err(|e| e.to_string())
                }
                other => Err(format!("the container is {other:?}")),
            }
        })
        .await
        .map_err(|e| e.to_string())??;
        AgentHub::connect(&socket, rid.as_str(), Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())
    }

    /// After a start: environments the database says run are reattached if
    /// their container runs, else reported suspended; transitions a crash
    /// interrupted are finished; containers and leftovers the database does
    /// not know are removed.
    pub(super) async fn reconcile(&self) -> Result<(), ApiError> {
        let span = tracing::info_span!("environments.reconcile");
        let _enter = span.enter();
        let envs = self.store().all_environments().await.map_err(internal)?;
        let mut keep = std::collections::HashSet::new();
        for env in &envs {
            let id = env.environment_id.clone();
            match env.status.as_str() {
                RUNNING => match self.reconnect(env).await {
                    Ok(hub) => {
                        tracing::info!(environment = %id, "reattached to a running environment");
                        self.set_hub(&id, Some(hub.clone()));
                        self.watch_hub(id.clone(), hub);
                        keep.insert(id);
                    }
                    Err(why) => {
                        tracing::warn!(environment = %id, reason = %why, "was running; now suspended");
                        self.stop_container(&id).await;
                        let store = self.store();
                        let _ = store.end_all_sessions(&id, "environment_stopping").await;
                        let _ = store
                            .set_environment_time(&id, EnvironmentTime::RunningSince, None)
                            .await;
                        let _ = store
                            .set_environment_status(
                                &id,
                                &[RUNNING],
                                SUSPENDED,
                                Some("the environment stopped while the server was down"),
                            )
                            .await;
                    }
                },
                // Interrupted starts begin again from a clean container.
                CREATING | RESUMING => {
                    self.stop_container(&id).await;
                    self.spawn_provision(id);
                }
                SUSPENDING => self.spawn_suspend(id),
                DELETING => {
                    let this = self.clone();
                    tokio::spawn(async move { this.finish_delete(&id).await });
                }
                _ => {}
            }
        }
        let backend = self.backend().await?;
        let runtime = backend.runtime.clone();
        // Environments being started or stopped are left to their tasks.
        let busy: std::collections::HashSet<String> = envs
            .iter()
            .filter(|e| e.status != SUSPENDED)
            .map(|e| e.environment_id.clone())
            .collect();
        let report = tokio::task::spawn_blocking(move || {
            runtime.reconcile(&|rid| keep.contains(rid.as_str()) || busy.contains(rid.as_str()))
        })
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))?;
        tracing::info!(?report, "reconciled");
        Ok(())
    }
}

/// Why an environment did not start.
enum StartError {
    /// Environments cannot run here; the message is fit for callers.
    Unavailable(String),
    /// The host failed: the details are for the log only.
    Host(String),
}
