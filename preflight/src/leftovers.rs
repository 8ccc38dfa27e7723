//! `eks-preflight leftovers`: after a teardown, proof that nothing of the cluster is left. Lists,
//! with read calls only, every resource in the region (and in IAM) that still carries our tag
//! (`eks-fargate-alb/cluster=<cluster>`, or the old IRSA tag `eks-fargate-alb/irsa-cluster`) or
//! the AWS Load Balancer Controller's (`elbv2.k8s.aws/cluster=<cluster>`), and the cluster's
//! CloudWatch log group, which EKS leaves behind.
//!
//! Looked at: CloudFormation stacks; load balancers and target groups; VPCs, security groups,
//! network interfaces, Elastic IPs and NAT gateways (CloudFormation puts a stack's tags on what
//! it makes, so these find a failed stack's remains too); IAM roles that EKS, Fargate or an
//! OIDC provider may assume (our roles all trust one of them; the trust is read first so only
//! those roles' tags are asked for) and OIDC providers; the EKS cluster, and while it exists its
//! Fargate profiles and access entries; the log group `/aws/eks/<cluster>/cluster` (unless the
//! cluster still stands and is not ours: then the log group is its owner's).
//!
//! Exit 0 when nothing is left, 1 when something is (or a listing failed: nothing is proven
//! then), 2 for bad input (a bad cluster name, no region, no usable credentials).

use std::collections::BTreeMap;

use aws_config::SdkConfig;
use aws_sdk_ec2::types::Filter;
use common::aws::AwsError;
use common::owner::{CLUSTER_TAG, CONTROLLER_CLUSTER_TAG};
use serde::Serialize;

/// The tag the first IRSA roles carried instead of [`CLUSTER_TAG`].
pub const LEGACY_IRSA_CLUSTER_TAG: &str = "eks-fargate-alb/irsa-cluster";

/// One resource left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Leftover {
    /// `CloudFormation stack`, `load balancer`, `IAM role`, ...
    pub kind: &'static str,
    /// Its id or ARN.
    pub id: String,
    /// Its name, when it has one besides the id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Why it counts: `tag eks-fargate-alb/cluster=demo`, `made by EKS for cluster demo`.
    pub why: String,
}

/// What a look found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Found {
    pub cluster: String,
    pub region: String,
    /// Everything left, grouped by kind in the order they are looked at.
    pub leftovers: Vec<Leftover>,
    /// Listings that failed: with any, nothing is proven.
    pub failed: Vec<String>,
    /// What could not be looked at, and why (an API the endpoint does not have).
    pub notes: Vec<String>,
}

impl Found {
    /// 0 when nothing is left and every listing answered, else 1.
    pub fn exit_code(&self) -> u8 {
        if self.leftovers.is_empty() && self.failed.is_empty() {
            0
        } else {
            1
        }
    }

    /// For a person: one line per leftover, then the verdict.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let width = self
            .leftovers
            .iter()
            .map(|l| l.kind.len())
            .max()
            .unwrap_or(0);
        for left in &self.leftovers {
            let name = left
                .name
                .as_deref()
                .filter(|n| *n != left.id)
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            out.push_str(&format!(
                "left  {:<width$}  {}{name}: {}\n",
                left.kind, left.id, left.why
            ));
        }
        for failed in &self.failed {
            out.push_str(&format!("FAIL  {failed}\n"));
        }
        for note in &self.notes {
            out.push_str(&format!("note  {note}\n"));
        }
        let place = format!("cluster {} in {}", self.cluster, self.region);
        out.push_str(&match (self.leftovers.len(), self.failed.is_empty()) {
            (0, true) => format!("leftovers: none; nothing of {place} is left\n"),
            (0, false) => format!(
                "leftovers: not proven: {} listing(s) failed for {place}; fix the cause and run it again\n",
                self.failed.len()
            ),
            (n, _) => format!(
                "leftovers: {n} resource(s) of {place} are left; run the teardown again (make clean), or delete them by hand\n"
            ),
        });
        out
    }

    /// As one JSON document (`ok`, `exitCode`, then the fields).
    pub fn to_json(&self) -> String {
        let mut value = serde_json::Map::new();
        value.insert("ok".into(), (self.exit_code() == 0).into());
        value.insert("exitCode".into(), self.exit_code().into());
        if let serde_json::Value::Object(fields) = serde_json::to_value(self).expect("serializes") {
            value.extend(fields);
        }
        let mut text = serde_json::to_string_pretty(&value).expect("serializes");
        text.push('\n');
        text
    }
}

