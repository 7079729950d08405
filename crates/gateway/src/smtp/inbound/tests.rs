//! Driver tests on `tokio::io::duplex` with a fake [`Relay`] that records
//! every call and can fail at any step.

use super::*;
use crate::smtp::relay::RelayError;
use mxgate_smtp::parse_reply;
use std::sync::Mutex;
use tokio::io::DuplexStream;
use tokio::task::JoinHandle;

/// What the fake backend saw.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub calls: Vec<String>,
    pub data: Vec<u8>,
}

/// A backend that answers like a healthy MTA, or fails at `fail_at`.
#[derive(Clone, Default)]
pub(crate) struct Fake {
    pub seen: Arc<Mutex<Seen>>,
    pub fail_at: Option<&'static str>,
    pub mail_reply: Option<Reply>,
}

pub(super) const BACKEND_OK: &str = "250 2.0.0 Ok: queued as BACKEND42";

impl Fake {
    fn call(&self, step: &'static str, what: String) -> Result<(), RelayError> {
        self.seen.lock().unwrap().calls.push(what);
        if self.fail_at == Some(step) {
            return Err(RelayError::Protocol {
                server: "pool/one".into(),
                step,
                detail: "scripted failure".into(),
            });
        }
        Ok(())
    }

    pub(crate) fn calls(&self) -> Vec<String> {
        self.seen.lock().unwrap().calls.clone()
    }

    pub(crate) fn data(&self) -> Vec<u8> {
        self.seen.lock().unwrap().data.clone()
    }
}

impl Relay for Fake {
    fn identify(&mut self, _client: &ClientIdentity) {}

    async fn mail(&mut self, from: &str, params: &str) -> Result<Reply, RelayError> {
        self.call(
            "mail",
            format!("mail {from} {params}").trim_end().to_owned(),
        )?;
        Ok(self
            .mail_reply
            .clone()
            .unwrap_or_else(|| Reply::new(250, "2.1.0 Ok")))
    }
    async fn rcpt(&mut self, to: &str, _params: &str) -> Result<Reply, RelayError> {
        self.call("rcpt", format!("rcpt {to}"))?;
        if to.starts_with("unknown") {
            return Ok(Reply::new(
                550,
                "5.1.1 <unknown>: Recipient address rejected",
            ));
        }
        Ok(Reply::new(250, "2.1.5 Ok"))
    }
    async fn data_start(&mut self) -> Result<Reply, RelayError> {
        self.call("data_start", "data_start".into())?;
        Ok(Reply::new(354, "End data with <CR><LF>.<CR><LF>"))
    }
    async fn data_chunk(&mut self, wire: &[u8]) -> Result<(), RelayError> {
        self.call("data_chunk", "data_chunk".into())?;
        self.seen.lock().unwrap().data.extend_from_slice(wire);
        Ok(())
    }
    async fn data_end(&mut self) -> Result<Reply, RelayError> {
        self.call("data_end", "data_end".into())?;
        Ok(Reply::new(250, "2.0.0 Ok: queued as BACKEND42"))
    }
    async fn rset(&mut self) {
        let _ = self.call("rset", "rset".into());
    }
    async fn abort(&mut self) {
        let _ = self.call("abort", "abort".into());
    }
    fn server(&self) -> Option<String> {
        Some("pool/one".into())
    }
}

pub(super) fn settings() -> InboundSettings {
    InboundSettings {
        hostname: "mx.example.org".into(),
        max_message_size: 20_000_000,
        max_recipients: 5,
        max_errors: 10,
        max_line: 998,
        command_timeout: Duration::from_secs(5),
        data_timeout: Duration::from_secs(5),
        relay_domains: Arc::new(vec!["example.org".into()]),
    }
}

pub(crate) fn identity() -> ClientIdentity {
    ClientIdentity {
        addr: "192.0.2.1:40000".parse().unwrap(),
        destination: "198.51.100.1:25".parse().unwrap(),
        helo: String::new(),
        esmtp: false,
        tls: None,
        rdns: None,
    }
}

/// Starts a session on a duplex pair; returns the client end.
pub(super) fn start(
    fake: &Fake,
    settings: InboundSettings,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (DuplexStream, JoinHandle<SessionRecord>) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let fake = fake.clone();
    let task = tokio::spawn(async move { serve(server, fake, &settings, identity(), tls).await });
    (client, task)
}

