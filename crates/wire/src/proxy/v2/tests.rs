//! v2 tests against hand-built frames laid out as the spec's section 2.2 says.

use super::*;
use crate::proxy::tlv::{crc32c, PP2_TYPE_ALPN, PP2_TYPE_AUTHORITY, PP2_TYPE_NOOP};

const SIG: [u8; 12] = [
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
];

/// PROXY, TCP over IPv4, 192.168.0.1:56324 -> 192.168.0.11:443.
static IPV4_FRAME: [u8; 28] = [
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
    0x21, // version 2, PROXY
    0x11, // AF_INET, STREAM
    0x00, 0x0c, // 12 bytes follow
    0xc0, 0xa8, 0x00, 0x01, // 192.168.0.1
    0xc0, 0xa8, 0x00, 0x0b, // 192.168.0.11
    0xdc, 0x04, // 56324
    0x01, 0xbb, // 443
];

/// PROXY, TCP over IPv6, [2001:db8::1]:56324 -> [2001:db8::11]:443.
static IPV6_FRAME: [u8; 52] = [
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
    0x21, // version 2, PROXY
    0x21, // AF_INET6, STREAM
    0x00, 0x24, // 36 bytes follow
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // 2001:db8::1
    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11, // 2001:db8::11
    0xdc, 0x04, // 56324
    0x01, 0xbb, // 443
];

fn ipv4_repr() -> Repr {
    Repr {
        command: Command::Proxy,
        addresses: Addresses::Tcp4 {
            src: "192.168.0.1:56324".parse().unwrap(),
            dst: "192.168.0.11:443".parse().unwrap(),
        },
        tlvs: Vec::new(),
    }
}

fn ipv6_repr() -> Repr {
    Repr {
        command: Command::Proxy,
        addresses: Addresses::Tcp6 {
            src: "[2001:db8::1]:56324".parse().unwrap(),
            dst: "[2001:db8::11]:443".parse().unwrap(),
        },
        tlvs: Vec::new(),
    }
}

