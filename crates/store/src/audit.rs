//! The audit log (`audit_log`, node-local): who changed what through the
//! web UI or API, and when; newest first, bounded to [`AUDIT_KEEP`] rows.

use crate::tracking::now_unix_ms;
use crate::{Store, StoreError};
use rusqlite::params;
use serde::Serialize;

/// Rows kept; older ones are dropped as new ones are written.
pub const AUDIT_KEEP: i64 = 100_000;

/// One audited change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Position in the log (increasing).
    pub id: i64,
    /// When (Unix milliseconds).
    pub time_unix_ms: i64,
    /// Who (a user name).
    pub user: String,
    /// What kind of change (`server.add`, `user.remove`, ...).
    pub action: String,
    /// What it was done to (`mta/mta1`, a user name).
    pub target: String,
    /// The change's details (the new values).
    pub detail: serde_json::Value,
}

impl Store {
    /// Appends an entry to the audit log.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the write fails.
    pub fn audit(
        &self,
        user: &str,
        action: &str,
        target: &str,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO audit_log (time_unix_ms, user, action, target, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![now_unix_ms(), user, action, target, detail.to_string()],
            )?;
            tx.execute(
                "DELETE FROM audit_log WHERE id <= (SELECT max(id) FROM audit_log) - ?1",
                [AUDIT_KEEP],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    /// The newest `limit` entries, newest first.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the query fails.
    pub fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, time_unix_ms, user, action, target, detail FROM audit_log
                 ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit], |r| {
                let detail: String = r.get(5)?;
                Ok(AuditEntry {
                    id: r.get(0)?,
                    time_unix_ms: r.get(1)?,
                    user: r.get(2)?,
                    action: r.get(3)?,
                    target: r.get(4)?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}
