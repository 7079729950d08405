//! Fuzz target: the pure SMTP server engine (`mxgate_smtp::server`) on
//! arbitrary client bytes, read in arbitrary pieces, with a backend that
//! accepts everything. It never panics or stalls, every reply it writes is a
//! well-formed SMTP reply, and what it forwards to the backend is clean
//! (CRLF lines only, never an end-of-data line): no SMTP smuggling, also
//! for messages sent in BDAT chunks (CHUNKING), which are converted to DATA
//! wire form. The backend refuses DATA (and so the first BDAT) for one input
//! in four. The DATA reader alone gives the same result whatever the read
//! sizes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mxgate_smtp::parse_reply;
use mxgate_smtp::server::{DataEnd, DataReader, Input, Limits, ServerConfig, Session, Step};
use mxgate_smtp::Reply;

fuzz_target!(|data: &[u8]| {
    let Some((&split, wire)) = data.split_first() else {
        return;
    };
    let piece = usize::from(split % 64) + 1;
    let refuse_data = split & 0xC0 == 0xC0;
    engine(wire, piece, refuse_data);
    reader(wire, piece);
});

fn engine(wire: &[u8], piece: usize, refuse_data: bool) {
    let mut session = Session::new(ServerConfig {
        hostname: "mx.example.org".into(),
        relay_domains: vec!["example.org".into()],
        tls_available: true,
        limits: Limits {
            max_message_size: 4096,
            max_recipients: 3,
            max_errors: 50,
            max_line: 100,
        },
    });
    let mut buf = Vec::new();
    let mut message = Vec::new();
    let mut output = session.take_output();
    for chunk in wire.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            let Input { consumed, step } = session.input(&buf);
            assert!(consumed <= buf.len());
            let mut read_more = false;
            match &step {
                Step::NeedMore => read_more = true,
                Step::Close => return check_output(&output, &mut session),
                Step::StartTls => {
                    buf.clear();
                    read_more = true;
                }
                Step::Mail { .. } => session.mail_reply(&Reply::new(250, "2.1.0 Ok")),
                Step::Rcpt { to, .. } => {
                    assert!(to.to_ascii_lowercase().ends_with("@example.org"));
                    assert!(!to[..to.rfind('@').unwrap()].contains(['%', '!', '@']));
                    session.rcpt_reply(&Reply::new(250, "2.1.5 Ok"));
                }
                Step::Data => {
                    let code = if refuse_data { 554 } else { 354 };
                    if session.data_reply(&Reply::new(code, "go")) {
                        message.clear();
                    }
                }
                Step::Chunk { wire, end, .. } => {
                    message.extend_from_slice(wire);
                    match end {
                        None => {}
                        Some(DataEnd::Complete { .. }) => {
                            check_clean(&message);
                            session.message_reply(&Reply::new(250, "2.0.0 queued"));
                        }
                        Some(DataEnd::Refused { .. }) => {}
                    }
                }
                Step::Message { forward, end, .. } => {
                    assert!(*forward <= consumed);
                    message.extend_from_slice(&buf[..*forward]);
                    match end {
                        None => read_more = true,
                        Some(DataEnd::Complete { .. }) => {
                            check_clean(&message);
                            session.message_reply(&Reply::new(250, "2.0.0 queued"));
                        }
                        Some(DataEnd::Refused { .. }) => {}
                    }
                }
                Step::Replied | Step::Reset | Step::Abort | Step::RcptRefused { .. } => {
                    assert!(consumed > 0, "no progress on {step:?}");
                }
            }
            if !matches!(step, Step::StartTls) {
                buf.drain(..consumed);
            }
            output.extend_from_slice(&session.take_output());
            if read_more {
                break;
            }
        }
        // Bounded buffering: an incomplete command line or a few data octets.
        assert!(buf.len() <= 512 + piece, "buffer grew to {}", buf.len());
    }
    check_output(&output, &mut session);
}

/// A message forwarded whole: CRLF lines, no bare CR or LF, no `.` line.
fn check_clean(message: &[u8]) {
    assert!(message.is_empty() || message.ends_with(b"\r\n"));
    for (i, &b) in message.iter().enumerate() {
        if b == b'\r' {
            assert_eq!(message.get(i + 1), Some(&b'\n'), "bare CR forwarded");
        }
        if b == b'\n' {
            assert!(i > 0 && message[i - 1] == b'\r', "bare LF forwarded");
        }
    }
    assert!(!message.starts_with(b".\r\n"));
    assert!(!message.windows(5).any(|w| w == b"\r\n.\r\n"));
}

/// Every octet written is part of a well-formed reply.
fn check_output(output: &[u8], session: &mut Session) {
    let mut all = output.to_vec();
    all.extend_from_slice(&session.take_output());
    let mut rest = &all[..];
    while !rest.is_empty() {
        let (_, used) = parse_reply(rest)
            .expect("well-formed reply")
            .expect("complete reply");
        rest = &rest[used..];
    }
}

/// The DATA reader gives the same outcome in one piece and in small ones.
fn reader(wire: &[u8], piece: usize) {
    let whole = read_all(wire, wire.len().max(1));
    let pieces = read_all(wire, piece);
    assert_eq!(whole, pieces);
}

fn read_all(wire: &[u8], piece: usize) -> (bool, usize, u64, Option<String>, Vec<u8>) {
    let mut reader = DataReader::new(100, 4096);
    let mut pending = Vec::new();
    let mut forwarded = Vec::new();
    let mut taken = 0;
    for chunk in wire.chunks(piece) {
        pending.extend_from_slice(chunk);
        let fed = reader.feed(&pending);
        assert!(fed.forward <= fed.consumed && fed.consumed <= pending.len());
        forwarded.extend_from_slice(&pending[..fed.forward]);
        pending.drain(..fed.consumed);
        taken += fed.consumed;
        if fed.done {
            if reader.error().is_none() {
                check_clean(&forwarded);
            } else {
                forwarded.clear();
            }
            return (
                true,
                taken,
                reader.size(),
                reader.error().map(|e| format!("{e:?}")),
                forwarded,
            );
        }
        assert!(pending.len() <= 3);
    }
    if reader.error().is_some() {
        forwarded.clear();
    }
    (
        false,
        taken,
        reader.size(),
        reader.error().map(|e| format!("{e:?}")),
        forwarded,
    )
}
