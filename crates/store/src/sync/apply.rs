//! Applying a peer's batch: check everything, then merge by last writer wins
//! per row in one transaction, then publish the merged policy.
//!
//! How the remote stamps get into the log: while a batch is applied the
//! store's [`SyncState`](super::SyncState) is in "applying" mode, in which
//! `mxgate_sync_local()` returns 0 and the triggers log nothing; the apply
//! writes each winning version's log row itself, with the remote `(hlc,
//! node)` and a new local log position (so it is pushed on to other peers).
//!
//! Foreign keys are off during the apply: the merge is per row, so a server
//! may arrive before its pool, and deleting a pool must not cascade to
//! servers whose own versions say otherwise (the log and the tables would
//! disagree). A merge can therefore leave cross-row inconsistencies (a
//! server of a deleted pool, a listener naming a missing pool); the merged
//! policy then does not validate, is not published (services keep the last
//! good one) and is reported in [`ApplyReport::invalid_policy`]. UNIQUE
//! constraints beside the key (a listener's `bind`, a list entry's kind and
//! value) are resolved by the same rule: of two rows claiming the same
//! value, the older version is deleted, its tombstone carrying the newer
//! row's stamp.

use super::changes::{from_sql, from_value_ref, node_id, to_sql, to_sql_value};
use super::check::{check_change, check_limits, malformed, TableInfo};
use super::hlc::skew_ms;
use super::{pk_where, quote, Batch, Change, Hlc, NodeId, Row, SyncState, Value, SKEW_WARN_MS};
use crate::{rows, Store, StoreError};
use mxgate_config::Policy;
use rusqlite::{params, params_from_iter, Connection, ErrorCode, OptionalExtension};
use rusqlite::{Transaction, TransactionBehavior};
use std::collections::{HashMap, HashSet};
use tracing::{error, warn};

/// What [`Store::apply_remote`] did with a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApplyReport {
    /// Changes that won and were written.
    pub applied: usize,
    /// Changes not newer than the local version (already seen, or lost).
    pub skipped_older: usize,
    /// Conflicts resolved: changes (won or lost) to a row whose local
    /// version is this node's own write that the sender had not yet
    /// acknowledged, so that neither side had seen the other's version; and
    /// rows displaced by a UNIQUE collision. With acknowledgements flowing,
    /// a concurrent edit of one row counts once, on the box that received
    /// the other's version first (an acknowledgement still in flight can
    /// count it twice).
    pub conflicts: usize,
    /// True when the merged policy differs from the published one and was
    /// published.
    pub published: bool,
    /// The validation errors when the merged policy does not validate (it
    /// is kept in the store but not published).
    pub invalid_policy: Option<String>,
}

/// Tables whose rows are not part of the policy: changing them publishes
/// nothing.
const STATE_TABLES: &[&str] = &[
    "certificates",
    "greylist_clients",
    "greylist_triplets",
    "temp_allowlist",
];

impl Store {
    /// Merges a peer's batch: each change whose `(hlc, node)` is greater
    /// than the local version of its row replaces it (row and log entry,
    /// keeping the remote stamp); older ones are skipped. All in one
    /// transaction, then the clock moves past every remote stamp, the
    /// largest skew is recorded, and the merged policy is published.
    ///
    /// # Errors
    /// [`SyncError`](super::SyncError) (in [`StoreError::Sync`]) for a batch over the limits,
    /// an unknown or node-local table or setting, a malformed change or a
    /// row the table's constraints refuse; [`StoreError::Sqlite`] when
    /// SQLite fails. In every error case nothing was applied.
    pub fn apply_remote(&self, batch: &Batch) -> Result<ApplyReport, StoreError> {
        check_limits(batch)?;
        let now = self.sync_state().now_ms();
        for change in &batch.changes {
            let skew = skew_ms(change.hlc, now);
            self.sync_state().record_skew(skew);
            if skew > SKEW_WARN_MS {
                warn!(
                    skew_ms = skew,
                    node = change.node.0,
                    "sync: the peer's clock is ahead of ours"
                );
            }
        }
        self.with_conn(|conn| {
            // Only outside a transaction does this pragma take effect.
            conn.pragma_update(None, "foreign_keys", false)?;
            let applying = Applying::start(self.sync_state());
            let result = apply(conn, batch);
            drop(applying);
            conn.pragma_update(None, "foreign_keys", true)?;
            let (mut report, policy) = result?;
            match policy {
                Some(Ok(policy)) => report.published = self.publish(policy),
                Some(Err(errors)) => {
                    error!(%errors, "sync: the merged policy is not valid; keeping the last good one");
                    report.invalid_policy = Some(errors.to_string());
                }
                None => {}
            }
            Ok(report)
        })
    }
}

