//! The real `eks-deploy` binary never touches a Kubernetes object it did not make: an object of
//! the manifests that another field manager (here `helm`) owns is refused with exit 2 and
//! nothing changed, `--adopt` takes it over and records it adopted, `delete` leaves an adopted
//! object in place, and `delete --manifests` with no state refuses what it cannot prove ours.
//!
//! The manifests make no pods, so no Fargate profile is read and no AWS call is made; AWS is
//! pointed at a closed loopback port all the same. `EKS_DEPLOY_BIN` runs the tests against
//! another build (how they were seen failing on the build before the ownership rule).

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::api::{PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use testbed::controlplane::ControlPlane;
use testbed::run::{Run, assert_exit};

const MANIFESTS: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata:
  name: ctl
  namespace: kube-system
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/ours
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ctl-config, namespace: kube-system}
data: {mode: ours}
---
apiVersion: v1
kind: Service
metadata: {name: ctl-webhook, namespace: kube-system}
spec:
  selector: {app: ctl}
  ports: [{port: 443, targetPort: 9443}]
"#;

const ROLE_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
const HELMS_ROLE: &str = "arn:aws:iam::123456789012:role/helms";

fn binary() -> PathBuf {
    std::env::var_os("EKS_DEPLOY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_eks-deploy")))
}

struct Bed {
    kube: ControlPlane,
    dir: tempfile::TempDir,
}

impl Bed {
    fn new() -> Bed {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("manifests")).unwrap();
        std::fs::write(dir.path().join("manifests/00-ctl.yaml"), MANIFESTS).unwrap();
        Bed {
            kube: ControlPlane::start(),
            dir,
        }
    }

    fn manifests(&self) -> PathBuf {
        self.dir.path().join("manifests")
    }

    fn state_file(&self) -> PathBuf {
        self.dir.path().join("state.json")
    }

    /// `eks-deploy --state FILE <args> --cluster demo --kubeconfig ... --manifests DIR` (no
    /// `--manifests` when `manifests` is false).
    fn run(&self, args: &[&str], manifests: bool) -> Run {
        let kubeconfig = self.kube.kubeconfig();
        let state = self.state_file();
        let dir = self.manifests();
        let mut all: Vec<&str> = vec!["--region", "us-east-2", "--state", state.to_str().unwrap()];
        all.extend_from_slice(args);
        all.extend_from_slice(&[
            "--cluster",
            "demo",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ]);
        if manifests {
            all.extend_from_slice(&["--manifests", dir.to_str().unwrap()]);
        }
        let mut command = assert_cmd::Command::new(binary());
        command
            .args(&all)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
            .env_remove("AWS_PROFILE");
        testbed::run::run(&mut command, "")
    }

    fn state(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.state_file()).unwrap()).unwrap()
    }

    /// The ServiceAccount `kube-system/ctl` as `helm` makes it: an update (POST) by field
    /// manager `helm`, with another role in the annotation our manifest sets.
    async fn helm_made_service_account(&self) -> ServiceAccount {
        let accounts: Api<ServiceAccount> =
            Api::namespaced(self.kube.client().await, "kube-system");
        let account = serde_json::from_value(json!({
            "metadata": {
                "name": "ctl",
                "labels": {"app.kubernetes.io/managed-by": "Helm"},
                "annotations": {ROLE_ANNOTATION: HELMS_ROLE, "meta.helm.sh/release-name": "lbc"}
            }
        }))
        .unwrap();
        let params = PostParams {
            field_manager: Some("helm".into()),
            ..Default::default()
        };
        accounts.create(&params, &account).await.unwrap()
    }

    async fn service_account(&self) -> Option<ServiceAccount> {
        Api::<ServiceAccount>::namespaced(self.kube.client().await, "kube-system")
            .get_opt("ctl")
            .await
            .unwrap()
    }

    async fn config_map(&self) -> Option<ConfigMap> {
        Api::<ConfigMap>::namespaced(self.kube.client().await, "kube-system")
            .get_opt("ctl-config")
            .await
            .unwrap()
    }
}

fn write_state(path: &Path, state: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(state).unwrap()).unwrap();
}

