//! Sessions (shells, one per console tab) and the one-time tokens that open
//! their data channels.

use std::collections::BTreeMap;

use base64::Engine as _;
use rand::RngCore as _;
use seashell_protocol::agent_channel::{AttachMode, ErrorCode, SessionEndReason, SessionId, Shell};
use seashell_runtime::agent_hub::HubError;
use sha2::{Digest, Sha256};

use super::status::RUNNING;
use super::{conflict, quota_exceeded, validation, Environments, StreamGrant};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::store::cloudshell::{EnvironmentTime, SessionRow};
use crate::store::now_ms;

/// What `createSession` and `resumeSession` answer.
#[derive(Debug, Clone)]
pub struct CreatedSession {
    /// The session.
    pub session_id: String,
    /// The one-time data-channel token.
    pub token: String,
    /// Where to open the data channel.
    pub stream_url: String,
}

/// The longest command `approveCommand` takes, in bytes (CloudShell's own
/// limit).
pub const MAX_APPROVED_COMMAND: usize = 65412;

/// A command to type into a shell must be one line of printable text, so
/// what runs is exactly the one command that was approved: a newline would
/// run a second one, and other control characters could edit the line
/// (Ctrl-U, Ctrl-W), interrupt what runs (Ctrl-C) or leave the line
/// editor's modes. A tab is the one allowed, as people paste them.
fn check_command(command: &str) -> Result<(), ApiError> {
    if command.is_empty() {
        return Err(validation("Command must not be empty."));
    }
    if command.len() > MAX_APPROVED_COMMAND {
        return Err(validation(format!(
            "Command is {} bytes; it must be at most {MAX_APPROVED_COMMAND}.",
            command.len()
        )));
    }
    if command.contains(['\n', '\r']) {
        return Err(validation(
            "Command must be a single line: it must not contain line breaks.",
        ));
    }
    if let Some(c) = command.chars().find(|&c| c.is_control() && c != '\t') {
        return Err(validation(format!(
            "Command must not contain control characters other than tab (found U+{:04X}).",
            u32::from(c)
        )));
    }
    Ok(())
}

/// Terminal size until the client says otherwise.
const INITIAL_COLS: u16 = 80;
const INITIAL_ROWS: u16 = 24;

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn parse_shell(shell: Option<&str>) -> Result<Shell, ApiError> {
    match shell.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("bash") => Ok(Shell::Bash),
        Some("zsh") => Ok(Shell::Zsh),
        Some("pwsh") | Some("powershell") => Ok(Shell::Pwsh),
        Some(other) => Err(validation(format!(
            "Shell {other:?} is not one of bash, zsh and pwsh."
        ))),
    }
}

fn shell_name(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => "bash",
        Shell::Zsh => "zsh",
        Shell::Pwsh => "pwsh",
    }
}

fn end_reason_name(reason: SessionEndReason) -> &'static str {
    match reason {
        SessionEndReason::Exited => "exited",
        SessionEndReason::IdleTimeout => "idle_timeout",
        SessionEndReason::MaxDuration => "max_duration",
        SessionEndReason::Closed => "closed",
        SessionEndReason::EnvironmentStopping => "environment_stopping",
    }
}

/// An agent failure, as the caller sees it.
pub(super) fn hub_error(e: HubError) -> ApiError {
    match e {
        HubError::Agent { code, message } => {
            use seashell_protocol::agent_channel::ErrorCode;
            match code {
                ErrorCode::BadRequest | ErrorCode::PathOutsideHome => validation(message),
                ErrorCode::SessionLimit => quota_exceeded(message),
                ErrorCode::UnknownSession => conflict("The session has ended."),
                _ => ApiError::internal(&message),
            }
        }
        other => conflict(format!("The environment's agent is not reachable: {other}")),
    }
}

