//! `seashell admin usage` shows administrators the metered CloudShell usage
//! per account, region and month, against the configured quota.

mod common;

#[tokio::test]
async fn administrators_see_usage_per_account_region_and_month() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("seashell.db").display()
    );
    let store = seashell_server::store::Store::open(&url)
        .await
        .expect("store");
    store
        .add_usage("111111111111", "us-east-1", "2026-11", 5400)
        .await
        .expect("usage");
    store
        .add_usage("111111111111", "us-east-1", "2026-11", 1800)
        .await
        .expect("usage");
    store
        .add_usage("111111111111", "eu-west-1", "2026-12", 60)
        .await
        .expect("usage");
    store
        .add_usage("222222222222", "us-east-1", "2026-12", 36_000)
        .await
        .expect("usage");
    store.close().await;
    let config = dir.path().join("seashell.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[cloudshell]\nmonthly_hours = 7\n",
            data_dir.display().to_string()
        ),
    )
    .expect("config");

    let out = common::seashell()
        .args(["admin", "usage", "--output", "json", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let rows = v["Usage"].as_array().expect("rows");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["Month"], "2026-12", "newest month first");
    let nov = rows
        .iter()
        .find(|r| r["Month"] == "2026-11")
        .expect("november");
    assert_eq!(nov["Seconds"], 7200, "metered time adds up");
    assert_eq!(nov["AccountId"], "111111111111");
    assert!(rows.iter().all(|r| r["QuotaHours"] == 7));

    let out = common::seashell()
        .args(["admin", "usage", "--account", "222222222222", "--data-dir"])
        .arg(&data_dir)
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("222222222222\tus-east-1\t2026-12\t10.00 h\tof 1000 h"),
        "{text}"
    );
}
