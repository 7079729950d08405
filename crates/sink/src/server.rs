//! The accept loop (after mini-redis's `server.rs`): one task per connection,
//! a semaphore capping concurrent connections, and a graceful shutdown that
//! waits for every connection task, within [`SinkOptions::shutdown_grace`].

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::{JoinError, JoinSet};

use crate::connection;
use crate::store::{prepare_maildir, Shared};
use crate::SinkOptions;

/// Pause after a failed `accept` (out of file descriptors, for instance)
/// before trying again, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Runs a sink on `listener` until `shutdown` completes.
///
/// Each accepted connection gets its own task; at most
/// [`SinkOptions::max_connections`] run at once, further clients wait in the
/// listen backlog. When `shutdown` completes the listener is closed, sessions
/// waiting for a command get `421 4.3.2` and are closed, sessions in the
/// middle of a DATA transfer may finish that message (then get `421`), and
/// the function returns once every connection task has ended. Tasks still
/// running after [`SinkOptions::shutdown_grace`] are aborted.
///
/// # Errors
///
/// Only at start: the Maildir directories (`tmp/`, `new/`, `cur/`) cannot be
/// created. Errors of single connections are logged, never returned.
pub async fn serve(
    listener: TcpListener,
    options: SinkOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    if let Some(dir) = &options.maildir {
        prepare_maildir(dir).await?;
    }
    let grace = options.shutdown_grace;
    let limit = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let shared = Arc::new(Shared::new(options));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    if let Ok(local) = listener.local_addr() {
        tracing::info!(%local, hostname = %shared.options.hostname, "sink listening");
    }
    tokio::pin!(shutdown);

    loop {
        while let Some(result) = tasks.try_join_next() {
            report(result);
        }
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = limit.clone().acquire_owned() => permit,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                let pause = tokio::time::sleep(ACCEPT_BACKOFF);
                tokio::select! {
                    () = &mut shutdown => break,
                    () = pause => continue,
                }
            }
        };
        let _ = socket.set_nodelay(true);
        shared
            .options
            .stats
            .sessions
            .fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        let stop = stop_rx.clone();
        tasks.spawn(async move {
            connection::handle(socket, peer, shared, stop).await;
            drop(permit);
        });
    }

    drop(listener);
    let _ = stop_tx.send(true);
    tracing::info!(sessions = tasks.len(), "sink stopping");
    let drained = tokio::time::timeout(grace, async {
        while let Some(result) = tasks.join_next().await {
            report(result);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            sessions = tasks.len(),
            ?grace,
            "aborting sessions still running"
        );
        tasks.shutdown().await;
    }
    tracing::info!("sink stopped");
    Ok(())
}

/// Logs a connection task that panicked (a bug) rather than ending normally.
fn report(result: Result<(), JoinError>) {
    if let Err(error) = result {
        if error.is_panic() {
            tracing::error!(%error, "connection task panicked");
        }
    }
}
