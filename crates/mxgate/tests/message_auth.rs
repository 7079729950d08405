//! Black-box tests of DKIM, ARC and DMARC at end of data (`[auth] dkim`,
//! `arc`, `dmarc`) against a fake DNS server publishing a real Ed25519
//! DKIM key and DMARC records: signed mail is delivered with one
//! `Authentication-Results:` header, a broken signature and a DMARC
//! `p=reject` failure are refused with 550 and never reach the backend, a
//! large message spills to the spool and still verifies, a DMARC pass
//! skips greylisting, and every verdict is in the tracking record.

mod support;

use mxgate_testkit::{DkimSigner25519, DnsServer};
use std::net::SocketAddr;
use std::time::Duration;
use support::free_addr;
use support::gateway::{smtp_policy, Gateway, Sink, SmtpClient};

const WAIT: Duration = Duration::from_secs(10);

/// A DNS server with the signing key of signed.test, SPF for it, and DMARC
/// records (p=reject for signed.test and strict.test).
fn dns() -> (DnsServer, DkimSigner25519) {
    let dns = DnsServer::start();
    let signer = DkimSigner25519::new("signed.test", "s1");
    signer.publish(&dns);
    dns.add_txt("signed.test", "v=spf1 ip4:192.0.2.1 -all", 300);
    dns.add_txt("_dmarc.signed.test", "v=DMARC1; p=reject", 300);
    dns.add_txt("_dmarc.strict.test", "v=DMARC1; p=reject", 300);
    (dns, signer)
}

/// An smtp-mode gateway asking `dns`, with `auth` as its `[auth]` body and
/// `extra` appended to the policy.
fn start(bind: SocketAddr, dns: &DnsServer, auth: &str, extra: &str) -> (Gateway, Sink) {
    let sink = Sink::start("sink", false);
    let policy = format!(
        "{}[auth]\n{auth}\n{extra}",
        smtp_policy(bind, sink.addr, "")
    );
    let node = format!("[dns]\nservers = [\"{}\"]\n", dns.addr());
    let gw = Gateway::start_with_node_extra("gw", &policy, &node);
    gw.wait_metric("mxgate_backend_up{pool=\"mta\",server=\"mta1\"}", 1.0, WAIT);
    (gw, sink)
}

fn message(from: &str, filler_lines: usize) -> Vec<u8> {
    let mut m = format!(
        "From: Alice <{from}>\r\nTo: b@example.test\r\nSubject: hello\r\n\
         Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@signed.test>\r\n\r\n\
         Hello.\r\n.starts with a dot\r\n"
    )
    .into_bytes();
    for i in 0..filler_lines {
        m.extend_from_slice(
            format!("filler line {i:06} ........................................\r\n").as_bytes(),
        );
    }
    m
}

/// Sends `message` from `from` in its own session and returns the reply
/// to the final dot.
fn send(bind: SocketAddr, from: &str, message: &[u8]) -> String {
    let mut c = SmtpClient::connect(bind).unwrap();
    assert!(c.reply().unwrap().starts_with("220 "));
    assert!(c.command("EHLO client.test").unwrap().starts_with("250"));
    let reply = c.send_message(from, "b@example.test", message).unwrap();
    c.command("QUIT").unwrap();
    reply
}

fn verdicts(check: &str, result: &str) -> String {
    format!("mxgate_filter_verdicts_total{{check=\"{check}\",result=\"{result}\"}}")
}

