//! The TLS part of the health check: a client that accepts any server
//! certificate (it reports, it does not judge) and reads the certificate's
//! expiry.
//!
//! Handshake signatures are still verified, so the peer must hold the key of
//! the certificate it shows; only the chain and the name are not checked.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ProtocolVersion, SignatureScheme};
use serde::Serialize;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// What the check learnt about a backend's TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsInfo {
    /// Negotiated version, `"TLSv1.3"` or `"TLSv1.2"`.
    pub version: String,
    /// The leaf certificate's notAfter, seconds since the Unix epoch (`None`
    /// when the certificate could not be parsed).
    pub cert_not_after_unix: Option<i64>,
    /// Whole days until notAfter, negative once expired.
    pub cert_days_left: Option<i64>,
}

/// Runs the client handshake over `stream` and reads what it negotiated.
pub(super) async fn handshake<S>(stream: S, peer: IpAddr) -> io::Result<(TlsStream<S>, TlsInfo)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    handshake_named(stream, ServerName::from(peer)).await
}

/// Runs the client handshake over `stream`, sending `name` as SNI (a host
/// name, or an address for none), accepting any certificate as
/// [`client_config`] does, and reads what it negotiated. The returned stream
/// gives the cipher suite and the peer's chain to callers that show more.
///
/// # Errors
/// The TLS or socket error of the handshake.
pub async fn handshake_named<S>(
    stream: S,
    name: ServerName<'static>,
) -> io::Result<(TlsStream<S>, TlsInfo)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let connector = TlsConnector::from(client_config()?);
    let tls = connector.connect(name, stream).await?;
    let conn = tls.get_ref().1;
    let version = match conn.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_string(),
    };
    let not_after = conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| cert_not_after(leaf));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let info = TlsInfo {
        version,
        cert_not_after_unix: not_after,
        cert_days_left: not_after.map(|t| days_left(t, now)),
    };
    Ok((tls, info))
}

/// notAfter of a DER certificate, seconds since the Unix epoch.
pub(crate) fn cert_not_after(der: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// Whole days from `now` to `not_after` (seconds since the Unix epoch),
/// rounded down: negative once expired.
pub fn days_left(not_after: i64, now: i64) -> i64 {
    not_after.saturating_sub(now).div_euclid(86_400)
}

/// The shared client configuration (built once): any certificate chain and
/// name are accepted, handshake signatures are still verified. Also used by
/// the gateway's SMTP-mode client for opportunistic and required STARTTLS.
///
/// # Errors
/// When the crypto provider offers no safe protocol version.
pub fn client_config() -> io::Result<Arc<ClientConfig>> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(crypto::ring::default_provider());
            let config = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert { provider }))
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
        .map_err(io::Error::other)
}

/// Accepts every certificate chain, still checks handshake signatures.
#[derive(Debug)]
struct AcceptAnyCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_rounds_down_and_goes_negative() {
        assert_eq!(days_left(86_400 * 10, 0), 10);
        assert_eq!(days_left(86_400 * 10 - 1, 0), 9);
        assert_eq!(days_left(0, 1), -1);
    }

    #[test]
    fn garbage_is_no_certificate() {
        assert_eq!(cert_not_after(b"not a certificate"), None);
    }

    #[test]
    fn client_config_builds() {
        assert!(client_config().is_ok());
    }
}
