//! Signing in to IAM Identity Center: identity-store users as the portal
//! and the token endpoints see them, portal sessions, registered OAuth
//! clients, device authorizations and tokens (migration 0008). Secrets,
//! codes and tokens arrive here already hashed.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_ms, query_err, Store, StoreError};

/// An Identity Center instance and the organization it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoInstance {
    /// `arn:aws:sso:::instance/ssoins-…`.
    pub instance_arn: String,
    /// `d-…`.
    pub identity_store_id: String,
    /// The organization's management account.
    pub management_account: String,
}

/// An identity-store user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoUser {
    /// The identity store's UserId (a UUID).
    pub user_id: String,
    /// `d-…`.
    pub identity_store_id: String,
    /// The sign-in name.
    pub user_name: String,
    /// The name shown.
    pub display_name: String,
    /// Argon2id PHC string, if the user has set a password.
    pub password_hash: Option<String>,
    /// Whether sign-in is refused.
    pub disabled: bool,
}

/// A live portal session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSession {
    /// Whose.
    pub user: SsoUser,
    /// The double-submit token state-changing portal requests carry.
    pub csrf_token: String,
    /// Whether the sign-in checked an MFA code.
    pub mfa_used: bool,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
}

/// A registered OAuth client (SSO-OIDC RegisterClient).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcClient {
    /// The client's id.
    pub client_id: String,
    /// SHA-256 of its secret.
    pub client_secret_hash: String,
    /// The scopes it registered, space-separated.
    pub scopes: String,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
}

/// Where a device authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for the user.
    Pending,
    /// The user allowed it; a token may be issued once.
    Approved,
    /// The user refused it.
    Denied,
    /// A token was issued for it.
    Redeemed,
}

impl DeviceStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "PENDING",
            DeviceStatus::Approved => "APPROVED",
            DeviceStatus::Denied => "DENIED",
            DeviceStatus::Redeemed => "REDEEMED",
        }
    }

    fn parse(s: &str) -> Option<DeviceStatus> {
        Some(match s {
            "PENDING" => DeviceStatus::Pending,
            "APPROVED" => DeviceStatus::Approved,
            "DENIED" => DeviceStatus::Denied,
            "REDEEMED" => DeviceStatus::Redeemed,
            _ => return None,
        })
    }
}

/// A device authorization (SSO-OIDC StartDeviceAuthorization).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    /// SHA-256 of the device code the tool polls with.
    pub device_code_hash: String,
    /// The code the user confirms in the portal.
    pub user_code: String,
    /// The client that started it.
    pub client_id: String,
    /// Where it stands.
    pub status: DeviceStatus,
    /// Who approved or denied it.
    pub user_id: Option<String>,
    /// Whether that user signed in with MFA.
    pub mfa_used: bool,
    /// The polling interval the tool was told.
    pub interval_secs: i64,
    /// The last poll, milliseconds since the epoch.
    pub last_poll_at: i64,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
}

/// Which kind of token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// For the portal API (`x-amz-sso_bearer_token`).
    Access,
    /// For CreateToken's refresh_token grant.
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// A live access or refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoToken {
    /// The client it was issued to.
    pub client_id: String,
    /// Whose it is.
    pub user: SsoUser,
    /// Whether the sign-in behind it checked an MFA code.
    pub mfa_used: bool,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
}

const SSO_USER_COLUMNS: &str = "u.user_id, u.identity_store_id, u.user_name, u.display_name, \
                                u.password_hash, u.disabled";

fn sso_user_from_row(row: &AnyRow) -> Result<SsoUser, sqlx::Error> {
    Ok(SsoUser {
        user_id: row.try_get("user_id")?,
        identity_store_id: row.try_get("identity_store_id")?,
        user_name: row.try_get("user_name")?,
        display_name: row.try_get("display_name")?,
        password_hash: row.try_get("password_hash")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
    })
}

