//! The state-file contract under signals and concurrent runs, shown with the real `eks-sg-stack`
//! (the driver in `common::step` is the same for every step): SIGTERM/SIGINT during a wait write
//! what was made plus an error record and exit 1, and a re-run converges; two runs on one
//! `--state` file take turns through its lock and neither write is lost.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use testbed::awsproxy::{AwsProxy, Verdict};
use testbed::{Moto, REGION, seed};

const BIN: &str = env!("CARGO_BIN_EXE_eks-sg-stack");

/// Holds the first DescribeStacks after a CreateStack went through for `hold`, so a run sits in
/// its wait for the stack with the stack made but not yet seen complete.
fn hold_after_create(proxy: &AwsProxy, hold: Duration) {
    let created = Arc::new(AtomicBool::new(false));
    let held = Arc::new(AtomicBool::new(false));
    let seen = created.clone();
    proxy.observe(move |r, reply| {
        if r.action == "CreateStack" && reply.status == 200 {
            seen.store(true, Ordering::SeqCst);
        }
    });
    proxy.rule(move |r| {
        if r.action == "DescribeStacks"
            && created.load(Ordering::SeqCst)
            && !held.swap(true, Ordering::SeqCst)
        {
            Verdict::Delay(hold)
        } else {
            Verdict::Pass
        }
    });
}

fn spawn(proxy: &AwsProxy, moto: &Moto, state: &str, extra: &[&str]) -> Child {
    let mut cmd = Command::new(BIN);
    for key in Moto::UNSET {
        cmd.env_remove(key);
    }
    cmd.envs(proxy.env(moto));
    cmd.args(["--state", state, "--region", REGION])
        .args(extra)
        .args(["create", "--cluster", "sig"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().expect("eks-sg-stack starts")
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (bounded) for the child to end; returns its exit code and stderr.
fn finish(child: Child, limit: Duration) -> (i32, String) {
    let pid = child.id();
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(output)) => (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
        _ => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("the run did not end within {:?}", started.elapsed());
        }
    }
}

async fn stacks(moto: &Moto) -> Vec<String> {
    aws_sdk_cloudformation::Client::new(&moto.sdk_config(REGION).await)
        .describe_stacks()
        .send()
        .await
        .expect("DescribeStacks")
        .stacks()
        .iter()
        .filter(|s| s.stack_status().map(|s| s.as_str()) != Some("DELETE_COMPLETE"))
        .filter_map(|s| s.stack_id().map(str::to_owned))
        .collect()
}

fn read(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("the state file")).expect("JSON")
}

async fn signal_mid_wait_writes_what_was_made(signal: &str, name: &str) {
    let moto = Moto::start();
    seed::cluster(&moto.sdk_config(REGION).await, "sig", true).await;
    let proxy = AwsProxy::in_front_of(&moto);
    hold_after_create(&proxy, Duration::from_secs(30));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let file = path.to_str().unwrap();

    let child = spawn(&proxy, &moto, file, &[]);
    wait_for("the held DescribeStacks", Duration::from_secs(60), || {
        proxy
            .calls()
            .iter()
            .any(|c| c.request.action == "CreateStack")
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    let (code, stderr) = finish(child, Duration::from_secs(15));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped its wait at once"
    );
    let state = read(&path);
    let message = state["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("interrupted by {name}")),
        "{state}"
    );
    assert_eq!(state["error"]["step"], "sgStack");
    let made = stacks(&moto).await;
    assert_eq!(made.len(), 1);
    assert_eq!(
        state["sgStack"]["stackId"], made[0],
        "the stack made before the signal is in the state"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");

    // Run again: it goes on from the state and ends with the one stack.
    let again = spawn(&proxy, &moto, file, &["--resume"]);
    let (code, stderr) = finish(again, Duration::from_secs(60));
    assert_eq!(code, 0, "{stderr}");
    let state = read(&path);
    assert!(state.get("error").is_none(), "{state}");
    assert!(state["sgStack"]["securityGroupId"].is_string(), "{state}");
    assert_eq!(stacks(&moto).await, made, "nothing made twice");
}

#[tokio::test]
async fn sigterm_mid_wait_writes_what_was_made_and_a_rerun_converges() {
    signal_mid_wait_writes_what_was_made("-TERM", "SIGTERM").await;
}

#[tokio::test]
async fn sigint_mid_wait_writes_what_was_made_and_a_rerun_converges() {
    signal_mid_wait_writes_what_was_made("-INT", "SIGINT").await;
}

#[tokio::test]
async fn two_runs_on_one_state_file_take_turns() {
    let moto = Moto::start();
    seed::cluster(&moto.sdk_config(REGION).await, "sig", true).await;
    let proxy = AwsProxy::in_front_of(&moto);
    hold_after_create(&proxy, Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let file = path.to_str().unwrap();

    let first = spawn(&proxy, &moto, file, &[]);
    wait_for(
        "the first run's CreateStack",
        Duration::from_secs(60),
        || {
            proxy
                .calls()
                .iter()
                .any(|c| c.request.action == "CreateStack")
        },
    );
    // A run that will not wait gives up at once, leaving the file to the first.
    let impatient = spawn(&proxy, &moto, file, &["--lock-wait", "0"]);
    let (code, stderr) = finish(impatient, Duration::from_secs(30));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("in use by another run"), "{stderr}");
    assert!(
        stderr.contains("sgStack create"),
        "names the holder: {stderr}"
    );

    let second = spawn(&proxy, &moto, file, &[]);
    let (code1, err1) = finish(first, Duration::from_secs(60));
    let (code2, err2) = finish(second, Duration::from_secs(60));
    assert_eq!(code1, 0, "{err1}");
    assert_eq!(code2, 0, "{err2}");
    assert!(
        err2.contains("waiting for it"),
        "the second said it waits: {err2}"
    );
    // The second read what the first wrote: it found the stack and made nothing.
    let creates = proxy
        .calls()
        .iter()
        .filter(|c| c.request.action == "CreateStack")
        .count();
    assert_eq!(creates, 1);
    assert_eq!(stacks(&moto).await.len(), 1);
    let state = read(&path);
    assert!(state["sgStack"]["securityGroupId"].is_string(), "{state}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "the lock file is gone: {left:?}");
}
