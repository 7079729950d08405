//! `[vrrp]` of the node file validated: ranges, addresses, weights, each
//! error naming its key (`vrrp.vrid`, `vrrp.virtual_ips[1]`, ...) and what
//! would be valid.

use crate::raw::VrrpSection;
use crate::Errors;
use ipnet::Ipv4Net;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// A tracked weight meaning "this failure puts the box in FAULT".
pub const WEIGHT_FAULT: u8 = 255;

/// Validated `[vrrp]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpSettings {
    /// Interface for adverts and virtual IPs.
    pub interface: String,
    /// Virtual Router ID, 1..=255.
    pub vrid: u8,
    /// Priority, 1..=255 (255 = address owner).
    pub priority: u8,
    /// Advertisement interval in centiseconds, 1..=4095.
    pub advert_interval_cs: u16,
    /// Virtual IPs with their prefix on the interface.
    pub virtual_ips: Vec<Ipv4Net>,
    /// Unicast peers; empty = multicast.
    pub unicast_peers: Vec<Ipv4Addr>,
    /// Take over from a lower-priority master.
    pub preempt: bool,
    /// How long a lower-priority master is tolerated first.
    pub preempt_delay: Duration,
    /// Gratuitous ARP rounds after becoming master.
    pub garp_count: u32,
    /// Time between them.
    pub garp_interval: Duration,
    /// Periodic gratuitous ARP while master; zero = off.
    pub garp_refresh: Duration,
    /// Weight of a pool with every server down (0 off, 255 fault).
    pub track_pool_weight: u8,
    /// Weight of a listener not bound (0 off, 255 fault).
    pub track_listener_weight: u8,
    /// Weight of the interface's link down (0 off, 255 fault).
    pub track_link_weight: u8,
    /// Weight of an unwritable store (0 off, 255 fault).
    pub track_store_weight: u8,
    /// Program run with the new state on each transition.
    pub notify: Option<PathBuf>,
}

fn ranged(errors: &mut Errors, key: &str, value: i64, min: i64, max: i64, what: &str) -> i64 {
    if value < min || value > max {
        errors.push(
            format!("vrrp.{key}"),
            format!("{value} is out of range: must be {min}..{max}{what}"),
        );
        return min;
    }
    value
}

/// Narrows a value already checked by [`ranged`].
fn narrow<T: TryFrom<i64> + Default>(value: i64) -> T {
    T::try_from(value).unwrap_or_default()
}

fn check_interface(errors: &mut Errors, name: &str) {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if !ok {
        errors.push(
            "vrrp.interface",
            format!(
                "{name:?} is not an interface name: use 1 to 15 printable characters, no '/', ':' or space (e.g. \"eth0\")"
            ),
        );
    }
}

fn ipv6_refused(key: &str, errors: &mut Errors, text: &str) {
    errors.push(
        key,
        format!("{text:?} is IPv6: VRRP in this version is IPv4 only (the codec reads IPv6, the driver does not yet)"),
    );
}

fn parse_vip(errors: &mut Errors, key: &str, text: &str) -> Option<Ipv4Net> {
    let text = text.trim();
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip = match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip,
        Ok(IpAddr::V6(_)) => {
            ipv6_refused(key, errors, text);
            return None;
        }
        Err(_) => {
            errors.push(
                key,
                format!(
                    "{text:?} is not an IPv4 address with an optional prefix like 192.0.2.25/24"
                ),
            );
            return None;
        }
    };
    let prefix = match prefix.map(str::parse::<u8>) {
        None => 32,
        Some(Ok(p)) if (1..=32).contains(&p) => p,
        Some(_) => {
            errors.push(key, format!("{text:?}: the prefix length must be 1..32"));
            return None;
        }
    };
    if ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || ip.is_broadcast() {
        errors.push(
            key,
            format!("{text:?} cannot be a virtual IP: it is unspecified, loopback, multicast or broadcast"),
        );
        return None;
    }
    Ipv4Net::new(ip, prefix).ok()
}

fn parse_peer(errors: &mut Errors, key: &str, text: &str) -> Option<Ipv4Addr> {
    match text.trim().parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) if !ip.is_unspecified() && !ip.is_multicast() && !ip.is_broadcast() => {
            Some(ip)
        }
        Ok(IpAddr::V4(_)) => {
            errors.push(
                key,
                format!("{text:?} must be the peer's own unicast address"),
            );
            None
        }
        Ok(IpAddr::V6(_)) => {
            ipv6_refused(key, errors, text);
            None
        }
        Err(_) => {
            errors.push(
                key,
                format!("{text:?} is not an IPv4 address like 192.0.2.12"),
            );
            None
        }
    }
}

