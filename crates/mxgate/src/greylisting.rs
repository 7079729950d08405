//! Greylisting state for the gateway: [`StoreGreylist`] answers the
//! gateway's checks from the store's greylisting tables, and [`purge`]
//! deletes expired rows every 10 minutes.

use mxgate_filter::greylist::{Greylist, GreylistContext, GreylistDecision, Triplet};
use mxgate_gateway::{GreylistBackend, GreylistBackendError};
use mxgate_store::Store;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// How often expired greylisting rows are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// The gateway's greylisting backend over the store (blocking; the gateway
/// calls it from `spawn_blocking`).
pub(crate) struct StoreGreylist(pub Arc<Store>);

impl GreylistBackend for StoreGreylist {
    fn check(
        &self,
        greylist: &Greylist,
        triplet: &Triplet<'_>,
        now_unix_s: u64,
        ctx: &GreylistContext<'_>,
    ) -> Result<GreylistDecision, GreylistBackendError> {
        self.0
            .greylist_check(greylist, triplet, now_unix_s, ctx)
            .map_err(|e| GreylistBackendError(e.to_string()))
    }
}

/// Purges expired greylisting rows under the current policy's settings
/// every [`PURGE_EVERY`] until `stop` (nothing when greylisting is off).
pub(crate) async fn purge(store: Arc<Store>, stop: CancellationToken) {
    let mut every = tokio::time::interval(PURGE_EVERY);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return,
        }
        let Some(settings) = store.current().greylist_settings() else {
            continue;
        };
        let Ok(greylist) = Greylist::new(settings) else {
            continue;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let s = Arc::clone(&store);
        match tokio::task::spawn_blocking(move || s.purge_greylist(now, &greylist)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(rows = n, "expired greylisting entries purged"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "greylisting purge failed"),
            Err(e) => tracing::warn!(error = %e, "greylisting purge failed"),
        }
    }
}
