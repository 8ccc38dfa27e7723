//! `eks-sg-stack`: the CloudFormation stack with the ALB security group (HTTP and HTTPS in from
//! the allowed CIDRs, TCP out to the pods) and the rule on the EKS cluster security group that
//! lets the ALB reach the pods. Fargate pods carry the cluster security group, so this is what
//! lets an `ip`-target ALB talk to them.

mod args;
pub mod cidr;
pub mod cli;
mod create;
mod delete;
pub mod error;
pub mod network;
pub mod template;

use crate::cidr::Cidr;

pub use crate::args::{CreateArgs, DeleteArgs, TemplateArgs};
pub use crate::create::{Plan, create, plan_for};
pub use crate::delete::delete;
pub use crate::error::{Error, Usage};

/// This step's section of the state document.
pub const SECTION: &str = common::sections::sg_stack::KEY;
/// The default allowed CIDR, as the seed's Makefile had it.
pub const DEFAULT_CIDR: &str = "0.0.0.0/0";
/// The default target port: the container port of the app eks-patch renders.
pub const DEFAULT_TARGET_PORT: u16 = 80;
/// The longest stack name CloudFormation accepts.
pub const MAX_STACK_NAME: usize = 128;

/// The `sgStack` section: its one model lives in `common::sections::sg_stack`.
pub use common::sections::sg_stack::Section;

/// The step named in [`common::owner::STEP_TAG`] on the stack this step makes.
pub const STEP: &str = "sg-stack";

/// The refusal for a stack of our name that is not ours.
pub fn not_ours(stack: &common::cfn::Stack, name: &str, fix: &str) -> common::owner::NotOurs {
    common::owner::NotOurs {
        what: "CloudFormation stack",
        name: name.to_owned(),
        why: common::owner::why_not_ours(|k| stack.tags.get(k).map(String::as_str)),
        fix: fix.to_owned(),
    }
}

/// The AWS clients this step uses, built once from the shared configuration.
#[derive(Debug, Clone)]
pub struct Clients {
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub eks: aws_sdk_eks::Client,
    pub ec2: aws_sdk_ec2::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            cloudformation: aws_sdk_cloudformation::Client::new(config),
            eks: aws_sdk_eks::Client::new(config),
            ec2: aws_sdk_ec2::Client::new(config),
        }
    }
}

/// The seed's stack name, `alb-securitygroup-<cluster>-<region>`, made valid for CloudFormation
/// (`_` becomes `-`) and shortened with a hash when it is longer than 128 characters.
pub fn stack_name(cluster: &str, region: &str) -> String {
    let name = format!("alb-securitygroup-{cluster}-{region}").replace('_', "-");
    common::names::fit(&name, MAX_STACK_NAME)
}

/// The allowed CIDRs: the flags, else those in the state, else 0.0.0.0/0.
pub fn pick_cidrs(flags: &[String], previous: Option<&Section>) -> Result<Vec<Cidr>, Error> {
    let values: Vec<String> = if !flags.is_empty() {
        flags.to_vec()
    } else if let Some(section) = previous.filter(|s| !s.allowed_cidrs.is_empty()) {
        tracing::info!(
            "no --allowed-cidr given; keeping the state's {}",
            section.allowed_cidrs.join(", ")
        );
        section.allowed_cidrs.clone()
    } else {
        vec![DEFAULT_CIDR.to_owned()]
    };
    cidr::parse_all(&values).map_err(|(value, reason)| Usage::Cidr { value, reason }.into())
}

