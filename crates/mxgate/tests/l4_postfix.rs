//! Black-box tests of l4 balancing with REAL Postfix backends, driven by
//! swaks and Postfix's smtp-source: the PROXY v2 header makes Postfix log
//! the real client; load spreads over the pool; killing a backend fails only
//! the sessions on it.

mod support;

use std::net::SocketAddr;
use std::time::Duration;
use support::gateway::{l4_policy, Gateway, SmtpClient};
use support::{free_addr, output_text, poll, smtp_source, swaks, Postfix, DELIVERED};

const WAIT: Duration = Duration::from_secs(20);

/// A policy with one l4 listener on `bind` over the Postfix `servers`.
fn policy(bind: SocketAddr, servers: &[&Postfix], listener_extra: &str) -> String {
    let named: Vec<_> = servers
        .iter()
        .map(|s| (s.name().to_string(), s.addr()))
        .collect();
    l4_policy(
        bind,
        &named,
        "interval_ms = 300, timeout_ms = 1000, fall = 1, rise = 1, ehlo = \"gw.example.test\"",
        listener_extra,
    )
}

#[test]
fn postfix_logs_the_real_client_from_our_proxy_v2_header() {
    if Postfix::skip_unless_available("postfix_logs_the_real_client_from_our_proxy_v2_header") {
        return;
    }
    let pf = Postfix::builder("pfproxy").proxy_protocol(true).start();
    let bind = free_addr();
    let upstream = free_addr();
    let mut text = policy(bind, &[&pf], "send_proxy = \"v2\"");
    text.push_str(&format!(
        "[[listener]]\nname = \"edge\"\nbind = \"{upstream}\"\npool = \"mta\"\nsend_proxy = \"v2\"\n\
         accept_proxy = true\nproxy_trusted = [\"127.0.0.1/32\"]\n"
    ));
    let gw = Gateway::start("gw", &text);
    // The health check itself speaks PROXY v2 (LOCAL), or Postfix would
    // never pass it.
    gw.wait_metric(
        "mxgate_backend_up{pool=\"mta\",server=\"pfproxy\"}",
        1.0,
        WAIT,
    );

    // A client on 127.0.0.2; mxgate itself connects from 127.0.0.1.
    let out = swaks(&[
        "--server",
        &bind.to_string(),
        "--local-interface",
        "127.0.0.2",
        "--from",
        "sender@client.test",
        "--to",
        "user@example.test",
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    pf.wait_log("client=unknown[127.0.0.2]", WAIT);
    pf.wait_log(DELIVERED, WAIT);

    // Through a trusted upstream that says the client is 203.0.113.7.
    let header = format!("PROXY TCP4 203.0.113.7 {} 40000 25\r\n", upstream.ip());
    let mut c = SmtpClient::connect_with(upstream, header.as_bytes()).unwrap();
    assert!(c.reply().unwrap().starts_with("220 pfproxy.example.test"));
    assert!(c.command("EHLO client.test").unwrap().starts_with("250"));
    let queued = c
        .send_mail("sender@client.test", "user@example.test", "hi")
        .unwrap();
    assert!(queued.starts_with("250 "), "{queued}");
    c.command("QUIT").unwrap();
    let line = pf.wait_log("[203.0.113.7]", WAIT);
    assert!(line.contains("203.0.113.7"), "{line}");
    // The checks left no errors in Postfix's log.
    let log = pf.maillog();
    assert!(!log.contains("lost connection"), "{log}");
    assert!(!log.contains("improper command pipelining"), "{log}");
}

#[test]
fn smtp_source_load_is_spread_over_two_postfix_backends() {
    if Postfix::skip_unless_available("smtp_source_load_is_spread_over_two_postfix_backends") {
        return;
    }
    let a = Postfix::start("pfa");
    let b = Postfix::start("pfb");
    let bind = free_addr();
    let gw = Gateway::start("gw", &policy(bind, &[&a, &b], ""));
    gw.wait_metric("mxgate_backend_up{pool=\"mta\",server=\"pfa\"}", 1.0, WAIT);
    gw.wait_metric("mxgate_backend_up{pool=\"mta\",server=\"pfb\"}", 1.0, WAIT);
    let out = smtp_source(&[
        "-s",
        "5",
        "-m",
        "40",
        "-l",
        "1024",
        "-f",
        "load@client.test",
        "-t",
        "user@example.test",
        &bind.to_string(),
    ]);
    assert!(out.status.success(), "{}", output_text(&out));
    let (na, nb) = (
        a.wait_log_count(DELIVERED, 20, WAIT),
        b.wait_log_count(DELIVERED, 20, WAIT),
    );
    assert_eq!((na, nb), (20, 20), "roundrobin spreads 40 sessions evenly");
    assert_eq!(
        gw.metric("mxgate_listener_connections_total{listener=\"mx\",result=\"accepted\"}"),
        Some(40.0)
    );
}

#[test]
fn killing_a_backend_fails_only_its_sessions() {
    if Postfix::skip_unless_available("killing_a_backend_fails_only_its_sessions") {
        return;
    }
    let mut a = Postfix::start("pfkill");
    let b = Postfix::start("pfkeep");
    let bind = free_addr();
    let gw = Gateway::start("gw", &policy(bind, &[&a, &b], ""));
    gw.wait_metric(
        "mxgate_backend_up{pool=\"mta\",server=\"pfkill\"}",
        1.0,
        WAIT,
    );
    gw.wait_metric(
        "mxgate_backend_up{pool=\"mta\",server=\"pfkeep\"}",
        1.0,
        WAIT,
    );

    // Six sessions in progress, three on each backend.
    let mut on_a = Vec::new();
    let mut on_b = Vec::new();
    for _ in 0..6 {
        let mut c = SmtpClient::connect(bind).unwrap();
        let banner = c.reply().unwrap();
        assert!(c.command("EHLO client.test").unwrap().starts_with("250"));
        if banner.contains("pfkill.example.test") {
            on_a.push(c);
        } else {
            on_b.push(c);
        }
    }
    assert_eq!((on_a.len(), on_b.len()), (3, 3));

    a.kill();
    // Sessions on the killed backend end (connection closed), none hangs.
    for c in &mut on_a {
        let r = c.command("MAIL FROM:<x@client.test>");
        assert!(
            r.is_err() || r.unwrap().starts_with("421"),
            "a session on a dead backend ends"
        );
    }
    // Sessions on the other backend carry on and deliver.
    for c in &mut on_b {
        let queued = c
            .send_mail("x@client.test", "user@example.test", "survivor")
            .unwrap();
        assert!(queued.starts_with("250 "), "{queued}");
        assert!(c.command("QUIT").unwrap().starts_with("221"));
    }
    // New sessions all succeed: at once by trying the next server after a
    // refused connect, and the killed one is marked down.
    for _ in 0..6 {
        let mut c = SmtpClient::connect(bind).unwrap();
        let banner = c.reply().unwrap();
        assert!(banner.starts_with("220 pfkeep.example.test"), "{banner}");
        c.command("QUIT").unwrap();
    }
    gw.wait_metric(
        "mxgate_backend_up{pool=\"mta\",server=\"pfkill\"}",
        0.0,
        WAIT,
    );
    let delivered = poll(WAIT, || {
        (b.maillog().matches(DELIVERED).count() >= 3).then_some(())
    });
    assert!(delivered.is_some(), "{}", b.maillog());
}

#[test]
fn starttls_stays_end_to_end_and_the_check_reports_the_certificate() {
    if Postfix::skip_unless_available(
        "starttls_stays_end_to_end_and_the_check_reports_the_certificate",
    ) {
        return;
    }
    let pf = Postfix::builder("pftls")
        .starttls(true)
        .proxy_protocol(true)
        .start();
    let bind = free_addr();
    let text = policy(bind, &[&pf], "send_proxy = \"v2\"")
        .replace("rise = 1,", "rise = 1, starttls = true,");
    assert!(text.contains("starttls = true"), "{text}");
    let gw = Gateway::start("gw", &text);
    gw.wait_metric(
        "mxgate_backend_up{pool=\"mta\",server=\"pftls\"}",
        1.0,
        WAIT,
    );
    let status = gw.status();
    assert!(
        status.contains("\"cert_days_left\":"),
        "the check reports the certificate: {status}"
    );

    let out = swaks(&[
        "--server",
        &bind.to_string(),
        "--local-interface",
        "127.0.0.2",
        "--tls",
        "--from",
        "sender@client.test",
        "--to",
        "user@example.test",
    ]);
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    // The TLS session is between swaks and Postfix: Postfix logs it with the
    // real client, and swaks saw Postfix's certificate.
    pf.wait_log("TLS connection established from unknown[127.0.0.2]", WAIT);
    pf.wait_log(DELIVERED, WAIT);
}
