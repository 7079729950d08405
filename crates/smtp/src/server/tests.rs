//! Session engine tests: every reply for every command in every phase,
//! limits, STARTTLS, and a whole transaction with a scripted backend.

use super::*;
use crate::reply::Reply;

fn config(tls: bool) -> ServerConfig {
    ServerConfig {
        hostname: "mx.example.org".into(),
        relay_domains: vec!["example.org".into()],
        tls_available: tls,
        limits: Limits {
            max_message_size: 1000,
            max_recipients: 2,
            max_errors: 100,
            max_line: 998,
        },
    }
}

/// A session after its banner.
fn session(tls: bool) -> Session {
    let mut s = Session::new(config(tls));
    assert_eq!(s.take_output(), b"220 mx.example.org ESMTP mxgate\r\n");
    s
}

/// Runs `wire` through the session with a backend answering 250 to MAIL and
/// RCPT, 354 to DATA and `250 2.0.0 queued as X` to the message; returns the
/// output, the steps seen and the forwarded octets.
fn drive(s: &mut Session, wire: &[u8]) -> (String, Vec<Step>, Vec<u8>) {
    let mut buf = wire.to_vec();
    let mut steps = Vec::new();
    let mut forwarded = Vec::new();
    loop {
        let Input { consumed, step } = s.input(&buf);
        match &step {
            Step::Mail { .. } => s.mail_reply(&Reply::new(250, "2.1.0 backend ok")),
            Step::Rcpt { .. } => s.rcpt_reply(&Reply::new(250, "2.1.5 backend ok")),
            Step::Data => {
                s.data_reply(&Reply::new(354, "go"));
            }
            Step::Message { forward, end, .. } => {
                forwarded.extend_from_slice(&buf[..*forward]);
                if let Some(DataEnd::Complete { .. }) = end {
                    s.message_reply(&Reply::new(250, "2.0.0 queued as X"));
                }
            }
            _ => {}
        }
        buf.drain(..consumed);
        let stop = matches!(step, Step::NeedMore | Step::Close | Step::StartTls)
            || matches!(step, Step::Message { end: None, .. });
        steps.push(step);
        if stop {
            let out = String::from_utf8(s.take_output()).unwrap();
            return (out, steps, forwarded);
        }
    }
}

fn replies(s: &mut Session, wire: &str) -> String {
    drive(s, wire.as_bytes()).0
}

#[test]
fn whole_pipelined_transaction() {
    let mut s = session(false);
    let (out, steps, forwarded) = drive(
        &mut s,
        b"EHLO c.example\r\nMAIL FROM:<a@b.example> SIZE=10\r\nRCPT TO:<u@example.org>\r\n\
          DATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n",
    );
    assert!(out.starts_with("250-mx.example.org\r\n250-PIPELINING\r\n"));
    assert!(out.ends_with(
        "250 2.1.0 backend ok\r\n250 2.1.5 backend ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n\
         250 2.0.0 queued as X\r\n221 2.0.0 Bye\r\n"
    ));
    assert_eq!(forwarded, b"Subject: x\r\n\r\nhi\r\n");
    assert!(steps.contains(&Step::Mail {
        from: "a@b.example".into(),
        params: "SIZE=10".into()
    }));
    assert!(steps.contains(&Step::Rcpt {
        to: "u@example.org".into(),
        params: String::new()
    }));
    assert_eq!(steps.last(), Some(&Step::Close));
    assert!(s.closing());
}