fn instance_from_row(row: &AnyRow) -> Result<SsoInstance, sqlx::Error> {
    Ok(SsoInstance {
        instance_arn: row.try_get("instance_arn")?,
        identity_store_id: row.try_get("identity_store_id")?,
        management_account: row.try_get("management_account")?,
    })
}

fn device_from_row(row: &AnyRow) -> Result<DeviceAuthorization, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(DeviceAuthorization {
        device_code_hash: row.try_get("device_code_hash")?,
        user_code: row.try_get("user_code")?,
        client_id: row.try_get("client_id")?,
        status: DeviceStatus::parse(&status).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown device authorization status {status}").into())
        })?,
        user_id: row.try_get("user_id")?,
        mfa_used: row.try_get::<i64, _>("mfa_used")? != 0,
        interval_secs: row.try_get("interval_secs")?,
        last_poll_at: row.try_get("last_poll_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

const DEVICE_COLUMNS: &str = "device_code_hash, user_code, client_id, status, user_id, mfa_used, \
                              interval_secs, last_poll_at, expires_at";

pub use super::identity_center::AssignedRole;

impl Store {
    /// The Identity Center instance whose identity store is `identity_store_id`,
    /// or the first one created when `None`.
    pub async fn sso_instance(
        &self,
        identity_store_id: Option<&str>,
    ) -> Result<Option<SsoInstance>, StoreError> {
        let base = "SELECT i.instance_arn, i.identity_store_id, o.management_account \
                    FROM sso_instances i JOIN organizations o ON o.organization_id = i.organization_id";
        let row = match identity_store_id {
            Some(id) => {
                sqlx::query(&format!("{base} WHERE i.identity_store_id = $1"))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
            }
            None => {
                sqlx::query(&format!(
                    "{base} ORDER BY i.created_at, i.instance_arn LIMIT 1"
                ))
                .fetch_optional(&self.pool)
                .await
            }
        }
        .map_err(query_err("reading Identity Center instances"))?;
        row.map(|r| instance_from_row(&r))
            .transpose()
            .map_err(query_err("reading Identity Center instances"))
    }

    /// An identity-store user by sign-in name (case-insensitive).
    pub async fn sign_in_user_by_name(
        &self,
        identity_store_id: &str,
        user_name: &str,
    ) -> Result<Option<SsoUser>, StoreError> {
        let sql = format!(
            "SELECT {SSO_USER_COLUMNS} FROM sso_users u \
             WHERE u.identity_store_id = $1 AND u.user_name_key = $2"
        );
        let row = sqlx::query(&sql)
            .bind(identity_store_id)
            .bind(user_name.to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading identity-store users"))?;
        row.map(|r| sso_user_from_row(&r))
            .transpose()
            .map_err(query_err("reading identity-store users"))
    }

    /// An identity-store user by id.
    pub async fn sso_user_by_id(&self, user_id: &str) -> Result<Option<SsoUser>, StoreError> {
        let sql = format!("SELECT {SSO_USER_COLUMNS} FROM sso_users u WHERE u.user_id = $1");
        let row = sqlx::query(&sql)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading identity-store users"))?;
        row.map(|r| sso_user_from_row(&r))
            .transpose()
            .map_err(query_err("reading identity-store users"))
    }

    /// Sets (or replaces) an identity-store user's password.
    pub async fn set_sso_password(&self, user_id: &str, hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE sso_users SET password_hash = $1 WHERE user_id = $2")
            .bind(hash)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(query_err("setting an identity-store password"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Enables or disables an identity-store user. Disabling ends their
    /// portal sessions and tokens at once; their role credentials go with
    /// the next [`Store::revoke_lapsed_sso_access`].
    pub async fn set_sso_user_disabled(
        &self,
        user_id: &str,
        disabled: bool,
    ) -> Result<bool, StoreError> {
        let doing = "disabling an identity-store user";
        let mut tx = self.write_tx().await.map_err(query_err(doing))?;
        let done = sqlx::query("UPDATE sso_users SET disabled = $1 WHERE user_id = $2")
            .bind(i64::from(disabled))
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(query_err(doing))?;
        if disabled {
            for sql in [
                "UPDATE sso_portal_sessions SET revoked = 1 WHERE user_id = $1",
                "UPDATE sso_tokens SET revoked = 1 WHERE user_id = $1",
                "UPDATE temporary_credentials SET revoked = 1 WHERE sso_user_id = $1",
                "UPDATE federated_console_sessions SET revoked = 1 WHERE sso_user_id = $1",
            ] {
                sqlx::query(sql)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err(doing))?;
            }
        }
        tx.commit().await.map_err(query_err(doing))?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a one-time password set-up link for a user.
    pub async fn create_sso_invitation(
        &self,
        token_hash: &str,
        user_id: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sso_invitations (token_hash, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now_ms())
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(query_err("creating an invitation"))?;
        Ok(())
    }

    /// The user an unused, unexpired invitation is for.
    pub async fn sso_invitation_user(
        &self,
        token_hash: &str,
    ) -> Result<Option<SsoUser>, StoreError> {
        let sql = format!(
            "SELECT {SSO_USER_COLUMNS} FROM sso_invitations i JOIN sso_users u ON u.user_id = i.user_id \
             WHERE i.token_hash = $1 AND i.used = 0 AND i.expires_at > $2 AND u.disabled = 0"
        );
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading invitations"))?;
        row.map(|r| sso_user_from_row(&r))
            .transpose()
            .map_err(query_err("reading invitations"))
    }

    /// Spends an invitation and sets the password it was for, together;
    /// false if it was already used or has expired.
    pub async fn accept_sso_invitation(
        &self,
        token_hash: &str,
        user_id: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let doing = "accepting an invitation";
        let mut tx = self.write_tx().await.map_err(query_err(doing))?;
        let spent = sqlx::query(
            "UPDATE sso_invitations SET used = 1 \
             WHERE token_hash = $1 AND user_id = $2 AND used = 0 AND expires_at > $3",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        if spent.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("UPDATE sso_users SET password_hash = $1 WHERE user_id = $2")
            .bind(password_hash)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(query_err(doing))?;
        tx.commit().await.map_err(query_err(doing))?;
        Ok(true)
    }

    /// The enabled MFA device of a user: its id and TOTP secret.
    pub async fn sso_mfa_device(
        &self,
        user_id: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT device_id, secret_base32 FROM sso_mfa_devices \
             WHERE user_id = $1 AND enabled_at IS NOT NULL ORDER BY enabled_at LIMIT 1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading MFA devices"))?;
        let Some(row) = row else { return Ok(None) };
        let read = || -> Result<(String, String), sqlx::Error> {
            Ok((row.try_get("device_id")?, row.try_get("secret_base32")?))
        };
        read().map(Some).map_err(query_err("reading MFA devices"))
    }

    /// Accepts a TOTP time step once: false if it (or a later one) was
    /// already used, so a code cannot be replayed.
    pub async fn consume_sso_mfa_step(
        &self,
        device_id: &str,
        step: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sso_mfa_devices SET last_step = $1 WHERE device_id = $2 AND last_step < $1",
        )
        .bind(step)
        .bind(device_id)
        .execute(&self.pool)
        .await
        .map_err(query_err("using an MFA code"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Registers an MFA device, not yet enabled.
    pub async fn create_sso_mfa_device(
        &self,
        device_id: &str,
        user_id: &str,
        secret_base32: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sso_mfa_devices (device_id, user_id, secret_base32, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(device_id)
        .bind(user_id)
        .bind(secret_base32)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(query_err("registering an MFA device"))?;
        Ok(())
    }

    /// The secret of a registered, not yet enabled device of the user.
    pub async fn pending_sso_mfa_secret(
        &self,
        device_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT secret_base32 FROM sso_mfa_devices \
             WHERE device_id = $1 AND user_id = $2 AND enabled_at IS NULL",
        )
        .bind(device_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading MFA devices"))?;
        row.map(|r| r.try_get("secret_base32"))
            .transpose()
            .map_err(query_err("reading MFA devices"))
    }

    /// Enables a registered device, remembering the step its code used.
    pub async fn enable_sso_mfa_device(
        &self,
        device_id: &str,
        user_id: &str,
        step: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sso_mfa_devices SET enabled_at = $1, last_step = $2 \
             WHERE device_id = $3 AND user_id = $4 AND enabled_at IS NULL",
        )
        .bind(now_ms())
        .bind(step)
        .bind(device_id)
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(query_err("enabling an MFA device"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Remembers a sign-in sent to the external identity provider.
    pub async fn create_idp_login(
        &self,
        state_hash: &str,
        pkce_verifier: &str,
        nonce: &str,
        next_path: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sso_idp_logins (state_hash, pkce_verifier, nonce, next_path, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(state_hash)
        .bind(pkce_verifier)
        .bind(nonce)
        .bind(next_path)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(query_err("starting an identity provider sign-in"))?;
        Ok(())
    }

    /// Takes (and forgets) a pending identity-provider sign-in: its PKCE
    /// verifier, nonce and next path, if it exists and has not expired.
    pub async fn take_idp_login(
        &self,
        state_hash: &str,
    ) -> Result<Option<(String, String, String)>, StoreError> {
        let doing = "finishing an identity provider sign-in";
        let mut tx = self.write_tx().await.map_err(query_err(doing))?;
        let row = sqlx::query(
            "SELECT pkce_verifier, nonce, next_path, expires_at FROM sso_idp_logins WHERE state_hash = $1",
        )
        .bind(state_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        sqlx::query("DELETE FROM sso_idp_logins WHERE state_hash = $1 OR expires_at <= $2")
            .bind(state_hash)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(query_err(doing))?;
        tx.commit().await.map_err(query_err(doing))?;
        let Some(row) = row else { return Ok(None) };
        let read = || -> Result<(String, String, String, i64), sqlx::Error> {
            Ok((
                row.try_get("pkce_verifier")?,
                row.try_get("nonce")?,
                row.try_get("next_path")?,
                row.try_get("expires_at")?,
            ))
        };
        let (verifier, nonce, next, expires_at) = read().map_err(query_err(doing))?;
        Ok((expires_at > now_ms()).then_some((verifier, nonce, next)))
    }

    /// The identity-store user linked to an external identity
    /// (`<issuer> <subject>`).
    pub async fn sso_user_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<SsoUser>, StoreError> {
        let sql = format!("SELECT {SSO_USER_COLUMNS} FROM sso_users u WHERE u.external_id = $1");
        let row = sqlx::query(&sql)
            .bind(external_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading identity-store users"))?;
        row.map(|r| sso_user_from_row(&r))
            .transpose()
            .map_err(query_err("reading identity-store users"))
    }

    /// Creates the identity-store user of an external identity on its first
    /// sign-in. Fails with [`StoreError::AlreadyExists`] if the name is
    /// taken (by a user the provider does not own).
    pub async fn create_external_sso_user(
        &self,
        identity_store_id: &str,
        user_name: &str,
        display_name: &str,
        email: Option<&str>,
        external_id: &str,
    ) -> Result<SsoUser, StoreError> {
        let user_id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO sso_users (user_id, identity_store_id, user_name, user_name_key, \
             display_name, email, external_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&user_id)
        .bind(identity_store_id)
        .bind(user_name)
        .bind(user_name.to_lowercase())
        .bind(display_name)
        .bind(email)
        .bind(external_id)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(query_err("creating identity-store user"))?;
        Ok(SsoUser {
            user_id,
            identity_store_id: identity_store_id.to_string(),
            user_name: user_name.to_string(),
            display_name: display_name.to_string(),
            password_hash: None,
            disabled: false,
        })
    }

    /// Makes an externally managed user's group memberships exactly the
    /// groups the provider named (by display name), creating the groups the
    /// identity store lacks, in one transaction.
    pub async fn set_external_user_groups(
        &self,
        identity_store_id: &str,
        user_id: &str,
        group_id_prefix: &str,
        groups: &[String],
    ) -> Result<(), StoreError> {
        let doing = "synchronizing group memberships";
        let mut tx = self.write_tx().await.map_err(query_err(doing))?;
        let mut wanted = Vec::new();
        for name in groups {
            let key = name.to_lowercase();
            let found = sqlx::query(
                "SELECT group_id FROM sso_groups WHERE identity_store_id = $1 AND display_name_key = $2",
            )
            .bind(identity_store_id)
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(query_err(doing))?;
            let group_id = match found {
                Some(row) => row
                    .try_get::<String, _>("group_id")
                    .map_err(query_err(doing))?,
                None => {
                    let id = uuid::Uuid::new_v4().to_string();
                    sqlx::query(
                        "INSERT INTO sso_groups (group_id, identity_store_id, display_name, \
                         display_name_key, external_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&id)
                    .bind(identity_store_id)
                    .bind(name)
                    .bind(&key)
                    .bind(format!("{group_id_prefix}{name}"))
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err(doing))?;
                    id
                }
            };
            if !wanted.contains(&group_id) {
                wanted.push(group_id);
            }
        }
        let current = sqlx::query("SELECT group_id FROM sso_group_memberships WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(query_err(doing))?;
        let current: Vec<String> = current
            .iter()
            .map(|r| r.try_get("group_id"))
            .collect::<Result<_, _>>()
            .map_err(query_err(doing))?;
        for gone in current.iter().filter(|g| !wanted.contains(g)) {
            sqlx::query("DELETE FROM sso_group_memberships WHERE user_id = $1 AND group_id = $2")
                .bind(user_id)
                .bind(gone)
                .execute(&mut *tx)
                .await
                .map_err(query_err(doing))?;
        }
        for new in wanted.iter().filter(|g| !current.contains(g)) {
            sqlx::query(
                "INSERT INTO sso_group_memberships (membership_id, group_id, user_id) VALUES ($1, $2, $3)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(new)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(query_err(doing))?;
        }
        tx.commit().await.map_err(query_err(doing))
    }

    /// Starts a portal session.
    pub async fn create_portal_session(
        &self,
        token_hash: &str,
        user_id: &str,
        csrf_token: &str,
        mfa_used: bool,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sso_portal_sessions (token_hash, user_id, csrf_token, mfa_used, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(csrf_token)
        .bind(i64::from(mfa_used))
        .bind(now_ms())
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(query_err("starting a portal session"))?;
        Ok(())
    }

    /// A live portal session of an enabled user.
    pub async fn portal_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<PortalSession>, StoreError> {
        let sql = format!(
            "SELECT s.csrf_token, s.mfa_used, s.expires_at, {SSO_USER_COLUMNS} \
             FROM sso_portal_sessions s JOIN sso_users u ON u.user_id = s.user_id \
             WHERE s.token_hash = $1 AND s.revoked = 0 AND s.expires_at > $2 AND u.disabled = 0"
        );
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading a portal session"))?;
        let Some(row) = row else { return Ok(None) };
        let read = || -> Result<PortalSession, sqlx::Error> {
            Ok(PortalSession {
                user: sso_user_from_row(&row)?,
                csrf_token: row.try_get("csrf_token")?,
                mfa_used: row.try_get::<i64, _>("mfa_used")? != 0,
                expires_at: row.try_get("expires_at")?,
            })
        };
        read()
            .map(Some)
            .map_err(query_err("reading a portal session"))
    }

    /// Ends a portal session.
    pub async fn revoke_portal_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sso_portal_sessions SET revoked = 1 WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(query_err("ending a portal session"))?;
        Ok(())
    }

    /// Registers an OAuth client.
    pub async fn create_oidc_client(
        &self,
        client_id: &str,
        client_secret_hash: &str,
        client_name: &str,
        client_type: &str,
        scopes: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sso_oidc_clients (client_id, client_secret_hash, client_name, client_type, \
             scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(client_id)
        .bind(client_secret_hash)
        .bind(client_name)
        .bind(client_type)
        .bind(scopes)
        .bind(now_ms())
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(query_err("registering an OAuth client"))?;
        Ok(())
    }

    /// A registered client.
    pub async fn oidc_client(&self, client_id: &str) -> Result<Option<OidcClient>, StoreError> {
        let row = sqlx::query(
            "SELECT client_id, client_secret_hash, scopes, expires_at FROM sso_oidc_clients \
             WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading OAuth clients"))?;
        let Some(row) = row else { return Ok(None) };
        let read = || -> Result<OidcClient, sqlx::Error> {
            Ok(OidcClient {
                client_id: row.try_get("client_id")?,
                client_secret_hash: row.try_get("client_secret_hash")?,
                scopes: row.try_get("scopes")?,
                expires_at: row.try_get("expires_at")?,
            })
        };
        read().map(Some).map_err(query_err("reading OAuth clients"))
    }

    /// Starts a device authorization.
    pub async fn create_device_authorization(
        &self,
        device_code_hash: &str,
        user_code: &str,
        client_id: &str,
        interval_secs: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sso_device_authorizations (device_code_hash, user_code, client_id, status, \
             interval_secs, created_at, expires_at) VALUES ($1, $2, $3, 'PENDING', $4, $5, $6)",
        )
        .bind(device_code_hash)
        .bind(user_code)
        .bind(client_id)
        .bind(interval_secs)
        .bind(now_ms())
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(query_err("creating device authorization"))?;
        Ok(())
    }

    /// A device authorization by the hash of its device code.
    pub async fn device_authorization(
        &self,
        device_code_hash: &str,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM sso_device_authorizations WHERE device_code_hash = $1"
        );
        let row = sqlx::query(&sql)
            .bind(device_code_hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading device authorizations"))?;
        row.map(|r| device_from_row(&r))
            .transpose()
            .map_err(query_err("reading device authorizations"))
    }

    /// A pending, unexpired device authorization by its user code.
    pub async fn pending_device_authorization(
        &self,
        user_code: &str,
    ) -> Result<Option<DeviceAuthorization>, StoreError> {
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM sso_device_authorizations \
             WHERE user_code = $1 AND status = 'PENDING' AND expires_at > $2"
        );
        let row = sqlx::query(&sql)
            .bind(user_code)
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading device authorizations"))?;
        row.map(|r| device_from_row(&r))
            .transpose()
            .map_err(query_err("reading device authorizations"))
    }

    /// Records the user's answer to a pending device authorization; false
    /// if it was no longer pending.
    pub async fn answer_device_authorization(
        &self,
        user_code: &str,
        user_id: &str,
        mfa_used: bool,
        approve: bool,
    ) -> Result<bool, StoreError> {
        let status = if approve {
            DeviceStatus::Approved
        } else {
            DeviceStatus::Denied
        };
        let done = sqlx::query(
            "UPDATE sso_device_authorizations SET status = $1, user_id = $2, mfa_used = $3 \
             WHERE user_code = $4 AND status = 'PENDING' AND expires_at > $5",
        )
        .bind(status.as_str())
        .bind(user_id)
        .bind(i64::from(mfa_used))
        .bind(user_code)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(query_err("answering a device authorization"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Notes a poll, for the next one's SlowDownException.
    pub async fn poll_device_authorization(
        &self,
        device_code_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sso_device_authorizations SET last_poll_at = $1 WHERE device_code_hash = $2",
        )
        .bind(now)
        .bind(device_code_hash)
        .execute(&self.pool)
        .await
        .map_err(query_err("polling a device authorization"))?;
        Ok(())
    }

    /// Marks an approved authorization redeemed and stores the tokens
    /// issued for it, together; false (and nothing stored) if another poll
    /// redeemed it first.
    pub async fn redeem_device_authorization(
        &self,
        device_code_hash: &str,
        tokens: &[NewToken<'_>],
    ) -> Result<bool, StoreError> {
        self.spend_and_issue(
            "UPDATE sso_device_authorizations SET status = 'REDEEMED' \
             WHERE device_code_hash = $1 AND status = 'APPROVED'",
            device_code_hash,
            tokens,
        )
        .await
    }

    /// Swaps a refresh token for new tokens: the old one is revoked and the
    /// new ones stored together; false if the old one was already used.
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        tokens: &[NewToken<'_>],
    ) -> Result<bool, StoreError> {
        self.spend_and_issue(
            "UPDATE sso_tokens SET revoked = 1 WHERE token_hash = $1 AND kind = 'refresh' AND revoked = 0",
            old_hash,
            tokens,
        )
        .await
    }

    /// Runs `spend` (an UPDATE of one row by `$1`) and, if it changed that
    /// row, stores `tokens`, in one transaction: a grant is used once.
    async fn spend_and_issue(
        &self,
        spend: &str,
        hash: &str,
        tokens: &[NewToken<'_>],
    ) -> Result<bool, StoreError> {
        let doing = "issuing tokens";
        let mut tx = self.write_tx().await.map_err(query_err(doing))?;
        let done = sqlx::query(spend)
            .bind(hash)
            .execute(&mut *tx)
            .await
            .map_err(query_err(doing))?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        for token in tokens {
            insert_token(&mut tx, token).await?;
        }
        tx.commit().await.map_err(query_err(doing))?;
        Ok(true)
    }

    /// A live token of an enabled user.
    pub async fn sso_token(
        &self,
        token_hash: &str,
        kind: TokenKind,
    ) -> Result<Option<SsoToken>, StoreError> {
        let sql = format!(
            "SELECT t.client_id, t.mfa_used, t.expires_at, {SSO_USER_COLUMNS} \
             FROM sso_tokens t JOIN sso_users u ON u.user_id = t.user_id \
             WHERE t.token_hash = $1 AND t.kind = $2 AND t.revoked = 0 AND t.expires_at > $3 \
             AND u.disabled = 0"
        );
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .bind(kind.as_str())
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading tokens"))?;
        let Some(row) = row else { return Ok(None) };
        let read = || -> Result<SsoToken, sqlx::Error> {
            Ok(SsoToken {
                client_id: row.try_get("client_id")?,
                user: sso_user_from_row(&row)?,
                mfa_used: row.try_get::<i64, _>("mfa_used")? != 0,
                expires_at: row.try_get("expires_at")?,
            })
        };
        read().map(Some).map_err(query_err("reading tokens"))
    }

    /// Portal Logout: revokes every token the client holds for the user
    /// (the access token and its refresh token). Role credentials already
    /// fetched live on until they expire, as with AWS.
    pub async fn revoke_sso_tokens(
        &self,
        client_id: &str,
        user_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE sso_tokens SET revoked = 1 WHERE client_id = $1 AND user_id = $2")
            .bind(client_id)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(query_err("revoking tokens"))?;
        Ok(())
    }

    /// Deletes what can no longer be used: expired or used device
    /// authorizations, tokens, portal sessions, pending identity-provider
    /// sign-ins, invitations and client registrations. Run with the duties,
    /// so a flood of registrations or logins does not grow the tables for
    /// ever.
    pub async fn purge_spent_sso_records(&self) -> Result<(), StoreError> {
        let now = now_ms();
        for sql in [
            "DELETE FROM sso_device_authorizations WHERE expires_at <= $1 OR status = 'REDEEMED'",
            "DELETE FROM sso_tokens WHERE expires_at <= $1",
            "DELETE FROM sso_portal_sessions WHERE expires_at <= $1",
            "DELETE FROM sso_idp_logins WHERE expires_at <= $1",
            "DELETE FROM sso_invitations WHERE expires_at <= $1 OR used = 1",
            "DELETE FROM sso_oidc_clients WHERE expires_at <= $1 AND NOT EXISTS \
             (SELECT 1 FROM sso_tokens t WHERE t.client_id = sso_oidc_clients.client_id) AND NOT EXISTS \
             (SELECT 1 FROM sso_device_authorizations d WHERE d.client_id = sso_oidc_clients.client_id)",
        ] {
            sqlx::query(sql)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(query_err("purging spent SSO records"))?;
        }
        Ok(())
    }

    /// Revokes every SSO-issued role credential whose user is gone or
    /// disabled, or no longer has an assignment (directly or through a
    /// group) to the role's permission set in the role's account, and the
    /// console sessions those credentials belonged to; returns how many
    /// credentials. Run periodically, so any change to the identity store
    /// or the assignments takes effect within the period.
    pub async fn revoke_lapsed_sso_access(&self) -> Result<u64, StoreError> {
        let doing = "revoking lapsed SSO access";
        let mut tx = self.write_tx().await.map_err(query_err(doing))?;
        let done = sqlx::query(
            "UPDATE temporary_credentials SET revoked = 1 \
             WHERE sso_user_id IS NOT NULL AND revoked = 0 AND expires_at > $1 AND NOT EXISTS ( \
               SELECT 1 FROM sso_users u \
               JOIN sso_provisioned_roles pr ON pr.role_id = temporary_credentials.role_id \
               JOIN sso_account_assignments a ON a.account_id = pr.account_id \
                 AND a.permission_set_arn = pr.permission_set_arn \
               WHERE u.user_id = temporary_credentials.sso_user_id AND u.disabled = 0 \
                 AND ((a.principal_type = 'USER' AND a.principal_id = u.user_id) \
                   OR (a.principal_type = 'GROUP' AND a.principal_id IN \
                     (SELECT m.group_id FROM sso_group_memberships m WHERE m.user_id = u.user_id))))",
        )
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        if done.rows_affected() > 0 {
            sqlx::query(
                "UPDATE federated_console_sessions SET revoked = 1 WHERE revoked = 0 AND token_hash IN \
                 (SELECT c.console_session FROM temporary_credentials c \
                  WHERE c.sso_user_id IS NOT NULL AND c.revoked = 1 AND c.console_session IS NOT NULL)",
            )
            .execute(&mut *tx)
            .await
            .map_err(query_err(doing))?;
        }
        tx.commit().await.map_err(query_err(doing))?;
        Ok(done.rows_affected())
    }
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// SHA-256 of the token.
    pub token_hash: String,
    /// Which kind.
    pub kind: TokenKind,
    /// The client it is issued to.
    pub client_id: &'a str,
    /// Whose.
    pub user_id: &'a str,
    /// Whether the sign-in behind it checked an MFA code.
    pub mfa_used: bool,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
}

async fn insert_token(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    token: &NewToken<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sso_tokens (token_hash, kind, client_id, user_id, mfa_used, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&token.token_hash)
    .bind(token.kind.as_str())
    .bind(token.client_id)
    .bind(token.user_id)
    .bind(i64::from(token.mfa_used))
    .bind(now_ms())
    .bind(token.expires_at)
    .execute(&mut **tx)
    .await
    .map_err(query_err("issuing tokens"))?;
    Ok(())
}
