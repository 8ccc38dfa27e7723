//! Issue 18: EKS's refusal of an availability zone (`UnsupportedAvailabilityZoneException`) is
//! used in the same run and remembered; a changed Fargate profile moves the workloads onto the
//! new profile before the old one is deleted, so CoreDNS and a webhook never lose their last
//! ready pod. The real `eks-cluster` binary against moto behind the AWS proxy (with the rules of
//! `testbed::awsrules`), the real Kubernetes control plane and the Fargate simulator.
//!
//! `EKS_FA_CLUSTER_BIN` runs these tests against another build of the binary (to see them fail
//! without the change they cover).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use eks_cluster::profiles::profile_name;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use testbed::awsproxy::AwsProxy;
use testbed::awsrules::{AccountZones, FargateProfiles, zone_capacity};
use testbed::controlplane::ControlPlane;
use testbed::fargate::{PROFILE_LABEL, Profiles};
use testbed::run::{Run, assert_exit};
use testbed::sim::FargateSim;
use testbed::{Moto, REGION};

fn bin() -> String {
    std::env::var("EKS_FA_CLUSTER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_eks-cluster").to_owned())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// moto behind the proxy, the control plane with EKS's CoreDNS (two replicas, pinned to EC2 as
/// EKS makes it), and the Fargate simulator placing pods by moto's profiles.
struct Bed {
    moto: Moto,
    proxy: AwsProxy,
    kube: ControlPlane,
    _sim: FargateSim,
}

impl Bed {
    async fn new() -> Bed {
        let moto = Moto::start();
        let proxy = AwsProxy::in_front_of(&moto);
        let kube = ControlPlane::start();
        let coredns: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "coredns", "namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}},
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
        // The simulator reads moto directly: its describes are not the binary's.
        let sim = FargateSim::start(
            kube.simulator_client().await,
            Profiles::eks(&moto.sdk_config(REGION).await),
        )
        .await;
        Bed {
            moto,
            proxy,
            kube,
            _sim: sim,
        }
    }

    fn run(&self, args: &[&str], stdin: &str) -> Run {
        let mut all = vec!["--region", REGION];
        all.extend_from_slice(args);
        testbed::run::run(self.proxy.command(&self.moto, bin()).args(&all), stdin)
    }

    fn create(&self, extra: &[&str], stdin: &str) -> Run {
        let kubeconfig = self.kube.kubeconfig().to_string_lossy().into_owned();
        let mut args = vec![
            "create",
            "--kubeconfig",
            kubeconfig.as_str(),
            "--timeout",
            "180s",
        ];
        args.extend_from_slice(extra);
        self.run(&args, stdin)
    }

    async fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.moto.sdk_config(REGION).await)
    }

    async fn eks(&self) -> aws_sdk_eks::Client {
        aws_sdk_eks::Client::new(&self.moto.sdk_config(REGION).await)
    }

    /// The zone ids of `subnets`, as EC2 reports them.
    async fn zone_ids(&self, subnets: &[String]) -> BTreeSet<String> {
        self.ec2()
            .await
            .describe_subnets()
            .set_subnet_ids(Some(subnets.to_vec()))
            .send()
            .await
            .unwrap()
            .subnets()
            .iter()
            .filter_map(|s| s.availability_zone_id().map(str::to_owned))
            .collect()
    }

    /// The subnets of the cluster and of each of its Fargate profiles, as EKS has them.
    async fn cluster_subnets(&self, cluster: &str) -> (Vec<String>, Vec<String>) {
        let eks = self.eks().await;
        let c = eks.describe_cluster().name(cluster).send().await.unwrap();
        let own = c
            .cluster()
            .and_then(|c| c.resources_vpc_config())
            .map(|v| v.subnet_ids().to_vec())
            .unwrap_or_default();
        let mut profiles = Vec::new();
        for name in eks
            .list_fargate_profiles()
            .cluster_name(cluster)
            .send()
            .await
            .unwrap()
            .fargate_profile_names()
        {
            let p = eks
                .describe_fargate_profile()
                .cluster_name(cluster)
                .fargate_profile_name(name)
                .send()
                .await
                .unwrap();
            profiles.extend(p.fargate_profile().unwrap().subnets().to_vec());
        }
        (own, profiles)
    }

    /// The `UnsupportedAvailabilityZoneException` answers EKS gave so far.
    fn zone_refusals(&self) -> usize {
        self.proxy
            .calls()
            .iter()
            .filter(|c| c.by_rule && c.request.name() == "eks POST /clusters")
            .count()
    }
}

