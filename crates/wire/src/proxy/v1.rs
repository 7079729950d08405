//! PROXY protocol version 1: one US-ASCII line such as
//! `PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n`.
//!
//! Framing comes in two steps, as the spec asks ("wait for the CRLF before
//! decoding"): [`frame_len`] finds the end of the line (or says more bytes
//! are needed), then [`Repr::parse`] decodes exactly that line.
//!
//! Parsing is strict: single spaces, `TCP4` / `TCP6` / `UNKNOWN` in upper
//! case, addresses of the announced family (no leading zeros in IPv4
//! octets), ports in decimal `0..=65535` without sign or leading zeros, and
//! a CRLF within [`MAX_LEN`] bytes. After `UNKNOWN` the rest of the line is
//! ignored, as the spec says.

use core::fmt::{self, Write as _};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use super::{Addresses, Error};

/// What every v1 line starts with.
pub const PREFIX: &[u8] = b"PROXY ";
/// The longest line a receiver must accept, CRLF included (the spec's worst
/// case `PROXY UNKNOWN` followed by two full IPv6 addresses and two ports).
pub const MAX_LEN: usize = 107;

/// Find the end of a v1 line at the start of `buf`: `Some(length)` including
/// the CRLF, or `None` if more bytes are needed.
///
/// Bytes are checked as they arrive, so a broken line is refused before its
/// CRLF is seen: only printable US-ASCII may come before the CRLF.
///
/// # Errors
/// [`Error::NotProxy`] if `buf` does not start with (a prefix of) [`PREFIX`];
/// [`Error::Malformed`] for a lone CR or LF or a non-printable byte;
/// [`Error::TooLong`] if there is no CRLF within [`MAX_LEN`] bytes.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, Error> {
    let n = buf.len().min(PREFIX.len());
    if buf[..n] != PREFIX[..n] {
        return Err(Error::NotProxy);
    }
    for (i, &byte) in buf.iter().enumerate().take(MAX_LEN).skip(PREFIX.len()) {
        match byte {
            b'\r' => {
                if i + 2 > MAX_LEN {
                    return Err(Error::TooLong);
                }
                return match buf.get(i + 1) {
                    Some(b'\n') => Ok(Some(i + 2)),
                    Some(_) => Err(Error::Malformed("CR not followed by LF")),
                    None => Ok(None),
                };
            }
            b'\n' => return Err(Error::Malformed("LF without CR")),
            b' '..=b'~' => {}
            _ => return Err(Error::Malformed("non-printable byte in the line")),
        }
    }
    if buf.len() >= MAX_LEN {
        Err(Error::TooLong)
    } else {
        Ok(None)
    }
}

/// A decoded v1 line. v1 has no command (it is always PROXY) and no TLVs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Repr {
    /// `TCP4`, `TCP6`, or [`Addresses::Unspecified`] for `UNKNOWN`.
    pub addresses: Addresses,
}

impl Repr {
    /// Decode one whole line, CRLF included (as [`frame_len`] delimits it).
    ///
    /// # Errors
    /// [`Error::TooLong`] if `line` is longer than [`MAX_LEN`];
    /// [`Error::NotProxy`] if it does not start with [`PREFIX`];
    /// [`Error::Malformed`] for anything else that breaks the format.
    pub fn parse(line: &[u8]) -> Result<Repr, Error> {
        if line.len() > MAX_LEN {
            return Err(Error::TooLong);
        }
        let body = line
            .strip_prefix(PREFIX)
            .ok_or(Error::NotProxy)?
            .strip_suffix(b"\r\n")
            .ok_or(Error::Malformed("line does not end with CRLF"))?;
        if !body.iter().all(|b| (b' '..=b'~').contains(b)) {
            return Err(Error::Malformed("non-printable byte in the line"));
        }
        let body = core::str::from_utf8(body)
            .map_err(|_| Error::Malformed("non-printable byte in the line"))?;
        let mut fields = body.split(' ');
        let family = fields.next().unwrap_or_default();
        if family == "UNKNOWN" {
            // "the receiver must ignore anything presented before the CRLF"
            return Ok(Repr {
                addresses: Addresses::Unspecified,
            });
        }
        if family != "TCP4" && family != "TCP6" {
            return Err(Error::Malformed(
                "protocol is not TCP4, TCP6 or UNKNOWN after a single space",
            ));
        }
        let (Some(src), Some(dst), Some(sport), Some(dport), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(Error::Malformed(
                "expected exactly: protocol, two addresses and two ports, one space apart",
            ));
        };
        if [src, dst, sport, dport].iter().any(|f| f.is_empty()) {
            return Err(Error::Malformed(
                "fields must be separated by exactly one space",
            ));
        }
        let sport = parse_port(sport).ok_or(Error::Malformed("bad source port"))?;
        let dport = parse_port(dport).ok_or(Error::Malformed("bad destination port"))?;
        let addresses = if family == "TCP4" {
            let bad = |_| Error::Malformed("address is not a TCP4 (dotted IPv4) address");
            Addresses::Tcp4 {
                src: SocketAddrV4::new(src.parse::<Ipv4Addr>().map_err(bad)?, sport),
                dst: SocketAddrV4::new(dst.parse::<Ipv4Addr>().map_err(bad)?, dport),
            }
        } else {
            let bad = |_| Error::Malformed("address is not a TCP6 (IPv6) address");
            Addresses::Tcp6 {
                src: SocketAddrV6::new(src.parse::<Ipv6Addr>().map_err(bad)?, sport, 0, 0),
                dst: SocketAddrV6::new(dst.parse::<Ipv6Addr>().map_err(bad)?, dport, 0, 0),
            }
        };
        Ok(Repr { addresses })
    }

    /// Bytes [`Repr::emit`] writes (at most 104).
    pub fn buffer_len(&self) -> usize {
        self.line().len
    }

    /// Write the line, CRLF included, at the start of `buf`; return its length.
    ///
    /// [`Addresses::Unspecified`] and [`Addresses::Unknown`] are written as
    /// `PROXY UNKNOWN\r\n`. IPv6 addresses use the standard compressed form
    /// (IPv4-mapped ones as `::ffff:a.b.c.d`).
    ///
    /// # Panics
    /// If `buf` is shorter than [`Repr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let line = self.line();
        buf[..line.len].copy_from_slice(line.as_bytes());
        line.len
    }

    /// The line as a new byte vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.line().as_bytes().to_vec()
    }

    fn line(&self) -> Line {
        let mut line = Line {
            buf: [0; MAX_LEN],
            len: 0,
        };
        let written = match self.addresses {
            Addresses::Tcp4 { src, dst } => write!(
                line,
                "PROXY TCP4 {} {} {} {}\r\n",
                src.ip(),
                dst.ip(),
                src.port(),
                dst.port()
            ),
            Addresses::Tcp6 { src, dst } => write!(
                line,
                "PROXY TCP6 {} {} {} {}\r\n",
                src.ip(),
                dst.ip(),
                src.port(),
                dst.port()
            ),
            Addresses::Unspecified | Addresses::Unknown(_) => line.write_str("PROXY UNKNOWN\r\n"),
        };
        // The longest line (TCP6, two 39-char addresses) is 104 bytes.
        debug_assert!(written.is_ok(), "v1 line longer than MAX_LEN");
        line
    }
}

/// A decimal port: 1 to 5 digits, no sign, no leading zero, at most 65535.
fn parse_port(text: &str) -> Option<u16> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || text.len() > 5 || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse().ok()
}

/// A fixed buffer a v1 line is formatted into without allocating.
struct Line {
    buf: [u8; MAX_LEN],
    len: usize,
}

impl Line {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
