//! Validation of the raw policy: each check records a [`ConfigError`] with
//! the key and what is valid, so one pass reports every problem.
//!
//! [`ConfigError`]: crate::ConfigError

use crate::policy::{
    CheckSettings, ClientIdentity, Listener, ListenerMode, Pool, ProxyVersion, RelaySettings,
    Server, SmtpSettings,
};
use crate::raw::{
    GreylistSection, ListSection, ListenerSection, PoolSection, RateLimitSection, ServerSection,
};
use crate::Errors;
use ipnet::IpNet;
use mxgate_filter::greylist::GreylistSettings;
use mxgate_filter::lists::{ListAction, ListEntry};
use mxgate_filter::rate::{RateKey, RateRule};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// Checks a name: 1..64 of `A-Z a-z 0-9 . _ -`.
pub(crate) fn check_name(errors: &mut Errors, key: &str, name: &str) {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        errors.push(
            key,
            format!("{name:?} is not a valid name: use 1 to 64 of A-Z a-z 0-9 . _ -"),
        );
    }
}

/// Parses `IP:port` (port not 0).
pub(crate) fn parse_addr(errors: &mut Errors, key: &str, text: &str) -> Option<SocketAddr> {
    match text.parse::<SocketAddr>() {
        Ok(a) if a.port() != 0 => Some(a),
        _ => {
            errors.push(
                key,
                format!(
                    "{text:?} is not an IP address and port like 10.0.0.11:25 or [2001:db8::11]:25"
                ),
            );
            None
        }
    }
}

fn check_ms(errors: &mut Errors, key: &str, value: u64, min: u64, max: u64) -> Duration {
    if value < min || value > max {
        errors.push(
            key,
            format!("{value} is out of range: must be {min}..{max}"),
        );
    }
    Duration::from_millis(value)
}

fn check_unique<'a>(errors: &mut Errors, seen: &mut HashSet<&'a str>, key: &str, name: &'a str) {
    if !seen.insert(name) {
        errors.push(key, format!("{name:?} is used twice: names must be unique"));
    }
}

/// True for a DNS host name: labels of 1..63 letters, digits, hyphens, total ≤ 253.
pub fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

pub(crate) fn validate_domains(errors: &mut Errors, domains: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, d) in domains.iter().enumerate() {
        let norm = d.trim_end_matches('.').to_ascii_lowercase();
        if !is_dns_name(&norm) {
            errors.push(
                format!("relay.domains[{i}]"),
                format!("{d:?} is not a domain name like example.com"),
            );
        } else if out.contains(&norm) {
            errors.push(
                format!("relay.domains[{i}]"),
                format!("{d:?} is listed twice"),
            );
        } else {
            out.push(norm);
        }
    }
    out
}

pub(crate) fn validate_pools(errors: &mut Errors, raw: &[PoolSection]) -> Vec<Pool> {
    let mut names = HashSet::new();
    let mut pools = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let key = if p.name.is_empty() {
            format!("pool[{i}]")
        } else {
            format!("pool[{}]", p.name)
        };
        check_name(errors, &format!("{key}.name"), &p.name);
        check_unique(errors, &mut names, &format!("{key}.name"), &p.name);
        let c = &p.check;
        let check = CheckSettings {
            interval: check_ms(
                errors,
                &format!("{key}.check.interval_ms"),
                c.interval_ms,
                100,
                3_600_000,
            ),
            timeout: check_ms(
                errors,
                &format!("{key}.check.timeout_ms"),
                c.timeout_ms,
                100,
                600_000,
            ),
            fall: c.fall,
            rise: c.rise,
            starttls: c.starttls,
            ehlo: c.ehlo.clone(),
            send_proxy: c.send_proxy,
            proxy: c.send_proxy.unwrap_or_default(),
        };
        for (what, v) in [("fall", c.fall), ("rise", c.rise)] {
            if !(1..=100).contains(&v) {
                errors.push(
                    format!("{key}.check.{what}"),
                    format!("{v} is out of range: must be 1..100"),
                );
            }
        }
        if !is_dns_name(&c.ehlo) {
            errors.push(
                format!("{key}.check.ehlo"),
                format!("{:?} is not a host name", c.ehlo),
            );
        }
        let servers = validate_servers(errors, &key, &p.server);
        pools.push(Pool {
            name: p.name.clone(),
            balance: p.balance,
            check,
            slow_start: check_ms(
                errors,
                &format!("{key}.slow_start_ms"),
                p.slow_start_ms,
                0,
                3_600_000,
            ),
            connect_timeout: check_ms(
                errors,
                &format!("{key}.connect_timeout_ms"),
                p.connect_timeout_ms,
                10,
                600_000,
            ),
            queue_timeout: check_ms(
                errors,
                &format!("{key}.queue_timeout_ms"),
                p.queue_timeout_ms,
                0,
                600_000,
            ),
            max_queue: p.max_queue,
            relay: validate_relay(errors, &key, p),
            servers,
        });
    }
    pools
}

