//! Gratuitous ARP: after taking the VIPs, tell the switches and neighbours
//! which MAC now answers for them.
//!
//! The frame ([`frame`]) is what keepalived sends: an Ethernet broadcast
//! carrying an ARP *request* whose sender and target protocol addresses are
//! both the VIP, sender hardware address our MAC, target hardware address
//! all ones. Neighbours that have the VIP in their cache update it; nobody
//! answers.
//!
//! Sending needs an `AF_PACKET` socket and a `sockaddr_ll` naming the
//! interface. socket2 opens the socket but cannot build that address
//! without `unsafe`; nix's `getifaddrs()` returns it, as a `LinkAddr` with
//! the interface's index and MAC, and nix's `sendto` takes it. Both are safe
//! functions, so this crate keeps `unsafe_code = "forbid"`.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use nix::sys::socket::{LinkAddr, MsgFlags};
use socket2::{Domain, Socket, Type};

use super::DriverError;

/// EtherType of ARP.
const ETHERTYPE_ARP: u16 = 0x0806;
/// EtherType of IPv4 (the ARP protocol type).
const ETHERTYPE_IPV4: u16 = 0x0800;
/// ARP hardware type Ethernet.
const HTYPE_ETHERNET: u16 = 1;
/// ARP operation: request.
const OP_REQUEST: u16 = 1;
/// Length of a gratuitous ARP frame (without the FCS and padding, which
/// the NIC adds).
pub const FRAME_LEN: usize = 42;
const BROADCAST: [u8; 6] = [0xff; 6];

/// The gratuitous ARP frame announcing that `mac` has `ip`.
pub fn frame(mac: [u8; 6], ip: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    // Ethernet: destination, source, type.
    f[0..6].copy_from_slice(&BROADCAST);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    // ARP (RFC 826).
    f[14..16].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
    f[16..18].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&OP_REQUEST.to_be_bytes());
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    f[32..38].copy_from_slice(&BROADCAST);
    f[38..42].copy_from_slice(&ip.octets());
    f
}

/// An `AF_PACKET` socket and the interface's link-layer address.
#[derive(Debug)]
pub struct GarpSender {
    socket: Socket,
    link: LinkAddr,
    mac: [u8; 6],
}

impl GarpSender {
    /// Open a sender for `interface`.
    ///
    /// # Errors
    /// [`DriverError::Io`] without `CAP_NET_RAW`;
    /// [`DriverError::NoInterface`] when `getifaddrs()` lists no link-layer
    /// address with a MAC for it.
    pub fn open(interface: &str) -> Result<GarpSender, DriverError> {
        let link = nix::ifaddrs::getifaddrs()
            .map_err(|e| DriverError::Io {
                what: "list the interfaces (getifaddrs)".into(),
                source: e.into(),
            })?
            .filter(|a| a.interface_name == interface)
            .find_map(|a| a.address?.as_link_addr().copied())
            .ok_or_else(|| DriverError::NoInterface(interface.to_string()))?;
        let mac = link
            .addr()
            .ok_or_else(|| DriverError::NoInterface(interface.to_string()))?;
        // Protocol 0: the socket sends but receives nothing, so no frames
        // pile up unread in its buffer.
        let socket = Socket::new(Domain::PACKET, Type::RAW, None).map_err(DriverError::io(
            "open an AF_PACKET socket for gratuitous ARP (needs CAP_NET_RAW)",
        ))?;
        Ok(GarpSender { socket, link, mac })
    }

    /// The interface's MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// One gratuitous ARP for each of `ips`; the first error, after trying
    /// them all.
    ///
    /// # Errors
    /// The system error (the link is down, say).
    pub fn announce(&self, ips: &[Ipv4Addr]) -> std::io::Result<()> {
        let mut first = Ok(());
        for ip in ips {
            let f = frame(self.mac, *ip);
            let sent = nix::sys::socket::sendto(
                self.socket.as_raw_fd(),
                &f,
                &self.link,
                MsgFlags::empty(),
            );
            if let Err(e) = sent {
                if first.is_ok() {
                    first = Err(e.into());
                }
            }
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gratuitous ARP request for 192.0.2.25 from 02:00:00:00:00:01, as
    /// keepalived sends it (byte for byte from a capture's layout).
    #[rustfmt::skip]
    const GARP: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06,
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 192, 0, 2, 25,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 192, 0, 2, 25,
    ];

    #[test]
    fn frame_is_a_broadcast_arp_request_for_the_vip() {
        let f = frame([2, 0, 0, 0, 0, 1], Ipv4Addr::new(192, 0, 2, 25));
        assert_eq!(f, GARP);
    }
}
