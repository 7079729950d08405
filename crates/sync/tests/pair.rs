//! Two stores syncing over loopback with mutual TLS and pinned keys, and a
//! scripted fake peer for the refusals (version, replay, truncation).

use mxgate_store::Store;

/// This build's store schema version, as the Hello carries it.
const SCHEMA: u32 = mxgate_store::SCHEMA_VERSION as u32;
use mxgate_sync::frame::{self, Frame, PROTOCOL_VERSION};
use mxgate_sync::session::{self, Context, SessionError, Shared};
use mxgate_sync::{Identity, Options, Pin, Timing};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

struct Node {
    _dir: tempfile::TempDir,
    store: Arc<Store>,
    identity: Identity,
    addr: SocketAddr,
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn node() -> Node {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let identity = Identity::load_or_create(dir.path()).unwrap();
    Node {
        _dir: dir,
        store,
        identity,
        addr: free_addr(),
    }
}

fn timing() -> Timing {
    Timing {
        push_interval: Duration::from_millis(20),
        digest_interval: Duration::from_millis(500),
    }
}

async fn start(
    n: &Node,
    name: &str,
    peer: &Node,
    pin: Pin,
    stop: &CancellationToken,
) -> Arc<Shared> {
    let opts = Options {
        name: name.into(),
        listen: Some(n.addr),
        peer: Some(peer.addr),
        peer_pin: pin,
        timing: timing(),
    };
    let (shared, mut tasks) =
        mxgate_sync::start(Arc::clone(&n.store), &n.identity, opts, stop.child_token())
            .await
            .unwrap();
    // The tasks end when `stop` is cancelled.
    tasks.detach_all();
    shared
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Copies B's database files (no writer is active) to a new directory.
fn copy_store(n: &Node) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    let from = n.store.path().parent().unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name()
            .to_string_lossy()
            .starts_with(mxgate_store::DB_FILE)
        {
            std::fs::copy(e.path(), to.path().join(e.file_name())).unwrap();
        }
    }
    to
}

fn dump(s: &Store) -> String {
    s.canonical_dump().unwrap()
}

