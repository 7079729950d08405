//! TLS certificates: `GET /api/v1/certificates` lists the certificates the
//! store holds for the services (subject, names, expiry, days left) and the
//! web UI's own (`<data_dir>/web/cert.pem`); `PUT /api/v1/certificates/{name}`
//! replaces a store certificate and `PUT /api/v1/web-certificate` the web
//! UI's, each from a PEM chain (leaf first) and its PEM private key, checked
//! first: the chain parses, the key belongs to the leaf, the leaf has not
//! expired (422 naming `cert_pem` or `key_pem` otherwise, nothing changes).
//! Private keys are never shown. The Certificates page calls the same
//! functions.
//!
//! When they take effect: the `smtp` certificate at once on this box (the
//! running gateway's STARTTLS configuration is swapped; the peer receives
//! it by sync and uses it from its next start); the web UI's at the next
//! start of the service (the HTTPS listener loads its files once).

use super::ApiJson;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use crate::tls::{web_dir, CERT_FILE, KEY_FILE};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use mxgate_diagnostics::{certificate_details, CertificateDetails};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use utoipa::ToSchema;

/// The certificates the services take from the store: name and use.
pub(crate) const STORE_CERTIFICATES: &[(&str, &str)] =
    &[("smtp", "STARTTLS of the smtp-mode listeners")];

/// When a new web UI certificate is used, as the page and the API say it.
pub(crate) const WEB_TAKES_EFFECT: &str =
    "at the next start of the service (the HTTPS listener reads its files when it starts)";

/// One certificate as shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct CertificateView {
    /// Its name (`web` for the web UI's).
    pub name: String,
    /// What uses it.
    pub purpose: String,
    /// Whether one is there (a store certificate is made self-signed at
    /// the first start of an smtp listener).
    pub present: bool,
    /// The leaf certificate, when present and readable.
    #[schema(value_type = Option<Object>)]
    pub leaf: Option<CertificateDetails>,
    /// Certificates in the chain.
    pub chain_length: usize,
}

/// Every certificate.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Certificates {
    /// The store's certificates.
    pub store: Vec<CertificateView>,
    /// The web UI's.
    pub web: CertificateView,
    /// When an uploaded web certificate takes effect.
    pub web_takes_effect: String,
}

/// A certificate to install.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Upload {
    /// The chain, PEM, leaf first.
    #[serde(default)]
    pub cert_pem: String,
    /// The leaf's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub key_pem: String,
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn view(name: &str, purpose: &str, cert_pem: Option<&str>) -> CertificateView {
    let chain: Vec<CertificateDer<'static>> = cert_pem
        .map(|pem| {
            CertificateDer::pem_slice_iter(pem.as_bytes())
                .filter_map(Result::ok)
                .collect()
        })
        .unwrap_or_default();
    CertificateView {
        name: name.to_string(),
        purpose: purpose.to_string(),
        present: cert_pem.is_some(),
        leaf: chain
            .first()
            .and_then(|c| certificate_details(c, now_unix())),
        chain_length: chain.len(),
    }
}

fn web_files(state: &AppState) -> (PathBuf, PathBuf) {
    let data_dir = state
        .store()
        .path()
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let dir = web_dir(&data_dir);
    (dir.join(CERT_FILE), dir.join(KEY_FILE))
}

