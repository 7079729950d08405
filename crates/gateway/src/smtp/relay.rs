//! The seam between the inbound SMTP session (what the sender talks to) and
//! the outbound one (what mxgate opens to a backend MTA): the inbound side
//! asks, the outbound side answers with the backend's own replies. The 250
//! that ends DATA is only ever the backend's.

use mxgate_smtp::Reply;
use std::net::SocketAddr;

/// Who the sender is, as the backend should learn it (XCLIENT or PROXY).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The sender's address (from PROXY when a trusted upstream sent one).
    pub addr: SocketAddr,
    /// The address the sender connected to.
    pub destination: SocketAddr,
    /// The HELO/EHLO name the sender gave.
    pub helo: String,
    /// `true` when the sender said EHLO (ESMTP), `false` for HELO.
    pub esmtp: bool,
    /// TLS of the inbound session, e.g. `TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384`.
    pub tls: Option<String>,
    /// The sender's forward-confirmed reverse DNS name (lower case, no
    /// trailing dot), when it was looked up (`[screen] reverse_dns` or a
    /// `reverse_name` list entry) and verified; `None` otherwise. It goes
    /// into mxgate's `Received:` header. An unverified PTR name never does.
    pub rdns: Option<String>,
}

/// Why a relay step failed before the backend gave a reply. Every variant
/// becomes a `451 4.4.x` to the sender, so the sender keeps the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// No server of the pool could be used or reached.
    #[error("no backend available: {0}")]
    NoBackend(String),
    /// The backend did not answer in time.
    #[error("backend {server} timed out during {step}")]
    Timeout {
        /// `pool/server`.
        server: String,
        /// The SMTP step.
        step: &'static str,
    },
    /// The backend connection broke.
    #[error("backend {server} connection failed during {step}: {source}")]
    Io {
        /// `pool/server`.
        server: String,
        /// The SMTP step.
        step: &'static str,
        /// The socket error.
        source: std::io::Error,
    },
    /// The backend spoke something that is not SMTP, or refused the session
    /// set-up (banner, EHLO, STARTTLS, XCLIENT) itself.
    #[error("backend {server} failed during {step}: {detail}")]
    Protocol {
        /// `pool/server`.
        server: String,
        /// The SMTP step.
        step: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// mxgate itself failed (e.g. the spool for a held message).
    #[error("local error: {0}")]
    Local(String),
}

impl RelayError {
    /// The reply the sender gets: transient, so the sender retries later.
    pub fn to_reply(&self) -> Reply {
        let text = match self {
            RelayError::NoBackend(_) => "4.4.1 No mail server available, try again later",
            RelayError::Timeout { .. } => "4.4.2 Mail server timed out, try again later",
            RelayError::Io { .. } | RelayError::Protocol { .. } => {
                "4.4.2 Mail server connection failed, try again later"
            }
            RelayError::Local(_) => "4.3.0 Local error in processing, try again later",
        };
        Reply::new(451, text)
    }
}

/// One outbound SMTP transaction towards a backend, driven by the inbound
/// session. Implemented by the real backend client and by test fakes.
///
/// Every method returns the backend's reply when it gave one (whatever its
/// code), or a [`RelayError`] when it could not (then the transaction is
/// dead: the inbound side answers 451 and calls nothing more but `abort`).
#[allow(async_fn_in_trait)]
pub trait Relay {
    /// Tells the relay who the sender is now (its HELO and TLS are known
    /// only after the greeting); used when the backend session opens.
    fn identify(&mut self, client: &ClientIdentity);
    /// `MAIL FROM:<from> params` (opens the backend session first if needed).
    async fn mail(&mut self, from: &str, params: &str) -> Result<Reply, RelayError>;
    /// `RCPT TO:<to> params`.
    async fn rcpt(&mut self, to: &str, params: &str) -> Result<Reply, RelayError>;
    /// `DATA`; a 354 means go on with [`Relay::data_chunk`].
    async fn data_start(&mut self) -> Result<Reply, RelayError>;
    /// mxgate's trace header lines (CRLF-terminated) in front of the
    /// message, sent once right after a 354. Relays that hold the message
    /// keep them apart to add their own header after them.
    async fn data_trace(&mut self, header: &[u8]) -> Result<(), RelayError> {
        self.data_chunk(header).await
    }
    /// Message bytes in wire form: CRLF lines, still dot-stuffed, without the
    /// final `.` line; any chunk boundaries.
    async fn data_chunk(&mut self, wire: &[u8]) -> Result<(), RelayError>;
    /// Ends the message (`.` line) and returns the backend's final reply.
    async fn data_end(&mut self) -> Result<Reply, RelayError>;
    /// Ends the transaction without delivering (`RSET`); the session may be
    /// reused. Errors are ignored by callers.
    async fn rset(&mut self);
    /// Drops the transaction and the connection (no partial delivery: a
    /// backend that saw no final `.` discards the message).
    async fn abort(&mut self);
    /// `pool/server` of the current backend, when one is open.
    fn server(&self) -> Option<String>;
    /// Trace header lines (each CRLF-terminated) to add right after
    /// mxgate's `Received:` line of the current message, e.g.
    /// `Received-SPF:`. None by default.
    fn trace_headers(&self) -> Vec<String> {
        Vec::new()
    }
    /// The checks recorded since the last call (the verdict trail of the
    /// current transaction). None by default.
    fn take_checks(&mut self) -> mxgate_filter::verdict::Trail {
        mxgate_filter::verdict::Trail::new()
    }
}

/// The [`Relay`] methods of the data phase, passed unchanged to the
/// wrapper's `inner` relay: `data_start`, `data_trace`, `data_chunk`,
/// `data_end`, `abort` and `server`. Wrappers that only look at the envelope (lists, limits,
/// caches) use it inside their `impl Relay`.
macro_rules! forward_data_phase {
    () => {
        async fn data_start(&mut self) -> Result<Reply, RelayError> {
            self.inner.data_start().await
        }
        async fn data_trace(&mut self, header: &[u8]) -> Result<(), RelayError> {
            self.inner.data_trace(header).await
        }
        async fn data_chunk(&mut self, wire: &[u8]) -> Result<(), RelayError> {
            self.inner.data_chunk(wire).await
        }
        async fn data_end(&mut self) -> Result<Reply, RelayError> {
            self.inner.data_end().await
        }
        async fn abort(&mut self) {
            self.inner.abort().await;
        }
        fn server(&self) -> Option<String> {
            self.inner.server()
        }
    };
}
pub(crate) use forward_data_phase;