/// Why a resource with these tags is the cluster's, if it is.
fn tagged_for<'a>(tag: impl Fn(&str) -> Option<&'a str>, cluster: &str) -> Option<String> {
    [CLUSTER_TAG, LEGACY_IRSA_CLUSTER_TAG, CONTROLLER_CLUSTER_TAG]
        .into_iter()
        .find(|key| tag(key) == Some(cluster))
        .map(|key| format!("tag {key}={cluster}"))
}

type Listed = Result<Vec<Leftover>, String>;

fn failed(action: &str, err: impl Into<AwsError>) -> String {
    format!("{action}: {}", err.into())
}

/// Looks everywhere; never fails (a failed listing is in [`Found::failed`]).
pub async fn find(sdk: &SdkConfig, cluster: &str, region: &str) -> Found {
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(sdk);
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let iam = aws_sdk_iam::Client::new(sdk);
    let eks = aws_sdk_eks::Client::new(sdk);
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    let mut notes = Vec::new();
    let (stacks, balancers, groups, network, roles, providers, eks_found) = tokio::join!(
        stacks(&cfn, cluster),
        load_balancers(&elb, cluster),
        target_groups(&elb, cluster),
        ec2_tagged(&ec2, cluster),
        roles(&iam, cluster),
        oidc_providers(&iam, cluster),
        eks_resources(&eks, cluster, &mut notes),
    );
    let (eks_listed, cluster_stands_foreign) = eks_found;
    let log_groups = if cluster_stands_foreign {
        Ok(Vec::new())
    } else {
        log_group(&logs, cluster).await
    };
    let mut found = Found {
        cluster: cluster.to_owned(),
        region: region.to_owned(),
        notes,
        ..Found::default()
    };
    for listed in [
        stacks, balancers, groups, network, roles, providers, eks_listed, log_groups,
    ] {
        match listed {
            Ok(left) => found.leftovers.extend(left),
            Err(e) => found.failed.push(e),
        }
    }
    found
}

async fn stacks(cfn: &aws_sdk_cloudformation::Client, cluster: &str) -> Listed {
    use aws_sdk_cloudformation::types::StackStatus;
    let all: Result<Vec<_>, _> = cfn
        .describe_stacks()
        .into_paginator()
        .items()
        .send()
        .collect()
        .await;
    let all = all.map_err(|e| failed("cloudformation:DescribeStacks", e))?;
    Ok(all
        .iter()
        .filter(|s| s.stack_status() != Some(&StackStatus::DeleteComplete))
        .filter_map(|s| {
            let why = tagged_for(
                |k| {
                    s.tags()
                        .iter()
                        .find(|t| t.key() == Some(k))
                        .and_then(|t| t.value())
                },
                cluster,
            )?;
            Some(Leftover {
                kind: "CloudFormation stack",
                id: s.stack_name().unwrap_or_default().to_owned(),
                name: s.stack_status().map(|st| st.as_str().to_owned()),
                why,
            })
        })
        .collect())
}

/// The ELBv2 resources among `arns` (with their names) whose tags name the cluster.
async fn elb_tagged(
    elb: &aws_sdk_elasticloadbalancingv2::Client,
    kind: &'static str,
    arns: Vec<(String, String)>,
    cluster: &str,
) -> Listed {
    let names: BTreeMap<String, String> = arns.into_iter().collect();
    let keys: Vec<&String> = names.keys().collect();
    let mut left = Vec::new();
    // DescribeTags takes at most 20 ARNs.
    for chunk in keys.chunks(20) {
        let answer = elb
            .describe_tags()
            .set_resource_arns(Some(chunk.iter().map(|a| a.to_string()).collect()))
            .send()
            .await
            .map_err(|e| failed("elasticloadbalancing:DescribeTags", e))?;
        for described in answer.tag_descriptions() {
            let tags = described.tags();
            let tag = |k: &str| {
                tags.iter()
                    .find(|t| t.key() == Some(k))
                    .and_then(|t| t.value())
            };
            if let (Some(arn), Some(why)) = (described.resource_arn(), tagged_for(tag, cluster)) {
                left.push(Leftover {
                    kind,
                    id: arn.to_owned(),
                    name: names.get(arn).cloned(),
                    why,
                });
            }
        }
    }
    Ok(left)
}

