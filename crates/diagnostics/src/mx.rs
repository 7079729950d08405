//! MX look-up of a domain, as the diagnostics page shows it: the mail hosts
//! by preference with their addresses, the implicit MX of a domain without
//! MX records (RFC 5321 §5.1), a null MX (RFC 7505), and every failure as
//! data.

use crate::lookup::{Dns, Found};
use crate::millis;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use mxgate_dns::Resolver;
use serde::Serialize;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;
use tokio::task::JoinSet;

/// The result of [`mx_lookup`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MxReport {
    /// The domain asked about, in lower-case ASCII (IDNs as punycode),
    /// without the trailing dot.
    pub domain: String,
    /// What the look-up found.
    pub outcome: MxOutcome,
    /// The hosts senders try, lowest preference first (ties by name). For an
    /// implicit MX, the domain itself with preference 0; empty for a null
    /// MX and for failures.
    pub hosts: Vec<MxHost>,
    /// Problems a sender would run into, one sentence each.
    pub warnings: Vec<String>,
    /// How long the look-ups took together, in milliseconds.
    pub millis: f64,
}

/// What the MX look-up of a domain found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MxOutcome {
    /// The domain publishes MX records.
    Records,
    /// No MX records: senders use the domain's own addresses as if it had
    /// one MX of preference 0 (RFC 5321 §5.1).
    Implicit,
    /// A null MX (`MX 0 .`): the domain accepts no mail (RFC 7505).
    NullMx,
    /// The domain does not exist (NXDOMAIN).
    NoSuchDomain,
    /// The text is not a domain name.
    InvalidName {
        /// Why.
        reason: String,
    },
    /// The MX query failed (timeout, SERVFAIL, ...): senders will retry.
    Failed {
        /// What went wrong.
        error: String,
    },
}

/// One mail host and its addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MxHost {
    /// MX preference (lower is tried first).
    pub preference: u16,
    /// Host name, without the trailing dot.
    pub name: String,
    /// TTL of the MX record in seconds (`None` for an implicit MX).
    pub ttl_s: Option<u32>,
    /// IPv4 addresses (A records).
    pub ipv4: Vec<Ipv4Addr>,
    /// IPv6 addresses (AAAA records).
    pub ipv6: Vec<Ipv6Addr>,
    /// Why the host has no usable address, when it has none.
    pub error: Option<String>,
}

/// Looks up the MX records of `domain` and the addresses of each host (all
/// hosts in parallel), through the servers `resolver` uses. Never fails:
/// every problem is in the report.
pub async fn mx_lookup(resolver: &Resolver, domain: &str) -> MxReport {
    let started = Instant::now();
    let mut report = MxReport {
        domain: domain.trim().trim_end_matches('.').to_ascii_lowercase(),
        outcome: MxOutcome::Records,
        hosts: Vec::new(),
        warnings: Vec::new(),
        millis: 0.0,
    };
    match Name::from_utf8(domain.trim()) {
        Ok(name) if !name.is_root() && domain.trim() != "." => {
            report.domain = name.to_ascii().trim_end_matches('.').to_ascii_lowercase();
        }
        Ok(_) => return finish(report, invalid("the root is not a mail domain"), started),
        Err(e) => return finish(report, invalid(&e.to_string()), started),
    }
    let dns = match Dns::new(resolver) {
        Ok(dns) => dns,
        Err(error) => return finish(report, MxOutcome::Failed { error }, started),
    };
    let outcome = match dns.query(&report.domain, RecordType::MX).await {
        Err(error) => MxOutcome::Failed { error },
        Ok(Found::NxDomain) => MxOutcome::NoSuchDomain,
        Ok(Found::NoData) => {
            report.hosts = vec![host(0, report.domain.clone(), None)];
            MxOutcome::Implicit
        }
        Ok(Found::Records(records)) => from_records(&mut report, records),
    };
    report.hosts = resolve_hosts(&dns, std::mem::take(&mut report.hosts)).await;
    warn_unreachable(&mut report, &outcome);
    finish(report, outcome, started)
}