#[test]
fn out_of_sequence_in_greeting() {
    let mut s = session(true);
    for (cmd, reply) in [
        (
            "MAIL FROM:<a@b>\r\n",
            "503 5.5.1 Error: send HELO/EHLO first\r\n",
        ),
        (
            "RCPT TO:<u@example.org>\r\n",
            "503 5.5.1 Error: send HELO/EHLO first\r\n",
        ),
        ("DATA\r\n", "503 5.5.1 Error: send HELO/EHLO first\r\n"),
        ("STARTTLS\r\n", "503 5.5.1 Error: send HELO/EHLO first\r\n"),
        ("RSET\r\n", "250 2.0.0 Ok\r\n"),
        ("NOOP\r\n", "250 2.0.0 Ok\r\n"),
        (
            "VRFY u\r\n",
            "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery\r\n",
        ),
        (
            "BDAT 0 LAST\r\n",
            "503 5.5.1 Error: send HELO/EHLO first\r\n",
        ),
        (
            "EXPN list\r\n",
            "502 5.5.1 Error: command not implemented\r\n",
        ),
        ("FOO\r\n", "500 5.5.2 Error: command not recognized\r\n"),
        (
            "MAIL FROM:x\r\n",
            "501 5.5.4 Syntax: MAIL FROM:<address>\r\n",
        ),
        ("\r\n", "500 5.5.2 Error: bad syntax\r\n"),
        ("NO\x00OP\r\n", "500 5.5.2 Error: bad syntax\r\n"),
    ] {
        assert_eq!(replies(&mut s, cmd), reply, "{cmd:?}");
    }
    assert!(replies(&mut s, "HELP\r\n").starts_with("214 2.0.0 "));
}

#[test]
fn out_of_sequence_in_ready_mail_rcpt() {
    let mut s = session(false);
    assert_eq!(replies(&mut s, "HELO c\r\n"), "250 mx.example.org\r\n");
    assert_eq!(
        replies(&mut s, "RCPT TO:<u@example.org>\r\n"),
        "503 5.5.1 Error: need MAIL command\r\n"
    );
    assert_eq!(
        replies(&mut s, "DATA\r\n"),
        "503 5.5.1 Error: need MAIL command\r\n"
    );
    assert_eq!(
        replies(&mut s, "MAIL FROM:<>\r\n"),
        "250 2.1.0 backend ok\r\n"
    );
    assert_eq!(
        replies(&mut s, "MAIL FROM:<>\r\n"),
        "503 5.5.1 Error: nested MAIL command\r\n"
    );
    assert_eq!(
        replies(&mut s, "DATA\r\n"),
        "503 5.5.1 Error: need RCPT command\r\n"
    );
    assert_eq!(
        replies(&mut s, "RCPT TO:<u@other.example>\r\n"),
        "554 5.7.1 Error: Relay access denied\r\n"
    );
    assert_eq!(
        replies(&mut s, "DATA\r\n"),
        "554 5.5.1 Error: no valid recipients\r\n"
    );
    assert_eq!(
        replies(&mut s, "STARTTLS\r\n"),
        "502 5.5.1 Error: command not implemented\r\n"
    );
    assert_eq!(
        replies(&mut s, "RCPT TO:<u@example.org>\r\n"),
        "250 2.1.5 backend ok\r\n"
    );
    assert_eq!(
        replies(&mut s, "MAIL FROM:<>\r\n"),
        "503 5.5.1 Error: nested MAIL command\r\n"
    );
    let (out, steps, _) = drive(&mut s, b"RSET\r\n");
    assert_eq!(out, "250 2.0.0 Ok\r\n");
    assert_eq!(steps[0], Step::Reset);
    assert!(!s.transaction_open());
    let (_, steps, _) = drive(&mut s, b"RSET\r\n");
    assert_eq!(steps[0], Step::Replied);
}

#[test]
fn ehlo_in_transaction_resets() {
    let mut s = session(false);
    drive(&mut s, b"EHLO c\r\nMAIL FROM:<>\r\n");
    assert!(s.transaction_open());
    let (_, steps, _) = drive(&mut s, b"EHLO c\r\n");
    assert_eq!(steps[0], Step::Reset);
    assert!(!s.transaction_open());
    assert!(s.helo().unwrap().esmtp);
}

