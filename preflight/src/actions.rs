//! The IAM actions each binary needs, the one list of them: [`ACTIONS`], each action with the
//! binaries that call it (or make CloudFormation call it for the resources of their stacks) and
//! when, if not on every run.
//!
//! `eks-preflight` simulates [`PIPELINE_ACTIONS`] (what the steps and `eks-preflight leftovers`
//! need) for the caller. `cargo xtask gen` writes each binary's list from here into the `IAM
//! permissions` paragraph of its `main.rs` and the `<!-- generated:iam:BINARY -->` blocks of the
//! docs. `ec2:Describe*` of `eks-cluster` is spelled out as the Describe calls it and its stack
//! need, since a simulation takes action names, not patterns.

use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Who needs an action: a binary, or [`LEFTOVERS`]; and when, if not on every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// The binary (`eks-cluster`), or [`LEFTOVERS`].
    pub by: &'static str,
    /// When it needs it, as it reads after "IAM permissions" (with `--admin`); `""`: always.
    pub when: &'static str,
}

/// One IAM action and who needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// `service:Action`.
    pub name: &'static str,
    pub needed_by: &'static [Need],
}

/// `eks-preflight leftovers`, run by `make clean` with the pipeline's identity: its actions are
/// in [`PIPELINE_ACTIONS`].
pub const LEFTOVERS: &str = "eks-preflight leftovers";
/// `eks-preflight`'s own checks (not simulated: whoever runs the check needs them).
pub const PREFLIGHT: &str = "eks-preflight";

const CLUSTER: &str = "eks-cluster";
const OIDC: &str = "eks-oidc";
const IRSA: &str = "irsa";
const SG: &str = "eks-sg-stack";
const DEPLOY: &str = "eks-deploy";

const fn by(binary: &'static str) -> Need {
    Need {
        by: binary,
        when: "",
    }
}

const fn when(binary: &'static str, when: &'static str) -> Need {
    Need { by: binary, when }
}

const fn action(name: &'static str, needed_by: &'static [Need]) -> Action {
    Action { name, needed_by }
}

/// What CloudFormation does with the caller's permissions for the network stack's resources.
const NETWORK_STACK: &str = "for the network stack's resources (CloudFormation acts as the caller)";
/// The same for the ALB security group stack.
const SG_STACK: &str = "for the stack's resources (CloudFormation acts as the caller)";
/// `eks-cluster create --admin`, and a delete of the access entries it made.
const ADMINS: &str = "with `--admin`";
/// `eks-deploy`'s reads of the cluster.
const DEPLOY_CLUSTER: &str = "unless the state has the endpoint and CA, or `--kubeconfig` is given";
const DEPLOY_PROFILES: &str = "for `apply`, unless the state records the cluster's one profile (every pod the manifests \
     make must be selected by a Fargate profile)";
const DEPLOY_FORCE: &str = "for `delete --force`";

