//! The gateway's temporary allowlist over the store's `temp_allowlist`
//! table: entries are also kept in memory (so a session thread rarely asks
//! SQLite), written to the store off the session threads, and expired rows
//! are purged periodically.

use mxgate_gateway::TempAllowlist;
use mxgate_store::Store;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Additions that may wait for the writer before they are dropped (they
/// stay in memory).
const QUEUE: usize = 10_000;
/// How often expired entries are purged.
const PURGE_EVERY: Duration = Duration::from_secs(300);

/// The allowlist handed to the gateway.
pub(crate) struct StoreAllowlist {
    store: Arc<Store>,
    memory: Mutex<HashMap<IpAddr, SystemTime>>,
    writes: mpsc::Sender<(IpAddr, i64)>,
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl StoreAllowlist {
    /// The allowlist and its writer/purger task (runs until `stop`).
    pub(crate) fn start(
        store: Arc<Store>,
        stop: CancellationToken,
    ) -> (Arc<StoreAllowlist>, impl std::future::Future<Output = ()>) {
        let (writes, rx) = mpsc::channel(QUEUE);
        let list = Arc::new(StoreAllowlist {
            store,
            memory: Mutex::default(),
            writes,
        });
        (Arc::clone(&list), list.maintain(rx, stop))
    }

    async fn maintain(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<(IpAddr, i64)>,
        stop: CancellationToken,
    ) {
        let mut purge = tokio::time::interval(PURGE_EVERY);
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, 500) => {
                    if n == 0 {
                        return;
                    }
                    let (store, rows) = (Arc::clone(&self.store), std::mem::take(&mut batch));
                    let written = tokio::task::spawn_blocking(move || {
                        rows.into_iter().try_for_each(|(ip, until)| store.temp_allowlist_add(ip, until))
                    })
                    .await;
                    if let Ok(Err(e)) = written {
                        tracing::warn!(error = %e, "temporary allowlist not stored");
                    }
                }
                _ = purge.tick() => {
                    let now = SystemTime::now();
                    self.memory
                        .lock()
                        .expect("allowlist lock")
                        .retain(|_, until| *until > now);
                    let store = Arc::clone(&self.store);
                    let purged = tokio::task::spawn_blocking(move || store.purge_temp_allowlist(unix(now))).await;
                    match purged {
                        Ok(Ok(n)) if n > 0 => tracing::debug!(entries = n, "temporary allowlist purged"),
                        Ok(Err(e)) => tracing::warn!(error = %e, "temporary allowlist purge failed"),
                        _ => {}
                    }
                }
                () = stop.cancelled() => return,
            }
        }
    }
}

impl TempAllowlist for StoreAllowlist {
    fn contains(&self, ip: IpAddr, now: SystemTime) -> bool {
        let ip = ip.to_canonical();
        if let Some(until) = self.memory.lock().expect("allowlist lock").get(&ip) {
            if *until > now {
                return true;
            }
        }
        // Rows written by the peer box (once synced) are only in the store.
        match self.store.temp_allowlist_contains(ip, unix(now)) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "temporary allowlist unreadable");
                false
            }
        }
    }

    fn add(&self, ip: IpAddr, until: SystemTime) {
        let ip = ip.to_canonical();
        self.memory
            .lock()
            .expect("allowlist lock")
            .insert(ip, until);
        let _ = self.writes.try_send((ip, unix(until)));
    }
}
