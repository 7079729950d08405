//! `sessions`: many complete one-message SMTP sessions, `concurrency` at a
//! time, timing each from connect to the 221 after QUIT.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::task::JoinSet;

use crate::smtp::Client;
use crate::stats::{round3, Summary};

/// What to send, where, and how much.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The SMTP server under test.
    pub target: SocketAddr,
    /// Sessions in total (one message each).
    pub count: usize,
    /// Sessions in flight at once.
    pub concurrency: usize,
    /// Message payload bytes (body, not counting headers).
    pub size: usize,
    /// Envelope sender.
    pub from: String,
    /// Envelope recipient.
    pub to: String,
    /// Name given in EHLO.
    pub helo: String,
    /// A session taking longer than this counts as failed.
    pub timeout: Duration,
}

/// The outcome of a run; printed as one JSON line.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Sessions attempted.
    pub sessions: usize,
    /// Sessions that ended with 221 after the message was accepted.
    pub ok: usize,
    /// Sessions that failed or timed out.
    pub failed: usize,
    /// Wall time of the whole run.
    pub elapsed_s: f64,
    /// Accepted messages per second of wall time.
    pub msgs_per_s: f64,
    /// Latency of the successful sessions.
    pub latency: Summary,
    /// The first few distinct failure reasons, for stderr.
    pub errors: Vec<String>,
}

impl Report {
    /// The JSON line `scripts/bench` reads, keys in a fixed, readable order.
    pub fn to_json(&self) -> String {
        let num = |x: f64| serde_json::Value::from(x).to_string();
        format!(
            "{{\"sessions\":{},\"ok\":{},\"failed\":{},\"elapsed_s\":{},\"msgs_per_s\":{},\
             \"p50_ms\":{},\"p90_ms\":{},\"p99_ms\":{},\"max_ms\":{}}}",
            self.sessions,
            self.ok,
            self.failed,
            num(self.elapsed_s),
            num(self.msgs_per_s),
            num(self.latency.p50_ms),
            num(self.latency.p90_ms),
            num(self.latency.p99_ms),
            num(self.latency.max_ms),
        )
    }
}

/// How many distinct error messages a report keeps.
const MAX_ERRORS: usize = 5;

/// The protocol bytes of one session, built once and shared by every worker.
struct Script {
    ehlo: Vec<u8>,
    mail: Vec<u8>,
    rcpt: Vec<u8>,
    /// Headers, body and the terminating `.` line.
    data: Vec<u8>,
}

impl Script {
    fn new(plan: &Plan) -> Self {
        Self {
            ehlo: format!("EHLO {}\r\n", plan.helo).into_bytes(),
            mail: format!("MAIL FROM:<{}>\r\n", plan.from).into_bytes(),
            rcpt: format!("RCPT TO:<{}>\r\n", plan.to).into_bytes(),
            data: message(&plan.from, &plan.to, plan.size),
        }
    }
}

/// A message with `size` bytes of body (CRLF line ends counted), followed by
/// the end-of-data line. Body lines are `x`s, so no dot-stuffing is needed.
pub fn message(from: &str, to: &str, size: usize) -> Vec<u8> {
    let mut m =
        format!("From: <{from}>\r\nTo: <{to}>\r\nSubject: mxgate-loadgen\r\n\r\n").into_bytes();
    let mut left = size;
    while left > 0 {
        // Lines of up to 78 characters plus CRLF. A 1-byte remainder cannot
        // hold a line end; it becomes "x" and the CRLF added below.
        let line = left.min(80);
        if line >= 2 {
            m.extend(std::iter::repeat_n(b'x', line - 2));
            m.extend_from_slice(b"\r\n");
        } else {
            m.extend_from_slice(b"x");
        }
        left -= line;
    }
    if !m.ends_with(b"\r\n") {
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b".\r\n");
    m
}

/// One full session: banner, EHLO, MAIL, RCPT, DATA, body, QUIT.
async fn one_session(target: SocketAddr, script: &Script) -> Result<()> {
    let mut c = Client::connect(target).await?;
    c.expect(220, "banner").await?;
    c.command(&script.ehlo, 250, "EHLO").await?;
    c.command(&script.mail, 250, "MAIL FROM").await?;
    c.command(&script.rcpt, 250, "RCPT TO").await?;
    c.command(b"DATA\r\n", 354, "DATA").await?;
    c.command(&script.data, 250, "end of data").await?;
    c.command(b"QUIT\r\n", 221, "QUIT").await?;
    Ok(())
}