/// A client reading replies, keeping octets past the last reply.
pub(super) struct Client<S> {
    pub stream: S,
    pending: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub(super) fn new(stream: S) -> Self {
        Client {
            stream,
            pending: Vec::new(),
        }
    }

    /// The next reply in wire form without its last CRLF, or `<EOF>`.
    pub(super) async fn reply(&mut self) -> String {
        loop {
            if let Some((reply, used)) = parse_reply(&self.pending).unwrap() {
                self.pending.drain(..used);
                return reply.to_string().trim_end().to_owned();
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                return "<EOF>".into();
            }
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next `n` replies.
    pub(super) async fn replies(&mut self, n: usize) -> Vec<String> {
        let mut all = Vec::new();
        for _ in 0..n {
            all.push(self.reply().await);
        }
        all
    }

    pub(super) async fn send(&mut self, wire: &[u8]) {
        self.stream.write_all(wire).await.unwrap();
    }

    /// Octets received past the last reply read.
    pub(super) fn leftover(&self) -> usize {
        self.pending.len()
    }
}

const ENVELOPE: &[u8] =
    b"EHLO c.example\r\nMAIL FROM:<a@sender.example>\r\nRCPT TO:<u@example.org>\r\nDATA\r\n";

#[tokio::test]
async fn pipelined_transaction_in_one_write_gets_the_backends_250() {
    let fake = Fake::default();
    let (stream, task) = start(&fake, settings(), None);
    let mut client = Client::new(stream);
    let mut wire = ENVELOPE.to_vec();
    wire.extend_from_slice(b"Subject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n");
    client.send(&wire).await;
    let replies = client.replies(7).await;
    assert_eq!(replies[0], "220 mx.example.org ESMTP mxgate");
    assert!(replies[1].contains("250-PIPELINING") && !replies[1].contains("STARTTLS"));
    assert_eq!(replies[2], "250 2.1.0 Ok");
    assert_eq!(replies[3], "250 2.1.5 Ok");
    assert_eq!(replies[4], "354 End data with <CR><LF>.<CR><LF>");
    assert_eq!(replies[5], BACKEND_OK);
    assert_eq!(replies[6], "221 2.0.0 Bye");
    let record = task.await.unwrap();
    let data = String::from_utf8(fake.data()).unwrap();
    assert!(data.starts_with(
        "Received: from c.example (unknown [192.0.2.1])\r\n\tby mx.example.org (mxgate) with ESMTP id "
    ));
    assert!(data.contains("\tfor <u@example.org>; "));
    assert!(data.ends_with("\r\nSubject: hi\r\n\r\n..dot\r\n"));
    assert_eq!(
        fake.calls(),
        [
            "mail a@sender.example",
            "rcpt u@example.org",
            "data_start",
            "data_chunk",
            "data_chunk",
            "data_end"
        ]
    );
    assert_eq!(record.end, "quit");
    assert_eq!(record.helo.as_deref(), Some("c.example"));
    let tx = &record.transactions[0];
    assert_eq!(tx.result, TransactionResult::Accepted);
    assert_eq!(tx.final_reply.as_deref(), Some(BACKEND_OK));
    assert_eq!(tx.rcpts, [("u@example.org".to_string(), 250)]);
    assert_eq!(tx.size, 22);
    assert_eq!(tx.server.as_deref(), Some("pool/one"));
}

#[tokio::test]
async fn backend_refusal_text_is_passed_through() {
    let fake = Fake {
        mail_reply: Some(Reply::new(550, "5.7.1 sender refused by backend")),
        ..Fake::default()
    };
    let (stream, task) = start(&fake, settings(), None);
    let mut client = Client::new(stream);
    client
        .send(b"HELO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.org>\r\nQUIT\r\n")
        .await;
    let replies = client.replies(5).await;
    assert_eq!(replies[2], "550 5.7.1 sender refused by backend");
    assert_eq!(replies[3], "503 5.5.1 Error: need MAIL command");
    let record = task.await.unwrap();
    assert_eq!(record.transactions[0].result, TransactionResult::Rejected);
}

#[tokio::test]
async fn relay_denied_never_reaches_the_backend() {
    let fake = Fake::default();
    let (stream, task) = start(&fake, settings(), None);
    let mut client = Client::new(stream);
    client
        .send(b"EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@other.example>\r\nRCPT TO:<u%x@example.org>\r\nRCPT TO:<unknown@example.org>\r\nDATA\r\nQUIT\r\n")
        .await;
    let replies = client.replies(8).await;
    assert_eq!(replies[3], "554 5.7.1 Error: Relay access denied");
    assert_eq!(replies[4], "554 5.7.1 Error: Relay access denied");
    assert_eq!(
        replies[5],
        "550 5.1.1 <unknown>: Recipient address rejected"
    );
    assert_eq!(replies[6], "554 5.5.1 Error: no valid recipients");
    let record = task.await.unwrap();
    assert_eq!(fake.calls(), ["mail", "rcpt unknown@example.org", "abort"]);
    assert_eq!(
        record.transactions[0].rcpts,
        [
            ("a@other.example".to_string(), 554),
            ("u%x@example.org".to_string(), 554),
            ("unknown@example.org".to_string(), 550)
        ]
    );
}

#[tokio::test]
async fn backend_failure_at_each_step_gives_451_and_abort() {
    for step in ["mail", "rcpt", "data_start", "data_chunk", "data_end"] {
        let fake = Fake {
            fail_at: Some(step),
            ..Fake::default()
        };
        let (stream, task) = start(&fake, settings(), None);
        let mut client = Client::new(stream);
        client.send(ENVELOPE).await;
        let mut replies = client.replies(5).await.split_off(2);
        if replies[2].starts_with("354") {
            client.send(b"body\r\n.\r\n").await;
            replies.push(client.reply().await);
        }
        const FAILED: &str = "451 4.4.2 Mail server connection failed, try again later";
        const NO_MAIL: &str = "503 5.5.1 Error: need MAIL command";
        let expected: &[&str] = match step {
            "mail" => &[FAILED, NO_MAIL, NO_MAIL],
            "rcpt" => &["250 2.1.0 Ok", FAILED, NO_MAIL],
            "data_start" => &["250 2.1.0 Ok", "250 2.1.5 Ok", FAILED],
            _ => &[
                "250 2.1.0 Ok",
                "250 2.1.5 Ok",
                "354 End data with <CR><LF>.<CR><LF>",
                FAILED,
            ],
        };
        assert_eq!(replies, expected, "{step}");
        client.send(b"QUIT\r\n").await;
        assert_eq!(client.reply().await, "221 2.0.0 Bye");
        let record = task.await.unwrap();
        let calls = fake.calls();
        assert_eq!(
            calls.iter().filter(|c| *c == "abort").count(),
            1,
            "{step}: {calls:?}"
        );
        assert_eq!(calls.last().map(String::as_str), Some("abort"), "{step}");
        assert_eq!(
            record.transactions[0].result,
            TransactionResult::Tempfail,
            "{step}"
        );
    }
}

#[tokio::test]
async fn disconnect_mid_data_aborts_without_data_end() {
    let fake = Fake::default();
    let (stream, task) = start(&fake, settings(), None);
    let mut client = Client::new(stream);
    client.send(ENVELOPE).await;
    client.replies(5).await;
    client.send(b"Subject: half\r\n\r\nbody without end").await;
    drop(client);
    let record = task.await.unwrap();
    let calls = fake.calls();
    assert_eq!(calls.last().map(String::as_str), Some("abort"));
    assert!(!calls.contains(&"data_end".to_string()));
    assert_eq!(record.end, "disconnect in data");
}

#[tokio::test]
async fn ten_megabyte_line_gets_a_clean_reply_with_bounded_forwarding() {
    let fake = Fake::default();
    let (stream, task) = start(&fake, settings(), None);
    let (read_half, mut write_half) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        write_half.write_all(ENVELOPE).await.unwrap();
        let block = vec![b'x'; 1024 * 1024];
        for _ in 0..10 {
            write_half.write_all(&block).await.unwrap();
        }
        write_half.write_all(b"\r\n.\r\nQUIT\r\n").await.unwrap();
        write_half
    });
    let mut client = Client::new(tokio::io::join(read_half, tokio::io::sink()));
    let replies = client.replies(7).await;
    assert_eq!(replies[5], "552 5.6.0 Error: message line too long");
    assert_eq!(replies[6], "221 2.0.0 Bye");
    drop(writer.await.unwrap());
    let record = task.await.unwrap();
    assert!(
        fake.data().len() < 64 * 1024,
        "forwarded {}",
        fake.data().len()
    );
    let calls = fake.calls();
    assert!(calls.contains(&"abort".to_string()));
    assert!(!calls.contains(&"data_end".to_string()));
    assert_eq!(record.transactions[0].size, 10 * 1024 * 1024 + 2);
    assert_eq!(record.transactions[0].result, TransactionResult::Rejected);
}

