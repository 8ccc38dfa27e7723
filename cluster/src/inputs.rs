//! Checks of the command line, all made before any AWS call (a refusal is exit 2, nothing changed).

use std::net::Ipv4Addr;

use crate::error::Usage;

/// The Kubernetes version `create` asks for when `--kubernetes-version` is not given.
///
/// Why 1.35: Amazon EKS gives each Kubernetes minor version 14 months of standard support from
/// the day EKS releases it. Upstream released 1.35 in December 2025, and EKS releases a version
/// within about two months of upstream (1.33 and 1.34 followed that pattern in 2025), so 1.35 is
/// in standard support from early 2026 to about spring 2027, covering November 2026 with room to
/// spare. 1.36 (upstream April 2026) may be out on EKS by now, but we could not confirm its EKS
/// release from here, and a default must be a version EKS certainly accepts. Pass
/// `--kubernetes-version` for another.
pub const DEFAULT_KUBERNETES_VERSION: &str = "1.35";

/// The VPC CIDR when `--vpc-cidr` is not given (eksctl's).
pub const DEFAULT_VPC_CIDR: &str = "192.168.0.0/16";

/// The namespaces the Fargate profile selects when no `--namespace` is given: the cluster's own
/// (`default`; `kube-system` for CoreDNS and the AWS Load Balancer Controller) and the app's
/// that `eks-patch` renders (`game-2048`, manifests/06-app-2048.yaml), so that
/// `eks-cluster create | ... | eks-deploy apply` runs every pod on Fargate with no flag.
pub const DEFAULT_NAMESPACES: [&str; 3] = ["default", "kube-system", "game-2048"];

