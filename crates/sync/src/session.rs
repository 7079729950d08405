//! The sync loop: one connection per peer, over any byte stream (mutual
//! TLS in production, see [`run`]).
//!
//! After the Hello exchange each side pushes its change log from the
//! position the peer last acknowledged (`Store::sync_peer_acked`), one batch
//! in flight at a time, polling the log every `push_interval`. The receiver
//! applies each batch in one transaction (`Store::apply_remote`) and acks
//! it; the sender records the ack with `Store::sync_ack`. Anti-entropy:
//! each side sends its digests once caught up and every `digest_interval`;
//! a side that is itself caught up and receives a digest from a caught-up
//! peer ("quiet") that differs from its own asks for a full resend
//! ([`Frame::NeedTable`]): the peer resends its whole log from position 0
//! in a new epoch, and last-writer-wins makes that safe and idempotent.
//!
//! Batches of one epoch must be contiguous (`after_seq` is the previous
//! batch's `last_seq`): a replayed or reordered batch closes the
//! connection. Any protocol error sends an [`Frame::Error`] when it can,
//! closes the connection and is counted; the store is never partly
//! applied.

use crate::frame::{self, Frame, FrameError, PROTOCOL_VERSION};
use crate::tls::{Pin, Trust};
use mxgate_store::{Batch, NodeId, Store, MAX_BATCH_CHANGES};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite, WriteHalf};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// This build's store schema version, as the Hello carries it.
const SCHEMA_VERSION: u32 = mxgate_store::SCHEMA_VERSION as u32;

/// How often a session sends [`Frame::Ping`] (and checks that the peer
/// was heard from).
const PING_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A peer silent this long is taken for gone and the session ends (TCP
/// alone would take many minutes to notice a cut cable). Longer than the
/// apply of the largest batch, during which the peer sends nothing.
const SILENT_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How often a session checks that the peer's key is still trusted.
const TRUST_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Timing of a session.
#[derive(Debug, Clone)]
pub struct Timing {
    /// How often the local log is polled for new changes.
    pub push_interval: Duration,
    /// How often digests are exchanged.
    pub digest_interval: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            push_interval: Duration::from_millis(50),
            digest_interval: Duration::from_secs(30),
        }
    }
}

/// What the status page and the metrics show about the peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer's node id, once a Hello was received.
    pub node: Option<NodeId>,
    /// The peer's name from its Hello.
    pub name: Option<String>,
    /// A session is established.
    pub up: bool,
    /// When a batch from the peer was last applied (Unix ms).
    pub last_sync_unix_ms: Option<u64>,
    /// Wall clock at apply minus the physical time of the newest change of
    /// the last applied batch (ms, 0 if negative).
    pub lag_ms: Option<u64>,
    /// Local changes the peer has not acknowledged.
    pub pending: u64,
    /// Conflicts resolved (`ApplyReport::conflicts` summed).
    pub conflicts_total: u64,
    /// Connections closed for a protocol or trust error.
    pub refused_total: u64,
    /// The last refusal, for logs and the status page.
    pub last_error: Option<String>,
}

/// State shared by the sessions of one peer and read by the service.
#[derive(Debug, Default)]
pub struct Shared {
    status: Mutex<PeerStatus>,
    slot: Mutex<Option<Slot>>,
    next_id: AtomicU64,
}

#[derive(Debug)]
struct Slot {
    id: u64,
    dialer: NodeId,
    cancel: CancellationToken,
}

impl Shared {
    /// A snapshot of the peer's status.
    pub fn status(&self) -> PeerStatus {
        self.lock_status().clone()
    }