impl Environments {
    /// `createSession`: the tab's live shell (reattached with a repaint),
    /// or a new one.
    pub async fn create_session(
        &self,
        caller: &Caller,
        id: &str,
        tab_id: &str,
        shell: Option<&str>,
    ) -> Result<CreatedSession, ApiError> {
        if tab_id.is_empty() || tab_id.len() > 128 {
            return Err(validation("TabId must be 1 to 128 characters."));
        }
        let shell = parse_shell(shell)?;
        let env = self.wait_running(caller, id).await?;
        let store = self.store();
        let existing = store
            .live_session_of_tab(id, tab_id)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        if let Some(session) = existing {
            if session.principal_arn == caller.arn {
                self.touch(&env).await;
                return self
                    .issue_token(&session.session_id, caller, AttachMode::Fresh)
                    .await;
            }
        }
        let live = store
            .count_live_sessions(&env.account_id, &env.region)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        let max = self.settings().max_shells_per_region;
        if u64::try_from(live).unwrap_or(u64::MAX) >= max {
            return Err(quota_exceeded(format!(
                "The account has {live} shells open in {}; the quota is {max} concurrent shells per region.",
                env.region
            )));
        }
        self.check_usage(&env.account_id, &env.region).await?;
        let hub = self
            .hub(id)
            .ok_or_else(|| conflict("The environment is not running."))?;
        let session_id = uuid::Uuid::new_v4().to_string();
        let shell_env = self.shell_environment(&env.region);
        hub.open_session(
            &SessionId(session_id.clone()),
            shell,
            INITIAL_COLS,
            INITIAL_ROWS,
            shell_env,
        )
        .await
        .map_err(hub_error)?;
        let row = SessionRow {
            session_id: session_id.clone(),
            environment_id: id.to_string(),
            tab_id: tab_id.to_string(),
            shell: shell_name(shell).to_string(),
            principal_arn: caller.arn.clone(),
            created_at: now_ms(),
            ended_at: None,
            end_reason: None,
        };
        if let Err(e) = store.insert_session(&row).await {
            // A shell nobody can reach is closed again.
            let _ = hub.close_session(&SessionId(session_id), None).await;
            return Err(ApiError::internal(&e));
        }
        let _ = store
            .set_environment_time(id, EnvironmentTime::IdleSince, None)
            .await;
        self.touch(&env).await;
        tracing::info!(environment = %id, session = %row.session_id, "session opened");
        // A new session's first attach is a handshake from the start.
        self.issue_token(&row.session_id, caller, AttachMode::Fresh)
            .await
    }

    /// `resumeSession`: a new token for a live session, to continue it
    /// without loss.
    pub async fn resume_session(
        &self,
        caller: &Caller,
        id: &str,
        session_id: &str,
    ) -> Result<CreatedSession, ApiError> {
        self.owned(caller, id).await?;
        let session = self.live_session(id, session_id).await?;
        // Just after a restart of the server the agent connection may still
        // be coming back: wait for it (a bounded time).
        let env = self.wait_running(caller, id).await?;
        if env.status != RUNNING {
            return Err(conflict(
                "The environment is not running; create a new session.",
            ));
        }
        self.issue_token(&session.session_id, caller, AttachMode::Resume)
            .await
    }

    /// `deleteSession`: ends a session and its shell.
    pub async fn delete_session(
        &self,
        caller: &Caller,
        id: &str,
        session_id: &str,
    ) -> Result<(), ApiError> {
        self.owned(caller, id).await?;
        let session = self.live_session(id, session_id).await?;
        if let Some(hub) = self.hub(id) {
            match hub
                .close_session(&SessionId(session.session_id.clone()), None)
                .await
            {
                Ok(()) | Err(HubError::Agent { .. }) => {}
                Err(e) => return Err(hub_error(e)),
            }
        }
        self.session_ended(id, session_id, SessionEndReason::Closed)
            .await;
        Ok(())
    }

    async fn live_session(&self, id: &str, session_id: &str) -> Result<SessionRow, ApiError> {
        let session = self
            .store()
            .session(session_id)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        match session {
            Some(s) if s.environment_id == id && s.ended_at.is_none() => Ok(s),
            Some(s) if s.environment_id == id => Err(conflict(format!(
                "Session {session_id} has ended ({}).",
                s.end_reason.unwrap_or_else(|| "closed".into())
            ))),
            _ => Err(ApiError::new(
                http::StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                format!("Session {session_id} was not found."),
            )),
        }
    }

    /// Records a session's end; the environment's idle clock starts when
    /// its last session ends.
    pub(super) async fn session_ended(&self, id: &str, session_id: &str, reason: SessionEndReason) {
        let store = self.store();
        match store.end_session(session_id, end_reason_name(reason)).await {
            Ok(true) => {
                tracing::info!(environment = %id, session = %session_id, reason = end_reason_name(reason), "session ended")
            }
            Ok(false) => return,
            Err(e) => {
                tracing::error!(error = %e, "cannot record the end of a session");
                return;
            }
        }
        if let Ok(live) = store.live_sessions(id).await {
            if live.is_empty() {
                let _ = store
                    .set_environment_time(id, EnvironmentTime::IdleSince, Some(now_ms()))
                    .await;
            }
        }
    }

