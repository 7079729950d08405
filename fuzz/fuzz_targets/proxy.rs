//! Fuzz target: `proxy::parse` on arbitrary bytes never panics, and every
//! header it accepts re-emits in the same version and parses back the same.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mxgate_wire::proxy::{self, tlv, Addresses, Command, Header, Parsed, Tlv, Version};

fuzz_target!(|data: &[u8]| {
    let Ok(Parsed::Complete { header, consumed }) = proxy::parse(data) else {
        return;
    };
    assert!(consumed > 0 && consumed <= data.len());
    // The header alone parses the same, whatever followed it.
    match proxy::parse(&data[..consumed]) {
        Ok(Parsed::Complete {
            header: alone,
            consumed: n,
        }) => {
            assert_eq!(alone, header);
            assert_eq!(n, consumed);
        }
        other => panic!("header alone did not parse: {other:?}"),
    }
    // One byte short is Incomplete.
    assert_eq!(proxy::parse(&data[..consumed - 1]), Ok(Parsed::Incomplete));

    let bytes = header.to_bytes().expect("a parsed header re-emits");
    assert_eq!(bytes.len(), header.buffer_len());
    let again = match proxy::parse(&bytes) {
        Ok(Parsed::Complete { header, consumed }) => {
            assert_eq!(consumed, bytes.len());
            header
        }
        other => panic!("re-emitted header did not parse: {other:?}"),
    };
    assert_eq!(again.version, header.version);
    assert_eq!(again.command, header.command);
    assert_eq!(again.addresses, expected_addresses(&header));
    assert_eq!(again.addresses.source(), header.addresses.source());
    assert_eq!(
        again.addresses.destination(),
        header.addresses.destination()
    );
    assert_eq!(comparable(&again.tlvs), comparable(&expected_tlvs(&header)));
});

/// Undecoded families are emitted as UNSPEC (their address bytes are not kept).
fn expected_addresses(header: &Header) -> Addresses {
    match header.addresses {
        Addresses::Unknown(_) => Addresses::Unspecified,
        other => other,
    }
}

/// TLVs survive only where the receiver reads them: v2, PROXY, TCP4/TCP6.
fn expected_tlvs(header: &Header) -> Vec<Tlv> {
    let read_back = header.version == Version::V2
        && header.command == Command::Proxy
        && matches!(
            header.addresses,
            Addresses::Tcp4 { .. } | Addresses::Tcp6 { .. }
        );
    if read_back {
        header.tlvs.clone()
    } else {
        Vec::new()
    }
}

/// The CRC32c value is recomputed on emit, so compare only its presence.
fn comparable(tlvs: &[Tlv]) -> Vec<Tlv> {
    tlvs.iter()
        .map(|t| match t.kind {
            tlv::PP2_TYPE_CRC32C => Tlv::crc32c(),
            _ => t.clone(),
        })
        .collect()
}
