//! What the service does on its own, every few seconds: ends sessions that
//! were idle too long or reached the maximum duration, suspends
//! environments without sessions after the grace period, meters running
//! time, tends forwarded credentials, purges spent tokens, deletes homes
//! unused past the retention period (recorded as `AwsServiceEvent`), and
//! revokes IAM Identity Center role credentials whose user or assignment is
//! gone (so such changes take effect within one round).

use std::sync::Arc;
use std::time::Duration;

use seashell_audit::{IdentityType, Record, Resource, UserIdentity};
use seashell_protocol::agent_channel::{SessionEndReason, SessionId};

use super::status::{RUNNING, SUSPENDED};
use super::Environments;
use crate::state::AppState;
use crate::store::cloudshell::{EnvironmentRow, HomeRow};
use crate::store::now_ms;

/// The CloudShell service's event source.
pub const EVENT_SOURCE: &str = "cloudshell.amazonaws.com";

/// Runs the duties until the task is aborted.
pub fn spawn(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    let every = Duration::from_secs(state.envs.settings().duty_interval_seconds);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            run_once(&state).await;
        }
    })
}

/// One round of every duty.
pub async fn run_once(state: &AppState) {
    let span = tracing::debug_span!("environments.duties");
    let _enter = span.enter();
    match state.store.revoke_lapsed_sso_access().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(revoked = n, "revoked role credentials of lapsed SSO access"),
        Err(e) => tracing::warn!(error = %e, "cannot revoke lapsed SSO access"),
    }
    if let Err(e) = state.store.purge_spent_sso_records().await {
        tracing::warn!(error = %e, "cannot purge spent SSO records");
    }
    let envs = &state.envs;
    envs.wait_reconciled().await;
    if envs.backend_now().is_none() {
        return;
    }
    let _ = state.store.purge_stream_tokens().await;
    let _ = state.store.purge_spent_file_urls().await;
    match state.store.all_environments().await {
        Ok(all) => {
            for env in all.iter().filter(|e| e.status == RUNNING) {
                envs.tend(env).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot list environments"),
    }
    retention(state).await;
}

impl Environments {
    /// The duties of one running environment.
    async fn tend(&self, env: &EnvironmentRow) {
        self.meter(env).await;
        self.tend_credentials(env).await;
        self.end_timed_out_sessions(env).await;
        let grace = i64::try_from(self.settings().suspend_after_seconds).unwrap_or(i64::MAX) * 1000;
        if let Some(since) = env.idle_since {
            if now_ms() - since >= grace {
                let live = self
                    .store()
                    .live_sessions(&env.environment_id)
                    .await
                    .unwrap_or_default();
                if live.is_empty() {
                    let _ = self.suspend(env, "no sessions for the grace period").await;
                }
            }
        }
    }

    /// Ends sessions idle past the timeout (no keystrokes and no console
    /// heartbeat) or older than the maximum duration; the agent tells the
    /// client why.
    async fn end_timed_out_sessions(&self, env: &EnvironmentRow) {
        let Some(hub) = self.hub(&env.environment_id) else {
            return;
        };
        let status = match hub.status().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(environment = %env.environment_id, error = %e, "agent status failed");
                return;
            }
        };
        let idle_limit = self.settings().idle_timeout().as_millis() as u64;
        let max_age = self.settings().max_session().as_millis() as u64;
        let since_heartbeat = env
            .heartbeat_at
            .map(|at| u64::try_from(now_ms() - at).unwrap_or(0));
        for s in status.sessions {
            let idle = match (s.idle_ms, since_heartbeat) {
                (Some(i), Some(h)) => Some(i.min(h)),
                (i, _) => i,
            };
            let reason = if s.age_ms.is_some_and(|a| a >= max_age) {
                SessionEndReason::MaxDuration
            } else if idle.is_some_and(|i| i >= idle_limit) {
                SessionEndReason::IdleTimeout
            } else {
                continue;
            };
            tracing::info!(environment = %env.environment_id, session = %s.session_id.0, ?reason, "ending session");
            if let Err(e) = hub
                .close_session(&SessionId(s.session_id.0.clone()), Some(reason))
                .await
            {
                tracing::warn!(error = %e, "cannot end session");
            }
            self.session_ended(&env.environment_id, &s.session_id.0, reason)
                .await;
        }
    }
}

/// Deletes homes nobody used for the retention period, with their
/// (suspended) environments, and records each deletion.
async fn retention(state: &AppState) {
    let envs = &state.envs;
    let cutoff =
        now_ms() - i64::try_from(envs.settings().home_retention().as_millis()).unwrap_or(i64::MAX);
    let homes = match state.store.homes_unused_since(cutoff).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list homes");
            return;
        }
    };
    for home in homes {
        if let Err(why) = delete_home(state, &home).await {
            tracing::warn!(principal = %home.principal_arn, region = %home.region, reason = %why, "home kept");
        }
    }
}

async fn delete_home(state: &AppState, home: &HomeRow) -> Result<(), String> {
    let envs = &state.envs;
    let store = &state.store;
    let env = store
        .environment_by_key(&home.account_id, &home.principal_id, &home.region, "")
        .await
        .map_err(|e| e.to_string())?;
    let environment_id = env.as_ref().map(|e| e.environment_id.clone());
    match &env {
        // In use: the clock restarts instead.
        Some(env) if env.status != SUSPENDED => {
            let _ = store.touch_home(env).await;
            return Ok(());
        }
        Some(env) => {
            let lock = envs.lock_of(&env.environment_id);
            let _held = lock.lock().await;
            envs.delete_container_and_home(env).await?;
            store
                .delete_environment(&env.environment_id)
                .await
                .map_err(|e| e.to_string())?;
        }
        None => {
            let backend = envs.backend_now().ok_or("environments are unavailable")?;
            let key = seashell_runtime::HomeKey::new(
                &home.account_id,
                &home.home_principal,
                &home.region,
            );
            let runtime = backend.runtime.clone();
            tokio::task::spawn_blocking(move || runtime.delete_home(&key))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        }
    }
    store
        .forget_home(&home.account_id, &home.principal_id, &home.region)
        .await
        .map_err(|e| e.to_string())?;
    let days = envs.settings().home_retention_days;
    tracing::info!(principal = %home.principal_arn, region = %home.region, days, "home deleted after the retention period");
    let mut identity = UserIdentity::new(IdentityType::AwsService);
    identity.invoked_by = Some(EVENT_SOURCE.to_string());
    let mut record = Record::api_call(EVENT_SOURCE, "DeleteEnvironment", &home.region, identity)
        .event_type(seashell_audit::EventType::AwsServiceEvent)
        .recipient_account_id(&home.account_id)
        .read_only(false)
        .additional_event_data(serde_json::json!({
            "reason": format!("The home directory was not used for {days} days."),
            "principalArn": home.principal_arn,
            "lastUsedAt": chrono::DateTime::<chrono::Utc>::from_timestamp_millis(home.last_used_at)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }));
    if let Some(id) = environment_id {
        record = record
            .request_parameters(serde_json::json!({ "EnvironmentId": id }))
            .resource(Resource::new(
                "AWS::CloudShell::Environment",
                format!(
                    "arn:aws:cloudshell:{}:{}:environment/{id}",
                    home.region, home.account_id
                ),
                &home.account_id,
            ));
    }
    crate::http::audit(state, record.build()).await;
    Ok(())
}
