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
