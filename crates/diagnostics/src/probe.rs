//! [`probe_smtp`]: what a sender sees when it connects to one mail server —
//! banner and its timing, the EHLO reply, STARTTLS and the certificate,
//! each step timed, ended with a polite QUIT.

use crate::millis;
use crate::session::{connect, greet, quit};
use crate::steps::{SmtpReply, StepError, StepTiming, Steps};
use crate::tls::{starttls, TlsDetails};
use mxgate_balance::check::{offers_starttls, Step};
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// The result of [`probe_smtp`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeReport {
    /// The server probed.
    pub addr: SocketAddr,
    /// The host name used for SNI and certificate verification, when given.
    pub server_name: Option<String>,
    /// Milliseconds from TCP connected to the whole banner read (a
    /// server that delays its banner on purpose, like a postscreen, shows
    /// here).
    pub banner_millis: Option<f64>,
    /// The banner (220 greeting).
    pub banner: Option<SmtpReply>,
    /// The reply to EHLO (first line: the server's name; then one
    /// extension per line).
    pub ehlo: Option<SmtpReply>,
    /// The EHLO reply lists STARTTLS.
    pub starttls_offered: bool,
    /// STARTTLS details, when the handshake completed.
    pub tls: Option<TlsDetails>,
    /// The reply to EHLO repeated inside TLS.
    pub ehlo_after_tls: Option<SmtpReply>,
    /// Every step in order, with its command, reply and duration.
    pub steps: Vec<StepTiming>,
    /// The step that failed; `None` when the probe went through (a server
    /// that does not offer STARTTLS is not a failure: see
    /// `starttls_offered`).
    pub error: Option<StepError>,
    /// Milliseconds for the whole probe.
    pub total_millis: f64,
}

/// Probes the SMTP server at `addr`: connect, banner, `EHLO helo_name`,
/// STARTTLS when offered (SNI and verification use `server_name`, the MX
/// host name; without it the address), `EHLO` again, `QUIT`. The whole
/// probe ends within `timeout`. Never fails: a failed step is in
/// [`ProbeReport::error`] with everything learnt before it.
pub async fn probe_smtp(
    addr: SocketAddr,
    server_name: Option<&str>,
    helo_name: &str,
    timeout: Duration,
) -> ProbeReport {
    let started = std::time::Instant::now();
    let deadline = Instant::now() + timeout;
    let mut report = ProbeReport {
        addr,
        server_name: server_name.map(str::to_owned),
        banner_millis: None,
        banner: None,
        ehlo: None,
        starttls_offered: false,
        tls: None,
        ehlo_after_tls: None,
        steps: Vec::new(),
        error: None,
        total_millis: 0.0,
    };
    let mut steps = Steps::default();
    converse(&mut report, &mut steps, helo_name, deadline).await;
    report.steps = steps.list;
    report.error = steps.error;
    report.total_millis = millis(started.elapsed());
    report
}

async fn converse(report: &mut ProbeReport, steps: &mut Steps, helo: &str, deadline: Instant) {
    let Some(mut conn) = connect(report.addr, steps, deadline).await else {
        return;
    };
    let Some(ehlo) = greet(&mut conn, steps, helo, Step::Ehlo).await else {
        return;
    };
    report.banner = ehlo.banner;
    report.banner_millis = steps.millis_of(Step::Banner);
    report.ehlo = ehlo.reply.as_ref().map(SmtpReply::from);
    if steps.failed() {
        return;
    }
    report.starttls_offered = ehlo.reply.as_ref().is_some_and(offers_starttls);
    if !report.starttls_offered {
        quit(&mut conn, steps).await;
        return;
    }
    let name = report.server_name.clone();
    let peer = report.addr.ip();
    let Some((mut tls, details)) = starttls(conn, steps, name.as_deref(), peer, deadline).await
    else {
        return;
    };
    report.tls = Some(details);
    let command = format!("EHLO {helo}\r\n");
    let reply = tls.command(&command, Step::EhloTls);
    report.ehlo_after_tls = steps
        .exchange(Step::EhloTls, Some(&command), reply, 250)
        .await
        .map(|r| SmtpReply::from(&r));
    quit(&mut tls, steps).await;
}
