//! A backend pool: its servers, its selection algorithm and the bounded
//! queue of sessions waiting for a free slot.
//!
//! Usable for a new session means: health up or unknown, admin state
//! `ready`, not already tried by this session, and weight above zero —
//! servers of weight 0 are backups, used only while no weighted server is
//! usable. A usable server at its `max_conn` makes the session wait in the
//! queue rather than spill over to a backup.

use crate::background::Checks;
use crate::check::HealthCheck;
use crate::queue::{Registration, WaitQueue};
use crate::selection::{for_balance, BackendSelection, Candidate};
use crate::server::{Lease, Server};
use arc_swap::ArcSwap;
use mxgate_config::Pool as PoolConfig;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::Instant;
use thiserror::Error;
use tokio::task::JoinHandle;

/// Why [`Pool::acquire`] found no server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum NoServer {
    /// Every server is down, draining, in maintenance or already tried.
    #[error("no usable server (all down, draining, in maintenance or already tried)")]
    NoneUsable,
    /// Every usable server is at `max_conn` and `max_queue` sessions already wait.
    #[error("every usable server is at max_conn and the wait queue is full")]
    QueueFull,
    /// Every usable server stayed at `max_conn` for `queue_timeout`.
    #[error("every usable server stayed at max_conn for the whole queue timeout")]
    QueueTimeout,
}

/// Outcome of one look for a slot.
enum Pick {
    Got(Arc<Server>),
    Full,
    NoneUsable,
}

/// A backend pool, updated in place when its configuration changes.
pub struct Pool {
    name: String,
    settings: ArcSwap<PoolConfig>,
    servers: ArcSwap<Vec<Arc<Server>>>,
    selection: ArcSwap<Box<dyn BackendSelection>>,
    queue: Arc<WaitQueue>,
    checks: Checks,
    checker: Arc<dyn HealthCheck>,
    me: Weak<Pool>,
}

impl Pool {
    /// A pool with fresh servers. Starts no checks (see [`Pool::sync_checks`]).
    pub(crate) fn new(config: &PoolConfig, checker: Arc<dyn HealthCheck>) -> Arc<Pool> {
        let servers = config
            .servers
            .iter()
            .map(|sc| {
                let s = Server::new(sc);
                s.configure(sc, config.slow_start);
                s
            })
            .collect();
        Arc::new_cyclic(|me| Pool {
            name: config.name.clone(),
            settings: ArcSwap::from_pointee(config.clone()),
            servers: ArcSwap::from_pointee(servers),
            selection: ArcSwap::from_pointee(for_balance(config.balance)),
            queue: Arc::new(WaitQueue::default()),
            checks: Checks::default(),
            checker,
            me: me.clone(),
        })
    }

    /// Name listeners refer to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current configuration (timeouts, check settings, ...).
    pub fn settings(&self) -> Arc<PoolConfig> {
        self.settings.load_full()
    }

    /// The servers, in configuration order.
    pub fn servers(&self) -> Arc<Vec<Arc<Server>>> {
        self.servers.load_full()
    }

    /// The server called `name`.
    pub fn server(&self, name: &str) -> Option<Arc<Server>> {
        self.servers
            .load()
            .iter()
            .find(|s| s.name() == name)
            .cloned()
    }

    /// True when some server could take a new session now, slots aside:
    /// up or not yet checked, and `ready`.
    pub fn has_usable_server(&self) -> bool {
        self.servers.load().iter().any(|s| s.accepts_sessions())
    }

    /// Sessions waiting for a slot now.
    pub fn queued(&self) -> usize {
        self.queue.lock().len()
    }

