//! Greylisting in smtp mode: where the state lives ([`GreylistBackend`])
//! and the check [`crate::screen::FilteringRelay`] runs for each RCPT.
//!
//! The gateway does not own the state: the binary hands it a backend over
//! the shared store with [`crate::Gateway::set_greylist_backend`]. Without a
//! backend, greylisting is not applied even when `[greylist]` enables it.
//!
//! A backend error *fails open*: the error is logged, counted as
//! `("greylist", "error")` and the recipient goes on to the backend, so a
//! broken store never defers mail forever.
//!
//! The SPF result of the transaction (when `[auth] spf` checked it and it
//! passed) goes into the [`GreylistContext`] for SPF-domain keying; DMARC
//! is not evaluated yet, so there is no DMARC skip.

use mxgate_filter::greylist::{Greylist, GreylistContext, GreylistDecision, Triplet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// A greylisting backend failed; the attempt is let through.
#[derive(Debug, Error)]
#[error("greylist backend: {0}")]
pub struct GreylistBackendError(pub String);

/// Where greylisting state lives (the binary implements it over its store).
///
/// `check` may block (SQLite): the gateway calls it from
/// `tokio::task::spawn_blocking`.
pub trait GreylistBackend: Send + Sync {
    /// Decides one attempt with `greylist` against the stored state and
    /// records it.
    ///
    /// # Errors
    /// When the state cannot be read or written; the gateway then lets the
    /// attempt through.
    fn check(
        &self,
        greylist: &Greylist,
        triplet: &Triplet<'_>,
        now_unix_s: u64,
        ctx: &GreylistContext<'_>,
    ) -> Result<GreylistDecision, GreylistBackendError>;
}

/// Checks (client, sender, recipient) off the session thread; `None` when
/// the backend failed (fail open, logged).
pub(crate) async fn check(
    backend: Arc<dyn GreylistBackend>,
    greylist: Greylist,
    client: IpAddr,
    sender: String,
    recipient: String,
    spf_pass_domain: Option<String>,
) -> Option<GreylistDecision> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let joined = tokio::task::spawn_blocking(move || {
        let triplet = Triplet {
            client,
            sender: &sender,
            recipient: &recipient,
        };
        let ctx = GreylistContext {
            spf_pass_domain: spf_pass_domain.as_deref(),
            dmarc_aligned_pass: false,
        };
        backend.check(&greylist, &triplet, now, &ctx)
    })
    .await;
    match joined {
        Ok(Ok(decision)) => Some(decision),
        Ok(Err(e)) => {
            tracing::warn!(%client, error = %e, "greylisting failed; letting the recipient through");
            None
        }
        Err(e) => {
            tracing::warn!(%client, error = %e, "greylisting failed; letting the recipient through");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxgate_filter::greylist::{GreylistSettings, GreylistStore, MemoryStore};
    use std::sync::Mutex;

    struct Memory(Mutex<MemoryStore>);
    impl GreylistBackend for Memory {
        fn check(
            &self,
            greylist: &Greylist,
            triplet: &Triplet<'_>,
            now_unix_s: u64,
            ctx: &GreylistContext<'_>,
        ) -> Result<GreylistDecision, GreylistBackendError> {
            let mut store = self.0.lock().unwrap();
            Ok(greylist.check(&mut *store, triplet, now_unix_s, ctx))
        }
    }

    struct Broken;
    impl GreylistBackend for Broken {
        fn check(
            &self,
            _: &Greylist,
            _: &Triplet<'_>,
            _: u64,
            _: &GreylistContext<'_>,
        ) -> Result<GreylistDecision, GreylistBackendError> {
            Err(GreylistBackendError("disk on fire".into()))
        }
    }

    fn args() -> (Greylist, IpAddr, String, String) {
        let g = Greylist::new(GreylistSettings::default()).unwrap();
        (
            g,
            "192.0.2.1".parse().unwrap(),
            "a@x.test".into(),
            "b@y.test".into(),
        )
    }

    #[tokio::test]
    async fn a_new_triplet_is_deferred_and_recorded() {
        let backend = Arc::new(Memory(Mutex::default()));
        let (g, ip, from, to) = args();
        let d = check(backend.clone(), g, ip, from, to, None).await;
        assert!(matches!(d, Some(GreylistDecision::Defer { .. })), "{d:?}");
        let store = backend.0.lock().unwrap();
        assert_eq!(store.triplets.len(), 1);
        assert!(store.get_client(&"192.0.2.0/24".parse().unwrap()).is_none());
    }

    #[tokio::test]
    async fn a_failing_backend_fails_open() {
        let (g, ip, from, to) = args();
        assert_eq!(check(Arc::new(Broken), g, ip, from, to, None).await, None);
    }
}
