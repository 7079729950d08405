//! Store tests: migrations, round trips, atomic replacement, change
//! notification across handles, edits and refusal of bad databases.

use crate::{Store, StoreError, DB_FILE, SCHEMA_VERSION};
use mxgate_config::{Policy, Server, ServerState};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const POLICY: &str = r#"
[limits]
max_connections = 5000

[relay]
domains = ["example.com", "Example.NET."]

[[pool]]
name = "mta"
balance = "leastconn"
check = { interval_ms = 1000, timeout_ms = 2000, fall = 3, rise = 2, starttls = true, ehlo = "gw.example.com" }
slow_start_ms = 10000

[[pool.server]]
name = "mta2"
address = "10.0.0.12:25"
weight = 3
max_conn = 500
state = "drain"

[[pool.server]]
name = "mta1"
address = "[2001:db8::11]:2525"

[[pool]]
name = "backup"
balance = "first"

[[pool.server]]
name = "b1"
address = "192.0.2.7:25"
state = "maint"
weight = 0

[[listener]]
name = "mx6"
bind = "[::]:25"
pool = "mta"
send_proxy = "v2"
accept_proxy = true
proxy_trusted = ["127.0.0.1/32", "2001:db8::/32", "::1"]
max_connections = 100

[[listener]]
name = "mx"
bind = "0.0.0.0:25"
pool = "backup"
send_proxy = "v1"
idle_timeout_ms = 60000
"#;

pub(crate) fn sample_policy() -> Policy {
    Policy::parse(POLICY).expect("sample policy is valid")
}

fn open(dir: &Path) -> Store {
    Store::open(dir).expect("store opens")
}

/// A second connection, as another mxgate process has it: with the sync
/// functions registered (without them a synced table cannot be written).
fn raw_conn(dir: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(dir.join(DB_FILE)).expect("raw connection");
    crate::sync::register_with_system_clock(&conn).expect("sync functions");
    conn
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Store>();
}

#[test]
fn open_creates_private_dir_migrates_and_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/data");
    let store = open(&dir);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    assert!(store.check_health());
    assert_eq!(store.policy().unwrap(), Policy::default());
    store.replace_policy(&sample_policy()).unwrap();
    drop(store);

    let store = open(&dir);
    assert_eq!(store.policy().unwrap(), sample_policy());
    assert_eq!(*store.current(), sample_policy());
    let conn = raw_conn(&dir);
    let version: i64 = conn
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn replace_then_read_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let policy = sample_policy();
    assert_eq!(policy.pools.len(), 2);
    assert_eq!(policy.listeners.len(), 2);
    store.replace_policy(&policy).unwrap();
    let back = store.policy().unwrap();
    assert_eq!(back, policy);
    // File order is kept, not name order.
    assert_eq!(back.pools[0].servers[0].name, "mta2");
    assert_eq!(back.listeners[0].name, "mx6");
    assert_eq!(back.listeners[0].proxy_trusted.len(), 3);
    assert_eq!(back.relay_domains, vec!["example.com", "example.net"]);
}

#[test]
fn export_toml_equals_original_toml() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    store.replace_policy(&sample_policy()).unwrap();
    let exported = store.policy().unwrap().to_toml();
    assert_eq!(exported, sample_policy().to_toml());
    // And the export imports back to the same policy.
    assert_eq!(Policy::parse(&exported).unwrap(), sample_policy());
}

#[test]
fn failed_import_leaves_previous_policy_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    store.replace_policy(&sample_policy()).unwrap();
    let rx = store.subscribe();

    // A CHECK constraint fails on the last server, after pools and other
    // servers were already written in the same transaction.
    let mut bad = sample_policy();
    bad.pools[1].servers[0].weight = 1000;
    let err = store.replace_policy(&bad).unwrap_err();
    assert!(matches!(err, StoreError::Sqlite(_)), "{err}");

    // A listener referring to no pool: the foreign key refuses it.
    let mut bad = sample_policy();
    bad.listeners[1].pool = "nowhere".into();
    assert!(store.replace_policy(&bad).is_err());

    // Passes every constraint but not validation: refused after writing.
    let mut bad = sample_policy();
    bad.pools[0].check.ehlo = "not a host name".into();
    match store.replace_policy(&bad).unwrap_err() {
        StoreError::Invalid(errors) => {
            assert_eq!(errors.0[0].key, "pool[mta].check.ehlo", "{errors}");
        }
        other => panic!("expected Invalid, got {other}"),
    }

    assert_eq!(store.policy().unwrap(), sample_policy());
    assert!(!rx.has_changed().unwrap());
    assert!(store.integrity_check().unwrap().is_empty());
}

