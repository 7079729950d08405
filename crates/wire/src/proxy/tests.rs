//! Tests of version detection, framing and the shared types.

use super::*;

const V1_LINE: &[u8] = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";

fn v2_frame() -> Vec<u8> {
    emit_v2(
        Command::Proxy,
        "192.168.0.1:56324".parse().unwrap(),
        "192.168.0.11:443".parse().unwrap(),
        &[],
    )
    .unwrap()
}

fn complete(buf: &[u8]) -> (Header, usize) {
    match parse(buf) {
        Ok(Parsed::Complete { header, consumed }) => (header, consumed),
        other => panic!("expected a complete header, got {other:?}"),
    }
}

fn tcp4() -> Addresses {
    Addresses::Tcp4 {
        src: "192.168.0.1:56324".parse().unwrap(),
        dst: "192.168.0.11:443".parse().unwrap(),
    }
}

#[test]
fn detects_both_versions() {
    let (header, consumed) = complete(V1_LINE);
    assert_eq!(header, Header::v1(tcp4()));
    assert_eq!(consumed, V1_LINE.len());

    let frame = v2_frame();
    assert_eq!(frame.len(), 28);
    let (header, consumed) = complete(&frame);
    assert_eq!(header, Header::v2(Command::Proxy, tcp4(), Vec::new()));
    assert_eq!(consumed, 28);
}

#[test]
fn consumed_stops_at_the_header() {
    for mut buf in [V1_LINE.to_vec(), v2_frame()] {
        let len = buf.len();
        buf.extend_from_slice(b"EHLO client.example\r\n");
        assert_eq!(complete(&buf).1, len);
    }
}

#[test]
fn every_prefix_is_incomplete() {
    for whole in [V1_LINE.to_vec(), v2_frame()] {
        for len in 0..whole.len() {
            assert_eq!(parse(&whole[..len]), Ok(Parsed::Incomplete), "{len} bytes");
        }
    }
}

#[test]
fn anything_else_is_not_proxy() {
    for buf in [
        &b"EHLO example.com\r\n"[..],
        b"GET / HTTP/1.1\r\n",
        b"\x16\x03\x01\x02\x00",
        b"P",
        b"PROXX",
        b"PROXY\t",
        b"\r\n\r\n\0\r\nQUIT\r",
        b"\r\n\r\n\x01",
        b"\r",
        b"\x00",
    ] {
        let expect = match buf {
            b"P" | b"\r" => Ok(Parsed::Incomplete),
            _ => Err(Error::NotProxy),
        };
        assert_eq!(parse(buf), expect, "{buf:?}");
    }
}

#[test]
fn peer_errors_come_through() {
    let mut frame = v2_frame();
    frame[12] = 0x11;
    assert_eq!(parse(&frame), Err(Error::UnsupportedVersion(1)));
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(v1::MAX_LEN, b'a');
    assert_eq!(parse(&long), Err(Error::TooLong));
    assert!(matches!(
        parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"),
        Err(Error::Malformed(_))
    ));
}

#[test]
fn mixed_families_are_mapped_to_ipv6() {
    let v4: SocketAddr = "192.0.2.1:4000".parse().unwrap();
    let v6: SocketAddr = "[2001:db8::25]:25".parse().unwrap();
    let addresses = Addresses::from_pair(v4, v6);
    assert_eq!(
        addresses,
        Addresses::Tcp6 {
            src: "[::ffff:192.0.2.1]:4000".parse().unwrap(),
            dst: "[2001:db8::25]:25".parse().unwrap(),
        }
    );
    assert_eq!(addresses.source(), Some(v4));
    assert_eq!(addresses.destination(), Some(v6));

    let (header, _) = complete(&emit_v2(Command::Proxy, v6, v4, &[]).unwrap());
    assert_eq!(header.addresses.source(), Some(v6));
    assert_eq!(header.addresses.destination(), Some(v4));
    let (header, _) = complete(&emit_v1(v4, v6));
    assert_eq!(header.addresses, addresses);
}

#[test]
fn scope_ids_are_dropped() {
    let src: SocketAddr = "[fe80::1%7]:1".parse().unwrap();
    let dst: SocketAddr = "[fe80::2]:2".parse().unwrap();
    let Addresses::Tcp6 { src, .. } = Addresses::from_pair(src, dst) else {
        panic!("not TCP6");
    };
    assert_eq!(src.scope_id(), 0);
}

#[test]
fn unspecified_has_no_endpoints() {
    assert_eq!(Addresses::Unspecified.source(), None);
    assert_eq!(Addresses::Unknown(0x12).destination(), None);
}

#[test]
fn header_emits_in_its_version() {
    let tlvs = vec![Tlv::new(tlv::PP2_TYPE_AUTHORITY, "mx.example")];
    let v2 = Header::v2(Command::Proxy, tcp4(), tlvs);
    let bytes = v2.to_bytes().unwrap();
    assert_eq!(bytes.len(), v2.buffer_len());
    let (back, _) = complete(&bytes);
    assert_eq!(back, v2);
    assert_eq!(back.tlv(tlv::PP2_TYPE_AUTHORITY), Some(&b"mx.example"[..]));
    assert_eq!(back.tlv(tlv::PP2_TYPE_ALPN), None);

    // v1 drops TLVs and says UNKNOWN for LOCAL.
    let v1 = Header {
        version: Version::V1,
        ..v2.clone()
    };
    assert_eq!(v1.to_bytes().unwrap(), V1_LINE);
    let local = Header {
        command: Command::Local,
        ..v1
    };
    assert_eq!(local.to_bytes().unwrap(), b"PROXY UNKNOWN\r\n");
    assert_eq!(local.buffer_len(), 15);
}

#[test]
fn emit_v1_matches_the_spec_example() {
    assert_eq!(
        emit_v1(
            "192.168.0.1:56324".parse().unwrap(),
            "192.168.0.11:443".parse().unwrap()
        ),
        V1_LINE
    );
}

#[test]
fn errors_display_what_went_wrong() {
    assert_eq!(
        Error::Malformed("bad source port").to_string(),
        "malformed PROXY header: bad source port"
    );
    assert_eq!(
        Error::ChecksumMismatch {
            received: 1,
            computed: 0xdeadbeef
        }
        .to_string(),
        "PROXY v2 CRC32c mismatch: header says 0x00000001, computed 0xdeadbeef"
    );
    let boxed: Box<dyn std::error::Error> = Box::new(Error::NotProxy);
    assert_eq!(boxed.to_string(), "not a PROXY protocol header");
}
