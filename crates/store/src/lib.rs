//! The policy store of mxgate: the single source of truth for the shared
//! policy, in SQLite (WAL) at `<data_dir>/mxgate.db`.
//!
//! - [`Store::open`] creates the directory, opens the database and applies
//!   the [migrations](SCHEMA_VERSION); a database from a newer mxgate is
//!   refused ([`StoreError::SchemaTooNew`]).
//! - [`Store::policy`] reads the typed tables back into a raw policy and
//!   validates it with [`mxgate_config::Policy::validate`], so validation
//!   lives in one place and a hand-edited database is reported, not trusted.
//! - [`Store::replace_policy`] (import) and the single-row edits
//!   ([`Store::set_server_state`], [`Store::upsert_server`],
//!   [`Store::remove_server`]) each run in one transaction and validate the
//!   result before committing.
//! - [`Store::subscribe`] hands out a `watch` receiver of `Arc<Policy>`;
//!   commits through the store publish at once, commits by another process
//!   are picked up by [`Store::refresh`] / [`Store::spawn_watcher`].
//! - Beside the policy, not part of it (never exported, nothing published):
//!   SMTP tracking records ([`Store::record_session`], [`Store::search`],
//!   [`Store::prune_tracking`]) and the listeners' TLS certificates
//!   ([`Store::certificate`], [`Store::put_certificate`],
//!   [`Store::self_signed_certificate`]), and the greylisting state
//!   ([`Store::greylist_check`], [`Store::purge_greylist`]), shared filter
//!   state for peer sync.
//! - Web UI accounts ([`Store::create_user`], synced), sessions
//!   ([`Store::touch_web_session`], node-local) and the audit log
//!   ([`Store::audit`], node-local).
//! - Peer sync, store side: every write to a synced table is logged with a
//!   hybrid logical clock stamp in the same transaction
//!   ([`Store::sync_changes_since`]), remote changes merge by last writer
//!   wins per row ([`Store::apply_remote`]), and per-table digests
//!   ([`Store::sync_digest`]) drive anti-entropy. See `docs/sync.md`.
//!
//! ```no_run
//! # fn main() -> Result<(), mxgate_store::StoreError> {
//! use mxgate_store::Store;
//! let store = Store::open(std::path::Path::new("/data/mxgate"))?;
//! let policy = store.policy()?;
//! println!("{}", policy.to_toml());
//! # Ok(())
//! # }
//! ```

mod audit;
mod certs;
mod edit;
mod error;
mod filter_rows;
mod greylist;
mod mta_sts;
mod probe;
mod rows;
mod schema;
mod store;
mod sync;
mod temp_allowlist;
mod tracking;
mod users;
mod web_sessions;

pub use audit::{AuditEntry, AUDIT_KEEP};
pub use error::StoreError;
pub use mta_sts::MTA_STS_KEY;
pub use probe::PROBE_FILE;
pub use schema::SCHEMA_VERSION;
pub use store::{Store, DB_FILE};
pub use sync::{
    is_shared_setting, ApplyReport, Batch, Change, Clock, Hlc, NodeId, Row, SyncError, SystemClock,
    Value, MAX_BATCH_BYTES, MAX_BATCH_CHANGES, MAX_TOMBSTONES, SKEW_WARN_MS, SYNCED_TABLES,
    TOMBSTONE_MAX_AGE_MS,
};
pub use tracking::{
    RecipientRecord, SessionRecord, TrackQuery, TransactionRecord, TransactionResult,
    DEFAULT_SEARCH_LIMIT, MAX_SEARCH_LIMIT,
};
pub use users::{Credentials, Role, User};
pub use web_sessions::WebSession;

#[cfg(test)]
mod certs_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tracking_tests;
#[cfg(test)]
mod users_tests;
