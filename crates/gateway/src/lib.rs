//! The gateway's listeners: what happens between a client's TCP connect and
//! the backend.
//!
//! [`Gateway::apply`] takes the listeners of a policy and makes the running
//! set match it: new listeners are bound, removed ones stop accepting, and a
//! listener whose settings changed picks them up for its next connection —
//! established sessions are never dropped by a change. [`Gateway::shutdown`]
//! stops accepting, lets sessions finish for a grace period, then ends them.

mod authenticate;
mod backend;
mod checks;
mod greylisting;
mod listener;
mod per_client;
pub mod proxy;
pub mod relay;
mod reputation;
mod screen;
mod session;
pub mod smtp;
mod spf;
pub mod stats;
mod workers;

use listener::{bind, RunningListener, Shared};
use mxgate_balance::Pools;
use mxgate_config::{Listener, ListenerMode, Policy};
use serde::Serialize;
use stats::{ListenerCounts, ListenerStats};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use workers::Workers;

pub use greylisting::{GreylistBackend, GreylistBackendError};
pub use reputation::TempAllowlist;
pub use smtp::SessionReport;
pub use stats::{ConnResult, MessageResult};

/// A listener that could not be bound.
#[derive(Debug, Clone, thiserror::Error)]
#[error("listener {name}: cannot bind {bind}: {reason}")]
pub struct BindError {
    /// Listener name.
    pub name: String,
    /// Address it wanted.
    pub bind: SocketAddr,
    /// The operating system's reason.
    pub reason: String,
}

/// The state of one configured listener, for status and metrics.
#[derive(Debug, Clone, Serialize)]
pub struct ListenerStatus {
    /// Name.
    pub name: String,
    /// Configured address.
    pub bind: SocketAddr,
    /// Bound address (differs from `bind` when port 0 was asked for).
    pub local_addr: Option<SocketAddr>,
    /// l4 or smtp.
    pub mode: ListenerMode,
    /// Pool sessions go to.
    pub pool: String,
    /// Accepting now.
    pub bound: bool,
    /// Why it is not bound.
    pub error: Option<String>,
    /// Counters.
    pub connections: ListenerCounts,
}

/// All listeners of this box.
pub struct Gateway {
    shared: Arc<Shared>,
    running: Mutex<HashMap<String, Arc<RunningListener>>>,
    failed: Mutex<HashMap<String, (Arc<Listener>, BindError)>>,
    /// Counters survive a listener being rebound or briefly removed.
    stats: Mutex<HashMap<String, Arc<ListenerStats>>>,
    order: Mutex<Vec<String>>,
}

impl Gateway {
    /// A gateway with no listeners yet and `workers` session threads (0 = half
    /// the cores, at least one). `hostname` appears in SMTP replies.
    ///
    /// # Errors
    /// When the worker threads cannot be started.
    pub fn new(pools: Arc<Pools>, hostname: &str, workers: usize) -> std::io::Result<Arc<Gateway>> {
        Ok(Arc::new(Gateway {
            shared: Arc::new(Shared {
                pools,
                hostname: Arc::from(hostname),
                tracker: TaskTracker::new(),
                stop_accepting: CancellationToken::new(),
                active: Default::default(),
                max_connections: Default::default(),
                workers: Workers::start(workers)?,
                smtp: Default::default(),
                screening: Default::default(),
            }),
            running: Mutex::default(),
            failed: Mutex::default(),
            stats: Mutex::default(),
            order: Mutex::default(),
        }))
    }

