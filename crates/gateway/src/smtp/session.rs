//! One smtp-mode connection: where it comes from (PROXY from a trusted
//! upstream), the inbound session relaying through a [`Backend`] of the
//! listener's pool, the counters, one log line, and a report for tracking.

use super::inbound::{self, InboundSettings, SessionRecord, TransactionResult};
use super::outbound::{Backend, OutboundSettings};
use super::recipients::{CachingRelay, RecipientCache};
use super::relay::ClientIdentity;
use crate::authenticate::{AuthenticatingRelay, MessageChecks};
use crate::checks::CheckLog;
use crate::screen::{Admitted, FilteringRelay};
use crate::session::{origin, refuse, Origin, SessionContext};
use crate::stats::{ConnResult, MessageResult, ReplyPhase};
use arc_swap::{ArcSwap, ArcSwapOption};
use mxgate_config::RelaySettings;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// What every smtp-mode session shares, replaced live.
#[derive(Default)]
pub(crate) struct SmtpShared {
    /// `[relay] domains` of the policy.
    pub relay_domains: ArcSwap<Vec<String>>,
    /// STARTTLS identity; `None` = STARTTLS not offered.
    pub tls: ArcSwapOption<rustls::ServerConfig>,
    /// Where finished sessions are reported for tracking.
    pub reports: ArcSwapOption<mpsc::Sender<SessionReport>>,
    /// Reports dropped because the tracking writer fell behind.
    pub reports_dropped: AtomicU64,
    /// Recipient caches by pool name, with the TTLs they were made for.
    pub recipient_caches: Mutex<HashMap<String, Arc<RecipientCache>>>,
    /// Where messages held for end-of-data checks spill to.
    pub spool_dir: ArcSwapOption<PathBuf>,
}

/// A finished smtp-mode session, for the tracking store.
#[derive(Debug, Clone)]
pub struct SessionReport {
    /// Listener name.
    pub listener: String,
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The client (differs from `peer` behind a trusted PROXY upstream).
    pub client: SocketAddr,
    /// When the connection was accepted.
    pub started: SystemTime,
    /// When it ended.
    pub ended: SystemTime,
    /// What happened.
    pub record: SessionRecord,
}

