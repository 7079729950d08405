//! VRRPv3 codec tests against two hand-built adverts.
//!
//! Where the bytes come from: they are not a pcap dump but were laid out
//! field by field from RFC 5798 §5.1 to match what keepalived 2.x sends for
//!
//! ```text
//! vrrp_instance VI_1 { version 3  virtual_router_id 51  priority 100
//!                      advert_int 1  virtual_ipaddress { 192.168.1.10 } }
//! ```
//!
//! from 192.168.1.2: IPv4 TOS 0xc0, TTL 255, protocol 112, to 224.0.0.18.
//! The VRRP checksum was computed by hand (and is recomputed below by
//! [`reference_checksum`], written apart from the crate's code):
//!
//! ```text
//! pseudo-header  c0a8 + 0102 + e000 + 0012 + 0070 (0, proto 112) + 000c (len 12)
//! message        3133 + 6401 + 0064 + 0000 (checksum as 0) + c0a8 + 010a
//! sum = 0x2f982 → fold f982 + 2 = f984 → complement = 067b
//! ```
//!
//! The IPv4 header checksum (f9a2) was computed the same way over the 20
//! header bytes; the codec does not check it (the kernel does).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

/// A whole IPv4 packet: 20-byte header, then the 12-byte VRRPv3 advert.
static ADVERT_V4: [u8; 32] = [
    0x45, 0xc0, 0x00, 0x20, // version 4, IHL 5, TOS 0xc0, total length 32
    0x1f, 0x4e, 0x00, 0x00, // identification, no flags, offset 0
    0xff, 0x70, 0xf9, 0xa2, // TTL 255, protocol 112, header checksum
    0xc0, 0xa8, 0x01, 0x02, // source 192.168.1.2
    0xe0, 0x00, 0x00, 0x12, // destination 224.0.0.18
    0x31, // version 3, type 1 (ADVERTISEMENT)
    0x33, // VRID 51
    0x64, // priority 100
    0x01, // one address
    0x00, 0x64, // reserved 0, Max Adver Int 100 cs
    0x06, 0x7b, // checksum
    0xc0, 0xa8, 0x01, 0x0a, // 192.168.1.10
];

/// The VRRP part of [`ADVERT_V4`].
fn vrrp_v4() -> &'static [u8] {
    &ADVERT_V4[20..]
}

const SRC_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 2);

/// VRRPv3 over IPv6, VRID 51, priority 100, 100 cs, from fe80::2 to
/// ff02::12, with the link-local VIP first as §5.2.9 requires. Checksum 3fdc
/// over the RFC 8200 §8.1 pseudo-header (length 40, next header 112).
static ADVERT_V6: [u8; 40] = [
    0x31, 0x33, 0x64, 0x02, // v3 advert, VRID 51, priority 100, two addresses
    0x00, 0x64, 0x3f, 0xdc, // 100 cs, checksum
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, // fe80::10
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, // 2001:db8::10
];

const SRC_V6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);

fn v4(src: Ipv4Addr) -> (IpAddr, IpAddr) {
    (IpAddr::V4(src), IpAddr::V4(MULTICAST_V4))
}

fn v6() -> (IpAddr, IpAddr) {
    (IpAddr::V6(SRC_V6), IpAddr::V6(MULTICAST_V6))
}

fn repr_v4() -> Repr {
    Repr {
        vrid: 51,
        priority: 100,
        max_adver_interval_cs: 100,
        addresses: vec!["192.168.1.10".parse().unwrap()],
    }
}

fn repr_v6() -> Repr {
    Repr {
        vrid: 51,
        priority: 100,
        max_adver_interval_cs: 100,
        addresses: vec!["fe80::10".parse().unwrap(), "2001:db8::10".parse().unwrap()],
    }
}