/// Validates `[vrrp]`, recording every problem in `errors`.
pub(crate) fn validate(errors: &mut Errors, raw: &VrrpSection) -> VrrpSettings {
    check_interface(errors, &raw.interface);
    let vrid = ranged(errors, "vrid", raw.vrid, 1, 255, "");
    let priority = ranged(
        errors,
        "priority",
        raw.priority,
        1,
        255,
        " (255 = the address owner, always master)",
    );
    let interval = ranged(
        errors,
        "advert_interval_ms",
        raw.advert_interval_ms,
        10,
        40_950,
        " in steps of 10",
    );
    if interval % 10 != 0 {
        errors.push(
            "vrrp.advert_interval_ms",
            format!(
                "{interval} is not a multiple of 10: VRRPv3 counts in centiseconds (e.g. 100 or 1000)"
            ),
        );
    }
    if raw.virtual_ips.is_empty() {
        errors.push(
            "vrrp.virtual_ips",
            "must list at least one virtual IP, like [\"192.0.2.25/24\"]",
        );
    }
    if raw.virtual_ips.len() > 255 {
        errors.push("vrrp.virtual_ips", "at most 255 virtual IPs fit one advert");
    }
    let mut virtual_ips: Vec<Ipv4Net> = Vec::new();
    for (i, text) in raw.virtual_ips.iter().enumerate() {
        let key = format!("vrrp.virtual_ips[{i}]");
        if let Some(vip) = parse_vip(errors, &key, text) {
            if virtual_ips.iter().any(|v| v.addr() == vip.addr()) {
                errors.push(key, format!("{text:?} is listed twice"));
            } else {
                virtual_ips.push(vip);
            }
        }
    }
    let mut unicast_peers: Vec<Ipv4Addr> = Vec::new();
    for (i, text) in raw.unicast_peers.iter().enumerate() {
        let key = format!("vrrp.unicast_peers[{i}]");
        if let Some(peer) = parse_peer(errors, &key, text) {
            if unicast_peers.contains(&peer) {
                errors.push(key, format!("{text:?} is listed twice"));
            } else if virtual_ips.iter().any(|v| v.addr() == peer) {
                errors.push(
                    key,
                    format!("{text:?} is a virtual IP, not a peer's own address"),
                );
            } else {
                unicast_peers.push(peer);
            }
        }
    }
    let preempt_delay = ranged(
        errors,
        "preempt_delay_ms",
        raw.preempt_delay_ms,
        0,
        1_000_000,
        " (1000 s)",
    );
    let garp_count = ranged(errors, "garp_count", raw.garp_count, 0, 100, " (0 = none)");
    let garp_interval = ranged(
        errors,
        "garp_interval_ms",
        raw.garp_interval_ms,
        0,
        10_000,
        "",
    );
    let garp_refresh = ranged(
        errors,
        "garp_refresh_s",
        raw.garp_refresh_s,
        0,
        86_400,
        " (0 = off)",
    );
    let weight = |errors: &mut Errors, key: &str, value: i64| -> u8 {
        narrow(ranged(
            errors,
            key,
            value,
            0,
            255,
            " (0 = not tracked, 255 = fault)",
        ))
    };
    let notify = match raw.notify.as_deref().map(str::trim) {
        None => None,
        Some(path) if path.starts_with('/') => Some(PathBuf::from(path)),
        Some(path) => {
            errors.push(
                "vrrp.notify",
                format!("{path:?} must be an absolute path to a program, like \"/usr/local/bin/vrrp-notify\""),
            );
            None
        }
    };
    VrrpSettings {
        interface: raw.interface.clone(),
        vrid: narrow(vrid),
        priority: narrow(priority),
        advert_interval_cs: narrow(interval / 10),
        virtual_ips,
        unicast_peers,
        preempt: raw.preempt,
        preempt_delay: Duration::from_millis(narrow(preempt_delay)),
        garp_count: narrow(garp_count),
        garp_interval: Duration::from_millis(narrow(garp_interval)),
        garp_refresh: Duration::from_secs(narrow(garp_refresh)),
        track_pool_weight: weight(errors, "track_pool_weight", raw.track_pool_weight),
        track_listener_weight: weight(errors, "track_listener_weight", raw.track_listener_weight),
        track_link_weight: weight(errors, "track_link_weight", raw.track_link_weight),
        track_store_weight: weight(errors, "track_store_weight", raw.track_store_weight),
        notify,
    }
}
