//! Counters of one listener, read by `/metrics` and `/api/v1/status`.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// How a connection ended, as counted in
/// `mxgate_listener_connections_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnResult {
    /// Handed to a backend and relayed.
    Accepted,
    /// Refused by policy (untrusted or malformed PROXY header).
    Rejected,
    /// Told to come back later (`421`): no backend, or a connection cap.
    Tempfail,
    /// Failed before a backend was reached (I/O error, timeout).
    Error,
}

impl ConnResult {
    /// Label value in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnResult::Accepted => "accepted",
            ConnResult::Rejected => "rejected",
            ConnResult::Tempfail => "tempfail",
            ConnResult::Error => "error",
        }
    }

    /// Every result, in metrics order.
    pub const ALL: [ConnResult; 4] = [
        ConnResult::Accepted,
        ConnResult::Rejected,
        ConnResult::Tempfail,
        ConnResult::Error,
    ];
}

/// Live counters of one listener.
#[derive(Debug, Default)]
pub struct ListenerStats {
    results: [AtomicU64; 4],
    active: AtomicU64,
}

/// A snapshot of [`ListenerStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct ListenerCounts {
    /// Connections relayed to a backend.
    pub accepted: u64,
    /// Connections refused by policy.
    pub rejected: u64,
    /// Connections told to retry later.
    pub tempfail: u64,
    /// Connections that failed before a backend was reached.
    pub error: u64,
    /// Connections open now.
    pub active: u64,
}

impl ListenerStats {
    /// Counts one finished connection.
    pub fn count(&self, result: ConnResult) {
        self.results[result as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Connections with `result` so far.
    pub fn total(&self, result: ConnResult) -> u64 {
        self.results[result as usize].load(Ordering::Relaxed)
    }

    /// Marks a connection open until the guard drops.
    pub fn open(&self) -> ActiveGuard<'_> {
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(&self.active)
    }

    /// Connections open now.
    pub fn active(&self) -> u64 {
        self.active.load(Ordering::Relaxed)
    }

    /// All counters at once.
    pub fn snapshot(&self) -> ListenerCounts {
        ListenerCounts {
            accepted: self.total(ConnResult::Accepted),
            rejected: self.total(ConnResult::Rejected),
            tempfail: self.total(ConnResult::Tempfail),
            error: self.total(ConnResult::Error),
            active: self.active(),
        }
    }
}

/// Decrements an active-connection gauge when dropped.
#[derive(Debug)]
pub struct ActiveGuard<'a>(&'a AtomicU64);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
