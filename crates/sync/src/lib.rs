//! Peer sync, network side: the protocol that ships the store's change log
//! between the two boxes of a pair (see `docs/sync.md`).
//!
//! - [`frame`]: length-prefixed postcard frames, at most 16 MiB, with a
//!   protocol version in the Hello.
//! - [`tls`]: mutual TLS 1.3; each node's key pair is generated on first
//!   start in the data dir and the peer is trusted only by a pinned SHA-256
//!   of its SubjectPublicKeyInfo.
//! - [`pairing`]: the one-time pairing code (`cluster pair` / `join`).
//! - [`session`]: push, acknowledge, resend after reconnect, anti-entropy.
//! - [`run`]: the task the service starts: accept on `listen`, dial `peer`
//!   with backoff, one connection per peer.

pub mod frame;
pub mod pairing;
pub mod session;
pub mod tls;

pub use session::{PeerStatus, Shared, Timing};
pub use tls::{Identity, Pin, Trust};

use mxgate_store::Store;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Most time for TCP connect plus the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// First reconnect delay; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest reconnect delay.
const MAX_BACKOFF: Duration = Duration::from_secs(3);
/// How often acknowledged tombstones are collected.
const COLLECT_EVERY: Duration = Duration::from_secs(60);

/// The `[sync]` settings of a node, resolved.
#[derive(Debug, Clone)]
pub struct Options {
    /// This node's name (node file `name`).
    pub name: String,
    /// Where to accept the peer's connections.
    pub listen: Option<SocketAddr>,
    /// Where to dial the peer.
    pub peer: Option<SocketAddr>,
    /// The peer's key pin; [`Pin::UNPAIRED`] when the node file has none
    /// (then, with [`start_with_pairing`], the pin stored by pairing).
    pub peer_pin: Pin,
    /// Timing of the sessions.
    pub timing: Timing,
}

/// Starts sync: binds `listen` (so a bind error is reported here), then
/// runs the accept and dial loops until `stop`. Returns the shared status.
///
/// # Errors
/// A message when the listen address cannot be bound or the TLS
/// configuration is refused.
pub async fn start(
    store: Arc<Store>,
    identity: &Identity,
    opts: Options,
    stop: CancellationToken,
) -> Result<(Arc<Shared>, tokio::task::JoinSet<()>), String> {
    start_with_pairing(store, identity, opts, None, stop).await
}

/// [`start`] with the data dir of the pairing files: when `opts.peer_pin`
/// is [`Pin::UNPAIRED`], the pin stored by pairing
/// ([`pairing::PEER_PIN_FILE`]) is trusted, re-read on every connection
/// attempt and handshake; and while a pairing is pending
/// ([`pairing::PAIRING_FILE`]) the listener accepts one unknown key that
/// proves the code (see [`pairing`]).
///
/// # Errors
/// As [`start`].
pub async fn start_with_pairing(
    store: Arc<Store>,
    identity: &Identity,
    opts: Options,
    data_dir: Option<PathBuf>,
    stop: CancellationToken,
) -> Result<(Arc<Shared>, tokio::task::JoinSet<()>), String> {
    let trust = Trust {
        peer_key: opts.peer_pin,
        data_dir,
    };
    let shared = Arc::new(Shared::default());
    let ctx = session::Context {
        store,
        name: opts.name.clone(),
        timing: opts.timing.clone(),
        shared: Arc::clone(&shared),
        stop: stop.clone(),
        trust: Some(trust.clone()),
    };
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(listen) = opts.listen {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| format!("[sync] listen {listen}: {e}"))?;
        let acceptor =
            tokio_rustls::TlsAcceptor::from(tls::server_config_trust(identity, trust.clone())?);
        tasks.spawn(accept_loop(
            listener,
            acceptor,
            identity.pin,
            trust.clone(),
            ctx.clone(),
        ));
    }
    if let Some(peer) = opts.peer {
        // Checked once here so that a bad key is reported at start.
        tls::client_config(identity, trust.current())?;
        tasks.spawn(dial_loop(peer, identity.clone(), trust, ctx.clone()));
    }
    tasks.spawn(housekeeping(ctx.clone()));
    info!(pin = %identity.pin, "sync started");
    Ok((shared, tasks))
}

/// While no session runs, keeps the peer's pending count current (a
/// session updates it itself); every [`COLLECT_EVERY`], collects the
/// tombstones every peer acknowledged (and those past the store's bounds).
async fn housekeeping(ctx: session::Context) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_collect = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = ctx.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let peer = ctx.shared.status().node;
        let collect = last_collect.elapsed() >= COLLECT_EVERY;
        if collect {
            last_collect = tokio::time::Instant::now();
        }
        let connected = ctx.shared.connected();
        let store = Arc::clone(&ctx.store);
        let result = tokio::task::spawn_blocking(move || {
            let pending = match peer {
                Some(p) if !connected => Some(store.sync_pending(p)?),
                _ => None,
            };
            if collect {
                let n = store.collect_tombstones()?;
                if n > 0 {
                    debug!(collected = n, "sync tombstones collected");
                }
            }
            Ok::<_, mxgate_store::StoreError>(pending)
        })
        .await;
        match result {
            Ok(Ok(Some(pending))) => ctx.shared.update(|s| s.pending = pending),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => warn!("sync housekeeping: {e}"),
            Err(e) => warn!("sync housekeeping: {e}"),
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    me: Pin,
    trust: Trust,
    ctx: session::Context,
) {
    loop {
        let accepted = tokio::select! {
            () = ctx.stop.cancelled() => return,
            a = listener.accept() => a,
        };
        let (tcp, from) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!("sync accept: {e}");
                tokio::time::sleep(MIN_BACKOFF).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let ctx = ctx.clone();
        let trust = trust.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    let reason = format!("sync peer {from} refused: TLS: {e}");
                    warn!("{reason}");
                    ctx.shared.refused(&reason);
                    return;
                }
                Err(_) => {
                    debug!("sync peer {from}: TLS handshake timed out");
                    return;
                }
            };
            let client = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| Pin::of_cert(c).ok());
            if let (Some(client), Some(dir)) = (client, trust.data_dir.as_deref()) {
                if client != trust.current() {
                    // Let through by a pending pairing: it may only pair.
                    serve_pairing(tls, from, me, client, dir.to_path_buf(), &ctx).await;
                    return;
                }
            }
            if let Err(e) = session::session(tls, &ctx, false, client).await {
                debug!("sync session from {from} ended: {e}");
            }
        });
    }
}

