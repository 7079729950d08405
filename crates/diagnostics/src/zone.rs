//! The DNS helper: the zone lines to publish for the MX hosts of a domain,
//! for active-passive (one MX on the VIP) or active-active (one MX per box,
//! equal priority), with the MTA-STS and TLS-RPT records and the TTL
//! advice the page shows next to them.

use crate::names::{host_name, FieldError};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// TTL of records that change during a failover or a migration (seconds).
pub const SHORT_TTL: u32 = 300;
/// TTL of records that stay put (seconds).
pub const LONG_TTL: u32 = 3600;
/// The priority of every generated MX record.
const MX_PRIORITY: u16 = 10;

/// How the pair receives mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeployMode {
    /// One box holds the virtual IP; one MX host name points to it.
    ActivePassive,
    /// Each box has its own address and its own MX record, at equal
    /// priority, so senders spread over both and retry the other.
    ActiveActive,
}

/// One public MX host: its name and the addresses senders reach it on (the
/// VIP for active-passive, the box's own address for active-active).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxHostSpec {
    /// Host name, e.g. `mx.example.com`.
    pub name: String,
    /// Its public IPv4 and IPv6 addresses.
    pub addresses: Vec<IpAddr>,
}

/// What the DNS helper page asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneRequest {
    /// The mail domain, e.g. `example.com`.
    pub domain: String,
    /// Active-passive (exactly one host, on the VIP) or active-active (one
    /// host per box, at least two).
    pub mode: DeployMode,
    /// The public MX hosts.
    pub hosts: Vec<MxHostSpec>,
    /// The MTA-STS policy id: 1..32 letters and digits, changed whenever the
    /// policy changes (the page passes e.g. the current Unix time).
    pub mta_sts_id: String,
    /// Where TLS reports go (`mailto:` or `https:` URIs, comma-separated);
    /// `None`: `mailto:tlsrpt@<domain>`.
    pub tls_rpt_rua: Option<String>,
    /// The MX records are being moved to these hosts now: short TTLs on
    /// them until the move is done.
    pub migrating: bool,
}

/// One resource record to publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneRecord {
    /// Owner name, fully qualified with the trailing dot.
    pub name: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// `MX`, `A`, `AAAA` or `TXT`.
    pub rtype: &'static str,
    /// The record data as written in a zone file.
    pub value: String,
    /// What the record is for, one short phrase.
    pub purpose: &'static str,
}

impl ZoneRecord {
    /// The record as a zone-file line: `name ttl IN type value`.
    pub fn line(&self) -> String {
        format!(
            "{} {} IN {} {}",
            self.name, self.ttl, self.rtype, self.value
        )
    }
}

/// Why a TTL was chosen, for the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TtlAdvice {
    /// The records it applies to.
    pub records: String,
    /// The TTL used, seconds.
    pub ttl: u32,
    /// Why.
    pub reason: String,
}

/// The result of [`zone_records`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneReport {
    /// The records, in zone order: MX, host addresses, MTA-STS, TLS-RPT.
    pub records: Vec<ZoneRecord>,
    /// All records as zone-file lines, one per line, for copying.
    pub zone_text: String,
    /// The TTL advice.
    pub ttl_advice: Vec<TtlAdvice>,
    /// Things to do or know besides publishing the lines.
    pub notes: Vec<String>,
}

