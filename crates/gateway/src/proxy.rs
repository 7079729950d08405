//! The PROXY protocol at both ends of a session: reading the header a trusted
//! upstream (a load balancer in front of the pair) sends first, and building
//! the header mxgate sends to the backend so it sees the real client.

use ipnet::IpNet;
use mxgate_config::ProxyVersion;
use mxgate_wire::proxy::{self, Command, Parsed};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Largest PROXY header: a v2 header of 16 bytes plus a 16-bit length.
const MAX_HEADER: usize = 16 + u16::MAX as usize;

/// Why an upstream's PROXY header was not taken.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The peer is not in `proxy_trusted`.
    #[error("{0} is not a trusted PROXY upstream")]
    Untrusted(IpAddr),
    /// The header was malformed or not a PROXY header at all.
    #[error("bad PROXY header: {0}")]
    Malformed(proxy::Error),
    /// The upstream did not send a whole header in time.
    #[error("no complete PROXY header within {0:?}")]
    Timeout(Duration),
    /// The connection closed or failed while reading the header.
    #[error("connection failed while reading the PROXY header: {0}")]
    Io(#[from] std::io::Error),
}

/// The client as seen through an upstream's PROXY header.
#[derive(Debug)]
pub struct Upstream {
    /// The real client (the header's source), or the peer for `LOCAL`.
    pub client: SocketAddr,
    /// The address the client connected to (the header's destination), or
    /// our local address for `LOCAL`.
    pub destination: SocketAddr,
    /// Bytes received after the header; they belong to the backend.
    pub rest: Vec<u8>,
}

/// True when `ip` is inside one of `trusted`.
pub fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|net| net.contains(&ip))
}

/// Reads the PROXY header an upstream sends first.
///
/// # Errors
/// [`UpstreamError`] naming what went wrong; the caller closes the connection.
pub async fn read_upstream(
    stream: &mut TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    trusted: &[IpNet],
    timeout: Duration,
) -> Result<Upstream, UpstreamError> {
    if !is_trusted(peer.ip(), trusted) {
        return Err(UpstreamError::Untrusted(peer.ip()));
    }
    let read = async {
        let mut buf = Vec::with_capacity(256);
        loop {
            match proxy::parse(&buf).map_err(UpstreamError::Malformed)? {
                Parsed::Complete { header, consumed } => {
                    let rest = buf.split_off(consumed);
                    let (client, destination) = match header.command {
                        Command::Local => (peer, local),
                        Command::Proxy => (
                            header.addresses.source().unwrap_or(peer),
                            header.addresses.destination().unwrap_or(local),
                        ),
                    };
                    return Ok(Upstream {
                        client,
                        destination,
                        rest,
                    });
                }
                Parsed::Incomplete if buf.len() >= MAX_HEADER => {
                    return Err(UpstreamError::Malformed(proxy::Error::NotProxy));
                }
                Parsed::Incomplete => {
                    let mut chunk = [0u8; 512];
                    let n = stream.read(&mut chunk).await?;
                    if n == 0 {
                        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| UpstreamError::Timeout(timeout))?
}

/// The header to send the backend for a client `src` that connected to `dst`,
/// or `None` when the listener sends none.
pub fn backend_header(version: ProxyVersion, src: SocketAddr, dst: SocketAddr) -> Option<Vec<u8>> {
    let (src, dst) = (canonical(src), canonical(dst));
    match version {
        ProxyVersion::None => None,
        ProxyVersion::V1 => Some(proxy::emit_v1(src, dst)),
        // Without TLVs the header always fits; an error here would be a bug
        // in the codec, and sending no header is then the safe choice.
        ProxyVersion::V2 => proxy::emit_v2(Command::Proxy, src, dst, &[]).ok(),
    }
}

/// Unmaps IPv4-mapped IPv6 addresses, so a v4 client on a dual-stack socket
/// is announced as TCP4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_is_by_network_and_unmaps_v4() {
        let trusted: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        assert!(is_trusted("127.0.0.9".parse().unwrap(), &trusted));
        assert!(is_trusted("::ffff:127.0.0.1".parse().unwrap(), &trusted));
        assert!(!is_trusted("10.0.0.1".parse().unwrap(), &trusted));
    }

    #[test]
    fn backend_header_versions() {
        let src: SocketAddr = "[::ffff:203.0.113.7]:40000".parse().unwrap();
        let dst: SocketAddr = "192.0.2.25:25".parse().unwrap();
        assert_eq!(backend_header(ProxyVersion::None, src, dst), None);
        assert_eq!(
            backend_header(ProxyVersion::V1, src, dst).unwrap(),
            b"PROXY TCP4 203.0.113.7 192.0.2.25 40000 25\r\n"
        );
        let v2 = backend_header(ProxyVersion::V2, src, dst).unwrap();
        assert_eq!(v2.len(), 16 + 12);
        assert_eq!(v2[13], 0x11, "TCP over IPv4");
    }
}
