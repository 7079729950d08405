//! Store-side drivers for `scripts/bench sync`: they write through
//! mxgate's own store code (a plain `sqlite3` cannot write the synced
//! tables: the change-log triggers need mxgate's SQL functions), as a
//! second process beside a running `mxgate run`, exactly like `mxgate
//! policy import` does.
//!
//! - [`fill_greylist`]: `rows` greylisting first attempts (one triplet row
//!   each), through `Store::greylist_check`, the gateway's own path.
//! - [`edits`]: single-row edits (temporary allowlist entries) on one
//!   store, each timed until another store (the peer's, written by its
//!   sync task) holds it.

use crate::stats::{round3, Summary};
use anyhow::{Context, Result};
use mxgate_filter::greylist::{Greylist, GreylistContext, GreylistSettings, Triplet};
use mxgate_store::Store;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Creates `rows` greylist triplets in the store of `data_dir`; prints
/// `{"rows":N,"seconds":S}`.
///
/// # Errors
/// When the store cannot be opened or written.
pub fn fill_greylist(data_dir: &Path, rows: u64) -> Result<String> {
    let store = open(data_dir)?;
    let greylist = Greylist::new(GreylistSettings::default()).context("greylist settings")?;
    let ctx = GreylistContext {
        spf_pass_domain: None,
        dmarc_aligned_pass: false,
    };
    let now = unix_now().as_secs();
    let started = Instant::now();
    for i in 0..rows {
        let recipient = format!("user{i}@bench.example");
        let triplet = Triplet {
            client: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            sender: "sender@bench.example",
            recipient: &recipient,
        };
        store
            .greylist_check(&greylist, &triplet, now, &ctx)
            .with_context(|| format!("greylist row {i}"))?;
    }
    Ok(format!(
        "{{\"rows\":{rows},\"seconds\":{}}}",
        round3(started.elapsed().as_secs_f64())
    ))
}

/// Makes `count` single-row edits, alternating between the two stores
/// (`a` then `b`, unless `one_way`), each a new temporary allowlist entry,
/// and waits for each to show up in the other store (polled every
/// `poll`); prints the propagation latency percentiles as JSON.
///
/// # Errors
/// When a store fails or an edit does not arrive within `timeout`.
pub fn edits(
    a: &Path,
    b: &Path,
    count: u32,
    one_way: bool,
    poll: Duration,
    timeout: Duration,
) -> Result<String> {
    let (store_a, store_b) = (open(a)?, open(b)?);
    let base = u32::try_from(unix_now().as_secs() % 1_000_000).unwrap_or(0) * 1000;
    let mut samples = Vec::with_capacity(count as usize);
    for i in 0..count {
        let (writer, reader) = if one_way || i % 2 == 0 {
            (&store_a, &store_b)
        } else {
            (&store_b, &store_a)
        };
        // A fresh address per edit and per run (base moves with the clock).
        let client = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | ((base + i) & 0x00ff_ffff)));
        let now = i64::try_from(unix_now().as_secs()).unwrap_or(i64::MAX);
        let started = Instant::now();
        writer.temp_allowlist_add(client, now + 3600)?;
        loop {
            if reader.temp_allowlist_contains(client, now)? {
                samples.push(started.elapsed());
                break;
            }
            if started.elapsed() > timeout {
                anyhow::bail!("edit {i} ({client}) did not arrive within {timeout:?}");
            }
            std::thread::sleep(poll);
        }
    }
    let s = Summary::of(&mut samples);
    Ok(format!(
        "{{\"edits\":{count},\"p50_ms\":{},\"p90_ms\":{},\"p99_ms\":{},\"max_ms\":{}}}",
        s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
    ))
}

fn open(data_dir: &Path) -> Result<Store> {
    Store::open(data_dir)
        .with_context(|| format!("cannot open the store in {}", data_dir.display()))
}

fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}
