//! Mutual TLS for the sync channel: the node's identity (a key pair and a
//! self-signed certificate generated on first start in the data dir, mode
//! 0600) and peer trust by a pinned SHA-256 of the peer's
//! SubjectPublicKeyInfo, on both sides (custom verifiers, no CA). TLS 1.3
//! only.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File of the node's sync key (PKCS#8 DER) in the data dir.
pub const KEY_FILE: &str = "sync_key.der";
/// File of the node's self-signed sync certificate (DER) in the data dir.
pub const CERT_FILE: &str = "sync_cert.der";
/// The server name the client asks for (the verifiers ignore names).
pub const SERVER_NAME: &str = "mxgate-sync";

/// A SHA-256 of a SubjectPublicKeyInfo: what a peer is trusted by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pin(pub [u8; 32]);

impl Pin {
    /// The pin used before pairing: no key hashes to 32 zero octets (that
    /// would need a SHA-256 preimage), so it matches no peer.
    pub const UNPAIRED: Pin = Pin([0; 32]);

    /// Parses 64 hex digits (case-insensitive; `:` separators allowed).
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn from_hex(s: &str) -> Result<Pin, String> {
        let digits: Vec<u8> = s.bytes().filter(|b| *b != b':').collect();
        if digits.len() != 64 {
            return Err(format!(
                "a key pin is 64 hex digits (SHA-256), got {}",
                digits.len()
            ));
        }
        let mut out = [0u8; 32];
        for (i, pair) in digits.chunks(2).enumerate() {
            let hex = std::str::from_utf8(pair).map_err(|_| "not hex".to_string())?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| format!("{hex:?} is not hex"))?;
        }
        Ok(Pin(out))
    }

    /// The pin of a certificate: SHA-256 of its SubjectPublicKeyInfo.
    ///
    /// # Errors
    /// A message when the certificate does not parse.
    pub fn of_cert(der: &[u8]) -> Result<Pin, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("cannot parse the peer certificate: {e}"))?;
        let digest =
            ring::digest::digest(&ring::digest::SHA256, cert.tbs_certificate.subject_pki.raw);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Ok(Pin(out))
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pin({self})")
    }
}

/// This node's TLS identity.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The self-signed certificate.
    pub cert: CertificateDer<'static>,
    /// Its private key (PKCS#8 DER).
    key: Vec<u8>,
    /// The pin of the certificate's key (what the peer pins).
    pub pin: Pin,
}

impl Identity {
    /// Loads the identity from `data_dir`, generating it (mode 0600) on
    /// first use.
    ///
    /// # Errors
    /// A message naming the file on an I/O or parse error.
    pub fn load_or_create(data_dir: &Path) -> Result<Identity, String> {
        let key_path = data_dir.join(KEY_FILE);
        let cert_path = data_dir.join(CERT_FILE);
        if !key_path.exists() || !cert_path.exists() {
            let key = rcgen::KeyPair::generate().map_err(|e| format!("sync key: {e}"))?;
            let params = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])
                .map_err(|e| format!("sync certificate: {e}"))?;
            let cert = params
                .self_signed(&key)
                .map_err(|e| format!("sync certificate: {e}"))?;
            write_private(&key_path, &key.serialize_der())?;
            write_private(&cert_path, cert.der())?;
        }
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let key = read(&key_path)?;
        let cert = CertificateDer::from(read(&cert_path)?);
        let pin = Pin::of_cert(&cert).map_err(|e| format!("{}: {e}", cert_path.display()))?;
        Ok(Identity { cert, key, pin })
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone().into())
    }
}

pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Which peer key is trusted: the node file's `peer_key`, or, when that is
/// [`Pin::UNPAIRED`] and a data dir is given, the pin stored there by
/// pairing (re-read on every handshake, so a pairing done while the
/// service runs takes effect at the next connection).
#[derive(Debug, Clone)]
pub struct Trust {
    /// The node file's pin ([`Pin::UNPAIRED`] when none).
    pub peer_key: Pin,
    /// The data dir of the pairing files, for the service; `None` trusts
    /// `peer_key` only and never accepts a pairing.
    pub data_dir: Option<PathBuf>,
}

impl Trust {
    /// The pin trusted now.
    pub fn current(&self) -> Pin {
        if self.peer_key != Pin::UNPAIRED {
            return self.peer_key;
        }
        let Some(dir) = &self.data_dir else {
            return self.peer_key;
        };
        match crate::pairing::stored_pin(dir) {
            Ok(Some(pin)) => pin,
            Ok(None) => Pin::UNPAIRED,
            Err(e) => {
                tracing::warn!("sync: {e}");
                Pin::UNPAIRED
            }
        }
    }

