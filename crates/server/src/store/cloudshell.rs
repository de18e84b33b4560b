//! CloudShell state: environments, sessions, data-channel tokens, usage and
//! homes (migration `0005_cloudshell.sql`).

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_ms, query_err, Store, StoreError};

/// An environment as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvironmentRow {
    /// The id the API hands out (also the container's name).
    pub environment_id: String,
    /// The owner's account.
    pub account_id: String,
    /// The owner's ARN when the environment was created.
    pub principal_arn: String,
    /// The owner: the principal's stable ID (`AIDA…`, `AROA…:session`),
    /// what ownership is decided by (migration `0009_principal_ids.sql`).
    pub principal_id: String,
    /// The principal part of the home's `HomeKey`: the stable ID, or the ARN
    /// for a home from before `0009_principal_ids.sql`.
    pub home_principal: String,
    /// The region.
    pub region: String,
    /// `""` for the public environment, else the VPC environment's name.
    pub name: String,
    /// The VPC configuration (JSON), for VPC environments.
    pub vpc_config: Option<String>,
    /// The API status (`CREATING`, `RUNNING`, …).
    pub status: String,
    /// Why the status is what it is, when that needs saying.
    pub status_reason: Option<String>,
    /// The console's tab layout (opaque to the server).
    pub layout: Option<String>,
    /// When its last session ended (ms), while it has none.
    pub idle_since: Option<i64>,
    /// Last `sendHeartBeat` (ms).
    pub heartbeat_at: Option<i64>,
    /// When it started running (ms), while running.
    pub running_since: Option<i64>,
    /// The console session whose credentials were forwarded (token hash).
    pub credentials_console_session: Option<String>,
    /// The access key id of the forwarded credentials.
    pub credentials_access_key_id: Option<String>,
    /// When the forwarded credentials expire (ms).
    pub credentials_expires_at: Option<i64>,
    /// Created (ms).
    pub created_at: i64,
    /// Last changed (ms).
    pub updated_at: i64,
}

const ENV_COLUMNS: &str = "environment_id, account_id, principal_arn, principal_id, \
     home_principal, region, name, vpc_config, status, status_reason, layout, idle_since, heartbeat_at, running_since, \
     credentials_console_session, credentials_access_key_id, credentials_expires_at, \
     created_at, updated_at";

