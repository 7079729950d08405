//! CHUNKING tests: BDAT sequences, conversion to DATA wire form, limits,
//! refused chunks skipped, at every read size; reply counting.

use super::*;
use crate::reply::{Reply, ReplyClass};

fn session(max_size: u64) -> Session {
    let mut s = Session::new(ServerConfig {
        hostname: "mx.example.org".into(),
        relay_domains: vec!["example.org".into()],
        tls_available: false,
        limits: Limits {
            max_message_size: max_size,
            max_recipients: 5,
            max_errors: 100,
            max_line: 998,
        },
    });
    s.take_output();
    s
}

/// What a run gave: replies, forwarded octets, how messages ended, and the
/// backend calls other than MAIL/RCPT/DATA.
#[derive(Debug, Default, PartialEq, Eq)]
struct Run {
    out: String,
    forwarded: Vec<u8>,
    ends: Vec<DataEnd>,
    calls: Vec<&'static str>,
}

/// Feeds `wire` in pieces of `piece` octets; the backend takes everything
/// and answers DATA with `data_code`.
fn drive(s: &mut Session, wire: &[u8], piece: usize, data_code: u16) -> Run {
    let mut run = Run::default();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for chunk in wire.chunks(piece.max(1)) {
        buf.extend_from_slice(chunk);
        loop {
            let Input { consumed, step } = s.input(&buf);
            let mut more = false;
            match step {
                Step::NeedMore => more = true,
                Step::Close => {
                    out.extend(s.take_output());
                    run.out = String::from_utf8(out).unwrap();
                    return run;
                }
                Step::Mail { .. } => s.mail_reply(&Reply::new(250, "2.1.0 Ok")),
                Step::Rcpt { .. } => s.rcpt_reply(&Reply::new(250, "2.1.5 Ok")),
                Step::Data => {
                    if !s.data_reply(&Reply::new(data_code, "backend says"))
                        && !s.transaction_open()
                    {
                        run.calls.push("rset");
                    }
                }
                Step::Chunk { wire, end, .. } => {
                    run.forwarded.extend_from_slice(&wire);
                    if let Some(end) = end {
                        if matches!(end, DataEnd::Complete { .. }) {
                            s.message_reply(&Reply::new(250, "2.0.0 queued as X"));
                        }
                        run.ends.push(end);
                    }
                }
                Step::Abort => run.calls.push("abort"),
                Step::Reset => run.calls.push("rset"),
                Step::Message { forward, end, .. } => {
                    run.forwarded.extend_from_slice(&buf[..forward]);
                    if let Some(end) = end {
                        if matches!(end, DataEnd::Complete { .. }) {
                            s.message_reply(&Reply::new(250, "2.0.0 queued as X"));
                        }
                        run.ends.push(end);
                    }
                }
                Step::StartTls => panic!("unexpected STARTTLS"),
                Step::Replied | Step::RcptRefused { .. } => {}
            }
            buf.drain(..consumed);
            out.extend(s.take_output());
            if more {
                break;
            }
        }
    }
    run.out = String::from_utf8(out).unwrap();
    run
}

/// Runs at every read size and checks they all agree.
fn drive_all(max_size: u64, wire: &[u8], data_code: u16) -> Run {
    let first = drive(&mut session(max_size), wire, wire.len(), data_code);
    for piece in 1..wire.len() {
        let mut other = drive(&mut session(max_size), wire, piece, data_code);
        if first
            .ends
            .iter()
            .any(|e| matches!(e, DataEnd::Refused { .. }))
        {
            // What went out before a taint was seen depends on read sizes;
            // the backend is aborted either way.
            other.forwarded.clone_from(&first.forwarded);
        }
        assert_eq!(other, first, "piece {piece}");
    }
    first
}

const ENVELOPE: &[u8] = b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.org>\r\n";

fn with_envelope(rest: &[u8]) -> Vec<u8> {
    let mut wire = ENVELOPE.to_vec();
    wire.extend_from_slice(rest);
    wire
}

