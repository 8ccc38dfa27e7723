//! The AWS Load Balancer Controller simulator against the real Kubernetes control plane.

use std::io::{Read, Write};
use std::time::Duration;

use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use testbed::albsim::{AlbControllerSim, FINALIZER, TGB_FINALIZER};
use testbed::controlplane::ControlPlane;

fn ingress(name: &str, class: &str) -> serde_json::Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"ingressClassName": class, "defaultBackend": {"service": {"name": "s", "port": {"number": 80}}}}
    })
}

fn http_get(port: u16) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: alb\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

async fn until<T>(mut probe: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    for _ in 0..100 {
        if let Some(found) = probe().await {
            return Some(found);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

fn hostname(ingress: &Ingress) -> Option<String> {
    ingress
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .first()?
        .hostname
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alb_lifecycle_with_finalizer() {
    let kube = ControlPlane::start();
    let client = kube.client().await;
    let sim = AlbControllerSim::start(client.clone());
    let api: Api<Ingress> = Api::namespaced(client, "default");
    api.patch(
        "web",
        &PatchParams::apply("test"),
        &Patch::Apply(ingress("web", "alb")),
    )
    .await
    .unwrap();
    api.patch(
        "other",
        &PatchParams::apply("test"),
        &Patch::Apply(ingress("other", "nginx")),
    )
    .await
    .unwrap();

    let host = until(async || hostname(&api.get("web").await.ok()?))
        .await
        .expect("a hostname is set");
    assert!(host.ends_with(".us-east-2.elb.amazonaws.com"), "{host}");
    let web = api.get("web").await.unwrap();
    assert!(
        web.metadata
            .finalizers
            .unwrap()
            .contains(&FINALIZER.to_string())
    );
    let alb = sim.alb("default", "web").unwrap();
    assert_eq!(alb.hostname, host);
    assert_eq!(
        alb.connect_to(),
        format!("{host}:80:127.0.0.1:{}", alb.port)
    );
    let answer = http_get(alb.port).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");

    // Another class is not ours.
    let other = api.get("other").await.unwrap();
    assert!(other.metadata.finalizers.is_none() && hostname(&other).is_none());
    assert_eq!(sim.count(), 1);

    // Delete: held by the finalizer until the simulator "deleted the ALB".
    api.delete("web", &DeleteParams::default()).await.unwrap();
    let gone = until(async || {
        api.get_opt("web")
            .await
            .ok()
            .filter(Option::is_none)
            .map(|_| ())
    })
    .await;
    assert!(
        gone.is_some(),
        "the Ingress goes once the finalizer is removed"
    );
    assert_eq!(sim.count(), 0);
    assert!(
        until(async || http_get(alb.port).err().map(|_| ()))
            .await
            .is_some(),
        "the ALB stops answering"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_controller_the_ingress_stays() {
    let kube = ControlPlane::start();
    let client = kube.client().await;
    let sim = AlbControllerSim::start(client.clone());
    let api: Api<Ingress> = Api::namespaced(client, "default");
    api.patch(
        "web",
        &PatchParams::apply("test"),
        &Patch::Apply(ingress("web", "alb")),
    )
    .await
    .unwrap();
    until(async || hostname(&api.get("web").await.ok()?))
        .await
        .expect("a hostname is set");
    sim.stop();
    api.delete("web", &DeleteParams::default()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let held = api.get("web").await.expect("still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(held.metadata.finalizers.unwrap(), [FINALIZER]);
}

fn binding_api(client: &kube::Client) -> Api<kube::api::DynamicObject> {
    let gvk = kube::api::GroupVersionKind::gvk("elbv2.k8s.aws", "v1beta1", "TargetGroupBinding");
    let resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, "targetgroupbindings");
    Api::namespaced_with(client.clone(), "default", &resource)
}

async fn binding_crd(client: &kube::Client) {
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "targetgroupbindings.elbv2.k8s.aws"},
        "spec": {"group": "elbv2.k8s.aws", "scope": "Namespaced",
                 "names": {"kind": "TargetGroupBinding", "plural": "targetgroupbindings", "singular": "targetgroupbinding", "listKind": "TargetGroupBindingList"},
                 "versions": [{"name": "v1beta1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    });
    crds.patch(
        "targetgroupbindings.elbv2.k8s.aws",
        &PatchParams::apply("test"),
        &Patch::Apply(crd),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_group_bindings_are_made_and_released_with_the_alb() {
    let kube = ControlPlane::start();
    let client = kube.client().await;
    binding_crd(&client).await;
    let sim = AlbControllerSim::start(client.clone());
    let api: Api<Ingress> = Api::namespaced(client.clone(), "default");
    api.patch(
        "web",
        &PatchParams::apply("test"),
        &Patch::Apply(ingress("web", "alb")),
    )
    .await
    .unwrap();
    let bindings = binding_api(&client);
    let made = until(async || {
        let list = bindings.list(&Default::default()).await.ok()?;
        (list.items.len() == 1).then(|| list.items[0].clone())
    })
    .await
    .expect("a TargetGroupBinding for the backend");
    assert!(
        made.metadata
            .name
            .as_deref()
            .unwrap()
            .starts_with("k8s-default-s-")
    );
    assert_eq!(
        made.metadata.finalizers.as_deref(),
        Some(&[TGB_FINALIZER.to_owned()][..])
    );
    let labels = made.metadata.labels.clone().unwrap();
    assert_eq!(labels["ingress.k8s.aws/stack-namespace"], "default");
    assert_eq!(labels["ingress.k8s.aws/stack-name"], "web");
    assert_eq!(
        made.data["spec"]["serviceRef"],
        json!({"name": "s", "port": 80})
    );
    assert!(
        made.data["spec"]["targetGroupARN"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:elasticloadbalancing:us-east-2:")
    );

    api.delete("web", &DeleteParams::default()).await.unwrap();
    until(async || {
        api.get_opt("web")
            .await
            .ok()
            .filter(Option::is_none)
            .map(|_| ())
    })
    .await
    .expect("the Ingress goes");
    let left = bindings.list(&Default::default()).await.unwrap();
    assert!(left.items.is_empty(), "{:?}", left.items);
    assert_eq!(sim.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_controller_leaves_the_binding_finalizers() {
    let kube = ControlPlane::start();
    let client = kube.client().await;
    binding_crd(&client).await;
    let sim = AlbControllerSim::start(client.clone());
    let api: Api<Ingress> = Api::namespaced(client.clone(), "default");
    api.patch(
        "web",
        &PatchParams::apply("test"),
        &Patch::Apply(ingress("web", "alb")),
    )
    .await
    .unwrap();
    let bindings = binding_api(&client);
    let name = until(async || {
        let list = bindings.list(&Default::default()).await.ok()?;
        list.items.first().and_then(|b| b.metadata.name.clone())
    })
    .await
    .expect("a binding");
    sim.stop();
    api.delete("web", &DeleteParams::default()).await.unwrap();
    bindings
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let held = bindings.get(&name).await.expect("still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert_eq!(held.metadata.finalizers.unwrap(), [TGB_FINALIZER]);
    assert_eq!(
        api.get("web").await.unwrap().metadata.finalizers.unwrap(),
        [FINALIZER]
    );
}

// With AWS: the controller the cluster runs, configured by its Deployment, resolving each ALB's
// subnets in moto as the controller does.

const CLUSTER: &str = "demo";

/// A subnet in moto, with tags; its id.
async fn subnet(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
    cidr: &str,
    zone: &str,
    tags: &[(&str, &str)],
) -> String {
    let id = ec2
        .create_subnet()
        .vpc_id(vpc)
        .cidr_block(cidr)
        .availability_zone(format!("{}{zone}", testbed::REGION))
        .send()
        .await
        .unwrap()
        .subnet()
        .unwrap()
        .subnet_id()
        .unwrap()
        .to_owned();
    for (key, value) in tags {
        ec2.create_tags()
            .resources(&id)
            .tags(
                aws_sdk_ec2::types::Tag::builder()
                    .key(*key)
                    .value(*value)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    id
}

async fn vpc(ec2: &aws_sdk_ec2::Client, cidr: &str) -> String {
    ec2.create_vpc()
        .cidr_block(cidr)
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_owned()
}

/// The controller's Deployment (one replica, run by the Fargate simulator), as eks-patch
/// renders its arguments.
fn controller(vpc: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "aws-load-balancer-controller", "namespace": "kube-system"},
        "spec": {"replicas": 1,
                 "selector": {"matchLabels": {"app": "lbc"}},
                 "template": {"metadata": {"labels": {"app": "lbc"}},
                              "spec": {"containers": [{"name": "controller", "image": "example/lbc:1",
                                  "args": [format!("--cluster-name={CLUSTER}"), "--ingress-class=alb",
                                           format!("--aws-region={}", testbed::REGION),
                                           format!("--aws-vpc-id={vpc}")]}]}}}
    })
}

fn annotated(name: &str, annotations: serde_json::Value) -> serde_json::Value {
    let mut ingress = ingress(name, "alb");
    ingress["metadata"]["annotations"] = annotations;
    ingress
}

/// The controller's events about Ingress `name` (default namespace): (type, reason, message,
/// count, component).
async fn events_of(
    client: &kube::Client,
    name: &str,
) -> Vec<(String, String, String, i32, String)> {
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    let list = api
        .list(&kube::api::ListParams::default().fields(&format!(
            "involvedObject.kind=Ingress,involvedObject.name={name}"
        )))
        .await
        .unwrap();
    list.items
        .into_iter()
        .map(|e| {
            (
                e.type_.unwrap_or_default(),
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default(),
                e.count.unwrap_or_default(),
                e.source.and_then(|s| s.component).unwrap_or_default(),
            )
        })
        .collect()
}

struct AwsBed {
    _kube: ControlPlane,
    _moto: testbed::Moto,
    _pods: testbed::sim::FargateSim,
    client: kube::Client,
    ec2: aws_sdk_ec2::Client,
    sim: AlbControllerSim,
}

impl AwsBed {
    async fn start() -> AwsBed {
        let kube = ControlPlane::start();
        let moto = testbed::Moto::start();
        let client = kube.client().await;
        let pods = testbed::sim::FargateSim::start(
            kube.simulator_client().await,
            testbed::fargate::Profiles::namespaces(&["kube-system"]),
        )
        .await;
        let sim = AlbControllerSim::launch(
            kube.simulator_client().await,
            testbed::albsim::Options {
                aws_endpoint: Some(moto.endpoint.clone()),
                region: testbed::REGION.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let ec2 = aws_sdk_ec2::Client::new(&moto.sdk_config(testbed::REGION).await);
        AwsBed {
            _kube: kube,
            _moto: moto,
            _pods: pods,
            client,
            ec2,
            sim,
        }
    }

    async fn run_controller(&self, vpc: &str) {
        let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
            Api::namespaced(self.client.clone(), "kube-system");
        deployments
            .patch(
                "aws-load-balancer-controller",
                &PatchParams::apply("test"),
                &Patch::Apply(controller(vpc)),
            )
            .await
            .unwrap();
    }

    fn ingresses(&self) -> Api<Ingress> {
        Api::namespaced(self.client.clone(), "default")
    }

    async fn apply(&self, body: serde_json::Value) {
        let name = body["metadata"]["name"].as_str().unwrap().to_owned();
        self.ingresses()
            .patch(&name, &PatchParams::apply("test"), &Patch::Apply(body))
            .await
            .unwrap();
    }
}

/// Polls for at most 20 s.
async fn within_20s<T>(mut probe: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    for _ in 0..100 {
        if let Some(found) = probe().await {
            return Some(found);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_aws_the_controller_resolves_subnets_or_says_why() {
    let bed = AwsBed::start().await;
    let ec2 = &bed.ec2;
    let vpc = vpc(ec2, "10.40.0.0/16").await;
    let elb = ("kubernetes.io/role/elb", "1");
    let public_a = subnet(ec2, &vpc, "10.40.0.0/24", "a", &[elb]).await;
    let public_b = subnet(
        ec2,
        &vpc,
        "10.40.1.0/24",
        "b",
        &[elb, ("kubernetes.io/cluster/demo", "shared")],
    )
    .await;
    // Tagged for another cluster only: never discovered.
    let theirs = subnet(
        ec2,
        &vpc,
        "10.40.2.0/24",
        "c",
        &[elb, ("kubernetes.io/cluster/other", "owned")],
    )
    .await;
    // Internal: one subnet of another cluster, one with 7 free addresses (a /28 has 11).
    let internal = ("kubernetes.io/role/internal-elb", "1");
    let other_internal = subnet(
        ec2,
        &vpc,
        "10.40.8.0/24",
        "a",
        &[internal, ("kubernetes.io/cluster/other", "owned")],
    )
    .await;
    let full = subnet(ec2, &vpc, "10.40.9.0/28", "b", &[internal]).await;
    for _ in 0..4 {
        ec2.create_network_interface()
            .subnet_id(&full)
            .send()
            .await
            .unwrap();
    }

    // No controller Deployment yet: nothing happens to an Ingress of class alb.
    let internet_facing = json!({"alb.ingress.kubernetes.io/scheme": "internet-facing"});
    bed.apply(annotated("web", internet_facing.clone())).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let untouched = bed.ingresses().get("web").await.unwrap();
    assert!(untouched.metadata.finalizers.is_none() && hostname(&untouched).is_none());
    assert!(events_of(&bed.client, "web").await.is_empty());

    bed.run_controller(&vpc).await;
    let host = within_20s(async || hostname(&bed.ingresses().get("web").await.ok()?))
        .await
        .expect("the ALB once the controller runs");
    let alb = bed.sim.alb("default", "web").unwrap();
    assert_eq!(alb.hostname, host);
    let mut expected = vec![public_a.clone(), public_b.clone()];
    expected.sort();
    assert_eq!(alb.subnets, expected, "not {theirs}");
    let events = events_of(&bed.client, "web").await;
    assert!(
        events
            .iter()
            .any(|(kind, reason, message, _, component)| kind == "Normal"
                && reason == "SuccessfullyReconciled"
                && message == "Successfully reconciled"
                && component == "ingress"),
        "{events:?}"
    );

    // Internal, discovered: both candidates are dropped; no ALB, a Warning event, retried.
    bed.apply(annotated(
        "inside",
        json!({"alb.ingress.kubernetes.io/scheme": "internal"}),
    ))
    .await;
    let why = "Failed build model due to couldn't auto-discover subnets: unable to resolve at least one subnet. Evaluated 2 subnets: 1 are tagged for other clusters, and 1 have insufficient available IP addresses";
    let repeated = within_20s(async || {
        events_of(&bed.client, "inside").await.into_iter().find(
            |(kind, reason, message, count, component)| {
                kind == "Warning"
                    && reason == "FailedBuildModel"
                    && message == why
                    && *count >= 3
                    && component == "ingress"
            },
        )
    })
    .await;
    assert!(
        repeated.is_some(),
        "{:?}",
        events_of(&bed.client, "inside").await
    );
    let inside = bed.ingresses().get("inside").await.unwrap();
    assert!(hostname(&inside).is_none());
    assert_eq!(
        inside.metadata.finalizers.unwrap(),
        [FINALIZER],
        "the finalizer comes first"
    );
    assert!(bed.sim.alb("default", "inside").is_none());

    // Fixed (the other cluster's tag off, another subnet in zone b), the next try makes it.
    ec2.delete_tags()
        .resources(&other_internal)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("kubernetes.io/cluster/other")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let roomy = subnet(ec2, &vpc, "10.40.10.0/24", "b", &[internal]).await;
    bed.apply(annotated(
        "inside",
        json!({"alb.ingress.kubernetes.io/scheme": "internal", "touched": "1"}),
    ))
    .await;
    within_20s(async || hostname(&bed.ingresses().get("inside").await.ok()?))
        .await
        .expect("the internal ALB once subnets are there");
    let mut expected = vec![other_internal.clone(), roomy.clone()];
    expected.sort();
    assert_eq!(bed.sim.alb("default", "inside").unwrap().subnets, expected);

    // Named subnets: used as named, but one zone is not enough; unknown ones are named.
    bed.apply(annotated(
        "named",
        json!({"alb.ingress.kubernetes.io/scheme": "internet-facing",
               "alb.ingress.kubernetes.io/subnets": format!("{public_b}, {theirs}")}),
    ))
    .await;
    within_20s(async || hostname(&bed.ingresses().get("named").await.ok()?))
        .await
        .expect("named subnets in two zones");
    let mut expected = vec![public_b.clone(), theirs.clone()];
    expected.sort();
    let mut got = bed.sim.alb("default", "named").unwrap().subnets;
    got.sort();
    assert_eq!(got, expected, "named subnets skip the cluster tag check");
    bed.apply(annotated(
        "one-zone",
        json!({"alb.ingress.kubernetes.io/subnets": public_a.clone()}),
    ))
    .await;
    bed.apply(annotated(
        "unknown",
        json!({"alb.ingress.kubernetes.io/subnets": "subnet-0000000000000dead,public-x"}),
    ))
    .await;
    let one_zone = within_20s(async || {
        events_of(&bed.client, "one-zone")
            .await
            .into_iter()
            .find(|e| e.1 == "FailedBuildModel")
    })
    .await
    .expect("a FailedBuildModel event");
    assert_eq!(
        one_zone.2,
        "Failed build model due to subnets count less than minimal required count: 1 < 2"
    );
    let unknown = within_20s(async || {
        events_of(&bed.client, "unknown")
            .await
            .into_iter()
            .find(|e| e.1 == "FailedBuildModel")
    })
    .await
    .expect("a FailedBuildModel event");
    assert!(
        unknown
            .2
            .starts_with("Failed build model due to failed to list subnets by names or IDs: ")
            && unknown.2.contains("subnet-0000000000000dead"),
        "{}",
        unknown.2
    );

    // The controller deleted: nothing releases an Ingress any more.
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(bed.client.clone(), "kube-system");
    deployments
        .delete("aws-load-balancer-controller", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    bed.ingresses()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = bed.ingresses().get("web").await.expect("still there");
    assert_eq!(held.metadata.finalizers.unwrap(), [FINALIZER]);
    assert!(bed.sim.alb("default", "web").is_some(), "its ALB stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_aws_untagged_subnets_are_told_apart_by_their_routes() {
    let bed = AwsBed::start().await;
    // A brought network: public subnets route to an internet gateway, nothing is tagged.
    let network =
        testbed::seed::network(&bed._moto.sdk_config(testbed::REGION).await, CLUSTER).await;
    bed.run_controller(&network.vpc_id).await;
    bed.apply(annotated(
        "web",
        json!({"alb.ingress.kubernetes.io/scheme": "internet-facing"}),
    ))
    .await;
    bed.apply(annotated("inside", json!({}))).await;
    within_20s(async || hostname(&bed.ingresses().get("web").await.ok()?))
        .await
        .expect("an internet-facing ALB");
    within_20s(async || hostname(&bed.ingresses().get("inside").await.ok()?))
        .await
        .expect("an internal ALB (the default scheme)");
    let mut public = network.public_subnet_ids.clone();
    public.sort();
    let mut private = network.private_subnet_ids.clone();
    private.sort();
    assert_eq!(bed.sim.alb("default", "web").unwrap().subnets, public);
    assert_eq!(bed.sim.alb("default", "inside").unwrap().subnets, private);
}
