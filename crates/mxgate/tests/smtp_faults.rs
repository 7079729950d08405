//! Black-box tests of smtp mode when the backend fails: a scripted fake
//! backend (written here, speaking SMTP line by line) that dies at a chosen
//! step or answers with chosen replies, and a real Postfix killed in the
//! middle of a message. The sender must only ever get a 250 at the end of
//! the data when the backend gave it; any backend failure is a 451 4.4.x,
//! and a message cut off never reaches the backend's final `.`.

mod support;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::gateway::{smtp_policy, Gateway, SmtpClient};
use support::{free_addr, poll, Postfix, DELIVERED};

const WAIT: Duration = Duration::from_secs(20);
const UP: &str = "mxgate_backend_up{pool=\"mta\",server=\"mta1\"}";
const TEMPFAIL: &str = "mxgate_smtp_messages_total{listener=\"mx\",result=\"tempfail\"}";
const ACCEPTED: &str = "mxgate_smtp_messages_total{listener=\"mx\",result=\"accepted\"}";

/// What the fake backend does in one transaction (from a MAIL on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// 250 to everything, `250 2.0.0 Ok: queued as FAKE` at the end.
    Healthy,
    /// Answers RCPT with 250, then closes the connection.
    DieAfterRcpt,
    /// Closes the connection on receiving the message line that starts
    /// with this text.
    DieInDataAt(&'static str),
    /// Reads the final `.` and closes without a reply.
    DieBeforeReply,
    /// Answers RCPT for recipients whose address starts with `refused` with
    /// this reply (others get 250).
    RcptReply(&'static str),
    /// Answers the final `.` with this reply.
    EndReply(&'static str),
    /// Takes the message (250), then closes the kept connection.
    DieAfterQueued,
}

/// What the fake received in one transaction, MAIL line first.
#[derive(Debug, Clone, Default)]
struct Transcript {
    lines: Vec<String>,
    died: bool,
}

/// A fake SMTP backend on 127.0.0.1. Every connection is a session (the
/// gateway's health checks say EHLO and QUIT); each MAIL takes the next
/// [`Fault`] of the script (`Healthy` once it is empty).
struct FakeBackend {
    addr: SocketAddr,
    transcripts: Arc<Mutex<Vec<Transcript>>>,
}

impl FakeBackend {
    fn start(script: &[Fault]) -> FakeBackend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let faults = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
        let transcripts = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&transcripts);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut conn = FakeConn {
                    out: stream.try_clone().unwrap(),
                    reader: BufReader::new(stream),
                    faults: Arc::clone(&faults),
                    transcripts: Arc::clone(&shared),
                    current: None,
                    fault: Fault::Healthy,
                };
                std::thread::spawn(move || {
                    let _ = conn.serve();
                });
            }
        });
        FakeBackend { addr, transcripts }
    }

    /// Transcript `n` (the n-th MAIL), once it exists.
    fn transcript(&self, n: usize) -> Transcript {
        let found = poll(WAIT, || self.transcripts.lock().unwrap().get(n).cloned());
        found.unwrap_or_else(|| panic!("no transaction {n} at the fake backend"))
    }

    /// Waits until transaction `n` died at the fake.
    fn wait_died(&self, n: usize) -> Transcript {
        let found = poll(WAIT, || {
            let t = self.transcripts.lock().unwrap().get(n).cloned()?;
            t.died.then_some(t)
        });
        found.unwrap_or_else(|| panic!("transaction {n} did not die: {:?}", self.transcript(n)))
    }
}

/// One connection to the fake backend.
struct FakeConn {
    out: TcpStream,
    reader: BufReader<TcpStream>,
    faults: Arc<Mutex<VecDeque<Fault>>>,
    transcripts: Arc<Mutex<Vec<Transcript>>>,
    /// Index of this connection's current transcript (after a MAIL).
    current: Option<usize>,
    fault: Fault,
}

