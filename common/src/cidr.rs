//! CIDR blocks as the steps take them from flags and states: `ADDRESS/PREFIX`, IPv4 or IPv6, no
//! host bits set. The network types and their arithmetic are the `ipnet` crate's; this is the one
//! parser, and each step words its refusals for its flag (eks-cluster takes IPv4 only).

pub use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Why a text is not a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// No `/PREFIX`.
    #[error("not a CIDR: write it as ADDRESS/PREFIX, like 203.0.113.0/24 or 2001:db8::/32")]
    NoPrefix,
    /// What comes before the `/` is no IP address.
    #[error("`{address}` is not an IPv4 or IPv6 address")]
    Address { address: String },
    /// The prefix length is not a number from 0 to `max` (32 for IPv4, 128 for IPv6).
    #[error("the prefix length must be 0 to {max}")]
    Prefix { max: u8 },
    /// Bits past the prefix are set; `canonical` is the block meant.
    #[error("it has host bits set; did you mean {canonical}?")]
    HostBits { canonical: IpNet },
}

/// Parses `ADDRESS/PREFIX` (IPv4 or IPv6, the address as the standard library reads it, the
/// prefix a decimal number) and refuses host bits.
pub fn parse(text: &str) -> Result<IpNet, CidrError> {
    let (address, prefix) = text.split_once('/').ok_or(CidrError::NoPrefix)?;
    let address: std::net::IpAddr = address.parse().map_err(|_| CidrError::Address {
        address: address.to_owned(),
    })?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let net = prefix
        .parse::<u8>()
        .ok()
        .and_then(|prefix| IpNet::new(address, prefix).ok())
        .ok_or(CidrError::Prefix { max })?;
    let canonical = net.trunc();
    if canonical != net {
        return Err(CidrError::HostBits { canonical });
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_of_both_families() {
        for text in [
            "0.0.0.0/0",
            "203.0.113.0/24",
            "198.51.100.7/32",
            "::/0",
            "2001:db8::/32",
        ] {
            assert_eq!(parse(text).unwrap().to_string(), text);
        }
        assert!(matches!(parse("10.0.0.0/8"), Ok(IpNet::V4(_))));
        assert!(matches!(parse("fd00::/8"), Ok(IpNet::V6(_))));
    }

    #[test]
    fn refusals_say_which_part_is_wrong() {
        assert_eq!(parse("10.0.0.0"), Err(CidrError::NoPrefix));
        assert_eq!(
            parse("300.0.0.0/8"),
            Err(CidrError::Address {
                address: "300.0.0.0".into()
            })
        );
        assert_eq!(
            parse("010.0.0.0/8"),
            Err(CidrError::Address {
                address: "010.0.0.0".into()
            }),
            "no octal-looking octets"
        );
        assert_eq!(parse("10.0.0.0/33"), Err(CidrError::Prefix { max: 32 }));
        assert_eq!(parse("10.0.0.0/x"), Err(CidrError::Prefix { max: 32 }));
        assert_eq!(parse("10.0.0.0/"), Err(CidrError::Prefix { max: 32 }));
        assert_eq!(parse("::/129"), Err(CidrError::Prefix { max: 128 }));
        let host = parse("10.0.0.1/8").unwrap_err();
        assert_eq!(
            host.to_string(),
            "it has host bits set; did you mean 10.0.0.0/8?"
        );
        assert_eq!(
            parse("2001:db8::1/32").unwrap_err().to_string(),
            "it has host bits set; did you mean 2001:db8::/32?"
        );
    }
}
