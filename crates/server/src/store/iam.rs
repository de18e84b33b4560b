//! IAM state: groups, roles, customer managed policies and their versions,
//! attachments, inline policies, access keys, login profiles and account
//! aliases.
//!
//! Every operation that checks something and then changes several rows does
//! both in one transaction, so a refused or failed operation leaves the
//! database as it was.

use rand::rngs::OsRng;
use rand::Rng;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{now_ms, query_err, user_from_row, Store, StoreError, User, USER_COLUMNS};
use crate::ids;

/// Why an IAM change was refused.
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    /// The entity named does not exist (the message says which).
    #[error("{0}")]
    NotFound(String),
    /// The name is taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The entity still has dependents that must go first.
    #[error("{0}")]
    Conflict(String),
    /// A quota would be exceeded.
    #[error("{0}")]
    Limit(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Most access keys a user may have, as in IAM.
pub const MAX_ACCESS_KEYS: i64 = 2;
/// Most groups a user may belong to.
pub const MAX_GROUPS_PER_USER: i64 = 10;
/// Most managed policies attached to one user, group or role.
pub const MAX_ATTACHED_POLICIES: i64 = 10;
/// Most versions a managed policy keeps.
pub const MAX_POLICY_VERSIONS: i64 = 5;

/// What owns attached and inline policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// An IAM user.
    User,
    /// An IAM group.
    Group,
    /// An IAM role.
    Role,
}

impl Owner {
    fn attachments(self) -> (&'static str, &'static str) {
        match self {
            Owner::User => ("user_policy_attachments", "user_id"),
            Owner::Group => ("group_policy_attachments", "group_id"),
            Owner::Role => ("role_policy_attachments", "role_id"),
        }
    }

    /// The owner's own table and key column.
    fn table(self) -> (&'static str, &'static str) {
        match self {
            Owner::User => ("users", "user_id"),
            Owner::Group => ("iam_groups", "group_id"),
            Owner::Role => ("iam_roles", "role_id"),
        }
    }

    fn inline(self) -> (&'static str, &'static str) {
        match self {
            Owner::User => ("user_inline_policies", "user_id"),
            Owner::Group => ("group_inline_policies", "group_id"),
            Owner::Role => ("role_inline_policies", "role_id"),
        }
    }

    /// The owner's kind as IAM messages name it (`user`, `group`, `role`).
    pub fn noun(self) -> &'static str {
        match self {
            Owner::User => "user",
            Owner::Group => "group",
            Owner::Role => "role",
        }
    }
}

/// An IAM group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `AGPA…`.
    pub group_id: String,
    /// The owning account.
    pub account_id: String,
    /// The name, as given.
    pub name: String,
    /// The IAM path.
    pub path: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

impl Group {
    /// `arn:aws:iam::<account>:group<path><name>`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:iam::{}:group{}{}",
            self.account_id, self.path, self.name
        )
    }
}

/// An IAM role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// `AROA…`.
    pub role_id: String,
    /// The owning account.
    pub account_id: String,
    /// The name, as given.
    pub name: String,
    /// The IAM path.
    pub path: String,
    /// The description, if any.
    pub description: Option<String>,
    /// Longest session, in seconds.
    pub max_session_duration: i64,
    /// The trust policy document, as given.
    pub trust_policy: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

impl Role {
    /// `arn:aws:iam::<account>:role<path><name>`.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:iam::{}:role{}{}",
            self.account_id, self.path, self.name
        )
    }
}

/// A customer managed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedPolicy {
    /// `ANPA…`.
    pub policy_id: String,
    /// The owning account.
    pub account_id: String,
    /// `arn:aws:iam::<account>:policy<path><name>`.
    pub arn: String,
    /// The name, as given.
    pub name: String,
    /// The IAM path.
    pub path: String,
    /// The description, if any.
    pub description: Option<String>,
    /// The version in force, e.g. `v2`.
    pub default_version: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// When the default version last changed.
    pub updated_at: i64,
}

/// One version of a customer managed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// `v1`, `v2`, …
    pub version_id: String,
    /// The document, as given.
    pub document: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// An access key without its secret, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyInfo {
    /// `AKIA…`.
    pub access_key_id: String,
    /// Whether it may be used.
    pub active: bool,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

/// A user's login profile (their console password), without the hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginProfile {
    /// Milliseconds since the epoch.
    pub created_at: i64,
    /// Whether the next sign-in must change the password.
    pub password_reset_required: bool,
}

/// A policy document that applies to a user, from wherever it comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityPolicy {
    /// A managed policy attached to the user or one of their groups.
    Attached {
        /// The policy's ARN.
        arn: String,
        /// The group it came through, if not attached to the user.
        via_group: Option<String>,
    },
    /// An inline policy of the user.
    UserInline {
        /// Its name.
        name: String,
        /// The document.
        document: String,
    },
    /// An inline policy of one of the user's groups.
    GroupInline {
        /// The group's name.
        group: String,
        /// The policy's name.
        name: String,
        /// The document.
        document: String,
    },
}

/// An ID in IAM's format: a four-letter prefix and 17 base32 characters.
fn unique_id(prefix: &str) -> String {
    const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = OsRng;
    let tail: String = (0..17)
        .map(|_| char::from(BASE32[rng.gen_range(0..BASE32.len())]))
        .collect();
    format!("{prefix}{tail}")
}

/// A fresh role ID (`AROA…`), for roles created outside [`Store::create_role`].
pub(crate) fn unique_role_id() -> String {
    unique_id("AROA")
}

fn group_from_row(row: &AnyRow) -> Result<Group, sqlx::Error> {
    Ok(Group {
        group_id: row.try_get("group_id")?,
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        path: row.try_get("path")?,
        created_at: row.try_get("created_at")?,
    })
}

