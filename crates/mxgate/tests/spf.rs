//! Black-box tests of SPF at MAIL FROM (`[auth] spf`) against a fake DNS
//! server (`mxgate_testkit`): `reject` refuses an SPF fail with
//! `550 5.7.23`, every other result is delivered with one `Received-SPF:`
//! header right after mxgate's `Received:` line.

mod support;

use mxgate_testkit::DnsServer;
use std::net::SocketAddr;
use std::time::Duration;
use support::free_addr;
use support::gateway::{smtp_policy, Gateway, Sink, SmtpClient};

const WAIT: Duration = Duration::from_secs(10);

/// A DNS server publishing SPF for good.test (allows 127.0.0.1) and
/// bad.test (allows only 192.0.2.1).
fn dns() -> DnsServer {
    let dns = DnsServer::start();
    dns.add_txt("good.test", "v=spf1 ip4:127.0.0.1 -all", 300);
    dns.add_txt("bad.test", "v=spf1 ip4:192.0.2.1 -all", 300);
    dns
}

/// An smtp-mode gateway on `bind` asking `dns`, with `[auth] spf = mode`.
fn start(bind: SocketAddr, dns: &DnsServer, mode: &str) -> (Gateway, Sink) {
    let sink = Sink::start("sink", false);
    let policy = format!(
        "{}[auth]\nspf = \"{mode}\"\n",
        smtp_policy(bind, sink.addr, "")
    );
    let extra = format!("[dns]\nservers = [\"{}\"]\n", dns.addr());
    let gw = Gateway::start_with_node_extra("gw", &policy, &extra);
    gw.wait_metric("mxgate_backend_up{pool=\"mta\",server=\"mta1\"}", 1.0, WAIT);
    (gw, sink)
}

fn verdicts(result: &str) -> String {
    format!("mxgate_filter_verdicts_total{{check=\"spf\",result=\"{result}\"}}")
}

/// A session that says EHLO client.test.
fn client(bind: SocketAddr) -> SmtpClient {
    let mut c = SmtpClient::connect(bind).unwrap();
    assert!(c.reply().unwrap().starts_with("220 "));
    assert!(c.command("EHLO client.test").unwrap().starts_with("250"));
    c
}

/// Sends one message from `from` and returns the stored copy.
fn deliver(bind: SocketAddr, sink: &Sink, from: &str) -> String {
    let before = sink.messages().len();
    let mut c = client(bind);
    let reply = c.send_mail(from, "b@example.test", "hello").unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    c.command("QUIT").unwrap();
    let msgs = sink.messages();
    assert_eq!(msgs.len(), before + 1);
    msgs.into_iter()
        .find(|m| m.contains(&format!("envelope-from=\"{from}\"")))
        .expect("the message just sent")
}

/// The header block that starts with mxgate's `Received:` line and its
/// next header field (unfolded).
fn received_then_next(stored: &str) -> (String, String) {
    let start = stored
        .find("Received: from client.test")
        .expect("our Received line");
    let mut fields = Vec::new();
    for line in stored[start..].split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                *last = format!("{last} {}", line.trim());
            }
        } else if line.is_empty() {
            break;
        } else {
            fields.push(line.to_string());
        }
    }
    (fields[0].clone(), fields[1].clone())
}

