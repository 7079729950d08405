//! PROXY v2 Type-Length-Value vectors: the registered `PP2_TYPE_*` codes, an
//! owned [`Tlv`], a borrowing iterator over a TLV block, the SSL sub-structure
//! and the CRC32c checksum the `PP2_TYPE_CRC32C` vector carries.

use super::Error;

/// Application-Layer Protocol Negotiation: the upper-layer protocol bytes.
pub const PP2_TYPE_ALPN: u8 = 0x01;
/// The host name the client asked for (TLS SNI or similar), UTF-8.
pub const PP2_TYPE_AUTHORITY: u8 = 0x02;
/// CRC32c of the whole header, computed with this field zeroed (4 bytes, big endian).
pub const PP2_TYPE_CRC32C: u8 = 0x03;
/// Padding; ignored by receivers.
pub const PP2_TYPE_NOOP: u8 = 0x04;
/// An opaque connection id of up to 128 bytes from the upstream proxy.
pub const PP2_TYPE_UNIQUE_ID: u8 = 0x05;
/// TLS details of the client connection; see [`Ssl`].
pub const PP2_TYPE_SSL: u8 = 0x20;
/// SSL sub-TLV: the TLS version as US-ASCII text.
pub const PP2_SUBTYPE_SSL_VERSION: u8 = 0x21;
/// SSL sub-TLV: the client certificate's Common Name, UTF-8.
pub const PP2_SUBTYPE_SSL_CN: u8 = 0x22;
/// SSL sub-TLV: the cipher name as US-ASCII text.
pub const PP2_SUBTYPE_SSL_CIPHER: u8 = 0x23;
/// SSL sub-TLV: the certificate signature algorithm as US-ASCII text.
pub const PP2_SUBTYPE_SSL_SIG_ALG: u8 = 0x24;
/// SSL sub-TLV: the certificate key algorithm as US-ASCII text.
pub const PP2_SUBTYPE_SSL_KEY_ALG: u8 = 0x25;
/// The network namespace name as US-ASCII text.
pub const PP2_TYPE_NETNS: u8 = 0x30;
/// First type reserved for application-specific data.
pub const PP2_TYPE_MIN_CUSTOM: u8 = 0xE0;
/// Last type reserved for application-specific data.
pub const PP2_TYPE_MAX_CUSTOM: u8 = 0xEF;

/// `Ssl::client` bit: the client connected over SSL/TLS.
pub const PP2_CLIENT_SSL: u8 = 0x01;
/// `Ssl::client` bit: the client sent a certificate on this connection.
pub const PP2_CLIENT_CERT_CONN: u8 = 0x02;
/// `Ssl::client` bit: the client sent a certificate at least once in this TLS session.
pub const PP2_CLIENT_CERT_SESS: u8 = 0x04;

/// Size of a TLV's type and length fields.
pub(crate) const TLV_HEADER_LEN: usize = 3;

/// One owned TLV of a PROXY v2 header. Unknown kinds are kept as they are.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tlv {
    /// The type byte, one of the `PP2_TYPE_*` constants or any other value.
    pub kind: u8,
    /// The value bytes (at most 65535 on the wire).
    pub value: Vec<u8>,
}

impl Tlv {
    /// A TLV of `kind` holding `value`.
    pub fn new(kind: u8, value: impl Into<Vec<u8>>) -> Tlv {
        Tlv {
            kind,
            value: value.into(),
        }
    }

    /// A `PP2_TYPE_CRC32C` placeholder: the v2 emitter fills in the checksum.
    pub fn crc32c() -> Tlv {
        Tlv::new(PP2_TYPE_CRC32C, [0u8; 4])
    }

    /// Bytes this TLV takes on the wire: 3 + the value's length.
    pub fn buffer_len(&self) -> usize {
        TLV_HEADER_LEN + self.value.len()
    }
}

impl From<TlvRef<'_>> for Tlv {
    fn from(tlv: TlvRef<'_>) -> Tlv {
        Tlv::new(tlv.kind, tlv.value)
    }
}