#[tokio::test]
async fn nul_and_eight_bit_are_forwarded_byte_exact() {
    let fake = Fake::default();
    let (stream, task) = start(&fake, settings(), None);
    let mut client = Client::new(stream);
    let mut wire = ENVELOPE.to_vec();
    wire.extend_from_slice(b"a\x00b\xff\r\n\x00.\r\n.\r\n");
    client.send(&wire).await;
    assert_eq!(client.replies(6).await[5], BACKEND_OK);
    drop(client);
    task.await.unwrap();
    assert!(fake.data().ends_with(b"\r\na\x00b\xff\r\n\x00.\r\n"));
}

#[tokio::test]
async fn bare_line_ends_are_refused_and_never_forwarded() {
    for variant in [
        &b"\n.\n"[..],
        b"\r.\r",
        b"\r\n.\n",
        b"\n.\r\n",
        b"\r\n.\r",
        b"\nplain bare LF",
    ] {
        let fake = Fake::default();
        let (stream, task) = start(&fake, settings(), None);
        let mut client = Client::new(stream);
        let mut wire = ENVELOPE.to_vec();
        wire.extend_from_slice(b"Subject: x\r\n\r\nhead");
        wire.extend_from_slice(variant);
        wire.extend_from_slice(b"MAIL FROM:<smuggled@evil.example>\r\nRCPT TO:<u@example.org>\r\n");
        client.send(&wire).await;
        client.replies(5).await;
        client.send(b"tail\r\n.\r\nQUIT\r\n").await;
        let replies = client.replies(2).await;
        assert_eq!(
            replies[0], "550 5.6.0 Error: bare LF/CR not allowed",
            "{variant:?}"
        );
        assert_eq!(replies[1], "221 2.0.0 Bye");
        task.await.unwrap();
        let data = fake.data();
        assert!(!data.windows(8).any(|w| w == b"smuggled"), "{variant:?}");
        let calls = fake.calls();
        assert!(!calls.contains(&"data_end".to_string()), "{variant:?}");
        assert_eq!(calls.iter().filter(|c| c.starts_with("mail")).count(), 1);
        assert!(calls.contains(&"abort".to_string()));
    }
}

