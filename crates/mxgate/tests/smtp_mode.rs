//! Black-box tests of smtp mode: mxgate speaks SMTP to the sender and relays
//! each transaction to a real backend, answering the end of data only with
//! the backend's own reply.

mod support;

use std::time::Duration;
use support::gateway::{smtp_policy, Gateway, SmtpClient};
use support::{free_addr, output_text, swaks, Postfix, DELIVERED};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn relays_to_postfix_with_xclient_and_answers_with_its_reply() {
    if Postfix::skip_unless_available("relays_to_postfix_with_xclient_and_answers_with_its_reply") {
        return;
    }
    let pf = Postfix::builder("pfx").xclient(true).start();
    let bind = free_addr();
    let gw = Gateway::start(
        "gw",
        &smtp_policy(bind, pf.addr(), "client_identity = \"xclient\""),
    );
    gw.wait_metric("mxgate_backend_up{pool=\"mta\",server=\"mta1\"}", 1.0, WAIT);
    let out = swaks(&[
        "--server",
        &bind.to_string(),
        "--local-interface",
        "127.0.0.2",
        "--pipeline",
        "--from",
        "sender@client.test",
        "--to",
        "user@example.test",
    ]);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("<~  220 mx.gw.test ESMTP") || text.contains("<-  220 mx.gw.test ESMTP"),
        "{text}"
    );
    // The 250 after DATA is Postfix's own ("queued as ...").
    assert!(text.contains("250 2.0.0 Ok: queued as"), "{text}");
    pf.wait_log("client=unknown[127.0.0.2]", WAIT);
    pf.wait_log(DELIVERED, WAIT);
    gw.wait_metric(
        "mxgate_smtp_messages_total{listener=\"mx\",result=\"accepted\"}",
        1.0,
        WAIT,
    );
}

#[test]
fn messages_arrive_byte_identical_after_one_received_line() {
    let (_gw, sink, bind) = Gateway::start_smtp_with_sink("");
    let mut c = SmtpClient::connect(bind).unwrap();
    assert!(c.reply().unwrap().starts_with("220 mx.gw.test"));
    let ehlo = c.command("EHLO client.test").unwrap();
    for ext in [
        "PIPELINING",
        "SIZE",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
    ] {
        assert!(ehlo.contains(ext), "{ehlo}");
    }
    // Dot-stuffed lines, an 8-bit line and a long line pass unchanged.
    let body = "Subject: exact\r\n\r\n..leading dot\r\n.\u{e9}t\u{e9}\r\nline two\r\n";
    c.envelope("a@client.test", "b@example.test");
    assert!(c.command("DATA").unwrap().starts_with("354"));
    let reply = c.command(&format!("{body}.")).unwrap();
    assert!(
        reply.starts_with("250 2.0.0 Ok: queued as"),
        "the sink's own reply: {reply}"
    );
    c.command("QUIT").unwrap();
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    let stored = &msgs[0];
    let received = stored
        .find("Received: from client.test")
        .expect("our Received line");
    let after = &stored[received..];
    let end_of_header = after.find("\r\nSubject: exact").expect("original follows") + 2;
    assert!(after[..end_of_header].contains("by mx.gw.test"), "{after}");
    // The sink removes the dot-stuffing, as any MTA does: what it stored
    // is the sender's message, byte for byte.
    assert_eq!(
        &after[end_of_header..],
        "Subject: exact\r\n\r\n.leading dot\r\n\u{e9}t\u{e9}\r\nline two\r\n"
    );
}

#[test]
fn only_relay_domains_are_accepted() {
    let (_gw, _sink, bind) = Gateway::start_smtp_with_sink("");
    let mut c = SmtpClient::connect(bind).unwrap();
    c.reply().unwrap();
    c.command("EHLO client.test").unwrap();
    assert!(c
        .command("MAIL FROM:<a@client.test>")
        .unwrap()
        .starts_with("250"));
    for rcpt in [
        "x@other.test",
        "x%other.test@example.test",
        "other.test!x@example.test",
        "@other.test:x@example.test",
    ] {
        let r = c.command(&format!("RCPT TO:<{rcpt}>")).unwrap();
        assert!(r.starts_with("554 5.7.1"), "{rcpt}: {r}");
    }
    assert!(c
        .command("RCPT TO:<Fine@EXAMPLE.test>")
        .unwrap()
        .starts_with("250"));
}

#[test]
fn a_dead_backend_gives_the_sender_451_and_keeps_the_mail_with_it() {
    let closed = free_addr();
    let bind = free_addr();
    let gw = Gateway::start("gw", &smtp_policy(bind, closed, ""));
    let mut c = SmtpClient::connect(bind).unwrap();
    assert!(c.reply().unwrap().starts_with("220"));
    c.command("EHLO client.test").unwrap();
    let r = c.command("MAIL FROM:<a@client.test>").unwrap();
    assert!(r.starts_with("451 4.4."), "{r}");
    drop(c);
    gw.wait_metric(
        "mxgate_listener_connections_total{listener=\"mx\",result=\"accepted\"}",
        1.0,
        WAIT,
    );
}

#[test]
fn starttls_with_swaks() {
    let (_gw, sink, bind) = Gateway::start_smtp_with_sink("");
    let out = swaks(&[
        "--server",
        &bind.to_string(),
        "--tls",
        "--from",
        "sender@client.test",
        "--to",
        "user@example.test",
    ]);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("TLS started"), "{text}");
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].contains("with ESMTPS"), "{}", msgs[0]);
}

#[test]
fn every_transaction_is_tracked_and_searchable() {
    let (gw, _sink, bind) = Gateway::start_smtp_with_sink("");
    let mut c = SmtpClient::connect(bind).unwrap();
    c.reply().unwrap();
    c.command("EHLO tracked.client.test").unwrap();
    let queued = c
        .send_mail("alice@client.test", "bob@example.test", "hi")
        .unwrap();
    assert!(queued.starts_with("250 "), "{queued}");
    assert!(c
        .command("MAIL FROM:<carol@client.test>")
        .unwrap()
        .starts_with("250"));
    assert!(c
        .command("RCPT TO:<dave@elsewhere.test>")
        .unwrap()
        .starts_with("554"));
    c.command("QUIT").unwrap();
    drop(c);
    let found = support::poll(WAIT, || {
        let (code, body) = gw.api_get("/api/v1/tracking?recipient=bob@example")?;
        (code == 200 && body.contains("alice@client.test")).then_some(body)
    })
    .expect("the session is tracked");
    assert!(
        found.contains("\"helo\":\"tracked.client.test\""),
        "{found}"
    );
    assert!(found.contains("\"result\":\"accepted\""), "{found}");
    assert!(found.contains("\"server\":\"mta/mta1\""), "{found}");
    assert!(found.contains("250 2.0.0 Ok: queued as"), "{found}");
    // The refused transaction is in the same session's record.
    assert!(found.contains("carol@client.test"), "{found}");
    assert!(found.contains("\"reply_code\":554"), "{found}");
    let (code, none) = gw.api_get("/api/v1/tracking?sender=nobody@").unwrap();
    assert_eq!((code, none.trim()), (200, "[]"));
}
