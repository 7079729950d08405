//! Tracking tests: the migration from older schemas keeps the policy,
//! records round trip, every search field and the time range, pruning by
//! age and count, batch writes, and that tracking is not policy.

use crate::schema::MIGRATIONS;
use crate::{
    RecipientRecord, SessionRecord, Store, TrackQuery, TransactionRecord, TransactionResult,
    DB_FILE, SCHEMA_VERSION,
};
use mxgate_config::Policy;
use mxgate_filter::verdict::Trail;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

/// The store tests' sample policy (two pools, IPv6, every kind of key).
fn policy() -> Policy {
    crate::tests::sample_policy()
}

fn open(dir: &Path) -> Store {
    Store::open(dir).expect("store opens")
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn count(store: &Store, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// A session from `client` started at `start`, with one transaction from
/// `sender` to `recipients` (none when `sender` is `None`).
fn session(start: i64, client: &str, sender: Option<&str>, recipients: &[&str]) -> SessionRecord {
    SessionRecord {
        id: None,
        started_unix_ms: start,
        ended_unix_ms: start + 250,
        listener: "mx".to_string(),
        client_ip: ip(client),
        client_port: 40000,
        proxy_ip: None,
        helo: "client.example".to_string(),
        tls: None,
        result: "ok".to_string(),
        end_reason: "quit".to_string(),
        checks: {
            let mut trail = Trail::new();
            trail.push("dnsbl", "pass", "score 0");
            trail
        },
        transactions: sender
            .map(|sender| {
                vec![TransactionRecord {
                    id: None,
                    started_unix_ms: start + 10,
                    sender: sender.to_string(),
                    size: 1234,
                    server: Some("mta/mta1".to_string()),
                    final_reply: Some("250 2.0.0 queued as 42".to_string()),
                    result: TransactionResult::Accepted,
                    duration_ms: 200,
                    recipients: recipients
                        .iter()
                        .map(|r| RecipientRecord {
                            recipient: r.to_string(),
                            reply_code: 250,
                            reply_text: "2.1.5 ok".to_string(),
                        })
                        .collect(),
                    checks: {
                        let mut trail = Trail::new();
                        trail.push("spf", "pass", sender.rsplit('@').next().unwrap_or(""));
                        trail.push("dkim", "none", "");
                        trail
                    },
                }]
            })
            .unwrap_or_default(),
    }
}

/// The start times of the sessions found, in the order found.
fn starts(store: &Store, query: &TrackQuery) -> Vec<i64> {
    store
        .search(query)
        .unwrap()
        .iter()
        .map(|s| s.started_unix_ms)
        .collect()
}

/// Clears the ids the store filled in, to compare with what was written.
fn without_ids(mut s: SessionRecord) -> SessionRecord {
    s.id = None;
    for t in &mut s.transactions {
        t.id = None;
    }
    s
}

/// Builds `<dir>/old/mxgate.db` at schema `version` holding `policy`: the
/// tables of that version, filled with their columns copied from a current
/// store (columns added later keep their defaults on migration).
fn database_at_version(dir: &Path, version: usize, policy: &Policy) -> std::path::PathBuf {
    let src = dir.join("src");
    open(&src).replace_policy(policy).unwrap();
    let old = dir.join("old");
    std::fs::create_dir_all(&old).unwrap();
    let conn = rusqlite::Connection::open(old.join(DB_FILE)).unwrap();
    // Version 7 and later migrations call the change log's functions.
    crate::sync::register_with_system_clock(&conn).unwrap();
    conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        .unwrap();
    for script in &MIGRATIONS[..version] {
        conn.execute_batch(script).unwrap();
    }
    conn.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [version],
    )
    .unwrap();
    let src_db = src.join(DB_FILE);
    conn.execute("ATTACH DATABASE ?1 AS src", [src_db.to_str().unwrap()])
        .unwrap();
    for table in ["pools", "servers", "listeners", "relay_domains", "settings"] {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{table}', 'main')"
            ))
            .unwrap();
        let columns: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let list = columns.join(", ");
        conn.execute(
            &format!("INSERT INTO main.{table} ({list}) SELECT {list} FROM src.{table}"),
            [],
        )
        .unwrap();
    }
    conn.execute_batch("DETACH DATABASE src").unwrap();
    old
}

