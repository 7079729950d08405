//! Black-box tests of smtp mode against hostile or broken clients: huge
//! lines, NUL bytes, bare LF, SMTP smuggling payloads, commands out of
//! sequence, pipelining floods, garbage instead of TLS, clients that vanish
//! or stall; and real clients (openssl s_client, Python's smtplib) doing
//! STARTTLS. After each abuse the gateway must still be healthy and a fresh
//! session must still deliver to the backend (a `mxgate sink`).

mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::gateway::{http_get, smtp_policy, Gateway, Sink, SmtpClient};
use support::{free_addr, output_text, poll, skip_unless_tools};

const WAIT: Duration = Duration::from_secs(20);
const UP: &str = "mxgate_backend_up{pool=\"mta\",server=\"mta1\"}";

/// A gateway in smtp mode relaying to a sink.
struct Rig {
    sink: Sink,
    gw: Gateway,
    bind: SocketAddr,
}

impl Rig {
    /// Sink, gateway (with `listener_extra` lines in its listener), backend up.
    fn start(listener_extra: &str) -> Rig {
        let sink = Sink::start("sink", false);
        let bind = free_addr();
        let policy = smtp_policy(bind, sink.addr, "") + listener_extra;
        let gw = Gateway::start("gw", &policy);
        gw.wait_metric(UP, 1.0, WAIT);
        Rig { sink, gw, bind }
    }

    /// A new session, greeted and past EHLO.
    fn session(&self) -> SmtpClient {
        let mut c = SmtpClient::connect(self.bind).unwrap();
        let banner = c.reply().unwrap();
        assert!(banner.starts_with("220 mx.gw.test"), "{banner}");
        let ehlo = c.command("EHLO client.test").unwrap();
        assert!(ehlo.starts_with("250-mx.gw.test"), "{ehlo}");
        c
    }

    /// The gateway survived: process alive, /healthz 200, and a fresh session
    /// delivers one more message to the sink (which then holds `stored`).
    fn still_delivers(&mut self, stored: usize) {
        assert!(self.gw.proc.is_running(), "{}", self.gw.proc.output());
        let health = http_get(self.gw.metrics, "/healthz").map(|(code, _)| code);
        assert_eq!(health, Some(200));
        let mut c = self.session();
        let reply = c
            .send_mail("ok@client.test", "ok@example.test", "still-works")
            .unwrap();
        assert!(reply.starts_with("250 2.0.0 Ok: queued as"), "{reply}");
        c.command("QUIT").unwrap();
        let msgs = self.sink.messages();
        assert_eq!(msgs.len(), stored, "{msgs:#?}");
        assert!(msgs.iter().any(|m| m.contains("still-works")), "{msgs:#?}");
    }
}

#[test]
fn a_10_mb_line_without_crlf_is_refused_and_the_gateway_stays_up() {
    let mut rig = Rig::start("");
    let mut c = rig.session();
    let chunk = vec![b'A'; 64 * 1024];
    let mut sent = 0;
    while sent < 10 * 1024 * 1024 {
        if c.send(&chunk).is_err() {
            break; // closing the connection is an acceptable answer too
        }
        sent += chunk.len();
    }
    if sent >= 10 * 1024 * 1024 && c.send(b"\r\n").is_ok() {
        let reply = c.reply().unwrap();
        assert!(reply.starts_with("500 5.5.2"), "{reply}");
        // The line was discarded, not read as a command: the session goes on.
        assert!(c.command("NOOP").unwrap().starts_with("250"));
    }
    drop(c);
    rig.still_delivers(1);
}

#[test]
fn nul_bytes_in_a_command_line_are_a_syntax_error() {
    let mut rig = Rig::start("");
    let mut c = rig.session();
    c.send(b"EHLO a\0b\r\n").unwrap();
    assert!(c.reply().unwrap().starts_with("500 5.5.2"));
    c.send(b"MAIL FROM:<a\0@client.test>\r\n").unwrap();
    assert!(c.reply().unwrap().starts_with("500 5.5.2"));
    // Nothing was opened: a RCPT now is out of sequence.
    let r = c.command("RCPT TO:<b@example.test>").unwrap();
    assert!(r.starts_with("503 5.5.1"), "{r}");
    c.command("QUIT").unwrap();
    rig.still_delivers(1);
}

