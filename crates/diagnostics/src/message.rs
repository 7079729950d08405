//! [`send_test_message`]: one whole SMTP transaction with a unique
//! Message-ID and subject, every reply recorded — the page's "send a test
//! message through the VIP and show where it landed" (the reply that ends
//! DATA usually names the queue id of the MTA that took it).

use crate::millis;
use crate::session::{connect, greet, quit};
use crate::steps::{SmtpReply, StepError, StepTiming, Steps};
use crate::tls::{starttls, TlsDetails};
use mxgate_balance::check::{offers_starttls, Conn, Step};
use mxgate_smtp::rfc5322_date;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

/// The result of [`send_test_message`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestMessageReport {
    /// Where the message was sent (the VIP or one box).
    pub addr: SocketAddr,
    /// Envelope sender (also the From: header).
    pub from: String,
    /// Envelope recipient (also the To: header).
    pub to: String,
    /// The message's unique Message-ID, with angle brackets: search the
    /// tracking page or the backend's log for it.
    pub message_id: String,
    /// The unique subject.
    pub subject: String,
    /// STARTTLS details, when the server offered it (it is always used
    /// when offered, like a sending MTA would).
    pub tls: Option<TlsDetails>,
    /// The server answered 250 to the end of data: the message was taken.
    pub accepted: bool,
    /// The reply to the end of data (e.g. `250 2.0.0 Ok: queued as 4Zx1`).
    pub final_reply: Option<SmtpReply>,
    /// The queue id found in that reply (`queued as X`, `id=X`), if any.
    pub queue_id: Option<String>,
    /// Every step in order, with its command, reply and duration.
    pub steps: Vec<StepTiming>,
    /// The step that failed (the message was then not sent).
    pub error: Option<StepError>,
    /// Milliseconds for the whole conversation.
    pub total_millis: f64,
}

/// Sends one test message from `from` to `to` through the SMTP server at
/// `addr` (`EHLO helo_name`, STARTTLS when offered, MAIL, RCPT, DATA,
/// QUIT), all within `timeout`. Never fails: a refused step or a bad
/// address is in [`TestMessageReport::error`].
pub async fn send_test_message(
    addr: SocketAddr,
    helo_name: &str,
    from: &str,
    to: &str,
    timeout: Duration,
) -> TestMessageReport {
    let started = std::time::Instant::now();
    let token = unique_token();
    let mut report = TestMessageReport {
        addr,
        from: from.trim().to_owned(),
        to: to.trim().to_owned(),
        message_id: format!("<{token}@{}>", id_domain(helo_name)),
        subject: format!("mxgate test message {token}"),
        tls: None,
        accepted: false,
        final_reply: None,
        queue_id: None,
        steps: Vec::new(),
        error: None,
        total_millis: 0.0,
    };
    let mut steps = Steps::default();
    match check_mailbox(&report.from).and(check_mailbox(&report.to)) {
        Ok(()) => converse(&mut report, &mut steps, helo_name, Instant::now() + timeout).await,
        Err(message) => {
            steps.error = Some(StepError {
                step: "input".to_owned(),
                message,
            })
        }
    }
    report.final_reply = steps
        .list
        .iter()
        .find(|s| s.step == Step::Message.to_string())
        .and_then(|s| s.reply.clone());
    report.accepted = report.final_reply.as_ref().is_some_and(|r| r.code == 250);
    report.queue_id = report
        .final_reply
        .as_ref()
        .and_then(|r| queue_id(&r.one_line()));
    report.steps = steps.list;
    report.error = steps.error;
    report.total_millis = millis(started.elapsed());
    report
}

async fn converse(
    report: &mut TestMessageReport,
    steps: &mut Steps,
    helo: &str,
    deadline: Instant,
) {
    let Some(mut conn) = connect(report.addr, steps, deadline).await else {
        return;
    };
    let Some(greeting) = greet(&mut conn, steps, helo, Step::Ehlo).await else {
        return;
    };
    if steps.failed() {
        return;
    }
    let content = content(report, helo);
    if !greeting.reply.as_ref().is_some_and(offers_starttls) {
        transaction(&mut conn, steps, report, &content).await;
        return;
    }
    let peer = report.addr.ip();
    let Some((mut tls, details)) = starttls(conn, steps, None, peer, deadline).await else {
        return;
    };
    report.tls = Some(details);
    let command = format!("EHLO {helo}\r\n");
    let reply = tls.command(&command, Step::EhloTls);
    steps
        .exchange(Step::EhloTls, Some(&command), reply, 250)
        .await;
    if !steps.failed() {
        transaction(&mut tls, steps, report, &content).await;
    }
}

