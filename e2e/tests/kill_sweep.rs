//! Kill sweeps: every mutating step run with `--state FILE`, SIGKILLed right after each of its
//! mutating AWS calls went through (so the resource exists while its id never reached the
//! state), then run again. After each kill the state file is the old document or a complete
//! new one; the re-run exits 0 and ends with exactly what an uninterrupted run makes (nothing
//! twice); the teardown then leaves only what the test seeded.
//!
//! Swept: `eks-oidc ensure`, `irsa ensure`, `eks-sg-stack create`, then their deletes in
//! reverse order, on a seeded cluster; and `eks-cluster create` and `delete` on a brought
//! network. Each sweep prints its figures.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testbed::awsproxy::AwsProxy;
use testbed::controlplane::ControlPlane;
use testbed::fargate::Profiles;
use testbed::killsweep::{Inventory, KillSwitch, SweepReport};
use testbed::sim::FargateSim;
use testbed::{Moto, REGION, seed};

const CLUSTER: &str = "kill";

struct Bed {
    moto: Moto,
    proxy: AwsProxy,
    switch: KillSwitch,
    kube: ControlPlane,
    work: tempfile::TempDir,
    bin: PathBuf,
    policy: PathBuf,
    closed_port: u16,
    /// Keep the account between runs (the chain's teardown brings it back to the base) rather
    /// than resetting moto and seeding a cluster.
    keep_account: bool,
    _sim: Option<FargateSim>,
}