#[test]
fn migration_from_every_older_version_keeps_the_policy() {
    // Tracking tables arrived with schema version 3.
    const TRACKING_SINCE: usize = 3;
    for version in 1..MIGRATIONS.len() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = database_at_version(tmp.path(), version, &policy());
        {
            let conn = rusqlite::Connection::open(dir.join(DB_FILE)).unwrap();
            let tables: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_schema WHERE name = 'track_sessions'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let expected = i64::from(version >= TRACKING_SINCE);
            assert_eq!(tables, expected, "tracking tables at version {version}");
        }
        let store = open(&dir);
        assert_eq!(store.policy().unwrap(), policy(), "from version {version}");
        assert_eq!(*store.current(), policy(), "from version {version}");
        assert!(store.integrity_check().unwrap().is_empty());
        let conn = rusqlite::Connection::open(dir.join(DB_FILE)).unwrap();
        let found: i64 = conn
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(found, SCHEMA_VERSION);
        // The new tables work on the migrated database.
        let id = store
            .record_session(&session(1, "192.0.2.1", Some("a@x"), &["b@y"]))
            .unwrap();
        assert!(store.tracked_session(id).unwrap().is_some());
        store.self_signed_certificate("smtp", &[]).unwrap();
        drop(store);
        assert_eq!(open(&dir).policy().unwrap(), policy());
    }
}

#[test]
fn recorded_session_reads_back_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let mut s = session(
        1_700_000_000_000,
        "2001:db8::7",
        Some("Alice@Example.com"),
        &[],
    );
    s.proxy_ip = Some(ip("198.51.100.9"));
    s.tls = Some("TLSv1.3 TLS13_AES_256_GCM_SHA384".to_string());
    s.helo = String::new();
    s.transactions[0].recipients = vec![
        RecipientRecord {
            recipient: "bob@example.net".to_string(),
            reply_code: 250,
            reply_text: "2.1.5 ok".to_string(),
        },
        RecipientRecord {
            recipient: "nobody@example.net".to_string(),
            reply_code: 550,
            reply_text: "5.1.1 no such user".to_string(),
        },
    ];
    s.transactions.push(TransactionRecord {
        id: None,
        started_unix_ms: 1_700_000_000_300,
        sender: String::new(),
        size: 0,
        server: None,
        final_reply: None,
        result: TransactionResult::Tempfail,
        duration_ms: 0,
        recipients: Vec::new(),
        checks: Trail::new(),
    });
    let id = store.record_session(&s).unwrap();

    let back = store.tracked_session(id).unwrap().expect("stored");
    assert_eq!(back.id, Some(id));
    assert!(back.transactions.iter().all(|t| t.id.is_some()));
    assert_eq!(without_ids(back), s);
    assert_eq!(store.tracked_session(id + 1).unwrap(), None);
    assert_eq!(count(&store, "track_recipients"), 2);
}

#[test]
fn search_by_sender_is_a_case_insensitive_substring() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    store
        .record_sessions(&[
            session(1, "192.0.2.1", Some("Alice@Example.com"), &["x@r"]),
            session(2, "192.0.2.2", Some("bob@other.org"), &["x@r"]),
            session(3, "192.0.2.3", Some("100%_off@spam.test"), &["x@r"]),
            session(4, "192.0.2.4", None, &[]),
        ])
        .unwrap();
    let by_sender = |s: &str| {
        starts(
            &store,
            &TrackQuery {
                sender: Some(s.to_string()),
                ..TrackQuery::default()
            },
        )
    };
    assert_eq!(by_sender("alice@example"), vec![1]);
    assert_eq!(by_sender("EXAMPLE.COM"), vec![1]);
    assert_eq!(by_sender("@"), vec![3, 2, 1]);
    // LIKE wildcards in the query are plain characters.
    assert_eq!(by_sender("%_"), vec![3]);
    assert_eq!(by_sender("_"), vec![3]);
    assert_eq!(by_sender("nobody"), Vec::<i64>::new());
    // A blank filter is no filter.
    assert_eq!(by_sender("  "), vec![4, 3, 2, 1]);
}