/// The store in "applying" mode for as long as it lives, even through a
/// panic: a flag left set would leave later local writes unlogged.
struct Applying<'a>(&'a SyncState);

impl<'a> Applying<'a> {
    fn start(state: &'a SyncState) -> Applying<'a> {
        state.set_applying(true);
        Applying(state)
    }
}

impl Drop for Applying<'_> {
    fn drop(&mut self) {
        self.0.set_applying(false);
    }
}

type Merged = (ApplyReport, Option<Result<Policy, mxgate_config::Errors>>);

/// The whole merge in one transaction (rolled back on any error).
fn apply(conn: &mut Connection, batch: &Batch) -> Result<Merged, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut tables = HashMap::new();
    let mut seen = HashSet::new();
    let mut keys = Vec::with_capacity(batch.changes.len());
    for change in &batch.changes {
        let info = match tables.entry(change.table.as_str()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(TableInfo::read(&tx, &change.table, &change.pk)?)
            }
        };
        keys.push(check_change(&tx, info, change)?);
        if !seen.insert((change.table.as_str(), change.pk.as_str())) {
            return Err(malformed(change, "the same row twice in one batch").into());
        }
    }

    let mut report = ApplyReport::default();
    let me = node_id(&tx)?;
    // How far the sender has acknowledged our log (0: nothing).
    let acked: i64 = tx
        .query_row(
            "SELECT acked_seq FROM sync_peers WHERE node = ?1",
            [to_sql(batch.from.0)],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let mut winners = Vec::new();
    for (change, key) in batch.changes.iter().zip(keys) {
        let local = logged_at(&tx, &change.table, &change.pk)?;
        if let Some((_, node, seq)) = local {
            if node == me && change.node != me && seq > acked {
                report.conflicts += 1;
            }
        }
        match local {
            Some((hlc, node, _)) if (hlc, node) >= (change.hlc, change.node) => {
                report.skipped_older += 1;
            }
            _ => winners.push((change, key)),
        }
    }
    // Old rows out first, so that rows trading a unique value within the
    // batch do not collide on the way.
    for (change, key) in &winners {
        let info = &tables[change.table.as_str()];
        delete_row(&tx, info, key)?;
    }
    winners.sort_by(|a, b| {
        (a.0.hlc, a.0.node, &a.0.table, &a.0.pk).cmp(&(b.0.hlc, b.0.node, &b.0.table, &b.0.pk))
    });
    let mut policy_touched = false;
    for (change, _) in &winners {
        let info = &tables[change.table.as_str()];
        let (mut stamp, mut deleted) = ((change.hlc, change.node), change.row.is_none());
        if let Some(row) = &change.row {
            if let Some(newer) = insert_row(&tx, info, change, row, &mut report)? {
                // Lost a UNIQUE collision to a newer row: a tombstone that
                // beats this version wherever it is.
                (stamp, deleted) = (newer, true);
            }
        }
        write_log(&tx, &change.table, &change.pk, stamp, deleted)?;
        policy_touched |= !STATE_TABLES.contains(&change.table.as_str());
        report.applied += 1;
    }
    if let Some(max) = batch.changes.iter().map(|c| c.hlc).max() {
        tx.execute("UPDATE sync_node SET hlc = max(hlc, ?1)", [max.to_sql()])?;
    }
    let policy = if policy_touched {
        match rows::read_policy(&tx).and_then(|raw| Ok(Policy::validate(raw)?)) {
            Ok(p) => Some(Ok(p)),
            Err(StoreError::Invalid(errors)) => Some(Err(errors)),
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    tx.commit()?;
    Ok((report, policy))
}

/// The logged version of a row: `(hlc, node)`.
fn logged(conn: &Connection, table: &str, pk: &str) -> Result<Option<(Hlc, NodeId)>, StoreError> {
    Ok(logged_at(conn, table, pk)?.map(|(hlc, node, _)| (hlc, node)))
}

/// The logged version of a row and its log position: `(hlc, node, seq)`.
fn logged_at(
    conn: &Connection,
    table: &str,
    pk: &str,
) -> Result<Option<(Hlc, NodeId, i64)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT hlc, node, seq FROM sync_log WHERE tbl = ?1 AND pk = ?2")?
        .query_row([table, pk], |r| {
            Ok((
                Hlc::from_sql(r.get(0)?),
                NodeId(from_sql(r.get(1)?)),
                r.get(2)?,
            ))
        })
        .optional()?)
}

