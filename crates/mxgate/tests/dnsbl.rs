//! Black-box tests of DNSBL/DNSWL scoring, the pregreet test and the
//! temporary allowlist, against a fake DNS server (`mxgate_testkit`).

mod support;

use mxgate_testkit::DnsServer;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use support::free_addr;
use support::gateway::{l4_policy, smtp_policy, Gateway, Sink, SmtpClient};

const WAIT: Duration = Duration::from_secs(10);
const LISTED: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// An smtp-mode gateway on `bind` asking `dns`, with `screen` lines in
/// `[screen]` and `zones` as (zone, weight).
fn start(
    name: &str,
    bind: SocketAddr,
    dns: &DnsServer,
    screen: &str,
    zones: &[(&str, i32)],
) -> (Gateway, Sink) {
    let sink = Sink::start("sink", false);
    let mut policy = format!("{}[screen]\n{screen}\n", smtp_policy(bind, sink.addr, ""));
    for (zone, weight) in zones {
        policy.push_str(&format!(
            "[[screen.dnsbl]]\nzone = \"{zone}\"\nweight = {weight}\n"
        ));
    }
    let extra = format!("[dns]\nservers = [\"{}\"]\n", dns.addr());
    (Gateway::start_with_node_extra(name, &policy, &extra), sink)
}

/// Lists 127.0.0.1 in `zone`.
fn list(dns: &DnsServer, zone: &str) {
    dns.add_a(&format!("1.0.0.127.{zone}"), LISTED, 300);
}

/// The verdict counter sample for (check, result).
fn verdicts(check: &str, result: &str) -> String {
    format!("mxgate_filter_verdicts_total{{check=\"{check}\",result=\"{result}\"}}")
}

#[test]
fn a_client_listed_in_two_zones_is_refused_without_naming_them() {
    let dns = DnsServer::start();
    list(&dns, "a.test");
    list(&dns, "b.test");
    let bind = free_addr();
    let (gw, _sink) = start(
        "gw",
        bind,
        &dns,
        "dnsbl_threshold = 3",
        &[("a.test", 2), ("b.test", 2)],
    );
    let mut c = SmtpClient::connect(bind).unwrap();
    let reply = c.reply().unwrap();
    assert!(reply.starts_with("550 5.7.1"), "{reply}");
    assert!(
        !reply.contains("a.test") && !reply.contains("b.test"),
        "{reply}"
    );
    assert!(c.wait_closed(WAIT));
    gw.wait_metric(&verdicts("dnsbl", "listed"), 1.0, WAIT);
}