async fn load_balancers(elb: &aws_sdk_elasticloadbalancingv2::Client, cluster: &str) -> Listed {
    let all: Result<Vec<_>, _> = elb
        .describe_load_balancers()
        .into_paginator()
        .items()
        .send()
        .collect()
        .await;
    let all = all.map_err(|e| failed("elasticloadbalancing:DescribeLoadBalancers", e))?;
    let arns = all
        .iter()
        .filter_map(|lb| {
            Some((
                lb.load_balancer_arn()?.to_owned(),
                lb.load_balancer_name().unwrap_or_default().to_owned(),
            ))
        })
        .collect();
    elb_tagged(elb, "load balancer", arns, cluster).await
}

async fn target_groups(elb: &aws_sdk_elasticloadbalancingv2::Client, cluster: &str) -> Listed {
    let all: Result<Vec<_>, _> = elb
        .describe_target_groups()
        .into_paginator()
        .items()
        .send()
        .collect()
        .await;
    let all = all.map_err(|e| failed("elasticloadbalancing:DescribeTargetGroups", e))?;
    let arns = all
        .iter()
        .filter_map(|tg| {
            Some((
                tg.target_group_arn()?.to_owned(),
                tg.target_group_name().unwrap_or_default().to_owned(),
            ))
        })
        .collect();
    elb_tagged(elb, "target group", arns, cluster).await
}

/// One EC2 filter per tag that names the cluster (EC2 filters AND within a call, so one call per
/// tag).
fn tag_filters(cluster: &str) -> Vec<(&'static str, Filter)> {
    [CLUSTER_TAG, CONTROLLER_CLUSTER_TAG]
        .into_iter()
        .map(|key| {
            (
                key,
                Filter::builder()
                    .name(format!("tag:{key}"))
                    .values(cluster)
                    .build(),
            )
        })
        .collect()
}

/// VPCs, security groups, network interfaces, Elastic IPs and NAT gateways tagged for the
/// cluster.
async fn ec2_tagged(ec2: &aws_sdk_ec2::Client, cluster: &str) -> Listed {
    let mut left: Vec<Leftover> = Vec::new();
    // Only what the answer shows tagged counts: EC2 (and moto for some kinds) may pass over a
    // filter it does not know rather than refuse it.
    let mut add = |kind: &'static str,
                   id: Option<&str>,
                   name: Option<String>,
                   key: &str,
                   tags: &[aws_sdk_ec2::types::Tag]| {
        let Some(id) = id else { return };
        let tagged = tags
            .iter()
            .any(|t| t.key() == Some(key) && t.value() == Some(cluster));
        if tagged && !left.iter().any(|l| l.kind == kind && l.id == id) {
            left.push(Leftover {
                kind,
                id: id.to_owned(),
                name,
                why: format!("tag {key}={cluster}"),
            });
        }
    };
    let name_tag = |tags: &[aws_sdk_ec2::types::Tag]| {
        tags.iter()
            .find(|t| t.key() == Some("Name"))
            .and_then(|t| t.value())
            .map(str::to_owned)
    };
    for (key, filter) in tag_filters(cluster) {
        let vpcs: Result<Vec<_>, _> = ec2
            .describe_vpcs()
            .filters(filter.clone())
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        for vpc in vpcs.map_err(|e| failed("ec2:DescribeVpcs", e))? {
            add("VPC", vpc.vpc_id(), name_tag(vpc.tags()), key, vpc.tags());
        }
        let groups: Result<Vec<_>, _> = ec2
            .describe_security_groups()
            .filters(filter.clone())
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        for group in groups.map_err(|e| failed("ec2:DescribeSecurityGroups", e))? {
            add(
                "security group",
                group.group_id(),
                group.group_name().map(str::to_owned),
                key,
                group.tags(),
            );
        }
        let interfaces: Result<Vec<_>, _> = ec2
            .describe_network_interfaces()
            .filters(filter.clone())
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        for eni in interfaces.map_err(|e| failed("ec2:DescribeNetworkInterfaces", e))? {
            add(
                "network interface",
                eni.network_interface_id(),
                eni.description().map(str::to_owned),
                key,
                eni.tag_set(),
            );
        }
        let addresses = ec2
            .describe_addresses()
            .filters(filter.clone())
            .send()
            .await
            .map_err(|e| failed("ec2:DescribeAddresses", e))?;
        for address in addresses.addresses() {
            add(
                "Elastic IP",
                address.allocation_id(),
                address.public_ip().map(str::to_owned),
                key,
                address.tags(),
            );
        }
        let gateways: Result<Vec<_>, _> = ec2
            .describe_nat_gateways()
            .filter(filter.clone())
            .into_paginator()
            .items()
            .send()
            .collect()
            .await;
        for gateway in gateways.map_err(|e| failed("ec2:DescribeNatGateways", e))? {
            use aws_sdk_ec2::types::NatGatewayState;
            if matches!(
                gateway.state(),
                Some(NatGatewayState::Deleted | NatGatewayState::Deleting)
            ) {
                continue;
            }
            add(
                "NAT gateway",
                gateway.nat_gateway_id(),
                name_tag(gateway.tags()),
                key,
                gateway.tags(),
            );
        }
    }
    Ok(left)
}