/// MAIL, RCPT, DATA, the content, QUIT; stops at the first refusal.
async fn transaction<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    steps: &mut Steps,
    report: &TestMessageReport,
    content: &str,
) {
    let commands = [
        (Step::Mail, format!("MAIL FROM:<{}>\r\n", report.from), 250),
        (Step::Rcpt, format!("RCPT TO:<{}>\r\n", report.to), 250),
        (Step::Data, "DATA\r\n".to_owned(), 354),
    ];
    for (step, command, expect) in commands {
        let reply = conn.command(&command, step);
        if steps
            .exchange(step, Some(&command), reply, expect)
            .await
            .is_none()
        {
            return;
        }
        if steps.failed() {
            quit(conn, steps).await;
            return;
        }
    }
    let reply = conn.command(content, Step::Message);
    if steps
        .exchange(Step::Message, None, reply, 250)
        .await
        .is_some()
    {
        quit(conn, steps).await;
    }
}

/// The message in wire form, ending with the `.` line.
fn content(report: &TestMessageReport, helo: &str) -> String {
    let date = rfc5322_date(SystemTime::now());
    let lines = [
        format!("Date: {date}"),
        format!("From: <{}>", report.from),
        format!("To: <{}>", report.to),
        format!("Subject: {}", report.subject),
        format!("Message-ID: {}", report.message_id),
        "MIME-Version: 1.0".to_owned(),
        "Content-Type: text/plain; charset=us-ascii".to_owned(),
        String::new(),
        "This is a test message from the mxgate diagnostics page.".to_owned(),
        format!("It was sent to {} by {helo} on {date}.", report.addr),
        "It can be deleted.".to_owned(),
        ".".to_owned(),
    ];
    let mut wire = lines.join("\r\n");
    wire.push_str("\r\n");
    wire
}

/// Accepts `local@domain` without spaces, controls or angle brackets.
fn check_mailbox(address: &str) -> Result<(), String> {
    let bad = |c: char| c.is_whitespace() || c.is_control() || "<>\"".contains(c);
    match address.rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !address.contains(bad) =>
        {
            Ok(())
        }
        _ => Err(format!("{address:?} is not a mail address (local@domain)")),
    }
}

/// A token no other test message shares: time, process and a counter.
fn unique_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:x}.{:08x}.{:x}.{n}",
        now.as_secs(),
        now.subsec_nanos(),
        std::process::id()
    )
}

/// The right side of the Message-ID: the HELO name when it is a plain
/// host name.
fn id_domain(helo: &str) -> &str {
    let plain = !helo.is_empty()
        && helo
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c));
    if plain {
        helo
    } else {
        "mxgate.invalid"
    }
}

/// The queue id in a final reply: Postfix and the sink say `queued as X`,
/// Exim `id=X`.
fn queue_id(reply: &str) -> Option<String> {
    let lower = reply.to_ascii_lowercase();
    ["queued as ", "id="].iter().find_map(|marker| {
        let start = lower.find(marker)? + marker.len();
        let id: String = reply[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
            .collect();
        (!id.is_empty()).then_some(id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_ids_of_common_mtas_are_found() {
        assert_eq!(
            queue_id("250 2.0.0 Ok: queued as 4Zx1abC").as_deref(),
            Some("4Zx1abC")
        );
        assert_eq!(
            queue_id("250 OK id=1tXyZ-000abc-4d").as_deref(),
            Some("1tXyZ-000abc-4d")
        );
        assert_eq!(queue_id("250 2.0.0 Ok"), None);
    }

    #[test]
    fn mailboxes_are_checked() {
        assert!(check_mailbox("a@b.example").is_ok());
        for bad in ["", "a", "@b", "a@", "a b@c", "a@b>\r\nRCPT TO:<x@y"] {
            assert!(check_mailbox(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tokens_are_unique_and_ids_use_a_plain_helo_name() {
        assert_ne!(unique_token(), unique_token());
        assert_eq!(id_domain("gw-a.example.org"), "gw-a.example.org");
        assert_eq!(id_domain("[127.0.0.1]"), "mxgate.invalid");
    }
}
