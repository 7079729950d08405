//! `hold`: open many SMTP connections, read each banner, and keep them idle
//! for a while (to measure a proxy's memory per idle connection).

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::task::JoinSet;

use crate::smtp::Client;

/// How many connections, how fast, and for how long.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The server to hold connections to.
    pub target: SocketAddr,
    /// Connections to open.
    pub count: usize,
    /// Connects (with their banner read) in flight at once while opening.
    pub batch: usize,
    /// How long to keep them idle once all are open.
    pub hold: Duration,
    /// Limit for one connect plus banner, and for one QUIT reply.
    pub timeout: Duration,
}

/// Opens one connection and waits for its 220 banner.
async fn open_one(target: SocketAddr, timeout: Duration) -> Result<Client> {
    tokio::time::timeout(timeout, async {
        let mut c = Client::connect(target).await?;
        c.expect(220, "banner").await?;
        Ok(c)
    })
    .await
    .context("connect and banner timed out")?
}

/// Sends QUIT and reports whether the server still answered 221.
async fn quit_one(mut c: Client, timeout: Duration) -> bool {
    let res = tokio::time::timeout(timeout, c.command(b"QUIT\r\n", 221, "QUIT")).await;
    matches!(res, Ok(Ok(())))
}

/// Opens the connections `batch` at a time; returns them and the first error seen.
async fn open_all(plan: &Plan) -> (Vec<Client>, usize, Option<String>) {
    let mut held = Vec::with_capacity(plan.count);
    let mut failed = 0;
    let mut first_err = None;
    let mut set = JoinSet::new();
    let mut started = 0;
    while started < plan.count || !set.is_empty() {
        while started < plan.count && set.len() < plan.batch.max(1) {
            set.spawn(open_one(plan.target, plan.timeout));
            started += 1;
        }
        match set.join_next().await {
            Some(Ok(Ok(c))) => held.push(c),
            Some(Ok(Err(e))) => {
                failed += 1;
                first_err.get_or_insert_with(|| format!("{e:#}"));
            }
            Some(Err(e)) => {
                failed += 1;
                first_err.get_or_insert_with(|| format!("task: {e}"));
            }
            None => {}
        }
    }
    (held, failed, first_err)
}

/// Runs the plan: prints `{"held":N,"failed":F}` once all are open, waits
/// `hold` (or until `stop` resolves), then QUITs each and prints
/// `{"released":N,"still_open":K}` where K answered the QUIT.
///
/// # Errors
/// When stdout cannot be written.
pub async fn run(plan: Plan, stop: impl Future<Output = ()>) -> Result<()> {
    let (held, failed, first_err) = open_all(&plan).await;
    if let Some(e) = first_err {
        eprintln!("mxgate-loadgen hold: {failed} failed, first: {e}");
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}",
        serde_json::json!({"held": held.len(), "failed": failed})
    )?;
    out.flush()?;
    drop(out);

    tokio::select! {
        () = tokio::time::sleep(plan.hold) => {}
        () = stop => {}
    }

    let released = held.len();
    let mut set = JoinSet::new();
    let mut still_open = 0;
    for c in held {
        set.spawn(quit_one(c, plan.timeout));
    }
    while let Some(res) = set.join_next().await {
        if matches!(res, Ok(true)) {
            still_open += 1;
        }
    }
    println!(
        "{}",
        serde_json::json!({"released": released, "still_open": still_open})
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testserver;

    #[tokio::test]
    async fn opens_all_connections_in_batches() {
        let (addr, _) = testserver::start().await;
        let plan = Plan {
            target: addr,
            count: 50,
            batch: 7,
            hold: Duration::ZERO,
            timeout: Duration::from_secs(5),
        };
        let (held, failed, err) = open_all(&plan).await;
        assert_eq!((held.len(), failed), (50, 0), "{err:?}");
        let mut answered = 0;
        for c in held {
            answered += usize::from(quit_one(c, plan.timeout).await);
        }
        assert_eq!(answered, 50);
    }
}
