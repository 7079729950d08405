//! VRRP failover for `mxgate run`: starts the Linux driver of
//! `mxgate_vrrp` when the node file has `[vrrp]`, feeds it the tracked
//! objects' state, shows it in the status page and metrics, and stops it on
//! shutdown (priority 0, VIPs removed) so the peer takes over at once.
//!
//! Tracked objects, checked every [`TRACK_PERIOD`] (the store every
//! [`STORE_PROBE_PERIOD`]), each with its `[vrrp] track_*_weight`
//! (0 = not tracked, 1..254 = lowers the priority by that much while failed,
//! 255 = puts the box in FAULT); each kind counts once however many of its
//! objects fail:
//! - a pool: every server of some pool is down (health checks say Down;
//!   servers not checked yet do not count; a pool without servers neither);
//! - a listener: some listener of the policy is not bound;
//! - the store: [`mxgate_store::Store::probe_write`] fails;
//! - the link of the VRRP interface: watched by the driver itself.

use anyhow::Context;
use mxgate_balance::{Health, Pools};
use mxgate_config::VrrpSettings;
use mxgate_gateway::Gateway;
use mxgate_store::Store;
use mxgate_vrrp::linux::{Driver, DriverConfig, Tracking};
use mxgate_vrrp::Monitor;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often pools and listeners are looked at.
pub(crate) const TRACK_PERIOD: Duration = Duration::from_millis(500);
/// How often the store gets a write probe.
pub(crate) const STORE_PROBE_PERIOD: Duration = Duration::from_secs(5);

/// A running virtual router and its tracker.
pub(crate) struct Vrrp {
    stop: CancellationToken,
    driver: JoinHandle<()>,
    tracker: JoinHandle<()>,
}

/// What the tracker watches.
struct Watched {
    settings: VrrpSettings,
    pools: Arc<Pools>,
    gateway: Arc<Gateway>,
    store: Arc<Store>,
}

/// The driver's settings from the node file's `[vrrp]`.
fn driver_config(s: &VrrpSettings) -> DriverConfig {
    DriverConfig {
        interface: s.interface.clone(),
        vrid: s.vrid,
        priority: s.priority,
        advert_interval_cs: s.advert_interval_cs,
        preempt: s.preempt,
        preempt_delay: s.preempt_delay,
        virtual_ips: s.virtual_ips.clone(),
        unicast_peers: s.unicast_peers.clone(),
        garp_count: s.garp_count,
        garp_interval: s.garp_interval,
        garp_refresh: s.garp_refresh,
        link_weight: s.track_link_weight,
        notify: s.notify.clone(),
    }
}

/// Opens the driver (cleaning VIPs left by a crashed run), shows it in
/// `app`, and starts it with the tracker.
///
/// # Errors
/// When the interface, its address or the raw sockets are not usable.
pub(crate) async fn start(
    settings: &VrrpSettings,
    pools: &Arc<Pools>,
    gateway: &Arc<Gateway>,
    store: &Arc<Store>,
    app: &mxgate_web::AppState,
) -> anyhow::Result<Vrrp> {
    let monitor = Monitor::new(
        settings.vrid,
        settings.priority,
        &settings.interface,
        settings
            .virtual_ips
            .iter()
            .map(ToString::to_string)
            .collect(),
        Instant::now(),
    );
    let driver = Driver::open(driver_config(settings), monitor.clone())
        .await
        .with_context(|| format!("cannot start VRRP on {}", settings.interface))?;
    app.set_vrrp(monitor);
    app.set_vrrp_handover(driver.hand_over());
    let watched = Watched {
        settings: settings.clone(),
        pools: Arc::clone(pools),
        gateway: Arc::clone(gateway),
        store: Arc::clone(store),
    };
    let (tx, rx) = watch::channel(watched.now(None).await.tracking);
    let stop = CancellationToken::new();
    let tracker = tokio::spawn(track(watched, tx, stop.clone()));
    let driver = tokio::spawn(driver.run(rx, stop.clone()));
    Ok(Vrrp {
        stop,
        driver,
        tracker,
    })
}

impl Vrrp {
    /// Leaves the virtual router (priority 0 if master, VIPs removed) and
    /// waits for it.
    pub(crate) async fn stop(self) {
        self.stop.cancel();
        let _ = self.driver.await;
        let _ = self.tracker.await;
    }
}

/// One look at the tracked objects.
struct Reading {
    tracking: Tracking,
    pool_down: bool,
    listener_down: bool,
    store_ok: bool,
}

impl Watched {
    /// The tracked state now; `store_ok` is the last probe's result (`None`:
    /// probe now).
    async fn now(&self, store_ok: Option<bool>) -> Reading {
        let store_ok = match store_ok {
            Some(ok) => ok,
            None => self.probe_store().await,
        };
        let pool_down = self.pools.all().iter().any(|p| {
            let servers = p.servers();
            !servers.is_empty() && servers.iter().all(|s| s.health() == Health::Down)
        });
        let listener_down = self.gateway.listeners().iter().any(|l| !l.bound);
        let s = &self.settings;
        let mut t = Tracking::default();
        t.add(pool_down, s.track_pool_weight);
        t.add(listener_down, s.track_listener_weight);
        t.add(!store_ok, s.track_store_weight);
        Reading {
            tracking: t,
            pool_down,
            listener_down,
            store_ok,
        }
    }

    async fn probe_store(&self) -> bool {
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || store.probe_write()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "vrrp tracking: the store cannot be written");
                false
            }
            Err(_) => false,
        }
    }
}

/// Recomputes the tracked state every [`TRACK_PERIOD`] and publishes changes.
async fn track(watched: Watched, tx: watch::Sender<Tracking>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(TRACK_PERIOD);
    let mut last_probe = Instant::now();
    let mut store_ok = true;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let probe = last_probe.elapsed() >= STORE_PROBE_PERIOD;
        if probe {
            last_probe = Instant::now();
        }
        let r = watched.now((!probe).then_some(store_ok)).await;
        store_ok = r.store_ok;
        let t = r.tracking;
        tx.send_if_modified(|current| {
            if *current == t {
                return false;
            }
            tracing::info!(
                failed_weight = t.failed_weight,
                fault = t.fault,
                pool_down = r.pool_down,
                listener_down = r.listener_down,
                store_ok = r.store_ok,
                "vrrp tracking: tracked objects changed"
            );
            *current = t;
            true
        });
    }
}
