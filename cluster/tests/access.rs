//! The cluster's administrators (issue 18, point 4): `eks-cluster create --admin ARN` gives an
//! IAM role or user an EKS access entry with `AmazonEKSClusterAdminPolicy` on the cluster scope,
//! so another identity than the creator (a CI role, a colleague, a new SSO session) can reach the
//! cluster and tear it down. The real binary against moto behind the AWS proxy with EKS's access
//! entries (`testbed::awsrules::AccessEntries`; moto has none) and the cluster settings EKS
//! reports (`ClusterConfig`), and the real API server whose authenticator maps EKS token callers
//! through those entries (`Settings::access_entries`): a caller without an entry gets 401.
//!
//! `EKS_FA_CLUSTER_BIN` runs these tests against another build of the binary (how they were
//! seen failing without the change).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_credential_types::Credentials;
use aws_sdk_eks::types::{AuthenticationMode, CreateAccessConfigRequest, VpcConfigRequest};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use testbed::awsproxy::{AwsProxy, Verdict};
use testbed::awsrules::{AccessEntries, ClusterConfig};
use testbed::controlplane::authn::Refusal;
use testbed::controlplane::{ControlPlane, Settings};
use testbed::fargate::Profiles;
use testbed::run::{Run, assert_exit};
use testbed::seed::SeededNetwork;
use testbed::sim::FargateSim;
use testbed::{Moto, REGION};

fn bin() -> String {
    std::env::var("EKS_FA_CLUSTER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_eks-cluster").to_owned())
}

const ACCOUNT: &str = "123456789012";
const ADMIN_POLICY: &str = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy";

/// moto behind the proxy with EKS's access entries and cluster settings, every cluster's API
/// served by one real control plane (DescribeCluster reports its endpoint and CA, as EKS
/// reports the cluster's own), whose authenticator lets in only callers with an entry on
/// `cluster`.
struct Bed {
    moto: Moto,
    proxy: AwsProxy,
    entries: AccessEntries,
    kube: Option<(ControlPlane, FargateSim)>,
    network: SeededNetwork,
    /// While set, the next CreateAccessEntry is carried out and its answer lost (then unset).
    lose_next_entry_answer: Arc<AtomicBool>,
}

impl Bed {
    /// `kube`: the cluster whose API the control plane serves (None: no control plane).
    async fn new(kube: Option<&str>) -> Bed {
        let moto = Moto::start();
        let proxy = AwsProxy::in_front_of(&moto);
        let entries = AccessEntries::new(&moto.endpoint);
        let lose_next_entry_answer = Arc::new(AtomicBool::new(false));
        lose_create_entry_answer(&proxy, &moto, lose_next_entry_answer.clone()).await;
        ClusterConfig::new(0).install(&proxy, &moto.endpoint);
        entries.install(&proxy);
        let kube = match kube {
            Some(cluster) => {
                let kube = ControlPlane::start_with(Settings {
                    sts_endpoint: Some(moto.endpoint.clone()),
                    access_entries: Some(entries.for_cluster(REGION, cluster)),
                    ..Settings::default()
                });
                seed_coredns(&kube).await;
                testbed::eks::serve_as_eks(&proxy, &kube);
                let sim = FargateSim::start(
                    kube.simulator_client().await,
                    Profiles::eks(&moto.sdk_config(REGION).await),
                )
                .await;
                Some((kube, sim))
            }
            None => None,
        };
        let network = testbed::seed::network(&moto.sdk_config(REGION).await, "access").await;
        Bed {
            moto,
            proxy,
            entries,
            kube,
            network,
            lose_next_entry_answer,
        }
    }

    fn kube(&self) -> &ControlPlane {
        &self.kube.as_ref().expect("a control plane").0
    }

