//! Forward-confirmed reverse DNS (FCrDNS, "paranoid" reverse DNS) of a
//! client address.
//!
//! The PTR records of the address are asked first; then the A (IPv4
//! client) or AAAA (IPv6 client) records of each PTR name, in parallel, for
//! at most [`MAX_PTR_NAMES`] names. The first name, in answer order, whose
//! addresses include the client is its verified name. Anyone can publish
//! any PTR name for their own addresses, so only a verified name says
//! something about the client.
//!
//! Answers are cached per address like DNSBL answers: bounded, TTL clamped
//! to [[`crate::MIN_TTL`], [`crate::MAX_TTL`]], failures not kept.
//!
//! hickory answers the loopback reverse zones itself (RFC 6761; 127.0.0.0/8
//! and `::1` are `localhost`, or their name in `/etc/hosts`) without asking
//! any server, so a loopback client is always verified under a local name.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hickory_resolver::proto::rr::{RData, RecordType};
use tokio::task::JoinSet;

use crate::dnsbl::dnsbl_query_name;
use crate::resolver::{lookup, DnsError, Resolver};

/// Most PTR names whose addresses are asked (a PTR RRset may be long; the
/// others are ignored, as Postfix and Exim do).
pub const MAX_PTR_NAMES: usize = 5;

/// What the reverse DNS of a client address says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReverseName {
    /// A PTR name whose A/AAAA records include the address: lower case,
    /// without the trailing dot.
    Verified(String),
    /// PTR names exist, but none of the first [`MAX_PTR_NAMES`] (with a
    /// usable host name syntax) resolves back to the address.
    Unverified,
    /// No PTR record (NXDOMAIN or an empty answer).
    None,
    /// A lookup failed (timeout, SERVFAIL, ...) before anything could be
    /// decided; asking again later may give another answer.
    TempFail,
}

impl ReverseName {
    /// The verified name, if any.
    pub fn verified(&self) -> Option<&str> {
        match self {
            ReverseName::Verified(name) => Some(name),
            _ => Option::None,
        }
    }

    /// A short label for counters and logs: `verified`, `unverified`,
    /// `none` or `temperror`.
    pub fn label(&self) -> &'static str {
        match self {
            ReverseName::Verified(_) => "verified",
            ReverseName::Unverified => "unverified",
            ReverseName::None => "none",
            ReverseName::TempFail => "temperror",
        }
    }
}

/// The PTR name asked for `ip` (without trailing dot): `4.3.2.1.in-addr.arpa`
/// for 1.2.3.4, the 32 reversed nibbles under `ip6.arpa` for IPv6. An
/// IPv4-mapped IPv6 address is asked as its IPv4 address.
pub fn reverse_query_name(ip: IpAddr) -> String {
    let ip = ip.to_canonical();
    let zone = match ip {
        IpAddr::V4(_) => "in-addr.arpa",
        IpAddr::V6(_) => "ip6.arpa",
    };
    dnsbl_query_name(ip, zone)
}

impl Resolver {
    /// The forward-confirmed reverse name of `ip`, within `timeout` for the
    /// whole of it (PTR, then the addresses of each PTR name in parallel;
    /// each query is also bounded by the resolver's own timeout). Running
    /// out of time is [`ReverseName::TempFail`]. Answers are cached for their
    /// smallest TTL, clamped to [60 s, 1 h]; `TempFail` is not cached.
    pub async fn verified_reverse_name(&self, ip: IpAddr, timeout: Duration) -> ReverseName {
        let ip = ip.to_canonical();
        if let Some((cached, _)) = self.reverse_cache().get(&ip, Instant::now()) {
            return cached;
        }
        let Ok((name, ttl)) = tokio::time::timeout(timeout, self.ask_reverse(ip)).await else {
            return ReverseName::TempFail;
        };
        if name != ReverseName::TempFail {
            self.reverse_cache()
                .insert(ip, name.clone(), ttl, Instant::now());
        }
        name
    }

