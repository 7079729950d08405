//! Tests of the check loop, with scripted probe results and paused time.

use crate::health::Health;
use crate::testutil::{pool_cfg, server_cfg, ScriptedCheck};
use crate::Pools;
use mxgate_config::{Balance, ServerState};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

async fn next_call(rx: &mut UnboundedReceiver<SocketAddr>) -> SocketAddr {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("a check within a minute")
        .expect("checker alive")
}

#[tokio::test(start_paused = true)]
async fn results_drive_rise_and_fall() {
    let (check, mut calls) = ScriptedCheck::new(true);
    let cfg = pool_cfg(Balance::Roundrobin, vec![server_cfg("a", 2501, 1, 0)]);
    let addr = cfg.servers[0].address;
    check.script(addr, &[true, false, false, true, true]);
    let pools = Pools::with_checker(Arc::new(check));
    pools.apply(&[cfg]);
    let server = pools.get("mta").unwrap().servers()[0].clone();
    assert_eq!(server.health(), Health::Unknown);

    // a moment after call k, result k is recorded (the next call is 1 s away)
    let expected = [
        Health::Up,   // first success decides at once
        Health::Up,   // one failure of fall = 2
        Health::Down, // second failure
        Health::Down, // one success of rise = 2
        Health::Up,   // second success
    ];
    for (k, want) in expected.iter().enumerate() {
        assert_eq!(next_call(&mut calls).await, addr);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(server.health(), *want, "after {} results", k + 1);
    }
    let status = server.status();
    assert_eq!(status.consecutive_ok, 2);
    let last = status.last_check.unwrap();
    assert!(last.ok);
    assert_eq!(last.banner.as_deref(), Some("fake ESMTP"));
    pools.shutdown_and_wait().await;
}

#[tokio::test(start_paused = true)]
async fn failure_is_recorded_with_its_error() {
    let (check, mut calls) = ScriptedCheck::new(false);
    let pools = Pools::with_checker(Arc::new(check));
    pools.apply(&[pool_cfg(
        Balance::Roundrobin,
        vec![server_cfg("a", 2501, 1, 0)],
    )]);
    next_call(&mut calls).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let pool = pools.get("mta").unwrap();
    let status = pool.servers()[0].status();
    assert_eq!(status.health, Health::Down);
    assert_eq!(
        status.last_check.unwrap().error.as_deref(),
        Some("banner timeout")
    );
    assert!(!pool.has_usable_server());
    pools.shutdown();
}

#[tokio::test(start_paused = true)]
async fn checks_run_every_interval_with_small_jitter() {
    let (check, mut calls) = ScriptedCheck::new(true);
    let pools = Pools::with_checker(Arc::new(check));
    pools.apply(&[pool_cfg(
        Balance::Roundrobin,
        vec![server_cfg("a", 2501, 1, 0)],
    )]);
    let start = Instant::now();
    next_call(&mut calls).await;
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "first check soon"
    );
    let mut last = Instant::now();
    for _ in 0..5 {
        next_call(&mut calls).await;
        let gap = last.elapsed();
        // Jitter is below 5% (50 ms); tokio's timer rounds a deadline up to
        // the next millisecond, so 1050 ms itself can be seen.
        assert!(
            gap >= Duration::from_secs(1) && gap <= Duration::from_millis(1051),
            "{gap:?}"
        );
        last = Instant::now();
    }
    pools.shutdown();
}

#[tokio::test(start_paused = true)]
async fn maint_servers_are_not_checked_and_removed_ones_stop() {
    let (check, mut calls) = ScriptedCheck::new(true);
    let mut cfg = pool_cfg(
        Balance::Roundrobin,
        vec![server_cfg("a", 2501, 1, 0), server_cfg("b", 2502, 1, 0)],
    );
    cfg.servers[1].state = ServerState::Maint;
    let (a, b) = (cfg.servers[0].address, cfg.servers[1].address);
    let pools = Pools::with_checker(Arc::new(check));
    pools.apply(std::slice::from_ref(&cfg));
    for _ in 0..5 {
        assert_eq!(next_call(&mut calls).await, a);
    }

    // out of maintenance: checked again
    cfg.servers[1].state = ServerState::Ready;
    pools.apply(std::slice::from_ref(&cfg));
    let mut seen_b = false;
    for _ in 0..6 {
        seen_b |= next_call(&mut calls).await == b;
    }
    assert!(seen_b);

    // a removed: only b is checked from now on
    cfg.servers.remove(0);
    pools.apply(std::slice::from_ref(&cfg));
    tokio::time::sleep(Duration::from_millis(1)).await;
    while calls.try_recv().is_ok() {}
    for _ in 0..5 {
        assert_eq!(next_call(&mut calls).await, b);
    }

    // shut down: nothing any more
    pools.shutdown_and_wait().await;
    while calls.try_recv().is_ok() {}
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(calls.try_recv().is_err());
}
