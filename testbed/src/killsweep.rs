//! Kill sweeps: run a step, SIGKILL it at a chosen moment, and check that what it left
//! converges when run again.
//!
//! The moments are the step's own mutating AWS calls: [`KillSwitch`] (an observer of an
//! [`AwsProxy`]) kills the process right after moto carried out its k-th mutating call and
//! before the answer goes back, so the resource exists in AWS while its id never reached the
//! step, the hardest moment for a re-run (it must find the resource by name or tag). A sweep
//! over k = 1, 2, ... hits every phase of the step; [`Inventory`] says what exists in moto, to
//! compare a converged run with an uninterrupted one.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::awsproxy::AwsProxy;

/// Kills a registered process right after moto carried out the k-th mutating call (counted
/// from [`KillSwitch::arm`]).
#[derive(Debug, Clone, Default)]
pub struct KillSwitch {
    pid: Arc<AtomicU32>,
    target: Arc<AtomicUsize>,
    seen: Arc<AtomicUsize>,
    fired: Arc<AtomicBool>,
    fired_on: Arc<Mutex<Option<String>>>,
}

impl KillSwitch {
    /// A switch observing `proxy`, disarmed.
    pub fn on(proxy: &AwsProxy) -> KillSwitch {
        let switch = KillSwitch::default();
        let observer = switch.clone();
        proxy.observe(move |request, reply| {
            if !request.is_mutating() || observer.target.load(Ordering::SeqCst) == 0 {
                return;
            }
            let count = observer.seen.fetch_add(1, Ordering::SeqCst) + 1;
            if count != observer.target.load(Ordering::SeqCst) {
                return;
            }
            let pid = observer.pid.load(Ordering::SeqCst);
            if pid == 0 || observer.fired.swap(true, Ordering::SeqCst) {
                return;
            }
            // Noted first (the test sees the process die as soon as the kill lands), then
            // killed synchronously, before the proxy sends the answer on.
            *observer.fired_on.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(format!("{} ({})", request.name(), reply.status));
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        });
        switch
    }

    /// Arms the switch for the `k`-th mutating call (1-based) of process `pid` from now on.
    pub fn arm(&self, k: usize, pid: u32) {
        self.fired.store(false, Ordering::SeqCst);
        *self.fired_on.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.seen.store(0, Ordering::SeqCst);
        self.pid.store(pid, Ordering::SeqCst);
        self.target.store(k, Ordering::SeqCst);
    }

    /// Disarms it.
    pub fn disarm(&self) {
        self.target.store(0, Ordering::SeqCst);
        self.pid.store(0, Ordering::SeqCst);
    }

