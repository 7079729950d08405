//! End-to-end tests of `mxgate_sink::serve` over loopback TCP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mxgate_sink::{serve, SinkOptions, SinkStats};
use mxgate_smtp::{parse_reply, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(10);

/// A running sink: its address, a way to stop it, and its task.
struct Sink {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    stats: Arc<SinkStats>,
}

impl Sink {
    async fn start(options: SinkOptions) -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = options.stats.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, options, async {
            let _ = stopped.await;
        }));
        Sink {
            addr,
            stop: Some(stop),
            task,
            stats,
        }
    }

    fn shutdown(&mut self) {
        let _ = self.stop.take().unwrap().send(());
    }
}

fn options(maildir: Option<&Path>) -> SinkOptions {
    SinkOptions {
        hostname: "sink.test".into(),
        maildir: maildir.map(Path::to_owned),
        ..SinkOptions::default()
    }
}

/// A minimal SMTP client.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn reply(&mut self) -> Reply {
        loop {
            if let Some((reply, used)) = parse_reply(&self.buf).unwrap() {
                self.buf.drain(..used);
                return reply;
            }
            let n = timeout(LIMIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("reply in time")
                .unwrap();
            assert!(n > 0, "connection closed, pending {:?}", self.buf);
        }
    }

    /// Reads `n` replies and returns them as "code first-line" strings.
    async fn replies(&mut self, n: usize) -> Vec<String> {
        let mut all = Vec::new();
        for _ in 0..n {
            let reply = self.reply().await;
            all.push(format!("{} {}", reply.code, reply.lines[0]));
        }
        all
    }

    async fn expect_eof(&mut self) {
        let n = timeout(LIMIT, self.stream.read_buf(&mut self.buf))
            .await
            .expect("close in time")
            .unwrap_or(0);
        assert_eq!(n, 0, "expected EOF, got {:?}", self.buf);
    }
}