fn ip(i: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, i])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edits_on_either_side_reach_the_other_and_both_converge() {
    let (a, b) = (node(), node());
    a.store.temp_allowlist_add(ip(1), 4_000_000_000).unwrap();
    let stop = CancellationToken::new();
    let sa = start(&a, "gw-a", &b, b.identity.pin, &stop).await;
    let sb = start(&b, "gw-b", &a, a.identity.pin, &stop).await;
    eventually("A's edit on B", || dump(&a.store) == dump(&b.store)).await;
    assert!(dump(&b.store).contains("192.0.2.1"));
    b.store.temp_allowlist_add(ip(2), 4_000_000_000).unwrap();
    eventually("B's edit on A", || dump(&a.store).contains("192.0.2.2")).await;
    // Concurrent edits of the same row on both sides.
    for i in 0..20 {
        a.store
            .temp_allowlist_add(ip(3), 4_000_000_000 + i)
            .unwrap();
        b.store
            .temp_allowlist_add(ip(3), 4_100_000_000 + i)
            .unwrap();
    }
    eventually("convergence", || dump(&a.store) == dump(&b.store)).await;
    eventually("nothing pending", || {
        sa.status().pending == 0 && sb.status().pending == 0
    })
    .await;
    let (st_a, st_b) = (sa.status(), sb.status());
    assert!(st_a.up && st_b.up);
    assert_eq!(st_a.name.as_deref(), Some("gw-b"));
    assert_eq!(
        st_a.refused_total + st_b.refused_total,
        0,
        "{st_a:?} {st_b:?}"
    );
    assert!(st_a.last_sync_unix_ms.is_some());
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_heals_and_a_wiped_peer_is_repaired_by_anti_entropy() {
    let (a, b) = (node(), node());
    let stop_a = CancellationToken::new();
    let stop_b = CancellationToken::new();
    start(&a, "gw-a", &b, b.identity.pin, &stop_a).await;
    let sb = start(&b, "gw-b", &a, a.identity.pin, &stop_b).await;
    a.store.temp_allowlist_add(ip(1), 4_000_000_000).unwrap();
    eventually("first sync", || dump(&a.store) == dump(&b.store)).await;
    // B goes away; both sides edit.
    stop_b.cancel();
    eventually("B down", || !sb.status().up).await;
    a.store.temp_allowlist_add(ip(10), 4_000_000_000).unwrap();
    b.store.temp_allowlist_add(ip(11), 4_000_000_000).unwrap();
    let backup = copy_store(&b);
    let stop_b = CancellationToken::new();
    let sb = start(&b, "gw-b", &a, a.identity.pin, &stop_b).await;
    eventually("healed", || {
        let d = dump(&a.store);
        d == dump(&b.store) && d.contains("192.0.2.10") && d.contains("192.0.2.11")
    })
    .await;
    // A "restored backup": B comes back with the copy of its database
    // taken while it was down (same node id, without 192.0.2.10). A's
    // acknowledgements say B has that row, so only anti-entropy (digest
    // mismatch -> full resend) brings it back.
    stop_b.cancel();
    eventually("B down again", || !sb.status().up).await;
    let c = Node {
        store: Arc::new(Store::open(backup.path()).unwrap()),
        _dir: backup,
        identity: b.identity.clone(),
        addr: b.addr,
    };
    assert_eq!(
        c.store.sync_node_id().unwrap(),
        b.store.sync_node_id().unwrap()
    );
    assert!(!dump(&c.store).contains("192.0.2.10"));
    let stop_c = CancellationToken::new();
    start(&c, "gw-b", &a, a.identity.pin, &stop_c).await;
    eventually("restored peer repaired", || {
        dump(&a.store) == dump(&c.store)
    })
    .await;
    assert!(dump(&c.store).contains("192.0.2.10"));
    stop_a.cancel();
    stop_c.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unpinned_peer_is_refused_on_both_sides() {
    let (a, b, stranger) = (node(), node(), node());
    a.store.temp_allowlist_add(ip(1), 4_000_000_000).unwrap();
    let stop = CancellationToken::new();
    // A pins the stranger's key, not B's; B pins A correctly.
    let sa = start(&a, "gw-a", &b, stranger.identity.pin, &stop).await;
    let sb = start(&b, "gw-b", &a, a.identity.pin, &stop).await;
    eventually("refusals on both sides", || {
        sa.status().refused_total > 0 && sb.status().refused_total > 0
    })
    .await;
    assert!(!sa.status().up && !sb.status().up);
    let why = sa.status().last_error.unwrap();
    assert!(
        why.contains("not the pinned key") || why.contains("TLS"),
        "{why}"
    );
    assert!(!dump(&b.store).contains("192.0.2.1"));
    stop.cancel();
}

#[test]
fn the_identity_is_kept_private_and_stable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let one = Identity::load_or_create(dir.path()).unwrap();
    let two = Identity::load_or_create(dir.path()).unwrap();
    assert_eq!(one.pin, two.pin);
    for f in mxgate_sync::identity_files(dir.path()) {
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    assert_eq!(Pin::from_hex(&one.pin.to_string()).unwrap(), one.pin);
    assert!(Pin::from_hex("abcd").is_err());
}

/// A scripted peer on the other end of an in-memory stream.
struct Fake {
    rd: tokio::io::ReadHalf<tokio::io::DuplexStream>,
    wr: tokio::io::WriteHalf<tokio::io::DuplexStream>,
}

impl Fake {
    async fn send(&mut self, f: &Frame) {
        frame::write_frame(&mut self.wr, f).await.unwrap();
    }
    /// Sends this build's Hello as node `node` called `name`.
    async fn hello(&mut self, node: mxgate_store::NodeId, name: &str) {
        self.send(&Frame::Hello {
            protocol_version: PROTOCOL_VERSION,
            schema_version: SCHEMA,
            node,
            name: name.into(),
        })
        .await;
    }
    /// Next frame that is not a keepalive ping.
    async fn recv(&mut self) -> Option<Frame> {
        loop {
            let frame = frame::read_payload(&mut self.rd)
                .await
                .ok()
                .flatten()
                .map(|p| frame::decode(&p).unwrap());
            if frame != Some(Frame::Ping) {
                return frame;
            }
        }
    }
    /// Next frame that is not a Digest.
    async fn recv_skip_digest(&mut self) -> Option<Frame> {
        loop {
            match self.recv().await {
                Some(Frame::Digest { .. }) => continue,
                other => return other,
            }
        }
    }
}

fn context(n: &Node) -> Context {
    Context {
        store: Arc::clone(&n.store),
        name: "gw-a".into(),
        timing: Timing {
            push_interval: Duration::from_millis(20),
            digest_interval: Duration::from_secs(3600),
        },
        shared: Arc::new(Shared::default()),
        stop: CancellationToken::new(),
        trust: None,
    }
}

fn fake_pair(
    n: &Node,
) -> (
    Fake,
    tokio::task::JoinHandle<Result<(), SessionError>>,
    Context,
) {
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let ctx = context(n);
    let c = ctx.clone();
    let task = tokio::spawn(async move { session::session(ours, &c, false, None).await });
    let (rd, wr) = tokio::io::split(theirs);
    (Fake { rd, wr }, task, ctx)
}

#[tokio::test]
async fn a_newer_protocol_version_is_refused_with_a_clear_error() {
    let a = node();
    let (mut fake, task, ctx) = fake_pair(&a);
    assert!(matches!(
        fake.recv().await,
        Some(Frame::Hello {
            protocol_version: PROTOCOL_VERSION,
            schema_version: SCHEMA,
            ..
        })
    ));
    // A newer version's Hello with fields this version does not know.
    let mut payload = postcard_hello(PROTOCOL_VERSION + 1);
    payload.extend_from_slice(&[1, 2, 3, 4, 5]);
    let mut bytes = u32::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
    bytes.extend_from_slice(&payload);
    tokio::io::AsyncWriteExt::write_all(&mut fake.wr, &bytes)
        .await
        .unwrap();
    let newer = format!("version {} is not supported", PROTOCOL_VERSION + 1);
    match fake.recv().await {
        Some(Frame::Error { text }) => assert!(text.contains(&newer), "{text}"),
        other => panic!("{other:?}"),
    }
    let e = task.await.unwrap().unwrap_err();
    assert!(e.to_string().contains(&newer), "{e}");
    assert!(!ctx.shared.status().up);
    assert_eq!(ctx.shared.status().refused_total, 1);
}

fn postcard_hello(version: u32) -> Vec<u8> {
    // Variant 0, then the version, as varints (the stable Hello prefix).
    let mut out = vec![0u8];
    let mut v = version;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[tokio::test]
async fn a_refusal_from_the_peer_ends_the_session_with_its_text() {
    let a = node();
    let (mut fake, task, _ctx) = fake_pair(&a);
    fake.recv().await.unwrap();
    fake.send(&Frame::Error {
        text: "sync protocol version 1 is not supported".into(),
    })
    .await;
    match task.await.unwrap() {
        Err(SessionError::PeerRefused(text)) => assert!(text.contains("not supported")),
        other => panic!("{other:?}"),
    }
}

async fn peer_batch() -> (Node, mxgate_store::Batch) {
    let p = node();
    p.store.temp_allowlist_add(ip(7), 4_000_000_000).unwrap();
    let batch = p.store.sync_changes_since(0, 100).unwrap();
    (p, batch)
}

#[tokio::test]
async fn a_replayed_batch_closes_the_connection_and_changes_nothing_more() {
    let a = node();
    let (p, batch) = peer_batch().await;
    let (mut fake, task, ctx) = fake_pair(&a);
    fake.recv().await.unwrap();
    let peer = p.store.sync_node_id().unwrap();
    fake.hello(peer, "gw-b").await;
    let changes = Frame::Changes {
        epoch: 0,
        after_seq: 0,
        batch: batch.clone(),
    };
    fake.send(&changes).await;
    loop {
        match fake.recv_skip_digest().await {
            Some(Frame::Ack { up_to }) => {
                assert_eq!(up_to, batch.last_seq);
                break;
            }
            Some(Frame::Changes { .. }) => continue,
            other => panic!("{other:?}"),
        }
    }
    let after_first = dump(&a.store);
    assert!(after_first.contains("192.0.2.7"));
    fake.send(&changes).await;
    let e = task.await.unwrap().unwrap_err();
    assert!(e.to_string().contains("replayed"), "{e}");
    assert_eq!(dump(&a.store), after_first);
    assert_eq!(ctx.shared.status().refused_total, 1);
}

#[tokio::test]
async fn a_truncated_frame_closes_the_connection_and_the_store_is_unchanged() {
    let a = node();
    let (p, batch) = peer_batch().await;
    let before = dump(&a.store);
    let (mut fake, task, ctx) = fake_pair(&a);
    fake.recv().await.unwrap();
    fake.hello(p.store.sync_node_id().unwrap(), "gw-b").await;
    let bytes = frame::encode(&Frame::Changes {
        epoch: 0,
        after_seq: 0,
        batch,
    })
    .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut fake.wr, &bytes[..bytes.len() - 3])
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::shutdown(&mut fake.wr)
        .await
        .unwrap();
    let e = task.await.unwrap().unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
    assert_eq!(dump(&a.store), before);
    assert_eq!(ctx.shared.status().refused_total, 1);
}

#[tokio::test]
async fn a_batch_for_a_node_local_table_is_refused_whole() {
    let a = node();
    let (p, mut batch) = peer_batch().await;
    let before = dump(&a.store);
    let mut bad = batch.changes[0].clone();
    bad.table = "sync_node".into();
    batch.changes.push(bad);
    let (mut fake, task, _ctx) = fake_pair(&a);
    fake.recv().await.unwrap();
    fake.hello(p.store.sync_node_id().unwrap(), "gw-b").await;
    fake.send(&Frame::Changes {
        epoch: 0,
        after_seq: 0,
        batch,
    })
    .await;
    match fake.recv_skip_digest().await {
        Some(Frame::Error { text }) => assert!(text.contains("node-local"), "{text}"),
        other => panic!("{other:?}"),
    }
    assert!(task.await.unwrap().is_err());
    assert_eq!(dump(&a.store), before);
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_taken_for_gone_and_a_pinging_one_is_not() {
    let a = node();
    let (mut fake, task, ctx) = fake_pair(&a);
    fake.recv().await.unwrap();
    fake.hello(mxgate_store::NodeId(5), "gw-b").await;
    // Pinging for 30 s keeps the session up.
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        fake.send(&Frame::Ping).await;
    }
    assert!(ctx.shared.status().up);
    // Then silence: gone after the limit, not counted as a refusal.
    let e = task.await.unwrap().unwrap_err();
    assert!(matches!(e, SessionError::Silent(_)), "{e}");
    assert!(!ctx.shared.status().up);
    assert_eq!(ctx.shared.status().refused_total, 0);
}

#[tokio::test]
async fn a_peer_with_another_store_schema_is_refused_with_a_clear_error() {
    let a = node();
    let before = dump(&a.store);
    let (mut fake, task, ctx) = fake_pair(&a);
    fake.recv().await.unwrap();
    fake.send(&Frame::Hello {
        protocol_version: PROTOCOL_VERSION,
        schema_version: SCHEMA + 1,
        node: mxgate_store::NodeId(5),
        name: "gw-b".into(),
    })
    .await;
    match fake.recv().await {
        Some(Frame::Error { text }) => assert!(
            text.contains(&format!("schema is version {}", SCHEMA + 1))
                && text.contains("same mxgate"),
            "{text}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(task.await.unwrap().is_err());
    assert_eq!(ctx.shared.status().refused_total, 1);
    assert_eq!(dump(&a.store), before);
}

#[tokio::test]
async fn a_peer_with_this_nodes_id_and_name_is_refused() {
    let a = node();
    let (mut fake, task, _ctx) = fake_pair(&a);
    fake.recv().await.unwrap();
    fake.hello(a.store.sync_node_id().unwrap(), "gw-a").await;
    match fake.recv().await {
        Some(Frame::Error { text }) => assert!(text.contains("this node's id"), "{text}"),
        other => panic!("{other:?}"),
    }
    assert!(task.await.unwrap().is_err());
}

#[tokio::test]
async fn of_two_nodes_with_one_id_the_first_name_draws_a_new_id() {
    for (peer_name, redraws) in [("gw-b", true), ("aa", false)] {
        let a = node();
        let before = a.store.sync_node_id().unwrap();
        let (mut fake, task, _ctx) = fake_pair(&a);
        fake.recv().await.unwrap();
        fake.hello(before, peer_name).await;
        assert!(matches!(task.await.unwrap(), Err(SessionError::Closed)));
        let after = a.store.sync_node_id().unwrap();
        assert_eq!(after != before, redraws, "gw-a against {peer_name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_copied_onto_the_peer_gets_a_new_id_and_the_pair_converges() {
    let a = node();
    a.store.temp_allowlist_add(ip(1), 4_000_000_000).unwrap();
    // B starts from a copy of A's database (a backup restored on the
    // wrong box): same node id.
    let copy = copy_store(&a);
    let b_store = Arc::new(Store::open(copy.path()).unwrap());
    let b_identity = Identity::load_or_create(copy.path()).unwrap();
    let b = Node {
        _dir: copy,
        store: b_store,
        identity: b_identity,
        addr: free_addr(),
    };
    let id = a.store.sync_node_id().unwrap();
    assert_eq!(b.store.sync_node_id().unwrap(), id);
    let stop = CancellationToken::new();
    let sa = start(&a, "gw-a", &b, b.identity.pin, &stop).await;
    let sb = start(&b, "gw-b", &a, a.identity.pin, &stop).await;
    eventually("both up", || sa.status().up && sb.status().up).await;
    assert_ne!(
        a.store.sync_node_id().unwrap(),
        id,
        "gw-a sorts first: new id"
    );
    assert_eq!(b.store.sync_node_id().unwrap(), id);
    a.store.temp_allowlist_add(ip(2), 4_000_000_000).unwrap();
    b.store.temp_allowlist_add(ip(3), 4_000_000_000).unwrap();
    eventually("convergence", || {
        let (da, db) = (dump(&a.store), dump(&b.store));
        da == db && da.contains("192.0.2.2") && da.contains("192.0.2.3")
    })
    .await;
    stop.cancel();
}
