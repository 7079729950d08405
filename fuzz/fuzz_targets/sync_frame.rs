//! Fuzz target: the sync frame decoder on arbitrary bytes never panics;
//! every frame it accepts re-encodes to bytes that decode to the same frame;
//! the Hello version peek never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mxgate_sync::frame;

fuzz_target!(|data: &[u8]| {
    let _ = frame::hello_version(data);
    let Ok(decoded) = frame::decode(data) else {
        return;
    };
    let bytes = frame::encode(&decoded).expect("a decoded frame re-encodes");
    let again = frame::decode(&bytes[4..]).expect("a re-encoded frame decodes");
    assert_eq!(again, decoded);
    if let frame::Frame::Hello {
        protocol_version, ..
    } = &decoded
    {
        assert_eq!(frame::hello_version(data), Some(*protocol_version));
    }
});
