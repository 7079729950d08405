//! The inbound SMTP session: the async driver around the pure engine
//! ([`mxgate_smtp::server::Session`]). It reads the sender's bytes, writes
//! the engine's replies, and makes the backend calls the engine asks for
//! through a [`Relay`], handing the backend's own replies back, so the 250
//! at the end of DATA is only ever the backend's.
//!
//! Generic over the stream so tests run on `tokio::io::duplex`; STARTTLS
//! re-enters the same loop with a `TlsStream<S>` (`converse` returns the
//! plain stream when an upgrade is asked for).
//!
//! Guarantees:
//! - PIPELINING: every complete command buffered is answered in order, and
//!   the replies are flushed before the next read;
//! - bounded buffering: the read buffer holds at most one read plus an
//!   incomplete command line (512 octets) or two undecided data octets;
//! - any [`RelayError`](super::relay::RelayError) ends the transaction
//!   with `abort` and a 451; a message refused by the DATA reader (bare CR/LF, long line, size), a
//!   disconnect or a timeout in a transaction also end it with `abort`, so
//!   the backend never sees the final dot and delivers nothing;
//! - plaintext buffered after `STARTTLS` is discarded, never read as if it
//!   had come over TLS;
//! - CHUNKING: `BDAT` chunks are converted by the engine to dot-stuffed
//!   DATA wire form and relayed with DATA (the backend needs no CHUNKING);
//!   the 250 after a non-LAST chunk is mxgate's, the reply to `LAST` the
//!   backend's; RSET/EHLO between chunks abort the backend;
//! - every reply sent is counted by phase and class in
//!   [`SessionRecord::replies`].

mod record;
mod tls;
mod trace;

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_bdat;
#[cfg(test)]
mod tests_tls;

pub use record::{SessionRecord, TransactionRecord, TransactionResult};

use super::relay::{ClientIdentity, Relay};
use mxgate_filter::verdict::Trail;
use mxgate_smtp::server::{DataEnd, Input, Limits, ServerConfig, Session, Step};
use mxgate_smtp::{parse_command, Command, Reply};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Octets asked for per read.
const READ_SIZE: usize = 16 * 1024;

/// The settings of an smtp-mode listener, as the inbound side needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundSettings {
    /// Name in the banner, the EHLO reply and the `Received:` header.
    pub hostname: String,
    /// Largest message in octets (advertised with SIZE, enforced).
    pub max_message_size: u64,
    /// Recipients per message.
    pub max_recipients: u32,
    /// Protocol errors before the session is closed with 421.
    pub max_errors: u32,
    /// Longest text line of a message, without CRLF.
    pub max_line: usize,
    /// Longest wait for the next command (and for the TLS handshake).
    pub command_timeout: Duration,
    /// Longest wait between two reads of message data.
    pub data_timeout: Duration,
    /// Recipient domains accepted; everything else is 554 5.7.1.
    pub relay_domains: Arc<Vec<String>>,
}

/// Runs one inbound SMTP session to its end. `identity` carries the
/// client's addresses; its `helo`, `esmtp` and `tls` are filled in here.
/// With `tls`, STARTTLS is offered.
pub async fn serve<S, R>(
    stream: S,
    mut relay: R,
    settings: &InboundSettings,
    mut identity: ClientIdentity,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> SessionRecord
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: Relay,
{
    let config = ServerConfig {
        hostname: settings.hostname.clone(),
        relay_domains: settings.relay_domains.to_vec(),
        tls_available: tls.is_some(),
        limits: Limits {
            max_message_size: settings.max_message_size,
            max_recipients: settings.max_recipients,
            max_errors: settings.max_errors,
            max_line: settings.max_line,
        },
    };
    identity.tls = None;
    let mut conversation = Conversation {
        session: Session::new(config),
        relay: &mut relay,
        settings,
        identity,
        record: SessionRecord::default(),
        aborted: false,
    };
    let plain = match converse(stream, &mut conversation).await {
        Ended::Closed => return conversation.finish(),
        Ended::Upgrade(plain) => plain,
    };
    let Some(tls) = tls else {
        conversation.record.end = "starttls without tls".into();
        return conversation.finish();
    };
    let Some((stream, description)) = tls::accept(plain, tls, settings.command_timeout).await
    else {
        conversation.record.end = "tls handshake failed".into();
        return conversation.finish();
    };
    conversation.record.tls = Some(description.clone());
    conversation.identity.tls = Some(description);
    match converse(stream, &mut conversation).await {
        Ended::Closed => {}
        Ended::Upgrade(_) => conversation.record.end = "starttls twice".into(),
    }
    conversation.finish()
}

/// How one run of [`converse`] ended.
enum Ended<S> {
    /// The session is over (`record.end` says why).
    Closed,
    /// STARTTLS was accepted: run the handshake on this stream.
    Upgrade(S),
}

/// What to do after one step.
enum Flow {
    /// Go on with the buffered input.
    Continue,
    /// Flush the replies and read more.
    Read,
    /// Flush the replies and close.
    Close,
    /// Flush the replies, drop the buffered input, start TLS.
    StartTls,
}

/// The state shared by the plain and the TLS part of a session.
struct Conversation<'a, R> {
    session: Session,
    relay: &'a mut R,
    settings: &'a InboundSettings,
    identity: ClientIdentity,
    record: SessionRecord,
    /// True once the current transaction was aborted at the backend.
    aborted: bool,
}