    /// Makes the running listeners match `policy`. Must be called inside a
    /// tokio runtime.
    ///
    /// # Errors
    /// The listeners that could not be bound; every other listener is applied
    /// and the failed ones are shown in [`Gateway::listeners`] and retried by
    /// the next call.
    pub fn apply(&self, policy: &Policy) -> Result<(), Vec<BindError>> {
        self.shared
            .max_connections
            .store(policy.limits.max_connections, Ordering::Relaxed);
        self.shared
            .smtp
            .relay_domains
            .store(Arc::new(policy.relay_domains.clone()));
        self.shared.screening.apply(policy);
        let mut running = self.running.lock().expect("gateway lock");
        let mut failed = self.failed.lock().expect("gateway lock");
        let mut all_stats = self.stats.lock().expect("gateway lock");
        failed.clear();
        let wanted: HashMap<&str, &Listener> = policy
            .listeners
            .iter()
            .map(|l| (l.name.as_str(), l))
            .collect();
        running.retain(|name, r| {
            let keep = wanted
                .get(name.as_str())
                .is_some_and(|l| l.bind == r.config.load().bind);
            if !keep {
                r.stop.cancel();
            }
            keep
        });
        let mut errors = Vec::new();
        for listener in &policy.listeners {
            let config = Arc::new(listener.clone());
            if let Some(r) = running.get(&listener.name) {
                r.config.store(config);
                continue;
            }
            let stats = Arc::clone(all_stats.entry(listener.name.clone()).or_default());
            let started = bind(listener.bind, self.shared.workers.handles().len())
                .and_then(|s| RunningListener::start(s, Arc::clone(&config), stats, &self.shared));
            match started {
                Ok(r) => {
                    running.insert(listener.name.clone(), r);
                }
                Err(e) => {
                    let err = BindError {
                        name: listener.name.clone(),
                        bind: listener.bind,
                        reason: e.to_string(),
                    };
                    tracing::error!("{err}");
                    failed.insert(listener.name.clone(), (config, err.clone()));
                    errors.push(err);
                }
            }
        }
        all_stats.retain(|name, _| wanted.contains_key(name.as_str()));
        *self.order.lock().expect("gateway lock") =
            policy.listeners.iter().map(|l| l.name.clone()).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Every configured listener in policy order.
    pub fn listeners(&self) -> Vec<ListenerStatus> {
        let running = self.running.lock().expect("gateway lock");
        let failed = self.failed.lock().expect("gateway lock");
        let all_stats = self.stats.lock().expect("gateway lock");
        let order = self.order.lock().expect("gateway lock");
        order
            .iter()
            .filter_map(|name| {
                let counts = all_stats
                    .get(name)
                    .map(|s| s.snapshot())
                    .unwrap_or_default();
                if let Some(r) = running.get(name) {
                    let c = r.config.load();
                    return Some(ListenerStatus {
                        name: name.clone(),
                        bind: c.bind,
                        local_addr: Some(r.local_addr),
                        mode: c.mode,
                        pool: c.pool.clone(),
                        bound: true,
                        error: None,
                        connections: counts,
                    });
                }
                let (c, err) = failed.get(name)?;
                Some(ListenerStatus {
                    name: name.clone(),
                    bind: c.bind,
                    local_addr: None,
                    mode: c.mode,
                    pool: c.pool.clone(),
                    bound: false,
                    error: Some(err.reason.clone()),
                    connections: counts,
                })
            })
            .collect()
    }

    /// True when every configured listener is accepting.
    pub fn all_bound(&self) -> bool {
        self.failed.lock().expect("gateway lock").is_empty()
    }

    /// The certificate smtp-mode listeners offer with STARTTLS (`None`: no
    /// STARTTLS).
    pub fn set_smtp_tls(&self, tls: Option<Arc<rustls::ServerConfig>>) {
        self.shared.smtp.set_tls(tls);
    }

    /// Sends a report of every finished smtp-mode session to `reports`
    /// (for tracking). A full channel drops reports (counted) rather than
    /// slow sessions down.
    pub fn set_session_reports(&self, reports: tokio::sync::mpsc::Sender<SessionReport>) {
        self.shared.smtp.reports.store(Some(Arc::new(reports)));
    }

    /// Session reports dropped because the tracking writer fell behind.
    pub fn session_reports_dropped(&self) -> u64 {
        self.shared.smtp.reports_dropped.load(Ordering::Relaxed)
    }

    /// Screening decisions so far: (check, result, count), for
    /// `mxgate_filter_verdicts_total`.
    pub fn filter_verdicts(&self) -> Vec<(&'static str, String, u64)> {
        self.shared.screening.verdicts.snapshot()
    }

    /// The resolver for the DNSBL lookups of `[screen]` and the SPF checks
    /// of `[auth]` (built from the node's `[dns]`); `None` turns both off.
    /// The SPF verifier (mail-auth) is built here, once, with the same
    /// servers and options, and shared by every session.
    pub fn set_resolver(&self, resolver: Option<Arc<mxgate_dns::Resolver>>) {
        let spf = resolver.as_deref().and_then(|r| {
            spf::Authenticator::new(r, &self.shared.hostname)
                .map_err(|e| tracing::error!(error = %e, "SPF checks not available"))
                .ok()
                .map(Arc::new)
        });
        *self
            .shared
            .screening
            .authenticator
            .write()
            .expect("authenticator lock") = spf;
        *self
            .shared
            .screening
            .resolver
            .write()
            .expect("resolver lock") = resolver;
    }

    /// Where clients that passed pregreet and DNSBL are remembered for
    /// `allowlist_ttl_s` (skipping both on their next connections).
    pub fn set_temp_allowlist(&self, allowlist: Option<Arc<dyn TempAllowlist>>) {
        *self
            .shared
            .screening
            .allowlist
            .write()
            .expect("allowlist lock") = allowlist;
    }

    /// Where greylisting state lives (`[greylist]` in smtp mode); `None`
    /// turns greylisting off. A failing backend lets mail through.
    pub fn set_greylist_backend(&self, backend: Option<Arc<dyn GreylistBackend>>) {
        *self
            .shared
            .screening
            .greylist_backend
            .write()
            .expect("greylist backend lock") = backend;
    }

    /// Where smtp mode spills messages held for the end-of-data checks
    /// beyond `[auth] hold_memory_kb` (the node's data directory, not a
    /// tmpfs); `None` = the system's temporary directory.
    pub fn set_spool_dir(&self, dir: Option<std::path::PathBuf>) {
        self.shared.smtp.spool_dir.store(dir.map(Arc::new));
    }

    /// Connections open now over all listeners.
    pub fn active_connections(&self) -> u64 {
        self.shared.active.load(Ordering::Relaxed)
    }

    /// Stops accepting on every listener, waits up to `grace` for open
    /// sessions to finish, then ends the rest and waits for their tasks.
    pub async fn shutdown(&self, grace: Duration) {
        self.shared.stop_accepting.cancel();
        self.shared.tracker.close();
        let open = self.active_connections();
        if open > 0 {
            tracing::info!(open, ?grace, "waiting for open sessions to finish");
        }
        if tokio::time::timeout(grace, self.shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                open = self.active_connections(),
                "grace period over: closing the remaining sessions"
            );
        }
        // Dropping the workers' runtimes drops the sessions still open.
        let shared = Arc::clone(&self.shared);
        let _ = tokio::task::spawn_blocking(move || shared.workers.stop()).await;
        self.shared.tracker.wait().await;
    }
}
