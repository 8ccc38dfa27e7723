//! `eks-deploy` finishes in one run through Kubernetes requests that get no answer: the fault
//! proxy in front of the API server closes a quarter of the connections without an answer (before
//! forwarding the request, or after the server acted on it: a lost answer) or resets them. Every
//! request `apply` and `delete` make is idempotent (GET, server-side apply, DELETE), so the
//! client sends it again (`common::kuberetry`).

use std::time::Duration;

use testbed::Moto;
use testbed::controlplane::ControlPlane;
use testbed::fargate::Profiles;
use testbed::kubefaults::{KubeFaultPlan, KubeFaultProxy, RequestFault};
use testbed::run::assert_exit;
use testbed::sim::FargateSim;

mod fixtures;

/// What follows the game namespace and Deployment: a ConfigMap and a Service.
const AFTER_GAME: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: game}
data: {a: b}
---
apiVersion: v1
kind: Service
metadata: {name: app, namespace: game}
spec:
  selector: {app: game}
  ports: [{port: 80, targetPort: 80}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_and_delete_finish_through_closed_and_reset_connections() {
    let kube = ControlPlane::start();
    // The simulators talk to the API server directly; only the step goes through the faults.
    let _pods = FargateSim::start_with(
        kube.simulator_client().await,
        Duration::from_secs(1),
        Profiles::namespaces(&["game"]),
    )
    .await;
    let plan = KubeFaultPlan::new(0.25, 16).only(&[
        RequestFault::ClosedBeforeForwarding,
        RequestFault::ClosedAfterForwarding,
        RequestFault::Reset,
    ]);
    let proxy = KubeFaultProxy::start(&kube, plan);
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.yaml"), fixtures::game_and(AFTER_GAME)).unwrap();

    let applied = fixtures::run(
        &moto,
        &proxy.kubeconfig(),
        dir.path(),
        &["apply", "--timeout", "90s"],
        fixtures::state(),
    )
    .await;
    assert_exit(&applied, 0);
    assert!(
        applied.stderr.contains("got no answer"),
        "the retries are logged: {}",
        applied.stderr
    );
    assert_eq!(
        applied.json()["deploy"]["appliedObjects"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let after_apply = proxy.stats();

    let deleted = fixtures::run(
        &moto,
        &proxy.kubeconfig(),
        dir.path(),
        &["delete", "--timeout", "90s"],
        applied.stdout.clone(),
    )
    .await;
    assert_exit(&deleted, 0);
    assert!(deleted.json().get("deploy").is_none());
    let left = fixtures::objects_left(&kube).await;
    assert!(left.is_empty(), "left: {left:?}");

    let stats = proxy.stats();
    eprintln!("apply: {after_apply:?}; apply and delete: {stats:?}");
    assert!(
        after_apply.requests_faulted() >= 3,
        "apply met faults: {after_apply:?}"
    );
    assert!(
        stats.closed_before_forwarding > 0 && stats.closed_after_forwarding > 0 && stats.resets > 0,
        "every kind was met: {stats:?}"
    );
    assert_eq!(stats.too_many_requests + stats.unavailable, 0);
}

/// A ConfigMap in `default`, a namespace delete does not remove (so only its own delete
/// removes it), after a ClusterRole.
const OUTSIDE: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: game-reader}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get]}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: default}
data: {a: b}
"#;

/// The server makes the ConfigMap, but every answer to its apply is lost: the run fails after
/// the client's retries. The state still names it (recorded before the apply was sent, as
/// `pending`), so delete removes it. Before, an object was recorded only once its apply was
/// answered: this one was left in the cluster with no record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_whose_apply_answer_is_lost_is_recorded_and_deleted() {
    let kube = ControlPlane::start();
    let plan = KubeFaultPlan::new(0.0, 1)
        .losing_answers_to("PATCH", "/namespaces/default/configmaps/settings");
    let proxy = KubeFaultProxy::start(&kube, plan);
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("outside.yaml"), OUTSIDE).unwrap();

    let failed = fixtures::run(
        &moto,
        &proxy.kubeconfig(),
        dir.path(),
        &["apply", "--timeout", "60s"],
        fixtures::state(),
    )
    .await;
    assert_exit(&failed, 1);
    assert!(
        failed
            .stderr
            .contains("cannot apply ConfigMap default/settings"),
        "{}",
        failed.stderr
    );
    assert!(
        proxy.stats().closed_after_forwarding >= 2,
        "{:?}",
        proxy.stats()
    );
    let left = fixtures::objects_left(&kube).await;
    assert!(
        left.iter().any(|o| o == r#""ConfigMap" "settings""#),
        "the server made it: {left:?}"
    );
    let state = failed.json();
    let recorded = state["deploy"]["appliedObjects"].as_array().unwrap();
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    assert_eq!(recorded[0]["kind"], "ClusterRole");
    assert!(recorded[0].get("pending").is_none(), "{recorded:?}");
    assert_eq!(recorded[1]["kind"], "ConfigMap");
    assert_eq!(recorded[1]["name"], "settings");
    assert_eq!(recorded[1]["pending"], true, "{recorded:?}");

    // Delete goes straight to the API server: the record is enough.
    let deleted = fixtures::run(
        &moto,
        &kube.kubeconfig(),
        dir.path(),
        &["delete", "--resume", "--timeout", "60s"],
        failed.stdout.clone(),
    )
    .await;
    assert_exit(&deleted, 0);
    assert!(
        deleted
            .stderr
            .contains("deleted ConfigMap default/settings"),
        "{}",
        deleted.stderr
    );
    let left = fixtures::objects_left(&kube).await;
    assert!(left.is_empty(), "left: {left:?}");
}
