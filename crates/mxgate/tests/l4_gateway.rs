//! Black-box tests of l4 balancing with `mxgate sink` backends: refusals
//! (421), health checks, PROXY from trusted upstreams, live policy changes,
//! graceful shutdown.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use support::gateway::{l4_policy, Gateway, Sink, SmtpClient};
use support::{free_addr, poll};

/// A policy with one l4 listener on `bind` over servers `s0`, `s1`, … at
/// `servers`, checked every 200 ms.
fn policy(bind: SocketAddr, servers: &[SocketAddr], extra_listener: &str) -> String {
    let named: Vec<_> = servers
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("s{i}"), *a))
        .collect();
    l4_policy(
        bind,
        &named,
        "interval_ms = 200, timeout_ms = 500, fall = 1, rise = 1",
        extra_listener,
    )
}

#[test]
fn mail_flows_through_l4_with_the_real_client_in_proxy_v2() {
    let a = Sink::start("sink-a", true);
    let b = Sink::start("sink-b", true);
    let bind = free_addr();
    let gw = Gateway::start(
        "gw",
        &policy(bind, &[a.addr, b.addr], "send_proxy = \"v2\""),
    );
    gw.wait_metric(
        "mxgate_backend_up{pool=\"mta\",server=\"s0\"}",
        1.0,
        Duration::from_secs(5),
    );
    gw.wait_metric(
        "mxgate_backend_up{pool=\"mta\",server=\"s1\"}",
        1.0,
        Duration::from_secs(5),
    );
    for i in 0..4 {
        let out = support::swaks(&[
            "--server",
            &bind.to_string(),
            "--local-interface",
            "127.0.0.2",
            "--from",
            "a@example.test",
            "--to",
            &format!("user{i}@example.test"),
        ]);
        assert!(out.status.success(), "{}", support::output_text(&out));
    }
    let (ma, mb) = (a.messages(), b.messages());
    assert_eq!((ma.len(), mb.len()), (2, 2), "roundrobin over two servers");
    for m in ma.iter().chain(&mb) {
        assert!(
            m.contains("X-Sink-Client: 127.0.0.2\r\n"),
            "backend saw the real client:\n{m}"
        );
    }
    assert_eq!(
        gw.metric("mxgate_listener_connections_total{listener=\"mx\",result=\"accepted\"}"),
        Some(4.0)
    );
    assert_eq!(
        gw.metric("mxgate_backend_sessions_total{pool=\"mta\",server=\"s0\"}"),
        Some(2.0)
    );
    let status = gw.status();
    assert!(status.contains("\"health\":\"up\""), "{status}");
}

#[test]
fn no_usable_backend_gives_421_and_a_clean_close() {
    let closed = free_addr(); // nothing listens there
    let bind = free_addr();
    let gw = Gateway::start("gw", &policy(bind, &[closed], ""));
    gw.wait_metric(
        "mxgate_backend_up{pool=\"mta\",server=\"s0\"}",
        0.0,
        Duration::from_secs(5),
    );
    let mut c = SmtpClient::connect(bind).unwrap();
    let reply = c.reply().unwrap();
    assert!(reply.starts_with("421 4.3.2 "), "{reply}");
    assert!(
        c.wait_closed(Duration::from_secs(5)),
        "the gateway closes after 421"
    );
    gw.wait_metric(
        "mxgate_listener_connections_total{listener=\"mx\",result=\"tempfail\"}",
        1.0,
        Duration::from_secs(5),
    );
}

#[test]
fn a_backend_that_never_greets_is_marked_down_and_skipped() {
    // Accepts TCP (the kernel completes the handshake) but never writes.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let good = Sink::start("sink-good", false);
    let bind = free_addr();
    let gw = Gateway::start(
        "gw",
        &policy(bind, &[silent.local_addr().unwrap(), good.addr], ""),
    );
    let down = poll(Duration::from_secs(5), || {
        let status = gw.status();
        status.contains("banner timeout").then_some(status)
    });
    let status = down.unwrap_or_else(|| gw.status());
    assert!(status.contains("\"health\":\"down\""), "{status}");
    assert_eq!(
        gw.metric("mxgate_backend_up{pool=\"mta\",server=\"s0\"}"),
        Some(0.0)
    );
    for _ in 0..3 {
        let mut c = SmtpClient::connect(bind).unwrap();
        let banner = c.reply().unwrap();
        assert!(banner.starts_with("220 sink-good.test"), "{banner}");
        c.command("QUIT").unwrap();
    }
    assert_eq!(
        gw.metric("mxgate_backend_sessions_total{pool=\"mta\",server=\"s0\"}"),
        Some(0.0)
    );
}

