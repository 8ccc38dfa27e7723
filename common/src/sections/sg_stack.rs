//! The `sgStack` section, written by `eks-sg-stack`: the CloudFormation stack with the ALB
//! security group. `eks-patch` reads its cluster, VPC and security group, `eks-deploy` its
//! target ports ([`Facts`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::State;
use crate::state::StateError;

/// The section's key in the state document.
pub const KEY: &str = "sgStack";
/// What to do when the state's `sgStack` section is about another cluster or region.
pub const SAME_PLACE_FIX: &str = "delete that stack first or use a separate state";

/// How the cluster security group was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The state's `cluster` section.
    State,
    /// `DescribeCluster`'s `clusterSecurityGroupId`.
    DescribeCluster,
    /// The security group tagged `aws:eks:cluster-name`.
    Tag,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::State => "the state document",
            Source::DescribeCluster => "DescribeCluster",
            Source::Tag => "the tag aws:eks:cluster-name",
        })
    }
}

/// The `sgStack` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Section {
    pub stack_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_id: Option<String>,
    pub region: String,
    pub cluster_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_group_id: Option<String>,
    pub vpc_id: String,
    pub cluster_security_group_id: String,
    pub cluster_security_group_source: Source,
    pub allowed_cidrs: Vec<String>,
    /// The ports the ALB may reach on the pods (absent in sections written before they were
    /// chosen, whose stack opened every port).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_ports: Vec<u16>,
    /// Keys a newer version wrote, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Section {
    /// The whole section as the state holds it; a malformed section is bad input.
    pub fn read(state: &State) -> Result<Option<Section>, StateError> {
        state.section(KEY)
    }

    /// True when this section records `stack` (by its id) as the one this step made.
    pub fn records(&self, stack: &crate::cfn::Stack) -> bool {
        self.stack_id.as_deref() == Some(stack.id.as_str())
    }
}

impl crate::error::OwnSection for Section {
    const SECTION: &'static str = KEY;
    const SAME_PLACE_FIX: &'static str = SAME_PLACE_FIX;
    fn place(&self) -> (&str, &str) {
        (&self.cluster_name, &self.region)
    }
}

/// What other steps read of the section, each key optional: a section written by hand or by an
/// older version still gives what it has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    /// The cluster the stack was made for (`eks-patch`: the cluster when nothing else names one).
    #[serde(default)]
    pub cluster_name: Option<String>,
    /// The cluster's VPC (`eks-patch`, after `cluster.vpcId`).
    #[serde(default)]
    pub vpc_id: Option<String>,
    /// The ALB security group (`eks-patch`).
    #[serde(default)]
    pub security_group_id: Option<String>,
    /// The ports the ALB may reach (`eks-deploy`); `None` when the section does not say (written
    /// before they were chosen: every port was open).
    #[serde(default)]
    pub target_ports: Option<Vec<u16>>,
}

impl Facts {
    /// The view of the state's section; `None` without one. A key of the wrong type is bad
    /// input.
    pub fn read(state: &State) -> Result<Option<Facts>, StateError> {
        state.section(KEY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_keys_and_source_names() {
        let section = Section {
            stack_name: "s".into(),
            stack_id: Some("id".into()),
            region: "us-east-2".into(),
            cluster_name: "c".into(),
            security_group_id: Some("sg-alb".into()),
            vpc_id: "vpc".into(),
            cluster_security_group_id: "sg".into(),
            cluster_security_group_source: Source::DescribeCluster,
            allowed_cidrs: vec!["0.0.0.0/0".into()],
            target_ports: vec![80],
            extra: Map::new(),
        };
        let v = serde_json::to_value(&section).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "stackName",
                "stackId",
                "region",
                "clusterName",
                "securityGroupId",
                "vpcId",
                "clusterSecurityGroupId",
                "clusterSecurityGroupSource",
                "allowedCidrs",
                "targetPorts"
            ]
        );
        assert_eq!(v["clusterSecurityGroupSource"], "describe-cluster");
        assert_eq!(Source::Tag.to_string(), "the tag aws:eks:cluster-name");
    }

    #[test]
    fn the_view_reads_partial_sections() {
        let state = State::parse(
            r#"{"schemaVersion":1,"sgStack":{"clusterName":"demo","targetPorts":[80,8080]}}"#,
        )
        .unwrap();
        let facts = Facts::read(&state).unwrap().unwrap();
        assert_eq!(facts.cluster_name.as_deref(), Some("demo"));
        assert_eq!(facts.target_ports, Some(vec![80, 8080]));
        assert_eq!(facts.vpc_id, None);
        let old = State::parse(r#"{"schemaVersion":1,"sgStack":{"allowedCidrs":[]}}"#).unwrap();
        assert_eq!(Facts::read(&old).unwrap().unwrap().target_ports, None);
        assert!(Facts::read(&State::new()).unwrap().is_none());
        let bad = State::parse(r#"{"schemaVersion":1,"sgStack":{"vpcId":5}}"#).unwrap();
        assert!(Facts::read(&bad).is_err());
    }
}