/// `1.NN`: a Kubernetes minor version as EKS names it.
pub fn check_version(version: &str) -> Result<(), String> {
    let ok = version.strip_prefix("1.").is_some_and(|minor| {
        (1..=3).contains(&minor.len())
            && minor.bytes().all(|b| b.is_ascii_digit())
            && !minor.starts_with('0')
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{version}` is not a Kubernetes minor version like {DEFAULT_KUBERNETES_VERSION} (major.minor, no patch level, no `v`)"
        ))
    }
}

/// A DNS-1123 label: what a namespace name must be.
pub fn check_namespace(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "namespace `{name}` is not a DNS-1123 label (1 to 63 of a-z, 0-9 and `-`, starting and ending with a letter or digit)"
        ))
    }
}

/// An IPv4 network (the `ipnet` crate's, through [`common::cidr`]).
pub use common::cidr::Ipv4Net;

/// Parses `a.b.c.d/n` and refuses host bits, naming the canonical form.
pub fn parse_ipv4_net(text: &str) -> Result<Ipv4Net, String> {
    use common::cidr::{CidrError, IpNet};
    let not_ipv4 = || format!("`{text}` is not an IPv4 CIDR like 192.168.0.0/16");
    match common::cidr::parse(text) {
        Ok(IpNet::V4(net)) => Ok(net),
        Err(CidrError::Prefix { max: 32 }) => {
            Err(format!("`{text}` has no prefix length from 0 to 32"))
        }
        Err(CidrError::HostBits {
            canonical: IpNet::V4(canonical),
        }) => Err(format!(
            "`{text}` has host bits set; did you mean {canonical}?"
        )),
        Ok(IpNet::V6(_)) | Err(_) => Err(not_ipv4()),
    }
}

/// The `index`-th of the networks `extra` bits longer than `net`.
pub fn subnet(net: &Ipv4Net, extra: u8, index: u32) -> Ipv4Net {
    net.subnets(net.prefix_len() + extra)
        .ok()
        .and_then(|mut all| all.nth(index as usize))
        .expect("the VPC prefix (/16 to /20) leaves room for the subnets")
}

/// The VPC CIDR: IPv4, /16 to /20 so that eight equal subnets (up to three public and three
/// private) still hold a useful number of pod addresses.
pub fn check_vpc_cidr(text: &str) -> Result<Ipv4Net, String> {
    let net = parse_ipv4_net(text)?;
    if !(16..=20).contains(&net.prefix_len()) {
        return Err(format!(
            "`{text}`: the VPC prefix must be /16 to /20 (EKS allows /16 at most; past /20 the subnets get too small for Fargate pods)"
        ));
    }
    Ok(net)
}

/// The subnet CIDRs for `azs` zones: the VPC split in eight, public ones first, private ones
/// from the fifth part on (a /16 gives /19s, as eksctl makes).
pub fn subnet_cidrs(vpc: &Ipv4Net, azs: u8) -> (Vec<Ipv4Net>, Vec<Ipv4Net>) {
    let public = (0..u32::from(azs)).map(|i| subnet(vpc, 3, i)).collect();
    let private = (0..u32::from(azs)).map(|i| subnet(vpc, 3, 4 + i)).collect();
    (public, private)
}

/// `2` or `3` zones.
pub fn check_azs(azs: u8) -> Result<(), Usage> {
    if (2..=3).contains(&azs) {
        Ok(())
    } else {
        Err(Usage::Azs { azs })
    }
}

/// A comma list of subnet ids (`subnet-` and hex), without repeats.
pub fn parse_subnet_list(flag: &'static str, text: &str) -> Result<Vec<String>, Usage> {
    let mut ids: Vec<String> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let valid = part
            .strip_prefix("subnet-")
            .is_some_and(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if !valid {
            return Err(Usage::SubnetId {
                flag,
                subnet: part.to_owned(),
            });
        }
        if !ids.iter().any(|i| i == part) {
            ids.push(part.to_owned());
        }
    }
    if ids.is_empty() {
        return Err(Usage::NoSubnet { flag });
    }
    Ok(ids)
}

/// `vpc-` and hex.
pub fn check_vpc_id(text: &str) -> Result<(), Usage> {
    let valid = text
        .strip_prefix("vpc-")
        .is_some_and(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if valid {
        Ok(())
    } else {
        Err(Usage::VpcId {
            vpc_id: text.to_owned(),
        })
    }
}

/// The CIDR the public API endpoint is open to when `--public-access-cidrs` is not given (and
/// the state records none): EKS's own default, all of IPv4.
pub const OPEN_TO_ALL: &str = "0.0.0.0/0";

/// How many CIDR blocks EKS takes in `publicAccessCidrs` (its default quota).
pub const MAX_PUBLIC_ACCESS_CIDRS: usize = 40;

/// Blocks that never reach a public endpoint: private (RFC 1918), shared (RFC 6598), loopback,
/// link-local, "this network", multicast and reserved addresses.
const NOT_PUBLIC: [(&str, [u8; 4], u8); 9] = [
    ("\"this network\"", [0, 0, 0, 0], 8),
    ("private (RFC 1918)", [10, 0, 0, 0], 8),
    ("private (RFC 1918)", [172, 16, 0, 0], 12),
    ("private (RFC 1918)", [192, 168, 0, 0], 16),
    ("shared address space (RFC 6598)", [100, 64, 0, 0], 10),
    ("loopback", [127, 0, 0, 0], 8),
    ("link-local", [169, 254, 0, 0], 16),
    ("multicast", [224, 0, 0, 0], 4),
    ("reserved", [240, 0, 0, 0], 4),
];

/// One CIDR of `--public-access-cidrs`: IPv4 (the cluster's public endpoint is IPv4), host bits
/// zero, and public addresses: the endpoint is reached from the internet, and a private range
/// would never match (the VPC reaches the cluster through its private endpoint).
pub fn check_public_access_cidr(text: &str) -> Result<Ipv4Net, String> {
    let net = parse_ipv4_net(text.trim())?;
    if net.prefix_len() == 0 {
        return Ok(net);
    }
    for (what, block, prefix) in NOT_PUBLIC {
        if Ipv4Net::new_assert(Ipv4Addr::from(block), prefix).contains(&net) {
            return Err(format!(
                "`{text}` is {what}, which never reaches the public endpoint (the VPC reaches the cluster through its private endpoint); give the public addresses your kubectl and CI connect from, like 203.0.113.0/24"
            ));
        }
    }
    Ok(net)
}

/// Every CIDR of `--public-access-cidrs` (or the state's), checked and without repeats; at most
/// [`MAX_PUBLIC_ACCESS_CIDRS`].
pub fn check_public_access_cidrs(values: &[String]) -> Result<Vec<String>, Usage> {
    let mut cidrs: Vec<String> = Vec::new();
    for value in values {
        let net = check_public_access_cidr(value).map_err(|reason| Usage::Flag {
            flag: "--public-access-cidrs",
            reason,
        })?;
        let shown = net.to_string();
        if !cidrs.contains(&shown) {
            cidrs.push(shown);
        }
    }
    if cidrs.is_empty() {
        return Err(Usage::Flag {
            flag: "--public-access-cidrs",
            reason: format!(
                "names no CIDR; give one like 203.0.113.0/24, or leave the flag out for {OPEN_TO_ALL}"
            ),
        });
    }
    if cidrs.len() > MAX_PUBLIC_ACCESS_CIDRS {
        return Err(Usage::Flag {
            flag: "--public-access-cidrs",
            reason: format!(
                "{} CIDRs given; EKS takes at most {MAX_PUBLIC_ACCESS_CIDRS} (its default quota): merge them into wider blocks",
                cidrs.len()
            ),
        });
    }
    Ok(cidrs)
}

/// True when the CIDRs open the public endpoint to every address.
pub fn open_to_all(cidrs: &[String]) -> bool {
    cidrs.iter().any(|c| c == OPEN_TO_ALL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for good in ["1.35", "1.29", "1.100"] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in [
            "", "1", "1.", "v1.35", "1.35.2", "2.0", "1.x", "1.05", " 1.35",
        ] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
        assert!(check_version(DEFAULT_KUBERNETES_VERSION).is_ok());
    }

    #[test]
    fn namespaces() {
        for good in ["default", "kube-system", "a", "team-1"] {
            assert!(check_namespace(good).is_ok(), "{good}");
        }
        for bad in ["", "Default", "-a", "a-", "a_b", "a.b", &"a".repeat(64)] {
            assert!(check_namespace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn vpc_cidrs() {
        assert_eq!(check_vpc_cidr("192.168.0.0/16").unwrap().prefix_len(), 16);
        assert!(check_vpc_cidr("10.1.0.0/20").is_ok());
        let host = check_vpc_cidr("10.0.0.1/16").unwrap_err();
        assert!(host.contains("10.0.0.0/16"), "{host}");
        for bad in [
            "10.0.0.0/8",
            "10.0.0.0/24",
            "10.0.0.0",
            "::/0",
            "300.0.0.0/16",
            "10.0.0.0/33",
        ] {
            assert!(check_vpc_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subnets_split_the_vpc_in_eight() {
        let vpc = check_vpc_cidr("192.168.0.0/16").unwrap();
        let (public, private) = subnet_cidrs(&vpc, 3);
        let shown = |v: &[Ipv4Net]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            shown(&public),
            ["192.168.0.0/19", "192.168.32.0/19", "192.168.64.0/19"]
        );
        assert_eq!(
            shown(&private),
            ["192.168.128.0/19", "192.168.160.0/19", "192.168.192.0/19"]
        );
        let small = check_vpc_cidr("10.0.16.0/20").unwrap();
        let (_, private) = subnet_cidrs(&small, 2);
        assert_eq!(shown(&private), ["10.0.24.0/23", "10.0.26.0/23"]);
    }

    #[test]
    fn azs() {
        assert!(check_azs(2).is_ok() && check_azs(3).is_ok());
        assert!(check_azs(1).is_err() && check_azs(4).is_err());
    }

    #[test]
    fn subnet_lists() {
        assert_eq!(
            parse_subnet_list("--private-subnets", "subnet-1a, subnet-2b,subnet-1a").unwrap(),
            ["subnet-1a", "subnet-2b"]
        );
        assert!(parse_subnet_list("--private-subnets", "").is_err());
        assert!(parse_subnet_list("--private-subnets", "sub-1").is_err());
        assert!(check_vpc_id("vpc-0abc").is_ok());
        assert!(check_vpc_id("vpc-").is_err());
    }

    #[test]
    fn public_access_cidrs() {
        let ok = |v: &[&str]| {
            check_public_access_cidrs(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(
            ok(&["203.0.113.0/24", "198.51.100.7/32", "203.0.113.0/24"]).unwrap(),
            ["203.0.113.0/24", "198.51.100.7/32"]
        );
        assert_eq!(ok(&["0.0.0.0/0"]).unwrap(), [OPEN_TO_ALL]);
        assert!(open_to_all(&ok(&["0.0.0.0/0", "1.2.3.0/24"]).unwrap()));
        for (bad, words) in [
            ("10.1.0.0/16", "private"),
            ("192.168.1.0/24", "private"),
            ("172.20.0.0/16", "private"),
            ("100.64.0.0/10", "shared"),
            ("127.0.0.1/32", "loopback"),
            ("0.0.0.0/8", "this network"),
            ("203.0.113.1/24", "203.0.113.0/24"),
            ("2001:db8::/32", "IPv4"),
            ("203.0.113.0", "IPv4 CIDR"),
            ("203.0.113.0/33", "prefix"),
        ] {
            let err = ok(&[bad]).unwrap_err().to_string();
            assert!(
                err.starts_with("--public-access-cidrs: ")
                    && err.contains(bad)
                    && err.contains(words),
                "{bad}: {err}"
            );
        }
        // A public block that merely contains a private one is fine (0.0.0.0/1 holds 10/8).
        assert!(ok(&["0.0.0.0/1", "172.15.0.0/16", "172.32.0.0/16"]).is_ok());
        let many: Vec<String> = (0..41).map(|i| format!("198.51.{i}.0/24")).collect();
        assert!(
            check_public_access_cidrs(&many)
                .unwrap_err()
                .to_string()
                .contains("at most 40")
        );
        assert!(ok(&[]).is_err());
    }

    /// The default profile selects the namespace of every pod the shipped manifests make (the
    /// Makefile's FARGATE_NAMESPACES and the CI's `--namespace` flags are generated from it).
    #[test]
    fn default_namespaces_cover_the_shipped_manifests() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files: Vec<_> = std::fs::read_dir(root.join("manifests"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        let mut workloads = 0;
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
            for doc in docs
                .iter()
                .filter(|d| d["spec"]["template"]["spec"].is_object())
            {
                workloads += 1;
                let ns = doc["metadata"]["namespace"].as_str().unwrap_or("default");
                assert!(
                    DEFAULT_NAMESPACES.contains(&ns),
                    "{} runs pods in {ns}, which the default Fargate profile does not select",
                    file.display()
                );
            }
        }
        assert!(workloads >= 2, "the controller and the app");
    }
}
