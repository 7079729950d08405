//! Network interfaces: names, addresses and byte counters from sysinfo, and
//! the administrative and operational state from `/sys/class/net`.

use serde::Serialize;
use std::net::IpAddr;
use std::path::Path;
use sysinfo::Networks;

/// `IFF_UP` in `/sys/class/net/<name>/flags`: the interface is enabled.
const IFF_UP: u32 = 0x1;

/// One network interface of the box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    /// Kernel name, e.g. `eth0`.
    pub name: String,
    /// Administratively up (`IFF_UP`, what `ip link set up` sets).
    pub up: bool,
    /// The kernel's operational state (`up`, `down`, `unknown` for
    /// loopback and some virtual links, ...); `None` when unreadable.
    pub oper_state: Option<String>,
    /// Hardware address, `aa:bb:cc:dd:ee:ff`; `None` for interfaces without
    /// one (loopback, tunnels).
    pub mac: Option<String>,
    /// Assigned addresses, IPv4 first, each with its prefix length.
    pub addresses: Vec<InterfaceAddress>,
    /// Bytes received since the interface appeared.
    pub rx_bytes: u64,
    /// Bytes sent since the interface appeared.
    pub tx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
}

/// An address on an interface, e.g. `192.0.2.25/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct InterfaceAddress {
    /// The address.
    pub ip: IpAddr,
    /// The prefix length of its network.
    pub prefix: u8,
}

impl std::fmt::Display for InterfaceAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.ip, self.prefix)
    }
}

/// Every interface of the box, sorted by name.
pub fn interfaces() -> Vec<Interface> {
    let networks = Networks::new_with_refreshed_list();
    let mut list: Vec<Interface> = networks
        .iter()
        .map(|(name, data)| {
            let mut addresses: Vec<InterfaceAddress> = data
                .ip_networks()
                .iter()
                .map(|n| InterfaceAddress {
                    ip: n.addr,
                    prefix: n.prefix,
                })
                .collect();
            addresses.sort_by_key(|a| (a.ip.is_ipv6(), a.ip));
            let mac = data.mac_address();
            let (up, oper_state) = link_state(name);
            Interface {
                name: name.clone(),
                up,
                oper_state,
                mac: (!mac.is_unspecified()).then(|| mac.to_string()),
                addresses,
                rx_bytes: data.total_received(),
                tx_bytes: data.total_transmitted(),
                rx_packets: data.total_packets_received(),
                tx_packets: data.total_packets_transmitted(),
                rx_errors: data.total_errors_on_received(),
                tx_errors: data.total_errors_on_transmitted(),
            }
        })
        .collect();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    list
}

/// (`IFF_UP` set, operational state) of `name` from `/sys/class/net`.
fn link_state(name: &str) -> (bool, Option<String>) {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return (false, None);
    }
    let dir = Path::new("/sys/class/net").join(name);
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).ok();
    let up = read("flags")
        .and_then(|text| parse_flags(&text))
        .is_some_and(|flags| flags & IFF_UP != 0);
    let oper_state = read("operstate").map(|s| s.trim().to_owned());
    (up, oper_state)
}

/// Parses the `0x1003` text of a sysfs `flags` file.
fn parse_flags(text: &str) -> Option<u32> {
    let hex = text.trim().strip_prefix("0x")?;
    u32::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysfs_flags_are_hex() {
        assert_eq!(parse_flags("0x1003\n"), Some(0x1003));
        assert_eq!(parse_flags("4099"), None);
    }

    #[test]
    fn odd_names_are_not_looked_up() {
        assert_eq!(link_state("../etc"), (false, None));
    }
}
