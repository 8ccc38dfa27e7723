//! Finding the load balancers and target groups the AWS Load Balancer Controller made for an
//! Ingress, by the tags it puts on them, so that a forced delete can say exactly what may remain.

use aws_sdk_elasticloadbalancingv2::Client;
use common::aws::AwsError;

/// The tag naming the cluster.
pub const CLUSTER_TAG: &str = "elbv2.k8s.aws/cluster";
/// The tag naming the Ingress (`<namespace>/<name>`) or the IngressGroup.
pub const STACK_TAG: &str = "ingress.k8s.aws/stack";

/// A load balancer that may remain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remaining {
    pub arn: String,
    pub name: String,
    pub dns_name: String,
}

/// The load balancers tagged for `cluster` and `stack`.
pub async fn tagged(elb: &Client, cluster: &str, stack: &str) -> Result<Vec<Remaining>, AwsError> {
    let mut all = Vec::new();
    let mut pages = elb.describe_load_balancers().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(AwsError::from)?;
        all.extend(page.load_balancers().iter().filter_map(|lb| {
            Some(Remaining {
                arn: lb.load_balancer_arn()?.to_owned(),
                name: lb.load_balancer_name().unwrap_or_default().to_owned(),
                dns_name: lb.dns_name().unwrap_or_default().to_owned(),
            })
        }));
    }
    with_tags(elb, all, cluster, stack).await
}

/// The target groups tagged for `cluster` and `stack` (`dns_name` is empty).
pub async fn tagged_target_groups(
    elb: &Client,
    cluster: &str,
    stack: &str,
) -> Result<Vec<Remaining>, AwsError> {
    let mut all = Vec::new();
    let mut pages = elb.describe_target_groups().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(AwsError::from)?;
        all.extend(page.target_groups().iter().filter_map(|tg| {
            Some(Remaining {
                arn: tg.target_group_arn()?.to_owned(),
                name: tg.target_group_name().unwrap_or_default().to_owned(),
                dns_name: String::new(),
            })
        }));
    }
    with_tags(elb, all, cluster, stack).await
}

/// Those of `all` that carry both tags.
async fn with_tags(
    elb: &Client,
    all: Vec<Remaining>,
    cluster: &str,
    stack: &str,
) -> Result<Vec<Remaining>, AwsError> {
    let mut out = Vec::new();
    // DescribeTags takes at most 20 ARNs.
    for chunk in all.chunks(20) {
        let tags = elb
            .describe_tags()
            .set_resource_arns(Some(chunk.iter().map(|r| r.arn.clone()).collect()))
            .send()
            .await
            .map_err(AwsError::from)?;
        for description in tags.tag_descriptions() {
            let has = |key: &str, value: &str| {
                description
                    .tags()
                    .iter()
                    .any(|t| t.key() == Some(key) && t.value() == Some(value))
            };
            if has(CLUSTER_TAG, cluster)
                && has(STACK_TAG, stack)
                && let Some(found) = chunk
                    .iter()
                    .find(|r| Some(r.arn.as_str()) == description.resource_arn())
            {
                out.push(found.clone());
            }
        }
    }
    Ok(out)
}
