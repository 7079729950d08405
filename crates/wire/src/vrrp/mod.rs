//! VRRP version 3 (RFC 5798) advertisements: the message codec, the receipt
//! checks of §7.1 that need no configuration beyond "is this VRID mine", and
//! a minimal IPv4 header reader for raw sockets.
//!
//! Layers, from the lowest:
//! - [`Packet`] / [`Repr`] ([`packet`]): the 8-byte header and address list,
//!   with the checksum over the IP pseudo-header ([`checksum`]).
//! - [`ipv4::parse`]: a whole IPv4 packet (as a raw IPv4 socket delivers it)
//!   to TTL, source, destination and the VRRP bytes.
//! - [`receive_ipv4`] / [`receive_ipv6`]: everything §7.1 asks of a receiver
//!   that a codec can decide, in the RFC's order, each failure its own
//!   [`Error`] variant with a stable [`Error::label`] for drop counters.
//!
//! RFC 5798 §7.1, and where each rule lives:
//!
//! | Rule | Here |
//! |---|---|
//! | IPv4 TTL / IPv6 Hop Limit is 255 | [`check_receipt`] → [`Error::BadTtl`] |
//! | version is 3 | [`Repr::parse`] → [`Error::BadVersion`] |
//! | the whole message is present | [`Packet::new_checked`] → [`Error::Truncated`]; [`Repr::parse`] → [`Error::CountMismatch`] / [`Error::FamilyMismatch`] |
//! | the checksum is right | [`Repr::parse`] → [`Error::BadChecksum`] |
//! | the VRID is configured on the interface | [`check_receipt`] → [`Error::UnknownVrid`] |
//! | ... and the local router is not the address owner | the state machine (`mxgate-vrrp`): an owner never yields |
//! | (MAY) the address list matches the configuration | [`Repr::addresses`] is there to compare; a mismatch is a log line, not a drop |
//!
//! Type 1 (ADVERTISEMENT) is the only type; §5.2.2 says to discard others
//! ([`Error::BadType`]).
//!
//! Not here: authentication (VRRPv3 has none; a VRRPv2 packet is simply
//! [`Error::BadVersion`]`(2)`), and Accept_Mode, which is about the data
//! plane.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub mod checksum;
pub mod ipv4;
pub mod packet;

pub use packet::{Packet, Repr, MAX_ADVER_INT_MAX};

/// IP protocol number (IPv4) / next header (IPv6) of VRRP.
pub const PROTOCOL: u8 = 112;
/// The only version this codec reads or writes.
pub const VERSION: u8 = 3;
/// The only message type: ADVERTISEMENT.
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Length of the fixed part of the message, before the addresses.
pub const HEADER_LEN: usize = 8;
/// The TTL / hop limit every advert is sent with and must arrive with.
pub const TTL: u8 = 255;
/// The IPv4 multicast group adverts are sent to (§5.1.1.2).
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group adverts are sent to (§5.1.2.2).
pub const MULTICAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The priority of the router that owns the virtual addresses.
pub const PRIORITY_OWNER: u8 = 255;
/// The priority a master sends when it stops being master.
pub const PRIORITY_RELEASE: u8 = 0;

/// Why a VRRP packet was dropped or could not be emitted.
///
/// Grouped by whose fault it is: a peer (or something else on the link)
/// sent a broken or misdirected packet, a peer speaks something this codec
/// does not, or the local caller asked to emit something unrepresentable.
/// Each variant has a stable [`Error::label`] for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Peer: shorter than the 8-byte VRRP header.
    #[error("VRRP message shorter than its 8-byte header")]
    Truncated,
    /// Peer: Count IPvX Addr says one thing, the length another.
    #[error("VRRP count of {count} addresses does not match {len} address bytes")]
    CountMismatch {
        /// The count field.
        count: u8,
        /// Bytes after the fixed header.
        len: usize,
    },
    /// Peer: the address list is sized for the other IP family than the
    /// packet's, or (local misuse) the given source and destination differ
    /// in family.
    #[error("VRRP address family does not match the IP version")]
    FamilyMismatch,
    /// Peer: the checksum does not match the message and pseudo-header.
    #[error("VRRP checksum {received:#06x}, computed {computed:#06x}")]
    BadChecksum {
        /// The checksum field as received.
        received: u16,
        /// What it should have been.
        computed: u16,
    },
    /// Peer: TTL or hop limit other than 255, so the packet was routed (or
    /// forged) rather than sent on this link.
    #[error("VRRP TTL/hop limit {0}, must be 255")]
    BadTtl(u8),
    /// Peer (or local configuration): an advert for a VRID not configured here.
    #[error("VRRP advert for VRID {0}, which is not configured here")]
    UnknownVrid(u8),
    /// Peer incompatible: version other than 3 (2 is VRRPv2).
    #[error("VRRP version {0}, only 3 is supported")]
    BadVersion(u8),
    /// Peer incompatible: a message type other than 1 (ADVERTISEMENT).
    #[error("VRRP message type {0}, only 1 (ADVERTISEMENT) exists")]
    BadType(u8),
    /// Raw IPv4: the buffer is shorter than 20 bytes or than the total length.
    #[error("IPv4 packet truncated")]
    Ipv4Truncated,
    /// Raw IPv4: the version nibble is not 4.
    #[error("IP version {0} on an IPv4 socket")]
    NotIpv4(u8),
    /// Raw IPv4: the header length is under 5 words or past the buffer.
    #[error("IPv4 header length (IHL) {0} is invalid")]
    BadIhl(u8),
    /// Raw IPv4: the total length is shorter than the header.
    #[error("IPv4 total length {0} is shorter than the header")]
    BadTotalLength(u16),
    /// Raw IPv4: a fragment (adverts are never fragmented; the kernel
    /// reassembles before a raw socket sees anything, so this is defensive).
    #[error("IPv4 fragment")]
    Ipv4Fragment,
    /// Raw IPv4: the protocol is not 112.
    #[error("IP protocol {0} is not VRRP (112)")]
    NotVrrp(u8),
    /// Local: the caller asked to emit an advert the format cannot carry;
    /// the text says what.
    #[error("VRRP advert cannot be emitted: {0}")]
    CannotEmit(&'static str),
}

