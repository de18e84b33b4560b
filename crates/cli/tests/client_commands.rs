//! The client commands against a real server running real environments:
//! `seashell cloudshell …` in every output format with the AWS CLI guide's
//! queries adapted to CloudShell's shapes, the exit codes, `connect
//! --command`, `cp` up and down (50 MiB, byte for byte; `--recursive`),
//! and `seashell configure` writing a profile that the real AWS CLI and
//! boto3 use.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::hosted::Hosted;
use serde_json::Value;

/// The client's own home: no AWS configuration of the machine leaks in.
struct Client {
    home: tempfile::TempDir,
    key: (String, String),
    endpoint: String,
}

impl Client {
    fn bare(&self) -> Command {
        let mut cmd = common::seashell();
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("AWS_CONFIG_FILE", self.home.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.home.path().join("credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null());
        cmd
    }

    /// Credentials, region and endpoint from the environment.
    fn cmd(&self) -> Command {
        let mut cmd = self.bare();
        cmd.env("AWS_ACCESS_KEY_ID", &self.key.0)
            .env("AWS_SECRET_ACCESS_KEY", &self.key.1)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL_CLOUDSHELL", &self.endpoint);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run seashell")
    }
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(out: Output) -> String {
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    stdout
}

/// What the AWS CLI's own formatter prints for `response` (text or table,
/// 80 columns, no color), from the AWS CLI installed for the tests.
fn aws_cli_formats(format: &str, title: &str, response: &str, query: Option<&str>) -> String {
    let python = common::aws_bin().join("python3");
    let script = r#"
import io, json, sys
import jmespath
from awscli.formatter import TextFormatter, TableFormatter
class Args: pass
a = Args()
a.query = jmespath.compile(sys.argv[3]) if len(sys.argv) > 3 else None
a.color = 'off'
out = io.StringIO()
f = TextFormatter(a) if sys.argv[1] == 'text' else TableFormatter(a)
f(sys.argv[2], json.loads(sys.stdin.read()), out)
sys.stdout.write(out.getvalue())
"#;
    let mut cmd = Command::new(python);
    cmd.args(["-c", script, format, title]);
    if let Some(q) = query {
        cmd.arg(q);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(response.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("utf-8")
}

fn files_equal(a: &Path, b: &Path) {
    let (x, y) = (std::fs::read(a).expect("a"), std::fs::read(b).expect("b"));
    assert_eq!(
        x.len(),
        y.len(),
        "{} and {} differ in size",
        a.display(),
        b.display()
    );
    assert!(x == y, "{} and {} differ", a.display(), b.display());
}

#[test]
fn the_client_commands_work_against_a_real_server() {
    let hosted = Hosted::start("client");
    let client = Client {
        home: tempfile::tempdir().expect("home"),
        key: hosted.bootstrap(),
        endpoint: format!("{}/cloudshell", hosted.base()),
    };

    // Exit codes before anything runs: no credentials (253), bad syntax
    // (252), a bad parameter value (252), a bad query (252), a service
    // error (254) in the AWS CLI's words, an unreachable endpoint (255).
    let out = client
        .bare()
        .args([
            "cloudshell",
            "describe-environments",
            "--region",
            "us-east-1",
        ])
        .args(["--endpoint-url", &client.endpoint])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(253), "{out:?}");
    assert!(
        text(&out).1.contains("Unable to locate credentials"),
        "{out:?}"
    );
    let out = client.run(&["cloudshell", "get-environment-status"]);
    assert_eq!(out.status.code(), Some(252), "{out:?}");
    assert!(text(&out).1.contains("--environment-id"), "{out:?}");
    let out = client.run(&["cloudshell", "describe-environments", "--bogus"]);
    assert_eq!(out.status.code(), Some(252), "{out:?}");
    let out = client.run(&[
        "cloudshell",
        "create-session",
        "--environment-id",
        "x",
        "--shell",
        "fish",
    ]);
    assert_eq!(out.status.code(), Some(252), "{out:?}");
    let out = client.run(&[
        "cloudshell",
        "describe-environments",
        "--query",
        "Environments[[",
    ]);
    assert_eq!(out.status.code(), Some(252), "{out:?}");
    let out = client.run(&[
        "cloudshell",
        "get-environment-status",
        "--environment-id",
        "nope",
    ]);
    assert_eq!(out.status.code(), Some(254), "{out:?}");
    assert!(
        text(&out).1.contains(
            "An error occurred (ResourceNotFoundException) when calling the GetEnvironmentStatus operation: "
        ),
        "{out:?}"
    );
    let out = client
        .cmd()
        .args([
            "cloudshell",
            "describe-environments",
            "--endpoint-url",
            "http://127.0.0.1:1/cloudshell",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    assert!(
        text(&out)
            .1
            .contains("Could not connect to the endpoint URL"),
        "{out:?}"
    );

    // connect --command creates and starts the environment, runs the
    // command in a shell with the region, and exits with its status.
    let out = client.run(&["connect", "--command", "echo $AWS_REGION"]);
    assert_eq!(ok(out), "us-east-1\n");
    let out = client.run(&["connect", "--command", "echo to-stderr >&2; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    assert_eq!(text(&out).0, "to-stderr\n");

    // describe-environments in every format.
    let json_text = ok(client.run(&["cloudshell", "describe-environments", "--output", "json"]));
    let response: Value = serde_json::from_str(&json_text).expect("json");
    let envs = response["Environments"].as_array().expect("Environments");
    assert_eq!(envs.len(), 1, "{response}");
    let id = envs[0]["EnvironmentId"].as_str().expect("id").to_string();
    assert_eq!(envs[0]["Status"], "RUNNING");
    assert!(
        json_text.starts_with("{\n    \"Environments\": [\n        {\n"),
        "{json_text}"
    );
    for format in ["text", "table"] {
        let ours = ok(client.run(&["cloudshell", "describe-environments", "--output", format]));
        assert_eq!(
            ours,
            aws_cli_formats(format, "DescribeEnvironments", &json_text, None),
            "{format}"
        );
    }
    assert_eq!(
        ok(client.run(&["cloudshell", "describe-environments", "--output", "text"])),
        format!("ENVIRONMENTS\t{id}\tRUNNING\n")
    );
    let yaml = ok(client.run(&["cloudshell", "describe-environments", "--output", "yaml"]));
    assert_eq!(
        serde_yaml::from_str::<Value>(&yaml).expect("yaml"),
        response
    );
    let stream = ok(client.run(&[
        "cloudshell",
        "describe-environments",
        "--output",
        "yaml-stream",
    ]));
    assert_eq!(
        serde_yaml::from_str::<Value>(&stream).expect("yaml"),
        Value::Array(vec![response.clone()])
    );
    // The output format from the environment, and the flag beating it.
    let out = client
        .cmd()
        .env("AWS_DEFAULT_OUTPUT", "text")
        .args(["cloudshell", "describe-environments"])
        .output()
        .expect("run");
    assert_eq!(ok(out), format!("ENVIRONMENTS\t{id}\tRUNNING\n"));
    let out = client
        .cmd()
        .env("AWS_DEFAULT_OUTPUT", "text")
        .args(["cloudshell", "describe-environments", "--output", "json"])
        .output()
        .expect("run");
    assert_eq!(
        serde_json::from_str::<Value>(&ok(out)).expect("json"),
        response
    );

    // The guide's --query examples, adapted to CloudShell's shapes.
    let q = |query: &str, format: &str| {
        ok(client.run(&[
            "cloudshell",
            "describe-environments",
            "--query",
            query,
            "--output",
            format,
        ]))
    };
    assert_eq!(
        q("Environments[0]", "json"),
        format!("{{\n    \"EnvironmentId\": \"{id}\",\n    \"Status\": \"RUNNING\"\n}}\n")
    );
    assert_eq!(
        q("Environments[*].[EnvironmentId, Status, FakeKey]", "text"),
        format!("{id}\tRUNNING\tNone\n")
    );
    assert_eq!(
        q("Environments[?Status=='RUNNING'].EnvironmentId", "json"),
        format!("[\n    \"{id}\"\n]\n")
    );
    assert_eq!(q("Environments[?Status=='SUSPENDED']", "json"), "[]\n");
    assert_eq!(q("length(Environments)", "text"), "1\n");
    let dict = "Environments[*].{ID:EnvironmentId,State:Status}";
    assert_eq!(
        q(dict, "table"),
        aws_cli_formats("table", "DescribeEnvironments", &json_text, Some(dict))
    );
    let status = ok(client.run(&[
        "cloudshell",
        "get-environment-status",
        "--environment-id",
        &id,
        "--query",
        "Status",
        "--output",
        "text",
    ]));
    assert_eq!(status, "RUNNING\n");

    // Shorthand and JSON parameters reach the service; a VPC environment is
    // named and listed.
    let vpc = ok(client.run(&[
        "cloudshell",
        "create-environment",
        "--environment-name",
        "vpc1",
        "--vpc-config",
        "VpcId=vpc-1,SubnetIds=subnet-a,SecurityGroupIds=[sg-1,sg-2]",
        "--query",
        "EnvironmentId",
        "--output",
        "text",
    ]));
    let vpc_id = vpc.trim().to_string();
    let listed = ok(client.run(&[
        "cloudshell",
        "describe-environments",
        "--query",
        "Environments[?EnvironmentName=='vpc1'].VpcConfig | [0]",
    ]));
    assert_eq!(
        serde_json::from_str::<Value>(&listed).expect("json"),
        serde_json::json!({"VpcId": "vpc-1", "SubnetIds": ["subnet-a"], "SecurityGroupIds": ["sg-1", "sg-2"]})
    );
    let paged = ok(client.run(&["cloudshell", "describe-environments", "--max-items", "1"]));
    let paged: Value = serde_json::from_str(&paged).expect("json");
    assert_eq!(paged["Environments"].as_array().map(Vec::len), Some(1));
    let token = paged["NextToken"].as_str().expect("NextToken").to_string();
    let rest = ok(client.run(&[
        "cloudshell",
        "describe-environments",
        "--starting-token",
        &token,
    ]));
    let rest: Value = serde_json::from_str(&rest).expect("json");
    assert_eq!(rest["Environments"].as_array().map(Vec::len), Some(1));
    assert_ne!(rest["Environments"][0], paged["Environments"][0]);
    ok(client.run(&[
        "cloudshell",
        "delete-environment",
        "--environment-id",
        &vpc_id,
    ]));

    // cp: 50 MiB up and down, byte for byte, by both path forms.
    let work = tempfile::tempdir().expect("work");
    let big = work.path().join("big.bin");
    {
        let mut f = std::fs::File::create(&big).expect("create");
        let mut state = 0x9e3779b97f4a7c15u64;
        let mut block = vec![0u8; 1 << 20];
        for _ in 0..50 {
            for chunk in block.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                chunk.copy_from_slice(&state.to_le_bytes());
            }
            f.write_all(&block).expect("write");
        }
    }
    let out = client.run(&["cp", big.to_str().expect("path"), ":big.bin"]);
    ok(out);
    let sum = ok(client.run(&["connect", "--command", "sha256sum big.bin | cut -c1-64"]));
    let local_sum = Command::new("sha256sum")
        .arg(&big)
        .output()
        .expect("sha256sum");
    assert_eq!(
        sum.trim(),
        &String::from_utf8_lossy(&local_sum.stdout)[..64]
    );
    let down = work.path().join("down.bin");
    ok(client.run(&[
        "cp",
        ":/home/cloudshell-user/big.bin",
        down.to_str().expect("path"),
    ]));
    files_equal(&big, &down);
    // Into a directory: the file keeps its name.
    let into = work.path().join("into");
    std::fs::create_dir(&into).expect("dir");
    ok(client.run(&["cp", ":big.bin", into.to_str().expect("path")]));
    files_equal(&big, &into.join("big.bin"));
    // Failures say what failed and leave nothing behind.
    let out = client.run(&[
        "cp",
        ":no-such-file",
        work.path().join("x").to_str().expect("path"),
    ]);
    assert_ne!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out).1.contains("no-such-file"), "{out:?}");
    assert!(!work.path().join("x").exists());
    let out = client.run(&[
        "cp",
        ":../../etc/passwd",
        work.path().join("y").to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(254), "{out:?}");
    let out = client.run(&["cp", "a", "b"]);
    assert_eq!(out.status.code(), Some(252), "{out:?}");

    // --recursive: a tree up, then down again.
    let tree = work.path().join("tree");
    std::fs::create_dir_all(tree.join("sub/deeper")).expect("tree");
    std::fs::write(tree.join("top.txt"), b"top\n").expect("write");
    std::fs::write(tree.join("sub/deeper/leaf.txt"), b"leaf\n").expect("write");
    ok(client.run(&[
        "cp",
        "--recursive",
        tree.to_str().expect("path"),
        ":project",
    ]));
    assert_eq!(
        ok(client.run(&["connect", "--command", "cat project/sub/deeper/leaf.txt"])),
        "leaf\n"
    );
    let back = work.path().join("back");
    ok(client.run(&[
        "cp",
        "--recursive",
        ":project",
        back.to_str().expect("path"),
    ]));
    assert_eq!(std::fs::read(back.join("top.txt")).expect("top"), b"top\n");
    assert_eq!(
        std::fs::read(back.join("sub/deeper/leaf.txt")).expect("leaf"),
        b"leaf\n"
    );
    let leftovers = ok(client.run(&[
        "connect",
        "--command",
        "ls -a | grep -c seashell-cp || true",
    ]));
    assert_eq!(leftovers.trim(), "0");

    // configure writes a profile; this CLI, the AWS CLI and boto3 use it.
    let mut child = client
        .bare()
        .args(["configure", "--profile", "seashell"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("configure");
    let answers = format!(
        "{}\n{}\n{}\nus-east-1\njson\n",
        hosted.base(),
        client.key.0,
        client.key.1
    );
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(answers.as_bytes())
        .expect("answers");
    let out = child.wait_with_output().expect("configure");
    assert!(out.status.success(), "{out:?}");
    let config = std::fs::read_to_string(client.home.path().join("config")).expect("config");
    for (service, path) in [
        ("cloudshell", "cloudshell"),
        ("iam", "iam"),
        ("sts", "sts"),
        ("sso", "sso"),
        ("sso_oidc", "sso-oidc"),
        ("cloudtrail", "cloudtrail"),
    ] {
        assert!(
            config.contains(&format!(
                "{service} =\n  endpoint_url = {}/{path}\n",
                hosted.base()
            )),
            "{config}"
        );
    }
    let profile = |args: &[&str]| {
        ok(client
            .bare()
            .args(args)
            .args(["--profile", "seashell"])
            .output()
            .expect("run"))
    };
    assert_eq!(
        profile(&[
            "cloudshell",
            "describe-environments",
            "--query",
            "Environments[0].EnvironmentId",
            "--output",
            "text"
        ])
        .trim(),
        id
    );
    assert_eq!(profile(&["configure", "get", "region"]), "us-east-1\n");
    assert_eq!(
        profile(&["configure", "get", "cloudshell.endpoint_url"]),
        format!("{}/cloudshell\n", hosted.base())
    );
    profile(&["configure", "set", "output", "text"]);
    assert_eq!(
        profile(&["cloudshell", "describe-environments"]),
        format!("ENVIRONMENTS\t{id}\tRUNNING\n")
    );
    let listing = profile(&["configure", "list"]);
    let tail = &client.key.0[client.key.0.len() - 4..];
    assert!(
        listing.contains(&format!("****************{tail}")),
        "{listing}"
    );
    assert!(
        !listing.contains(&client.key.1),
        "the secret is masked: {listing}"
    );
    let aws_env = |cmd: &mut Command| {
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", client.home.path())
            .env("AWS_CONFIG_FILE", client.home.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                client.home.path().join("credentials"),
            );
    };
    let mut aws = Command::new(common::aws_bin().join("aws"));
    aws_env(&mut aws);
    aws.args([
        "--profile",
        "seashell",
        "sts",
        "get-caller-identity",
        "--output",
        "json",
    ]);
    let who = common::aws_json(&mut aws);
    assert!(
        who["Arn"]
            .as_str()
            .is_some_and(|a| a.starts_with("arn:aws:iam::")),
        "{who}"
    );
    let mut aws = Command::new(common::aws_bin().join("aws"));
    aws_env(&mut aws);
    aws.args([
        "--profile",
        "seashell",
        "iam",
        "list-users",
        "--output",
        "json",
    ]);
    common::aws_json(&mut aws);
    let mut boto = Command::new(common::aws_bin().join("python3"));
    aws_env(&mut boto);
    boto.args([
        "-c",
        "import boto3, json; s = boto3.Session(profile_name='seashell'); \
         print(json.dumps({'sts': s.client('sts').get_caller_identity()['Arn'], \
         'users': len(s.client('iam').list_users()['Users'])}))",
    ]);
    let answer = common::aws_json(&mut boto);
    assert_eq!(answer["sts"], who["Arn"]);

    // The SDK's credential chain behind --profile: credential_process, and
    // an assume-role profile whose source is the configured one (STS at
    // the profile's services endpoint).
    let account = who["Account"].as_str().expect("Account").to_string();
    let mut aws = Command::new(common::aws_bin().join("aws"));
    aws_env(&mut aws);
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    aws.args([
        "--profile",
        "seashell",
        "iam",
        "create-role",
        "--role-name",
        "cli-operator",
    ])
    .args(["--assume-role-policy-document", &trust, "--output", "json"]);
    common::aws_json(&mut aws);
    let mut aws = Command::new(common::aws_bin().join("aws"));
    aws_env(&mut aws);
    aws.args(["--profile", "seashell", "iam", "put-role-policy", "--role-name", "cli-operator"])
        .args(["--policy-name", "cloudshell"])
        .args(["--policy-document", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"cloudshell:*","Resource":"*"}]}"#]);
    let out = aws.output().expect("aws");
    assert!(out.status.success(), "{out:?}");
    let process = client.home.path().join("creds.sh");
    std::fs::write(
        &process,
        format!(
            "#!/bin/sh\nprintf '{{\"Version\": 1, \"AccessKeyId\": \"%s\", \"SecretAccessKey\": \"%s\"}}' '{}' '{}'\n",
            client.key.0, client.key.1
        ),
    )
    .expect("script");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&process, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let mut config = std::fs::read_to_string(client.home.path().join("config")).expect("config");
    config.push_str(&format!(
        "\n[profile by-process]\nregion = us-east-1\nservices = seashell\ncredential_process = {}\n\n\
         [profile by-role]\nregion = us-east-1\nservices = seashell\noutput = json\n\
         role_arn = arn:aws:iam::{account}:role/cli-operator\nsource_profile = seashell\n",
        process.display()
    ));
    std::fs::write(client.home.path().join("config"), config).expect("config");
    let by_process = ok(client
        .bare()
        .args([
            "cloudshell",
            "describe-environments",
            "--profile",
            "by-process",
        ])
        .args([
            "--query",
            "Environments[0].EnvironmentId",
            "--output",
            "text",
        ])
        .output()
        .expect("run"));
    assert_eq!(
        by_process.trim(),
        id,
        "credential_process gives the administrator's identity"
    );
    // The role is another principal: its environments are its own.
    let by_role = ok(client
        .bare()
        .env("AWS_PROFILE", "by-role")
        .args(["cloudshell", "describe-environments"])
        .output()
        .expect("run"));
    assert_eq!(
        serde_json::from_str::<Value>(&by_role).expect("json"),
        serde_json::json!({"Environments": []})
    );

    // help at every level.
    for args in [
        &["--help"][..],
        &["cloudshell", "--help"],
        &["cloudshell", "create-environment", "--help"],
        &["cp", "--help"],
        &["connect", "--help"],
        &["configure", "--help"],
    ] {
        let out = client.run(args);
        assert!(
            out.status.success() && !out.stdout.is_empty(),
            "{args:?}: {out:?}"
        );
    }
    assert!(
        text(&client.run(&["cloudshell", "create-environment", "--help"]))
            .0
            .contains("--vpc-config")
    );
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(client.run(&["completion", shell]));
        assert!(script.contains("describe-environments"), "{shell}");
    }
    drop(hosted);
}
