//! The VRRPv3 message (RFC 5798 §5.1): a checked [`Packet`] view over the
//! bytes after the IP header, and a [`Repr`] to parse into and emit from.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |(rsvd) |     Max Adver Int     |          Checksum             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       IPvX Address(es)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The message does not say whether its addresses are IPv4 or IPv6: the IP
//! header does. So [`Packet::new_checked`] only checks the fixed 8 bytes,
//! and [`Repr::parse`] takes the IP source and destination, which give the
//! address size and feed the checksum's pseudo-header.
//!
//! [`Repr::parse`] applies, in this order: version 3, type 1, the source and
//! destination of one family, the address list exactly `count` addresses of
//! that family long, then the checksum. The reserved nibble is ignored, as
//! §5.2.6 asks. Deliberate leniencies: a count of 0 is accepted (§5.2.5 says
//! the minimum is 1, but keepalived sends 0 when every VIP is in
//! `virtual_ipaddress_excluded`), and an IPv6 list whose first address is not
//! link-local (a sender's MUST in §5.2.9) is not refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{checksum, Error, HEADER_LEN, TYPE_ADVERTISEMENT, VERSION};

/// Largest value of the 12-bit Max Adver Int field, in centiseconds.
pub const MAX_ADVER_INT_MAX: u16 = 0x0fff;

mod field {
    //! Byte offsets in a VRRPv3 message.

    pub type Field = core::ops::Range<usize>;

    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    pub const RSVD_MAX_ADVER_INT: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
    pub const ADDRESSES: usize = 8;
}

/// Bytes one address takes in a message sent over `ip`'s family.
fn address_size(ip: IpAddr) -> usize {
    match ip {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 16,
    }
}

/// A read/write view of a VRRP message: the whole IP payload, nothing after.
///
/// After [`Packet::new_checked`] succeeds no accessor panics; addresses are
/// read with [`Packet::address_bytes`], whose length [`Repr::parse`] checks.
/// On a view from [`Packet::new_unchecked`] accessors may panic if the
/// buffer is shorter than [`HEADER_LEN`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without any checks (for building a message in place).
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

    /// Check that the fixed part of the header is there.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the buffer is shorter than [`HEADER_LEN`].
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Return the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version nibble (3 for VRRPv3, 2 for VRRPv2).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] >> 4
    }

    /// The type nibble (1, [`TYPE_ADVERTISEMENT`], is the only one defined).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TYPE] & 0x0f
    }

    /// The Virtual Router ID.
    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    /// The sender's priority: 255 for the address owner, 0 for a master
    /// that is leaving.
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    /// The Count IPvX Addr field.
    pub fn addr_count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// The reserved nibble (sent as zero, ignored on receipt).
    pub fn reserved(&self) -> u8 {
        self.buffer.as_ref()[field::RSVD_MAX_ADVER_INT.start] >> 4
    }

    /// The 12-bit Max Adver Int, in centiseconds.
    pub fn max_adver_int(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::RSVD_MAX_ADVER_INT];
        u16::from_be_bytes([b[0], b[1]]) & MAX_ADVER_INT_MAX
    }

    /// The checksum field as received.
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Everything after the fixed header: the address list, if the length is
    /// consistent with the count.
    pub fn address_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[field::ADDRESSES..]
    }

    /// The checksum this message should carry from `src` to `dst`, or `None`
    /// if they differ in family.
    pub fn compute_checksum(&self, src: IpAddr, dst: IpAddr) -> Option<u16> {
        checksum::compute(src, dst, self.buffer.as_ref())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Write the version and type nibbles.
    pub fn set_version_type(&mut self, version: u8, msg_type: u8) {
        self.buffer.as_mut()[field::VER_TYPE] = (version << 4) | (msg_type & 0x0f);
    }

    /// Write the Virtual Router ID.
    pub fn set_vrid(&mut self, vrid: u8) {
        self.buffer.as_mut()[field::VRID] = vrid;
    }

    /// Write the priority.
    pub fn set_priority(&mut self, priority: u8) {
        self.buffer.as_mut()[field::PRIORITY] = priority;
    }

    /// Write the Count IPvX Addr field.
    pub fn set_addr_count(&mut self, count: u8) {
        self.buffer.as_mut()[field::COUNT] = count;
    }

    /// Write Max Adver Int (low 12 bits of `cs`) with the reserved nibble zero.
    pub fn set_max_adver_int(&mut self, cs: u16) {
        self.buffer.as_mut()[field::RSVD_MAX_ADVER_INT]
            .copy_from_slice(&(cs & MAX_ADVER_INT_MAX).to_be_bytes());
    }

    /// Write the checksum field.
    pub fn set_checksum(&mut self, checksum: u16) {
        self.buffer.as_mut()[field::CHECKSUM].copy_from_slice(&checksum.to_be_bytes());
    }

    /// Everything after the fixed header, for writing addresses.
    pub fn address_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::ADDRESSES..]
    }

    /// Compute and write the checksum for `src` → `dst`; does nothing if they
    /// differ in family.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        if let Some(sum) = self.compute_checksum(src, dst) {
            self.set_checksum(sum);
        }
    }
}