#[test]
fn subscriber_sees_each_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let mut rx = store.subscribe();
    assert_eq!(**rx.borrow_and_update(), Policy::default());

    store.replace_policy(&sample_policy()).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(**rx.borrow_and_update(), sample_policy());

    store
        .set_server_state("mta", "mta1", ServerState::Maint)
        .unwrap();
    assert!(rx.has_changed().unwrap());
    let p = rx.borrow_and_update().clone();
    assert_eq!(p.pool("mta").unwrap().servers[1].state, ServerState::Maint);

    // Replacing with the same policy wakes nobody.
    store.replace_policy(&p).unwrap();
    assert!(!rx.has_changed().unwrap());
}

#[test]
fn refresh_picks_up_another_handles_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let first = open(tmp.path());
    let mut rx = first.subscribe();
    assert!(!first.refresh().unwrap());

    let second = open(tmp.path());
    second.replace_policy(&sample_policy()).unwrap();
    assert!(!rx.has_changed().unwrap());
    assert!(first.refresh().unwrap());
    assert!(rx.has_changed().unwrap());
    assert_eq!(**rx.borrow_and_update(), sample_policy());
    assert!(!first.refresh().unwrap());

    // A change that leaves the policy as it is publishes nothing.
    second.replace_policy(&sample_policy()).unwrap();
    assert!(!first.refresh().unwrap());
}

#[test]
fn invalid_change_by_another_process_is_not_published() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    store.replace_policy(&sample_policy()).unwrap();
    let rx = store.subscribe();

    raw_conn(tmp.path())
        .execute(
            "UPDATE servers SET address = 'nonsense' WHERE name = 'mta1'",
            [],
        )
        .unwrap();
    match store.refresh().unwrap_err() {
        StoreError::Invalid(errors) => {
            assert_eq!(errors.0[0].key, "pool[mta].server[mta1].address");
        }
        other => panic!("expected Invalid, got {other}"),
    }
    assert!(!rx.has_changed().unwrap());
    assert_eq!(*store.current(), sample_policy());
    // Reported once per change.
    assert!(!store.refresh().unwrap());
    assert!(matches!(store.policy(), Err(StoreError::Invalid(_))));

    // Reopening an invalid store works (so an import can repair it).
    let reopened = open(tmp.path());
    assert_eq!(*reopened.current(), Policy::default());
    reopened.replace_policy(&sample_policy()).unwrap();
    // The repaired policy equals the last good one: nothing new to publish.
    assert!(!store.refresh().unwrap());
    assert_eq!(*store.current(), sample_policy());
    assert_eq!(store.policy().unwrap(), sample_policy());
}

#[test]
fn unrepresentable_stored_values_are_reported_with_their_key() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    store.replace_policy(&sample_policy()).unwrap();
    let conn = raw_conn(tmp.path());
    conn.execute(
        "UPDATE settings SET value = 'lots' WHERE key = 'limits.max_connections'",
        [],
    )
    .unwrap();
    match store.policy().unwrap_err() {
        StoreError::Invalid(errors) => {
            assert_eq!(errors.0[0].key, "limits.max_connections", "{errors}")
        }
        other => panic!("expected Invalid, got {other}"),
    }
    // The constraints refuse what the types cannot hold.
    assert!(conn
        .execute("UPDATE servers SET state = 'broken'", [])
        .is_err());
    assert!(conn
        .execute("UPDATE listeners SET max_connections = 'x'", [])
        .is_err());
}

