//! The credentials endpoint, fed through the control channel, as the AWS
//! tools in a shell see it.
#![allow(clippy::unwrap_used)]

mod common;

use common::{http, AgentProcess, Server, TOKEN};
use seashell_protocol::agent_channel::{AgentMessage, Credentials, ServerMessage};
use seashell_protocol::Secret;

const PATH: &str = "/latest/meta-data/container/security-credentials";
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN";

fn pushed() -> Credentials {
    Credentials {
        access_key_id: "ASIAEXAMPLE123456789".into(),
        secret_access_key: Secret::new(SECRET_KEY),
        token: Secret::new(SESSION_TOKEN),
        expiration: "2026-11-24T18:00:00Z".into(),
    }
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_follow_put_and_withdraw_and_need_the_token() {
    let agent = AgentProcess::start();
    let addr = agent.credentials_addr;
    let mut server = Server::connect(&agent).await;
    let get = |headers: &[(&str, &str)]| {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        tokio::task::block_in_place(move || {
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            http(addr, "GET", PATH, &h)
        })
    };

    let (status, _) = get(&[]);
    assert_eq!(status, 401, "no token");
    let (status, _) = get(&[("Authorization", "wrong-token")]);
    assert_eq!(status, 403, "wrong token");
    let (status, _) = get(&[("Authorization", &TOKEN[..TOKEN.len() - 1])]);
    assert_eq!(status, 403, "a prefix of the token");

    let (status, body) = get(&[("Authorization", TOKEN)]);
    assert_eq!(status, 404, "nothing pushed yet: {body}");
    assert!(json(&body)["Code"].is_string());

    let reply = server
        .request(|request_id| ServerMessage::PutCredentials {
            request_id,
            credentials: pushed(),
        })
        .await;
    assert!(matches!(reply, AgentMessage::Ok { .. }), "{reply:?}");
    let (status, body) = get(&[("Authorization", TOKEN)]);
    assert_eq!(status, 200, "{body}");
    let doc = json(&body);
    assert_eq!(doc["Type"], "");
    assert_eq!(doc["AccessKeyId"], "ASIAEXAMPLE123456789");
    assert_eq!(doc["SecretAccessKey"], SECRET_KEY);
    assert_eq!(doc["Token"], SESSION_TOKEN);
    assert_eq!(doc["Expiration"], "2026-11-24T18:00:00Z");
    assert_eq!(doc["Code"], "Success");
    let updated = doc["LastUpdated"].as_str().unwrap();
    assert!(updated.len() == 20 && updated.ends_with('Z'), "{updated}");

    let status = server
        .request(|request_id| ServerMessage::Status { request_id })
        .await;
    let AgentMessage::Status { status, .. } = status else {
        panic!("{status:?}");
    };
    assert_eq!(
        status.credentials_expiration.as_deref(),
        Some("2026-11-24T18:00:00Z")
    );

    // IMDSv2: a session token from PUT is accepted in place of the
    // environment's token.
    let (status, _) = tokio::task::block_in_place(|| http(addr, "PUT", "/latest/api/token", &[]));
    assert_eq!(status, 400, "the lifetime header is required");
    let (status, session_token) = tokio::task::block_in_place(|| {
        http(
            addr,
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
        )
    });
    assert_eq!(status, 200);
    assert!(session_token.len() >= 32);
    let (status, body) = get(&[("X-aws-ec2-metadata-token", &session_token)]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["AccessKeyId"], "ASIAEXAMPLE123456789");
    let (status, _) = get(&[("X-aws-ec2-metadata-token", "not-a-token")]);
    assert_eq!(status, 403);

    let reply = server
        .request(|request_id| ServerMessage::WithdrawCredentials { request_id })
        .await;
    assert!(matches!(reply, AgentMessage::Ok { .. }), "{reply:?}");
    let (status, body) = get(&[("Authorization", TOKEN)]);
    assert_eq!(status, 404, "withdrawn: {body}");
    assert!(!body.contains(SECRET_KEY));

    // Secrets never reach the log.
    let log = agent.log();
    assert!(
        log.contains("credentials pushed"),
        "the log is being written"
    );
    for secret in [SECRET_KEY, SESSION_TOKEN, TOKEN, session_token.as_str()] {
        assert!(!log.contains(secret), "the log leaks a secret");
    }
}

#[test]
fn forwarded_token_requests_are_refused() {
    let agent = AgentProcess::start();
    let addr = agent.credentials_addr;
    let ttl = ("X-aws-ec2-metadata-token-ttl-seconds", "60");
    // As on EC2 (IMDSv2): a proxy in the environment relaying the token
    // dance adds X-Forwarded-For; the PUT is refused however it is
    // spelled, and whatever the value.
    for forwarded in [
        ("X-Forwarded-For", "203.0.113.7"),
        ("x-forwarded-for", "127.0.0.1"),
        ("X-FORWARDED-FOR", ""),
    ] {
        let (status, body) = http(addr, "PUT", "/latest/api/token", &[ttl, forwarded]);
        assert_eq!(status, 403, "{forwarded:?}: {body}");
        assert!(body.contains("forwarded requests are refused"), "{body}");
    }
    // The same request without it gets a token.
    let (status, token) = http(addr, "PUT", "/latest/api/token", &[ttl]);
    assert_eq!(status, 200, "{token}");
    assert!(token.len() >= 32);
    assert!(agent.log().contains("forwarded token request refused"));
}
