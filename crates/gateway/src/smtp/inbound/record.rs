//! What an inbound session leaves behind: one [`SessionRecord`] with its
//! transactions, serialisable for the log and the store.

use mxgate_filter::verdict::Trail;
use mxgate_smtp::server::ReplyCounts;
use serde::Serialize;

/// What happened in one session, for the log and the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SessionRecord {
    /// The last HELO/EHLO name given.
    pub helo: Option<String>,
    /// The TLS of the session after STARTTLS, e.g. `TLSv1.3 with cipher ...`.
    pub tls: Option<String>,
    /// The connection's screening decisions before the banner (lists,
    /// limits, pregreet, DNSBL), filled in by the listener.
    pub checks: Trail,
    /// Every MAIL the backend was asked for, in order.
    pub transactions: Vec<TransactionRecord>,
    /// Why the session ended: `quit`, `disconnect`, `disconnect in data`,
    /// `timeout`, `too many errors`, `write failed`, `tls handshake failed`.
    pub end: String,
    /// Every reply the session sent, by phase and class (for the listener's
    /// counters; not serialised).
    #[serde(skip)]
    pub replies: ReplyCounts,
}

/// One mail transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransactionRecord {
    /// The reverse-path, empty for `<>`.
    pub from: String,
    /// Every recipient tried, with the reply code the sender got.
    pub rcpts: Vec<(String, u16)>,
    /// Message octets read (wire form), 0 without DATA.
    pub size: u64,
    /// `pool/server` of the backend, when one was open.
    pub server: Option<String>,
    /// The reply that decided the transaction, as sent (`250 2.0.0 Ok ...`).
    pub final_reply: Option<String>,
    /// How it ended.
    pub result: TransactionResult,
    /// Every filter decision of the transaction, in order (the verdict
    /// trail: lists, limits, SPF, greylisting, DKIM, ARC, DMARC).
    pub checks: Trail,
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransactionResult {
    /// The backend took the message (its 250).
    Accepted,
    /// Refused for good (5xx).
    Rejected,
    /// Refused for now (4xx: backend failures, timeouts).
    Tempfail,
    /// The sender left before any end-of-data reply (QUIT, RSET or a
    /// disconnect after MAIL): nothing was accepted or refused.
    Abandoned,
}
