//! Never touch what the tool did not make, across the whole pipeline: an account that already
//! has a cluster of our name (with a Fargate profile of its own), an IAM role under the name
//! `irsa` would use, and a Helm-installed object colliding with one of our manifests. Each step
//! refuses what is not its own (exit 2, nothing changed, no mutating call); with `--adopt` the
//! install goes through and answers 200; the teardown removes only what the tool made and leaves
//! the adopted cluster, role and object standing.

use eks_fa_e2e::{Bed, CLUSTER, Sdk, TEARDOWN};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use testbed::run::{Run, assert_exit};
use testbed::{REGION, seed};

/// The role name `irsa` gives the controller's service account.
const IRSA_ROLE: &str = "sa-aws-load-balancer-controller-in-e2e-us-east-2";
/// The object Helm made, with a name our manifests use.
const CONTROLLER: &str = "aws-load-balancer-controller";

/// Asserts `run` was refused as not ours, and that no mutating AWS call went out since `since`.
fn assert_refused(bed: &Bed, run: &Run, what: &str) {
    assert_exit(run, 2);
    assert!(
        run.stderr.contains(&format!("{what} is not ours")),
        "{what}: {}",
        run.stderr
    );
    let mutating = bed.aws.proxy.mutating_calls();
    assert!(mutating.is_empty(), "{what}: mutating calls {mutating:?}");
}

async fn profiles(sdk: &Sdk) -> Vec<String> {
    let mut names = sdk
        .eks
        .list_fargate_profiles()
        .cluster_name(CLUSTER)
        .send()
        .await
        .unwrap()
        .fargate_profile_names()
        .to_vec();
    names.sort();
    names
}

