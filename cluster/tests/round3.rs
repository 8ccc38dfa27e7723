//! `eks-cluster create` on real-account shapes (issue 18, round 3), the real binary against moto
//! behind the AWS proxy with the rules that make it report what EKS and EC2 report
//! (`testbed::awsrules::ClusterConfig`: authentication mode, support type, endpoint settings and
//! updates; `blackhole_routes`: routes to gone targets):
//!
//! - brought private subnets need a way out (a `0.0.0.0/0` route to a NAT gateway, transit
//!   gateway or network interface) or the VPC endpoints of ECR, S3, STS, EC2 and ELB;
//! - brought public subnets span two zones (an ALB needs two); none brought is a warning;
//! - `--public-access-cidrs` narrows the public API endpoint (sent at creation, changed on a
//!   re-run of a cluster eks-cluster made, left on an adopted one), checked before any call;
//! - new clusters: `accessConfig.authenticationMode` `API`, `upgradePolicy.supportType`
//!   `STANDARD` unless `--support-type` says otherwise; an existing cluster's are left as they
//!   are.
//!
//! `EKS_FA_CLUSTER_BIN` runs these tests against another build of the binary (how they were
//! seen failing without the change).

use aws_sdk_ec2::types::VpcEndpointType;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use testbed::awsproxy::AwsProxy;
use testbed::awsrules::{ClusterConfig, blackhole_routes};
use testbed::controlplane::ControlPlane;
use testbed::fargate::Profiles;
use testbed::run::{Run, assert_exit};
use testbed::seed::SeededNetwork;
use testbed::sim::FargateSim;
use testbed::{Moto, REGION};

fn bin() -> String {
    std::env::var("EKS_FA_CLUSTER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_eks-cluster").to_owned())
}

/// moto behind the proxy with the rules, and (for runs that get as far as Kubernetes) the
/// control plane with EKS's CoreDNS and the Fargate simulator.
struct Bed {
    moto: Moto,
    proxy: AwsProxy,
    clusters: ClusterConfig,
    kube: Option<(ControlPlane, FargateSim)>,
}

impl Bed {
    async fn new(with_kube: bool) -> Bed {
        let moto = Moto::start();
        let proxy = AwsProxy::in_front_of(&moto);
        let clusters = ClusterConfig::new(2);
        clusters.install(&proxy, &moto.endpoint);
        blackhole_routes(&proxy, &moto.endpoint);
        let kube = if with_kube {
            let kube = ControlPlane::start();
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
            let sim = FargateSim::start(
                kube.simulator_client().await,
                Profiles::eks(&moto.sdk_config(REGION).await),
            )
            .await;
            Some((kube, sim))
        } else {
            None
        };
        Bed {
            moto,
            proxy,
            clusters,
            kube,
        }
    }

    fn run(&self, args: &[&str], stdin: &str) -> Run {
        let mut all = vec!["--region", REGION];
        all.extend_from_slice(args);
        testbed::run::run(self.proxy.command(&self.moto, bin()).args(&all), stdin)
    }

    /// `create` with the bed's kubeconfig (when it has a control plane) and `extra`.
    fn create(&self, extra: &[&str], stdin: &str) -> Run {
        let kubeconfig = self
            .kube
            .as_ref()
            .map(|(k, _)| k.kubeconfig().to_string_lossy().into_owned());
        let mut args = vec!["create"];
        if let Some(path) = &kubeconfig {
            args.extend(["--kubeconfig", path.as_str()]);
        }
        args.extend_from_slice(extra);
        self.run(&args, stdin)
    }

    async fn config(&self) -> aws_config::SdkConfig {
        self.moto.sdk_config(REGION).await
    }

    async fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.config().await)
    }

    /// EKS as the binaries see it: through the proxy and its rules.
    async fn eks_via_proxy(&self) -> aws_sdk_eks::Client {
        let config = aws_sdk_eks::config::Builder::from(&self.config().await)
            .endpoint_url(&self.proxy.endpoint)
            .build();
        aws_sdk_eks::Client::from_conf(config)
    }

    async fn clusters(&self) -> Vec<String> {
        aws_sdk_eks::Client::new(&self.config().await)
            .list_clusters()
            .send()
            .await
            .unwrap()
            .clusters()
            .to_vec()
    }

    async fn role_exists(&self, name: &str) -> bool {
        aws_sdk_iam::Client::new(&self.config().await)
            .get_role()
            .role_name(name)
            .send()
            .await
            .is_ok()
    }

    /// The calls so far that may change something, then forgets them.
    fn take_mutating(&self) -> Vec<String> {
        let calls = self.proxy.mutating_calls();
        self.proxy.clear_calls();
        calls
    }
}

