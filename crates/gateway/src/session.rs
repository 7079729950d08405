//! One l4 session: optional PROXY header from a trusted upstream, a backend
//! chosen and connected (trying the next on a failed connect), the PROXY
//! header to the backend, then the byte relay. When no backend can take the
//! session the client hears `421 4.3.2` and a clean close.

use crate::proxy::{backend_header, read_upstream};
use crate::relay::{relay, RelayStats};
use crate::stats::{ConnResult, ListenerStats};
use mxgate_balance::{Lease, NoServer, Pool, Pools, Server};
use mxgate_config::{Listener, ProxyVersion};
use socket2::SockRef;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// How long a refused client gets to read our 421 before the socket closes.
const LINGER_AFTER_REFUSAL: Duration = Duration::from_secs(2);

/// What a session needs from its listener.
pub(crate) struct SessionContext {
    /// The listener's settings when the session was accepted.
    pub listener: Arc<Listener>,
    /// Backend pools.
    pub pools: Arc<Pools>,
    /// The listener's counters.
    pub stats: Arc<ListenerStats>,
    /// Host name used in SMTP replies.
    pub hostname: Arc<str>,
}

/// Runs one accepted connection to its end and counts it.
pub(crate) async fn run(ctx: &SessionContext, mut client: TcpStream, peer: SocketAddr) {
    let started = Instant::now();
    let _open = ctx.stats.open();
    let outcome = serve(ctx, &mut client, peer).await;
    ctx.stats.count(outcome.result);
    let duration_ms = started.elapsed().as_millis();
    let listener = ctx.listener.name.as_str();
    match &outcome.relayed {
        Some((server, r)) => tracing::info!(
            listener,
            client = %outcome.client,
            server = %server,
            bytes_in = r.upstream_bytes,
            bytes_out = r.downstream_bytes,
            duration_ms,
            result = outcome.result.as_str(),
            end = ?r.end,
            "session"
        ),
        None => tracing::info!(
            listener,
            client = %outcome.client,
            duration_ms,
            result = outcome.result.as_str(),
            reason = outcome.reason.as_deref().unwrap_or(""),
            "session"
        ),
    }
}

/// What happened to a session, for its log line.
struct Outcome {
    result: ConnResult,
    client: SocketAddr,
    relayed: Option<(String, RelayStats)>,
    reason: Option<String>,
}

impl Outcome {
    fn refused(result: ConnResult, client: SocketAddr, reason: String) -> Self {
        Outcome {
            result,
            client,
            relayed: None,
            reason: Some(reason),
        }
    }
}

async fn serve(ctx: &SessionContext, client: &mut TcpStream, peer: SocketAddr) -> Outcome {
    let listener = &ctx.listener;
    // getsockname only when a PROXY header needs the address.
    let needs_local = listener.accept_proxy || listener.send_proxy != ProxyVersion::None;
    let local = needs_local
        .then(|| client.local_addr().ok())
        .flatten()
        .unwrap_or(listener.bind);
    let (client_addr, destination, early) = if listener.accept_proxy {
        match read_upstream(
            client,
            peer,
            local,
            &listener.proxy_trusted,
            listener.proxy_timeout,
        )
        .await
        {
            Ok(up) => (up.client, up.destination, up.rest),
            Err(e) => {
                use crate::proxy::UpstreamError as E;
                let result = match e {
                    E::Untrusted(_) | E::Malformed(_) => ConnResult::Rejected,
                    E::Timeout(_) | E::Io(_) => ConnResult::Error,
                };
                if let E::Untrusted(_) = e {
                    refuse(
                        client,
                        &format!("421 4.7.0 {} Connection refused\r\n", ctx.hostname),
                    )
                    .await;
                }
                return Outcome::refused(result, peer, e.to_string());
            }
        }
    } else {
        (peer, local, Vec::new())
    };

    let Some(pool) = ctx.pools.get(&listener.pool) else {
        return tempfail(ctx, client, client_addr, "pool not found".into()).await;
    };
    let (lease, mut backend) = match connect_backend(&pool, client_addr).await {
        Ok(pair) => pair,
        Err(reason) => return tempfail(ctx, client, client_addr, reason).await,
    };
    let server_label = format!("{}/{}", pool.name(), lease.server().name());
    let mut first =
        backend_header(listener.send_proxy, client_addr, destination).unwrap_or_default();
    first.extend_from_slice(&early);

    let relayed = relay(client, &mut backend, &first, listener.idle_timeout).await;
    drop(lease);
    Outcome {
        result: ConnResult::Accepted,
        client: client_addr,
        relayed: Some((server_label, relayed)),
        reason: None,
    }
}

/// Takes a slot on a usable server and connects to it, moving on to the next
/// server when a connect fails or times out (nothing was relayed yet, so
/// retrying is safe).
async fn connect_backend(pool: &Pool, client: SocketAddr) -> Result<(Lease, TcpStream), String> {
    let timeout = pool.settings().connect_timeout;
    let mut tried: Vec<Arc<Server>> = Vec::new();
    let mut last_error = String::new();
    loop {
        let lease = match pool.acquire(client.ip(), &tried).await {
            Ok(lease) => lease,
            Err(NoServer::NoneUsable) if !tried.is_empty() => {
                return Err(format!("every server failed: {last_error}"));
            }
            Err(e) => return Err(e.to_string()),
        };
        let server = Arc::clone(lease.server());
        match tokio::time::timeout(timeout, TcpStream::connect(server.address())).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((lease, stream));
            }
            Ok(Err(e)) => last_error = format!("{}: {e}", server.name()),
            Err(_) => {
                last_error = format!("{}: connect timed out after {timeout:?}", server.name())
            }
        }
        tracing::debug!(pool = pool.name(), error = %last_error, "backend connect failed, trying the next server");
        tried.push(server);
    }
}

/// Answers `421 4.3.2` and closes cleanly.
async fn tempfail(
    ctx: &SessionContext,
    client: &mut TcpStream,
    client_addr: SocketAddr,
    reason: String,
) -> Outcome {
    let reply = format!(
        "421 4.3.2 {} Service not available, try again later\r\n",
        ctx.hostname
    );
    refuse(client, &reply).await;
    Outcome::refused(ConnResult::Tempfail, client_addr, reason)
}

/// Sends `reply`, shuts our direction and reads what the client still sends
/// for a moment, so the close is a FIN and not a reset that could eat the reply.
pub(crate) async fn refuse(client: &mut TcpStream, reply: &str) {
    if client.write_all(reply.as_bytes()).await.is_err() {
        return;
    }
    let _ = SockRef::from(&*client).shutdown(Shutdown::Write);
    let drain = async {
        let mut sink = [0u8; 1024];
        while let Ok(n) = client.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_AFTER_REFUSAL, drain).await;
}