    /// True when an unexpired pairing is pending in the data dir and the
    /// node file has no `peer_key` (which would win over a paired key, so
    /// pairing is not offered then).
    pub fn pairing_pending(&self) -> bool {
        self.peer_key == Pin::UNPAIRED
            && self
                .data_dir
                .as_deref()
                .is_some_and(crate::pairing::pending)
    }
}

/// Accepts exactly one peer key, by its pin; the name, the validity dates
/// and the issuer are not looked at (no CA). A server verifier with a data
/// dir also lets an unknown client key through while a pairing is pending
/// (the connection may then only pair, see `crate::pairing`).
#[derive(Debug)]
struct PinVerifier {
    trust: Trust,
    algs: WebPkiSupportedAlgorithms,
}

impl PinVerifier {
    fn check(&self, end_entity: &CertificateDer<'_>, server: bool) -> Result<(), rustls::Error> {
        let got = Pin::of_cert(end_entity).map_err(rustls::Error::General)?;
        let pin = self.trust.current();
        if got == pin || (server && self.trust.pairing_pending()) {
            Ok(())
        } else {
            Err(rustls::Error::General(format!(
                "sync peer key {got} is not the pinned key {pin}"
            )))
        }
    }
}

/// The handshake-signature methods shared by [`ServerCertVerifier`] and
/// [`ClientCertVerifier`] for [`PinVerifier`]: TLS 1.3 signatures checked
/// with the provider's algorithms, TLS 1.2 refused (sync is TLS 1.3 only).
macro_rules! signature_checks {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(rustls::Error::General(
                "TLS 1.2 is not used for sync".into(),
            ))
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(message, cert, dss, &self.algs)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algs.supported_schemes()
        }
    };
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, false)
            .map(|()| ServerCertVerified::assertion())
    }

    signature_checks!();
}

impl ClientCertVerifier for PinVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity, true)
            .map(|()| ClientCertVerified::assertion())
    }

    signature_checks!();
}

fn verifier(trust: Trust) -> Arc<PinVerifier> {
    Arc::new(PinVerifier {
        trust,
        algs: provider().signature_verification_algorithms,
    })
}

/// The client side: presents `me`, trusts only `peer`.
///
/// # Errors
/// A message when rustls refuses the configuration.
pub fn client_config(me: &Identity, peer: Pin) -> Result<Arc<rustls::ClientConfig>, String> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier(Trust {
            peer_key: peer,
            data_dir: None,
        }))
        .with_client_auth_cert(vec![me.cert.clone()], me.key())
        .map_err(|e| format!("sync key: {e}"))?;
    Ok(Arc::new(config))
}

/// The server side: presents `me`, requires a client certificate and
/// trusts only `peer`.
///
/// # Errors
/// A message when rustls refuses the configuration.
pub fn server_config(me: &Identity, peer: Pin) -> Result<Arc<rustls::ServerConfig>, String> {
    server_config_trust(
        me,
        Trust {
            peer_key: peer,
            data_dir: None,
        },
    )
}

/// The server side with a [`Trust`]: the trusted pin is looked up on each
/// handshake, and with a data dir an unknown client key is let through
/// while a pairing is pending (the caller must then only pair).
///
/// # Errors
/// A message when rustls refuses the configuration.
pub fn server_config_trust(
    me: &Identity,
    trust: Trust,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier(trust))
        .with_single_cert(vec![me.cert.clone()], me.key())
        .map_err(|e| format!("sync key: {e}"))?;
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairing;

    #[test]
    fn the_node_file_key_wins_over_the_paired_one_and_disables_pairing() {
        let dir = tempfile::tempdir().unwrap();
        let paired = Trust {
            peer_key: Pin::UNPAIRED,
            data_dir: Some(dir.path().to_path_buf()),
        };
        assert_eq!(paired.current(), Pin::UNPAIRED);
        assert!(!paired.pairing_pending());
        pairing::create(dir.path(), pairing::now_unix(), pairing::DEFAULT_VALID).unwrap();
        assert!(paired.pairing_pending());
        pairing::store_pin(dir.path(), Pin([6; 32])).unwrap();
        assert_eq!(paired.current(), Pin([6; 32]));
        let fixed = Trust {
            peer_key: Pin([1; 32]),
            data_dir: Some(dir.path().to_path_buf()),
        };
        assert_eq!(fixed.current(), Pin([1; 32]));
        assert!(!fixed.pairing_pending());
        // An expired pairing is not pending.
        pairing::create(dir.path(), 0, pairing::DEFAULT_VALID).unwrap();
        assert!(!paired.pairing_pending());
    }
}