/// RFC 1071 over `pseudo` followed by `message` with its checksum zeroed;
/// deliberately naive and independent of `checksum.rs`.
fn reference_checksum(pseudo: &[u8], message: &[u8]) -> u16 {
    let mut all = pseudo.to_vec();
    all.extend_from_slice(message);
    all[pseudo.len() + 6] = 0;
    all[pseudo.len() + 7] = 0;
    if all.len() % 2 == 1 {
        all.push(0);
    }
    let mut sum: u32 = all
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn parse(bytes: &[u8], (src, dst): (IpAddr, IpAddr)) -> Result<Repr, Error> {
    Repr::parse(&Packet::new_checked(bytes)?, src, dst)
}

/// A copy of the IPv4 advert's VRRP bytes with the checksum fixed up after
/// `edit`, so that the check under test is the one that fails.
fn edited_v4(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut bytes = vrrp_v4().to_vec();
    edit(&mut bytes);
    let (src, dst) = v4(SRC_V4);
    let sum = checksum::compute(src, dst, &bytes).unwrap();
    bytes[6..8].copy_from_slice(&sum.to_be_bytes());
    bytes
}

#[test]
fn hard_coded_checksums_are_right() {
    let pseudo_v4 = [
        0xc0, 0xa8, 0x01, 0x02, 0xe0, 0x00, 0x00, 0x12, 0x00, 112, 0x00, 12,
    ];
    assert_eq!(reference_checksum(&pseudo_v4, vrrp_v4()), 0x067b);
    let mut pseudo_v6 = SRC_V6.octets().to_vec();
    pseudo_v6.extend_from_slice(&MULTICAST_V6.octets());
    pseudo_v6.extend_from_slice(&[0, 0, 0, 40, 0, 0, 0, 112]);
    assert_eq!(reference_checksum(&pseudo_v6, &ADVERT_V6), 0x3fdc);
    // The IPv4 header checksum: summing a correct header gives ffff.
    let header_sum: u32 = ADVERT_V4[..20]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    assert_eq!((header_sum & 0xffff) + (header_sum >> 16), 0xffff);
}

#[test]
fn test_deconstruct() {
    let packet = Packet::new_checked(vrrp_v4()).unwrap();
    assert_eq!(packet.version(), 3);
    assert_eq!(packet.msg_type(), TYPE_ADVERTISEMENT);
    assert_eq!(packet.vrid(), 51);
    assert_eq!(packet.priority(), 100);
    assert_eq!(packet.addr_count(), 1);
    assert_eq!(packet.reserved(), 0);
    assert_eq!(packet.max_adver_int(), 100);
    assert_eq!(packet.checksum(), 0x067b);
    assert_eq!(packet.address_bytes(), &[192, 168, 1, 10]);
    let (src, dst) = v4(SRC_V4);
    assert_eq!(packet.compute_checksum(src, dst), Some(0x067b));

    let packet = Packet::new_checked(&ADVERT_V6[..]).unwrap();
    assert_eq!(packet.addr_count(), 2);
    assert_eq!(packet.checksum(), 0x3fdc);
    assert_eq!(packet.address_bytes().len(), 32);
}

#[test]
fn test_construct() {
    let mut bytes = [0xa5u8; 12];
    let mut packet = Packet::new_unchecked(&mut bytes[..]);
    packet.set_version_type(VERSION, TYPE_ADVERTISEMENT);
    packet.set_vrid(51);
    packet.set_priority(100);
    packet.set_addr_count(1);
    packet.set_max_adver_int(100);
    packet
        .address_bytes_mut()
        .copy_from_slice(&[192, 168, 1, 10]);
    let (src, dst) = v4(SRC_V4);
    packet.fill_checksum(src, dst);
    assert_eq!(&bytes[..], vrrp_v4());
}

#[test]
fn test_parse() {
    assert_eq!(parse(vrrp_v4(), v4(SRC_V4)), Ok(repr_v4()));
    assert_eq!(parse(&ADVERT_V6, v6()), Ok(repr_v6()));
}

#[test]
fn test_emit() {
    let (src, dst) = v4(SRC_V4);
    let repr = repr_v4();
    assert_eq!(repr.buffer_len(), 12);
    let mut bytes = [0xa5u8; 12];
    repr.emit(&mut Packet::new_unchecked(&mut bytes[..]), src, dst)
        .unwrap();
    assert_eq!(&bytes[..], vrrp_v4());

    let (src, dst) = v6();
    assert_eq!(repr_v6().buffer_len(), 40);
    assert_eq!(repr_v6().to_bytes(src, dst).unwrap(), ADVERT_V6);
}

#[test]
fn receive_whole_ipv4_packet() {
    let got = receive_ipv4(&ADVERT_V4, |vrid| vrid == 51).unwrap();
    assert_eq!(got.src, IpAddr::V4(SRC_V4));
    assert_eq!(got.dst, IpAddr::V4(MULTICAST_V4));
    assert_eq!(got.repr, repr_v4());

    // Link-layer padding after the total length is not part of the advert.
    let mut padded = ADVERT_V4.to_vec();
    padded.extend_from_slice(&[0; 14]);
    assert_eq!(receive_ipv4(&padded, |_| true).unwrap().repr, repr_v4());
}

#[test]
fn receive_ipv6_payload() {
    let got = receive_ipv6(&ADVERT_V6, SRC_V6, MULTICAST_V6, 255, |v| v == 51).unwrap();
    assert_eq!(got.repr, repr_v6());
    assert_eq!(
        receive_ipv6(&ADVERT_V6, SRC_V6, MULTICAST_V6, 64, |_| true),
        Err(Error::BadTtl(64))
    );
}

#[test]
fn ipv4_parse_with_options() {
    // IHL 6: one word of options (a NOP-padded empty option list).
    let mut bytes = ADVERT_V4[..20].to_vec();
    bytes[0] = 0x46;
    bytes[3] = 36;
    bytes.extend_from_slice(&[1, 1, 1, 0]);
    bytes.extend_from_slice(vrrp_v4());
    let got = ipv4::parse(&bytes).unwrap();
    assert_eq!(got.payload, vrrp_v4());
    assert_eq!(got.ttl, 255);
    assert_eq!(got.src, SRC_V4);
    assert_eq!(got.dst, MULTICAST_V4);
}

#[test]
fn priority_zero_and_empty_list_parse() {
    let bytes = edited_v4(|b| {
        b[2] = PRIORITY_RELEASE;
        b[3] = 0;
        b.truncate(8);
    });
    let repr = parse(&bytes, v4(SRC_V4)).unwrap();
    assert_eq!(repr.priority, 0);
    assert!(repr.addresses.is_empty());
}

#[test]
fn reserved_nibble_is_ignored() {
    let bytes = edited_v4(|b| b[4] |= 0xf0);
    assert_eq!(parse(&bytes, v4(SRC_V4)), Ok(repr_v4()));
}

#[test]
fn reject_truncated() {
    assert_eq!(Packet::new_checked(&vrrp_v4()[..7]), Err(Error::Truncated));
    assert_eq!(Packet::new_checked(&[][..]), Err(Error::Truncated));
}

#[test]
fn reject_version_2() {
    let bytes = edited_v4(|b| b[0] = 0x21);
    assert_eq!(parse(&bytes, v4(SRC_V4)), Err(Error::BadVersion(2)));
}

#[test]
fn reject_unknown_type() {
    let bytes = edited_v4(|b| b[0] = 0x32);
    assert_eq!(parse(&bytes, v4(SRC_V4)), Err(Error::BadType(2)));
}

#[test]
fn reject_bad_checksum() {
    let mut bytes = vrrp_v4().to_vec();
    bytes[2] = 101; // priority changed in flight: the word 6401 became 6501
    assert_eq!(
        parse(&bytes, v4(SRC_V4)),
        Err(Error::BadChecksum {
            received: 0x067b,
            computed: 0x057b,
        })
    );
    // The pseudo-header counts: the same bytes from another source fail.
    assert!(matches!(
        parse(vrrp_v4(), v4(Ipv4Addr::new(192, 168, 1, 3))),
        Err(Error::BadChecksum { .. })
    ));
}

#[test]
fn reject_count_mismatch() {
    let two = edited_v4(|b| b[3] = 2);
    assert_eq!(
        parse(&two, v4(SRC_V4)),
        Err(Error::CountMismatch { count: 2, len: 4 })
    );
    let trailing = edited_v4(|b| b.push(0));
    assert_eq!(
        parse(&trailing, v4(SRC_V4)),
        Err(Error::CountMismatch { count: 1, len: 5 })
    );
}

#[test]
fn reject_family_mismatch() {
    // The IPv6 advert's bytes arriving in an IPv4 packet.
    let mut bytes = ADVERT_V6.to_vec();
    bytes[3] = 2;
    assert_eq!(parse(&bytes, v4(SRC_V4)), Err(Error::FamilyMismatch));
    // The IPv4 advert's bytes arriving in an IPv6 packet.
    assert_eq!(parse(vrrp_v4(), v6()), Err(Error::FamilyMismatch));
    // Source and destination of different families.
    let mixed = (IpAddr::V4(SRC_V4), IpAddr::V6(MULTICAST_V6));
    assert_eq!(parse(vrrp_v4(), mixed), Err(Error::FamilyMismatch));
}

#[test]
fn reject_ttl_and_unknown_vrid() {
    assert_eq!(check_receipt(255, 51, true), Ok(()));
    assert_eq!(check_receipt(254, 51, true), Err(Error::BadTtl(254)));
    assert_eq!(check_receipt(255, 51, false), Err(Error::UnknownVrid(51)));
    let mut routed = ADVERT_V4;
    routed[8] = 254;
    assert_eq!(receive_ipv4(&routed, |_| true), Err(Error::BadTtl(254)));
    assert_eq!(
        receive_ipv4(&ADVERT_V4, |vrid| vrid == 52),
        Err(Error::UnknownVrid(51))
    );
}

#[test]
fn reject_bad_ipv4_headers() {
    let with = |edit: fn(&mut [u8; 32])| {
        let mut bytes = ADVERT_V4;
        edit(&mut bytes);
        ipv4::parse(&bytes).map(|d| d.payload.len())
    };
    assert_eq!(ipv4::parse(&ADVERT_V4[..19]), Err(Error::Ipv4Truncated));
    assert_eq!(ipv4::parse(&ADVERT_V4[..31]), Err(Error::Ipv4Truncated));
    assert_eq!(with(|b| b[0] = 0x65), Err(Error::NotIpv4(6)));
    assert_eq!(with(|b| b[0] = 0x44), Err(Error::BadIhl(4)));
    assert_eq!(with(|b| b[0] = 0x4f), Err(Error::BadIhl(15)));
    assert_eq!(with(|b| b[3] = 19), Err(Error::BadTotalLength(19)));
    assert_eq!(with(|b| b[6] = 0x20), Err(Error::Ipv4Fragment));
    assert_eq!(with(|b| b[7] = 0x01), Err(Error::Ipv4Fragment));
    assert_eq!(with(|b| b[9] = 17), Err(Error::NotVrrp(17)));
    // Don't Fragment is fine.
    assert_eq!(with(|b| b[6] = 0x40), Ok(12));
}

#[test]
fn emit_refuses_what_the_format_cannot_carry() {
    let (src, dst) = v4(SRC_V4);
    let mut repr = repr_v4();
    repr.max_adver_interval_cs = 4096;
    assert!(matches!(repr.to_bytes(src, dst), Err(Error::CannotEmit(_))));

    let mut repr = repr_v4();
    repr.addresses = vec![IpAddr::V4(SRC_V4); 256];
    assert!(matches!(repr.to_bytes(src, dst), Err(Error::CannotEmit(_))));

    assert!(matches!(
        repr_v6().to_bytes(src, dst),
        Err(Error::CannotEmit(_))
    ));
    let mixed = IpAddr::V6(MULTICAST_V6);
    assert!(matches!(
        repr_v4().to_bytes(src, mixed),
        Err(Error::CannotEmit(_))
    ));

    let mut short = [0u8; 11];
    assert!(matches!(
        repr_v4().emit(&mut Packet::new_unchecked(&mut short[..]), src, dst),
        Err(Error::CannotEmit(_))
    ));
}

#[test]
fn labels_are_distinct() {
    let all = [
        Error::Truncated,
        Error::CountMismatch { count: 0, len: 0 },
        Error::FamilyMismatch,
        Error::BadChecksum {
            received: 0,
            computed: 0,
        },
        Error::BadTtl(0),
        Error::UnknownVrid(0),
        Error::BadVersion(0),
        Error::BadType(0),
        Error::Ipv4Truncated,
        Error::NotIpv4(0),
        Error::BadIhl(0),
        Error::BadTotalLength(0),
        Error::Ipv4Fragment,
        Error::NotVrrp(0),
        Error::CannotEmit(""),
    ];
    let labels: std::collections::HashSet<_> = all.iter().map(Error::label).collect();
    assert_eq!(labels.len(), all.len());
    assert!(labels.iter().all(|l| l
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')));
}