/// The network flags of `create` for `network` (its public subnets: `public`).
fn network_flags(network: &SeededNetwork, public: &[String]) -> Vec<String> {
    let mut flags = vec![
        "--vpc-id".to_owned(),
        network.vpc_id.clone(),
        "--private-subnets".to_owned(),
        network.private_subnet_ids.join(","),
    ];
    if !public.is_empty() {
        flags.push("--public-subnets".to_owned());
        flags.push(public.join(","));
    }
    flags
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A state file whose content a refusal must leave as it is.
struct StateFile {
    _dir: tempfile::TempDir,
    path: String,
}

const BEFORE: &str = r#"{"schemaVersion":1,"other":{"kept":true}}"#;

impl StateFile {
    fn new() -> StateFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, BEFORE).unwrap();
        StateFile {
            path: path.to_string_lossy().into_owned(),
            _dir: dir,
        }
    }

    fn untouched(&self) {
        assert_eq!(std::fs::read_to_string(&self.path).unwrap(), BEFORE);
    }
}

/// A refusal: exit 2, every needle in stderr, no mutating call, the state file as it was, no
/// cluster and no role made.
async fn assert_refused(bed: &Bed, run: &Run, state: &StateFile, cluster: &str, needles: &[&str]) {
    assert_exit(run, 2);
    for needle in needles {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
    let mutating = bed.take_mutating();
    assert!(mutating.is_empty(), "mutating calls: {mutating:?}");
    state.untouched();
    assert!(bed.clusters().await.is_empty());
    assert!(
        !bed.role_exists(&format!("eks-fargate-{cluster}-cluster"))
            .await
    );
}

/// The VPC's main route table.
async fn main_table(ec2: &aws_sdk_ec2::Client, vpc_id: &str) -> String {
    ec2.describe_route_tables()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("vpc-id")
                .values(vpc_id)
                .build(),
        )
        .send()
        .await
        .unwrap()
        .route_tables()
        .iter()
        .find(|t| t.associations().iter().any(|a| a.main() == Some(true)))
        .and_then(|t| t.route_table_id())
        .unwrap()
        .to_owned()
}

/// The route table explicitly associated with `subnet`, and that association.
async fn table_of(ec2: &aws_sdk_ec2::Client, subnet: &str) -> (String, String) {
    let tables = ec2.describe_route_tables().send().await.unwrap();
    tables
        .route_tables()
        .iter()
        .find_map(|t| {
            t.associations()
                .iter()
                .find(|a| a.subnet_id() == Some(subnet))
                .map(|a| {
                    (
                        t.route_table_id().unwrap().to_owned(),
                        a.route_table_association_id().unwrap().to_owned(),
                    )
                })
        })
        .unwrap()
}

