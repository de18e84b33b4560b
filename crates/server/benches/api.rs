//! Load benchmark of the API path: SigV4-verified `GetCallerIdentity` against
//! an in-process server, on SQLite and PostgreSQL.
//!
//! `cargo bench -p seashell-server --bench api` runs, for each database:
//! - an open-loop run at a fixed rate (default 1,000 requests/s for 10 s;
//!   `SEASHELL_BENCH_RATE`, `SEASHELL_BENCH_SECONDS`), latency measured from
//!   each request's scheduled start so a stall is not hidden;
//! - a closed-loop run with 16 clients for the maximum throughput;
//! - the cost of the steps of one request measured alone: signature
//!   verification, policy evaluation, audit write.
//!
//! PostgreSQL comes from `SEASHELL_TEST_POSTGRES_URL` (`scripts/postgres.sh`).
//! Under `cargo test` (no `--bench` argument) it runs a short smoke version.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use seashell_audit::{Record, Sink, UserIdentity};
use seashell_server::{Config, Overrides};
use sqlx::{Connection, Executor};

const BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

struct Settings {
    rate: u64,
    seconds: u64,
    closed_loop_requests: usize,
    step_iterations: u32,
}

fn settings() -> Settings {
    let bench = std::env::args().any(|a| a == "--bench");
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    if bench {
        Settings {
            rate: env("SEASHELL_BENCH_RATE", 1000),
            seconds: env("SEASHELL_BENCH_SECONDS", 10),
            closed_loop_requests: 20_000,
            step_iterations: 2_000,
        }
    } else {
        Settings {
            rate: 100,
            seconds: 1,
            closed_loop_requests: 200,
            step_iterations: 20,
        }
    }
}

/// Headers of a signed request (signed now; valid for 15 minutes).
fn signed_headers(url: &str, key: (&str, &str)) -> Vec<(String, String)> {
    let identity = Credentials::new(key.0, key.1, None, None, "bench").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sts")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .expect("signing params")
        .into();
    let headers = [("content-type", CONTENT_TYPE)];
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(BODY.as_bytes()),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let mut out = vec![("content-type".to_string(), CONTENT_TYPE.to_string())];
    for (name, value) in instructions.headers() {
        out.push((name.to_string(), value.to_string()));
    }
    out
}

async fn send(client: &reqwest::Client, url: &str, headers: &[(String, String)]) -> bool {
    let mut req = client.post(url).body(BODY);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    match req.send().await {
        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
        Err(_) => false,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run_backend(name: &str, database_url: String, s: &Settings) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config::load(
        None,
        Overrides {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            data_dir: Some(dir.path().to_path_buf()),
            database_url: Some(database_url),
            ..Overrides::default()
        },
    )
    .expect("config");
    let running = seashell_server::start(config).await.expect("start");
    let state = running.state().clone();
    let admin = running.first_account.admin.clone();
    let (key_id, secret) = state
        .store
        .create_access_key(&admin.user_id)
        .await
        .expect("key");
    let url = format!("http://{}/sts/", running.local_addr);
    let headers = Arc::new(signed_headers(&url, (&key_id, &secret)));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    assert!(
        send(&client, &url, &headers).await,
        "a signed request succeeds"
    );

    // Open loop at a fixed rate.
    let total = s.rate * s.seconds;
    let interval = Duration::from_secs_f64(1.0 / s.rate as f64);
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = start + interval.mul_f64(i as f64);
        let (client, url, headers) = (client.clone(), url.clone(), headers.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(scheduled.into()).await;
            let ok = send(&client, &url, &headers).await;
            (ok, scheduled.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut failures = 0;
    for t in tasks {
        let (ok, latency) = t.await.expect("task");
        if !ok {
            failures += 1;
        }
        latencies.push(latency);
    }
    let wall = start.elapsed();
    latencies.sort();
    println!(
        "{name:8} open loop {:>5} req/s for {}s: achieved {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, failures {failures}",
        s.rate,
        s.seconds,
        total as f64 / wall.as_secs_f64(),
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 1.0)),
    );

    // Closed loop: 16 clients as fast as they can.
    let clients = 16;
    let per_client = s.closed_loop_requests / clients;
    let begun = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, headers) = (client.clone(), url.clone(), headers.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let t = Instant::now();
                assert!(send(&client, &url, &headers).await);
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("task"));
    }
    let wall = begun.elapsed();
    lat.sort();
    println!(
        "{name:8} closed loop, {clients} clients: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
        lat.len() as f64 / wall.as_secs_f64(),
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.99)),
    );

    // The steps alone.
    let iterations = s.step_iterations;
    let t = Instant::now();
    for _ in 0..iterations {
        std::hint::black_box(state.store.access_key(&key_id).await.expect("lookup"));
    }
    let lookup = t.elapsed() / iterations;
    let t = Instant::now();
    for _ in 0..iterations {
        let record = Record::api_call(
            "sts.amazonaws.com",
            "GetCallerIdentity",
            "us-east-1",
            UserIdentity::iam_user(&admin.account_id, &admin.name, &admin.user_id),
        )
        .read_only(true)
        .build();
        state.audit.write(&record).await.expect("audit");
    }
    let audit = t.elapsed() / iterations;
    // Authorization as an IAM call pays it: the caller's policies read from
    // the database (parsed documents come from the cache) and evaluated.
    let caller = seashell_server::caller::Caller {
        account_id: admin.account_id.clone(),
        arn: admin.arn(),
        principal_id: admin.user_id.clone(),
        user_name: admin.name.clone(),
        user_id: admin.user_id.clone(),
        access_key_id: key_id.clone(),
        session: None,
        role: None,
    };
    let info = seashell_server::authz::RequestInfo::new(
        std::net::IpAddr::from([127, 0, 0, 1]),
        false,
        "us-east-1",
    );
    let t = Instant::now();
    for _ in 0..iterations {
        seashell_server::authz::authorize(&state.store, &caller, &info, "iam:ListUsers", "*", &[])
            .await
            .expect("the administrator may list users");
    }
    let authorize = t.elapsed() / iterations;
    println!(
        "{name:8} steps: access key lookup {:.1} µs, authorize (policies from the database + evaluation) {:.1} µs, audit record (journal fsync) {:.1} µs",
        lookup.as_secs_f64() * 1e6,
        authorize.as_secs_f64() * 1e6,
        audit.as_secs_f64() * 1e6,
    );
    running.run_until(async {}).await.expect("stop");
}

