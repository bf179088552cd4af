//! The egress policy: which addresses an import may reach.
//!
//! An import names its source, so without a policy anyone who may import could make the
//! host fetch from its own network (SSRF): the cloud metadata service, an admin port on
//! loopback, a database on the private network. Every address a connection would use is
//! checked after DNS resolution, and the connection goes to the checked address only, so
//! a DNS answer that changes between the check and the connection (rebinding) cannot
//! slip a private address through. Redirects are new requests and are checked again.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A class of address that imports may not reach unless the configuration allows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Loopback,
    Private,
    LinkLocal,
    SharedCgnat,
    Metadata,
    Unspecified,
    Multicast,
    Reserved,
}

impl Refused {
    /// The class as an admin reads it in an error.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Refused::Loopback => "a loopback address",
            Refused::Private => "a private-network address",
            Refused::LinkLocal => "a link-local address",
            Refused::SharedCgnat => "a carrier-grade NAT (100.64.0.0/10) address",
            Refused::Metadata => "the cloud metadata service",
            Refused::Unspecified => "an unspecified address",
            Refused::Multicast => "a multicast or broadcast address",
            Refused::Reserved => "a reserved or documentation address",
        }
    }
}

/// An allowed network: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an address or CIDR block (like 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("{s:?} has a prefix length outside 0..={max}"))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Which addresses imports may reach: every public address, plus the networks the
/// configuration allows.
#[derive(Clone, Debug, Default)]
pub struct EgressPolicy {
    pub allowed: Vec<Cidr>,
    /// Host names (or literal addresses) reached whatever they resolve to: the external
    /// target the admin configured, which commonly lives on a private network. Redirects
    /// away from it are checked as usual.
    pub trusted_hosts: Vec<String>,
}

impl EgressPolicy {
    /// Whether `host` (a name or an address, IPv6 with or without brackets) is trusted.
    pub(crate) fn trusts(&self, host: &str) -> bool {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        self.trusted_hosts.iter().any(|t| {
            t.trim_start_matches('[')
                .trim_end_matches(']')
                .eq_ignore_ascii_case(bare)
        })
    }

    /// Whether `ip` may be reached; if not, the class that forbids it.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        match classify(ip) {
            None => Ok(()),
            Some(_) if self.allowed.iter().any(|c| c.contains(ip)) => Ok(()),
            Some(class) => Err(class),
        }
    }
}

/// The IPv4 address an IPv6 address names on the same host: IPv4-mapped (`::ffff:a.b.c.d`)
/// and IPv4-compatible (`::a.b.c.d`, deprecated but still dialled by some stacks). A
/// connection to either reaches that IPv4 address itself, so it is judged, and allowed,
/// as that address.
fn same_host_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if ip.is_unspecified() || ip.is_loopback() {
        return None;
    }
    ip.to_ipv4()
}

/// The IPv4 address a translation or tunnel scheme embeds in an IPv6 address: NAT64
/// (`64:ff9b::/96`, and the local-use `64:ff9b:1::/48`), 6to4 (`2002::/16`) and SIIT. Traffic
/// to such an address reaches that IPv4 address through a gateway, so a non-public one
/// is refused as that address's class. They are never allowed through an IPv4 network
/// of `allowed_networks`: a gateway, not this host, decides where they go.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0x0064, 0xff9b, 0, 0, 0, 0, hi, lo] | [0x0064, 0xff9b, 0x0001, _, _, _, hi, lo] => {
            Some(v4(hi, lo))
        }
        [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        // IPv4-translated (SIIT, `::ffff:0:a.b.c.d`).
        [0, 0, 0, 0, 0xffff, 0, hi, lo] => Some(v4(hi, lo)),
        _ => None,
    }
}

