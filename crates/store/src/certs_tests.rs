//! Certificate storage tests: round trip, garbage refused with nothing
//! stored, and a self-signed certificate generated once and kept.

use crate::{Store, StoreError};
use std::path::Path;

fn open(dir: &Path) -> Store {
    Store::open(dir).expect("store opens")
}

/// A certificate and key made outside the store.
fn pair(host: &str) -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec![host.to_string()]).unwrap();
    (made.cert.pem(), made.signing_key.serialize_pem())
}

fn refused(store: &Store, name: &str, cert: &str, key: &str) -> String {
    match store.put_certificate(name, cert, key) {
        Err(e @ StoreError::InvalidCertificate { .. }) => e.to_string(),
        other => panic!("expected InvalidCertificate, got {other:?}"),
    }
}

#[test]
fn put_then_get_round_trips_and_replaces() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    assert_eq!(store.certificate("smtp").unwrap(), None);
    let (cert, key) = pair("mx.example.com");
    store.put_certificate("smtp", &cert, &key).unwrap();
    assert_eq!(
        store.certificate("smtp").unwrap(),
        Some((cert.clone(), key.clone()))
    );
    // A chain (two certificates) is accepted; the name is replaced.
    let (other_cert, other_key) = pair("mx2.example.com");
    let chain = format!("{other_cert}{cert}");
    store.put_certificate("smtp", &chain, &other_key).unwrap();
    assert_eq!(
        store.certificate("smtp").unwrap(),
        Some((chain, other_key.clone()))
    );
    drop(store);
    let store = open(tmp.path());
    assert_eq!(store.certificate("smtp").unwrap().unwrap().1, other_key);
    assert_eq!(store.certificate("other").unwrap(), None);
}

#[test]
fn garbage_is_refused_and_nothing_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let (cert, key) = pair("mx.example.com");

    let e = refused(&store, "smtp", "hello", &key);
    assert!(e.contains("no CERTIFICATE section"), "{e}");
    let e = refused(&store, "smtp", &cert, "hello");
    assert!(e.contains("no PRIVATE KEY"), "{e}");
    // Swapped: a key is not a certificate and the other way round.
    let e = refused(&store, "smtp", &key, &cert);
    assert!(e.contains("no CERTIFICATE section"), "{e}");
    let e = refused(&store, "smtp", &cert, &cert);
    assert!(e.contains("no PRIVATE KEY"), "{e}");
    // Not base64 inside the markers.
    let broken = "-----BEGIN CERTIFICATE-----\n!!not base64!!\n-----END CERTIFICATE-----\n";
    let e = refused(&store, "smtp", broken, &key);
    assert!(e.contains("certificate PEM"), "{e}");
    // Base64, but not DER.
    let not_der = "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n";
    let e = refused(&store, "smtp", not_der, &key);
    assert!(e.contains("not DER"), "{e}");
    let not_der_key = "-----BEGIN PRIVATE KEY-----\naGVsbG8gd29ybGQ=\n-----END PRIVATE KEY-----\n";
    let e = refused(&store, "smtp", &cert, not_der_key);
    assert!(e.contains("not DER"), "{e}");
    // A good chain followed by a broken section.
    let e = refused(&store, "smtp", &format!("{cert}{broken}"), &key);
    assert!(e.contains("certificate PEM"), "{e}");
    // A missing END line.
    let cut = &cert[..cert.len() - 30];
    refused(&store, "smtp", cut, &key);
    // Names.
    refused(&store, "", &cert, &key);
    refused(&store, &"n".repeat(256), &cert, &key);

    assert_eq!(store.certificate("smtp").unwrap(), None);
    assert_eq!(store.certificate("").unwrap(), None);
}

#[test]
fn self_signed_is_generated_once_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let hosts = vec!["mx.example.com".to_string(), "192.0.2.25".to_string()];
    let first = store.self_signed_certificate("smtp", &hosts).unwrap();
    assert!(
        first.0.starts_with("-----BEGIN CERTIFICATE-----"),
        "{}",
        first.0
    );
    assert!(first.1.starts_with("-----BEGIN PRIVATE KEY-----"));
    // What was generated passes the store's own checks.
    crate::certs::check("smtp", &first.0, &first.1).unwrap();
    assert_eq!(store.certificate("smtp").unwrap(), Some(first.clone()));

    // The same on the second call, even with other host names.
    assert_eq!(
        store.self_signed_certificate("smtp", &hosts).unwrap(),
        first
    );
    assert_eq!(store.self_signed_certificate("smtp", &[]).unwrap(), first);
    // Another name gets another certificate; no host names is fine.
    let other = store.self_signed_certificate("other", &[]).unwrap();
    assert_ne!(other, first);
    drop(store);

    let store = open(tmp.path());
    assert_eq!(
        store.self_signed_certificate("smtp", &hosts).unwrap(),
        first
    );
    assert_eq!(store.certificate("other").unwrap(), Some(other));
}

#[test]
fn self_signed_does_not_replace_a_stored_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let (cert, key) = pair("mx.example.com");
    store.put_certificate("smtp", &cert, &key).unwrap();
    assert_eq!(
        store.self_signed_certificate("smtp", &[]).unwrap(),
        (cert, key)
    );
}

#[test]
fn self_signed_with_unusable_names_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let store = open(tmp.path());
    let e = store
        .self_signed_certificate("smtp", &["bücher.example".to_string()])
        .unwrap_err();
    assert!(
        matches!(e, StoreError::CertificateGeneration { ref name, .. } if name == "smtp"),
        "{e:?}"
    );
    assert!(matches!(
        store.self_signed_certificate("", &[]),
        Err(StoreError::InvalidCertificate { .. })
    ));
    assert_eq!(store.certificate("smtp").unwrap(), None);
}