#[test]
fn three_pipelined_chunks_become_dot_stuffed_data() {
    let wire = with_envelope(
        b"BDAT 17\r\nSubject: x\r\n\r\n.a\rBDAT 5\r\n\n.\r\n.BDAT 8 LAST\r\nQUIT\r\nxyQUIT\r\n",
    );
    let run = drive_all(1000, &wire, 354);
    assert_eq!(
        run.forwarded,
        b"Subject: x\r\n\r\n..a\r\n..\r\n..QUIT\r\nxy\r\n"
    );
    assert_eq!(run.ends, [DataEnd::Complete { size: 30 }]);
    assert!(run.out.ends_with(
        "250 2.1.5 Ok\r\n250 2.0.0 17 octets received\r\n250 2.0.0 5 octets received\r\n\
         250 2.0.0 queued as X\r\n221 2.0.0 Bye\r\n"
    ));
    assert!(run.calls.is_empty());
}

#[test]
fn bdat_zero_last_and_empty_chunks() {
    let run = drive_all(1000, &with_envelope(b"BDAT 0\r\nBDAT 0 LAST\r\n"), 354);
    assert_eq!(run.forwarded, b"");
    assert_eq!(run.ends, [DataEnd::Complete { size: 0 }]);
    assert!(run
        .out
        .ends_with("250 2.0.0 0 octets received\r\n250 2.0.0 queued as X\r\n"));
}

#[test]
fn bdat_out_of_sequence_is_refused_and_its_octets_skipped() {
    let run = drive_all(
        1000,
        b"BDAT 6\r\nQUIT\r\nEHLO c\r\nBDAT 6 LAST\r\nQUIT\r\nMAIL FROM:<>\r\nBDAT 6\r\nQUIT\r\n\
          RCPT TO:<x@elsewhere.example>\r\nBDAT 6\r\nQUIT\r\nNOOP\r\n",
        354,
    );
    let lines: Vec<&str> = run.out.lines().filter(|l| !l.starts_with("250-")).collect();
    assert_eq!(
        lines,
        [
            "503 5.5.1 Error: send HELO/EHLO first",
            "250 CHUNKING",
            "503 5.5.1 Error: need MAIL command",
            "250 2.1.0 Ok",
            "503 5.5.1 Error: need RCPT command",
            "554 5.7.1 Error: Relay access denied",
            "554 5.5.1 Error: no valid recipients",
            "250 2.0.0 Ok",
        ]
    );
    assert!(run.forwarded.is_empty() && run.ends.is_empty());
}

#[test]
fn data_after_bdat_is_refused_and_rset_aborts() {
    let run = drive_all(
        1000,
        &with_envelope(b"BDAT 3\r\nabcDATA\r\nRSET\r\nMAIL FROM:<>\r\n"),
        354,
    );
    assert!(run.out.ends_with(
        "250 2.0.0 3 octets received\r\n503 5.5.1 Error: DATA after BDAT\r\n250 2.0.0 Ok\r\n\
         250 2.1.0 Ok\r\n"
    ));
    assert_eq!(run.calls, ["abort"]);
    assert!(run.ends.is_empty());
    let mut s = session(1000);
    let run = drive(&mut s, &with_envelope(b"BDAT 1\r\naEHLO d\r\n"), 1000, 354);
    assert_eq!(run.calls, ["abort"]);
    assert!(!s.transaction_open());
}

#[test]
fn size_limit_across_chunks() {
    let run = drive_all(
        10,
        &with_envelope(b"BDAT 6\r\n012345BDAT 5 LAST\r\nabcdeNOOP\r\n"),
        354,
    );
    let too_large = Reply::from(DataError::TooLarge);
    assert_eq!(
        run.ends,
        [DataEnd::Refused {
            size: 11,
            reply: too_large.clone()
        }]
    );
    assert!(run.out.ends_with(&format!(
        "250 2.0.0 6 octets received\r\n{too_large}250 2.0.0 Ok\r\n"
    )));
    // A first chunk larger than the limit never reaches the backend.
    let run = drive_all(10, &with_envelope(b"BDAT 11\r\n0123456789aNOOP\r\n"), 354);
    assert_eq!(run.forwarded, b"");
    assert!(run.out.ends_with(&format!("{too_large}250 2.0.0 Ok\r\n")));
    assert_eq!(run.ends.len(), 1);
}