fn env_from_row(row: &AnyRow) -> Result<EnvironmentRow, sqlx::Error> {
    Ok(EnvironmentRow {
        environment_id: row.try_get("environment_id")?,
        account_id: row.try_get("account_id")?,
        principal_arn: row.try_get("principal_arn")?,
        principal_id: row.try_get("principal_id")?,
        home_principal: row.try_get("home_principal")?,
        region: row.try_get("region")?,
        name: row.try_get("name")?,
        vpc_config: row.try_get("vpc_config")?,
        status: row.try_get("status")?,
        status_reason: row.try_get("status_reason")?,
        layout: row.try_get("layout")?,
        idle_since: row.try_get("idle_since")?,
        heartbeat_at: row.try_get("heartbeat_at")?,
        running_since: row.try_get("running_since")?,
        credentials_console_session: row.try_get("credentials_console_session")?,
        credentials_access_key_id: row.try_get("credentials_access_key_id")?,
        credentials_expires_at: row.try_get("credentials_expires_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A session (a shell) as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// The id the API hands out; also the agent's session id.
    pub session_id: String,
    /// Its environment.
    pub environment_id: String,
    /// The console tab it belongs to.
    pub tab_id: String,
    /// `bash`, `zsh` or `pwsh`.
    pub shell: String,
    /// Who opened it.
    pub principal_arn: String,
    /// Created (ms).
    pub created_at: i64,
    /// Ended (ms), once ended.
    pub ended_at: Option<i64>,
    /// Why it ended.
    pub end_reason: Option<String>,
}

const SESSION_COLUMNS: &str =
    "session_id, environment_id, tab_id, shell, principal_arn, created_at, ended_at, end_reason";

fn session_from_row(row: &AnyRow) -> Result<SessionRow, sqlx::Error> {
    Ok(SessionRow {
        session_id: row.try_get("session_id")?,
        environment_id: row.try_get("environment_id")?,
        tab_id: row.try_get("tab_id")?,
        shell: row.try_get("shell")?,
        principal_arn: row.try_get("principal_arn")?,
        created_at: row.try_get("created_at")?,
        ended_at: row.try_get("ended_at")?,
        end_reason: row.try_get("end_reason")?,
    })
}

/// A home volume the retention janitor knows of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeRow {
    /// The owner's account.
    pub account_id: String,
    /// The ARN it was last used as (for the record of its deletion).
    pub principal_arn: String,
    /// The owner's stable ID (see [`EnvironmentRow::principal_id`]).
    pub principal_id: String,
    /// The principal part of its `HomeKey`.
    pub home_principal: String,
    /// The region.
    pub region: String,
    /// Last used (ms).
    pub last_used_at: i64,
}

fn rows<T>(
    rows: Vec<AnyRow>,
    read: fn(&AnyRow) -> Result<T, sqlx::Error>,
    doing: &'static str,
) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(read)
        .collect::<Result<_, _>>()
        .map_err(query_err(doing))
}

impl Store {
    /// Stores a new environment; `AlreadyExists` if the principal already
    /// has one of that name in that region.
    pub async fn insert_environment(&self, env: &EnvironmentRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO cloudshell_environments ({ENV_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        );
        sqlx::query(&sql)
            .bind(&env.environment_id)
            .bind(&env.account_id)
            .bind(&env.principal_arn)
            .bind(&env.principal_id)
            .bind(&env.home_principal)
            .bind(&env.region)
            .bind(&env.name)
            .bind(env.vpc_config.clone())
            .bind(&env.status)
            .bind(env.status_reason.clone())
            .bind(env.layout.clone())
            .bind(env.idle_since)
            .bind(env.heartbeat_at)
            .bind(env.running_since)
            .bind(env.credentials_console_session.clone())
            .bind(env.credentials_access_key_id.clone())
            .bind(env.credentials_expires_at)
            .bind(env.created_at)
            .bind(env.updated_at)
            .execute(&self.pool)
            .await
            .map_err(query_err("creating environment"))?;
        Ok(())
    }

    /// An environment by id.
    pub async fn environment(&self, id: &str) -> Result<Option<EnvironmentRow>, StoreError> {
        let sql =
            format!("SELECT {ENV_COLUMNS} FROM cloudshell_environments WHERE environment_id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading environment"))?;
        row.map(|r| env_from_row(&r))
            .transpose()
            .map_err(query_err("reading environment"))
    }

    /// A principal's environment of a name in a region.
    pub async fn environment_by_key(
        &self,
        account_id: &str,
        principal_id: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<EnvironmentRow>, StoreError> {
        let sql = format!(
            "SELECT {ENV_COLUMNS} FROM cloudshell_environments \
             WHERE account_id = $1 AND principal_id = $2 AND region = $3 AND name = $4"
        );
        let row = sqlx::query(&sql)
            .bind(account_id)
            .bind(principal_id)
            .bind(region)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading environment"))?;
        row.map(|r| env_from_row(&r))
            .transpose()
            .map_err(query_err("reading environment"))
    }

    /// A principal's environments in a region, oldest first.
    pub async fn environments_of(
        &self,
        account_id: &str,
        principal_id: &str,
        region: &str,
    ) -> Result<Vec<EnvironmentRow>, StoreError> {
        let sql = format!(
            "SELECT {ENV_COLUMNS} FROM cloudshell_environments \
             WHERE account_id = $1 AND principal_id = $2 AND region = $3 \
             ORDER BY created_at, environment_id"
        );
        let found = sqlx::query(&sql)
            .bind(account_id)
            .bind(principal_id)
            .bind(region)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing environments"))?;
        rows(found, env_from_row, "listing environments")
    }

    /// A principal's environments in every region (for `DeleteUser`).
    pub async fn environments_of_principal(
        &self,
        account_id: &str,
        principal_id: &str,
    ) -> Result<Vec<EnvironmentRow>, StoreError> {
        let sql = format!(
            "SELECT {ENV_COLUMNS} FROM cloudshell_environments \
             WHERE account_id = $1 AND principal_id = $2 ORDER BY environment_id"
        );
        let found = sqlx::query(&sql)
            .bind(account_id)
            .bind(principal_id)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing environments"))?;
        rows(found, env_from_row, "listing environments")
    }

    /// Every environment, for the background duties and reconciliation.
    pub async fn all_environments(&self) -> Result<Vec<EnvironmentRow>, StoreError> {
        let sql =
            format!("SELECT {ENV_COLUMNS} FROM cloudshell_environments ORDER BY environment_id");
        let found = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing environments"))?;
        rows(found, env_from_row, "listing environments")
    }

    /// How many VPC environments a principal has, in every region.
    pub async fn count_vpc_environments(
        &self,
        account_id: &str,
        principal_id: &str,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM cloudshell_environments \
             WHERE account_id = $1 AND principal_id = $2 AND vpc_config IS NOT NULL",
        )
        .bind(account_id)
        .bind(principal_id)
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("counting environments"))?;
        row.try_get("n").map_err(query_err("counting environments"))
    }

    /// How many environments are running or starting (`CREATING`,
    /// `RUNNING`, `RESUMING`), in every account: the host-wide cap.
    pub async fn count_active_environments(&self) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM cloudshell_environments \
             WHERE status IN ('CREATING', 'RUNNING', 'RESUMING')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("counting running environments"))?;
        row.try_get("n")
            .map_err(query_err("counting running environments"))
    }

    /// Moves an environment to `status` if it is in one of `from` (or in
    /// any state when `from` is empty); false if it was not.
    pub async fn set_environment_status(
        &self,
        id: &str,
        from: &[&str],
        status: &str,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut sql = String::from(
            "UPDATE cloudshell_environments SET status = $1, status_reason = $2, updated_at = $3 \
             WHERE environment_id = $4",
        );
        if !from.is_empty() {
            let list: Vec<String> = (0..from.len()).map(|i| format!("${}", i + 5)).collect();
            sql.push_str(&format!(" AND status IN ({})", list.join(", ")));
        }
        let mut q = sqlx::query(&sql)
            .bind(status)
            .bind(reason.map(str::to_string))
            .bind(now_ms())
            .bind(id);
        for f in from {
            q = q.bind(*f);
        }
        let done = q
            .execute(&self.pool)
            .await
            .map_err(query_err("changing environment status"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets one nullable timestamp column of an environment.
    pub async fn set_environment_time(
        &self,
        id: &str,
        column: EnvironmentTime,
        value: Option<i64>,
    ) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE cloudshell_environments SET {} = $1 WHERE environment_id = $2",
            column.column()
        );
        sqlx::query(&sql)
            .bind(value)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(query_err("updating environment"))?;
        Ok(())
    }

    /// Stores the console's layout.
    pub async fn set_layout(&self, id: &str, layout: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE cloudshell_environments SET layout = $1, updated_at = $2 WHERE environment_id = $3")
            .bind(layout)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(query_err("saving layout"))?;
        Ok(())
    }

    /// Records which credentials were forwarded into an environment (all
    /// `None`: withdrawn).
    pub async fn set_forwarded_credentials(
        &self,
        id: &str,
        console_session: Option<&str>,
        access_key_id: Option<&str>,
        expires_at: Option<i64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE cloudshell_environments SET credentials_console_session = $1, \
             credentials_access_key_id = $2, credentials_expires_at = $3 WHERE environment_id = $4",
        )
        .bind(console_session.map(str::to_string))
        .bind(access_key_id.map(str::to_string))
        .bind(expires_at)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(query_err("recording forwarded credentials"))?;
        Ok(())
    }

    /// Removes an environment with its sessions and tokens.
    pub async fn delete_environment(&self, id: &str) -> Result<(), StoreError> {
        let doing = "deleting environment";
        let mut tx = self.write_tx().await.map_err(query_err(doing))?;
        sqlx::query(
            "DELETE FROM cloudshell_stream_tokens WHERE session_id IN \
             (SELECT session_id FROM cloudshell_sessions WHERE environment_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(query_err(doing))?;
        sqlx::query("DELETE FROM cloudshell_sessions WHERE environment_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(query_err(doing))?;
        sqlx::query("DELETE FROM cloudshell_environments WHERE environment_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(query_err(doing))?;
        tx.commit().await.map_err(query_err(doing))
    }

    /// Stores a new session.
    pub async fn insert_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO cloudshell_sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        );
        sqlx::query(&sql)
            .bind(&s.session_id)
            .bind(&s.environment_id)
            .bind(&s.tab_id)
            .bind(&s.shell)
            .bind(&s.principal_arn)
            .bind(s.created_at)
            .bind(s.ended_at)
            .bind(s.end_reason.clone())
            .execute(&self.pool)
            .await
            .map_err(query_err("creating session"))?;
        Ok(())
    }

    /// A session by id.
    pub async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let sql =
            format!("SELECT {SESSION_COLUMNS} FROM cloudshell_sessions WHERE session_id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading session"))?;
        row.map(|r| session_from_row(&r))
            .transpose()
            .map_err(query_err("reading session"))
    }

    /// The live session of a tab in an environment.
    pub async fn live_session_of_tab(
        &self,
        environment_id: &str,
        tab_id: &str,
    ) -> Result<Option<SessionRow>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM cloudshell_sessions \
             WHERE environment_id = $1 AND tab_id = $2 AND ended_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(environment_id)
            .bind(tab_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading session"))?;
        row.map(|r| session_from_row(&r))
            .transpose()
            .map_err(query_err("reading session"))
    }

    /// An environment's live sessions.
    pub async fn live_sessions(&self, environment_id: &str) -> Result<Vec<SessionRow>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM cloudshell_sessions \
             WHERE environment_id = $1 AND ended_at IS NULL ORDER BY created_at"
        );
        let found = sqlx::query(&sql)
            .bind(environment_id)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing sessions"))?;
        rows(found, session_from_row, "listing sessions")
    }

    /// Live sessions in an account and region (the concurrent-shell quota).
    pub async fn count_live_sessions(
        &self,
        account_id: &str,
        region: &str,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM cloudshell_sessions s \
             JOIN cloudshell_environments e ON e.environment_id = s.environment_id \
             WHERE e.account_id = $1 AND e.region = $2 AND s.ended_at IS NULL",
        )
        .bind(account_id)
        .bind(region)
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("counting sessions"))?;
        row.try_get("n").map_err(query_err("counting sessions"))
    }

    /// Marks a session ended; false if it already was.
    pub async fn end_session(&self, id: &str, reason: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE cloudshell_sessions SET ended_at = $1, end_reason = $2 \
             WHERE session_id = $3 AND ended_at IS NULL",
        )
        .bind(now_ms())
        .bind(reason)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(query_err("ending session"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks every live session of an environment ended.
    pub async fn end_all_sessions(
        &self,
        environment_id: &str,
        reason: &str,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE cloudshell_sessions SET ended_at = $1, end_reason = $2 \
             WHERE environment_id = $3 AND ended_at IS NULL",
        )
        .bind(now_ms())
        .bind(reason)
        .bind(environment_id)
        .execute(&self.pool)
        .await
        .map_err(query_err("ending sessions"))?;
        Ok(done.rows_affected())
    }

    /// Stores a one-time data-channel token (its hash).
    pub async fn insert_stream_token(
        &self,
        token_hash: &str,
        session_id: &str,
        principal_arn: &str,
        attach_mode: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cloudshell_stream_tokens (token_hash, session_id, principal_arn, attach_mode, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(session_id)
        .bind(principal_arn)
        .bind(attach_mode)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(query_err("issuing stream token"))?;
        Ok(())
    }

    /// Spends a token: if it exists for `session_id`, is unused and
    /// unexpired, marks it used and returns (principal, attach mode). A
    /// token works once, even when two connections race for it.
    pub async fn redeem_stream_token(
        &self,
        token_hash: &str,
        session_id: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let doing = "redeeming stream token";
        let done = sqlx::query(
            "UPDATE cloudshell_stream_tokens SET used = 1 \
             WHERE token_hash = $1 AND session_id = $2 AND used = 0 AND expires_at > $3",
        )
        .bind(token_hash)
        .bind(session_id)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(query_err(doing))?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT principal_arn, attach_mode FROM cloudshell_stream_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_one(&self.pool)
        .await
        .map_err(query_err(doing))?;
        let read = || -> Result<(String, String), sqlx::Error> {
            Ok((row.try_get("principal_arn")?, row.try_get("attach_mode")?))
        };
        read().map(Some).map_err(query_err(doing))
    }

    /// Removes spent and expired tokens.
    pub async fn purge_stream_tokens(&self) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM cloudshell_stream_tokens WHERE used = 1 OR expires_at <= $1")
                .bind(now_ms())
                .execute(&self.pool)
                .await
                .map_err(query_err("purging stream tokens"))?;
        Ok(done.rows_affected())
    }

    /// Spends the upload URL `url_id` (valid until `expires_at_ms`): true
    /// the first time, false if it was spent before. One atomic insert, so
    /// of two uploads racing with one URL exactly one gets true.
    pub async fn spend_file_url(
        &self,
        url_id: &str,
        expires_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO cloudshell_spent_file_urls (url_id, expires_at) VALUES ($1, $2) \
             ON CONFLICT (url_id) DO NOTHING",
        )
        .bind(url_id)
        .bind(expires_at_ms)
        .execute(&self.pool)
        .await
        .map_err(query_err("spending a file URL"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets spent upload URLs that have expired (they are refused as
    /// expired anyway).
    pub async fn purge_spent_file_urls(&self) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM cloudshell_spent_file_urls WHERE expires_at <= $1")
            .bind(now_ms())
            .execute(&self.pool)
            .await
            .map_err(query_err("purging spent file URLs"))?;
        Ok(done.rows_affected())
    }

    /// Adds running time to an account's usage for a region and month.
    pub async fn add_usage(
        &self,
        account_id: &str,
        region: &str,
        month: &str,
        seconds: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cloudshell_usage (account_id, region, month, seconds) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_id, region, month) DO UPDATE SET seconds = cloudshell_usage.seconds + $4",
        )
        .bind(account_id)
        .bind(region)
        .bind(month)
        .bind(seconds)
        .execute(&self.pool)
        .await
        .map_err(query_err("metering usage"))?;
        Ok(())
    }

    /// Usage in seconds for an account, region and month.
    pub async fn usage(
        &self,
        account_id: &str,
        region: &str,
        month: &str,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT seconds FROM cloudshell_usage WHERE account_id = $1 AND region = $2 AND month = $3",
        )
        .bind(account_id)
        .bind(region)
        .bind(month)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading usage"))?;
        match row {
            Some(r) => r.try_get("seconds").map_err(query_err("reading usage")),
            None => Ok(0),
        }
    }

    /// Every account's usage: (account, region, month, seconds), newest
    /// month first.
    pub async fn all_usage(&self) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        let found = sqlx::query(
            "SELECT account_id, region, month, seconds FROM cloudshell_usage \
             ORDER BY month DESC, account_id, region",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading usage"))?;
        found
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("account_id")?,
                    r.try_get("region")?,
                    r.try_get("month")?,
                    r.try_get("seconds")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(query_err("reading usage"))
    }

    /// An account's usage rows: (region, month, seconds), newest month first.
    pub async fn usage_of_account(
        &self,
        account_id: &str,
    ) -> Result<Vec<(String, String, i64)>, StoreError> {
        let found = sqlx::query(
            "SELECT region, month, seconds FROM cloudshell_usage WHERE account_id = $1 \
             ORDER BY month DESC, region",
        )
        .bind(account_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading usage"))?;
        found
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("region")?,
                    r.try_get("month")?,
                    r.try_get("seconds")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(query_err("reading usage"))
    }

    /// Records that the home of `env` was used now (its retention clock
    /// restarts).
    pub async fn touch_home(&self, env: &EnvironmentRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cloudshell_homes \
             (account_id, principal_id, home_principal, principal_arn, region, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (account_id, principal_id, region) \
             DO UPDATE SET last_used_at = $6, principal_arn = $4",
        )
        .bind(&env.account_id)
        .bind(&env.principal_id)
        .bind(&env.home_principal)
        .bind(&env.principal_arn)
        .bind(&env.region)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(query_err("recording home use"))?;
        Ok(())
    }

    /// Homes last used before `cutoff_ms`.
    pub async fn homes_unused_since(&self, cutoff_ms: i64) -> Result<Vec<HomeRow>, StoreError> {
        let found = sqlx::query(
            "SELECT account_id, principal_id, home_principal, principal_arn, region, last_used_at \
             FROM cloudshell_homes \
             WHERE last_used_at < $1 ORDER BY last_used_at",
        )
        .bind(cutoff_ms)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing homes"))?;
        let read = |r: &AnyRow| -> Result<HomeRow, sqlx::Error> {
            Ok(HomeRow {
                account_id: r.try_get("account_id")?,
                principal_arn: r.try_get("principal_arn")?,
                principal_id: r.try_get("principal_id")?,
                home_principal: r.try_get("home_principal")?,
                region: r.try_get("region")?,
                last_used_at: r.try_get("last_used_at")?,
            })
        };
        rows(found, read, "listing homes")
    }

    /// Sets a home's last use (administration and tests of retention).
    pub async fn set_home_last_used(
        &self,
        account_id: &str,
        principal_id: &str,
        region: &str,
        last_used_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE cloudshell_homes SET last_used_at = $1 \
             WHERE account_id = $2 AND principal_id = $3 AND region = $4",
        )
        .bind(last_used_at)
        .bind(account_id)
        .bind(principal_id)
        .bind(region)
        .execute(&self.pool)
        .await
        .map_err(query_err("recording home use"))?;
        Ok(())
    }

    /// Forgets a home (it was deleted).
    pub async fn forget_home(
        &self,
        account_id: &str,
        principal_id: &str,
        region: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM cloudshell_homes WHERE account_id = $1 AND principal_id = $2 AND region = $3")
            .bind(account_id)
            .bind(principal_id)
            .bind(region)
            .execute(&self.pool)
            .await
            .map_err(query_err("forgetting home"))?;
        Ok(())
    }
}

/// The nullable timestamps of an environment row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvironmentTime {
    /// When the last session ended.
    IdleSince,
    /// The last heartbeat.
    HeartbeatAt,
    /// When it started running.
    RunningSince,
}

impl EnvironmentTime {
    fn column(self) -> &'static str {
        match self {
            EnvironmentTime::IdleSince => "idle_since",
            EnvironmentTime::HeartbeatAt => "heartbeat_at",
            EnvironmentTime::RunningSince => "running_since",
        }
    }
}