#[test]
fn search_by_recipient_and_by_sender_with_recipient() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let mut two = session(2, "192.0.2.2", Some("carol@a.example"), &["dave@b.example"]);
    let mut second = two.transactions[0].clone();
    second.sender = "erin@a.example".to_string();
    second.recipients[0].recipient = "Frank@B.example".to_string();
    two.transactions.push(second);
    store
        .record_sessions(&[
            session(1, "192.0.2.1", Some("alice@a.example"), &["bob@b.example"]),
            two,
        ])
        .unwrap();
    let query = |sender: Option<&str>, recipient: Option<&str>| {
        starts(
            &store,
            &TrackQuery {
                sender: sender.map(str::to_string),
                recipient: recipient.map(str::to_string),
                ..TrackQuery::default()
            },
        )
    };
    assert_eq!(query(None, Some("bob@")), vec![1]);
    assert_eq!(query(None, Some("frank@b")), vec![2]);
    assert_eq!(query(None, Some("b.example")), vec![2, 1]);
    // Sender and recipient must match in the same transaction.
    assert_eq!(query(Some("erin"), Some("frank")), vec![2]);
    assert_eq!(query(Some("carol"), Some("frank")), Vec::<i64>::new());
    assert_eq!(query(Some("carol"), Some("dave")), vec![2]);
    // A session found comes back with all its transactions.
    let found = store
        .search(&TrackQuery {
            recipient: Some("frank".to_string()),
            ..TrackQuery::default()
        })
        .unwrap();
    assert_eq!(found[0].transactions.len(), 2);
}

#[test]
fn search_by_client_prefix_matches_peer_and_proxy_address() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let mut proxied = session(3, "127.0.0.1", None, &[]);
    proxied.proxy_ip = Some(ip("10.1.2.3"));
    store
        .record_sessions(&[
            session(1, "10.1.2.4", None, &[]),
            session(2, "10.11.0.1", None, &[]),
            proxied,
            session(4, "2001:DB8::1", None, &[]),
            session(5, "2001:db9::1", None, &[]),
        ])
        .unwrap();
    let by_client = |c: &str| {
        starts(
            &store,
            &TrackQuery {
                client: Some(c.to_string()),
                ..TrackQuery::default()
            },
        )
    };
    assert_eq!(by_client("10.1."), vec![3, 1]);
    assert_eq!(by_client("10.1"), vec![3, 2, 1]);
    assert_eq!(by_client("10.1.2.4"), vec![1]);
    assert_eq!(by_client("127."), vec![3]);
    assert_eq!(by_client("2001:DB8:"), vec![4]);
    assert_eq!(by_client("2001:db"), vec![5, 4]);
    assert_eq!(by_client("*"), Vec::<i64>::new());
}

#[test]
fn search_by_time_range_newest_first_with_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let sessions: Vec<_> = (1..=1200)
        .map(|t| session(t, "192.0.2.1", Some("a@x"), &["b@y"]))
        .collect();
    store.record_sessions(&sessions).unwrap();
    let range = |since: Option<i64>, until: Option<i64>| {
        starts(
            &store,
            &TrackQuery {
                since_unix_ms: since,
                until_unix_ms: until,
                ..TrackQuery::default()
            },
        )
    };
    assert_eq!(range(Some(10), Some(12)), vec![12, 11, 10]);
    assert_eq!(range(None, Some(2)), vec![2, 1]);
    assert_eq!(range(Some(1199), None), vec![1200, 1199]);
    assert_eq!(range(Some(13), Some(12)), Vec::<i64>::new());
    // Default limit 100, newest first.
    let all = range(None, None);
    assert_eq!(all.len(), 100);
    assert_eq!((all[0], all[99]), (1200, 1101));
    let limited = |limit: u32| {
        store
            .search(&TrackQuery {
                limit,
                ..TrackQuery::default()
            })
            .unwrap()
            .len()
    };
    assert_eq!(limited(0), 100);
    assert_eq!(limited(7), 7);
    assert_eq!(limited(5000), 1000);
    // Fields combine.
    let combined = TrackQuery {
        sender: Some("A@X".to_string()),
        recipient: Some("b@".to_string()),
        client: Some("192.0.2.".to_string()),
        since_unix_ms: Some(500),
        until_unix_ms: Some(600),
        limit: 3,
    };
    assert_eq!(starts(&store, &combined), vec![600, 599, 598]);
}

