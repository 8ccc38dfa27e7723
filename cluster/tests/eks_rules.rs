//! `eks-cluster` against moto made as hard as EKS by the rules of `testbed::awsrules` in the
//! AWS proxy: Fargate profiles that take time and change one at a time, zones without EKS
//! capacity, the other answers of a cluster delete, and brought VPCs without DNS.
//!
//! `EKS_FA_CLUSTER_BIN` runs these tests against another build of the binary (for example the
//! previous commit's, to see them fail without the change they cover).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use eks_cluster::profiles::profile_name;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use testbed::awsproxy::AwsProxy;
use testbed::awsrules::{
    AccountZones, EKS_UNSUPPORTED_ZONE_IDS, FargateProfiles, cluster_gone_as_client_exception,
    cluster_update_in_progress, zone_capacity,
};
use testbed::controlplane::ControlPlane;
use testbed::fargate::{PROFILE_LABEL, Profiles};
use testbed::run::{Run, assert_exit};
use testbed::sim::FargateSim;
use testbed::{Moto, REGION};

fn bin() -> String {
    std::env::var("EKS_FA_CLUSTER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_eks-cluster").to_owned())
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// moto behind the proxy, the Kubernetes control plane with EKS's CoreDNS Deployment, and the
/// Deployment simulator placing pods by moto's Fargate profiles.
struct Bed {
    moto: Moto,
    proxy: AwsProxy,
    kube: ControlPlane,
    _sim: FargateSim,
}

impl Bed {
    async fn new(region: &str) -> Bed {
        let moto = Moto::start();
        let proxy = AwsProxy::in_front_of(&moto);
        let kube = ControlPlane::start();
        let client = kube.client().await;
        deployment(
            &client,
            "kube-system",
            "coredns",
            Some(("eks.amazonaws.com/compute-type", "ec2")),
        )
        .await;
        // The simulator reads moto directly: its describes are not the binary's.
        let sim = FargateSim::start(
            kube.simulator_client().await,
            Profiles::eks(&moto.sdk_config(region).await),
        )
        .await;
        Bed {
            moto,
            proxy,
            kube,
            _sim: sim,
        }
    }

    fn run(&self, region: &str, args: &[&str], stdin: &str) -> Run {
        let mut all = vec!["--region", region];
        all.extend_from_slice(args);
        testbed::run::run(self.proxy.command(&self.moto, bin()).args(&all), stdin)
    }

    fn create(&self, region: &str, extra: &[&str], stdin: &str) -> Run {
        let kubeconfig = self.kube.kubeconfig().to_string_lossy().into_owned();
        let mut args = vec!["create", "--kubeconfig", kubeconfig.as_str()];
        args.extend_from_slice(extra);
        self.run(region, &args, stdin)
    }

    async fn eks(&self, region: &str) -> aws_sdk_eks::Client {
        aws_sdk_eks::Client::new(&self.moto.sdk_config(region).await)
    }

    async fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.moto.sdk_config(region).await)
    }
}

async fn deployment(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    annotation: Option<(&str, &str)>,
) {
    let mut template_meta = json!({"labels": {"app": name}});
    if let Some((k, v)) = annotation {
        template_meta["annotations"] = json!({ k: v });
    }
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": template_meta,
                "spec": {"containers": [{"name": name, "image": "registry.example/app:1"}]}
            }
        }
    }))
    .unwrap();
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": namespace}})).unwrap();
    // Made once; kube-system exists already.
    let _ = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await;
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &d)
        .await
        .unwrap_or_else(|e| panic!("seed {namespace}/{name}: {e}"));
}

