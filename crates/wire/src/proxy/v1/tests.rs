//! v1 tests against the spec's example lines.

use super::*;

/// The spec's example line (section 2.1).
static TCP4_LINE: &[u8] = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
/// The spec's longest TCP6 line (104 bytes).
static TCP6_LINE: &[u8] = b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff \
ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
/// The spec's short UNKNOWN form.
static UNKNOWN_LINE: &[u8] = b"PROXY UNKNOWN\r\n";
/// The spec's worst case (107 bytes): UNKNOWN with everything set.
static UNKNOWN_WORST: &[u8] = b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff \
ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";

fn tcp4_repr() -> Repr {
    Repr {
        addresses: Addresses::Tcp4 {
            src: "192.168.0.1:56324".parse().unwrap(),
            dst: "192.168.0.11:443".parse().unwrap(),
        },
    }
}

fn tcp6_repr() -> Repr {
    let all = Ipv6Addr::from([0xffff; 8]);
    Repr {
        addresses: Addresses::Tcp6 {
            src: SocketAddrV6::new(all, 65535, 0, 0),
            dst: SocketAddrV6::new(all, 65535, 0, 0),
        },
    }
}

fn malformed(line: &[u8]) -> &'static str {
    match Repr::parse(line) {
        Err(Error::Malformed(why)) => why,
        other => panic!(
            "{:?}: expected Malformed, got {other:?}",
            String::from_utf8_lossy(line)
        ),
    }
}

#[test]
fn spec_line_lengths() {
    assert_eq!(TCP6_LINE.len(), 104);
    assert_eq!(UNKNOWN_LINE.len(), 15);
    assert_eq!(UNKNOWN_WORST.len(), MAX_LEN);
}

#[test]
fn test_parse() {
    assert_eq!(Repr::parse(TCP4_LINE), Ok(tcp4_repr()));
    assert_eq!(Repr::parse(TCP6_LINE), Ok(tcp6_repr()));
    let unknown = Repr {
        addresses: Addresses::Unspecified,
    };
    assert_eq!(Repr::parse(UNKNOWN_LINE), Ok(unknown));
    assert_eq!(Repr::parse(UNKNOWN_WORST), Ok(unknown));
    // After UNKNOWN anything printable is ignored.
    assert_eq!(Repr::parse(b"PROXY UNKNOWN garbage  here\r\n"), Ok(unknown));
}

#[test]
fn test_emit() {
    for (repr, line) in [(tcp4_repr(), TCP4_LINE), (tcp6_repr(), TCP6_LINE)] {
        assert_eq!(repr.buffer_len(), line.len());
        let mut buf = [0xaa; MAX_LEN + 1];
        assert_eq!(repr.emit(&mut buf), line.len());
        assert_eq!(&buf[..line.len()], line);
        assert_eq!(buf[line.len()], 0xaa, "nothing written past the line");
        assert_eq!(repr.to_bytes(), line);
    }
    for addresses in [Addresses::Unspecified, Addresses::Unknown(0x12)] {
        assert_eq!(Repr { addresses }.to_bytes(), UNKNOWN_LINE);
    }
}

#[test]
fn emit_mixed_families_as_mapped_tcp6() {
    let addresses = Addresses::from_pair(
        "192.0.2.1:4000".parse().unwrap(),
        "[2001:db8::25]:25".parse().unwrap(),
    );
    let line = Repr { addresses }.to_bytes();
    assert_eq!(
        line,
        b"PROXY TCP6 ::ffff:192.0.2.1 2001:db8::25 4000 25\r\n"
    );
    let back = Repr::parse(&line).unwrap().addresses;
    assert_eq!(back, addresses);
    assert_eq!(back.source(), Some("192.0.2.1:4000".parse().unwrap()));
}

#[test]
fn frame_len_finds_the_crlf() {
    let mut buf = TCP4_LINE.to_vec();
    buf.extend_from_slice(b"EHLO example.com\r\n");
    assert_eq!(frame_len(&buf), Ok(Some(TCP4_LINE.len())));
    assert_eq!(frame_len(UNKNOWN_WORST), Ok(Some(MAX_LEN)));
}

#[test]
fn every_prefix_is_incomplete() {
    for line in [TCP4_LINE, TCP6_LINE, UNKNOWN_LINE, UNKNOWN_WORST] {
        for len in 0..line.len() {
            assert_eq!(frame_len(&line[..len]), Ok(None), "prefix of {len} bytes");
        }
    }
}