#[test]
fn signed_mail_is_delivered_with_one_results_header_and_a_trail() {
    let (dns, signer) = dns();
    let bind = free_addr();
    let (gw, sink) = start(
        bind,
        &dns,
        "dkim = \"reject\"\narc = \"tag\"\ndmarc = \"enforce\"",
        "",
    );
    // A sender-supplied result in our name must not survive.
    let mut forged =
        b"Authentication-Results: mx.gw.test; dkim=pass header.d=bank.test\r\n".to_vec();
    forged.extend_from_slice(&message("alice@signed.test", 0));
    let reply = send(bind, "alice@signed.test", &signer.sign(&forged));
    assert!(reply.starts_with("250 "), "{reply}");
    let stored = sink.messages().pop().expect("delivered");
    assert_eq!(
        stored.matches("Authentication-Results:").count(),
        1,
        "{stored}"
    );
    assert!(!stored.contains("bank.test"), "{stored}");
    let results = stored
        .split("Authentication-Results: ")
        .nth(1)
        .unwrap()
        .split("\r\n")
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(results.starts_with("mx.gw.test;"), "{results}");
    assert!(
        results.contains("dkim=pass") && results.contains("header.d=signed.test"),
        "{results}"
    );
    assert!(results.contains("arc=none"), "{results}");
    assert!(
        results.contains("dmarc=pass header.from=signed.test policy.dmarc=reject"),
        "{results}"
    );
    // The Results header follows mxgate's Received line; the body is intact.
    let received = stored.find("Received: from client.test").unwrap();
    assert!(received < stored.find("Authentication-Results:").unwrap());
    assert!(
        stored.contains("\r\n.starts with a dot\r\n")
            || stored.contains("\r\n..starts with a dot\r\n"),
        "{stored}"
    );
    gw.wait_metric(&verdicts("dkim", "pass"), 1.0, WAIT);
    gw.wait_metric(&verdicts("dmarc", "pass"), 1.0, WAIT);
    let tracked = support::poll(WAIT, || {
        let (code, body) = gw.api_get("/api/v1/tracking?sender=alice@signed.test")?;
        (code == 200 && body.contains("\"check\":\"dmarc\"")).then_some(body)
    })
    .expect("the verdict trail is tracked");
    assert!(
        tracked
            .contains("{\"check\":\"dkim\",\"result\":\"pass\",\"detail\":\"signed.test:pass\"}"),
        "{tracked}"
    );
    assert!(
        tracked.contains(
            "{\"check\":\"dmarc\",\"result\":\"pass\",\"detail\":\"signed.test p=reject\"}"
        ),
        "{tracked}"
    );
}

#[test]
fn broken_signatures_and_dmarc_reject_failures_are_refused_before_the_backend_takes_them() {
    let (dns, signer) = dns();
    let bind = free_addr();
    let (gw, sink) = start(bind, &dns, "dkim = \"reject\"\ndmarc = \"enforce\"", "");
    let mut tampered = signer.sign(&message("alice@signed.test", 3));
    let at = tampered.len() - 10;
    tampered[at] ^= 0x01;
    let reply = send(bind, "alice@signed.test", &tampered);
    assert!(reply.starts_with("550 5.7.20"), "{reply}");

    let unsigned = message("carol@strict.test", 0);
    let reply = send(bind, "carol@strict.test", &unsigned);
    assert!(reply.starts_with("550 5.7.1"), "{reply}");
    // Both messages fail DMARC (the tampered one too: SPF does not pass
    // from 127.0.0.1 and its signature is broken).
    gw.wait_metric(&verdicts("dmarc", "fail"), 2.0, WAIT);
    gw.wait_metric(&verdicts("dkim", "fail"), 1.0, WAIT);
    assert!(sink.messages().is_empty(), "nothing reached the backend");
    // The backend saw no final dot, so it queued nothing; mxgate still works.
    let reply = send(
        bind,
        "alice@signed.test",
        &signer.sign(&message("alice@signed.test", 0)),
    );
    assert!(reply.starts_with("250 "), "{reply}");
    assert_eq!(sink.messages().len(), 1);
}

#[test]
fn a_large_message_spills_to_the_spool_and_still_verifies() {
    let (dns, signer) = dns();
    let bind = free_addr();
    let (gw, sink) = start(bind, &dns, "dkim = \"reject\"\nhold_memory_kb = 16", "");
    let big = signer.sign(&message("alice@signed.test", 20_000));
    assert!(big.len() > 1_000_000);
    let reply = send(bind, "alice@signed.test", &big);
    assert!(reply.starts_with("250 "), "{reply}");
    let stored = sink.messages().pop().unwrap();
    assert!(stored.contains("dkim=pass"), "verified after the spill");
    assert!(stored.contains("filler line 019999"));
    let spool = gw.data_dir().join("spool");
    assert!(spool.is_dir(), "the spool lives in the data directory");
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "nothing left behind"
    );
}

#[test]
fn a_dmarc_pass_skips_greylisting_and_anything_else_is_deferred_at_end_of_data() {
    let (dns, signer) = dns();
    let bind = free_addr();
    let (gw, sink) = start(
        bind,
        &dns,
        "dmarc = \"tag\"",
        "[greylist]\nenabled = true\nskip_dmarc_pass = true\n",
    );
    let reply = send(
        bind,
        "alice@signed.test",
        &signer.sign(&message("alice@signed.test", 0)),
    );
    assert!(
        reply.starts_with("250 "),
        "a DMARC pass is not greylisted: {reply}"
    );
    gw.wait_metric(&verdicts("greylist", "skip"), 1.0, WAIT);
    let reply = send(
        bind,
        "carol@unsigned.test",
        &message("carol@unsigned.test", 0),
    );
    assert!(
        reply.starts_with("451 4.7.1"),
        "greylisted at end of data: {reply}"
    );
    assert_eq!(sink.messages().len(), 1);
}