/// Runs one smtp-mode connection to its end.
pub(crate) async fn run(
    ctx: &SessionContext,
    shared: &SmtpShared,
    mut stream: TcpStream,
    peer: SocketAddr,
) {
    let started = SystemTime::now();
    let _open = ctx.stats.open();
    let listener = &ctx.listener;
    let Origin {
        client,
        destination,
        early,
    } = match origin(ctx, &mut stream, peer, true).await {
        Ok(o) => o,
        Err(outcome) => {
            ctx.stats.count(outcome.result);
            return;
        }
    };
    let hostname = listener
        .smtp
        .hostname
        .clone()
        .unwrap_or_else(|| ctx.hostname.to_string());
    let log = CheckLog::new(Arc::clone(&ctx.screening.verdicts));
    let (admitted, reject_all) =
        match crate::session::screen(ctx, &mut stream, client, Some(&hostname), &log).await {
            Ok(screened) => screened,
            Err(outcome) => {
                ctx.stats.count(outcome.result);
                return;
            }
        };
    if !early.is_empty() {
        // The client spoke before our greeting (RFC 5321 4.3.1 forbids it).
        let reply = format!(
            "554 5.5.1 {} Protocol error: talking too early\r\n",
            ctx.hostname
        );
        refuse(&mut stream, &reply).await;
        ctx.stats.count_reply(ReplyPhase::Connect, 554);
        ctx.stats.count(ConnResult::Rejected);
        return;
    }
    if let Some(reply) = reject_all {
        // A pregreeter under `greet_action = "reject"`: every command is
        // refused, the backend is never asked.
        let smtp = &listener.smtp;
        crate::reputation::reject_all(
            &mut stream,
            &hostname,
            &reply,
            smtp.max_errors,
            smtp.command_timeout,
        )
        .await;
        ctx.stats.count_reply(ReplyPhase::Connect, reply.code);
        ctx.stats.count(ConnResult::Rejected);
        return;
    }
    let Some(pool) = ctx.pools.get(&listener.pool) else {
        let reply = format!("421 4.3.2 {} Service not available\r\n", ctx.hostname);
        refuse(&mut stream, &reply).await;
        ctx.stats.count_reply(ReplyPhase::Connect, 421);
        ctx.stats.count(ConnResult::Tempfail);
        return;
    };
    let relay_settings = pool.settings().relay.clone();
    let cache = shared.recipient_cache(pool.name(), &relay_settings);
    let identity = ClientIdentity {
        addr: client,
        destination,
        helo: String::new(),
        esmtp: false,
        tls: None,
        rdns: admitted.reverse_name.clone(),
    };
    let backend = Backend::new(
        Arc::clone(&pool),
        identity.clone(),
        OutboundSettings {
            identity: relay_settings.client_identity,
            tls: relay_settings.backend_tls,
            tls_name: relay_settings.backend_tls_name,
            ehlo_name: hostname.clone(),
            ..OutboundSettings::default()
        },
    );
    let settings = InboundSettings {
        hostname,
        max_message_size: listener.smtp.max_message_size,
        max_recipients: listener.smtp.max_recipients,
        max_errors: listener.smtp.max_errors,
        max_line: listener.smtp.max_line_length as usize,
        command_timeout: listener.smtp.command_timeout,
        data_timeout: listener.smtp.data_timeout,
        relay_domains: shared.relay_domains.load_full(),
    };
    let tls = listener
        .smtp
        .starttls
        .then(|| shared.tls.load_full())
        .flatten();
    let connection_checks = log.take_trail();
    let message_checks = message_checks(ctx, shared, &admitted, &settings.hostname);
    let relay = FilteringRelay::new(
        AuthenticatingRelay::new(
            CachingRelay::new(backend, cache),
            message_checks,
            log.clone(),
        ),
        &admitted,
        &ctx.screening,
        log,
    );
    let mut record = inbound::serve(stream, relay, &settings, identity, tls).await;
    record.checks = connection_checks;
    ctx.stats.count(ConnResult::Accepted);
    ctx.stats.count_replies(&record.replies);
    for t in &record.transactions {
        let counted = match t.result {
            TransactionResult::Accepted => Some(MessageResult::Accepted),
            TransactionResult::Rejected => Some(MessageResult::Rejected),
            TransactionResult::Tempfail => Some(MessageResult::Tempfail),
            TransactionResult::Abandoned => None,
        };
        if let Some(result) = counted {
            ctx.stats.count_message(result);
        }
        tracing::info!(
            listener = %listener.name,
            client = %client,
            from = %t.from,
            rcpts = t.rcpts.len(),
            size = t.size,
            server = t.server.as_deref().unwrap_or("-"),
            reply = t.final_reply.as_deref().unwrap_or("-"),
            checks = %t.checks,
            "message"
        );
    }
    tracing::info!(
        listener = %listener.name,
        client = %client,
        helo = record.helo.as_deref().unwrap_or("-"),
        tls = record.tls.as_deref().unwrap_or("-"),
        messages = record.transactions.len(),
        end = %record.end,
        checks = %record.checks,
        "smtp session"
    );
    if let Some(reports) = shared.reports.load_full() {
        let report = SessionReport {
            listener: listener.name.clone(),
            peer,
            client,
            started,
            ended: SystemTime::now(),
            record,
        };
        if reports.try_send(report).is_err() {
            shared.reports_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The end-of-data checks of a session, when `[auth]` asks for any and a
/// verifier exists (a resolver is set).
fn message_checks(
    ctx: &SessionContext,
    shared: &SmtpShared,
    admitted: &Admitted,
    hostname: &str,
) -> Option<MessageChecks> {
    let (auth, timeout) = admitted.auth()?;
    if !auth.checks_message() {
        return None;
    }
    Some(MessageChecks {
        authenticator: ctx.screening.authenticator()?,
        auth,
        timeout,
        authserv_id: hostname.to_string(),
        spool_dir: shared.spool_dir.load_full().map(|d| d.to_path_buf()),
    })
}

impl SmtpShared {
    /// The recipient cache of `pool` (a new one when its TTLs changed), or
    /// `None` when both TTLs are zero.
    fn recipient_cache(&self, pool: &str, relay: &RelaySettings) -> Option<Arc<RecipientCache>> {
        let (positive, negative) = (relay.recipient_positive_ttl, relay.recipient_negative_ttl);
        if positive.is_zero() && negative.is_zero() {
            return None;
        }
        let mut caches = self.recipient_caches.lock().expect("recipient caches lock");
        let cache = caches
            .entry(pool.to_string())
            .or_insert_with(|| Arc::new(RecipientCache::new(positive, negative)));
        if !cache.has_ttls(positive, negative) {
            *cache = Arc::new(RecipientCache::new(positive, negative));
        }
        Some(Arc::clone(cache))
    }

    /// Shares the STARTTLS identity with new sessions.
    pub fn set_tls(&self, tls: Option<Arc<rustls::ServerConfig>>) {
        self.tls.store(tls);
    }
}
