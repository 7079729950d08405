//! The Linux driver around the pure [`Machine`](crate::Machine): one tokio
//! task per virtual router that owns the machine and does its I/O. IPv4 only
//! (the codec also does IPv6; the driver does not yet).
//!
//! # What it does
//!
//! - **Adverts** go over a raw `AF_INET`/`IPPROTO_VRRP` (112) socket
//!   ([`socket`]) bound to the interface with `SO_BINDTODEVICE`, TTL 255.
//!   With no `unicast_peers` it joins 224.0.0.18 on the interface and sends
//!   there; with peers it sends to each peer and accepts adverts from them
//!   only (anything else is dropped as `not_a_peer`). The kernel builds the
//!   IPv4 header (no `IP_HDRINCL`); received packets carry it and go through
//!   [`mxgate_wire::vrrp::receive_ipv4`]; every drop is counted by the codec
//!   error's `label()` in the [`Monitor`](crate::Monitor).
//! - **Source address**: the interface's primary IPv4 address (the first
//!   non-secondary IPv4 address that is not a VIP), read once at start. The
//!   advert's checksum covers it, so the kernel must pick the same source:
//!   it does for multicast (`IP_MULTICAST_IF` is set to it) and for unicast
//!   peers on the interface's own subnet.
//! - **VIPs** are added and removed through rtnetlink ([`netlink`]), each
//!   with its configured prefix (a bare address is a /32). On start, every
//!   configured VIP found on the interface (left by a crashed run) is
//!   removed before the machine starts, as Backup (or Master at once with
//!   priority 255).
//! - **Gratuitous ARP** ([`garp`]) after [`Action::AddVips`](crate::Action)
//!   and [`Action::ReannounceVips`](crate::Action): `garp_count` rounds (one
//!   request per VIP, sender = target = the VIP, broadcast) `garp_interval`
//!   apart, plus one round every `garp_refresh` while Master when that is
//!   not zero. Sent on an `AF_PACKET` socket: socket2 has no safe way to
//!   build a `sockaddr_ll`, so the address comes from `nix`'s safe
//!   `getifaddrs()` (the interface's `AF_PACKET` entry, a `LinkAddr` with
//!   its index and MAC) and the frame goes out with `nix::sys::socket::sendto`
//!   on a socket2 `AF_PACKET`/`SOCK_RAW` socket. No `unsafe` in this crate.
//! - **Tracking**: the owner of the driver sends [`Tracking`] (the failed
//!   weight of the objects it watches, and whether one of them means Fault)
//!   through a `watch` channel; the driver itself watches the interface's
//!   link (netlink, every [`LINK_POLL`]) with [`DriverConfig::link_weight`]:
//!   0 ignores it, 1..=254 lowers the priority, 255 (the default) means
//!   Fault. The machine gets `PriorityChanged { weight: -failed }` and
//!   `FaultRaised` / `FaultCleared` on every change.
//! - **Notify**: on each transition, `notify` (if set) runs with the new
//!   state as its argument ([`notify`]); it is not waited for beyond
//!   [`notify::TIMEOUT`].
//! - **Hand over** ([`HandOver`], from [`Driver::hand_over`]): a Master
//!   steps down as if faulted (priority-0 advert, VIPs removed) for a hold
//!   time, then returns as Backup; with `preempt` it may take the VIPs back
//!   afterwards (see [`handover`]).
//! - **Shutdown** (the cancellation token): the machine's Shutdown event (a
//!   Master sends priority 0, so the backup takes over after Skew_Time),
//!   then every VIP is removed, whatever the state.

pub mod driver;
pub mod garp;
pub mod handover;
pub mod netlink;
pub mod notify;
pub mod socket;

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::Ipv4Net;

pub use driver::Driver;
pub use handover::{HandOver, HandOverError};

/// How often the driver reads the interface's link state.
pub const LINK_POLL: Duration = Duration::from_millis(200);

/// A tracked weight that means "Fault", not "lower the priority".
pub const WEIGHT_FAULT: u8 = 255;

