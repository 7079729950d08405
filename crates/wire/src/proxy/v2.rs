//! PROXY protocol version 2: the binary header. A checked [`Packet`] view
//! over the bytes, and a [`Repr`] to parse into and emit from.
//!
//! Layout: the 12-byte [`SIGNATURE`], a version/command byte (`0x2_`), a
//! family/protocol byte, a big-endian 16-bit length, then that many bytes of
//! address block followed by TLVs.
//!
//! Receiver rules applied by [`Repr::parse`] (from the spec):
//! - `LOCAL`: the family, addresses and TLVs are ignored, whatever they are.
//! - `PROXY` with family `AF_UNSPEC` or protocol `UNSPEC`: the block is
//!   ignored ([`Addresses::Unspecified`] or [`Addresses::Unknown`], no TLVs).
//! - `PROXY` with a known layout (TCP/UDP over IPv4/IPv6, `AF_UNIX`): the
//!   length must cover the address block; the TLVs after it are parsed, and
//!   a `PP2_TYPE_CRC32C` TLV is verified. Only TCP is decoded into addresses;
//!   UDP and `AF_UNIX` become [`Addresses::Unknown`].
//! - Family nibbles above 3 or protocol nibbles above 2 are rejected.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use super::tlv::{crc32c_with_zeroed, Tlv, TlvIter, PP2_TYPE_CRC32C};
use super::{Addresses, Command, Error};

/// The 12 bytes every v2 header starts with.
pub const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Length of the fixed part: signature, version/command, family, length.
pub const HEADER_LEN: usize = 16;
/// The only version nibble this crate (and the spec) accepts.
pub const VERSION: u8 = 0x2;
/// Command nibble: the proxy's own connection (health check).
pub const CMD_LOCAL: u8 = 0x0;
/// Command nibble: a relayed connection.
pub const CMD_PROXY: u8 = 0x1;
/// Family nibble: unknown or unspecified.
pub const AF_UNSPEC: u8 = 0x0;
/// Family nibble: IPv4.
pub const AF_INET: u8 = 0x1;
/// Family nibble: IPv6.
pub const AF_INET6: u8 = 0x2;
/// Family nibble: UNIX sockets.
pub const AF_UNIX: u8 = 0x3;
/// Protocol nibble: unknown or unspecified.
pub const PROTO_UNSPEC: u8 = 0x0;
/// Protocol nibble: a stream (TCP, UNIX stream).
pub const PROTO_STREAM: u8 = 0x1;
/// Protocol nibble: datagrams (UDP, UNIX datagram).
pub const PROTO_DGRAM: u8 = 0x2;
/// Address block length for `AF_INET`: two addresses and two ports.
pub const ADDR_LEN_INET: usize = 12;
/// Address block length for `AF_INET6`: two addresses and two ports.
pub const ADDR_LEN_INET6: usize = 36;
/// Address block length for `AF_UNIX`: two 108-byte paths.
pub const ADDR_LEN_UNIX: usize = 216;

mod field {
    //! Byte offsets in a v2 header; address fields are for the TCP/UDP layouts.

    pub type Field = core::ops::Range<usize>;

    pub const SIGNATURE: Field = 0..12;
    pub const VER_CMD: usize = 12;
    pub const FAM_PROTO: usize = 13;
    pub const LENGTH: Field = 14..16;
    pub const PAYLOAD: usize = 16;

    pub const IPV4_SRC_ADDR: Field = 0..4;
    pub const IPV4_DST_ADDR: Field = 4..8;
    pub const IPV4_SRC_PORT: Field = 8..10;
    pub const IPV4_DST_PORT: Field = 10..12;

    pub const IPV6_SRC_ADDR: Field = 0..16;
    pub const IPV6_DST_ADDR: Field = 16..32;
    pub const IPV6_SRC_PORT: Field = 32..34;
    pub const IPV6_DST_PORT: Field = 34..36;
}

