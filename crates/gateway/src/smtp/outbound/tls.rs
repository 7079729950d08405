//! TLS towards a backend after STARTTLS: a client that accepts any
//! certificate (shared with the health check, for opportunistic and required
//! TLS) and one that verifies the chain against the webpki roots and the
//! configured name (for `verify`).

use super::BackendTls;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use tokio_rustls::TlsConnector;

/// The connector for `mode` (only called for a mode that runs STARTTLS).
pub(super) fn connector(mode: BackendTls) -> io::Result<TlsConnector> {
    let config = match mode {
        BackendTls::Verify => verifying_config()?,
        _ => mxgate_balance::check::accept_any_cert_config()?,
    };
    Ok(TlsConnector::from(config))
}

/// The name the certificate must carry (and SNI when it is a DNS name):
/// `tls_name` when configured, else the backend's IP address.
pub(super) fn server_name(tls_name: Option<&str>, ip: IpAddr) -> io::Result<ServerName<'static>> {
    match tls_name {
        Some(name) => ServerName::try_from(name.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{name}: {e}"))),
        None => Ok(ServerName::from(ip)),
    }
}

/// A client configuration trusting the webpki roots (built once).
fn verifying_config() -> io::Result<Arc<ClientConfig>> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
        .map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_configurations_build() {
        assert!(connector(BackendTls::Verify).is_ok());
        assert!(connector(BackendTls::Require).is_ok());
    }

    #[test]
    fn names() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(matches!(
            server_name(None, ip),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name(Some("mx.example.org"), ip),
            Ok(ServerName::DnsName(_))
        ));
        assert!(server_name(Some("not a name"), ip).is_err());
    }
}
