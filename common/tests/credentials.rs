//! Missing, expired or unusable AWS credentials, and an STS out of reach, as a new user meets
//! them: the real step binaries stop at their first AWS call with exit 2 and one readable line
//! naming what was tried and the fix (never the SDK's debug dump), a `--state` file left byte for
//! byte as it was, and in a pipe the incoming document passed on with an `error` record.
//!
//! The binaries are the workspace's, from the target folder (`cargo build --bins` first, as
//! `make test` does).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use testbed::awsproxy::AwsProxy;
use testbed::run::{Run, assert_exit};
use testbed::{Moto, REGION, credentials};

/// The folder of the step binaries (next to this test's executable).
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --bins` (make test builds them first)",
        path.display()
    );
    path
}

/// Each step command that calls AWS, with input that passes its own checks (`manifests`: a
/// folder of manifests for `eks-deploy`).
fn step_commands(manifests: &Path) -> Vec<(&'static str, Vec<String>)> {
    let words = |list: &[&str]| list.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    vec![
        ("eks-cluster", words(&["create", "--cluster", "demo"])),
        ("eks-oidc", words(&["ensure", "--cluster", "demo"])),
        (
            "irsa",
            words(&[
                "ensure",
                "--cluster",
                "demo",
                "--sa-name",
                "app",
                "--policy-arn",
                "arn:aws:iam::aws:policy/ReadOnlyAccess",
            ]),
        ),
        ("eks-sg-stack", words(&["delete", "--cluster", "demo"])),
        (
            "eks-deploy",
            words(&["apply", "--manifests", &manifests.display().to_string()]),
        ),
        ("eks-cluster", words(&["delete", "--cluster", "demo"])),
    ]
}

/// A folder with one manifest (a ConfigMap) for `eks-deploy apply`.
fn manifests() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("01-config.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\ndata:\n  a: b\n",
    )
    .unwrap();
    dir
}

/// A command of `program` with no credentials anywhere: no keys in the environment, empty
/// config and credentials files, a home of its own, instance metadata off; AWS (for whatever
/// call would still go out) is the proxy.
fn without_credentials(
    moto: &Moto,
    proxy: &AwsProxy,
    program: &str,
    home: &Path,
) -> assert_cmd::Command {
    let mut command = proxy.command(moto, bin(program));
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
        .env_remove("AWS_ROLE_ARN")
        .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        .env("HOME", home)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

/// The state a step gets: a cluster section of an earlier run, pretty-printed as a person might
/// have left it (so a rewrite would show).
fn earlier_state() -> String {
    let state = json!({
        "schemaVersion": 1,
        "cluster": {"name": "demo", "region": REGION, "accountId": "123456789012"},
    });
    format!("{}\n", serde_json::to_string_pretty(&state).unwrap())
}

/// stderr is one readable line: short, no Rust debug structure, no SDK type names.
fn assert_one_readable_line(run: &Run, what: &str) {
    let text = run.stderr.trim_end();
    assert_eq!(text.lines().count(), 1, "{what}: one line\n{}", run.stderr);
    assert!(text.len() < 400, "{what}: {} chars\n{text}", text.len());
    for dump in [
        "{",
        "CredentialsNotLoaded",
        "ProviderChain",
        "DispatchFailure",
        "ConnectorError",
        "Some(",
    ] {
        assert!(!text.contains(dump), "{what}: `{dump}` in\n{text}");
    }
}

#[test]
fn no_credentials_stop_every_step_at_its_first_aws_call_with_exit_2() {
    let moto = Moto::start();
    let proxy = AwsProxy::in_front_of(&moto);
    let home = tempfile::tempdir().unwrap();
    let manifests = manifests();
    for (program, args) in step_commands(manifests.path()) {
        let what = format!("{program} {}", args.join(" "));
        // With --state: the file is left byte for byte.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state.json");
        std::fs::write(&file, earlier_state()).unwrap();
        let mut command = without_credentials(&moto, &proxy, program, home.path());
        command
            .arg("--state")
            .arg(&file)
            .args(["--region", REGION])
            .args(&args);
        let run = testbed::run::run(&mut command, "");
        assert_exit(&run, 2);
        assert_one_readable_line(&run, &what);
        for words in [
            "no AWS credentials found (tried: environment variables, profile files",
            "instance metadata (disabled)",
            "`aws sso login` (with --profile or AWS_PROFILE)",
            "`aws configure`",
            "AWS_ACCESS_KEY_ID",
            "Nothing was changed",
        ] {
            assert!(
                run.stderr.contains(words),
                "{what}: `{words}` in\n{}",
                run.stderr
            );
        }
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            earlier_state(),
            "{what}: the state file is untouched"
        );
        assert!(run.stdout.is_empty(), "{what}: {}", run.stdout);

        // In a pipe: the incoming document goes on, with an error record of exit code 2.
        let mut command = without_credentials(&moto, &proxy, program, home.path());
        command.args(["--region", REGION]).args(&args);
        let piped = testbed::run::run(&mut command, &earlier_state());
        assert_exit(&piped, 2);
        let out = piped.json();
        assert_eq!(
            out["cluster"],
            json!({"name": "demo", "region": REGION, "accountId": "123456789012"})
        );
        assert_eq!(out["error"]["exitCode"], 2, "{what}");
        let message = out["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("no AWS credentials found"),
            "{what}: {message}"
        );
        assert!(out.get("timings").is_none(), "{what}: no timing recorded");
    }
    // Credentials are looked for before anything is sent: AWS saw no call at all.
    assert!(proxy.calls().is_empty(), "{:?}", proxy.calls());
}

#[test]
fn read_only_commands_without_credentials_are_exit_2_too() {
    let moto = Moto::start();
    let proxy = AwsProxy::in_front_of(&moto);
    let home = tempfile::tempdir().unwrap();
    for (program, args) in [
        ("irsa", &["list", "--cluster", "demo"][..]),
        ("eks-cluster", &["token", "--cluster", "demo"][..]),
    ] {
        let what = format!("{program} {}", args.join(" "));
        let mut command = without_credentials(&moto, &proxy, program, home.path());
        command.args(["--region", REGION]).args(args);
        let run = testbed::run::run(&mut command, "");
        assert_exit(&run, 2);
        assert_one_readable_line(&run, &what);
        assert!(
            run.stderr.contains("no AWS credentials found") && run.stderr.contains("aws sso login"),
            "{what}: {}",
            run.stderr
        );
    }
    assert!(proxy.calls().is_empty(), "{:?}", proxy.calls());
}

#[test]
fn expired_credentials_are_refused_by_sts_and_stop_the_step_with_exit_2() {
    let moto = Moto::start();
    let proxy = AwsProxy::in_front_of(&moto);
    proxy.rule(credentials::expired("ASIAEXPIREDSESSION1"));
    let manifests = manifests();
    for (program, args) in step_commands(manifests.path()) {
        let what = format!("{program} {}", args.join(" "));
        proxy.clear_calls();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state.json");
        std::fs::write(&file, earlier_state()).unwrap();
        let mut command = proxy.command(&moto, bin(program));
        command
            .envs(credentials::expired_session_env("ASIAEXPIREDSESSION1"))
            .arg("--state")
            .arg(&file)
            .args(["--region", REGION])
            .args(&args);
        let run = testbed::run::run(&mut command, "");
        assert_exit(&run, 2);
        assert_one_readable_line(&run, &what);
        assert!(
            run.stderr.contains(&format!(
                "the AWS credentials were refused (ExpiredToken: {})",
                credentials::EXPIRED_MESSAGE
            )) && run.stderr.contains("renew them (`aws sso login`"),
            "{what}: {}",
            run.stderr
        );
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            earlier_state(),
            "{what}"
        );
        // The check was the one call: GetCallerIdentity, answered once (not retried).
        let calls: Vec<String> = proxy.calls().iter().map(|c| c.to_string()).collect();
        assert_eq!(calls, ["sts GetCallerIdentity -> 403"], "{what}");
    }
}

#[test]
fn an_sts_out_of_reach_is_exit_2_naming_the_endpoint_within_seconds() {
    let moto = Moto::start();
    let closed = format!("http://127.0.0.1:{}", testbed::free_port());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    std::fs::write(&file, earlier_state()).unwrap();
    let mut command = moto.command(bin("eks-oidc"));
    command
        .env("AWS_ENDPOINT_URL", &closed)
        .arg("--state")
        .arg(&file)
        .args(["--region", REGION, "ensure", "--cluster", "demo"]);
    let started = Instant::now();
    let run = testbed::run::run(&mut command, "");
    let took = started.elapsed();
    assert_exit(&run, 2);
    assert_one_readable_line(&run, "unreachable STS");
    assert!(
        run.stderr.contains(&format!(
            "cannot reach STS at {closed} to check the AWS credentials"
        )) && run.stderr.contains("Connection refused")
            && run
                .stderr
                .contains("HTTPS_PROXY/NO_PROXY and AWS_ENDPOINT_URL"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), earlier_state());
    // Three attempts with at most 1.5 s of backoff between them, not eight over a minute.
    assert!(took < Duration::from_secs(10), "took {took:?}");
}
