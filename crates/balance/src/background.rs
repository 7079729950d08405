//! The background health-check loop: one task per server not in
//! maintenance, probing every `interval` (plus a little jitter so the
//! servers of a pool are not all probed in the same instant), feeding the
//! server's [`HealthTracker`](crate::health::HealthTracker) and logging each
//! transition once.
//!
//! A task stops when its server is removed or put in maintenance, when its
//! pool is removed or shut down, or when the pool is dropped: each task
//! holds the receiving end of a oneshot whose sender lives in [`Checks`].

use crate::check::{CheckError, CheckOutcome, CheckReport, HealthCheck};
use crate::health::{Health, Thresholds, Transition};
use crate::pool::Pool;
use crate::server::Server;
use mxgate_config::ServerState;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, SystemTime};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Instant};
use tracing::{info, warn};

/// The check tasks of one pool, by server id.
#[derive(Debug, Default)]
pub(crate) struct Checks {
    tasks: Mutex<HashMap<u64, CheckTask>>,
}

/// A running check task. Dropping `stop` ends it.
#[derive(Debug)]
struct CheckTask {
    stop: oneshot::Sender<()>,
    handle: JoinHandle<()>,
}

impl Checks {
    fn tasks(&self) -> MutexGuard<'_, HashMap<u64, CheckTask>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the running tasks match the pool's servers: one per server not
    /// in maintenance.
    pub(crate) fn sync(&self, pool: &Arc<Pool>, checker: &Arc<dyn HealthCheck>) {
        let servers = pool.servers();
        let wanted: Vec<&Arc<Server>> = servers
            .iter()
            .filter(|s| s.admin_state() != ServerState::Maint)
            .collect();
        let mut tasks = self.tasks();
        tasks.retain(|id, task| wanted.iter().any(|s| s.id() == *id) && !task.handle.is_finished());
        for server in wanted {
            tasks.entry(server.id()).or_insert_with(|| {
                let (stop, stopped) = oneshot::channel();
                let handle = tokio::spawn(run(
                    Arc::downgrade(pool),
                    server.clone(),
                    checker.clone(),
                    stopped,
                ));
                CheckTask { stop, handle }
            });
        }
    }

    /// Stops every task; returns their handles to await.
    pub(crate) fn stop_all(&self) -> Vec<JoinHandle<()>> {
        self.tasks()
            .drain()
            .map(|(_, task)| {
                drop(task.stop);
                task.handle
            })
            .collect()
    }
}

/// Checks `server` until told to stop or the pool is gone.
async fn run(
    pool: Weak<Pool>,
    server: Arc<Server>,
    checker: Arc<dyn HealthCheck>,
    mut stop: oneshot::Receiver<()>,
) {
    // Spread the first probes of many servers over a tenth of the interval.
    let Some(interval) = pool.upgrade().map(|p| p.settings().check.interval) else {
        return;
    };
    tokio::select! {
        _ = &mut stop => return,
        () = sleep(jitter(interval / 10)) => {}
    }
    loop {
        let Some(p) = pool.upgrade() else { return };
        let settings = p.settings();
        let pool_name = p.name().to_owned();
        drop(p);

        let started = Instant::now();
        let at = SystemTime::now();
        let result = tokio::select! {
            _ = &mut stop => return,
            r = checker.check(server.address(), &settings.check) => r,
        };
        let elapsed = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let outcome = CheckOutcome::new(&result, at, elapsed);
        let limits = Thresholds {
            rise: settings.check.rise,
            fall: settings.check.fall,
        };
        if let Some(t) = server.record_check(outcome, limits, std::time::Instant::now()) {
            log_transition(&pool_name, &server, &t, &result);
            if let Some(p) = pool.upgrade() {
                p.health_changed();
            }
        }

        let interval = settings.check.interval;
        let next = started + interval + jitter(interval / 20);
        tokio::select! {
            _ = &mut stop => return,
            () = sleep_until(next) => {}
        }
    }
}

/// One log line per transition.
fn log_transition(
    pool: &str,
    server: &Server,
    t: &Transition,
    result: &Result<CheckReport, CheckError>,
) {
    let name = server.name();
    let n = t.streak;
    match (t.to, result) {
        (Health::Down, Err(error)) => {
            warn!("server {pool}/{name} is now DOWN: {error} ({n} consecutive failures)");
        }
        (Health::Down, Ok(_)) => {
            warn!("server {pool}/{name} is now DOWN ({n} consecutive failures)")
        }
        (Health::Up, Ok(report)) => info!(
            "server {pool}/{name} is now UP: {} ({n} consecutive successes)",
            report.banner
        ),
        (Health::Up, Err(_)) => info!("server {pool}/{name} is now UP ({n} consecutive successes)"),
        (Health::Unknown, _) => {}
    }
}

/// A random duration in `[0, max)`.
fn jitter(max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    // Every RandomState has fresh keys: hashing nothing gives a random u64.
    let random = RandomState::new().build_hasher().finish();
    Duration::from_nanos(random % nanos)
}

#[cfg(test)]
mod tests;
