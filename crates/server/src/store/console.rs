//! Console sessions, temporary credentials and sign-in lockout.

use sqlx::Row;

use super::iam::Role;
use super::{now_ms, query_err, user_from_row, Store, StoreError, User, USER_COLUMNS};

/// A console session as stored.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    /// Who is signed in.
    pub principal: ConsolePrincipal,
    /// The session's CSRF token (sent back in a header on every change).
    pub csrf_token: String,
    /// Whether sign-in used an MFA code.
    pub mfa_used: bool,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
}

/// Who a console session is for.
#[derive(Debug, Clone)]
pub enum ConsolePrincipal {
    /// An IAM user who signed in at `/signin`.
    User(User),
    /// A role session: an identity-store user who chose "Management
    /// console" for a role in the access portal.
    Role {
        /// The role.
        role: Role,
        /// The role session's name (the user's name).
        session_name: String,
        /// The identity-store user.
        sso_user_id: String,
    },
}

impl ConsoleSession {
    /// The IAM user, for user sessions.
    pub fn iam_user(&self) -> Option<&User> {
        match &self.principal {
            ConsolePrincipal::User(user) => Some(user),
            ConsolePrincipal::Role { .. } => None,
        }
    }

    /// The principal's ARN (`…:user/…` or `…:assumed-role/…/…`).
    pub fn arn(&self) -> String {
        match &self.principal {
            ConsolePrincipal::User(user) => user.arn(),
            ConsolePrincipal::Role {
                role, session_name, ..
            } => format!(
                "arn:aws:sts::{}:assumed-role/{}/{session_name}",
                role.account_id, role.name
            ),
        }
    }

    /// The account signed in to.
    pub fn account_id(&self) -> &str {
        match &self.principal {
            ConsolePrincipal::User(user) => &user.account_id,
            ConsolePrincipal::Role { role, .. } => &role.account_id,
        }
    }

    /// The name the console shows: the user name, or the role session's.
    pub fn display_name(&self) -> &str {
        match &self.principal {
            ConsolePrincipal::User(user) => &user.name,
            ConsolePrincipal::Role { session_name, .. } => session_name,
        }
    }

    /// Whose console preferences apply: the IAM user's, or the
    /// identity-store user's whichever role they chose.
    pub fn preferences_owner(&self) -> String {
        match &self.principal {
            ConsolePrincipal::User(user) => user.user_id.clone(),
            ConsolePrincipal::Role { sso_user_id, .. } => format!("sso:{sso_user_id}"),
        }
    }
}

/// Whose sign-ins are counted: IAM users at the console, or
/// identity-store users at the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigninKind {
    /// `/signin`.
    Console,
    /// `/start`.
    Portal,
}

impl SigninKind {
    fn table(self) -> &'static str {
        match self {
            SigninKind::Console => "signin_failures",
            SigninKind::Portal => "sso_signin_failures",
        }
    }
}

/// Whose temporary credentials are.
#[derive(Debug, Clone)]
pub enum CredentialOwner {
    /// An IAM user (console sessions, GetSessionToken).
    User(User),
    /// A session of a role (AssumeRole).
    Role {
        /// The role.
        role: Role,
        /// `RoleSessionName`.
        session_name: String,
        /// The identity-store user the credentials were issued to, for
        /// role credentials from IAM Identity Center.
        sso_user_id: Option<String>,
    },
}

/// Temporary credentials as stored, for request verification.
#[derive(Debug, Clone)]
pub struct TemporaryCredential {
    /// `ASIA…`.
    pub access_key_id: String,
    /// The secret, needed to recompute signatures.
    pub secret: String,
    /// The session token.
    pub session_token: String,
    /// Whose they are.
    pub owner: CredentialOwner,
    /// Whether they were issued after an MFA check.
    pub mfa_authenticated: bool,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
    /// Whether they were revoked (sign-out).
    pub revoked: bool,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// A user's recent failed sign-ins from one source (a client address, or
/// [`ALL_SOURCES`] for the per-user backstop).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SigninFailures {
    /// Consecutive failures.
    pub failures: i64,
    /// No sign-in is accepted before this (milliseconds since the epoch).
    pub locked_until: i64,
    /// Whether the user has signed in from this source.
    pub known: bool,
}