/// True when the trust policy lets EKS, Fargate or an OIDC provider assume the role: every role
/// the pipeline makes trusts one of them.
fn eks_related_trust(document: &serde_json::Value) -> bool {
    let text = document.to_string();
    text.contains("eks.amazonaws.com")
        || text.contains("eks-fargate-pods.amazonaws.com")
        || text.contains(":oidc-provider/")
}

async fn roles(iam: &aws_sdk_iam::Client, cluster: &str) -> Listed {
    let all: Result<Vec<_>, _> = iam
        .list_roles()
        .into_paginator()
        .items()
        .send()
        .collect()
        .await;
    let all = all.map_err(|e| failed("iam:ListRoles", e))?;
    let mut left = Vec::new();
    for role in all {
        let trust = role
            .assume_role_policy_document()
            .map(common::iam::parse_policy)
            .unwrap_or_default();
        if !eks_related_trust(&trust) {
            continue;
        }
        let tags = iam
            .list_role_tags()
            .role_name(role.role_name())
            .send()
            .await;
        let tags = match tags.map_err(AwsError::from) {
            Ok(answer) => answer,
            // Gone between the listing and now.
            Err(e) if e.is("NoSuchEntity") => continue,
            Err(e) => return Err(format!("iam:ListRoleTags {}: {e}", role.role_name())),
        };
        let tag = |k: &str| tags.tags().iter().find(|t| t.key() == k).map(|t| t.value());
        if let Some(why) = tagged_for(tag, cluster) {
            left.push(Leftover {
                kind: "IAM role",
                id: role.arn().to_owned(),
                name: Some(role.role_name().to_owned()),
                why,
            });
        }
    }
    Ok(left)
}

async fn oidc_providers(iam: &aws_sdk_iam::Client, cluster: &str) -> Listed {
    let listed = iam
        .list_open_id_connect_providers()
        .send()
        .await
        .map_err(|e| failed("iam:ListOpenIDConnectProviders", e))?;
    let mut left = Vec::new();
    for arn in listed
        .open_id_connect_provider_list()
        .iter()
        .filter_map(|p| p.arn())
    {
        let provider = match iam
            .get_open_id_connect_provider()
            .open_id_connect_provider_arn(arn)
            .send()
            .await
            .map_err(AwsError::from)
        {
            Ok(provider) => provider,
            Err(e) if e.is("NoSuchEntity") => continue,
            Err(e) => return Err(format!("iam:GetOpenIDConnectProvider {arn}: {e}")),
        };
        let tag = |k: &str| {
            provider
                .tags()
                .iter()
                .find(|t| t.key() == k)
                .map(|t| t.value())
        };
        if let Some(why) = tagged_for(tag, cluster) {
            left.push(Leftover {
                kind: "OIDC provider",
                id: arn.to_owned(),
                name: provider.url().map(str::to_owned),
                why,
            });
        }
    }
    Ok(left)
}

/// True when EKS answered that it does not have the call at all (an emulator without it):
/// 404 with no error code of its own, or an unknown-operation code.
fn not_served(err: &AwsError) -> bool {
    err.code().is_none_or(|code| {
        matches!(
            code,
            "NotFoundException" | "UnknownOperationException" | "NotImplemented"
        ) || code.starts_with("404")
    }) && !common::cluster::not_found(err)
}

