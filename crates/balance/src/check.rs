//! The SMTP health check: the I/O of one probe of one backend.
//!
//! A probe connects, reads the (possibly multi-line) 220 banner, says
//! `EHLO`, and when asked runs STARTTLS and a TLS handshake that accepts any
//! certificate (backends often use self-signed ones; the check only reports
//! the TLS version and the certificate's expiry), then says `EHLO` again.
//! It always ends politely with `QUIT`, waits for the 221 and closes, so the
//! backend logs no "lost connection after ..." errors. The whole probe is
//! bounded by [`CheckSettings::timeout`]; an error names the step that failed.
//!
//! [`HealthCheck`] is the seam between the background loop and this I/O, so
//! the loop can be tested with scripted results.

mod tls;

use mxgate_config::{CheckSettings, ProxyVersion};
use mxgate_smtp::{parse_reply, Reply, ReplyError};
use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

pub use tls::{client_config as accept_any_cert_config, days_left, handshake_named, TlsInfo};

/// A boxed future, as returned by [`HealthCheck::check`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Most octets of one reply the check buffers (a 512-octet line limit is
/// enforced by the parser; this bounds the number of lines).
const MAX_REPLY: usize = 64 * 1024;

/// One probe of one backend.
pub trait HealthCheck: Send + Sync + 'static {
    /// Probes `address` with the pool's check settings.
    fn check<'a>(
        &'a self,
        address: SocketAddr,
        settings: &'a CheckSettings,
    ) -> BoxFuture<'a, Result<CheckReport, CheckError>>;
}

/// The SMTP check described in the module documentation.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmtpCheck;

impl HealthCheck for SmtpCheck {
    fn check<'a>(
        &'a self,
        address: SocketAddr,
        settings: &'a CheckSettings,
    ) -> BoxFuture<'a, Result<CheckReport, CheckError>> {
        Box::pin(smtp_check(address, settings))
    }
}

/// What a successful probe learnt.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckReport {
    /// First line of the 220 banner text (without the code).
    pub banner: String,
    /// TLS details when the probe ran STARTTLS.
    pub tls: Option<TlsInfo>,
}

/// The step of a probe, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// TCP connect.
    Connect,
    /// Waiting for the 220 banner.
    Banner,
    /// `EHLO` and its reply.
    Ehlo,
    /// `STARTTLS` and its reply.
    Starttls,
    /// The TLS handshake.
    TlsHandshake,
    /// `EHLO` over TLS and its reply.
    EhloTls,
    /// `QUIT` and its reply.
    Quit,
    /// `MAIL FROM` and its reply (a diagnostic test message, not the check).
    Mail,
    /// `RCPT TO` and its reply (a diagnostic test message).
    Rcpt,
    /// `DATA` and its 354 (a diagnostic test message).
    Data,
    /// The message content and the reply that ends DATA (a diagnostic test
    /// message).
    Message,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Connect => "connect",
            Step::Banner => "banner",
            Step::Ehlo => "EHLO",
            Step::Starttls => "STARTTLS",
            Step::TlsHandshake => "TLS handshake",
            Step::EhloTls => "EHLO after STARTTLS",
            Step::Quit => "QUIT",
            Step::Mail => "MAIL FROM",
            Step::Rcpt => "RCPT TO",
            Step::Data => "DATA",
            Step::Message => "end of data",
        })
    }
}

/// Why a probe failed. The text is meant for logs and the status page.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The TCP connect failed (refused, unreachable, ...).
    #[error("connect failed: {source}")]
    Connect {
        /// The socket error.
        source: io::Error,
    },
    /// The probe's time ran out during `step`.
    #[error("{step} timeout")]
    Timeout {
        /// Where it was.
        step: Step,
    },
    /// The greeting was not 220 (e.g. 554: not accepting mail).
    #[error("banner is not 220: {reply}")]
    BadBanner {
        /// The reply, code and text.
        reply: String,
    },
    /// `EHLO` was not answered with 250.
    #[error("{step} rejected: {reply}")]
    EhloRejected {
        /// [`Step::Ehlo`] or [`Step::EhloTls`].
        step: Step,
        /// The reply, code and text.
        reply: String,
    },
    /// The check wants STARTTLS but the server's EHLO reply does not offer it.
    #[error("STARTTLS failed: not offered in the EHLO reply")]
    StarttlsNotOffered,
    /// `STARTTLS` was not answered with 220.
    #[error("STARTTLS failed: {reply}")]
    StarttlsRejected {
        /// The reply, code and text.
        reply: String,
    },
    /// The server sent more data right after its 220 to STARTTLS (a
    /// plaintext injection or a broken server).
    #[error("STARTTLS failed: data after the 220 reply")]
    StarttlsPipelined,
    /// The TLS handshake failed.
    #[error("TLS handshake failed: {source}")]
    TlsHandshake {
        /// The TLS or socket error.
        source: io::Error,
    },
    /// The server closed the connection during `step`.
    #[error("{step}: connection closed by the server")]
    Closed {
        /// Where it was.
        step: Step,
    },
    /// The server's reply is not SMTP.
    #[error("{step}: invalid reply: {source}")]
    BadReply {
        /// Where it was.
        step: Step,
        /// What was wrong.
        source: ReplyError,
    },
    /// The server's reply is longer than the check buffers.
    #[error("{step}: reply longer than {MAX_REPLY} octets")]
    ReplyTooLong {
        /// Where it was.
        step: Step,
    },
    /// A socket error during `step`.
    #[error("{step}: {source}")]
    Io {
        /// Where it was.
        step: Step,
        /// The socket error.
        source: io::Error,
    },
}