/// Waits (at most 30 s) until every pod of `namespace` with `app=<app>` runs under `profile`.
async fn wait_pods_on(client: &kube::Client, namespace: &str, app: &str, profile: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let started = Instant::now();
    loop {
        let list = pods
            .list(&kube::api::ListParams::default().labels(&format!("app={app}")))
            .await
            .unwrap();
        let placed: Vec<(Option<String>, Option<String>)> = list
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| {
                (
                    p.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(PROFILE_LABEL).cloned()),
                    p.status.as_ref().and_then(|s| s.phase.clone()),
                )
            })
            .collect();
        if !placed.is_empty()
            && placed.iter().all(|(p, phase)| {
                p.as_deref() == Some(profile) && phase.as_deref() == Some("Running")
            })
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "pods of {namespace}/{app} never all ran on {profile}: {placed:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The Fargate profile a Deployment's pod template names.
fn template_profile(d: &Deployment) -> Option<String> {
    d.spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .labels
        .as_ref()?
        .get(PROFILE_LABEL)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_profile_is_made_and_active_before_the_old_one_goes() {
    let bed = Bed::new(REGION).await;
    let client = bed.kube.client().await;
    // Two describes see CREATING, two see DELETING; one profile changes at a time; a deleted
    // profile's pods are evicted.
    let fargate = FargateProfiles::new(2, 2).evicting_pods(client.clone());
    fargate.install(&bed.proxy);

    let first = bed.create(
        REGION,
        &[
            "--cluster",
            "demo",
            "--namespace",
            "kube-system",
            "--namespace",
            "apps",
        ],
        "",
    );
    assert_exit(&first, 0);
    let old = profile_name(&strings(&["kube-system", "apps"]));
    assert_eq!(first.json()["cluster"]["fargateProfiles"], json!([old]));

    // Workloads: one in a namespace the profile selects, one in a namespace it does not.
    deployment(&client, "apps", "api", None).await;
    deployment(&client, "web", "site", None).await;
    wait_pods_on(&client, "apps", "api", &old).await;
    let coredns_rollouts =
        testbed::sim::rollouts(&bed.kube.client().await, "kube-system", "coredns")
            .await
            .unwrap();
    assert_eq!(
        testbed::sim::rollouts(&bed.kube.client().await, "apps", "api")
            .await
            .unwrap(),
        1
    );

    // Another namespace: a new profile, made and ACTIVE before the old one goes.
    bed.proxy.clear_calls();
    let changed = bed.create(
        REGION,
        &[
            "--namespace",
            "kube-system",
            "--namespace",
            "apps",
            "--namespace",
            "web",
        ],
        &first.stdout,
    );
    assert_exit(&changed, 0);
    let new = profile_name(&strings(&["kube-system", "apps", "web"]));
    assert_ne!(new, old);
    let c = &changed.json()["cluster"];
    assert_eq!(c["fargateProfiles"], json!([new]), "{c}");
    assert!(c.get("fargateRestartNamespaces").is_none(), "{c}");

    let calls = bed.proxy.calls();
    let names: Vec<String> = calls.iter().map(ToString::to_string).collect();
    let at = |wanted: &str| {
        calls
            .iter()
            .position(|c| c.request.name() == wanted && c.status == 200)
            .unwrap_or_else(|| panic!("no {wanted} answered 200 in {names:#?}"))
    };
    let created = at("eks POST /clusters/demo/fargate-profiles");
    let deleted = at(&format!("eks DELETE /clusters/demo/fargate-profiles/{old}"));
    assert!(created < deleted, "the old profile went first: {names:#?}");
    let describes_between = calls[created..deleted]
        .iter()
        .filter(|c| {
            c.request.name() == format!("eks GET /clusters/demo/fargate-profiles/{new}")
                && c.status == 200
        })
        .count();
    assert!(
        describes_between >= 3,
        "the old profile went before the new one was ACTIVE (2 CREATING answers, then ACTIVE): {names:#?}"
    );
    let events: Vec<(&str, String)> = fargate
        .events()
        .into_iter()
        .map(|e| (e.what, e.profile))
        .collect();
    assert_eq!(
        events,
        [
            ("created", old.clone()),
            ("created", new.clone()),
            ("deleted", old.clone())
        ]
    );
    let left: Vec<String> = bed
        .eks(REGION)
        .await
        .list_fargate_profiles()
        .cluster_name("demo")
        .send()
        .await
        .unwrap()
        .fargate_profile_names()
        .to_vec();
    assert_eq!(left, std::slice::from_ref(&new));

    // The Deployments the old profile ran were moved (rolled with the new profile's label) and
    // run on the new profile; the one in a namespace it did not select was left alone.
    let api: Deployment = Api::namespaced(client.clone(), "apps")
        .get("api")
        .await
        .unwrap();
    assert_eq!(
        template_profile(&api).as_deref(),
        Some(new.as_str()),
        "apps/api was not moved"
    );
    assert_eq!(
        testbed::sim::rollouts(&bed.kube.client().await, "apps", "api")
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        testbed::sim::rollouts(&bed.kube.client().await, "kube-system", "coredns")
            .await
            .unwrap(),
        coredns_rollouts + 1
    );
    let site: Deployment = Api::namespaced(client.clone(), "web")
        .get("site")
        .await
        .unwrap();
    assert!(template_profile(&site).is_none());
    assert_eq!(
        testbed::sim::rollouts(&bed.kube.client().await, "web", "site")
            .await
            .unwrap(),
        1
    );
    wait_pods_on(&client, "apps", "api", &new).await;
    assert!(
        changed.stderr.contains(&format!("deleting {old}")),
        "{}",
        changed.stderr
    );

    // A re-run changes nothing.
    bed.proxy.clear_calls();
    let again = bed.create(REGION, &[], &changed.stdout);
    assert_exit(&again, 0);
    let mutating = bed.proxy.mutating_calls();
    assert!(
        mutating.is_empty(),
        "mutating calls on a re-run: {mutating:?}"
    );
    assert_eq!(
        testbed::sim::rollouts(&bed.kube.client().await, "apps", "api")
            .await
            .unwrap(),
        2
    );
    assert_eq!(again.json()["cluster"]["fargateProfiles"], json!([new]));
}

/// A brought VPC (DNS on) and a cluster made in it, through the proxy.
async fn cluster_in_brought_vpc(bed: &Bed, cluster: &str) -> Run {
    let network = testbed::seed::network(&bed.moto.sdk_config(REGION).await, cluster).await;
    let made = bed.create(
        REGION,
        &[
            "--cluster",
            cluster,
            "--vpc-id",
            &network.vpc_id,
            "--private-subnets",
            &network.private_subnet_ids.join(","),
            "--public-subnets",
            &network.public_subnet_ids.join(","),
        ],
        "",
    );
    assert_exit(&made, 0);
    made
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_rides_out_an_update_in_progress() {
    let bed = Bed::new(REGION).await;
    let made = cluster_in_brought_vpc(&bed, "busy").await;
    let refused = cluster_update_in_progress(&bed.proxy, 2);
    let gone = bed.run(REGION, &["delete"], &made.stdout);
    assert_exit(&gone, 0);
    assert_eq!(refused.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert!(
        gone.stderr.contains("in progress") && gone.stderr.contains("trying again"),
        "progress while EKS is busy: {}",
        gone.stderr
    );
    assert!(gone.json().get("cluster").is_none());
    let clusters = bed.eks(REGION).await.list_clusters().send().await.unwrap();
    assert!(clusters.clusters().is_empty(), "{clusters:?}");
}

/// Loses the answer to the first `method` call on a Fargate profile path (create: POST, delete:
/// DELETE): EKS made the change, the SDK sends the call again. Returns how many were lost.
fn lose_first_profile_answer(proxy: &AwsProxy, method: &'static str) -> Arc<AtomicU32> {
    let lost = Arc::new(AtomicU32::new(0));
    let count = lost.clone();
    proxy.rule(move |request| {
        if request.method == method
            && request.path.contains("/fargate-profiles")
            && count.fetch_add(1, Ordering::SeqCst) == 0
        {
            testbed::awsproxy::Verdict::ForwardThenDrop
        } else {
            testbed::awsproxy::Verdict::Pass
        }
    });
    lost
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_to_profile_create_and_delete_are_ridden_out() {
    // The retry of a create whose answer was lost meets EKS's "a profile of the cluster is
    // CREATING" (the one it made); the retry of such a delete, "… is DELETING". Both are ours.
    let bed = Bed::new(REGION).await;
    FargateProfiles::new(3, 3).install(&bed.proxy);
    let created = lose_first_profile_answer(&bed.proxy, "POST");
    let made = cluster_in_brought_vpc(&bed, "lostfp").await;
    let sent = |method: &str| {
        bed.proxy
            .calls()
            .iter()
            .filter(|c| c.request.method == method && c.request.path.contains("/fargate-profiles"))
            .count()
    };
    assert_eq!(created.load(Ordering::SeqCst), 1, "one answer lost");
    assert!(sent("POST") >= 2, "the create was sent again");
    assert!(
        made.stderr.contains("CreateFargateProfile was lost"),
        "{}",
        made.stderr
    );
    let deleted = lose_first_profile_answer(&bed.proxy, "DELETE");
    let gone = bed.run(REGION, &["delete", "--timeout", "60s"], &made.stdout);
    assert_exit(&gone, 0);
    assert_eq!(deleted.load(Ordering::SeqCst), 1, "one answer lost");
    assert!(sent("DELETE") >= 2, "the delete was sent again");
    let clusters = bed.eks(REGION).await.list_clusters().send().await.unwrap();
    assert!(clusters.clusters().is_empty(), "{clusters:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_takes_no_cluster_found_for_gone() {
    let bed = Bed::new(REGION).await;
    let made = cluster_in_brought_vpc(&bed, "vanished").await;
    cluster_gone_as_client_exception(&bed.proxy, "vanished");
    let gone = bed.run(REGION, &["delete"], &made.stdout);
    assert_exit(&gone, 0);
    assert!(gone.json().get("cluster").is_none());
    assert!(gone.stderr.contains("does not exist"), "{}", gone.stderr);
    // What eks-cluster made besides the cluster is gone too.
    let iam = aws_sdk_iam::Client::new(&bed.moto.sdk_config(REGION).await);
    assert!(
        iam.get_role()
            .role_name("eks-fargate-vanished-cluster")
            .send()
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zones_without_eks_are_left_out() {
    // In this account us-east-1a is use1-az3, a zone without EKS capacity.
    let region = "us-east-1";
    let bed = Bed::new(region).await;
    let zones = AccountZones::swapped("use1-az6", "use1-az3");
    zones.install(&bed.proxy);
    zone_capacity(
        &bed.proxy,
        &bed.moto.endpoint,
        zones.clone(),
        &EKS_UNSUPPORTED_ZONE_IDS,
    );

    let made = bed.create(region, &["--cluster", "zones"], "");
    assert_exit(&made, 0);
    assert!(
        made.stderr.contains("us-east-1a (use1-az3)"),
        "the zone left out is named: {}",
        made.stderr
    );
    let c = &made.json()["cluster"];
    let ids: Vec<String> = c["privateSubnetIds"]
        .as_array()
        .unwrap()
        .iter()
        .chain(c["publicSubnetIds"].as_array().unwrap())
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    let ec2 = bed.ec2(region).await;
    let subnets = ec2
        .describe_subnets()
        .set_subnet_ids(Some(ids))
        .send()
        .await
        .unwrap();
    let mut used: Vec<&str> = subnets
        .subnets()
        .iter()
        .filter_map(|s| s.availability_zone())
        .collect();
    used.sort();
    used.dedup();
    assert_eq!(used, ["us-east-1b", "us-east-1c"]);
    let refusals: Vec<String> = bed
        .proxy
        .calls()
        .iter()
        .filter(|c| c.by_rule)
        .map(ToString::to_string)
        .collect();
    assert!(refusals.is_empty(), "EKS refused: {refusals:?}");

    // A brought VPC whose private subnet lies in use1-az3 is refused before anything is made.
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.60.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_owned();
    testbed::seed::dns_on(&ec2, &vpc_id).await;
    let mut private = Vec::new();
    for (cidr, zone) in [
        ("10.60.1.0/24", "us-east-1a"),
        ("10.60.2.0/24", "us-east-1b"),
    ] {
        let s = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(cidr)
            .availability_zone(zone)
            .send()
            .await
            .unwrap();
        private.push(s.subnet().unwrap().subnet_id().unwrap().to_owned());
    }
    bed.proxy.clear_calls();
    let refused = bed.create(
        region,
        &[
            "--cluster",
            "byo",
            "--vpc-id",
            &vpc_id,
            "--private-subnets",
            &private.join(","),
        ],
        "",
    );
    assert_exit(&refused, 2);
    assert!(
        refused.stderr.contains(&private[0]) && refused.stderr.contains("use1-az3"),
        "{}",
        refused.stderr
    );
    assert!(bed.proxy.mutating_calls().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_zones_is_bad_input() {
    // us-west-1 has two zones in moto; in this account us-west-1a is usw1-az2 (no EKS).
    let region = "us-west-1";
    let bed = Bed::new(region).await;
    let zones = AccountZones::swapped("usw1-az3", "usw1-az2");
    zones.install(&bed.proxy);
    let refused = bed.create(region, &["--cluster", "few"], "");
    assert_exit(&refused, 2);
    assert!(
        refused.stderr.contains("usw1-az2") && refused.stderr.contains("choose another region"),
        "{}",
        refused.stderr
    );
    assert!(
        bed.proxy.mutating_calls().is_empty(),
        "{:?}",
        bed.proxy.mutating_calls()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brought_vpc_without_dns_hostnames_is_refused() {
    let bed = Bed::new(REGION).await;
    let config = bed.moto.sdk_config(REGION).await;
    let network = testbed::seed::network(&config, "nodns").await;
    aws_sdk_ec2::Client::new(&config)
        .modify_vpc_attribute()
        .vpc_id(&network.vpc_id)
        .enable_dns_hostnames(
            aws_sdk_ec2::types::AttributeBooleanValue::builder()
                .value(false)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("state.json");
    let before = r#"{"schemaVersion":1,"other":{"kept":true}}"#;
    std::fs::write(&state_file, before).unwrap();
    let refused = bed.create(
        REGION,
        &[
            "--state",
            state_file.to_str().unwrap(),
            "--cluster",
            "nodns",
            "--vpc-id",
            &network.vpc_id,
            "--private-subnets",
            &network.private_subnet_ids.join(","),
        ],
        "",
    );
    assert_exit(&refused, 2);
    let fix = format!(
        "aws ec2 modify-vpc-attribute --vpc-id {} --enable-dns-hostnames",
        network.vpc_id
    );
    assert!(
        refused.stderr.contains("enableDnsHostnames") && refused.stderr.contains(&fix),
        "{}",
        refused.stderr
    );
    assert!(
        bed.proxy.mutating_calls().is_empty(),
        "{:?}",
        bed.proxy.mutating_calls()
    );
    assert_eq!(std::fs::read_to_string(&state_file).unwrap(), before);
    assert!(
        bed.eks(REGION)
            .await
            .list_clusters()
            .send()
            .await
            .unwrap()
            .clusters()
            .is_empty()
    );
}
