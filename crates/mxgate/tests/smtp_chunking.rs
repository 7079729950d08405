//! Black-box tests of CHUNKING in smtp mode: a sender's BDAT chunks reach a
//! DATA-only backend as the same message, and every reply is counted in
//! `mxgate_smtp_replies_total{listener,phase,class}`.

mod support;

use std::time::Duration;
use support::gateway::{Gateway, SmtpClient};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn bdat_chunks_arrive_byte_identical_and_replies_are_counted() {
    let (gw, sink, bind) = Gateway::start_smtp_with_sink("");
    let mut c = SmtpClient::connect(bind).unwrap();
    assert!(c.reply().unwrap().starts_with("220 mx.gw.test"));
    let ehlo = c.command("EHLO client.test").unwrap();
    assert!(ehlo.contains("CHUNKING"), "{ehlo}");
    // The whole transaction pipelined in one write: lines starting with a
    // dot, a CRLF split across two chunks, 8-bit content.
    let chunks: [&[u8]; 3] = [
        b"Subject: chunked\r\n\r\n.leading dot\r",
        b"\n..two dots\r\n\xc3\xa9t\xc3\xa9\r\n.",
        b"\r\nlast line\r\n",
    ];
    let mut wire =
        b"MAIL FROM:<a@client.test>\r\nRCPT TO:<x@other.test>\r\nRCPT TO:<b@example.test>\r\n"
            .to_vec();
    for (i, chunk) in chunks.iter().enumerate() {
        let last = if i == chunks.len() - 1 { " LAST" } else { "" };
        wire.extend_from_slice(format!("BDAT {}{last}\r\n", chunk.len()).as_bytes());
        wire.extend_from_slice(chunk);
    }
    c.send(&wire).unwrap();
    assert!(c.reply().unwrap().starts_with("250"), "MAIL");
    assert!(
        c.reply().unwrap().starts_with("554 5.7.1"),
        "RCPT other.test"
    );
    assert!(c.reply().unwrap().starts_with("250"), "RCPT example.test");
    for chunk in &chunks[..2] {
        assert_eq!(
            c.reply().unwrap(),
            format!("250 2.0.0 {} octets received\r\n", chunk.len())
        );
    }
    let last = c.reply().unwrap();
    assert!(
        last.starts_with("250 2.0.0 Ok: queued as"),
        "the sink's own reply: {last}"
    );
    assert!(c.command("QUIT").unwrap().starts_with("221"));

    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    let stored = &msgs[0];
    let received = stored
        .find("Received: from client.test")
        .expect("our Received line");
    let after = &stored[received..];
    let start = after
        .find("\r\nSubject: chunked")
        .expect("original follows")
        + 2;
    assert_eq!(
        &after[start..],
        "Subject: chunked\r\n\r\n.leading dot\r\n..two dots\r\n\u{e9}t\u{e9}\r\n.\r\nlast line\r\n"
    );

    let sample = |phase: &str, class: &str| {
        format!("mxgate_smtp_replies_total{{listener=\"mx\",phase=\"{phase}\",class=\"{class}\"}}")
    };
    gw.wait_metric(&sample("rcpt", "2xx"), 1.0, WAIT);
    let text = gw.metrics_text();
    for (phase, class, value) in [
        ("connect", "2xx", 1.0),
        ("helo", "2xx", 1.0),
        ("mail", "2xx", 1.0),
        ("rcpt", "2xx", 1.0),
        ("rcpt", "5xx", 1.0),
        ("data", "2xx", 2.0),
        ("end_of_data", "2xx", 1.0),
        ("end_of_data", "5xx", 0.0),
        ("other", "2xx", 1.0),
    ] {
        assert_eq!(
            support::gateway::metric_value(&text, &sample(phase, class)),
            Some(value),
            "{phase} {class}:\n{text}"
        );
    }
}
