//! Sender authentication at end of data (`[auth] dkim`, `arc`, `dmarc`):
//! [`AuthenticatingRelay`] holds each message whole (memory, then a
//! temporary file: [`spool`]) instead of streaming it to the backend,
//! checks it with mail-auth when the sender's final `.` arrives
//! ([`verify`]), then either refuses it (the backend, which has seen
//! DATA but no final dot, is dropped and delivers nothing) or relays it
//! with one `Authentication-Results:` header after mxgate's trace headers
//! and answers the sender with the backend's own reply. Results that claim
//! this gateway's name in the message are removed first ([`wire`]).
//!
//! It is also where a greylisting deferral held back by
//! `[greylist] skip_dmarc_pass` is settled: a DMARC pass delivers, anything
//! else gets the deferral (451) at end of data.
//!
//! With every end-of-data check off the wrapper passes everything through
//! untouched (no copy, no buffering).

mod spool;
mod verify;
mod wire;

use crate::checks::CheckLog;
use crate::smtp::relay::{ClientIdentity, Relay, RelayError};
use crate::spf::Authenticator;
use mxgate_config::AuthSettings;
use mxgate_filter::verdict::{checks, Trail};
use mxgate_smtp::Reply;
use spool::Spool;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Octets handed to the backend per write when a held message is relayed.
const RELAY_CHUNK: usize = 64 * 1024;

/// What the end-of-data checks need, fixed for one session.
pub(crate) struct MessageChecks {
    /// The verifier (shares the gateway's DNS settings).
    pub authenticator: Arc<Authenticator>,
    /// `[auth]`.
    pub auth: AuthSettings,
    /// Bound of each DNS-bound step.
    pub timeout: Duration,
    /// The authserv-id: the listener's host name.
    pub authserv_id: String,
    /// Where spilled messages go (`None`: the system's temporary directory).
    pub spool_dir: Option<PathBuf>,
}

/// The message of the open transaction while it is held.
struct Held {
    /// mxgate's trace header lines (`Received:`, `Received-SPF:`).
    trace: Vec<u8>,
    spool: Spool,
}

/// A [`Relay`] that holds each message and checks it before relaying (see
/// the module docs). `checks = None` passes everything through.
pub(crate) struct AuthenticatingRelay<R> {
    inner: R,
    checks: Option<MessageChecks>,
    log: CheckLog,
    client: Option<ClientIdentity>,
    from: String,
    held: Option<Held>,
}

impl<R> AuthenticatingRelay<R> {
    /// Wraps `inner`; the checks' decisions go to `log`.
    pub fn new(inner: R, checks: Option<MessageChecks>, log: CheckLog) -> Self {
        let checks = checks.filter(|c| c.auth.checks_message());
        AuthenticatingRelay {
            inner,
            checks,
            log,
            client: None,
            from: String::new(),
            held: None,
        }
    }
}

impl<R: Relay> AuthenticatingRelay<R> {
    /// Checks the held message and relays it, or refuses it.
    async fn finish(&mut self, held: Held, checks: &MessageChecks) -> Result<Reply, RelayError> {
        if held.spool.spilled() {
            tracing::debug!(from = %self.from, "held message spilled to the spool directory");
        }
        let wire = held.spool.into_bytes().map_err(|e| {
            tracing::warn!(error = %e, "held message could not be read back");
            RelayError::Local(format!("spool: {e}"))
        })?;
        let message = wire::unstuff(&wire);
        let spf = self.log.lock().spf.clone();
        let (ip, helo) = self
            .client
            .as_ref()
            .map_or((std::net::Ipv4Addr::UNSPECIFIED.into(), ""), |c| {
                (c.addr.ip(), c.helo.as_str())
            });
        let envelope = verify::Envelope {
            ip,
            helo,
            from: &self.from,
            spf: spf.as_ref(),
        };
        let evaluation = verify::evaluate(
            checks.authenticator.mail_auth(),
            &checks.authserv_id,
            &message,
            &envelope,
            checks.auth,
            checks.timeout,
        )
        .await;
        drop(message);
        for (check, result, detail) in &evaluation.checks {
            self.log.record(check, result, detail.clone());
        }
        let mut refusal = evaluation.refusal;
        let deferral = self.log.lock().greylist_deferral.take();
        if let Some(deferral) = deferral {
            if evaluation.dmarc_pass {
                self.log
                    .record(checks::GREYLIST, "skip", "DMARC-aligned pass");
            } else {
                refusal.get_or_insert(deferral);
            }
        }
        if let Some(reply) = refusal {
            tracing::info!(client = %ip, from = %self.from, reply = %reply.to_string().trim_end(), "refused at end of data");
            self.inner.abort().await;
            return Ok(reply);
        }
        let mut trace = held.trace;
        trace.extend_from_slice(evaluation.header.as_bytes());
        self.inner.data_trace(&trace).await?;
        let body = wire::strip_own_results(&wire, &checks.authserv_id);
        for chunk in body.chunks(RELAY_CHUNK) {
            self.inner.data_chunk(chunk).await?;
        }
        self.inner.data_end().await
    }
}

impl<R: Relay> Relay for AuthenticatingRelay<R> {
    fn identify(&mut self, client: &ClientIdentity) {
        self.client = Some(client.clone());
        self.inner.identify(client);
    }
    async fn mail(&mut self, from: &str, params: &str) -> Result<Reply, RelayError> {
        self.from = from.to_string();
        self.held = None;
        self.inner.mail(from, params).await
    }
    async fn rcpt(&mut self, to: &str, params: &str) -> Result<Reply, RelayError> {
        self.inner.rcpt(to, params).await
    }
    async fn data_start(&mut self) -> Result<Reply, RelayError> {
        let reply = self.inner.data_start().await?;
        if let (Some(checks), true) = (&self.checks, reply.code == 354) {
            self.held = Some(Held {
                trace: Vec::new(),
                spool: Spool::new(checks.auth.hold_memory, checks.spool_dir.as_deref()),
            });
        }
        Ok(reply)
    }
    async fn data_trace(&mut self, header: &[u8]) -> Result<(), RelayError> {
        match self.held.as_mut() {
            Some(held) => {
                held.trace.extend_from_slice(header);
                Ok(())
            }
            None => self.inner.data_trace(header).await,
        }
    }
    async fn data_chunk(&mut self, wire: &[u8]) -> Result<(), RelayError> {
        match self.held.as_mut() {
            Some(held) => held.spool.write(wire).map_err(|e| {
                tracing::warn!(error = %e, "message could not be held");
                RelayError::Local(format!("spool: {e}"))
            }),
            None => self.inner.data_chunk(wire).await,
        }
    }
    async fn data_end(&mut self) -> Result<Reply, RelayError> {
        let (Some(held), Some(checks)) = (self.held.take(), self.checks.take()) else {
            return self.inner.data_end().await;
        };
        let result = self.finish(held, &checks).await;
        self.checks = Some(checks);
        result
    }
    async fn rset(&mut self) {
        self.held = None;
        self.inner.rset().await;
    }
    async fn abort(&mut self) {
        self.held = None;
        self.inner.abort().await;
    }
    fn server(&self) -> Option<String> {
        self.inner.server()
    }
    fn trace_headers(&self) -> Vec<String> {
        self.inner.trace_headers()
    }
    fn take_checks(&mut self) -> Trail {
        self.inner.take_checks()
    }
}

#[cfg(test)]
mod tests;