/// Every IAM action a binary calls or makes CloudFormation call, by service, in the order
/// `eks-preflight` simulates and lists them.
pub const ACTIONS: &[Action] = &[
    // sts: every step that names the account.
    action(
        "sts:GetCallerIdentity",
        &[
            by(CLUSTER),
            by(OIDC),
            by(IRSA),
            by(SG),
            by(PREFLIGHT),
            by(LEFTOVERS),
        ],
    ),
    // cloudformation: eks-cluster (network stack) and eks-sg-stack (ALB security group stack).
    action(
        "cloudformation:DescribeStacks",
        &[by(CLUSTER), by(SG), by(LEFTOVERS)],
    ),
    action("cloudformation:GetTemplate", &[by(CLUSTER), by(SG)]),
    action("cloudformation:CreateStack", &[by(CLUSTER), by(SG)]),
    action("cloudformation:UpdateStack", &[by(CLUSTER), by(SG)]),
    action("cloudformation:DeleteStack", &[by(CLUSTER), by(SG)]),
    action("cloudformation:DescribeStackEvents", &[by(CLUSTER), by(SG)]),
    // ec2: the network stack's resources (eks-cluster).
    action("ec2:CreateVpc", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:DeleteVpc", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:ModifyVpcAttribute", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:CreateSubnet", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:DeleteSubnet", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:ModifySubnetAttribute", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:CreateInternetGateway", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:DeleteInternetGateway", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:AttachInternetGateway", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:DetachInternetGateway", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:AllocateAddress", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:ReleaseAddress", &[when(CLUSTER, NETWORK_STACK)]),
    // The Elastic IP's release after the NAT gateway.
    action("ec2:DisassociateAddress", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:CreateNatGateway", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:DeleteNatGateway", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:CreateRouteTable", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:DeleteRouteTable", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:CreateRoute", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:DeleteRoute", &[when(CLUSTER, NETWORK_STACK)]),
    action("ec2:AssociateRouteTable", &[when(CLUSTER, NETWORK_STACK)]),
    action(
        "ec2:DisassociateRouteTable",
        &[when(CLUSTER, NETWORK_STACK)],
    ),
    action(
        "ec2:CreateTags",
        &[when(CLUSTER, NETWORK_STACK), when(SG, SG_STACK)],
    ),
    action("ec2:DeleteTags", &[when(SG, SG_STACK)]),
    // ec2: the ALB security group stack's resources (eks-sg-stack).
    action("ec2:CreateSecurityGroup", &[when(SG, SG_STACK)]),
    action("ec2:DeleteSecurityGroup", &[when(SG, SG_STACK)]),
    action("ec2:AuthorizeSecurityGroupIngress", &[when(SG, SG_STACK)]),
    action("ec2:AuthorizeSecurityGroupEgress", &[when(SG, SG_STACK)]),
    action("ec2:RevokeSecurityGroupIngress", &[when(SG, SG_STACK)]),
    action("ec2:RevokeSecurityGroupEgress", &[when(SG, SG_STACK)]),
    // ec2: reads (eks-cluster's zones and a brought VPC, eks-sg-stack's lookups, what
    // CloudFormation reads back of what it made).
    action(
        "ec2:DescribeVpcs",
        &[by(CLUSTER), by(PREFLIGHT), by(LEFTOVERS)],
    ),
    action("ec2:DescribeVpcAttribute", &[by(CLUSTER)]),
    action("ec2:DescribeAvailabilityZones", &[by(CLUSTER)]),
    action("ec2:DescribeSubnets", &[by(CLUSTER), by(SG)]),
    action("ec2:DescribeRouteTables", &[by(CLUSTER)]),
    action("ec2:DescribeVpcEndpoints", &[by(CLUSTER)]),
    action(
        "ec2:DescribeInternetGateways",
        &[when(CLUSTER, NETWORK_STACK)],
    ),
    action("ec2:DescribeNatGateways", &[by(CLUSTER), by(LEFTOVERS)]),
    action(
        "ec2:DescribeAddresses",
        &[when(CLUSTER, NETWORK_STACK), by(PREFLIGHT), by(LEFTOVERS)],
    ),
    action("ec2:DescribeSecurityGroups", &[by(SG), by(LEFTOVERS)]),
    action("ec2:DescribeSecurityGroupRules", &[when(SG, SG_STACK)]),
    // The wait for network interfaces before a stack delete.
    action(
        "ec2:DescribeNetworkInterfaces",
        &[
            when(CLUSTER, "for `delete`"),
            when(SG, "for `delete`"),
            by(LEFTOVERS),
        ],
    ),
    // iam: the cluster and pod execution roles (eks-cluster), the IRSA roles (irsa).
    action("iam:GetRole", &[by(CLUSTER), by(IRSA), by(PREFLIGHT)]),
    action("iam:CreateRole", &[by(CLUSTER), by(IRSA)]),
    action("iam:TagRole", &[by(CLUSTER), by(IRSA)]),
    action("iam:UpdateAssumeRolePolicy", &[by(CLUSTER), by(IRSA)]),
    action("iam:ListRolePolicies", &[by(CLUSTER), by(IRSA)]),
    action("iam:GetRolePolicy", &[by(IRSA)]),
    action("iam:PutRolePolicy", &[by(IRSA)]),
    action("iam:DeleteRolePolicy", &[by(CLUSTER), by(IRSA)]),
    action("iam:ListAttachedRolePolicies", &[by(CLUSTER), by(IRSA)]),
    action("iam:AttachRolePolicy", &[by(CLUSTER), by(IRSA)]),
    action("iam:DetachRolePolicy", &[by(CLUSTER), by(IRSA)]),
    action("iam:DeleteRole", &[by(CLUSTER), by(IRSA)]),
    action("iam:PassRole", &[by(CLUSTER)]),
    action("iam:CreateServiceLinkedRole", &[by(CLUSTER)]),
    action("iam:ListRoles", &[when(IRSA, "for `list`"), by(LEFTOVERS)]),
    action(
        "iam:ListRoleTags",
        &[when(IRSA, "for `list`"), by(LEFTOVERS)],
    ),
    // iam: `eks-cluster create --admin` checks that an IAM user it names exists.
    action("iam:GetUser", &[when(CLUSTER, ADMINS)]),
    // iam: the OIDC provider (eks-oidc; irsa reads it).
    action(
        "iam:GetOpenIDConnectProvider",
        &[by(OIDC), by(IRSA), by(LEFTOVERS)],
    ),
    action("iam:CreateOpenIDConnectProvider", &[by(OIDC)]),
    action("iam:TagOpenIDConnectProvider", &[by(OIDC)]),
    action("iam:AddClientIDToOpenIDConnectProvider", &[by(OIDC)]),
    // An adopted provider's added client id.
    action("iam:RemoveClientIDFromOpenIDConnectProvider", &[by(OIDC)]),
    action("iam:DeleteOpenIDConnectProvider", &[by(OIDC)]),
    // eks: the cluster and its Fargate profile (eks-cluster; the others describe it).
    action(
        "eks:DescribeCluster",
        &[
            by(CLUSTER),
            when(OIDC, "unless the state has `cluster.oidcIssuer`"),
            by(IRSA),
            by(SG),
            when(DEPLOY, DEPLOY_CLUSTER),
            by(PREFLIGHT),
            by(LEFTOVERS),
        ],
    ),
    action("eks:CreateCluster", &[by(CLUSTER)]),
    action("eks:UpdateClusterConfig", &[by(CLUSTER)]),
    action("eks:DeleteCluster", &[by(CLUSTER)]),
    action("eks:TagResource", &[by(CLUSTER)]),
    action(
        "eks:ListFargateProfiles",
        &[by(CLUSTER), when(DEPLOY, DEPLOY_PROFILES), by(LEFTOVERS)],
    ),
    action(
        "eks:DescribeFargateProfile",
        &[by(CLUSTER), when(DEPLOY, DEPLOY_PROFILES), by(LEFTOVERS)],
    ),
    action("eks:CreateFargateProfile", &[by(CLUSTER)]),
    action("eks:DeleteFargateProfile", &[by(CLUSTER)]),
    // eks: the administrators of `eks-cluster create --admin` (access entries; the list and
    // describe calls are with the leftovers below).
    action("eks:CreateAccessEntry", &[when(CLUSTER, ADMINS)]),
    action("eks:AssociateAccessPolicy", &[when(CLUSTER, ADMINS)]),
    action("eks:ListAssociatedAccessPolicies", &[when(CLUSTER, ADMINS)]),
    action("eks:DeleteAccessEntry", &[when(CLUSTER, ADMINS)]),
    // elasticloadbalancing: eks-deploy delete --force finds an orphaned ALB and target groups.
    action(
        "elasticloadbalancing:DescribeLoadBalancers",
        &[when(DEPLOY, DEPLOY_FORCE), by(LEFTOVERS)],
    ),
    action(
        "elasticloadbalancing:DescribeTargetGroups",
        &[when(DEPLOY, DEPLOY_FORCE), by(LEFTOVERS)],
    ),
    action(
        "elasticloadbalancing:DescribeTags",
        &[when(DEPLOY, DEPLOY_FORCE), by(LEFTOVERS)],
    ),
    // eks-preflight leftovers, the end of `make clean` (the rest are above).
    action("iam:ListOpenIDConnectProviders", &[by(LEFTOVERS)]),
    action(
        "eks:ListAccessEntries",
        &[when(CLUSTER, ADMINS), by(LEFTOVERS)],
    ),
    action(
        "eks:DescribeAccessEntry",
        &[when(CLUSTER, ADMINS), by(LEFTOVERS)],
    ),
    action("logs:DescribeLogGroups", &[by(LEFTOVERS)]),
    // eks-preflight's own checks: the simulation, room for a VPC and an Elastic IP.
    action("iam:SimulatePrincipalPolicy", &[by(PREFLIGHT)]),
    action("ec2:DescribeAccountAttributes", &[by(PREFLIGHT)]),
    action("servicequotas:GetServiceQuota", &[by(PREFLIGHT)]),
    action("servicequotas:GetAWSDefaultServiceQuota", &[by(PREFLIGHT)]),
];

/// Every IAM action the pipeline's identity needs: the steps' and `eks-preflight leftovers`'
/// (run by `make clean`), in the order of [`ACTIONS`]. `eks-preflight` simulates these.
pub static PIPELINE_ACTIONS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    ACTIONS
        .iter()
        .filter(|a| a.needed_by.iter().any(|n| n.by != PREFLIGHT))
        .map(|a| a.name)
        .collect()
});

