//! PROXY protocol headers, versions 1 (text) and 2 (binary), as HAProxy's
//! `proxy-protocol.txt` defines them: version detection, parsing, emission.
//!
//! Receiving: call [`parse`] on the bytes read so far. [`Parsed::Incomplete`]
//! means "read more and call again" (a normal outcome, not an error);
//! [`Parsed::Complete`] gives the [`Header`] and how many bytes it took, so
//! whatever follows (the proxied protocol's first bytes) stays with the caller.
//!
//! Sending: [`emit_v1`] / [`emit_v2`] for the common case, or build a
//! [`Header`] (or a [`v1::Repr`] / [`v2::Repr`]) and call `emit`.
//!
//! Mixed address families (an IPv4 source with an IPv6 destination or the
//! reverse) are not refused: [`Addresses::from_pair`] maps the IPv4 side to
//! its IPv4-mapped IPv6 form (`::ffff:a.b.c.d`) and sends TCP6, as HAProxy
//! does. [`Addresses::source`] and [`Addresses::destination`] turn such
//! mapped addresses back into plain IPv4.
//!
//! ```
//! use mxgate_wire::proxy::{self, Command, Parsed};
//!
//! let client = "192.0.2.7:40000".parse().unwrap();
//! let server = "198.51.100.25:25".parse().unwrap();
//! let mut wire = proxy::emit_v2(Command::Proxy, client, server, &[]).unwrap();
//! wire.extend_from_slice(b"EHLO mail.example\r\n");
//!
//! // A reader calls parse after each read until the header is complete.
//! assert_eq!(proxy::parse(&wire[..10]), Ok(Parsed::Incomplete));
//! let Ok(Parsed::Complete { header, consumed }) = proxy::parse(&wire) else {
//!     panic!("not a PROXY header");
//! };
//! assert_eq!(header.addresses.source(), Some(client));
//! assert_eq!(&wire[consumed..], b"EHLO mail.example\r\n");
//! ```

use core::fmt;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

pub mod tlv;
pub mod v1;
pub mod v2;

pub use tlv::{crc32c, Ssl, Tlv, TlvIter, TlvRef};

/// The largest header either version can produce: a v2 header with a
/// 65535-byte address and TLV block. A v1 line is at most [`v1::MAX_LEN`].
pub const MAX_HEADER_LEN: usize = v2::HEADER_LEN + u16::MAX as usize;

/// Which version of the protocol a header was (or is to be) written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// The human-readable `PROXY TCP4 ...\r\n` line.
    V1,
    /// The binary format starting with [`v2::SIGNATURE`].
    V2,
}

/// What the connection carrying the header is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Made by the proxy itself (a health check): use the real endpoints and
    /// ignore any addresses. Only v2 can say this.
    Local,
    /// Relayed on behalf of a client: the addresses are the original ones.
    Proxy,
}

/// The original connection's endpoints as the header describes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Addresses {
    /// No addresses: v1 `UNKNOWN`, v2 `AF_UNSPEC`, or any v2 `LOCAL` header.
    /// The receiver uses the real connection endpoints.
    Unspecified,
    /// TCP over IPv4.
    Tcp4 {
        /// The client as the proxy saw it.
        src: SocketAddrV4,
        /// The address the client connected to.
        dst: SocketAddrV4,
    },
    /// TCP over IPv6 (also used for mixed families, IPv4 side mapped).
    Tcp6 {
        /// The client as the proxy saw it.
        src: SocketAddrV6,
        /// The address the client connected to.
        dst: SocketAddrV6,
    },
    /// A valid v2 family/protocol byte this crate does not decode (UDP,
    /// `AF_UNIX`, or an `UNSPEC` protocol with a real family), kept as is.
    /// Treat like [`Addresses::Unspecified`]; emitting it sends `UNSPEC`.
    Unknown(u8),
}

impl Addresses {
    /// The addresses for a `src` → `dst` TCP connection. When the families
    /// differ, the IPv4 side becomes an IPv4-mapped IPv6 address and the
    /// result is [`Addresses::Tcp6`], as HAProxy does. IPv6 flow info and
    /// scope ids are dropped: the wire formats cannot carry them.
    pub fn from_pair(src: SocketAddr, dst: SocketAddr) -> Addresses {
        match (src, dst) {
            (SocketAddr::V4(src), SocketAddr::V4(dst)) => Addresses::Tcp4 { src, dst },
            (src, dst) => Addresses::Tcp6 {
                src: to_v6(src),
                dst: to_v6(dst),
            },
        }
    }