fn validate_relay(errors: &mut Errors, key: &str, p: &PoolSection) -> RelaySettings {
    if let Some(name) = &p.backend_tls_name {
        if !is_dns_name(name) {
            errors.push(
                format!("{key}.backend_tls_name"),
                format!("{name:?} is not a host name"),
            );
        }
    }
    for (what, v) in [
        (
            "recipient_cache_positive_ttl_s",
            p.recipient_cache_positive_ttl_s,
        ),
        (
            "recipient_cache_negative_ttl_s",
            p.recipient_cache_negative_ttl_s,
        ),
    ] {
        check_count(errors, &format!("{key}.{what}"), v, 0, 30 * 86_400);
    }
    RelaySettings {
        client_identity: p.client_identity,
        backend_tls: p.backend_tls,
        backend_tls_name: p.backend_tls_name.clone(),
        recipient_positive_ttl: Duration::from_secs(p.recipient_cache_positive_ttl_s),
        recipient_negative_ttl: Duration::from_secs(p.recipient_cache_negative_ttl_s),
    }
}

/// Checks a count against its range.
fn check_count(errors: &mut Errors, key: &str, value: u64, min: u64, max: u64) {
    if value < min || value > max {
        errors.push(
            key,
            format!("{value} is out of range: must be {min}..{max}"),
        );
    }
}

fn validate_smtp(errors: &mut Errors, key: &str, l: &ListenerSection) -> SmtpSettings {
    if let Some(h) = &l.hostname {
        if !is_dns_name(h) {
            errors.push(
                format!("{key}.hostname"),
                format!("{h:?} is not a host name like mx1.example.com"),
            );
        }
    }
    check_count(
        errors,
        &format!("{key}.max_message_size"),
        l.max_message_size,
        1024,
        2_147_483_648,
    );
    // RFC 5321 4.5.3.1.8: a server must accept at least 100 recipients.
    check_count(
        errors,
        &format!("{key}.max_recipients"),
        l.max_recipients.into(),
        100,
        100_000,
    );
    check_count(
        errors,
        &format!("{key}.max_errors"),
        l.max_errors.into(),
        1,
        1_000,
    );
    // RFC 5321 4.5.3.1.6: text lines of 998 octets plus CRLF must be accepted.
    check_count(
        errors,
        &format!("{key}.max_line_length"),
        l.max_line_length.into(),
        998,
        1_048_576,
    );
    // RFC 5321 4.5.3.2: 5 minutes for a command, 3 minutes per data block are
    // the longest a server should wait.
    SmtpSettings {
        hostname: l.hostname.clone(),
        max_message_size: l.max_message_size,
        max_recipients: l.max_recipients,
        max_errors: l.max_errors,
        max_line_length: l.max_line_length,
        starttls: l.starttls,
        command_timeout: check_ms(
            errors,
            &format!("{key}.command_timeout_ms"),
            l.command_timeout_ms,
            1_000,
            300_000,
        ),
        data_timeout: check_ms(
            errors,
            &format!("{key}.data_timeout_ms"),
            l.data_timeout_ms,
            1_000,
            180_000,
        ),
    }
}

