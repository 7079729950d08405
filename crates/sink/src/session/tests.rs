//! Tests of the SMTP protocol logic, driven without any I/O.

use super::*;

/// What a client saw after sending some input.
#[derive(Debug, Default)]
struct Outcome {
    replies: Vec<String>,
    messages: Vec<Message>,
    closed: bool,
    /// Octets left unconsumed at the end.
    pending: usize,
}

/// Feeds `chunks` one after another (as separate reads), answering each
/// message with `250 queued` like the connection loop would.
fn drive(session: &mut Session, chunks: &[&[u8]]) -> Outcome {
    let mut outcome = Outcome::default();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        let mut pos = 0;
        loop {
            let (used, event) = session.step(&buf[pos..], &mut out);
            pos += used;
            match event {
                Event::NeedInput => break,
                Event::Message(message) => {
                    outcome.messages.push(message);
                    out.extend_from_slice(b"250 2.0.0 Ok: queued\r\n");
                }
                Event::Close => {
                    outcome.closed = true;
                    break;
                }
            }
        }
        buf.drain(..pos);
        if outcome.closed {
            break;
        }
    }
    outcome.pending = buf.len();
    let text = String::from_utf8(out).unwrap();
    let mut rest = text.as_bytes();
    while let Some((reply, used)) = mxgate_smtp::parse_reply(rest).unwrap() {
        outcome
            .replies
            .push(reply.to_string().trim_end().to_owned());
        rest = &rest[used..];
    }
    assert!(rest.is_empty(), "partial reply written: {rest:?}");
    outcome
}

fn session() -> Session {
    Session::new("sink.test", 1000)
}

fn codes(outcome: &Outcome) -> Vec<u16> {
    outcome
        .replies
        .iter()
        .map(|r| r[..3].parse().unwrap())
        .collect()
}

#[test]
fn banner_names_host() {
    assert_eq!(
        session().banner().to_string(),
        "220 sink.test ESMTP mxgate-sink\r\n"
    );
}

#[test]
fn pipelined_transaction_in_one_read() {
    let mut s = session();
    let wire = b"EHLO client.test\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\nSubject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n";
    let outcome = drive(&mut s, &[wire]);
    assert_eq!(codes(&outcome), [250, 250, 250, 250, 354, 250, 221]);
    assert!(outcome.closed);
    assert_eq!(
        outcome.replies[0],
        "250-sink.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8"
    );
    let [message] = &outcome.messages[..] else {
        panic!("one message expected")
    };
    assert_eq!(message.helo, "client.test");
    assert!(message.extended);
    assert_eq!(message.from, "a@x.test");
    assert_eq!(message.rcpts, ["b@y.test", "c@y.test"]);
    assert_eq!(message.body, b"Subject: hi\r\n\r\n.dot\r\n");
}

#[test]
fn same_result_whatever_the_read_boundaries() {
    let wire: &[u8] = b"HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<b@y>\r\nDATA\r\n.x\r\n\r\n.\r\nQUIT\r\n";
    for size in 1..wire.len() {
        let chunks: Vec<&[u8]> = wire.chunks(size).collect();
        let outcome = drive(&mut session(), &chunks);
        assert_eq!(
            codes(&outcome),
            [250, 250, 250, 354, 250, 221],
            "size {size}"
        );
        assert_eq!(outcome.messages[0].body, b"x\r\n\r\n");
        assert_eq!(outcome.messages[0].from, "");
        assert!(!outcome.messages[0].extended);
    }
}