    fn reverse_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, crate::cache::TtlCache<IpAddr, ReverseName>> {
        self.reverse_cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The uncached lookups: the outcome and its TTL.
    async fn ask_reverse(&self, ip: IpAddr) -> (ReverseName, Duration) {
        let (records, ptr_ttl) = match lookup(
            &self.inner,
            self.timeout,
            &reverse_query_name(ip),
            RecordType::PTR,
        )
        .await
        {
            Ok(answer) => answer,
            Err(_) => return (ReverseName::TempFail, Duration::ZERO),
        };
        let names = ptr_names(&records);
        if records.is_empty() {
            return (ReverseName::None, ptr_ttl);
        }
        let rtype = match ip {
            IpAddr::V4(_) => RecordType::A,
            IpAddr::V6(_) => RecordType::AAAA,
        };
        let mut set = JoinSet::new();
        for (index, name) in names.iter().enumerate() {
            let (inner, timeout, name) = (self.inner.clone(), self.timeout, name.clone());
            set.spawn(async move { (index, lookup(&inner, timeout, &name, rtype).await) });
        }
        let mut forward: Vec<Forward> = vec![Err(DnsError::Other("not asked".into())); names.len()];
        while let Some(joined) = set.join_next().await {
            let Ok((index, got)) = joined else { continue };
            forward[index] = got.map(|(records, ttl)| (addresses(&records), ttl));
        }
        decide(ip, &names, &forward, ptr_ttl)
    }
}

/// The addresses of one PTR name and their TTL, or why they are unknown.
type Forward = Result<(Vec<IpAddr>, Duration), DnsError>;

/// The usable PTR names of an answer, in order, lower case without the
/// trailing dot, without duplicates, at most [`MAX_PTR_NAMES`]. A name that
/// is not a host name (letters, digits, `-`, `_`, dots between labels) is
/// skipped: it could not be matched safely nor written into a header.
fn ptr_names(records: &[RData]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for record in records {
        let RData::PTR(ptr) = record else { continue };
        let name = ptr.0.to_ascii();
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if is_host_name(&name) && !names.contains(&name) {
            names.push(name);
        }
        if names.len() == MAX_PTR_NAMES {
            break;
        }
    }
    names
}

/// True for `label(.label)*` of letters, digits, `-` and `_`, each label
/// 1..63 octets, 253 at most in all.
fn is_host_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn addresses(records: &[RData]) -> Vec<IpAddr> {
    records
        .iter()
        .filter_map(|r| match r {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => Option::None,
        })
        .collect()
}

/// The outcome from the forward answers of `names` (same order): the first
/// name whose addresses hold `ip` is verified; else a failed forward lookup
/// makes the whole a `TempFail` (it might have matched), and otherwise the
/// PTR is unverified. The TTL is the smallest of the answers the outcome
/// rests on.
fn decide(
    ip: IpAddr,
    names: &[String],
    forward: &[Forward],
    ptr_ttl: Duration,
) -> (ReverseName, Duration) {
    for (name, got) in names.iter().zip(forward) {
        if let Ok((addrs, ttl)) = got {
            if addrs.iter().any(|a| a.to_canonical() == ip) {
                return (ReverseName::Verified(name.clone()), ptr_ttl.min(*ttl));
            }
        }
    }
    if forward.iter().any(Result::is_err) {
        return (ReverseName::TempFail, Duration::ZERO);
    }
    let ttl = forward
        .iter()
        .filter_map(|f| f.as_ref().ok().map(|(_, ttl)| *ttl))
        .fold(ptr_ttl, Duration::min);
    (ReverseName::Unverified, ttl)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_resolver::proto::rr::rdata::PTR;
    use hickory_resolver::proto::rr::Name;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ptr(name: &str) -> RData {
        RData::PTR(PTR(Name::from_ascii(name).unwrap()))
    }

    const CLIENT: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 25));

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn query_names() {
        assert_eq!(reverse_query_name(CLIENT), "25.2.0.192.in-addr.arpa");
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 25).to_ipv6_mapped());
        assert_eq!(reverse_query_name(mapped), "25.2.0.192.in-addr.arpa");
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            reverse_query_name(IpAddr::V6(v6)),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }

    #[test]
    fn ptr_names_are_normalised_deduplicated_and_bounded() {
        let mut records = vec![
            ptr("Mail.Example.TEST."),
            ptr("mail.example.test."),
            RData::A(Ipv4Addr::LOCALHOST.into()),
            RData::PTR(PTR(
                Name::from_labels([&b"bad name"[..], &b"example"[..]]).unwrap()
            )),
        ];
        for i in 0..10 {
            records.push(ptr(&format!("h{i}.example.")));
        }
        let names = ptr_names(&records);
        assert_eq!(names.len(), MAX_PTR_NAMES);
        assert_eq!(names[0], "mail.example.test");
        assert_eq!(names[1], "h0.example");
        assert_eq!(names[4], "h3.example");
    }

    #[test]
    fn host_name_syntax() {
        assert!(is_host_name("mail-1.example.test"));
        assert!(is_host_name("_x.example"));
        assert!(!is_host_name(""));
        assert!(!is_host_name("a..b"));
        assert!(!is_host_name("a b.example"));
        assert!(!is_host_name(&format!("{}.example", "a".repeat(64))));
    }

    #[test]
    fn the_first_name_resolving_back_is_verified() {
        let names = vec!["a.example".to_string(), "b.example".to_string()];
        let other = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        let forward = vec![
            Ok((vec![other], secs(30))),
            Ok((vec![other, CLIENT], secs(900))),
        ];
        assert_eq!(
            decide(CLIENT, &names, &forward, secs(300)),
            (ReverseName::Verified("b.example".into()), secs(300))
        );
        // A failure elsewhere does not hide a match.
        let forward = vec![Err(DnsError::Timeout), Ok((vec![CLIENT], secs(120)))];
        assert_eq!(
            decide(CLIENT, &names, &forward, secs(300)),
            (ReverseName::Verified("b.example".into()), secs(120))
        );
    }

    #[test]
    fn no_match_is_unverified_unless_a_lookup_failed() {
        let names = vec!["a.example".to_string(), "b.example".to_string()];
        let other = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
        let forward = vec![Ok((vec![other], secs(30))), Ok((vec![], secs(600)))];
        assert_eq!(
            decide(CLIENT, &names, &forward, secs(300)),
            (ReverseName::Unverified, secs(30))
        );
        let forward = vec![Ok((vec![other], secs(30))), Err(DnsError::ServFail)];
        assert_eq!(
            decide(CLIENT, &names, &forward, secs(300)),
            (ReverseName::TempFail, Duration::ZERO)
        );
        // PTR records with no usable name: unverified.
        assert_eq!(
            decide(CLIENT, &[], &[], secs(300)),
            (ReverseName::Unverified, secs(300))
        );
    }

    #[test]
    fn labels() {
        assert_eq!(ReverseName::Verified("x".into()).label(), "verified");
        assert_eq!(ReverseName::Verified("x".into()).verified(), Some("x"));
        assert_eq!(ReverseName::Unverified.label(), "unverified");
        assert_eq!(ReverseName::None.label(), "none");
        assert_eq!(ReverseName::TempFail.label(), "temperror");
        assert_eq!(ReverseName::TempFail.verified(), Option::None);
    }
}
