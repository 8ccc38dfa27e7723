//! The whole pipeline as users chain it in a shell, on the local test bed: moto for AWS, the
//! Kubernetes stand-in with simulators of the cluster and of the AWS Load Balancer Controller.
//! The binaries are the workspace's own (`make test` builds them first).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use testbed::albsim::{AlbControllerSim, EndpointsSim};
use testbed::kubeapi::KubeApi;
use testbed::run::{Run, assert_exit};
use testbed::sim::DeploymentSim;
use testbed::{Moto, REGION};

const CLUSTER: &str = "e2e";

/// The folder of the workspace's binaries (next to this test's own executable).
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf();
    for bin in [
        "eks-cluster",
        "eks-oidc",
        "irsa",
        "eks-sg-stack",
        "eks-patch",
        "eks-deploy",
    ] {
        assert!(
            dir.join(bin).is_file(),
            "{} is missing: run `make test` (it builds the binaries first) or `cargo build --bins`",
            dir.join(bin).display()
        );
    }
    dir
}

struct Bed {
    moto: Moto,
    kube: KubeApi,
    alb: AlbControllerSim,
    deployments: DeploymentSim,
    _endpoints: EndpointsSim,
    work: tempfile::TempDir,
    bin: PathBuf,
}

impl Bed {
    async fn new() -> Bed {
        let moto = Moto::start();
        let kube = KubeApi::start();
        let client = kube.client().await;
        let alb =
            AlbControllerSim::start_shared(client.clone(), AlbControllerSim::DEFAULT_DELAY, REGION)
                .await
                .expect("the ALB simulator");
        Bed {
            deployments: DeploymentSim::start(client.clone()),
            _endpoints: EndpointsSim::start(client),
            alb,
            moto,
            kube,
            work: tempfile::tempdir().unwrap(),
            bin: bin_dir(),
        }
    }

    /// Runs a shell pipeline (with `pipefail`); `{bin}`, `{kube}`, `{work}` and `{alb}` are
    /// replaced by the binaries' folder, the kubeconfig, a work folder and the ALB address.
    fn pipe(&self, script: &str, stdin: &str) -> Run {
        let script = script
            .replace("{bin}", &self.bin.display().to_string())
            .replace("{kube}", &self.kube.kubeconfig().display().to_string())
            .replace("{work}", &self.work.path().display().to_string())
            .replace(
                "{alb}",
                &format!("127.0.0.1:{}", self.alb.shared_port().unwrap()),
            )
            .replace(
                "{policy}",
                &Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../policies/aws-load-balancer-controller.json")
                    .display()
                    .to_string(),
            );
        let mut command = shell(&self.moto);
        command.args(["-o", "pipefail", "-c", &script]);
        run_with_stdin(command, stdin)
    }

    async fn aws(&self) -> sdk::Sdk {
        sdk::Sdk::new(&self.moto.sdk_config(REGION).await)
    }
}

/// `bash` wired to moto, with a closed loopback proxy so nothing reaches outside.
fn shell(moto: &Moto) -> Command {
    let mut command = Command::new("bash");
    for key in Moto::UNSET {
        command.env_remove(key);
    }
    command.envs(moto.env());
    command.env(
        "HTTPS_PROXY",
        format!("http://127.0.0.1:{}", testbed::free_port()),
    );
    command.env("NO_PROXY", "127.0.0.1,localhost");
    command
}

