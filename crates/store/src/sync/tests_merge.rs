//! Sync tests, merging: exchanges in either order, concurrent edits,
//! skewed clocks, refused batches, tombstones and the migration backfill.

use super::tests::{
    assert_converged, log_count, log_entry, node, policy, ship, sync_fully, FakeClock, Node, T0,
};
use super::{Batch, Change, Hlc, NodeId, Row, SyncError, Value};
use crate::{Store, StoreError};
use mxgate_config::ServerState;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// One batch from `from` to `to`, acknowledged.
fn exchange(from: &Node, to: &Node, cursor: &mut u64) -> super::ApplyReport {
    let batch = from.store.sync_changes_since(*cursor, 1000).unwrap();
    let report = to.store.apply_remote(&batch).unwrap();
    *cursor = batch.last_seq;
    let peer = to.store.sync_node_id().unwrap();
    from.store.sync_ack(peer, batch.last_seq).unwrap();
    report
}

#[test]
fn concurrent_edits_of_one_row_converge_in_either_order() {
    for a_first in [true, false] {
        for (a_ms, b_ms) in [(T0 + 50, T0 + 20), (T0 + 20, T0 + 50), (T0 + 30, T0 + 30)] {
            let a = node(T0);
            let b = node(T0);
            let (mut ab, mut ba) = (0, 0);
            a.store.replace_policy(&policy()).unwrap();
            sync_fully(&a, &b, &mut ab, &mut ba);
            a.clock.set(a_ms);
            b.clock.set(b_ms);
            a.store
                .set_server_state("mta", "mta1", ServerState::Drain)
                .unwrap();
            b.store
                .set_server_state("mta", "mta1", ServerState::Maint)
                .unwrap();
            let ea = log_entry(&a.store, "servers", r#"["mta","mta1"]"#).unwrap();
            let eb = log_entry(&b.store, "servers", r#"["mta","mta1"]"#).unwrap();
            let (ra, rb) = if a_first {
                let ra = exchange(&a, &b, &mut ab);
                (ra, exchange(&b, &a, &mut ba))
            } else {
                let rb = exchange(&b, &a, &mut ba);
                (exchange(&a, &b, &mut ab), rb)
            };
            assert_converged(&a, &b);
            let a_wins = (ea.0, ea.1) > (eb.0, eb.1);
            let want = if a_wins {
                ServerState::Drain
            } else {
                ServerState::Maint
            };
            assert_eq!(a.store.current().pools[0].servers[0].state, want);
            assert_eq!(b.store.current().pools[0].servers[0].state, want);
            // Counted once, where the other's version arrived first.
            assert_eq!(ra.conflicts + rb.conflicts, 1, "{ra:?} {rb:?}");
            assert_eq!(if a_first { ra.conflicts } else { rb.conflicts }, 1);
            assert_eq!(ra.applied + rb.applied, 1, "one version replaced the other");
        }
    }
}

#[test]
fn skewed_clocks_converge_and_the_skew_is_recorded() {
    let a = node(T0);
    // B's wall clock is an hour ahead.
    let b = node(T0 + 3_600_000);
    let (mut ab, mut ba) = (0, 0);
    a.store.replace_policy(&policy()).unwrap();
    sync_fully(&a, &b, &mut ab, &mut ba);
    assert_eq!(b.store.sync_max_skew_ms(), Some(-3_600_000));
    b.store
        .set_server_state("mta", "mta1", ServerState::Maint)
        .unwrap();
    sync_fully(&a, &b, &mut ab, &mut ba);
    assert_eq!(a.store.sync_max_skew_ms(), Some(3_600_000));
    // A edits one second later by its own clock, an hour "before" B's
    // edit: the HLC absorbed B's stamp, so A's edit is still the newer.
    a.clock.advance(1_000);
    a.store
        .set_server_state("mta", "mta1", ServerState::Drain)
        .unwrap();
    let (hlc, _, _) = log_entry(&a.store, "servers", r#"["mta","mta1"]"#).unwrap();
    assert_eq!(hlc.physical_ms(), T0 + 3_600_000);
    sync_fully(&a, &b, &mut ab, &mut ba);
    assert_converged(&a, &b);
    assert_eq!(
        b.store.current().pools[0].servers[0].state,
        ServerState::Drain
    );
}

/// A batch with one valid change first, then `bad`.
fn with_valid_first(a: &Node, bad: Change) -> Batch {
    let mut batch = a.store.sync_changes_since(0, 1).unwrap();
    batch.changes.push(bad);
    batch
}

fn server_change(a: &Node) -> Change {
    a.store
        .sync_changes_since(0, 1000)
        .unwrap()
        .changes
        .into_iter()
        .find(|c| c.table == "servers")
        .unwrap()
}

#[test]
fn bad_batches_are_refused_whole_and_change_nothing() {
    let a = node(T0);
    a.store.replace_policy(&policy()).unwrap();
    let b = node(T0);
    b.store.replace_policy(&policy()).unwrap();
    let dump = b.store.canonical_dump().unwrap();
    let digest = b.store.sync_digest().unwrap();
    let good = server_change(&a);
    let edit = |f: &dyn Fn(&mut Change)| {
        let mut c = good.clone();
        f(&mut c);
        c
    };
    let row = |c: &mut Change| c.row.as_mut().unwrap().clone();
    let cases: Vec<(&str, Batch)> = vec![
        (
            "unknown table",
            with_valid_first(&a, edit(&|c| c.table = "no_such_table".into())),
        ),
        (
            "tracking",
            with_valid_first(&a, edit(&|c| c.table = "track_sessions".into())),
        ),
        (
            "log",
            with_valid_first(&a, edit(&|c| c.table = "sync_node".into())),
        ),
        (
            "node-local setting",
            with_valid_first(
                &a,
                Change {
                    table: "settings".into(),
                    pk: r#"["node.name"]"#.into(),
                    hlc: Hlc::new(T0 + 9, 0),
                    node: NodeId(1),
                    row: Some(Row::from([
                        ("key".into(), Value::Text("node.name".into())),
                        ("value".into(), Value::Text("x".into())),
                    ])),
                },
            ),
        ),
        (
            "bad key",
            with_valid_first(&a, edit(&|c| c.pk = "mta/mta1".into())),
        ),
        (
            "key not canonical",
            with_valid_first(&a, edit(&|c| c.pk = r#"[ "mta", "mta1" ]"#.into())),
        ),
        (
            "key of another row",
            with_valid_first(&a, edit(&|c| c.pk = r#"["mta","mta9"]"#.into())),
        ),
        (
            "missing column",
            with_valid_first(
                &a,
                edit(&|c| {
                    let mut r = row(c);
                    r.remove("weight");
                    c.row = Some(r);
                }),
            ),
        ),
        (
            "extra column",
            with_valid_first(
                &a,
                edit(&|c| {
                    let mut r = row(c);
                    r.insert("evil".into(), Value::Integer(1));
                    c.row = Some(r);
                }),
            ),
        ),
        (
            "wrong type",
            with_valid_first(
                &a,
                edit(&|c| {
                    let mut r = row(c);
                    r.insert("weight".into(), Value::Text("5".into()));
                    c.row = Some(r);
                }),
            ),
        ),
        (
            "check constraint",
            with_valid_first(
                &a,
                edit(&|c| {
                    c.hlc = Hlc::new(T0 + 99, 0);
                    let mut r = row(c);
                    r.insert("state".into(), Value::Text("broken".into()));
                    c.row = Some(r);
                }),
            ),
        ),
        (
            "stamp out of range",
            with_valid_first(&a, edit(&|c| c.hlc = Hlc(u64::MAX))),
        ),
        (
            "node out of range",
            with_valid_first(&a, edit(&|c| c.node = NodeId(1 << 63))),
        ),
        ("twice", with_valid_first(&a, good.clone()).tap_dup()),
        (
            "too many",
            Batch {
                changes: vec![good.clone(); super::MAX_BATCH_CHANGES + 1],
                ..Batch::default()
            },
        ),
        (
            "too large",
            Batch {
                changes: vec![edit(&|c| {
                    let mut r = row(c);
                    r.insert(
                        "address".into(),
                        Value::Text("x".repeat(super::MAX_BATCH_BYTES)),
                    );
                    c.row = Some(r);
                })],
                ..Batch::default()
            },
        ),
    ];
    for (what, batch) in cases {
        let err = b.store.apply_remote(&batch).unwrap_err();
        let StoreError::Sync(e) = &err else {
            panic!("{what}: not a sync error: {err}");
        };
        let expected = match what {
            "unknown table" => matches!(e, SyncError::UnknownTable { .. }),
            "tracking" | "log" | "node-local setting" => matches!(e, SyncError::NodeLocal { .. }),
            "too many" => matches!(e, SyncError::TooManyChanges { .. }),
            "too large" => matches!(e, SyncError::TooLarge { .. }),
            _ => matches!(e, SyncError::Malformed { .. }),
        };
        assert!(expected, "{what}: {e}");
        assert_eq!(b.store.canonical_dump().unwrap(), dump, "{what}");
        assert_eq!(b.store.sync_digest().unwrap(), digest, "{what}");
        assert!(b.store.integrity_check().unwrap().is_empty(), "{what}");
    }
    // The store still takes good batches (the apply mode was reset).
    b.store
        .apply_remote(&a.store.sync_changes_since(0, 1000).unwrap())
        .unwrap();
    b.store
        .set_server_state("mta", "mta1", ServerState::Drain)
        .unwrap();
    assert!(
        log_entry(&b.store, "servers", r#"["mta","mta1"]"#)
            .unwrap()
            .1
            == b.store.sync_node_id().unwrap()
    );
}

trait TapDup {
    fn tap_dup(self) -> Self;
}

impl TapDup for Batch {
    /// The batch with its last change twice.
    fn tap_dup(mut self) -> Batch {
        let last = self.changes.last().unwrap().clone();
        self.changes.push(last);
        self
    }
}

#[test]
fn tombstones_are_collected_only_once_acknowledged_or_too_old() {
    let a = node(T0);
    let b = node(T0);
    let (mut ab, mut ba) = (0, 0);
    a.store.replace_policy(&policy()).unwrap();
    sync_fully(&a, &b, &mut ab, &mut ba);
    a.clock.advance(1);
    a.store.remove_server("mta", "mta2").unwrap();
    let pk = r#"["mta","mta2"]"#;
    assert!(log_entry(&a.store, "servers", pk).unwrap().2);
    // B acknowledged only what it had before the delete.
    assert_eq!(a.store.collect_tombstones().unwrap(), 0);
    assert!(log_entry(&a.store, "servers", pk).is_some());
    let peer = b.store.sync_node_id().unwrap();
    assert_eq!(a.store.sync_pending(peer).unwrap(), 1);
    ship(&a, &b, &mut ab, 1000, usize::MAX);
    assert_eq!(a.store.sync_pending(peer).unwrap(), 0);
    assert_eq!(a.store.collect_tombstones().unwrap(), 1);
    assert!(log_entry(&a.store, "servers", pk).is_none());
    // B keeps its copy until A acknowledges B's log.
    assert_eq!(b.store.collect_tombstones().unwrap(), 0);
    ship(&b, &a, &mut ba, 1000, usize::MAX);
    assert_eq!(b.store.collect_tombstones().unwrap(), 1);
    assert_converged(&a, &b);

    // Unacknowledged, a tombstone goes after the age bound.
    a.clock.advance(1);
    a.store.remove_server("mta", "mta1").unwrap();
    a.clock.advance(super::TOMBSTONE_MAX_AGE_MS - 2);
    assert_eq!(a.store.collect_tombstones().unwrap(), 0);
    a.clock.advance(2);
    assert_eq!(a.store.collect_tombstones().unwrap(), 1);
}

#[test]
fn a_store_migrated_from_v6_logs_its_rows_and_syncs_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("old");
    std::fs::create_dir_all(&dir).unwrap();
    {
        let conn = rusqlite::Connection::open(dir.join(crate::DB_FILE)).unwrap();
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            .unwrap();
        for script in &crate::schema::MIGRATIONS[..6] {
            conn.execute_batch(script).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO schema_version (version) VALUES (6);
             INSERT INTO relay_domains (domain, position) VALUES ('example.com', 0);
             INSERT INTO settings (key, value) VALUES ('limits.max_connections', '77');
             INSERT INTO settings (key, value) VALUES ('node.local', 'x');
             INSERT INTO greylist_triplets (key, first_seen, last_seen, passed)
                 VALUES ('k1', 1, 2, 1), ('k2', 3, 4, 0);
             INSERT INTO temp_allowlist (client, until_unix) VALUES ('192.0.2.1', 99);",
        )
        .unwrap();
    }
    let clock = Arc::new(FakeClock(AtomicU64::new(T0)));
    let a = Node {
        store: Store::open_with_clock(&dir, clock.clone()).unwrap(),
        clock,
        _dir: tmp,
    };
    assert_eq!(log_count(&a.store), 5);
    let (hlc, writer, deleted) = log_entry(&a.store, "greylist_triplets", r#"["k2"]"#).unwrap();
    assert_eq!(
        (hlc, writer, deleted),
        (Hlc::new(T0, 0), a.store.sync_node_id().unwrap(), false)
    );
    assert!(log_entry(&a.store, "settings", r#"["node.local"]"#).is_none());
    // Later local stamps come after the migration's.
    a.store
        .temp_allowlist_add("192.0.2.1".parse().unwrap(), 100)
        .unwrap();
    assert!(
        log_entry(&a.store, "temp_allowlist", r#"["192.0.2.1"]"#)
            .unwrap()
            .0
            > hlc
    );
    let b = node(T0);
    let (mut ab, mut ba) = (0, 0);
    sync_fully(&a, &b, &mut ab, &mut ba);
    assert_converged(&a, &b);
    assert_eq!(b.store.current().limits.max_connections, 77);
    assert!(a.store.integrity_check().unwrap().is_empty());
}

#[test]
fn batches_are_bounded_and_resume_where_they_stopped() {
    let a = node(T0);
    a.store.replace_policy(&policy()).unwrap();
    let total = log_count(&a.store) as usize;
    let first = a.store.sync_changes_since(0, 3).unwrap();
    assert_eq!(first.changes.len(), 3);
    assert!(first.more);
    let rest = a.store.sync_changes_since(first.last_seq, 1000).unwrap();
    assert_eq!(rest.changes.len(), total - 3);
    assert!(!rest.more);
    let empty = a.store.sync_changes_since(rest.last_seq, 1000).unwrap();
    assert!(empty.changes.is_empty());
    assert_eq!(empty.last_seq, rest.last_seq);
}