#[test]
fn no_crlf_within_107_bytes_is_too_long() {
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(MAX_LEN - 1, b'x');
    assert_eq!(frame_len(&line), Ok(None), "106 bytes: may still end");
    line.push(b'x');
    assert_eq!(frame_len(&line), Err(Error::TooLong));
    // A CR as the 107th byte cannot be followed by LF in time.
    line[MAX_LEN - 1] = b'\r';
    assert_eq!(frame_len(&line), Err(Error::TooLong));
    line.push(b'\n');
    assert_eq!(frame_len(&line), Err(Error::TooLong));
    assert_eq!(Repr::parse(&line), Err(Error::TooLong));
}

#[test]
fn lone_cr_lf_and_control_bytes_are_refused_early() {
    assert!(matches!(
        frame_len(b"PROXY TCP4 1.2.3.4\n"),
        Err(Error::Malformed(_))
    ));
    assert!(matches!(
        frame_len(b"PROXY TCP4 1.2.3.4\rx"),
        Err(Error::Malformed(_))
    ));
    assert!(matches!(
        frame_len(b"PROXY TCP4\t1.2"),
        Err(Error::Malformed(_))
    ));
    assert!(matches!(
        frame_len(b"PROXY \xc3\xa9"),
        Err(Error::Malformed(_))
    ));
}

#[test]
fn not_proxy() {
    assert_eq!(frame_len(b"EHLO x\r\n"), Err(Error::NotProxy));
    assert_eq!(frame_len(b"PROXX"), Err(Error::NotProxy));
    assert_eq!(frame_len(b"PROXY\r\n"), Err(Error::NotProxy));
    assert_eq!(
        Repr::parse(b"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n"),
        Err(Error::NotProxy)
    );
}

#[test]
fn strict_field_syntax() {
    malformed(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443");
    malformed(b"PROXY  TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
    malformed(b"PROXY TCP4  192.168.0.1 192.168.0.11 56324 443\r\n");
    malformed(b"PROXY TCP4 192.168.0.1 192.168.0.11  56324 443\r\n");
    malformed(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 \r\n");
    malformed(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n");
    malformed(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443 1\r\n");
    malformed(b"PROXY tcp4 192.168.0.1 192.168.0.11 56324 443\r\n");
    malformed(b"PROXY UDP4 192.168.0.1 192.168.0.11 56324 443\r\n");
    malformed(b"PROXY UNKNOWNX\r\n");
    malformed(b"PROXY \r\n");
    malformed(b"PROXY TCP4\r\n");
}

#[test]
fn ports_are_plain_decimal() {
    let with_ports = |s: &str, d: &str| format!("PROXY TCP4 10.0.0.1 10.0.0.2 {s} {d}\r\n");
    assert!(Repr::parse(with_ports("0", "65535").as_bytes()).is_ok());
    for bad in [
        "65536", "99999", "100000", "0443", "00", "+443", "-1", "44a", "0x1",
    ] {
        let why = malformed(with_ports(bad, "25").as_bytes());
        assert_eq!(why, "bad source port", "{bad}");
        let why = malformed(with_ports("25", bad).as_bytes());
        assert_eq!(why, "bad destination port", "{bad}");
    }
}

#[test]
fn addresses_must_match_the_family() {
    malformed(b"PROXY TCP4 ::1 ::1 1 2\r\n");
    malformed(b"PROXY TCP6 127.0.0.1 127.0.0.1 1 2\r\n");
    malformed(b"PROXY TCP4 127.0.0.1 ::1 1 2\r\n");
    // Leading zeros in IPv4 octets could be read as octal: refused.
    malformed(b"PROXY TCP4 192.168.0.01 192.168.0.11 1 2\r\n");
    malformed(b"PROXY TCP4 010.1.1.1 192.168.0.11 1 2\r\n");
    malformed(b"PROXY TCP4 256.1.1.1 192.168.0.11 1 2\r\n");
    malformed(b"PROXY TCP4 1.1.1 192.168.0.11 1 2\r\n");
    malformed(b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n");
    malformed(b"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n");
    // Upper-case hex and IPv4-mapped forms are valid IPv6 text.
    let repr = Repr::parse(b"PROXY TCP6 2001:DB8::1 ::ffff:10.0.0.1 1 2\r\n").unwrap();
    assert_eq!(
        repr.addresses.destination(),
        Some("10.0.0.1:2".parse().unwrap())
    );
}