    /// Runs the binary with `args` (after `--region`), as moto's default identity or with the
    /// session `credentials`.
    fn run_as(&self, credentials: Option<&Credentials>, args: &[&str], stdin: &str) -> Run {
        let mut cmd = self.proxy.command(&self.moto, bin());
        if let Some(c) = credentials {
            cmd.env("AWS_ACCESS_KEY_ID", c.access_key_id())
                .env("AWS_SECRET_ACCESS_KEY", c.secret_access_key())
                .env("AWS_SESSION_TOKEN", c.session_token().unwrap_or_default());
        }
        let mut all = vec!["--region", REGION];
        all.extend_from_slice(args);
        testbed::run::run(cmd.args(&all), stdin)
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_as(None, args, "")
    }

    /// The brought network's flags.
    fn network_flags(&self) -> Vec<String> {
        vec![
            "--vpc-id".into(),
            self.network.vpc_id.clone(),
            "--private-subnets".into(),
            self.network.private_subnet_ids.join(","),
            "--public-subnets".into(),
            self.network.public_subnet_ids.join(","),
        ]
    }

    async fn config(&self) -> aws_config::SdkConfig {
        self.moto.sdk_config(REGION).await
    }

    /// EKS as the binaries see it: through the proxy and its rules.
    async fn eks_via_proxy(&self) -> aws_sdk_eks::Client {
        let config = aws_sdk_eks::config::Builder::from(&self.config().await)
            .endpoint_url(&self.proxy.endpoint)
            .build();
        aws_sdk_eks::Client::from_conf(config)
    }

    /// Makes the IAM role `name` under `path` and returns its ARN.
    async fn role(&self, path: &str, name: &str) -> String {
        let made = aws_sdk_iam::Client::new(&self.config().await)
            .create_role()
            .path(path)
            .role_name(name)
            .assume_role_policy_document(format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"sts:AssumeRole"}}]}}"#
            ))
            .send()
            .await
            .expect("CreateRole");
        made.role().unwrap().arn().to_owned()
    }

    /// Makes the IAM user `name` and returns its ARN.
    async fn user(&self, name: &str) -> String {
        let made = aws_sdk_iam::Client::new(&self.config().await)
            .create_user()
            .user_name(name)
            .send()
            .await
            .expect("CreateUser");
        made.user().unwrap().arn().to_owned()
    }

    /// Credentials of a session of the role `arn`.
    async fn assume(&self, arn: &str, session: &str) -> Credentials {
        let answer = aws_sdk_sts::Client::new(&self.config().await)
            .assume_role()
            .role_arn(arn)
            .role_session_name(session)
            .send()
            .await
            .expect("AssumeRole");
        let c = answer.credentials().unwrap();
        Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "assumed",
        )
    }

    /// Someone else's cluster `name`, made through the proxy (so EKS's rules know its creator
    /// and mode) on the bed's network; `mode` None: no access config sent (EKS: CONFIG_MAP).
    async fn foreign_cluster(&self, name: &str, mode: Option<AuthenticationMode>) {
        let mut create = self
            .eks_via_proxy()
            .await
            .create_cluster()
            .name(name)
            .version("1.35")
            .role_arn(format!(
                "arn:aws:iam::{ACCOUNT}:role/someone-elses-cluster-role"
            ))
            .resources_vpc_config(
                VpcConfigRequest::builder()
                    .set_subnet_ids(Some(self.network.private_subnet_ids.clone()))
                    .build(),
            );
        if let Some(mode) = mode {
            create = create.access_config(
                CreateAccessConfigRequest::builder()
                    .authentication_mode(mode)
                    .bootstrap_cluster_creator_admin_permissions(true)
                    .build(),
            );
        }
        create.send().await.expect("someone's CreateCluster");
    }

    /// The principals of the cluster's access entries.
    fn principals(&self, cluster: &str) -> Vec<String> {
        self.entries
            .entries(REGION, cluster)
            .into_iter()
            .map(|e| e.principal_arn)
            .collect()
    }

    /// The calls so far that may change something, then forgets them.
    fn take_mutating(&self) -> Vec<String> {
        let calls = self.proxy.mutating_calls();
        self.proxy.clear_calls();
        calls
    }
}

