//! Sync tests with two stores in temp dirs and fake clocks: what is logged,
//! shipping changes, the merge rule, skew, refusals, tombstones, backfill.

use super::{Clock, Hlc, NodeId};
use crate::Store;
use mxgate_config::{Policy, ServerState};
use mxgate_filter::greylist::{Greylist, GreylistContext, GreylistSettings, Triplet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// 2027-01-15 08:00:00 UTC.
pub(crate) const T0: u64 = 1_800_000_000_000;

pub(crate) const POLICY: &str = r#"
[limits]
max_connections = 500

[relay]
domains = ["example.com", "example.net"]

[[pool]]
name = "mta"
balance = "leastconn"

[[pool.server]]
name = "mta1"
address = "10.0.0.11:25"

[[pool.server]]
name = "mta2"
address = "10.0.0.12:25"
weight = 3

[[pool]]
name = "backup"

[[pool.server]]
name = "b1"
address = "192.0.2.7:25"

[[listener]]
name = "mx"
bind = "0.0.0.0:25"
pool = "mta"

[[list]]
action = "block"
client = "198.51.100.0/24"

[[list]]
action = "allow"
sender_domain = "partner.example"

[[rate_limit]]
key = "client_ip"
window_s = 60
connections = 30

[greylist]
enabled = true
delay_s = 300
"#;

pub(crate) fn policy() -> Policy {
    Policy::parse(POLICY).expect("test policy is valid")
}

/// A physical clock the test sets by hand.
pub(crate) struct FakeClock(pub(crate) AtomicU64);

impl FakeClock {
    pub(crate) fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }

    pub(crate) fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// One box: a store in its own temp dir with a fake clock.
pub(crate) struct Node {
    pub(crate) store: Store,
    pub(crate) clock: Arc<FakeClock>,
    pub(crate) _dir: tempfile::TempDir,
}

pub(crate) fn node(start_ms: u64) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FakeClock(AtomicU64::new(start_ms)));
    let store = Store::open_with_clock(dir.path(), clock.clone()).unwrap();
    Node {
        store,
        clock,
        _dir: dir,
    }
}

/// Ships `from`'s log after `*cursor` to `to`, at most `batches` batches
/// of `limit`, acknowledging each; returns the changes applied.
pub(crate) fn ship(
    from: &Node,
    to: &Node,
    cursor: &mut u64,
    limit: usize,
    batches: usize,
) -> usize {
    let peer = to.store.sync_node_id().unwrap();
    let mut applied = 0;
    for _ in 0..batches {
        let batch = from.store.sync_changes_since(*cursor, limit).unwrap();
        if batch.changes.is_empty() {
            break;
        }
        let report = to.store.apply_remote(&batch).unwrap();
        if std::env::var("SYNC_DEBUG").is_ok() {
            eprintln!("ship {} changes: {report:?}", batch.changes.len());
        }
        applied += report.applied;
        *cursor = batch.last_seq;
        from.store.sync_ack(peer, batch.last_seq).unwrap();
    }
    applied
}

/// Ships both ways until neither side has anything new.
pub(crate) fn sync_fully(a: &Node, b: &Node, ab: &mut u64, ba: &mut u64) {
    for _ in 0..10 {
        let n = ship(a, b, ab, 1000, usize::MAX) + ship(b, a, ba, 1000, usize::MAX);
        if n == 0 {
            return;
        }
    }
    panic!("sync did not settle");
}

/// SHA-256 of the canonical dump.
pub(crate) fn checksum(store: &Store) -> Vec<u8> {
    let dump = store.canonical_dump().unwrap();
    ring::digest::digest(&ring::digest::SHA256, dump.as_bytes())
        .as_ref()
        .to_vec()
}

pub(crate) fn assert_converged(a: &Node, b: &Node) {
    assert_eq!(
        a.store.canonical_dump().unwrap(),
        b.store.canonical_dump().unwrap()
    );
    assert_eq!(checksum(&a.store), checksum(&b.store));
    assert_eq!(
        a.store.sync_digest().unwrap(),
        b.store.sync_digest().unwrap()
    );
}

