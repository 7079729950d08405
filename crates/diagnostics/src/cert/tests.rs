//! Certificate details and chain verification with certificates made here:
//! self-signed, issued by a private CA, for the wrong name.

use super::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn leaf_params(names: &[&str]) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names.clone()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, names[0].as_str());
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    params
}

#[test]
fn details_of_a_self_signed_certificate() {
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params(&["mx.example.test", "192.0.2.25"])
        .self_signed(&key)
        .unwrap();
    let d = certificate_details(cert.der(), NOW).unwrap();
    assert_eq!(d.subject, "CN=mx.example.test");
    assert_eq!(d.issuer, d.subject);
    assert!(d.self_signed);
    assert_eq!(d.sans, ["mx.example.test", "192.0.2.25"]);
    assert_eq!(d.not_after_unix, 2_051_222_400);
    assert_eq!(d.not_after, "Mon, 01 Jan 2035 00:00:00 +0000");
    assert_eq!(d.days_left, 3287);
    assert!(!d.serial.is_empty());
}

#[test]
fn garbage_is_not_a_certificate() {
    assert_eq!(certificate_details(b"nope", NOW), None);
}

#[test]
fn a_self_signed_chain_is_untrusted_by_the_public_roots() {
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params(&["mx.example.test"]).self_signed(&key).unwrap();
    let v = verify_chain(
        &[cert.der().clone()],
        "mx.example.test",
        webpki_roots_store(),
    );
    assert!(!v.trusted);
    assert_eq!(v.name.as_deref(), Some("mx.example.test"));
    assert!(v.reason.unwrap().contains("not issued by a public CA"));
}

#[test]
fn a_chain_from_a_known_root_is_trusted_for_its_name_only() {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params(&["mx.example.test"])
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let roots = Arc::new(roots);
    let chain = [leaf.der().clone()];

    let ok = verify_chain(&chain, "mx.example.test", Arc::clone(&roots));
    assert_eq!((ok.trusted, ok.reason), (true, None));
    let wrong = verify_chain(&chain, "other.example.test", Arc::clone(&roots));
    assert!(!wrong.trusted);
    assert_eq!(
        wrong.reason.as_deref(),
        Some("not valid for other.example.test (no matching subject alternative name)")
    );
    let details = certificate_details(leaf.der(), NOW).unwrap();
    assert_eq!(details.issuer, "CN=Test CA");
    assert!(!details.self_signed);
}

#[test]
fn no_certificate_or_no_name_is_untrusted_with_a_reason() {
    let v = verify_chain(&[], "mx.example.test", webpki_roots_store());
    assert_eq!(v.reason.as_deref(), Some("the server sent no certificate"));
    let key = KeyPair::generate().unwrap();
    let cert = leaf_params(&["mx.example.test"]).self_signed(&key).unwrap();
    let v = verify_chain(&[cert.der().clone()], "not a name!", webpki_roots_store());
    assert!(!v.trusted && v.reason.unwrap().contains("not a host name"));
}
