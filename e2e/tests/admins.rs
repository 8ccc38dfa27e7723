//! The teardown run by another identity than the cluster's creator (issue 18, point 4): a CI
//! role, a colleague, an SSO session that changed. On EKS only the creator reaches a new cluster
//! (`bootstrapClusterCreatorAdminPermissions`); anyone else gets 401 from the API server, so
//! `make clean` stopped at its first step (`eks-deploy delete`) and everything stayed billed.
//! `eks-cluster create --admin ARN` gives the role an access entry with the cluster admin policy;
//! then the same teardown, run as that role, removes everything.
//!
//! The bed: moto behind the hardened proxy (`HardAws`, with EKS's access entries), and the real
//! control plane as the cluster's API server (DescribeCluster reports its endpoint and CA,
//! `testbed::eks::serve_as_eks`), whose authenticator lets in only callers with an access entry
//! (`Settings::access_entries`). Every step reaches Kubernetes as on EKS: the state's endpoint
//! and CA, and an EKS token of the run's own credentials (no `--kubeconfig`).

use std::path::Path;
use std::process::Command;

use aws_credential_types::Credentials;
use eks_fa_e2e::{CLUSTER, bin_dir, run_with_stdin};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::Value;
use testbed::awsrules::AccessEntries;
use testbed::controlplane::Settings;
use testbed::eks::EksCluster;
use testbed::fargate::Profiles;
use testbed::hardened::HardAws;
use testbed::run::{Run, assert_exit};
use testbed::seed::SeededNetwork;
use testbed::sim::FargateSim;
use testbed::{Moto, REGION};

/// What the app stands for: a namespace the Fargate profile selects, a Deployment and a
/// ConfigMap.
const APP: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: game-2048}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: game-2048}
spec:
  replicas: 1
  selector: {matchLabels: {app: game}}
  template:
    metadata: {labels: {app: game}}
    spec:
      containers: [{name: app, image: "public.ecr.aws/nginx/nginx:1.27"}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: game-2048}
data: {level: "2048"}
"#;

struct Bed {
    moto: Moto,
    aws: HardAws,
    eks: EksCluster,
    network: SeededNetwork,
    work: tempfile::TempDir,
    bin: std::path::PathBuf,
}

impl Bed {
    async fn new() -> Bed {
        let moto = Moto::start();
        // One access-entry model for the proxy (the EKS API) and the authenticator.
        let entries = AccessEntries::new(&moto.endpoint);
        let eks = EksCluster::start_with(
            Settings {
                sts_endpoint: Some(moto.endpoint.clone()),
                access_entries: Some(entries.for_cluster(REGION, CLUSTER)),
                ..Settings::default()
            },
            FargateSim::DEFAULT_DELAY,
            Profiles::eks(&moto.sdk_config(REGION).await),
        )
        .await;
        let aws =
            HardAws::start_with_access(&moto, eks.kube.simulator_client().await, REGION, entries);
        testbed::eks::serve_as_eks(&aws.proxy, &eks.kube);
        let network = testbed::seed::network(&moto.sdk_config(REGION).await, CLUSTER).await;
        let work = tempfile::tempdir().expect("a work folder");
        std::fs::create_dir(work.path().join("app")).unwrap();
        std::fs::write(work.path().join("app/app.yaml"), APP).unwrap();
        Bed {
            moto,
            aws,
            eks,
            network,
            work,
            bin: bin_dir(),
        }
    }

    fn state(&self) -> String {
        self.work.path().join("state.json").display().to_string()
    }

    /// Runs `script` in bash (pipefail) as moto's default identity (the creator) or with the
    /// session `as_role`; `{bin}`, `{state}`, `{app}` are replaced.
    fn sh(&self, as_role: Option<&Credentials>, script: &str) -> Run {
        let script = script
            .replace("{bin}", &self.bin.display().to_string())
            .replace("{state}", &self.state())
            .replace("{app}", &self.work.path().join("app").display().to_string())
            .replace("{r}", REGION);
        let mut command = Command::new("bash");
        for key in Moto::UNSET {
            command.env_remove(key);
        }
        command.envs(self.aws.proxy.env(&self.moto));
        if let Some(c) = as_role {
            command
                .env("AWS_ACCESS_KEY_ID", c.access_key_id())
                .env("AWS_SECRET_ACCESS_KEY", c.secret_access_key())
                .env("AWS_SESSION_TOKEN", c.session_token().unwrap_or_default());
        }
        command.env(
            "HTTPS_PROXY",
            format!("http://127.0.0.1:{}", testbed::free_port()),
        );
        command.env("NO_PROXY", "127.0.0.1,localhost");
        command.args(["-o", "pipefail", "-c", &script]);
        run_with_stdin(command, "")
    }

