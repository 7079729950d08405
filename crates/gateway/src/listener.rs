//! A bound listener and its accept loop: connection caps checked at accept,
//! one task per session, tracked so shutdown can wait for all of them.

use crate::session::{self, SessionContext};
use crate::stats::{ConnResult, ListenerStats};
use arc_swap::ArcSwap;
use mxgate_balance::Pools;
use mxgate_config::Listener;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Pending connections the kernel queues for us.
const BACKLOG: u32 = 4096;

/// What every listener of a gateway shares.
pub(crate) struct Shared {
    /// Backend pools.
    pub pools: Arc<Pools>,
    /// Host name used in SMTP replies.
    pub hostname: Arc<str>,
    /// Every session task, so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// Fires when a shutdown's grace period is over.
    pub hard_stop: CancellationToken,
    /// Connections open over all listeners.
    pub active: AtomicU64,
    /// `[limits] max_connections`.
    pub max_connections: AtomicU32,
}

/// A listener that is bound and accepting.
pub(crate) struct RunningListener {
    /// Current settings; replaced in place when only settings change.
    pub config: ArcSwap<Listener>,
    /// Counters (kept across rebinds and setting changes).
    pub stats: Arc<ListenerStats>,
    /// The bound address (the configured one, with port 0 resolved).
    pub local_addr: SocketAddr,
    /// Stops this accept loop only.
    pub stop: CancellationToken,
}

/// Binds `addr` with address reuse and a deep backlog.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

impl RunningListener {
    /// Starts accepting on `socket`.
    pub fn start(
        socket: TcpListener,
        config: Arc<Listener>,
        stats: Arc<ListenerStats>,
        shared: &Arc<Shared>,
    ) -> io::Result<Arc<RunningListener>> {
        let running = Arc::new(RunningListener {
            config: ArcSwap::new(config),
            stats,
            local_addr: socket.local_addr()?,
            stop: shared.hard_stop.child_token(),
        });
        let shared2 = Arc::clone(shared);
        let me = Arc::clone(&running);
        shared.tracker.spawn(accept_loop(socket, me, shared2));
        Ok(running)
    }
}

async fn accept_loop(socket: TcpListener, me: Arc<RunningListener>, shared: Arc<Shared>) {
    tracing::info!(listener = %me.config.load().name, addr = %me.local_addr, "listening");
    loop {
        let accepted = tokio::select! {
            () = me.stop.cancelled() => break,
            r = socket.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => admit(&me, &shared, stream, peer),
            Err(e) => {
                // Out of file descriptors or similar: back off instead of spinning.
                tracing::warn!(listener = %me.config.load().name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tracing::info!(listener = %me.config.load().name, addr = %me.local_addr, "stopped accepting");
}

/// Checks the caps and starts the session task (or a refusal task).
fn admit(me: &Arc<RunningListener>, shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let config = me.config.load_full();
    let global = shared.active.fetch_add(1, Ordering::Relaxed) + 1;
    let over_global = global > u64::from(shared.max_connections.load(Ordering::Relaxed));
    let over_listener =
        config.max_connections > 0 && me.stats.active() >= u64::from(config.max_connections);
    let ctx = Arc::new(SessionContext {
        listener: config,
        pools: Arc::clone(&shared.pools),
        stats: Arc::clone(&me.stats),
        hostname: Arc::clone(&shared.hostname),
        hard_stop: shared.hard_stop.clone(),
    });
    let shared2 = Arc::clone(shared);
    if over_global || over_listener {
        shared.tracker.spawn(async move {
            let mut stream = stream;
            let _open = ctx.stats.open();
            let reply = format!(
                "421 4.7.0 {} Too many connections, try again later\r\n",
                ctx.hostname
            );
            session::refuse(&mut stream, &reply).await;
            ctx.stats.count(ConnResult::Tempfail);
            tracing::info!(listener = %ctx.listener.name, client = %peer, result = "tempfail", reason = "connection limit", "session");
            shared2.active.fetch_sub(1, Ordering::Relaxed);
        });
    } else {
        shared.tracker.spawn(async move {
            session::run(ctx, stream, peer).await;
            shared2.active.fetch_sub(1, Ordering::Relaxed);
        });
    }
}