impl FakeConn {
    fn serve(&mut self) -> std::io::Result<()> {
        self.out.write_all(b"220 fake.test ESMTP\r\n")?;
        loop {
            let Some(line) = self.line()? else {
                return Ok(());
            };
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            let reply = match verb.as_str() {
                "EHLO" => "250-fake.test\r\n250-PIPELINING\r\n250 8BITMIME",
                "HELO" | "RSET" | "NOOP" => "250 2.0.0 Ok",
                "QUIT" => {
                    self.out.write_all(b"221 2.0.0 Bye\r\n")?;
                    return Ok(());
                }
                "MAIL" => {
                    self.fault = self
                        .faults
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or(Fault::Healthy);
                    let mut all = self.transcripts.lock().unwrap();
                    all.push(Transcript {
                        lines: vec![line.clone()],
                        died: false,
                    });
                    self.current = Some(all.len() - 1);
                    "250 2.1.0 Ok"
                }
                "RCPT" => match self.fault {
                    Fault::RcptReply(r) if line[8..].starts_with("<refused") => r,
                    Fault::DieAfterRcpt => {
                        self.out.write_all(b"250 2.1.5 Ok\r\n")?;
                        return self.die();
                    }
                    _ => "250 2.1.5 Ok",
                },
                "DATA" => {
                    self.out
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
                    match self.data()? {
                        Some(reply) if self.fault == Fault::DieAfterQueued => {
                            self.out.write_all(format!("{reply}\r\n").as_bytes())?;
                            return self.die();
                        }
                        Some(reply) => reply,
                        None => return Ok(()),
                    }
                }
                _ => "502 5.5.2 Error: command not recognized",
            };
            self.out.write_all(format!("{reply}\r\n").as_bytes())?;
        }
    }

    /// Reads the message to its `.` line; the reply to give, or `None`
    /// when the connection is gone.
    fn data(&mut self) -> std::io::Result<Option<&'static str>> {
        loop {
            let Some(line) = self.line()? else {
                return Ok(None);
            };
            match self.fault {
                Fault::DieInDataAt(mark) if line.starts_with(mark) => {
                    return self.die().map(|_| None)
                }
                _ => {}
            }
            if line == ".\r\n" {
                return match self.fault {
                    Fault::DieBeforeReply => self.die().map(|_| None),
                    Fault::EndReply(r) => Ok(Some(r)),
                    _ => Ok(Some("250 2.0.0 Ok: queued as FAKE")),
                };
            }
        }
    }

    /// The next line (CRLF kept), recorded in the transaction's transcript.
    fn line(&mut self) -> std::io::Result<Option<String>> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        if let Some(i) = self.current {
            self.transcripts.lock().unwrap()[i].lines.push(line.clone());
        }
        Ok(Some(line))
    }

    /// Dies: the connection closes with no further reply.
    fn die(&mut self) -> std::io::Result<()> {
        if let Some(i) = self.current {
            self.transcripts.lock().unwrap()[i].died = true;
        }
        let _ = self.out.shutdown(Shutdown::Both);
        Ok(())
    }
}

/// A gateway relaying to a fake backend with `script`, the backend up.
fn rig(script: &[Fault]) -> (FakeBackend, Gateway, SocketAddr) {
    let fake = FakeBackend::start(script);
    let bind = free_addr();
    let gw = Gateway::start("gw", &smtp_policy(bind, fake.addr, ""));
    gw.wait_metric(UP, 1.0, WAIT);
    (fake, gw, bind)
}

/// A session at `bind` with MAIL and one RCPT taken.
fn envelope(bind: SocketAddr) -> SmtpClient {
    let mut c = SmtpClient::connect(bind).unwrap();
    assert!(c.reply().unwrap().starts_with("220 mx.gw.test"));
    c.command("EHLO client.test").unwrap();
    let r = c.command("MAIL FROM:<a@client.test>").unwrap();
    assert!(r.starts_with("250"), "{r}");
    let r = c.command("RCPT TO:<b@example.test>").unwrap();
    assert!(r.starts_with("250"), "{r}");
    c
}

/// The backend died after RCPT: the sender's DATA gets 451 4.4.x.
fn die_before_data(bind: SocketAddr) {
    let mut c = envelope(bind);
    let r = c.command("DATA").unwrap();
    assert!(r.starts_with("451 4.4."), "{r}");
    c.command("QUIT").unwrap();
}

/// The backend (transaction `n`) died in the data: 451 at the end of it.
fn die_in_data(fake: &FakeBackend, bind: SocketAddr, n: usize) {
    let mut c = envelope(bind);
    assert!(c.command("DATA").unwrap().starts_with("354"));
    // A line after the mark: the gateway may hold a message's last CRLF back
    // until it knows it is not the start of the final ".".
    c.send(b"Subject: half\r\n\r\nfirst half\r\nHALF-MARK\r\nafter the mark\r\n")
        .unwrap();
    let t = fake.wait_died(n);
    assert!(t.lines.iter().any(|l| l == "first half\r\n"), "{t:?}");
    c.send(b"second half\r\n".repeat(100).as_slice()).unwrap();
    c.send(b".\r\n").unwrap();
    let r = c.reply().unwrap();
    assert!(r.starts_with("451 4.4."), "{r}");
    let t = fake.transcript(n);
    assert!(!t.lines.iter().any(|l| l == ".\r\n"), "{t:?}");
    c.command("QUIT").unwrap();
}