/// Builds the records to publish for `request`.
///
/// # Errors
/// Every invalid input, each naming its field (`domain`, `hosts`,
/// `hosts[i].name`, `hosts[i].addresses`, `mta_sts_id`, `tls_rpt_rua`).
pub fn zone_records(request: &ZoneRequest) -> Result<ZoneReport, Vec<FieldError>> {
    let checked = validate(request)?;
    let mx_ttl = mx_ttl(request);
    let mut records = Vec::new();
    let origin = format!("{}.", checked.domain);
    for host in &checked.hosts {
        records.push(record(
            &origin,
            mx_ttl,
            "MX",
            format!("{MX_PRIORITY} {}.", host.name),
            "mail for the domain goes here",
        ));
    }
    for host in &checked.hosts {
        records.extend(addresses(
            &host.name,
            &host.addresses,
            mx_ttl,
            "address of the MX host",
        ));
    }
    let policy_host_addresses: Vec<IpAddr> = checked
        .hosts
        .iter()
        .flat_map(|h| h.addresses.clone())
        .collect();
    let policy_host = format!("mta-sts.{}", checked.domain);
    records.extend(addresses(
        &policy_host,
        &policy_host_addresses,
        LONG_TTL,
        "serves the MTA-STS policy over HTTPS",
    ));
    records.push(record(
        &format!("_mta-sts.{origin}"),
        SHORT_TTL,
        "TXT",
        format!("\"v=STSv1; id={}\"", request.mta_sts_id),
        "announces the MTA-STS policy and its version",
    ));
    records.push(record(
        &format!("_smtp._tls.{origin}"),
        LONG_TTL,
        "TXT",
        format!("\"v=TLSRPTv1; rua={}\"", checked.rua),
        "where senders report TLS failures (TLS-RPT)",
    ));
    let zone_text = records.iter().map(|r| r.line() + "\n").collect();
    Ok(ZoneReport {
        records,
        zone_text,
        ttl_advice: ttl_advice(request, mx_ttl),
        notes: notes(&checked, &policy_host),
    })
}

/// The request with names normalised.
struct Checked {
    domain: String,
    hosts: Vec<MxHostSpec>,
    rua: String,
}

fn validate(request: &ZoneRequest) -> Result<Checked, Vec<FieldError>> {
    let mut errors = Vec::new();
    let domain = host_name(&request.domain).unwrap_or_else(|reason| {
        errors.push(FieldError::new("domain", reason));
        String::new()
    });
    match (request.mode, request.hosts.len()) {
        (DeployMode::ActivePassive, 1) | (DeployMode::ActiveActive, 2..) => {}
        (DeployMode::ActivePassive, n) => errors.push(FieldError::new(
            "hosts",
            format!("active-passive publishes one MX host (on the VIP), not {n}"),
        )),
        (DeployMode::ActiveActive, n) => errors.push(FieldError::new(
            "hosts",
            format!("active-active publishes one MX host per box (two or more), not {n}"),
        )),
    }
    let mut hosts = Vec::new();
    for (i, host) in request.hosts.iter().enumerate() {
        match host_name(&host.name) {
            Ok(name) if hosts.iter().any(|h: &MxHostSpec| h.name == name) => {
                errors.push(FieldError::new(
                    format!("hosts[{i}].name"),
                    format!("{name} is listed twice"),
                ));
            }
            Ok(name) => hosts.push(MxHostSpec {
                name,
                addresses: host.addresses.clone(),
            }),
            Err(reason) => errors.push(FieldError::new(format!("hosts[{i}].name"), reason)),
        }
        if let Some(reason) = address_problem(&host.addresses) {
            errors.push(FieldError::new(format!("hosts[{i}].addresses"), reason));
        }
    }
    let id = &request.mta_sts_id;
    if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        errors.push(FieldError::new(
            "mta_sts_id",
            format!("{id:?}: 1..32 letters and digits (RFC 8461 §3.1)"),
        ));
    }
    let rua = request
        .tls_rpt_rua
        .clone()
        .unwrap_or_else(|| format!("mailto:tlsrpt@{domain}"));
    let bad_uri = |u: &str| {
        let u = u.trim();
        !(u.starts_with("mailto:") && u.contains('@') || u.starts_with("https://"))
            || u.contains(|c: char| c.is_whitespace() || c == '"' || c == ';')
    };
    if rua.split(',').any(bad_uri) {
        errors.push(FieldError::new(
            "tls_rpt_rua",
            format!("{rua:?}: mailto:address or https:// URIs, comma-separated"),
        ));
    }
    if errors.is_empty() {
        Ok(Checked { domain, hosts, rua })
    } else {
        Err(errors)
    }
}