pub(crate) fn greylist() -> Greylist {
    Greylist::new(GreylistSettings::default()).unwrap()
}

pub(crate) fn triplet(rcpt: &str) -> Triplet<'_> {
    Triplet {
        client: "192.0.2.10".parse().unwrap(),
        sender: "a@example.org",
        recipient: rcpt,
    }
}

/// The log entry of a row: (hlc, node, deleted).
pub(crate) fn log_entry(store: &Store, table: &str, pk: &str) -> Option<(Hlc, NodeId, bool)> {
    use rusqlite::OptionalExtension;
    store
        .with_conn(|c| {
            Ok(c.query_row(
                "SELECT hlc, node, deleted FROM sync_log WHERE tbl = ?1 AND pk = ?2",
                [table, pk],
                |r| {
                    Ok((
                        Hlc::from_sql(r.get(0)?),
                        NodeId(r.get::<_, i64>(1)? as u64),
                        r.get(2)?,
                    ))
                },
            )
            .optional()?)
        })
        .unwrap()
}

pub(crate) fn log_count(store: &Store) -> i64 {
    store
        .with_conn(|c| Ok(c.query_row("SELECT count(*) FROM sync_log", [], |r| r.get(0))?))
        .unwrap()
}

#[test]
fn every_write_path_is_logged_with_this_nodes_stamp() {
    let a = node(T0);
    let me = a.store.sync_node_id().unwrap();
    assert!(log_count(&a.store) == 0, "a new store has nothing to log");
    a.store.replace_policy(&policy()).unwrap();
    for (table, pk) in [
        ("pools", r#"["mta"]"#),
        ("servers", r#"["mta","mta1"]"#),
        ("listeners", r#"["mx"]"#),
        ("relay_domains", r#"["example.net"]"#),
        ("lists", "[1]"),
        ("rate_limits", "[0]"),
        ("settings", r#"["limits.max_connections"]"#),
        ("settings", r#"["section.greylist"]"#),
    ] {
        let (hlc, node, deleted) = log_entry(&a.store, table, pk).expect(pk);
        assert_eq!(node, me);
        assert!(!deleted);
        assert_eq!(hlc.physical_ms(), T0, "{table} {pk}");
    }
    a.clock.advance(1);
    let g = greylist();
    a.store
        .greylist_check(
            &g,
            &triplet("b@example.com"),
            1_800_000_000,
            &GreylistContext::default(),
        )
        .unwrap();
    a.store
        .temp_allowlist_add("192.0.2.9".parse().unwrap(), 1_900_000_000)
        .unwrap();
    a.store.self_signed_certificate("smtp", &[]).unwrap();
    for table in ["greylist_triplets", "temp_allowlist", "certificates"] {
        let n: i64 = a
            .store
            .with_conn(|c| {
                Ok(c.query_row(
                    "SELECT count(*) FROM sync_log WHERE tbl = ?1 AND hlc >= ?2",
                    rusqlite::params![table, Hlc::new(T0 + 1, 0).to_sql()],
                    |r| r.get(0),
                )?)
            })
            .unwrap();
        assert_eq!(n, 1, "{table}");
    }
    // A failed import rolls its log entries back with it.
    let before = log_count(&a.store);
    let digest = a.store.sync_digest().unwrap();
    let mut raw = policy().to_raw();
    raw.listener[0].pool = "missing".into();
    assert!(a
        .store
        .commit_with(|tx| crate::rows::write_policy(tx, &raw))
        .is_err());
    assert_eq!(log_count(&a.store), before);
    assert_eq!(a.store.sync_digest().unwrap(), digest);
}

#[test]
fn node_local_settings_are_not_logged() {
    let a = node(T0);
    a.store
        .with_conn(|c| {
            c.execute(
                "INSERT INTO settings (key, value) VALUES ('node.name', 'gw-a')",
                [],
            )?;
            c.execute(
                "UPDATE settings SET value = 'gw-b' WHERE key = 'node.name'",
                [],
            )?;
            c.execute("DELETE FROM settings WHERE key = 'node.name'", [])?;
            Ok(())
        })
        .unwrap();
    assert_eq!(log_count(&a.store), 0);
    assert!(!a.store.canonical_dump().unwrap().contains("node.name"));
}

#[test]
fn a_key_change_leaves_a_tombstone_for_the_old_key() {
    let a = node(T0);
    a.store.replace_policy(&policy()).unwrap();
    a.clock.advance(5);
    a.store
        .with_conn(|c| {
            c.execute(
                "UPDATE relay_domains SET domain = 'example.org' WHERE domain = 'example.net'",
                [],
            )?;
            Ok(())
        })
        .unwrap();
    let old = log_entry(&a.store, "relay_domains", r#"["example.net"]"#).unwrap();
    let new = log_entry(&a.store, "relay_domains", r#"["example.org"]"#).unwrap();
    assert!(old.2 && !new.2);
    assert!(new.0 > old.0);
}

#[test]
fn a_connection_without_the_sync_functions_cannot_write_synced_tables() {
    let a = node(T0);
    a.store.replace_policy(&policy()).unwrap();
    let conn = rusqlite::Connection::open(a.store.path()).unwrap();
    let err = conn
        .execute("UPDATE servers SET weight = 9 WHERE name = 'mta1'", [])
        .unwrap_err();
    assert!(err.to_string().contains("mxgate_sync_local"), "{err}");
    // Tracking is node-local and stays writable.
    conn.execute("DELETE FROM track_sessions", []).unwrap();
}

#[test]
fn edits_on_a_reach_b_with_their_stamps_and_b_publishes_the_policy() {
    let a = node(T0);
    let b = node(T0 + 3);
    let mut rx = b.store.subscribe();
    let (mut ab, mut ba) = (0, 0);
    a.store.replace_policy(&policy()).unwrap();
    let g = greylist();
    let ctx = GreylistContext::default();
    let t = triplet("b@example.com");
    a.store.greylist_check(&g, &t, 1_800_000_000, &ctx).unwrap();
    a.store.greylist_check(&g, &t, 1_800_000_400, &ctx).unwrap();
    a.store
        .temp_allowlist_add("2001:db8::7".parse().unwrap(), 1_900_000_000)
        .unwrap();
    a.store.remove_server("mta", "mta2").unwrap();
    a.clock.advance(10);

    assert_eq!(
        ship(&a, &b, &mut ab, 1000, usize::MAX),
        log_count(&a.store) as usize
    );
    assert_converged(&a, &b);
    assert!(rx.has_changed().unwrap());
    assert_eq!(**rx.borrow_and_update(), a.store.policy().unwrap());
    assert_eq!(*b.store.current(), a.store.policy().unwrap());
    // B kept A's stamps: the tombstone of mta2 is A's.
    let tomb = log_entry(&b.store, "servers", r#"["mta","mta2"]"#).unwrap();
    assert_eq!(
        tomb,
        log_entry(&a.store, "servers", r#"["mta","mta2"]"#).unwrap()
    );
    assert!(tomb.2);
    assert_eq!(tomb.1, a.store.sync_node_id().unwrap());
    // B's clock moved past A's stamps: its next edit wins.
    b.store
        .set_server_state("mta", "mta1", ServerState::Drain)
        .unwrap();
    let (hlc, _, _) = log_entry(&b.store, "servers", r#"["mta","mta1"]"#).unwrap();
    assert!(hlc > tomb.0);
    sync_fully(&a, &b, &mut ab, &mut ba);
    assert_converged(&a, &b);
    let p = a.store.current();
    assert_eq!(p.pools[0].servers[0].state, ServerState::Drain);
    // A greylisted sender retrying through B passes.
    let d = b.store.greylist_check(&g, &t, 1_800_000_500, &ctx).unwrap();
    assert!(
        matches!(d, mxgate_filter::greylist::GreylistDecision::Pass(_)),
        "{d:?}"
    );
    // Shipping again applies nothing.
    assert_eq!(ship(&a, &b, &mut 0, 1000, usize::MAX), 0);
}
