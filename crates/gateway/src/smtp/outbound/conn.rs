//! One backend connection: a byte stream (plain or TLS), its read buffer,
//! and commands and replies each bounded by a timeout, failures named by the
//! SMTP step and the `pool/server` they happened on.

use crate::smtp::relay::RelayError;
use mxgate_smtp::{parse_reply, Reply};
use std::io;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;

/// Most octets of one reply buffered (the parser bounds each line to 512;
/// this bounds the number of lines).
const MAX_REPLY: usize = 64 * 1024;

/// A byte stream towards a backend: TCP, or TLS over it after STARTTLS.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A backend connection with its read buffer.
pub(crate) struct Conn {
    stream: Box<dyn Io>,
    buf: Vec<u8>,
    server: String,
}

impl Conn {
    /// Wraps `stream`, a connection to `server` (`pool/server`).
    pub(crate) fn new(stream: Box<dyn Io>, server: String) -> Self {
        Conn {
            stream,
            buf: Vec::new(),
            server,
        }
    }

    /// `pool/server`.
    pub(crate) fn server(&self) -> &str {
        &self.server
    }

    /// True when the backend sent bytes that no reply has consumed yet.
    pub(crate) fn has_unread(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The stream and the label, for a TLS upgrade.
    pub(crate) fn into_parts(self) -> (Box<dyn Io>, String) {
        (self.stream, self.server)
    }

    /// Writes all of `bytes` and flushes them.
    pub(crate) async fn send(
        &mut self,
        bytes: &[u8],
        step: &'static str,
        limit: Duration,
    ) -> Result<(), RelayError> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match timeout(limit, write).await {
            Err(_) => Err(self.timed_out(step)),
            Ok(Err(source)) => Err(self.io(step, source)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Sends `line` (with its CRLF) and reads the reply.
    pub(crate) async fn command(
        &mut self,
        line: &str,
        step: &'static str,
        limit: Duration,
    ) -> Result<Reply, RelayError> {
        self.send(line.as_bytes(), step, limit).await?;
        self.reply(step, limit).await
    }

    /// Reads one complete, possibly multi-line, reply within `limit`.
    pub(crate) async fn reply(
        &mut self,
        step: &'static str,
        limit: Duration,
    ) -> Result<Reply, RelayError> {
        match timeout(limit, self.read_reply(step)).await {
            Err(_) => Err(self.timed_out(step)),
            Ok(result) => result,
        }
    }

    async fn read_reply(&mut self, step: &'static str) -> Result<Reply, RelayError> {
        let mut chunk = [0u8; 4096];
        loop {
            match parse_reply(&self.buf) {
                Ok(Some((reply, used))) => {
                    self.buf.drain(..used);
                    return Ok(reply);
                }
                Ok(None) if self.buf.len() >= MAX_REPLY => {
                    return Err(self.protocol(step, format!("reply longer than {MAX_REPLY} octets")))
                }
                Ok(None) => {}
                Err(e) => return Err(self.protocol(step, format!("invalid reply: {e}"))),
            }
            match self.stream.read(&mut chunk).await {
                Ok(0) => {
                    let closed = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed by the backend",
                    );
                    return Err(self.io(step, closed));
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(source) => return Err(self.io(step, source)),
            }
        }
    }

    /// Says `QUIT`, waits up to `limit` for the reply and closes our side.
    /// Problems are only logged: the transaction is already settled.
    pub(crate) async fn quit(mut self, limit: Duration) {
        if let Err(e) = self.command("QUIT\r\n", "QUIT", limit).await {
            tracing::debug!("backend QUIT: {e}");
        }
        let _ = timeout(limit, self.stream.shutdown()).await;
    }

    /// A [`RelayError::Timeout`] at `step`.
    pub(crate) fn timed_out(&self, step: &'static str) -> RelayError {
        RelayError::Timeout {
            server: self.server.clone(),
            step,
        }
    }

    /// A [`RelayError::Io`] at `step`.
    pub(crate) fn io(&self, step: &'static str, source: io::Error) -> RelayError {
        RelayError::Io {
            server: self.server.clone(),
            step,
            source,
        }
    }

    /// A [`RelayError::Protocol`] at `step`.
    pub(crate) fn protocol(&self, step: &'static str, detail: String) -> RelayError {
        RelayError::Protocol {
            server: self.server.clone(),
            step,
            detail,
        }
    }
}

/// A reply in one line for errors: `554 5.3.2 go away`.
pub(crate) fn summary(reply: &Reply) -> String {
    let text = reply.lines.join(" / ");
    if text.is_empty() {
        reply.code.to_string()
    } else {
        format!("{} {}", reply.code, text)
    }
}