#[test]
fn same_start_time_is_ordered_by_id() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let a = store
        .record_session(&session(5, "192.0.2.1", None, &[]))
        .unwrap();
    let b = store
        .record_session(&session(5, "192.0.2.2", None, &[]))
        .unwrap();
    let ids: Vec<_> = store
        .search(&TrackQuery::default())
        .unwrap()
        .iter()
        .map(|s| s.id.unwrap())
        .collect();
    assert_eq!(ids, vec![b, a]);
}

#[test]
fn prune_by_age_and_by_count_takes_children_along() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let now = 1_000_000;
    let sessions: Vec<_> = (0..100)
        .map(|i| session(now - i * 1000, "192.0.2.1", Some("a@x"), &["b@y", "c@y"]))
        .collect();
    store.record_sessions(&sessions).unwrap();
    assert_eq!(count(&store, "track_recipients"), 200);

    // Nothing is old enough and the cap is not reached.
    assert_eq!(
        store
            .prune_tracking_at(now, Duration::from_secs(1000), 1000)
            .unwrap(),
        0
    );
    // Age: sessions started more than 49.5 s ago (50 .. 99 s) go.
    assert_eq!(
        store
            .prune_tracking_at(now, Duration::from_millis(49_500), u64::MAX)
            .unwrap(),
        50
    );
    let left = starts(&store, &TrackQuery::default());
    assert_eq!(left.len(), 50);
    assert_eq!(*left.last().unwrap(), now - 49_000);
    assert_eq!(count(&store, "track_transactions"), 50);
    assert_eq!(count(&store, "track_recipients"), 100);
    // Count: keep the 10 newest.
    assert_eq!(store.prune_tracking_at(now, Duration::MAX, 10).unwrap(), 40);
    let left = starts(&store, &TrackQuery::default());
    assert_eq!(left, (0..10).map(|i| now - i * 1000).collect::<Vec<_>>());
    // Both rules: the stricter one wins.
    assert_eq!(
        store
            .prune_tracking_at(now, Duration::from_millis(4_500), 8)
            .unwrap(),
        5
    );
    assert_eq!(
        store
            .prune_tracking_at(now, Duration::from_secs(60), 2)
            .unwrap(),
        3
    );
    assert_eq!(
        starts(&store, &TrackQuery::default()),
        vec![now, now - 1000]
    );
    // The real clock: these sessions are from 1970.
    assert_eq!(
        store
            .prune_tracking(Duration::from_secs(3600), u64::MAX)
            .unwrap(),
        2
    );
    assert_eq!(count(&store, "track_sessions"), 0);
    assert_eq!(count(&store, "track_transactions"), 0);
    assert_eq!(count(&store, "track_recipients"), 0);
    assert!(store.integrity_check().unwrap().is_empty());
}

#[test]
fn prune_larger_than_one_chunk_and_to_zero() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let sessions: Vec<_> = (0..12_000)
        .map(|i| session(i, "192.0.2.1", None, &[]))
        .collect();
    store.record_sessions(&sessions).unwrap();
    assert_eq!(
        store
            .prune_tracking_at(20_000, Duration::MAX, 1000)
            .unwrap(),
        11_000
    );
    assert_eq!(starts(&store, &TrackQuery::default())[0], 11_999);
    assert_eq!(
        store.prune_tracking_at(20_000, Duration::MAX, 0).unwrap(),
        1000
    );
    assert_eq!(count(&store, "track_sessions"), 0);
}