/// A header with the given version/command, family/protocol and payload.
fn frame(ver_cmd: u8, fam: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = SIG.to_vec();
    out.push(ver_cmd);
    out.push(fam);
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn parse(bytes: &[u8]) -> Result<Repr, Error> {
    Repr::parse(&Packet::new_checked(bytes)?)
}

#[test]
fn signature_constant_matches_spec() {
    assert_eq!(SIGNATURE, SIG);
}

#[test]
fn test_deconstruct() {
    let packet = Packet::new_checked(&IPV4_FRAME[..]).unwrap();
    assert_eq!(packet.signature(), &SIG);
    assert_eq!(packet.version(), 2);
    assert_eq!(packet.command(), CMD_PROXY);
    assert_eq!(packet.family(), AF_INET);
    assert_eq!(packet.protocol(), PROTO_STREAM);
    assert_eq!(packet.family_protocol(), 0x11);
    assert_eq!(packet.payload_len(), 12);
    assert_eq!(packet.header_len(), 28);
    assert_eq!(packet.header(), &IPV4_FRAME);
    assert_eq!(
        packet.ipv4_addresses(),
        Some((
            "192.168.0.1:56324".parse().unwrap(),
            "192.168.0.11:443".parse().unwrap()
        ))
    );
    assert!(packet.tlv_block().is_empty());
    assert!(packet.tlvs().next().is_none());

    let packet = Packet::new_checked(&IPV6_FRAME[..]).unwrap();
    assert_eq!(packet.family(), AF_INET6);
    assert_eq!(packet.payload_len(), 36);
    assert_eq!(
        packet.ipv6_addresses(),
        Some((
            "[2001:db8::1]:56324".parse().unwrap(),
            "[2001:db8::11]:443".parse().unwrap()
        ))
    );
}

#[test]
fn test_construct() {
    let mut bytes = vec![0xff; 28];
    let mut packet = Packet::new_unchecked(&mut bytes);
    packet.set_signature();
    packet.set_version_command(VERSION, CMD_PROXY);
    packet.set_family_protocol(AF_INET, PROTO_STREAM);
    packet.set_payload_len(12);
    packet.set_ipv4_addresses(
        "192.168.0.1:56324".parse().unwrap(),
        "192.168.0.11:443".parse().unwrap(),
    );
    assert_eq!(&packet.into_inner()[..], &IPV4_FRAME[..]);

    let mut bytes = vec![0xff; 52];
    let mut packet = Packet::new_unchecked(&mut bytes);
    packet.set_signature();
    packet.set_version_command(VERSION, CMD_PROXY);
    packet.set_family_protocol(AF_INET6, PROTO_STREAM);
    packet.set_payload_len(36);
    packet.set_ipv6_addresses(
        "[2001:db8::1]:56324".parse().unwrap(),
        "[2001:db8::11]:443".parse().unwrap(),
    );
    assert_eq!(&packet.into_inner()[..], &IPV6_FRAME[..]);
}

#[test]
fn test_parse() {
    assert_eq!(parse(&IPV4_FRAME), Ok(ipv4_repr()));
    assert_eq!(parse(&IPV6_FRAME), Ok(ipv6_repr()));
}

#[test]
fn test_emit() {
    for (repr, frame) in [
        (ipv4_repr(), &IPV4_FRAME[..]),
        (ipv6_repr(), &IPV6_FRAME[..]),
    ] {
        assert_eq!(repr.buffer_len(), frame.len());
        let mut bytes = vec![0xaa; frame.len() + 1];
        repr.emit(&mut Packet::new_unchecked(&mut bytes)).unwrap();
        assert_eq!(&bytes[..frame.len()], frame);
        assert_eq!(bytes[frame.len()], 0xaa, "nothing written past the header");
        assert_eq!(repr.to_bytes().unwrap(), frame);
    }
}

#[test]
fn bytes_after_the_header_are_left_alone() {
    let mut bytes = IPV4_FRAME.to_vec();
    bytes.extend_from_slice(b"EHLO x\r\n");
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(packet.header_len(), 28);
    assert_eq!(Repr::parse(&packet), Ok(ipv4_repr()));
}

#[test]
fn every_prefix_is_truncated() {
    for frame in [&IPV4_FRAME[..], &IPV6_FRAME[..]] {
        for len in 0..frame.len() {
            assert_eq!(
                Packet::new_checked(&frame[..len]).err(),
                Some(Error::Truncated),
                "prefix of {len} bytes"
            );
        }
    }
}

#[test]
fn bad_signature_or_version() {
    let mut bytes = IPV4_FRAME;
    bytes[7] = b'q';
    assert_eq!(parse(&bytes), Err(Error::NotProxy));
    assert_eq!(
        Packet::new_checked(&bytes[..8]).err(),
        Some(Error::NotProxy)
    );

    let mut bytes = IPV4_FRAME;
    bytes[12] = 0x11; // version 1 in the version nibble
    assert_eq!(parse(&bytes), Err(Error::UnsupportedVersion(1)));
    // Refused as soon as the version byte arrives.
    assert_eq!(
        Packet::new_checked(&bytes[..13]).err(),
        Some(Error::UnsupportedVersion(1))
    );
    bytes[12] = 0x31;
    assert_eq!(parse(&bytes), Err(Error::UnsupportedVersion(3)));
}

#[test]
fn unknown_command_is_refused() {
    let mut bytes = IPV4_FRAME;
    bytes[12] = 0x22;
    assert_eq!(parse(&bytes), Err(Error::UnsupportedCommand(2)));
    bytes[12] = 0x2f;
    assert_eq!(parse(&bytes), Err(Error::UnsupportedCommand(15)));
}

#[test]
fn local_ignores_family_addresses_and_tlvs() {
    let local = Repr {
        command: Command::Local,
        addresses: Addresses::Unspecified,
        tlvs: Vec::new(),
    };
    let mut bytes = IPV4_FRAME;
    bytes[12] = 0x20;
    assert_eq!(parse(&bytes), Ok(local.clone()));
    // Even an invalid family, a short block or a truncated TLV.
    assert_eq!(parse(&frame(0x20, 0xff, &[1, 2, 3])), Ok(local.clone()));
    assert_eq!(parse(&frame(0x20, 0x21, &[0; 12])), Ok(local.clone()));
    let mut junk = IPV4_FRAME[16..].to_vec();
    junk.extend_from_slice(&[PP2_TYPE_ALPN, 0x00]);
    assert_eq!(parse(&frame(0x20, 0x11, &junk)), Ok(local.clone()));
    // The usual health-check form.
    assert_eq!(parse(&frame(0x20, 0x00, &[])), Ok(local.clone()));
    assert_eq!(local.to_bytes().unwrap(), frame(0x20, 0x00, &[]));
    // LOCAL is emitted without addresses even if some are given.
    let with_addresses = Repr {
        command: Command::Local,
        ..ipv4_repr()
    };
    assert_eq!(with_addresses.to_bytes().unwrap(), frame(0x20, 0x00, &[]));
}

#[test]
fn length_too_short_for_the_family() {
    let short = Err(Error::Malformed("length too short for the address family"));
    assert_eq!(parse(&frame(0x21, 0x11, &IPV4_FRAME[16..24])), short);
    assert_eq!(parse(&frame(0x21, 0x11, &[])), short);
    assert_eq!(parse(&frame(0x21, 0x21, &IPV4_FRAME[16..])), short);
    assert_eq!(parse(&frame(0x21, 0x12, &[0; 11])), short);
    assert_eq!(parse(&frame(0x21, 0x31, &[0; 215])), short);
    // The view itself stays safe on such a header.
    let bytes = frame(0x21, 0x21, &IPV4_FRAME[16..]);
    let packet = Packet::new_checked(&bytes[..]).unwrap();
    assert_eq!(packet.ipv6_addresses(), None);
    assert!(packet.ipv4_addresses().is_some());
    assert!(packet.tlv_block().is_empty());
    assert!(packet.tlvs().next().is_none());
}

#[test]
fn invalid_family_or_protocol_is_refused() {
    for fam in [0x41, 0xf1, 0x13, 0x1f, 0x03] {
        assert!(
            matches!(parse(&frame(0x21, fam, &[0; 40])), Err(Error::Malformed(_))),
            "{fam:#04x}"
        );
    }
}

#[test]
fn unspecified_and_undecoded_families_are_kept() {
    let proxy = |addresses| Repr {
        command: Command::Proxy,
        addresses,
        tlvs: Vec::new(),
    };
    // AF_UNSPEC: the block is ignored, whatever is in it.
    assert_eq!(
        parse(&frame(0x21, 0x00, &[1, 2])),
        Ok(proxy(Addresses::Unspecified))
    );
    assert_eq!(
        parse(&frame(0x21, 0x01, &[])),
        Ok(proxy(Addresses::Unspecified))
    );
    // A real family with an UNSPEC protocol: kept, block ignored.
    assert_eq!(
        parse(&frame(0x21, 0x10, &[9])),
        Ok(proxy(Addresses::Unknown(0x10)))
    );
    // UDP and AF_UNIX: kept, and their TLVs read after the address block.
    let mut udp = IPV4_FRAME[16..].to_vec();
    udp.extend_from_slice(&[PP2_TYPE_AUTHORITY, 0x00, 0x01, b'x']);
    assert_eq!(
        parse(&frame(0x21, 0x12, &udp)),
        Ok(Repr {
            tlvs: vec![Tlv::new(PP2_TYPE_AUTHORITY, "x")],
            ..proxy(Addresses::Unknown(0x12))
        })
    );
    assert_eq!(
        parse(&frame(0x21, 0x31, &[0; 216])),
        Ok(proxy(Addresses::Unknown(0x31)))
    );
    assert_eq!(
        parse(&frame(0x21, 0x22, &[0; 36])),
        Ok(proxy(Addresses::Unknown(0x22)))
    );
    // Emitted as UNSPEC: their address bytes were not kept.
    assert_eq!(
        proxy(Addresses::Unknown(0x31)).to_bytes().unwrap(),
        frame(0x21, 0x00, &[])
    );
}

fn tlv_repr() -> Repr {
    Repr {
        tlvs: vec![
            Tlv::new(PP2_TYPE_ALPN, "smtp"),
            Tlv::new(PP2_TYPE_AUTHORITY, "mx.example.com"),
            Tlv::new(PP2_TYPE_NOOP, []),
            Tlv::new(0xE5, [1, 2, 3]),
            Tlv::crc32c(),
        ],
        ..ipv4_repr()
    }
}

#[test]
fn tlvs_round_trip_with_checksum() {
    let repr = tlv_repr();
    let bytes = repr.to_bytes().unwrap();
    let tlv_len = (3 + 4) + (3 + 14) + 3 + (3 + 3) + (3 + 4);
    assert_eq!(bytes.len(), 28 + tlv_len);
    assert_eq!(&bytes[14..16], &((12 + tlv_len) as u16).to_be_bytes());
    assert_eq!(&bytes[28..35], b"\x01\x00\x04smtp");
    let crc_at = bytes.len() - 4;
    assert_eq!(&bytes[crc_at - 3..crc_at], &[PP2_TYPE_CRC32C, 0x00, 0x04]);
    let mut zeroed = bytes.clone();
    zeroed[crc_at..].fill(0);
    assert_eq!(&bytes[crc_at..], &crc32c(&zeroed).to_be_bytes());

    let parsed = parse(&bytes).unwrap();
    assert_eq!(parsed.tlvs[..4], repr.tlvs[..4]);
    assert_eq!(parsed.tlvs[4].kind, PP2_TYPE_CRC32C);
    assert_eq!(parsed.tlvs[4].value, &bytes[crc_at..]);
    assert_eq!(parsed.addresses, repr.addresses);
}

#[test]
fn checksum_mismatch_is_refused() {
    let mut bytes = tlv_repr().to_bytes().unwrap();
    bytes[17] ^= 1; // flip a bit of the source address
    assert!(matches!(parse(&bytes), Err(Error::ChecksumMismatch { .. })));
}

#[test]
fn bad_crc_tlvs_are_refused() {
    let mut payload = IPV4_FRAME[16..].to_vec();
    payload.extend_from_slice(&[PP2_TYPE_CRC32C, 0x00, 0x02, 0, 0]);
    assert!(matches!(
        parse(&frame(0x21, 0x11, &payload)),
        Err(Error::Malformed(_))
    ));
    let two = Repr {
        tlvs: vec![Tlv::crc32c(), Tlv::crc32c()],
        ..ipv4_repr()
    };
    assert!(matches!(two.to_bytes(), Err(Error::CannotEmit(_))));
    let odd = Repr {
        tlvs: vec![Tlv::new(PP2_TYPE_CRC32C, [0; 3])],
        ..ipv4_repr()
    };
    assert!(matches!(odd.to_bytes(), Err(Error::CannotEmit(_))));
}

#[test]
fn truncated_tlv_is_malformed() {
    let addresses = &IPV4_FRAME[16..];
    for tail in [
        &[PP2_TYPE_ALPN][..],
        &[PP2_TYPE_ALPN, 0x00],
        &[PP2_TYPE_ALPN, 0x00, 0x05, b's', b'm'],
    ] {
        let payload = [addresses, tail].concat();
        assert!(
            matches!(
                parse(&frame(0x21, 0x11, &payload)),
                Err(Error::Malformed(_))
            ),
            "{tail:?}"
        );
    }
}

#[test]
fn largest_header_is_accepted_and_larger_refused() {
    let value_len = usize::from(u16::MAX) - ADDR_LEN_INET - 3;
    let mut repr = Repr {
        tlvs: vec![Tlv::new(PP2_TYPE_NOOP, vec![0; value_len])],
        ..ipv4_repr()
    };
    let bytes = repr.to_bytes().unwrap();
    assert_eq!(bytes.len(), HEADER_LEN + usize::from(u16::MAX));
    assert_eq!(parse(&bytes), Ok(repr.clone()));
    assert_eq!(
        Packet::new_checked(&bytes[..bytes.len() - 1]).err(),
        Some(Error::Truncated)
    );
    repr.tlvs[0].value.push(0);
    assert!(matches!(repr.to_bytes(), Err(Error::CannotEmit(_))));
}