/// A connection from an unknown key let through by a pending pairing: the
/// first and only frame must be a valid [`frame::Frame::Pair`].
async fn serve_pairing<S>(
    mut tls: S,
    from: SocketAddr,
    me: Pin,
    client: Pin,
    dir: PathBuf,
    ctx: &session::Context,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use frame::Frame;
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, frame::read_payload(&mut tls)).await;
    let result = match first {
        Ok(Ok(Some(p))) => match frame::decode(&p) {
            Ok(Frame::Pair { proof }) => tokio::task::spawn_blocking(move || {
                pairing::accept(&dir, me, client, &proof, pairing::now_unix())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string())),
            _ => Err(format!(
                "sync key {client} is not paired: only a pairing (`mxgate cluster join`) \
                 is accepted from it"
            )),
        },
        Ok(Ok(None)) => Err("the connection ended before the pairing frame".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no pairing frame within 10 s".into()),
    };
    let answer = match result {
        Ok(()) => {
            info!(peer = %from, key = %client, "sync: paired; this key is now trusted");
            Frame::PairOk
        }
        Err(text) => {
            let reason = format!("sync pairing from {from} refused: {text}");
            warn!("{reason}");
            ctx.shared.refused(&reason);
            Frame::Error { text }
        }
    };
    let _ = frame::write_frame(&mut tls, &answer).await;
    let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
}

async fn dial_loop(peer: SocketAddr, identity: Identity, trust: Trust, ctx: session::Context) {
    let mut backoff = MIN_BACKOFF;
    let name = rustls::pki_types::ServerName::try_from(tls::SERVER_NAME).expect("static name");
    loop {
        if ctx.stop.is_cancelled() {
            return;
        }
        if ctx.shared.connected() {
            // The peer's own connection is up; dial again when it ends.
            backoff = MIN_BACKOFF;
            tokio::select! {
                () = ctx.stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(200)) => continue,
            }
        }
        // Re-read on each attempt: a pairing done meanwhile takes effect.
        let connector = match tls::client_config(&identity, trust.current()) {
            Ok(c) => tokio_rustls::TlsConnector::from(c),
            Err(e) => {
                warn!("sync: {e}");
                return;
            }
        };
        let attempt = async {
            let tcp = TcpStream::connect(peer)
                .await
                .map_err(|e| (false, e.to_string()))?;
            let _ = tcp.set_nodelay(true);
            connector
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| (true, format!("TLS: {e}")))
        };
        let result = tokio::select! {
            () = ctx.stop.cancelled() => return,
            r = tokio::time::timeout(HANDSHAKE_TIMEOUT, attempt) => r,
        };
        match result {
            Ok(Ok(tls)) => match run_dialed(tls, &ctx).await {
                Ok(()) | Err(session::SessionError::Stopped) => backoff = MIN_BACKOFF,
                Err(e) => {
                    debug!("sync session to {peer} ended: {e}");
                    if !matches!(
                        e,
                        session::SessionError::Closed | session::SessionError::Duplicate
                    ) {
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            },
            Ok(Err((tls_error, e))) => {
                if tls_error {
                    let reason = format!("sync peer {peer} refused: {e}");
                    warn!("{reason}");
                    ctx.shared.refused(&reason);
                } else {
                    debug!("sync peer {peer}: {e}");
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(_) => backoff = (backoff * 2).min(MAX_BACKOFF),
        }
        tokio::select! {
            () = ctx.stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
    }
}

/// Runs the session on a connection this node dialed.
async fn run_dialed(
    tls: tokio_rustls::client::TlsStream<TcpStream>,
    ctx: &session::Context,
) -> Result<(), session::SessionError> {
    let key = tls_peer_pin(&tls);
    session::session(tls, ctx, true, key).await
}

/// The pin of the key the server of `tls` authenticated with.
fn tls_peer_pin(tls: &tokio_rustls::client::TlsStream<TcpStream>) -> Option<Pin> {
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| Pin::of_cert(c).ok())
}

/// The data dir path of the node's sync identity files (for docs/CLI).
pub fn identity_files(data_dir: &std::path::Path) -> [PathBuf; 2] {
    [data_dir.join(tls::KEY_FILE), data_dir.join(tls::CERT_FILE)]
}
