//! The client commands against a Seashell serving HTTPS with a certificate
//! the system does not trust: refused with a clear error until the CA is
//! given (`--ca-bundle`, `AWS_CA_BUNDLE` or the profile's `ca_bundle`, as
//! in the AWS CLI); then the API, the `wss://` data channel and the file
//! URLs all work over TLS.

mod common;

use std::process::{Command, Output, Stdio};

use common::hosted::Hosted;

fn client(hosted: &Hosted, home: &std::path::Path, key: &(String, String)) -> Command {
    let mut cmd = common::seashell();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_CONFIG_FILE", home.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", &key.0)
        .env("AWS_SECRET_ACCESS_KEY", &key.1)
        .env("AWS_REGION", "us-east-1")
        .env(
            "AWS_ENDPOINT_URL_CLOUDSHELL",
            format!("{}/cloudshell", hosted.base()),
        )
        .stdin(Stdio::null());
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_client_speaks_tls_with_the_users_ca_bundle() {
    let hosted = Hosted::start_tls("client-tls");
    assert!(hosted.base().starts_with("https://"));
    let key = hosted.bootstrap();
    let cert = hosted.tls_cert.clone().expect("certificate");
    let home = tempfile::tempdir().expect("home");

    // Not trusted: a clear error naming the certificate, exit 255.
    let out = client(&hosted, home.path(), &key)
        .args(["cloudshell", "describe-environments"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(stderr.contains("certificate"), "{}", text(&out));

    // A bundle that is not one: a configuration error (253) naming it.
    let junk = home.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").expect("write");
    let out = client(&hosted, home.path(), &key)
        .args(["cloudshell", "describe-environments", "--ca-bundle"])
        .arg(&junk)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(253), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("junk.pem"),
        "{}",
        text(&out)
    );

    // --ca-bundle: the shell over wss:// runs the command.
    let out = client(&hosted, home.path(), &key)
        .arg("--ca-bundle")
        .arg(&cert)
        .args(["connect", "--command", "echo tls-$((6*7)) $AWS_REGION"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "tls-42 us-east-1\n");

    // AWS_CA_BUNDLE: a file up and down through the pre-signed https URLs.
    let local = home.path().join("up.txt");
    std::fs::write(&local, b"over tls\n").expect("write");
    let out = client(&hosted, home.path(), &key)
        .env("AWS_CA_BUNDLE", &cert)
        .arg("cp")
        .arg(&local)
        .arg(":up.txt")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let back = home.path().join("back.txt");
    let out = client(&hosted, home.path(), &key)
        .env("AWS_CA_BUNDLE", &cert)
        .arg("cp")
        .arg(":/home/cloudshell-user/up.txt")
        .arg(&back)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(std::fs::read(&back).expect("read"), b"over tls\n");

    // The profile's ca_bundle, as the AWS CLI reads it.
    std::fs::write(
        home.path().join("config"),
        format!("[default]\nca_bundle = {}\n", cert.display()),
    )
    .expect("config");
    let out = client(&hosted, home.path(), &key)
        .args([
            "cloudshell",
            "describe-environments",
            "--query",
            "length(Environments)",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
}
