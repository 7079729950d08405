//! Byte relay between the client and the backend: both directions at once,
//! half-close passed on (a FIN from one side becomes a write shutdown on the
//! other), and one idle timeout over both directions.
//!
//! Memory matters more than anything else here: a gateway holds thousands of
//! idle SMTP sessions. The relay therefore keeps no buffer while it waits: it
//! waits for readiness, then reads into the thread's buffer and writes it on
//! at once. Only when the receiver cannot take everything does the rest move to
//! a heap buffer for the duration of that write.

use socket2::SockRef;
use std::future::poll_fn;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Size of the stack buffer one read fills.
const CHUNK: usize = 16 * 1024;

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// Both sides closed their sending direction.
    Closed,
    /// No byte moved in either direction for the idle timeout.
    IdleTimeout,
    /// A socket error (reset, broken pipe) ended it.
    Error(io::ErrorKind),
}

/// Byte counts of a finished relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayStats {
    /// Client to backend.
    pub upstream_bytes: u64,
    /// Backend to client.
    pub downstream_bytes: u64,
    /// Why it ended.
    pub end: RelayEnd,
}

/// What both directions of one relay share.
struct Activity {
    start: Instant,
    /// Milliseconds since `start` at which bytes last moved.
    last_ms: AtomicU64,
    /// Directions that reached end of stream.
    closed: AtomicU8,
}

impl Activity {
    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
}

/// Relays between `client` and `backend` until both directions are closed,
/// an error occurs, or nothing moved for `idle`. `to_backend_first` (bytes the
/// client sent after its PROXY header) is delivered to the backend first.
pub async fn relay(
    client: &mut TcpStream,
    backend: &mut TcpStream,
    to_backend_first: &[u8],
    idle: Duration,
) -> RelayStats {
    let activity = Activity {
        start: Instant::now(),
        last_ms: AtomicU64::new(0),
        closed: AtomicU8::new(0),
    };
    let mut upstream = 0u64;
    let mut downstream = 0u64;
    let (client_rd, client_wr) = client.split();
    let (backend_rd, backend_wr) = backend.split();
    let both = async {
        tokio::try_join!(
            pump(
                client_rd,
                backend_wr,
                to_backend_first,
                &activity,
                &mut upstream
            ),
            pump(backend_rd, client_wr, &[], &activity, &mut downstream),
        )
    };
    let end = tokio::select! {
        r = both => match r {
            Ok(_) => RelayEnd::Closed,
            Err(e) => RelayEnd::Error(e.kind()),
        },
        () = watchdog(&activity, idle) => RelayEnd::IdleTimeout,
    };
    RelayStats {
        upstream_bytes: upstream,
        downstream_bytes: downstream,
        end,
    }
}

/// Completes when no byte moved for `idle`.
async fn watchdog(activity: &Activity, idle: Duration) {
    loop {
        let deadline = activity.last() + idle;
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

/// One direction: `from` → `to`, then a write shutdown of `to` on EOF.
async fn pump(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    first: &[u8],
    activity: &Activity,
    count: &mut u64,
) -> io::Result<()> {
    if !first.is_empty() {
        to.write_all(first).await?;
        *count += first.len() as u64;
    }
    loop {
        let step = poll_fn(|cx| {
            BUFFER.with_borrow_mut(|buf| forward_ready(cx, &mut from, &to, &mut buf[..]))
        })
        .await?;
        match step {
            Forwarded::All(n) => *count += n as u64,
            Forwarded::Partly(n, rest) => {
                *count += n as u64;
                to.write_all(&rest).await?;
            }
            Forwarded::Eof => {
                // Pass the FIN on. When the other direction is already
                // closed, both sockets are closed right after this anyway.
                // The peer may already be gone; a failed shutdown changes nothing.
                if activity.closed.fetch_add(1, Ordering::Relaxed) == 0 {
                    let _ = SockRef::from(to.as_ref()).shutdown(Shutdown::Write);
                }
                return Ok(());
            }
        }
        activity.touch();
    }
}

thread_local! {
    /// The one read buffer of this thread: the relay never holds it across
    /// an await, so every session of a worker shares it (and it is zeroed
    /// once, not on every read).
    static BUFFER: std::cell::RefCell<Box<[u8; CHUNK]>> =
        std::cell::RefCell::new(Box::new([0; CHUNK]));
}

/// What one read-and-forward step did.
enum Forwarded {
    /// `n` bytes read and all written on.
    All(usize),
    /// `n` bytes read; the receiver took only part, the rest must be written.
    Partly(usize, Vec<u8>),
    /// The sender closed its direction.
    Eof,
}

/// Reads what is ready into `buf` and writes as much as the receiver takes
/// without waiting. Synchronous inside one poll, so the buffer never lives in
/// the session's future while it is parked. `poll_read` (unlike `try_read`)
/// treats a short read as "socket drained", which saves a `recv` that would
/// only return `EAGAIN` after every chunk.
fn forward_ready(
    cx: &mut Context<'_>,
    from: &mut ReadHalf<'_>,
    to: &WriteHalf<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<Forwarded>> {
    let mut read = ReadBuf::new(buf);
    ready!(Pin::new(from).poll_read(cx, &mut read))?;
    let data = read.filled();
    if data.is_empty() {
        return Poll::Ready(Ok(Forwarded::Eof));
    }
    let n = data.len();
    let mut written = 0;
    while written < n {
        match to.try_write(&data[written..]) {
            Ok(m) => written += m,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Poll::Ready(Ok(Forwarded::Partly(n, data[written..].to_vec())));
            }
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
    Poll::Ready(Ok(Forwarded::All(n)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        (a, b)
    }

    #[tokio::test]
    async fn relays_both_ways_and_passes_half_close() {
        let (mut client, mut client_side) = pair().await;
        let (mut backend_side, mut backend) = pair().await;
        let task = tokio::spawn(async move {
            relay(
                &mut client_side,
                &mut backend_side,
                b"early ",
                Duration::from_secs(5),
            )
            .await
        });
        let big = vec![b'x'; 1 << 20];
        client.write_all(&big).await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        backend.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), 6 + big.len());
        assert!(got.starts_with(b"early x"));
        // The backend can still answer after the client's half-close.
        backend.write_all(b"221 bye\r\n").await.unwrap();
        backend.shutdown().await.unwrap();
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"221 bye\r\n");
        let stats = task.await.unwrap();
        assert_eq!(stats.end, RelayEnd::Closed);
        assert_eq!(stats.upstream_bytes, 6 + (1 << 20));
        assert_eq!(stats.downstream_bytes, 9);
    }

    #[tokio::test]
    async fn idle_timeout_ends_a_silent_session() {
        let (_client, mut client_side) = pair().await;
        let (mut backend_side, _backend) = pair().await;
        let stats = relay(
            &mut client_side,
            &mut backend_side,
            b"",
            Duration::from_millis(200),
        )
        .await;
        assert_eq!(stats.end, RelayEnd::IdleTimeout);
    }
}