    /// `approveCommand`: types `command` and Enter into the caller's most
    /// recently opened live shell of the environment, as if the caller had
    /// typed it there.
    pub async fn approve_command(
        &self,
        caller: &Caller,
        id: &str,
        command: &str,
    ) -> Result<(), ApiError> {
        check_command(command)?;
        let env = self.owned(caller, id).await?;
        if env.status != RUNNING {
            return Err(conflict(format!(
                "The environment is {}; start it and open a shell first.",
                env.status
            )));
        }
        let target = self
            .store()
            .live_sessions(id)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .into_iter()
            .filter(|s| s.principal_arn == caller.arn)
            .max_by_key(|s| s.created_at)
            .ok_or_else(|| {
                conflict(
                    "The environment has no open shell to run the command in; open a shell first.",
                )
            })?;
        let hub = self
            .hub(id)
            .ok_or_else(|| conflict("The environment is not running."))?;
        let mut input = Vec::with_capacity(command.len() + 1);
        input.extend_from_slice(command.as_bytes());
        // Enter, as a terminal sends it.
        input.push(b'\r');
        match hub
            .send_input(&SessionId(target.session_id.clone()), &input)
            .await
        {
            Ok(()) => {}
            Err(HubError::Agent {
                code: ErrorCode::UnknownSession,
                ..
            }) => {
                // The shell ended under us; the agent's report of it records
                // the end.
                return Err(conflict(
                    "The shell ended before the command reached it; open a shell first.",
                ));
            }
            Err(e @ HubError::Unsupported { .. }) => {
                return Err(conflict(format!(
                    "The environment's agent is too old to run approved commands ({e}); restart the environment."
                )))
            }
            Err(e) => return Err(hub_error(e)),
        }
        self.touch(&env).await;
        // The command's text stays out of the logs: it may hold secrets.
        tracing::info!(environment = %id, session = %target.session_id, bytes = command.len(), "approved command sent");
        Ok(())
    }

    /// `sendHeartBeat`: pointer activity in the console keeps the sessions
    /// from timing out.
    pub async fn heartbeat(&self, caller: &Caller, id: &str) -> Result<(), ApiError> {
        let env = self.owned(caller, id).await?;
        self.store()
            .set_environment_time(
                &env.environment_id,
                EnvironmentTime::HeartbeatAt,
                Some(now_ms()),
            )
            .await
            .map_err(|e| ApiError::internal(&e))
    }

    /// Restarts the home's retention clock.
    async fn touch(&self, env: &crate::store::cloudshell::EnvironmentRow) {
        if env.vpc_config.is_none() {
            if let Err(e) = self.store().touch_home(env).await {
                tracing::warn!(error = %e, "cannot record the home's use");
            }
        }
    }

    async fn issue_token(
        &self,
        session_id: &str,
        caller: &Caller,
        mode: AttachMode,
    ) -> Result<CreatedSession, ApiError> {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let ttl = i64::try_from(self.settings().stream_token_seconds).unwrap_or(60) * 1000;
        let mode_name = match mode {
            AttachMode::Fresh => "fresh",
            AttachMode::Resume => "resume",
        };
        self.store()
            .insert_stream_token(
                &token_hash(&token),
                session_id,
                &caller.arn,
                mode_name,
                now_ms() + ttl,
            )
            .await
            .map_err(|e| ApiError::internal(&e))?;
        Ok(CreatedSession {
            session_id: session_id.to_string(),
            stream_url: format!("{}/v1/data-channel/{session_id}", self.inner.stream_base),
            token,
        })
    }

    /// Spends a data-channel token: valid once, before it expires, for the
    /// session it was issued for, while the session and its environment
    /// live.
    pub async fn redeem_stream_token(
        &self,
        session_id: &str,
        token: &str,
    ) -> Result<StreamGrant, ApiError> {
        let refused = || {
            ApiError::new(
                http::StatusCode::FORBIDDEN,
                "AccessDeniedException",
                "The token is invalid, expired or already used.",
            )
        };
        let store = self.store();
        let (principal_arn, mode) = store
            .redeem_stream_token(&token_hash(token), session_id)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .ok_or_else(refused)?;
        let session = store
            .session(session_id)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .filter(|s| s.ended_at.is_none() && s.principal_arn == principal_arn)
            .ok_or_else(|| conflict("The session has ended."))?;
        let hub = self
            .hub(&session.environment_id)
            .ok_or_else(|| conflict("The environment is not running."))?;
        Ok(StreamGrant {
            hub,
            session: SessionId(session.session_id),
            mode: if mode == "resume" {
                AttachMode::Resume
            } else {
                AttachMode::Fresh
            },
            environment_id: session.environment_id,
            principal_arn,
        })
    }

    /// What every shell gets from the server: the region, and endpoints
    /// that send the AWS tools to Seashell.
    fn shell_environment(&self, region: &str) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert("AWS_REGION".to_string(), region.to_string());
        env.insert("AWS_DEFAULT_REGION".to_string(), region.to_string());
        if let Some(api) = self.api_base() {
            for (variable, prefix) in [
                ("AWS_ENDPOINT_URL_CLOUDSHELL", "cloudshell"),
                ("AWS_ENDPOINT_URL_IAM", "iam"),
                ("AWS_ENDPOINT_URL_STS", "sts"),
                ("AWS_ENDPOINT_URL_SSO", "sso"),
                ("AWS_ENDPOINT_URL_SSO_OIDC", "sso-oidc"),
                ("AWS_ENDPOINT_URL_CLOUDTRAIL", "cloudtrail"),
            ] {
                env.insert(variable.to_string(), format!("{api}/{prefix}"));
            }
        }
        env
    }
}