/// The cluster if ours, and while it exists its Fargate profiles and access entries tagged
/// ours; and whether the cluster stands and is not ours (its log group is then its owner's).
async fn eks_resources(
    eks: &aws_sdk_eks::Client,
    cluster: &str,
    notes: &mut Vec<String>,
) -> (Listed, bool) {
    let found = match common::cluster::describe(eks, cluster).await {
        Ok(found) => found,
        Err(e) => return (Err(format!("eks:DescribeCluster {cluster}: {e}")), false),
    };
    let Some(found) = found else {
        return (Ok(Vec::new()), false);
    };
    let mut left = Vec::new();
    let cluster_tags = found.tags();
    let ours =
        cluster_tags.and_then(|tags| tagged_for(|k| tags.get(k).map(String::as_str), cluster));
    if let Some(why) = &ours {
        left.push(Leftover {
            kind: "EKS cluster",
            id: found.arn().unwrap_or(cluster).to_owned(),
            name: Some(cluster.to_owned()),
            why: why.clone(),
        });
    }
    let foreign = ours.is_none();
    let profiles: Result<Vec<String>, _> = eks
        .list_fargate_profiles()
        .cluster_name(cluster)
        .into_paginator()
        .items()
        .send()
        .collect()
        .await;
    let profiles = match profiles.map_err(AwsError::from) {
        Ok(names) => names,
        Err(e) if common::cluster::not_found(&e) => return (Ok(left), false),
        Err(e) => {
            return (
                Err(format!("eks:ListFargateProfiles {cluster}: {e}")),
                foreign,
            );
        }
    };
    let described = each_tagged(profiles, cluster, "Fargate profile", |name| async move {
        eks.describe_fargate_profile()
            .cluster_name(cluster)
            .fargate_profile_name(&name)
            .send()
            .await
            .map(|answer| {
                answer.fargate_profile().map(|p| {
                    (
                        p.fargate_profile_arn().map(str::to_owned),
                        p.tags().cloned().unwrap_or_default(),
                    )
                })
            })
            .map_err(|e| ("eks:DescribeFargateProfile", AwsError::from(e)))
    })
    .await;
    match described {
        Ok(found) => left.extend(found),
        Err(e) => return (Err(e), foreign),
    }
    let entries: Result<Vec<String>, _> = eks
        .list_access_entries()
        .cluster_name(cluster)
        .into_paginator()
        .items()
        .send()
        .collect()
        .await;
    let entries = match entries.map_err(AwsError::from) {
        Ok(entries) => entries,
        Err(e) if not_served(&e) => {
            notes.push(format!(
                "access entries of {cluster} not listed: the endpoint does not serve eks:ListAccessEntries ({e})"
            ));
            Vec::new()
        }
        Err(e) if common::cluster::not_found(&e) => Vec::new(),
        Err(e) => {
            return (
                Err(format!("eks:ListAccessEntries {cluster}: {e}")),
                foreign,
            );
        }
    };
    let described = each_tagged(
        entries,
        cluster,
        "EKS access entry",
        |principal| async move {
            eks.describe_access_entry()
                .cluster_name(cluster)
                .principal_arn(&principal)
                .send()
                .await
                .map(|answer| {
                    answer.access_entry().map(|e| {
                        (
                            e.access_entry_arn().map(str::to_owned),
                            e.tags().cloned().unwrap_or_default(),
                        )
                    })
                })
                .map_err(|e| ("eks:DescribeAccessEntry", AwsError::from(e)))
        },
    )
    .await;
    match described {
        Ok(found) => left.extend(found),
        Err(e) => return (Err(e), foreign),
    }
    (Ok(left), foreign)
}

/// The log group EKS makes for the control plane's logs, `/aws/eks/<cluster>/cluster`.
pub fn log_group_name(cluster: &str) -> String {
    format!("/aws/eks/{cluster}/cluster")
}

