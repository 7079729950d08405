//! Fuzz target: the VRRPv3 receive path on arbitrary bytes never panics, and
//! every advert it accepts re-emits to bytes that parse back the same.
//!
//! The input is tried three ways: as a whole IPv4 packet (`ipv4::parse` then
//! the VRRP part), and as a bare VRRP message from a fixed IPv4 and a fixed
//! IPv6 source. Fixed sources make accepted inputs rare (the checksum must
//! match), so the round trip also runs on the input with its checksum fixed
//! up, which lets the fuzzer explore past the checksum check.

#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use mxgate_wire::vrrp::{self, ipv4, Packet, Repr};

const SRC_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const SRC_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));

fuzz_target!(|data: &[u8]| {
    if let Ok(datagram) = ipv4::parse(data) {
        assert!(datagram.payload.len() <= data.len());
        round_trip(
            datagram.payload,
            IpAddr::V4(datagram.src),
            IpAddr::V4(datagram.dst),
        );
    }
    let _ = vrrp::receive_ipv4(data, |_| true);

    for (src, dst) in [
        (SRC_V4, IpAddr::V4(vrrp::MULTICAST_V4)),
        (SRC_V6, IpAddr::V6(vrrp::MULTICAST_V6)),
    ] {
        round_trip(data, src, dst);
        // Same bytes with a correct checksum, to get past that check.
        if data.len() >= vrrp::HEADER_LEN {
            let mut fixed = data.to_vec();
            let mut packet = Packet::new_unchecked(&mut fixed[..]);
            packet.fill_checksum(src, dst);
            round_trip(&fixed, src, dst);
        }
    }
});

/// If `bytes` parse as an advert from `src` to `dst`, emitting the result
/// gives the same bytes (bar the reserved nibble) that parse to the same.
fn round_trip(bytes: &[u8], src: IpAddr, dst: IpAddr) {
    let Ok(packet) = Packet::new_checked(bytes) else {
        return;
    };
    // Every accessor is safe after new_checked.
    let _ = (
        packet.version(),
        packet.msg_type(),
        packet.vrid(),
        packet.priority(),
        packet.addr_count(),
        packet.reserved(),
        packet.max_adver_int(),
        packet.checksum(),
        packet.address_bytes().len(),
    );
    let Ok(repr) = Repr::parse(&packet, src, dst) else {
        return;
    };
    assert_eq!(repr.buffer_len(), bytes.len());
    let out = repr.to_bytes(src, dst).expect("a parsed advert re-emits");
    assert_eq!(out.len(), bytes.len());
    let again = Repr::parse(&Packet::new_checked(&out[..]).unwrap(), src, dst)
        .expect("a re-emitted advert parses");
    assert_eq!(again, repr);
    // Only the reserved nibble (and so the checksum) may differ.
    if packet.reserved() == 0 {
        assert_eq!(out, bytes);
    }
}