/// Every certificate, read now.
///
/// # Errors
/// 500 when the store cannot be read.
pub(crate) async fn list(state: &AppState) -> Result<Certificates, ApiError> {
    let (cert_file, _) = web_files(state);
    let store = state
        .blocking(|store| {
            STORE_CERTIFICATES
                .iter()
                .map(|(name, purpose)| {
                    let stored = store.certificate(name)?;
                    Ok(view(
                        name,
                        purpose,
                        stored.as_ref().map(|(c, _)| c.as_str()),
                    ))
                })
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await?;
    let web_pem = std::fs::read_to_string(&cert_file).ok();
    Ok(Certificates {
        store,
        web: view("web", "the web UI and API (HTTPS)", web_pem.as_deref()),
        web_takes_effect: WEB_TAKES_EFFECT.to_string(),
    })
}

/// A checked chain and key.
struct Checked {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    leaf: CertificateDetails,
}

/// Checks an upload: a chain that parses, a key that belongs to its leaf,
/// a leaf valid now.
fn check(upload: &Upload) -> Result<Checked, ApiError> {
    let bad_cert = |reason: String| ApiError::invalid("cert_pem", reason);
    let chain = CertificateDer::pem_slice_iter(upload.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_cert(format!("not a PEM certificate chain: {e}")))?;
    let first = chain
        .first()
        .ok_or_else(|| bad_cert("holds no BEGIN CERTIFICATE section".to_string()))?;
    let now = now_unix();
    let leaf = certificate_details(first, now)
        .ok_or_else(|| bad_cert("the first certificate is not an X.509 certificate".to_string()))?;
    if leaf.not_after_unix < now {
        return Err(bad_cert(format!("expired on {}", leaf.not_after)));
    }
    if leaf.not_before_unix > now {
        return Err(bad_cert(
            "not valid yet (its not-before date is in the future)".to_string(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(upload.key_pem.as_bytes()).map_err(|e| {
        ApiError::invalid(
            "key_pem",
            format!("not a PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY): {e}"),
        )
    })?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider).map_err(
        |e| {
            ApiError::invalid(
                "key_pem",
                format!("does not belong to the certificate: {e}"),
            )
        },
    )?;
    Ok(Checked { chain, key, leaf })
}

fn audit_detail(checked: &Checked) -> serde_json::Value {
    json!({ "subject": checked.leaf.subject, "sans": checked.leaf.sans,
        "not_after": checked.leaf.not_after })
}

/// STARTTLS for the smtp listeners with `checked`.
fn smtp_tls(checked: &Checked) -> Result<Arc<rustls::ServerConfig>, ApiError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ApiError::internal)?
        .with_no_client_auth()
        .with_single_cert(checked.chain.clone(), checked.key.clone_key())
        .map_err(|e| ApiError::invalid("key_pem", e.to_string()))?;
    Ok(Arc::new(config))
}

/// Installs store certificate `name`.
///
/// # Errors
/// 404 for a name no service uses, 422 for a refused chain or key.
pub(crate) async fn put_store(
    state: &AppState,
    user: &str,
    name: &str,
    upload: Upload,
) -> Result<(), ApiError> {
    if !STORE_CERTIFICATES.iter().any(|(n, _)| *n == name) {
        let known: Vec<&str> = STORE_CERTIFICATES.iter().map(|(n, _)| *n).collect();
        return Err(ApiError::not_found(format!(
            "no service uses a certificate called {name:?} (certificates: {})",
            known.join(", ")
        )));
    }
    let checked = check(&upload)?;
    let tls = smtp_tls(&checked)?;
    let detail = audit_detail(&checked);
    let (name, user) = (name.to_string(), user.to_string());
    state
        .blocking(move |store| {
            store.put_certificate(&name, &upload.cert_pem, &upload.key_pem)?;
            store.audit(&user, "certificate.put", &name, &detail)?;
            Ok(())
        })
        .await?;
    state.inner.gateway.set_smtp_tls(Some(tls));
    Ok(())
}

/// Installs the web UI's certificate (used from the next start).
///
/// # Errors
/// 422 for a refused chain or key, 500 when the files cannot be written.
pub(crate) async fn put_web(state: &AppState, user: &str, upload: Upload) -> Result<(), ApiError> {
    let checked = check(&upload)?;
    let (cert_file, key_file) = web_files(state);
    let detail = audit_detail(&checked);
    let user = user.to_string();
    state
        .blocking(move |store| {
            write_atomically(&key_file, upload.key_pem.as_bytes(), 0o600)?;
            write_atomically(&cert_file, upload.cert_pem.as_bytes(), 0o644)?;
            store.audit(&user, "certificate.web", "web", &detail)?;
            Ok(())
        })
        .await
}

/// [`crate::tls::write_file_atomically`], failing as a 500.
fn write_atomically(path: &std::path::Path, bytes: &[u8], mode: u32) -> Result<(), ApiError> {
    crate::tls::write_file_atomically(path, bytes, mode)
        .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))
}

#[utoipa::path(get, path = "/api/v1/certificates", tag = "certificates",
    responses((status = 200, description = "The store's certificates and the web UI's (never the keys)", body = Certificates)),
    security(("session" = [])))]
pub(crate) async fn get_all(State(state): State<AppState>) -> Result<Json<Certificates>, ApiError> {
    list(&state).await.map(Json)
}

#[utoipa::path(put, path = "/api/v1/certificates/{name}", tag = "certificates",
    params(("name" = String, Path, description = "Certificate name (smtp)")), request_body = Upload,
    responses(
        (status = 204, description = "Stored; the smtp listeners of this box use it at once"),
        (status = 404, description = "No service uses a certificate of that name"),
        (status = 422, description = "cert_pem or key_pem refused (not PEM, expired, key not matching); nothing changed"),
    ), security(("session" = [])))]
pub(crate) async fn put_named(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    ApiJson(upload): ApiJson<Upload>,
) -> Result<StatusCode, ApiError> {
    put_store(&state, &user.name, &name, upload).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/web-certificate", tag = "certificates", request_body = Upload,
    responses(
        (status = 204, description = "Written to <data_dir>/web; used from the next start of the service"),
        (status = 422, description = "cert_pem or key_pem refused; nothing changed"),
    ), security(("session" = [])))]
pub(crate) async fn put_web_certificate(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(upload): ApiJson<Upload>,
) -> Result<StatusCode, ApiError> {
    put_web(&state, &user.name, upload).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for mx.example.test valid until `year`,
    /// and its key.
    fn self_signed(until_year: i32) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(vec!["mx.example.test".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(until_year, 1, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_matching_key_and_a_valid_leaf_pass() {
        let (cert_pem, key_pem) = self_signed(2090);
        let checked = check(&Upload { cert_pem, key_pem }).unwrap();
        assert!(checked.leaf.days_left > 365, "{:?}", checked.leaf);
        assert_eq!(checked.leaf.sans, ["mx.example.test"]);
    }

    #[test]
    fn another_key_an_expired_leaf_and_garbage_are_refused() {
        let (cert_pem, _) = self_signed(2090);
        let (_, other_key) = self_signed(2090);
        let e = check(&Upload {
            cert_pem,
            key_pem: other_key.clone(),
        })
        .err()
        .unwrap();
        assert_eq!(e.field.as_deref(), Some("key_pem"), "{e:?}");
        let (old, old_key) = self_signed(2021);
        let e = check(&Upload {
            cert_pem: old,
            key_pem: old_key,
        })
        .err()
        .unwrap();
        assert_eq!(e.field.as_deref(), Some("cert_pem"));
        assert!(e.error.contains("expired"), "{}", e.error);
        let e = check(&Upload {
            cert_pem: "hello".into(),
            key_pem: other_key,
        })
        .err()
        .unwrap();
        assert_eq!(e.field.as_deref(), Some("cert_pem"));
    }
}