fn role_from_row(row: &AnyRow) -> Result<Role, sqlx::Error> {
    Ok(Role {
        role_id: row.try_get("role_id")?,
        account_id: row.try_get("account_id")?,
        name: row.try_get("name")?,
        path: row.try_get("path")?,
        description: row.try_get("description")?,
        max_session_duration: row.try_get("max_session_duration")?,
        trust_policy: row.try_get("trust_policy")?,
        created_at: row.try_get("created_at")?,
    })
}

fn policy_from_row(row: &AnyRow) -> Result<ManagedPolicy, sqlx::Error> {
    Ok(ManagedPolicy {
        policy_id: row.try_get("policy_id")?,
        account_id: row.try_get("account_id")?,
        arn: row.try_get("arn")?,
        name: row.try_get("name")?,
        path: row.try_get("path")?,
        description: row.try_get("description")?,
        default_version: row.try_get("default_version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn version_from_row(row: &AnyRow) -> Result<PolicyVersion, sqlx::Error> {
    Ok(PolicyVersion {
        version_id: row.try_get("version_id")?,
        document: row.try_get("document")?,
        created_at: row.try_get("created_at")?,
    })
}

const GROUP_COLUMNS: &str = "group_id, account_id, name, path, created_at";
const ROLE_COLUMNS: &str =
    "role_id, account_id, name, path, description, max_session_duration, trust_policy, created_at";
const POLICY_COLUMNS: &str =
    "policy_id, account_id, arn, name, path, description, default_version, created_at, updated_at";

/// Maps rows, naming what was being read on failure.
fn rows<T>(
    rows: &[AnyRow],
    doing: &'static str,
    f: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
) -> Result<Vec<T>, StoreError> {
    rows.iter()
        .map(f)
        .collect::<Result<_, _>>()
        .map_err(query_err(doing))
}

/// `SELECT COUNT(*)` of a query with one bound ID.
async fn count(
    tx: &mut Transaction<'_, Any>,
    sql: &str,
    id: &str,
    doing: &'static str,
) -> Result<i64, StoreError> {
    let row = sqlx::query(sql)
        .bind(id)
        .fetch_one(&mut **tx)
        .await
        .map_err(query_err(doing))?;
    row.try_get::<i64, _>(0).map_err(query_err(doing))
}

/// Takes the write lock on one row for the rest of the transaction (a
/// no-op update: a row lock on PostgreSQL, the database's write lock on
/// SQLite), so that concurrent changes to the same entity run one after the
/// other and quota and dependency checks stay true until commit. False if
/// the row does not exist.
async fn lock_row(
    tx: &mut Transaction<'_, Any>,
    table: &str,
    column: &str,
    id: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(&format!(
        "UPDATE {table} SET {column} = {column} WHERE {column} = $1"
    ))
    .bind(id)
    .execute(&mut **tx)
    .await
    .map_err(query_err("locking a row"))?;
    Ok(done.rows_affected() > 0)
}

fn vanished(what: &str) -> IamError {
    IamError::NotFound(format!("The {what} cannot be found."))
}

async fn commit(tx: Transaction<'_, Any>) -> Result<(), StoreError> {
    tx.commit().await.map_err(query_err("committing"))
}

impl Store {
    async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        self.write_tx()
            .await
            .map_err(query_err("starting a transaction"))
    }

    // ----- users -----

    /// Every user of an account, by name.
    pub async fn list_users(&self, account_id: &str) -> Result<Vec<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.account_id = $1 ORDER BY u.name_key"
        );
        let found = sqlx::query(&sql)
            .bind(account_id)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing users"))?;
        rows(&found, "listing users", user_from_row)
    }

    /// Renames or moves a user.
    pub async fn update_user(
        &self,
        user: &User,
        new_name: Option<&str>,
        new_path: Option<&str>,
    ) -> Result<User, IamError> {
        let name = new_name.unwrap_or(&user.name);
        let path = new_path.unwrap_or(&user.path);
        sqlx::query("UPDATE users SET name = $1, name_key = $2, path = $3 WHERE user_id = $4")
            .bind(name)
            .bind(name.to_lowercase())
            .bind(path)
            .bind(&user.user_id)
            .execute(&self.pool)
            .await
            .map_err(|e| match query_err("updating user")(e) {
                StoreError::AlreadyExists(_) => {
                    IamError::AlreadyExists(format!("User with name {name} already exists."))
                }
                other => IamError::Store(other),
            })?;
        Ok(User {
            name: name.to_string(),
            path: path.to_string(),
            ..user.clone()
        })
    }

    /// Deletes a user that has nothing left attached: no access keys, login
    /// profile, MFA device, policies or group memberships (IAM's
    /// `DeleteConflict`). The user's console sessions and temporary
    /// credentials end with them.
    pub async fn delete_user(&self, user_id: &str) -> Result<(), IamError> {
        let mut tx = self.begin().await?;
        if !lock_row(&mut tx, "users", "user_id", user_id).await? {
            return Err(vanished("user"));
        }
        let checks: [(&str, &str); 6] = [
            (
                "SELECT COUNT(*) FROM access_keys WHERE user_id = $1",
                "Cannot delete entity, must delete access keys first.",
            ),
            (
                "SELECT COUNT(*) FROM users WHERE user_id = $1 AND password_hash IS NOT NULL",
                "Cannot delete entity, must delete login profile first.",
            ),
            (
                "SELECT COUNT(*) FROM user_policy_attachments WHERE user_id = $1",
                "Cannot delete entity, must detach all policies first.",
            ),
            (
                "SELECT COUNT(*) FROM user_inline_policies WHERE user_id = $1",
                "Cannot delete entity, must delete policies first.",
            ),
            (
                "SELECT COUNT(*) FROM group_members WHERE user_id = $1",
                "Cannot delete entity, must remove from all groups first.",
            ),
            (
                "SELECT COUNT(*) FROM mfa_devices WHERE user_id = $1",
                "Cannot delete entity, must remove MFA device first.",
            ),
        ];
        for (sql, message) in checks {
            if count(&mut tx, sql, user_id, "checking user dependents").await? > 0 {
                return Err(IamError::Conflict(message.to_string()));
            }
        }
        for sql in [
            "DELETE FROM temporary_credentials WHERE user_id = $1",
            "DELETE FROM console_sessions WHERE user_id = $1",
            "DELETE FROM signin_failures WHERE user_id = $1",
            "DELETE FROM console_preferences WHERE user_id = $1",
            "DELETE FROM users WHERE user_id = $1",
        ] {
            sqlx::query(sql)
                .bind(user_id)
                .execute(&mut *tx)
                .await
                .map_err(query_err("deleting user"))?;
        }
        commit(tx).await?;
        Ok(())
    }

    // ----- access keys -----

    /// Creates an active access key, unless the user already has the most
    /// allowed. Returns the key (with its secret, shown once) and its creation time.
    pub async fn create_access_key_checked(
        &self,
        user_id: &str,
    ) -> Result<(String, String, i64), IamError> {
        let mut tx = self.begin().await?;
        if !lock_row(&mut tx, "users", "user_id", user_id).await? {
            return Err(vanished("user"));
        }
        let n = count(
            &mut tx,
            "SELECT COUNT(*) FROM access_keys WHERE user_id = $1",
            user_id,
            "counting access keys",
        )
        .await?;
        if n >= MAX_ACCESS_KEYS {
            return Err(IamError::Limit(format!(
                "Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS}"
            )));
        }
        let (id, secret, now) = (ids::access_key_id(), ids::secret_access_key(), now_ms());
        sqlx::query(
            "INSERT INTO access_keys (access_key_id, user_id, secret, active, created_at) \
             VALUES ($1, $2, $3, 1, $4)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(&secret)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(query_err("creating access key"))?;
        commit(tx).await?;
        Ok((id, secret, now))
    }

    /// A user's access keys, oldest first, without secrets.
    pub async fn list_access_keys(&self, user_id: &str) -> Result<Vec<AccessKeyInfo>, StoreError> {
        let found = sqlx::query(
            "SELECT access_key_id, active, created_at FROM access_keys \
             WHERE user_id = $1 ORDER BY created_at, access_key_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing access keys"))?;
        rows(&found, "listing access keys", |r| {
            Ok(AccessKeyInfo {
                access_key_id: r.try_get("access_key_id")?,
                active: r.try_get::<i64, _>("active")? != 0,
                created_at: r.try_get("created_at")?,
            })
        })
    }

    /// Activates or deactivates one of a user's keys.
    pub async fn set_access_key_active(
        &self,
        user_id: &str,
        access_key_id: &str,
        active: bool,
    ) -> Result<(), IamError> {
        let done = sqlx::query(
            "UPDATE access_keys SET active = $1 WHERE user_id = $2 AND access_key_id = $3",
        )
        .bind(i64::from(active))
        .bind(user_id)
        .bind(access_key_id)
        .execute(&self.pool)
        .await
        .map_err(query_err("updating access key"))?;
        if done.rows_affected() == 0 {
            return Err(key_not_found(access_key_id));
        }
        Ok(())
    }

    /// Deletes one of a user's keys.
    pub async fn delete_access_key(
        &self,
        user_id: &str,
        access_key_id: &str,
    ) -> Result<(), IamError> {
        let done = sqlx::query("DELETE FROM access_keys WHERE user_id = $1 AND access_key_id = $2")
            .bind(user_id)
            .bind(access_key_id)
            .execute(&self.pool)
            .await
            .map_err(query_err("deleting access key"))?;
        if done.rows_affected() == 0 {
            return Err(key_not_found(access_key_id));
        }
        Ok(())
    }

    // ----- login profiles -----

    /// A user's login profile, if they have a password.
    pub async fn login_profile(&self, user_id: &str) -> Result<Option<LoginProfile>, StoreError> {
        let row = sqlx::query(
            "SELECT created_at, password_created_at, password_reset_required FROM users \
             WHERE user_id = $1 AND password_hash IS NOT NULL",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading login profile"))?;
        let Some(row) = row else { return Ok(None) };
        let read = || -> Result<LoginProfile, sqlx::Error> {
            let created: Option<i64> = row.try_get("password_created_at")?;
            Ok(LoginProfile {
                // A password set before login profiles were recorded dates
                // from the user's creation.
                created_at: match created {
                    Some(t) => t,
                    None => row.try_get("created_at")?,
                },
                password_reset_required: row.try_get::<i64, _>("password_reset_required")? != 0,
            })
        };
        read().map(Some).map_err(query_err("reading login profile"))
    }

    /// Gives a user a password; refused if they already have one.
    pub async fn create_login_profile(
        &self,
        user: &User,
        hash: &str,
        reset_required: bool,
    ) -> Result<LoginProfile, IamError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE users SET password_hash = $1, password_reset_required = $2, \
             password_created_at = $3 WHERE user_id = $4 AND password_hash IS NULL",
        )
        .bind(hash)
        .bind(i64::from(reset_required))
        .bind(now)
        .bind(&user.user_id)
        .execute(&self.pool)
        .await
        .map_err(query_err("creating login profile"))?;
        if done.rows_affected() == 0 {
            return Err(IamError::AlreadyExists(format!(
                "Login Profile for user {} already exists.",
                user.name
            )));
        }
        Ok(LoginProfile {
            created_at: now,
            password_reset_required: reset_required,
        })
    }

    /// Changes a user's password and/or whether it must be reset.
    pub async fn update_login_profile(
        &self,
        user: &User,
        hash: Option<&str>,
        reset_required: Option<bool>,
    ) -> Result<(), IamError> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = COALESCE($1, password_hash), \
             password_reset_required = COALESCE($2, password_reset_required) \
             WHERE user_id = $3 AND password_hash IS NOT NULL",
        )
        .bind(hash)
        .bind(reset_required.map(i64::from))
        .bind(&user.user_id)
        .execute(&self.pool)
        .await
        .map_err(query_err("updating login profile"))?;
        if done.rows_affected() == 0 {
            return Err(login_profile_not_found(&user.name));
        }
        Ok(())
    }

    /// Removes a user's password.
    pub async fn delete_login_profile(&self, user: &User) -> Result<(), IamError> {
        let done = sqlx::query(
            "UPDATE users SET password_hash = NULL, password_reset_required = 0, \
             password_created_at = NULL WHERE user_id = $1 AND password_hash IS NOT NULL",
        )
        .bind(&user.user_id)
        .execute(&self.pool)
        .await
        .map_err(query_err("deleting login profile"))?;
        if done.rows_affected() == 0 {
            return Err(login_profile_not_found(&user.name));
        }
        Ok(())
    }

    // ----- groups -----

    /// Creates a group.
    pub async fn create_group(
        &self,
        account_id: &str,
        name: &str,
        path: &str,
    ) -> Result<Group, IamError> {
        let group = Group {
            group_id: unique_id("AGPA"),
            account_id: account_id.to_string(),
            name: name.to_string(),
            path: path.to_string(),
            created_at: now_ms(),
        };
        sqlx::query(
            "INSERT INTO iam_groups (group_id, account_id, name, name_key, path, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&group.group_id)
        .bind(account_id)
        .bind(name)
        .bind(name.to_lowercase())
        .bind(path)
        .bind(group.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| match query_err("creating group")(e) {
            StoreError::AlreadyExists(_) => {
                IamError::AlreadyExists(format!("Group with name {name} already exists."))
            }
            other => IamError::Store(other),
        })?;
        Ok(group)
    }

    /// Finds a group by name (any case).
    pub async fn group_by_name(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<Option<Group>, StoreError> {
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM iam_groups WHERE account_id = $1 AND name_key = $2"
        );
        let row = sqlx::query(&sql)
            .bind(account_id)
            .bind(name.to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading group"))?;
        row.map(|r| group_from_row(&r))
            .transpose()
            .map_err(query_err("reading group"))
    }

    /// Every group of an account, by name.
    pub async fn list_groups(&self, account_id: &str) -> Result<Vec<Group>, StoreError> {
        let sql = format!(
            "SELECT {GROUP_COLUMNS} FROM iam_groups WHERE account_id = $1 ORDER BY name_key"
        );
        let found = sqlx::query(&sql)
            .bind(account_id)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing groups"))?;
        rows(&found, "listing groups", group_from_row)
    }

    /// Deletes a group with no members and no policies.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), IamError> {
        self.delete_unreferenced(
            ("iam_groups", "group_id", "group"),
            group_id,
            &[
                (
                    "SELECT COUNT(*) FROM group_members WHERE group_id = $1",
                    "Cannot delete entity, must remove users from group first.",
                ),
                (
                    "SELECT COUNT(*) FROM group_policy_attachments WHERE group_id = $1",
                    "Cannot delete entity, must detach all policies first.",
                ),
                (
                    "SELECT COUNT(*) FROM group_inline_policies WHERE group_id = $1",
                    "Cannot delete entity, must delete policies first.",
                ),
            ],
        )
        .await
    }

    /// Deletes one row of `table` (`(table, id column, entity name)`) in a
    /// transaction that first locks it, refusing with `DeleteConflict` and
    /// the check's message when any `checks` query counts a dependent.
    async fn delete_unreferenced(
        &self,
        (table, column, entity): (&str, &str, &'static str),
        id: &str,
        checks: &[(&str, &str)],
    ) -> Result<(), IamError> {
        let mut tx = self.begin().await?;
        if !lock_row(&mut tx, table, column, id).await? {
            return Err(vanished(entity));
        }
        for (sql, message) in checks {
            if count(&mut tx, sql, id, "checking dependents").await? > 0 {
                return Err(IamError::Conflict((*message).to_string()));
            }
        }
        sqlx::query(&format!("DELETE FROM {table} WHERE {column} = $1"))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(query_err("deleting"))?;
        commit(tx).await?;
        Ok(())
    }

    /// Adds a user to a group (again is harmless), within the quota of groups per user.
    pub async fn add_user_to_group(&self, group_id: &str, user_id: &str) -> Result<(), IamError> {
        let mut tx = self.begin().await?;
        // Group first, then user: the order every locker here uses.
        if !lock_row(&mut tx, "iam_groups", "group_id", group_id).await? {
            return Err(vanished("group"));
        }
        if !lock_row(&mut tx, "users", "user_id", user_id).await? {
            return Err(vanished("user"));
        }
        let already =
            sqlx::query("SELECT 1 FROM group_members WHERE group_id = $1 AND user_id = $2")
                .bind(group_id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(query_err("reading group members"))?;
        if already.is_some() {
            return Ok(());
        }
        let n = count(
            &mut tx,
            "SELECT COUNT(*) FROM group_members WHERE user_id = $1",
            user_id,
            "counting groups",
        )
        .await?;
        if n >= MAX_GROUPS_PER_USER {
            return Err(IamError::Limit(format!(
                "Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}"
            )));
        }
        sqlx::query("INSERT INTO group_members (group_id, user_id) VALUES ($1, $2)")
            .bind(group_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(query_err("adding group member"))?;
        commit(tx).await?;
        Ok(())
    }

    /// Removes a user from a group; false if they were not in it.
    pub async fn remove_user_from_group(
        &self,
        group_id: &str,
        user_id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2")
            .bind(group_id)
            .bind(user_id)
            .execute(&self.pool)
            .await
            .map_err(query_err("removing group member"))?;
        Ok(done.rows_affected() > 0)
    }

    /// The members of a group, by name.
    pub async fn group_members(&self, group_id: &str) -> Result<Vec<User>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u JOIN group_members m ON m.user_id = u.user_id \
             WHERE m.group_id = $1 ORDER BY u.name_key"
        );
        let found = sqlx::query(&sql)
            .bind(group_id)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing group members"))?;
        rows(&found, "listing group members", user_from_row)
    }

    /// The groups a user belongs to, by name.
    pub async fn groups_for_user(&self, user_id: &str) -> Result<Vec<Group>, StoreError> {
        let sql = "SELECT g.group_id, g.account_id, g.name, g.path, g.created_at \
                   FROM iam_groups g JOIN group_members m ON m.group_id = g.group_id \
                   WHERE m.user_id = $1 ORDER BY g.name_key";
        let found = sqlx::query(sql)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing groups for user"))?;
        rows(&found, "listing groups for user", group_from_row)
    }

    // ----- roles -----

    /// Creates a role.
    pub async fn create_role(
        &self,
        account_id: &str,
        name: &str,
        path: &str,
        trust_policy: &str,
        description: Option<&str>,
        max_session_duration: i64,
    ) -> Result<Role, IamError> {
        let role = Role {
            role_id: unique_id("AROA"),
            account_id: account_id.to_string(),
            name: name.to_string(),
            path: path.to_string(),
            description: description.map(str::to_string),
            max_session_duration,
            trust_policy: trust_policy.to_string(),
            created_at: now_ms(),
        };
        sqlx::query(
            "INSERT INTO iam_roles (role_id, account_id, name, name_key, path, description, \
             max_session_duration, trust_policy, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&role.role_id)
        .bind(account_id)
        .bind(name)
        .bind(name.to_lowercase())
        .bind(path)
        .bind(description)
        .bind(max_session_duration)
        .bind(trust_policy)
        .bind(role.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| match query_err("creating role")(e) {
            StoreError::AlreadyExists(_) => {
                IamError::AlreadyExists(format!("Role with name {name} already exists."))
            }
            other => IamError::Store(other),
        })?;
        Ok(role)
    }

    /// A role by its id (`AROA…`).
    pub async fn role_by_id(&self, role_id: &str) -> Result<Option<Role>, StoreError> {
        let sql = format!("SELECT {ROLE_COLUMNS} FROM iam_roles WHERE role_id = $1");
        let row = sqlx::query(&sql)
            .bind(role_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading role"))?;
        row.map(|r| role_from_row(&r))
            .transpose()
            .map_err(query_err("reading role"))
    }

    /// Finds a role by name (any case).
    pub async fn role_by_name(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<Option<Role>, StoreError> {
        let sql =
            format!("SELECT {ROLE_COLUMNS} FROM iam_roles WHERE account_id = $1 AND name_key = $2");
        let row = sqlx::query(&sql)
            .bind(account_id)
            .bind(name.to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading role"))?;
        row.map(|r| role_from_row(&r))
            .transpose()
            .map_err(query_err("reading role"))
    }

    /// Every role of an account, by name.
    pub async fn list_roles(&self, account_id: &str) -> Result<Vec<Role>, StoreError> {
        let sql =
            format!("SELECT {ROLE_COLUMNS} FROM iam_roles WHERE account_id = $1 ORDER BY name_key");
        let found = sqlx::query(&sql)
            .bind(account_id)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing roles"))?;
        rows(&found, "listing roles", role_from_row)
    }

    /// Replaces a role's trust policy.
    pub async fn set_trust_policy(&self, role_id: &str, document: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE iam_roles SET trust_policy = $1 WHERE role_id = $2")
            .bind(document)
            .bind(role_id)
            .execute(&self.pool)
            .await
            .map_err(query_err("updating trust policy"))?;
        Ok(())
    }

    /// Deletes a role with no policies.
    pub async fn delete_role(&self, role_id: &str) -> Result<(), IamError> {
        self.delete_unreferenced(
            ("iam_roles", "role_id", "role"),
            role_id,
            &[
                (
                    "SELECT COUNT(*) FROM role_policy_attachments WHERE role_id = $1",
                    "Cannot delete entity, must detach all policies first.",
                ),
                (
                    "SELECT COUNT(*) FROM role_inline_policies WHERE role_id = $1",
                    "Cannot delete entity, must delete policies first.",
                ),
            ],
        )
        .await
    }

    // ----- attached managed policies -----

    /// Attaches a managed policy (attaching again is harmless), within the quota.
    pub async fn attach_policy(
        &self,
        owner: Owner,
        owner_id: &str,
        policy_arn: &str,
    ) -> Result<(), IamError> {
        let (table, column) = owner.attachments();
        let mut tx = self.begin().await?;
        let (owner_table, owner_column) = owner.table();
        if !lock_row(&mut tx, owner_table, owner_column, owner_id).await? {
            return Err(vanished(owner.noun()));
        }
        // A customer managed policy must not be deleted while being attached.
        if !policy_arn.starts_with("arn:aws:iam::aws:")
            && !lock_row(&mut tx, "managed_policies", "arn", policy_arn).await?
        {
            return Err(IamError::NotFound(format!(
                "Policy {policy_arn} does not exist or is not attachable."
            )));
        }
        let already = sqlx::query(&format!(
            "SELECT 1 FROM {table} WHERE {column} = $1 AND policy_arn = $2"
        ))
        .bind(owner_id)
        .bind(policy_arn)
        .fetch_optional(&mut *tx)
        .await
        .map_err(query_err("reading attached policies"))?;
        if already.is_some() {
            return Ok(());
        }
        let n = count(
            &mut tx,
            &format!("SELECT COUNT(*) FROM {table} WHERE {column} = $1"),
            owner_id,
            "counting attached policies",
        )
        .await?;
        if n >= MAX_ATTACHED_POLICIES {
            let quota = match owner {
                Owner::User => "PoliciesPerUser",
                Owner::Group => "PoliciesPerGroup",
                Owner::Role => "PoliciesPerRole",
            };
            return Err(IamError::Limit(format!(
                "Cannot exceed quota for {quota}: {MAX_ATTACHED_POLICIES}"
            )));
        }
        sqlx::query(&format!(
            "INSERT INTO {table} ({column}, policy_arn) VALUES ($1, $2)"
        ))
        .bind(owner_id)
        .bind(policy_arn)
        .execute(&mut *tx)
        .await
        .map_err(query_err("attaching policy"))?;
        commit(tx).await?;
        Ok(())
    }

    /// Detaches a managed policy; `NotFound` if it was not attached.
    pub async fn detach_policy(
        &self,
        owner: Owner,
        owner_id: &str,
        policy_arn: &str,
    ) -> Result<(), IamError> {
        let (table, column) = owner.attachments();
        let done = sqlx::query(&format!(
            "DELETE FROM {table} WHERE {column} = $1 AND policy_arn = $2"
        ))
        .bind(owner_id)
        .bind(policy_arn)
        .execute(&self.pool)
        .await
        .map_err(query_err("detaching policy"))?;
        if done.rows_affected() == 0 {
            return Err(IamError::NotFound(format!(
                "Policy {policy_arn} was not found."
            )));
        }
        Ok(())
    }

    /// The ARNs of the managed policies attached to a user, group or role.
    pub async fn attached_policies(
        &self,
        owner: Owner,
        owner_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        let (table, column) = owner.attachments();
        let found = sqlx::query(&format!(
            "SELECT policy_arn FROM {table} WHERE {column} = $1 ORDER BY policy_arn"
        ))
        .bind(owner_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("reading attached policies"))?;
        rows(&found, "reading attached policies", |r| {
            r.try_get("policy_arn")
        })
    }

    /// How many users, groups and roles of the account each policy is
    /// attached to, by ARN.
    pub async fn attachment_counts(
        &self,
        account_id: &str,
    ) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        let sql = "SELECT a.policy_arn AS arn, COUNT(*) AS n FROM user_policy_attachments a \
                   JOIN users o ON o.user_id = a.user_id WHERE o.account_id = $1 GROUP BY a.policy_arn \
                   UNION ALL \
                   SELECT a.policy_arn AS arn, COUNT(*) AS n FROM group_policy_attachments a \
                   JOIN iam_groups o ON o.group_id = a.group_id WHERE o.account_id = $1 GROUP BY a.policy_arn \
                   UNION ALL \
                   SELECT a.policy_arn AS arn, COUNT(*) AS n FROM role_policy_attachments a \
                   JOIN iam_roles o ON o.role_id = a.role_id WHERE o.account_id = $1 GROUP BY a.policy_arn";
        let found = sqlx::query(sql)
            .bind(account_id)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("counting attachments"))?;
        let pairs = rows(&found, "counting attachments", |r| {
            Ok((r.try_get::<String, _>("arn")?, r.try_get::<i64, _>("n")?))
        })?;
        let mut counts = std::collections::HashMap::new();
        for (arn, n) in pairs {
            *counts.entry(arn).or_insert(0) += n;
        }
        Ok(counts)
    }

    // ----- inline policies -----

    /// Adds or replaces an inline policy.
    pub async fn put_inline_policy(
        &self,
        owner: Owner,
        owner_id: &str,
        name: &str,
        document: &str,
    ) -> Result<(), IamError> {
        let (table, column) = owner.inline();
        let mut tx = self.begin().await?;
        let (owner_table, owner_column) = owner.table();
        if !lock_row(&mut tx, owner_table, owner_column, owner_id).await? {
            return Err(vanished(owner.noun()));
        }
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE {column} = $1 AND name = $2"
        ))
        .bind(owner_id)
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(query_err("replacing inline policy"))?;
        sqlx::query(&format!(
            "INSERT INTO {table} ({column}, name, document) VALUES ($1, $2, $3)"
        ))
        .bind(owner_id)
        .bind(name)
        .bind(document)
        .execute(&mut *tx)
        .await
        .map_err(query_err("putting inline policy"))?;
        commit(tx).await?;
        Ok(())
    }

    /// An inline policy's document.
    pub async fn inline_policy(
        &self,
        owner: Owner,
        owner_id: &str,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        let (table, column) = owner.inline();
        let row = sqlx::query(&format!(
            "SELECT document FROM {table} WHERE {column} = $1 AND name = $2"
        ))
        .bind(owner_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading inline policy"))?;
        row.map(|r| r.try_get("document"))
            .transpose()
            .map_err(query_err("reading inline policy"))
    }

    /// The inline policies of a user, group or role: (name, document), by name.
    pub async fn inline_policies(
        &self,
        owner: Owner,
        owner_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let (table, column) = owner.inline();
        let found = sqlx::query(&format!(
            "SELECT name, document FROM {table} WHERE {column} = $1 ORDER BY name"
        ))
        .bind(owner_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing inline policies"))?;
        rows(&found, "listing inline policies", |r| {
            Ok((r.try_get("name")?, r.try_get("document")?))
        })
    }

    /// Deletes an inline policy; `NotFound` if there is none by that name.
    pub async fn delete_inline_policy(
        &self,
        owner: Owner,
        owner_id: &str,
        name: &str,
    ) -> Result<(), IamError> {
        let (table, column) = owner.inline();
        let done = sqlx::query(&format!(
            "DELETE FROM {table} WHERE {column} = $1 AND name = $2"
        ))
        .bind(owner_id)
        .bind(name)
        .execute(&self.pool)
        .await
        .map_err(query_err("deleting inline policy"))?;
        if done.rows_affected() == 0 {
            return Err(IamError::NotFound(format!(
                "The {} policy with name {name} cannot be found.",
                owner.noun()
            )));
        }
        Ok(())
    }

    // ----- customer managed policies -----

    /// Creates a customer managed policy with its first version.
    pub async fn create_policy(
        &self,
        account_id: &str,
        name: &str,
        path: &str,
        description: Option<&str>,
        document: &str,
    ) -> Result<ManagedPolicy, IamError> {
        let now = now_ms();
        let policy = ManagedPolicy {
            policy_id: unique_id("ANPA"),
            account_id: account_id.to_string(),
            arn: format!("arn:aws:iam::{account_id}:policy{path}{name}"),
            name: name.to_string(),
            path: path.to_string(),
            description: description.map(str::to_string),
            default_version: "v1".to_string(),
            created_at: now,
            updated_at: now,
        };
        let exists = || {
            IamError::AlreadyExists(format!(
                "A policy called {name} already exists. Duplicate names are not allowed."
            ))
        };
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO managed_policies (policy_id, account_id, arn, name, name_key, path, \
             description, default_version, next_version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'v1', 2, $8, $8)",
        )
        .bind(&policy.policy_id)
        .bind(account_id)
        .bind(&policy.arn)
        .bind(name)
        .bind(name.to_lowercase())
        .bind(path)
        .bind(description)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| match query_err("creating policy")(e) {
            StoreError::AlreadyExists(_) => exists(),
            other => IamError::Store(other),
        })?;
        sqlx::query(
            "INSERT INTO policy_versions (policy_id, version_id, document, created_at) \
             VALUES ($1, 'v1', $2, $3)",
        )
        .bind(&policy.policy_id)
        .bind(document)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(query_err("creating policy version"))?;
        commit(tx).await?;
        Ok(policy)
    }

    /// A customer managed policy by ARN.
    pub async fn policy_by_arn(&self, arn: &str) -> Result<Option<ManagedPolicy>, StoreError> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM managed_policies WHERE arn = $1");
        let row = sqlx::query(&sql)
            .bind(arn)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading policy"))?;
        row.map(|r| policy_from_row(&r))
            .transpose()
            .map_err(query_err("reading policy"))
    }

    /// Every customer managed policy of an account, by name.
    pub async fn list_policies(&self, account_id: &str) -> Result<Vec<ManagedPolicy>, StoreError> {
        let sql = format!(
            "SELECT {POLICY_COLUMNS} FROM managed_policies WHERE account_id = $1 ORDER BY name_key"
        );
        let found = sqlx::query(&sql)
            .bind(account_id)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("listing policies"))?;
        rows(&found, "listing policies", policy_from_row)
    }

    /// The versions of a policy, newest first.
    pub async fn policy_versions(&self, policy_id: &str) -> Result<Vec<PolicyVersion>, StoreError> {
        let found = sqlx::query(
            "SELECT version_id, document, created_at FROM policy_versions WHERE policy_id = $1 \
             ORDER BY created_at DESC, version_id DESC",
        )
        .bind(policy_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("listing policy versions"))?;
        rows(&found, "listing policy versions", version_from_row)
    }

    /// One version of a policy.
    pub async fn policy_version(
        &self,
        policy_id: &str,
        version_id: &str,
    ) -> Result<Option<PolicyVersion>, StoreError> {
        let row = sqlx::query(
            "SELECT version_id, document, created_at FROM policy_versions \
             WHERE policy_id = $1 AND version_id = $2",
        )
        .bind(policy_id)
        .bind(version_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading policy version"))?;
        row.map(|r| version_from_row(&r))
            .transpose()
            .map_err(query_err("reading policy version"))
    }

    /// Adds a version (at most [`MAX_POLICY_VERSIONS`]), making it the
    /// default when asked.
    pub async fn create_policy_version(
        &self,
        policy_id: &str,
        document: &str,
        set_as_default: bool,
    ) -> Result<PolicyVersion, IamError> {
        let mut tx = self.begin().await?;
        if !lock_row(&mut tx, "managed_policies", "policy_id", policy_id).await? {
            return Err(vanished("policy"));
        }
        let n = count(
            &mut tx,
            "SELECT COUNT(*) FROM policy_versions WHERE policy_id = $1",
            policy_id,
            "counting policy versions",
        )
        .await?;
        if n >= MAX_POLICY_VERSIONS {
            return Err(IamError::Limit(format!(
                "A managed policy can have up to {MAX_POLICY_VERSIONS} versions. Before you \
                 create a new version, you must delete an existing version."
            )));
        }
        let row = sqlx::query("SELECT next_version FROM managed_policies WHERE policy_id = $1")
            .bind(policy_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(query_err("reading policy"))?;
        let next: i64 = row
            .try_get("next_version")
            .map_err(query_err("reading policy"))?;
        let version = PolicyVersion {
            version_id: format!("v{next}"),
            document: document.to_string(),
            created_at: now_ms(),
        };
        sqlx::query(
            "INSERT INTO policy_versions (policy_id, version_id, document, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(policy_id)
        .bind(&version.version_id)
        .bind(document)
        .bind(version.created_at)
        .execute(&mut *tx)
        .await
        .map_err(query_err("creating policy version"))?;
        let update = if set_as_default {
            sqlx::query(
                "UPDATE managed_policies SET next_version = next_version + 1, \
                 default_version = $1, updated_at = $2 WHERE policy_id = $3",
            )
            .bind(&version.version_id)
            .bind(version.created_at)
            .bind(policy_id)
        } else {
            sqlx::query(
                "UPDATE managed_policies SET next_version = next_version + 1 WHERE policy_id = $1",
            )
            .bind(policy_id)
        };
        update
            .execute(&mut *tx)
            .await
            .map_err(query_err("updating policy"))?;
        commit(tx).await?;
        Ok(version)
    }

    /// Deletes a version that is not the default.
    pub async fn delete_policy_version(
        &self,
        policy: &ManagedPolicy,
        version_id: &str,
    ) -> Result<(), IamError> {
        if policy.default_version == version_id {
            return Err(IamError::Conflict(
                "Cannot delete the default version of a policy.".to_string(),
            ));
        }
        let done =
            sqlx::query("DELETE FROM policy_versions WHERE policy_id = $1 AND version_id = $2")
                .bind(&policy.policy_id)
                .bind(version_id)
                .execute(&self.pool)
                .await
                .map_err(query_err("deleting policy version"))?;
        if done.rows_affected() == 0 {
            return Err(IamError::NotFound(format!(
                "Policy {} version {version_id} does not exist.",
                policy.arn
            )));
        }
        Ok(())
    }

    /// Deletes a customer managed policy that is attached nowhere and has
    /// only its default version left.
    pub async fn delete_policy(&self, policy: &ManagedPolicy) -> Result<(), IamError> {
        let mut tx = self.begin().await?;
        if !lock_row(&mut tx, "managed_policies", "policy_id", &policy.policy_id).await? {
            return Err(IamError::NotFound(format!(
                "Policy {} was not found.",
                policy.arn
            )));
        }
        let mut attached = 0;
        for table in [
            "user_policy_attachments",
            "group_policy_attachments",
            "role_policy_attachments",
        ] {
            attached += count(
                &mut tx,
                &format!("SELECT COUNT(*) FROM {table} WHERE policy_arn = $1"),
                &policy.arn,
                "counting attachments",
            )
            .await?;
        }
        if attached > 0 {
            return Err(IamError::Conflict(
                "Cannot delete a policy attached to entities.".to_string(),
            ));
        }
        let versions = count(
            &mut tx,
            "SELECT COUNT(*) FROM policy_versions WHERE policy_id = $1",
            &policy.policy_id,
            "counting policy versions",
        )
        .await?;
        if versions > 1 {
            return Err(IamError::Conflict(
                "This policy has more than one version. Before you delete a policy, you must \
                 delete the policy's non-default versions."
                    .to_string(),
            ));
        }
        for sql in [
            "DELETE FROM policy_versions WHERE policy_id = $1",
            "DELETE FROM managed_policies WHERE policy_id = $1",
        ] {
            sqlx::query(sql)
                .bind(&policy.policy_id)
                .execute(&mut *tx)
                .await
                .map_err(query_err("deleting policy"))?;
        }
        commit(tx).await?;
        Ok(())
    }

    /// The default version's document of a customer managed policy.
    pub async fn policy_document(&self, arn: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT v.document FROM managed_policies p JOIN policy_versions v \
             ON v.policy_id = p.policy_id AND v.version_id = p.default_version WHERE p.arn = $1",
        )
        .bind(arn)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("reading policy document"))?;
        row.map(|r| r.try_get("document"))
            .transpose()
            .map_err(query_err("reading policy document"))
    }

    /// Every policy that applies to a user: attached to them or their
    /// groups, and the inline policies of both.
    pub async fn identity_policies(
        &self,
        user_id: &str,
    ) -> Result<Vec<IdentityPolicy>, StoreError> {
        let mut out: Vec<IdentityPolicy> = self
            .attached_policies(Owner::User, user_id)
            .await?
            .into_iter()
            .map(|arn| IdentityPolicy::Attached {
                arn,
                via_group: None,
            })
            .collect();
        out.extend(
            self.inline_policies(Owner::User, user_id)
                .await?
                .into_iter()
                .map(|(name, document)| IdentityPolicy::UserInline { name, document }),
        );
        for group in self.groups_for_user(user_id).await? {
            out.extend(
                self.attached_policies(Owner::Group, &group.group_id)
                    .await?
                    .into_iter()
                    .map(|arn| IdentityPolicy::Attached {
                        arn,
                        via_group: Some(group.name.clone()),
                    }),
            );
            out.extend(
                self.inline_policies(Owner::Group, &group.group_id)
                    .await?
                    .into_iter()
                    .map(|(name, document)| IdentityPolicy::GroupInline {
                        group: group.name.clone(),
                        name,
                        document,
                    }),
            );
        }
        Ok(out)
    }

    // ----- account aliases -----

    /// The account's alias, if it has one.
    pub async fn account_alias(&self, account_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT alias FROM accounts WHERE account_id = $1")
            .bind(account_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("reading account alias"))?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>("alias"))
            .transpose()
            .map_err(query_err("reading account alias"))?
            .flatten())
    }

    /// Sets the account's alias (replacing any); refused if another account has it.
    pub async fn set_account_alias(&self, account_id: &str, alias: &str) -> Result<(), IamError> {
        sqlx::query("UPDATE accounts SET alias = $1 WHERE account_id = $2")
            .bind(alias)
            .bind(account_id)
            .execute(&self.pool)
            .await
            .map_err(|e| match query_err("setting account alias")(e) {
                StoreError::AlreadyExists(_) => {
                    IamError::AlreadyExists(format!("The account alias {alias} already exists."))
                }
                other => IamError::Store(other),
            })?;
        Ok(())
    }

    /// Removes the account's alias if it is `alias`.
    pub async fn delete_account_alias(
        &self,
        account_id: &str,
        alias: &str,
    ) -> Result<(), IamError> {
        let done =
            sqlx::query("UPDATE accounts SET alias = NULL WHERE account_id = $1 AND alias = $2")
                .bind(account_id)
                .bind(alias)
                .execute(&self.pool)
                .await
                .map_err(query_err("deleting account alias"))?;
        if done.rows_affected() == 0 {
            return Err(IamError::NotFound(format!(
                "The account alias {alias} cannot be found."
            )));
        }
        Ok(())
    }

    /// Row counts of every identity table, to show that refused requests
    /// change nothing.
    pub async fn iam_row_counts(&self) -> Result<Vec<(&'static str, i64)>, StoreError> {
        let mut out = Vec::new();
        for table in IAM_TABLES {
            let row = sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&self.pool)
                .await
                .map_err(query_err("counting rows"))?;
            out.push((
                table,
                row.try_get::<i64, _>(0)
                    .map_err(query_err("counting rows"))?,
            ));
        }
        Ok(out)
    }
}

/// The tables that hold identity and access state.
const IAM_TABLES: [&str; 14] = [
    "accounts",
    "users",
    "access_keys",
    "user_policy_attachments",
    "iam_groups",
    "group_members",
    "iam_roles",
    "group_policy_attachments",
    "role_policy_attachments",
    "user_inline_policies",
    "group_inline_policies",
    "role_inline_policies",
    "managed_policies",
    "policy_versions",
];

fn key_not_found(access_key_id: &str) -> IamError {
    IamError::NotFound(format!(
        "The Access Key with id {access_key_id} cannot be found."
    ))
}

fn login_profile_not_found(user: &str) -> IamError {
    IamError::NotFound(format!("Login Profile for User {user} cannot be found."))
}
