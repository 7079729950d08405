//! Accepting a received message: give it an id, add trace headers, store it
//! in the Maildir (or discard it), count it, log it, and pick the reply.
//!
//! Maildir delivery (<https://cr.yp.to/proto/maildir.html>): the file is
//! written to `tmp/<unique>` and renamed to `new/<unique>`; the client gets
//! its 250 only after the rename, so a message it was told is queued is
//! always complete in `new/`. There is no fsync: a power cut may lose mail
//! that was acknowledged, which is fine for a sink used in demos and tests.
//!
//! The stored file is the added headers followed by the message exactly as
//! received after dot-unstuffing, so its line ends are CRLF as on the wire.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use mxgate_smtp::Reply;

use crate::session::Message;
use crate::SinkOptions;
use mxgate_smtp::rfc5322_date as rfc5322;

/// What every connection task of one sink shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) options: SinkOptions,
    /// Messages accepted by this sink, for unique ids within one second.
    deliveries: AtomicU64,
}

impl Shared {
    pub(crate) fn new(options: SinkOptions) -> Self {
        Shared {
            options,
            deliveries: AtomicU64::new(0),
        }
    }

    /// A unique id in the Maildir style: `<secs>.M<usec>P<pid>Q<n>`.
    fn next_id(&self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let n = self.deliveries.fetch_add(1, Ordering::Relaxed) + 1;
        format!(
            "{}.M{}P{}Q{}",
            now.as_secs(),
            now.subsec_micros(),
            std::process::id(),
            n
        )
    }
}

/// Creates `tmp/`, `new/` and `cur/` under `dir`.
pub(crate) async fn prepare_maildir(dir: &Path) -> std::io::Result<()> {
    for sub in ["tmp", "new", "cur"] {
        tokio::fs::create_dir_all(dir.join(sub)).await?;
    }
    Ok(())
}

/// Stores (or discards) a message from `client` and returns the reply for the
/// end of DATA: 250 with the id once stored, 451 if it could not be stored.
pub(crate) async fn accept(shared: &Shared, client: IpAddr, message: Message) -> Reply {
    let options = &shared.options;
    let id = shared.next_id();
    let size = message.body.len();
    if let Some(dir) = &options.maildir {
        let header = trace_header(options, client, &message, SystemTime::now());
        let name = format!("{id}.{}", maildir_host(&options.hostname));
        let tmp = dir.join("tmp").join(&name);
        let new = dir.join("new").join(&name);
        let body = message.body;
        let written =
            tokio::task::spawn_blocking(move || write_then_rename(&tmp, &new, &header, &body))
                .await
                .unwrap_or_else(|join| Err(std::io::Error::other(join)));
        if let Err(error) = written {
            tracing::warn!(%client, %error, id, "cannot store message");
            return Reply::new(451, "4.3.0 Error: queue file write error");
        }
    }
    options.stats.messages.fetch_add(1, Ordering::Relaxed);
    options
        .stats
        .bytes
        .fetch_add(size as u64, Ordering::Relaxed);
    tracing::info!(
        %client,
        from = %message.from,
        rcpts = message.rcpts.len(),
        size,
        id,
        stored = options.maildir.is_some(),
        "message accepted"
    );
    Reply::new(250, format!("2.0.0 Ok: queued as {id}"))
}

