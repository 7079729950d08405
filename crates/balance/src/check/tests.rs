//! Tests of the SMTP health check against small fake servers on loopback.

use super::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const EHLO_OK: &str = "250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
const EHLO_TLS: &str = "250-mx.test\r\n250-STARTTLS\r\n250 SIZE 10240000\r\n";

fn settings(starttls: bool) -> CheckSettings {
    CheckSettings {
        interval: Duration::from_secs(1),
        timeout: Duration::from_millis(500),
        fall: 3,
        rise: 2,
        starttls,
        ehlo: "mxgate.test".into(),
        send_proxy: None,
        proxy: ProxyVersion::None,
    }
}

/// A listener on 127.0.0.1, port 0.
async fn listen() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

/// Reads command lines, writes the answer for each verb, and returns after
/// answering `stop`. Every line read is pushed to `seen`.
async fn dialogue<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut BufReader<S>,
    answers: &[(&str, &str)],
    stop: &str,
    seen: &mut Vec<String>,
) {
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line).await.unwrap() == 0 {
            seen.push("<EOF>".into());
            return;
        }
        let line = line.trim_end().to_string();
        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        seen.push(line);
        let answer = answers
            .iter()
            .find(|(v, _)| *v == verb)
            .map_or("500 unknown\r\n", |(_, a)| a);
        conn.get_mut().write_all(answer.as_bytes()).await.unwrap();
        if verb == stop {
            return;
        }
    }
}

/// Waits for the client's end of the connection.
async fn expect_eof<S: AsyncRead + Unpin>(conn: &mut S, seen: &mut Vec<String>) {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(Duration::from_secs(2), conn.read(&mut buf)).await {
        Ok(Ok(0)) => seen.push("<EOF>".into()),
        other => seen.push(format!("<no EOF: {other:?}>")),
    }
}

/// A plain SMTP server: `banner` (sent in two pieces), then the dialogue.
fn plain_server(
    listener: TcpListener,
    banner: &'static str,
    ehlo: &'static str,
) -> JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut conn = BufReader::new(tcp);
        let (head, tail) = banner.split_at(banner.len() / 2);
        conn.get_mut().write_all(head.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        conn.get_mut().write_all(tail.as_bytes()).await.unwrap();
        let mut seen = Vec::new();
        dialogue(
            &mut conn,
            &[("EHLO", ehlo), ("QUIT", "221 2.0.0 bye\r\n")],
            "QUIT",
            &mut seen,
        )
        .await;
        expect_eof(&mut conn, &mut seen).await;
        seen
    })
}

#[tokio::test]
async fn good_server_with_multiline_banner_passes_politely() {
    let (listener, addr) = listen().await;
    let server = plain_server(
        listener,
        "220-mx.test ESMTP fake\r\n220 welcome\r\n",
        EHLO_OK,
    );
    let report = smtp_check(addr, &settings(false)).await.unwrap();
    assert_eq!(report.banner, "mx.test ESMTP fake");
    assert_eq!(report.tls, None);
    assert_eq!(server.await.unwrap(), ["EHLO mxgate.test", "QUIT", "<EOF>"]);
}

#[tokio::test]
async fn silent_server_is_a_banner_timeout() {
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        drop(tcp);
    });
    let started = std::time::Instant::now();
    let err = smtp_check(addr, &settings(false)).await.unwrap_err();
    assert!(
        matches!(err, CheckError::Timeout { step: Step::Banner }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "banner timeout");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "bounded by the check timeout"
    );
    server.abort();
}

#[tokio::test]
async fn banner_554_fails_and_still_quits() {
    let (listener, addr) = listen().await;
    let server = plain_server(listener, "554 5.3.2 not accepting mail\r\n", EHLO_OK);
    let err = smtp_check(addr, &settings(false)).await.unwrap_err();
    assert!(matches!(err, CheckError::BadBanner { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "banner is not 220: 554 5.3.2 not accepting mail"
    );
    assert_eq!(err.step(), Step::Banner);
    assert_eq!(server.await.unwrap(), ["QUIT", "<EOF>"]);
}

#[tokio::test]
async fn closed_port_is_connect_refused() {
    let (listener, addr) = listen().await;
    drop(listener);
    let err = smtp_check(addr, &settings(false)).await.unwrap_err();
    match &err {
        CheckError::Connect { source } => {
            assert_eq!(source.kind(), io::ErrorKind::ConnectionRefused);
        }
        other => panic!("expected a refused connect, got {other:?}"),
    }
    assert!(err.to_string().starts_with("connect failed: "), "{err}");
}

#[tokio::test]
async fn rejected_ehlo_fails() {
    let (listener, addr) = listen().await;
    let server = plain_server(listener, "220 mx.test\r\n", "550 5.7.1 go away\r\n");
    let err = smtp_check(addr, &settings(false)).await.unwrap_err();
    assert_eq!(err.to_string(), "EHLO rejected: 550 5.7.1 go away");
    assert_eq!(server.await.unwrap(), ["EHLO mxgate.test", "QUIT", "<EOF>"]);
}

#[tokio::test]
async fn garbage_banner_is_an_invalid_reply() {
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    });
    let err = smtp_check(addr, &settings(false)).await.unwrap_err();
    assert!(
        matches!(
            err,
            CheckError::BadReply {
                step: Step::Banner,
                ..
            }
        ),
        "{err:?}"
    );
    server.abort();
}