/// What `binary` (or [`LEFTOVERS`]) needs, grouped by when: the actions it always needs first
/// (`when` is `""`), then each condition in the order it first appears in [`ACTIONS`].
pub fn needed_by(binary: &str) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups: Vec<(&'static str, Vec<&'static str>)> = vec![("", Vec::new())];
    for action in ACTIONS {
        for need in action.needed_by.iter().filter(|n| n.by == binary) {
            match groups.iter_mut().find(|(w, _)| *w == need.when) {
                Some((_, names)) => names.push(action.name),
                None => groups.push((need.when, vec![action.name])),
            }
        }
    }
    groups.retain(|(_, names)| !names.is_empty());
    groups
}

/// `service:Action` split in two; `None` for anything else.
pub fn split(action: &str) -> Option<(&str, &str)> {
    let (service, name) = action.split_once(':')?;
    let service_ok = !service.is_empty()
        && service
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let name_ok = name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .strip_suffix('*')
            .unwrap_or(name)
            .bytes()
            .all(|b| b.is_ascii_alphanumeric());
    (service_ok && name_ok).then_some((service, name))
}

/// Actions grouped by service (services sorted, actions in the order given).
pub fn by_service<'a>(actions: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for action in actions {
        let (service, name) = split(action).unwrap_or(("?", action));
        groups
            .entry(service.to_owned())
            .or_default()
            .push(name.to_owned());
    }
    groups
}