    /// Picks a usable server for `client`, skipping `tried` (servers whose
    /// connect failed for this session), and takes a slot on it. When every
    /// usable server is at `max_conn`, waits in a bounded queue (at most
    /// `max_queue` waiters, each for at most `queue_timeout`) for a slot.
    ///
    /// # Errors
    /// [`NoServer`]: nothing usable, or the queue is full or timed out.
    pub async fn acquire(&self, client: IpAddr, tried: &[Arc<Server>]) -> Result<Lease, NoServer> {
        let excluded: Vec<u64> = tried.iter().map(|s| s.id()).collect();
        let settings = self.settings();
        let deadline = tokio::time::Instant::now() + settings.queue_timeout;
        let max_queue = usize::try_from(settings.max_queue).unwrap_or(usize::MAX);
        let mut ticket = None;
        loop {
            let mut registration = {
                let mut waiters = self.queue.lock();
                match self.pick(client, &excluded) {
                    Pick::Got(server) => return Ok(Lease::new(server, self.queue.clone())),
                    Pick::NoneUsable => return Err(NoServer::NoneUsable),
                    Pick::Full => {}
                }
                let t = match ticket {
                    Some(t) => t,
                    None if waiters.len() >= max_queue => return Err(NoServer::QueueFull),
                    None => *ticket.insert(waiters.ticket()),
                };
                let rx = waiters.insert(t, &excluded);
                Registration::new(self.queue.clone(), t, rx)
            };
            if tokio::time::timeout_at(deadline, registration.woken())
                .await
                .is_err()
            {
                return Err(NoServer::QueueTimeout);
            }
        }
    }

    /// One look for a free slot on a usable server; takes it when found.
    fn pick(&self, client: IpAddr, excluded: &[u64]) -> Pick {
        let servers = self.servers.load();
        let usable: Vec<&Arc<Server>> = servers
            .iter()
            .filter(|s| s.accepts_sessions() && !excluded.contains(&s.id()))
            .collect();
        let weighted = usable.iter().any(|s| s.weight() > 0);
        let now = Instant::now();
        let mut candidates: Vec<Candidate<'_>> = Vec::with_capacity(usable.len());
        let mut any = false;
        for s in usable {
            if (s.weight() > 0) != weighted {
                continue;
            }
            any = true;
            if s.has_room() {
                candidates.push(Candidate {
                    server: s,
                    weight: s.effective_weight_at(now).max(1),
                    active: s.active_sessions(),
                });
            }
        }
        if !any {
            return Pick::NoneUsable;
        }
        let selection = self.selection.load();
        while let Some(i) = selection.select(&candidates, client) {
            if candidates[i].server.try_take_slot() {
                return Pick::Got(candidates[i].server.clone());
            }
            // lost a race for its last slot
            candidates.remove(i);
        }
        Pick::Full
    }

    /// Takes a new configuration of this pool. A server whose (name,
    /// address) is unchanged keeps its health, counters and sessions; its
    /// weight, cap and state change at once. Waiters look again.
    pub(crate) fn update(&self, config: &PoolConfig) {
        let old = self.servers.load_full();
        let servers: Vec<Arc<Server>> = config
            .servers
            .iter()
            .map(|sc| {
                let s = old
                    .iter()
                    .find(|s| s.name() == sc.name && s.address() == sc.address)
                    .cloned()
                    .unwrap_or_else(|| Server::new(sc));
                s.configure(sc, config.slow_start);
                s
            })
            .collect();
        if self.settings.load().balance == config.balance {
            let ids: Vec<u64> = servers.iter().map(|s| s.id()).collect();
            self.selection.load().retain(&ids);
        } else {
            self.selection.store(Arc::new(for_balance(config.balance)));
        }
        self.settings.store(Arc::new(config.clone()));
        self.servers.store(Arc::new(servers));
        self.queue.wake_all();
    }

    /// Starts a check task for every server not in maintenance that has
    /// none, and stops the tasks of servers removed or put in maintenance.
    /// Must be called inside a tokio runtime.
    pub(crate) fn sync_checks(&self) {
        if let Some(me) = self.me.upgrade() {
            self.checks.sync(&me, &self.checker);
        }
    }

    /// Stops every check task; returns their handles to await.
    pub(crate) fn stop_checks(&self) -> Vec<JoinHandle<()>> {
        self.checks.stop_all()
    }

    /// A server's health changed: waiters look again.
    pub(crate) fn health_changed(&self) {
        self.queue.wake_all();
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name)
            .field("servers", &self.servers.load())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