#[test]
fn schema_too_new_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    drop(open(tmp.path()));
    raw_conn(tmp.path())
        .execute("UPDATE schema_version SET version = 99", [])
        .unwrap();
    let err = Store::open(tmp.path()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99,
                known: SCHEMA_VERSION
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("newer mxgate"), "{msg}");
    assert!(msg.contains("downgrading"), "{msg}");
}

#[test]
fn server_edits_change_one_row_and_validate() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    store.replace_policy(&sample_policy()).unwrap();

    let mut server = Server {
        name: "mta3".into(),
        address: "[2001:db8::13]:25".parse().unwrap(),
        weight: 2,
        max_conn: 0,
        state: ServerState::Ready,
    };
    store.upsert_server("mta", &server).unwrap();
    server.weight = 7;
    store.upsert_server("mta", &server).unwrap();
    let names: Vec<_> = store.policy().unwrap().pools[0]
        .servers
        .iter()
        .map(|s| (s.name.clone(), s.weight))
        .collect();
    assert_eq!(
        names,
        vec![("mta2".into(), 3), ("mta1".into(), 1), ("mta3".into(), 7)]
    );

    // Updating the first server keeps its place.
    let mut first = store.current().pools[0].servers[0].clone();
    first.max_conn = 9;
    store.upsert_server("mta", &first).unwrap();
    assert_eq!(store.current().pools[0].servers[0], first);

    store.remove_server("mta", "mta1").unwrap();
    assert_eq!(store.current().pools[0].servers.len(), 2);
    store
        .set_server_state("backup", "b1", ServerState::Ready)
        .unwrap();
    assert_eq!(
        store.current().pools[1].servers[0].state,
        ServerState::Ready
    );
    assert_eq!(*store.current(), store.policy().unwrap());

    let before = store.policy().unwrap();
    let not_found = |e: StoreError| match e {
        StoreError::NotFound { what, name } => (what, name),
        other => panic!("expected NotFound, got {other}"),
    };
    assert_eq!(
        not_found(store.remove_server("mta", "mta1").unwrap_err()),
        ("server", "mta/mta1".to_string())
    );
    assert_eq!(
        not_found(store.upsert_server("nope", &server).unwrap_err()),
        ("pool", "nope".to_string())
    );
    assert_eq!(
        not_found(
            store
                .set_server_state("nope", "x", ServerState::Drain)
                .unwrap_err()
        ),
        ("pool", "nope".to_string())
    );
    server.weight = 300;
    match store.upsert_server("mta", &server).unwrap_err() {
        StoreError::Invalid(errors) => {
            assert_eq!(errors.0[0].key, "pool[mta].server[mta3].weight")
        }
        other => panic!("expected Invalid, got {other}"),
    }
    server.weight = 1;
    server.name = "bad name".into();
    assert!(matches!(
        store.upsert_server("mta", &server),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.policy().unwrap(), before);
    assert!(store.integrity_check().unwrap().is_empty());
}

#[tokio::test]
async fn watcher_publishes_changes_from_another_process() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(open(tmp.path()));
    let mut rx = store.subscribe();
    let watcher = store.spawn_watcher(Duration::from_millis(20));

    let other = open(tmp.path());
    other.replace_policy(&sample_policy()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), rx.changed())
        .await
        .expect("watcher publishes within 5 s")
        .unwrap();
    assert_eq!(**rx.borrow_and_update(), sample_policy());

    // The task ends once the store is gone.
    drop(store);
    tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("watcher ends after the store is dropped")
        .unwrap();
}

#[test]
fn integrity_check_is_clean_after_many_operations() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    for i in 0..5 {
        let mut p = sample_policy();
        p.limits.max_connections = 100 + i;
        store.replace_policy(&p).unwrap();
        store
            .set_server_state("mta", "mta2", ServerState::Ready)
            .unwrap();
        store.remove_server("backup", "b1").unwrap();
    }
    assert!(store.integrity_check().unwrap().is_empty());
    assert!(store.check_health());
}
