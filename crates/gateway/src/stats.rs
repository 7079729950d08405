//! Counters of one listener, read by `/metrics` and `/api/v1/status`.

use mxgate_smtp::server::class_index;
pub use mxgate_smtp::server::{class_label, ReplyCounts, ReplyPhase, REPLY_CLASSES};
pub use mxgate_smtp::ReplyClass;
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

/// How an smtp-mode transaction ended, as counted in
/// `mxgate_smtp_messages_total{result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageResult {
    /// The backend took the message (its 250 went to the sender).
    Accepted,
    /// The sender got a permanent refusal (5xx).
    Rejected,
    /// The sender got a temporary refusal (4xx) and keeps the message.
    Tempfail,
}

impl MessageResult {
    /// Label value in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageResult::Accepted => "accepted",
            MessageResult::Rejected => "rejected",
            MessageResult::Tempfail => "tempfail",
        }
    }

    /// The result a final reply code means.
    pub fn from_code(code: u16) -> MessageResult {
        match code {
            200..=399 => MessageResult::Accepted,
            400..=499 => MessageResult::Tempfail,
            _ => MessageResult::Rejected,
        }
    }

    /// Every result, in metrics order.
    pub const ALL: [MessageResult; 3] = [
        MessageResult::Accepted,
        MessageResult::Rejected,
        MessageResult::Tempfail,
    ];
}

/// Live counters of one listener.
#[derive(Debug, Default)]
pub struct ListenerStats {
    results: [AtomicU64; 4],
    messages: [AtomicU64; 3],
    /// smtp mode: replies sent, by [`ReplyPhase`] and class.
    replies: [[AtomicU64; 4]; 7],
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
    /// smtp mode: messages the backend took.
    pub messages_accepted: u64,
    /// smtp mode: messages refused permanently.
    pub messages_rejected: u64,
    /// smtp mode: messages refused temporarily.
    pub messages_tempfail: u64,
    /// smtp mode: replies sent, by phase ([`ReplyPhase::ALL`] order) and
    /// class ([`REPLY_CLASSES`] order); read with [`ListenerCounts::replies`].
    #[serde(skip)]
    pub replies: [[u64; 4]; 7],
}

impl ListenerCounts {
    /// smtp mode: replies of `class` sent in `phase`.
    pub fn replies(&self, phase: ReplyPhase, class: ReplyClass) -> u64 {
        self.replies[phase as usize][class_index(class)]
    }
}

impl ListenerStats {
    /// Counts one finished connection.
    pub fn count(&self, result: ConnResult) {
        self.results[result as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one finished smtp-mode transaction.
    pub fn count_message(&self, result: MessageResult) {
        self.messages[result as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Adds the replies of one finished smtp-mode session.
    pub fn count_replies(&self, counts: &ReplyCounts) {
        for (phase, class, n) in counts.iter() {
            self.replies[phase as usize][class_index(class)].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts one reply sent outside a session's engine (a refusal before
    /// the banner).
    pub fn count_reply(&self, phase: ReplyPhase, code: u16) {
        let mut counts = ReplyCounts::default();
        counts.add(phase, code);
        self.count_replies(&counts);
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
            messages_accepted: self.messages[0].load(Ordering::Relaxed),
            messages_rejected: self.messages[1].load(Ordering::Relaxed),
            messages_tempfail: self.messages[2].load(Ordering::Relaxed),
            replies: std::array::from_fn(|phase| {
                std::array::from_fn(|class| self.replies[phase][class].load(Ordering::Relaxed))
            }),
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
