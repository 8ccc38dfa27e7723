//! Dev-only crate for the end-to-end tests in `tests/`: the whole pipeline of step binaries,
//! chained in a shell pipe, on the local test bed. This library is the bed those tests share:
//! moto behind the hardened AWS proxy ([`testbed::hardened`]), the real Kubernetes control plane
//! with the simulators of what EKS runs beside it (Fargate by moto's profiles, the controller's
//! webhook server; [`testbed::eks`]) and of the AWS Load Balancer Controller, optionally with
//! faults on the way to either.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use testbed::albsim::AlbControllerSim;
use testbed::controlplane::Settings;
use testbed::eks::EksCluster;
use testbed::fargate::Profiles;
use testbed::faults::{FaultPlan, Faults};
use testbed::hardened::HardAws;
use testbed::kubefaults::{KubeFaultPlan, KubeFaultProxy};
use testbed::run::{Run, assert_exit};
use testbed::{Moto, REGION};

/// The cluster the tests make.
pub const CLUSTER: &str = "e2e";

/// The install pipe after `eks-cluster create` (placeholders: see [`Bed::pipe`]).
pub const INSTALL: &str = "{bin}/eks-oidc ensure \
    | {bin}/irsa ensure --sa-name aws-load-balancer-controller --policy-document {policy} --kubeconfig {kube} \
    | {bin}/eks-sg-stack create \
    | {bin}/eks-patch --out {work}/patched \
    | {bin}/eks-deploy apply --kubeconfig {kube} --timeout 60s --connect-to ::{alb}";

/// The teardown pipe, the exact reverse.
pub const TEARDOWN: &str = "{bin}/eks-deploy delete --kubeconfig {kube} --resume \
    | {bin}/eks-sg-stack delete \
    | {bin}/irsa delete --sa-name aws-load-balancer-controller --kubeconfig {kube} \
    | {bin}/eks-oidc delete \
    | {bin}/eks-cluster delete";

/// The folder of the workspace's binaries (next to the test's own executable); panics with
/// the way to build them when one is missing.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf();
    for bin in common::steps::binaries() {
        assert!(
            dir.join(bin).is_file(),
            "{} is missing: run `make test` (it builds the binaries first) or `cargo build --bins`",
            dir.join(bin).display()
        );
    }
    dir
}

/// Faults to put on the way to AWS and to the Kubernetes API.
#[derive(Debug, Clone, Default)]
pub struct FaultSetting {
    pub aws: Option<FaultPlan>,
    pub kube: Option<KubeFaultPlan>,
}

/// The test bed of one test.
#[derive(Debug)]
pub struct Bed {
    pub moto: Moto,
    pub aws: HardAws,
    pub alb: AlbControllerSim,
    pub aws_faults: Option<Faults>,
    pub kube_faults: Option<KubeFaultProxy>,
    /// The cluster: `eks.kube` is the control plane, `eks.fargate` its pods' simulator.
    pub eks: EksCluster,
    pub work: tempfile::TempDir,
    pub bin: PathBuf,
}

impl Bed {
    /// A bed with no faults.
    pub async fn new() -> Bed {
        Bed::with_faults(FaultSetting::default()).await
    }

    /// A bed whose binaries meet `faults` (the simulators and the checks go straight to moto
    /// and the control plane).
    pub async fn with_faults(faults: FaultSetting) -> Bed {
        let moto = Moto::start();
        // The cluster eks-cluster makes in moto: its pods run on Fargate by the profiles moto
        // holds, and EKS tokens name who moto's STS says.
        let eks = EksCluster::start_with(
            Settings {
                sts_endpoint: Some(moto.endpoint.clone()),
                ..Settings::default()
            },
            testbed::sim::FargateSim::DEFAULT_DELAY,
            Profiles::eks(&moto.sdk_config(REGION).await),
        )
        .await;
        let client = eks.kube.simulator_client().await;
        let aws = HardAws::start(&moto, client.clone(), REGION);
        let aws_faults = faults.aws.map(|plan| Faults::install(&aws.proxy, plan));
        let kube_faults = faults
            .kube
            .map(|plan| KubeFaultProxy::start(&eks.kube, plan));
        // The controller the pipeline deploys: configured by its Deployment, it resolves each
        // ALB's subnets in moto, as the real one does in EC2.
        let alb = AlbControllerSim::launch(
            client,
            testbed::albsim::Options {
                region: REGION.into(),
                shared: true,
                aws_endpoint: Some(moto.endpoint.clone()),
                ..testbed::albsim::Options::default()
            },
        )
        .await
        .expect("the ALB simulator");
        Bed {
            alb,
            aws,
            aws_faults,
            kube_faults,
            moto,
            eks,
            work: tempfile::tempdir().expect("a work folder"),
            bin: bin_dir(),
        }
    }

    /// The kubeconfig the binaries get: through the fault proxy when there is one.
    pub fn kubeconfig(&self) -> PathBuf {
        match &self.kube_faults {
            Some(proxy) => proxy.kubeconfig(),
            None => self.eks.kube.kubeconfig(),
        }
    }

    /// `host:port` of the shared simulated ALB.
    pub fn alb_address(&self) -> String {
        format!(
            "127.0.0.1:{}",
            self.alb.shared_port().expect("a shared ALB")
        )
    }

