//! Black-box tests of peer sync: two `mxgate run` processes on loopback,
//! paired by pinned keys (`mxgate cluster pin`), syncing their stores.
//!
//! Both gateways share one policy, so both bind the same SMTP listener
//! (SO_REUSEPORT); a test that must reach one box in particular stops the
//! other first.

mod support;

use std::net::SocketAddr;
use std::time::Duration;
use support::gateway::{mxgate_output, smtp_policy, Gateway, Sink, SmtpClient};
use support::sync::{peer_up, wait_refused_both_ways, with_domains};
use support::{free_addr, poll};

const WAIT: Duration = Duration::from_secs(15);
const NO_PIN: &str = "0000000000000000000000000000000000000000000000000000000000000000";

struct Pair {
    a: Gateway,
    b: Gateway,
    a_sync: SocketAddr,
    b_sync: SocketAddr,
}

fn sync_section(listen: SocketAddr, peer: SocketAddr, pin: &str) -> String {
    format!("[sync]\nlisten = \"{listen}\"\npeer = \"{peer}\"\npeer_key = \"{pin}\"\n")
}

fn pin_of(gw: &Gateway) -> String {
    let (code, out) = mxgate_output(&[
        "cluster",
        "pin",
        "--config",
        gw.node_file().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    out.lines()
        .map(str::trim)
        .find(|l| l.len() == 64 && l.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no pin in {out}"))
        .to_string()
}

fn set_pin(gw: &Gateway, pin: &str) {
    let text = std::fs::read_to_string(gw.node_file()).unwrap();
    assert!(text.contains(NO_PIN));
    std::fs::write(gw.node_file(), text.replace(NO_PIN, pin)).unwrap();
}

/// Two gateways that first do not know each other's key (and refuse each
/// other: checked), then are paired with `mxgate cluster pin` and
/// restarted.
fn pair(policy: &str) -> Pair {
    let (a_sync, b_sync) = (free_addr(), free_addr());
    let mut a =
        Gateway::start_with_node_extra("gw-a", policy, &sync_section(a_sync, b_sync, NO_PIN));
    let mut b =
        Gateway::start_with_node_extra("gw-b", policy, &sync_section(b_sync, a_sync, NO_PIN));
    // Unpinned keys: refused on both sides, never up.
    wait_refused_both_ways(&a, a_sync, &b, b_sync, WAIT);
    // The last error alternates between the two sides' messages: poll.
    let named = poll(WAIT, || {
        (a.status().contains("not the pinned key") || b.status().contains("not the pinned key"))
            .then_some(())
    });
    assert!(named.is_some(), "{}\n{}", a.status(), b.status());
    // Pair: each box pins the other's key.
    let (pin_a, pin_b) = (pin_of(&a), pin_of(&b));
    set_pin(&a, &pin_b);
    set_pin(&b, &pin_a);
    a.restart();
    b.restart();
    a.wait_metric(&peer_up(b_sync), 1.0, WAIT);
    b.wait_metric(&peer_up(a_sync), 1.0, WAIT);
    Pair {
        a,
        b,
        a_sync,
        b_sync,
    }
}

fn import(gw: &Gateway, policy: &str) {
    let out = gw.import_policy(policy);
    assert!(out.status.success(), "{out:?}");
}

fn wait_same(p: &Pair, what: &str, check: impl Fn(&str) -> bool) -> String {
    support::sync::wait_same(&p.a, &p.b, WAIT, what, check)
}

#[test]
fn imports_on_either_box_reach_the_other_and_concurrent_imports_converge() {
    let sink = Sink::start("sink", false);
    let policy = smtp_policy(free_addr(), sink.addr, "");
    let mut p = pair(&policy);
    wait_same(&p, "start", |_| true);

    import(&p.a, &with_domains(&policy, "\"from-a.test\""));
    wait_same(&p, "A's import on B", |e| e.contains("from-a.test"));
    import(&p.b, &with_domains(&policy, "\"from-b.test\""));
    wait_same(&p, "B's import on A", |e| {
        e.contains("from-b.test") && !e.contains("from-a.test")
    });

    // Concurrent imports of different policies: both end identical.
    let (pa, pb) = (
        with_domains(&policy, "\"c1.test\", \"c2.test\""),
        with_domains(&policy, "\"c3.test\""),
    );
    std::thread::scope(|s| {
        s.spawn(|| import(&p.a, &pa));
        s.spawn(|| import(&p.b, &pb));
    });
    wait_same(&p, "concurrent imports", |_| true);

    // Partition: B stops; both are edited (B's edit is the policy file it
    // imports when it starts again, after A's edit); B comes back.
    p.b.proc.stop();
    import(&p.a, &with_domains(&policy, "\"while-b-down.test\""));
    std::fs::write(
        p.b.dir.path().join("policy.toml"),
        with_domains(&policy, "\"b-restart.test\""),
    )
    .unwrap();
    p.b.restart();
    let merged = wait_same(&p, "after the partition", |e| e.contains("b-restart.test"));
    // Per-row merge (docs/sync.md, limits): B's import deleted only the
    // rows B knew, so A's row added during the partition stays, on both.
    assert!(merged.contains("while-b-down.test"), "{merged}");
    let status = p.a.status();
    assert!(status.contains("\"sync\":{"), "{status}");
    assert!(status.contains("\"up\":true"), "{status}");
    assert!(status.contains("\"last_sync_unix_ms\":"), "{status}");
}

#[test]
fn a_sender_greylisted_on_a_is_accepted_through_b_after_the_delay() {
    let sink = Sink::start("sink", false);
    let bind = free_addr();
    let policy = format!(
        "{}[greylist]\nenabled = true\ndelay_s = 2\n",
        smtp_policy(bind, sink.addr, "")
    );
    let mut p = pair(&policy);
    let backend_up = "mxgate_backend_up{pool=\"mta\",server=\"mta1\"}";
    p.a.wait_metric(backend_up, 1.0, WAIT);
    // Only A listens: the first attempt is A's.
    p.b.proc.stop();
    let r = rcpt_reply(bind);
    assert!(r.starts_with("451 4.7.1"), "{r}");
    let deferred_at = std::time::Instant::now();
    // B comes back and receives the triplet; then only B listens.
    p.b.restart();
    p.b.wait_metric(backend_up, 1.0, WAIT);
    p.a.wait_metric(&peer_up(p.b_sync), 1.0, WAIT);
    p.b.wait_metric(&peer_up(p.a_sync), 1.0, WAIT);
    p.a.wait_metric(
        &format!("mxgate_sync_pending_changes{{peer=\"{}\"}}", p.b_sync),
        0.0,
        WAIT,
    );
    p.a.proc.stop();
    if let Some(left) = Duration::from_millis(2_500).checked_sub(deferred_at.elapsed()) {
        std::thread::sleep(left);
    }
    let r = rcpt_reply(bind);
    assert!(
        r.starts_with("250"),
        "retry through B after the delay: {r}\n{}",
        p.b.proc.output()
    );
}

/// The reply to `RCPT TO:<bob@example.test>` in a session of
/// alice@client.test through `bind` (then QUIT).
fn rcpt_reply(bind: SocketAddr) -> String {
    let mut c = SmtpClient::connect(bind).unwrap();
    assert!(c.reply().unwrap().starts_with("220"));
    assert!(c.command("EHLO client.test").unwrap().starts_with("250"));
    assert!(c
        .command("MAIL FROM:<alice@client.test>")
        .unwrap()
        .starts_with("250"));
    let r = c.command("RCPT TO:<bob@example.test>").unwrap();
    c.command("QUIT").unwrap();
    r
}

/// Creates greylist triplets `range` in the store of `data_dir` (the
/// gateway's own greylisting path, beside the running node).
fn fill_greylist(data_dir: &std::path::Path, range: std::ops::Range<u32>) {
    use mxgate_filter::greylist::{Greylist, GreylistContext, GreylistSettings, Triplet};
    let store = mxgate_store::Store::open(data_dir).unwrap();
    let greylist = Greylist::new(GreylistSettings::default()).unwrap();
    let ctx = GreylistContext {
        spf_pass_domain: None,
        dmarc_aligned_pass: false,
    };
    for i in range {
        let recipient = format!("user{i}@crash.test");
        let triplet = Triplet {
            client: "192.0.2.1".parse().unwrap(),
            sender: "sender@crash.test",
            recipient: &recipient,
        };
        store
            .greylist_check(&greylist, &triplet, 1_800_000_000, &ctx)
            .unwrap();
    }
}

/// Rows of `table` in `gw`'s store (read-only; -1 while unreadable).
fn count(gw: &Gateway, table: &str) -> i64 {
    count_in(&gw.data_dir(), table)
}

fn count_in(data_dir: &std::path::Path, table: &str) -> i64 {
    let path = data_dir.join("mxgate.db");
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    rusqlite::Connection::open_with_flags(path, flags)
        .and_then(|c| c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)))
        .unwrap_or(-1)
}

/// The canonical dump of every synced table (compared whole), after
/// asserting that `PRAGMA integrity_check` finds nothing.
fn dump_and_check(gw: &Gateway) -> String {
    let store = mxgate_store::Store::open(&gw.data_dir()).unwrap();
    assert_eq!(store.integrity_check().unwrap(), Vec::<String>::new());
    store.canonical_dump().unwrap()
}

/// Kills `victim` (SIGKILL) as soon as the receiver's store (`watched`,
/// a data directory) holds more than `above` greylist rows but fewer than
/// `total`: in the middle of the transfer. Returns the count seen at the
/// kill.
fn kill_mid_transfer(
    victim: &mut Gateway,
    watched: &std::path::Path,
    above: i64,
    total: i64,
) -> i64 {
    let seen = poll(WAIT, || {
        let n = count_in(watched, "greylist_triplets");
        (n > above).then_some(n)
    })
    .unwrap_or_else(|| panic!("no transfer started:\n{}", victim.proc.output()));
    victim.proc.signal("KILL");
    assert!(victim.proc.wait_exit(WAIT).is_some());
    assert!(
        seen < total,
        "the transfer ended before the kill ({seen} rows)"
    );
    seen
}

#[test]
fn sigkill_of_the_receiver_or_the_sender_mid_transfer_loses_nothing_and_corrupts_nothing() {
    const ROWS: u32 = 30_000; // three full batches (MAX_BATCH_CHANGES = 10,000)
    let sink = Sink::start("sink", false);
    let policy = smtp_policy(free_addr(), sink.addr, "");
    let mut p = pair(&policy);
    wait_same(&p, "start", |_| true);

    // The receiver dies while the batches arrive.
    p.b.proc.stop();
    fill_greylist(&p.a.data_dir(), 0..ROWS);
    p.b.respawn();
    let a_rows = count(&p.a, "greylist_triplets");
    let b_data = p.b.data_dir();
    let seen = kill_mid_transfer(&mut p.b, &b_data, 0, a_rows);
    eprintln!("receiver killed with {seen} of {a_rows} rows");
    p.b.restart();

    // The sender dies while the batches leave (B down meanwhile, so the
    // new rows are all pending).
    let base = count(&p.a, "greylist_triplets");
    poll(WAIT, || {
        (count(&p.b, "greylist_triplets") == base).then_some(())
    })
    .expect("B caught up after its restart");
    p.b.proc.stop();
    fill_greylist(&p.a.data_dir(), ROWS..2 * ROWS);
    p.b.respawn();
    let total = count(&p.a, "greylist_triplets");
    let seen = kill_mid_transfer(&mut p.a, &b_data, base, total);
    eprintln!("sender killed with {seen} of {total} rows on the receiver");
    p.a.restart();
    p.b.wait_metric(&peer_up(p.a_sync), 1.0, WAIT);

    let converged = poll(Duration::from_secs(30), || {
        (count(&p.b, "greylist_triplets") == total).then_some(())
    });
    assert!(
        converged.is_some(),
        "B: {}",
        count(&p.b, "greylist_triplets")
    );
    let same = poll(WAIT, || {
        let (da, db) = (dump_and_check(&p.a), dump_and_check(&p.b));
        (da == db).then_some(())
    });
    assert!(same.is_some(), "the canonical dumps differ");
}