/// The things named `names` that carry our tag, each described by `describe` (its ARN and
/// tags; `None` or not found: gone meanwhile). A failed describe ends the listing.
async fn each_tagged<F, Fut>(
    names: Vec<String>,
    cluster: &str,
    kind: &'static str,
    describe: F,
) -> Result<Vec<Leftover>, String>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<
            Output = Result<
                Option<(Option<String>, std::collections::HashMap<String, String>)>,
                (&'static str, AwsError),
            >,
        >,
{
    let mut found = Vec::new();
    for name in names {
        let (arn, tags) = match describe(name.clone()).await {
            Ok(Some(described)) => described,
            Ok(None) => continue,
            Err((_, e)) if common::cluster::not_found(&e) => continue,
            Err((action, e)) => return Err(format!("{action} {name}: {e}")),
        };
        if let Some(why) = tagged_for(|k| tags.get(k).map(String::as_str), cluster) {
            found.push(Leftover {
                kind,
                id: arn.unwrap_or_else(|| name.clone()),
                name: Some(name),
                why,
            });
        }
    }
    Ok(found)
}

async fn log_group(logs: &aws_sdk_cloudwatchlogs::Client, cluster: &str) -> Listed {
    let name = log_group_name(cluster);
    let groups: Result<Vec<_>, _> = logs
        .describe_log_groups()
        .log_group_name_prefix(&name)
        .into_paginator()
        .items()
        .send()
        .collect()
        .await;
    let groups = groups.map_err(|e| failed("logs:DescribeLogGroups", e))?;
    Ok(groups
        .iter()
        .filter(|g| g.log_group_name() == Some(name.as_str()))
        .map(|g| Leftover {
            kind: "CloudWatch log group",
            id: name.clone(),
            name: None,
            why: format!(
                "EKS made it for cluster {cluster}'s control plane logs and leaves it behind{}",
                g.stored_bytes()
                    .map(|b| format!(" ({b} bytes stored)"))
                    .unwrap_or_default()
            ),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_that_name_the_cluster() {
        let tags = BTreeMap::from([(CONTROLLER_CLUSTER_TAG, "demo"), ("other", "x")]);
        assert_eq!(
            tagged_for(|k| tags.get(k).copied(), "demo").as_deref(),
            Some("tag elbv2.k8s.aws/cluster=demo")
        );
        assert_eq!(tagged_for(|k| tags.get(k).copied(), "other"), None);
        let legacy = BTreeMap::from([(LEGACY_IRSA_CLUSTER_TAG, "demo")]);
        assert!(tagged_for(|k| legacy.get(k).copied(), "demo").is_some());
    }

    #[test]
    fn trust_of_roles_the_pipeline_makes() {
        let service = |s: &str| serde_json::json!({"Statement": [{"Principal": {"Service": s}, "Action": "sts:AssumeRole"}]});
        assert!(eks_related_trust(&service("eks.amazonaws.com")));
        assert!(eks_related_trust(&service(
            "eks-fargate-pods.amazonaws.com"
        )));
        assert!(eks_related_trust(
            &serde_json::json!({"Statement": [{"Principal": {
            "Federated": "arn:aws:iam::1:oidc-provider/oidc.eks.us-east-2.amazonaws.com/id/X"}}]})
        ));
        assert!(!eks_related_trust(&service("ec2.amazonaws.com")));
    }

    #[test]
    fn text_and_exit_codes() {
        let mut found = Found {
            cluster: "demo".into(),
            region: "us-east-2".into(),
            ..Found::default()
        };
        assert_eq!(found.exit_code(), 0);
        assert_eq!(
            found.to_text(),
            "leftovers: none; nothing of cluster demo in us-east-2 is left\n"
        );
        found.leftovers.push(Leftover {
            kind: "IAM role",
            id: "arn:aws:iam::1:role/r".into(),
            name: Some("r".into()),
            why: "tag eks-fargate-alb/cluster=demo".into(),
        });
        assert_eq!(found.exit_code(), 1);
        assert!(found.to_text().starts_with(
            "left  IAM role  arn:aws:iam::1:role/r (r): tag eks-fargate-alb/cluster=demo\n"
        ));
        let json: serde_json::Value = serde_json::from_str(&found.to_json()).unwrap();
        assert_eq!(json["exitCode"], 1);
        assert_eq!(json["leftovers"][0]["kind"], "IAM role");
        found.leftovers.clear();
        found.failed.push("iam:ListRoles: AccessDenied: no".into());
        assert_eq!(found.exit_code(), 1);
        assert!(found.to_text().contains("not proven"));
    }
}

/// What counts as ours, against EC2 and IAM clients answered in-process (`aws-smithy-mocks`):
/// the answers model an endpoint that passes over a tag filter (moto does for
/// `DescribeNatGateways`, so a brought network's NAT gateway came back), so only what an answer
/// shows tagged may count.
#[cfg(test)]
mod fakes {
    use aws_sdk_ec2::operation::describe_addresses::DescribeAddressesOutput;
    use aws_sdk_ec2::operation::describe_nat_gateways::DescribeNatGatewaysOutput;
    use aws_sdk_ec2::operation::describe_network_interfaces::DescribeNetworkInterfacesOutput;
    use aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput;
    use aws_sdk_ec2::operation::describe_vpcs::DescribeVpcsOutput;
    use aws_sdk_ec2::types::{Address, NatGateway, NatGatewayState, SecurityGroup, Vpc};
    use aws_sdk_iam::operation::list_role_tags::{ListRoleTagsError, ListRoleTagsOutput};
    use aws_sdk_iam::operation::list_roles::ListRolesOutput;
    use aws_sdk_iam::types::Role;
    use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, mock};
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    fn ec2_client(rules: &[&Rule]) -> aws_sdk_ec2::Client {
        let mut mocks = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in rules {
            mocks = mocks.with_rule(rule);
        }
        use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::v2026_01_12())
            .region(Region::new("us-east-2"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(mocks)
            .build();
        aws_sdk_ec2::Client::from_conf(config)
    }

    fn iam_client(rules: &[&Rule]) -> aws_sdk_iam::Client {
        let mut mocks = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in rules {
            mocks = mocks.with_rule(rule);
        }
        use aws_sdk_iam::config::{BehaviorVersion, Credentials, Region};
        let config = aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::v2026_01_12())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(mocks)
            .build();
        aws_sdk_iam::Client::from_conf(config)
    }

    fn tag(key: &str, value: &str) -> aws_sdk_ec2::types::Tag {
        aws_sdk_ec2::types::Tag::builder()
            .key(key)
            .value(value)
            .build()
    }

    fn ids(left: &[Leftover]) -> Vec<(&str, &str, &str)> {
        left.iter()
            .map(|l| (l.kind, l.id.as_str(), l.why.as_str()))
            .collect()
    }

    /// Every describe answers the same whatever the filter (as moto's `DescribeNatGateways`
    /// does): ours, another cluster's and an untagged resource come back, on each of the two
    /// filtered calls.
    #[tokio::test]
    async fn ec2_counts_only_what_the_answer_shows_tagged_for_the_cluster() {
        let vpcs = mock!(aws_sdk_ec2::Client::describe_vpcs).then_output(|| {
            DescribeVpcsOutput::builder()
                .vpcs(
                    Vpc::builder()
                        .vpc_id("vpc-ours")
                        .tags(tag(CLUSTER_TAG, "demo"))
                        .tags(tag("Name", "demo-vpc"))
                        .build(),
                )
                .vpcs(
                    Vpc::builder()
                        .vpc_id("vpc-other")
                        .tags(tag(CLUSTER_TAG, "other"))
                        .build(),
                )
                .build()
        });
        let groups = mock!(aws_sdk_ec2::Client::describe_security_groups).then_output(|| {
            DescribeSecurityGroupsOutput::builder()
                .security_groups(
                    SecurityGroup::builder()
                        .group_id("sg-brought")
                        .group_name("brought")
                        .build(),
                )
                .build()
        });
        let interfaces = mock!(aws_sdk_ec2::Client::describe_network_interfaces)
            .then_output(|| DescribeNetworkInterfacesOutput::builder().build());
        let addresses = mock!(aws_sdk_ec2::Client::describe_addresses).then_output(|| {
            DescribeAddressesOutput::builder()
                .addresses(
                    Address::builder()
                        .allocation_id("eipalloc-alb")
                        .public_ip("192.0.2.1")
                        .tags(tag(CONTROLLER_CLUSTER_TAG, "demo"))
                        .build(),
                )
                .build()
        });
        let gateways = mock!(aws_sdk_ec2::Client::describe_nat_gateways).then_output(|| {
            DescribeNatGatewaysOutput::builder()
                // The brought network's gateway: no tag of ours.
                .nat_gateways(
                    NatGateway::builder()
                        .nat_gateway_id("nat-brought")
                        .state(NatGatewayState::Available)
                        .tags(tag("Name", "theirs"))
                        .build(),
                )
                .nat_gateways(
                    NatGateway::builder()
                        .nat_gateway_id("nat-ours")
                        .state(NatGatewayState::Available)
                        .tags(tag(CLUSTER_TAG, "demo"))
                        .build(),
                )
                // Ours, but on its way out: not left.
                .nat_gateways(
                    NatGateway::builder()
                        .nat_gateway_id("nat-deleted")
                        .state(NatGatewayState::Deleted)
                        .tags(tag(CLUSTER_TAG, "demo"))
                        .build(),
                )
                .build()
        });
        let ec2 = ec2_client(&[&vpcs, &groups, &interfaces, &addresses, &gateways]);
        let left = ec2_tagged(&ec2, "demo")
            .await
            .expect("every listing answered");
        assert_eq!(
            ids(&left),
            [
                ("VPC", "vpc-ours", "tag eks-fargate-alb/cluster=demo"),
                (
                    "NAT gateway",
                    "nat-ours",
                    "tag eks-fargate-alb/cluster=demo"
                ),
                (
                    "Elastic IP",
                    "eipalloc-alb",
                    "tag elbv2.k8s.aws/cluster=demo"
                ),
            ]
        );
        assert_eq!(left[0].name.as_deref(), Some("demo-vpc"));
        // One call per tag key and kind.
        assert_eq!(gateways.num_calls(), 2);
        assert_eq!(vpcs.num_calls(), 2);
    }

    /// A failed listing is no proof: it is reported, not passed over.
    #[tokio::test]
    async fn a_failed_ec2_listing_is_reported() {
        let vpcs = mock!(aws_sdk_ec2::Client::describe_vpcs).then_error(|| {
            aws_sdk_ec2::operation::describe_vpcs::DescribeVpcsError::generic(
                ErrorMetadata::builder()
                    .code("UnauthorizedOperation")
                    .message("not allowed")
                    .build(),
            )
        });
        let ec2 = ec2_client(&[&vpcs]);
        let err = ec2_tagged(&ec2, "demo")
            .await
            .expect_err("a failed listing");
        assert!(
            err.starts_with("ec2:DescribeVpcs: ") && err.contains("UnauthorizedOperation"),
            "{err}"
        );
    }

    fn role(name: &str, trusted: &str) -> Role {
        Role::builder()
            .role_name(name)
            .role_id(format!("AROA{name}"))
            .arn(format!("arn:aws:iam::123456789012:role/{name}"))
            .path("/")
            .create_date(aws_smithy_types::DateTime::from_secs(0))
            .assume_role_policy_document(
                serde_json::json!({"Statement": [{"Effect": "Allow", "Principal": trusted_principal(trusted)}]})
                    .to_string(),
            )
            .build()
            .unwrap()
    }

    fn trusted_principal(trusted: &str) -> serde_json::Value {
        if trusted.contains(":oidc-provider/") {
            serde_json::json!({"Federated": trusted})
        } else {
            serde_json::json!({"Service": trusted})
        }
    }

    fn role_tags(for_role: &'static str, tags: &'static [(&'static str, &'static str)]) -> Rule {
        mock!(aws_sdk_iam::Client::list_role_tags)
            .match_requests(move |r| r.role_name() == Some(for_role))
            .then_output(move || {
                ListRoleTagsOutput::builder()
                    .set_tags(Some(
                        tags.iter()
                            .map(|(k, v)| {
                                aws_sdk_iam::types::Tag::builder()
                                    .key(*k)
                                    .value(*v)
                                    .build()
                                    .unwrap()
                            })
                            .collect(),
                    ))
                    .build()
                    .unwrap()
            })
    }

    /// Only roles that trust EKS, Fargate or an OIDC provider are asked for their tags; of
    /// those, only the ones tagged for the cluster (or with the old IRSA tag) count; one gone
    /// since the listing is passed over.
    #[tokio::test]
    async fn roles_count_by_trust_then_tag() {
        let listed = mock!(aws_sdk_iam::Client::list_roles).then_output(|| {
            ListRolesOutput::builder()
                .roles(role("cluster-role", "eks.amazonaws.com"))
                .roles(role("instance-role", "ec2.amazonaws.com"))
                .roles(role(
                    "irsa-old",
                    "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-2.amazonaws.com/id/X",
                ))
                .roles(role("pods-other", "eks-fargate-pods.amazonaws.com"))
                .roles(role("gone", "eks.amazonaws.com"))
                .build()
                .unwrap()
        });
        let cluster_role = role_tags("cluster-role", &[(CLUSTER_TAG, "demo")]);
        // Tagged ours, but trusting only EC2: never asked for.
        let instance_role = role_tags("instance-role", &[(CLUSTER_TAG, "demo")]);
        let irsa_old = role_tags("irsa-old", &[(LEGACY_IRSA_CLUSTER_TAG, "demo")]);
        let pods_other = role_tags("pods-other", &[(CLUSTER_TAG, "other")]);
        let gone = mock!(aws_sdk_iam::Client::list_role_tags)
            .match_requests(|r| r.role_name() == Some("gone"))
            .then_error(|| {
                ListRoleTagsError::generic(
                    ErrorMetadata::builder()
                        .code("NoSuchEntity")
                        .message("The role with name gone cannot be found.")
                        .build(),
                )
            });
        let iam = iam_client(&[
            &listed,
            &cluster_role,
            &instance_role,
            &irsa_old,
            &pods_other,
            &gone,
        ]);
        let left = roles(&iam, "demo").await.expect("every listing answered");
        assert_eq!(
            ids(&left),
            [
                (
                    "IAM role",
                    "arn:aws:iam::123456789012:role/cluster-role",
                    "tag eks-fargate-alb/cluster=demo"
                ),
                (
                    "IAM role",
                    "arn:aws:iam::123456789012:role/irsa-old",
                    "tag eks-fargate-alb/irsa-cluster=demo"
                ),
            ]
        );
        assert_eq!(instance_role.num_calls(), 0, "a role not trusting EKS");
        assert_eq!(gone.num_calls(), 1);
    }
}