    /// Runs a shell pipeline (with `pipefail`); `{bin}`, `{kube}`, `{work}`, `{alb}` and
    /// `{policy}` are replaced by the binaries' folder, the kubeconfig, a work folder, the ALB
    /// address and the controller's IAM policy.
    pub fn pipe(&self, script: &str, stdin: &str) -> Run {
        let script = script
            .replace("{bin}", &self.bin.display().to_string())
            .replace("{kube}", &self.kubeconfig().display().to_string())
            .replace("{work}", &self.work.path().display().to_string())
            .replace("{alb}", &self.alb_address())
            .replace(
                "{policy}",
                &Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../policies/aws-load-balancer-controller.json")
                    .display()
                    .to_string(),
            );
        let mut command = self.shell();
        command.args(["-o", "pipefail", "-c", &script]);
        run_with_stdin(command, stdin)
    }

    /// `bash` wired to AWS through the hardened proxy, with a closed loopback HTTPS proxy so
    /// nothing reaches outside.
    pub fn shell(&self) -> Command {
        let mut command = Command::new("bash");
        for key in Moto::UNSET {
            command.env_remove(key);
        }
        command.envs(self.aws.proxy.env(&self.moto));
        command.env(
            "HTTPS_PROXY",
            format!("http://127.0.0.1:{}", testbed::free_port()),
        );
        command.env("NO_PROXY", "127.0.0.1,localhost");
        command
    }

    /// SDK clients straight to moto, for the checks.
    pub async fn sdk(&self) -> Sdk {
        Sdk::new(&self.moto.sdk_config(REGION).await)
    }

    /// `eks-cluster create` with the defaults (the README's pipe), plus the cluster security
    /// group EKS would make (moto's EKS makes none).
    pub async fn create_cluster(&self) -> Value {
        let made = self.pipe(
            &format!(
                "{{bin}}/eks-cluster --region {REGION} create --cluster {CLUSTER} --kubeconfig {{kube}}"
            ),
            "",
        );
        assert_exit(&made, 0);
        let state = made.json();
        let config = self.moto.sdk_config(REGION).await;
        let vpc_id = state["cluster"]["vpcId"].as_str().expect("a VPC id");
        testbed::seed::tagged_group(&config, vpc_id, CLUSTER).await;
        state
    }

    /// moto 5.2.5 cannot delete the network stack's NAT gateway, EIP, IGW, routes (see
    /// cluster/tests/cluster.rs::moto_network_stack_gaps_are_known): `eks-cluster delete`
    /// reports it; a resumed delete then finishes. On AWS the first delete ends it.
    pub fn finish_cluster_delete(&self, teardown: &Run) -> Run {
        if teardown.code == 0 {
            return Run {
                code: 0,
                stdout: teardown.stdout.clone(),
                stderr: String::new(),
            };
        }
        let state = teardown.json();
        let message = state["error"]["message"].as_str().unwrap_or_default();
        assert!(
            state["error"]["step"] == "cluster" && message.contains("DependencyViolation"),
            "only moto's known network stack gap may stop the teardown: {}",
            teardown.stderr
        );
        let resumed = self.pipe("{bin}/eks-cluster delete --resume", &teardown.stdout);
        assert_exit(&resumed, 0);
        resumed
    }

    /// After the teardown: nothing of ours in moto or the cluster.
    pub async fn assert_nothing_left(&self) {
        let sdk = self.sdk().await;
        let stacks = sdk
            .cfn
            .describe_stacks()
            .send()
            .await
            .expect("DescribeStacks");
        let live: Vec<&str> = stacks
            .stacks()
            .iter()
            .filter(|s| s.stack_status().map(|s| s.as_str()) != Some("DELETE_COMPLETE"))
            .filter_map(|s| s.stack_name())
            .collect();
        assert!(live.is_empty(), "stacks left: {live:?}");
        let roles = sdk.iam.list_roles().send().await.expect("ListRoles");
        assert!(roles.roles().is_empty(), "roles left: {:?}", roles.roles());
        let providers = sdk
            .iam
            .list_open_id_connect_providers()
            .send()
            .await
            .expect("ListOpenIDConnectProviders");
        assert!(providers.open_id_connect_provider_list().is_empty());
        let clusters = sdk.eks.list_clusters().send().await.expect("ListClusters");
        assert!(clusters.clusters().is_empty());
        let groups = sdk
            .ec2
            .describe_security_groups()
            .send()
            .await
            .expect("DescribeSecurityGroups");
        let albs: Vec<&str> = groups
            .security_groups()
            .iter()
            .filter_map(|g| g.group_name())
            .filter(|n| n.starts_with("alb-securitygroup"))
            .collect();
        assert!(albs.is_empty(), "ALB security groups left: {albs:?}");
        let ours: Vec<String> = self
            .eks
            .kube
            .left_by_testbed()
            .await
            .iter()
            .map(|o| format!("{} {}", o["kind"], o["metadata"]["name"]))
            .collect();
        assert!(ours.is_empty(), "Kubernetes objects left: {ours:?}");
    }
}

/// Runs `command` with `stdin`, capturing both streams.
pub fn run_with_stdin(mut command: Command, stdin: &str) -> Run {
    use std::io::Write;
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("bash runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin written");
    Run::from_output(child.wait_with_output().expect("the pipe ends"))
}

/// The clients the checks use.
#[derive(Debug)]
pub struct Sdk {
    pub cfn: aws_sdk_cloudformation::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub eks: aws_sdk_eks::Client,
    pub iam: aws_sdk_iam::Client,
}

impl Sdk {
    pub fn new(config: &aws_config::SdkConfig) -> Sdk {
        Sdk {
            cfn: aws_sdk_cloudformation::Client::new(config),
            ec2: aws_sdk_ec2::Client::new(config),
            eks: aws_sdk_eks::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
        }
    }
}