    /// `eks-cluster create` on the bed's network, with `extra` flags.
    fn create(&self, extra: &str) -> Run {
        self.sh(
            None,
            &format!(
                "{{bin}}/eks-cluster --state {{state}} --region {{r}} --resume create --cluster {CLUSTER} --vpc-id {} --private-subnets {} --public-subnets {} {extra}",
                self.network.vpc_id,
                self.network.private_subnet_ids.join(","),
                self.network.public_subnet_ids.join(",")
            ),
        )
    }

    /// The first steps of `make clean` (the state file, `--resume` on each, as the Makefile
    /// runs them): the app, then the cluster.
    fn teardown(&self, as_role: &Credentials) -> Run {
        self.sh(
            Some(as_role),
            "{bin}/eks-deploy --state {state} --region {r} --resume delete --timeout 60s \
             && {bin}/eks-cluster --state {state} --region {r} --resume delete",
        )
    }

    fn state_json(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.state()).unwrap()).unwrap()
    }

    /// A role of the account, and a session of it.
    async fn ci_role(&self) -> (String, Credentials) {
        let config = self.moto.sdk_config(REGION).await;
        let role = aws_sdk_iam::Client::new(&config)
            .create_role()
            .path("/pipelines/")
            .role_name("ci-deployer")
            .assume_role_policy_document(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#,
            )
            .send()
            .await
            .expect("CreateRole")
            .role()
            .unwrap()
            .arn()
            .to_owned();
        let answer = aws_sdk_sts::Client::new(&config)
            .assume_role()
            .role_arn(&role)
            .role_session_name("pipeline-7")
            .send()
            .await
            .expect("AssumeRole");
        let c = answer.credentials().unwrap();
        let session = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "assumed",
        );
        (role, session)
    }

    async fn app_left(&self) -> bool {
        Api::<ConfigMap>::namespaced(self.eks.kube.client().await, "game-2048")
            .get_opt("settings")
            .await
            .expect("read the ConfigMap")
            .is_some()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_admin_tears_down_what_the_creator_made() {
    let bed = Bed::new().await;
    let (ci, session) = bed.ci_role().await;
    assert!(Path::new(&bed.bin.join("eks-deploy")).is_file());

    // The creator installs: the cluster, then the app, both through the cluster's endpoint.
    assert_exit(&bed.create(""), 0);
    let applied = bed.sh(
        None,
        "{bin}/eks-deploy --state {state} --region {r} apply --manifests {app} --timeout 60s",
    );
    assert_exit(&applied, 0);
    assert!(bed.app_left().await);

    // The CI role's teardown stops at its first step: 401, and nothing is deleted.
    let refused = bed.teardown(&session);
    assert_exit(&refused, 1);
    assert!(
        refused.stderr.contains("401 Unauthorized")
            && refused.stderr.contains("eks-cluster create --admin"),
        "{}",
        refused.stderr
    );
    assert!(bed.app_left().await, "nothing of the app was deleted");
    assert!(bed.state_json()["cluster"]["name"] == CLUSTER);
    assert!(bed.state_json()["error"]["step"] == "deploy");

    // The creator makes the CI role an administrator; the same teardown then goes through.
    assert_exit(&bed.create(&format!("--admin {ci}")), 0);
    assert_eq!(
        bed.state_json()["cluster"]["accessEntries"][0]["principalArn"],
        ci.as_str()
    );
    let torn_down = bed.teardown(&session);
    assert_exit(&torn_down, 0);
    assert!(!bed.app_left().await, "the app is gone");
    let state = bed.state_json();
    assert!(
        state.get("deploy").is_none() && state.get("cluster").is_none(),
        "{state}"
    );
    let sdk = aws_sdk_eks::Client::new(&bed.moto.sdk_config(REGION).await);
    let clusters = sdk.list_clusters().send().await.unwrap();
    assert!(clusters.clusters().is_empty(), "the cluster is gone");
    assert!(
        bed.eks.kube.requests().iter().any(|r| r.method == "DELETE"
            && r.user.contains(":assumed-role/ci-deployer/pipeline-7")
            && r.code < 300),
        "the CI role deleted the app"
    );
}
