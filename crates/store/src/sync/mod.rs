//! Peer sync, store side: the change log, the merge rule and the digests
//! that the sync protocol (a later step) ships between the two boxes.
//!
//! - **Change log** (schema version 7): triggers on every synced table
//!   ([`SYNCED_TABLES`]) record, in the same transaction as the write, one
//!   `sync_log` row per table row: its key, the [`Hlc`] stamp and
//!   [`NodeId`] of its latest version, whether that version is a deletion
//!   (a tombstone), and a local sequence number `seq` that orders the log
//!   for pushing ([`Store::sync_changes_since`]). The stamp comes from
//!   `mxgate_hlc()`, a Rust function registered on the store's connection,
//!   so every write path (policy import, single-row edits, greylisting, the
//!   temporary allowlist, certificates) is logged without knowing about it.
//!   A connection without that function cannot write a synced table at all
//!   (fail closed: no unstamped change).
//! - **Merge rule** ([`Store::apply_remote`]): last writer wins per row by
//!   `(hlc, node)`; a batch is applied in one transaction or not at all.
//! - **Digests** ([`Store::sync_digest`], [`Store::canonical_dump`]) for
//!   anti-entropy and for tests comparing two stores.
//!
//! See `docs/sync.md` for the design and its limits.

mod apply;
mod changes;
mod check;
mod digest;
mod hlc;

pub use apply::ApplyReport;
pub use changes::{MAX_TOMBSTONES, TOMBSTONE_MAX_AGE_MS};
pub use hlc::{Clock, Hlc, SystemClock};

use rusqlite::functions::FunctionFlags;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

/// Most changes a batch may hold, sent or received.
pub const MAX_BATCH_CHANGES: usize = 10_000;

/// Most bytes (as [`Change::size`] counts them) a batch may hold.
pub const MAX_BATCH_BYTES: usize = 8 << 20;

/// A remote clock ahead of the local one by more than this is logged as a
/// warning (it does not stop sync: the HLC absorbs it).
pub const SKEW_WARN_MS: i64 = 5_000;

/// The tables whose rows sync, each with its primary key columns in key
/// order (the order of `json_array` in the log's `pk`).
///
/// Of `settings`, only the shared keys sync (see [`is_shared_setting`]).
/// Not synced: tracking records (`track_*`), `schema_version` and the sync
/// bookkeeping itself (`sync_node`, `sync_log`, `sync_peers`).
pub const SYNCED_TABLES: &[(&str, &[&str])] = &[
    ("certificates", &["name"]),
    ("greylist_clients", &["net"]),
    ("greylist_triplets", &["key"]),
    ("listeners", &["name"]),
    ("lists", &["position"]),
    ("pools", &["name"]),
    ("rate_limits", &["position"]),
    ("relay_domains", &["domain"]),
    ("servers", &["pool", "name"]),
    ("settings", &["key"]),
    ("temp_allowlist", &["client"]),
    ("users", &["name"]),
];

/// Tables of the store that never sync: a change naming one is refused as
/// [`SyncError::NodeLocal`].
const NODE_LOCAL_TABLES: &[&str] = &[
    "audit_log",
    "schema_version",
    "sync_log",
    "sync_node",
    "sync_peers",
    "track_recipients",
    "track_sessions",
    "track_transactions",
    "web_sessions",
];

/// True for the `settings` keys that are part of the shared policy
/// (`limits.*` and the `section.*` filter sections); any other key is
/// node-local and never syncs. Mirrors the triggers' `GLOB` filter.
pub fn is_shared_setting(key: &str) -> bool {
    key.starts_with("limits.") || key.starts_with("section.")
}

/// A node's identity in the change log: a random 63-bit number chosen when
/// the store is first migrated to schema version 7, kept in `sync_node`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct NodeId(pub u64);

/// One column value, as SQLite holds it (the synced tables are `STRICT`
/// and hold no floating point columns).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// An `INTEGER`.
    Integer(i64),
    /// A `TEXT`.
    Text(String),
    /// A `BLOB`.
    Blob(Vec<u8>),
}

/// A whole row: column name to value, every column of the table.
pub type Row = BTreeMap<String, Value>;

/// The latest version of one row, as the log holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The table (one of [`SYNCED_TABLES`]).
    pub table: String,
    /// The row's primary key: the JSON array of its key columns' values, as
    /// SQLite's `json_array` writes it (`["mta","mta1"]`, `[0]`).
    pub pk: String,
    /// When this version was written.
    pub hlc: Hlc,
    /// Who wrote it.
    pub node: NodeId,
    /// The row's content, `None` for a deletion (a tombstone).
    pub row: Option<Row>,
}

impl Change {
    /// The change's size as the batch limits count it: its texts and blobs
    /// plus 8 bytes per number, close to (and never far below) its
    /// postcard encoding.
    pub fn size(&self) -> usize {
        let values = self.row.iter().flatten().map(|(column, value)| {
            column.len()
                + match value {
                    Value::Null => 1,
                    Value::Integer(_) => 8,
                    Value::Text(s) => s.len() + 2,
                    Value::Blob(b) => b.len() + 2,
                }
        });
        self.table.len() + self.pk.len() + 24 + values.sum::<usize>()
    }
}

/// Changes read from the log in `seq` order, and where to continue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The node whose log this is (the sender).
    pub from: NodeId,
    /// The changes, oldest log position first.
    pub changes: Vec<Change>,
    /// The log position of the last change in the batch (the `after_seq`
    /// of the next call, and what the peer acknowledges); the caller's
    /// `after_seq` when the batch is empty.
    pub last_seq: u64,
    /// True when the log holds more changes after this batch.
    pub more: bool,
}