    /// True while a session holds the peer's slot.
    pub fn connected(&self) -> bool {
        self.slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut PeerStatus)) {
        f(&mut self.lock_status());
    }

    /// Counts a refused connection and keeps its reason.
    pub(crate) fn refused(&self, reason: &str) {
        self.update(|s| {
            s.refused_total += 1;
            s.last_error = Some(reason.to_string());
        });
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, PeerStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the slot for a session dialed by `dialer`: one connection per
    /// peer. The connection dialed by the lower node id wins (both sides
    /// apply the same rule, so they keep the same one); a new connection
    /// from the same dialer replaces the old one (which is stale).
    fn register(&self, dialer: NodeId) -> Option<(u64, CancellationToken)> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = slot.as_ref() {
            if dialer > old.dialer {
                return None;
            }
            old.cancel.cancel();
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let cancel = CancellationToken::new();
        *slot = Some(Slot {
            id,
            dialer,
            cancel: cancel.clone(),
        });
        Some((id, cancel))
    }

    fn unregister(&self, id: u64) {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|s| s.id == id) {
            *slot = None;
            self.update(|s| s.up = false);
        }
    }
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The connection ended.
    #[error("sync peer closed the connection")]
    Closed,
    /// Stopped (service shutdown, or replaced by a preferred connection).
    #[error("sync session stopped")]
    Stopped,
    /// Another connection to the same peer is kept.
    #[error("duplicate sync connection (the one dialed by the lower node id is kept)")]
    Duplicate,
    /// A frame could not be read.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The peer broke the protocol or sent a refused batch.
    #[error("sync protocol error: {0}")]
    Protocol(String),
    /// The peer sent an Error frame.
    #[error("sync peer refused: {0}")]
    PeerRefused(String),
    /// Nothing was heard from the peer for too long.
    #[error("sync peer silent for {0} s: taken for gone")]
    Silent(u64),
    /// The peer's key stopped being the trusted one during the session
    /// (a new pairing replaced it).
    #[error("sync peer key {0} is no longer trusted (a new pairing replaced it)")]
    Untrusted(Pin),
    /// The local store failed.
    #[error("local store: {0}")]
    Store(String),
}

impl SessionError {
    /// True for errors that are the peer's fault (counted as refusals).
    pub fn is_refusal(&self) -> bool {
        // An I/O error (a reset, an end without TLS close_notify, a
        // duplicate connection closed by the peer) is not the peer's fault.
        matches!(
            self,
            SessionError::Frame(
                FrameError::Oversize { .. } | FrameError::Truncated | FrameError::Malformed(_)
            ) | SessionError::Protocol(_)
                | SessionError::PeerRefused(_)
                | SessionError::Untrusted(_)
        )
    }
}