/// Length of the address block for a family/protocol pair whose layout the
/// spec defines, or `None` where the block is to be ignored (an `UNSPEC`
/// family or protocol) or the values are invalid.
pub fn address_len(family: u8, protocol: u8) -> Option<usize> {
    if !matches!(protocol, PROTO_STREAM | PROTO_DGRAM) {
        return None;
    }
    match family {
        AF_INET => Some(ADDR_LEN_INET),
        AF_INET6 => Some(ADDR_LEN_INET6),
        AF_UNIX => Some(ADDR_LEN_UNIX),
        _ => None,
    }
}

fn read_u16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

/// A read/write view of a v2 header at the start of a buffer. The buffer may
/// go on past the header (the proxied protocol's bytes); they are not touched.
///
/// After [`Packet::new_checked`] succeeds no accessor panics. On a view from
/// [`Packet::new_unchecked`] they may, if the buffer is too short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without any checks (for building a header in place).
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap a buffer after [`Packet::check_len`].
    ///
    /// # Errors
    /// As [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Check the signature, the version nibble (as soon as it is there) and
    /// that the whole header, as its length field declares it, is present.
    ///
    /// # Errors
    /// [`Error::NotProxy`] if the bytes differ from the signature,
    /// [`Error::UnsupportedVersion`] if the version nibble is not 2, and
    /// [`Error::Truncated`] if the buffer ends before the header does
    /// (including a buffer that is only a prefix of the signature).
    pub fn check_len(&self) -> Result<(), Error> {
        let data = self.buffer.as_ref();
        let n = data.len().min(SIGNATURE.len());
        if data[..n] != SIGNATURE[..n] {
            return Err(Error::NotProxy);
        }
        if let Some(&ver_cmd) = data.get(field::VER_CMD) {
            let version = ver_cmd >> 4;
            if version != VERSION {
                return Err(Error::UnsupportedVersion(version));
            }
        }
        if data.len() < field::PAYLOAD || data.len() < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Return the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The signature bytes (always [`SIGNATURE`] once checked).
    pub fn signature(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SIGNATURE]
    }

    /// The version nibble (always 2 once checked).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_CMD] >> 4
    }

    /// The raw command nibble ([`CMD_LOCAL`], [`CMD_PROXY`] or anything else).
    pub fn command(&self) -> u8 {
        self.buffer.as_ref()[field::VER_CMD] & 0x0f
    }

    /// The raw family/protocol byte, e.g. `0x11` for TCP over IPv4.
    pub fn family_protocol(&self) -> u8 {
        self.buffer.as_ref()[field::FAM_PROTO]
    }

    /// The family nibble (`AF_*`).
    pub fn family(&self) -> u8 {
        self.family_protocol() >> 4
    }

    /// The protocol nibble (`PROTO_*`).
    pub fn protocol(&self) -> u8 {
        self.family_protocol() & 0x0f
    }

    /// The length field: bytes of address block and TLVs after the first 16.
    pub fn payload_len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// The whole header's length: 16 + [`Packet::payload_len`].
    pub fn header_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }

    /// The whole header, signature to last TLV.
    pub fn header(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.header_len()]
    }

    /// The address block and TLVs.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..self.header_len()]
    }

    /// TCP/UDP over IPv4 source and destination, or `None` if the payload is
    /// shorter than an IPv4 address block. The family is not looked at.
    pub fn ipv4_addresses(&self) -> Option<(SocketAddrV4, SocketAddrV4)> {
        let block = self.payload().get(..ADDR_LEN_INET)?;
        let ip = |f: field::Field| <[u8; 4]>::try_from(&block[f]).ok().map(Ipv4Addr::from);
        Some((
            SocketAddrV4::new(
                ip(field::IPV4_SRC_ADDR)?,
                read_u16(&block[field::IPV4_SRC_PORT]),
            ),
            SocketAddrV4::new(
                ip(field::IPV4_DST_ADDR)?,
                read_u16(&block[field::IPV4_DST_PORT]),
            ),
        ))
    }

    /// TCP/UDP over IPv6 source and destination, or `None` if the payload is
    /// shorter than an IPv6 address block. The family is not looked at.
    pub fn ipv6_addresses(&self) -> Option<(SocketAddrV6, SocketAddrV6)> {
        let block = self.payload().get(..ADDR_LEN_INET6)?;
        let ip = |f: field::Field| <[u8; 16]>::try_from(&block[f]).ok().map(Ipv6Addr::from);
        Some((
            SocketAddrV6::new(
                ip(field::IPV6_SRC_ADDR)?,
                read_u16(&block[field::IPV6_SRC_PORT]),
                0,
                0,
            ),
            SocketAddrV6::new(
                ip(field::IPV6_DST_ADDR)?,
                read_u16(&block[field::IPV6_DST_PORT]),
                0,
                0,
            ),
        ))
    }

    /// The TLV bytes after the address block of the header's family and
    /// protocol; empty when the layout is not known or the payload is shorter.
    pub fn tlv_block(&self) -> &[u8] {
        address_len(self.family(), self.protocol())
            .and_then(|len| self.payload().get(len..))
            .unwrap_or(&[])
    }

    /// Iterate over [`Packet::tlv_block`].
    pub fn tlvs(&self) -> TlvIter<'_> {
        TlvIter::new(self.tlv_block())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Write [`SIGNATURE`].
    pub fn set_signature(&mut self) {
        self.buffer.as_mut()[field::SIGNATURE].copy_from_slice(&SIGNATURE);
    }

    /// Write the version and command nibbles.
    pub fn set_version_command(&mut self, version: u8, command: u8) {
        self.buffer.as_mut()[field::VER_CMD] = (version << 4) | (command & 0x0f);
    }

    /// Write the family and protocol nibbles.
    pub fn set_family_protocol(&mut self, family: u8, protocol: u8) {
        self.buffer.as_mut()[field::FAM_PROTO] = (family << 4) | (protocol & 0x0f);
    }

    /// Write the length field.
    pub fn set_payload_len(&mut self, len: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }

    /// The address block and TLVs, as the length field sizes them.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[field::PAYLOAD..end]
    }

    /// Write an IPv4 address block at the start of the payload.
    pub fn set_ipv4_addresses(&mut self, src: SocketAddrV4, dst: SocketAddrV4) {
        let block = self.payload_mut();
        block[field::IPV4_SRC_ADDR].copy_from_slice(&src.ip().octets());
        block[field::IPV4_DST_ADDR].copy_from_slice(&dst.ip().octets());
        block[field::IPV4_SRC_PORT].copy_from_slice(&src.port().to_be_bytes());
        block[field::IPV4_DST_PORT].copy_from_slice(&dst.port().to_be_bytes());
    }

    /// Write an IPv6 address block at the start of the payload.
    pub fn set_ipv6_addresses(&mut self, src: SocketAddrV6, dst: SocketAddrV6) {
        let block = self.payload_mut();
        block[field::IPV6_SRC_ADDR].copy_from_slice(&src.ip().octets());
        block[field::IPV6_DST_ADDR].copy_from_slice(&dst.ip().octets());
        block[field::IPV6_SRC_PORT].copy_from_slice(&src.port().to_be_bytes());
        block[field::IPV6_DST_PORT].copy_from_slice(&dst.port().to_be_bytes());
    }
}

