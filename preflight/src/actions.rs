//! The IAM actions the whole pipeline needs from the identity that runs it.
//!
//! Where the list comes from: the `IAM permissions` paragraph of the `//!` block of each step's
//! `src/main.rs` (`cluster/`, `oidc/`, `irsa/`, `sg-stack/`, `deploy/`; `patch/` makes no AWS
//! call), plus what CloudFormation does with our identity's permissions for the resources the two
//! stacks make (the network stack of `eks-cluster`: VPC, subnets, internet gateway, Elastic IP,
//! NAT gateway, route tables; the ALB security group stack of `eks-sg-stack`), listed in
//! [`FROM_STACK_RESOURCES`]. `ec2:Describe*` of `eks-cluster` is spelled out as the Describe calls
//! those resources need, since a simulation takes action names, not patterns.
//!
//! The unit tests read those `main.rs` files, so a permission added to a step's doc and not here
//! fails the build's tests.

use std::collections::BTreeMap;

/// Every IAM action the steps call or make CloudFormation call for them, by service.
pub const PIPELINE_ACTIONS: &[&str] = &[
    // sts: every step that names the account.
    "sts:GetCallerIdentity",
    // cloudformation: eks-cluster (network stack) and eks-sg-stack (ALB security group stack).
    "cloudformation:DescribeStacks",
    "cloudformation:GetTemplate",
    "cloudformation:CreateStack",
    "cloudformation:UpdateStack",
    "cloudformation:DeleteStack",
    "cloudformation:DescribeStackEvents",
    // ec2: the network stack's resources (eks-cluster).
    "ec2:CreateVpc",
    "ec2:DeleteVpc",
    "ec2:ModifyVpcAttribute",
    "ec2:CreateSubnet",
    "ec2:DeleteSubnet",
    "ec2:ModifySubnetAttribute",
    "ec2:CreateInternetGateway",
    "ec2:DeleteInternetGateway",
    "ec2:AttachInternetGateway",
    "ec2:DetachInternetGateway",
    "ec2:AllocateAddress",
    "ec2:ReleaseAddress",
    "ec2:DisassociateAddress",
    "ec2:CreateNatGateway",
    "ec2:DeleteNatGateway",
    "ec2:CreateRouteTable",
    "ec2:DeleteRouteTable",
    "ec2:CreateRoute",
    "ec2:DeleteRoute",
    "ec2:AssociateRouteTable",
    "ec2:DisassociateRouteTable",
    "ec2:CreateTags",
    "ec2:DeleteTags",
    // ec2: the ALB security group stack's resources (eks-sg-stack).
    "ec2:CreateSecurityGroup",
    "ec2:DeleteSecurityGroup",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:AuthorizeSecurityGroupEgress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupEgress",
    // ec2: reads (eks-cluster's `ec2:Describe*` and a brought VPC, eks-sg-stack's lookups).
    "ec2:DescribeVpcs",
    "ec2:DescribeVpcAttribute",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeNatGateways",
    "ec2:DescribeAddresses",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSecurityGroupRules",
    // the wait for network interfaces before a stack delete (eks-sg-stack, eks-cluster).
    "ec2:DescribeNetworkInterfaces",
    // iam: the cluster and pod execution roles (eks-cluster), the IRSA roles (irsa).
    "iam:GetRole",
    "iam:CreateRole",
    "iam:TagRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:DeleteRole",
    "iam:PassRole",
    "iam:CreateServiceLinkedRole",
    "iam:ListRoles",
    "iam:ListRoleTags",
    // iam: `eks-cluster create --admin` checks that an IAM user it names exists.
    "iam:GetUser",
    // iam: the OIDC provider (eks-oidc; irsa reads it).
    "iam:GetOpenIDConnectProvider",
    "iam:CreateOpenIDConnectProvider",
    "iam:TagOpenIDConnectProvider",
    "iam:AddClientIDToOpenIDConnectProvider",
    "iam:RemoveClientIDFromOpenIDConnectProvider",
    "iam:DeleteOpenIDConnectProvider",
    // eks: the cluster and its Fargate profile (eks-cluster; the others describe it).
    "eks:DescribeCluster",
    "eks:CreateCluster",
    "eks:UpdateClusterConfig",
    "eks:DeleteCluster",
    "eks:TagResource",
    "eks:ListFargateProfiles",
    "eks:DescribeFargateProfile",
    "eks:CreateFargateProfile",
    "eks:DeleteFargateProfile",
    // eks: the administrators of `eks-cluster create --admin` (access entries; the list and
    // describe calls are with the leftovers below).
    "eks:CreateAccessEntry",
    "eks:AssociateAccessPolicy",
    "eks:ListAssociatedAccessPolicies",
    "eks:DeleteAccessEntry",
    // elasticloadbalancing: eks-deploy delete --force finds an orphaned ALB and target groups.
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTags",
    // eks-preflight leftovers, the end of `make clean` (LEFTOVERS_ACTIONS; the rest are above).
    "iam:ListOpenIDConnectProviders",
    "eks:ListAccessEntries",
    "eks:DescribeAccessEntry",
    "logs:DescribeLogGroups",
];