/// What one worker gathered.
#[derive(Default)]
struct Tally {
    ok: Vec<Duration>,
    failed: usize,
    errors: Vec<String>,
}

/// Runs sessions until the shared counter reaches `count`.
async fn worker(plan: Arc<Plan>, script: Arc<Script>, next: Arc<AtomicUsize>) -> Tally {
    let mut t = Tally::default();
    while next.fetch_add(1, Ordering::Relaxed) < plan.count {
        let start = Instant::now();
        let res = tokio::time::timeout(plan.timeout, one_session(plan.target, &script)).await;
        match res {
            Ok(Ok(())) => t.ok.push(start.elapsed()),
            Ok(Err(e)) => t.fail(format!("{e:#}")),
            Err(_) => t.fail(format!("session timed out after {:?}", plan.timeout)),
        }
    }
    t
}

impl Tally {
    fn fail(&mut self, msg: String) {
        self.failed += 1;
        if self.errors.len() < MAX_ERRORS && !self.errors.contains(&msg) {
            self.errors.push(msg);
        }
    }
}

/// Runs the whole plan and reports.
///
/// # Errors
/// Only when a worker task panics; session failures are counted, not returned.
pub async fn run(plan: Plan) -> Result<Report> {
    let plan = Arc::new(plan);
    let script = Arc::new(Script::new(&plan));
    let next = Arc::new(AtomicUsize::new(0));
    let workers = plan.concurrency.clamp(1, plan.count.max(1));
    let start = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..workers {
        set.spawn(worker(plan.clone(), script.clone(), next.clone()));
    }
    let mut all = Tally::default();
    while let Some(res) = set.join_next().await {
        let t = res.context("worker task")?;
        all.ok.extend(t.ok);
        all.failed += t.failed;
        for e in t.errors {
            if all.errors.len() < MAX_ERRORS && !all.errors.contains(&e) {
                all.errors.push(e);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ok = all.ok.len();
    Ok(Report {
        sessions: plan.count,
        ok,
        failed: all.failed,
        elapsed_s: round3(elapsed),
        msgs_per_s: if elapsed > 0.0 {
            round3(ok as f64 / elapsed)
        } else {
            0.0
        },
        latency: Summary::of(&mut all.ok),
        errors: all.errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_body_has_the_requested_size() {
        for size in [0, 1, 2, 79, 80, 81, 1024] {
            let m = message("a@x", "b@y", size);
            let head = b"From: <a@x>\r\nTo: <b@y>\r\nSubject: mxgate-loadgen\r\n\r\n".len();
            let body = m.len() - head - b".\r\n".len();
            // A 1-byte remainder still needs its line end.
            let want = if size % 80 == 1 { size + 2 } else { size };
            assert_eq!(body, want, "size {size}");
            assert!(m.ends_with(b"\r\n.\r\n") || size == 0);
            assert!(!m[head..m.len() - 3].starts_with(b"."));
        }
    }
}

#[cfg(test)]
mod run_tests {
    use super::*;
    use crate::testserver;

    fn plan(target: SocketAddr, count: usize) -> Plan {
        Plan {
            target,
            count,
            concurrency: 8,
            size: 1024,
            from: "a@example.test".into(),
            to: "b@example.test".into(),
            helo: "t.example.test".into(),
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn every_session_delivers_one_message() {
        let (addr, delivered) = testserver::start().await;
        let r = run(plan(addr, 100)).await.unwrap();
        assert_eq!(
            (r.sessions, r.ok, r.failed),
            (100, 100, 0),
            "{:?}",
            r.errors
        );
        assert_eq!(delivered.load(Ordering::Relaxed), 100);
        assert!(r.latency.p50_ms <= r.latency.p99_ms && r.latency.p99_ms <= r.latency.max_ms);
        assert!(r.msgs_per_s > 0.0);
        let j: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(j["ok"], 100);
        assert!(j["p99_ms"].is_number());
    }

    #[tokio::test]
    async fn refused_connections_are_counted_as_failures() {
        // Bind then drop, so the port is very likely closed.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let r = run(plan(addr, 10)).await.unwrap();
        assert_eq!((r.ok, r.failed), (0, 10));
        assert!(!r.errors.is_empty());
    }
}