/// EKS's CoreDNS Deployment, still on EC2 (eks-cluster rolls it onto Fargate).
async fn seed_coredns(kube: &ControlPlane) {
    let coredns: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "coredns", "namespace": "kube-system"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
            "template": {
                "metadata": {
                    "labels": {"k8s-app": "kube-dns"},
                    "annotations": {"eks.amazonaws.com/compute-type": "ec2"}
                },
                "spec": {"containers": [{"name": "coredns", "image": "coredns:v1.11"}]}
            }
        }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(kube.client().await, "kube-system")
        .create(&PostParams::default(), &coredns)
        .await
        .expect("seed coredns");
}

/// While `armed`, the next CreateAccessEntry is carried out as EKS would (the same body, sent on
/// to the access-entry rules) and its answer lost: the connection closes, the binary's SDK sends
/// it again. Install before the access-entry rules.
async fn lose_create_entry_answer(proxy: &AwsProxy, moto: &Moto, armed: Arc<AtomicBool>) {
    let config = aws_sdk_eks::config::Builder::from(&moto.sdk_config(REGION).await)
        .endpoint_url(&proxy.endpoint)
        .build();
    let eks = aws_sdk_eks::Client::from_conf(config);
    proxy.async_rule(move |request| {
        let (eks, armed) = (eks.clone(), armed.clone());
        async move {
            let parts: Vec<&str> = request.path.trim_matches('/').split('/').collect();
            let create = request.service == "eks"
                && request.method == "POST"
                && matches!(parts.as_slice(), ["clusters", _, "access-entries"]);
            if !create || !armed.swap(false, Ordering::SeqCst) {
                return Verdict::Pass;
            }
            let body = request.json().unwrap_or(Value::Null);
            let tags = body["tags"].as_object().map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            });
            eks.create_access_entry()
                .cluster_name(parts[1])
                .principal_arn(body["principalArn"].as_str().unwrap_or_default())
                .set_type(body["type"].as_str().map(str::to_owned))
                .set_tags(tags)
                .send()
                .await
                .expect("the lost CreateAccessEntry is carried out");
            Verdict::Drop
        }
    });
}

/// A state file the runs share (each run as whoever it runs as).
struct StateFile {
    _dir: tempfile::TempDir,
    path: String,
}