/// The target ports: the flags, else those in the state, else 80; sorted, each once.
pub fn pick_ports(flags: &[u16], previous: Option<&Section>) -> Vec<u16> {
    let mut ports: Vec<u16> = if !flags.is_empty() {
        flags.to_vec()
    } else if let Some(section) = previous.filter(|s| !s.target_ports.is_empty()) {
        section.target_ports.clone()
    } else {
        vec![DEFAULT_TARGET_PORT]
    };
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// `eks-sg-stack template`: the template for the allowed CIDRs and target ports (bad input on
/// a bad CIDR).
pub fn template_text(args: &TemplateArgs) -> Result<String, Error> {
    let cidrs = pick_cidrs(&args.allowed_cidrs, None)?;
    Ok(template::render_text(
        &cidrs,
        &pick_ports(&args.target_ports, None),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::error::pick_for_section;
    use common::step::EXIT_USAGE;
    use common::{State, StepFailure};
    use serde_json::Map;

    #[test]
    fn stack_names() {
        assert_eq!(
            stack_name("eks-fargate", "us-east-2"),
            "alb-securitygroup-eks-fargate-us-east-2"
        );
        assert_eq!(
            stack_name("my_cluster", "eu-west-1"),
            "alb-securitygroup-my-cluster-eu-west-1"
        );
        let long = stack_name(&"c".repeat(100), "ap-southeast-5");
        assert!(long.len() <= MAX_STACK_NAME && long.len() > 100, "{long}");
        assert_eq!(long, stack_name(&"c".repeat(100), "ap-southeast-5"));
        assert_ne!(long, stack_name(&"c".repeat(100), "ap-southeast-4"));
    }

    fn state(text: &str) -> State {
        State::parse(text).unwrap()
    }

    /// The cluster as `create` picks it, in the section's region.
    fn cluster(flag: Option<&str>, state: &State) -> Result<String, Error> {
        Ok(pick_for_section::<Section>(flag, state, "us-east-2")?.0)
    }

    #[test]
    fn cluster_from_the_state_or_its_own_section() {
        // The rules themselves are common::cluster::pick's; here, where this step looks.
        let with = state(r#"{"schemaVersion":1,"cluster":{"name":"b"}}"#);
        assert_eq!(cluster(None, &with).unwrap(), "b");
        let mut own = State::new();
        own.set_section(SECTION, &section(&[]));
        assert_eq!(cluster(None, &own).unwrap(), "c");
        let err = cluster(Some("a"), &with).unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
        assert_eq!(
            cluster(None, &State::new()).unwrap_err().exit_code(),
            EXIT_USAGE
        );
    }

    fn section(cidrs: &[&str]) -> Section {
        Section {
            stack_name: "s".into(),
            stack_id: None,
            region: "us-east-2".into(),
            cluster_name: "c".into(),
            security_group_id: None,
            vpc_id: "vpc".into(),
            cluster_security_group_id: "sg".into(),
            cluster_security_group_source: network::Source::Tag,
            allowed_cidrs: cidrs.iter().map(|s| s.to_string()).collect(),
            target_ports: Vec::new(),
            extra: Map::new(),
        }
    }

    #[test]
    fn cidrs_from_flags_then_state_then_default() {
        let shown = |v: Vec<Cidr>| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        let prev = section(&["10.0.0.0/8"]);
        assert_eq!(
            shown(pick_cidrs(&["::/0".into()], Some(&prev)).unwrap()),
            ["::/0"]
        );
        assert_eq!(shown(pick_cidrs(&[], Some(&prev)).unwrap()), ["10.0.0.0/8"]);
        assert_eq!(shown(pick_cidrs(&[], None).unwrap()), ["0.0.0.0/0"]);
        let err = pick_cidrs(&["10.0.0.1/8".into()], None).unwrap_err();
        assert!(
            err.to_string().contains("--allowed-cidr `10.0.0.1/8`"),
            "{err}"
        );
    }

    #[test]
    fn section_for_another_place_is_refused() {
        let mut with = State::new();
        with.set_section(SECTION, &section(&[]));
        let check = |state: &State, flag: Option<&str>, region: &str| {
            pick_for_section::<Section>(flag, state, region)
                .map(|(_, previous)| previous)
                .map_err(Error::from)
        };
        assert_eq!(check(&with, None, "us-east-2").unwrap(), Some(section(&[])));
        assert_eq!(
            check(&with, Some("c"), "us-east-2").unwrap(),
            Some(section(&[]))
        );
        // The state now names another cluster than the one the stack was made for.
        let mut moved = with.clone();
        moved.set_section("cluster", &serde_json::json!({"name": "d"}));
        let err = check(&moved, None, "eu-west-1").unwrap_err();
        assert_eq!(err.exit_code(), EXIT_USAGE);
        assert_eq!(
            err.to_string(),
            "the state's sgStack section is for cluster c in us-east-2, not d in eu-west-1; delete that stack first or use a separate state"
        );
        assert!(check(&moved, None, "us-east-2").is_err());
        assert!(check(&with, None, "eu-west-1").is_err());
        let flag = check(&with, Some("d"), "us-east-2").unwrap_err();
        assert_eq!(flag.exit_code(), EXIT_USAGE);
        assert_eq!(check(&State::new(), Some("d"), "eu-west-1").unwrap(), None);
        let other = common::error::same_cluster(SECTION, Some("d"), "c").unwrap_err();
        assert_eq!(
            other.to_string(),
            "--cluster d names another cluster than the state's sgStack section (c); drop --cluster or use that cluster's state"
        );
    }
}