fn validate_servers(errors: &mut Errors, pool_key: &str, raw: &[ServerSection]) -> Vec<Server> {
    let mut names = HashSet::new();
    let mut servers = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        let key = if s.name.is_empty() {
            format!("{pool_key}.server[{i}]")
        } else {
            format!("{pool_key}.server[{}]", s.name)
        };
        check_name(errors, &format!("{key}.name"), &s.name);
        check_unique(errors, &mut names, &format!("{key}.name"), &s.name);
        if s.weight > 256 {
            errors.push(
                format!("{key}.weight"),
                format!("{} is out of range: must be 0..256", s.weight),
            );
        }
        if let Some(address) = parse_addr(errors, &format!("{key}.address"), &s.address) {
            servers.push(Server {
                name: s.name.clone(),
                address,
                weight: s.weight,
                max_conn: s.max_conn,
                state: s.state,
            });
        }
    }
    servers
}

pub(crate) fn validate_listeners(
    errors: &mut Errors,
    raw: &[ListenerSection],
    pools: &HashSet<&str>,
) -> Vec<Listener> {
    let mut names = HashSet::new();
    let mut binds = HashSet::new();
    let mut listeners = Vec::new();
    for (i, l) in raw.iter().enumerate() {
        let key = if l.name.is_empty() {
            format!("listener[{i}]")
        } else {
            format!("listener[{}]", l.name)
        };
        check_name(errors, &format!("{key}.name"), &l.name);
        check_unique(errors, &mut names, &format!("{key}.name"), &l.name);
        let bind = parse_addr(errors, &format!("{key}.bind"), &l.bind);
        if let Some(b) = bind {
            if !binds.insert(b) {
                errors.push(
                    format!("{key}.bind"),
                    format!("{b} is used by another listener"),
                );
            }
        }
        if !pools.contains(l.pool.as_str()) {
            let known: Vec<_> = pools.iter().copied().collect();
            errors.push(
                format!("{key}.pool"),
                format!(
                    "no pool is called {:?} (pools: {})",
                    l.pool,
                    known.join(", ")
                ),
            );
        }
        let mut proxy_trusted = Vec::new();
        for (j, t) in l.proxy_trusted.iter().enumerate() {
            match parse_net(t) {
                Some(n) => proxy_trusted.push(n),
                None => errors.push(
                    format!("{key}.proxy_trusted[{j}]"),
                    format!(
                        "{t:?} is not an address or network like 192.0.2.0/24 or 2001:db8::/32"
                    ),
                ),
            }
        }
        if l.accept_proxy && l.proxy_trusted.is_empty() {
            errors.push(
                format!("{key}.proxy_trusted"),
                "accept_proxy = true needs at least one trusted upstream network",
            );
        }
        let proxy_timeout = check_ms(
            errors,
            &format!("{key}.proxy_timeout_ms"),
            l.proxy_timeout_ms,
            10,
            60_000,
        );
        let idle_timeout = check_ms(
            errors,
            &format!("{key}.idle_timeout_ms"),
            l.idle_timeout_ms,
            1_000,
            86_400_000,
        );
        let smtp = validate_smtp(errors, &key, l);
        if l.mode == ListenerMode::Smtp && l.send_proxy != ProxyVersion::None {
            errors.push(
                format!("{key}.send_proxy"),
                "must be \"none\" on an smtp listener: it tells backends the client with the pool's client_identity",
            );
        }
        if let Some(bind) = bind {
            listeners.push(Listener {
                name: l.name.clone(),
                bind,
                mode: l.mode,
                pool: l.pool.clone(),
                send_proxy: l.send_proxy,
                accept_proxy: l.accept_proxy,
                proxy_trusted,
                proxy_timeout,
                idle_timeout,
                max_connections: l.max_connections,
                max_connections_per_client: l.max_connections_per_client,
                smtp,
            });
        }
    }
    listeners
}

