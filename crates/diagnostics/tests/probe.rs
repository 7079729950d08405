//! `probe_smtp` against mxgate's smtp listener (STARTTLS, self-signed
//! certificate), against a server without STARTTLS, a closed port and a
//! silent server.

mod support;

use mxgate_diagnostics::probe_smtp;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::{Lab, NOT_AFTER_UNIX};

const TIMEOUT: Duration = Duration::from_secs(10);

fn step_names(steps: &[mxgate_diagnostics::StepTiming]) -> Vec<&str> {
    steps.iter().map(|s| s.step.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_details_of_a_self_signed_mx() {
    let lab = Lab::start().await;
    let report = probe_smtp(
        lab.gateway_addr,
        Some("mx.example.test"),
        "probe.example.org",
        TIMEOUT,
    )
    .await;
    assert_eq!(report.error, None, "{report:#?}");
    assert_eq!(
        step_names(&report.steps),
        [
            "connect",
            "banner",
            "EHLO",
            "STARTTLS",
            "TLS handshake",
            "EHLO after STARTTLS",
            "QUIT"
        ]
    );
    assert!(
        report.steps.iter().all(|s| s.ok && s.millis > 0.0),
        "{:#?}",
        report.steps
    );
    assert!(report.banner_millis.unwrap() > 0.0);
    let banner = report.banner.as_ref().unwrap();
    assert_eq!(banner.code, 220);
    assert!(banner.lines[0].starts_with("mx.example.test"), "{banner:?}");
    assert!(report.starttls_offered);
    assert!(report
        .ehlo
        .as_ref()
        .unwrap()
        .lines
        .iter()
        .any(|l| l == "STARTTLS"));
    let after = report.ehlo_after_tls.as_ref().unwrap();
    assert!(!after.lines.iter().any(|l| l == "STARTTLS"), "{after:?}");
    assert_eq!(
        report.steps.last().unwrap().reply.as_ref().unwrap().code,
        221
    );

    let tls = report.tls.as_ref().unwrap();
    assert_eq!(tls.version, "TLSv1.3");
    assert!(
        tls.cipher_suite.starts_with("TLS13_"),
        "{}",
        tls.cipher_suite
    );
    assert_eq!(
        (tls.sni.as_deref(), tls.chain_length),
        (Some("mx.example.test"), 1)
    );
    let cert = tls.certificate.as_ref().unwrap();
    assert_eq!(cert.subject, "CN=mx.example.test");
    assert_eq!(cert.sans, ["mx.example.test"]);
    assert!(cert.self_signed);
    assert_eq!(cert.not_after_unix, NOT_AFTER_UNIX);
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    assert_eq!(cert.days_left, (NOT_AFTER_UNIX - now).div_euclid(86_400));
    assert!(
        !tls.verification.trusted,
        "a self-signed certificate is reported, not trusted"
    );
    assert!(tls
        .verification
        .reason
        .as_ref()
        .unwrap()
        .contains("not issued by a public CA"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["tls"]["certificate"]["subject"], "CN=mx.example.test");
    assert!(lab.delivered().is_empty(), "a probe sends no mail");
    lab.stop().await;
}

#[tokio::test]
async fn a_server_without_starttls_is_probed_to_the_end() {
    let lab = Lab::start().await;
    let report = probe_smtp(lab.sink_addr, None, "probe.example.org", TIMEOUT).await;
    assert_eq!(report.error, None, "{report:#?}");
    assert!(!report.starttls_offered);
    assert_eq!(report.tls, None);
    assert_eq!(
        step_names(&report.steps),
        ["connect", "banner", "EHLO", "QUIT"]
    );
}

#[tokio::test]
async fn a_closed_port_and_a_silent_server_fail_at_their_step() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let report = probe_smtp(closed, None, "probe.example.org", TIMEOUT).await;
    let error = report.error.unwrap();
    assert_eq!(error.step, "connect");
    assert!(error.message.starts_with("connect failed"), "{error:?}");

    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let (_conn, _) = silent.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let report = probe_smtp(addr, None, "probe.example.org", Duration::from_millis(300)).await;
    let error = report.error.unwrap();
    assert_eq!(
        (error.step.as_str(), error.message.as_str()),
        ("banner", "banner timeout")
    );
    assert!(report.total_millis >= 300.0 && report.total_millis < 2_000.0);
    hold.abort();
}
