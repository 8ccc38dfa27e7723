//! Whose are the resources of the names `eks-cluster` makes: the cluster, its two IAM roles,
//! the network stack and the Fargate profile. Asked before anything is made (read-only calls),
//! so a name that exists but is not ours is refused with exit 2 and nothing changed, unless
//! `--adopt` takes the cluster and roles over (recorded in the state).

use common::iam::role::Owner;
use common::owner::{NotOurs, why_not_ours};

use crate::eks::{self, STEP};
use crate::{Clients, Error, Section, Usage, network, roles};

/// Whose a resource of our name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// There is none: we make it.
    Absent,
    /// Made by eks-cluster (recorded in the state, or carrying our tags).
    Ours,
    /// Someone else's, taken over with `--adopt` (now or recorded earlier): used as it is, never
    /// deleted.
    Adopted,
}

/// What `create` found, name by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub cluster: Claim,
    /// The cluster as `DescribeCluster` found it (none when [`Claim::Absent`]).
    pub existing: Option<eks::Cluster>,
    /// The cluster role and the pod execution role, in that order.
    pub roles: [(String, Claim); 2],
}

impl Claims {
    /// The claim on the role `name`.
    pub fn role(&self, name: &str) -> Claim {
        self.roles
            .iter()
            .find(|(n, _)| n == name)
            .map_or(Claim::Absent, |(_, c)| *c)
    }
}

/// The refusal for a cluster of our name that is not ours.
pub fn cluster_not_ours(name: &str, cluster: &eks::Cluster, fix: String) -> NotOurs {
    NotOurs {
        what: "EKS cluster",
        name: name.to_owned(),
        why: why_not_ours(|k| cluster.tags.get(k).map(String::as_str)),
        fix,
    }
}

/// Checks every name `create` would make or change: refuses (exit 2) a cluster or role that is
/// not ours unless `adopt` (or the state recorded it adopted), and always a network stack or a
/// Fargate profile of our name that is not ours (those are never adopted).
pub async fn check_create(
    clients: &Clients,
    name: &str,
    previous: Option<&Section>,
    stack: bool,
    profile: &str,
    adopt: bool,
) -> Result<Claims, Error> {
    let recorded = previous.filter(|p| p.facts.name == name);
    let existing = eks::describe(&clients.eks, name).await?;
    let cluster = match &existing {
        None => Claim::Absent,
        Some(c) if c.tagged_ours(name) || recorded.is_some_and(|p| p.cluster_created_by_us) => {
            Claim::Ours
        }
        Some(_) if adopt || recorded.is_some_and(|p| p.cluster_adopted) => Claim::Adopted,
        Some(c) => {
            return Err(cluster_not_ours(
                name,
                c,
                "Pass --adopt to use it as it is (eks-cluster delete then leaves it standing and removes only the Fargate profile it added), or choose another --cluster name".into(),
            )
            .into());
        }
    };

    if cluster == Claim::Adopted && stack {
        return Err(Usage::AdoptNeedsVpc {
            cluster: name.to_owned(),
        }
        .into());
    }

    let mut claims = Vec::new();
    for role in [
        roles::cluster_role_name(name),
        roles::pod_execution_role_name(name),
    ] {
        let found = roles::read(&clients.iam, &role).await?;
        let adopt = adopt || recorded.is_some_and(|p| p.adopted_role(&role).is_some());
        let claim = match roles::claim(&role, found.as_ref(), name, adopt)? {
            Owner::Absent => Claim::Absent,
            Owner::Ours => Claim::Ours,
            Owner::Adopted => Claim::Adopted,
        };
        claims.push((role, claim));
    }

    if stack {
        let stack_name = network::stack_name(name);
        if let Some(s) = network::describe_stack(&clients.cloudformation, &stack_name).await?
            && !s.carries(&common::owner::tags(name, STEP))
        {
            return Err(NotOurs {
                what: "CloudFormation stack",
                name: stack_name,
                why: why_not_ours(|k| s.tags.get(k).map(String::as_str)),
                fix: "Bring its VPC with --vpc-id and --private-subnets instead, delete the stack, or choose another --cluster name".into(),
            }
            .into());
        }
    }

    if cluster != Claim::Absent
        && let Some(p) = eks::describe_profile(&clients.eks, name, profile).await?
        && p.owner.as_deref() != Some(name)
    {
        return Err(NotOurs {
            what: "Fargate profile",
            name: format!("{profile} of cluster {name}"),
            why: format!(
                "it carries no {} tag for {name}",
                common::owner::CLUSTER_TAG
            ),
            fix: "Delete it, or choose other --namespace values (eks-cluster names its profile fp-<hash of the namespaces>)".into(),
        }
        .into());
    }

    let [a, b]: [(String, Claim); 2] = claims.try_into().expect("two roles");
    Ok(Claims {
        cluster,
        existing,
        roles: [a, b],
    })
}
