//! The [`Store`]: opening the database, reading and replacing the shared
//! policy, and publishing every change to subscribers.
//!
//! One SQLite connection behind a mutex serves a process; the store is not on
//! the per-session hot path (services read the published `Arc<Policy>`).
//! Commits made through a `Store` are published at once; commits made by
//! another process are noticed by [`Store::refresh`] through
//! `PRAGMA data_version`, which [`Store::spawn_watcher`] polls.

use crate::sync::{self, Clock, SyncState, SystemClock};
use crate::{rows, schema, StoreError};
use mxgate_config::Policy;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "mxgate.db";

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection (`prepare_cached`).
const STATEMENT_CACHE: usize = 64;

/// The shared policy store: SQLite (WAL) at `<data_dir>/mxgate.db`.
///
/// `Send + Sync`; share it as `Arc<Store>`. Every method blocks on SQLite
/// briefly; from async code call them from `spawn_blocking` when a slow disk
/// matters.
pub struct Store {
    inner: Mutex<Inner>,
    path: PathBuf,
    published: watch::Sender<Arc<Policy>>,
    /// The HLC's clock and the apply flag read by the sync triggers.
    sync: Arc<SyncState>,
}

struct Inner {
    conn: Connection,
    /// `PRAGMA data_version` when the published policy was last read.
    data_version: i64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating when needed) the store in `data_dir`.
    ///
    /// Creates the directory with mode 0700 when it does not exist, opens
    /// `mxgate.db` in WAL mode (`synchronous=NORMAL`, foreign keys on, 5 s
    /// busy timeout) and applies pending migrations. The policy found is
    /// published to subscribers; when it does not pass validation (a hand
    /// edit) the error is logged and an empty policy is published, so that
    /// `policy import` can still repair the store.
    ///
    /// # Errors
    /// [`StoreError::Io`] when the directory cannot be created;
    /// [`StoreError::SchemaTooNew`] when a newer mxgate wrote the database;
    /// [`StoreError::Sqlite`] when SQLite fails.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        Store::open_with_clock(data_dir, Arc::new(SystemClock))
    }

    /// [`Store::open`] with the physical clock of the change log's hybrid
    /// logical clock given: tests run two stores with skewed or frozen
    /// clocks this way.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with_clock(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Store, StoreError> {
        create_dir(data_dir)?;
        let path = data_dir.join(DB_FILE);
        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Room for the tracking writes, the search variants and the rest.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            warn!(path = %path.display(), mode, "store: WAL not available, using this journal mode");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // An `INSERT OR REPLACE` that displaces a row fires its delete
        // trigger, so the displaced row gets its tombstone.
        conn.pragma_update(None, "recursive_triggers", true)?;
        let sync = SyncState::new(clock);
        sync::register_functions(&conn, &sync)?;
        schema::migrate(&mut conn)?;

        let data_version = data_version(&conn)?;
        let policy = match load(&mut conn) {
            Ok(p) => p,
            Err(StoreError::Invalid(errors)) => {
                error!(path = %path.display(), %errors,
                    "store: the stored policy is not valid; running with an empty policy until it is replaced");
                Policy::default()
            }
            Err(e) => return Err(e),
        };
        let (published, _) = watch::channel(Arc::new(policy));
        Ok(Store {
            inner: Mutex::new(Inner { conn, data_version }),
            path,
            published,
            sync,
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads and validates the shared policy from the database.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the stored policy does not validate
    /// (a corrupted or hand-edited database is reported, never trusted).
    pub fn policy(&self) -> Result<Policy, StoreError> {
        load(&mut self.lock().conn)
    }

    /// The policy last published to subscribers (no database access).
    pub fn current(&self) -> Arc<Policy> {
        Arc::clone(&self.published.borrow())
    }

    /// Replaces the whole shared policy in one transaction, then publishes it.
    ///
    /// All or nothing: when any row is refused (constraint) or the result
    /// does not validate, the previous policy stays as it was.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] or [`StoreError::Sqlite`]; nothing changed.
    pub fn replace_policy(&self, policy: &Policy) -> Result<(), StoreError> {
        let raw = policy.to_raw();
        self.commit_with(|tx| rows::write_policy(tx, &raw))
    }

    /// A receiver of the current policy; it changes after every commit
    /// through this store and every change [`Store::refresh`] picks up.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Policy>> {
        self.published.subscribe()
    }

    /// Picks up changes committed by another process (or another `Store`).
    ///
    /// Compares `PRAGMA data_version`; when it moved, reloads the policy and
    /// publishes it if it differs from the current one. Returns whether a
    /// new policy was published.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the new policy does not validate: it is
    /// not published (services keep the last good one) and is not reported
    /// again until the database changes again. Other errors are retried on
    /// the next call.
    pub fn refresh(&self) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let version = data_version(&inner.conn)?;
        if version == inner.data_version {
            return Ok(false);
        }
        let loaded = load(&mut inner.conn);
        if matches!(loaded, Ok(_) | Err(StoreError::Invalid(_))) {
            inner.data_version = version;
        }
        let policy = loaded?;
        Ok(self.publish(policy))
    }

    /// Spawns a task calling [`Store::refresh`] every `period` (500 ms is the
    /// intended period; at least 10 ms is used), logging errors once per
    /// distinct error. The task ends when the last `Arc<Store>` is dropped
    /// or when the handle is aborted.
    ///
    /// # Panics
    /// When called outside a Tokio runtime.
    pub fn spawn_watcher(self: &Arc<Self>, period: Duration) -> JoinHandle<()> {
        let store = Arc::downgrade(self);
        let period = period.max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_error: Option<String> = None;
            loop {
                tick.tick().await;
                let Some(store) = store.upgrade() else { return };
                let result = tokio::task::spawn_blocking(move || store.refresh()).await;
                let failure = match result {
                    Ok(Ok(true)) => {
                        info!("store: policy changed by another process, published");
                        None
                    }
                    Ok(Ok(false)) => None,
                    Ok(Err(StoreError::Invalid(errors))) => {
                        error!(%errors, "store: the changed policy is not valid; keeping the last good one");
                        None
                    }
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(e) => Some(format!("store refresh task failed: {e}")),
                };
                match (&failure, &last_error) {
                    (Some(now), Some(before)) if now == before => {}
                    (Some(now), _) => error!(error = %now, "store: cannot check for changes"),
                    (None, Some(_)) => info!("store: checking for changes works again"),
                    (None, None) => {}
                }
                last_error = failure;
            }
        })
    }

    /// True when the database answers a trivial query (for `/healthz`).
    pub fn check_health(&self) -> bool {
        self.lock()
            .conn
            .query_row("SELECT count(*) FROM schema_version", [], |r| {
                r.get::<_, i64>(0)
            })
            .is_ok()
    }

    /// Runs `PRAGMA integrity_check` and `PRAGMA foreign_key_check`; the
    /// problems found (empty when the database is sound).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the checks cannot run.
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        let inner = self.lock();
        let mut problems = Vec::new();
        let mut stmt = inner.conn.prepare("PRAGMA integrity_check")?;
        for line in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let line = line?;
            if line != "ok" {
                problems.push(line);
            }
        }
        let mut stmt = inner.conn.prepare("PRAGMA foreign_key_check")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let table: String = row.get(0)?;
            let parent: String = row.get(2)?;
            problems.push(format!("{table}: a row refers to a missing {parent} row"));
        }
        Ok(problems)
    }

    /// Runs `write` in one immediate transaction, reads the resulting policy
    /// back, validates it, commits, and publishes it; rolls back on any error.
    pub(crate) fn commit_with<F>(&self, write: F) -> Result<(), StoreError>
    where
        F: FnOnce(&Transaction<'_>) -> Result<(), StoreError>,
    {
        let mut inner = self.lock();
        let tx = inner
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        write(&tx)?;
        let policy = Policy::validate(rows::read_policy(&tx)?)?;
        tx.commit()?;
        // Published under the lock, so subscribers see commits in order.
        self.publish(policy);
        Ok(())
    }

    /// Runs `f` on the connection under the store's lock, for data that is
    /// not policy (tracking records, certificates): nothing is published.
    pub(crate) fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError>,
    {
        f(&mut self.lock().conn)
    }

    /// The sync state of the store's connection.
    pub(crate) fn sync_state(&self) -> &Arc<SyncState> {
        &self.sync
    }

    /// Publishes `policy` when it differs from the current one.
    pub(crate) fn publish(&self, policy: Policy) -> bool {
        self.published.send_if_modified(|current| {
            if **current == policy {
                false
            } else {
                *current = Arc::new(policy);
                true
            }
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock rolled its transaction back on
        // unwind, so the connection is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Reads and validates the policy as one snapshot.
fn load(conn: &mut Connection) -> Result<Policy, StoreError> {
    let tx = conn.transaction()?;
    let raw = rows::read_policy(&tx)?;
    tx.commit()?;
    Ok(Policy::validate(raw)?)
}

fn data_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.pragma_query_value(None, "data_version", |r| r.get(0))?)
}

/// Creates `dir` (and parents) with mode 0700 when it does not exist.
fn create_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| StoreError::Io {
        path: dir.to_path_buf(),
        source,
    })
}