#[test]
fn a_client_listed_in_one_zone_passes() {
    let dns = DnsServer::start();
    list(&dns, "a.test");
    let bind = free_addr();
    let (gw, _sink) = start(
        "gw",
        bind,
        &dns,
        "dnsbl_threshold = 3",
        &[("a.test", 2), ("b.test", 2)],
    );
    let mut c = SmtpClient::connect(bind).unwrap();
    let reply = c.reply().unwrap();
    assert!(reply.starts_with("220 mx.gw.test"), "{reply}");
    assert!(c.command("EHLO client.test").unwrap().starts_with("250"));
    c.command("QUIT").unwrap();
    gw.wait_metric(&verdicts("dnsbl", "pass"), 1.0, WAIT);
    // The session's tracking record carries the screening verdict.
    let tracked = support::poll(WAIT, || {
        let (code, body) = gw.api_get("/api/v1/tracking?client=127.0.0.1")?;
        (code == 200 && body.contains("\"check\":\"dnsbl\"")).then_some(body)
    })
    .expect("the session is tracked with its checks");
    assert!(
        tracked.contains(r#"{"check":"dnsbl","result":"pass","detail":"score 2 [a.test]"}"#),
        "{tracked}"
    );
}

#[test]
fn a_dnswl_listing_cancels_two_dnsbl_listings() {
    let dns = DnsServer::start();
    list(&dns, "a.test");
    list(&dns, "b.test");
    list(&dns, "w.test");
    let bind = free_addr();
    let (gw, _sink) = start(
        "gw",
        bind,
        &dns,
        "dnsbl_threshold = 3\ndnsbl_allow_threshold = -1",
        &[("a.test", 2), ("b.test", 2), ("w.test", -5)],
    );
    let mut c = SmtpClient::connect(bind).unwrap();
    let reply = c.reply().unwrap();
    assert!(reply.starts_with("220 "), "{reply}");
    c.command("QUIT").unwrap();
    gw.wait_metric(&verdicts("dnsbl", "allowlisted"), 1.0, WAIT);
}

#[test]
fn a_zone_that_times_out_does_not_block_the_session() {
    let dns = DnsServer::start();
    list(&dns, "a.test");
    list(&dns, "slow.test");
    dns.set_delay("1.0.0.127.slow.test", Duration::from_secs(5));
    let bind = free_addr();
    let (gw, _sink) = start(
        "gw",
        bind,
        &dns,
        "dnsbl_threshold = 3\ndns_timeout_ms = 300",
        &[("a.test", 2), ("slow.test", 2)],
    );
    let started = Instant::now();
    let mut c = SmtpClient::connect(bind).unwrap();
    let reply = c.reply().unwrap();
    assert!(reply.starts_with("220 "), "{reply}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    c.command("QUIT").unwrap();
    gw.wait_metric(&verdicts("dnsbl", "timeout"), 1.0, WAIT);
    gw.wait_metric(&verdicts("dnsbl", "pass"), 1.0, WAIT);
}

#[test]
fn a_pregreeter_is_refused_under_reject() {
    let dns = DnsServer::start();
    let bind = free_addr();
    let (gw, sink) = start("gw", bind, &dns, "greet_wait_ms = 500", &[]);
    let mut c = SmtpClient::connect_with(bind, b"EHLO bot.test\r\n").unwrap();
    let banner = c.reply().unwrap();
    assert!(banner.starts_with("220-mx.gw.test"), "{banner}");
    let reply = c.reply().unwrap();
    assert!(reply.starts_with("550 5.5.1"), "{reply}");
    let r = c.command("MAIL FROM:<a@b.test>").unwrap();
    assert!(r.starts_with("550 5.5.1"), "{r}");
    assert!(c.command("QUIT").unwrap().starts_with("221"));
    gw.wait_metric(&verdicts("pregreet", "reject"), 1.0, WAIT);
    assert!(sink.messages().is_empty());
}

#[test]
fn a_pregreeter_is_dropped_under_drop() {
    let dns = DnsServer::start();
    let bind = free_addr();
    let (gw, _sink) = start(
        "gw",
        bind,
        &dns,
        "greet_wait_ms = 500\ngreet_action = \"drop\"",
        &[],
    );
    let mut c = SmtpClient::connect_with(bind, b"EHLO bot.test\r\n").unwrap();
    let reply = c.reply().unwrap();
    assert!(reply.contains("\r\n521 5.5.1"), "{reply}");
    assert!(c.wait_closed(WAIT));
    gw.wait_metric(&verdicts("pregreet", "drop"), 1.0, WAIT);
}

#[test]
fn a_patient_client_passes_and_is_not_delayed_again() {
    let dns = DnsServer::start();
    let bind = free_addr();
    // A long wait, so "not delayed again" has a wide margin on a busy box.
    let (gw, _sink) = start("gw", bind, &dns, "greet_wait_ms = 2000", &[("a.test", 2)]);
    let started = Instant::now();
    let mut c = SmtpClient::connect(bind).unwrap();
    let banner = c.reply().unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
    assert!(
        banner.starts_with("220-mx.gw.test ESMTP mxgate\r\n220 mx.gw.test ESMTP mxgate"),
        "{banner}"
    );
    assert!(c.command("EHLO client.test").unwrap().starts_with("250"));
    c.command("QUIT").unwrap();
    gw.wait_metric(&verdicts("dnsbl", "pass"), 1.0, WAIT);

    let started = Instant::now();
    let mut c = SmtpClient::connect(bind).unwrap();
    let banner = c.reply().unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert!(banner.starts_with("220 mx.gw.test"), "{banner}");
    c.command("QUIT").unwrap();
    gw.wait_metric(&verdicts("allowlist", "hit"), 1.0, WAIT);
}

#[test]
fn l4_mode_stays_silent_during_the_pregreet_wait() {
    let dns = DnsServer::start();
    let sink = Sink::start("sink", false);
    let bind = free_addr();
    let policy = format!(
        "{}[screen]\ngreet_wait_ms = 500\ngreet_action = \"drop\"\nallowlist_ttl_s = 0\n",
        l4_policy(bind, &[("s0".into(), sink.addr)], "interval_ms = 60000", "")
    );
    let extra = format!("[dns]\nservers = [\"{}\"]\n", dns.addr());
    let gw = Gateway::start_with_node_extra("gw", &policy, &extra);
    let started = Instant::now();
    let mut c = SmtpClient::connect(bind).unwrap();
    let banner = c.reply().unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    assert!(banner.starts_with("220"), "{banner}");
    c.command("QUIT").unwrap();

    let mut bot = SmtpClient::connect_with(bind, b"EHLO bot.test\r\n").unwrap();
    let reply = bot.reply().unwrap();
    assert!(reply.starts_with("521 5.5.1"), "{reply}");
    gw.wait_metric(&verdicts("pregreet", "drop"), 1.0, WAIT);
}
