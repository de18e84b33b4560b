//! Test databases: every server test runs against SQLite and PostgreSQL.
//!
//! PostgreSQL comes from `SEASHELL_TEST_POSTGRES_URL` (`scripts/test.sh` sets
//! it with `scripts/postgres.sh`); each test gets a database of its own,
//! dropped afterwards.

#![allow(dead_code)] // Each test binary uses part of this module.

use sqlx::{Connection, Executor};

/// A database for one test.
pub struct TestDb {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// Its URL.
    pub url: String,
    /// The data directory to use with it.
    pub data_dir: tempfile::TempDir,
    admin_url: Option<(String, String)>,
}

impl TestDb {
    /// Drops the PostgreSQL database (SQLite files go with the temp dir).
    pub async fn drop_db(self) {
        if let Some((admin, name)) = &self.admin_url {
            if let Ok(mut conn) = sqlx::AnyConnection::connect(admin).await {
                let _ = conn
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await;
            }
        }
    }
}

/// The PostgreSQL URL for tests, or a clear failure.
pub fn postgres_url() -> String {
    std::env::var("SEASHELL_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "SEASHELL_TEST_POSTGRES_URL is not set: run scripts/test.sh, or \
             export SEASHELL_TEST_POSTGRES_URL=\"$(scripts/postgres.sh)\""
        )
    })
}

/// A fresh SQLite and a fresh PostgreSQL database.
pub async fn databases() -> Vec<TestDb> {
    sqlx::any::install_default_drivers();
    let sqlite_dir = tempfile::tempdir().expect("tempdir");
    let sqlite_url = format!(
        "sqlite://{}?mode=rwc",
        sqlite_dir.path().join("seashell.db").display()
    );
    let base = postgres_url();
    let name = format!("seashell_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::AnyConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {base}: {e}"));
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create test database");
    let (prefix, _) = base.rsplit_once('/').expect("URL has a database part");
    vec![
        TestDb {
            backend: "sqlite",
            url: sqlite_url,
            data_dir: sqlite_dir,
            admin_url: None,
        },
        TestDb {
            backend: "postgres",
            url: format!("{prefix}/{name}"),
            data_dir: tempfile::tempdir().expect("tempdir"),
            admin_url: Some((base.clone(), name)),
        },
    ]
}