/// A decoded v2 header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    /// `LOCAL` or `PROXY`.
    pub command: Command,
    /// The original endpoints; [`Addresses::Unspecified`] for `LOCAL`.
    pub addresses: Addresses,
    /// TLVs in wire order (see the module doc for when they are read).
    pub tlvs: Vec<Tlv>,
}

impl Repr {
    /// Decode a checked packet, applying the receiver rules in the module doc.
    ///
    /// # Errors
    /// [`Error::UnsupportedCommand`] for a command other than LOCAL/PROXY;
    /// [`Error::Malformed`] for an invalid family or protocol, a length too
    /// short for the family's address block, or a truncated TLV;
    /// [`Error::ChecksumMismatch`] if a CRC32c TLV does not match.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        let command = match packet.command() {
            CMD_LOCAL => Command::Local,
            CMD_PROXY => Command::Proxy,
            other => return Err(Error::UnsupportedCommand(other)),
        };
        let unspecified = |addresses| {
            Ok(Repr {
                command,
                addresses,
                tlvs: Vec::new(),
            })
        };
        if command == Command::Local {
            return unspecified(Addresses::Unspecified);
        }
        let (family, protocol) = (packet.family(), packet.protocol());
        if family > AF_UNIX {
            return Err(Error::Malformed("unknown address family"));
        }
        if protocol > PROTO_DGRAM {
            return Err(Error::Malformed("unknown transport protocol"));
        }
        if family == AF_UNSPEC {
            return unspecified(Addresses::Unspecified);
        }
        let Some(addr_len) = address_len(family, protocol) else {
            return unspecified(Addresses::Unknown(packet.family_protocol()));
        };
        if packet.payload().len() < addr_len {
            return Err(Error::Malformed("length too short for the address family"));
        }
        let short = Error::Malformed("length too short for the address family");
        let addresses = match (family, protocol) {
            (AF_INET, PROTO_STREAM) => {
                let (src, dst) = packet.ipv4_addresses().ok_or(short)?;
                Addresses::Tcp4 { src, dst }
            }
            (AF_INET6, PROTO_STREAM) => {
                let (src, dst) = packet.ipv6_addresses().ok_or(short)?;
                Addresses::Tcp6 { src, dst }
            }
            _ => Addresses::Unknown(packet.family_protocol()),
        };
        let tlvs = parse_tlvs(packet, HEADER_LEN + addr_len)?;
        Ok(Repr {
            command,
            addresses,
            tlvs,
        })
    }

    /// Bytes [`Repr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        buffer_len(self.command, &self.addresses, &self.tlvs)
    }

    /// Write this header at the start of `packet`'s buffer.
    ///
    /// `LOCAL` is sent with family `UNSPEC` and no addresses (as the spec
    /// asks), and so are [`Addresses::Unspecified`] and
    /// [`Addresses::Unknown`] (whose address bytes were never kept). TLVs are
    /// written in order; a `PP2_TYPE_CRC32C` TLV (see [`Tlv::crc32c`]) gets
    /// the checksum of the finished header.
    ///
    /// # Errors
    /// [`Error::CannotEmit`] if the address block and TLVs exceed 65535
    /// bytes, or there is more than one CRC32c TLV or one not 4 bytes long.
    ///
    /// # Panics
    /// If the buffer is shorter than [`Repr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<(), Error> {
        emit_parts(
            self.command,
            &self.addresses,
            &self.tlvs,
            packet.buffer.as_mut(),
        )
        .map(|_| ())
    }

    /// The header as a new byte vector.
    ///
    /// # Errors
    /// As [`Repr::emit`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut buf = vec![0; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut buf))?;
        Ok(buf)
    }
}

