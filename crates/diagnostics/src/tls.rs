//! STARTTLS for the diagnostics: the command, the handshake (through the
//! health check's accept-any-certificate client, so an untrusted
//! certificate is shown rather than refused) and what it negotiated.

use crate::cert::{certificate_details, verify_chain, webpki_roots_store};
use crate::cert::{CertificateDetails, ChainVerification};
use crate::session::quit;
use crate::steps::Steps;
use mxgate_balance::check::{handshake_named, CheckError, Conn, Step};
use rustls::pki_types::ServerName;
use serde::Serialize;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};
use tokio_rustls::client::TlsStream;

/// What STARTTLS negotiated and what the server's certificate says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsDetails {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// The IANA name of the cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// The name sent as SNI (`None`: only the address was known).
    pub sni: Option<String>,
    /// Certificates the server sent (leaf plus intermediates).
    pub chain_length: usize,
    /// The leaf certificate, when it could be parsed.
    pub certificate: Option<CertificateDetails>,
    /// Whether the chain verifies against the public roots for the host
    /// name (or, without one, for the address).
    pub verification: ChainVerification,
}

/// A connection after a successful STARTTLS.
pub(crate) type TlsConn = Conn<TlsStream<TcpStream>>;

/// Says STARTTLS on `conn` and runs the handshake, recording both steps.
/// `name` is the server's host name (SNI and the name verified); without
/// one, `peer` stands in. `None` when a step failed (recorded in `steps`).
pub(crate) async fn starttls(
    mut conn: Conn<TcpStream>,
    steps: &mut Steps,
    name: Option<&str>,
    peer: IpAddr,
    deadline: Instant,
) -> Option<(TlsConn, TlsDetails)> {
    let command = "STARTTLS\r\n";
    let reply = conn.command(command, Step::Starttls);
    steps
        .exchange(Step::Starttls, Some(command), reply, 220)
        .await?;
    if steps.failed() {
        quit(&mut conn, steps).await;
        return None;
    }
    if conn.has_unread() {
        steps.fail(Step::Starttls, CheckError::StarttlsPipelined.to_string());
        return None;
    }
    let sni = name.and_then(|n| ServerName::try_from(n.to_owned()).ok());
    let server_name = sni.clone().unwrap_or(ServerName::from(peer));
    let stream = conn.into_stream();
    let handshake = async {
        match timeout_at(deadline, handshake_named(stream, server_name)).await {
            Err(_) => Err(CheckError::Timeout {
                step: Step::TlsHandshake,
            }),
            Ok(Err(source)) => Err(CheckError::TlsHandshake { source }),
            Ok(Ok(done)) => Ok(done),
        }
    };
    let (tls, info) = steps.run(Step::TlsHandshake, handshake).await?;
    let checked_name = sni
        .as_ref()
        .map_or_else(|| peer.to_string(), |n| n.to_str().into_owned());
    let session = tls.get_ref().1;
    let chain = session.peer_certificates().unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let details = TlsDetails {
        version: info.version,
        cipher_suite: session
            .negotiated_cipher_suite()
            .map(|s| s.suite())
            .map_or_else(String::new, |s| {
                s.as_str().map_or_else(|| format!("{s:?}"), str::to_owned)
            }),
        sni: sni.map(|n| n.to_str().into_owned()),
        chain_length: chain.len(),
        certificate: chain.first().and_then(|c| certificate_details(c, now)),
        verification: verify_chain(chain, &checked_name, webpki_roots_store()),
    };
    Some((Conn::new(tls, deadline), details))
}
