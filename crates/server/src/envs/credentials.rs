//! Credentials forwarded into environments (DESIGN §6): a console caller's
//! own session credentials, or temporary credentials issued for a
//! programmatic caller's principal. Refreshed before they expire while
//! their source lives, withdrawn when it ends.

use chrono::{DateTime, SecondsFormat, Utc};
use seashell_protocol::agent_channel::Credentials;
use seashell_protocol::Secret;

use super::status::RUNNING;
use super::{conflict, Environments};
use crate::caller::Caller;
use crate::error::ApiError;
use crate::ids;
use crate::store::cloudshell::EnvironmentRow;
use crate::store::console::CredentialOwner;
use crate::store::now_ms;

/// Lifetime of credentials issued for a programmatic caller.
const ISSUED_MS: i64 = 3600 * 1000;
/// Credentials this close to expiry are replaced.
const REFRESH_BEFORE_MS: i64 = 15 * 60 * 1000;

fn iso(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Temporary credentials to push.
struct Forward {
    access_key_id: String,
    secret: String,
    token: String,
    expires_at: i64,
    console_session: Option<String>,
}

impl Environments {
    /// `putCredentials`: forwards the caller's credentials into a running
    /// environment. `console_session` is the caller's console session
    /// (token hash) when the call came from the console.
    pub async fn put_credentials(
        &self,
        caller: &Caller,
        id: &str,
        console_session: Option<&str>,
    ) -> Result<(), ApiError> {
        let env = self.owned(caller, id).await?;
        if env.status != RUNNING {
            return Err(conflict(format!(
                "Credentials can only be put into a RUNNING environment; it is {}.",
                env.status
            )));
        }
        let forward = match console_session {
            Some(hash) => self.console_credentials(hash).await?,
            None => self.issue_for(caller).await?,
        };
        self.push(&env, forward).await
    }

    async fn console_credentials(&self, hash: &str) -> Result<Forward, ApiError> {
        let creds = self
            .store()
            .session_credentials(hash)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .ok_or_else(|| conflict("The console session has no live credentials."))?;
        let (access_key_id, secret, token, expires_at) = creds;
        Ok(Forward {
            access_key_id,
            secret,
            token,
            expires_at,
            console_session: Some(hash.to_string()),
        })
    }

    /// New temporary credentials for the caller's principal, as
    /// GetSessionToken (a user) or AssumeRole (a role session) would give.
    async fn issue_for(&self, caller: &Caller) -> Result<Forward, ApiError> {
        let access_key_id = ids::temporary_access_key_id();
        let secret = ids::secret_access_key();
        let token = ids::session_token();
        let expires_at = now_ms() + ISSUED_MS;
        let mfa = caller.mfa_authenticated();
        let store = self.store();
        let stored = match &caller.role {
            Some(role) => {
                store
                    .create_role_credentials(
                        &access_key_id,
                        &secret,
                        &token,
                        &role.role_id,
                        &role.session_name,
                        mfa,
                        expires_at,
                        role.sso_user_id.as_deref(),
                    )
                    .await
            }
            None => {
                store
                    .create_temporary_credentials(
                        &access_key_id,
                        &secret,
                        &token,
                        &caller.user_id,
                        None,
                        mfa,
                        expires_at,
                    )
                    .await
            }
        };
        stored.map_err(|e| ApiError::internal(&e))?;
        Ok(Forward {
            access_key_id,
            secret,
            token,
            expires_at,
            console_session: None,
        })
    }

    async fn push(&self, env: &EnvironmentRow, forward: Forward) -> Result<(), ApiError> {
        let hub = self
            .hub(&env.environment_id)
            .ok_or_else(|| conflict("The environment is not running."))?;
        hub.put_credentials(Credentials {
            access_key_id: forward.access_key_id.clone(),
            secret_access_key: Secret::new(forward.secret),
            token: Secret::new(forward.token),
            expiration: iso(forward.expires_at),
        })
        .await
        .map_err(super::sessions::hub_error)?;
        self.store()
            .set_forwarded_credentials(
                &env.environment_id,
                forward.console_session.as_deref(),
                Some(&forward.access_key_id),
                Some(forward.expires_at),
            )
            .await
            .map_err(|e| ApiError::internal(&e))?;
        tracing::info!(environment = %env.environment_id, access_key_id = %forward.access_key_id, "credentials forwarded");
        Ok(())
    }

    /// Withdraws forwarded credentials whose source has ended (signed out,
    /// revoked, expired) and refreshes those about to expire.
    pub(super) async fn tend_credentials(&self, env: &EnvironmentRow) {
        let Some(key) = &env.credentials_access_key_id else {
            return;
        };
        let store = self.store();
        let now = now_ms();
        let source_alive = match &env.credentials_console_session {
            Some(hash) => matches!(store.session_credentials(hash).await, Ok(Some(_))),
            None => match store.temporary_credential(key).await {
                Ok(Some(c)) => !c.revoked,
                _ => false,
            },
        };
        if !source_alive {
            self.withdraw(env, "their source ended").await;
            return;
        }
        let expires = env.credentials_expires_at.unwrap_or(0);
        if expires - now > REFRESH_BEFORE_MS {
            return;
        }
        let fresh = match &env.credentials_console_session {
            // The console session's own credentials live as long as it.
            Some(hash) => self.console_credentials(hash).await.ok(),
            None => self.reissue(key).await,
        };
        match fresh {
            Some(f) if f.expires_at > expires => {
                if let Err(e) = self.push(env, f).await {
                    tracing::warn!(error = %e.message, "cannot refresh forwarded credentials");
                }
            }
            _ if expires <= now => self.withdraw(env, "they expired").await,
            _ => {}
        }
    }

    /// Credentials for the same owner as the temporary key `key`.
    async fn reissue(&self, key: &str) -> Option<Forward> {
        let old = self.store().temporary_credential(key).await.ok()??;
        let caller = match old.owner {
            CredentialOwner::User(user) => Caller {
                arn: user.arn(),
                account_id: user.account_id.clone(),
                principal_id: user.user_id.clone(),
                user_name: user.name.clone(),
                user_id: user.user_id.clone(),
                access_key_id: key.to_string(),
                session: Some(crate::caller::CallerSession {
                    issued_at: Utc::now(),
                    mfa_authenticated: old.mfa_authenticated,
                }),
                role: None,
            },
            CredentialOwner::Role {
                role,
                session_name,
                sso_user_id,
            } => Caller {
                arn: String::new(),
                account_id: role.account_id.clone(),
                principal_id: String::new(),
                user_name: String::new(),
                user_id: String::new(),
                access_key_id: key.to_string(),
                session: Some(crate::caller::CallerSession {
                    issued_at: Utc::now(),
                    mfa_authenticated: old.mfa_authenticated,
                }),
                role: Some(crate::caller::RoleSession {
                    role_id: role.role_id.clone(),
                    role_name: role.name.clone(),
                    role_arn: String::new(),
                    session_name,
                    sso_user_id,
                }),
            },
        };
        self.issue_for(&caller).await.ok()
    }

    /// Stops serving credentials in an environment.
    pub(super) async fn withdraw(&self, env: &EnvironmentRow, why: &str) {
        if let Some(hub) = self.hub(&env.environment_id) {
            if let Err(e) = hub.withdraw_credentials().await {
                tracing::warn!(error = %e, "cannot withdraw credentials");
                return;
            }
        }
        let _ = self
            .store()
            .set_forwarded_credentials(&env.environment_id, None, None, None)
            .await;
        tracing::info!(environment = %env.environment_id, reason = why, "credentials withdrawn");
    }
}