impl Error {
    /// A short, stable, snake_case name for this kind of error, for a drop
    /// counter label. Never changes once released.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Truncated => "truncated",
            Error::CountMismatch { .. } => "count_mismatch",
            Error::FamilyMismatch => "family_mismatch",
            Error::BadChecksum { .. } => "bad_checksum",
            Error::BadTtl(_) => "bad_ttl",
            Error::UnknownVrid(_) => "unknown_vrid",
            Error::BadVersion(_) => "bad_version",
            Error::BadType(_) => "bad_type",
            Error::Ipv4Truncated => "ipv4_truncated",
            Error::NotIpv4(_) => "not_ipv4",
            Error::BadIhl(_) => "bad_ihl",
            Error::BadTotalLength(_) => "bad_total_length",
            Error::Ipv4Fragment => "ipv4_fragment",
            Error::NotVrrp(_) => "not_vrrp",
            Error::CannotEmit(_) => "cannot_emit",
        }
    }
}

/// The §7.1 checks that need the IP header or the configuration: the TTL
/// (IPv4) or hop limit (IPv6) must be 255, and `vrid` must be configured on
/// the receiving interface (`vrid_known`, decided by the caller).
///
/// # Errors
/// [`Error::BadTtl`], then [`Error::UnknownVrid`].
pub fn check_receipt(ttl_or_hop_limit: u8, vrid: u8, vrid_known: bool) -> Result<(), Error> {
    if ttl_or_hop_limit != TTL {
        return Err(Error::BadTtl(ttl_or_hop_limit));
    }
    if !vrid_known {
        return Err(Error::UnknownVrid(vrid));
    }
    Ok(())
}

/// An advert that passed every check [`receive_ipv4`] / [`receive_ipv6`] make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The sender's primary address (the IP source), for tie-breaking.
    pub src: IpAddr,
    /// The IP destination (the multicast group, or this host for unicast).
    pub dst: IpAddr,
    /// The decoded advert.
    pub repr: Repr,
}

/// Receive a whole IPv4 packet from a raw VRRP socket: [`ipv4::parse`], the
/// TTL, [`Packet::new_checked`], [`Repr::parse`], then the VRID, which
/// `vrid_known` decides.
///
/// # Errors
/// The first failed check's [`Error`].
pub fn receive_ipv4(packet: &[u8], vrid_known: impl Fn(u8) -> bool) -> Result<Received, Error> {
    let datagram = ipv4::parse(packet)?;
    let (src, dst) = (IpAddr::V4(datagram.src), IpAddr::V4(datagram.dst));
    receive(datagram.payload, src, dst, datagram.ttl, vrid_known)
}

/// Receive the payload of an IPv6 packet (a raw IPv6 socket delivers no
/// header) with the source, destination and hop limit the socket reported.
///
/// # Errors
/// The first failed check's [`Error`].
pub fn receive_ipv6(
    payload: &[u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    vrid_known: impl Fn(u8) -> bool,
) -> Result<Received, Error> {
    receive(
        payload,
        IpAddr::V6(src),
        IpAddr::V6(dst),
        hop_limit,
        vrid_known,
    )
}

fn receive(
    payload: &[u8],
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    vrid_known: impl Fn(u8) -> bool,
) -> Result<Received, Error> {
    if ttl != TTL {
        return Err(Error::BadTtl(ttl));
    }
    let packet = Packet::new_checked(payload)?;
    let repr = Repr::parse(&packet, src, dst)?;
    check_receipt(ttl, repr.vrid, vrid_known(repr.vrid))?;
    Ok(Received { src, dst, repr })
}

#[cfg(test)]
mod tests;
