//! Tests of [`Pool`]: selection through `acquire`, caps, the wait queue,
//! admin states and updates.

use super::*;
use crate::check::{CheckOutcome, SmtpCheck};
use crate::health::{Health, Thresholds};
use crate::testutil::{pool_cfg, server_cfg};
use mxgate_config::{Balance, ServerState};
use std::time::Duration;

fn pool(cfg: &PoolConfig) -> Arc<Pool> {
    Pool::new(cfg, Arc::new(SmtpCheck))
}

fn client() -> IpAddr {
    "192.0.2.1".parse().unwrap()
}

fn set_health(server: &Server, ok: bool) {
    let limits = Thresholds { rise: 1, fall: 1 };
    let outcome = CheckOutcome {
        ok,
        duration_ms: 0,
        error: None,
        banner: None,
        tls: None,
        at_unix: 0,
    };
    server.record_check(outcome, limits, Instant::now());
}

async fn queued(pool: &Pool, n: usize) {
    for _ in 0..1000 {
        if pool.queued() == n {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("expected {n} waiters, have {}", pool.queued());
}

#[tokio::test]
async fn roundrobin_through_acquire_follows_weights() {
    let p = pool(&pool_cfg(
        Balance::Roundrobin,
        vec![server_cfg("a", 2501, 1, 0), server_cfg("b", 2502, 3, 0)],
    ));
    let mut a = 0;
    for _ in 0..4000 {
        let lease = p.acquire(client(), &[]).await.unwrap();
        if lease.server().name() == "a" {
            a += 1;
        }
    }
    assert!((980..=1020).contains(&a), "25% ±2%: {a}");
    let s = p.servers();
    assert_eq!(s[0].sessions_total() + s[1].sessions_total(), 4000);
    assert_eq!(s[0].active_sessions() + s[1].active_sessions(), 0);
}

#[tokio::test]
async fn leastconn_through_acquire_prefers_the_idle_one() {
    let p = pool(&pool_cfg(
        Balance::Leastconn,
        vec![server_cfg("a", 2501, 1, 0), server_cfg("b", 2502, 1, 0)],
    ));
    let first = p.acquire(client(), &[]).await.unwrap();
    let second = p.acquire(client(), &[]).await.unwrap();
    assert_ne!(first.server().name(), second.server().name());
    let busy = first.server().clone();
    drop(second);
    for _ in 0..5 {
        let l = p.acquire(client(), &[]).await.unwrap();
        assert_ne!(l.server().id(), busy.id(), "the idle one");
    }
}

#[tokio::test]
async fn first_fills_in_config_order_under_max_conn() {
    let p = pool(&pool_cfg(
        Balance::First,
        vec![server_cfg("a", 2501, 1, 2), server_cfg("b", 2502, 1, 0)],
    ));
    let l1 = p.acquire(client(), &[]).await.unwrap();
    let l2 = p.acquire(client(), &[]).await.unwrap();
    let l3 = p.acquire(client(), &[]).await.unwrap();
    let names: Vec<_> = [&l1, &l2, &l3]
        .iter()
        .map(|l| l.server().name().to_owned())
        .collect();
    assert_eq!(names, ["a", "a", "b"]);
}

#[tokio::test]
async fn source_through_acquire_is_sticky() {
    let p = pool(&pool_cfg(
        Balance::Source,
        vec![
            server_cfg("a", 2501, 1, 0),
            server_cfg("b", 2502, 1, 0),
            server_cfg("c", 2503, 1, 0),
        ],
    ));
    for n in 0..50u8 {
        let ip = IpAddr::from([198, 51, 100, n]);
        let first = p.acquire(ip, &[]).await.unwrap().server().id();
        for _ in 0..3 {
            assert_eq!(p.acquire(ip, &[]).await.unwrap().server().id(), first);
        }
    }
}

#[tokio::test]
async fn drain_maint_and_down_get_no_sessions() {
    let mut cfg = pool_cfg(
        Balance::Roundrobin,
        vec![
            server_cfg("drain", 2501, 1, 0),
            server_cfg("maint", 2502, 1, 0),
            server_cfg("down", 2503, 1, 0),
            server_cfg("ok", 2504, 1, 0),
        ],
    );
    cfg.servers[0].state = ServerState::Drain;
    cfg.servers[1].state = ServerState::Maint;
    let p = pool(&cfg);
    set_health(&p.servers()[2], false);
    for _ in 0..20 {
        assert_eq!(
            p.acquire(client(), &[]).await.unwrap().server().name(),
            "ok"
        );
    }
    set_health(&p.servers()[3], false);
    assert_eq!(
        p.acquire(client(), &[]).await.unwrap_err(),
        NoServer::NoneUsable
    );
    assert!(!p.has_usable_server());
}

#[tokio::test]
async fn drain_keeps_existing_leases() {
    let mut cfg = pool_cfg(
        Balance::First,
        vec![server_cfg("a", 2501, 1, 0), server_cfg("b", 2502, 1, 0)],
    );
    let p = pool(&cfg);
    let lease = p.acquire(client(), &[]).await.unwrap();
    assert_eq!(lease.server().name(), "a");
    cfg.servers[0].state = ServerState::Drain;
    p.update(&cfg);
    assert_eq!(lease.server().active_sessions(), 1, "still open");
    assert_eq!(p.acquire(client(), &[]).await.unwrap().server().name(), "b");
    let a = lease.server().clone();
    drop(lease);
    assert_eq!(a.active_sessions(), 0);
}

#[tokio::test]
async fn tried_servers_are_skipped() {
    let p = pool(&pool_cfg(
        Balance::First,
        vec![server_cfg("a", 2501, 1, 0), server_cfg("b", 2502, 1, 0)],
    ));
    let servers = p.servers();
    let l = p.acquire(client(), &servers[..1]).await.unwrap();
    assert_eq!(l.server().name(), "b");
    assert_eq!(
        p.acquire(client(), &servers).await.unwrap_err(),
        NoServer::NoneUsable
    );
}

#[tokio::test(start_paused = true)]
async fn weight_zero_is_a_backup() {
    let p = pool(&pool_cfg(
        Balance::Roundrobin,
        vec![
            server_cfg("backup", 2501, 0, 0),
            server_cfg("main", 2502, 1, 1),
        ],
    ));
    let main = p.acquire(client(), &[]).await.unwrap();
    assert_eq!(main.server().name(), "main");
    // main is full but usable: wait for it rather than spill to the backup
    assert_eq!(
        p.acquire(client(), &[]).await.unwrap_err(),
        NoServer::QueueTimeout
    );
    set_health(main.server(), false);
    assert_eq!(
        p.acquire(client(), &[]).await.unwrap().server().name(),
        "backup"
    );
    assert!(p.has_usable_server());
}

#[tokio::test(start_paused = true)]
async fn waiter_gets_the_slot_when_a_lease_is_dropped() {
    let p = pool(&pool_cfg(
        Balance::Roundrobin,
        vec![server_cfg("a", 2501, 1, 1)],
    ));
    let lease = p.acquire(client(), &[]).await.unwrap();
    let p2 = p.clone();
    let waiter =
        tokio::spawn(async move { p2.acquire(client(), &[]).await.map(|l| l.server().id()) });
    queued(&p, 1).await;
    let id = lease.server().id();
    drop(lease);
    assert_eq!(waiter.await.unwrap(), Ok(id));
    assert_eq!(p.queued(), 0);
}

#[tokio::test(start_paused = true)]
async fn waiters_are_served_in_arrival_order() {
    let p = pool(&pool_cfg(
        Balance::Roundrobin,
        vec![server_cfg("a", 2501, 1, 1)],
    ));
    let lease = p.acquire(client(), &[]).await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for n in 0..3 {
        let (p2, tx) = (p.clone(), tx.clone());
        tokio::spawn(async move {
            let lease = p2.acquire(client(), &[]).await.unwrap();
            tx.send(n).unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(lease);
        });
        queued(&p, n + 1).await;
    }
    drop(lease);
    let order = [rx.recv().await, rx.recv().await, rx.recv().await];
    assert_eq!(order, [Some(0), Some(1), Some(2)]);
}

#[tokio::test(start_paused = true)]
async fn queue_full_and_queue_timeout() {
    let mut cfg = pool_cfg(Balance::Roundrobin, vec![server_cfg("a", 2501, 1, 1)]);
    cfg.max_queue = 1;
    let p = pool(&cfg);
    let _lease = p.acquire(client(), &[]).await.unwrap();
    let p2 = p.clone();
    let started = tokio::time::Instant::now();
    let waiter = tokio::spawn(async move { p2.acquire(client(), &[]).await.map(|_| ()) });
    queued(&p, 1).await;
    assert_eq!(
        p.acquire(client(), &[]).await.unwrap_err(),
        NoServer::QueueFull
    );
    assert_eq!(waiter.await.unwrap(), Err(NoServer::QueueTimeout));
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert_eq!(p.queued(), 0);

    cfg.max_queue = 0;
    p.update(&cfg);
    assert_eq!(
        p.acquire(client(), &[]).await.unwrap_err(),
        NoServer::QueueFull
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiter_that_tried_the_freed_server_is_passed_over() {
    let p = pool(&pool_cfg(
        Balance::First,
        vec![server_cfg("a", 2501, 1, 1), server_cfg("b", 2502, 1, 1)],
    ));
    let la = p.acquire(client(), &[]).await.unwrap();
    let lb = p.acquire(client(), &[]).await.unwrap();
    let a = la.server().clone();
    let p1 = p.clone();
    let tried = vec![a.clone()];
    let picky =
        tokio::spawn(async move { p1.acquire(client(), &tried).await.map(|l| l.server().id()) });
    queued(&p, 1).await;
    let p2 = p.clone();
    let other =
        tokio::spawn(async move { p2.acquire(client(), &[]).await.map(|l| l.server().id()) });
    queued(&p, 2).await;
    drop(la);
    assert_eq!(other.await.unwrap(), Ok(a.id()));
    let b = lb.server().id();
    drop(lb);
    assert_eq!(picky.await.unwrap(), Ok(b));
}

#[tokio::test(start_paused = true)]
async fn a_server_coming_up_wakes_the_queue() {
    let p = pool(&pool_cfg(
        Balance::First,
        vec![server_cfg("a", 2501, 1, 1), server_cfg("b", 2502, 1, 0)],
    ));
    let b = p.servers()[1].clone();
    set_health(&b, false);
    let _la = p.acquire(client(), &[]).await.unwrap();
    let p2 = p.clone();
    let waiter =
        tokio::spawn(async move { p2.acquire(client(), &[]).await.map(|l| l.server().id()) });
    queued(&p, 1).await;
    set_health(&b, true);
    p.health_changed();
    assert_eq!(waiter.await.unwrap(), Ok(b.id()));
}

#[tokio::test(start_paused = true)]
async fn waiters_learn_when_nothing_is_usable_any_more() {
    let mut cfg = pool_cfg(Balance::First, vec![server_cfg("a", 2501, 1, 1)]);
    let p = pool(&cfg);
    let _la = p.acquire(client(), &[]).await.unwrap();
    let p2 = p.clone();
    let waiter = tokio::spawn(async move { p2.acquire(client(), &[]).await.map(|_| ()) });
    queued(&p, 1).await;
    cfg.servers[0].state = ServerState::Maint;
    p.update(&cfg);
    assert_eq!(waiter.await.unwrap(), Err(NoServer::NoneUsable));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_waiter_leaves_the_queue() {
    let p = pool(&pool_cfg(Balance::First, vec![server_cfg("a", 2501, 1, 1)]));
    let lease = p.acquire(client(), &[]).await.unwrap();
    let p2 = p.clone();
    let waiter = tokio::spawn(async move { p2.acquire(client(), &[]).await.map(|_| ()) });
    queued(&p, 1).await;
    waiter.abort();
    let _ = waiter.await;
    assert_eq!(p.queued(), 0);
    drop(lease);
    assert!(p.acquire(client(), &[]).await.is_ok());
}

#[tokio::test]
async fn update_keeps_unchanged_servers_and_their_counters() {
    let mut cfg = pool_cfg(
        Balance::First,
        vec![server_cfg("a", 2501, 1, 0), server_cfg("b", 2502, 1, 0)],
    );
    let p = pool(&cfg);
    let lease = p.acquire(client(), &[]).await.unwrap();
    let kept = lease.server().clone();
    set_health(&kept, true);
    let before = p.servers();
    cfg.servers[0].weight = 5;
    cfg.servers[0].max_conn = 7;
    cfg.servers[1].weight = 5;
    cfg.servers[1].max_conn = 7;
    cfg.servers[1].address = "127.0.0.1:2600".parse().unwrap(); // b is a new server now
    cfg.balance = Balance::Leastconn;
    p.update(&cfg);
    let after = p.servers();
    assert!(Arc::ptr_eq(&before[0], &after[0]));
    assert!(!Arc::ptr_eq(&before[1], &after[1]));
    assert_eq!(after[0].weight(), 5);
    assert_eq!(after[0].max_conn(), 7);
    assert_eq!(p.settings().balance, Balance::Leastconn);
    assert_eq!(kept.name(), "a");
    assert_eq!(after[0].active_sessions(), 1);
    assert_eq!(after[0].sessions_total(), 1);
    assert_eq!(after[0].health(), Health::Up);
    assert_eq!(after[1].sessions_total(), 0);
    assert_eq!(after[1].health(), Health::Unknown);
    drop(lease);
    assert_eq!(kept.active_sessions(), 0);
}

#[tokio::test]
async fn slow_start_gives_a_recovered_server_a_small_share() {
    let mut cfg = pool_cfg(
        Balance::Roundrobin,
        vec![server_cfg("a", 2501, 10, 0), server_cfg("b", 2502, 10, 0)],
    );
    cfg.slow_start = Duration::from_secs(3600);
    let p = pool(&cfg);
    let b = p.servers()[1].clone();
    set_health(&b, false);
    set_health(&b, true); // recovered now: weight 1 of 10 for a while
    assert_eq!(b.effective_weight(), 1);
    let mut to_b = 0;
    for _ in 0..1100 {
        if p.acquire(client(), &[]).await.unwrap().server().id() == b.id() {
            to_b += 1;
        }
    }
    assert!((90..=110).contains(&to_b), "about 1/11: {to_b}");
}
