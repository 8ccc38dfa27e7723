//! Network interfaces that block a delete. A load balancer's network interfaces (description
//! `ELB app/<name>/<id>`, managed by ELB) stay for minutes after the load balancer is deleted,
//! and Fargate pods' and the EKS control plane's stay a while after the pods and the cluster
//! are gone. While one uses a security group, `DeleteSecurityGroup` fails with
//! `DependencyViolation`; while one is in a subnet, the subnet and its VPC cannot go. So a step
//! waits for them (bounded, with progress) before it deletes the stack that holds the group or
//! the VPC.

use std::time::Duration;

use aws_sdk_ec2::types::Filter;

use crate::aws::AwsError;
use crate::wait::{Poll, TimedOut, wait_for};

/// A network interface, as much of it as a person needs to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eni {
    pub id: String,
    pub description: String,
    /// `available`, `in-use`, ...
    pub status: String,
}

impl std::fmt::Display for Eni {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.description.is_empty() {
            write!(f, "{} ({})", self.id, self.status)
        } else {
            write!(f, "{} \"{}\" ({})", self.id, self.description, self.status)
        }
    }
}

/// Which interfaces block a delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Those that use the security group (it cannot be deleted while one does).
    Group(String),
    /// Those in the VPC (its subnets cannot be deleted while one is there), except those of
    /// the VPC's own NAT gateways, which the stack deletes with them.
    Vpc(String),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Group(id) => write!(f, "security group {id}"),
            Scope::Vpc(id) => write!(f, "VPC {id}"),
        }
    }
}

/// The wait failed.
#[derive(Debug, thiserror::Error)]
pub enum EniError {
    #[error("DescribeNetworkInterfaces in {scope}")]
    Describe { scope: String, source: AwsError },
    #[error("DescribeNatGateways in {scope}")]
    DescribeNatGateways { scope: String, source: AwsError },
    #[error(
        "network interfaces still use {scope} after {}: {}. They belong to a load balancer (description `ELB app/...`), Fargate pods or the EKS cluster, and usually go within minutes after those are deleted. Delete what they belong to if it is still there (e.g. `eks-deploy delete`, or the load balancer tagged elbv2.k8s.aws/cluster), then run the delete again, or raise --eni-timeout. Nothing was deleted in this attempt",
        crate::cli::format_elapsed(*.after),
        list(.left)
    )]
    StillThere {
        scope: String,
        left: Vec<Eni>,
        after: Duration,
    },
}

/// `eni-1 "ELB app/a/b" (in-use), ...`.
pub fn list(enis: &[Eni]) -> String {
    enis.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The interfaces that block deleting what `scope` names, now.
pub async fn blocking(ec2: &aws_sdk_ec2::Client, scope: &Scope) -> Result<Vec<Eni>, EniError> {
    let (filter, value, vpc) = match scope {
        Scope::Group(id) => ("group-id", id, None),
        Scope::Vpc(id) => ("vpc-id", id, Some(id)),
    };
    let describe_error = |source: AwsError| EniError::Describe {
        scope: scope.to_string(),
        source,
    };
    let mut found = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let answer = ec2
            .describe_network_interfaces()
            .filters(Filter::builder().name(filter).values(value).build())
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| describe_error(e.into()))?;
        found.extend(answer.network_interfaces().iter().map(|n| {
            Eni {
                id: n.network_interface_id().unwrap_or_default().to_owned(),
                description: n.description().unwrap_or_default().to_owned(),
                status: n
                    .status()
                    .map(|s| s.as_str().to_owned())
                    .unwrap_or_default(),
            }
        }));
        match answer.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_owned()),
            _ => break,
        }
    }
    if let Some(vpc) = vpc {
        let own = nat_gateway_interfaces(ec2, vpc).await.map_err(|source| {
            EniError::DescribeNatGateways {
                scope: scope.to_string(),
                source,
            }
        })?;
        found.retain(|e| !own.contains(&e.id));
    }
    Ok(found)
}

/// The interfaces of the NAT gateways in `vpc` (the network stack deletes them itself).
async fn nat_gateway_interfaces(
    ec2: &aws_sdk_ec2::Client,
    vpc: &str,
) -> Result<Vec<String>, AwsError> {
    let answer = ec2
        .describe_nat_gateways()
        .filter(Filter::builder().name("vpc-id").values(vpc).build())
        .send()
        .await?;
    Ok(answer
        .nat_gateways()
        .iter()
        .flat_map(|n| n.nat_gateway_addresses())
        .filter_map(|a| a.network_interface_id().map(str::to_owned))
        .collect())
}

/// Waits, at most `timeout`, until no interface blocks deleting what `scope` names. Progress
/// goes to stderr; running out of time names every interface left.
pub async fn wait_gone(
    ec2: &aws_sdk_ec2::Client,
    scope: &Scope,
    timeout: Duration,
) -> Result<(), EniError> {
    let first = blocking(ec2, scope).await?;
    if first.is_empty() {
        return Ok(());
    }
    tracing::info!(
        "{} network interface(s) still use {scope}: {}; waiting for them to go before deleting it",
        first.len(),
        list(&first)
    );
    let what = format!("the network interfaces in {scope} to go");
    let last = std::sync::Mutex::new(first);
    let waited = wait_for(&what, timeout, || {
        let last = &last;
        async move {
            let now = blocking(ec2, scope).await?;
            if now.is_empty() {
                return Ok(Poll::Ready(()));
            }
            let status = format!("{} left: {}", now.len(), list(&now));
            *last.lock().unwrap_or_else(|p| p.into_inner()) = now;
            Ok(Poll::Pending(status))
        }
    })
    .await;
    let last = last.into_inner().unwrap_or_else(|p| p.into_inner());
    match waited {
        Ok(()) => Ok(()),
        Err(Waited::Eni(e)) => Err(e),
        Err(Waited::Timeout(t)) => Err(EniError::StillThere {
            scope: scope.to_string(),
            left: last,
            after: t.after,
        }),
    }
}

/// What a wait ends with inside [`wait_gone`].
enum Waited {
    Eni(EniError),
    Timeout(TimedOut),
}

impl From<TimedOut> for Waited {
    fn from(t: TimedOut) -> Self {
        Waited::Timeout(t)
    }
}

impl From<EniError> for Waited {
    fn from(e: EniError) -> Self {
        Waited::Eni(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces_are_named_with_what_they_are() {
        let left = vec![
            Eni {
                id: "eni-1".into(),
                description: "ELB app/k8s-game-app-1/abc".into(),
                status: "in-use".into(),
            },
            Eni {
                id: "eni-2".into(),
                description: String::new(),
                status: "available".into(),
            },
        ];
        assert_eq!(
            list(&left),
            "eni-1 \"ELB app/k8s-game-app-1/abc\" (in-use), eni-2 (available)"
        );
        let err = EniError::StillThere {
            scope: Scope::Group("sg-1".into()).to_string(),
            left,
            after: Duration::from_secs(600),
        };
        let text = err.to_string();
        assert!(
            text.contains("security group sg-1")
                && text.contains("eni-1")
                && text.contains("ELB app/")
                && text.contains("--eni-timeout")
                && text.contains("run the delete again"),
            "{text}"
        );
    }
}