/// A batch from a peer was refused; nothing of it was applied. Every
/// variant is the peer's fault (a bug or a hostile peer): the connection
/// that carried it should be closed and the refusal counted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// More changes than [`MAX_BATCH_CHANGES`].
    #[error("sync: a batch of {count} changes is over the limit of {max}")]
    TooManyChanges {
        /// Changes in the batch.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// More bytes than [`MAX_BATCH_BYTES`].
    #[error("sync: a batch of about {bytes} bytes is over the limit of {max}")]
    TooLarge {
        /// Size of the batch ([`Change::size`] summed).
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A table this store does not have.
    #[error("sync: table {table:?} does not exist here (a newer peer?)")]
    UnknownTable {
        /// The table named by the change.
        table: String,
    },
    /// A node-local table or setting, which a peer may never write.
    #[error("sync: {table} {pk}: node-local, a peer may not change it")]
    NodeLocal {
        /// The table.
        table: String,
        /// The row's key.
        pk: String,
    },
    /// A change that does not fit the table: a bad key, missing, extra or
    /// mistyped columns, a row refused by the table's constraints, the same
    /// row twice in one batch.
    #[error("sync: {table} {pk}: malformed change: {reason}")]
    Malformed {
        /// The table.
        table: String,
        /// The row's key.
        pk: String,
        /// What is wrong.
        reason: String,
    },
    /// The local log names a live row that is not in its table (a hand
    /// edit that bypassed the triggers): local trouble, not the peer's.
    #[error("sync: {table} {pk}: the change log names a row that does not exist")]
    LogOutOfStep {
        /// The table.
        table: String,
        /// The row's key.
        pk: String,
    },
}

/// Per-connection sync state, shared by the store and the SQL functions
/// registered on its connection.
pub(crate) struct SyncState {
    clock: Arc<dyn Clock>,
    /// Set while a remote batch is applied: the triggers then log nothing
    /// (`mxgate_sync_local()` is 0) and the apply writes the remote stamps.
    applying: AtomicBool,
    /// Largest remote-minus-local skew seen, `i64::MIN` for none.
    max_skew_ms: AtomicI64,
}

impl SyncState {
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Arc<SyncState> {
        Arc::new(SyncState {
            clock,
            applying: AtomicBool::new(false),
            max_skew_ms: AtomicI64::new(i64::MIN),
        })
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    pub(crate) fn max_skew_ms(&self) -> Option<i64> {
        let v = self.max_skew_ms.load(Ordering::Relaxed);
        (v != i64::MIN).then_some(v)
    }

    pub(crate) fn record_skew(&self, skew_ms: i64) {
        self.max_skew_ms.fetch_max(skew_ms, Ordering::Relaxed);
    }

    pub(crate) fn set_applying(&self, on: bool) {
        self.applying.store(on, Ordering::SeqCst);
    }
}

/// Registers `mxgate_hlc(last)` (the next local stamp after `last`) and
/// `mxgate_sync_local()` (1 unless a remote batch is being applied) on
/// `conn`. Both are non-deterministic, so SQLite calls them per row.
pub(crate) fn register_functions(
    conn: &Connection,
    state: &Arc<SyncState>,
) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8;
    let s = Arc::clone(state);
    conn.create_scalar_function("mxgate_hlc", 1, flags, move |ctx| {
        let last = Hlc::from_sql(ctx.get::<Option<i64>>(0)?.unwrap_or(0));
        Ok(last.next(s.now_ms()).to_sql())
    })?;
    let s = Arc::clone(state);
    conn.create_scalar_function("mxgate_sync_local", 0, flags, move |_| {
        Ok(i64::from(!s.applying.load(Ordering::SeqCst)))
    })
}

/// [`register_functions`] with the system clock and a state of its own,
/// for a connection beside the store's (tests).
#[cfg(test)]
pub(crate) fn register_with_system_clock(conn: &Connection) -> rusqlite::Result<()> {
    register_functions(conn, &SyncState::new(Arc::new(SystemClock)))
}

/// The primary key columns of a synced table, `None` for any other name.
pub(crate) fn synced_pk(table: &str) -> Option<&'static [&'static str]> {
    SYNCED_TABLES
        .iter()
        .find(|(name, _)| *name == table)
        .map(|(_, pk)| *pk)
}

/// Why `table` cannot take a remote change, if it cannot.
pub(crate) fn refuse_table(table: &str, pk: &str) -> Option<SyncError> {
    if synced_pk(table).is_some() {
        None
    } else if NODE_LOCAL_TABLES.contains(&table) {
        Some(SyncError::NodeLocal {
            table: table.to_string(),
            pk: pk.to_string(),
        })
    } else {
        Some(SyncError::UnknownTable {
            table: table.to_string(),
        })
    }
}

/// `"name"`: an identifier quoted for SQL (the names come from
/// [`SYNCED_TABLES`] and `pragma_table_info`, never from a peer).
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"a" = ?1 AND "b" = ?2` over the key columns.
pub(crate) fn pk_where(pk: &[&str]) -> String {
    pk.iter()
        .enumerate()
        .map(|(i, c)| format!("{} = ?{}", quote(c), i + 1))
        .collect::<Vec<_>>()
        .join(" AND ")
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_converge;
#[cfg(test)]
mod tests_merge;
