//! Reading the change log: this node's id, batches of changes in log order
//! with their rows, acknowledgements by peers and the collection of
//! acknowledged tombstones.

use super::{pk_where, quote, synced_pk, Batch, Change, Hlc, NodeId, Row, SyncError, Value};
use super::{MAX_BATCH_BYTES, MAX_BATCH_CHANGES};
use crate::{Store, StoreError};
use rusqlite::types::ValueRef;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

/// A tombstone is collected after this long even when no peer acknowledged
/// it (7 days): a peer away for longer needs a full resync (anti-entropy).
pub const TOMBSTONE_MAX_AGE_MS: u64 = 7 * 24 * 3600 * 1000;

/// At most this many tombstones are kept; the oldest (by log position) go
/// first, acknowledged or not.
pub const MAX_TOMBSTONES: u64 = 1_000_000;

impl Store {
    /// This node's id in the change log.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when SQLite fails.
    pub fn sync_node_id(&self) -> Result<NodeId, StoreError> {
        self.with_conn(|conn| node_id(conn))
    }

    /// Draws a new random node id for this store (its later writes carry
    /// it); returns it. For a database copied from the peer (a restored
    /// backup): two boxes with one id would make ties ambiguous. Versions
    /// already logged keep their stamps.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when SQLite fails.
    pub fn sync_redraw_node_id(&self) -> Result<NodeId, StoreError> {
        self.with_conn(|conn| {
            let old = node_id(conn)?;
            loop {
                conn.execute(
                    "UPDATE sync_node SET node = random() & 9223372036854775807",
                    [],
                )?;
                let new = node_id(conn)?;
                if new != old {
                    return Ok(new);
                }
            }
        })
    }

    /// The latest version of every row logged after log position
    /// `after_seq` (0 for everything), oldest position first: at most
    /// `limit` changes (capped at [`MAX_BATCH_CHANGES`]) and about
    /// [`MAX_BATCH_BYTES`] (a first change larger than that is sent
    /// alone). Rows are read in the same snapshot as the log.
    ///
    /// The cursor is the local log position, not the HLC: a version
    /// received from a peer (or relayed from a third box) carries an old
    /// stamp but a new position, so it is still pushed to the others.
    ///
    /// # Errors
    /// [`SyncError::LogOutOfStep`] when the log names a live row that is
    /// missing; [`StoreError::Sqlite`] when SQLite fails.
    pub fn sync_changes_since(&self, after_seq: u64, limit: usize) -> Result<Batch, StoreError> {
        let limit = limit.clamp(1, MAX_BATCH_CHANGES);
        self.with_conn(|conn| {
            let tx = conn.transaction()?;
            let mut batch = Batch {
                from: node_id(&tx)?,
                last_seq: after_seq,
                ..Batch::default()
            };
            let mut bytes = 0;
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT tbl, pk, hlc, node, deleted, seq FROM sync_log
                     WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )?;
                // One more than asked, to know whether more follow.
                let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
                let mut rows = stmt.query(params![to_sql(after_seq), fetch])?;
                while let Some(r) = rows.next()? {
                    if batch.changes.len() == limit {
                        batch.more = true;
                        break;
                    }
                    let table: String = r.get(0)?;
                    let pk: String = r.get(1)?;
                    let deleted: bool = r.get(4)?;
                    let row = if deleted {
                        None
                    } else {
                        Some(read_logged_row(&tx, &table, &pk)?)
                    };
                    let change = Change {
                        table,
                        pk,
                        hlc: Hlc::from_sql(r.get(2)?),
                        node: NodeId(from_sql(r.get(3)?)),
                        row,
                    };
                    bytes += change.size();
                    if bytes > MAX_BATCH_BYTES && !batch.changes.is_empty() {
                        batch.more = true;
                        break;
                    }
                    batch.last_seq = from_sql(r.get(5)?);
                    batch.changes.push(change);
                }
            }
            tx.commit()?;
            Ok(batch)
        })
    }

    /// Records that `peer` has applied every change of this log up to
    /// position `up_to_seq` (an older acknowledgement never moves it back).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when SQLite fails.
    pub fn sync_ack(&self, peer: NodeId, up_to_seq: u64) -> Result<(), StoreError> {
        let now = self.sync_state().now_ms();
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO sync_peers (node, acked_seq, acked_unix_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (node) DO UPDATE SET
                     acked_seq = max(acked_seq, excluded.acked_seq),
                     acked_unix_ms = excluded.acked_unix_ms",
                params![to_sql(peer.0), to_sql(up_to_seq), to_sql(now)],
            )?;
            Ok(())
        })
    }

    /// Log entries `peer` has not acknowledged yet (for
    /// `mxgate_sync_pending_changes`).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when SQLite fails.
    pub fn sync_pending(&self, peer: NodeId) -> Result<u64, StoreError> {
        self.with_conn(|conn| {
            let n: i64 = conn.query_row(
                "SELECT count(*) FROM sync_log WHERE seq > ?1",
                [acked_seq(conn, peer)?],
                |r| r.get(0),
            )?;
            Ok(from_sql(n))
        })
    }

    /// The log position `peer` has acknowledged (0 when it never did): where
    /// a reconnecting sender resumes.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when SQLite fails.
    pub fn sync_peer_acked(&self, peer: NodeId) -> Result<u64, StoreError> {
        self.with_conn(|conn| Ok(from_sql(acked_seq(conn, peer)?)))
    }

    /// Deletes the tombstones every known peer has acknowledged; and,
    /// whatever the peers acknowledged, tombstones older than
    /// [`TOMBSTONE_MAX_AGE_MS`] and the oldest beyond [`MAX_TOMBSTONES`].
    /// With no peer known, only those bounds apply. Returns how many were
    /// deleted.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when SQLite fails.
    pub fn collect_tombstones(&self) -> Result<u64, StoreError> {
        let now = self.sync_state().now_ms();
        let too_old = Hlc::new(now.saturating_sub(TOMBSTONE_MAX_AGE_MS), 0);
        self.with_conn(|conn| {
            let tx = conn.transaction()?;
            // min() over no rows is NULL: nothing is acknowledged.
            let acked: Option<i64> =
                tx.query_row("SELECT min(acked_seq) FROM sync_peers", [], |r| r.get(0))?;
            let mut n = tx.execute(
                "DELETE FROM sync_log WHERE deleted = 1 AND (seq <= ?1 OR hlc < ?2)",
                params![acked.unwrap_or(0), too_old.to_sql()],
            )?;
            n += tx.execute(
                "DELETE FROM sync_log WHERE deleted = 1 AND seq <= (
                     SELECT seq FROM sync_log WHERE deleted = 1
                     ORDER BY seq DESC LIMIT 1 OFFSET ?1)",
                [to_sql(MAX_TOMBSTONES)],
            )?;
            tx.commit()?;
            Ok(n as u64)
        })
    }

    /// The largest skew seen in a remote stamp since the store was opened:
    /// the remote physical time minus the local wall clock when it arrived,
    /// in milliseconds (positive: the peer's clock is ahead; an old change
    /// counts as a negative skew). `None` before any remote change.
    pub fn sync_max_skew_ms(&self) -> Option<i64> {
        self.sync_state().max_skew_ms()
    }
}