/// What an address is for the policy: IPv4 addresses written as IPv6 on the same host
/// are the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => same_host_v4(v6).map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The class of a non-public address, or None for a public one.
pub(crate) fn classify(ip: IpAddr) -> Option<Refused> {
    match canonical(ip) {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Refused> {
    let [a, b, ..] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        Some(Refused::Metadata)
    } else if ip.is_unspecified() || a == 0 {
        Some(Refused::Unspecified)
    } else if ip.is_loopback() {
        Some(Refused::Loopback)
    } else if ip.is_private() {
        Some(Refused::Private)
    } else if ip.is_link_local() {
        Some(Refused::LinkLocal)
    } else if a == 100 && (64..128).contains(&b) {
        Some(Refused::SharedCgnat)
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some(Refused::Multicast)
    } else if ip.is_documentation()
        || a >= 240
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
    {
        Some(Refused::Reserved)
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Refused> {
    let s = ip.segments();
    if ip.is_unspecified() {
        Some(Refused::Unspecified)
    } else if ip.is_loopback() {
        Some(Refused::Loopback)
    } else if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Some(Refused::Metadata)
    } else if let Some(v4) = embedded_v4(ip) {
        classify_v4(v4)
    } else if s[0] & 0xfe00 == 0xfc00 || s[0] & 0xffc0 == 0xfec0 {
        // Unique local addresses, and the deprecated site-local ones: private networks.
        Some(Refused::Private)
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some(Refused::LinkLocal)
    } else if ip.is_multicast() {
        Some(Refused::Multicast)
    } else if (s[0] == 0x2001 && matches!(s[1], 0x0db8 | 0))
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])
    {
        // Documentation, Teredo (whose embedded client address is obfuscated) and the
        // discard prefix.
        Some(Refused::Reserved)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> Option<Refused> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn every_internal_class_is_refused_and_public_addresses_pass() {
        assert_eq!(class("127.0.0.1"), Some(Refused::Loopback));
        assert_eq!(class("::1"), Some(Refused::Loopback));
        assert_eq!(class("10.1.2.3"), Some(Refused::Private));
        assert_eq!(class("172.16.0.1"), Some(Refused::Private));
        assert_eq!(class("192.168.1.1"), Some(Refused::Private));
        assert_eq!(class("fd12::1"), Some(Refused::Private));
        assert_eq!(class("169.254.1.1"), Some(Refused::LinkLocal));
        assert_eq!(class("fe80::1"), Some(Refused::LinkLocal));
        assert_eq!(class("100.64.0.1"), Some(Refused::SharedCgnat));
        assert_eq!(class("169.254.169.254"), Some(Refused::Metadata));
        assert_eq!(class("0.0.0.0"), Some(Refused::Unspecified));
        assert_eq!(class("::"), Some(Refused::Unspecified));
        assert_eq!(class("::ffff:10.0.0.1"), Some(Refused::Private), "mapped");
        assert_eq!(
            class("0:0:0:0:0:ffff:7f00:2"),
            Some(Refused::Loopback),
            "mapped, long"
        );
        assert_eq!(class("::127.0.0.1"), Some(Refused::Loopback), "compatible");
        assert_eq!(class("::ffff:169.254.169.254"), Some(Refused::Metadata));
        assert_eq!(class("64:ff9b::7f00:1"), Some(Refused::Loopback), "NAT64");
        assert_eq!(
            class("64:ff9b:1::a00:1"),
            Some(Refused::Private),
            "local NAT64"
        );
        assert_eq!(class("2002:a9fe:a9fe::1"), Some(Refused::Metadata), "6to4");
        assert_eq!(class("2002:0808:0808::1"), None, "6to4 of a public address");
        assert_eq!(
            class("2001:0:4136:e378::1"),
            Some(Refused::Reserved),
            "Teredo"
        );
        assert_eq!(class("fec0::1"), Some(Refused::Private), "site-local");
        assert_eq!(
            class("::ffff:0:a00:1"),
            Some(Refused::Private),
            "IPv4-translated"
        );
        assert_eq!(class("224.0.0.1"), Some(Refused::Multicast));
        assert_eq!(class("8.8.8.8"), None);
        assert_eq!(class("100.128.0.1"), None, "just outside CGNAT");
        assert_eq!(class("2606:4700::1111"), None);
    }

    #[test]
    fn a_trusted_host_is_trusted_by_name_and_nothing_else_is() {
        let policy = EgressPolicy {
            trusted_hosts: vec!["registry.internal".into(), "[fd00::5]".into()],
            ..Default::default()
        };
        assert!(policy.trusts("registry.internal"));
        assert!(policy.trusts("REGISTRY.internal"));
        assert!(policy.trusts("fd00::5"));
        assert!(policy.trusts("[fd00::5]"));
        assert!(!policy.trusts("registry.internal.evil"));
        assert!(!policy.trusts("10.0.0.1"));
        // Trust is by name: the addresses themselves stay refused for everyone else.
        assert_eq!(
            policy.check("fd00::5".parse().unwrap()),
            Err(Refused::Private)
        );
    }

    #[test]
    fn the_configuration_can_allow_networks() {
        let policy = EgressPolicy {
            allowed: vec![
                Cidr::parse("127.0.0.0/8").unwrap(),
                Cidr::parse("10.20.0.0/16").unwrap(),
            ],
            ..Default::default()
        };
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("::127.0.0.1".parse().unwrap()).is_ok());
        assert_eq!(
            policy.check("2002:7f00:1::".parse().unwrap()),
            Err(Refused::Loopback),
            "a 6to4 gateway is not this host, whatever it embeds"
        );
        assert!(policy.check("10.20.3.4".parse().unwrap()).is_ok());
        assert_eq!(
            policy.check("10.21.0.1".parse().unwrap()),
            Err(Refused::Private)
        );
        assert_eq!(
            policy.check("169.254.169.254".parse().unwrap()),
            Err(Refused::Metadata)
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("nope").is_err());
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("1.2.3.4".parse().unwrap())
        );
    }
}