/// Gives each pool's check the PROXY header its listeners send, unless the
/// pool says otherwise. Listeners that send different headers to one pool are
/// an error: a backend accepts one kind only.
pub(crate) fn resolve_check_proxy(errors: &mut Errors, pools: &mut [Pool], listeners: &[Listener]) {
    for pool in pools {
        // The PROXY header each listener's sessions bring to this pool: an
        // l4 listener's `send_proxy`, or the pool's `client_identity` for
        // the relay of an smtp listener.
        let identity = pool.relay.client_identity;
        let header = |l: &Listener| match (l.mode, identity) {
            (ListenerMode::L4, _) => l.send_proxy,
            (ListenerMode::Smtp, ClientIdentity::ProxyV1) => ProxyVersion::V1,
            (ListenerMode::Smtp, ClientIdentity::ProxyV2) => ProxyVersion::V2,
            (ListenerMode::Smtp, _) => ProxyVersion::None,
        };
        let mut users = listeners.iter().filter(|l| l.pool == pool.name);
        let Some(first) = users.next() else {
            continue;
        };
        if let Some(other) = users.find(|l| header(l) != header(first)) {
            errors.push(
                format!("listener[{}]", other.name),
                format!(
                    "brings a PROXY header ({:?}) to pool {:?} that differs from listener {:?}'s \
                     ({:?}): a backend accepts one kind only (l4 listeners: send_proxy; smtp \
                     listeners: the pool's client_identity)",
                    header(other),
                    pool.name,
                    first.name,
                    header(first)
                ),
            );
        }
        if pool.check.send_proxy.is_none() {
            pool.check.proxy = header(first);
        }
    }
}

/// Parses a network (`192.0.2.0/24`) or a single address (taken as /32 or /128).
/// Host bits must be zero, so a typo cannot widen trust silently.
fn parse_net(text: &str) -> Option<IpNet> {
    if let Ok(net) = text.parse::<IpNet>() {
        return (net.trunc() == net).then_some(net);
    }
    text.parse::<IpAddr>().ok().map(IpNet::from)
}

/// Validates `[[list]]` entries: an action and exactly one matcher that
/// parses. Names are stored lowercase.
pub(crate) fn validate_lists(errors: &mut Errors, raw: &[ListSection]) -> Vec<ListSection> {
    let mut out = Vec::new();
    for (i, l) in raw.iter().enumerate() {
        let key = format!("list[{i}]");
        let action = match l.action.as_str() {
            "allow" => ListAction::Allow,
            "block" => ListAction::Block,
            other => {
                errors.push(
                    format!("{key}.action"),
                    format!("{other:?} is not allow or block"),
                );
                continue;
            }
        };
        let matchers = l.matchers();
        let [(kind, value)] = matchers.as_slice() else {
            errors.push(
                key,
                "set exactly one of client, reverse_name, helo, sender, sender_domain, recipient",
            );
            continue;
        };
        let value = if *kind == "client" {
            value.trim().to_string()
        } else {
            value.trim().to_ascii_lowercase()
        };
        if out
            .iter()
            .any(|o: &ListSection| o.matchers() == [(*kind, value.as_str())])
        {
            errors.push(
                format!("{key}.{kind}"),
                format!("{value:?} is listed twice"),
            );
            continue;
        }
        match ListEntry::parse(kind, &value, action) {
            Ok(_) => out.push(ListSection::with(&l.action, kind, &value)),
            Err(e) => errors.push(format!("{key}.{kind}"), e.to_string()),
        }
    }
    out
}