#[test]
fn a_bare_lf_does_not_end_a_command() {
    let mut rig = Rig::start("");
    let mut c = SmtpClient::connect(rig.bind).unwrap();
    assert!(c.reply().unwrap().starts_with("220"));
    // "EHLO x\n" alone is no command yet: the next CRLF ends ONE line,
    // refused as a whole; the MAIL hidden behind the LF is never run.
    c.send(b"EHLO x\nMAIL FROM:<a@client.test>\r\n").unwrap();
    let r = c.reply().unwrap();
    assert!(r.starts_with("500 5.5.2"), "{r}");
    let r = c.command("MAIL FROM:<a@client.test>").unwrap();
    assert!(
        r.starts_with("503 5.5.1"),
        "EHLO must not have been taken: {r}"
    );
    assert!(c.command("EHLO x").unwrap().starts_with("250"));
    c.command("QUIT").unwrap();
    rig.still_delivers(1);
}

#[test]
fn smuggled_messages_are_never_delivered() {
    let mut rig = Rig::start("");
    let smuggled = "MAIL FROM:<evil@client.test>\r\nRCPT TO:<victim@example.test>\r\n\
                    DATA\r\nSubject: smuggled\r\n\r\nevil\r\n";
    for end in ["\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n", "\r\n.\r"] {
        let mut c = rig.session();
        c.envelope("legit@client.test", "user@example.test");
        assert!(c.command("DATA").unwrap().starts_with("354"));
        let payload = format!("Subject: legit\r\n\r\nhello{end}{smuggled}.\r\n");
        c.send(payload.as_bytes()).unwrap();
        let r = c.reply().unwrap();
        assert!(r.starts_with("550 5.6.0"), "{end:?}: {r}");
        // The smuggled commands were message data: the very next reply is
        // the one to our NOOP, nothing for a second MAIL/RCPT/DATA.
        let r = c.command("NOOP").unwrap();
        assert_eq!(r, "250 2.0.0 Ok\r\n", "{end:?}");
        c.command("QUIT").unwrap();
    }
    rig.still_delivers(1);
    let msgs = rig.sink.messages();
    assert!(
        msgs.iter()
            .all(|m| !m.contains("smuggled") && !m.contains("evil")),
        "{msgs:#?}"
    );
}

#[test]
fn commands_out_of_sequence_get_503() {
    let mut rig = Rig::start("");
    let mut c = SmtpClient::connect(rig.bind).unwrap();
    c.reply().unwrap();
    let r = c.command("MAIL FROM:<a@client.test>").unwrap();
    assert!(r.starts_with("503 5.5.1"), "MAIL before EHLO: {r}");
    c.command("EHLO client.test").unwrap();
    let r = c.command("RCPT TO:<b@example.test>").unwrap();
    assert!(r.starts_with("503 5.5.1"), "RCPT before MAIL: {r}");
    let r = c.command("DATA").unwrap();
    assert!(r.starts_with("503 5.5.1"), "DATA before MAIL: {r}");
    assert!(c
        .command("MAIL FROM:<a@client.test>")
        .unwrap()
        .starts_with("250"));
    let r = c.command("DATA").unwrap();
    assert!(r.starts_with("503 5.5.1"), "DATA before RCPT: {r}");
    let r = c.command("MAIL FROM:<a@client.test>").unwrap();
    assert!(r.starts_with("503 5.5.1"), "nested MAIL: {r}");
    c.command("QUIT").unwrap();
    rig.still_delivers(1);
}

#[test]
fn a_thousand_pipelined_noops_get_a_thousand_replies() {
    let mut rig = Rig::start("");
    let mut c = rig.session();
    c.send("NOOP\r\n".repeat(1000).as_bytes()).unwrap();
    for i in 0..1000 {
        let r = c.reply().unwrap();
        assert_eq!(r, "250 2.0.0 Ok\r\n", "reply {i}");
    }
    // NOOP is no error: the session is still usable.
    let r = c
        .send_mail("a@client.test", "b@example.test", "after-noops")
        .unwrap();
    assert!(r.starts_with("250 2.0.0 Ok: queued as"), "{r}");
    c.command("QUIT").unwrap();
    rig.still_delivers(2);
}