/// Parse the TLVs after the address block and verify a CRC32c TLV.
/// `tlv_start` is the block's offset from the start of the header.
fn parse_tlvs<T: AsRef<[u8]>>(packet: &Packet<T>, tlv_start: usize) -> Result<Vec<Tlv>, Error> {
    let header = packet.header();
    let mut iter = TlvIter::new(header.get(tlv_start..).unwrap_or(&[]));
    let mut tlvs = Vec::new();
    let mut crc_seen = false;
    while let Some(item) = iter.next_with_offset() {
        let (offset, tlv) = item?;
        if tlv.kind == PP2_TYPE_CRC32C {
            let Ok(received) = <[u8; 4]>::try_from(tlv.value) else {
                return Err(Error::Malformed("CRC32C TLV value is not 4 bytes"));
            };
            if crc_seen {
                return Err(Error::Malformed("more than one CRC32C TLV"));
            }
            crc_seen = true;
            let received = u32::from_be_bytes(received);
            let computed = crc32c_with_zeroed(header, tlv_start + offset);
            if received != computed {
                return Err(Error::ChecksumMismatch { received, computed });
            }
        }
        tlvs.push(Tlv::from(tlv));
    }
    Ok(tlvs)
}

/// The family/protocol nibbles and address block length sent for these parts.
fn wire_layout(command: Command, addresses: &Addresses) -> (u8, u8, usize) {
    match (command, addresses) {
        (Command::Proxy, Addresses::Tcp4 { .. }) => (AF_INET, PROTO_STREAM, ADDR_LEN_INET),
        (Command::Proxy, Addresses::Tcp6 { .. }) => (AF_INET6, PROTO_STREAM, ADDR_LEN_INET6),
        _ => (AF_UNSPEC, PROTO_UNSPEC, 0),
    }
}

