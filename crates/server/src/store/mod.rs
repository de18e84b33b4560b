//! State in one database through `sqlx`: SQLite (the embedded default, in WAL
//! mode) or PostgreSQL. The same migrations and queries serve both, through
//! sqlx's `Any` driver; queries use `$n` placeholders, which both accept.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Connection, Executor, Row};

use crate::ids;

mod audit;
pub mod cloudshell;
pub mod console;

pub mod iam;
pub mod identity_center;
pub mod sso;

/// A database failure, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Could not connect or open the database.
    #[error("cannot open the database {url}: {source}")]
    Connect {
        /// The database URL with any password removed.
        url: String,
        /// Why.
        source: sqlx::Error,
    },
    /// Migrations failed.
    #[error("cannot bring the database schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error while {doing}: {source}")]
    Query {
        /// What was being done.
        doing: &'static str,
        /// Why.
        source: sqlx::Error,
    },
    /// A value could not be encoded for storage.
    #[error("cannot encode a value for the database: {0}")]
    Encode(String),
    /// A name that must be unique is taken.
    #[error("{0} already exists")]
    AlreadyExists(String),
}

impl StoreError {
    /// Whether the database could not be reached or written, rather than
    /// refusing this query: see [`unavailable`].
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Connect { source, .. } | StoreError::Query { source, .. } => {
                unavailable(source)
            }
            _ => false,
        }
    }
}

/// Whether `e` says the database is out of reach (refused or cut
/// connections, the pool's connect timeout) or cannot store anything (a
/// full or failing disk: SQLite's `SQLITE_FULL`, `SQLITE_IOERR`,
/// PostgreSQL's class 53 and 08), a state that passes.
pub fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            if code.len() == 5 {
                // A PostgreSQL SQLSTATE: class 08 (connection), 53
                // (insufficient resources), 57P (operator intervention).
                code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
            } else {
                // SQLite's primary result code is the low byte of the
                // extended one: IOERR, FULL, CANTOPEN.
                code.parse::<i32>()
                    .is_ok_and(|c| matches!(c & 0xff, 10 | 13 | 14))
            }
        }),
        _ => false,
    }
}

fn query_err(doing: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| match &source {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::AlreadyExists(doing.trim_start_matches("creating ").to_string())
        }
        _ => StoreError::Query { doing, source },
    }
}

/// The database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// Which database holds the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// An IAM user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `AIDA…`.
    pub user_id: String,
    /// The owning account.
    pub account_id: String,
    /// The name, as given.
    pub name: String,
    /// The IAM path, `/` by default.
    pub path: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Whether the next sign-in must change the password.
    pub password_reset_required: bool,
}

impl User {
    /// `arn:aws:iam::<account>:user<path><name>`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:iam::{}:user{}{}",
            self.account_id, self.path, self.name
        )
    }
}

/// A long-term access key with its owner, for request verification.
#[derive(Debug, Clone)]
pub struct AccessKey {
    /// `AKIA…`.
    pub access_key_id: String,
    /// The secret, needed to recompute signatures.
    pub secret: String,
    /// Whether the key may be used.
    pub active: bool,
    /// The owner.
    pub user: User,
}

const USER_COLUMNS: &str =
    "u.user_id, u.account_id, u.name, u.path, u.created_at, u.password_reset_required";

fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        user_id: row.try_get("user_id")?,
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        path: row.try_get("path")?,
        created_at: row.try_get("created_at")?,
        password_reset_required: row.try_get::<i64, _>("password_reset_required")? != 0,
    })
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Store {
    /// Opens (creating if needed) the database at `url` and applies migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let shown = redact_url(url);
        let connect_err = |source| StoreError::Connect {
            url: shown.clone(),
            source,
        };
        let options = AnyConnectOptions::from_str(url).map_err(connect_err)?;
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let pool = AnyPoolOptions::new()
            // SQLite serializes writers anyway; a few connections serve reads.
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            // How long a request waits for a connection: SQLite's writers
            // queue behind each other; an unreachable PostgreSQL answers
            // callers ServiceUnavailable after this long
            // (docs/server.md, "Faults and recovery").
            .acquire_timeout(if backend == Backend::Sqlite {
                Duration::from_secs(10)
            } else {
                Duration::from_secs(5)
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never block the writer, and a crash
                        // loses nothing that was committed.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(connect_err)?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store { pool, backend })
    }

    /// A transaction that writes. On SQLite it takes the write lock at its
    /// start (`BEGIN IMMEDIATE`): a deferred transaction that reads first
    /// and writes later fails at once with `SQLITE_BUSY_SNAPSHOT` when
    /// another connection wrote in between, whatever the busy timeout; an
    /// immediate one waits its turn instead.
    pub(crate) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(query_err("pinging"))?;
        conn.ping().await.map_err(query_err("pinging"))
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The first account created, if any.
    pub async fn first_account(&self) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT account_id FROM accounts ORDER BY created_at, account_id LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(query_err("reading accounts"))?;
        row.map(|r| r.try_get("account_id"))
            .transpose()
            .map_err(query_err("reading accounts"))
    }

    /// Creates an account with a fresh 12-digit ID.
    pub async fn create_account(&self) -> Result<String, StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(query_err("creating account"))?;
        insert_account(&mut conn).await
    }

    /// Creates a user.
    pub async fn create_user(
        &self,
        account_id: &str,
        name: &str,
        path: &str,
    ) -> Result<User, StoreError> {
        let user = User {
            user_id: ids::user_id(),
            account_id: account_id.to_string(),
            name: name.to_string(),
            path: path.to_string(),
            created_at: now_ms(),
            password_reset_required: false,
        };
        sqlx::query(
            "INSERT INTO users (user_id, account_id, name, name_key, path, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&user.user_id)
        .bind(&user.account_id)
        .bind(&user.name)
        .bind(name.to_lowercase())
        .bind(&user.path)
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| match query_err("creating user")(e) {
            StoreError::AlreadyExists(_) => StoreError::AlreadyExists(format!("user {name}")),
            other => other,
        })?;
        Ok(user)
    }

    /// Finds a user by name (any case) in an account.
    pub async fn user_by_name(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.account_id = $1 AND u.name_key = $2"
        );
        let row = sqlx::query(&sql)
            .bind(account_id)
            .bind(name.to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading user"))?;
        row.map(|r| user_from_row(&r))
            .transpose()
            .map_err(query_err("reading user"))
    }

    /// Sets a user's password hash, and whether it must be changed at the
    /// next sign-in.
    pub async fn set_password(
        &self,
        user_id: &str,
        hash: &str,
        reset_required: bool,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE users SET password_hash = $1, password_reset_required = $2 WHERE user_id = $3",
        )
        .bind(hash)
        .bind(i64::from(reset_required))
        .bind(user_id)
        .execute(&self.pool)
        .await
        .map_err(query_err("setting password"))?;
        Ok(())
    }

    /// Creates an active access key for a user; returns (id, secret).
    pub async fn create_access_key(&self, user_id: &str) -> Result<(String, String), StoreError> {
        let (id, secret) = (ids::access_key_id(), ids::secret_access_key());
        sqlx::query(
            "INSERT INTO access_keys (access_key_id, user_id, secret, active, created_at) \
             VALUES ($1, $2, $3, 1, $4)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(&secret)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(query_err("creating access key"))?;
        Ok((id, secret))
    }

    /// Looks up an access key and its owner.
    pub async fn access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>, StoreError> {
        let sql = format!(
            "SELECT k.access_key_id, k.secret, k.active, {USER_COLUMNS} \
             FROM access_keys k JOIN users u ON u.user_id = k.user_id WHERE k.access_key_id = $1"
        );
        let row = sqlx::query(&sql)
            .bind(access_key_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading access key"))?;
        let Some(row) = row else { return Ok(None) };
        let read = |row: &AnyRow| -> Result<AccessKey, sqlx::Error> {
            Ok(AccessKey {
                access_key_id: row.try_get("access_key_id")?,
                secret: row.try_get("secret")?,
                active: row.try_get::<i64, _>("active")? != 0,
                user: user_from_row(row)?,
            })
        };
        read(&row)
            .map(Some)
            .map_err(query_err("reading access key"))
    }

    /// Attaches a managed policy (by ARN) to a user; attaching twice is fine.
    pub async fn attach_user_policy(
        &self,
        user_id: &str,
        policy_arn: &str,
    ) -> Result<(), StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => "INSERT OR IGNORE INTO user_policy_attachments (user_id, policy_arn) VALUES ($1, $2)",
            Backend::Postgres => {
                "INSERT INTO user_policy_attachments (user_id, policy_arn) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            }
        };
        sqlx::query(sql)
            .bind(user_id)
            .bind(policy_arn)
            .execute(&self.pool)
            .await
            .map_err(query_err("attaching policy"))?;
        Ok(())
    }

    /// The managed policies attached to a user.
    pub async fn user_policy_arns(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT policy_arn FROM user_policy_attachments WHERE user_id = $1 ORDER BY policy_arn",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading attached policies"))?;
        rows.iter()
            .map(|r| r.try_get("policy_arn"))
            .collect::<Result<_, _>>()
            .map_err(query_err("reading attached policies"))
    }
}

/// The URL with any password replaced, for messages.
/// Inserts an account with a fresh 12-digit ID on `conn` (a connection or
/// an open transaction), so callers can create an account together with
/// rows that depend on it.
pub(crate) async fn insert_account(conn: &mut sqlx::AnyConnection) -> Result<String, StoreError> {
    let id = ids::account_id();
    sqlx::query("INSERT INTO accounts (account_id, created_at) VALUES ($1, $2)")
        .bind(&id)
        .bind(now_ms())
        .execute(conn)
        .await
        .map_err(query_err("creating account"))?;
    Ok(id)
}

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact_url("postgres://seashell:hunter2@localhost/db"),
            "postgres://seashell:***@localhost/db"
        );
        assert_eq!(redact_url("sqlite:///x.db"), "sqlite:///x.db");
    }
}
