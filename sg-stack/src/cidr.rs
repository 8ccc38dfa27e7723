//! Allowed source CIDRs for the ALB: IPv4 or IPv6, canonical (no host bits), no duplicates.

/// Most CIDRs one stack takes: each makes two rules (80 and 443), and a security group holds 60
/// inbound rules per address family by default.
pub const MAX_CIDRS: usize = 30;

/// One allowed CIDR (the `ipnet` crate's, parsed by [`common::cidr::parse`]).
pub type Cidr = common::cidr::IpNet;

/// Parses every value, keeps the first of duplicates, and checks the count. The error names the
/// offending value.
pub fn parse_all(values: &[String]) -> Result<Vec<Cidr>, (String, String)> {
    let mut out: Vec<Cidr> = Vec::new();
    for value in values {
        let cidr = common::cidr::parse(value.trim()).map_err(|e| (value.clone(), e.to_string()))?;
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
        assert!(matches!(got[2], Cidr::V6(_)) && matches!(got[0], Cidr::V4(_)));
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