    /// The original client's address, if the header carries one. An
    /// IPv4-mapped IPv6 address comes back as plain IPv4.
    pub fn source(&self) -> Option<SocketAddr> {
        match *self {
            Addresses::Tcp4 { src, .. } => Some(SocketAddr::V4(src)),
            Addresses::Tcp6 { src, .. } => Some(canonical(src)),
            Addresses::Unspecified | Addresses::Unknown(_) => None,
        }
    }

    /// The address the client connected to, if the header carries one. An
    /// IPv4-mapped IPv6 address comes back as plain IPv4.
    pub fn destination(&self) -> Option<SocketAddr> {
        match *self {
            Addresses::Tcp4 { dst, .. } => Some(SocketAddr::V4(dst)),
            Addresses::Tcp6 { dst, .. } => Some(canonical(dst)),
            Addresses::Unspecified | Addresses::Unknown(_) => None,
        }
    }
}

fn to_v6(addr: SocketAddr) -> SocketAddrV6 {
    match addr {
        SocketAddr::V4(a) => SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0),
        SocketAddr::V6(a) => SocketAddrV6::new(*a.ip(), a.port(), 0, 0),
    }
}

fn canonical(addr: SocketAddrV6) -> SocketAddr {
    match addr.ip().to_ipv4_mapped() {
        Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, addr.port())),
        None => SocketAddr::V6(addr),
    }
}

/// A decoded PROXY header of either version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The version it was read in, or is to be written in.
    pub version: Version,
    /// `LOCAL` or `PROXY`; v1 headers are always [`Command::Proxy`].
    pub command: Command,
    /// The original endpoints; always [`Addresses::Unspecified`] for `LOCAL`.
    pub addresses: Addresses,
    /// v2 TLVs in wire order, unknown kinds kept; always empty for v1 and
    /// for v2 headers whose TLVs the spec says to ignore (`LOCAL`, `AF_UNSPEC`).
    pub tlvs: Vec<Tlv>,
}

impl Header {
    /// A v1 header (`PROXY` command, no TLVs).
    pub fn v1(addresses: Addresses) -> Header {
        Header {
            version: Version::V1,
            command: Command::Proxy,
            addresses,
            tlvs: Vec::new(),
        }
    }

    /// A v2 header.
    pub fn v2(command: Command, addresses: Addresses, tlvs: Vec<Tlv>) -> Header {
        Header {
            version: Version::V2,
            command,
            addresses,
            tlvs,
        }
    }

    /// The value of the first TLV of `kind`, if any.
    pub fn tlv(&self, kind: u8) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|t| t.kind == kind)
            .map(|t| t.value.as_slice())
    }

    fn v1_repr(&self) -> v1::Repr {
        let addresses = match self.command {
            Command::Local => Addresses::Unspecified,
            Command::Proxy => self.addresses,
        };
        v1::Repr { addresses }
    }

    /// Bytes [`Header::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self.version {
            Version::V1 => self.v1_repr().buffer_len(),
            Version::V2 => v2::buffer_len(self.command, &self.addresses, &self.tlvs),
        }
    }

    /// Write the header at the start of `buf` and return its length.
    ///
    /// In v1, a `LOCAL` command or addresses other than TCP4/TCP6 are written
    /// as `PROXY UNKNOWN\r\n` and TLVs are dropped (v1 has none). In v2, see
    /// [`v2::Repr::emit`].
    ///
    /// # Errors
    /// [`Error::CannotEmit`] if a v2 header's TLVs do not fit its 16-bit
    /// length field, or its CRC32c TLVs are not as [`v2::Repr::emit`] needs.
    ///
    /// # Panics
    /// If `buf` is shorter than [`Header::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        match self.version {
            Version::V1 => Ok(self.v1_repr().emit(buf)),
            Version::V2 => v2::emit_parts(self.command, &self.addresses, &self.tlvs, buf),
        }
    }

    /// The header as a new byte vector.
    ///
    /// # Errors
    /// As [`Header::emit`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let mut buf = vec![0; self.buffer_len()];
        let len = self.emit(&mut buf)?;
        buf.truncate(len);
        Ok(buf)
    }
}

/// The outcome of [`parse`] on the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// The bytes are a valid start of a header: read more and parse again.
    Incomplete,
    /// A whole header.
    Complete {
        /// The decoded header.
        header: Header,
        /// How many bytes of the buffer the header took; the rest belongs to
        /// the proxied protocol.
        consumed: usize,
    },
}

