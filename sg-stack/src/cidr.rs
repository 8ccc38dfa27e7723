//! Allowed source CIDRs for the ALB: IPv4 or IPv6, canonical (no host bits), no duplicates.

use std::fmt;
use std::net::IpAddr;

/// Most CIDRs one stack takes: each makes two rules (80 and 443), and a security group holds 60
/// inbound rules per address family by default.
pub const MAX_CIDRS: usize = 30;

/// One allowed CIDR.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// True for IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.addr.is_ipv6()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = text.split_once('/').ok_or(
            "not a CIDR: write it as ADDRESS/PREFIX, like 203.0.113.0/24 or 2001:db8::/32",
        )?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IPv4 or IPv6 address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("the prefix length must be 0 to {max}"))?;
        let canonical = Cidr {
            addr: network(addr, prefix),
            prefix,
        };
        if canonical.addr != addr {
            return Err(format!("it has host bits set; did you mean {canonical}?"));
        }
        Ok(canonical)
    }
}

fn network(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
    }
}

/// Parses every value, keeps the first of duplicates, and checks the count. The error names the
/// offending value.
pub fn parse_all(values: &[String]) -> Result<Vec<Cidr>, (String, String)> {
    let mut out: Vec<Cidr> = Vec::new();
    for value in values {
        let cidr: Cidr = value.trim().parse().map_err(|e| (value.clone(), e))?;
        if !out.contains(&cidr) {
            out.push(cidr);
        }
    }
    if out.is_empty() {
        return Err((String::new(), "at least one CIDR is needed".into()));
    }
    if out.len() > MAX_CIDRS {
        return Err((
            values.join(","),
            format!(
                "{} CIDRs; at most {MAX_CIDRS} fit in one security group",
                out.len()
            ),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn accepts_v4_and_v6() {
        let got = parse_all(&strings(&[
            "0.0.0.0/0",
            "203.0.113.0/24",
            "::/0",
            "2001:db8::/32",
            "198.51.100.7/32",
        ]))
        .unwrap();
        let shown: Vec<String> = got.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "0.0.0.0/0",
                "203.0.113.0/24",
                "::/0",
                "2001:db8::/32",
                "198.51.100.7/32"
            ]
        );
        assert!(got[2].is_ipv6() && !got[0].is_ipv6());
    }

    #[test]
    fn refuses_malformed_with_a_hint() {
        let err = |v: &str| parse_all(&strings(&[v])).unwrap_err();
        assert!(err("10.0.0.1/8").1.contains("did you mean 10.0.0.0/8"));
        assert!(
            err("2001:db8::1/32")
                .1
                .contains("did you mean 2001:db8::/32")
        );
        assert!(err("10.0.0.0").1.contains("ADDRESS/PREFIX"));
        assert!(err("10.0.0.0/33").1.contains("0 to 32"));
        assert!(err("::/129").1.contains("0 to 128"));
        assert!(err("300.0.0.0/8").1.contains("not an IPv4"));
        assert_eq!(err("nonsense/8").0, "nonsense/8");
    }

    #[test]
    fn deduplicates_and_limits() {
        assert_eq!(
            parse_all(&strings(&["10.0.0.0/8", "10.0.0.0/8"]))
                .unwrap()
                .len(),
            1
        );
        let many: Vec<String> = (0..31).map(|i| format!("10.{i}.0.0/16")).collect();
        assert!(parse_all(&many).unwrap_err().1.contains("at most 30"));
        assert!(parse_all(&[]).is_err());
    }
}
