//! The filter policy's rows: `[[list]]` and `[[rate_limit]]` in file order,
//! and `[screen]`, `[greylist]` and `[auth]` as TOML text in `settings`.

use crate::StoreError;
use mxgate_config::raw::{
    AuthSection, GreylistSection, ListSection, RateLimitSection, ScreenSection,
};
use rusqlite::{params, Connection, OptionalExtension};

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

/// Reads `[screen]`, `[greylist]` and `[auth]` (defaults when never stored).
pub(crate) fn read_sections(
    conn: &Connection,
) -> Result<(ScreenSection, GreylistSection, AuthSection), StoreError> {
    Ok((
        read_section(conn, SCREEN)?,
        read_section(conn, GREYLIST)?,
        read_section(conn, AUTH)?,
    ))
}

/// Stores `[screen]`, `[greylist]` and `[auth]` (inside the caller's
/// transaction).
pub(crate) fn write_sections(
    conn: &Connection,
    screen: &ScreenSection,
    greylist: &GreylistSection,
    auth: &AuthSection,
) -> Result<(), StoreError> {
    write_section(conn, SCREEN, screen)?;
    write_section(conn, GREYLIST, greylist)?;
    write_section(conn, AUTH, auth)
}

const SCREEN: &str = "section.screen";
const GREYLIST: &str = "section.greylist";
const AUTH: &str = "section.auth";

fn read_section<T: serde::de::DeserializeOwned + Default>(
    conn: &Connection,
    key: &str,
) -> Result<T, StoreError> {
    let text: Option<String> = conn
        .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(text) = text else {
        return Ok(T::default());
    };
    toml::from_str(&text).map_err(|e| {
        let mut errors = mxgate_config::Errors::default();
        errors.push(key, format!("stored value is not valid: {}", e.message()));
        StoreError::Invalid(errors)
    })
}

fn write_section<T: serde::Serialize>(
    conn: &Connection,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    let text = toml::to_string(value).map_err(|e| {
        let mut errors = mxgate_config::Errors::default();
        errors.push(key, format!("cannot be stored: {e}"));
        StoreError::Invalid(errors)
    })?;
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, text],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::Store;
    use mxgate_config::{Policy, SpfMode};

    #[test]
    fn auth_section_round_trips_and_defaults_when_never_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.policy().unwrap().spf_mode(), SpfMode::Off);
        let policy = Policy::parse("[auth]\nspf = \"reject\"\ndkim = \"off\"\n").unwrap();
        store.replace_policy(&policy).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let back = store.policy().unwrap();
        assert_eq!(back, policy);
        assert_eq!(back.spf_mode(), SpfMode::Reject);
        let conn = rusqlite::Connection::open(store.path()).unwrap();
        let text: String = conn
            .query_row(
                "SELECT value FROM settings WHERE key = 'section.auth'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(text.contains("spf = \"reject\""), "{text}");
    }
}
