//! STARTTLS on the inbound side: a real handshake with a self-signed
//! certificate, plaintext injected after STARTTLS discarded, garbage instead
//! of a ClientHello.

use super::tests::{settings, start, Client, Fake, BACKEND_OK};
use super::*;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration for `mx.example.org` and the certificate a client
/// must trust.
fn server_config() -> (Arc<rustls::ServerConfig>, CertificateDer<'static>) {
    let params = rcgen::CertificateParams::new(vec!["mx.example.org".to_string()]).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let der = cert.der().clone();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![der.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    (Arc::new(config), der)
}

fn connector(cert: CertificateDer<'static>) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn starttls_then_a_transaction_and_injected_plaintext_is_discarded() {
    let (server, cert) = server_config();
    let fake = Fake::default();
    let (stream, task) = start(&fake, settings(), Some(server));
    let mut client = Client::new(stream);
    client
        .send(b"EHLO c.example\r\nSTARTTLS\r\nMAIL FROM:<injected@evil.example>\r\nRCPT TO:<u@example.org>\r\n")
        .await;
    let replies = client.replies(3).await;
    assert!(replies[1].ends_with("250 STARTTLS"), "{replies:?}");
    assert_eq!(replies[2], "220 2.0.0 Ready to start TLS");
    assert_eq!(client.leftover(), 0);
    let name = ServerName::try_from("mx.example.org").unwrap();
    let tls = connector(cert).connect(name, client.stream).await.unwrap();
    let mut client = Client::new(tls);
    client.send(b"EHLO c.example\r\n").await;
    let ehlo = client.reply().await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    // Not "503 nested MAIL": the injected MAIL was never read.
    client
        .send(b"MAIL FROM:<a@sender.example>\r\nRCPT TO:<u@example.org>\r\nDATA\r\nhello\r\n.\r\nQUIT\r\n")
        .await;
    let replies = client.replies(5).await;
    assert_eq!(replies[0], "250 2.1.0 Ok");
    assert_eq!(replies[3], BACKEND_OK);
    assert_eq!(replies[4], "221 2.0.0 Bye");
    let record = task.await.unwrap();
    let calls = fake.calls();
    assert!(!calls.iter().any(|c| c.contains("injected")), "{calls:?}");
    assert_eq!(calls[0], "mail a@sender.example");
    let tls = record.tls.unwrap();
    assert!(tls.starts_with("TLSv1.3 with cipher TLS13_"), "{tls}");
    let data = String::from_utf8(fake.data()).unwrap();
    assert!(data.contains(" with ESMTPS id "), "{data}");
    assert!(data.contains(&format!("\t({tls})\r\n")), "{data}");
    assert_eq!(record.end, "quit");
}

#[tokio::test]
async fn garbage_instead_of_client_hello_closes_cleanly() {
    let (server, _) = server_config();
    let fake = Fake::default();
    let (stream, task) = start(&fake, settings(), Some(server));
    let mut client = Client::new(stream);
    client.send(b"EHLO c\r\nSTARTTLS\r\n").await;
    assert_eq!(client.replies(3).await[2], "220 2.0.0 Ready to start TLS");
    client
        .send(b"MAIL FROM:<a@b>\r\nthis is not TLS at all\r\n\r\n")
        .await;
    let record = task.await.unwrap();
    assert_eq!(record.end, "tls handshake failed");
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn starttls_not_offered_without_tls() {
    let fake = Fake::default();
    let (stream, task) = start(&fake, settings(), None);
    let mut client = Client::new(stream);
    client.send(b"EHLO c\r\nSTARTTLS\r\nQUIT\r\n").await;
    let replies = client.replies(4).await;
    assert_eq!(replies[2], "502 5.5.1 Error: command not implemented");
    assert_eq!(task.await.unwrap().end, "quit");
}