#[test]
fn connect_failure_moves_on_to_the_next_server() {
    let good = Sink::start("sink-good", false);
    let closed = free_addr();
    let bind = free_addr();
    // Slow checks: the dead server is still "unknown" (usable) when mail comes.
    let text =
        policy(bind, &[closed, good.addr], "").replace("interval_ms = 200", "interval_ms = 60000");
    let gw = Gateway::start("gw", &text);
    for _ in 0..2 {
        let mut c = SmtpClient::connect(bind).unwrap();
        assert!(c.reply().unwrap().starts_with("220 sink-good.test"));
        c.command("QUIT").unwrap();
    }
    assert_eq!(
        gw.metric("mxgate_listener_connections_total{listener=\"mx\",result=\"tempfail\"}"),
        Some(0.0)
    );
}

#[test]
fn proxy_headers_are_taken_only_from_trusted_upstreams() {
    let sink = Sink::start("sink", true);
    let trusted_bind = free_addr();
    let untrusted_bind = free_addr();
    let mut text = policy(
        trusted_bind,
        &[sink.addr],
        "send_proxy = \"v2\"\naccept_proxy = true\nproxy_trusted = [\"127.0.0.0/8\"]",
    );
    text.push_str(&format!(
        "[[listener]]\nname = \"edge\"\nbind = \"{untrusted_bind}\"\npool = \"mta\"\nsend_proxy = \"v2\"\n\
         accept_proxy = true\nproxy_trusted = [\"192.0.2.0/24\"]\n"
    ));
    let gw = Gateway::start("gw", &text);
    gw.wait_metric(
        "mxgate_backend_up{pool=\"mta\",server=\"s0\"}",
        1.0,
        Duration::from_secs(5),
    );

    // A trusted upstream says the client is 203.0.113.7; the backend hears that.
    let v1 = format!("PROXY TCP4 203.0.113.7 {} 40000 25\r\n", trusted_bind.ip());
    let mut c = SmtpClient::connect_with(trusted_bind, v1.as_bytes()).unwrap();
    assert!(c.reply().unwrap().starts_with("220 "));
    c.command("EHLO client.test").unwrap();
    let queued = c
        .send_mail("a@example.test", "b@example.test", "hello")
        .unwrap();
    assert!(queued.starts_with("250 "), "{queued}");
    c.command("QUIT").unwrap();
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    assert!(
        msgs[0].contains("X-Sink-Client: 203.0.113.7\r\n"),
        "{}",
        msgs[0]
    );

    // Not a trusted upstream: refused with 421, counted as rejected.
    let mut c = SmtpClient::connect_with(untrusted_bind, v1.as_bytes()).unwrap();
    let reply = c.reply().unwrap();
    assert!(reply.starts_with("421 4.7.0 "), "{reply}");
    // Garbage instead of a header from a trusted peer: closed, counted.
    let mut c = SmtpClient::connect_with(trusted_bind, b"EHLO me\r\n").unwrap();
    assert!(c.wait_closed(Duration::from_secs(5)));
    gw.wait_metric(
        "mxgate_listener_connections_total{listener=\"edge\",result=\"rejected\"}",
        1.0,
        Duration::from_secs(5),
    );
    gw.wait_metric(
        "mxgate_listener_connections_total{listener=\"mx\",result=\"rejected\"}",
        1.0,
        Duration::from_secs(5),
    );
}

#[test]
fn a_committed_policy_change_applies_without_dropping_sessions() {
    let a = Sink::start("sink-a", false);
    let b = Sink::start("sink-b", false);
    let bind = free_addr();
    let gw = Gateway::start("gw", &policy(bind, &[a.addr], ""));
    let mut held = SmtpClient::connect(bind).unwrap();
    assert!(held.reply().unwrap().starts_with("220 sink-a.test"));

    // The operator drains s0 and adds s1, from another process.
    let changed = policy(bind, &[a.addr, b.addr], "").replacen(
        &format!("address = \"{}\"\n", a.addr),
        &format!("address = \"{}\"\nstate = \"drain\"\n", a.addr),
        1,
    );
    let out = gw.import_policy(&changed);
    assert!(out.status.success(), "{}", support::output_text(&out));
    let moved = poll(Duration::from_secs(5), || {
        let mut c = SmtpClient::connect(bind).ok()?;
        let banner = c.reply().ok()?;
        let _ = c.command("QUIT");
        banner.starts_with("220 sink-b.test").then_some(())
    });
    assert!(
        moved.is_some(),
        "new sessions go to s1:\n{}",
        gw.proc.output()
    );
    // The session opened before the change still works end to end.
    assert!(held.command("EHLO client.test").unwrap().starts_with("250"));
    let queued = held
        .send_mail("a@example.test", "b@example.test", "still here")
        .unwrap();
    assert!(queued.starts_with("250 "), "{queued}");
    assert_eq!(a.messages().len(), 1);
    assert!(gw.status().contains("\"admin_state\":\"drain\""));
}

