//! The temporary allowlist in SQLite (`temp_allowlist`): clients that passed
//! the pregreet test and the DNSBL lookups, until a time. Shared filter
//! state (to be synced with the peer), not policy: nothing is published and
//! nothing is exported.

use crate::{Store, StoreError};
use rusqlite::{params, OptionalExtension};
use std::net::IpAddr;

impl Store {
    /// True when `client` is allowlisted after `now_unix_s`.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when SQLite fails.
    pub fn temp_allowlist_contains(
        &self,
        client: IpAddr,
        now_unix_s: i64,
    ) -> Result<bool, StoreError> {
        self.with_conn(|conn| {
            let until: Option<i64> = conn
                .query_row(
                    "SELECT until_unix FROM temp_allowlist WHERE client = ?1",
                    params![client.to_canonical().to_string()],
                    |row| row.get(0),
                )
                .optional()?;
            Ok(until.is_some_and(|u| u > now_unix_s))
        })
    }

    /// Allowlists `client` until `until_unix_s` (a later time already
    /// stored is kept).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when SQLite fails.
    pub fn temp_allowlist_add(&self, client: IpAddr, until_unix_s: i64) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            // Cached: preparing compiles the change-log triggers too.
            conn.prepare_cached(
                "INSERT INTO temp_allowlist (client, until_unix) VALUES (?1, ?2) \
                 ON CONFLICT (client) DO UPDATE SET until_unix = MAX(until_unix, excluded.until_unix)",
            )?
            .execute(params![client.to_canonical().to_string(), until_unix_s])?;
            Ok(())
        })
    }

    /// Deletes the entries expired at `now_unix_s`; returns how many.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when SQLite fails.
    pub fn purge_temp_allowlist(&self, now_unix_s: i64) -> Result<usize, StoreError> {
        self.with_conn(|conn| {
            Ok(conn.execute(
                "DELETE FROM temp_allowlist WHERE until_unix <= ?1",
                params![now_unix_s],
            )?)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::Store;
    use std::net::IpAddr;

    #[test]
    fn entries_expire_and_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(!store.temp_allowlist_contains(ip, 100).unwrap());
        store.temp_allowlist_add(ip, 200).unwrap();
        store.temp_allowlist_add(ip, 150).unwrap();
        assert!(store.temp_allowlist_contains(ip, 199).unwrap());
        assert!(!store.temp_allowlist_contains(ip, 200).unwrap());
        assert_eq!(store.purge_temp_allowlist(199).unwrap(), 0);
        assert_eq!(store.purge_temp_allowlist(200).unwrap(), 1);
    }
}
