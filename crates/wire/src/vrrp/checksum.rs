//! The VRRPv3 checksum (RFC 5798 §5.2.8): the 16-bit one's complement of the
//! one's complement sum (RFC 1071) of the whole VRRP message and an IP
//! pseudo-header, with the checksum field taken as zero.
//!
//! The pseudo-header is the one TCP and UDP use, with protocol / next header
//! 112:
//! - IPv4 (RFC 768/793 layout): source, destination, a zero byte, the
//!   protocol, and the 16-bit VRRP message length.
//! - IPv6 (RFC 8200 §8.1): source, destination, the 32-bit upper-layer
//!   length, three zero bytes, and the next header.
//!
//! VRRPv2 checksummed the message alone; v3 added the pseudo-header, for IPv4
//! too. The destination that goes in is the one on the wire: `224.0.0.18` /
//! `ff02::12` for multicast, the peer for unicast. (keepalived before 1.3.6
//! used the multicast group even for unicast; its `old_unicast_checksum`
//! option keeps that behaviour. It is not supported here.)
//!
//! This is written out on its own rather than shared with anything else in
//! the crate: it is a dozen lines, and the PROXY code uses CRC32c anyway.

use std::net::IpAddr;

use super::PROTOCOL;

/// Offset of the checksum field in the VRRP message; its two bytes are
/// summed as zero.
const CHECKSUM_AT: usize = 6;

/// Add `data` as big-endian 16-bit words to `sum`, padding an odd last byte
/// with zero. Skips the two bytes at `skip` (the checksum field) if given.
fn add_words(mut sum: u64, data: &[u8], skip: Option<usize>) -> u64 {
    for (i, chunk) in data.chunks(2).enumerate() {
        if skip == Some(i * 2) {
            continue;
        }
        let hi = u64::from(chunk[0]);
        let lo = chunk.get(1).copied().map_or(0, u64::from);
        sum += (hi << 8) | lo;
    }
    sum
}

/// Fold the carries of a one's complement sum into 16 bits.
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves at most 16 bits.
    sum as u16
}

/// The pseudo-header's contribution to the sum, or `None` when `src` and
/// `dst` are not of the same family.
fn pseudo_header(src: IpAddr, dst: IpAddr, len: usize) -> Option<u64> {
    // Lengths here are at most a few kilobytes (checked by the callers'
    // buffers); a longer slice is summed with its length truncated, which
    // only makes the checksum wrong, never panics.
    let sum = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let sum = add_words(0, &s.octets(), None);
            let sum = add_words(sum, &d.octets(), None);
            sum + u64::from(PROTOCOL) + (len as u64 & 0xffff)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let sum = add_words(0, &s.octets(), None);
            let sum = add_words(sum, &d.octets(), None);
            let len = len as u64 & 0xffff_ffff;
            sum + (len >> 16) + (len & 0xffff) + u64::from(PROTOCOL)
        }
        _ => return None,
    };
    Some(sum)
}

/// The checksum `message` (a whole VRRP message, checksum field included,
/// its value ignored) should carry when sent from `src` to `dst`; `None`
/// when the two addresses differ in family.
pub fn compute(src: IpAddr, dst: IpAddr, message: &[u8]) -> Option<u16> {
    let sum = pseudo_header(src, dst, message.len())?;
    Some(!fold(add_words(sum, message, Some(CHECKSUM_AT))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 §3 example: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    #[test]
    fn rfc1071_example_sum() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add_words(0, &data, None)), 0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(
            fold(add_words(0, &[0x12, 0x34, 0x56], None)),
            0x1234 + 0x5600
        );
    }

    #[test]
    fn mixed_families_have_no_checksum() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(compute(v4, v6, &[0; 8]), None);
        assert_eq!(compute(v6, v4, &[0; 8]), None);
    }
}