/// What `eks-preflight leftovers` (run by `make clean` after the teardown) calls, as its
/// `main.rs` lists it: all in [`PIPELINE_ACTIONS`], since the pipeline's identity runs it.
pub const LEFTOVERS_ACTIONS: &[&str] = &[
    "sts:GetCallerIdentity",
    "cloudformation:DescribeStacks",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTags",
    "ec2:DescribeVpcs",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeAddresses",
    "ec2:DescribeNatGateways",
    "iam:ListRoles",
    "iam:ListRoleTags",
    "iam:ListOpenIDConnectProviders",
    "iam:GetOpenIDConnectProvider",
    "eks:DescribeCluster",
    "eks:ListFargateProfiles",
    "eks:DescribeFargateProfile",
    "eks:ListAccessEntries",
    "eks:DescribeAccessEntry",
    "logs:DescribeLogGroups",
];

/// The actions of [`PIPELINE_ACTIONS`] that no step's doc names one by one: what CloudFormation
/// calls for the stacks' resources (`Fn::GetAZs`, reading back what it made, the Elastic IP's
/// release after the NAT gateway), and the spelled-out `ec2:Describe*`.
pub const FROM_STACK_RESOURCES: &[&str] = &[
    "ec2:DisassociateAddress",
    "ec2:DescribeInternetGateways",
    "ec2:DescribeAddresses",
    "ec2:DescribeSecurityGroupRules",
];

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

/// The `service:Action` names in backticks in the `//!` block of a `main.rs`.
pub fn documented_actions(main_rs: &str) -> Vec<String> {
    main_rs
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .flat_map(|l| l.split('`').skip(1).step_by(2))
        .filter(|quoted| split(quoted).is_some())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// Every step crate (the registry's folders); `patch` makes no AWS call but is read so a
    /// later permission there counts.
    fn step_crates() -> impl Iterator<Item = &'static str> {
        common::steps::STEPS.iter().map(|step| step.folder)
    }

    fn documented() -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        step_crates()
            .flat_map(|krate| {
                let path = root.join(krate).join("src/main.rs");
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                documented_actions(&text)
                    .into_iter()
                    .map(|a| (krate.to_string(), a))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn every_action_a_step_documents_is_in_the_list() {
        let documented = documented();
        assert!(
            documented.len() >= 60,
            "the docs name {} actions; the parser is broken",
            documented.len()
        );
        for (krate, action) in &documented {
            let covered = match action.strip_suffix('*') {
                Some(prefix) => PIPELINE_ACTIONS.iter().any(|a| a.starts_with(prefix)),
                None => PIPELINE_ACTIONS.contains(&action.as_str()),
            };
            assert!(
                covered,
                "{krate}/src/main.rs names `{action}`, which PIPELINE_ACTIONS lacks"
            );
        }
    }

    #[test]
    fn every_listed_action_is_documented_or_from_the_stacks() {
        let documented: BTreeSet<String> = documented().into_iter().map(|(_, a)| a).collect();
        for action in PIPELINE_ACTIONS {
            let named = documented.contains(*action);
            let from_stacks = FROM_STACK_RESOURCES.contains(action);
            let for_leftovers = LEFTOVERS_ACTIONS.contains(action);
            assert!(
                named || from_stacks || for_leftovers,
                "{action} is neither in a step's doc, nor in FROM_STACK_RESOURCES or LEFTOVERS_ACTIONS"
            );
            assert!(!(named && from_stacks), "{action} is documented already");
        }
        for action in FROM_STACK_RESOURCES {
            assert!(PIPELINE_ACTIONS.contains(action), "{action}");
        }
    }

    #[test]
    fn leftovers_actions_are_simulated_and_documented() {
        let main_rs =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/main.rs"))
                .expect("preflight/src/main.rs");
        let doc = documented_actions(&main_rs);
        let listed = main_rs
            .split("for `leftovers`:")
            .nth(1)
            .map(documented_actions)
            .expect("main.rs lists what `leftovers` needs");
        for action in LEFTOVERS_ACTIONS {
            assert!(PIPELINE_ACTIONS.contains(action), "{action}");
            assert!(doc.iter().any(|d| d == action), "main.rs lacks {action}");
        }
        for action in &listed {
            assert!(
                LEFTOVERS_ACTIONS.contains(&action.as_str()),
                "main.rs names {action} for leftovers; LEFTOVERS_ACTIONS lacks it"
            );
        }
    }

    #[test]
    fn the_list_is_well_formed_without_duplicates() {
        let mut seen = BTreeSet::new();
        for action in PIPELINE_ACTIONS {
            assert!(split(action).is_some(), "{action}");
            assert!(
                !action.contains('*'),
                "{action}: no patterns in a simulation"
            );
            assert!(seen.insert(action), "{action} twice");
        }
    }

    #[test]
    fn documented_actions_are_read_from_the_doc_block_only() {
        let text = "//! IAM: `ec2:CreateVpc`, `iam:PassRole` and `ec2:Describe*`;\n\
                    //! usage `x --connect-to H:P:A:P2` and `a:b`\n\
                    //! `sts:GetCallerIdentity`\n\
                    \n\
                    // `eks:CreateCluster` is code, not doc\n";
        assert_eq!(
            documented_actions(text),
            [
                "ec2:CreateVpc",
                "iam:PassRole",
                "ec2:Describe*",
                "sts:GetCallerIdentity"
            ]
        );
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
