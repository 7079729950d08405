//! One client connection: optional PROXY header, then the SMTP session's
//! read → step → write loop with the idle timeout and graceful shutdown.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::proxy;
use crate::session::{Event, Session};
use crate::store::{self, Shared};
use crate::SinkStats;

/// Room made in the read buffer before each read.
const READ_CHUNK: usize = 16 * 1024;

/// Serves one accepted connection to the end.
pub(crate) async fn handle<S>(
    mut stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _active = ActiveGuard::new(&shared.options.stats);
    let mut buf = Vec::with_capacity(READ_CHUNK);
    let mut client = peer.ip();
    if shared.options.accept_proxy {
        match proxy::read_header(&mut stream, &mut buf).await {
            Ok(Some(source)) => client = source.ip(),
            Ok(None) => {}
            Err(error) => {
                tracing::debug!(%peer, %error, "connection dropped");
                return;
            }
        }
    }
    let client = client.to_canonical();
    tracing::debug!(%peer, %client, "session start");
    run(stream, buf, client, &shared, shutdown).await;
    tracing::debug!(%peer, %client, "session end");
}

/// How waiting for client input ended.
enum Input {
    Data,
    Closed,
    Timeout,
    Shutdown,
}

/// The session loop. `buf` holds octets already read (after a PROXY header).
async fn run<S>(
    mut stream: S,
    mut buf: Vec<u8>,
    client: IpAddr,
    shared: &Shared,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let options = &shared.options;
    let mut session = Session::new(&options.hostname, options.max_message_size);
    let mut out = session.banner().to_string().into_bytes();
    let mut pos = 0;
    loop {
        let (used, event) = session.step(&buf[pos..], &mut out);
        pos += used;
        match event {
            Event::Message(message) => {
                let reply = store::accept(shared, client, message).await;
                out.extend_from_slice(reply.to_string().as_bytes());
            }
            Event::Close => {
                let _ = write_out(&mut stream, &mut out).await;
                return;
            }
            Event::NeedInput => {
                buf.drain(..pos);
                pos = 0;
                if write_out(&mut stream, &mut out).await.is_err() {
                    return;
                }
                // Between commands the session may be closed for shutdown;
                // during DATA the message is allowed to finish.
                let watch_shutdown = !session.in_data();
                let input = read_more(
                    &mut stream,
                    &mut buf,
                    options.idle_timeout,
                    watch_shutdown.then_some(&mut shutdown),
                )
                .await;
                let last = match input {
                    Input::Data => continue,
                    Input::Closed => return,
                    Input::Timeout => session.timeout_reply(),
                    Input::Shutdown => session.shutdown_reply(),
                };
                out.extend_from_slice(last.to_string().as_bytes());
                let _ = write_out(&mut stream, &mut out).await;
                return;
            }
        }
    }
}

/// Reads more input into `buf`, unless the client stays silent for `idle` or
/// (when `shutdown` is given) the sink stops first.
async fn read_more<S>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    idle: std::time::Duration,
    shutdown: Option<&mut watch::Receiver<bool>>,
) -> Input
where
    S: AsyncRead + Unpin,
{
    buf.reserve(READ_CHUNK);
    let read = tokio::time::timeout(idle, stream.read_buf(buf));
    let result = match shutdown {
        None => read.await,
        Some(shutdown) => {
            tokio::select! {
                result = read => result,
                // An error means the server is gone: stop as well.
                _ = shutdown.wait_for(|stop| *stop) => return Input::Shutdown,
            }
        }
    };
    match result {
        Err(_elapsed) => Input::Timeout,
        Ok(Ok(0)) | Ok(Err(_)) => Input::Closed,
        Ok(Ok(_)) => Input::Data,
    }
}

/// Writes and flushes pending replies.
async fn write_out<S>(stream: &mut S, out: &mut Vec<u8>) -> std::io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    if out.is_empty() {
        return Ok(());
    }
    stream.write_all(out).await?;
    out.clear();
    stream.flush().await
}

/// Counts a connection in [`SinkStats::active_sessions`] while alive.
struct ActiveGuard<'a>(&'a SinkStats);

impl<'a> ActiveGuard<'a> {
    fn new(stats: &'a SinkStats) -> Self {
        stats.active_sessions.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(stats)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.active_sessions.fetch_sub(1, Ordering::Relaxed);
    }
}
