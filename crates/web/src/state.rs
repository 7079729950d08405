//! [`AppState`]: what every handler reads (the node, the gateway, the pools,
//! the store) and the web side's own live state (the setup code, the login
//! limiter, the login counters).

use crate::auth::limiter::LoginLimiter;
use crate::auth::setup_code::SetupCode;
use crate::error::ApiError;
use mxgate_balance::Pools;
use mxgate_gateway::Gateway;
use mxgate_store::{Store, StoreError};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// Everything the handlers read. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) node: String,
    pub(crate) version: String,
    pub(crate) started: Instant,
    pub(crate) gateway: Arc<Gateway>,
    pub(crate) pools: Arc<Pools>,
    pub(crate) store: Arc<Store>,
    /// The running virtual router, once `[vrrp]` started one.
    pub(crate) vrrp: OnceLock<mxgate_vrrp::Monitor>,
    /// Asks the running virtual router to hand over to the peer.
    pub(crate) handover: OnceLock<mxgate_vrrp::linux::HandOver>,
    /// The process's newest log lines, once the binary gives them.
    pub(crate) logs: OnceLock<Arc<crate::LogRing>>,
    /// The peer sync task's state, once `[sync]` started it: the peer's
    /// configured address and the shared status.
    pub(crate) sync: OnceLock<(String, Arc<mxgate_sync::Shared>)>,
    /// The node's resolver (`[dns] servers`), for the diagnostics.
    pub(crate) resolver: OnceLock<Arc<mxgate_dns::Resolver>>,
    /// The one-time setup code while the box has no admin.
    pub(crate) setup: Mutex<Option<SetupCode>>,
    /// Failed logins per client address and per user name.
    pub(crate) limiter: Mutex<LoginLimiter>,
    /// Logins refused for a wrong name or password.
    pub(crate) login_failures: AtomicU64,
    /// Logins refused by the rate limit.
    pub(crate) login_rate_limited: AtomicU64,
    /// The host readings of the dashboard (keeps the last CPU sample).
    pub(crate) host: Mutex<mxgate_system::HostSampler>,
    /// The last hour of counters, sampled by [`crate::history::start`].
    pub(crate) history: Mutex<crate::history::History>,
    /// The git revision the binary was built from, once the binary says.
    pub(crate) git_revision: OnceLock<String>,
}

impl AppState {
    /// State for a node called `node`.
    pub fn new(
        node: &str,
        version: &str,
        gateway: Arc<Gateway>,
        pools: Arc<Pools>,
        store: Arc<Store>,
    ) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                node: node.to_string(),
                version: version.to_string(),
                started: Instant::now(),
                gateway,
                pools,
                store,
                vrrp: OnceLock::new(),
                handover: OnceLock::new(),
                logs: OnceLock::new(),
                sync: OnceLock::new(),
                resolver: OnceLock::new(),
                setup: Mutex::new(None),
                limiter: Mutex::new(LoginLimiter::default()),
                login_failures: AtomicU64::new(0),
                login_rate_limited: AtomicU64::new(0),
                host: Mutex::new(mxgate_system::HostSampler::new(Some(
                    mxgate_system::Firmware::new(version, None),
                ))),
                history: Mutex::new(crate::history::History::new(crate::history::CAPACITY)),
                git_revision: OnceLock::new(),
            }),
        }
    }

    /// When the store has no admin yet: draws the one-time setup code that
    /// the setup page asks for, keeps it and returns it (the caller prints
    /// and logs it). `None` once the box is set up.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn prepare_setup(&self) -> Result<Option<String>, StoreError> {
        if self.inner.store.has_admin()? {
            return Ok(None);
        }
        let code = SetupCode::generate();
        let text = code.as_str().to_string();
        *lock(&self.inner.setup) = Some(code);
        Ok(Some(text))
    }

    /// Shows peer sync with `peer` (its address, the metrics' `peer`
    /// label) in `/api/v1/status` and `/metrics`. Only the first call
    /// counts.
    pub fn set_sync(&self, peer: &str, shared: Arc<mxgate_sync::Shared>) {
        let _ = self.inner.sync.set((peer.to_string(), shared));
    }

    /// Shows this virtual router in `/api/v1/status` and `/metrics`. Only
    /// the first call counts (a node runs at most one).
    pub fn set_vrrp(&self, monitor: mxgate_vrrp::Monitor) {
        let _ = self.inner.vrrp.set(monitor);
    }

    /// Lets `POST /api/v1/cluster/handover` ask the running virtual router
    /// to step down. Only the first call counts.
    pub fn set_vrrp_handover(&self, handover: mxgate_vrrp::linux::HandOver) {
        let _ = self.inner.handover.set(handover);
    }

    /// Shows `ring` (the log lines the binary keeps) on the Logs page and
    /// in `/api/v1/logs`. Only the first call counts.
    pub fn set_logs(&self, ring: Arc<crate::LogRing>) {
        let _ = self.inner.logs.set(ring);
    }

    /// Gives the diagnostics the node's resolver (the one the gateway
    /// uses). Only the first call counts.
    pub fn set_resolver(&self, resolver: Arc<mxgate_dns::Resolver>) {
        let _ = self.inner.resolver.set(resolver);
    }

    /// Shows `revision` (the git revision of the build) on the System page
    /// and in `/api/v1/system`. Only the first call counts.
    pub fn set_git_revision(&self, revision: &str) {
        let _ = self.inner.git_revision.set(revision.to_string());
    }

    /// The data directory (where the store lives: keys, pairing, spool).
    pub(crate) fn data_dir(&self) -> std::path::PathBuf {
        let db = self.inner.store.path();
        db.parent().unwrap_or(db).to_path_buf()
    }

    /// The VRRP picture now, when a virtual router runs.
    pub fn vrrp(&self) -> Option<mxgate_vrrp::Snapshot> {
        self.inner.vrrp.get().map(|m| m.snapshot(Instant::now()))
    }

    /// Why the node is unhealthy, or `None` when every listener is bound and
    /// the store is open.
    pub fn health_problem(&self) -> Option<String> {
        let down: Vec<String> = self
            .inner
            .gateway
            .listeners()
            .into_iter()
            .filter(|l| !l.bound)
            .map(|l| format!("listener {} not bound", l.name))
            .collect();
        if !down.is_empty() {
            return Some(down.join(", "));
        }
        if !self.inner.store.check_health() {
            return Some("store not available".to_string());
        }
        None
    }

    /// The store.
    pub(crate) fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    /// Runs `f` on the store on a blocking thread (SQLite and argon2 must
    /// not stall the runtime's one worker).
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
    {
        let store = Arc::clone(&self.inner.store);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(ApiError::internal)?
    }
}

/// Locks `m`, ignoring poisoning (the data is a cache or a counter).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