#[test]
fn backend_refusals_pass_through_and_keep_state() {
    let mut s = session(false);
    drive(&mut s, b"EHLO c\r\n");
    assert!(matches!(
        s.input(b"MAIL FROM:<a@b>\r\n").step,
        Step::Mail { .. }
    ));
    s.mail_reply(&Reply::new(451, "4.3.0 backend busy"));
    assert_eq!(s.take_output(), b"451 4.3.0 backend busy\r\n");
    assert!(!s.transaction_open());
    assert!(matches!(
        s.input(b"MAIL FROM:<a@b>\r\n").step,
        Step::Mail { .. }
    ));
    s.mail_reply(&Reply::new(250, "2.1.0 ok"));
    assert!(matches!(
        s.input(b"RCPT TO:<x@example.org>\r\n").step,
        Step::Rcpt { .. }
    ));
    s.rcpt_reply(&Reply::new(550, "5.1.1 no such user"));
    assert_eq!(s.input(b"DATA\r\n").step, Step::Replied);
    let out = String::from_utf8(s.take_output()).unwrap();
    assert!(out.ends_with("550 5.1.1 no such user\r\n554 5.5.1 Error: no valid recipients\r\n"));
    assert!(matches!(
        s.input(b"RCPT TO:<y@example.org>\r\n").step,
        Step::Rcpt { .. }
    ));
    s.rcpt_reply(&Reply::new(250, "2.1.5 ok"));
    assert_eq!(s.input(b"DATA\r\n").step, Step::Data);
    assert!(!s.data_reply(&Reply::new(554, "5.5.0 no")));
    assert!(!s.in_data());
    assert!(s.transaction_open());
    s.relay_failed(Reply::new(451, "4.4.2 failed"));
    assert!(!s.transaction_open());
    assert!(String::from_utf8(s.take_output())
        .unwrap()
        .ends_with("451 4.4.2 failed\r\n"));
}

#[test]
fn relay_failure_during_data_waits_for_the_end() {
    let mut s = session(false);
    drive(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<u@example.org>\r\nDATA\r\n",
    );
    assert!(s.in_data());
    s.relay_failed(Reply::new(451, "4.4.2 failed"));
    assert!(s.take_output().is_empty());
    let Input { step, .. } = s.input(b"line\r\n.\r\n");
    let Step::Message {
        forward,
        refused,
        end: Some(DataEnd::Refused { reply, .. }),
    } = step
    else {
        panic!("{step:?}");
    };
    assert_eq!((forward, refused, reply.code), (0, true, 451));
    assert_eq!(s.take_output(), b"451 4.4.2 failed\r\n");
    assert!(!s.transaction_open());
}

#[test]
fn recipient_limit() {
    let mut s = session(false);
    let (out, _, _) = drive(
        &mut s,
        b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n\
          RCPT TO:<c@example.org>\r\n",
    );
    assert!(out.ends_with("250 2.1.5 backend ok\r\n452 4.5.3 Error: too many recipients\r\n"));
}

#[test]
fn size_declared_at_mail() {
    let mut s = session(false);
    let out = replies(&mut s, "EHLO c\r\nMAIL FROM:<> SIZE=1001\r\n");
    assert!(out.ends_with("552 5.3.4 Error: message size exceeds fixed maximum message size\r\n"));
    assert!(!s.transaction_open());
}

#[test]
fn refused_message_reply_at_its_end() {
    for (body, reply) in [
        (
            &b"a\nb\r\n.\r\n"[..],
            "550 5.6.0 Error: bare LF/CR not allowed\r\n",
        ),
        (
            &b"0123456789\r\n".repeat(100)[..],
            "552 5.3.4 Error: message size exceeds fixed maximum message size\r\n",
        ),
    ] {
        let mut s = session(false);
        drive(
            &mut s,
            b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<u@example.org>\r\nDATA\r\n",
        );
        let mut wire = body.to_vec();
        if !wire.ends_with(b".\r\n") {
            wire.extend_from_slice(b"\r\n.\r\n");
        }
        let (out, steps, forwarded) = drive(&mut s, &wire);
        assert_eq!(out, reply);
        assert!(forwarded.is_empty());
        assert!(steps.iter().any(|step| matches!(
            step,
            Step::Message {
                end: Some(DataEnd::Refused { .. }),
                ..
            }
        )));
    }
}

