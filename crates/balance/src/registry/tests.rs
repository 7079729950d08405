//! Tests of [`Pools`]: live application of the configuration.

use super::*;
use crate::health::Health;
use crate::testutil::{pool_cfg, server_cfg, ScriptedCheck};
use mxgate_config::Balance;
use std::net::IpAddr;

fn client() -> IpAddr {
    "192.0.2.1".parse().unwrap()
}

fn named(name: &str, port: u16) -> PoolConfig {
    let mut cfg = pool_cfg(Balance::Roundrobin, vec![server_cfg("a", port, 1, 0)]);
    cfg.name = name.into();
    cfg
}

#[tokio::test(start_paused = true)]
async fn apply_creates_updates_and_removes_in_config_order() {
    let (check, _calls) = ScriptedCheck::new(true);
    let pools = Pools::with_checker(Arc::new(check));
    pools.apply(&[named("one", 2501), named("two", 2502)]);
    let names: Vec<_> = pools.all().iter().map(|p| p.name().to_owned()).collect();
    assert_eq!(names, ["one", "two"]);
    let two = pools.get("two").unwrap();

    let mut changed = named("two", 2502);
    changed.connect_timeout = std::time::Duration::from_secs(9);
    pools.apply(&[changed, named("three", 2503)]);
    let names: Vec<_> = pools.all().iter().map(|p| p.name().to_owned()).collect();
    assert_eq!(names, ["two", "three"]);
    assert!(pools.get("one").is_none());
    assert!(
        Arc::ptr_eq(&two, &pools.get("two").unwrap()),
        "updated in place"
    );
    assert_eq!(two.settings().connect_timeout.as_secs(), 9);
    pools.shutdown();
}

#[tokio::test(start_paused = true)]
async fn apply_keeps_counters_health_and_sessions_of_unchanged_servers() {
    let (check, mut calls) = ScriptedCheck::new(true);
    let pools = Pools::with_checker(Arc::new(check));
    let mut cfg = pool_cfg(
        Balance::First,
        vec![server_cfg("a", 2501, 1, 0), server_cfg("b", 2502, 1, 0)],
    );
    pools.apply(std::slice::from_ref(&cfg));
    calls.recv().await;
    calls.recv().await;
    tokio::time::sleep(std::time::Duration::from_millis(10)).await; // both checked once
    let pool = pools.get("mta").unwrap();
    let lease = pool.acquire(client(), &[]).await.unwrap();
    let a = lease.server().clone();
    assert_eq!(a.name(), "a");
    assert_eq!(a.health(), Health::Up);

    cfg.servers[0].weight = 9;
    cfg.servers[0].max_conn = 1;
    pools.apply(std::slice::from_ref(&cfg));
    let after = pools.get("mta").unwrap().servers();
    assert!(Arc::ptr_eq(&after[0], &a));
    assert_eq!(a.weight(), 9);
    assert_eq!(a.max_conn(), 1);
    assert_eq!(a.active_sessions(), 1);
    assert_eq!(a.sessions_total(), 1);
    assert_eq!(a.health(), Health::Up);
    // the new cap applies at once: a is full, so the next session goes to b
    assert_eq!(
        pool.acquire(client(), &[]).await.unwrap().server().name(),
        "b"
    );
    drop(lease);
    assert_eq!(a.active_sessions(), 0);
    pools.shutdown();
}

#[tokio::test(start_paused = true)]
async fn apply_after_shutdown_starts_no_checks() {
    let (check, mut calls) = ScriptedCheck::new(true);
    let pools = Pools::with_checker(Arc::new(check));
    pools.shutdown();
    pools.apply(&[named("one", 2501)]);
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    assert!(calls.try_recv().is_err());
    assert!(pools.get("one").is_some());
}
