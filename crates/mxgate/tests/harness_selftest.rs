//! Proves the black-box harness (`tests/support`) works, without mxgate:
//! process guards, ports, and real Postfix instances driven by swaks,
//! smtp-source and a hand-built PROXY v2 header.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::process::{group_members, pid_alive};
use support::{
    free_port, output_text, poll, port_open, skip_unless_tools, smtp_source, swaks, wait_port,
    wait_port_closed, Postfix, Proc, DELIVERED,
};

const WAIT: Duration = Duration::from_secs(20);

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

/// Sends one message with swaks and asserts the SMTP dialogue succeeded.
fn swaks_ok(addr: SocketAddr, to: &str, extra: &[&str]) -> String {
    let server = addr.to_string();
    let mut args = vec![
        "--server",
        &server,
        "--to",
        to,
        "--from",
        "sender@client.test",
    ];
    args.extend_from_slice(extra);
    let out = swaks(&args);
    let text = output_text(&out);
    assert!(out.status.success(), "swaks to {addr} failed\n{text}");
    text
}

#[test]
fn proc_captures_output_and_cleans_up() {
    let mut p = Proc::spawn(
        "echoer",
        sh("echo step one; echo step two >&2; echo ready; exec sleep 60"),
    );
    let line = p.wait_for_line("ready", WAIT);
    assert_eq!(line, "ready");
    assert_eq!(p.stdout(), "step one\nready\n", "{}", p.output());
    assert_eq!(p.stderr(), "step two\n", "{}", p.output());
    assert_eq!(p.count_lines("step"), 2, "{}", p.output());
    let pid = p.pid();
    assert!(pid_alive(pid));
    drop(p);
    assert!(!pid_alive(pid), "the child survived its guard");
}

#[test]
fn proc_kills_what_ignores_sigterm() {
    // The shell ignores TERM; its `sleep` children do not (same group).
    let mut p = Proc::spawn(
        "stubborn",
        sh("trap '' TERM; echo armed; while :; do sleep 0.2; done"),
    );
    p.wait_for_line("armed", WAIT);
    let pid = p.pid();
    let start = Instant::now();
    let status = p.stop();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(2900),
        "SIGKILL came early: {took:?}"
    );
    assert!(took < Duration::from_secs(6), "stop took {took:?}");
    assert_eq!(p.status_text(), "signal 9", "{status:?}");
    // The killed children leave the process table a moment later on a
    // loaded machine.
    let gone = poll(Duration::from_secs(3), || {
        group_members(pid).is_empty().then_some(())
    });
    assert!(
        gone.is_some(),
        "descendants survived: {:?}",
        group_members(pid)
    );
}

#[test]
fn proc_wait_stops_when_the_process_exits() {
    let mut p = Proc::spawn("quitter", sh("echo bye; exit 3"));
    let start = Instant::now();
    assert_eq!(p.try_wait_for_line("never printed", WAIT), None);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "waited for a dead process"
    );
    assert_eq!(p.status_text(), "exit code 3");
    assert_eq!(p.find_line("bye").as_deref(), Some("bye"));
}

#[test]
fn proc_guard_runs_on_panic() {
    let pid = Arc::new(Mutex::new(0));
    let seen = Arc::clone(&pid);
    let result = std::panic::catch_unwind(move || {
        let mut p = Proc::spawn("doomed", sh("echo up; exec sleep 60"));
        p.wait_for_line("up", WAIT);
        *seen.lock().unwrap() = p.pid();
        panic!("simulated test failure");
    });
    assert!(result.is_err());
    let pid = *pid.lock().unwrap();
    assert_ne!(pid, 0);
    assert!(!pid_alive(pid), "the child survived a panicking test");
}

#[test]
fn ports_open_and_close() {
    let port = free_port();
    assert_ne!(port, 0);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert!(!port_open(addr));
    let listener = TcpListener::bind(addr).expect("the free port is bindable");
    wait_port(addr, WAIT);
    drop(listener);
    wait_port_closed(addr, WAIT);
}