/// Everything a session needs.
#[derive(Clone)]
pub struct Context {
    /// The local store.
    pub store: Arc<Store>,
    /// This node's name (sent in Hello).
    pub name: String,
    /// Timing.
    pub timing: Timing,
    /// Status and connection slot of the peer.
    pub shared: Arc<Shared>,
    /// Stops every session.
    pub stop: CancellationToken,
    /// Which key is trusted now, re-checked every second during a session
    /// that [`session`] was given the peer's key for.
    pub trust: Option<Trust>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, mxgate_store::StoreError> + Send + 'static,
) -> Result<T, mxgate_store::StoreError> {
    let store = Arc::clone(store);
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

fn store_err(e: mxgate_store::StoreError) -> SessionError {
    SessionError::Store(e.to_string())
}

/// Runs one session on an established stream until it ends. `outgoing`
/// is true when this node dialed. `peer_key` is the pin of the key the
/// peer authenticated with: the session ends as soon as `ctx.trust` no
/// longer trusts it.
///
/// # Errors
/// Why the session ended ([`SessionError::Stopped`] on shutdown).
pub async fn session<S>(
    stream: S,
    ctx: &Context,
    outgoing: bool,
    peer_key: Option<Pin>,
) -> Result<(), SessionError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let me = ctx.store.sync_node_id().map_err(store_err)?;
    let (mut rd, mut wr) = tokio::io::split(stream);
    frame::write_frame(
        &mut wr,
        &Frame::Hello {
            protocol_version: PROTOCOL_VERSION,
            schema_version: SCHEMA_VERSION,
            node: me,
            name: ctx.name.clone(),
        },
    )
    .await?;
    let payload = match frame::read_payload(&mut rd).await {
        Ok(Some(p)) => p,
        Ok(None) => return Err(SessionError::Closed),
        Err(e) => {
            let e = SessionError::from(e);
            if e.is_refusal() {
                ctx.shared.refused(&e.to_string());
            }
            return Err(e);
        }
    };
    let (peer, peer_name) = match frame::hello_version(&payload) {
        None => {
            match frame::decode(&payload) {
                Ok(Frame::Error { text }) => {
                    warn!("sync peer refused: {text}");
                    ctx.shared.refused(&text);
                    return Err(SessionError::PeerRefused(text));
                }
                Ok(Frame::Pair { .. }) if !outgoing => {
                    let text = format!(
                        "no pairing needed: {} already trusts this key \
                         (a pairing code is good for one use)",
                        ctx.name
                    );
                    return refuse(ctx, &mut wr, text).await;
                }
                _ => {}
            }
            return refuse(ctx, &mut wr, "expected a Hello frame first".into()).await;
        }
        Some(v) if v != PROTOCOL_VERSION => {
            let text = format!(
                "sync protocol version {v} is not supported: this node ({}) speaks version {PROTOCOL_VERSION}",
                ctx.name
            );
            return refuse(ctx, &mut wr, text).await;
        }
        Some(_) => match frame::decode(&payload) {
            Ok(Frame::Hello {
                schema_version,
                node,
                name,
                ..
            }) if schema_version == SCHEMA_VERSION => (node, name),
            Ok(Frame::Hello { schema_version, .. }) => {
                let text = format!(
                    "the peer's store schema is version {schema_version} and this node's ({}) \
                     is {SCHEMA_VERSION}: run the same mxgate on both boxes (changes wait in \
                     the log and sync when both match)",
                    ctx.name
                );
                return refuse(ctx, &mut wr, text).await;
            }
            _ => return refuse(ctx, &mut wr, "expected a Hello frame first".into()).await,
        },
    };
    if peer == me {
        return same_node_id(ctx, &mut wr, me, &peer_name).await;
    }
    if let Some(known) = ctx.shared.status().node {
        if known != peer {
            info!(old = known.0, new = peer.0, "sync peer node id changed");
        }
    }
    let dialer = if outgoing { me } else { peer };
    let Some((id, cancel)) = ctx.shared.register(dialer) else {
        debug!(peer = %peer_name, "duplicate sync connection closed");
        return Err(SessionError::Duplicate);
    };
    ctx.shared.update(|s| {
        s.node = Some(peer);
        s.name = Some(peer_name.clone());
        s.up = true;
    });
    info!(peer = %peer_name, node = peer.0, outgoing, "sync peer connected");
    let (tx, rx) = mpsc::channel(4);
    let started = tokio::time::Instant::now();
    let heard = Arc::new(AtomicU64::new(0));
    let heard_by_reader = Arc::clone(&heard);
    let reader = tokio::spawn(async move {
        loop {
            let read = frame::read_payload(&mut rd).await;
            let since_start = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            heard_by_reader.store(since_start, Ordering::Relaxed);
            let r = match read {
                Ok(Some(p)) => frame::decode(&p).map(Some),
                Ok(None) => Ok(None),
                Err(e) => Err(e),
            };
            let end = !matches!(r, Ok(Some(_)));
            if tx.send(r).await.is_err() || end {
                return;
            }
        }
    });
    let mut run = Running {
        ctx,
        peer,
        peer_key,
        started,
        heard,
        wr,
        cursor: 0,
        epoch: 0,
        inflight: None,
        resend: false,
        recv: None,
        caught_up_digest_sent: false,
        last_pending_check: None,
    };
    let result = tokio::select! {
        r = run.main(rx) => r,
        () = cancel.cancelled() => Err(SessionError::Stopped),
    };
    reader.abort();
    ctx.shared.unregister(id);
    if let Err(e) = &result {
        if e.is_refusal() {
            if !matches!(e, SessionError::PeerRefused(_)) {
                let _ = frame::write_frame(
                    &mut run.wr,
                    &Frame::Error {
                        text: e.to_string(),
                    },
                )
                .await;
            }
            ctx.shared.refused(&e.to_string());
        }
    }
    info!(peer = %peer_name, "sync peer disconnected");
    result
}

/// The peer has this node's id: one database was copied onto the other
/// box (a restored backup). The node whose name sorts first draws a new
/// id and both reconnect; same names are refused (names must differ).
async fn same_node_id<W: AsyncWrite + Unpin>(
    ctx: &Context,
    wr: &mut W,
    me: NodeId,
    peer_name: &str,
) -> Result<(), SessionError> {
    if ctx.name == peer_name {
        let text = format!(
            "the peer has this node's id {} and name {peer_name:?} (a copy of this box's \
             database and node file?): give the boxes different names",
            me.0
        );
        return refuse(ctx, wr, text).await;
    }
    if ctx.name.as_str() < peer_name {
        let new = blocking(&ctx.store, |s| s.sync_redraw_node_id())
            .await
            .map_err(store_err)?;
        warn!(
            old = me.0,
            new = new.0,
            peer = %peer_name,
            "sync: the peer has this node's id (a copied database); this node drew a new id"
        );
    } else {
        info!(peer = %peer_name, "sync: the peer has this node's id; it draws a new one");
    }
    Err(SessionError::Closed)
}

async fn refuse<W: AsyncWrite + Unpin>(
    ctx: &Context,
    wr: &mut W,
    text: String,
) -> Result<(), SessionError> {
    warn!("{text}");
    ctx.shared.refused(&text);
    let _ = frame::write_frame(wr, &Frame::Error { text: text.clone() }).await;
    Err(SessionError::Protocol(text))
}

