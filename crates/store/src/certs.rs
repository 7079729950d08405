//! TLS certificates of the SMTP listeners, by name: a PEM certificate chain
//! and its PEM private key, checked before they are stored; a self-signed
//! one is generated once and kept, so it survives restarts.
//!
//! Certificates are stored beside the policy, not in it: nothing is
//! published when one changes.

use crate::tracking::now_unix_ms;
use crate::{Store, StoreError};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Longest certificate name the store accepts.
const MAX_NAME: usize = 255;

/// The host name a self-signed certificate is made for when none is given.
const DEFAULT_HOSTNAME: &str = "localhost";

impl Store {
    /// The certificate chain and private key (both PEM) stored as `name`.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the query fails.
    pub fn certificate(&self, name: &str) -> Result<Option<(String, String)>, StoreError> {
        self.with_conn(|conn| read(conn, name))
    }

    /// Stores (or replaces) the certificate `name`: `cert_pem` must hold at
    /// least one `CERTIFICATE` section and every one must decode;
    /// `key_pem` must hold a private key (`PRIVATE KEY`, `RSA PRIVATE KEY`
    /// or `EC PRIVATE KEY`). Both must be DER sequences. Whether the key
    /// belongs to the certificate is not checked.
    ///
    /// # Errors
    /// [`StoreError::InvalidCertificate`] for a bad name or PEM (nothing
    /// stored); [`StoreError::Sqlite`] when the write fails.
    pub fn put_certificate(
        &self,
        name: &str,
        cert_pem: &str,
        key_pem: &str,
    ) -> Result<(), StoreError> {
        check(name, cert_pem, key_pem)?;
        self.with_conn(|conn| write(conn, name, cert_pem, key_pem))
    }

    /// The certificate `name` if one is stored (whatever its host names);
    /// otherwise a new self-signed certificate (ECDSA P-256) for
    /// `hostnames` (`localhost` when empty; the first one is also the
    /// common name), stored as `name` and returned. Returns
    /// `(cert_pem, key_pem)`.
    ///
    /// Check and store happen in one write transaction, so two processes
    /// asking at once end up with the same certificate.
    ///
    /// # Errors
    /// [`StoreError::CertificateGeneration`] when a host name cannot go
    /// into a certificate; [`StoreError::InvalidCertificate`] for a bad
    /// name; [`StoreError::Sqlite`] when the store fails.
    pub fn self_signed_certificate(
        &self,
        name: &str,
        hostnames: &[String],
    ) -> Result<(String, String), StoreError> {
        check_name(name)?;
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(stored) = read(&tx, name)? {
                return Ok(stored);
            }
            let (cert_pem, key_pem) = generate(name, hostnames)?;
            check(name, &cert_pem, &key_pem)?;
            write(&tx, name, &cert_pem, &key_pem)?;
            tx.commit()?;
            Ok((cert_pem, key_pem))
        })
    }
}

fn read(conn: &Connection, name: &str) -> Result<Option<(String, String)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT cert_pem, key_pem FROM certificates WHERE name = ?1")?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

fn write(conn: &Connection, name: &str, cert_pem: &str, key_pem: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO certificates (name, cert_pem, key_pem, created_unix)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET cert_pem = excluded.cert_pem,
             key_pem = excluded.key_pem, created_unix = excluded.created_unix",
    )?
    .execute(params![name, cert_pem, key_pem, now_unix_ms() / 1000])?;
    Ok(())
}

/// Generates a self-signed certificate and its key, both PEM.
fn generate(name: &str, hostnames: &[String]) -> Result<(String, String), StoreError> {
    let failed = |e: rcgen::Error| StoreError::CertificateGeneration {
        name: name.to_string(),
        reason: e.to_string(),
    };
    let hostnames = match hostnames {
        [] => vec![DEFAULT_HOSTNAME.to_string()],
        names => names.to_vec(),
    };
    let common_name = hostnames[0].clone();
    let mut params = rcgen::CertificateParams::new(hostnames).map_err(failed)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let cert = params.self_signed(&key).map_err(failed)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Checks a certificate name and its PEM pair before they are stored.
pub(crate) fn check(name: &str, cert_pem: &str, key_pem: &str) -> Result<(), StoreError> {
    check_name(name)?;
    let invalid = |reason: String| StoreError::InvalidCertificate {
        name: name.to_string(),
        reason,
    };
    let mut certificates = 0;
    for cert in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        let cert = cert.map_err(|e| invalid(format!("certificate PEM: {e}")))?;
        certificates += 1;
        if !is_der_sequence(&cert) {
            return Err(invalid(format!(
                "certificate {certificates} in the PEM is not DER (not an X.509 certificate)"
            )));
        }
    }
    if certificates == 0 {
        return Err(invalid(
            "the certificate PEM holds no CERTIFICATE section".to_string(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| match e {
        pem::Error::NoItemsFound => invalid(
            "the key PEM holds no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY section"
                .to_string(),
        ),
        e => invalid(format!("key PEM: {e}")),
    })?;
    if !is_der_sequence(key.secret_der()) {
        return Err(invalid("the private key in the PEM is not DER".to_string()));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(StoreError::InvalidCertificate {
            name: name.to_string(),
            reason: format!("a certificate name is 1 to {MAX_NAME} bytes long"),
        });
    }
    Ok(())
}

/// True when `der` is exactly one DER SEQUENCE (what X.509 certificates and
/// PKCS#1, PKCS#8 and SEC1 keys all are): catches base64 of anything else.
fn is_der_sequence(der: &[u8]) -> bool {
    let [0x30, first, rest @ ..] = der else {
        return false;
    };
    let (len, body) = if first & 0x80 == 0 {
        (usize::from(*first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return false;
        }
        let (len_bytes, body) = rest.split_at(n);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, body)
    };
    body.len() == len
}
