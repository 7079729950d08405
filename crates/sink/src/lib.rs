//! `mxgate sink`: a small SMTP sink MTA for demos, labs and tests.
//!
//! It accepts every message it is offered (like Postfix's `smtp-sink`) and,
//! when given a directory, stores each one in Maildir format with a few
//! trace headers, so tests can check exactly what a gateway delivered.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use mxgate_sink::{serve, SinkOptions};
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let options = SinkOptions {
//!     maildir: Some("/tmp/sink".into()),
//!     ..SinkOptions::default()
//! };
//! let stats = options.stats.clone();
//! let ctrl_c = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! serve(listener, options, ctrl_c).await?;
//! println!("{} messages", stats.snapshot().messages);
//! # Ok(()) }
//! ```
//!
//! Protocol: ESMTP with PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES and
//! SMTPUTF8 (no STARTTLS, no CHUNKING, no AUTH). See [`serve`] for the
//! server's lifecycle and [`SinkOptions`] for what can be tuned.

mod connection;
mod data;
mod proxy;
mod server;
mod session;
mod store;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use server::serve;

/// How a sink behaves. Build one with struct update syntax over
/// [`SinkOptions::default`].
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// The name in the banner, the EHLO reply and the `Received:` header.
    pub hostname: String,
    /// Where to store messages (Maildir: `tmp/`, `new/`, `cur/` are created
    /// by [`serve`]); `None` discards them after counting.
    pub maildir: Option<PathBuf>,
    /// Expect a PROXY v1 or v2 header before SMTP on every connection and
    /// report its source address as the client. Any peer may send one: only
    /// enable this behind a trusted proxy or in a lab.
    pub accept_proxy: bool,
    /// Largest message accepted, in octets after dot-unstuffing, excluding the
    /// headers the sink adds. Advertised with SIZE. Default 50 MB.
    pub max_message_size: usize,
    /// Concurrent connections; further clients wait in the listen backlog.
    /// Default 10,000.
    pub max_connections: usize,
    /// How long a client may stay silent before it gets `421` and is
    /// disconnected. Default 300 s (RFC 5321 section 4.5.3.2.7).
    pub idle_timeout: Duration,
    /// After shutdown is requested, how long connection tasks still in a DATA
    /// transfer may run before they are aborted. Default 30 s.
    pub shutdown_grace: Duration,
    /// Counters shared with whoever keeps a clone of this `Arc`.
    pub stats: Arc<SinkStats>,
}

impl Default for SinkOptions {
    fn default() -> Self {
        SinkOptions {
            hostname: "localhost".to_owned(),
            maildir: None,
            accept_proxy: false,
            max_message_size: 50_000_000,
            max_connections: 10_000,
            idle_timeout: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(30),
            stats: Arc::default(),
        }
    }
}

/// Live counters of a sink, updated with relaxed atomics.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Connections accepted since start.
    pub sessions: AtomicU64,
    /// Connections open now.
    pub active_sessions: AtomicU64,
    /// Messages accepted (stored, or counted and discarded).
    pub messages: AtomicU64,
    /// Octets of accepted message bodies (after unstuffing, without the
    /// headers the sink adds).
    pub bytes: AtomicU64,
}

/// A copy of [`SinkStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// See [`SinkStats::sessions`].
    pub sessions: u64,
    /// See [`SinkStats::active_sessions`].
    pub active_sessions: u64,
    /// See [`SinkStats::messages`].
    pub messages: u64,
    /// See [`SinkStats::bytes`].
    pub bytes: u64,
}

impl SinkStats {
    /// Reads every counter (each one atomically, not all together).
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            sessions: self.sessions.load(Ordering::Relaxed),
            active_sessions: self.active_sessions.load(Ordering::Relaxed),
            messages: self.messages.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}
