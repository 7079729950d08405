//! Black-box tests of forward-confirmed reverse DNS at connect (`[screen]
//! reverse_dns`, `[[list]] reverse_name`) against a fake DNS server
//! (`mxgate_testkit`).
//!
//! The client is 192.0.2.25, announced by a PROXY v1 header from the test
//! (a trusted upstream on loopback): the resolver answers the loopback
//! reverse zone itself (RFC 6761, or from /etc/hosts), so a PTR record for
//! 127.0.0.1 on the fake server would never be asked.

mod support;

use mxgate_testkit::{reverse_name, DnsServer};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use support::free_addr;
use support::gateway::{l4_policy, smtp_policy, Gateway, Sink, SmtpClient};

const WAIT: Duration = Duration::from_secs(10);
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 25);
/// Lets the test speak for CLIENT.
const TRUST_LOOPBACK: &str = "accept_proxy = true\nproxy_trusted = [\"127.0.0.0/8\"]\n";

/// A DNS server where CLIENT's PTR is mail.example.test, whose A record is
/// `forward`.
fn dns(forward: Ipv4Addr) -> DnsServer {
    let dns = DnsServer::start();
    dns.add_ptr(&reverse_name(IpAddr::V4(CLIENT)), "mail.example.test", 300);
    dns.add_a("mail.example.test", forward, 300);
    dns
}

/// An smtp-mode gateway on `bind` over a fresh sink, asking `dns`, trusting
/// PROXY from loopback, with `extra` policy text after the listener.
fn start_smtp(bind: SocketAddr, dns: &DnsServer, extra: &str) -> (Gateway, Sink) {
    let sink = Sink::start("sink", false);
    let policy = format!(
        "{}{TRUST_LOOPBACK}{extra}",
        smtp_policy(bind, sink.addr, "")
    );
    let node = format!("[dns]\nservers = [\"{}\"]\n", dns.addr());
    let gw = Gateway::start_with_node_extra("gw", &policy, &node);
    gw.wait_metric("mxgate_backend_up{pool=\"mta\",server=\"mta1\"}", 1.0, WAIT);
    (gw, sink)
}

/// A session from CLIENT (PROXY v1 to `bind`).
fn connect_as_client(bind: SocketAddr) -> SmtpClient {
    let header = format!(
        "PROXY TCP4 {CLIENT} {} 40000 {}\r\n",
        bind.ip(),
        bind.port()
    );
    SmtpClient::connect_with(bind, header.as_bytes()).unwrap()
}

/// Sends one message as CLIENT and returns the copy the sink stored.
fn deliver(bind: SocketAddr, sink: &Sink) -> String {
    let before = sink.messages().len();
    let mut c = connect_as_client(bind);
    let banner = c.reply().unwrap();
    assert!(banner.starts_with("220 mx.gw.test"), "{banner}");
    assert!(c.command("EHLO client.test").unwrap().starts_with("250"));
    let reply = c
        .send_mail("a@client.test", "b@example.test", "hello")
        .unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    c.command("QUIT").unwrap();
    let msgs = sink.messages();
    assert_eq!(msgs.len(), before + 1);
    msgs.into_iter().last().expect("the message just sent")
}

/// The verdict counter sample for (check, result).
fn verdicts(check: &str, result: &str) -> String {
    format!("mxgate_filter_verdicts_total{{check=\"{check}\",result=\"{result}\"}}")
}

const BLOCK_EXAMPLE: &str = "[[list]]\naction = \"block\"\nreverse_name = \".example.test\"\n";

#[test]
fn a_blocked_reverse_name_is_refused_before_any_backend() {
    let dns = dns(CLIENT);
    let bind = free_addr();
    let (gw, sink) = start_smtp(bind, &dns, BLOCK_EXAMPLE);
    let mut c = connect_as_client(bind);
    let reply = c.reply().unwrap();
    assert!(reply.starts_with("554 5.7.1"), "{reply}");
    assert!(c.wait_closed(WAIT));
    gw.wait_metric(&verdicts("list", "block"), 1.0, WAIT);
    gw.wait_metric(&verdicts("rdns", "verified"), 1.0, WAIT);
    gw.wait_metric(
        "mxgate_listener_connections_total{listener=\"mx\",result=\"rejected\"}",
        1.0,
        WAIT,
    );
    assert_eq!(
        gw.metric("mxgate_backend_sessions_total{pool=\"mta\",server=\"mta1\"}"),
        Some(0.0)
    );
    assert!(sink.messages().is_empty());
}