#[test]
fn postfix_accepts_and_discards() {
    if Postfix::skip_unless_available("postfix_accepts_and_discards") {
        return;
    }
    let pf = Postfix::start("mta1");
    let text = swaks_ok(pf.addr(), "alice@example.test", &[]);
    assert!(text.contains("220 mta1.example.test ESMTP"), "{text}");
    let line = pf.wait_log(DELIVERED, WAIT);
    assert!(line.contains("to=<alice@example.test>"), "{line}");
    let log = pf.maillog();
    // Exactly one connection: starting the instance does not probe it.
    assert_eq!(
        pf.count_log(": connect from unknown[127.0.0.1]"),
        1,
        "{log}"
    );
    assert!(log.contains("from=<sender@client.test>"), "{log}");
    assert_eq!(pf.count_log("fatal:") + pf.count_log("panic:"), 0, "{log}");
}

/// The PROXY v2 header built by hand (RFC-like layout from the haproxy
/// spec): signature, version/command, family/protocol, length, addresses.
fn proxy_v2_header(dst_port: u16) -> Vec<u8> {
    let mut h = vec![
        0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, // signature
        0x21, // version 2, PROXY
        0x11, // AF_INET, STREAM
        0x00, 0x0C, // 12 bytes of addresses follow
        203, 0, 113, 7, // source address
        127, 0, 0, 1, // destination address
    ];
    h.extend_from_slice(&40000u16.to_be_bytes());
    h.extend_from_slice(&dst_port.to_be_bytes());
    assert_eq!(h.len(), 28);
    h
}

/// Reads one (possibly multi-line) SMTP reply; returns all its lines.
fn reply(r: &mut impl BufRead) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).expect("read an SMTP reply");
        assert!(n > 0, "connection closed; got so far: {all:?}");
        all.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return all;
        }
    }
}

fn command(w: &mut TcpStream, r: &mut impl BufRead, cmd: &str, code: &str) -> String {
    w.write_all(format!("{cmd}\r\n").as_bytes()).expect("send");
    let got = reply(r);
    assert!(
        got.starts_with(code),
        "{cmd:?}: expected {code}, got {got:?}"
    );
    got
}

#[test]
fn postfix_reads_a_hand_built_proxy_v2_header() {
    if Postfix::skip_unless_available("postfix_reads_a_hand_built_proxy_v2_header") {
        return;
    }
    let pf = Postfix::builder("mta-proxy").proxy_protocol(true).start();
    assert!(pf.proxy_protocol());
    let mut w = TcpStream::connect(pf.addr()).expect("connect");
    w.set_read_timeout(Some(WAIT)).unwrap();
    let mut r = BufReader::new(w.try_clone().unwrap());
    w.write_all(&proxy_v2_header(pf.port()))
        .expect("send PROXY header");
    let banner = reply(&mut r);
    assert!(
        banner.starts_with("220 mta-proxy.example.test"),
        "{banner:?}"
    );
    command(&mut w, &mut r, "EHLO client.test", "250");
    command(&mut w, &mut r, "MAIL FROM:<remote@client.test>", "250");
    command(&mut w, &mut r, "RCPT TO:<bob@example.test>", "250");
    // 203.0.113.7 is not in mynetworks: no relaying elsewhere.
    command(&mut w, &mut r, "RCPT TO:<bob@elsewhere.test>", "554");
    command(&mut w, &mut r, "DATA", "354");
    command(&mut w, &mut r, "Subject: proxied\r\n\r\nhello\r\n.", "250");
    command(&mut w, &mut r, "QUIT", "221");
    pf.wait_log("connect from unknown[203.0.113.7]", WAIT);
    pf.wait_log("client=unknown[203.0.113.7]", WAIT);
    let line = pf.wait_log(DELIVERED, WAIT);
    assert!(line.contains("to=<bob@example.test>"), "{line}");
}

#[test]
fn smtp_source_sends_twenty_messages() {
    if Postfix::skip_unless_available("smtp_source_sends_twenty_messages") {
        return;
    }
    let pf = Postfix::start("mta-load");
    let addr = pf.addr().to_string();
    let out = smtp_source(&[
        "-s",
        "5",
        "-m",
        "20",
        "-M",
        "load.client.test",
        "-f",
        "load@client.test",
        "-t",
        "sink@example.test",
        &addr,
    ]);
    assert!(
        out.status.success(),
        "smtp-source failed\n{}",
        output_text(&out)
    );
    assert_eq!(
        pf.wait_log_count(DELIVERED, 20, Duration::from_secs(60)),
        20
    );
    assert_eq!(pf.count_log("client=unknown[127.0.0.1]"), 20);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(pf.delivered(), 20, "{}", pf.maillog());
}