impl CheckError {
    /// The step that failed.
    pub fn step(&self) -> Step {
        match self {
            CheckError::Connect { .. } => Step::Connect,
            CheckError::BadBanner { .. } => Step::Banner,
            CheckError::StarttlsNotOffered
            | CheckError::StarttlsRejected { .. }
            | CheckError::StarttlsPipelined => Step::Starttls,
            CheckError::TlsHandshake { .. } => Step::TlsHandshake,
            CheckError::Timeout { step }
            | CheckError::EhloRejected { step, .. }
            | CheckError::Closed { step }
            | CheckError::BadReply { step, .. }
            | CheckError::ReplyTooLong { step }
            | CheckError::Io { step, .. } => *step,
        }
    }
}

/// The last probe of a server, as shown by the status API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckOutcome {
    /// The probe passed.
    pub ok: bool,
    /// How long it took.
    pub duration_ms: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// First banner line, when one was read and the probe passed.
    pub banner: Option<String>,
    /// TLS details, when STARTTLS ran and the probe passed.
    pub tls: Option<TlsInfo>,
    /// When it started, seconds since the Unix epoch.
    pub at_unix: u64,
}

impl CheckOutcome {
    /// Builds the record of a probe that started at `at` and took `duration_ms`.
    pub fn new(result: &Result<CheckReport, CheckError>, at: SystemTime, duration_ms: u64) -> Self {
        let at_unix = at
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        match result {
            Ok(report) => CheckOutcome {
                ok: true,
                duration_ms,
                error: None,
                banner: Some(report.banner.clone()),
                tls: report.tls.clone(),
                at_unix,
            },
            Err(e) => CheckOutcome {
                ok: false,
                duration_ms,
                error: Some(e.to_string()),
                banner: None,
                tls: None,
                at_unix,
            },
        }
    }
}

/// Runs the SMTP check against `address`.
///
/// # Errors
/// [`CheckError`] naming the step that failed.
pub async fn smtp_check(
    address: SocketAddr,
    settings: &CheckSettings,
) -> Result<CheckReport, CheckError> {
    let deadline = Instant::now() + settings.timeout;
    let mut tcp = match timeout_at(deadline, TcpStream::connect(address)).await {
        Err(_) => {
            return Err(CheckError::Timeout {
                step: Step::Connect,
            })
        }
        Ok(Err(source)) => return Err(CheckError::Connect { source }),
        Ok(Ok(tcp)) => tcp,
    };
    let _ = tcp.set_nodelay(true);
    if let Some(header) = proxy_header(&tcp, settings.proxy) {
        match timeout_at(deadline, tcp.write_all(&header)).await {
            Err(_) => {
                return Err(CheckError::Timeout {
                    step: Step::Connect,
                })
            }
            Ok(Err(source)) => {
                return Err(CheckError::Io {
                    step: Step::Connect,
                    source,
                })
            }
            Ok(Ok(())) => {}
        }
    }
    let mut conn = Conn::new(tcp, deadline);

    let banner = conn.reply(Step::Banner).await?;
    if banner.code != 220 {
        conn.quit().await;
        return Err(CheckError::BadBanner {
            reply: summary(&banner),
        });
    }
    let banner = banner.lines.first().cloned().unwrap_or_default();
    let ehlo = format!("EHLO {}\r\n", settings.ehlo);
    let caps = conn.command(&ehlo, Step::Ehlo).await?;
    if caps.code != 250 {
        conn.quit().await;
        return Err(CheckError::EhloRejected {
            step: Step::Ehlo,
            reply: summary(&caps),
        });
    }
    if !settings.starttls {
        conn.quit().await;
        return Ok(CheckReport { banner, tls: None });
    }

    if !offers_starttls(&caps) {
        conn.quit().await;
        return Err(CheckError::StarttlsNotOffered);
    }
    let reply = conn.command("STARTTLS\r\n", Step::Starttls).await?;
    if reply.code != 220 {
        conn.quit().await;
        return Err(CheckError::StarttlsRejected {
            reply: summary(&reply),
        });
    }
    if conn.has_unread() {
        return Err(CheckError::StarttlsPipelined);
    }
    let handshake = tls::handshake(conn.into_stream(), address.ip());
    let (stream, info) = match timeout_at(deadline, handshake).await {
        Err(_) => {
            return Err(CheckError::Timeout {
                step: Step::TlsHandshake,
            })
        }
        Ok(Err(source)) => return Err(CheckError::TlsHandshake { source }),
        Ok(Ok(done)) => done,
    };
    let mut conn = Conn::new(stream, deadline);
    let caps = conn.command(&ehlo, Step::EhloTls).await?;
    if caps.code != 250 {
        conn.quit().await;
        return Err(CheckError::EhloRejected {
            step: Step::EhloTls,
            reply: summary(&caps),
        });
    }
    conn.quit().await;
    Ok(CheckReport {
        banner,
        tls: Some(info),
    })
}

