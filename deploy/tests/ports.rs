//! The real `eks-deploy apply` refuses, before anything is applied, manifests whose ALB backends
//! reach a pod port that the ALB security group (`eks-sg-stack`, its `targetPorts`) keeps
//! closed: on AWS the ALB's health checks would time out and the app would never answer.

mod fixtures;

use testbed::Moto;
use testbed::controlplane::ControlPlane;
use testbed::run::assert_exit;

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: game}
spec:
  selector: {app: game}
  ports: [{name: front, port: 80, targetPort: http}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: game}
spec:
  ingressClassName: alb
  defaultBackend: {service: {name: web, port: {name: front}}}
"#;

/// [`fixtures::GAME`] with its container serving on the named port `http`, 8080.
fn manifests() -> String {
    fixtures::game_and(MANIFESTS).replace(
        "containers: [{name: c, image: example/2048:1}]",
        "containers: [{name: c, image: example/2048:1, ports: [{name: http, containerPort: 8080}]}]",
    )
}

fn state_with_ports(ports: &[u16]) -> String {
    let mut state: serde_json::Value = serde_json::from_str(&fixtures::state()).unwrap();
    state["sgStack"] = serde_json::json!({"clusterName": "demo", "targetPorts": ports});
    state.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_on_a_port_the_alb_group_keeps_closed_is_refused_first() {
    let moto = Moto::start();
    let kube = ControlPlane::start();
    let dir = tempfile::tempdir().unwrap();
    let text = manifests();
    assert!(text.contains("containerPort: 8080"), "{text}");
    std::fs::write(dir.path().join("01-app.yaml"), text).unwrap();
    let kubeconfig = kube.kubeconfig();

    let refused = fixtures::run(
        &moto,
        &kubeconfig,
        dir.path(),
        &["apply"],
        state_with_ports(&[80]),
    )
    .await;
    assert_exit(&refused, 2);
    for part in [
        "port(s) 80 only",
        "Ingress game/web sends to Service web on pod port 8080",
        "eks-sg-stack create --target-port 80 --target-port 8080",
    ] {
        assert!(refused.stderr.contains(part), "{part}: {}", refused.stderr);
    }
    assert!(
        fixtures::objects_left(&kube).await.is_empty(),
        "nothing applied: {:?}",
        fixtures::objects_left(&kube).await
    );

    // With the port open (or a section from before ports were chosen, which opened them all)
    // the same manifests pass the check.
    for state in [state_with_ports(&[80, 8080]), fixtures::state()] {
        let planned = fixtures::run(
            &moto,
            &kubeconfig,
            dir.path(),
            &["--dry-run", "apply"],
            state,
        )
        .await;
        assert_exit(&planned, 0);
    }
}