#[test]
fn bare_line_ends_refuse_the_message_at_last() {
    for content in [&b"a\nb\r\n"[..], b"a\rb\r\n", b"ab\r"] {
        let mut rest = format!("BDAT 2\r\nokBDAT {} LAST\r\n", content.len()).into_bytes();
        rest.extend_from_slice(content);
        rest.extend_from_slice(b"NOOP\r\n");
        let run = drive_all(1000, &with_envelope(&rest), 354);
        let reply = Reply::from(DataError::BareLineEnd);
        assert_eq!(
            run.ends,
            [DataEnd::Refused {
                size: 2 + content.len() as u64,
                reply: reply.clone()
            }]
        );
        assert!(run.out.ends_with(&format!(
            "250 2.0.0 2 octets received\r\n{reply}250 2.0.0 Ok\r\n"
        )));
        assert!(!run.forwarded.windows(2).any(|w| w == b"\nb" || w == b"\rb"));
    }
}

#[test]
fn backend_refusing_data_ends_the_transaction() {
    let run = drive_all(
        1000,
        &with_envelope(b"BDAT 4\r\nQUITBDAT 2 LAST\r\nabNOOP\r\n"),
        451,
    );
    assert!(run.out.ends_with(
        "250 2.1.5 Ok\r\n451 backend says\r\n503 5.5.1 Error: need MAIL command\r\n250 2.0.0 Ok\r\n"
    ));
    assert_eq!(run.calls, ["rset"]);
}

#[test]
fn backend_failure_is_given_at_last() {
    let mut s = session(1000);
    let run = drive(&mut s, &with_envelope(b"BDAT 2\r\nab"), 100, 354);
    assert_eq!(run.forwarded, b"ab");
    s.relay_failed(Reply::new(451, "4.4.2 failed"));
    let run = drive(&mut s, b"BDAT 1 LAST\r\nc", 100, 354);
    assert_eq!(run.out, "451 4.4.2 failed\r\n");
    assert!(run.forwarded.is_empty());
    assert!(!s.transaction_open());
}

#[test]
fn in_data_while_reading_a_chunk() {
    let mut s = session(1000);
    drive(&mut s, &with_envelope(b"BDAT 4\r\nab"), 100, 354);
    assert!(s.in_data() && s.transaction_open());
    drive(&mut s, b"cd", 100, 354);
    assert!(!s.in_data() && s.transaction_open());
}

#[test]
fn replies_are_counted_by_phase_and_class() {
    let mut s = Session::new(ServerConfig {
        hostname: "mx".into(),
        relay_domains: vec!["example.org".into()],
        tls_available: false,
        limits: Limits::default(),
    });
    drive(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<u@example.org>\r\nRCPT TO:<u@other.example>\r\n\
          BDAT 1\r\naBDAT 1 LAST\r\nbMAIL FROM:<>\r\nRCPT TO:<u@example.org>\r\nDATA\r\n.\r\nFOO\r\nQUIT\r\n",
        1000,
        354,
    );
    let counts = s.replies();
    let two = ReplyClass::PositiveCompletion;
    assert_eq!(counts.get(ReplyPhase::Connect, two), 1);
    assert_eq!(counts.get(ReplyPhase::Helo, two), 1);
    assert_eq!(counts.get(ReplyPhase::Mail, two), 2);
    assert_eq!(counts.get(ReplyPhase::Rcpt, two), 2);
    assert_eq!(
        counts.get(ReplyPhase::Rcpt, ReplyClass::PermanentNegative),
        1
    );
    assert_eq!(counts.get(ReplyPhase::Data, two), 1);
    assert_eq!(
        counts.get(ReplyPhase::Data, ReplyClass::PositiveIntermediate),
        1
    );
    assert_eq!(counts.get(ReplyPhase::EndOfData, two), 2);
    assert_eq!(
        counts.get(ReplyPhase::Other, ReplyClass::PermanentNegative),
        1
    );
    assert_eq!(counts.get(ReplyPhase::Other, two), 1);
    assert_eq!(counts.total(), 13);
}
