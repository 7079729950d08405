//! Greylisting state in SQLite: the [`GreylistStore`] of
//! [`mxgate_filter::greylist`] over the `greylist_triplets` and
//! `greylist_clients` tables.
//!
//! The rows are shared filter state (to be synced with the peer), not
//! policy: nothing is published when they change and they are never
//! exported. Each check reads, decides and writes back in one `IMMEDIATE`
//! transaction, so two sessions racing on the same triplet see each other's
//! writes; [`Store::purge_greylist`] deletes what
//! [`Greylist::is_expired`] says has expired.

use crate::{Store, StoreError};
use ipnet::IpNet;
use mxgate_filter::greylist::{
    ClientEntry, Entry, Greylist, GreylistContext, GreylistDecision, GreylistStore, Triplet,
    TripletKey,
};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::cell::RefCell;

impl Store {
    /// Decides one greylisting attempt against the stored state and records
    /// it, in one transaction (nothing is written when SQLite fails).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when SQLite fails.
    pub fn greylist_check(
        &self,
        greylist: &Greylist,
        triplet: &Triplet<'_>,
        now_unix_s: u64,
        ctx: &GreylistContext<'_>,
    ) -> Result<GreylistDecision, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut rows = Rows {
                conn: &tx,
                error: RefCell::new(None),
            };
            let decision = greylist.check(&mut rows, triplet, now_unix_s, ctx);
            if let Some(e) = rows.error.into_inner() {
                // Dropping `tx` rolls back.
                return Err(e.into());
            }
            tx.commit()?;
            Ok(decision)
        })
    }

    /// Deletes expired greylisting rows (see [`Greylist::is_expired`]):
    /// passed triplets and client networks unseen for the lifetime, unpassed
    /// triplets older than the retry window. Returns the rows deleted.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when SQLite fails.
    pub fn purge_greylist(&self, now_unix_s: u64, greylist: &Greylist) -> Result<u64, StoreError> {
        let s = greylist.settings();
        let now = to_i64(now_unix_s);
        let lifetime = to_i64(s.lifetime.as_secs());
        let window = to_i64(s.retry_window.as_secs());
        self.with_conn(|conn| {
            let tx = conn.transaction()?;
            let mut n = tx.execute(
                "DELETE FROM greylist_triplets
                 WHERE (passed = 1 AND ?1 - last_seen > ?2)
                    OR (passed = 0 AND ?1 - first_seen > ?3)",
                params![now, lifetime, window],
            )?;
            n += tx.execute(
                "DELETE FROM greylist_clients WHERE ?1 - last_seen > ?2",
                params![now, lifetime],
            )?;
            tx.commit()?;
            Ok(n as u64)
        })
    }
}

/// The greylisting tables inside one transaction; the first SQLite error is
/// kept (the filter's store seam is infallible) and fails the check.
struct Rows<'c> {
    conn: &'c Connection,
    error: RefCell<Option<rusqlite::Error>>,
}

impl Rows<'_> {
    fn keep<T>(&self, r: rusqlite::Result<T>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.error.borrow_mut().get_or_insert(e);
                None
            }
        }
    }

    fn failed(&self) -> bool {
        self.error.borrow().is_some()
    }
}