/// In this test's account the zone `us-east-2a` (moto's `use2-az1`, a zone the EKS user guide
/// does not list) has no capacity for a control plane: EKS refuses it with its list of valid
/// zones, and Fargate refuses its subnets.
fn no_capacity_in_use2_az1(bed: &Bed) {
    zone_capacity(
        &bed.proxy,
        &bed.moto.endpoint,
        AccountZones::moto(),
        &["use2-az1"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_eks_refuses_is_replaced_in_the_same_run_and_never_used_again() {
    let bed = Bed::new().await;
    no_capacity_in_use2_az1(&bed);
    let zone_a = bed
        .ec2()
        .await
        .describe_availability_zones()
        .zone_names("us-east-2a")
        .send()
        .await
        .unwrap();
    assert_eq!(
        zone_a.availability_zones()[0].zone_id(),
        Some("use2-az1"),
        "moto's mapping, which the test relies on"
    );

    // The first two zones by name are chosen: us-east-2a and us-east-2b. EKS refuses the
    // first; the run records it, adds subnets in us-east-2c to the network stack and makes
    // the cluster in us-east-2b and us-east-2c.
    let made = bed.create(&["--cluster", "zr", "--namespace", "kube-system"], "");
    assert_exit(&made, 0);
    assert_eq!(bed.zone_refusals(), 1, "EKS refused once");
    assert!(
        made.stderr
            .contains("EKS refused availability zone(s) us-east-2a (use2-az1)"),
        "{}",
        made.stderr
    );
    let c = &made.json()["cluster"];
    assert_eq!(c["refusedZoneIds"], json!(["use2-az1"]), "{c}");
    let (own, profile) = bed.cluster_subnets("zr").await;
    let valid = BTreeSet::from(["use2-az2".to_owned(), "use2-az3".to_owned()]);
    assert_eq!(bed.zone_ids(&own).await, valid, "the cluster's subnets");
    assert_eq!(
        bed.zone_ids(&profile).await,
        valid,
        "the Fargate profile's subnets"
    );
    assert_eq!(
        bed.zone_ids(&strings(&c["privateSubnetIds"])).await,
        valid,
        "the state's private subnets"
    );
    assert_eq!(
        strings(&c["publicSubnetIds"]).len(),
        3,
        "the public subnet of the refused zone stays for load balancers"
    );
    let stack = aws_sdk_cloudformation::Client::new(&bed.moto.sdk_config(REGION).await)
        .describe_stacks()
        .stack_name("eks-fargate-zr-vpc")
        .send()
        .await
        .unwrap();
    let zones: BTreeSet<String> = stack.stacks()[0]
        .parameters()
        .iter()
        .filter(|p| p.parameter_key().unwrap().starts_with("AvailabilityZone"))
        .map(|p| p.parameter_value().unwrap().to_owned())
        .collect();
    assert_eq!(
        zones,
        BTreeSet::from(["us-east-2a", "us-east-2b", "us-east-2c"].map(str::to_owned)),
        "one VPC: the stack was widened, not made again"
    );

    // A re-run changes nothing and asks EKS nothing it would refuse.
    bed.proxy.clear_calls();
    let again = bed.create(&[], &made.stdout);
    assert_exit(&again, 0);
    assert!(
        bed.proxy.mutating_calls().is_empty(),
        "{:?}",
        bed.proxy.mutating_calls()
    );
    assert_eq!(
        again.json()["cluster"]["refusedZoneIds"],
        json!(["use2-az1"])
    );

    // A network made anew from a state that records the refusal never uses the zone: no
    // refusal, the stack over us-east-2b and us-east-2c from the start.
    bed.proxy.clear_calls();
    let known = json!({"schemaVersion": 1, "cluster": {
        "name": "zr2", "region": REGION, "refusedZoneIds": ["use2-az1"]}});
    let fresh = bed.create(&["--namespace", "kube-system"], &known.to_string());
    assert_exit(&fresh, 0);
    assert_eq!(bed.zone_refusals(), 0, "nothing EKS refuses was sent");
    let c = &fresh.json()["cluster"];
    assert_eq!(bed.zone_ids(&strings(&c["privateSubnetIds"])).await, valid);
    assert_eq!(bed.zone_ids(&strings(&c["publicSubnetIds"])).await, valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_after_the_refusal_finishes_on_the_re_run_without_the_zone() {
    let bed = Bed::new().await;
    no_capacity_in_use2_az1(&bed);
    // The identity may not update stacks (yet): the run stops after EKS's refusal.
    let denied = Arc::new(AtomicBool::new(true));
    let deny = denied.clone();
    bed.proxy.rule(move |request| {
        if request.service == "cloudformation"
            && request.action == "UpdateStack"
            && deny.load(Ordering::SeqCst)
        {
            testbed::awsproxy::Verdict::Reply(testbed::awsproxy::AwsReply::error(
                request,
                403,
                "AccessDenied",
                "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: cloudformation:UpdateStack",
            ))
        } else {
            testbed::awsproxy::Verdict::Pass
        }
    });
    let stopped = bed.create(&["--cluster", "zs", "--namespace", "kube-system"], "");
    assert_exit(&stopped, 1);
    assert_eq!(bed.zone_refusals(), 1);
    assert!(
        stopped.stderr.contains("cloudformation:UpdateStack"),
        "{}",
        stopped.stderr
    );
    let c = &stopped.json()["cluster"];
    assert_eq!(
        c["refusedZoneIds"],
        json!(["use2-az1"]),
        "recorded at once: {c}"
    );
    assert!(
        bed.eks()
            .await
            .list_clusters()
            .send()
            .await
            .unwrap()
            .clusters()
            .is_empty()
    );

    // Allowed now: the re-run adds the subnets and makes the cluster without asking EKS for
    // the refused zone again.
    denied.store(false, Ordering::SeqCst);
    bed.proxy.clear_calls();
    let finished = bed.create(&["--resume"], &stopped.stdout);
    assert_exit(&finished, 0);
    assert_eq!(bed.zone_refusals(), 0, "nothing EKS refuses was sent");
    let (own, profile) = bed.cluster_subnets("zs").await;
    let valid = BTreeSet::from(["use2-az2".to_owned(), "use2-az3".to_owned()]);
    assert_eq!(bed.zone_ids(&own).await, valid);
    assert_eq!(bed.zone_ids(&profile).await, valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brought_vpc_keeps_its_subnets_and_is_told_which_zones_eks_takes() {
    let bed = Bed::new().await;
    no_capacity_in_use2_az1(&bed);
    let config = bed.moto.sdk_config(REGION).await;
    // Private and public subnets in us-east-2a and us-east-2b, a way out through a NAT.
    let network = testbed::seed::network(&config, "zb").await;
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("state.json");
    let state = state_file.to_str().unwrap();
    let refused = bed.create(
        &[
            "--state",
            state,
            "--cluster",
            "zb",
            "--namespace",
            "kube-system",
            "--vpc-id",
            &network.vpc_id,
            "--private-subnets",
            &network.private_subnet_ids.join(","),
            "--public-subnets",
            &network.public_subnet_ids.join(","),
        ],
        "",
    );
    // The roles were made before EKS refused: exit 1, the state says what was made.
    assert_exit(&refused, 1);
    assert_eq!(bed.zone_refusals(), 1);
    for words in [
        "use2-az1",
        network.private_subnet_ids[0].as_str(),
        "us-east-2a (use2-az1)",
        network.private_subnet_ids[1].as_str(),
        "us-east-2b, us-east-2c",
        "--private-subnets",
        "The brought VPC was not changed",
    ] {
        assert!(
            refused.stderr.contains(words),
            "{words}: {}",
            refused.stderr
        );
    }
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    let c = &written["cluster"];
    assert_eq!(c["refusedZoneIds"], json!(["use2-az1"]), "{written}");
    assert!(c["clusterRoleArn"].is_string(), "{written}");
    assert!(written.get("error").is_some());
    assert!(
        bed.eks()
            .await
            .list_clusters()
            .send()
            .await
            .unwrap()
            .clusters()
            .is_empty()
    );

    // The same subnets again: refused before anything is made (exit 2, state untouched).
    bed.proxy.clear_calls();
    let before = std::fs::read_to_string(&state_file).unwrap();
    let again = bed.create(&["--state", state, "--resume"], "");
    assert_exit(&again, 2);
    assert!(
        again.stderr.contains("refused zone(s) use2-az1"),
        "{}",
        again.stderr
    );
    assert!(
        bed.proxy.mutating_calls().is_empty(),
        "{:?}",
        bed.proxy.mutating_calls()
    );
    assert_eq!(std::fs::read_to_string(&state_file).unwrap(), before);

    // A private subnet in us-east-2c brought too: the cluster is made in us-east-2b and
    // us-east-2c; the subnets of us-east-2a are left out (the public one stays for
    // load balancers).
    let ec2 = bed.ec2().await;
    let third = ec2
        .create_subnet()
        .vpc_id(&network.vpc_id)
        .cidr_block("10.30.32.0/20")
        .availability_zone("us-east-2c")
        .send()
        .await
        .unwrap()
        .subnet()
        .unwrap()
        .subnet_id()
        .unwrap()
        .to_owned();
    testbed::seed::nat_route(
        &ec2,
        &network.vpc_id,
        &network.public_subnet_ids[1],
        std::slice::from_ref(&third),
    )
    .await;
    let privates = format!("{},{third}", network.private_subnet_ids.join(","));
    let made = bed.create(
        &[
            "--state",
            state,
            "--resume",
            "--vpc-id",
            &network.vpc_id,
            "--private-subnets",
            &privates,
            "--public-subnets",
            &network.public_subnet_ids.join(","),
        ],
        "",
    );
    assert_exit(&made, 0);
    assert_eq!(bed.zone_refusals(), 0, "nothing EKS refuses was sent");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).unwrap()).unwrap();
    let c = &written["cluster"];
    assert_eq!(
        strings(&c["privateSubnetIds"]),
        [network.private_subnet_ids[1].clone(), third.clone()]
    );
    let (own, profile) = bed.cluster_subnets("zb").await;
    let valid = BTreeSet::from(["use2-az2".to_owned(), "use2-az3".to_owned()]);
    assert_eq!(bed.zone_ids(&own).await, valid);
    assert_eq!(bed.zone_ids(&profile).await, valid);
}

/// Pods of `selector` in `namespace` that are Ready and not being deleted.
async fn ready_pods(client: &kube::Client, namespace: &str, selector: &str) -> usize {
    Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(selector))
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
                .count()
        })
        .unwrap_or(usize::MAX)
}

/// The ready endpoints the EndpointSlices of Service `namespace/name` list.
async fn ready_endpoints(client: &kube::Client, namespace: &str, name: &str) -> usize {
    Api::<EndpointSlice>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={name}")))
        .await
        .map(|l| {
            l.items
                .iter()
                .flat_map(|s| s.endpoints.iter())
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                .count()
        })
        .unwrap_or(usize::MAX)
}

/// Polls until `check` holds, at most a minute.
async fn until<F: Future<Output = bool>>(what: &str, check: impl Fn() -> F) {
    let began = Instant::now();
    while !check().await {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "{what}: not within a minute"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The profile each live pod of `selector` runs with.
async fn pod_profiles(client: &kube::Client, namespace: &str, selector: &str) -> Vec<String> {
    Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| p.labels().get(PROFILE_LABEL).cloned().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_namespaces_never_leaves_coredns_or_a_webhook_without_a_ready_pod() {
    let bed = Bed::new().await;
    let client = bed.kube.client().await;
    // Profiles take two describes to be ACTIVE and two to go; deleting one evicts its pods.
    let fargate = FargateProfiles::new(2, 2).evicting_pods(client.clone());
    fargate.install(&bed.proxy);
    let network = testbed::seed::network(&bed.moto.sdk_config(REGION).await, "mv").await;

    // Profile A selects kube-system and game; CoreDNS is rolled onto it.
    let first = bed.create(
        &[
            "--cluster",
            "mv",
            "--vpc-id",
            &network.vpc_id,
            "--private-subnets",
            &network.private_subnet_ids.join(","),
            "--public-subnets",
            &network.public_subnet_ids.join(","),
            "--namespace",
            "kube-system",
            "--namespace",
            "game",
        ],
        "",
    );
    assert_exit(&first, 0);
    let old = profile_name(&["kube-system".to_owned(), "game".to_owned()]);
    // A webhook server (two replicas behind a Service, as the load balancer controller's).
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "game"}})).unwrap(),
        )
        .await
        .unwrap();
    let webhook: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "webhook", "namespace": "game"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "webhook"}},
            "template": {
                "metadata": {"labels": {"app": "webhook"}},
                "spec": {"containers": [{"name": "server", "image": "registry.example/webhook:1",
                    "ports": [{"name": "webhook", "containerPort": 9443}]}]}
            }
        }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), "game")
        .create(&PostParams::default(), &webhook)
        .await
        .unwrap();
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "webhook-service", "namespace": "game"},
        "spec": {"selector": {"app": "webhook"},
                 "ports": [{"name": "webhook", "port": 443, "targetPort": "webhook"}]}
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), "game")
        .create(&PostParams::default(), &service)
        .await
        .unwrap();
    until("both on profile A, ready", || async {
        ready_pods(&client, "kube-system", "k8s-app=kube-dns").await == 2
            && ready_endpoints(&client, "game", "webhook-service").await == 2
            && pod_profiles(&client, "kube-system", "k8s-app=kube-dns").await
                == [old.clone(), old.clone()]
            && pod_profiles(&client, "game", "app=webhook").await == [old.clone(), old.clone()]
    })
    .await;

    // Watch every 100 ms while the namespaces change.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let dns = ready_pods(&client, "kube-system", "k8s-app=kube-dns").await;
                let endpoints = ready_endpoints(&client, "game", "webhook-service").await;
                samples.push((dns, endpoints));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        })
    };
    let stdin = first.stdout.clone();
    let changed = {
        let bed = &bed;
        tokio::task::block_in_place(|| {
            bed.create(
                &[
                    "--namespace",
                    "kube-system",
                    "--namespace",
                    "game",
                    "--namespace",
                    "extra",
                ],
                &stdin,
            )
        })
    };
    // A moment after the run, for an eviction it set off.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    let samples = watcher.await.unwrap();
    assert_exit(&changed, 0);
    assert!(samples.len() > 20, "{} samples", samples.len());
    let least_dns = samples.iter().map(|s| s.0).min().unwrap();
    let least_endpoints = samples.iter().map(|s| s.1).min().unwrap();
    assert!(
        least_dns >= 1 && least_endpoints >= 1,
        "ready CoreDNS pods fell to {least_dns}, ready webhook endpoints to {least_endpoints} (samples: {samples:?})\n{}",
        changed.stderr
    );

    // The old profile went last; every pod runs on the new one, named on the pod template.
    let new = profile_name(&["kube-system", "game", "extra"].map(str::to_owned));
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
    let c = &changed.json()["cluster"];
    assert_eq!(c["fargateProfiles"], json!([new]), "{c}");
    assert!(c.get("fargateRestartNamespaces").is_none(), "{c}");
    until("every pod on the new profile", || async {
        pod_profiles(&client, "kube-system", "k8s-app=kube-dns").await == [new.clone(), new.clone()]
            && pod_profiles(&client, "game", "app=webhook").await == [new.clone(), new.clone()]
    })
    .await;
    for (ns, name) in [("kube-system", "coredns"), ("game", "webhook")] {
        let d = Api::<Deployment>::namespaced(client.clone(), ns)
            .get(name)
            .await
            .unwrap();
        let labels = d.spec.unwrap().template.metadata.unwrap().labels.unwrap();
        assert_eq!(labels.get(PROFILE_LABEL), Some(&new), "{ns}/{name}");
    }
    let coredns_rollouts = testbed::sim::rollouts(&client, "kube-system", "coredns")
        .await
        .unwrap();

    // A re-run changes nothing.
    bed.proxy.clear_calls();
    let again = bed.create(&[], &changed.stdout);
    assert_exit(&again, 0);
    assert!(
        bed.proxy.mutating_calls().is_empty(),
        "{:?}",
        bed.proxy.mutating_calls()
    );
    assert_eq!(
        testbed::sim::rollouts(&client, "kube-system", "coredns")
            .await
            .unwrap(),
        coredns_rollouts
    );
}
