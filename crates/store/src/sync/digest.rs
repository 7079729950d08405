//! Digests for anti-entropy and comparison: a SHA-256 per synced table over
//! its live log entries, and a canonical dump of every synced table's
//! content.
//!
//! The digest covers `(pk, hlc, node)` of the live entries only: two boxes
//! whose live versions are equal hold equal rows, whether or not each has
//! collected its tombstones yet; a row deleted on one box and live on the
//! other still differs (one side has the entry, the other not).

use super::{quote, SYNCED_TABLES};
use crate::sync::changes::from_value_ref;
use crate::{Store, StoreError};
use ring::digest::{Context, SHA256};
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::fmt::Write as _;

impl Store {
    /// SHA-256 per synced table (every one, empty ones included) over its
    /// live log entries in key order, each fed as
    /// `len(pk) ‖ pk ‖ hlc ‖ node` (big-endian 64-bit numbers).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when SQLite fails.
    pub fn sync_digest(&self) -> Result<BTreeMap<String, [u8; 32]>, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction()?;
            let mut out = BTreeMap::new();
            for (table, _) in SYNCED_TABLES {
                out.insert((*table).to_string(), table_digest(&tx, table)?);
            }
            tx.commit()?;
            Ok(out)
        })
    }

    /// Every synced table's content as deterministic text: tables by name,
    /// rows by key, each row as `table {column=value, ...}` (columns by
    /// name) with values in
    /// Rust debug form. Only the shared `settings` keys are included. Two
    /// boxes that converged have byte-identical dumps.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when SQLite fails.
    pub fn canonical_dump(&self) -> Result<String, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction()?;
            let mut out = String::new();
            for (table, pk) in SYNCED_TABLES {
                dump_table(&tx, table, pk, &mut out)?;
            }
            tx.commit()?;
            Ok(out)
        })
    }
}

fn table_digest(conn: &Connection, table: &str) -> Result<[u8; 32], StoreError> {
    let mut ctx = Context::new(&SHA256);
    let mut stmt = conn.prepare_cached(
        "SELECT pk, hlc, node FROM sync_log WHERE tbl = ?1 AND deleted = 0 ORDER BY pk",
    )?;
    let mut rows = stmt.query([table])?;
    while let Some(r) = rows.next()? {
        let pk: String = r.get(0)?;
        let hlc: i64 = r.get(1)?;
        let node: i64 = r.get(2)?;
        ctx.update(&(pk.len() as u64).to_be_bytes());
        ctx.update(pk.as_bytes());
        ctx.update(&hlc.to_be_bytes());
        ctx.update(&node.to_be_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    Ok(out)
}

fn dump_table(
    conn: &Connection,
    table: &str,
    pk: &[&str],
    out: &mut String,
) -> Result<(), StoreError> {
    let filter = if table == "settings" {
        " WHERE key GLOB 'limits.*' OR key GLOB 'section.*'"
    } else {
        ""
    };
    let order: Vec<String> = pk.iter().map(|c| quote(c)).collect();
    let sql = format!(
        "SELECT * FROM {}{filter} ORDER BY {}",
        quote(table),
        order.join(", ")
    );
    let mut stmt = conn.prepare(&sql)?;
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let mut columns = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            columns.insert(name.as_str(), from_value_ref(r.get_ref(i)?)?);
        }
        let mut line = format!("{table} {{");
        for (i, (name, value)) in columns.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            // Writing to a String cannot fail.
            let _ = write!(line, "{sep}{name}={value:?}");
        }
        out.push_str(&line);
        out.push_str("}\n");
    }
    Ok(())
}
