//! Just enough of an IPv4 header to receive VRRP on a raw socket.
//!
//! A Linux `socket(AF_INET, SOCK_RAW, 112)` hands over whole IPv4 packets,
//! header included, already reassembled and with the header checksum
//! verified by the kernel (so it is not checked again here). The VRRP
//! receiver needs four things from that header: the TTL (§7.1: must be 255),
//! the source (the sender's primary address, for tie-breaking), the
//! destination (for the checksum's pseudo-header) and where the payload is.
//!
//! IPv6 needs nothing like this: a raw IPv6 socket never delivers the IPv6
//! header; the hop limit and destination come as ancillary data
//! (`IPV6_RECVHOPLIMIT`, `IPV6_RECVPKTINFO`) and go straight to
//! [`super::receive_ipv6`].
//!
//! Checked, in order: at least 20 bytes, version 4, a header length (IHL) of
//! at least 5 words that fits the packet, a total length covering the header
//! and not past the buffer, not a fragment, protocol 112. Bytes after the
//! total length (link-layer padding) are dropped. Options are skipped.

use std::net::Ipv4Addr;

use super::{Error, PROTOCOL};

/// Length of an IPv4 header without options.
pub const MIN_HEADER_LEN: usize = 20;

mod field {
    //! Byte offsets in an IPv4 header.

    pub type Field = core::ops::Range<usize>;

    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: Field = 2..4;
    pub const FLAGS_FRAG: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const SRC: Field = 12..16;
    pub const DST: Field = 16..20;
}

/// The "more fragments" flag in the flags/fragment offset word.
const MORE_FRAGMENTS: u16 = 0x2000;
/// The fragment offset bits of that word.
const FRAGMENT_OFFSET: u16 = 0x1fff;

/// What the VRRP receiver needs from an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram<'a> {
    /// The sender's address: its primary address on the link.
    pub src: Ipv4Addr,
    /// The destination: `224.0.0.18`, or this host for unicast VRRP.
    pub dst: Ipv4Addr,
    /// Time to live as received; VRRP requires 255.
    pub ttl: u8,
    /// The VRRP message: the bytes after the header, up to the total length.
    pub payload: &'a [u8],
}

fn be16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

fn addr(bytes: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
}

/// Split a whole IPv4 packet carrying VRRP into the header fields VRRP needs
/// and the VRRP message. The TTL is returned, not checked: see
/// [`super::check_receipt`].
///
/// # Errors
/// [`Error::Ipv4Truncated`] (shorter than 20 bytes or than the total length),
/// [`Error::NotIpv4`], [`Error::BadIhl`], [`Error::BadTotalLength`],
/// [`Error::Ipv4Fragment`], [`Error::NotVrrp`].
pub fn parse(packet: &[u8]) -> Result<Datagram<'_>, Error> {
    let Some(header) = packet.get(..MIN_HEADER_LEN) else {
        return Err(Error::Ipv4Truncated);
    };
    let version = header[field::VER_IHL] >> 4;
    if version != 4 {
        return Err(Error::NotIpv4(version));
    }
    let ihl = header[field::VER_IHL] & 0x0f;
    let header_len = usize::from(ihl) * 4;
    if header_len < MIN_HEADER_LEN || header_len > packet.len() {
        return Err(Error::BadIhl(ihl));
    }
    let total_len = be16(&header[field::TOTAL_LEN]);
    if usize::from(total_len) < header_len {
        return Err(Error::BadTotalLength(total_len));
    }
    let Some(payload) = packet.get(header_len..usize::from(total_len)) else {
        return Err(Error::Ipv4Truncated);
    };
    let frag = be16(&header[field::FLAGS_FRAG]);
    if frag & (MORE_FRAGMENTS | FRAGMENT_OFFSET) != 0 {
        return Err(Error::Ipv4Fragment);
    }
    if header[field::PROTOCOL] != PROTOCOL {
        return Err(Error::NotVrrp(header[field::PROTOCOL]));
    }
    Ok(Datagram {
        src: addr(&header[field::SRC]),
        dst: addr(&header[field::DST]),
        ttl: header[field::TTL],
        payload,
    })
}