/// Everything the driver needs, validated by the caller (the node file's
/// `[vrrp]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverConfig {
    /// The interface adverts go out on and the VIPs are added to.
    pub interface: String,
    /// Virtual Router ID, 1..=255.
    pub vrid: u8,
    /// Configured priority, 1..=255 (255: the address owner).
    pub priority: u8,
    /// Advertisement interval in centiseconds, 1..=4095.
    pub advert_interval_cs: u16,
    /// Whether a higher-priority backup takes over from a lower master.
    pub preempt: bool,
    /// How long a lower master is tolerated before preempting it.
    pub preempt_delay: Duration,
    /// The virtual IPs with their prefix length on the interface.
    pub virtual_ips: Vec<Ipv4Net>,
    /// Empty: multicast to 224.0.0.18. Else: send to each, accept only them.
    pub unicast_peers: Vec<Ipv4Addr>,
    /// Gratuitous ARP rounds after becoming Master (or reannouncing).
    pub garp_count: u32,
    /// Time between those rounds.
    pub garp_interval: Duration,
    /// While Master, one more round this often; zero = never.
    pub garp_refresh: Duration,
    /// The weight of the interface's link being down (0 = not tracked,
    /// 255 = Fault).
    pub link_weight: u8,
    /// A program run with the new state on each transition.
    pub notify: Option<PathBuf>,
}

impl DriverConfig {
    /// A config with the defaults of the node file's `[vrrp]` for the
    /// required keys given.
    pub fn new(interface: &str, vrid: u8, priority: u8, virtual_ips: Vec<Ipv4Net>) -> Self {
        DriverConfig {
            interface: interface.to_string(),
            vrid,
            priority,
            advert_interval_cs: 100,
            preempt: true,
            preempt_delay: Duration::ZERO,
            virtual_ips,
            unicast_peers: Vec::new(),
            garp_count: 5,
            garp_interval: Duration::from_millis(200),
            garp_refresh: Duration::ZERO,
            link_weight: WEIGHT_FAULT,
            notify: None,
        }
    }

    /// The machine's settings for our `primary` address.
    pub fn machine_config(&self, primary: Ipv4Addr) -> crate::Config {
        crate::Config {
            vrid: self.vrid,
            priority: self.priority,
            advert_interval_cs: self.advert_interval_cs,
            preempt: self.preempt,
            preempt_delay: self.preempt_delay,
            primary_address: primary.into(),
        }
    }
}

/// What the driver's owner reports about the objects it tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tracking {
    /// The sum of the weights of the failed objects (1..=254 each).
    pub failed_weight: u32,
    /// A failed object has weight 255: hold the router in Fault.
    pub fault: bool,
}

impl Tracking {
    /// Add one object's state: nothing when `failed` is false or `weight`
    /// is 0, Fault for [`WEIGHT_FAULT`], else its weight.
    pub fn add(&mut self, failed: bool, weight: u8) {
        if !failed || weight == 0 {
            return;
        }
        if weight == WEIGHT_FAULT {
            self.fault = true;
        } else {
            self.failed_weight += u32::from(weight);
        }
    }
}

/// Why the driver could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The configuration the machine refuses.
    #[error("vrrp: {0}")]
    Config(#[from] crate::ConfigError),
    /// The interface does not exist.
    #[error("vrrp: no interface {0:?}")]
    NoInterface(String),
    /// The interface has no IPv4 address other than the VIPs.
    #[error("vrrp: interface {0:?} has no IPv4 address of its own (besides the virtual IPs) to send adverts from")]
    NoPrimaryAddress(String),
    /// A socket could not be opened or set up (needs CAP_NET_RAW).
    #[error("vrrp: {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The system error.
        source: std::io::Error,
    },
    /// A netlink request failed.
    #[error("vrrp: netlink: {what}: {detail}")]
    Netlink {
        /// What was being done.
        what: String,
        /// The error.
        detail: String,
    },
}

impl DriverError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DriverError {
        let what = what.into();
        move |source| DriverError::Io { what, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_sums_weights_and_255_is_fault() {
        let mut t = Tracking::default();
        t.add(true, 50);
        t.add(false, 50);
        t.add(true, 0);
        t.add(true, 20);
        assert_eq!(
            t,
            Tracking {
                failed_weight: 70,
                fault: false
            }
        );
        t.add(true, WEIGHT_FAULT);
        assert!(t.fault);
        assert_eq!(t.failed_weight, 70);
    }

    #[test]
    fn machine_config_carries_the_settings() {
        let mut c = DriverConfig::new("eth0", 51, 150, vec!["192.0.2.25/24".parse().unwrap()]);
        c.preempt = false;
        let m = c.machine_config(Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(
            (m.vrid, m.priority, m.advert_interval_cs, m.preempt),
            (51, 150, 100, false)
        );
        assert_eq!(
            m.primary_address,
            "192.0.2.2".parse::<std::net::IpAddr>().unwrap()
        );
        assert!(m.validate().is_ok());
    }
}
