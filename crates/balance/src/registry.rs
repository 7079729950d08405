//! The registry of pools, updated live from the store.
//!
//! Readers (every new session) load the current set without a lock
//! ([`ArcSwap`]); [`Pools::apply`] builds the next set and swaps it in.
//! Pools and servers that did not change are kept as they are, so a policy
//! edit drops no session and resets no counter.

use crate::check::{HealthCheck, SmtpCheck};
use crate::pool::Pool;
use arc_swap::ArcSwap;
use mxgate_config::Pool as PoolConfig;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The pools of the gateway.
pub struct Pools {
    current: ArcSwap<Registry>,
    /// Serialises [`Pools::apply`] calls.
    writer: Mutex<()>,
    checker: Arc<dyn HealthCheck>,
    shut: AtomicBool,
}

/// One generation of the pool set.
#[derive(Default)]
struct Registry {
    order: Vec<Arc<Pool>>,
    by_name: HashMap<String, Arc<Pool>>,
}

impl Pools {
    /// An empty registry whose servers get the SMTP health check.
    pub fn new() -> Arc<Pools> {
        Self::with_checker(Arc::new(SmtpCheck))
    }

    /// An empty registry whose servers get `checker` (tests, other probes).
    pub fn with_checker(checker: Arc<dyn HealthCheck>) -> Arc<Pools> {
        Arc::new(Pools {
            current: ArcSwap::from_pointee(Registry::default()),
            writer: Mutex::new(()),
            checker,
            shut: AtomicBool::new(false),
        })
    }

    /// Applies the configured pools: creates new ones, updates changed ones
    /// in place, removes missing ones. A server whose (name, address) is
    /// unchanged keeps its health, counters and open sessions; weight,
    /// `max_conn` and state changes apply at once. Starts and stops the
    /// health-check tasks (none after [`Pools::shutdown`]).
    ///
    /// # Panics
    /// Outside a tokio runtime, when a check task has to be started.
    pub fn apply(self: &Arc<Self>, pools: &[PoolConfig]) {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let old = self.current.load_full();
        let mut next = Registry::default();
        for config in pools {
            let pool = match old.by_name.get(&config.name) {
                Some(pool) => {
                    if *pool.settings() != *config {
                        pool.update(config);
                    }
                    pool.clone()
                }
                None => Pool::new(config, self.checker.clone()),
            };
            next.by_name.insert(config.name.clone(), pool.clone());
            next.order.push(pool);
        }
        let shut = self.shut.load(Ordering::Acquire);
        for pool in &next.order {
            if shut {
                pool.stop_checks();
            } else {
                pool.sync_checks();
            }
        }
        for pool in &old.order {
            if !next.by_name.contains_key(pool.name()) {
                pool.stop_checks();
            }
        }
        self.current.store(Arc::new(next));
    }

    /// The pool called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Pool>> {
        self.current.load().by_name.get(name).cloned()
    }

    /// Every pool, in configuration order.
    pub fn all(&self) -> Vec<Arc<Pool>> {
        self.current.load().order.clone()
    }

    /// Stops every health-check task (they end at their next await point).
    pub fn shutdown(&self) {
        drop(self.stop_all());
    }

    /// Stops every health-check task and waits until all have ended.
    pub async fn shutdown_and_wait(&self) {
        for handle in self.stop_all() {
            let _ = handle.await;
        }
    }

    fn stop_all(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let _writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        self.shut.store(true, Ordering::Release);
        self.current
            .load()
            .order
            .iter()
            .flat_map(|p| p.stop_checks())
            .collect()
    }
}

impl fmt::Debug for Pools {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.current.load().order.iter())
            .finish()
    }
}

#[cfg(test)]
mod tests;