impl StateFile {
    fn new(content: &str) -> StateFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, content).unwrap();
        StateFile {
            path: path.to_string_lossy().into_owned(),
            _dir: dir,
        }
    }

    fn read(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap()
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.read()).unwrap()
    }
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The access-entry calls among `calls` (their method and the path after the cluster).
fn entry_calls(calls: &[String]) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.contains("/access-entries"))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_admins_reach_the_cluster_and_another_admin_can_tear_it_down() {
    let bed = Bed::new(Some("demo")).await;
    let ci = bed.role("/pipelines/", "ci-deployer").await;
    let ci_session = bed.assume(&ci, "ci-run-42").await;
    let state = StateFile::new("");
    let net = bed.network_flags();
    let mut create = vec![
        "--state",
        state.path.as_str(),
        "create",
        "--cluster",
        "demo",
    ];
    create.extend(refs(&net));

    // The creator makes the cluster (API authentication) and reaches it with an EKS token: its
    // own entry, made by EKS.
    let made = bed.run(&create);
    assert_exit(&made, 0);
    assert!(state.json()["cluster"].get("accessEntries").is_none());
    assert_eq!(
        bed.principals("demo"),
        [format!("arn:aws:iam::{ACCOUNT}:user/moto")]
    );
    assert!(entry_calls(&bed.take_mutating()).is_empty());

    // The CI role is no one to the cluster: 401, and nothing changed in AWS.
    let refused = bed.run_as(
        Some(&ci_session),
        &["--state", state.path.as_str(), "create"],
        "",
    );
    assert_exit(&refused, 1);
    assert!(
        refused.stderr.contains("401 Unauthorized")
            && refused
                .stderr
                .contains("no access to demo (no EKS access entry")
            && refused.stderr.contains("eks-cluster create --admin"),
        "the refusal says what it means and the fix: {}",
        refused.stderr
    );
    assert!(
        bed.kube().refused_tokens().iter().any(|r| matches!(
            r,
            Refusal::NoAccessEntry { arn, .. } if arn.contains(":assumed-role/ci-deployer/ci-run-42")
        )),
        "{:?}",
        bed.kube().refused_tokens()
    );
    assert_eq!(bed.take_mutating(), Vec::<String>::new());

    // A dry run says what `--admin` would do, and does nothing.
    let dry = bed.run(&[
        "--state",
        state.path.as_str(),
        "--resume",
        "--dry-run",
        "create",
        "--admin",
        ci.as_str(),
    ]);
    assert_exit(&dry, 0);
    assert!(
        dry.stderr.contains(&format!(
            "would create an access entry for {ci} with AmazonEKSClusterAdminPolicy on the cluster scope"
        )),
        "{}",
        dry.stderr
    );
    assert_eq!(bed.take_mutating(), Vec::<String>::new());
    assert_eq!(bed.principals("demo").len(), 1);

    // `--admin` gives it an entry with the cluster admin policy, recorded in the state.
    let mut with_admin = vec![
        "--state",
        state.path.as_str(),
        "--resume",
        "create",
        "--admin",
        ci.as_str(),
    ];
    with_admin.extend(refs(&net));
    let granted = bed.run(&with_admin);
    assert_exit(&granted, 0);
    assert_eq!(
        state.json()["cluster"]["accessEntries"],
        json!([{"principalArn": ci, "createdByUs": true}])
    );
    let entry = bed
        .entries
        .entries(REGION, "demo")
        .into_iter()
        .find(|e| e.principal_arn == ci)
        .expect("the CI role's entry");
    assert_eq!(entry.kind, "STANDARD");
    assert_eq!(
        entry
            .tags
            .get("eks-fargate-alb/cluster")
            .map(String::as_str),
        Some("demo")
    );
    assert_eq!(
        entry.tags.get("eks-fargate-alb/step").map(String::as_str),
        Some("cluster")
    );
    assert_eq!(entry.policies.len(), 1);
    assert_eq!(entry.policies[0].policy_arn, ADMIN_POLICY);
    assert_eq!(entry.policies[0].scope.kind, "cluster");
    assert_eq!(
        entry_calls(&bed.take_mutating()),
        [
            "eks POST /clusters/demo/access-entries".to_owned(),
            format!("eks POST /clusters/demo/access-entries/{ci}/access-policies"),
        ]
    );

    // Now the CI role's run goes through (the state's admins are kept), and changes nothing.
    let as_ci = bed.run_as(
        Some(&ci_session),
        &["--state", state.path.as_str(), "create"],
        "",
    );
    assert_exit(&as_ci, 0);
    assert_eq!(bed.take_mutating(), Vec::<String>::new());
    assert!(
        bed.kube()
            .requests()
            .iter()
            .any(|r| r.user.contains(":assumed-role/ci-deployer/ci-run-42") && r.code == 200),
        "the CI role's requests went through as the CI role"
    );
    assert_eq!(
        state.json()["cluster"]["accessEntries"],
        json!([{"principalArn": ci, "createdByUs": true}])
    );

    // Dropping the admin removes the entry eks-cluster made, and the CI role is refused again.
    let dropped = bed.run(&["--state", state.path.as_str(), "create", "--no-admins"]);
    assert_exit(&dropped, 0);
    assert!(state.json()["cluster"].get("accessEntries").is_none());
    assert_eq!(
        bed.principals("demo"),
        [format!("arn:aws:iam::{ACCOUNT}:user/moto")]
    );
    assert_eq!(
        entry_calls(&bed.take_mutating()),
        [format!("eks DELETE /clusters/demo/access-entries/{ci}")]
    );
    // The API server keeps a token it accepted for 10 s: the next run's token must be another,
    // signed at a later second (real EKS, too, applies an entry's removal after a delay).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = bed.run_as(
        Some(&ci_session),
        &["--state", state.path.as_str(), "create"],
        "",
    );
    assert_exit(&again, 1);
    assert!(again.stderr.contains("Unauthorized") || again.stderr.contains("401"));

    // An admin again, the CI role tears the cluster down.
    let regranted = bed.run(&[
        "--state",
        state.path.as_str(),
        "--resume",
        "create",
        "--admin",
        ci.as_str(),
    ]);
    assert_exit(&regranted, 0);
    assert_eq!(entry_calls(&bed.take_mutating()).len(), 2);
    let deleted = bed.run_as(
        Some(&ci_session),
        &["--state", state.path.as_str(), "delete"],
        "",
    );
    assert_exit(&deleted, 0);
    assert!(state.json().get("cluster").is_none());
    assert!(bed.entries.entries(REGION, "demo").is_empty());
    let calls = bed.take_mutating();
    assert!(
        entry_calls(&calls).is_empty(),
        "a cluster that goes takes its entries: {calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_cluster_gets_and_loses_only_the_entries_eks_cluster_made() {
    let bed = Bed::new(Some("theirs")).await;
    let ci = bed.role("/", "ci").await;
    let ops = bed.user("ops").await;
    bed.foreign_cluster("theirs", Some(AuthenticationMode::ApiAndConfigMap))
        .await;
    // Its owner gave the user ops an entry of its own, with no policy.
    bed.eks_via_proxy()
        .await
        .create_access_entry()
        .cluster_name("theirs")
        .principal_arn(&ops)
        .kubernetes_groups("viewers")
        .send()
        .await
        .expect("the owner's entry");
    let creator = format!("arn:aws:iam::{ACCOUNT}:user/moto");
    let before = bed.entries.entries(REGION, "theirs");
    bed.take_mutating();

    let state = StateFile::new("");
    let net = bed.network_flags();
    let mut adopt = vec![
        "--state",
        state.path.as_str(),
        "create",
        "--cluster",
        "theirs",
        "--adopt",
        "--admin",
        ci.as_str(),
        "--admin",
        ops.as_str(),
    ];
    adopt.extend(refs(&net));
    // The answer to the CreateAccessEntry is lost: the SDK's retry is told the entry is in use.
    bed.lose_next_entry_answer.store(true, Ordering::SeqCst);
    let adopted = bed.run(&adopt);
    assert_exit(&adopted, 0);
    assert!(
        !bed.lose_next_entry_answer.load(Ordering::SeqCst),
        "an answer was lost"
    );
    assert!(
        adopted
            .stderr
            .contains("answer to our CreateAccessEntry was lost"),
        "{}",
        adopted.stderr
    );
    assert!(
        adopted
            .stderr
            .contains(&format!("{ops} has an access entry on cluster theirs that eks-cluster did not make, without AmazonEKSClusterAdminPolicy")),
        "{}",
        adopted.stderr
    );
    assert_eq!(
        state.json()["cluster"]["accessEntries"],
        json!([
            {"principalArn": ci, "createdByUs": true},
            {"principalArn": ops, "createdByUs": false},
        ])
    );
    let after = bed.entries.entries(REGION, "theirs");
    let ci_entry = after.iter().find(|e| e.principal_arn == ci).unwrap();
    assert_eq!(ci_entry.policies.len(), 1);
    assert_eq!(ci_entry.policies[0].policy_arn, ADMIN_POLICY);
    for theirs in [&creator, &ops] {
        assert_eq!(
            after.iter().find(|e| &e.principal_arn == theirs),
            before.iter().find(|e| &e.principal_arn == theirs),
            "{theirs}'s entry is as its owner left it"
        );
    }
    let calls = entry_calls(&bed.take_mutating());
    assert!(
        calls.iter().all(|c| !c.contains(&ops)),
        "nothing sent about ops's entry but reads: {calls:?}"
    );

    // A re-run changes nothing.
    let rerun = bed.run(&["--state", state.path.as_str(), "create"]);
    assert_exit(&rerun, 0);
    assert_eq!(bed.take_mutating(), Vec::<String>::new());

    // Delete: the cluster stays with its owner's entries; the one eks-cluster made goes.
    let deleted = bed.run(&["--state", state.path.as_str(), "delete"]);
    assert_exit(&deleted, 0);
    assert_eq!(bed.principals("theirs"), {
        let mut kept = vec![creator.clone(), ops.clone()];
        kept.sort();
        kept
    });
    let calls = bed.take_mutating();
    assert_eq!(
        entry_calls(&calls),
        [format!("eks DELETE /clusters/theirs/access-entries/{ci}")]
    );
    assert!(
        !calls.iter().any(|c| c == "eks DELETE /clusters/theirs"),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_that_cannot_be_are_refused_before_anything_changes() {
    let bed = Bed::new(None).await;
    let ci = bed.role("/pipelines/", "ci-deployer").await;
    const BEFORE: &str = r#"{"schemaVersion":1,"other":{"kept":true}}"#;
    let state = StateFile::new(BEFORE);
    let net = bed.network_flags();
    let refused = |admin: &str, needles: &[&str], no_call: bool| {
        bed.proxy.clear_calls();
        let mut args = vec![
            "--state",
            state.path.as_str(),
            "create",
            "--cluster",
            "demo",
            "--admin",
            admin,
        ];
        args.extend(refs(&net));
        let run = bed.run(&args);
        assert_exit(&run, 2);
        for needle in needles {
            assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
        }
        assert_eq!(state.read(), BEFORE, "the state file is untouched");
        if no_call {
            assert_eq!(
                bed.proxy.calls().len(),
                0,
                "no AWS call at all: {:?}",
                bed.proxy.calls()
            );
        } else {
            assert_eq!(bed.proxy.mutating_calls(), Vec::<String>::new());
        }
    };
    // Checked before any call: an STS session (the role's ARN is named), not a role or user.
    refused(
        &format!("arn:aws:sts::{ACCOUNT}:assumed-role/ci-deployer/ci-run-42"),
        &[
            "--admin: `arn:aws:sts::123456789012:assumed-role/ci-deployer/ci-run-42` is an STS session",
            "arn:aws:iam::123456789012:role/ci-deployer",
            "aws iam get-role --role-name ci-deployer",
        ],
        true,
    );
    refused(
        &format!("arn:aws:iam::{ACCOUNT}:group/admins"),
        &["names an IAM group"],
        true,
    );
    refused("ci-deployer", &["is not an ARN"], true);
    // Checked with read calls: the partition, the role's existence and path.
    refused(
        &format!("arn:aws-cn:iam::{ACCOUNT}:role/pipelines/ci-deployer"),
        &["is in the partition aws-cn", "work in aws"],
        false,
    );
    refused(
        &format!("arn:aws:iam::{ACCOUNT}:role/ci-deployer"),
        &[&format!("IAM knows the role ci-deployer as `{ci}`")],
        false,
    );
    refused(
        &format!("arn:aws:iam::{ACCOUNT}:user/nobody"),
        &["account 123456789012 has no IAM user named nobody"],
        false,
    );
    assert!(bed.entries.entries(REGION, "demo").is_empty());

    // A cluster in CONFIG_MAP mode can have no entries: refused, its mode named with the fix.
    bed.foreign_cluster("legacy", None).await;
    bed.proxy.clear_calls();
    let mut adopt = vec![
        "--state",
        state.path.as_str(),
        "create",
        "--cluster",
        "legacy",
        "--adopt",
        "--admin",
        ci.as_str(),
    ];
    adopt.extend(refs(&net));
    let run = bed.run(&adopt);
    assert_exit(&run, 2);
    assert!(
        run.stderr.contains("cluster legacy uses authentication mode CONFIG_MAP")
            && run.stderr.contains(
                "aws eks update-cluster-config --name legacy --access-config authenticationMode=API_AND_CONFIG_MAP"
            ),
        "{}",
        run.stderr
    );
    assert_eq!(state.read(), BEFORE);
    assert_eq!(bed.proxy.mutating_calls(), Vec::<String>::new());
    let clusters = aws_sdk_eks::Client::new(&bed.config().await)
        .list_clusters()
        .send()
        .await
        .unwrap();
    assert_eq!(clusters.clusters(), ["legacy"]);
}
