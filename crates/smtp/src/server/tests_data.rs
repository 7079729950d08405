//! DATA reader tests: end detection, forwarding, SMTP smuggling variants,
//! limits, at every read size.

use super::data::{DataError, DataReader};

/// What a whole run of the reader gave.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    forwarded: Vec<u8>,
    done: bool,
    rest: Vec<u8>,
    error: Option<DataError>,
    size: u64,
}

/// Feeds `wire` in pieces of `chunk` octets, keeping unconsumed octets.
fn run_chunked(wire: &[u8], chunk: usize, max_line: usize, max_size: u64) -> Run {
    let mut reader = DataReader::new(max_line, max_size);
    let mut pending = Vec::new();
    let mut forwarded = Vec::new();
    let mut pieces = wire.chunks(chunk.max(1));
    loop {
        let fed = reader.feed(&pending);
        assert!(fed.forward <= fed.consumed);
        assert!(
            fed.done || pending.len() - fed.consumed <= 3,
            "bounded leftover"
        );
        forwarded.extend_from_slice(&pending[..fed.forward]);
        pending.drain(..fed.consumed);
        if fed.done {
            pending.extend(pieces.flatten());
            return Run {
                forwarded,
                done: true,
                rest: pending,
                error: reader.error(),
                size: reader.size(),
            };
        }
        match pieces.next() {
            Some(piece) => pending.extend_from_slice(piece),
            None => {
                return Run {
                    forwarded,
                    done: false,
                    rest: pending,
                    error: reader.error(),
                    size: reader.size(),
                }
            }
        }
    }
}

/// Runs at every chunk size and checks they all agree.
fn run(wire: &[u8]) -> Run {
    run_limits(wire, 998, u64::MAX)
}

fn run_limits(wire: &[u8], max_line: usize, max_size: u64) -> Run {
    let first = run_chunked(wire, wire.len().max(1), max_line, max_size);
    for chunk in 1..wire.len() {
        let other = run_chunked(wire, chunk, max_line, max_size);
        assert_eq!(other.done, first.done, "chunk {chunk}");
        assert_eq!(other.error, first.error, "chunk {chunk}");
        assert_eq!(other.rest, first.rest, "chunk {chunk}");
        assert_eq!(other.size, first.size, "chunk {chunk}");
        if first.error.is_none() {
            assert_eq!(other.forwarded, first.forwarded, "chunk {chunk}");
        }
    }
    first
}

#[test]
fn plain_message_forwarded_still_stuffed() {
    let r = run(b"Subject: x\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n");
    assert!(r.done);
    assert_eq!(r.forwarded, b"Subject: x\r\n\r\n..dot\r\nbody\r\n");
    assert_eq!(r.rest, b"QUIT\r\n");
    assert_eq!(r.error, None);
    assert_eq!(r.size, 27);
}

#[test]
fn empty_message() {
    let r = run(b".\r\n");
    assert!(r.done);
    assert!(r.forwarded.is_empty());
    assert_eq!(r.size, 0);
}

#[test]
fn smuggling_variants_never_end_the_data_and_are_refused() {
    for variant in [
        &b"\n.\n"[..],
        b"\r.\r",
        b"\r\n.\n",
        b"\n.\r\n",
        b"\r\n.\rMAIL FROM:<x@evil>",
        b"\r.\r\n",
    ] {
        let mut wire = b"Subject: a\r\n\r\nbody".to_vec();
        wire.extend_from_slice(variant);
        wire.extend_from_slice(b"MAIL FROM:<evil@example>\r\nmore\r\n");
        let open = run(&wire);
        assert!(!open.done, "{variant:?} ended the data early");
        assert_eq!(open.error, Some(DataError::BareLineEnd), "{variant:?}");
        // Nothing after the bare CR/LF is forwarded.
        assert!(
            !open.forwarded.windows(4).any(|w| w == b"MAIL"),
            "{variant:?}"
        );
        wire.extend_from_slice(b".\r\n");
        let closed = run(&wire);
        assert!(closed.done, "{variant:?}");
        assert_eq!(closed.error, Some(DataError::BareLineEnd));
        assert!(closed.rest.is_empty());
    }
}

#[test]
fn nul_before_dot_is_not_an_end_and_nul_is_forwarded() {
    let r = run(b"a\r\n\x00.\r\nb\x00c\r\n.\r\n");
    assert!(r.done);
    assert_eq!(r.error, None);
    assert_eq!(r.forwarded, b"a\r\n\x00.\r\nb\x00c\r\n");
}

#[test]
fn eight_bit_forwarded_exactly() {
    let r = run(b"caf\xc3\xa9 \xff\xfe\r\n.\r\n");
    assert_eq!(r.forwarded, b"caf\xc3\xa9 \xff\xfe\r\n");
}

#[test]
fn bare_lf_alone_taints() {
    let r = run(b"a\nb\r\n.\r\n");
    assert!(r.done);
    assert_eq!(r.error, Some(DataError::BareLineEnd));
    assert!(r.forwarded.is_empty());
}

#[test]
fn line_length_limit() {
    let ok = run_limits(b"12345\r\n.\r\n", 5, u64::MAX);
    assert_eq!(ok.error, None);
    let long = run_limits(b"123456\r\nnext\r\n.\r\n", 5, u64::MAX);
    assert!(long.done);
    assert_eq!(long.error, Some(DataError::LineTooLong));
    assert!(long.forwarded.is_empty());
    // A dot-stuffed line counts its stuffing dot (wire form).
    let stuffed = run_limits(b"..345\r\n.\r\n", 5, u64::MAX);
    assert_eq!(stuffed.error, None);
}

#[test]
fn size_limit() {
    let ok = run_limits(b"1234\r\n.\r\n", 998, 6);
    assert_eq!(ok.error, None);
    let big = run_limits(b"12345\r\n.\r\n", 998, 6);
    assert!(big.done);
    assert_eq!(big.error, Some(DataError::TooLarge));
    assert_eq!(big.size, 7);
}

#[test]
fn runs_of_bare_cr_are_consumed() {
    let mut wire = b"a\r\n.".to_vec();
    wire.extend_from_slice(&[b'\r'; 50]);
    wire.extend_from_slice(b"\nQUIT\r\n.\r\n");
    let r = run(&wire);
    assert!(r.done);
    assert_eq!(r.error, Some(DataError::BareLineEnd));
    let mut reader = DataReader::new(998, u64::MAX);
    let fed = reader.feed(&[b'\r'; 100]);
    assert_eq!(fed.consumed, 99);
}

#[test]
fn first_taint_wins() {
    let r = run_limits(b"a\nbcdefghij\r\n.\r\n", 5, u64::MAX);
    assert_eq!(r.error, Some(DataError::BareLineEnd));
}

#[test]
fn huge_single_line_is_consumed_without_buffering() {
    let mut reader = DataReader::new(998, 20_000_000);
    let chunk = vec![b'x'; 65_536];
    for _ in 0..160 {
        let fed = reader.feed(&chunk);
        assert_eq!(fed.consumed, chunk.len());
        assert!(!fed.done);
    }
    assert_eq!(reader.error(), Some(DataError::LineTooLong));
    let fed = reader.feed(b"\r\n.\r\n");
    assert!(fed.done);
    assert_eq!(fed.forward, 0);
}