/// The filter entry of a validated `[[list]]`.
pub(crate) fn list_entry(l: &ListSection) -> Option<ListEntry> {
    let action = if l.action == "allow" {
        ListAction::Allow
    } else {
        ListAction::Block
    };
    let matchers = l.matchers();
    let [(kind, value)] = matchers.as_slice() else {
        return None;
    };
    ListEntry::parse(kind, value, action).ok()
}

/// Validates `[[rate_limit]]` rules.
pub(crate) fn validate_rate_limits(
    errors: &mut Errors,
    raw: &[RateLimitSection],
) -> Vec<RateLimitSection> {
    let mut out = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let key = format!("rate_limit[{i}]");
        check_count(errors, &format!("{key}.window_s"), r.window_s, 1, 86_400);
        match rate_rule(r).ok_or_else(|| RateKey::from_str(&r.key).err()) {
            Ok(rule) => match rule.validate(i) {
                Ok(()) => out.push(r.clone()),
                Err(e) => errors.push(key, e.to_string()),
            },
            Err(Some(e)) => errors.push(format!("{key}.key"), e.to_string()),
            Err(None) => {}
        }
    }
    out
}

/// The filter rule of a `[[rate_limit]]` (None when its key is unknown).
pub(crate) fn rate_rule(r: &RateLimitSection) -> Option<RateRule> {
    Some(RateRule {
        key: RateKey::from_str(&r.key).ok()?,
        window: Duration::from_secs(r.window_s),
        connections: r.connections,
        messages: r.messages,
        recipients: r.recipients,
        concurrency: r.concurrency,
    })
}

/// Longest greylisting delay: one day.
const GREYLIST_MAX_DELAY_S: u64 = 86_400;
/// Longest retry window: 30 days.
const GREYLIST_MAX_WINDOW_S: u64 = 30 * 86_400;
/// Longest lifetime of passed triplets: 400 days.
const GREYLIST_MAX_LIFETIME_S: u64 = 400 * 86_400;

/// Validates `[greylist]` (every key, enabled or not).
///
/// `delay_s` 1..86400 (1 s is allowed for tests; the default is 300),
/// `retry_window_s` longer than `delay_s` and at most 30 days,
/// `lifetime_s` at least `retry_window_s` and at most 400 days,
/// `ipv4_prefix` 8..32, `ipv6_prefix` 16..128, `auto_allow_after` 0..1000
/// (0 = never).
pub(crate) fn validate_greylist(errors: &mut Errors, g: &GreylistSection) -> GreylistSection {
    check_count(
        errors,
        "greylist.delay_s",
        g.delay_s,
        1,
        GREYLIST_MAX_DELAY_S,
    );
    let window_min = g.delay_s.saturating_add(1);
    check_count(
        errors,
        "greylist.retry_window_s",
        g.retry_window_s,
        window_min,
        GREYLIST_MAX_WINDOW_S,
    );
    check_count(
        errors,
        "greylist.lifetime_s",
        g.lifetime_s,
        g.retry_window_s.max(1),
        GREYLIST_MAX_LIFETIME_S,
    );
    check_count(errors, "greylist.ipv4_prefix", g.ipv4_prefix.into(), 8, 32);
    check_count(
        errors,
        "greylist.ipv6_prefix",
        g.ipv6_prefix.into(),
        16,
        128,
    );
    check_count(
        errors,
        "greylist.auto_allow_after",
        g.auto_allow_after.into(),
        0,
        1000,
    );
    g.clone()
}

/// The filter settings of a valid `[greylist]`.
pub(crate) fn greylist_settings(g: &GreylistSection) -> GreylistSettings {
    GreylistSettings {
        delay: Duration::from_secs(g.delay_s),
        retry_window: Duration::from_secs(g.retry_window_s),
        lifetime: Duration::from_secs(g.lifetime_s),
        ipv4_prefix: g.ipv4_prefix,
        ipv6_prefix: g.ipv6_prefix,
        auto_allow_after: g.auto_allow_after,
        spf_domain_keying: g.spf_domain_keying,
        skip_dmarc_pass: g.skip_dmarc_pass,
    }
}