    /// The call it killed on, once it fired.
    pub fn fired_on(&self) -> Option<String> {
        self.fired_on
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Mutating calls seen since it was armed.
    pub fn seen(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

/// What exists in moto, by name (ids left out, so two runs compare equal when they made the
/// same things).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// CloudFormation stacks not DELETE_COMPLETE: `name status`.
    pub stacks: BTreeSet<String>,
    /// Security groups other than the VPCs' `default`, by name, CloudFormation's random suffix
    /// replaced by `*` (repeated when there are several).
    pub security_groups: Vec<String>,
    /// IAM roles with their inline and attached policies: `role [inline...] [attached...]`.
    pub roles: BTreeSet<String>,
    /// OIDC providers, by URL.
    pub oidc_providers: Vec<String>,
    /// EKS clusters and their Fargate profiles: `cluster` and `cluster/profile`.
    pub eks: BTreeSet<String>,
    /// VPCs by CIDR (repeated when there are several).
    pub vpcs: Vec<String>,
}

impl Inventory {
    /// Reads it through the SDK (`config` points at moto, not at a proxy).
    pub async fn read(config: &aws_config::SdkConfig) -> Inventory {
        let cfn = aws_sdk_cloudformation::Client::new(config);
        let ec2 = aws_sdk_ec2::Client::new(config);
        let iam = aws_sdk_iam::Client::new(config);
        let eks = aws_sdk_eks::Client::new(config);
        let mut inventory = Inventory::default();
        for stack in cfn
            .describe_stacks()
            .send()
            .await
            .expect("DescribeStacks")
            .stacks()
        {
            let status = stack.stack_status().map(|s| s.as_str()).unwrap_or_default();
            if status != "DELETE_COMPLETE" {
                inventory.stacks.insert(format!(
                    "{} {status}",
                    stack.stack_name().unwrap_or_default()
                ));
            }
        }
        let groups = ec2
            .describe_security_groups()
            .send()
            .await
            .expect("DescribeSecurityGroups");
        inventory.security_groups = groups
            .security_groups()
            .iter()
            .filter_map(|g| g.group_name())
            .filter(|n| *n != "default")
            .map(without_physical_suffix)
            .collect();
        inventory.security_groups.sort();
        let vpcs = ec2.describe_vpcs().send().await.expect("DescribeVpcs");
        inventory.vpcs = vpcs
            .vpcs()
            .iter()
            .filter(|v| v.is_default() != Some(true))
            .filter_map(|v| v.cidr_block().map(str::to_owned))
            .collect();
        inventory.vpcs.sort();
        for role in iam.list_roles().send().await.expect("ListRoles").roles() {
            let name = role.role_name();
            let inline = iam
                .list_role_policies()
                .role_name(name)
                .send()
                .await
                .map(|a| a.policy_names().join(","))
                .unwrap_or_default();
            let attached = iam
                .list_attached_role_policies()
                .role_name(name)
                .send()
                .await
                .map(|a| {
                    a.attached_policies()
                        .iter()
                        .filter_map(|p| p.policy_name())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            inventory
                .roles
                .insert(format!("{name} [{inline}] [{attached}]"));
        }
        let providers = iam
            .list_open_id_connect_providers()
            .send()
            .await
            .expect("ListOpenIDConnectProviders");
        for provider in providers.open_id_connect_provider_list() {
            let url = match provider.arn() {
                Some(arn) => iam
                    .get_open_id_connect_provider()
                    .open_id_connect_provider_arn(arn)
                    .send()
                    .await
                    .ok()
                    .and_then(|p| p.url().map(str::to_owned))
                    .unwrap_or_else(|| arn.to_owned()),
                None => continue,
            };
            inventory.oidc_providers.push(url);
        }
        inventory.oidc_providers.sort();
        for cluster in eks
            .list_clusters()
            .send()
            .await
            .expect("ListClusters")
            .clusters()
        {
            inventory.eks.insert(cluster.clone());
            if let Ok(profiles) = eks
                .list_fargate_profiles()
                .cluster_name(cluster)
                .send()
                .await
            {
                for profile in profiles.fargate_profile_names() {
                    inventory.eks.insert(format!("{cluster}/{profile}"));
                }
            }
        }
        inventory
    }
}

/// A CloudFormation-made name without the random part CloudFormation appends
/// (`stack-LogicalId-1A2B3C4D5E6F` becomes `stack-LogicalId-*`), so two stacks made from the same
/// template compare equal.
fn without_physical_suffix(name: &str) -> String {
    match name.rsplit_once('-') {
        Some((head, tail))
            if tail.len() >= 8
                && tail.chars().any(|c| c.is_ascii_uppercase())
                && tail
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) =>
        {
            format!("{head}-*")
        }
        _ => name.to_owned(),
    }
}

/// The figures of a sweep, for the report a test prints.
#[derive(Debug, Clone, Default)]
pub struct SweepReport {
    /// Mutating calls of an uninterrupted run.
    pub mutating_calls: usize,
    /// Kills made (one per mutating call).
    pub kills: usize,
    /// Kills after which the re-run converged to the uninterrupted end state.
    pub converged: usize,
    /// The calls killed on, in order.
    pub killed_on: Vec<String>,
}

impl std::fmt::Display for SweepReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} mutating calls; {} kills, {} converged",
            self.mutating_calls, self.kills, self.converged
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudformation_suffixes_are_left_out() {
        assert_eq!(
            without_physical_suffix(
                "alb-securitygroup-kill-us-east-2-AlbSecurityGroup-DIPARK297K2F"
            ),
            "alb-securitygroup-kill-us-east-2-AlbSecurityGroup-*"
        );
        assert_eq!(
            without_physical_suffix("eks-cluster-sg-kill-1234567890"),
            "eks-cluster-sg-kill-1234567890"
        );
        assert_eq!(without_physical_suffix("plain"), "plain");
    }
}
