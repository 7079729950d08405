//! Byte relay between the client and the backend: both directions at once,
//! half-close passed on (a FIN from one side becomes a write shutdown on the
//! other), and one idle timeout over both directions.
//!
//! Memory matters more than anything else here: a gateway holds thousands of
//! idle SMTP sessions. The relay therefore keeps no buffer while it waits: it
//! waits for readiness, then reads into a stack buffer and writes it on at
//! once. Only when the receiver cannot take everything does the rest move to
//! a heap buffer for the duration of that write.

use socket2::SockRef;
use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
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

/// Milliseconds since the relay started at which bytes last moved.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
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
    client: &TcpStream,
    backend: &TcpStream,
    to_backend_first: &[u8],
    idle: Duration,
) -> RelayStats {
    let activity = Activity {
        start: Instant::now(),
        last_ms: AtomicU64::new(0),
    };
    let mut upstream = 0u64;
    let mut downstream = 0u64;
    let both = async {
        tokio::try_join!(
            pump(client, backend, to_backend_first, &activity, &mut upstream),
            pump(backend, client, &[], &activity, &mut downstream),
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
    from: &TcpStream,
    to: &TcpStream,
    first: &[u8],
    activity: &Activity,
    count: &mut u64,
) -> io::Result<()> {
    if !first.is_empty() {
        write_all(to, first).await?;
        *count += first.len() as u64;
    }
    loop {
        from.readable().await?;
        match forward_ready(from, to)? {
            Forwarded::Nothing => continue,
            Forwarded::All(n) => *count += n as u64,
            Forwarded::Partly(n, rest) => {
                *count += n as u64;
                write_all(to, &rest).await?;
            }
            Forwarded::Eof => {
                // The peer may already be gone; a failed shutdown changes nothing.
                let _ = SockRef::from(to).shutdown(Shutdown::Write);
                return Ok(());
            }
        }
        activity.touch();
    }
}

/// What one non-blocking read-and-forward step did.
enum Forwarded {
    /// Readiness was spurious.
    Nothing,
    /// `n` bytes read and all written on.
    All(usize),
    /// `n` bytes read; the receiver took only part, the rest must be written.
    Partly(usize, Vec<u8>),
    /// The sender closed its direction.
    Eof,
}

/// Reads what is ready into a stack buffer and writes as much as the receiver
/// takes without waiting. Synchronous, so the buffer never lives in the
/// session's future while it is parked.
fn forward_ready(from: &TcpStream, to: &TcpStream) -> io::Result<Forwarded> {
    let mut buf = [0u8; CHUNK];
    let n = match from.try_read(&mut buf) {
        Ok(0) => return Ok(Forwarded::Eof),
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Forwarded::Nothing),
        Err(e) => return Err(e),
    };
    let mut written = 0;
    while written < n {
        match to.try_write(&buf[written..n]) {
            Ok(m) => written += m,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Ok(Forwarded::Partly(n, buf[written..n].to_vec()));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Forwarded::All(n))
}

/// Writes all of `bytes`, waiting for the socket as needed.
async fn write_all(to: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        to.writable().await?;
        match to.try_write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        (a, b)
    }

    #[tokio::test]
    async fn relays_both_ways_and_passes_half_close() {
        let (mut client, client_side) = pair().await;
        let (backend_side, mut backend) = pair().await;
        let task = tokio::spawn(async move {
            relay(
                &client_side,
                &backend_side,
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
        let (_client, client_side) = pair().await;
        let (backend_side, _backend) = pair().await;
        let stats = relay(&client_side, &backend_side, b"", Duration::from_millis(200)).await;
        assert_eq!(stats.end, RelayEnd::IdleTimeout);
    }
}
