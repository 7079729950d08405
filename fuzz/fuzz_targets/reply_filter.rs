//! Fuzz target: `ReplyFilter::parse` (the postscreen-style DNSBL reply
//! filter of `[[screen.dnsbl]] filter`) on arbitrary UTF-8 never panics; a
//! filter it accepts matches addresses without panicking, keeps its text
//! (trimmed), and parses back from that text to the same filter.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mxgate_filter::dnsbl::ReplyFilter;
use std::net::Ipv4Addr;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = ReplyFilter::parse(text) else {
        return;
    };
    assert_eq!(filter.as_str(), text.trim());
    let again = ReplyFilter::parse(filter.as_str()).expect("its own text parses");
    assert_eq!(again, filter);

    // A few fixed answers, and some taken from the input itself.
    let mut addrs = vec![
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(127, 0, 0, 2),
        Ipv4Addr::new(127, 0, 0, 255),
        Ipv4Addr::new(127, 255, 255, 254),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
    ];
    addrs.extend(
        data.chunks_exact(4)
            .take(8)
            .map(|c| Ipv4Addr::new(c[0], c[1], c[2], c[3])),
    );
    for addr in addrs {
        assert_eq!(filter.matches(addr), again.matches(addr));
    }
    // A filter written as a plain address matches that address.
    if let Ok(exact) = text.trim().parse::<Ipv4Addr>() {
        if text.trim() == exact.to_string() {
            assert!(filter.matches(exact));
        }
    }
});
