//! The web listener: HTTPS only, with plain HTTP on the same port answered
//! by a `301` to the `https://` URL. The first byte of each connection
//! decides (`0x16` starts a TLS handshake). Each request carries the
//! client's address ([`ClientAddr`]) for the login rate limit.
//!
//! [`serve_https`] takes a bound listener and a shutdown future; on
//! shutdown it stops accepting, asks every open connection to finish its
//! request, and waits for them (at most [`DRAIN`]).

use crate::auth::ClientAddr;
use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// How long a new connection may take to send its first byte and finish
/// the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for open connections.
const DRAIN: Duration = Duration::from_secs(5);
/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 256;

/// Serves `router` over TLS (`tls`) on `listener` until `shutdown`.
///
/// # Errors
/// Never for a single connection's failure (logged at debug level); only
/// when the listener itself fails for good.
pub async fn serve_https(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => r,
        };
        let (tcp, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly.
                tracing::warn!(error = %e, "web: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if connections.len() >= MAX_CONNECTIONS {
            drop(tcp);
            continue;
        }
        let (acceptor, router, stop) = (acceptor.clone(), router.clone(), stop_rx.clone());
        connections.spawn(async move {
            if let Err(e) = connection(tcp, peer, acceptor, router, stop).await {
                tracing::debug!(client = %peer, error = %e, "web: connection ended");
            }
        });
    }
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
    Ok(())
}

/// One connection: TLS, or a plain-HTTP request answered with a redirect.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
    stop: watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let local = tcp.local_addr()?;
    let mut first = [0u8; 1];
    let n = tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut first)).await??;
    if n == 0 {
        return Ok(());
    }
    if first[0] != TLS_HANDSHAKE {
        let service = hyper::service::service_fn(move |req| async move {
            Ok::<_, std::convert::Infallible>(redirect(&req, local))
        });
        return serve_connection(TokioIo::new(tcp), service, stop).await;
    }
    let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await??;
    let service = router.map_request(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(ClientAddr(peer));
        req
    });
    serve_connection(TokioIo::new(tls), TowerToHyperService::new(service), stop).await
}

/// Serves HTTP/1.1 on `io` until the client closes or `stop` turns true
/// (then the request in progress finishes first).
async fn serve_connection<I, S>(
    io: I,
    service: S,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => return Ok(r?),
        _ = stop.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
    }
    Ok(conn.await?)
}

/// `301` to the same path over `https://`, on the host the client asked
/// for (the listener's address when it named none).
fn redirect(req: &Request<Incoming>, local: SocketAddr) -> Response<Body> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        })
        .map_or_else(|| local.to_string(), str::to_string);
    let path = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let location = format!("https://{host}{path}");
    Response::builder()
        .status(StatusCode::MOVED_PERMANENTLY)
        .header(header::LOCATION, &location)
        .header(header::CONNECTION, "close")
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(format!(
            "this server speaks HTTPS only: {location}\n"
        )))
        .expect("valid response")
}