/// One TLV borrowed from a header buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlvRef<'a> {
    /// The type byte.
    pub kind: u8,
    /// The value bytes.
    pub value: &'a [u8],
}

/// Iterator over a block of TLVs.
///
/// Yields `Err(Error::Malformed(..))` once if a TLV header or value runs past
/// the end of the block, then stops.
#[derive(Debug, Clone)]
pub struct TlvIter<'a> {
    rest: &'a [u8],
    /// Offset of `rest` from the start of the block given to [`TlvIter::new`].
    offset: usize,
}

impl<'a> TlvIter<'a> {
    /// Iterate over the TLVs in `block` (the bytes after the address block).
    pub fn new(block: &'a [u8]) -> TlvIter<'a> {
        TlvIter {
            rest: block,
            offset: 0,
        }
    }

    /// Like `next`, but also returns the offset of the value within the block.
    pub(crate) fn next_with_offset(&mut self) -> Option<Result<(usize, TlvRef<'a>), Error>> {
        if self.rest.is_empty() {
            return None;
        }
        let Some(&[kind, hi, lo]) = self.rest.get(..TLV_HEADER_LEN) else {
            self.rest = &[];
            return Some(Err(Error::Malformed("TLV header truncated")));
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let Some(value) = self.rest.get(TLV_HEADER_LEN..TLV_HEADER_LEN + len) else {
            self.rest = &[];
            return Some(Err(Error::Malformed("TLV value runs past the header")));
        };
        let value_offset = self.offset + TLV_HEADER_LEN;
        self.rest = &self.rest[TLV_HEADER_LEN + len..];
        self.offset = value_offset + len;
        Some(Ok((value_offset, TlvRef { kind, value })))
    }
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<TlvRef<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_with_offset().map(|r| r.map(|(_, tlv)| tlv))
    }
}

/// The value of a `PP2_TYPE_SSL` TLV: client flags, verify result and sub-TLVs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssl {
    /// Bit field of `PP2_CLIENT_SSL`, `PP2_CLIENT_CERT_CONN`, `PP2_CLIENT_CERT_SESS`.
    pub client: u8,
    /// Zero if the client presented a certificate and it verified, else non-zero.
    pub verify: u32,
    /// Sub-TLVs (`PP2_SUBTYPE_SSL_*`), unknown ones kept.
    pub tlvs: Vec<Tlv>,
}

impl Ssl {
    /// Parse the value of a `PP2_TYPE_SSL` TLV.
    ///
    /// # Errors
    /// [`Error::Malformed`] if the value is shorter than 5 bytes or a sub-TLV
    /// is truncated.
    pub fn parse(value: &[u8]) -> Result<Ssl, Error> {
        let Some(&[client, a, b, c, d]) = value.get(..5) else {
            return Err(Error::Malformed("SSL TLV shorter than 5 bytes"));
        };
        let tlvs = TlvIter::new(&value[5..])
            .map(|r| r.map(Tlv::from))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Ssl {
            client,
            verify: u32::from_be_bytes([a, b, c, d]),
            tlvs,
        })
    }

    /// The first sub-TLV of `kind`, as text if it is valid UTF-8.
    pub fn text(&self, kind: u8) -> Option<&str> {
        let tlv = self.tlvs.iter().find(|t| t.kind == kind)?;
        core::str::from_utf8(&tlv.value).ok()
    }

    /// Encode as the value of a `PP2_TYPE_SSL` TLV.
    ///
    /// # Errors
    /// [`Error::CannotEmit`] if a sub-TLV value is longer than 65535 bytes.
    pub fn to_value(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(5 + self.tlvs.iter().map(Tlv::buffer_len).sum::<usize>());
        out.push(self.client);
        out.extend_from_slice(&self.verify.to_be_bytes());
        for tlv in &self.tlvs {
            let len = u16::try_from(tlv.value.len())
                .map_err(|_| Error::CannotEmit("SSL sub-TLV value longer than 65535 bytes"))?;
            out.push(tlv.kind);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&tlv.value);
        }
        Ok(out)
    }
}

