//! One l4 session: optional PROXY header from a trusted upstream, a backend
//! chosen and connected (trying the next on a failed connect), the PROXY
//! header to the backend, then the byte relay. When no backend can take the
//! session the client hears `421 4.3.2` and a clean close.

use crate::backend::connect_backend;
use crate::checks::CheckLog;
use crate::proxy::{backend_header, read_upstream};
use crate::relay::{relay, RelayStats};
use crate::reputation::Refusal;
use crate::screen::{Admitted, Screening};
use crate::stats::{ConnResult, ListenerStats};
use mxgate_balance::Pools;
use mxgate_config::{Listener, ProxyVersion};
use mxgate_smtp::Reply;
use socket2::SockRef;
use std::net::{IpAddr, Shutdown, SocketAddr};
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
    /// Lists and rate limits.
    pub screening: Arc<Screening>,
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
pub(crate) struct Outcome {
    /// How the connection is counted.
    pub result: ConnResult,
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

/// Where a session comes from: the real client, the address it connected
/// to, and bytes that came after an upstream's PROXY header.
pub(crate) struct Origin {
    /// The real client.
    pub client: SocketAddr,
    /// The address the client connected to.
    pub destination: SocketAddr,
    /// Bytes received after the PROXY header.
    pub early: Vec<u8>,
}

/// Reads the upstream's PROXY header when the listener expects one (refusing
/// untrusted peers with 421), else takes the TCP peer as the client.
///
/// # Errors
/// The outcome of a refused session, already answered.
pub(crate) async fn origin(
    ctx: &SessionContext,
    client: &mut TcpStream,
    peer: SocketAddr,
    needs_local: bool,
) -> Result<Origin, Outcome> {
    let listener = &ctx.listener;
    // getsockname only when a PROXY header needs the address.
    let local = (needs_local || listener.accept_proxy)
        .then(|| client.local_addr().ok())
        .flatten()
        .unwrap_or(listener.bind);
    if !listener.accept_proxy {
        return Ok(Origin {
            client: peer,
            destination: local,
            early: Vec::new(),
        });
    }
    match read_upstream(
        client,
        peer,
        local,
        &listener.proxy_trusted,
        listener.proxy_timeout,
    )
    .await
    {
        Ok(up) => Ok(Origin {
            client: up.client,
            destination: up.destination,
            early: up.rest,
        }),
        Err(e) => {
            use crate::proxy::UpstreamError as E;
            let result = match e {
                E::Untrusted(_) | E::Malformed(_) => ConnResult::Rejected,
                E::Timeout(_) | E::Io(_) => ConnResult::Error,
            };
            if let E::Untrusted(_) = e {
                let reply = format!("421 4.7.0 {} Connection refused\r\n", ctx.hostname);
                refuse(client, &reply).await;
            }
            Err(Outcome::refused(result, peer, e.to_string()))
        }
    }
}

async fn serve(ctx: &SessionContext, client: &mut TcpStream, peer: SocketAddr) -> Outcome {
    let listener = &ctx.listener;
    let Origin {
        client: client_addr,
        destination,
        early,
    } = match origin(ctx, client, peer, listener.send_proxy != ProxyVersion::None).await {
        Ok(o) => o,
        Err(outcome) => return outcome,
    };
    let log = CheckLog::new(Arc::clone(&ctx.screening.verdicts));
    let _admitted = match screen(ctx, client, client_addr, None, &log).await {
        Ok((admitted, _)) => admitted,
        Err(outcome) => return outcome,
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

/// Screens the client (lists, temporary allowlist, connection limits, then
/// pregreet, DNSBL and reverse DNS when the policy asks for them); a refused
/// client hears the reply and is closed. `banner_host` is set in smtp mode:
/// the pregreet wait then starts with `220-<host> ESMTP mxgate`, and a
/// pregreeter under `greet_action = "reject"` is returned with the reply for
/// every command (l4 mode refuses it instead).
///
/// # Errors
/// The outcome of a refused session, already answered.
pub(crate) async fn screen(
    ctx: &SessionContext,
    client: &mut TcpStream,
    client_addr: SocketAddr,
    banner_host: Option<&str>,
    log: &CheckLog,
) -> Result<(Admitted, Option<Reply>), Outcome> {
    let refusal = match ctx.screening.connection(client_addr.ip(), log) {
        Err(reply) => Some(reply),
        Ok(admitted) => {
            match slow_checks(ctx, client, client_addr.ip(), banner_host, admitted, log).await {
                Ok(screened) => return Ok(screened),
                Err(refusal) => refusal,
            }
        }
    };
    let Some(reply) = refusal else {
        return Err(Outcome::refused(
            ConnResult::Rejected,
            client_addr,
            "screening: closed during the pregreet wait".into(),
        ));
    };
    refuse(client, &reply.to_string()).await;
    let result = if reply.code < 500 {
        ConnResult::Tempfail
    } else {
        ConnResult::Rejected
    };
    Err(Outcome::refused(
        result,
        client_addr,
        format!("screening: {} [{}]", reply.text(), log.take_trail()),
    ))
}

/// The checks that take time, for an admitted client: the pregreet wait
/// with the DNSBL and reverse DNS lookups during it (or, without a wait or
/// zone, the reverse lookup alone, before any banner); then the verified
/// reverse name against the lists (a block refuses with `554`, an allow
/// skips the pregreet and DNSBL verdicts); then those verdicts.
///
/// # Errors
/// The refusal to send (`None`: just close).
async fn slow_checks(
    ctx: &SessionContext,
    client: &mut TcpStream,
    ip: IpAddr,
    banner_host: Option<&str>,
    mut admitted: Admitted,
    log: &CheckLog,
) -> Result<(Admitted, Option<Reply>), Refusal> {
    let reverse = admitted.reverse.take();
    let (gathered, name) = match (admitted.pending.take(), reverse) {
        (Some(pending), reverse) => {
            let (gathered, name) = pending
                .gather(client, ip, banner_host, reverse, log)
                .await?;
            (Some(gathered), name)
        }
        (None, Some(reverse)) => (None, reverse.run(ip, log).await),
        (None, None) => return Ok((admitted, None)),
    };
    ctx.screening
        .reverse_name(&mut admitted, ip, name, log)
        .map_err(Some)?;
    let Some(gathered) = gathered.filter(|_| !admitted.allowed) else {
        return Ok((admitted, None));
    };
    let passed = gathered.judge(ip, log)?;
    admitted.allowed |= passed.allowlisted;
    match (passed.reject_all, banner_host) {
        (Some(reply), None) => Err(Some(reply)),
        (reject_all, _) => Ok((admitted, reject_all)),
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