/// The PROXY header a check sends to a backend that expects one: v2 with the
/// LOCAL command (the protocol's way to say "a health check of the proxy
/// itself"), v1 with the check connection's own addresses.
fn proxy_header(tcp: &TcpStream, version: ProxyVersion) -> Option<Vec<u8>> {
    use mxgate_wire::proxy;
    let (local, peer) = (tcp.local_addr().ok()?, tcp.peer_addr().ok()?);
    match version {
        ProxyVersion::None => None,
        ProxyVersion::V1 => Some(proxy::emit_v1(local, peer)),
        ProxyVersion::V2 => proxy::emit_v2(proxy::Command::Local, local, peer, &[]).ok(),
    }
}

/// True when an EHLO reply lists the STARTTLS keyword (RFC 3207).
pub fn offers_starttls(ehlo: &Reply) -> bool {
    ehlo.lines.iter().skip(1).any(|line| {
        line.split_ascii_whitespace()
            .next()
            .is_some_and(|kw| kw.eq_ignore_ascii_case("STARTTLS"))
    })
}

/// A reply in one line for errors: `554 5.3.2 go away`.
fn summary(reply: &Reply) -> String {
    let text = reply.lines.join(" / ");
    if text.is_empty() {
        reply.code.to_string()
    } else {
        format!("{} {}", reply.code, text)
    }
}

/// An SMTP client stream with its read buffer and one deadline for every
/// step: the check's I/O, also used by the web UI's diagnostics (probe an
/// MX, send a test message) so both speak SMTP the same way.
pub struct Conn<S> {
    stream: S,
    buf: Vec<u8>,
    deadline: Instant,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Wraps `stream`; every read and write must end before `deadline`.
    pub fn new(stream: S, deadline: Instant) -> Self {
        Conn {
            stream,
            buf: Vec::new(),
            deadline,
        }
    }

    /// Sends `line` (with its CRLF) and reads the reply.
    ///
    /// # Errors
    /// A timeout, socket error, closed connection or unreadable reply,
    /// labelled with `step`.
    pub async fn command(&mut self, line: &str, step: Step) -> Result<Reply, CheckError> {
        match timeout_at(self.deadline, self.stream.write_all(line.as_bytes())).await {
            Err(_) => return Err(CheckError::Timeout { step }),
            Ok(Err(source)) => return Err(CheckError::Io { step, source }),
            Ok(Ok(())) => {}
        }
        self.reply(step).await
    }

    /// Reads one complete, possibly multi-line, reply.
    ///
    /// # Errors
    /// As [`Conn::command`].
    pub async fn reply(&mut self, step: Step) -> Result<Reply, CheckError> {
        loop {
            match parse_reply(&self.buf) {
                Ok(Some((reply, used))) => {
                    self.buf.drain(..used);
                    return Ok(reply);
                }
                Ok(None) if self.buf.len() >= MAX_REPLY => {
                    return Err(CheckError::ReplyTooLong { step })
                }
                Ok(None) => {}
                Err(source) => return Err(CheckError::BadReply { step, source }),
            }
            let mut chunk = [0u8; 4096];
            let n = match timeout_at(self.deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Err(CheckError::Timeout { step }),
                Ok(Err(source)) => return Err(CheckError::Io { step, source }),
                Ok(Ok(0)) => return Err(CheckError::Closed { step }),
                Ok(Ok(n)) => n,
            };
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// True when the server sent bytes that no reply has consumed yet (after
    /// a 220 to STARTTLS this is a plaintext injection).
    pub fn has_unread(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The stream, for a TLS upgrade after STARTTLS.
    pub fn into_stream(self) -> S {
        self.stream
    }

    /// Says `QUIT`, waits for the 221 and closes our side. Problems here do
    /// not fail the probe: the server has already answered what matters.
    pub async fn quit(&mut self) {
        match self.command("QUIT\r\n", Step::Quit).await {
            Ok(reply) if reply.code == 221 => {}
            Ok(reply) => tracing::debug!("health check QUIT answered {}", summary(&reply)),
            Err(e) => tracing::debug!("health check: {e}"),
        }
        let _ = timeout_at(self.deadline, self.stream.shutdown()).await;
    }
}

#[cfg(test)]
mod tests;