#[test]
fn two_instances_side_by_side_and_a_crash() {
    if Postfix::skip_unless_available("two_instances_side_by_side_and_a_crash") {
        return;
    }
    let mut a = Postfix::start("mta-a");
    let b = Postfix::builder("mta-b").xclient(true).start();
    assert_ne!(a.addr(), b.addr());
    assert_ne!(a.master_pid(), b.master_pid());
    swaks_ok(a.addr(), "one@example.test", &[]);
    swaks_ok(b.addr(), "two@example.test", &[]);
    a.wait_log_count(DELIVERED, 1, WAIT);
    b.wait_log_count(DELIVERED, 1, WAIT);
    assert!(!a.maillog().contains("two@example.test"), "logs are mixed");
    assert!(!b.maillog().contains("one@example.test"), "logs are mixed");
    // XCLIENT is offered by b only.
    let ehlo_b = swaks_ok(b.addr(), "x@example.test", &["--quit-after", "EHLO"]);
    assert!(ehlo_b.contains("XCLIENT"), "{ehlo_b}");
    let ehlo_a = swaks_ok(a.addr(), "x@example.test", &["--quit-after", "EHLO"]);
    assert!(!ehlo_a.contains("XCLIENT"), "{ehlo_a}");

    // Crash a: its port goes away, b carries on.
    let pid = a.master_pid().expect("a runs");
    a.kill();
    assert!(!a.is_running());
    assert!(!pid_alive(pid));
    assert!(!port_open(a.addr()));
    swaks_ok(b.addr(), "three@example.test", &[]);
    b.wait_log_count(DELIVERED, 2, WAIT);

    // And a comes back on the same port.
    a.restart();
    swaks_ok(a.addr(), "four@example.test", &[]);
    a.wait_log_count(DELIVERED, 2, WAIT);
}

#[test]
fn postfix_is_stopped_when_a_test_panics() {
    if Postfix::skip_unless_available("postfix_is_stopped_when_a_test_panics") {
        return;
    }
    let seen = Arc::new(Mutex::new(None));
    let inner = Arc::clone(&seen);
    let result = std::panic::catch_unwind(move || {
        let pf = Postfix::start("mta-doomed");
        *inner.lock().unwrap() = Some((
            pf.master_pid().expect("runs"),
            pf.addr(),
            pf.dir().to_owned(),
        ));
        panic!("simulated test failure");
    });
    assert!(result.is_err());
    let (pid, addr, dir) = seen.lock().unwrap().clone().expect("started");
    assert!(!pid_alive(pid), "master survived the panic");
    assert!(group_members(pid).is_empty(), "daemons survived the panic");
    assert!(!port_open(addr));
    if std::env::var_os("MXGATE_TEST_KEEP").is_none() {
        assert!(!dir.exists(), "temporary directory left behind");
    }
}

#[test]
fn postfix_offers_starttls() {
    if Postfix::skip_unless_available("postfix_offers_starttls")
        || skip_unless_tools("postfix_offers_starttls", &["openssl"])
    {
        return;
    }
    let pf = Postfix::builder("mta-tls").starttls(true).start();
    let text = swaks_ok(pf.addr(), "tls@example.test", &["--tls"]);
    assert!(text.contains("TLS started"), "{text}");
    pf.wait_log("TLS connection established from unknown[127.0.0.1]", WAIT);
    pf.wait_log(DELIVERED, WAIT);
}

#[test]
fn postfix_start_fails_clearly_on_a_taken_port() {
    if Postfix::skip_unless_available("postfix_start_fails_clearly_on_a_taken_port") {
        return;
    }
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().unwrap().port();
    let result = std::panic::catch_unwind(|| Postfix::builder("mta-busy").port(port).start());
    let err = result.err().expect("start on a taken port must fail");
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(msg.contains("postfix start failed"), "{msg}");
    assert!(msg.contains("Address already in use"), "{msg}");
}