#[tokio::test]
async fn starttls_not_offered_fails() {
    let (listener, addr) = listen().await;
    let server = plain_server(listener, "220 mx.test\r\n", EHLO_OK);
    let err = smtp_check(addr, &settings(true)).await.unwrap_err();
    assert!(matches!(err, CheckError::StarttlsNotOffered), "{err:?}");
    assert_eq!(server.await.unwrap(), ["EHLO mxgate.test", "QUIT", "<EOF>"]);
}

/// A self-signed certificate valid until 2035-01-01T00:00:00Z, and its key.
fn self_signed() -> (rustls::pki_types::CertificateDer<'static>, Vec<u8>) {
    let mut params = rcgen::CertificateParams::new(vec!["mx.test".to_string()]).unwrap();
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.der().clone(), key.serialize_der())
}

const NOT_AFTER_2035: i64 = 2_051_222_400;

#[tokio::test]
async fn starttls_check_accepts_a_self_signed_cert_and_reports_expiry() {
    let (cert, key) = self_signed();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut conn = BufReader::new(tcp);
        conn.get_mut()
            .write_all(b"220 mx.test ESMTP\r\n")
            .await
            .unwrap();
        let mut seen = Vec::new();
        let answers = [("EHLO", EHLO_TLS), ("STARTTLS", "220 2.0.0 go ahead\r\n")];
        dialogue(&mut conn, &answers, "STARTTLS", &mut seen).await;
        let tls = acceptor.accept(conn.into_inner()).await.unwrap();
        seen.push("<TLS>".into());
        let mut conn = BufReader::new(tls);
        let answers = [("EHLO", EHLO_OK), ("QUIT", "221 bye\r\n")];
        dialogue(&mut conn, &answers, "QUIT", &mut seen).await;
        expect_eof(&mut conn, &mut seen).await;
        seen
    });

    let report = smtp_check(addr, &settings(true)).await.unwrap();
    assert_eq!(report.banner, "mx.test ESMTP");
    let tls = report.tls.expect("TLS details");
    assert_eq!(tls.version, "TLSv1.3");
    assert_eq!(tls.cert_not_after_unix, Some(NOT_AFTER_2035));
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    assert_eq!(
        tls.cert_days_left,
        Some((NOT_AFTER_2035 - now).div_euclid(86_400))
    );
    assert_eq!(
        server.await.unwrap(),
        [
            "EHLO mxgate.test",
            "STARTTLS",
            "<TLS>",
            "EHLO mxgate.test",
            "QUIT",
            "<EOF>"
        ]
    );
}

#[tokio::test]
async fn failed_tls_handshake_is_reported() {
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut conn = BufReader::new(tcp);
        conn.get_mut().write_all(b"220 mx.test\r\n").await.unwrap();
        let mut seen = Vec::new();
        let answers = [("EHLO", EHLO_TLS), ("STARTTLS", "220 go ahead\r\n")];
        dialogue(&mut conn, &answers, "STARTTLS", &mut seen).await;
        // not TLS at all
        conn.get_mut()
            .write_all(b"this is not a TLS record\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    });
    let err = smtp_check(addr, &settings(true)).await.unwrap_err();
    assert!(matches!(err, CheckError::TlsHandshake { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("TLS handshake failed: "),
        "{err}"
    );
    server.await.unwrap();
}

#[test]
fn outcome_records_success_and_failure() {
    let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let ok = CheckOutcome::new(
        &Ok(CheckReport {
            banner: "mx ESMTP".into(),
            tls: None,
        }),
        at,
        12,
    );
    assert!(ok.ok);
    assert_eq!((ok.duration_ms, ok.at_unix), (12, 1_700_000_000));
    assert_eq!(ok.banner.as_deref(), Some("mx ESMTP"));
    let failed = CheckOutcome::new(&Err(CheckError::StarttlsNotOffered), at, 3);
    assert!(!failed.ok);
    assert_eq!(
        failed.error.as_deref(),
        Some("STARTTLS failed: not offered in the EHLO reply")
    );
}

#[test]
fn starttls_keyword_is_found_case_insensitively() {
    let r = Reply::multiline(250, ["mx.test", "starttls", "SIZE 100"]);
    assert!(offers_starttls(&r));
    let r = Reply::multiline(250, ["STARTTLS is the greeting, not a keyword"]);
    assert!(!offers_starttls(&r), "the first line is the greeting");
}

#[tokio::test]
async fn a_check_sends_a_proxy_v2_local_header_first_when_asked() {
    use tokio::io::AsyncReadExt;
    let (listener, addr) = listen().await;
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut header = [0u8; 16];
        tcp.read_exact(&mut header).await.unwrap();
        tcp.write_all(b"220 mx.test ESMTP\r\n").await.unwrap();
        let mut rest = vec![0u8; 64];
        let n = tcp.read(&mut rest).await.unwrap();
        let first = String::from_utf8_lossy(&rest[..n]).into_owned();
        tcp.write_all(EHLO_OK.as_bytes()).await.unwrap();
        let _ = tcp.read(&mut rest).await;
        let _ = tcp.write_all(b"221 bye\r\n").await;
        (header, first)
    });
    let mut s = settings(false);
    s.proxy = ProxyVersion::V2;
    smtp_check(addr, &s).await.unwrap();
    let (header, first_command) = server.await.unwrap();
    assert_eq!(&header[..12], b"\r\n\r\n\0\r\nQUIT\n", "v2 signature");
    assert_eq!(
        header[12], 0x20,
        "version 2, LOCAL: a health check of the proxy itself"
    );
    assert_eq!(first_command, "EHLO mxgate.test\r\n");
}