/// The backend took the `.` and died before replying: 451, never 250.
fn die_before_reply(fake: &FakeBackend, bind: SocketAddr, n: usize) {
    let mut c = envelope(bind);
    assert!(c.command("DATA").unwrap().starts_with("354"));
    let r = c.command("Subject: lost reply\r\n\r\nbody\r\n.").unwrap();
    assert!(r.starts_with("451 4.4."), "{r}");
    let t = fake.wait_died(n);
    assert_eq!(t.lines.last().map(String::as_str), Some(".\r\n"), "{t:?}");
    c.command("QUIT").unwrap();
}

#[test]
fn backend_dying_after_rcpt_gives_451_at_data() {
    let (_fake, gw, bind) = rig(&[Fault::DieAfterRcpt]);
    die_before_data(bind);
    gw.wait_metric(TEMPFAIL, 1.0, WAIT);
}

#[test]
fn backend_dying_mid_data_gives_451_and_never_sees_the_dot() {
    let (fake, gw, bind) = rig(&[Fault::DieInDataAt("HALF-MARK")]);
    die_in_data(&fake, bind, 0);
    gw.wait_metric(TEMPFAIL, 1.0, WAIT);
}

#[test]
fn backend_dying_before_its_final_reply_gives_451_not_250() {
    let (fake, gw, bind) = rig(&[Fault::DieBeforeReply]);
    die_before_reply(&fake, bind, 0);
    gw.wait_metric(TEMPFAIL, 1.0, WAIT);
}

#[test]
fn backend_rcpt_refusals_reach_the_sender_per_recipient() {
    let (fake, _gw, bind) = rig(&[
        Fault::RcptReply("452 4.2.2 fake: mailbox full"),
        Fault::RcptReply("554 5.7.1 fake: recipient refused"),
    ]);
    let mut c = SmtpClient::connect(bind).unwrap();
    c.reply().unwrap();
    c.command("EHLO client.test").unwrap();
    for refusal in [
        "452 4.2.2 fake: mailbox full",
        "554 5.7.1 fake: recipient refused",
    ] {
        c.envelope("a@client.test", "ok@example.test");
        let r = c.command("RCPT TO:<refused@example.test>").unwrap();
        assert_eq!(r, format!("{refusal}\r\n"));
        assert!(c.command("DATA").unwrap().starts_with("354"));
        let r = c.command("Subject: one of two\r\n\r\nbody\r\n.").unwrap();
        assert_eq!(r, "250 2.0.0 Ok: queued as FAKE\r\n");
    }
    c.command("QUIT").unwrap();
    for n in 0..2 {
        let t = fake.transcript(n);
        assert!(t.lines.iter().any(|l| l == ".\r\n"), "{t:?}");
    }
}

#[test]
fn backend_554_at_end_of_data_reaches_the_sender_verbatim() {
    let (_fake, gw, bind) = rig(&[Fault::EndReply("554 5.7.1 fake: spam, go away")]);
    let mut c = envelope(bind);
    assert!(c.command("DATA").unwrap().starts_with("354"));
    let r = c.command("Subject: spam\r\n\r\nbuy\r\n.").unwrap();
    assert_eq!(r, "554 5.7.1 fake: spam, go away\r\n");
    c.command("QUIT").unwrap();
    gw.wait_metric(
        "mxgate_smtp_messages_total{listener=\"mx\",result=\"rejected\"}",
        1.0,
        WAIT,
    );
    assert_eq!(gw.metric(TEMPFAIL), Some(0.0));
}

#[test]
fn a_kept_backend_connection_that_died_is_replaced_transparently() {
    let (fake, gw, bind) = rig(&[Fault::DieAfterQueued, Fault::Healthy]);
    let mut c = SmtpClient::connect(bind).unwrap();
    c.reply().unwrap();
    c.command("EHLO client.test").unwrap();
    let r = c
        .send_mail("a@client.test", "b@example.test", "one")
        .unwrap();
    assert_eq!(r, "250 2.0.0 Ok: queued as FAKE\r\n");
    fake.wait_died(0);
    // The gateway kept that connection for the next transaction; it is
    // dead now, and the sender must not notice.
    let r = c
        .send_mail("a@client.test", "b@example.test", "two")
        .unwrap();
    assert_eq!(r, "250 2.0.0 Ok: queued as FAKE\r\n");
    c.command("QUIT").unwrap();
    assert!(fake.transcript(1).lines.iter().any(|l| l == "two\r\n"));
    gw.wait_metric(ACCEPTED, 2.0, WAIT);
    assert_eq!(gw.metric(TEMPFAIL), Some(0.0));
}