#[test]
fn pipelined_errors_hit_the_error_limit_and_close_with_421() {
    let mut rig = Rig::start("");
    let mut c = rig.session();
    c.send("BOGUS\r\n".repeat(100).as_bytes()).unwrap();
    // max_errors = 20 (default): 20 refusals, then 421 and the close.
    for i in 0..20 {
        let r = c.reply().unwrap();
        assert!(r.starts_with("500 5.5.2"), "reply {i}: {r}");
    }
    let r = c.reply().unwrap();
    assert!(r.starts_with("421 4.7.0"), "{r}");
    assert!(c.wait_closed(Duration::from_secs(5)));
    rig.still_delivers(1);
}

#[test]
fn garbage_instead_of_a_client_hello_closes_only_that_connection() {
    let mut rig = Rig::start("");
    let mut c = rig.session();
    let r = c.command("STARTTLS").unwrap();
    assert!(r.starts_with("220 2.0.0"), "{r}");
    c.send(b"EHLO this is not a TLS ClientHello\r\n\x16\x03\x01\x00\x05hello")
        .unwrap();
    assert!(c.wait_closed(Duration::from_secs(10)));
    rig.still_delivers(1);
}

#[test]
fn a_client_vanishing_mid_data_delivers_nothing() {
    let mut rig = Rig::start("");
    let mut c = rig.session();
    c.envelope("a@client.test", "b@example.test");
    assert!(c.command("DATA").unwrap().starts_with("354"));
    c.send(b"Subject: cut-off\r\n\r\nthe first half\r\n")
        .unwrap();
    drop(c);
    rig.gw.wait_metric(
        "mxgate_listener_connections_total{listener=\"mx\",result=\"accepted\"}",
        1.0,
        WAIT,
    );
    assert!(rig.sink.messages().is_empty());
    rig.still_delivers(1);
    let msgs = rig.sink.messages();
    assert!(msgs.iter().all(|m| !m.contains("cut-off")), "{msgs:#?}");
}

#[test]
fn a_silent_client_gets_421_after_the_command_timeout() {
    let mut rig = Rig::start("command_timeout_ms = 1000\n");
    let mut c = rig.session();
    let start = Instant::now();
    let r = c.reply().unwrap();
    let waited = start.elapsed();
    assert!(r.starts_with("421 4.4.2 mx.gw.test"), "{r}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(c.wait_closed(Duration::from_secs(2)));
    rig.still_delivers(1);
}

#[test]
fn a_client_stalling_in_data_gets_421_and_nothing_is_delivered() {
    let mut rig = Rig::start("data_timeout_ms = 1000\n");
    let mut c = rig.session();
    c.envelope("a@client.test", "b@example.test");
    assert!(c.command("DATA").unwrap().starts_with("354"));
    c.send(b"Subject: stalled\r\n\r\nhalf a message\r\n")
        .unwrap();
    let r = c.reply().unwrap();
    assert!(r.starts_with("421 4.4.2"), "{r}");
    assert!(c.wait_closed(Duration::from_secs(2)));
    rig.still_delivers(1);
    let msgs = rig.sink.messages();
    assert!(msgs.iter().all(|m| !m.contains("stalled")), "{msgs:#?}");
}

#[test]
fn a_data_timeout_counts_as_tempfail() {
    let rig = Rig::start("data_timeout_ms = 1000\n");
    let mut c = rig.session();
    c.command("MAIL FROM:<a@client.test>").unwrap();
    c.command("RCPT TO:<b@example.test>").unwrap();
    assert!(c.command("DATA").unwrap().starts_with("354"));
    c.send(b"Subject: stalled\r\n\r\nhalf a message\r\n")
        .unwrap();
    assert!(c.reply().unwrap().starts_with("421 4.4.2"));
    assert!(c.wait_closed(Duration::from_secs(2)));
    rig.gw.wait_metric(
        "mxgate_smtp_messages_total{listener=\"mx\",result=\"tempfail\"}",
        1.0,
        Duration::from_secs(5),
    );
}

#[test]
fn an_abandoned_envelope_is_not_a_rejected_message() {
    let mut rig = Rig::start("");
    let mut c = rig.session();
    c.envelope("probe@client.test", "b@example.test");
    c.command("QUIT").unwrap();
    rig.still_delivers(1);
    rig.gw.wait_metric(
        "mxgate_smtp_messages_total{listener=\"mx\",result=\"accepted\"}",
        1.0,
        WAIT,
    );
    let rejected = "mxgate_smtp_messages_total{listener=\"mx\",result=\"rejected\"}";
    assert_eq!(rig.gw.metric(rejected), Some(0.0));
}

#[test]
fn a_10_mb_line_in_the_message_is_refused_with_552() {
    let mut rig = Rig::start("");
    let mut c = rig.session();
    c.envelope("a@client.test", "b@example.test");
    assert!(c.command("DATA").unwrap().starts_with("354"));
    c.send(b"Subject: long-line\r\n\r\n").unwrap();
    let chunk = vec![b'B'; 64 * 1024];
    for _ in 0..160 {
        c.send(&chunk).unwrap();
    }
    let r = c.command("\r\n.").unwrap();
    assert!(r.starts_with("552 5.6.0"), "{r}");
    assert!(c.command("NOOP").unwrap().starts_with("250"));
    c.command("QUIT").unwrap();
    rig.still_delivers(1);
}

#[test]
fn plaintext_pipelined_after_starttls_is_not_run_over_tls() {
    if skip_unless_tools("plaintext_pipelined_after_starttls", &["python3"]) {
        return;
    }
    let rig = Rig::start("");
    // CVE-2011-0411 style: a MAIL injected behind STARTTLS in the same
    // packet must be dropped, not executed once TLS is up.
    let script = "import socket, ssl, sys\n\
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=20)\n\
        f = s.makefile('rb')\n\
        def reply(f):\n\
        \x20   out = b''\n\
        \x20   while True:\n\
        \x20       line = f.readline(); out += line\n\
        \x20       if line[3:4] != b'-': return out.decode()\n\
        print(reply(f), end='')\n\
        s.sendall(b'EHLO c.test\\r\\n'); print(reply(f), end='')\n\
        s.sendall(b'STARTTLS\\r\\nMAIL FROM:<evil@client.test>\\r\\n'); print(reply(f), end='')\n\
        t = ssl._create_unverified_context().wrap_socket(s)\n\
        g = t.makefile('rb')\n\
        t.sendall(b'EHLO c.test\\r\\n'); print(reply(g), end='')\n\
        t.sendall(b'RCPT TO:<b@example.test>\\r\\n'); print('RCPT:', reply(g), end='')\n\
        t.sendall(b'QUIT\\r\\n'); print(reply(g), end='')\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(rig.bind.ip().to_string())
        .arg(rig.bind.port().to_string())
        .output()
        .expect("run python3");
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("220 2.0.0 Ready to start TLS"), "{text}");
    assert!(
        text.contains("RCPT: 503 5.5.1"),
        "the injected MAIL ran: {text}"
    );
    assert!(text.contains("221 2.0.0 Bye"), "{text}");
}

