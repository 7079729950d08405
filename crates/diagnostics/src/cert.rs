//! What a server's certificate says (subject, names, issuer, validity) and
//! whether its chain verifies for a host name against a root store: an
//! untrusted certificate is a finding to show, not an error.

use mxgate_balance::check::days_left;
use mxgate_smtp::rfc5322_date;
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, RootCertStore};
use serde::Serialize;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, UNIX_EPOCH};
use x509_parser::extensions::GeneralName;

/// The leaf certificate of a server, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertificateDetails {
    /// Subject distinguished name, e.g. `CN=mx.example.com`.
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Subject alternative names: DNS names as written (wildcards kept),
    /// addresses as text.
    pub sans: Vec<String>,
    /// Serial number, hex bytes separated by colons.
    pub serial: String,
    /// Start of validity, seconds since the Unix epoch.
    pub not_before_unix: i64,
    /// End of validity, seconds since the Unix epoch.
    pub not_after_unix: i64,
    /// End of validity as an RFC 5322 date in UTC.
    pub not_after: String,
    /// Whole days until `not_after`, negative once expired.
    pub days_left: i64,
    /// Subject and issuer are the same (a self-signed certificate).
    pub self_signed: bool,
}

/// Whether a chain is trusted for a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainVerification {
    /// The host name the chain was checked for (`None`: no name was given,
    /// so it was not checked).
    pub name: Option<String>,
    /// The chain leads to a trusted root and is valid now for `name`.
    pub trusted: bool,
    /// Why not, in words.
    pub reason: Option<String>,
}

/// Parses a DER certificate; `None` when it is not one. `now_unix` is the
/// time `days_left` counts from.
pub fn certificate_details(der: &[u8], now_unix: i64) -> Option<CertificateDetails> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let sans = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .filter_map(san_text)
                .collect()
        })
        .unwrap_or_default();
    let validity = cert.validity();
    let not_after_unix = validity.not_after.timestamp();
    let subject = cert.subject().to_string();
    let issuer = cert.issuer().to_string();
    Some(CertificateDetails {
        self_signed: subject == issuer,
        subject,
        issuer,
        sans,
        serial: cert.raw_serial_as_string(),
        not_before_unix: validity.not_before.timestamp(),
        not_after_unix,
        not_after: rfc5322_date(
            UNIX_EPOCH + Duration::from_secs(not_after_unix.max(0).unsigned_abs()),
        ),
        days_left: days_left(not_after_unix, now_unix),
    })
}

fn san_text(name: &GeneralName<'_>) -> Option<String> {
    match name {
        GeneralName::DNSName(dns) => Some((*dns).to_owned()),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => <[u8; 4]>::try_from(*bytes)
                .ok()
                .map(|b| std::net::Ipv4Addr::from(b).to_string()),
            16 => <[u8; 16]>::try_from(*bytes)
                .ok()
                .map(|b| std::net::Ipv6Addr::from(b).to_string()),
            _ => None,
        },
        GeneralName::RFC822Name(mail) => Some(format!("email:{mail}")),
        _ => None,
    }
}

/// The public web PKI roots (Mozilla's, from the `webpki-roots` crate),
/// built once.
pub fn webpki_roots_store() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            Arc::new(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        })
        .clone()
}

/// Verifies `chain` (leaf first) for `name` against `roots`, now: the same
/// checks a sender enforcing MTA-STS or DANE-less TLS would make.
pub fn verify_chain(
    chain: &[CertificateDer<'_>],
    name: &str,
    roots: Arc<RootCertStore>,
) -> ChainVerification {
    let result = |trusted: bool, reason: Option<String>| ChainVerification {
        name: Some(name.to_owned()),
        trusted,
        reason,
    };
    let Some((leaf, intermediates)) = chain.split_first() else {
        return result(false, Some("the server sent no certificate".to_owned()));
    };
    let Ok(server_name) = ServerName::try_from(name.to_owned()) else {
        return result(false, Some(format!("{name:?} is not a host name")));
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = match WebPkiServerVerifier::builder_with_provider(roots, provider).build() {
        Ok(verifier) => verifier,
        Err(e) => return result(false, Some(format!("no root certificates: {e}"))),
    };
    match verifier.verify_server_cert(leaf, intermediates, &server_name, &[], UnixTime::now()) {
        Ok(_) => result(true, None),
        Err(e) => result(false, Some(explain(&e, name))),
    }
}

/// A rustls verification error in the words of the page.
fn explain(e: &rustls::Error, name: &str) -> String {
    let rustls::Error::InvalidCertificate(cert) = e else {
        return e.to_string();
    };
    match cert {
        CertificateError::UnknownIssuer => {
            "not issued by a public CA (self-signed, or a private CA senders do not know)".into()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("not valid for {name} (no matching subject alternative name)")
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired".into(),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "not valid yet".into()
        }
        CertificateError::BadSignature => "a signature in the chain is invalid".into(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "not a certificate for TLS servers".into()
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests;
