//! `mxgate-loadgen`: an SMTP load generator for `scripts/bench`.
//!
//! It complements Postfix's `smtp-source` (which gives throughput) with what
//! that tool lacks: per-session latency percentiles (`sessions`) and many
//! idle connections held open (`hold`). It runs on one thread so it takes
//! at most one core from the system under test. `sync-fill` and
//! `sync-edits` drive the peer-sync benchmark through mxgate's store.

mod hold;
mod sessions;
mod smtp;
mod stats;
mod sync;
#[cfg(test)]
mod testserver;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

/// SMTP load generator for mxgate's benchmarks (loopback targets).
#[derive(Parser, Debug)]
#[command(name = "mxgate-loadgen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run COUNT one-message sessions, CONCURRENCY at a time; print one JSON
    /// line with msgs/s and session-time percentiles (connect to 221).
    Sessions {
        /// SMTP server, e.g. 127.0.0.1:2525.
        #[arg(long)]
        target: SocketAddr,
        /// Sessions in total.
        #[arg(long, default_value_t = 5000)]
        count: usize,
        /// Sessions in flight at once.
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        /// Message body bytes.
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// Envelope sender.
        #[arg(long, default_value = "bench@example.test")]
        from: String,
        /// Envelope recipient.
        #[arg(long, default_value = "sink@example.test")]
        to: String,
        /// EHLO name.
        #[arg(long, default_value = "loadgen.example.test")]
        helo: String,
        /// A session slower than this counts as failed.
        #[arg(long, default_value_t = 30)]
        timeout_s: u64,
    },
    /// Open COUNT connections, read each banner, print {"held":N,"failed":F},
    /// keep them idle HOLD_S seconds (or until Ctrl-C), then QUIT them.
    Hold {
        /// SMTP server, e.g. 127.0.0.1:2525.
        #[arg(long)]
        target: SocketAddr,
        /// Connections to open.
        #[arg(long, default_value_t = 5000)]
        count: usize,
        /// Connects in flight at once while opening.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Seconds to hold them once all are open.
        #[arg(long, default_value_t = 10)]
        hold_s: u64,
        /// Limit for one connect plus banner (and for each QUIT reply).
        #[arg(long, default_value_t = 10)]
        timeout_s: u64,
    },
    /// Create ROWS greylist triplets in a store (through mxgate's own
    /// greylisting code); print {"rows":N,"seconds":S}.
    SyncFill {
        /// The node's data directory.
        #[arg(long)]
        data: PathBuf,
        /// Triplets to create.
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
    },
    /// Time COUNT single-row edits (temporary allowlist entries) from one
    /// node's store to its peer's, alternating direction; print the
    /// propagation percentiles as JSON.
    SyncEdits {
        /// One node's data directory.
        #[arg(long)]
        a: PathBuf,
        /// The peer's data directory.
        #[arg(long)]
        b: PathBuf,
        /// Edits in total.
        #[arg(long, default_value_t = 1000)]
        count: u32,
        /// Only edit A (default: alternate A and B).
        #[arg(long)]
        one_way: bool,
        /// How often the receiving store is read (µs).
        #[arg(long, default_value_t = 500)]
        poll_us: u64,
        /// An edit not seen by then fails the run.
        #[arg(long, default_value_t = 10)]
        timeout_s: u64,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start runtime")?;
    match cli.command {
        Command::Sessions {
            target,
            count,
            concurrency,
            size,
            from,
            to,
            helo,
            timeout_s,
        } => {
            check_fds(concurrency)?;
            let plan = sessions::Plan {
                target,
                count,
                concurrency,
                size,
                from,
                to,
                helo,
                timeout: Duration::from_secs(timeout_s),
            };
            let report = rt.block_on(sessions::run(plan))?;
            for e in &report.errors {
                eprintln!("mxgate-loadgen sessions: {e}");
            }
            println!("{}", report.to_json());
        }
        Command::Hold {
            target,
            count,
            batch,
            hold_s,
            timeout_s,
        } => {
            check_fds(count)?;
            let plan = hold::Plan {
                target,
                count,
                batch,
                hold: Duration::from_secs(hold_s),
                timeout: Duration::from_secs(timeout_s),
            };
            let stop = async {
                // If the handler cannot be installed, just hold for the full time.
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            rt.block_on(hold::run(plan, stop))?;
        }
        Command::SyncFill { data, rows } => println!("{}", sync::fill_greylist(&data, rows)?),
        Command::SyncEdits {
            a,
            b,
            count,
            one_way,
            poll_us,
            timeout_s,
        } => println!(
            "{}",
            sync::edits(
                &a,
                &b,
                count,
                one_way,
                Duration::from_micros(poll_us),
                Duration::from_secs(timeout_s)
            )?
        ),
    }
    Ok(())
}

/// Fails early, with the fix, when the open-files limit cannot fit `conns`
/// sockets (this binary forbids `unsafe`, so it does not raise the limit itself).
fn check_fds(conns: usize) -> Result<()> {
    let Some(limit) = open_files_limit() else {
        return Ok(());
    };
    let need = conns as u64 + 32;
    if limit < need {
        bail!("open-files limit {limit} is below the {need} needed; run `ulimit -n {need}` (or more) first");
    }
    Ok(())
}

/// The soft RLIMIT_NOFILE from /proc/self/limits (None if unreadable or unlimited).
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
