//! `send_test_message` through mxgate's smtp listener to the sink: the
//! backend's own 250 with its queue id comes back, and the message with its
//! unique Message-ID is in the sink's Maildir.

mod support;

use mxgate_diagnostics::send_test_message;
use std::time::Duration;
use support::{Lab, NOT_AFTER_UNIX};

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_message_lands_at_the_backend() {
    let lab = Lab::start().await;
    let report = send_test_message(
        lab.gateway_addr,
        "gw-a.example.org",
        "diagnostics@example.org",
        "postmaster@example.test",
        TIMEOUT,
    )
    .await;
    assert_eq!(report.error, None, "{report:#?}");
    assert!(report.accepted);
    let steps: Vec<&str> = report.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(
        steps,
        [
            "connect",
            "banner",
            "EHLO",
            "STARTTLS",
            "TLS handshake",
            "EHLO after STARTTLS",
            "MAIL FROM",
            "RCPT TO",
            "DATA",
            "end of data",
            "QUIT"
        ]
    );
    assert_eq!(
        report.steps[6].command.as_deref(),
        Some("MAIL FROM:<diagnostics@example.org>")
    );
    let last = report.final_reply.as_ref().unwrap();
    assert_eq!(last.code, 250);
    assert!(
        last.one_line().contains("queued as"),
        "the sink's own reply: {last:?}"
    );
    let queue_id = report.queue_id.clone().unwrap();
    assert!(last.one_line().ends_with(&queue_id));
    let tls = report.tls.as_ref().expect("STARTTLS is used when offered");
    assert_eq!(
        tls.certificate.as_ref().unwrap().not_after_unix,
        NOT_AFTER_UNIX
    );

    let delivered = lab.delivered();
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0].contains(&format!("Message-ID: {}\r\n", report.message_id)));
    assert!(delivered[0].contains(&format!("Subject: {}\r\n", report.subject)));
    assert!(report.message_id.ends_with("@gw-a.example.org>"));

    let again = send_test_message(
        lab.sink_addr,
        "gw-a.example.org",
        "a@example.org",
        "b@example.test",
        TIMEOUT,
    )
    .await;
    assert!(again.accepted && again.tls.is_none(), "{again:#?}");
    assert_ne!(again.message_id, report.message_id);
    assert_ne!(again.subject, report.subject);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_recipient_or_a_bad_address_is_reported() {
    let lab = Lab::start().await;
    let report = send_test_message(
        lab.gateway_addr,
        "gw-a.example.org",
        "a@example.org",
        "u@elsewhere.test",
        TIMEOUT,
    )
    .await;
    assert!(!report.accepted);
    let error = report.error.clone().unwrap();
    assert_eq!(error.step, "RCPT TO");
    assert!(
        error.message.starts_with("expected 250, got 554"),
        "{error:?}"
    );
    assert_eq!(report.steps.last().unwrap().step, "QUIT");
    assert!(lab.delivered().is_empty());

    let report = send_test_message(
        lab.gateway_addr,
        "gw-a.example.org",
        "a@example.org",
        "x>\r\nRCPT TO:<y@example.test",
        TIMEOUT,
    )
    .await;
    assert_eq!(report.error.unwrap().step, "input");
    assert!(report.steps.is_empty());
    lab.stop().await;
}
