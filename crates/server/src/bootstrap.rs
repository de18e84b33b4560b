//! The first account and its administrator.
//!
//! On first start the server creates an account, an administrator `admin`
//! with `AdministratorAccess`, and a one-time password that must be changed
//! at first sign-in; the password is printed once and kept in
//! `<data-dir>/initial-admin-password` (mode 0600) until then.
//! `seashell admin bootstrap` does the same without a server and adds an
//! access key, for automation.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::builtin::ADMINISTRATOR_ACCESS;
use crate::store::{Store, StoreError, User};
use crate::{ids, password};

/// The administrator's user name.
pub const ADMIN_USER: &str = "admin";
/// Where the one-time password is kept, inside the data directory.
pub const PASSWORD_FILE: &str = "initial-admin-password";

/// Bootstrapping failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] password::HashError),
    /// The password file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The account exists but its administrator was removed.
    #[error("account {0} has no user named admin")]
    NoAdmin(String),
}

/// The outcome of [`ensure_first_account`].
#[derive(Debug)]
pub struct FirstAccount {
    /// The account.
    pub account_id: String,
    /// Its administrator.
    pub admin: User,
    /// The one-time password, when this call created the administrator.
    pub new_password: Option<String>,
    /// The file holding the one-time password while it is unchanged.
    pub password_file: Option<PathBuf>,
}

/// Creates the first account and administrator if there is none yet.
pub async fn ensure_first_account(
    store: &Store,
    data_dir: &Path,
) -> Result<FirstAccount, BootstrapError> {
    let file = data_dir.join(PASSWORD_FILE);
    if let Some(account_id) = store.first_account().await? {
        let admin = store
            .user_by_name(&account_id, ADMIN_USER)
            .await?
            .ok_or_else(|| BootstrapError::NoAdmin(account_id.clone()))?;
        return Ok(FirstAccount {
            account_id,
            admin,
            new_password: None,
            password_file: file.is_file().then_some(file),
        });
    }
    let account_id = store.create_account().await?;
    let mut admin = store.create_user(&account_id, ADMIN_USER, "/").await?;
    store
        .attach_user_policy(&admin.user_id, ADMINISTRATOR_ACCESS)
        .await?;
    let one_time = ids::one_time_password();
    store
        .set_password(&admin.user_id, &password::hash(&one_time)?, true)
        .await?;
    admin.password_reset_required = true;
    write_private(&file, &one_time)?;
    Ok(FirstAccount {
        account_id,
        admin,
        new_password: Some(one_time),
        password_file: Some(file),
    })
}

/// Writes `contents` to a new file readable by its owner only.
fn write_private(path: &Path, contents: &str) -> Result<(), BootstrapError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| BootstrapError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    // `mode` applies only when the file is created; a leftover file keeps
    // its old mode unless it is set again.
    use std::os::unix::fs::PermissionsExt;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(err)?;
    f.write_all(contents.as_bytes()).map_err(err)?;
    f.write_all(b"\n").map_err(err)?;
    f.sync_all().map_err(err)
}