/// The source under which failures from every address are counted.
pub const ALL_SOURCES: &str = "*";

impl Store {
    /// The account named by a 12-digit ID or an alias, if it exists.
    pub async fn resolve_account(&self, id_or_alias: &str) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT account_id FROM accounts WHERE account_id = $1 OR alias = $1")
                .bind(id_or_alias)
                .fetch_optional(&self.pool)
                .await
                .map_err(query_err("reading account"))?;
        row.map(|r| r.try_get("account_id"))
            .transpose()
            .map_err(query_err("reading account"))
    }

    /// A user's password hash, if they have a password.
    pub async fn password_hash(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT password_hash FROM users WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading password"))?;
        match row {
            Some(r) => r
                .try_get("password_hash")
                .map_err(query_err("reading password")),
            None => Ok(None),
        }
    }

    /// A user's failed sign-in record for one source (migration
    /// `0011_signin_failures_by_address.sql`).
    pub async fn signin_failures(
        &self,
        kind: SigninKind,
        user_id: &str,
        source: &str,
    ) -> Result<SigninFailures, StoreError> {
        let sql = format!(
            "SELECT failures, locked_until, known FROM {} WHERE user_id = $1 AND source = $2",
            kind.table()
        );
        let row = sqlx::query(&sql)
            .bind(user_id)
            .bind(source)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading sign-in failures"))?;
        let Some(row) = row else {
            return Ok(SigninFailures::default());
        };
        Ok(SigninFailures {
            failures: row
                .try_get("failures")
                .map_err(query_err("reading sign-in failures"))?,
            locked_until: row
                .try_get("locked_until")
                .map_err(query_err("reading sign-in failures"))?,
            known: row
                .try_get::<i64, _>("known")
                .map_err(query_err("reading sign-in failures"))?
                != 0,
        })
    }

    /// Counts one more failed sign-in (a wrong password or MFA code) from
    /// `source` in a single statement, so parallel guesses are all counted;
    /// the count.
    pub async fn record_signin_failure(
        &self,
        kind: SigninKind,
        user_id: &str,
        source: &str,
    ) -> Result<i64, StoreError> {
        let table = kind.table();
        let sql = format!(
            "INSERT INTO {table} (user_id, source, failures, locked_until) VALUES ($1, $2, 1, 0) \
             ON CONFLICT (user_id, source) DO UPDATE SET failures = {table}.failures + 1 \
             RETURNING failures"
        );
        let row = sqlx::query(&sql)
            .bind(user_id)
            .bind(source)
            .fetch_one(&self.pool)
            .await
            .map_err(query_err("recording sign-in failure"))?;
        row.try_get("failures")
            .map_err(query_err("recording sign-in failure"))
    }

    /// Refuses sign-ins from `source` until `until` (milliseconds since the
    /// epoch), unless a later lock is already set.
    pub async fn lock_signin(
        &self,
        kind: SigninKind,
        user_id: &str,
        source: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE {} SET locked_until = $3 \
             WHERE user_id = $1 AND source = $2 AND locked_until < $3",
            kind.table()
        );
        sqlx::query(&sql)
            .bind(user_id)
            .bind(source)
            .bind(until)
            .execute(&self.pool)
            .await
            .map_err(query_err("locking sign-in"))?;
        Ok(())
    }

    /// After a successful sign-in from `source`: forgets its failures and
    /// the backstop's, and remembers the source as one the user signs in
    /// from.
    pub async fn clear_signin_failures(
        &self,
        kind: SigninKind,
        user_id: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        let table = kind.table();
        let mut tx = self
            .write_tx()
            .await
            .map_err(query_err("clearing sign-in failures"))?;
        sqlx::query(&format!(
            "INSERT INTO {table} (user_id, source, failures, locked_until, known) \
             VALUES ($1, $2, 0, 0, 1) \
             ON CONFLICT (user_id, source) DO UPDATE SET failures = 0, locked_until = 0, known = 1"
        ))
        .bind(user_id)
        .bind(source)
        .execute(&mut *tx)
        .await
        .map_err(query_err("clearing sign-in failures"))?;
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE user_id = $1 AND source = $2"
        ))
        .bind(user_id)
        .bind(ALL_SOURCES)
        .execute(&mut *tx)
        .await
        .map_err(query_err("clearing sign-in failures"))?;
        tx.commit()
            .await
            .map_err(query_err("clearing sign-in failures"))
    }

    /// Starts a console session.
    pub async fn create_console_session(
        &self,
        token_hash: &str,
        user_id: &str,
        csrf_token: &str,
        mfa_used: bool,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, user_id, csrf_token, mfa_used, created_at, expires_at) \
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
        .map_err(query_err("starting console session"))?;
        Ok(())
    }

    /// A live (unrevoked, unexpired) console session.
    pub async fn console_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let sql = format!(
            "SELECT s.csrf_token, s.mfa_used, s.expires_at, {USER_COLUMNS} FROM console_sessions s \
             JOIN users u ON u.user_id = s.user_id \
             WHERE s.token_hash = $1 AND s.revoked = 0 AND s.expires_at > $2"
        );
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading console session"))?;
        let Some(row) = row else {
            return self.federated_console_session(token_hash).await;
        };
        let read = || -> Result<ConsoleSession, sqlx::Error> {
            Ok(ConsoleSession {
                principal: ConsolePrincipal::User(user_from_row(&row)?),
                csrf_token: row.try_get("csrf_token")?,
                mfa_used: row.try_get::<i64, _>("mfa_used")? != 0,
                expires_at: row.try_get("expires_at")?,
            })
        };
        read()
            .map(Some)
            .map_err(query_err("reading console session"))
    }

    /// A live console session of a role (portal federation), of an enabled
    /// identity-store user.
    async fn federated_console_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let doing = "reading console session";
        let row = sqlx::query(
            "SELECT s.role_id, s.role_session_name, s.sso_user_id, s.csrf_token, s.mfa_used, \
             s.expires_at FROM federated_console_sessions s \
             JOIN sso_users u ON u.user_id = s.sso_user_id \
             WHERE s.token_hash = $1 AND s.revoked = 0 AND s.expires_at > $2 AND u.disabled = 0",
        )
        .bind(token_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err(doing))?;
        let Some(row) = row else { return Ok(None) };
        let get = |name: &str| -> Result<String, StoreError> {
            row.try_get(name).map_err(query_err(doing))
        };
        let Some(role) = self.role_by_id(&get("role_id")?).await? else {
            return Ok(None);
        };
        Ok(Some(ConsoleSession {
            principal: ConsolePrincipal::Role {
                role,
                session_name: get("role_session_name")?,
                sso_user_id: get("sso_user_id")?,
            },
            csrf_token: get("csrf_token")?,
            mfa_used: row
                .try_get::<i64, _>("mfa_used")
                .map_err(query_err(doing))?
                != 0,
            expires_at: row.try_get("expires_at").map_err(query_err(doing))?,
        }))
    }

    /// Starts a console session as a role for an identity-store user, with
    /// the role credentials its shells get, together.
    #[allow(clippy::too_many_arguments)] // One column each.
    pub async fn create_federated_console_session(
        &self,
        token_hash: &str,
        role_id: &str,
        session_name: &str,
        sso_user_id: &str,
        csrf_token: &str,
        mfa_used: bool,
        expires_at: i64,
        credentials: (&str, &str, &str),
    ) -> Result<(), StoreError> {
        let doing = "starting a console session";
        let mut tx = self.write_tx().await.map_err(query_err(doing))?;
        sqlx::query(
            "INSERT INTO federated_console_sessions (token_hash, role_id, role_session_name, \
             sso_user_id, csrf_token, mfa_used, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(token_hash)
        .bind(role_id)
        .bind(session_name)
        .bind(sso_user_id)
        .bind(csrf_token)
        .bind(i64::from(mfa_used))
        .bind(now_ms())
        .bind(expires_at)
        .execute(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        let (access_key_id, secret, session_token) = credentials;
        sqlx::query(
            "INSERT INTO temporary_credentials (access_key_id, secret, session_token, role_id, \
             role_session_name, console_session, mfa_authenticated, created_at, expires_at, \
             sso_user_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(access_key_id)
        .bind(secret)
        .bind(session_token)
        .bind(role_id)
        .bind(session_name)
        .bind(token_hash)
        .bind(i64::from(mfa_used))
        .bind(now_ms())
        .bind(expires_at)
        .bind(sso_user_id)
        .execute(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        tx.commit().await.map_err(query_err(doing))
    }

    /// Ends a console session and revokes its temporary credentials, together.
    pub async fn revoke_console_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let mut tx = self
            .write_tx()
            .await
            .map_err(query_err("ending console session"))?;
        for sql in [
            "UPDATE console_sessions SET revoked = 1 WHERE token_hash = $1",
            "UPDATE federated_console_sessions SET revoked = 1 WHERE token_hash = $1",
        ] {
            sqlx::query(sql)
                .bind(token_hash)
                .execute(&mut *tx)
                .await
                .map_err(query_err("ending console session"))?;
        }
        sqlx::query("UPDATE temporary_credentials SET revoked = 1 WHERE console_session = $1")
            .bind(token_hash)
            .execute(&mut *tx)
            .await
            .map_err(query_err("ending console session"))?;
        tx.commit()
            .await
            .map_err(query_err("ending console session"))
    }

    /// Stores temporary credentials.
    #[allow(clippy::too_many_arguments)] // One column each.
    pub async fn create_temporary_credentials(
        &self,
        access_key_id: &str,
        secret: &str,
        session_token: &str,
        user_id: &str,
        console_session: Option<&str>,
        mfa_authenticated: bool,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO temporary_credentials (access_key_id, secret, session_token, user_id, \
             console_session, mfa_authenticated, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(access_key_id)
        .bind(secret)
        .bind(session_token)
        .bind(user_id)
        .bind(console_session.map(str::to_string))
        .bind(i64::from(mfa_authenticated))
        .bind(now_ms())
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(query_err("issuing temporary credentials"))?;
        Ok(())
    }

    /// Temporary credentials by access key id, whatever their state; `None`
    /// also when their user or role no longer exists.
    pub async fn temporary_credential(
        &self,
        access_key_id: &str,
    ) -> Result<Option<TemporaryCredential>, StoreError> {
        let row = sqlx::query(
            "SELECT access_key_id, secret, session_token, user_id, role_id, role_session_name, \
             sso_user_id, mfa_authenticated, expires_at, revoked, created_at FROM temporary_credentials \
             WHERE access_key_id = $1",
        )
        .bind(access_key_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading temporary credentials"))?;
        let Some(row) = row else { return Ok(None) };
        let get = |name: &str| -> Result<Option<String>, StoreError> {
            row.try_get(name)
                .map_err(query_err("reading temporary credentials"))
        };
        let owner = match (get("user_id")?, get("role_id")?) {
            (Some(user_id), _) => match self.user_by_id(&user_id).await? {
                Some(user) => CredentialOwner::User(user),
                None => return Ok(None),
            },
            (None, Some(role_id)) => match self.role_by_id(&role_id).await? {
                Some(role) => CredentialOwner::Role {
                    role,
                    session_name: get("role_session_name")?.unwrap_or_default(),
                    sso_user_id: get("sso_user_id")?,
                },
                None => return Ok(None),
            },
            (None, None) => return Ok(None),
        };
        let read = || -> Result<TemporaryCredential, sqlx::Error> {
            Ok(TemporaryCredential {
                access_key_id: row.try_get("access_key_id")?,
                secret: row.try_get("secret")?,
                session_token: row.try_get("session_token")?,
                owner,
                mfa_authenticated: row.try_get::<i64, _>("mfa_authenticated")? != 0,
                expires_at: row.try_get("expires_at")?,
                revoked: row.try_get::<i64, _>("revoked")? != 0,
                created_at: row.try_get("created_at")?,
            })
        };
        read()
            .map(Some)
            .map_err(query_err("reading temporary credentials"))
    }

    /// Stores the credentials of a role session (AssumeRole, or an
    /// identity-store user's role credentials, which name the user in
    /// `sso_user_id` so they can be revoked with the user's access).
    #[allow(clippy::too_many_arguments)] // One column each.
    pub async fn create_role_credentials(
        &self,
        access_key_id: &str,
        secret: &str,
        session_token: &str,
        role_id: &str,
        session_name: &str,
        mfa_authenticated: bool,
        expires_at: i64,
        sso_user_id: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO temporary_credentials (access_key_id, secret, session_token, role_id, \
             role_session_name, mfa_authenticated, created_at, expires_at, sso_user_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(access_key_id)
        .bind(secret)
        .bind(session_token)
        .bind(role_id)
        .bind(session_name)
        .bind(i64::from(mfa_authenticated))
        .bind(now_ms())
        .bind(expires_at)
        .bind(sso_user_id)
        .execute(&self.pool)
        .await
        .map_err(query_err("issuing role credentials"))?;
        Ok(())
    }

    /// A user by id.
    pub async fn user_by_id(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.user_id = $1");
        let row = sqlx::query(&sql)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading user"))?;
        row.map(|r| user_from_row(&r))
            .transpose()
            .map_err(query_err("reading user"))
    }
}

/// An enabled virtual MFA device.
#[derive(Debug, Clone)]
pub struct MfaDevice {
    /// `arn:aws:iam::<account>:mfa/<name>`.
    pub serial_number: String,
    /// The TOTP secret, base32.
    pub secret_base32: String,
}

impl Store {
    /// The user's enabled MFA device, if any.
    pub async fn enabled_mfa_device(&self, user_id: &str) -> Result<Option<MfaDevice>, StoreError> {
        let row = sqlx::query(
            "SELECT serial_number, secret_base32 FROM mfa_devices \
             WHERE user_id = $1 AND enabled_at IS NOT NULL ORDER BY enabled_at LIMIT 1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading MFA device"))?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(MfaDevice {
            serial_number: row
                .try_get("serial_number")
                .map_err(query_err("reading MFA device"))?,
            secret_base32: row
                .try_get("secret_base32")
                .map_err(query_err("reading MFA device"))?,
        }))
    }

    /// Records that the code of time step `step` was used on a device;
    /// false if that step (or a later one) was used already — a replay.
    pub async fn consume_mfa_step(
        &self,
        serial_number: &str,
        step: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mfa_devices SET last_step = $2 WHERE serial_number = $1 AND last_step < $2",
        )
        .bind(serial_number)
        .bind(step)
        .execute(&self.pool)
        .await
        .map_err(query_err("using MFA code"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Creates an MFA device, not yet enabled (CreateVirtualMFADevice).
    pub async fn create_mfa_device(
        &self,
        account_id: &str,
        serial_number: &str,
        secret_base32: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO mfa_devices (serial_number, account_id, secret_base32, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(serial_number)
        .bind(account_id)
        .bind(secret_base32)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(|e| match query_err("creating MFA device")(e) {
            StoreError::AlreadyExists(_) => StoreError::AlreadyExists(format!("MFA device {serial_number}")),
            other => other,
        })?;
        Ok(())
    }

    /// Binds a device to a user and enables it, starting its replay window at
    /// `step` (EnableMFADevice). False if the device is unknown or taken.
    pub async fn enable_mfa_device(
        &self,
        serial_number: &str,
        user_id: &str,
        step: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mfa_devices SET user_id = $2, enabled_at = $3, last_step = $4 \
             WHERE serial_number = $1 AND user_id IS NULL",
        )
        .bind(serial_number)
        .bind(user_id)
        .bind(now_ms())
        .bind(step)
        .execute(&self.pool)
        .await
        .map_err(query_err("enabling MFA device"))?;
        Ok(done.rows_affected() == 1)
    }

    /// The secret of a device that is not enabled yet.
    pub async fn pending_mfa_secret(
        &self,
        serial_number: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT secret_base32 FROM mfa_devices WHERE serial_number = $1 AND user_id IS NULL",
        )
        .bind(serial_number)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading MFA device"))?;
        row.map(|r| r.try_get("secret_base32"))
            .transpose()
            .map_err(query_err("reading MFA device"))
    }
}

impl Store {
    /// The live temporary credentials of a console session:
    /// (access key id, secret, session token, expiry in ms).
    pub async fn session_credentials(
        &self,
        session_token_hash: &str,
    ) -> Result<Option<(String, String, String, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT access_key_id, secret, session_token, expires_at FROM temporary_credentials \
             WHERE console_session = $1 AND revoked = 0 AND expires_at > $2 \
             ORDER BY expires_at DESC LIMIT 1",
        )
        .bind(session_token_hash)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading session credentials"))?;
        let Some(row) = row else { return Ok(None) };
        let read = || -> Result<_, sqlx::Error> {
            Ok((
                row.try_get("access_key_id")?,
                row.try_get("secret")?,
                row.try_get("session_token")?,
                row.try_get("expires_at")?,
            ))
        };
        read()
            .map(Some)
            .map_err(query_err("reading session credentials"))
    }
}

impl Store {
    /// A user's enabled MFA devices: (serial number, enabled at ms).
    pub async fn user_mfa_devices(&self, user_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT serial_number, enabled_at FROM mfa_devices \
             WHERE user_id = $1 AND enabled_at IS NOT NULL ORDER BY enabled_at, serial_number",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading MFA devices"))?;
        rows.iter()
            .map(|r| Ok((r.try_get("serial_number")?, r.try_get("enabled_at")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(query_err("reading MFA devices"))
    }

    /// Detaches a device from its user (DeactivateMFADevice); false if the
    /// user does not have it.
    pub async fn deactivate_mfa_device(
        &self,
        serial_number: &str,
        user_id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE mfa_devices SET user_id = NULL, enabled_at = NULL WHERE serial_number = $1 AND user_id = $2",
        )
        .bind(serial_number)
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(query_err("deactivating MFA device"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a virtual device that no user has (DeleteVirtualMFADevice).
    /// `Ok(None)` if it does not exist, `Ok(Some(false))` if it is in use.
    pub async fn delete_mfa_device(
        &self,
        account_id: &str,
        serial_number: &str,
    ) -> Result<Option<bool>, StoreError> {
        let mut tx = self
            .write_tx()
            .await
            .map_err(query_err("deleting MFA device"))?;
        let row = sqlx::query(
            "SELECT user_id FROM mfa_devices WHERE serial_number = $1 AND account_id = $2",
        )
        .bind(serial_number)
        .bind(account_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(query_err("deleting MFA device"))?;
        let Some(row) = row else { return Ok(None) };
        let owner: Option<String> = row
            .try_get("user_id")
            .map_err(query_err("deleting MFA device"))?;
        if owner.is_some() {
            return Ok(Some(false));
        }
        sqlx::query("DELETE FROM mfa_devices WHERE serial_number = $1")
            .bind(serial_number)
            .execute(&mut *tx)
            .await
            .map_err(query_err("deleting MFA device"))?;
        tx.commit()
            .await
            .map_err(query_err("deleting MFA device"))?;
        Ok(Some(true))
    }

    /// A user's console preferences (a JSON document), if they saved any.
    pub async fn console_preferences(&self, user_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT preferences FROM console_preferences WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading console preferences"))?;
        row.map(|r| r.try_get("preferences"))
            .transpose()
            .map_err(query_err("reading console preferences"))
    }

    /// Replaces a user's console preferences.
    pub async fn set_console_preferences(
        &self,
        user_id: &str,
        preferences: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_preferences (user_id, preferences, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id) DO UPDATE SET preferences = $2, updated_at = $3",
        )
        .bind(user_id)
        .bind(preferences)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(query_err("saving console preferences"))?;
        Ok(())
    }
}