/// Widest line of [`grouped_lines`] before it wraps.
const WRAP: usize = 96;

/// One line per service, `ec2: CreateVpc, DeleteVpc`, wrapped under the first name when long.
pub fn grouped_lines<'a>(actions: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut lines = Vec::new();
    for (service, names) in by_service(actions) {
        let head = format!("{service}: ");
        let mut line = head.clone();
        let mut empty = true;
        for (i, name) in names.iter().enumerate() {
            let comma = if i + 1 < names.len() { "," } else { "" };
            let piece = format!("{name}{comma}");
            if !empty && line.len() + 1 + piece.len() > WRAP {
                lines.push(line);
                line = " ".repeat(head.len());
                empty = true;
            }
            if !empty {
                line.push(' ');
            }
            line.push_str(&piece);
            empty = false;
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn needers() -> BTreeSet<&'static str> {
        ACTIONS
            .iter()
            .flat_map(|a| a.needed_by.iter().map(|n| n.by))
            .collect()
    }

    #[test]
    fn every_binary_that_needs_an_action_exists() {
        let mut known: BTreeSet<&str> = common::steps::binaries().collect();
        known.extend([PREFLIGHT, LEFTOVERS]);
        for by in needers() {
            assert!(
                known.contains(by),
                "{by} is neither a step nor eks-preflight"
            );
        }
    }

    /// Every step that calls AWS has its list, the offline one none.
    #[test]
    fn every_step_that_calls_aws_has_its_actions() {
        for step in &common::steps::STEPS {
            let needs = needed_by(step.binary);
            assert_eq!(
                !needs.is_empty(),
                step.calls_aws,
                "{}: {needs:?}",
                step.binary
            );
        }
    }

    #[test]
    fn the_pipeline_list_leaves_out_only_preflight_s_own_checks() {
        assert!(PIPELINE_ACTIONS.contains(&"iam:ListOpenIDConnectProviders"));
        assert!(
            PIPELINE_ACTIONS.contains(&"iam:GetRole"),
            "steps need it too"
        );
        assert!(!PIPELINE_ACTIONS.contains(&"iam:SimulatePrincipalPolicy"));
        assert!(!PIPELINE_ACTIONS.contains(&"servicequotas:GetServiceQuota"));
        let steps_and_leftovers: BTreeSet<&str> = ACTIONS
            .iter()
            .filter(|a| a.needed_by.iter().any(|n| n.by != PREFLIGHT))
            .map(|a| a.name)
            .collect();
        assert_eq!(
            PIPELINE_ACTIONS.iter().copied().collect::<BTreeSet<_>>(),
            steps_and_leftovers
        );
    }

    #[test]
    fn needs_are_grouped_by_when_always_first() {
        let irsa = needed_by("irsa");
        assert_eq!(irsa[0].0, "");
        assert!(irsa[0].1.contains(&"iam:CreateRole"));
        assert_eq!(
            irsa[1],
            ("for `list`", vec!["iam:ListRoles", "iam:ListRoleTags"])
        );
        let deploy = needed_by("eks-deploy");
        assert!(
            deploy.iter().all(|(when, _)| !when.is_empty()),
            "{deploy:?}"
        );
        assert!(needed_by("eks-patch").is_empty());
    }

    #[test]
    fn the_list_is_well_formed_without_duplicates() {
        let mut seen = BTreeSet::new();
        for action in ACTIONS {
            assert!(split(action.name).is_some(), "{}", action.name);
            assert!(
                !action.name.contains('*'),
                "{}: no patterns in a simulation",
                action.name
            );
            assert!(seen.insert(action.name), "{} twice", action.name);
            assert!(
                !action.needed_by.is_empty(),
                "{}: nobody needs it",
                action.name
            );
            let mut by = BTreeSet::new();
            for need in action.needed_by {
                assert!(by.insert(need.by), "{}: {} twice", action.name, need.by);
            }
        }
    }

    #[test]
    fn grouping_by_service() {
        let lines = grouped_lines(["iam:PassRole", "ec2:CreateVpc", "ec2:DeleteVpc"]);
        assert_eq!(lines, ["ec2: CreateVpc, DeleteVpc", "iam: PassRole"]);
        let long: Vec<String> = (0..30).map(|i| format!("ec2:CreateThing{i:02}")).collect();
        let lines = grouped_lines(long.iter().map(String::as_str));
        assert!(lines.len() > 1, "{lines:?}");
        assert!(lines.iter().all(|l| l.len() <= WRAP), "{lines:?}");
        assert!(lines[0].starts_with("ec2: CreateThing00, CreateThing01,"));
        assert!(lines[1].starts_with("     CreateThing"), "{lines:?}");
        assert!(lines.last().unwrap().ends_with("CreateThing29"));
        let rejoined: String = lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
        assert_eq!(rejoined.matches("CreateThing").count(), 30);
    }
}
