//! The outbound side of SMTP mode: the SMTP client that relays the inbound
//! transaction to a backend MTA, implementing [`Relay`].
//!
//! A [`Backend`] connects lazily, at the first [`Relay::mail`]: it takes a
//! slot on a server of the pool (counted on the server like an l4 session),
//! connects (the next server when a connect or the session set-up fails),
//! and runs the set-up of `setup`: PROXY header, banner, EHLO, STARTTLS,
//! XCLIENT. Each command then returns the backend's own reply. The
//! connection is kept after `RSET` for up to [`OutboundSettings::max_reuse`]
//! transactions; a reused connection that turns out dead (or answers 421)
//! at `MAIL` is replaced once, transparently.
//!
//! A transaction cut short mid-DATA closes the socket without the final
//! `.`: the backend discards the message, so nothing is delivered that the
//! sender was not told about.

mod conn;
mod setup;
mod tls;

use crate::smtp::relay::{ClientIdentity, Relay, RelayError};
use conn::Conn;
use mxgate_balance::{Lease, Pool};
use mxgate_smtp::Reply;
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for the 221 after `QUIT`.
const QUIT_WAIT: Duration = Duration::from_secs(10);

/// How the backend learns who the sender is (the pool's `client_identity`;
/// XCLIENT must be advertised to us, else the session fails rather than
/// relay without the identity).
pub type Announce = mxgate_config::ClientIdentity;

/// TLS towards the backend (the pool's `backend_tls`; `Opportunistic`
/// carries on in plain text on a 4xx to STARTTLS; `Verify` checks the chain
/// against the webpki roots and [`OutboundSettings::tls_name`] or else the
/// server's IP address).
pub use mxgate_config::BackendTls;

/// How a [`Backend`] speaks to the servers of its pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundSettings {
    /// How the backend learns the sender.
    pub identity: Announce,
    /// STARTTLS policy.
    pub tls: BackendTls,
    /// Certificate name checked with [`BackendTls::Verify`].
    pub tls_name: Option<String>,
    /// Our name in EHLO/HELO.
    pub ehlo_name: String,
    /// Longest wait for any reply but the one to the final `.` (and for a
    /// write to complete).
    pub command_timeout: Duration,
    /// Longest wait for the reply to the final `.`.
    pub data_end_timeout: Duration,
    /// Transactions per backend connection; then it is closed with QUIT.
    pub max_reuse: u32,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        OutboundSettings {
            identity: Announce::None,
            tls: BackendTls::Opportunistic,
            tls_name: None,
            ehlo_name: "localhost".into(),
            command_timeout: Duration::from_secs(300),
            data_end_timeout: Duration::from_secs(600),
            max_reuse: 100,
        }
    }
}

/// Where a session stands in its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No transaction open.
    Idle,
    /// `MAIL` sent (and maybe `RCPT`).
    Envelope,
    /// 354 received: message bytes go out.
    Data,
}

/// An open backend connection and the slot it holds.
struct Session {
    conn: Conn,
    /// Held for the connection's life: the server counts it as a session.
    _lease: Lease,
    transactions: u32,
    phase: Phase,
}

/// The SMTP client towards one backend, for one inbound session.
pub struct Backend {
    pool: Arc<Pool>,
    identity: ClientIdentity,
    settings: OutboundSettings,
    session: Option<Session>,
}

impl Backend {
    /// A client for the sender `identity`, relaying to servers of `pool`.
    /// Nothing is connected before the first [`Relay::mail`].
    pub fn new(pool: Arc<Pool>, identity: ClientIdentity, settings: OutboundSettings) -> Self {
        Backend {
            pool,
            identity,
            settings,
            session: None,
        }
    }

    /// The sender this client announces.
    pub fn identity(&self) -> &ClientIdentity {
        &self.identity
    }

    /// Sends `line` on the open session and reads the reply; the session is
    /// dropped on an error or a 421 (the backend is closing).
    async fn exchange(
        &mut self,
        line: &str,
        step: &'static str,
        limit: Duration,
    ) -> Result<Reply, RelayError> {
        let session = self.session.as_mut().ok_or_else(|| no_session(step))?;
        let result = session.conn.command(line, step, limit).await;
        if matches!(&result, Err(_) | Ok(Reply { code: 421, .. })) {
            self.session = None;
        }
        result
    }

    /// The open session in `phase`, or the error for a call out of order.
    fn session_in(&mut self, phase: Phase, step: &'static str) -> Result<&mut Session, RelayError> {
        match self.session.as_mut() {
            Some(s) if s.phase == phase => Ok(s),
            Some(s) => Err(s
                .conn
                .protocol(step, format!("out of order ({:?})", s.phase))),
            None => Err(no_session(step)),
        }
    }

    /// Makes sure an idle session is open (reusing one that has transactions
    /// left); `true` when it was reused.
    async fn ready(&mut self) -> Result<bool, RelayError> {
        match self.session.as_ref().map(|s| (s.phase, s.transactions)) {
            Some((Phase::Idle, n)) if n < self.settings.max_reuse => return Ok(true),
            Some((Phase::Envelope, n)) if n < self.settings.max_reuse => {
                let limit = self.settings.command_timeout;
                if let Ok(r) = self.exchange("RSET\r\n", "RSET", limit).await {
                    if r.code == 250 {
                        if let Some(s) = self.session.as_mut() {
                            s.phase = Phase::Idle;
                            return Ok(true);
                        }
                    }
                }
                self.close().await;
            }
            Some(_) => self.close().await,
            None => {}
        }
        let (lease, conn) = setup::open(&self.pool, &self.identity, &self.settings).await?;
        self.session = Some(Session {
            conn,
            _lease: lease,
            transactions: 0,
            phase: Phase::Idle,
        });
        Ok(false)
    }

