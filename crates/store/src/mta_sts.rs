//! The MTA-STS policy the web UI serves at `/.well-known/mta-sts.txt`: one
//! shared setting (`section.mta_sts`, JSON text chosen and validated by the
//! web side), so both boxes of a pair serve the same policy and an edit on
//! either syncs to the other. A policy import does not touch it.

use crate::{Store, StoreError};
use rusqlite::{params, OptionalExtension};

/// The `settings` key of the MTA-STS policy (a shared key: it syncs).
pub const MTA_STS_KEY: &str = "section.mta_sts";

impl Store {
    /// The stored MTA-STS setting (JSON text), `None` when none is set.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the query fails.
    pub fn mta_sts_setting(&self) -> Result<Option<String>, StoreError> {
        self.with_conn(|conn| {
            Ok(conn
                .query_row(
                    "SELECT value FROM settings WHERE key = ?1",
                    [MTA_STS_KEY],
                    |r| r.get(0),
                )
                .optional()?)
        })
    }

    /// Stores the MTA-STS setting (`json`, already validated by the
    /// caller), replacing the previous one; the change is logged for peer
    /// sync in the same write.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the write fails.
    pub fn set_mta_sts_setting(&self, json: &str) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![MTA_STS_KEY, json],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::is_shared_setting;

    #[test]
    fn the_setting_round_trips_survives_an_import_and_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.mta_sts_setting().unwrap(), None);
        assert!(is_shared_setting(MTA_STS_KEY));
        let before = store.sync_changes_since(0, 1000).unwrap().last_seq;
        store.set_mta_sts_setting(r#"{"mode":"testing"}"#).unwrap();
        store.set_mta_sts_setting(r#"{"mode":"enforce"}"#).unwrap();
        let logged = store.sync_changes_since(before, 1000).unwrap();
        assert!(
            logged
                .changes
                .iter()
                .any(|c| c.table == "settings" && c.pk == format!("[\"{MTA_STS_KEY}\"]")),
            "{logged:?}"
        );
        store
            .replace_policy(&mxgate_config::Policy::parse("").unwrap())
            .unwrap();
        assert_eq!(
            store.mta_sts_setting().unwrap().as_deref(),
            Some(r#"{"mode":"enforce"}"#)
        );
    }
}