fn run_with_stdin(mut command: Command, stdin: &str) -> Run {
    use std::io::Write;
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("bash runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    Run::from_output(child.wait_with_output().unwrap())
}

mod sdk {
    /// The clients the checks use.
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
}

const INSTALL: &str = "{bin}/eks-oidc ensure \
    | {bin}/irsa ensure --sa-name aws-load-balancer-controller --policy-document {policy} --kubeconfig {kube} \
    | {bin}/eks-sg-stack create \
    | {bin}/eks-patch --out {work}/patched \
    | {bin}/eks-deploy apply --kubeconfig {kube} --timeout 60s --connect-to ::{alb}";

const TEARDOWN: &str = "{bin}/eks-deploy delete --kubeconfig {kube} --resume \
    | {bin}/eks-sg-stack delete \
    | {bin}/irsa delete --sa-name aws-load-balancer-controller --kubeconfig {kube} \
    | {bin}/eks-oidc delete \
    | {bin}/eks-cluster delete";

async fn create_cluster(bed: &Bed) -> Value {
    let made = bed.pipe(
        &format!(
            "{{bin}}/eks-cluster --region {REGION} create --cluster {CLUSTER} --namespace default --namespace kube-system --namespace game-2048 --kubeconfig {{kube}}"
        ),
        "",
    );
    assert_exit(&made, 0);
    let state = made.json();
    // moto's EKS makes no cluster security group; EKS would, tagged with the cluster's name.
    let config = bed.moto.sdk_config(REGION).await;
    let vpc_id = state["cluster"]["vpcId"].as_str().unwrap();
    testbed::seed::tagged_group(&config, vpc_id, CLUSTER).await;
    state
}

/// After the teardown: nothing of ours in moto or the stand-in.
async fn assert_nothing_left(bed: &Bed) {
    let sdk = bed.aws().await;
    let stacks = sdk.cfn.describe_stacks().send().await.unwrap();
    let live: Vec<&str> = stacks
        .stacks()
        .iter()
        .filter(|s| s.stack_status().map(|s| s.as_str()) != Some("DELETE_COMPLETE"))
        .filter_map(|s| s.stack_name())
        .collect();
    assert!(live.is_empty(), "stacks left: {live:?}");
    let roles = sdk.iam.list_roles().send().await.unwrap();
    assert!(roles.roles().is_empty(), "roles left: {:?}", roles.roles());
    let providers = sdk
        .iam
        .list_open_id_connect_providers()
        .send()
        .await
        .unwrap();
    assert!(providers.open_id_connect_provider_list().is_empty());
    let clusters = sdk.eks.list_clusters().send().await.unwrap();
    assert!(clusters.clusters().is_empty());
    let groups = sdk.ec2.describe_security_groups().send().await.unwrap();
    let albs: Vec<&str> = groups
        .security_groups()
        .iter()
        .filter_map(|g| g.group_name())
        .filter(|n| n.starts_with("alb-securitygroup"))
        .collect();
    assert!(albs.is_empty(), "ALB security groups left: {albs:?}");
    let ours: Vec<String> = bed
        .kube
        .created_objects()
        .iter()
        .filter(|o| o["kind"] != "Endpoints")
        .map(|o| format!("{} {}", o["kind"], o["metadata"]["name"]))
        .collect();
    assert!(ours.is_empty(), "Kubernetes objects left: {ours:?}");
}

/// moto 5.2.5 cannot delete the network stack's NAT gateway, EIP, IGW, routes (see
/// cluster/tests/cluster.rs::moto_network_stack_gaps_are_known): `eks-cluster delete` reports
/// it; a resumed delete then finishes. On AWS the first delete ends it.
fn finish_cluster_delete(bed: &Bed, teardown: &Run) -> Run {
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
    let resumed = bed.pipe("{bin}/eks-cluster delete --resume", &teardown.stdout);
    assert_exit(&resumed, 0);
    resumed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_as_a_pipe_answers_200_and_teardown_leaves_nothing() {
    let bed = Bed::new().await;
    let cluster = create_cluster(&bed).await;

    let installed = bed.pipe(INSTALL, &cluster.to_string());
    assert_exit(&installed, 0);
    let state = installed.json();
    for section in [
        "cluster", "oidc", "irsa", "sgStack", "patch", "deploy", "timings",
    ] {
        assert!(
            state.get(section).is_some(),
            "no {section} section: {state}"
        );
    }
    assert!(state.get("error").is_none());
    let url = state["deploy"]["url"].as_str().unwrap();
    assert!(url.ends_with(".elb.amazonaws.com/"), "{url}");
    assert_eq!(
        state["patch"]["securityGroupId"],
        state["sgStack"]["securityGroupId"]
    );
    assert_eq!(state["patch"]["roleArn"], state["irsa"][0]["roleArn"]);
    for step in ["cluster", "oidc", "irsa", "sgStack", "patch", "deploy"] {
        assert!(state["timings"][step].is_object(), "no timing for {step}");
    }

    // The same pipe again changes nothing.
    let version = bed.kube.resource_version();
    let again = bed.pipe(INSTALL, &installed.stdout);
    assert_exit(&again, 0);
    assert_eq!(
        bed.kube.resource_version(),
        version,
        "a second install writes nothing to Kubernetes"
    );

    let teardown = bed.pipe(TEARDOWN, &again.stdout);
    let done = finish_cluster_delete(&bed, &teardown);
    let after = done.json();
    for section in ["cluster", "oidc", "irsa", "sgStack", "deploy"] {
        assert!(
            after.get(section).is_none(),
            "{section} left in the state: {after}"
        );
    }
    assert_nothing_left(&bed).await;
    assert_eq!(bed.alb.count(), 0, "the ALB is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_mid_pipe_stops_it_and_teardown_still_cleans_up() {
    let bed = Bed::new().await;
    let cluster = create_cluster(&bed).await;
    // The controller is "down": its Deployment never becomes available in the stand-in, so
    // eks-deploy's wait fails; nothing after it runs, and the state says what was made.
    bed.deployments.stop();
    let installed = bed.pipe(
        &INSTALL.replace("--timeout 60s", "--timeout 3s"),
        &cluster.to_string(),
    );
    assert_exit(&installed, 1);
    let state = installed.json();
    assert_eq!(state["error"]["step"], "deploy", "{}", installed.stderr);
    assert!(
        state["deploy"]["appliedObjects"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );

    let teardown = bed.pipe(TEARDOWN, &installed.stdout);
    finish_cluster_delete(&bed, &teardown);
    assert_nothing_left(&bed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_install_then_make_clean() {
    let bed = Bed::new().await;
    let network = testbed::seed::network(&bed.moto.sdk_config(REGION).await, CLUSTER).await;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let state = bed.work.path().join("state.json");
    let vars = [
        "BUILD=".to_owned(),
        format!("BIN={}", bed.bin.display()),
        format!("STATE={}", state.display()),
        format!("CLUSTER={CLUSTER}"),
        format!("REGION={REGION}"),
        format!("KUBECONFIG_FILE={}", bed.kube.kubeconfig().display()),
        format!("OUT={}", bed.work.path().join("patched").display()),
        format!("CONNECT_TO=::127.0.0.1:{}", bed.alb.shared_port().unwrap()),
        format!("VPC_ID={}", network.vpc_id),
        format!("PRIVATE_SUBNETS={}", network.private_subnet_ids.join(",")),
        format!("PUBLIC_SUBNETS={}", network.public_subnet_ids.join(",")),
    ];
    let make = |target: &str| {
        let mut command = shell(&bed.moto);
        command.arg("-c").arg(format!(
            "make --no-print-directory -C '{}' {target} \"$@\"",
            repo.display()
        ));
        command.arg("make").args(&vars);
        run_with_stdin(command, "")
    };

    let installed = make("install");
    assert_exit(&installed, 0);
    assert!(
        installed.stdout.contains("install took 0h:"),
        "{}",
        installed.stdout
    );
    let text = std::fs::read_to_string(&state).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(
        doc["deploy"]["url"]
            .as_str()
            .is_some_and(|u| u.ends_with(".elb.amazonaws.com/")),
        "{doc}"
    );
    assert_eq!(doc["cluster"]["vpcId"], network.vpc_id.as_str());
    assert_eq!(doc["cluster"]["networkCreatedByUs"], false);
    assert!(doc.get("error").is_none());

    let cleaned = make("clean");
    assert_exit(&cleaned, 0);
    assert!(
        cleaned.stdout.contains("clean took 0h:"),
        "{}",
        cleaned.stdout
    );
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    for section in ["cluster", "oidc", "irsa", "sgStack", "deploy"] {
        assert!(after.get(section).is_none(), "{section} left: {after}");
    }
    assert_nothing_left(&bed).await;
    let vpcs = bed
        .aws()
        .await
        .ec2
        .describe_vpcs()
        .vpc_ids(&network.vpc_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        vpcs.vpcs().len(),
        1,
        "the brought VPC is the user's and stays"
    );
}
