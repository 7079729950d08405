//! DNSBL/DNSWL query names and per-zone outcomes.
//!
//! An IPv4 client 192.0.2.1 is asked as `1.2.0.192.<zone>`; an IPv6 client as
//! its 32 nibbles reversed (RFC 5782). An A answer in 127.0.0.0/8 means
//! listed; NXDOMAIN (or no A record) means not listed. Answers in
//! 127.255.255.0/24 (the lists' "query refused / public resolver" codes) and
//! answers outside 127.0.0.0/8 (a hijacking resolver) are failures.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// What one zone said about a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsblOutcome {
    /// Listed, with the 127.x.y.z return codes (sorted, no duplicates).
    Listed(Vec<Ipv4Addr>),
    /// Not listed (NXDOMAIN or no A record).
    NotListed,
    /// No usable answer: `"timeout"`, `"servfail"`, or another reason.
    Failed(String),
}

/// The result for one zone of [`crate::Resolver::dnsbl`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneResult {
    /// The zone as given by the caller.
    pub zone: String,
    /// What the zone said.
    pub outcome: DnsblOutcome,
    /// How long the outcome stays valid (clamped cache TTL, or what is left
    /// of it on a cache hit); zero for `Failed`.
    pub ttl: Duration,
}

/// The name to ask for `ip` in `zone` (without trailing dot), e.g.
/// `1.2.0.192.zen.example` for 192.0.2.1.
pub fn dnsbl_query_name(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_end_matches('.');
    let mut name = String::with_capacity(80);
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            let _ = write!(name, "{d}.{c}.{b}.{a}.");
        }
        IpAddr::V6(v6) => {
            for byte in v6.octets().iter().rev() {
                let _ = write!(name, "{:x}.{:x}.", byte & 0x0f, byte >> 4);
            }
        }
    }
    name.push_str(zone);
    name
}

/// Classifies the A records of a DNSBL answer.
pub(crate) fn classify(mut codes: Vec<Ipv4Addr>) -> DnsblOutcome {
    if codes.is_empty() {
        return DnsblOutcome::NotListed;
    }
    codes.sort_unstable();
    codes.dedup();
    if let Some(bad) = codes.iter().find(|ip| ip.octets()[0] != 127) {
        return DnsblOutcome::Failed(format!("answer {bad} outside 127.0.0.0/8"));
    }
    if let Some(code) = codes.iter().find(|ip| ip.octets()[..3] == [127, 255, 255]) {
        return DnsblOutcome::Failed(format!("error code {code}"));
    }
    DnsblOutcome::Listed(codes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn query_names() {
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(
            dnsbl_query_name(v4, "zen.example."),
            "1.2.0.192.zen.example"
        );
        let v6: Ipv6Addr = "2001:db8::1:2".parse().unwrap();
        assert_eq!(
            dnsbl_query_name(IpAddr::V6(v6), "bl.example"),
            "2.0.0.0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example"
        );
    }

    #[test]
    fn classification() {
        assert_eq!(classify(vec![]), DnsblOutcome::NotListed);
        let two = Ipv4Addr::new(127, 0, 0, 2);
        let four = Ipv4Addr::new(127, 0, 0, 4);
        assert_eq!(
            classify(vec![four, two, four]),
            DnsblOutcome::Listed(vec![two, four])
        );
        assert!(matches!(
            classify(vec![Ipv4Addr::new(127, 255, 255, 254)]),
            DnsblOutcome::Failed(_)
        ));
        assert!(matches!(
            classify(vec![two, Ipv4Addr::new(198, 51, 100, 1)]),
            DnsblOutcome::Failed(_)
        ));
    }
}