    /// Ends the session: mid-DATA by closing the socket (no final `.`, so no
    /// delivery), otherwise with `QUIT`.
    async fn close(&mut self) {
        if let Some(session) = self.session.take() {
            if session.phase != Phase::Data {
                session
                    .conn
                    .quit(QUIT_WAIT.min(self.settings.command_timeout))
                    .await;
            }
        }
    }
}

impl Relay for Backend {
    fn identify(&mut self, client: &ClientIdentity) {
        self.identity.clone_from(client);
    }

    async fn mail(&mut self, from: &str, params: &str) -> Result<Reply, RelayError> {
        let line = command_line("MAIL FROM:", from, params)?;
        let limit = self.settings.command_timeout;
        let reused = self.ready().await?;
        let mut reply = self.exchange(&line, "MAIL", limit).await;
        if reused && !matches!(&reply, Ok(r) if r.code != 421) {
            // The kept connection died while idle: once more on a new one.
            tracing::debug!("reused backend connection failed at MAIL, reconnecting");
            self.session = None;
            self.ready().await?;
            reply = self.exchange(&line, "MAIL", limit).await;
        }
        if let Some(s) = self.session.as_mut() {
            s.transactions += 1;
            if matches!(&reply, Ok(r) if r.is_positive()) {
                s.phase = Phase::Envelope;
            }
        }
        reply
    }

    async fn rcpt(&mut self, to: &str, params: &str) -> Result<Reply, RelayError> {
        let line = command_line("RCPT TO:", to, params)?;
        self.session_in(Phase::Envelope, "RCPT")?;
        self.exchange(&line, "RCPT", self.settings.command_timeout)
            .await
    }

    async fn data_start(&mut self) -> Result<Reply, RelayError> {
        self.session_in(Phase::Envelope, "DATA")?;
        let reply = self
            .exchange("DATA\r\n", "DATA", self.settings.command_timeout)
            .await?;
        if reply.code == 354 {
            if let Some(s) = self.session.as_mut() {
                s.phase = Phase::Data;
            }
        }
        Ok(reply)
    }

    async fn data_chunk(&mut self, wire: &[u8]) -> Result<(), RelayError> {
        let limit = self.settings.command_timeout;
        let session = self.session_in(Phase::Data, "message data")?;
        let result = session.conn.send(wire, "message data", limit).await;
        if result.is_err() {
            self.session = None;
        }
        result
    }

    async fn data_end(&mut self) -> Result<Reply, RelayError> {
        let (cmd_limit, end_limit) = (
            self.settings.command_timeout,
            self.settings.data_end_timeout,
        );
        let step = "end of data";
        let session = self.session_in(Phase::Data, step)?;
        let result = match session.conn.send(b".\r\n", step, cmd_limit).await {
            Ok(()) => session.conn.reply(step, end_limit).await,
            Err(e) => Err(e),
        };
        session.phase = Phase::Idle;
        if matches!(&result, Err(_) | Ok(Reply { code: 421, .. })) {
            self.session = None;
        }
        result
    }

    async fn rset(&mut self) {
        let Some(session) = self.session.as_ref() else {
            return;
        };
        if session.phase == Phase::Data {
            // RSET cannot interrupt DATA: close, the message is discarded.
            self.session = None;
            return;
        }
        let exhausted = session.transactions >= self.settings.max_reuse;
        if exhausted {
            self.close().await;
            return;
        }
        match self
            .exchange("RSET\r\n", "RSET", self.settings.command_timeout)
            .await
        {
            Ok(r) if r.code == 250 => {
                if let Some(s) = self.session.as_mut() {
                    s.phase = Phase::Idle;
                }
            }
            Ok(r) => {
                tracing::debug!(reply = %conn::summary(&r), "backend refused RSET, closing");
                self.close().await;
            }
            Err(e) => tracing::debug!("backend RSET: {e}"),
        }
    }

    async fn abort(&mut self) {
        self.close().await;
    }

    fn server(&self) -> Option<String> {
        self.session.as_ref().map(|s| s.conn.server().to_owned())
    }
}

/// `MAIL FROM:<addr> params\r\n` (or `RCPT TO:`), refusing CR and LF, which
/// would smuggle a second command to the backend.
fn command_line(verb: &str, addr: &str, params: &str) -> Result<String, RelayError> {
    if [addr, params].iter().any(|s| s.contains(['\r', '\n'])) {
        return Err(RelayError::Protocol {
            server: "-".into(),
            step: if verb.starts_with("MAIL") {
                "MAIL"
            } else {
                "RCPT"
            },
            detail: "CR or LF in the command argument".into(),
        });
    }
    Ok(if params.is_empty() {
        format!("{verb}<{addr}>\r\n")
    } else {
        format!("{verb}<{addr}> {params}\r\n")
    })
}

/// The error for a call that needs a session when none is open.
fn no_session(step: &'static str) -> RelayError {
    RelayError::Protocol {
        server: "-".into(),
        step,
        detail: "no backend session (the transaction failed or MAIL was not sent)".into(),
    }
}

#[cfg(test)]
mod tests;