async fn role_exists(sdk: &Sdk, name: &str) -> bool {
    sdk.iam.get_role().role_name(name).send().await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_resources_are_refused_then_adopted_and_left_standing() {
    let bed = Bed::new().await;
    let config = bed.moto.sdk_config(REGION).await;
    let sdk = bed.sdk().await;

    // Someone else's: the cluster (made with eksctl, say) on a network of theirs, a Fargate
    // profile of it, the role, and the controller installed with Helm.
    let network = seed::network(&config, CLUSTER).await;
    sdk.eks
        .create_cluster()
        .name(CLUSTER)
        .role_arn("arn:aws:iam::123456789012:role/their-eks-role")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .set_subnet_ids(Some(network.private_subnet_ids.clone()))
                .build(),
        )
        .tags("owner", "platform-team")
        .send()
        .await
        .unwrap();
    seed::fargate_profile(
        &config,
        CLUSTER,
        "their-apps",
        &network.private_subnet_ids,
        &[("their-apps", &[])],
    )
    .await;
    sdk.iam
        .create_role()
        .role_name(IRSA_ROLE)
        .assume_role_policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let helm: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": CONTROLLER, "namespace": "kube-system",
            "labels": {"app.kubernetes.io/managed-by": "Helm"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": CONTROLLER}},
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": CONTROLLER}},
                "spec": {"containers": [{"name": "controller",
                    "image": "public.ecr.aws/eks/aws-load-balancer-controller:v2.7.0"}]}
            }
        }
    }))
    .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(bed.eks.kube.client().await, "kube-system");
    // As stored: the API server defaults what Helm left out.
    let helms = deployments
        .patch(
            CONTROLLER,
            &PatchParams::apply("helm"),
            &Patch::Apply(&helm),
        )
        .await
        .expect("Helm's apply");

    // 1. eks-cluster: create and a stateless delete (`make clean CLUSTER=e2e`) are refused.
    let privates = network.private_subnet_ids.join(",");
    let publics = network.public_subnet_ids.join(",");
    let create = format!(
        "{{bin}}/eks-cluster --region {REGION} create --cluster {CLUSTER} --kubeconfig {{kube}} \
         --vpc-id {} --private-subnets {privates} --public-subnets {publics}",
        network.vpc_id
    );
    bed.aws.proxy.clear_calls();
    assert_refused(&bed, &bed.pipe(&create, ""), "EKS cluster e2e");
    let delete = format!("{{bin}}/eks-cluster --region {REGION} delete --cluster {CLUSTER}");
    assert_refused(&bed, &bed.pipe(&delete, ""), "EKS cluster e2e");
    assert_eq!(profiles(&sdk).await, ["their-apps"]);

    // --adopt: the cluster is used as it is and recorded as adopted.
    let adopted = bed.pipe(&format!("{create} --adopt"), "");
    assert_exit(&adopted, 0);
    assert_eq!(adopted.json()["cluster"]["clusterAdopted"], true);
    let with_provider = bed.pipe("{bin}/eks-oidc ensure", &adopted.stdout);
    assert_exit(&with_provider, 0);

    // 2. irsa: the role of its name is someone else's; ensure and a stateless delete refuse it.
    let irsa = "{bin}/irsa ensure --sa-name aws-load-balancer-controller \
                --policy-document {policy} --kubeconfig {kube}";
    bed.aws.proxy.clear_calls();
    assert_refused(
        &bed,
        &bed.pipe(irsa, &with_provider.stdout),
        &format!("IAM role {IRSA_ROLE}"),
    );
    let irsa_delete = format!(
        "{{bin}}/irsa --region {REGION} delete --cluster {CLUSTER} \
         --sa-name aws-load-balancer-controller --kubeconfig {{kube}}"
    );
    assert_refused(
        &bed,
        &bed.pipe(&irsa_delete, ""),
        &format!("IAM role {IRSA_ROLE}"),
    );
    let rendered = bed.pipe(
        &format!(
            "{irsa} --adopt | {{bin}}/eks-sg-stack create | {{bin}}/eks-patch --out {{work}}/patched"
        ),
        &with_provider.stdout,
    );
    assert_exit(&rendered, 0);

    // 3. eks-deploy: the controller's Deployment belongs to Helm: refused, nothing applied.
    let apply = "{bin}/eks-deploy apply --kubeconfig {kube} --timeout 60s --connect-to ::{alb}";
    let refused = bed.pipe(apply, &rendered.stdout);
    assert_exit(&refused, 2);
    assert!(
        refused.stderr.contains("helm") && refused.stderr.contains(CONTROLLER),
        "{}",
        refused.stderr
    );
    // (its status moves on, as the cluster runs its pods; its spec and owners do not.)
    let after = deployments.get(CONTROLLER).await.unwrap();
    assert_eq!(after.spec, helms.spec, "Helm's Deployment unchanged");
    let managers: Vec<String> = after
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.manager.clone())
        .collect();
    assert!(
        !managers.iter().any(|m| m == "eks-fargate-alb"),
        "{managers:?}"
    );
    let installed = bed.pipe(&format!("{apply} --adopt"), &rendered.stdout);
    assert_exit(&installed, 0);
    let state = installed.json();
    assert!(
        state["deploy"]["url"]
            .as_str()
            .is_some_and(|u| u.ends_with(".elb.amazonaws.com/")),
        "{state}"
    );

    // The teardown removes what the tool made and leaves what it adopted.
    let teardown = bed.pipe(TEARDOWN, &installed.stdout);
    assert_exit(&teardown, 0);
    let after = teardown.json();
    assert!(after.get("cluster").is_none(), "{after}");
    let clusters = sdk.eks.list_clusters().send().await.unwrap();
    assert_eq!(clusters.clusters(), [CLUSTER], "the adopted cluster stands");
    assert_eq!(
        profiles(&sdk).await,
        ["their-apps"],
        "ours gone, theirs kept"
    );
    assert!(
        role_exists(&sdk, IRSA_ROLE).await,
        "the adopted role stands"
    );
    assert!(
        !role_exists(&sdk, &format!("eks-fargate-{CLUSTER}-pod-exec")).await,
        "our pod execution role is gone"
    );
    assert!(
        deployments.get_opt(CONTROLLER).await.unwrap().is_some(),
        "the adopted Deployment stands"
    );
    let providers = sdk
        .iam
        .list_open_id_connect_providers()
        .send()
        .await
        .unwrap();
    assert!(
        providers.open_id_connect_provider_list().is_empty(),
        "the provider we made is gone"
    );
}