/// Writes `tmp`, then renames it to `new`; removes `tmp` on failure.
fn write_then_rename(tmp: &Path, new: &Path, header: &[u8], body: &[u8]) -> std::io::Result<()> {
    let result = std::fs::File::create_new(tmp)
        .and_then(|mut file| {
            file.write_all(header)?;
            file.write_all(body)
        })
        .and_then(|()| std::fs::rename(tmp, new));
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

/// The headers prepended to a stored message:
///
/// ```text
/// Received: from HELO ([192.0.2.1])
///         by HOSTNAME (mxgate-sink) with ESMTP;
///         Wed, 27 Nov 2024 19:21:00 +0000
/// X-Sink-Client: 192.0.2.1
/// X-Sink-From: <sender@example.org>
/// X-Sink-Rcpt: <rcpt@example.net>          (one per recipient)
/// ```
///
/// `with` is `ESMTP` after EHLO and `SMTP` after HELO (RFC 5321 section
/// 4.4); an IPv6 client is written `[IPv6:...]` in `Received:`.
pub(crate) fn trace_header(
    options: &SinkOptions,
    client: IpAddr,
    message: &Message,
    now: SystemTime,
) -> Vec<u8> {
    let literal = match client {
        IpAddr::V4(v4) => format!("[{v4}]"),
        IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
    };
    let protocol = if message.extended { "ESMTP" } else { "SMTP" };
    let mut header = format!(
        "Received: from {} ({literal})\r\n\tby {} (mxgate-sink) with {protocol};\r\n\t{}\r\n",
        message.helo,
        options.hostname,
        rfc5322(now)
    );
    let _ = write!(header, "X-Sink-Client: {client}\r\n");
    let _ = write!(header, "X-Sink-From: <{}>\r\n", message.from);
    for rcpt in &message.rcpts {
        let _ = write!(header, "X-Sink-Rcpt: <{rcpt}>\r\n");
    }
    header.into_bytes()
}

/// The host part of a Maildir file name: `/` and `:` are not allowed there.
fn maildir_host(hostname: &str) -> String {
    hostname.replace('/', "\\057").replace(':', "\\072")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn message() -> Message {
        Message {
            helo: "client.test".into(),
            extended: true,
            from: "a@x.test".into(),
            rcpts: vec!["b@y.test".into(), "c@y.test".into()],
            body: b"Subject: t\r\n\r\nbody\r\n".to_vec(),
        }
    }

    #[test]
    fn trace_header_layout() {
        let options = SinkOptions {
            hostname: "sink.test".into(),
            ..SinkOptions::default()
        };
        let when = UNIX_EPOCH + Duration::from_secs(1_732_735_260);
        let header = trace_header(&options, "192.0.2.7".parse().unwrap(), &message(), when);
        assert_eq!(
            String::from_utf8(header).unwrap(),
            "Received: from client.test ([192.0.2.7])\r\n\tby sink.test (mxgate-sink) with ESMTP;\r\n\tWed, 27 Nov 2024 19:21:00 +0000\r\n\
             X-Sink-Client: 192.0.2.7\r\n\
             X-Sink-From: <a@x.test>\r\n\
             X-Sink-Rcpt: <b@y.test>\r\n\
             X-Sink-Rcpt: <c@y.test>\r\n"
        );
    }

    #[test]
    fn ipv6_literal_and_helo_protocol() {
        let mut m = message();
        m.extended = false;
        m.from.clear();
        let header = trace_header(
            &SinkOptions::default(),
            "2001:db8::1".parse().unwrap(),
            &m,
            UNIX_EPOCH,
        );
        let header = String::from_utf8(header).unwrap();
        assert!(header.starts_with("Received: from client.test ([IPv6:2001:db8::1])\r\n"));
        assert!(header.contains(" with SMTP;\r\n"));
        assert!(header.contains("X-Sink-Client: 2001:db8::1\r\n"));
        assert!(header.contains("X-Sink-From: <>\r\n"));
    }

    #[test]
    fn ids_are_unique_and_host_is_escaped() {
        let shared = Shared::new(SinkOptions::default());
        let a = shared.next_id();
        let b = shared.next_id();
        assert_ne!(a, b);
        assert!(a.contains(&format!("P{}Q", std::process::id())));
        assert_eq!(maildir_host("a/b:c"), "a\\057b\\072c");
    }

    #[tokio::test]
    async fn stores_into_new_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        prepare_maildir(dir.path()).await.unwrap();
        let options = SinkOptions {
            maildir: Some(dir.path().to_owned()),
            ..SinkOptions::default()
        };
        let stats = options.stats.clone();
        let shared = Shared::new(options);
        let reply = accept(&shared, "192.0.2.7".parse().unwrap(), message()).await;
        assert_eq!(reply.code, 250);
        let id = reply.lines[0].strip_prefix("2.0.0 Ok: queued as ").unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path().join("new")).unwrap().collect();
        assert_eq!(files.len(), 1);
        let path = files[0].as_ref().unwrap().path();
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            format!("{id}.localhost")
        );
        let stored = std::fs::read(path).unwrap();
        assert!(stored.ends_with(b"\r\nSubject: t\r\n\r\nbody\r\n"));
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        let snapshot = stats.snapshot();
        assert_eq!((snapshot.messages, snapshot.bytes), (1, 20));
    }

    #[tokio::test]
    async fn write_failure_is_a_temporary_error() {
        let dir = tempfile::tempdir().unwrap();
        // No tmp/ directory: the write fails.
        let options = SinkOptions {
            maildir: Some(dir.path().join("missing")),
            ..SinkOptions::default()
        };
        let stats = options.stats.clone();
        let reply = accept(
            &Shared::new(options),
            "192.0.2.7".parse().unwrap(),
            message(),
        )
        .await;
        assert_eq!(
            reply.to_string(),
            "451 4.3.0 Error: queue file write error\r\n"
        );
        assert_eq!(stats.snapshot().messages, 0);
    }
}