fn delete_row(conn: &Connection, info: &TableInfo, key: &[Value]) -> Result<(), StoreError> {
    let sql = format!(
        "DELETE FROM {} WHERE {}",
        quote(&info.name),
        pk_where(info.pk)
    );
    conn.prepare_cached(&sql)?
        .execute(params_from_iter(key.iter().map(to_sql_value)))?;
    Ok(())
}

/// Inserts a winning row, resolving UNIQUE collisions with other rows by
/// last writer wins. Returns the newer stamp it lost to, if it lost.
fn insert_row(
    tx: &Transaction<'_>,
    info: &TableInfo,
    change: &Change,
    row: &Row,
    report: &mut ApplyReport,
) -> Result<Option<(Hlc, NodeId)>, StoreError> {
    let names: Vec<String> = info.columns.iter().map(|c| quote(&c.0)).collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({})",
        quote(&info.name),
        names.join(", "),
        (1..=names.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let values: Vec<_> = info
        .columns
        .iter()
        .map(|c| to_sql_value(&row[&c.0]))
        .collect();
    // Each round removes one colliding row, so this ends.
    for _ in 0..=info.uniques.len() {
        let err = match tx.prepare_cached(&sql)?.execute(params_from_iter(&values)) {
            Ok(_) => return Ok(None),
            Err(e) => e,
        };
        if err.sqlite_error_code() != Some(ErrorCode::ConstraintViolation) {
            return Err(err.into());
        }
        let Some((other_pk, other_key)) = colliding(tx, info, row)? else {
            return Err(malformed(change, &format!("refused by the table: {err}")).into());
        };
        report.conflicts += 1;
        let mine = (change.hlc, change.node, change.pk.as_str());
        let theirs = logged(tx, &info.name, &other_pk)?.unwrap_or_default();
        if (theirs.0, theirs.1, other_pk.as_str()) > mine {
            return Ok(Some(theirs));
        }
        delete_row(tx, info, &other_key)?;
        write_log(tx, &info.name, &other_pk, (change.hlc, change.node), true)?;
    }
    Err(malformed(change, "collides with too many rows").into())
}

/// Another row holding one of `row`'s UNIQUE values: its log key and key
/// values.
fn colliding(
    conn: &Connection,
    info: &TableInfo,
    row: &Row,
) -> Result<Option<(String, Vec<Value>)>, StoreError> {
    let key_cols: Vec<String> = info.pk.iter().map(|c| quote(c)).collect();
    for unique in &info.uniques {
        let cols: Vec<&str> = unique.iter().map(String::as_str).collect();
        let sql = format!(
            "SELECT json_array({}), {} FROM {} WHERE {}",
            key_cols.join(", "),
            key_cols.join(", "),
            quote(&info.name),
            pk_where(&cols)
        );
        let values = unique.iter().map(|c| to_sql_value(&row[c]));
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(values))?;
        if let Some(r) = rows.next()? {
            let pk: String = r.get(0)?;
            let key = (1..=info.pk.len())
                .map(|i| from_value_ref(r.get_ref(i)?))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Some((pk, key)));
        }
    }
    Ok(None)
}

/// Writes a row's log entry with the given stamp and the next position.
fn write_log(
    conn: &Connection,
    table: &str,
    pk: &str,
    (hlc, node): (Hlc, NodeId),
    deleted: bool,
) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE sync_node SET seq = seq + 1")?
        .execute([])?;
    conn.prepare_cached(
        "INSERT INTO sync_log (tbl, pk, hlc, node, deleted, seq)
         SELECT ?1, ?2, ?3, ?4, ?5, seq FROM sync_node WHERE true
         ON CONFLICT (tbl, pk) DO UPDATE SET hlc = excluded.hlc, node = excluded.node,
             deleted = excluded.deleted, seq = excluded.seq",
    )?
    .execute(params![table, pk, hlc.to_sql(), to_sql(node.0), deleted])?;
    Ok(())
}