/// CRC32c (Castagnoli, RFC 4960 appendix B) lookup table, reflected.
static CRC32C_TABLE: [u32; 256] = crc32c_table();

const fn crc32c_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// Incremental CRC32c, so a checksum field can be fed as zeroes in place.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Crc32c(u32);

impl Crc32c {
    pub(crate) fn new() -> Crc32c {
        Crc32c(!0)
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = CRC32C_TABLE[usize::from((self.0 as u8) ^ b)] ^ (self.0 >> 8);
        }
    }

    pub(crate) fn finish(self) -> u32 {
        !self.0
    }
}

/// The CRC32c (Castagnoli) checksum of `bytes`, as `PP2_TYPE_CRC32C` uses.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut crc = Crc32c::new();
    crc.update(bytes);
    crc.finish()
}

/// CRC32c of `header` computed as if the 4 bytes at `field` were zero.
pub(crate) fn crc32c_with_zeroed(header: &[u8], field: usize) -> u32 {
    let mut crc = Crc32c::new();
    crc.update(&header[..field]);
    crc.update(&[0; 4]);
    crc.update(&header[field + 4..]);
    crc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The standard check value for CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn crc32c_zeroed_field_matches_plain() {
        let bytes = [1u8, 2, 3, 0xaa, 0xbb, 0xcc, 0xdd, 4];
        let mut zeroed = bytes;
        zeroed[3..7].fill(0);
        assert_eq!(crc32c_with_zeroed(&bytes, 3), crc32c(&zeroed));
    }

    #[test]
    fn iterates_tlvs_and_offsets() {
        let block = [
            0x01, 0x00, 0x02, b'h', b'2', 0x04, 0x00, 0x00, 0xE0, 0x00, 0x01, 9,
        ];
        let mut iter = TlvIter::new(&block);
        assert_eq!(
            iter.next_with_offset().unwrap().unwrap(),
            (
                3,
                TlvRef {
                    kind: PP2_TYPE_ALPN,
                    value: b"h2"
                }
            )
        );
        assert_eq!(
            iter.next_with_offset().unwrap().unwrap(),
            (
                8,
                TlvRef {
                    kind: PP2_TYPE_NOOP,
                    value: b""
                }
            )
        );
        assert_eq!(
            iter.next().unwrap().unwrap(),
            TlvRef {
                kind: 0xE0,
                value: &[9]
            }
        );
        assert!(iter.next().is_none());
    }

    #[test]
    fn truncated_tlvs_are_malformed() {
        for block in [&[0x01][..], &[0x01, 0x00], &[0x01, 0x00, 0x03, b'a', b'b']] {
            let mut iter = TlvIter::new(block);
            assert!(matches!(iter.next(), Some(Err(Error::Malformed(_)))));
            assert!(iter.next().is_none(), "stops after the error");
        }
    }

    #[test]
    fn ssl_round_trip() {
        let ssl = Ssl {
            client: PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN,
            verify: 0,
            tlvs: vec![
                Tlv::new(PP2_SUBTYPE_SSL_VERSION, "TLSv1.3"),
                Tlv::new(PP2_SUBTYPE_SSL_CN, "example.com"),
            ],
        };
        let value = ssl.to_value().unwrap();
        assert_eq!(&value[..8], &[0x03, 0, 0, 0, 0, 0x21, 0x00, 0x07]);
        let parsed = Ssl::parse(&value).unwrap();
        assert_eq!(parsed, ssl);
        assert_eq!(parsed.text(PP2_SUBTYPE_SSL_VERSION), Some("TLSv1.3"));
        assert_eq!(parsed.text(PP2_SUBTYPE_SSL_CIPHER), None);
    }

    #[test]
    fn ssl_too_short_is_malformed() {
        assert!(matches!(Ssl::parse(&[1, 0, 0]), Err(Error::Malformed(_))));
        assert!(matches!(
            Ssl::parse(&[1, 0, 0, 0, 0, 0x21, 0x00]),
            Err(Error::Malformed(_))
        ));
    }
}