#[test]
fn thousand_sessions_one_by_one_and_in_a_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let make = |base: i64| -> Vec<SessionRecord> {
        (0..1000)
            .map(|i| {
                let mut s = session(
                    base + i,
                    "198.51.100.20",
                    Some("news@list.example"),
                    &["a@example.com", "b@example.com"],
                );
                s.tls = Some("TLSv1.3".to_string());
                s
            })
            .collect()
    };
    let one_by_one = make(0);
    let started = Instant::now();
    for s in &one_by_one {
        store.record_session(s).unwrap();
    }
    let single = started.elapsed();
    let batch = make(10_000);
    let started = Instant::now();
    for chunk in batch.chunks(100) {
        store.record_sessions(chunk).unwrap();
    }
    let batched = started.elapsed();
    println!(
        "tracking: 1000 sessions (1 transaction, 2 recipients each): record_session one by one \
         {single:?} ({:.0} µs/session); record_sessions in batches of 100 {batched:?} \
         ({:.0} µs/session)",
        single.as_secs_f64() * 1e3,
        batched.as_secs_f64() * 1e3,
    );
    assert_eq!(count(&store, "track_sessions"), 2000);
    assert_eq!(count(&store, "track_recipients"), 4000);
    let started = Instant::now();
    let found = store
        .search(&TrackQuery {
            recipient: Some("B@EXAMPLE".to_string()),
            limit: 1000,
            ..TrackQuery::default()
        })
        .unwrap();
    println!(
        "tracking: search by recipient, 1000 of 2000 sessions: {:?}",
        started.elapsed()
    );
    assert_eq!(found.len(), 1000);
    assert_eq!(found[0].started_unix_ms, 10_999);
}

#[test]
fn a_failed_write_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let mut bad = session(2, "192.0.2.2", Some("a@x"), &["b@y"]);
    bad.transactions[0].size = u64::MAX;
    assert!(store.record_session(&bad).is_err());
    let good = session(1, "192.0.2.1", Some("a@x"), &["b@y"]);
    assert!(store.record_sessions(&[good.clone(), bad]).is_err());
    assert_eq!(count(&store, "track_sessions"), 0);
    assert_eq!(count(&store, "track_recipients"), 0);
    assert_eq!(store.record_sessions(&[]).unwrap(), Vec::<i64>::new());
    let ids = store.record_sessions(&[good.clone(), good]).unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids[0] < ids[1]);
}

#[test]
fn tracking_is_not_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    store.replace_policy(&policy()).unwrap();
    let mut rx = store.subscribe();
    rx.mark_unchanged();
    store
        .record_session(&session(1, "192.0.2.1", Some("a@x"), &["b@y"]))
        .unwrap();
    store.prune_tracking(Duration::ZERO, 0).unwrap();
    store.self_signed_certificate("smtp", &[]).unwrap();
    assert!(!rx.has_changed().unwrap());
    assert_eq!(store.policy().unwrap().to_toml(), policy().to_toml());
    // Another handle sees no policy change either.
    let other = open(tmp.path());
    other
        .record_session(&session(2, "192.0.2.1", None, &[]))
        .unwrap();
    assert!(!store.refresh().unwrap());
}

#[test]
fn query_and_records_deserialize_with_defaults() {
    let q: TrackQuery = toml::from_str("sender = \"alice\"").unwrap();
    assert_eq!(q.sender.as_deref(), Some("alice"));
    assert_eq!(q.limit, 100);
    let s = session(1, "192.0.2.1", Some("a@x"), &["b@y"]);
    let text = toml::to_string(&s).unwrap();
    assert!(text.contains("result = \"accepted\""), "{text}");
    let back: SessionRecord = toml::from_str(&text).unwrap();
    assert_eq!(back, s);
}