/// [`Repr::buffer_len`] without building a `Repr`.
pub(super) fn buffer_len(command: Command, addresses: &Addresses, tlvs: &[Tlv]) -> usize {
    let (_, _, addr_len) = wire_layout(command, addresses);
    HEADER_LEN + addr_len + tlvs.iter().map(Tlv::buffer_len).sum::<usize>()
}

/// [`Repr::emit`] without building a `Repr`; returns the bytes written.
pub(super) fn emit_parts(
    command: Command,
    addresses: &Addresses,
    tlvs: &[Tlv],
    buf: &mut [u8],
) -> Result<usize, Error> {
    let (family, protocol, addr_len) = wire_layout(command, addresses);
    let payload_len = addr_len + tlvs.iter().map(Tlv::buffer_len).sum::<usize>();
    let payload_len = u16::try_from(payload_len)
        .map_err(|_| Error::CannotEmit("address block and TLVs exceed 65535 bytes"))?;
    let mut crc_field = None;
    let mut offset = HEADER_LEN + addr_len;
    for tlv in tlvs {
        if tlv.kind == PP2_TYPE_CRC32C {
            if tlv.value.len() != 4 {
                return Err(Error::CannotEmit("CRC32C TLV value is not 4 bytes"));
            }
            if crc_field.replace(offset + 3).is_some() {
                return Err(Error::CannotEmit("more than one CRC32C TLV"));
            }
        }
        offset += tlv.buffer_len();
    }

    let total = HEADER_LEN + usize::from(payload_len);
    let mut packet = Packet::new_unchecked(&mut buf[..total]);
    packet.set_signature();
    packet.set_version_command(
        VERSION,
        match command {
            Command::Local => CMD_LOCAL,
            Command::Proxy => CMD_PROXY,
        },
    );
    packet.set_family_protocol(family, protocol);
    packet.set_payload_len(payload_len);
    match (command, *addresses) {
        (Command::Proxy, Addresses::Tcp4 { src, dst }) => packet.set_ipv4_addresses(src, dst),
        (Command::Proxy, Addresses::Tcp6 { src, dst }) => packet.set_ipv6_addresses(src, dst),
        _ => {}
    }
    let mut rest = &mut packet.payload_mut()[addr_len..];
    for tlv in tlvs {
        let (head, tail) = rest.split_at_mut(tlv.buffer_len());
        head[0] = tlv.kind;
        // Fits: the whole payload length fitted in a u16 above.
        head[1..3].copy_from_slice(&(tlv.value.len() as u16).to_be_bytes());
        head[3..].copy_from_slice(&tlv.value);
        rest = tail;
    }
    let header = packet.into_inner();
    if let Some(at) = crc_field {
        let crc = crc32c_with_zeroed(header, at);
        header[at..at + 4].copy_from_slice(&crc.to_be_bytes());
    }
    Ok(total)
}

#[cfg(test)]
mod tests;
