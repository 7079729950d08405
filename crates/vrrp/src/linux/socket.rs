//! The raw VRRP socket: `AF_INET`, `SOCK_RAW`, protocol 112, bound to the
//! interface (`SO_BINDTODEVICE`), TTL 255 for unicast and multicast, joined
//! to 224.0.0.18 on the interface unless unicast peers are configured.
//!
//! The kernel writes the IPv4 header of what we send and hands us the
//! whole IPv4 packet of what we receive. It is not bound to an address: a
//! raw socket bound to one only sees packets sent to that address, which
//! would hide the multicast group.
//!
//! For tokio the socket is wrapped as a `tokio::net::UdpSocket`: both are
//! datagram sockets driven by `recvfrom`/`sendto` (the port of the
//! destination is ignored by a raw socket), and it is the one safe,
//! non-deprecated way to register a socket2 socket with tokio's reactor
//! (`AsyncFd::new` is deprecated, `AsyncFd::register` is `unsafe`).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use mxgate_wire::vrrp::{MULTICAST_V4, PROTOCOL, TTL};

use super::DriverError;

/// Big enough for any advert (an IPv4 header with options, 8 bytes and 255
/// addresses) and for a whole Ethernet frame's worth of anything else.
pub const RECV_BUFFER: usize = 2048;

/// The socket, ready for tokio.
#[derive(Debug)]
pub struct VrrpSocket {
    socket: UdpSocket,
    /// Where adverts go: the group, or each unicast peer.
    destinations: Vec<Ipv4Addr>,
    /// Unicast mode: accept adverts only from these.
    peers: Vec<Ipv4Addr>,
}

impl VrrpSocket {
    /// Open the socket on `interface` (index `index`) with `primary` as the
    /// multicast source; with `peers`, unicast to and from them only.
    ///
    /// # Errors
    /// [`DriverError::Io`]: no `CAP_NET_RAW`, or the interface refuses.
    pub fn open(
        interface: &str,
        index: u32,
        primary: Ipv4Addr,
        peers: &[Ipv4Addr],
    ) -> Result<VrrpSocket, DriverError> {
        let socket = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(PROTOCOL))),
        )
        .map_err(DriverError::io(
            "open a raw VRRP socket (needs root or CAP_NET_RAW)",
        ))?;
        socket
            .bind_device(Some(interface.as_bytes()))
            .map_err(DriverError::io(format!(
                "bind the VRRP socket to {interface}"
            )))?;
        socket
            .set_ttl_v4(u32::from(TTL))
            .map_err(DriverError::io("set the TTL"))?;
        socket
            .set_multicast_ttl_v4(u32::from(TTL))
            .map_err(DriverError::io("set the multicast TTL"))?;
        socket
            .set_multicast_loop_v4(false)
            .map_err(DriverError::io("turn multicast loop off"))?;
        socket
            .set_multicast_if_v4(&primary)
            .map_err(DriverError::io(format!("send multicast from {primary}")))?;
        if peers.is_empty() {
            socket
                .join_multicast_v4_n(&MULTICAST_V4, &InterfaceIndexOrAddress::Index(index))
                .map_err(DriverError::io(format!(
                    "join {MULTICAST_V4} on {interface}"
                )))?;
        }
        socket
            .set_nonblocking(true)
            .map_err(DriverError::io("make the VRRP socket non-blocking"))?;
        let socket = UdpSocket::from_std(std::net::UdpSocket::from(socket))
            .map_err(DriverError::io("register the VRRP socket"))?;
        let destinations = if peers.is_empty() {
            vec![MULTICAST_V4]
        } else {
            peers.to_vec()
        };
        Ok(VrrpSocket {
            socket,
            destinations,
            peers: peers.to_vec(),
        })
    }

    /// Where adverts go.
    pub fn destinations(&self) -> &[Ipv4Addr] {
        &self.destinations
    }

    /// Whether an advert from `src` is acceptable: always with multicast,
    /// only from a configured peer with unicast.
    pub fn accepts_from(&self, src: Ipv4Addr) -> bool {
        self.peers.is_empty() || self.peers.contains(&src)
    }

    /// Send `message` (a VRRP message, no IP header) to `dst`.
    ///
    /// # Errors
    /// The system error (the link is down, say).
    pub async fn send(&self, message: &[u8], dst: Ipv4Addr) -> std::io::Result<()> {
        let addr = SocketAddr::V4(SocketAddrV4::new(dst, 0));
        self.socket.send_to(message, addr).await.map(|_| ())
    }

    /// Receive one whole IPv4 packet into `buf`; its length.
    ///
    /// # Errors
    /// The system error.
    pub async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.socket.recv(buf).await
    }
}
