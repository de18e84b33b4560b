//! The store on both databases: migrations, bootstrap, users, keys.

mod common;

use seashell_server::bootstrap::{ensure_first_account, ADMIN_USER, PASSWORD_FILE};
use seashell_server::builtin::ADMINISTRATOR_ACCESS;
use seashell_server::store::{Store, StoreError};

#[tokio::test]
async fn identity_state_on_both_databases() {
    for db in common::databases().await {
        let backend = db.backend;
        let store = Store::open(&db.url)
            .await
            .unwrap_or_else(|e| panic!("{backend}: {e}"));

        // First start creates the account and its administrator once.
        let first = ensure_first_account(&store, db.data_dir.path())
            .await
            .expect("bootstrap");
        assert_eq!(first.account_id.len(), 12, "{backend}");
        assert_eq!(first.admin.name, ADMIN_USER);
        assert!(first.admin.password_reset_required);
        let password = first.new_password.clone().expect("new password");
        let file = db.data_dir.path().join(PASSWORD_FILE);
        assert_eq!(
            std::fs::read_to_string(&file)
                .expect("password file")
                .trim(),
            password
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{backend}: the password file is private");
        assert_eq!(
            store
                .user_policy_arns(&first.admin.user_id)
                .await
                .expect("arns"),
            vec![ADMINISTRATOR_ACCESS.to_string()]
        );
        let again = ensure_first_account(&store, db.data_dir.path())
            .await
            .expect("bootstrap again");
        assert_eq!(again.account_id, first.account_id, "{backend}");
        assert!(
            again.new_password.is_none(),
            "{backend}: no second password"
        );

        // User names are unique regardless of case.
        let alice = store
            .create_user(&first.account_id, "Alice", "/")
            .await
            .expect("create");
        assert_eq!(
            alice.arn(),
            format!("arn:aws:iam::{}:user/Alice", first.account_id)
        );
        match store.create_user(&first.account_id, "alice", "/").await {
            Err(StoreError::AlreadyExists(what)) => {
                assert!(what.contains("alice"), "{backend}: {what}")
            }
            other => panic!("{backend}: expected AlreadyExists, got {other:?}"),
        }
        let found = store
            .user_by_name(&first.account_id, "ALICE")
            .await
            .expect("lookup");
        assert_eq!(
            found.as_ref().map(|u| &u.user_id),
            Some(&alice.user_id),
            "{backend}"
        );

        // Access keys resolve to their owner.
        let (key_id, secret) = store.create_access_key(&alice.user_id).await.expect("key");
        let key = store
            .access_key(&key_id)
            .await
            .expect("lookup")
            .expect("present");
        assert_eq!(key.secret, secret);
        assert!(key.active);
        assert_eq!(key.user, alice);
        assert!(store
            .access_key("AKIANOTAKEY000000000")
            .await
            .expect("lookup")
            .is_none());

        // Attaching twice is harmless.
        store
            .attach_user_policy(&alice.user_id, ADMINISTRATOR_ACCESS)
            .await
            .expect("attach");
        store
            .attach_user_policy(&alice.user_id, ADMINISTRATOR_ACCESS)
            .await
            .expect("attach again");
        assert_eq!(
            store
                .user_policy_arns(&alice.user_id)
                .await
                .expect("arns")
                .len(),
            1
        );

        // A restart keeps everything; migrations run again harmlessly.
        store.close().await;
        let reopened = Store::open(&db.url).await.expect("reopen");
        assert_eq!(
            reopened.first_account().await.expect("accounts"),
            Some(first.account_id.clone())
        );
        assert!(
            reopened
                .access_key(&key_id)
                .await
                .expect("lookup")
                .is_some(),
            "{backend}"
        );
        reopened.ping().await.expect("ping");
        reopened.close().await;
        db.drop_db().await;
    }
}