impl GreylistStore for Rows<'_> {
    fn get(&self, key: &TripletKey) -> Option<Entry> {
        let row = self.conn.prepare_cached(
            "SELECT first_seen, last_seen, passed FROM greylist_triplets WHERE key = ?1",
        );
        let row = row.and_then(|mut stmt| {
            stmt.query_row([key.to_string()], |r| {
                Ok(Entry {
                    first_seen: to_u64(r.get(0)?),
                    last_seen: to_u64(r.get(1)?),
                    passed: r.get::<_, i64>(2)? != 0,
                })
            })
            .optional()
        });
        self.keep(row).flatten()
    }

    fn put(&mut self, key: &TripletKey, entry: Entry) {
        if self.failed() {
            return;
        }
        // Cached: preparing compiles the change-log triggers too.
        let r = self
            .conn
            .prepare_cached(
                "INSERT INTO greylist_triplets (key, first_seen, last_seen, passed)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET first_seen = excluded.first_seen,
                     last_seen = excluded.last_seen, passed = excluded.passed",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    key.to_string(),
                    to_i64(entry.first_seen),
                    to_i64(entry.last_seen),
                    i64::from(entry.passed)
                ])
            });
        self.keep(r);
    }

    fn get_client(&self, net: &IpNet) -> Option<ClientEntry> {
        let row = self
            .conn
            .prepare_cached("SELECT passed, last_seen FROM greylist_clients WHERE net = ?1");
        let row = row.and_then(|mut stmt| {
            stmt.query_row([net.to_string()], |r| {
                Ok(ClientEntry {
                    passed: u32::try_from(r.get::<_, i64>(0)?).unwrap_or(u32::MAX),
                    last_seen: to_u64(r.get(1)?),
                })
            })
            .optional()
        });
        self.keep(row).flatten()
    }

    fn put_client(&mut self, net: &IpNet, entry: ClientEntry) {
        if self.failed() {
            return;
        }
        let r = self
            .conn
            .prepare_cached(
                "INSERT INTO greylist_clients (net, passed, last_seen) VALUES (?1, ?2, ?3)
                 ON CONFLICT (net) DO UPDATE SET passed = excluded.passed,
                     last_seen = excluded.last_seen",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    net.to_string(),
                    i64::from(entry.passed),
                    to_i64(entry.last_seen)
                ])
            });
        self.keep(r);
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxgate_filter::greylist::{GreylistSettings, PassReason, SkipReason};
    use std::time::Duration;

    const T0: u64 = 1_800_000_000;

    fn greylist(auto_allow_after: u32) -> Greylist {
        Greylist::new(GreylistSettings {
            delay: Duration::from_secs(300),
            retry_window: Duration::from_secs(3_600),
            lifetime: Duration::from_secs(86_400),
            auto_allow_after,
            ..GreylistSettings::default()
        })
        .unwrap()
    }

    fn triplet(rcpt: &str) -> Triplet<'_> {
        Triplet {
            client: "192.0.2.10".parse().unwrap(),
            sender: "a@example.org",
            recipient: rcpt,
        }
    }

    fn count(store: &Store, table: &str) -> i64 {
        store
            .with_conn(|c| {
                Ok(c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
            })
            .unwrap()
    }

    #[test]
    fn defer_then_pass_then_known_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let g = greylist(5);
        let ctx = GreylistContext::default();
        {
            let store = Store::open(dir.path()).unwrap();
            let d = store.greylist_check(&g, &triplet("b@example.com"), T0, &ctx);
            assert_eq!(d.unwrap(), GreylistDecision::Defer { retry_after_s: 300 });
            let d = store.greylist_check(&g, &triplet("b@example.com"), T0 + 100, &ctx);
            assert_eq!(d.unwrap(), GreylistDecision::Defer { retry_after_s: 200 });
            // Another recipient is its own triplet.
            let d = store.greylist_check(&g, &triplet("c@example.com"), T0 + 100, &ctx);
            assert!(matches!(d.unwrap(), GreylistDecision::Defer { .. }));
            let d = store.greylist_check(&g, &triplet("B@Example.com"), T0 + 300, &ctx);
            assert_eq!(d.unwrap(), GreylistDecision::Pass(PassReason::Retried));
            assert_eq!(count(&store, "greylist_triplets"), 2);
            assert_eq!(count(&store, "greylist_clients"), 1);
        }
        let store = Store::open(dir.path()).unwrap();
        // Same /24, same sender and recipient: known.
        let other = Triplet {
            client: "192.0.2.77".parse().unwrap(),
            ..triplet("b@example.com")
        };
        let d = store.greylist_check(&g, &other, T0 + 400, &ctx);
        assert_eq!(d.unwrap(), GreylistDecision::Pass(PassReason::Known));
    }

    #[test]
    fn client_network_is_auto_allowed_after_enough_passes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let g = greylist(1);
        let ctx = GreylistContext::default();
        let t = triplet("b@example.com");
        store.greylist_check(&g, &t, T0, &ctx).unwrap();
        store.greylist_check(&g, &t, T0 + 300, &ctx).unwrap();
        let d = store.greylist_check(&g, &triplet("new@example.com"), T0 + 301, &ctx);
        assert_eq!(
            d.unwrap(),
            GreylistDecision::Skipped(SkipReason::AutoAllowed)
        );
    }

    #[test]
    fn purge_deletes_only_expired_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let g = greylist(5);
        let ctx = GreylistContext::default();
        // Passed at T0 + 300; unpassed first seen at T0 + 1000.
        store
            .greylist_check(&g, &triplet("p@example.com"), T0, &ctx)
            .unwrap();
        store
            .greylist_check(&g, &triplet("p@example.com"), T0 + 300, &ctx)
            .unwrap();
        store
            .greylist_check(&g, &triplet("u@example.com"), T0 + 1_000, &ctx)
            .unwrap();
        assert_eq!(store.purge_greylist(T0 + 4_600, &g).unwrap(), 0);
        // The unpassed one is past its retry window.
        assert_eq!(store.purge_greylist(T0 + 4_601, &g).unwrap(), 1);
        assert_eq!(count(&store, "greylist_triplets"), 1);
        // The passed triplet and its network expire a lifetime after last seen.
        assert_eq!(store.purge_greylist(T0 + 300 + 86_400, &g).unwrap(), 0);
        assert_eq!(store.purge_greylist(T0 + 301 + 86_400, &g).unwrap(), 2);
        assert_eq!(count(&store, "greylist_triplets"), 0);
        assert_eq!(count(&store, "greylist_clients"), 0);
    }

    #[test]
    fn a_failed_write_rolls_back_and_reports() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .with_conn(|c| Ok(c.execute_batch("DROP TABLE greylist_clients")?))
            .unwrap();
        let g = greylist(5);
        let err = store.greylist_check(
            &g,
            &triplet("b@example.com"),
            T0,
            &GreylistContext::default(),
        );
        assert!(matches!(err, Err(StoreError::Sqlite(_))), "{err:?}");
        assert_eq!(count(&store, "greylist_triplets"), 0);
    }
}
