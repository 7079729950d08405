//! Tracking: every finished smtp-mode session is written to the store (in
//! batches, off the session threads), and old records are pruned.

use mxgate_gateway::smtp::inbound::TransactionResult as Inbound;
use mxgate_gateway::SessionReport;
use mxgate_store::{RecipientRecord, SessionRecord, Store, TransactionRecord, TransactionResult};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Reports that may wait for the writer before sessions start dropping them.
pub(crate) const QUEUE: usize = 10_000;
/// Most reports written in one store transaction.
const BATCH: usize = 500;
/// Tracking records older than this are pruned.
const MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// At most this many sessions are kept.
const MAX_SESSIONS: u64 = 1_000_000;
/// How often pruning runs.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Writes reports from `reports` to `store` until `stop`, then drains what is
/// queued.
pub(crate) async fn writer(
    store: Arc<Store>,
    mut reports: mpsc::Receiver<SessionReport>,
    stop: CancellationToken,
) {
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            n = reports.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    return;
                }
                write(&store, std::mem::take(&mut batch)).await;
            }
            _ = prune.tick() => {
                let s = Arc::clone(&store);
                match tokio::task::spawn_blocking(move || s.prune_tracking(MAX_AGE, MAX_SESSIONS)).await {
                    Ok(Ok(n)) if n > 0 => tracing::info!(sessions = n, "tracking records pruned"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "tracking prune failed"),
                    _ => {}
                }
            }
            () = stop.cancelled() => {
                reports.close();
                while reports.recv_many(&mut batch, BATCH).await > 0 {
                    write(&store, std::mem::take(&mut batch)).await;
                }
                return;
            }
        }
    }
}

async fn write(store: &Arc<Store>, reports: Vec<SessionReport>) {
    let records: Vec<SessionRecord> = reports.iter().map(to_record).collect();
    let store = Arc::clone(store);
    match tokio::task::spawn_blocking(move || store.record_sessions(&records)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "tracking records not written"),
        Err(e) => tracing::warn!(error = %e, "tracking writer failed"),
    }
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The store's form of a session report.
fn to_record(r: &SessionReport) -> SessionRecord {
    let started = unix_ms(r.started);
    SessionRecord {
        id: None,
        started_unix_ms: started,
        ended_unix_ms: unix_ms(r.ended),
        listener: r.listener.clone(),
        client_ip: r.peer.ip(),
        client_port: r.peer.port(),
        proxy_ip: (r.client.ip() != r.peer.ip()).then_some(r.client.ip()),
        helo: r.record.helo.clone().unwrap_or_default(),
        tls: r.record.tls.clone(),
        result: if r.record.transactions.is_empty() {
            "no mail".to_string()
        } else {
            "mail".to_string()
        },
        end_reason: r.record.end.clone(),
        checks: r.record.checks.clone(),
        transactions: r
            .record
            .transactions
            .iter()
            .map(|t| TransactionRecord {
                id: None,
                started_unix_ms: started,
                sender: t.from.clone(),
                size: t.size,
                server: t.server.clone(),
                final_reply: t.final_reply.clone(),
                result: match t.result {
                    Inbound::Accepted => TransactionResult::Accepted,
                    Inbound::Rejected => TransactionResult::Rejected,
                    Inbound::Tempfail => TransactionResult::Tempfail,
                    Inbound::Abandoned => TransactionResult::Abandoned,
                },
                duration_ms: 0,
                checks: t.checks.clone(),
                recipients: t
                    .rcpts
                    .iter()
                    .map(|(to, code)| RecipientRecord {
                        recipient: to.clone(),
                        reply_code: *code,
                        reply_text: String::new(),
                    })
                    .collect(),
            })
            .collect(),
    }
}