fn stored_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("new"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn queued_id(reply: &Reply) -> String {
    assert_eq!(reply.code, 250, "{reply:?}");
    reply.lines[0]
        .strip_prefix("2.0.0 Ok: queued as ")
        .expect("queued reply")
        .to_owned()
}

/// Splits a stored file into the sink's headers and the message after them.
fn split_stored(stored: &[u8], message_len: usize) -> (String, Vec<u8>) {
    let cut = stored.len() - message_len;
    (
        String::from_utf8(stored[..cut].to_vec()).unwrap(),
        stored[cut..].to_vec(),
    )
}

#[tokio::test]
async fn pipelined_conversation_is_stored_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = Sink::start(options(Some(dir.path()))).await;
    let mut c = Client::connect(sink.addr).await;
    let banner = c.reply().await;
    assert_eq!(banner.to_string(), "220 sink.test ESMTP mxgate-sink\r\n");

    c.send(b"EHLO client.test\r\nMAIL FROM:<alice@example.org> SIZE=40\r\nRCPT TO:<bob@example.net>\r\nRCPT TO:<carol@example.net>\r\nDATA\r\n").await;
    let ehlo = c.reply().await;
    assert_eq!(
        ehlo.lines,
        [
            "sink.test",
            "PIPELINING",
            "SIZE 50000000",
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
            "SMTPUTF8"
        ]
    );
    assert_eq!(
        c.replies(4).await,
        [
            "250 2.1.0 Ok",
            "250 2.1.5 Ok",
            "250 2.1.5 Ok",
            "354 End data with <CR><LF>.<CR><LF>"
        ]
    );
    c.send(b"Subject: test\r\n\r\nHello\r\n.\r\nQUIT\r\n").await;
    let id = queued_id(&c.reply().await);
    assert_eq!(c.replies(1).await, ["221 2.0.0 Bye"]);
    c.expect_eof().await;

    let files = stored_files(dir.path());
    assert_eq!(files.len(), 1);
    assert!(files[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with(&format!("{id}.")));
    let stored = std::fs::read(&files[0]).unwrap();
    let message = b"Subject: test\r\n\r\nHello\r\n";
    let (headers, body) = split_stored(&stored, message.len());
    assert_eq!(body, message);
    let lines: Vec<&str> = headers.split("\r\n").collect();
    assert_eq!(lines[0], "Received: from client.test ([127.0.0.1])");
    assert_eq!(lines[1], "\tby sink.test (mxgate-sink) with ESMTP;");
    assert!(lines[2].starts_with('\t') && lines[2].ends_with(" +0000"));
    assert_eq!(
        &lines[3..],
        [
            "X-Sink-Client: 127.0.0.1",
            "X-Sink-From: <alice@example.org>",
            "X-Sink-Rcpt: <bob@example.net>",
            "X-Sink-Rcpt: <carol@example.net>",
            ""
        ]
    );
    assert!(std::fs::read_dir(dir.path().join("tmp"))
        .unwrap()
        .next()
        .is_none());

    let stats = sink.stats.snapshot();
    assert_eq!((stats.sessions, stats.messages), (1, 1));
    assert_eq!(stats.bytes, message.len() as u64);
    sink.shutdown();
    timeout(LIMIT, sink.task).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn whole_transaction_in_one_write_without_maildir() {
    let mut sink = Sink::start(options(None)).await;
    let mut c = Client::connect(sink.addr).await;
    c.reply().await;
    c.send(b"HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<x@y>\r\nDATA\r\nbody\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nDATA\r\n.\r\nQUIT\r\n").await;
    let replies = c.replies(10).await;
    let codes: Vec<&str> = replies.iter().map(|r| &r[..3]).collect();
    assert_eq!(
        codes,
        ["250", "250", "250", "354", "250", "250", "250", "354", "250", "221"]
    );
    c.expect_eof().await;
    let stats = sink.stats.snapshot();
    assert_eq!((stats.messages, stats.bytes), (2, 6));
    sink.shutdown();
    timeout(LIMIT, sink.task).await.unwrap().unwrap().unwrap();
}

/// Dot-stuffs `message` as a client must (RFC 5321 section 4.5.2).
fn stuff(message: &[u8]) -> Vec<u8> {
    let mut wire = Vec::with_capacity(message.len() + 64);
    let mut at_line_start = true;
    for (i, &b) in message.iter().enumerate() {
        if at_line_start && b == b'.' {
            wire.push(b'.');
        }
        wire.push(b);
        at_line_start = b == b'\n' && i > 0 && message[i - 1] == b'\r';
    }
    wire.extend_from_slice(b".\r\n");
    wire
}

#[tokio::test]
async fn dot_stuffing_round_trip_of_a_large_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = Sink::start(options(Some(dir.path()))).await;
    let mut message = b"Subject: dots\r\n\r\n".to_vec();
    let mut seed = 7u32;
    for i in 0..20_000 {
        match i % 5 {
            0 => message.extend_from_slice(b".\r\n"),
            1 => message.extend_from_slice(b"..double\r\n"),
            2 => message.extend_from_slice(b"bare\nlf .\n.\r"),
            _ => {
                for _ in 0..(i % 97) {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    message.push((seed >> 16) as u8);
                }
                message.extend_from_slice(b"\r\n");
            }
        }
    }
    if !message.ends_with(b"\r\n") {
        message.extend_from_slice(b"\r\n");
    }

    let mut c = Client::connect(sink.addr).await;
    c.reply().await;
    c.send(b"EHLO c\r\nMAIL FROM:<a@b> BODY=8BITMIME\r\nRCPT TO:<c@d>\r\nDATA\r\n")
        .await;
    assert_eq!(c.replies(4).await[3], "354 End data with <CR><LF>.<CR><LF>");
    let wire = stuff(&message);
    for piece in wire.chunks(65_521) {
        c.send(piece).await;
    }
    let id = queued_id(&c.reply().await);

    let files = stored_files(dir.path());
    assert_eq!(files.len(), 1);
    assert!(files[0].to_str().unwrap().contains(&id));
    let stored = std::fs::read(&files[0]).unwrap();
    let (headers, body) = split_stored(&stored, message.len());
    assert!(body == message, "stored body differs from the original");
    assert!(headers.ends_with("X-Sink-Rcpt: <c@d>\r\n"));
    sink.shutdown();
    timeout(LIMIT, sink.task).await.unwrap().unwrap().unwrap();
}

/// A PROXY v2 header (PROXY command, TCP over IPv4) from 203.0.113.9:4321 to
/// 198.51.100.25:25, laid out by hand from proxy-protocol.txt section 2.2.
fn proxy_v2_header() -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend_from_slice(&[0x21, 0x11, 0x00, 0x0c]);
    header.extend_from_slice(&[203, 0, 113, 9, 198, 51, 100, 25]);
    header.extend_from_slice(&4321u16.to_be_bytes());
    header.extend_from_slice(&25u16.to_be_bytes());
    header
}