/// A decoded VRRPv3 ADVERTISEMENT.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Repr {
    /// The Virtual Router ID (1..=255 when configured; 0 is never valid but
    /// is decoded as is: the VRID check belongs to the receiver).
    pub vrid: u8,
    /// The sender's priority for this virtual router.
    pub priority: u8,
    /// Max Adver Int: the time between adverts in centiseconds (12 bits).
    pub max_adver_interval_cs: u16,
    /// The virtual addresses, in wire order; all of the IP header's family.
    pub addresses: Vec<IpAddr>,
}

impl Repr {
    /// Decode a checked packet received from `src` (the IP source) sent to
    /// `dst` (the IP destination), applying the rules in the module doc.
    ///
    /// # Errors
    /// In the order checked: [`Error::BadVersion`], [`Error::BadType`],
    /// [`Error::FamilyMismatch`] (the endpoints differ in family, or the
    /// list has the other family's length), [`Error::CountMismatch`],
    /// [`Error::BadChecksum`].
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Packet<T>,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<Repr, Error> {
        if packet.version() != VERSION {
            return Err(Error::BadVersion(packet.version()));
        }
        if packet.msg_type() != TYPE_ADVERTISEMENT {
            return Err(Error::BadType(packet.msg_type()));
        }
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(Error::FamilyMismatch);
        }
        let count = packet.addr_count();
        let bytes = packet.address_bytes();
        let size = address_size(src);
        if bytes.len() != usize::from(count) * size {
            let other = 20 - size;
            return Err(if count > 0 && bytes.len() == usize::from(count) * other {
                Error::FamilyMismatch
            } else {
                Error::CountMismatch {
                    count,
                    len: bytes.len(),
                }
            });
        }
        let computed = packet.compute_checksum(src, dst);
        if computed != Some(packet.checksum()) {
            return Err(Error::BadChecksum {
                received: packet.checksum(),
                computed: computed.unwrap_or(0),
            });
        }
        let addresses = bytes
            .chunks_exact(size)
            .map(|chunk| match <[u8; 4]>::try_from(chunk) {
                Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
                Err(_) => {
                    let mut v6 = [0; 16];
                    v6.copy_from_slice(chunk);
                    IpAddr::V6(Ipv6Addr::from(v6))
                }
            })
            .collect();
        Ok(Repr {
            vrid: packet.vrid(),
            priority: packet.priority(),
            max_adver_interval_cs: packet.max_adver_int(),
            addresses,
        })
    }

    /// Bytes [`Repr::emit`] writes: 8 plus 4 per IPv4 or 16 per IPv6 address.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + self
                .addresses
                .iter()
                .map(|&a| address_size(a))
                .sum::<usize>()
    }

    /// Write this advert at the start of `packet`'s buffer, checksummed for
    /// `src` → `dst`. Bytes after [`Repr::buffer_len`] are not touched (and
    /// must not be sent: the checksum does not cover them).
    ///
    /// # Errors
    /// [`Error::CannotEmit`] if the interval does not fit 12 bits, there are
    /// more than 255 addresses, `src`, `dst` and the addresses are not all of
    /// one family, or the buffer is shorter than [`Repr::buffer_len`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<(), Error> {
        if self.max_adver_interval_cs > MAX_ADVER_INT_MAX {
            return Err(Error::CannotEmit("Max Adver Int does not fit 12 bits"));
        }
        let Ok(count) = u8::try_from(self.addresses.len()) else {
            return Err(Error::CannotEmit("more than 255 addresses"));
        };
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(Error::CannotEmit("source and destination differ in family"));
        }
        if self.addresses.iter().any(|a| a.is_ipv4() != src.is_ipv4()) {
            return Err(Error::CannotEmit(
                "an address is not of the IP header's family",
            ));
        }
        let len = self.buffer_len();
        let Some(buf) = packet.buffer.as_mut().get_mut(..len) else {
            return Err(Error::CannotEmit("buffer shorter than buffer_len()"));
        };
        let mut out = Packet::new_unchecked(buf);
        out.set_version_type(VERSION, TYPE_ADVERTISEMENT);
        out.set_vrid(self.vrid);
        out.set_priority(self.priority);
        out.set_addr_count(count);
        out.set_max_adver_int(self.max_adver_interval_cs);
        out.set_checksum(0);
        let mut rest = out.address_bytes_mut();
        for addr in &self.addresses {
            let (head, tail) = rest.split_at_mut(address_size(*addr));
            match addr {
                IpAddr::V4(a) => head.copy_from_slice(&a.octets()),
                IpAddr::V6(a) => head.copy_from_slice(&a.octets()),
            }
            rest = tail;
        }
        out.fill_checksum(src, dst);
        Ok(())
    }

    /// The advert as a new byte vector, checksummed for `src` → `dst`.
    ///
    /// # Errors
    /// As [`Repr::emit`].
    pub fn to_bytes(&self, src: IpAddr, dst: IpAddr) -> Result<Vec<u8>, Error> {
        let mut buf = vec![0; self.buffer_len()];
        self.emit(&mut Packet::new_unchecked(&mut buf), src, dst)?;
        Ok(buf)
    }
}