#[test]
fn openssl_s_client_does_starttls_with_tls_1_3() {
    if skip_unless_tools("openssl_s_client_does_starttls_with_tls_1_3", &["openssl"]) {
        return;
    }
    let mut rig = Rig::start("");
    let mut child = Command::new("openssl")
        .args(["s_client", "-starttls", "smtp", "-tls1_3", "-quiet"])
        .args(["-connect", &rig.bind.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openssl");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"QUIT\r\n").unwrap();
    }
    let done = poll(WAIT, || child.try_wait().ok().flatten());
    if done.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let text = output_text(&out);
    assert!(done.is_some(), "openssl did not finish:\n{text}");
    assert!(out.status.success(), "{text}");
    // The 221 came back over TLS 1.3 (-tls1_3 allows nothing else).
    assert!(text.contains("221 2.0.0 Bye"), "{text}");
    rig.still_delivers(1);
}

#[test]
fn python_smtplib_starttls_delivers() {
    if skip_unless_tools("python_smtplib_starttls_delivers", &["python3"]) {
        return;
    }
    let rig = Rig::start("");
    let script = "import smtplib, sys\n\
        s = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=20)\n\
        s.starttls()\n\
        body = 'Subject: from-python\\r\\n\\r\\nhello from smtplib\\r\\n'\n\
        s.sendmail('py@client.test', ['user@example.test'], body)\n\
        s.quit()\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(rig.bind.ip().to_string())
        .arg(rig.bind.port().to_string())
        .output()
        .expect("run python3");
    assert!(out.status.success(), "{}", output_text(&out));
    let msgs = rig.sink.messages();
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    assert!(msgs[0].contains("from-python"), "{}", msgs[0]);
    assert!(msgs[0].contains("with ESMTPS"), "{}", msgs[0]);
}
