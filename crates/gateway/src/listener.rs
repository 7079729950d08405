//! A bound listener and its accept loops: one socket per worker
//! (`SO_REUSEPORT`), connection caps checked at accept, one task per session
//! on the accepting worker, tracked so shutdown can wait for all of them.

use crate::per_client::PerClient;
use crate::screen::Screening;
use crate::session::{self, SessionContext};
use crate::smtp::session::SmtpShared;
use crate::stats::{ConnResult, ListenerStats};
use crate::workers::Workers;
use arc_swap::ArcSwap;
use mxgate_balance::Pools;
use mxgate_config::{Listener, ListenerMode};
use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Pending connections the kernel queues per socket.
const BACKLOG: i32 = 4096;

/// What every listener of a gateway shares.
pub(crate) struct Shared {
    /// Backend pools.
    pub pools: Arc<Pools>,
    /// Host name used in SMTP replies.
    pub hostname: Arc<str>,
    /// Every accept loop and session task, so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// Fires when the gateway stops accepting.
    pub stop_accepting: CancellationToken,
    /// Connections open over all listeners.
    pub active: AtomicU64,
    /// `[limits] max_connections`.
    pub max_connections: AtomicU32,
    /// The session worker threads.
    pub workers: Workers,
    /// What smtp-mode sessions share.
    pub smtp: SmtpShared,
    /// Lists and rate limits.
    pub screening: Arc<Screening>,
}

/// A listener that is bound and accepting.
pub(crate) struct RunningListener {
    /// Current settings; replaced in place when only settings change.
    pub config: ArcSwap<Listener>,
    /// Counters (kept across rebinds and setting changes).
    pub stats: Arc<ListenerStats>,
    /// The bound address (the configured one, with port 0 resolved).
    pub local_addr: SocketAddr,
    /// Stops this listener's accept loops only.
    pub stop: CancellationToken,
    /// Connections open per client address.
    pub per_client: Arc<PerClient>,
}

/// Binds `count` sockets to `addr` with `SO_REUSEPORT`, so each worker
/// accepts on its own; port 0 is resolved by the first bind.
pub(crate) fn bind(addr: SocketAddr, count: usize) -> io::Result<Vec<std::net::TcpListener>> {
    let mut sockets = Vec::with_capacity(count);
    let mut addr = addr;
    for _ in 0..count.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        // Accepted sockets inherit TCP_NODELAY from the listening socket.
        socket.set_tcp_nodelay(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        let listener: std::net::TcpListener = socket.into();
        addr = listener.local_addr()?;
        sockets.push(listener);
    }
    Ok(sockets)
}

impl RunningListener {
    /// Starts one accept loop per worker, each on its own socket.
    pub fn start(
        sockets: Vec<std::net::TcpListener>,
        config: Arc<Listener>,
        stats: Arc<ListenerStats>,
        shared: &Arc<Shared>,
    ) -> io::Result<Arc<RunningListener>> {
        let local_addr = sockets
            .first()
            .ok_or_else(|| io::Error::other("no socket to accept on"))?
            .local_addr()?;
        let running = Arc::new(RunningListener {
            config: ArcSwap::new(config),
            stats,
            local_addr,
            stop: shared.stop_accepting.child_token(),
            per_client: Arc::default(),
        });
        tracing::info!(listener = %running.config.load().name, addr = %local_addr, "listening");
        for (socket, worker) in sockets.into_iter().zip(shared.workers.handles()) {
            let me = Arc::clone(&running);
            let shared2 = Arc::clone(shared);
            worker.spawn(
                shared
                    .tracker
                    .track_future(accept_loop(socket, me, shared2)),
            );
        }
        Ok(running)
    }
}

async fn accept_loop(socket: std::net::TcpListener, me: Arc<RunningListener>, shared: Arc<Shared>) {
    let socket = match TcpListener::from_std(socket) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(listener = %me.config.load().name, error = %e, "cannot register socket");
            return;
        }
    };
    let stop = me.stop.cancelled();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            () = &mut stop => break,
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
}

/// Checks the caps and starts the session task (or a refusal task) on this
/// worker.
fn admit(me: &Arc<RunningListener>, shared: &Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let config = me.config.load_full();
    let global = shared.active.fetch_add(1, Ordering::Relaxed) + 1;
    let over_global = global > u64::from(shared.max_connections.load(Ordering::Relaxed));
    let over_listener =
        config.max_connections > 0 && me.stats.active() >= u64::from(config.max_connections);
    // Behind a trusted PROXY upstream every peer is the upstream: the cap
    // would limit it, not the clients.
    let per_client_limit = if config.accept_proxy {
        0
    } else {
        config.max_connections_per_client
    };
    let slot = (per_client_limit > 0).then(|| me.per_client.try_take(peer.ip(), per_client_limit));
    let over_client = matches!(slot, Some(None));
    let ctx = SessionContext {
        listener: config,
        pools: Arc::clone(&shared.pools),
        stats: Arc::clone(&me.stats),
        hostname: Arc::clone(&shared.hostname),
        screening: Arc::clone(&shared.screening),
    };
    let shared2 = Arc::clone(shared);
    let task = async move {
        let _slot = slot;
        if over_global || over_listener || over_client {
            refuse_busy(&ctx, stream, peer).await;
        } else if ctx.listener.mode == ListenerMode::Smtp {
            crate::smtp::session::run(&ctx, &shared2.smtp, stream, peer).await;
        } else {
            session::run(&ctx, stream, peer).await;
        }
        shared2.active.fetch_sub(1, Ordering::Relaxed);
    };
    tokio::spawn(shared.tracker.track_future(task));
}

/// A connection over a cap: `421 4.7.0` and a clean close.
async fn refuse_busy(ctx: &SessionContext, mut stream: TcpStream, peer: SocketAddr) {
    let _open = ctx.stats.open();
    let reply = format!(
        "421 4.7.0 {} Too many connections, try again later\r\n",
        ctx.hostname
    );
    session::refuse(&mut stream, &reply).await;
    ctx.stats.count(ConnResult::Tempfail);
    tracing::info!(listener = %ctx.listener.name, client = %peer, result = "tempfail", reason = "connection limit", "session");
}
