//! The real `eks-deploy` binary with the shared `--kubeconfig` and `--context`: taken before or
//! after the subcommand (or one on each side), and `--context` picks the kubeconfig's context
//! the client uses, against the real Kubernetes control plane. The manifests make no pods, so no
//! AWS call is made; AWS is pointed at a closed loopback port all the same.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use testbed::controlplane::ControlPlane;
use testbed::run::{Run, assert_exit};

const MANIFEST: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: kube-flags, namespace: default}
data: {placed: by-context}
";

/// The control plane's kubeconfig with a second context, `dead` (a server nobody serves), made
/// the current one: only `--context testbed` reaches the control plane.
fn dead_current_context(kubeconfig: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(kubeconfig).unwrap();
    assert!(text.contains("current-context: testbed"), "{text}");
    let text = text
        .replacen(
            "clusters:\n",
            "clusters:\n- name: dead\n  cluster:\n    server: https://127.0.0.1:1\n",
            1,
        )
        .replacen(
            "contexts:\n",
            "contexts:\n- name: dead\n  context:\n    cluster: dead\n    user: testbed\n",
            1,
        )
        .replacen("current-context: testbed", "current-context: dead", 1);
    let path = dir.join("two-contexts");
    std::fs::write(&path, text).unwrap();
    path
}

fn run(args: &[&str]) -> Run {
    let mut command = assert_cmd::Command::new(env!("CARGO_BIN_EXE_eks-deploy"));
    command
        .args(["--region", "us-east-2"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env_remove("AWS_PROFILE")
        .env_remove("KUBECONFIG");
    testbed::run::run(&mut command, "")
}

async fn placed(kube: &ControlPlane) -> bool {
    Api::<ConfigMap>::namespaced(kube.client().await, "default")
        .get_opt("kube-flags")
        .await
        .unwrap()
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_picks_the_cluster_before_or_after_the_subcommand() {
    let kube = ControlPlane::start();
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("00-map.yaml"), MANIFEST).unwrap();
    let kubeconfig = dead_current_context(&kube.kubeconfig(), dir.path());
    let state = dir.path().join("state.json");
    let (k, m, s) = (
        kubeconfig.to_str().unwrap(),
        manifests.to_str().unwrap(),
        state.to_str().unwrap(),
    );
    let target = ["--cluster", "demo", "--manifests", m, "--timeout", "20s"];

    // Its current context, `dead`: the control plane is not reached.
    let unreached = run(&[&["--state", s, "apply", "--kubeconfig", k][..], &target].concat());
    assert_exit(&unreached, 1);
    assert!(
        unreached.stderr.contains("Connection refused"),
        "{}",
        unreached.stderr
    );
    assert!(!placed(&kube).await);
    let resumed = |args: &[&str]| run(&[&["--state", s, "--resume"][..], args, &target].concat());

    // Before the subcommand: applied through `testbed`.
    let before = resumed(&["--kubeconfig", k, "--context", "testbed", "apply"]);
    assert_exit(&before, 0);
    assert!(placed(&kube).await);

    // After it: deleted through `testbed`.
    let after = resumed(&["delete", "--kubeconfig", k, "--context", "testbed"]);
    assert_exit(&after, 0);
    assert!(!placed(&kube).await);

    // One on each side.
    let split = resumed(&["--context", "testbed", "apply", "--kubeconfig", k]);
    assert_exit(&split, 0);
    assert!(placed(&kube).await);
}