/// One step command: binary and arguments (after `--state FILE --region R`).
type Step = (&'static str, Vec<String>);

impl Bed {
    async fn new() -> Bed {
        let moto = Moto::start();
        let proxy = AwsProxy::in_front_of(&moto);
        let switch = KillSwitch::on(&proxy);
        let bed = Bed {
            moto,
            proxy,
            switch,
            kube: ControlPlane::start(),
            work: tempfile::tempdir().unwrap(),
            bin: eks_fa_e2e::bin_dir(),
            policy: Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../policies/aws-load-balancer-controller.json"),
            closed_port: testbed::free_port(),
            keep_account: false,
            _sim: None,
        };
        use k8s_openapi::api::core::v1::Namespace;
        let namespaces: kube::Api<Namespace> = kube::Api::all(bed.kube.client().await);
        namespaces
            .create(
                &Default::default(),
                &serde_json::from_value(serde_json::json!({"metadata": {"name": "kube-system"}}))
                    .unwrap(),
            )
            .await
            .ok();
        bed
    }

    fn state(&self) -> PathBuf {
        self.work.path().join("state.json")
    }

    fn install(&self) -> Vec<Step> {
        let kube = self.kube.kubeconfig().display().to_string();
        vec![
            (
                "eks-oidc",
                vec!["ensure".into(), "--cluster".into(), CLUSTER.into()],
            ),
            (
                "irsa",
                vec![
                    "ensure".into(),
                    "--cluster".into(),
                    CLUSTER.into(),
                    "--sa-name".into(),
                    "aws-load-balancer-controller".into(),
                    "--policy-document".into(),
                    self.policy.display().to_string(),
                    "--kubeconfig".into(),
                    kube,
                ],
            ),
            (
                "eks-sg-stack",
                vec!["create".into(), "--cluster".into(), CLUSTER.into()],
            ),
        ]
    }

    fn teardown(&self) -> Vec<Step> {
        let kube = self.kube.kubeconfig().display().to_string();
        vec![
            ("eks-sg-stack", vec!["delete".into()]),
            (
                "irsa",
                vec![
                    "delete".into(),
                    "--cluster".into(),
                    CLUSTER.into(),
                    "--sa-name".into(),
                    "aws-load-balancer-controller".into(),
                    "--kubeconfig".into(),
                    kube,
                ],
            ),
            ("eks-oidc", vec!["delete".into()]),
        ]
    }

    fn command(&self, step: &Step, resume: bool) -> Command {
        let mut command = Command::new(self.bin.join(step.0));
        for key in Moto::UNSET {
            command.env_remove(key);
        }
        command.envs(self.proxy.env(&self.moto));
        // moto's issuer is a public host: keep eks-oidc from reaching it.
        command.env(
            "HTTPS_PROXY",
            format!("http://127.0.0.1:{}", self.closed_port),
        );
        command.env("NO_PROXY", "127.0.0.1,localhost");
        command.args([
            "--state",
            self.state().to_str().unwrap(),
            "--region",
            REGION,
        ]);
        if resume {
            command.arg("--resume");
        }
        command
            .args(&step.1)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs a step to its end; panics unless it exits 0.
    fn run_ok(&self, step: &Step) {
        let output = self
            .command(step, true)
            .output()
            .unwrap_or_else(|e| panic!("{} runs: {e}", step.0));
        assert!(
            output.status.success(),
            "{} {:?} failed: {}",
            step.0,
            step.1,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A bed for `eks-cluster`: moto keeps a brought network (with the group EKS would tag),
    /// the cluster holds EKS's CoreDNS, and the simulator places pods by moto's profiles.
    async fn for_cluster() -> (Bed, seed::SeededNetwork) {
        let mut bed = Bed::new().await;
        bed.keep_account = true;
        let config = bed.moto.sdk_config(REGION).await;
        let network = seed::network(&config, CLUSTER).await;
        let client = bed.kube.client().await;
        let coredns: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "coredns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                "template": {
                    "metadata": {"labels": {"k8s-app": "kube-dns"}},
                    "spec": {"containers": [{"name": "coredns", "image": "coredns:v1.11"}]}
                }
            }
        }))
        .unwrap();
        kube::Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(
            client.clone(),
            "kube-system",
        )
        .create(&Default::default(), &coredns)
        .await
        .expect("seed coredns");
        bed._sim = Some(
            FargateSim::start(bed.kube.simulator_client().await, Profiles::eks(&config)).await,
        );
        (bed, network)
    }

    /// A fresh account: moto reset, the cluster seeded, no state file (or, keeping the account,
    /// only no state file).
    async fn fresh(&self) -> Inventory {
        self.switch.disarm();
        let _ = std::fs::remove_file(self.state());
        if self.keep_account {
            return self.inventory().await;
        }
        self.moto.reset();
        let _ = std::fs::remove_file(self.state());
        let config = self.moto.sdk_config(REGION).await;
        seed::cluster(&config, CLUSTER, true).await;
        Inventory::read(&config).await
    }

    async fn inventory(&self) -> Inventory {
        Inventory::read(&self.moto.sdk_config(REGION).await).await
    }

    /// Sweeps `target` (preceded by `before`, all run uninterrupted): for k = 1.. kills it on
    /// its k-th mutating call, checks the state file, re-runs it and compares the end state with
    /// an uninterrupted run's; then runs `after` and expects only the seeded base to be left.
    async fn sweep(&self, before: &[Step], target: &Step, after: &[Step]) -> SweepReport {
        // The uninterrupted run: the end state, and how many mutating calls it makes.
        let base = self.fresh().await;
        before.iter().for_each(|s| self.run_ok(s));
        self.switch.arm(usize::MAX, 0);
        self.run_ok(target);
        let mutating_calls = self.switch.seen();
        self.switch.disarm();
        let reference = self.inventory().await;
        after.iter().for_each(|s| self.run_ok(s));
        assert_eq!(
            self.inventory().await,
            base,
            "the uninterrupted chain cleans up"
        );
        assert!(mutating_calls > 0, "{} makes no mutating call", target.0);

        let mut report = SweepReport {
            mutating_calls,
            ..SweepReport::default()
        };
        let mut diverged = Vec::new();
        for k in 1..=mutating_calls {
            let base = self.fresh().await;
            before.iter().for_each(|s| self.run_ok(s));
            let old = std::fs::read_to_string(self.state()).unwrap_or_default();

            self.switch.arm(k, 0);
            let child = self
                .command(target, false)
                .spawn()
                .expect("the step starts");
            self.switch.arm(k, child.id());
            let output = wait_bounded(child, Duration::from_secs(120));
            let killed_on = self.switch.fired_on().unwrap_or_else(|| {
                panic!(
                    "{} was not killed on mutating call {k} (exit {:?}): {}",
                    target.0,
                    output.status.code(),
                    String::from_utf8_lossy(&output.stderr)
                )
            });
            self.switch.disarm();
            assert_eq!(output.status.code(), None, "died of the signal");
            report.kills += 1;
            report.killed_on.push(killed_on.clone());

            // The state file is the old document or a complete new one.
            let text = std::fs::read_to_string(self.state()).unwrap_or_default();
            if let Err(why) = testbed::statecheck::after_kill(&text, &old, &[section(target.0)]) {
                panic!(
                    "after a kill on {killed_on} the state file is neither the old document nor \
                     a complete one: {why}: {text:?}"
                );
            }

            // The same command again converges to the uninterrupted end state (counted apart
            // from the kill: the sweep fails at the end, naming every kill that did not).
            self.run_ok(target);
            let converged = self.inventory().await;
            if converged == reference {
                report.converged += 1;
            } else {
                diverged.push(format!(
                    "killed on {killed_on}: {converged:?} instead of {reference:?}"
                ));
            }

            after.iter().for_each(|s| self.run_ok(s));
            assert_eq!(
                self.inventory().await,
                base,
                "the teardown after a kill on {killed_on} leaves only the seeded base"
            );
        }
        let left: Vec<String> = self
            .kube
            .left_by_testbed()
            .await
            .iter()
            .filter(|o| !(o["kind"] == "Namespace" && o["metadata"]["name"] == "kube-system"))
            // EKS's own CoreDNS (seeded for the eks-cluster sweep).
            .filter(|o| {
                !o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("coredns"))
            })
            .map(|o| format!("{} {}", o["kind"], o["metadata"]["name"]))
            .collect();
        assert!(left.is_empty(), "Kubernetes objects left: {left:?}");
        eprintln!("sweep of {} {:?}: {report}", target.0, target.1);
        assert!(
            diverged.is_empty(),
            "{} {:?}: re-runs after a kill that did not end as an uninterrupted run: {diverged:#?}",
            target.0,
            target.1
        );
        report
    }
}