#[test]
fn reject_refuses_a_fail_and_tags_a_pass() {
    let dns = dns();
    let bind = free_addr();
    let (gw, sink) = start(bind, &dns, "reject");
    let mut c = client(bind);
    let r = c.command("MAIL FROM:<a@bad.test>").unwrap();
    assert!(r.starts_with("550 5.7.23"), "{r}");
    c.command("QUIT").unwrap();
    gw.wait_metric(&verdicts("fail"), 1.0, WAIT);
    assert!(sink.messages().is_empty());

    let stored = deliver(bind, &sink, "a@good.test");
    let (received, next) = received_then_next(&stored);
    assert!(received.contains("by mx.gw.test"), "{received}");
    assert!(
        next.starts_with(
            "Received-SPF: pass (mxgate: domain of a@good.test designates 127.0.0.1 \
             as permitted sender)"
        ),
        "{next}"
    );
    assert!(next.contains("client-ip=127.0.0.1;"), "{next}");
    assert!(next.contains("envelope-from=\"a@good.test\";"), "{next}");
    assert!(next.contains("helo=client.test;"), "{next}");
    assert_eq!(stored.matches("Received-SPF:").count(), 1);
    gw.wait_metric(&verdicts("pass"), 1.0, WAIT);
}

#[test]
fn tag_delivers_a_fail_and_a_domain_without_spf_with_their_results() {
    let dns = dns();
    let bind = free_addr();
    let (gw, sink) = start(bind, &dns, "tag");
    let stored = deliver(bind, &sink, "a@bad.test");
    let (_, next) = received_then_next(&stored);
    assert!(next.starts_with("Received-SPF: fail "), "{next}");
    let stored = deliver(bind, &sink, "a@nospf.test");
    let (_, next) = received_then_next(&stored);
    assert!(next.starts_with("Received-SPF: none "), "{next}");
    gw.wait_metric(&verdicts("fail"), 1.0, WAIT);
    gw.wait_metric(&verdicts("none"), 1.0, WAIT);
}

#[test]
fn an_spf_pass_keys_greylisting_on_the_sender_domain() {
    let dns = dns();
    let bind = free_addr();
    let sink = Sink::start("sink", false);
    let policy = format!(
        "{}[greylist]\nenabled = true\ndelay_s = 1\n[auth]\nspf = \"tag\"\n",
        smtp_policy(bind, sink.addr, "")
    );
    let extra = format!("[dns]\nservers = [\"{}\"]\n", dns.addr());
    let gw = Gateway::start_with_node_extra("gw", &policy, &extra);
    gw.wait_metric("mxgate_backend_up{pool=\"mta\",server=\"mta1\"}", 1.0, WAIT);
    let mut c = client(bind);
    assert!(c
        .command("MAIL FROM:<x@good.test>")
        .unwrap()
        .starts_with("250"));
    let r = c.command("RCPT TO:<bob@example.test>").unwrap();
    assert!(r.starts_with("451"), "first attempt: {r}");
    c.command("QUIT").unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    // Another address of the SPF-passed domain is the same greylist key.
    let mut c = client(bind);
    assert!(c
        .command("MAIL FROM:<y@good.test>")
        .unwrap()
        .starts_with("250"));
    let r = c.command("RCPT TO:<bob@example.test>").unwrap();
    assert!(r.starts_with("250"), "retry from the same SPF domain: {r}");
    c.command("QUIT").unwrap();
    // Without an SPF pass (no record) the sender address is part of the key.
    let mut c = client(bind);
    c.command("MAIL FROM:<x@nospf.test>").unwrap();
    let r = c.command("RCPT TO:<bob@example.test>").unwrap();
    assert!(r.starts_with("451"), "{r}");
    c.command("QUIT").unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let mut c = client(bind);
    c.command("MAIL FROM:<y@nospf.test>").unwrap();
    let r = c.command("RCPT TO:<bob@example.test>").unwrap();
    assert!(r.starts_with("451"), "a new triplet: {r}");
    c.command("QUIT").unwrap();
}

#[test]
fn dns_trouble_is_a_temperror_that_never_refuses() {
    let dns = dns();
    dns.set_servfail("broken.test");
    let bind = free_addr();
    let (gw, sink) = start(bind, &dns, "reject");
    let stored = deliver(bind, &sink, "a@broken.test");
    let (_, next) = received_then_next(&stored);
    assert!(next.starts_with("Received-SPF: temperror "), "{next}");
    gw.wait_metric(&verdicts("temperror"), 1.0, WAIT);
}
