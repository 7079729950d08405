//! The trace header mxgate adds in front of every relayed message (DATA
//! or BDAT): `Received:` with a transaction id.

use super::{Conversation, Relay};
use mxgate_smtp::server::{received_header, ReceivedInfo};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A transaction id for the `Received:` header and the logs: seconds since
/// the epoch and a process-wide counter, in hex.
fn transaction_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{secs:X}{n:08X}")
}

impl<R: Relay> Conversation<'_, R> {
    /// The `Received:` header for the current message.
    pub(super) fn received(&self) -> String {
        let accepted: Vec<&str> = self
            .record
            .transactions
            .last()
            .map(|tx| {
                tx.rcpts
                    .iter()
                    .filter(|(_, code)| code / 100 == 2)
                    .map(|(to, _)| to.as_str())
                    .collect()
            })
            .unwrap_or_default();
        let rcpt = match accepted.as_slice() {
            [one] => Some(*one),
            _ => None,
        };
        received_header(&ReceivedInfo {
            helo: &self.identity.helo,
            rdns: self.identity.rdns.as_deref(),
            ip: self.identity.addr.ip(),
            hostname: &self.settings.hostname,
            esmtp: self.identity.esmtp,
            tls: self.identity.tls.as_deref(),
            authenticated: false,
            id: &transaction_id(),
            rcpt,
            date: SystemTime::now(),
        })
    }
}