#[test]
fn too_long_command_line_is_skipped_and_answered() {
    let mut s = session(false);
    let mut wire = vec![b'N'; 600];
    wire.extend_from_slice(b"\r\nNOOP\r\n");
    let out = replies(&mut s, std::str::from_utf8(&wire).unwrap());
    assert_eq!(out, "500 5.5.2 Error: line too long\r\n250 2.0.0 Ok\r\n");
    // Split over reads, CR and LF in different reads.
    let mut s = session(false);
    let Input { consumed, step } = s.input(&[b'x'; 700]);
    assert_eq!((consumed, step), (700, Step::NeedMore));
    let Input { consumed, step } = s.input(b"xx\r");
    assert_eq!((consumed, step), (2, Step::NeedMore));
    let Input { consumed, step } = s.input(b"\r\n");
    assert_eq!((consumed, step), (2, Step::Replied));
    assert_eq!(s.take_output(), b"500 5.5.2 Error: line too long\r\n");
}

#[test]
fn too_many_errors_closes() {
    let mut cfg = config(false);
    cfg.limits.max_errors = 3;
    let mut s = Session::new(cfg);
    s.take_output();
    let (out, steps, _) = drive(&mut s, b"FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n");
    assert_eq!(
        out,
        "500 5.5.2 Error: command not recognized\r\n500 5.5.2 Error: command not recognized\r\n\
         500 5.5.2 Error: command not recognized\r\n421 4.7.0 mx.example.org Error: too many errors\r\n"
    );
    assert_eq!(steps.last(), Some(&Step::Close));
    assert_eq!(s.input(b"NOOP\r\n").step, Step::Close);
}

#[test]
fn timeout_closes_with_421() {
    let mut s = session(false);
    assert_eq!(s.timeout(), Step::Close);
    assert_eq!(
        s.take_output(),
        b"421 4.4.2 mx.example.org Error: timeout exceeded\r\n"
    );
}

#[test]
fn starttls_discards_and_resets() {
    let mut s = session(true);
    let ehlo = replies(&mut s, "EHLO c\r\n");
    assert!(ehlo.contains("250 STARTTLS\r\n"));
    let wire = b"STARTTLS\r\nMAIL FROM:<injected@evil>\r\n";
    let Input { consumed, step } = s.input(wire);
    assert_eq!(step, Step::StartTls);
    assert_eq!(consumed, 10, "only the STARTTLS line is consumed");
    assert_eq!(s.take_output(), b"220 2.0.0 Ready to start TLS\r\n");
    assert!(s.tls_active());
    assert!(s.helo().is_none(), "back to the greeting phase");
    assert_eq!(
        replies(&mut s, "MAIL FROM:<a@b>\r\n"),
        "503 5.5.1 Error: send HELO/EHLO first\r\n"
    );
    let ehlo = replies(&mut s, "EHLO c\r\n");
    assert!(!ehlo.contains("STARTTLS"));
    assert_eq!(
        replies(&mut s, "STARTTLS\r\n"),
        "503 5.5.1 Error: TLS already active\r\n"
    );
}

#[test]
fn starttls_refused_in_transaction() {
    let mut s = session(true);
    drive(&mut s, b"EHLO c\r\nMAIL FROM:<>\r\n");
    assert_eq!(
        replies(&mut s, "STARTTLS\r\n"),
        "503 5.5.1 Error: MAIL transaction in progress\r\n"
    );
}

#[test]
fn postmaster_and_source_route() {
    let mut s = session(false);
    drive(&mut s, b"EHLO c\r\nMAIL FROM:<>\r\n");
    let (_, steps, _) = drive(&mut s, b"RCPT TO:<a@other.example>\r\n");
    assert_eq!(
        steps[0],
        Step::RcptRefused {
            to: "a@other.example".into(),
            code: 554
        }
    );
    let (_, steps, _) = drive(&mut s, b"RCPT TO:<Postmaster>\r\n");
    assert_eq!(
        steps[0],
        Step::Rcpt {
            to: "postmaster@example.org".into(),
            params: String::new()
        }
    );
    assert_eq!(
        replies(&mut s, "RCPT TO:<@relay.example:u@example.org>\r\n"),
        "554 5.7.1 Error: Relay access denied\r\n"
    );
    assert_eq!(
        replies(&mut s, "RCPT TO:<u@example.org> NOTIFY=NEVER\r\n"),
        "555 5.5.4 Error: unsupported parameter: NOTIFY=NEVER\r\n"
    );
}
