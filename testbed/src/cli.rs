//! What `eks-testbed` does, for `make demo` and manual tries.

use std::process::ExitCode;

use serde_json::json;

use crate::{Moto, seed};

/// Starts moto and the Kubernetes control plane and keeps them until SIGINT or SIGTERM. The
/// control plane plays the EKS cluster(s) moto has in `region`: pods run on Fargate by the Fargate
/// profiles moto holds there (what `eks-cluster create` made). The binaries reach moto through
/// the hardened proxy ([`crate::hardened`]), as hard as AWS where the test bed knows how.
pub async fn serve(region: &str) -> ExitCode {
    let moto = Moto::start();
    let eks = crate::eks::EksCluster::start_with(
        crate::controlplane::Settings {
            sts_endpoint: Some(moto.endpoint.clone()),
            ..Default::default()
        },
        crate::sim::FargateSim::DEFAULT_DELAY,
        crate::fargate::Profiles::eks(&moto.sdk_config(region).await),
    )
    .await;
    let kube = &eks.kube;
    let client = kube.simulator_client().await;
    let hard = crate::hardened::HardAws::start(&moto, client.clone(), region);
    // The controller `eks-deploy` deploys: configured by its Deployment, it resolves each ALB's
    // subnets in moto, as the real one does in EC2.
    let alb = match crate::albsim::AlbControllerSim::launch(
        client,
        crate::albsim::Options {
            region: region.to_owned(),
            shared: true,
            aws_endpoint: Some(moto.endpoint.clone()),
            ..crate::albsim::Options::default()
        },
    )
    .await
    {
        Ok(alb) => alb,
        Err(e) => {
            eprintln!("error: cannot start the load balancer simulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let closed = crate::free_port();
    for (key, value) in hard.proxy.env(&moto) {
        println!("export {key}={value}");
    }
    println!("export EKS_FA_KUBECONFIG={}", kube.kubeconfig().display());
    // Every simulated ALB answers here; eks-deploy's --connect-to sends its HTTP check to it.
    println!(
        "export EKS_FA_ALB_ADDR=127.0.0.1:{}",
        alb.shared_port().unwrap_or_default()
    );
    // moto's clusters name a public OIDC issuer host; a proxy on a closed loopback port keeps
    // eks-oidc from reaching out to it, so the test bed touches only 127.0.0.1.
    println!("export HTTPS_PROXY=http://127.0.0.1:{closed}");
    println!("export NO_PROXY=127.0.0.1,localhost");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    eprintln!(
        "moto is serving at {} (through the hardened proxy at {}), the Kubernetes API server at {}; stop with SIGINT or SIGTERM",
        moto.endpoint,
        hard.endpoint(),
        kube.url
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    drop(alb);
    drop(hard);
    drop(eks);
    drop(moto);
    eprintln!("test bed stopped");
    ExitCode::SUCCESS
}

async fn config(region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .load()
        .await
}

/// Seeds a cluster as the tests do.
pub async fn seed_cluster(name: &str, region: &str) -> ExitCode {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        eprintln!(
            "error: AWS_ENDPOINT_URL is not set; this only seeds an emulator (eval \"$(eks-testbed serve)\" first)"
        );
        return ExitCode::from(2);
    }
    let seeded = seed::cluster(&config(region).await, name, true).await;
    println!(
        "{}",
        json!({
            "name": seeded.name,
            "vpcId": seeded.vpc_id,
            "subnetIds": seeded.subnet_ids,
            "clusterSecurityGroupId": seeded.cluster_security_group_id,
        })
    );
    ExitCode::SUCCESS
}

/// Seeds a network to bring to `eks-cluster create`; prints it as make variables.
pub async fn seed_network(cluster: &str, region: &str) -> ExitCode {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        eprintln!("error: AWS_ENDPOINT_URL is not set; this only seeds an emulator");
        return ExitCode::from(2);
    }
    let network = seed::network(&config(region).await, cluster).await;
    println!(
        "VPC_ID={} PRIVATE_SUBNETS={} PUBLIC_SUBNETS={}",
        network.vpc_id,
        network.private_subnet_ids.join(","),
        network.public_subnet_ids.join(",")
    );
    ExitCode::SUCCESS
}

/// Lists what is there.
pub async fn inventory(region: &str) -> ExitCode {
    let config = config(region).await;
    let cfn = aws_sdk_cloudformation::Client::new(&config);
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let stacks = match cfn.describe_stacks().send().await {
        Ok(answer) => answer
            .stacks()
            .iter()
            .filter(|s| s.stack_status().map(|s| s.as_str()) != Some("DELETE_COMPLETE"))
            .map(
                |s| json!({"name": s.stack_name(), "status": s.stack_status().map(|s| s.as_str())}),
            )
            .collect::<Vec<_>>(),
        Err(e) => {
            eprintln!("error: DescribeStacks: {e}");
            return ExitCode::FAILURE;
        }
    };
    let groups = match ec2.describe_security_groups().send().await {
        Ok(answer) => answer
            .security_groups()
            .iter()
            .filter(|g| g.group_name() != Some("default"))
            .map(|g| json!({"id": g.group_id(), "name": g.group_name(), "vpcId": g.vpc_id()}))
            .collect::<Vec<_>>(),
        Err(e) => {
            eprintln!("error: DescribeSecurityGroups: {e}");
            return ExitCode::FAILURE;
        }
    };
    let iam = aws_sdk_iam::Client::new(&config);
    let roles = match iam.list_roles().send().await {
        Ok(answer) => answer
            .roles()
            .iter()
            .map(|r| r.role_name().to_owned())
            .collect::<Vec<_>>(),
        Err(e) => {
            eprintln!("error: ListRoles: {e}");
            return ExitCode::FAILURE;
        }
    };
    let providers = match iam.list_open_id_connect_providers().send().await {
        Ok(answer) => answer
            .open_id_connect_provider_list()
            .iter()
            .filter_map(|p| p.arn().map(str::to_owned))
            .collect::<Vec<_>>(),
        Err(e) => {
            eprintln!("error: ListOpenIDConnectProviders: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "{}",
        json!({"stacks": stacks, "securityGroups": groups, "roles": roles, "oidcProviders": providers})
    );
    ExitCode::SUCCESS
}
