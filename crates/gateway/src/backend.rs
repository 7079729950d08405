//! Choosing a backend server and connecting to it, shared by the l4 relay
//! and the SMTP-mode client: a slot is taken on a usable server, and a
//! failed connect moves on to the next server (nothing was sent yet, so
//! retrying is safe).

use mxgate_balance::{Lease, NoServer, Pool, Server};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;

/// Takes a slot on a usable server and connects to it, moving on to the next
/// server when a connect fails or times out.
///
/// # Errors
/// Why no server could be reached, for logs.
pub(crate) async fn connect_backend(
    pool: &Pool,
    client: SocketAddr,
) -> Result<(Lease, TcpStream), String> {
    connect_backend_skipping(pool, client, &mut Vec::new()).await
}

/// [`connect_backend`] skipping the servers in `tried`; every server whose
/// connect fails is added to it, so a caller that also gives up on a
/// connected server (its SMTP set-up failed) can push it and call again.
///
/// # Errors
/// Why no server could be reached, for logs.
pub(crate) async fn connect_backend_skipping(
    pool: &Pool,
    client: SocketAddr,
    tried: &mut Vec<Arc<Server>>,
) -> Result<(Lease, TcpStream), String> {
    let timeout = pool.settings().connect_timeout;
    let mut last_error = String::new();
    loop {
        let lease = match pool.acquire(client.ip(), tried).await {
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