#[test]
fn a_blocked_reverse_name_is_refused_in_l4_mode_too() {
    let dns = dns(CLIENT);
    let sink = Sink::start("sink", false);
    let bind = free_addr();
    let policy = format!(
        "{}{BLOCK_EXAMPLE}",
        l4_policy(
            bind,
            &[("s0".into(), sink.addr)],
            "interval_ms = 60000",
            TRUST_LOOPBACK
        )
    );
    let node = format!("[dns]\nservers = [\"{}\"]\n", dns.addr());
    let gw = Gateway::start_with_node_extra("gw", &policy, &node);
    let mut c = connect_as_client(bind);
    let reply = c.reply().unwrap();
    assert!(reply.starts_with("554 5.7.1"), "{reply}");
    assert!(c.wait_closed(WAIT));
    gw.wait_metric(&verdicts("list", "block"), 1.0, WAIT);
    assert_eq!(
        gw.metric("mxgate_backend_sessions_total{pool=\"mta\",server=\"s0\"}"),
        Some(0.0)
    );
}

#[test]
fn an_allowed_reverse_name_passes_a_dnsbl_listed_client() {
    let dns = dns(CLIENT);
    dns.add_a("25.2.0.192.bl.test", Ipv4Addr::new(127, 0, 0, 2), 300);
    let bind = free_addr();
    let (gw, sink) = start_smtp(
        bind,
        &dns,
        "[[list]]\naction = \"allow\"\nreverse_name = \"mail.example.test\"\n\
         [screen]\ndnsbl_threshold = 3\n[[screen.dnsbl]]\nzone = \"bl.test\"\nweight = 5\n",
    );
    let stored = deliver(bind, &sink);
    assert!(stored.contains("Subject: test"), "{stored}");
    gw.wait_metric(&verdicts("list", "allow"), 1.0, WAIT);
    gw.wait_metric(&verdicts("rdns", "verified"), 1.0, WAIT);
    assert_eq!(gw.metric(&verdicts("dnsbl", "listed")), None);
    // The zone was asked, during the same wait, and did list the client.
    assert!(dns
        .queries()
        .iter()
        .any(|(name, _)| name == "25.2.0.192.bl.test"));
}

#[test]
fn a_reverse_name_that_does_not_resolve_back_does_not_match() {
    let dns = dns(Ipv4Addr::new(198, 51, 100, 7));
    let bind = free_addr();
    let (gw, sink) = start_smtp(bind, &dns, BLOCK_EXAMPLE);
    let stored = deliver(bind, &sink);
    gw.wait_metric(&verdicts("rdns", "unverified"), 1.0, WAIT);
    assert_eq!(gw.metric(&verdicts("list", "block")), None);
    assert!(
        stored.contains(&format!("from client.test (unknown [{CLIENT}])")),
        "an unverified name is not written: {stored}"
    );
}

#[test]
fn reverse_dns_puts_the_verified_name_into_received() {
    let dns = dns(CLIENT);
    let bind = free_addr();
    let (gw, sink) = start_smtp(bind, &dns, "[screen]\nreverse_dns = true\n");
    let stored = deliver(bind, &sink);
    assert!(
        stored.contains(&format!(
            "Received: from client.test (mail.example.test [{CLIENT}])\r\n\tby mx.gw.test (mxgate)"
        )),
        "{stored}"
    );
    gw.wait_metric(&verdicts("rdns", "verified"), 1.0, WAIT);
}

#[test]
fn without_reverse_dns_nothing_is_asked() {
    let dns = dns(CLIENT);
    let bind = free_addr();
    let (gw, sink) = start_smtp(bind, &dns, "");
    let stored = deliver(bind, &sink);
    assert!(
        stored.contains(&format!("from client.test (unknown [{CLIENT}])")),
        "{stored}"
    );
    assert!(dns.queries().is_empty(), "{:?}", dns.queries());
    assert_eq!(gw.metric(&verdicts("rdns", "verified")), None);
}