async fn endpoint(
    ec2: &aws_sdk_ec2::Client,
    vpc_id: &str,
    service: &str,
    kind: VpcEndpointType,
    place: &[String],
) -> String {
    let mut request = ec2
        .create_vpc_endpoint()
        .vpc_id(vpc_id)
        .service_name(format!("com.amazonaws.{REGION}.{service}"))
        .vpc_endpoint_type(kind.clone());
    request = match kind {
        VpcEndpointType::Gateway => request.set_route_table_ids(Some(place.to_vec())),
        _ => request
            .set_subnet_ids(Some(place.to_vec()))
            .private_dns_enabled(true),
    };
    request
        .send()
        .await
        .unwrap()
        .vpc_endpoint()
        .and_then(|e| e.vpc_endpoint_id())
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_subnets_without_a_way_out_are_refused_unless_the_vpc_has_the_endpoints() {
    let bed = Bed::new(true).await;
    let ec2 = bed.ec2().await;
    let network = testbed::seed::network(&bed.config().await, "noway").await;
    // The private subnets lose their NAT route table: the VPC's main table (local route only)
    // is theirs now.
    let (nat_table, _) = table_of(&ec2, &network.private_subnet_ids[0]).await;
    for subnet in &network.private_subnet_ids {
        let (_, association) = table_of(&ec2, subnet).await;
        ec2.disassociate_route_table()
            .association_id(association)
            .send()
            .await
            .unwrap();
    }
    let main = main_table(&ec2, &network.vpc_id).await;
    let flags = network_flags(&network, &network.public_subnet_ids);
    let state = StateFile::new();
    let mut args = vec!["--state", &state.path, "--cluster", "noway"];
    args.extend(refs(&flags));

    let refused = bed.create(&args, "");
    let mut needles: Vec<String> = vec![format!(
        "private subnets {} (route table {main}, the VPC's main table) have no route to 0.0.0.0/0",
        network.private_subnet_ids.join(", ")
    )];
    needles.extend(
        [
            "ecr.api",
            "ecr.dkr",
            "s3",
            "sts",
            "elasticloadbalancing",
            "ec2",
        ]
        .iter()
        .map(|s| format!("com.amazonaws.{REGION}.{s}")),
    );
    needles.push(format!("--vpc-id {}", network.vpc_id));
    needles.push("aws ec2 create-route --route-table-id <table> --destination-cidr-block 0.0.0.0/0 --nat-gateway-id <nat>".into());
    needles.push("(nothing was created)".into());
    assert_refused(&bed, &refused, &state, "noway", &refs(&needles)).await;

    // Interface endpoints with private DNS for five services; S3's gateway endpoint on another
    // table than the subnets'.
    for service in ["ecr.api", "ecr.dkr", "sts", "elasticloadbalancing", "ec2"] {
        endpoint(
            &ec2,
            &network.vpc_id,
            service,
            VpcEndpointType::Interface,
            &network.private_subnet_ids,
        )
        .await;
    }
    let elsewhere = endpoint(
        &ec2,
        &network.vpc_id,
        "s3",
        VpcEndpointType::Gateway,
        std::slice::from_ref(&nat_table),
    )
    .await;
    let refused = bed.create(&args, "");
    assert_refused(
        &bed,
        &refused,
        &state,
        "noway",
        &[&format!(
            "are missing: com.amazonaws.{REGION}.s3 (gateway endpoint {elsewhere} is not on {main})"
        )],
    )
    .await;
    assert!(
        !refused.stderr.contains(".ecr.api"),
        "only s3 is missing: {}",
        refused.stderr
    );

    // S3's gateway endpoint on the subnets' table: endpoints only, and the cluster is made.
    endpoint(
        &ec2,
        &network.vpc_id,
        "s3",
        VpcEndpointType::Gateway,
        std::slice::from_ref(&main),
    )
    .await;
    let made = bed.create(&args, "");
    assert_exit(&made, 0);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&state.path).unwrap()).unwrap();
    assert_eq!(saved["cluster"]["clusterCreatedByUs"], true);
    assert_eq!(saved["other"], json!({"kept": true}));
    assert_eq!(bed.clusters().await, ["noway"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_routes_that_lead_nowhere_are_refused() {
    let bed = Bed::new(false).await;
    let ec2 = bed.ec2().await;
    let network = testbed::seed::network(&bed.config().await, "nowhere").await;
    let (table, _) = table_of(&ec2, &network.private_subnet_ids[0]).await;
    let flags = network_flags(&network, &network.public_subnet_ids);
    let state = StateFile::new();
    let mut base = vec!["--cluster", "nowhere"];
    base.extend(refs(&flags));
    let args = [&["--state", state.path.as_str()][..], &base].concat();
    let replace =
        |route: aws_sdk_ec2::operation::replace_route::builders::ReplaceRouteFluentBuilder| async move {
            route.send().await.unwrap();
        };
    let default_route = || {
        ec2.replace_route()
            .route_table_id(&table)
            .destination_cidr_block("0.0.0.0/0")
    };

    // Through a network interface (an instance acting as NAT) that was deleted since: EC2 says
    // blackhole (moto does not; the proxy's rule does).
    let eni = ec2
        .create_network_interface()
        .subnet_id(&network.public_subnet_ids[0])
        .send()
        .await
        .unwrap()
        .network_interface()
        .and_then(|n| n.network_interface_id())
        .unwrap()
        .to_owned();
    replace(default_route().network_interface_id(&eni)).await;
    let live = bed.create(&[&["--dry-run"][..], &base].concat(), "");
    assert_exit(&live, 0);
    ec2.delete_network_interface()
        .network_interface_id(&eni)
        .send()
        .await
        .unwrap();
    bed.proxy.clear_calls();
    let refused = bed.create(&args, "");
    assert_refused(
        &bed,
        &refused,
        &state,
        "nowhere",
        &[&format!(
            "have a route to 0.0.0.0/0 that goes to {eni}, a blackhole (its target is gone)"
        )],
    )
    .await;

    // Through a VPC peering connection: no edge-to-edge routing to the peer's gateways.
    let peer = ec2
        .create_vpc()
        .cidr_block("10.99.0.0/16")
        .send()
        .await
        .unwrap()
        .vpc()
        .and_then(|v| v.vpc_id())
        .unwrap()
        .to_owned();
    let peering = ec2
        .create_vpc_peering_connection()
        .vpc_id(&network.vpc_id)
        .peer_vpc_id(peer)
        .send()
        .await
        .unwrap()
        .vpc_peering_connection()
        .and_then(|p| p.vpc_peering_connection_id())
        .unwrap()
        .to_owned();
    replace(default_route().vpc_peering_connection_id(&peering)).await;
    bed.proxy.clear_calls();
    let refused = bed.create(&args, "");
    assert_refused(
        &bed,
        &refused,
        &state,
        "nowhere",
        &[&format!("that goes to {peering}, a VPC peering connection")],
    )
    .await;

    // Through the NAT gateway, deleted since.
    let nat = testbed::seed::nat_route(&ec2, &network.vpc_id, &network.public_subnet_ids[1], &[])
        .await
        .0;
    replace(default_route().nat_gateway_id(&nat)).await;
    ec2.delete_nat_gateway()
        .nat_gateway_id(&nat)
        .send()
        .await
        .unwrap();
    bed.proxy.clear_calls();
    let refused = bed.create(&args, "");
    assert_refused(
        &bed,
        &refused,
        &state,
        "nowhere",
        &[&format!("goes to {nat}, a blackhole"), &table],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brought_public_subnets_span_two_zones_and_none_is_a_warning() {
    let bed = Bed::new(false).await;
    let network = testbed::seed::network(&bed.config().await, "onezone").await;
    let state = StateFile::new();
    let one = network_flags(&network, &network.public_subnet_ids[..1]);
    let mut args = vec!["--state", &state.path, "--cluster", "onezone"];
    args.extend(refs(&one));
    let refused = bed.create(&args, "");
    assert_refused(
        &bed,
        &refused,
        &state,
        "onezone",
        &[
            &format!(
                "the public subnets {} lie in 1 availability zone ({REGION}a)",
                network.public_subnet_ids[0]
            ),
            "an application load balancer needs subnets in at least two zones",
            "Add a public subnet of another zone to --public-subnets",
        ],
    )
    .await;

    // None brought: allowed, with the tag the controller discovers subnets by.
    let none = network_flags(&network, &[]);
    let mut args = vec!["--cluster", "onezone", "--dry-run"];
    args.extend(refs(&none));
    let dry = bed.create(&args, "");
    assert_exit(&dry, 0);
    assert!(
        dry.stderr
            .contains("no public subnets brought (--public-subnets)")
            && dry.stderr.contains("`kubernetes.io/role/elb=1`"),
        "{}",
        dry.stderr
    );
    // Both zones: no such warning.
    let both = network_flags(&network, &network.public_subnet_ids);
    let mut args = vec!["--cluster", "onezone", "--dry-run"];
    args.extend(refs(&both));
    let dry = bed.create(&args, "");
    assert_exit(&dry, 0);
    assert!(
        !dry.stderr.contains("kubernetes.io/role/elb"),
        "{}",
        dry.stderr
    );
    assert!(bed.take_mutating().is_empty());
}

#[test]
fn bad_public_access_cidrs_and_support_types_are_refused_before_any_call() {
    let moto = Moto::start();
    let proxy = AwsProxy::in_front_of(&moto);
    let state = StateFile::new();
    for (bad, needle) in [
        (
            vec!["--public-access-cidrs", "10.0.0.0/8"],
            "--public-access-cidrs: `10.0.0.0/8` is private (RFC 1918)",
        ),
        (
            vec!["--public-access-cidrs", "203.0.113.0/24,198.51.100.1/24"],
            "--public-access-cidrs: `198.51.100.1/24` has host bits set; did you mean 198.51.100.0/24?",
        ),
        (
            vec!["--public-access-cidrs", "2001:db8::/32"],
            "--public-access-cidrs: `2001:db8::/32` is not an IPv4 CIDR",
        ),
        (vec!["--support-type", "LTS"], "--support-type"),
    ] {
        let mut args = vec![
            "--region",
            REGION,
            "--state",
            &state.path,
            "create",
            "--cluster",
            "c",
        ];
        args.extend(bad.iter().copied());
        let refused = testbed::run::run(proxy.command(&moto, bin()).args(&args), "");
        assert_exit(&refused, 2);
        assert!(
            refused.stderr.contains(needle),
            "{needle}: {}",
            refused.stderr
        );
        let calls = proxy.calls();
        assert!(calls.is_empty(), "{bad:?} made AWS calls: {calls:?}");
        state.untouched();
    }
    // The state's supportType must be one EKS knows.
    let odd =
        r#"{"schemaVersion":1,"cluster":{"name":"c","region":"us-east-2","supportType":"LTS"}}"#;
    let refused = testbed::run::run(
        proxy
            .command(&moto, bin())
            .args(["--region", REGION, "create"]),
        odd,
    );
    assert_exit(&refused, 2);
    assert!(
        refused.stderr.contains("cluster.supportType `LTS`"),
        "{}",
        refused.stderr
    );
    assert!(proxy.calls().is_empty());
}

/// The `CreateCluster` body EKS accepted for `cluster`.
fn created(bed: &Bed, cluster: &str) -> Value {
    let all = bed.clusters.created();
    let mut mine: Vec<Value> = all.into_iter().filter(|b| b["name"] == cluster).collect();
    assert_eq!(mine.len(), 1, "one CreateCluster of {cluster}: {mine:?}");
    mine.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_clusters_use_api_authentication_standard_support_and_the_asked_cidrs() {
    let bed = Bed::new(true).await;
    let config = bed.config().await;
    let open_net = testbed::seed::network(&config, "open").await;
    let flags = network_flags(&open_net, &open_net.public_subnet_ids);

    // No flag: EKS's default, open to all, with a warning; API authentication, STANDARD.
    let mut args = vec!["--cluster", "open"];
    args.extend(refs(&flags));
    let made = bed.create(&args, "");
    assert_exit(&made, 0);
    assert!(
        made.stderr
            .contains("the cluster's public API endpoint is open to all addresses (0.0.0.0/0): pass --public-access-cidrs"),
        "{}",
        made.stderr
    );
    let sent = created(&bed, "open");
    assert_eq!(
        sent["accessConfig"],
        json!({"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": true})
    );
    assert_eq!(sent["upgradePolicy"], json!({"supportType": "STANDARD"}));
    assert_eq!(
        sent["resourcesVpcConfig"]["publicAccessCidrs"],
        json!(["0.0.0.0/0"])
    );
    assert_eq!(sent["resourcesVpcConfig"]["endpointPrivateAccess"], true);
    let c = &made.json()["cluster"];
    assert_eq!(c["publicAccessCidrs"], json!(["0.0.0.0/0"]));
    assert_eq!(c["supportType"], "STANDARD");
    let eks = bed.eks_via_proxy().await;
    let described = eks.describe_cluster().name("open").send().await.unwrap();
    let cluster = described.cluster().unwrap();
    assert_eq!(
        cluster
            .access_config()
            .and_then(|a| a.authentication_mode())
            .map(|m| m.as_str()),
        Some("API")
    );

    // A re-run with CIDRs: the cluster eks-cluster made is updated, its subnets kept.
    bed.proxy.clear_calls();
    let narrowed = bed.create(
        &[
            "--public-access-cidrs",
            "203.0.113.0/24",
            "--public-access-cidrs",
            "198.51.100.7/32",
        ],
        &made.stdout,
    );
    assert_exit(&narrowed, 0);
    assert!(
        !narrowed.stderr.contains("open to all addresses"),
        "{}",
        narrowed.stderr
    );
    assert_eq!(
        bed.clusters.updates(),
        [(
            "open".to_owned(),
            json!({
                "endpointPublicAccess": true,
                "endpointPrivateAccess": true,
                "publicAccessCidrs": ["203.0.113.0/24", "198.51.100.7/32"],
            })
        )]
    );
    assert_eq!(
        narrowed.json()["cluster"]["publicAccessCidrs"],
        json!(["203.0.113.0/24", "198.51.100.7/32"])
    );
    let described = eks.describe_cluster().name("open").send().await.unwrap();
    let vpc = described.cluster().unwrap().resources_vpc_config().unwrap();
    assert_eq!(
        vpc.public_access_cidrs(),
        ["203.0.113.0/24", "198.51.100.7/32"]
    );
    assert_eq!(vpc.subnet_ids().len(), 4, "the update kept the subnets");

    // Again without the flag: the state's CIDRs stay, nothing changes; another support type
    // for the existing cluster is warned of and left.
    bed.proxy.clear_calls();
    let again = bed.create(&["--support-type", "EXTENDED"], &narrowed.stdout);
    assert_exit(&again, 0);
    let mutating = bed.take_mutating();
    assert!(mutating.is_empty(), "{mutating:?}");
    assert_eq!(
        again.json()["cluster"]["publicAccessCidrs"],
        json!(["203.0.113.0/24", "198.51.100.7/32"])
    );
    assert!(
        again
            .stderr
            .contains("cluster open has support type STANDARD, not the EXTENDED asked for; it is left as it is"),
        "{}",
        again.stderr
    );
    assert_eq!(bed.clusters.updates().len(), 1);

    // A new cluster made with the flags: sent in CreateCluster.
    let narrow_net = testbed::seed::network(&config, "narrow").await;
    let flags = network_flags(&narrow_net, &narrow_net.public_subnet_ids);
    let mut args = vec![
        "--cluster",
        "narrow",
        "--public-access-cidrs",
        "203.0.113.0/24,198.51.100.7/32",
        "--support-type",
        "EXTENDED",
    ];
    args.extend(refs(&flags));
    let made = bed.create(&args, "");
    assert_exit(&made, 0);
    assert!(
        !made.stderr.contains("open to all addresses"),
        "{}",
        made.stderr
    );
    let sent = created(&bed, "narrow");
    assert_eq!(
        sent["resourcesVpcConfig"]["publicAccessCidrs"],
        json!(["203.0.113.0/24", "198.51.100.7/32"])
    );
    assert_eq!(sent["upgradePolicy"], json!({"supportType": "EXTENDED"}));
    assert_eq!(sent["accessConfig"]["authenticationMode"], "API");
    assert_eq!(made.json()["cluster"]["supportType"], "EXTENDED");
    assert_eq!(
        bed.clusters.updates().len(),
        1,
        "a new cluster needs no update"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adopted_cluster_keeps_its_authentication_mode_and_endpoint() {
    let bed = Bed::new(true).await;
    let network = testbed::seed::network(&bed.config().await, "theirs").await;
    // Someone else's cluster, made through EKS (the proxy) in API_AND_CONFIG_MAP.
    bed.eks_via_proxy()
        .await
        .create_cluster()
        .name("theirs")
        .role_arn("arn:aws:iam::123456789012:role/their-cluster-role")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .set_subnet_ids(Some(network.private_subnet_ids.clone()))
                .build(),
        )
        .access_config(
            aws_sdk_eks::types::CreateAccessConfigRequest::builder()
                .authentication_mode(aws_sdk_eks::types::AuthenticationMode::ApiAndConfigMap)
                .build(),
        )
        .send()
        .await
        .unwrap();
    bed.proxy.clear_calls();
    let flags = network_flags(&network, &network.public_subnet_ids);
    let mut args = vec![
        "--cluster",
        "theirs",
        "--adopt",
        "--public-access-cidrs",
        "203.0.113.0/24",
    ];
    args.extend(refs(&flags));
    let adopted = bed.create(&args, "");
    assert_exit(&adopted, 0);
    for needle in [
        "cluster theirs uses authentication mode API_AND_CONFIG_MAP; it is left as it is",
        "cluster theirs is adopted: its public endpoint stays open to 0.0.0.0/0, not 203.0.113.0/24",
    ] {
        assert!(
            adopted.stderr.contains(needle),
            "{needle}: {}",
            adopted.stderr
        );
    }
    let updates: Vec<String> = bed
        .proxy
        .calls()
        .iter()
        .filter(|c| c.request.path.ends_with("/update-config"))
        .map(|c| c.to_string())
        .collect();
    assert!(updates.is_empty(), "{updates:?}");
    let c = &adopted.json()["cluster"];
    assert_eq!(c["clusterAdopted"], true);
    assert_eq!(c["publicAccessCidrs"], json!(["0.0.0.0/0"]));
    let described = bed
        .eks_via_proxy()
        .await
        .describe_cluster()
        .name("theirs")
        .send()
        .await
        .unwrap();
    assert_eq!(
        described
            .cluster()
            .and_then(|c| c.access_config())
            .and_then(|a| a.authentication_mode())
            .map(|m| m.as_str()),
        Some("API_AND_CONFIG_MAP")
    );
}
