//! Reading the PROXY v1/v2 header (HAProxy's proxy protocol) that a trusted
//! proxy sends before SMTP, with the `mxgate-wire` codec.

use std::net::SocketAddr;
use std::time::Duration;

use mxgate_wire::proxy::{self, Parsed};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::{timeout_at, Instant};

/// How long the whole header may take to arrive. Proxies send it at once.
pub(crate) const PROXY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection that had to start with a PROXY header is dropped.
#[derive(Debug, Error)]
pub(crate) enum ProxyError {
    /// The peer sent something that is not a valid PROXY header.
    #[error("bad PROXY header: {0}")]
    Invalid(proxy::Error),
    /// The peer closed the connection before the header ended.
    #[error("connection closed inside the PROXY header")]
    Closed,
    /// The header did not arrive within [`PROXY_TIMEOUT`].
    #[error("no complete PROXY header within {PROXY_TIMEOUT:?}")]
    Timeout,
    /// Reading failed.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one PROXY header into `buf` and removes it, leaving any bytes that
/// followed it in `buf`. Returns the original client's address, or `None`
/// when the header carries none (v1 `UNKNOWN`, v2 `LOCAL` or `UNSPEC`), in
/// which case the caller uses the connection's own peer address.
///
/// # Errors
///
/// [`ProxyError`] when the peer does not send a valid header in time.
pub(crate) async fn read_header<S>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> Result<Option<SocketAddr>, ProxyError>
where
    S: AsyncRead + Unpin,
{
    let deadline = Instant::now() + PROXY_TIMEOUT;
    loop {
        // `Incomplete` implies fewer octets than the longest header
        // (proxy::MAX_HEADER_LEN), so `buf` stays bounded.
        match proxy::parse(buf).map_err(ProxyError::Invalid)? {
            Parsed::Complete { header, consumed } => {
                buf.drain(..consumed);
                return Ok(header.addresses.source());
            }
            Parsed::Incomplete => {}
        }
        buf.reserve(1024);
        let read = timeout_at(deadline, stream.read_buf(buf))
            .await
            .map_err(|_| ProxyError::Timeout)??;
        if read == 0 {
            return Err(ProxyError::Closed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn read_from(wire: &'static [u8]) -> (Result<Option<SocketAddr>, ProxyError>, Vec<u8>) {
        let (mut client, mut server) = tokio::io::duplex(64);
        tokio::spawn(async move {
            // Byte by byte, to exercise the "incomplete" path.
            for byte in wire {
                if client.write_all(&[*byte]).await.is_err() {
                    return;
                }
            }
        });
        let mut buf = Vec::new();
        let result = read_header(&mut server, &mut buf).await;
        (result, buf)
    }

    #[tokio::test]
    async fn v1_header_then_smtp() {
        let (result, rest) =
            read_from(b"PROXY TCP4 192.0.2.1 198.51.100.2 40000 25\r\nEHLO x\r\n").await;
        assert_eq!(result.unwrap(), Some("192.0.2.1:40000".parse().unwrap()));
        assert!(b"EHLO x\r\n".starts_with(&rest));
    }

    #[tokio::test]
    async fn v2_local_has_no_source() {
        let (result, _) = read_from(b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00").await;
        assert_eq!(result.unwrap(), None);
    }

    #[tokio::test]
    async fn garbage_and_eof_are_errors() {
        let (result, _) = read_from(b"EHLO x\r\n").await;
        assert!(matches!(result, Err(ProxyError::Invalid(_))));
        let (result, _) = read_from(b"PROXY TCP4 192.0.2.1").await;
        assert!(matches!(result, Err(ProxyError::Closed)));
    }
}
