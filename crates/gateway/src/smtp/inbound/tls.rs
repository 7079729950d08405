//! STARTTLS on the inbound side: the server handshake and how the session's
//! TLS is described in `Received:` and the records.

use rustls::ProtocolVersion;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Runs the server handshake within `timeout`. Returns the TLS stream and
/// a description such as `TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384`, or
/// `None` when the client sent no valid ClientHello, failed the handshake
/// or took too long (the caller closes the connection).
pub(super) async fn accept<S>(
    stream: S,
    config: Arc<rustls::ServerConfig>,
    timeout: Duration,
) -> Option<(TlsStream<S>, String)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let acceptor = TlsAcceptor::from(config);
    let stream = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%error, "inbound TLS handshake failed");
            return None;
        }
        Err(_) => {
            tracing::debug!("inbound TLS handshake timed out");
            return None;
        }
    };
    let description = describe(stream.get_ref().1);
    Some((stream, description))
}

/// `<version> with cipher <suite>` of an established connection.
fn describe(connection: &rustls::ServerConnection) -> String {
    let version = match connection.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(other) => format!("{other:?}"),
        None => "TLS".to_owned(),
    };
    match connection.negotiated_cipher_suite() {
        Some(suite) => format!("{version} with cipher {:?}", suite.suite()),
        None => version,
    }
}
