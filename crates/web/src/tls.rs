//! The web listener's TLS identity: `<data_dir>/web/cert.pem` and
//! `key.pem` (0600). On first start a self-signed certificate (ECDSA P-256)
//! is generated for the node name, `localhost`, `127.0.0.1` and the listen
//! address (when it is not the unspecified one) and kept, so browsers that
//! accepted it keep trusting it; replacing the two files (and restarting)
//! installs another certificate.

use crate::error::WebError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The certificate chain file in `<data_dir>/web`.
pub const CERT_FILE: &str = "cert.pem";
/// The private key file in `<data_dir>/web`.
pub const KEY_FILE: &str = "key.pem";

/// The directory of the web listener's files.
pub fn web_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("web")
}

/// The names a new certificate is made for: the node name, `localhost`,
/// `127.0.0.1` and `listen` when it is a specific address.
pub fn certificate_names(node: &str, listen: Option<IpAddr>) -> Vec<String> {
    let mut names = vec![
        node.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ];
    if let Some(ip) = listen.filter(|ip| !ip.is_unspecified()) {
        names.push(ip.to_string());
    }
    names.dedup();
    names
}

/// The rustls configuration of the web listener (HTTP/1.1 over TLS 1.2 or
/// 1.3), from the files in `<data_dir>/web`, generating them first when
/// they are missing.
///
/// # Errors
/// When the files cannot be written or read, or do not hold a matching
/// certificate and key.
pub fn server_config(
    data_dir: &Path,
    node: &str,
    listen: Option<IpAddr>,
) -> Result<Arc<rustls::ServerConfig>, WebError> {
    let dir = web_dir(data_dir);
    let (cert_path, key_path) = (dir.join(CERT_FILE), dir.join(KEY_FILE));
    let names = certificate_names(node, listen);
    if !cert_path.exists() || !key_path.exists() {
        generate(&dir, &names)?;
        tracing::info!(path = %cert_path.display(), "web: self-signed certificate created");
    }
    match load(&cert_path, &key_path) {
        Ok(config) => Ok(config),
        Err(e) => {
            // Never lock the operator out (a power cut while the files were
            // first written, a bad hand edit): keep the broken files aside
            // and serve a new self-signed certificate.
            tracing::error!(
                "web: {e}; the files are kept as *.broken and a new self-signed \
                 certificate is used"
            );
            for path in [&cert_path, &key_path] {
                let aside = path.with_extension("pem.broken");
                std::fs::rename(path, &aside).map_err(|source| WebError::Io {
                    path: path.clone(),
                    source,
                })?;
            }
            generate(&dir, &names)?;
            load(&cert_path, &key_path)
        }
    }
}

/// The rustls configuration from a PEM chain and key.
fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<rustls::ServerConfig>, WebError> {
    let bad = |path: &Path, reason: String| WebError::Certificate {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(cert_path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| bad(cert_path, format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(bad(cert_path, "holds no certificate".to_string()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| bad(key_path, format!("not a PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(cert_path, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad(key_path, format!("does not match {CERT_FILE}: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Writes a new self-signed certificate for `names` into `dir`.
fn generate(dir: &Path, names: &[String]) -> Result<(), WebError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WebError::Io { path, source }
    };
    let failed = |e: rcgen::Error| WebError::Certificate {
        path: dir.join(CERT_FILE),
        reason: format!("cannot generate a self-signed certificate: {e}"),
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io(dir))?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(failed)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0].clone());
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    let key_path = dir.join(KEY_FILE);
    write_file_atomically(&key_path, key.serialize_pem().as_bytes(), 0o600)
        .map_err(io(&key_path))?;
    let cert_path = dir.join(CERT_FILE);
    write_file_atomically(&cert_path, cert.pem().as_bytes(), 0o644).map_err(io(&cert_path))
}

/// Writes `bytes` to a new file beside `path` with `mode`, flushes it to
/// disk, renames it over `path` and flushes the directory: after a crash
/// or power cut, `path` holds the old or the new content, never half.
///
/// # Errors
/// The I/O error of the first step that fails.
pub(crate) fn write_file_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("new");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_include_the_listen_address_unless_unspecified() {
        assert_eq!(
            certificate_names("gw-a", Some("192.0.2.1".parse().unwrap())),
            ["gw-a", "localhost", "127.0.0.1", "192.0.2.1"]
        );
        assert_eq!(
            certificate_names("gw-a", Some("0.0.0.0".parse().unwrap())),
            ["gw-a", "localhost", "127.0.0.1"]
        );
    }

    #[test]
    fn the_certificate_is_made_once_with_a_private_key_file() {
        let dir = tempfile::tempdir().unwrap();
        server_config(dir.path(), "gw-a", None).unwrap();
        let cert = std::fs::read(web_dir(dir.path()).join(CERT_FILE)).unwrap();
        let key_path = web_dir(dir.path()).join(KEY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        server_config(dir.path(), "gw-a", None).unwrap();
        assert_eq!(
            std::fs::read(web_dir(dir.path()).join(CERT_FILE)).unwrap(),
            cert
        );
    }

    #[test]
    fn an_empty_certificate_file_is_set_aside_and_replaced() {
        // What a power cut during the first start left on an appliance.
        let dir = tempfile::tempdir().unwrap();
        server_config(dir.path(), "gw-a", None).unwrap();
        let web = web_dir(dir.path());
        std::fs::write(web.join(CERT_FILE), "").unwrap();
        server_config(dir.path(), "gw-a", None).unwrap();
        assert!(!std::fs::read(web.join(CERT_FILE)).unwrap().is_empty());
        assert!(web.join("cert.pem.broken").exists());
        assert!(web.join("key.pem.broken").exists());
    }
}
