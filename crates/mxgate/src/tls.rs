//! The TLS identity of the smtp-mode listeners: the certificate stored as
//! `smtp` in the store, or a self-signed one generated on first start and
//! stored, so it stays the same across restarts.

use anyhow::Context;
use mxgate_store::Store;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// Name of the certificate in the store.
const SMTP_CERT: &str = "smtp";

/// A rustls server configuration for STARTTLS (TLS 1.2 and 1.3).
///
/// # Errors
/// When the store cannot give a certificate or it does not load.
pub(crate) fn smtp_server_config(
    store: &Store,
    hostname: &str,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let (cert_pem, key_pem) = store
        .self_signed_certificate(SMTP_CERT, &[hostname.to_string()])
        .context("cannot load or create the SMTP certificate")?;
    let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("the stored SMTP certificate is not valid PEM")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .context("the stored SMTP key is not valid PEM")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the stored SMTP certificate and key do not match")?;
    Ok(Arc::new(config))
}