#[tokio::test]
async fn proxy_v2_source_is_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = Sink::start(SinkOptions {
        accept_proxy: true,
        ..options(Some(dir.path()))
    })
    .await;
    let mut c = Client::connect(sink.addr).await;
    c.send(&proxy_v2_header()).await;
    assert_eq!(c.reply().await.code, 220);
    c.send(b"EHLO relay.test\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
        .await;
    c.replies(4).await;
    c.send(b"x\r\n.\r\n").await;
    queued_id(&c.reply().await);

    let stored = std::fs::read(&stored_files(dir.path())[0]).unwrap();
    let text = String::from_utf8(stored).unwrap();
    assert!(text.starts_with("Received: from relay.test ([203.0.113.9])\r\n"));
    assert!(text.contains("\r\nX-Sink-Client: 203.0.113.9\r\n"));

    // Without a PROXY header the connection is dropped before any banner.
    let mut plain = Client::connect(sink.addr).await;
    plain.send(b"EHLO x\r\n").await;
    plain.expect_eof().await;

    sink.shutdown();
    timeout(LIMIT, sink.task).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn proxy_v1_source_is_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = Sink::start(SinkOptions {
        accept_proxy: true,
        ..options(Some(dir.path()))
    })
    .await;
    let mut c = Client::connect(sink.addr).await;
    c.send(b"PROXY TCP6 2001:db8::7 2001:db8::1 5000 25\r\n")
        .await;
    assert_eq!(c.reply().await.code, 220);
    c.send(b"HELO v6.test\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
        .await;
    c.replies(4).await;
    c.send(b"x\r\n.\r\n").await;
    queued_id(&c.reply().await);
    let text = String::from_utf8(std::fs::read(&stored_files(dir.path())[0]).unwrap()).unwrap();
    assert!(text.starts_with("Received: from v6.test ([IPv6:2001:db8::7])\r\n"));
    assert!(text.contains("\r\nX-Sink-Client: 2001:db8::7\r\n"));
    sink.shutdown();
    timeout(LIMIT, sink.task).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn out_of_order_and_unknown_commands() {
    let mut sink = Sink::start(options(None)).await;
    let mut c = Client::connect(sink.addr).await;
    c.reply().await;
    c.send(b"MAIL FROM:<a@b>\r\nHELO c\r\nRCPT TO:<c@d>\r\nDATA\r\nMAIL FROM:<a@b>\r\nDATA\r\nXYZZY\r\nMAIL FROM:a@b\r\nQUIT\r\n").await;
    assert_eq!(
        c.replies(9).await,
        [
            "503 5.5.1 Error: send HELO/EHLO first",
            "250 sink.test",
            "503 5.5.1 Error: need MAIL command",
            "503 5.5.1 Error: need MAIL command",
            "250 2.1.0 Ok",
            "503 5.5.1 Error: need RCPT command",
            "502 5.5.2 Error: command not recognized",
            "501 5.5.4 Syntax: MAIL FROM:<address>",
            "221 2.0.0 Bye",
        ]
    );
    c.expect_eof().await;
    assert_eq!(sink.stats.snapshot().messages, 0);
    sink.shutdown();
    timeout(LIMIT, sink.task).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_closes_idle_sessions_and_lets_data_finish() {
    let dir = tempfile::tempdir().unwrap();
    let mut sink = Sink::start(options(Some(dir.path()))).await;

    let mut idle = Client::connect(sink.addr).await;
    idle.reply().await;
    idle.send(b"EHLO idle\r\n").await;
    idle.reply().await;

    let mut busy = Client::connect(sink.addr).await;
    busy.reply().await;
    busy.send(b"EHLO busy\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nfirst half\r\n")
        .await;
    busy.replies(4).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(sink.stats.snapshot().active_sessions, 2);

    sink.shutdown();
    assert_eq!(
        idle.replies(1).await,
        ["421 4.3.2 sink.test Service shutting down, closing transmission channel"]
    );
    idle.expect_eof().await;

    // The listener is closed: new clients are refused or see no banner.
    if let Ok(mut late) = TcpStream::connect(sink.addr).await {
        let mut byte = [0u8; 1];
        let read = timeout(Duration::from_millis(300), late.read(&mut byte)).await;
        assert!(
            !matches!(read, Ok(Ok(n)) if n > 0),
            "late client got a banner"
        );
    }

    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !sink.task.is_finished(),
        "serve returned with a message in flight"
    );
    busy.send(b"second half\r\n.\r\n").await;
    queued_id(&busy.reply().await);
    assert_eq!(busy.reply().await.code, 421);
    busy.expect_eof().await;

    timeout(LIMIT, sink.task).await.unwrap().unwrap().unwrap();
    let stored = std::fs::read(&stored_files(dir.path())[0]).unwrap();
    assert!(stored.ends_with(b"\r\nfirst half\r\nsecond half\r\n"));
    assert_eq!(sink.stats.snapshot().active_sessions, 0);
}

#[tokio::test]
async fn shutdown_grace_aborts_a_stuck_client() {
    let mut sink = Sink::start(SinkOptions {
        shutdown_grace: Duration::from_millis(200),
        ..options(None)
    })
    .await;
    let mut stuck = Client::connect(sink.addr).await;
    stuck.reply().await;
    stuck
        .send(b"HELO s\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nnever ends")
        .await;
    stuck.replies(4).await;
    sink.shutdown();
    timeout(Duration::from_secs(3), sink.task)
        .await
        .expect("serve returns after the grace period")
        .unwrap()
        .unwrap();
    stuck.expect_eof().await;
}

#[tokio::test]
async fn idle_client_times_out() {
    let mut sink = Sink::start(SinkOptions {
        idle_timeout: Duration::from_millis(200),
        ..options(None)
    })
    .await;
    let mut c = Client::connect(sink.addr).await;
    c.reply().await;
    assert_eq!(
        c.replies(1).await,
        ["421 4.4.2 sink.test Error: timeout exceeded"]
    );
    c.expect_eof().await;
    sink.shutdown();
    timeout(LIMIT, sink.task).await.unwrap().unwrap().unwrap();
}

#[tokio::test]
async fn connection_cap_queues_extra_clients() {
    let mut sink = Sink::start(SinkOptions {
        max_connections: 1,
        ..options(None)
    })
    .await;
    let mut first = Client::connect(sink.addr).await;
    first.reply().await;
    let mut second = Client::connect(sink.addr).await;
    let early = timeout(
        Duration::from_millis(300),
        second.stream.read_buf(&mut second.buf),
    )
    .await;
    assert!(early.is_err(), "second client served beyond the cap");
    first.send(b"QUIT\r\n").await;
    first.reply().await;
    assert_eq!(second.reply().await.code, 220);
    sink.shutdown();
    timeout(LIMIT, sink.task).await.unwrap().unwrap().unwrap();
}