#[tokio::test]
async fn command_timeout_closes_with_421() {
    let fake = Fake::default();
    let mut short = settings();
    short.command_timeout = Duration::from_millis(50);
    let (stream, task) = start(&fake, short, None);
    let mut client = Client::new(stream);
    client.send(b"EHLO c\r\nMAIL FROM:<>\r\n").await;
    let replies = client.replies(4).await;
    assert_eq!(
        replies[3],
        "421 4.4.2 mx.example.org Error: timeout exceeded"
    );
    assert_eq!(client.reply().await, "<EOF>");
    let record = task.await.unwrap();
    assert_eq!(record.end, "timeout");
    assert_eq!(fake.calls(), ["mail", "abort"]);
}

#[tokio::test]
async fn data_timeout_aborts() {
    let fake = Fake::default();
    let mut short = settings();
    short.data_timeout = Duration::from_millis(50);
    let (stream, task) = start(&fake, short, None);
    let mut client = Client::new(stream);
    client.send(ENVELOPE).await;
    client.send(b"partial").await;
    let replies = client.replies(6).await;
    assert_eq!(
        replies[5],
        "421 4.4.2 mx.example.org Error: timeout exceeded"
    );
    task.await.unwrap();
    assert!(!fake.calls().contains(&"data_end".to_string()));
    assert_eq!(fake.calls().last().map(String::as_str), Some("abort"));
}

#[tokio::test]
async fn rset_is_passed_to_the_backend() {
    let fake = Fake::default();
    let (stream, task) = start(&fake, settings(), None);
    let mut client = Client::new(stream);
    client
        .send(b"EHLO c\r\nMAIL FROM:<>\r\nRSET\r\nQUIT\r\n")
        .await;
    let replies = client.replies(5).await;
    assert_eq!(replies[3], "250 2.0.0 Ok");
    task.await.unwrap();
    assert_eq!(fake.calls(), ["mail", "rset"]);
}
