//! Checks on a peer's batch before anything is written: the limits, the
//! tables, and each change against its table's columns and key.

use super::changes::{parse_pk, to_sql_value};
use super::{
    is_shared_setting, refuse_table, synced_pk, Batch, Change, SyncError, Value, MAX_BATCH_BYTES,
    MAX_BATCH_CHANGES,
};
use crate::StoreError;
use rusqlite::{params_from_iter, Connection};

/// Refuses a batch over [`MAX_BATCH_CHANGES`] or [`MAX_BATCH_BYTES`].
pub(super) fn check_limits(batch: &Batch) -> Result<(), SyncError> {
    let count = batch.changes.len();
    if count > MAX_BATCH_CHANGES {
        return Err(SyncError::TooManyChanges {
            count,
            max: MAX_BATCH_CHANGES,
        });
    }
    let bytes: usize = batch.changes.iter().map(Change::size).sum();
    if bytes > MAX_BATCH_BYTES {
        return Err(SyncError::TooLarge {
            bytes,
            max: MAX_BATCH_BYTES,
        });
    }
    Ok(())
}

/// What the apply needs to know about a synced table.
pub(super) struct TableInfo {
    pub(super) name: String,
    pub(super) pk: &'static [&'static str],
    /// Every column: name, declared type, NOT NULL.
    pub(super) columns: Vec<(String, String, bool)>,
    /// Column sets of the UNIQUE constraints other than the key.
    pub(super) uniques: Vec<Vec<String>>,
}

impl TableInfo {
    pub(super) fn read(conn: &Connection, table: &str, pk: &str) -> Result<TableInfo, StoreError> {
        if let Some(refusal) = refuse_table(table, pk) {
            return Err(refusal.into());
        }
        let key = synced_pk(table).unwrap_or(&[]);
        let mut stmt =
            conn.prepare_cached("SELECT name, type, \"notnull\" FROM pragma_table_info(?1)")?;
        let columns = stmt
            .query_map([table], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        if columns.is_empty() {
            return Err(SyncError::UnknownTable {
                table: table.to_string(),
            }
            .into());
        }
        let mut stmt = conn.prepare_cached(
            "SELECT name FROM pragma_index_list(?1) WHERE \"unique\" = 1 AND origin <> 'pk'",
        )?;
        let indexes = stmt
            .query_map([table], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut uniques = Vec::new();
        for index in indexes {
            let mut stmt =
                conn.prepare_cached("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?;
            let cols = stmt
                .query_map([&index], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            uniques.push(cols);
        }
        Ok(TableInfo {
            name: table.to_string(),
            pk: key,
            columns,
            uniques,
        })
    }
}

/// Checks one change against its table; returns its key values.
pub(super) fn check_change(
    conn: &Connection,
    info: &TableInfo,
    change: &Change,
) -> Result<Vec<Value>, StoreError> {
    let bad = |reason: String| -> StoreError { malformed(change, &reason).into() };
    // SQLite holds both as i64; a larger value would saturate, freezing
    // the clock or changing the writer's id.
    if i64::try_from(change.hlc.0).is_err() || i64::try_from(change.node.0).is_err() {
        return Err(bad(format!(
            "stamp {} or node {} does not fit in 63 bits",
            change.hlc.0, change.node.0
        )));
    }
    let key = parse_pk(&change.pk, info.pk.len()).ok_or_else(|| {
        bad(format!(
            "the key is not a JSON array of {} texts or integers",
            info.pk.len()
        ))
    })?;
    let sql = format!(
        "SELECT json_array({})",
        (1..=key.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let canonical: String = conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(key.iter().map(to_sql_value)), |r| r.get(0))?;
    if canonical != change.pk {
        return Err(bad(format!(
            "the key is not written as SQLite writes it ({canonical})"
        )));
    }
    if info.name == "settings" {
        let shared = matches!(&key[0], Value::Text(k) if is_shared_setting(k));
        if !shared {
            return Err(SyncError::NodeLocal {
                table: change.table.clone(),
                pk: change.pk.clone(),
            }
            .into());
        }
    }
    let Some(row) = &change.row else {
        return Ok(key);
    };
    if row.len() != info.columns.len() {
        return Err(bad(format!(
            "{} columns, the table has {}",
            row.len(),
            info.columns.len()
        )));
    }
    for (name, ty, not_null) in &info.columns {
        let value = row
            .get(name)
            .ok_or_else(|| bad(format!("column {name} is missing")))?;
        let fits = match value {
            Value::Null => !not_null,
            Value::Integer(_) => ty.eq_ignore_ascii_case("INTEGER"),
            Value::Text(_) => ty.eq_ignore_ascii_case("TEXT"),
            Value::Blob(_) => ty.eq_ignore_ascii_case("BLOB"),
        };
        if !fits {
            return Err(bad(format!("column {name} ({ty}) cannot hold {value:?}")));
        }
    }
    for (column, value) in info.pk.iter().zip(&key) {
        if row.get(*column) != Some(value) {
            return Err(bad(format!("column {column} differs from the key")));
        }
    }
    Ok(key)
}

pub(super) fn malformed(change: &Change, reason: &str) -> SyncError {
    SyncError::Malformed {
        table: change.table.clone(),
        pk: change.pk.clone(),
        reason: reason.to_string(),
    }
}