#[test]
fn sigterm_stops_accepting_and_lets_open_sessions_finish() {
    let a = Sink::start("sink-a", false);
    let bind = free_addr();
    let mut gw = Gateway::start("gw", &policy(bind, &[a.addr], ""));
    let mut held = SmtpClient::connect(bind).unwrap();
    assert!(held.reply().unwrap().starts_with("220 "));
    gw.proc.signal("TERM");
    let refused = poll(Duration::from_secs(5), || {
        std::net::TcpStream::connect(bind).is_err().then_some(())
    });
    assert!(refused.is_some(), "the listener closes at once");
    assert!(
        gw.proc.is_running(),
        "an open session keeps the process alive"
    );
    assert!(held.command("EHLO client.test").unwrap().starts_with("250"));
    let queued = held
        .send_mail("a@example.test", "b@example.test", "during shutdown")
        .unwrap();
    assert!(queued.starts_with("250 "), "{queued}");
    assert!(held.command("QUIT").unwrap().starts_with("221"));
    let status = gw.proc.wait_exit(Duration::from_secs(10));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{}",
        gw.proc.output()
    );
    assert_eq!(a.messages().len(), 1);
}

#[test]
fn the_global_connection_cap_answers_421() {
    let a = Sink::start("sink-a", false);
    let bind = free_addr();
    let text = format!(
        "[limits]\nmax_connections = 2\n{}",
        policy(bind, &[a.addr], "")
    );
    let gw = Gateway::start("gw", &text);
    let mut c1 = SmtpClient::connect(bind).unwrap();
    let mut c2 = SmtpClient::connect(bind).unwrap();
    assert!(c1.reply().unwrap().starts_with("220"));
    assert!(c2.reply().unwrap().starts_with("220"));
    let mut c3 = SmtpClient::connect(bind).unwrap();
    let reply = c3.reply().unwrap();
    assert!(reply.starts_with("421 4.7.0 "), "{reply}");
    c1.command("QUIT").unwrap();
    assert!(c1.wait_closed(Duration::from_secs(5)));
    drop((c1, c3));
    let again = poll(Duration::from_secs(5), || {
        let mut c = SmtpClient::connect(bind).ok()?;
        c.reply().ok().filter(|r| r.starts_with("220"))
    });
    assert!(
        again.is_some(),
        "a slot frees when a session ends:\n{}",
        gw.proc.output()
    );
}

#[test]
fn sighup_reimports_the_policy_file_and_keeps_the_old_one_when_invalid() {
    let a = Sink::start("sink-a", false);
    let b = Sink::start("sink-b", false);
    let bind = free_addr();
    let mut gw = Gateway::start("gw", &policy(bind, &[a.addr], ""));
    let policy_file = gw.dir.path().join("policy.toml");

    // An invalid edit is refused; the running policy stays.
    std::fs::write(
        &policy_file,
        "[[pool]]\nname = \"mta\"\nbalance = \"random\"\n",
    )
    .unwrap();
    gw.proc.signal("HUP");
    gw.proc.wait_for_line(
        "invalid policy file; the running policy is kept",
        Duration::from_secs(5),
    );
    let mut c = SmtpClient::connect(bind).unwrap();
    assert!(c.reply().unwrap().starts_with("220 sink-a.test"));
    drop(c);

    // A valid edit moves the pool to s1 = sink-b only.
    std::fs::write(&policy_file, policy(bind, &[b.addr], "")).unwrap();
    gw.proc.signal("HUP");
    let moved = poll(Duration::from_secs(5), || {
        let mut c = SmtpClient::connect(bind).ok()?;
        c.reply().ok().filter(|r| r.starts_with("220 sink-b.test"))
    });
    assert!(moved.is_some(), "{}", gw.proc.output());
}

#[test]
fn one_client_cannot_take_more_than_its_share_of_connections() {
    let a = Sink::start("sink-a", false);
    let bind = free_addr();
    let gw = Gateway::start(
        "gw",
        &policy(bind, &[a.addr], "max_connections_per_client = 2"),
    );
    let mut c1 = SmtpClient::connect(bind).unwrap();
    let mut c2 = SmtpClient::connect(bind).unwrap();
    assert!(c1.reply().unwrap().starts_with("220"));
    assert!(c2.reply().unwrap().starts_with("220"));
    let mut c3 = SmtpClient::connect(bind).unwrap();
    let reply = c3.reply().unwrap();
    assert!(reply.starts_with("421 4.7.0 "), "{reply}");
    drop((c1, c3));
    let again = poll(Duration::from_secs(5), || {
        let mut c = SmtpClient::connect(bind).ok()?;
        c.reply().ok().filter(|r| r.starts_with("220"))
    });
    assert!(again.is_some(), "{}", gw.proc.output());
}