/// Detect the version and parse a PROXY header at the start of `buf`.
///
/// Bytes after the header are not looked at. `buf` that is a proper prefix
/// of either signature (including an empty one) is [`Parsed::Incomplete`].
///
/// # Errors
/// [`Error::NotProxy`] if `buf` starts with neither signature; otherwise any
/// peer-fault [`Error`] found in the header.
pub fn parse(buf: &[u8]) -> Result<Parsed, Error> {
    if is_prefix_or_extension(buf, &v2::SIGNATURE) {
        return match v2::Packet::new_checked(buf) {
            Err(Error::Truncated) => Ok(Parsed::Incomplete),
            Err(err) => Err(err),
            Ok(packet) => {
                let repr = v2::Repr::parse(&packet)?;
                Ok(Parsed::Complete {
                    header: Header {
                        version: Version::V2,
                        command: repr.command,
                        addresses: repr.addresses,
                        tlvs: repr.tlvs,
                    },
                    consumed: packet.header_len(),
                })
            }
        };
    }
    if is_prefix_or_extension(buf, v1::PREFIX) {
        return match v1::frame_len(buf)? {
            None => Ok(Parsed::Incomplete),
            Some(len) => Ok(Parsed::Complete {
                header: Header::v1(v1::Repr::parse(&buf[..len])?.addresses),
                consumed: len,
            }),
        };
    }
    Err(Error::NotProxy)
}

/// Whether `buf` starts with `sig`, or is a (possibly empty) prefix of it.
fn is_prefix_or_extension(buf: &[u8], sig: &[u8]) -> bool {
    let n = buf.len().min(sig.len());
    buf[..n] == sig[..n]
}

/// A v1 line for a TCP connection `src` → `dst` (mixed families as TCP6).
pub fn emit_v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    v1::Repr {
        addresses: Addresses::from_pair(src, dst),
    }
    .to_bytes()
}

/// A v2 header for a TCP connection `src` → `dst` (mixed families as TCP6)
/// with `tlvs` after the addresses. A [`Tlv::crc32c`] among them is filled in.
///
/// # Errors
/// [`Error::CannotEmit`] if the TLVs do not fit the 16-bit length field, or
/// more than one CRC32c TLV (or one whose value is not 4 bytes) is given.
pub fn emit_v2(
    command: Command,
    src: SocketAddr,
    dst: SocketAddr,
    tlvs: &[Tlv],
) -> Result<Vec<u8>, Error> {
    let addresses = Addresses::from_pair(src, dst);
    let mut buf = vec![0; v2::buffer_len(command, &addresses, tlvs)];
    v2::emit_parts(command, &addresses, tlvs, &mut buf)?;
    Ok(buf)
}

/// Why a header could not be parsed or emitted.
///
/// Grouped by whose fault it is: the peer is not speaking PROXY at all, the
/// peer sent a broken header, the peer speaks a dialect this crate does not,
/// or the local caller asked for something unrepresentable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Peer: the bytes start with neither the v1 nor the v2 signature.
    NotProxy,
    /// Peer: a PROXY header that breaks the spec; the text says how.
    Malformed(&'static str),
    /// Peer: no CRLF within the first 107 bytes of a v1 line.
    TooLong,
    /// Peer: the `PP2_TYPE_CRC32C` TLV does not match the header.
    ChecksumMismatch {
        /// The checksum the header carried.
        received: u32,
        /// The checksum of the header as received.
        computed: u32,
    },
    /// Peer incompatible: the v2 signature with a version nibble other than 2.
    UnsupportedVersion(u8),
    /// Peer incompatible: a v2 command nibble other than LOCAL (0) or PROXY (1).
    UnsupportedCommand(u8),
    /// Local: the caller asked to emit a header the format cannot carry (too
    /// large, or a bad CRC32c TLV); the text says what.
    CannotEmit(&'static str),
    /// Low-level views only ([`v2::Packet::new_checked`]): the buffer ends
    /// before the header does. [`parse`] reports this as [`Parsed::Incomplete`].
    Truncated,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotProxy => f.write_str("not a PROXY protocol header"),
            Error::Malformed(what) => write!(f, "malformed PROXY header: {what}"),
            Error::TooLong => f.write_str("PROXY v1 line has no CRLF within 107 bytes"),
            Error::ChecksumMismatch { received, computed } => write!(
                f,
                "PROXY v2 CRC32c mismatch: header says {received:#010x}, computed {computed:#010x}"
            ),
            Error::UnsupportedVersion(v) => write!(f, "unsupported PROXY v2 version nibble {v}"),
            Error::UnsupportedCommand(c) => write!(f, "unsupported PROXY v2 command {c}"),
            Error::CannotEmit(what) => write!(f, "PROXY header cannot be emitted: {what}"),
            Error::Truncated => f.write_str("buffer ends before the PROXY header does"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests;