/// Reads, answers and relays until the session closes or upgrades.
async fn converse<S, R>(mut stream: S, c: &mut Conversation<'_, R>) -> Ended<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: Relay,
{
    let mut buf: Vec<u8> = Vec::with_capacity(READ_SIZE);
    loop {
        let Input { consumed, step } = c.session.input(&buf);
        let flow = c.step(step, &buf[..consumed]).await;
        buf.drain(..consumed);
        match flow {
            Flow::Continue => continue,
            Flow::Close => {
                c.close_transaction().await;
                let _ = write_out(&mut stream, &mut c.session).await;
                let _ = stream.shutdown().await;
                return Ended::Closed;
            }
            Flow::StartTls => {
                if write_out(&mut stream, &mut c.session).await.is_err() {
                    c.record.end = "write failed".into();
                    return Ended::Closed;
                }
                if !buf.is_empty() {
                    tracing::warn!(
                        client = %c.identity.addr,
                        octets = buf.len(),
                        "plaintext pipelined after STARTTLS discarded"
                    );
                }
                return Ended::Upgrade(stream);
            }
            Flow::Read => {}
        }
        if write_out(&mut stream, &mut c.session).await.is_err() {
            c.record.end = "write failed".into();
            c.close_transaction().await;
            return Ended::Closed;
        }
        let in_data = c.session.in_data();
        let wait = if in_data {
            c.settings.data_timeout
        } else {
            c.settings.command_timeout
        };
        buf.reserve(READ_SIZE);
        match tokio::time::timeout(wait, stream.read_buf(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            Ok(_) => {
                c.record.end = if in_data {
                    "disconnect in data".into()
                } else {
                    "disconnect".into()
                };
                c.close_transaction().await;
                return Ended::Closed;
            }
            Err(_) => {
                c.session.timeout();
                c.record.end = "timeout".into();
                c.time_out_transaction();
                c.close_transaction().await;
                let _ = write_out(&mut stream, &mut c.session).await;
                let _ = stream.shutdown().await;
                return Ended::Closed;
            }
        }
    }
}

/// Writes and flushes the queued replies.
async fn write_out<S: AsyncWrite + Unpin>(
    stream: &mut S,
    session: &mut Session,
) -> std::io::Result<()> {
    let out = session.take_output();
    if out.is_empty() {
        return Ok(());
    }
    stream.write_all(&out).await?;
    stream.flush().await
}

impl<R: Relay> Conversation<'_, R> {
    /// Carries out one step of the engine; `consumed` are the input octets
    /// it used (message data to forward is at their front).
    async fn step(&mut self, step: Step, consumed: &[u8]) -> Flow {
        match step {
            Step::NeedMore => Flow::Read,
            Step::Replied => Flow::Continue,
            Step::Close => {
                if self.record.end.is_empty() {
                    self.record.end = if parse_command(consumed) == Ok(Command::Quit) {
                        "quit".into()
                    } else {
                        "too many errors".into()
                    };
                }
                Flow::Close
            }
            Step::StartTls => Flow::StartTls,
            Step::Reset => {
                self.note_checks();
                self.relay.rset().await;
                Flow::Continue
            }
            Step::Abort => {
                if !self.aborted {
                    self.abort().await;
                }
                Flow::Continue
            }
            Step::Mail { from, params } => {
                self.note_helo();
                self.note_checks();
                self.aborted = false;
                self.record.transactions.push(TransactionRecord {
                    from: from.clone(),
                    rcpts: Vec::new(),
                    size: 0,
                    server: None,
                    final_reply: None,
                    result: TransactionResult::Abandoned,
                    checks: Trail::new(),
                });
                self.relay.identify(&self.identity);
                let replied = self.relay.mail(&from, &params).await;
                self.note_checks();
                match replied {
                    Ok(reply) => {
                        if !reply.is_positive() {
                            self.decide(&reply);
                        }
                        self.session.mail_reply(&reply);
                    }
                    Err(error) => self.fail(error.to_reply()).await,
                }
                Flow::Continue
            }
            Step::Rcpt { to, params } => {
                let replied = self.relay.rcpt(&to, &params).await;
                self.note_checks();
                let reply = match replied {
                    Ok(reply) => {
                        self.session.rcpt_reply(&reply);
                        reply
                    }
                    Err(error) => {
                        let reply = error.to_reply();
                        self.fail(reply.clone()).await;
                        reply
                    }
                };
                if let Some(tx) = self.record.transactions.last_mut() {
                    tx.rcpts.push((to, reply.code));
                }
                Flow::Continue
            }
            Step::RcptRefused { to, code } => {
                if let Some(tx) = self.record.transactions.last_mut() {
                    tx.rcpts.push((to, code));
                }
                Flow::Continue
            }
            Step::Data => {
                self.data_start().await;
                Flow::Continue
            }
            Step::Message {
                forward,
                refused,
                end,
            } => self.message(&consumed[..forward], refused, end).await,
            Step::Chunk { wire, refused, end } => {
                // A chunk's octets are all consumed; commands may follow.
                self.message(&wire, refused, end).await;
                Flow::Continue
            }
        }
    }

    /// Asks the backend for DATA (for DATA or the first BDAT) and, on 354,
    /// sends the `Received:` header. A refusal that ends the transaction
    /// (BDAT) resets the backend.
    async fn data_start(&mut self) {
        let reply = match self.relay.data_start().await {
            Ok(reply) => reply,
            Err(error) => return self.fail(error.to_reply()).await,
        };
        if !self.session.data_reply(&reply) {
            self.decide(&reply);
            if !self.session.transaction_open() {
                self.relay.rset().await;
            }
            return;
        }
        let mut header = self.received();
        for line in self.relay.trace_headers() {
            header.push_str(&line);
        }
        if let Err(error) = self.relay.data_trace(header.as_bytes()).await {
            self.abort().await;
            self.session.relay_failed(error.to_reply());
        }
    }

    /// Forwards message octets and ends the message.
    async fn message(&mut self, wire: &[u8], refused: bool, end: Option<DataEnd>) -> Flow {
        let mut failure = None;
        if !wire.is_empty() && !self.aborted {
            if let Err(error) = self.relay.data_chunk(wire).await {
                self.abort().await;
                failure = Some(error.to_reply());
            }
        }
        if refused && !self.aborted {
            self.abort().await;
        }
        let Some(end) = end else {
            if let Some(reply) = failure {
                self.session.relay_failed(reply);
            }
            return Flow::Read;
        };
        match end {
            DataEnd::Complete { size } => {
                self.note_size(size);
                let reply = match failure {
                    Some(reply) => reply,
                    None => match self.relay.data_end().await {
                        Ok(reply) => reply,
                        Err(error) => {
                            self.abort().await;
                            error.to_reply()
                        }
                    },
                };
                self.decide(&reply);
                self.session.message_reply(&reply);
            }
            DataEnd::Refused { size, reply } => {
                self.note_size(size);
                if !self.aborted {
                    self.abort().await;
                }
                self.decide(&reply);
            }
        }
        Flow::Continue
    }

    /// A backend failure outside the data: abort, 451, transaction over.
    async fn fail(&mut self, reply: Reply) {
        self.abort().await;
        self.decide(&reply);
        self.session.relay_failed(reply);
    }

    async fn abort(&mut self) {
        self.note_server();
        self.relay.abort().await;
        self.aborted = true;
    }

    /// Aborts a transaction left open when the session ends.
    async fn close_transaction(&mut self) {
        if self.session.transaction_open() && !self.aborted {
            self.abort().await;
        }
    }

    /// A timeout ends an open transaction with `421`: the sender keeps the
    /// message, so it counts as a temporary failure.
    fn time_out_transaction(&mut self) {
        if let Some(tx) = self.record.transactions.last_mut() {
            if tx.final_reply.is_none() && self.session.transaction_open() {
                tx.final_reply = Some("421 4.4.2 timeout".to_owned());
                tx.result = TransactionResult::Tempfail;
            }
        }
    }

    /// Records the reply that decided the current transaction.
    fn decide(&mut self, reply: &Reply) {
        self.note_server();
        self.note_checks();
        if let Some(tx) = self.record.transactions.last_mut() {
            tx.final_reply = Some(reply.to_string().trim_end().to_owned());
            tx.result = match reply.code / 100 {
                2 => TransactionResult::Accepted,
                4 => TransactionResult::Tempfail,
                _ => TransactionResult::Rejected,
            };
        }
    }

    fn note_server(&mut self) {
        if let (Some(tx), Some(server)) = (self.record.transactions.last_mut(), self.relay.server())
        {
            tx.server = Some(server);
        }
    }

    /// Moves the checks the relay recorded into the current transaction.
    fn note_checks(&mut self) {
        let trail = self.relay.take_checks();
        if let Some(tx) = self.record.transactions.last_mut() {
            tx.checks.append(trail);
        }
    }

    fn note_size(&mut self, size: u64) {
        if let Some(tx) = self.record.transactions.last_mut() {
            tx.size = size;
        }
    }

    fn note_helo(&mut self) {
        if let Some(helo) = self.session.helo() {
            self.identity.helo.clone_from(&helo.name);
            self.identity.esmtp = helo.esmtp;
            self.record.helo = Some(helo.name.clone());
        }
    }

    fn finish(mut self) -> SessionRecord {
        self.note_helo();
        self.note_checks();
        self.record.replies = *self.session.replies();
        if self.record.end.is_empty() {
            self.record.end = "closed".into();
        }
        self.record
    }
}