/// The state section of the step binary `bin`.
fn section(bin: &str) -> &'static str {
    common::steps::STEPS
        .iter()
        .find(|s| s.binary == bin)
        .unwrap_or_else(|| panic!("{bin} is not in the step registry"))
        .section
}

/// Waits for the child at most `limit` (then kills it and fails).
fn wait_bounded(child: std::process::Child, limit: Duration) -> std::process::Output {
    let pid = child.id();
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(output)) => output,
        _ => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("the step did not end within {:?}", started.elapsed());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ensure_killed_at_every_mutating_call_converges() {
    let bed = Bed::new().await;
    let install = bed.install();
    let teardown = bed.teardown();
    let mut total = SweepReport::default();
    for (i, target) in install.iter().enumerate() {
        // Teardown of what is up after `target`: the deletes of steps 0..=i, in reverse.
        let after: Vec<Step> = teardown[teardown.len() - 1 - i..].to_vec();
        let report = bed.sweep(&install[..i], target, &after).await;
        total.mutating_calls += report.mutating_calls;
        total.kills += report.kills;
        total.converged += report.converged;
    }
    eprintln!("ensure sweeps in all: {total}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_delete_killed_at_every_mutating_call_converges() {
    let bed = Bed::new().await;
    let install = bed.install();
    let teardown = bed.teardown();
    let mut total = SweepReport::default();
    for (i, target) in teardown.iter().enumerate() {
        let mut before = install.clone();
        before.extend_from_slice(&teardown[..i]);
        let report = bed.sweep(&before, target, &teardown[i + 1..]).await;
        total.mutating_calls += report.mutating_calls;
        total.kills += report.kills;
        total.converged += report.converged;
    }
    eprintln!("delete sweeps in all: {total}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks_cluster_create_and_delete_killed_at_every_mutating_call_converge() {
    let (bed, network) = Bed::for_cluster().await;
    let kube = bed.kube.kubeconfig().display().to_string();
    let create: Step = (
        "eks-cluster",
        vec![
            "create".into(),
            "--cluster".into(),
            CLUSTER.into(),
            "--vpc-id".into(),
            network.vpc_id.clone(),
            "--private-subnets".into(),
            network.private_subnet_ids.join(","),
            "--public-subnets".into(),
            network.public_subnet_ids.join(","),
            "--kubeconfig".into(),
            kube,
        ],
    );
    let delete: Step = ("eks-cluster", vec!["delete".into()]);
    let made = bed.sweep(&[], &create, std::slice::from_ref(&delete)).await;
    let removed = bed.sweep(std::slice::from_ref(&create), &delete, &[]).await;
    eprintln!("eks-cluster sweeps: create {made}; delete {removed}");
}