#[test]
fn tempfail_metric_counts_every_451() {
    let (fake, gw, bind) = rig(&[
        Fault::DieAfterRcpt,
        Fault::DieInDataAt("HALF-MARK"),
        Fault::DieBeforeReply,
        Fault::Healthy,
    ]);
    die_before_data(bind);
    die_in_data(&fake, bind, 1);
    die_before_reply(&fake, bind, 2);
    let mut c = SmtpClient::connect(bind).unwrap();
    c.reply().unwrap();
    c.command("EHLO client.test").unwrap();
    let r = c
        .send_mail("a@client.test", "b@example.test", "fine")
        .unwrap();
    assert_eq!(r, "250 2.0.0 Ok: queued as FAKE\r\n");
    c.command("QUIT").unwrap();
    gw.wait_metric(ACCEPTED, 1.0, WAIT);
    gw.wait_metric(TEMPFAIL, 3.0, WAIT);
}

#[test]
fn postfix_killed_mid_data_gives_4xx_and_delivers_nothing() {
    if Postfix::skip_unless_available("postfix_killed_mid_data_gives_4xx_and_delivers_nothing") {
        return;
    }
    let mut pf = Postfix::builder("pfkill").xclient(true).start();
    let bind = free_addr();
    let policy = smtp_policy(bind, pf.addr(), "client_identity = \"xclient\"");
    let gw = Gateway::start("gw", &policy);
    gw.wait_metric(UP, 1.0, WAIT);
    let mut c = SmtpClient::connect(bind).unwrap();
    c.reply().unwrap();
    c.command("EHLO client.test").unwrap();
    c.envelope("killed@client.test", "victim@example.test");
    assert!(c.command("DATA").unwrap().starts_with("354"));
    c.send(b"Subject: killed\r\n\r\n").unwrap();
    c.send(b"the first half\r\n".repeat(200).as_slice())
        .unwrap();
    // Let the first half reach Postfix before it dies.
    std::thread::sleep(Duration::from_millis(500));
    pf.kill();
    c.send(b"the second half\r\n".repeat(200).as_slice())
        .unwrap();
    c.send(b".\r\n").unwrap();
    let r = c.reply().unwrap();
    assert!(r.starts_with("451 4.4."), "{r}");
    c.command("QUIT").unwrap();
    gw.wait_metric(TEMPFAIL, 1.0, WAIT);

    pf.restart();
    gw.wait_metric(UP, 1.0, WAIT);
    let mut c = SmtpClient::connect(bind).unwrap();
    c.reply().unwrap();
    c.command("EHLO client.test").unwrap();
    let r = c
        .send_mail(
            "after@client.test",
            "after@example.test",
            "after the restart",
        )
        .unwrap();
    assert!(r.starts_with("250 2.0.0 Ok: queued as"), "{r}");
    c.command("QUIT").unwrap();
    let line = pf.wait_log(DELIVERED, WAIT);
    assert!(line.contains("to=<after@example.test>"), "{line}");
    let log = pf.maillog();
    assert_eq!(pf.delivered(), 1, "{log}");
    assert!(!log.contains("victim@example.test"), "{log}");
    assert!(!log.contains("killed@client.test"), "{log}");
}

#[test]
fn an_unknown_recipient_is_refused_from_the_cache_without_asking_again() {
    // The backend calls refused@ unknown once; afterwards it would accept
    // everything, so a second 550 can only come from mxgate's cache.
    let (fake, _gw, bind) = rig(&[Fault::RcptReply("550 5.1.1 fake: no such user")]);
    let mut c = SmtpClient::connect(bind).unwrap();
    c.reply().unwrap();
    c.command("EHLO client.test").unwrap();
    // The second time in other letter case: recipients compare case-insensitively.
    for rcpt in ["refused@example.test", "Refused@Example.TEST"] {
        c.envelope("a@client.test", "ok@example.test");
        let r = c.command(&format!("RCPT TO:<{rcpt}>")).unwrap();
        assert_eq!(r, "550 5.1.1 fake: no such user\r\n");
        assert!(c.command("RSET").unwrap().starts_with("250"));
    }
    c.command("QUIT").unwrap();
    let asked: usize = (0..2)
        .map(|n| {
            fake.transcript(n)
                .lines
                .iter()
                .filter(|l| l.to_ascii_lowercase().starts_with("rcpt to:<refused@"))
                .count()
        })
        .sum();
    assert_eq!(
        asked, 1,
        "the backend was asked about the unknown user once"
    );
}