struct Running<'a, S> {
    ctx: &'a Context,
    peer: NodeId,
    peer_key: Option<Pin>,
    /// When the session started, and when the peer was last heard from
    /// (ms after `started`, written by the reader task).
    started: tokio::time::Instant,
    heard: Arc<AtomicU64>,
    wr: WriteHalf<S>,
    /// Next push continues after this log position.
    cursor: u64,
    epoch: u32,
    /// `last_seq` of the batch sent and not yet acknowledged.
    inflight: Option<u64>,
    /// The peer asked for a full resend.
    resend: bool,
    /// The peer's epoch and last applied position.
    recv: Option<(u32, u64)>,
    caught_up_digest_sent: bool,
    last_pending_check: Option<tokio::time::Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Running<'_, S> {
    async fn main(
        &mut self,
        mut rx: mpsc::Receiver<Result<Option<Frame>, FrameError>>,
    ) -> Result<(), SessionError> {
        let peer = self.peer;
        self.cursor = blocking(&self.ctx.store, move |s| s.sync_peer_acked(peer))
            .await
            .map_err(store_err)?;
        let mut push = tokio::time::interval(self.ctx.timing.push_interval);
        push.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let start = tokio::time::Instant::now() + self.ctx.timing.digest_interval;
        let mut digest = tokio::time::interval_at(start, self.ctx.timing.digest_interval);
        let mut trust_check = tokio::time::interval(TRUST_CHECK);
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.ctx.stop.cancelled() => return Err(SessionError::Stopped),
                _ = trust_check.tick() => self.check_trust()?,
                _ = ping.tick() => self.keepalive().await?,
                msg = rx.recv() => match msg {
                    None | Some(Ok(None)) => return Err(SessionError::Closed),
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(Some(frame))) => self.handle(frame).await?,
                },
                _ = push.tick() => self.push().await?,
                _ = digest.tick() => self.send_digest().await?,
            }
        }
    }

    /// Sends a ping; ends the session when the peer has been silent for
    /// [`SILENT_LIMIT`].
    async fn keepalive(&mut self) -> Result<(), SessionError> {
        let heard = std::time::Duration::from_millis(self.heard.load(Ordering::Relaxed));
        let silent = self.started.elapsed().saturating_sub(heard);
        if silent > SILENT_LIMIT {
            return Err(SessionError::Silent(silent.as_secs()));
        }
        self.send(&Frame::Ping).await
    }

    /// Ends the session when the peer's key is no longer the trusted one.
    fn check_trust(&self) -> Result<(), SessionError> {
        match (self.peer_key, &self.ctx.trust) {
            (Some(key), Some(trust)) if trust.current() != key => Err(SessionError::Untrusted(key)),
            _ => Ok(()),
        }
    }

    async fn send(&mut self, frame: &Frame) -> Result<(), SessionError> {
        frame::write_frame(&mut self.wr, frame).await?;
        Ok(())
    }

    async fn pending(&mut self) -> Result<u64, SessionError> {
        let peer = self.peer;
        let pending = blocking(&self.ctx.store, move |s| s.sync_pending(peer))
            .await
            .map_err(store_err)?;
        self.ctx.shared.update(|s| s.pending = pending);
        Ok(pending)
    }

    async fn push(&mut self) -> Result<(), SessionError> {
        if self.inflight.is_some() {
            return Ok(());
        }
        if self.resend {
            self.resend = false;
            self.cursor = 0;
            self.epoch += 1;
            info!(
                epoch = self.epoch,
                "sync: resending the whole log (anti-entropy)"
            );
        }
        let after = self.cursor;
        let batch: Batch = blocking(&self.ctx.store, move |s| {
            s.sync_changes_since(after, MAX_BATCH_CHANGES)
        })
        .await
        .map_err(store_err)?;
        if batch.changes.is_empty() {
            let due = self
                .last_pending_check
                .is_none_or(|t| t.elapsed() >= Duration::from_millis(500));
            if due {
                self.last_pending_check = Some(tokio::time::Instant::now());
                self.pending().await?;
            }
            if !self.caught_up_digest_sent {
                self.caught_up_digest_sent = true;
                self.send_digest().await?;
            }
            return Ok(());
        }
        self.inflight = Some(batch.last_seq);
        let frame = Frame::Changes {
            epoch: self.epoch,
            after_seq: after,
            batch,
        };
        self.send(&frame).await
    }

    async fn send_digest(&mut self) -> Result<(), SessionError> {
        // Digests first, then the pending count: a local write between the
        // two makes the digest "not quiet" rather than quiet and ahead.
        let tables = blocking(&self.ctx.store, |s| s.sync_digest())
            .await
            .map_err(store_err)?;
        let quiet = self.inflight.is_none() && self.pending().await? == 0;
        self.send(&Frame::Digest { tables, quiet }).await
    }

    async fn handle(&mut self, frame: Frame) -> Result<(), SessionError> {
        match frame {
            Frame::Hello { .. } => Err(SessionError::Protocol("a second Hello".into())),
            Frame::Ping => Ok(()),
            Frame::Pair { .. } | Frame::PairOk => Err(SessionError::Protocol(
                "a pairing frame inside a session".into(),
            )),
            Frame::Error { text } => {
                warn!("sync peer refused: {text}");
                Err(SessionError::PeerRefused(text))
            }
            Frame::Ack { up_to } => {
                if self.inflight != Some(up_to) {
                    return Err(SessionError::Protocol(format!(
                        "ack of position {up_to}, expected {:?}",
                        self.inflight
                    )));
                }
                let peer = self.peer;
                blocking(&self.ctx.store, move |s| s.sync_ack(peer, up_to))
                    .await
                    .map_err(store_err)?;
                self.cursor = up_to;
                self.inflight = None;
                Ok(())
            }
            Frame::NeedTable { table } => {
                info!(%table, "sync peer reports a digest mismatch: full resend");
                self.resend = true;
                Ok(())
            }
            Frame::Digest { tables, quiet } => {
                if !quiet || self.inflight.is_some() || self.resend {
                    return Ok(());
                }
                // Digests first, then the pending count (see send_digest).
                let mine = blocking(&self.ctx.store, |s| s.sync_digest())
                    .await
                    .map_err(store_err)?;
                if self.pending().await? != 0 {
                    return Ok(());
                }
                let differs = mine
                    .iter()
                    .find(|(t, d)| tables.get(*t) != Some(*d))
                    .map(|(t, _)| t.clone())
                    .or_else(|| tables.keys().find(|t| !mine.contains_key(*t)).cloned());
                if let Some(table) = differs {
                    warn!(%table, "sync digest mismatch with the peer: asking for a full resend");
                    self.send(&Frame::NeedTable { table }).await?;
                }
                Ok(())
            }
            Frame::Changes {
                epoch,
                after_seq,
                batch,
            } => self.apply(epoch, after_seq, batch).await,
        }
    }

    async fn apply(
        &mut self,
        epoch: u32,
        after_seq: u64,
        batch: Batch,
    ) -> Result<(), SessionError> {
        if batch.from != self.peer {
            return Err(SessionError::Protocol(format!(
                "a batch from node {} on the connection of node {}",
                batch.from.0, self.peer.0
            )));
        }
        if batch.changes.is_empty() || batch.last_seq <= after_seq {
            return Err(SessionError::Protocol("an empty or backwards batch".into()));
        }
        match self.recv {
            Some((e, _)) if epoch > e => {}
            Some((e, applied)) if epoch == e && after_seq == applied => {}
            None => {}
            Some((e, applied)) => {
                return Err(SessionError::Protocol(format!(
                    "replayed or out-of-order batch (epoch {epoch} after {after_seq}; \
                     expected epoch {e} after {applied} or a newer epoch)"
                )))
            }
        }
        let newest = batch.changes.iter().map(|c| c.hlc.physical_ms()).max();
        let up_to = batch.last_seq;
        let report = blocking(&self.ctx.store, move |s| s.apply_remote(&batch))
            .await
            .map_err(|e| match e {
                mxgate_store::StoreError::Sync(e) => SessionError::Protocol(e.to_string()),
                e => SessionError::Store(e.to_string()),
            })?;
        self.recv = Some((epoch, up_to));
        self.send(&Frame::Ack { up_to }).await?;
        if report.conflicts > 0 {
            info!(
                conflicts = report.conflicts,
                "sync: concurrent edits resolved (last writer wins)"
            );
        }
        if let Some(reason) = &report.invalid_policy {
            warn!("sync: the merged policy does not validate (kept, not published): {reason}");
        }
        let now = now_ms();
        self.ctx.shared.update(|s| {
            s.conflicts_total += report.conflicts as u64;
            s.last_sync_unix_ms = Some(now);
            s.lag_ms = newest.map(|n| now.saturating_sub(n));
        });
        Ok(())
    }
}