#[test]
fn out_of_order_commands() {
    let outcome = drive(
        &mut session(),
        &[b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nEHLO c\r\nRCPT TO:<b@y>\r\nMAIL FROM:<a@x>\r\nDATA\r\nMAIL FROM:<a@x>\r\n"],
    );
    assert_eq!(
        outcome.replies,
        [
            "503 5.5.1 Error: send HELO/EHLO first",
            "503 5.5.1 Error: need MAIL command",
            "503 5.5.1 Error: need MAIL command",
            &outcome.replies[3],
            "503 5.5.1 Error: need MAIL command",
            "250 2.1.0 Ok",
            "503 5.5.1 Error: need RCPT command",
            "503 5.5.1 Error: nested MAIL command",
        ]
    );
}

#[test]
fn rset_and_helo_end_the_transaction() {
    let outcome = drive(
        &mut session(),
        &[b"EHLO c\r\nMAIL FROM:<a@x>\r\nRSET\r\nRCPT TO:<b@y>\r\nMAIL FROM:<a@x>\r\nHELO d\r\nRCPT TO:<b@y>\r\n"],
    );
    assert_eq!(codes(&outcome), [250, 250, 250, 503, 250, 250, 503]);
}

#[test]
fn misc_commands() {
    let outcome = drive(
        &mut session(),
        &[b"NOOP\r\nVRFY root\r\nHELP\r\nEXPN list\r\nSTARTTLS\r\nBDAT 1 LAST\r\nmail from:a@x\r\n\r\n"],
    );
    assert_eq!(
        outcome.replies,
        [
            "250 2.0.0 Ok",
            "252 2.0.0 Cannot VRFY user, but will accept message and attempt delivery",
            "214 2.0.0 mxgate-sink: see RFC 5321",
            "502 5.5.2 Error: command not recognized",
            "502 5.5.1 Error: command not implemented",
            "502 5.5.1 Error: command not implemented",
            "501 5.5.4 Syntax: MAIL FROM:<address>",
            "500 5.5.2 Error: bad syntax",
        ]
    );
}

#[test]
fn long_command_line_is_refused_and_skipped() {
    let mut long = b"NOOP ".to_vec();
    long.resize(600, b'x');
    long.extend_from_slice(b"\r\nNOOP\r\n");
    let outcome = drive(&mut session(), &[&long]);
    assert_eq!(
        outcome.replies,
        ["500 5.5.2 Error: line too long", "250 2.0.0 Ok"]
    );

    // The same, split so that the CRLF straddles two reads.
    let cut = 601;
    let outcome = drive(&mut session(), &[&long[..cut], &long[cut..]]);
    assert_eq!(codes(&outcome), [500, 250]);

    // 512 octets including CRLF is still fine.
    let mut max = b"NOOP ".to_vec();
    max.resize(510, b'x');
    max.extend_from_slice(b"\r\n");
    assert_eq!(codes(&drive(&mut session(), &[&max])), [250]);
}

#[test]
fn bare_lf_in_commands_is_refused() {
    let outcome = drive(&mut session(), &[b"NOOP\nNOOP\r\n"]);
    assert_eq!(
        outcome.replies,
        ["500 5.5.2 Error: bare <LF> received", "250 2.0.0 Ok"]
    );
}

#[test]
fn partial_command_waits() {
    let outcome = drive(&mut session(), &[b"NOOP\r\nNO"]);
    assert_eq!(codes(&outcome), [250]);
    assert_eq!(outcome.pending, 2);
}

#[test]
fn mail_parameters() {
    let outcome = drive(
        &mut session(),
        &[b"EHLO c\r\nMAIL FROM:<a@x> SIZE=1001\r\nMAIL FROM:<a@x> SIZE=x\r\nMAIL FROM:<a@x> AUTH=<>\r\nMAIL FROM:<a@x> BODY=BINARYMIME\r\nMAIL FROM:<a@x> SIZE=1000 BODY=8bitmime SMTPUTF8\r\nRCPT TO:<b@y> NOTIFY=NEVER\r\n"],
    );
    assert_eq!(
        &outcome.replies[1..],
        [
            "552 5.3.4 Message size exceeds fixed limit",
            "501 5.5.4 Bad SIZE parameter",
            "555 5.5.4 Unsupported option: AUTH",
            "501 5.5.4 Unsupported BODY parameter",
            "250 2.1.0 Ok",
            "555 5.5.4 Unsupported option: NOTIFY",
        ]
    );
}

#[test]
fn too_large_message_is_refused_and_session_goes_on() {
    let mut s = Session::new("sink.test", 10);
    let outcome = drive(
        &mut s,
        &[
            b"HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n",
            b"0123456789\r\n.\r\n",
            b"MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n12345678\r\n.\r\n",
        ],
    );
    assert_eq!(
        codes(&outcome),
        [250, 250, 250, 354, 552, 250, 250, 354, 250]
    );
    assert_eq!(outcome.messages.len(), 1);
    assert_eq!(outcome.messages[0].body, b"12345678\r\n");
}

#[test]
fn recipient_cap() {
    let mut wire = b"HELO c\r\nMAIL FROM:<a@x>\r\n".to_vec();
    for _ in 0..=MAX_RECIPIENTS {
        wire.extend_from_slice(b"RCPT TO:<b@y>\r\n");
    }
    let outcome = drive(&mut session(), &[&wire]);
    assert_eq!(
        outcome.replies.last().unwrap(),
        "452 4.5.3 Error: too many recipients"
    );
    assert_eq!(outcome.replies.len(), 2 + MAX_RECIPIENTS + 1);
}

#[test]
fn data_mode_is_reported() {
    let mut s = session();
    drive(
        &mut s,
        &[b"HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\npartial"],
    );
    assert!(s.in_data());
}