fn needles(run: &Run, needles: &[&str]) {
    for needle in needles {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helm_owned_object_is_refused_then_adopted_and_kept_on_delete() {
    let bed = Bed::new();
    let seeded = bed.helm_made_service_account().await;
    let state = json!({"schemaVersion": 1, "cluster": {"name": "demo", "region": "us-east-2"}});
    write_state(&bed.state_file(), &state);
    let state_bytes = std::fs::read(bed.state_file()).unwrap();
    let version = bed.kube.versions().await;

    // Refused: exit 2, naming the object, helm as the server named it, and --adopt.
    let refused = bed.run(&["apply", "--timeout", "20s"], true);
    assert_exit(&refused, 2);
    needles(
        &refused,
        &[
            "ServiceAccount kube-system/ctl",
            r#"conflict with "helm" using v1: .metadata.annotations.eks.amazonaws.com/role-arn"#,
            "--adopt",
            "Nothing was applied",
        ],
    );
    assert_eq!(
        bed.kube.versions().await,
        version,
        "nothing was written to the cluster"
    );
    let account = bed.service_account().await.unwrap();
    assert_eq!(account.resource_version(), seeded.resource_version());
    assert_eq!(account.annotations()[ROLE_ANNOTATION], HELMS_ROLE);
    assert!(bed.config_map().await.is_none(), "no other object was made");
    assert_eq!(
        std::fs::read(bed.state_file()).unwrap(),
        state_bytes,
        "the --state file is untouched"
    );

    // --adopt: taken over (our role now) and recorded as adopted; what we made is not.
    let adopted = bed.run(&["apply", "--adopt", "--timeout", "20s"], true);
    assert_exit(&adopted, 0);
    needles(&adopted, &["adopted ServiceAccount kube-system/ctl"]);
    let account = bed.service_account().await.unwrap();
    assert_eq!(
        account.annotations()[ROLE_ANNOTATION],
        "arn:aws:iam::123456789012:role/ours"
    );
    assert_eq!(
        account.annotations()["meta.helm.sh/release-name"],
        "lbc",
        "helm's other fields stay"
    );
    let recorded = bed.state()["deploy"]["appliedObjects"].clone();
    let entry = |kind: &str| {
        recorded
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("{kind} recorded: {recorded}"))
    };
    assert_eq!(entry("ServiceAccount")["adopted"], true);
    assert!(entry("ConfigMap").get("adopted").is_none(), "{recorded}");
    assert!(bed.config_map().await.is_some());

    // Unknown keys of a recorded object pass through; a later apply keeps the adoption.
    let mut state = bed.state();
    state["deploy"]["appliedObjects"][0]["note"] = json!("kept");
    write_state(&bed.state_file(), &state);
    let again = bed.run(&["apply", "--timeout", "20s"], true);
    assert_exit(&again, 0);
    let recorded = bed.state()["deploy"]["appliedObjects"][0].clone();
    assert_eq!(recorded["kind"], "ServiceAccount");
    assert_eq!(recorded["adopted"], true, "{recorded}");
    assert_eq!(recorded["note"], "kept", "{recorded}");

    // The adoption is marked on the object too, so a delete that lost the state keeps it.
    assert_eq!(
        bed.service_account().await.unwrap().annotations()["eks-fargate-alb/adopted"],
        "true"
    );
    let with_state = std::fs::read(bed.state_file()).unwrap();
    std::fs::remove_file(bed.state_file()).unwrap();
    let lost = bed.run(&["delete", "--timeout", "20s"], true);
    assert_exit(&lost, 0);
    needles(&lost, &["kept ServiceAccount kube-system/ctl"]);
    assert!(
        bed.service_account().await.is_some(),
        "kept without a state"
    );
    assert!(bed.config_map().await.is_none(), "ours is gone");
    std::fs::write(bed.state_file(), with_state).unwrap();

    // delete: the adopted account stays; what we made goes.
    let deleted = bed.run(&["delete", "--timeout", "20s"], false);
    assert_exit(&deleted, 0);
    needles(&deleted, &["kept ServiceAccount kube-system/ctl"]);
    assert!(
        bed.service_account().await.is_some(),
        "the adopted object stays"
    );
    assert!(bed.config_map().await.is_none(), "ours is gone");
    assert!(bed.state().get("deploy").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_with_no_state_refuses_what_it_cannot_prove_ours() {
    let bed = Bed::new();
    // Our ConfigMap, applied by eks-deploy's field manager; helm's ServiceAccount.
    let maps: Api<ConfigMap> = Api::namespaced(bed.kube.client().await, "kube-system");
    maps.patch(
        "ctl-config",
        &PatchParams::apply("eks-fargate-alb"),
        &kube::api::Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "ctl-config"}, "data": {"mode": "ours"}})),
    )
    .await
    .unwrap();
    bed.helm_made_service_account().await;
    write_state(&bed.state_file(), &json!({"schemaVersion": 1}));
    let version = bed.kube.versions().await;

    let refused = bed.run(&["delete", "--timeout", "20s"], true);
    assert_exit(&refused, 2);
    needles(
        &refused,
        &[
            "ServiceAccount kube-system/ctl",
            r#""helm" (Update)"#,
            "Nothing was deleted",
            "eks-deploy apply --adopt",
        ],
    );
    assert!(
        !refused
            .stderr
            .contains("ConfigMap kube-system/ctl-config ("),
        "ours is not refused: {}",
        refused.stderr
    );
    assert_eq!(bed.kube.versions().await, version, "nothing was deleted");
    assert!(bed.config_map().await.is_some() && bed.service_account().await.is_some());

    // Without helm's object, what the managedFields prove ours goes.
    Api::<ServiceAccount>::namespaced(bed.kube.client().await, "kube-system")
        .delete("ctl", &Default::default())
        .await
        .unwrap();
    let deleted = bed.run(&["delete", "--timeout", "20s"], true);
    assert_exit(&deleted, 0);
    assert!(bed.config_map().await.is_none());
}
