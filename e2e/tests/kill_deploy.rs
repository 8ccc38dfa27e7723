//! Kill sweeps of `eks-deploy`, whose work is in Kubernetes (no AWS call marks its phases): its
//! `apply` and its `delete`, with `--state FILE`, are SIGKILLed at spread moments of an
//! uninterrupted run's duration, then run again. After each kill the state file is the old
//! document or a complete new one; the re-run exits 0 and ends with the same objects as an
//! uninterrupted run; `eks-deploy delete` then leaves none of them.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eks_fa_e2e::Bed;
use testbed::REGION;

/// Kill moments per command: fractions i/(KILLS+1) of the uninterrupted run's duration.
const KILLS: u32 = 5;

/// What the binaries made and left in the cluster (by the audit log: what the simulators and
/// controllers make for them, pods, events, endpoints, bindings, is not theirs), by kind,
/// namespace and name.
async fn objects(bed: &Bed) -> BTreeSet<String> {
    bed.eks
        .kube
        .left_by_testbed()
        .await
        .iter()
        .map(|o| {
            format!(
                "{} {}/{}",
                o["kind"].as_str().unwrap_or_default(),
                o["metadata"]["namespace"].as_str().unwrap_or("-"),
                o["metadata"]["name"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

fn deploy(bed: &Bed, state: &std::path::Path, args: &[&str]) -> Command {
    let mut command = bed.shell();
    let kube = bed.kubeconfig().display().to_string();
    let alb = format!("::{}", bed.alb_address());
    let mut all = vec![
        "--state",
        state.to_str().unwrap(),
        "--region",
        REGION,
        "--resume",
    ];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--kubeconfig", &kube]);
    if args.first() == Some(&"apply") {
        all.extend_from_slice(&["--timeout", "60s", "--connect-to", &alb]);
    }
    command.arg("-c").arg("exec \"$0\" \"$@\"");
    command.arg(bed.bin.join("eks-deploy")).args(all);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn run_ok(mut command: Command, what: &str) -> Duration {
    let started = Instant::now();
    let output = command.output().expect("eks-deploy runs");
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    started.elapsed()
}

/// Runs the command and SIGKILLs it after `after` (if still running); true when killed.
fn kill_after(mut command: Command, after: Duration) -> bool {
    let mut child = command.spawn().expect("eks-deploy starts");
    let started = Instant::now();
    while started.elapsed() < after {
        if child.try_wait().expect("wait").is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed = child.try_wait().expect("wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    killed
}

fn check_file(path: &std::path::Path, old: &str, when: &str) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        text == old || serde_json::from_str::<serde_json::Value>(&text).is_ok(),
        "after a kill {when} the state file is neither the old document nor a complete one: \
         {text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks_deploy_apply_and_delete_killed_anywhere_converge() {
    let bed = Bed::new().await;
    let cluster = bed.create_cluster().await;
    let before = bed.pipe(
        "{bin}/eks-oidc ensure \
         | {bin}/irsa ensure --sa-name aws-load-balancer-controller --policy-document {policy} --kubeconfig {kube} \
         | {bin}/eks-sg-stack create \
         | {bin}/eks-patch --out {work}/patched",
        &cluster.to_string(),
    );
    testbed::run::assert_exit(&before, 0);
    let state = bed.work.path().join("state.json");
    let before_apply = objects(&bed).await;

    // Uninterrupted: what apply makes and how long each takes.
    std::fs::write(&state, &before.stdout).unwrap();
    let apply_time = run_ok(deploy(&bed, &state, &["apply"]), "apply");
    let applied = objects(&bed).await;
    let applied_state = std::fs::read_to_string(&state).unwrap();
    assert!(applied.len() > before_apply.len(), "apply made objects");
    let delete_time = run_ok(deploy(&bed, &state, &["delete"]), "delete");
    // What an uninterrupted delete leaves (it removes the controller's ServiceAccount too, which
    // its manifests declare).
    let base = objects(&bed).await;
    assert!(
        base.is_subset(&before_apply),
        "delete leaves nothing apply made: {base:?}"
    );

    let (mut kills, mut converged) = (0, 0);
    for i in 1..=KILLS {
        // apply, killed at i/(KILLS+1) of its time, then run again.
        std::fs::write(&state, &before.stdout).unwrap();
        let at = apply_time * i / (KILLS + 1);
        if kill_after(deploy(&bed, &state, &["apply"]), at) {
            kills += 1;
            check_file(&state, &before.stdout, &format!("of apply at {at:?}"));
            run_ok(deploy(&bed, &state, &["apply"]), "apply after a kill");
            assert_eq!(
                objects(&bed).await,
                applied,
                "apply killed at {at:?} then run again"
            );
            converged += 1;
        }
        run_ok(deploy(&bed, &state, &["delete"]), "delete");
        assert_eq!(objects(&bed).await, base);

        // delete, killed at i/(KILLS+1) of its time, then run again.
        std::fs::write(&state, &before.stdout).unwrap();
        run_ok(deploy(&bed, &state, &["apply"]), "apply");
        let old = std::fs::read_to_string(&state).unwrap();
        let at = delete_time * i / (KILLS + 1);
        if kill_after(deploy(&bed, &state, &["delete"]), at) {
            kills += 1;
            check_file(&state, &old, &format!("of delete at {at:?}"));
            run_ok(deploy(&bed, &state, &["delete"]), "delete after a kill");
            assert_eq!(
                objects(&bed).await,
                base,
                "delete killed at {at:?} then run again"
            );
            converged += 1;
        } else {
            assert_eq!(objects(&bed).await, base);
        }
    }
    eprintln!(
        "eks-deploy kill sweep: apply took {apply_time:?}, delete {delete_time:?}; \
         {kills} kills, {converged} converged"
    );
    assert!(kills >= KILLS, "most moments fell inside a run: {kills}");
    assert_eq!(kills, converged);
    assert!(applied_state.contains("\"deploy\""));
}