/// The log position `peer` acknowledged, 0 when it never did.
fn acked_seq(conn: &Connection, peer: NodeId) -> rusqlite::Result<i64> {
    let acked: Option<i64> = conn
        .query_row(
            "SELECT acked_seq FROM sync_peers WHERE node = ?1",
            [to_sql(peer.0)],
            |r| r.get(0),
        )
        .optional()?;
    Ok(acked.unwrap_or(0))
}

/// This node's id, from `sync_node`.
pub(crate) fn node_id(conn: &Connection) -> Result<NodeId, StoreError> {
    let id: i64 = conn.query_row("SELECT node FROM sync_node", [], |r| r.get(0))?;
    Ok(NodeId(from_sql(id)))
}

/// The row a live log entry names.
fn read_logged_row(conn: &Connection, table: &str, pk: &str) -> Result<Row, StoreError> {
    let out_of_step = || SyncError::LogOutOfStep {
        table: table.to_string(),
        pk: pk.to_string(),
    };
    let columns = synced_pk(table).ok_or_else(out_of_step)?;
    let key = parse_pk(pk, columns.len()).ok_or_else(out_of_step)?;
    read_row(conn, table, columns, &key)?.ok_or_else(|| out_of_step().into())
}

/// The row of `table` with key `key` (values of the `pk` columns).
pub(crate) fn read_row(
    conn: &Connection,
    table: &str,
    pk: &[&str],
    key: &[Value],
) -> Result<Option<Row>, StoreError> {
    let sql = format!("SELECT * FROM {} WHERE {}", quote(table), pk_where(pk));
    let mut stmt = conn.prepare_cached(&sql)?;
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let mut rows = stmt.query(params_from_iter(key.iter().map(to_sql_value)))?;
    let Some(r) = rows.next()? else {
        return Ok(None);
    };
    let mut row = Row::new();
    for (i, name) in names.into_iter().enumerate() {
        row.insert(name, from_value_ref(r.get_ref(i)?)?);
    }
    Ok(Some(row))
}

/// A value read from SQLite (the synced tables hold no floats; one found
/// is an error).
pub(crate) fn from_value_ref(v: ValueRef<'_>) -> Result<Value, StoreError> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        ValueRef::Real(_) => {
            return Err(rusqlite::Error::InvalidColumnType(
                0,
                "a synced column".to_string(),
                rusqlite::types::Type::Real,
            )
            .into())
        }
    })
}

/// A value to bind.
pub(crate) fn to_sql_value(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        Value::Null => V::Null,
        Value::Integer(i) => V::Integer(*i),
        Value::Text(s) => V::Text(s.clone()),
        Value::Blob(b) => V::Blob(b.clone()),
    }
}

/// The key values of a log `pk` (a JSON array of `n` texts or integers).
pub(crate) fn parse_pk(pk: &str, n: usize) -> Option<Vec<Value>> {
    let items: Vec<serde_json::Value> = serde_json::from_str(pk).ok()?;
    if items.len() != n {
        return None;
    }
    items
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Some(Value::Text(s)),
            serde_json::Value::Number(n) => n.as_i64().map(Value::Integer),
            _ => None,
        })
        .collect()
}

pub(crate) fn to_sql(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn from_sql(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