fn invalid(reason: &str) -> MxOutcome {
    MxOutcome::InvalidName {
        reason: reason.to_owned(),
    }
}

fn finish(mut report: MxReport, outcome: MxOutcome, started: Instant) -> MxReport {
    report.outcome = outcome;
    report.millis = millis(started.elapsed());
    report
}

fn host(preference: u16, name: String, ttl_s: Option<u32>) -> MxHost {
    MxHost {
        preference,
        name,
        ttl_s,
        ipv4: Vec::new(),
        ipv6: Vec::new(),
        error: None,
    }
}

/// Fills `report.hosts` from MX records and says whether they are a null MX.
fn from_records(report: &mut MxReport, records: Vec<(RData, u32)>) -> MxOutcome {
    let mut null = false;
    for (data, ttl) in records {
        let RData::MX(mx) = data else { continue };
        if mx.exchange.is_root() {
            null = true;
            continue;
        }
        let name = mx
            .exchange
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if name.parse::<std::net::IpAddr>().is_ok() {
            report.warnings.push(format!(
                "MX {name} is an address, not a host name: many senders refuse it"
            ));
        }
        report.hosts.push(host(mx.preference, name, Some(ttl)));
    }
    report
        .hosts
        .sort_by(|a, b| (a.preference, &a.name).cmp(&(b.preference, &b.name)));
    match (null, report.hosts.is_empty()) {
        (true, true) => MxOutcome::NullMx,
        (true, false) => {
            report.warnings.push(
                "a null MX (MX 0 .) is published next to other MX records; RFC 7505 \
                 allows it only alone"
                    .to_owned(),
            );
            MxOutcome::Records
        }
        (false, _) => MxOutcome::Records,
    }
}

/// Looks up the A and AAAA records of every host in parallel.
async fn resolve_hosts(dns: &Dns, hosts: Vec<MxHost>) -> Vec<MxHost> {
    let mut set = JoinSet::new();
    for (index, mut host) in hosts.into_iter().enumerate() {
        let dns = dns.clone();
        set.spawn(async move {
            let (v4, v6) = tokio::join!(
                dns.query(&host.name, RecordType::A),
                dns.query(&host.name, RecordType::AAAA)
            );
            fill_addresses(&mut host, v4, v6);
            (index, host)
        });
    }
    let mut done: Vec<(usize, MxHost)> = set.join_all().await;
    done.sort_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, host)| host).collect()
}

fn fill_addresses(host: &mut MxHost, v4: Result<Found, String>, v6: Result<Found, String>) {
    let mut errors = Vec::new();
    for (kind, got) in [("A", &v4), ("AAAA", &v6)] {
        match got {
            Ok(Found::Records(records)) => {
                for (data, _) in records {
                    match data {
                        RData::A(a) => host.ipv4.push(a.0),
                        RData::AAAA(a) => host.ipv6.push(a.0),
                        _ => {}
                    }
                }
            }
            Ok(_) => {}
            Err(e) => errors.push(format!("{kind}: {e}")),
        }
    }
    if !host.ipv4.is_empty() || !host.ipv6.is_empty() {
        return;
    }
    host.error = Some(if !errors.is_empty() {
        errors.join("; ")
    } else if v4 == Ok(Found::NxDomain) {
        "no such host (NXDOMAIN)".to_owned()
    } else {
        "no A or AAAA record".to_owned()
    });
}

/// Adds a warning for each host a sender cannot reach.
fn warn_unreachable(report: &mut MxReport, outcome: &MxOutcome) {
    for host in &report.hosts {
        let Some(error) = &host.error else { continue };
        report.warnings.push(match outcome {
            MxOutcome::Implicit => format!(
                "no MX and no usable address for {} ({error}): mail to it cannot be delivered",
                host.name
            ),
            _ => format!(
                "{} has no usable address ({error}): senders skip it",
                host.name
            ),
        });
    }
}