fn verify_cost(iterations: u32) {
    use seashell_sigv4::{Payload, Request, ServiceConfig, SigningKey};
    let url = "http://127.0.0.1:8080/sts/";
    let headers = signed_headers(
        url,
        (
            "AKIAEXAMPLEEXAMPLE00",
            "secret-secret-secret-secret-secret-00000",
        ),
    );
    let mut list: Vec<(&str, &[u8])> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    list.push(("host", b"127.0.0.1:8080"));
    let req = Request {
        method: "POST",
        path: "/sts/",
        query: "",
        headers: &list,
        payload: Payload::Bytes(BODY.as_bytes()),
    };
    let config = ServiceConfig::new("sts", ["us-east-1"]);
    let t = Instant::now();
    for _ in 0..iterations {
        let parsed = seashell_sigv4::parse(&req).expect("parse");
        let key = SigningKey::derive("secret-secret-secret-secret-secret-00000", &parsed.scope);
        std::hint::black_box(
            parsed
                .verify(&req, &config, SystemTime::now(), &key)
                .expect("verify"),
        );
    }
    let per = t.elapsed() / iterations;
    println!(
        "signature: parse + derive key + verify {:.1} µs",
        per.as_secs_f64() * 1e6
    );
}

fn policy_cost(iterations: u32) {
    use seashell_policy::{evaluate, parse, Context, PolicyKind, PolicySet, Request};
    let doc = parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        PolicyKind::Managed,
    )
    .expect("policy");
    let set = PolicySet::new().identity("AdministratorAccess", &doc);
    let mut ctx = Context::new();
    ctx.insert("aws:username", "admin");
    let t = Instant::now();
    for _ in 0..iterations * 100 {
        let req = Request::new(
            "arn:aws:iam::123456789012:user/admin",
            "sts:GetCallerIdentity",
            "*",
            &ctx,
        );
        std::hint::black_box(evaluate(&req, &set));
    }
    let per = t.elapsed() / (iterations * 100);
    println!(
        "policy: evaluate AdministratorAccess {:.3} µs",
        per.as_secs_f64() * 1e6
    );
}

async fn postgres_database() -> String {
    let base = std::env::var("SEASHELL_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("SEASHELL_TEST_POSTGRES_URL is not set: export SEASHELL_TEST_POSTGRES_URL=\"$(scripts/postgres.sh)\"")
    });
    sqlx::any::install_default_drivers();
    let name = "seashell_bench";
    let mut conn = sqlx::AnyConnection::connect(&base).await.expect("connect");
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .expect("drop");
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create");
    let (prefix, _) = base.rsplit_once('/').expect("database part");
    format!("{prefix}/{name}")
}

fn main() {
    let s = settings();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let sqlite_dir = tempfile::tempdir().expect("tempdir");
        let sqlite = format!(
            "sqlite://{}?mode=rwc",
            sqlite_dir.path().join("bench.db").display()
        );
        run_backend("sqlite", sqlite, &s).await;
        run_backend("postgres", postgres_database().await, &s).await;
    });
    verify_cost(s.step_iterations);
    policy_cost(s.step_iterations);
}