/// Why a host's address list cannot be published, if it cannot.
fn address_problem(addresses: &[IpAddr]) -> Option<String> {
    if addresses.is_empty() {
        return Some("at least one address is needed".into());
    }
    let bad = addresses
        .iter()
        .find(|ip| ip.is_unspecified() || ip.is_loopback() || ip.is_multicast())?;
    Some(format!("{bad} cannot receive mail from the internet"))
}

fn record(
    name: &str,
    ttl: u32,
    rtype: &'static str,
    value: String,
    purpose: &'static str,
) -> ZoneRecord {
    ZoneRecord {
        name: name.to_owned(),
        ttl,
        rtype,
        value,
        purpose,
    }
}

/// The A and AAAA records of `host`, IPv4 first.
fn addresses(host: &str, ips: &[IpAddr], ttl: u32, purpose: &'static str) -> Vec<ZoneRecord> {
    let mut sorted = ips.to_vec();
    sorted.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    sorted.dedup();
    let name = format!("{host}.");
    sorted
        .into_iter()
        .map(|ip| {
            record(
                &name,
                ttl,
                if ip.is_ipv4() { "A" } else { "AAAA" },
                ip.to_string(),
                purpose,
            )
        })
        .collect()
}

/// The MX hosts' TTL: short when a record may have to change quickly.
fn mx_ttl(request: &ZoneRequest) -> u32 {
    if request.migrating || request.mode == DeployMode::ActiveActive {
        SHORT_TTL
    } else {
        LONG_TTL
    }
}

fn ttl_advice(request: &ZoneRequest, mx_ttl: u32) -> Vec<TtlAdvice> {
    let mx_reason = match (request.migrating, request.mode) {
        (true, _) => "You are moving mail to these hosts: with a short TTL a mistake is undone in minutes. Raise it to 3600 once mail has flowed for a day.",
        (false, DeployMode::ActivePassive) => "A failover moves the VIP between the boxes without touching DNS, so these records stay put: a long TTL saves look-ups.",
        (false, DeployMode::ActiveActive) => "Senders retry the other MX on their own when one box is down, but to take a box out for longer you remove its records: a short TTL makes that quick.",
    };
    vec![
        TtlAdvice { records: "MX and the MX hosts' A/AAAA".into(), ttl: mx_ttl, reason: mx_reason.into() },
        TtlAdvice {
            records: "_mta-sts TXT".into(),
            ttl: SHORT_TTL,
            reason: "Its id changes with every policy change; a short TTL makes senders fetch the new policy soon.".into(),
        },
        TtlAdvice {
            records: "mta-sts host A/AAAA and _smtp._tls TXT".into(),
            ttl: LONG_TTL,
            reason: "They rarely change and no failover depends on them.".into(),
        },
    ]
}

fn notes(checked: &Checked, policy_host: &str) -> Vec<String> {
    let mut notes = vec![
        format!("The web UI serves the policy at https://{policy_host}/.well-known/mta-sts.txt: its certificate must be valid for {policy_host} and issued by a public CA, or senders ignore the policy."),
        "Start MTA-STS in testing mode, read the TLS reports for a few weeks, then switch to enforce (and change the id).".to_owned(),
        "Each MX host needs a certificate from a public CA valid for its name, or senders enforcing MTA-STS will not deliver.".to_owned(),
    ];
    for host in &checked.hosts {
        for ip in host.addresses.iter().filter(|ip| is_private(ip)) {
            notes.push(format!(
                "{ip} ({}) is a private address: publish the public one senders reach (the NAT's).",
                host.name
            ));
        }
    }
    notes
}

/// RFC 1918, link-local and IPv6 unique-local addresses.
fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
mod tests;
