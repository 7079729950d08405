//! The filter policy's rows: `[[list]]` and `[[rate_limit]]` in file order.

use crate::StoreError;
use mxgate_config::raw::{ListSection, RateLimitSection};
use rusqlite::{params, Connection};

/// Reads every list entry in file order.
pub(crate) fn read_lists(conn: &Connection) -> Result<Vec<ListSection>, StoreError> {
    let mut stmt = conn.prepare("SELECT action, kind, value FROM lists ORDER BY position")?;
    let rows = stmt.query_map([], |r| {
        let (action, kind, value): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        Ok(ListSection::with(&action, &kind, &value))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Reads every rate limit in file order.
pub(crate) fn read_rate_limits(conn: &Connection) -> Result<Vec<RateLimitSection>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT key, window_s, connections, messages, recipients, concurrency
         FROM rate_limits ORDER BY position",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(RateLimitSection {
            key: r.get(0)?,
            window_s: r.get(1)?,
            connections: r.get(2)?,
            messages: r.get(3)?,
            recipients: r.get(4)?,
            concurrency: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Replaces the lists and rate limits (inside the caller's transaction).
pub(crate) fn write_filters(
    conn: &Connection,
    lists: &[ListSection],
    rates: &[RateLimitSection],
) -> Result<(), StoreError> {
    conn.execute_batch("DELETE FROM lists; DELETE FROM rate_limits;")?;
    for (i, l) in lists.iter().enumerate() {
        for (kind, value) in l.matchers() {
            conn.execute(
                "INSERT INTO lists (position, action, kind, value) VALUES (?1, ?2, ?3, ?4)",
                params![i, l.action, kind, value],
            )?;
        }
    }
    for (i, r) in rates.iter().enumerate() {
        conn.execute(
            "INSERT INTO rate_limits (position, key, window_s, connections, messages, recipients,
                 concurrency)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                i,
                r.key,
                r.window_s,
                r.connections,
                r.messages,
                r.recipients,
                r.concurrency
            ],
        )?;
    }
    Ok(())
}
