//! The appliance service (`mxgate run`): the store, the pools, the gateway
//! and the HTTP listeners wired together, live reload of committed policy
//! changes, and signal handling (SIGTERM/SIGINT drain and stop, SIGHUP
//! reload).

use crate::{logging, Failure};
use anyhow::Context;
use mxgate_balance::Pools;
use mxgate_config::{NodeConfig, Policy};
use mxgate_gateway::Gateway;
use mxgate_store::Store;
use mxgate_web::AppState;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// How often the store is checked for changes committed by another process.
const STORE_POLL: Duration = Duration::from_millis(500);

/// `mxgate run`.
pub(crate) fn run(config: &Path, policy_file: Option<&Path>) -> Result<(), Failure> {
    let node = NodeConfig::load(config)?;
    let policy = policy_file.map(Policy::load).transpose()?;
    logging::init(&node.log);
    // Sessions run on the gateway's own worker threads; this runtime only
    // carries health checks, HTTP and the store watcher.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("mxgate-main")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = open_store(&node.data_dir)?;
        if let Some(policy) = &policy {
            store
                .replace_policy(policy)
                .context("cannot import the policy file into the store")?;
            tracing::info!(file = %policy_file.unwrap_or(Path::new("")).display(), "policy imported");
        }
        let service = Service::start(&node, store).await?;
        service.wait_for_signals(policy_file.map(Path::to_path_buf)).await?;
        service.stop(node.shutdown_grace).await;
        Ok(())
    })
}

/// Opens the store of `data_dir`, with the path in the error.
pub(crate) fn open_store(data_dir: &Path) -> anyhow::Result<Arc<Store>> {
    let store = Store::open(data_dir)
        .with_context(|| format!("cannot open the store in {}", data_dir.display()))?;
    Ok(Arc::new(store))
}

/// A running service.
pub(crate) struct Service {
    store: Arc<Store>,
    pools: Arc<Pools>,
    gateway: Arc<Gateway>,
    /// Stops the HTTP servers and the reload task.
    stop_aux: CancellationToken,
    aux: tokio::task::JoinSet<()>,
    /// Bound `/metrics` address.
    pub metrics_addr: Option<SocketAddr>,
    /// Bound web UI / API address (HTTPS).
    pub api_addr: Option<SocketAddr>,
    /// The one-time setup code while the store has no admin.
    pub setup_code: Option<String>,
    /// The virtual router, when the node file has `[vrrp]`.
    vrrp: Option<crate::vrrp::Vrrp>,
}

impl Service {
    /// Starts every part from the policy in `store`.
    ///
    /// # Errors
    /// A listener or HTTP address that cannot be bound, or an unreadable store.
    pub(crate) async fn start(node: &NodeConfig, store: Arc<Store>) -> anyhow::Result<Service> {
        let policy = store
            .policy()
            .context("cannot read the policy from the store")?;
        let pools = Pools::new();
        pools.apply(&policy.pools);
        let gateway = Gateway::new(Arc::clone(&pools), &node.name, node.workers)
            .context("cannot start the session workers")?;
        gateway.set_smtp_tls(Some(crate::tls::smtp_server_config(&store, &node.name)?));
        let (reports, reports_rx) = tokio::sync::mpsc::channel(crate::tracking::QUEUE);
        gateway.set_session_reports(reports);
        let resolver = resolver(node);
        gateway.set_resolver(resolver.clone());
        let spool = node.data_dir.join("spool");
        std::fs::create_dir_all(&spool)
            .with_context(|| format!("cannot create the spool directory {}", spool.display()))?;
        gateway.set_spool_dir(Some(spool));
        let stop_aux = CancellationToken::new();
        let mut aux = tokio::task::JoinSet::new();
        let (allowlist, maintain) =
            crate::allowlist::StoreAllowlist::start(Arc::clone(&store), stop_aux.clone());
        aux.spawn(maintain);
        gateway.set_temp_allowlist(Some(allowlist));
        gateway.set_greylist_backend(Some(Arc::new(crate::greylisting::StoreGreylist(
            Arc::clone(&store),
        ))));
        aux.spawn(crate::greylisting::purge(
            Arc::clone(&store),
            stop_aux.clone(),
        ));
        if let Err(errors) = gateway.apply(&policy) {
            pools.shutdown();
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::bail!("{}", text.join("; "));
        }
        let app = AppState::new(
            &node.name,
            env!("CARGO_PKG_VERSION"),
            Arc::clone(&gateway),
            Arc::clone(&pools),
            Arc::clone(&store),
        );
        app.set_git_revision(env!("MXGATE_GIT_REV"));
        if let Some(ring) = logging::ring() {
            app.set_logs(ring);
        }
        if let Some(resolver) = resolver {
            app.set_resolver(resolver);
        }
        let metrics_addr = node
            .metrics_listen
            .map(|addr| {
                let router = mxgate_web::metrics_router(app.clone());
                spawn_http(&mut aux, addr, router, &stop_aux)
            })
            .transpose()?;
        let api_addr = node
            .web_listen
            .map(|addr| spawn_web(&mut aux, node, addr, &app, &stop_aux))
            .transpose()?;
        let setup_code = announce_setup(&app)?;
        if let Some(settings) = &node.sync {
            start_sync(node, settings, &store, &app, &mut aux, &stop_aux).await?;
        }
        let vrrp = match &node.vrrp {
            Some(settings) => {
                Some(crate::vrrp::start(settings, &pools, &gateway, &store, &app).await?)
            }
            None => None,
        };
        aux.spawn(crate::tracking::writer(
            Arc::clone(&store),
            reports_rx,
            stop_aux.clone(),
        ));
        aux.spawn(follow_policy(
            Arc::clone(&store),
            Arc::clone(&pools),
            Arc::clone(&gateway),
            stop_aux.clone(),
        ));
        let watcher = store.spawn_watcher(STORE_POLL);
        let stop_watcher = stop_aux.clone();
        aux.spawn(async move {
            stop_watcher.cancelled().await;
            watcher.abort();
        });
        tracing::info!(
            node = %node.name,
            listeners = policy.listeners.len(),
            pools = policy.pools.len(),
            "mxgate started"
        );
        Ok(Service {
            store,
            pools,
            gateway,
            stop_aux,
            aux,
            metrics_addr,
            api_addr,
            setup_code,
            vrrp,
        })
    }

    /// The gateway (for addresses and counters).
    pub(crate) fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Waits for SIGTERM or SIGINT; SIGHUP re-imports `policy_file` (when the
    /// service was started with one) and re-reads the store.
    pub(crate) async fn wait_for_signals(
        &self,
        policy_file: Option<PathBuf>,
    ) -> anyhow::Result<()> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: stopping"); return Ok(()); }
                _ = int.recv() => { tracing::info!("SIGINT: stopping"); return Ok(()); }
                _ = hup.recv() => self.reload(policy_file.as_deref()),
            }
        }
    }

    /// SIGHUP: re-import the policy file if there is one, then re-read the store.
    fn reload(&self, policy_file: Option<&Path>) {
        tracing::info!("SIGHUP: reloading");
        if let Some(file) = policy_file {
            match Policy::load(file) {
                Ok(policy) => {
                    if let Err(e) = self.store.replace_policy(&policy) {
                        tracing::error!(error = %e, "policy not imported; the running policy is kept");
                    }
                }
                Err(errors) => {
                    for e in &errors.0 {
                        tracing::error!("{e}");
                    }
                    tracing::error!("invalid policy file; the running policy is kept");
                }
            }
        }
        if let Err(e) = self.store.refresh() {
            tracing::error!(error = %e, "cannot re-read the store");
        }
    }

    /// Stops accepting, leaves VRRP (the peer takes the VIPs at once),
    /// drains sessions for up to `grace`, then stops the rest.
    pub(crate) async fn stop(mut self, grace: Duration) {
        let gateway = Arc::clone(&self.gateway);
        let mut drain = std::pin::pin!(gateway.shutdown(grace));
        // The first poll stops every accept loop (before the drain's first
        // await); only then is the VIP given away.
        let drained = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::future::Future::poll(drain.as_mut(), cx).is_ready())
        })
        .await;
        if let Some(vrrp) = self.vrrp.take() {
            vrrp.stop().await;
        }
        if !drained {
            drain.await;
        }
        self.pools.shutdown();
        self.stop_aux.cancel();
        while self.aux.join_next().await.is_some() {}
        tracing::info!("mxgate stopped");
    }
}

/// The resolver of the DNSBL lookups, from the node's `[dns] servers` (the
/// system resolver when none is given); `None` (DNSBL off, logged) when it
/// cannot be built. Must be called inside the runtime.
fn resolver(node: &NodeConfig) -> Option<Arc<mxgate_dns::Resolver>> {
    let settings = mxgate_dns::ResolverSettings {
        servers: node.dns_servers.clone(),
        ..mxgate_dns::ResolverSettings::default()
    };
    match mxgate_dns::Resolver::new(&settings) {
        Ok(r) => Some(Arc::new(r)),
        Err(e) => {
            tracing::error!(error = %e, "no DNS resolver: DNSBL lookups are off");
            None
        }
    }
}

/// Starts peer sync (`[sync]`): loads or creates this node's sync key,
/// binds `listen`, dials `peer`, and shows it in status and metrics.
async fn start_sync(
    node: &NodeConfig,
    settings: &mxgate_config::node::SyncSettings,
    store: &Arc<Store>,
    app: &AppState,
    aux: &mut tokio::task::JoinSet<()>,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    if settings.peer_key.is_none()
        && !matches!(
            mxgate_sync::pairing::stored_pin(&node.data_dir),
            Ok(Some(_))
        )
    {
        tracing::warn!(
            "[sync] has no peer_key and no pairing was done: every peer is refused until \
             the boxes are paired (`mxgate cluster pair` on this box, `mxgate cluster join` \
             on the other; or `mxgate cluster pin` on each, as peer_key on the other)"
        );
    }
    let identity = mxgate_sync::Identity::load_or_create(&node.data_dir)
        .map_err(anyhow::Error::msg)
        .context("cannot load or create the sync key")?;
    let opts = mxgate_sync::Options {
        name: node.name.clone(),
        listen: settings.listen,
        peer: settings.peer,
        // The node file's key wins; without it the pin stored by pairing
        // (re-read on each connection, so a pairing needs no restart).
        peer_pin: settings
            .peer_key
            .map_or(mxgate_sync::Pin::UNPAIRED, mxgate_sync::Pin),
        timing: mxgate_sync::Timing::default(),
    };
    let (shared, mut tasks) = mxgate_sync::start_with_pairing(
        Arc::clone(store),
        &identity,
        opts,
        Some(node.data_dir.clone()),
        stop.clone(),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let peer = settings
        .peer
        .map_or_else(|| "inbound".to_string(), |p| p.to_string());
    app.set_sync(&peer, shared);
    aux.spawn(async move { while tasks.join_next().await.is_some() {} });
    Ok(())
}

/// When the store has no admin: draws the setup code, logs it and prints
/// it on the console (`setup code: XXXX-XXXX`), for the setup page.
fn announce_setup(app: &AppState) -> anyhow::Result<Option<String>> {
    let code = app
        .prepare_setup()
        .context("cannot read the web UI's users from the store")?;
    if let Some(code) = &code {
        tracing::warn!(
            "no admin yet: open the web UI's setup page and enter the setup code; setup code: {code}"
        );
        println!("setup code: {code}");
    }
    Ok(code)
}

/// Binds `addr` and serves the web UI and API on it over HTTPS until
/// `stop`, with the certificate in `<data_dir>/web` (made on first start).
fn spawn_web(
    tasks: &mut tokio::task::JoinSet<()>,
    node: &NodeConfig,
    addr: SocketAddr,
    app: &AppState,
    stop: &CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let tls = mxgate_web::tls::server_config(&node.data_dir, &node.name, Some(addr.ip()))
        .context("cannot set up the web UI's TLS certificate")?;
    let listener = bind(addr)?;
    let bound = listener.local_addr()?;
    let router = mxgate_web::web_router(app.clone());
    let stop = stop.clone();
    tasks.spawn(async move {
        let shutdown = async move { stop.cancelled().await };
        if let Err(e) = mxgate_web::serve_https(listener, tls, router, shutdown).await {
            tracing::error!(addr = %bound, error = %e, "web listener failed");
        }
    });
    tracing::info!(url = %format!("https://{bound}/"), "web UI listening");
    Ok(bound)
}

/// Binds a TCP listener for HTTP.
fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    std::net::TcpListener::bind(addr)
        .and_then(|l| {
            l.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(l)
        })
        .with_context(|| format!("cannot bind HTTP listener {addr}"))
}

/// Binds `addr` and serves `router` on it until `stop`.
fn spawn_http(
    tasks: &mut tokio::task::JoinSet<()>,
    addr: SocketAddr,
    router: axum::Router,
    stop: &CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = bind(addr)?;
    let bound = listener.local_addr()?;
    let stop = stop.clone();
    tasks.spawn(async move {
        if let Err(e) =
            mxgate_web::serve(listener, router, async move { stop.cancelled().await }).await
        {
            tracing::error!(addr = %bound, error = %e, "HTTP listener failed");
        }
    });
    Ok(bound)
}

/// Applies every policy the store publishes to the pools and listeners.
async fn follow_policy(
    store: Arc<Store>,
    pools: Arc<Pools>,
    gateway: Arc<Gateway>,
    stop: CancellationToken,
) {
    let mut changes = store.subscribe();
    changes.mark_unchanged();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            r = changes.changed() => if r.is_err() { return },
        }
        let policy = Arc::clone(&changes.borrow_and_update());
        pools.apply(&policy.pools);
        match gateway.apply(&policy) {
            Ok(()) => tracing::info!("policy change applied"),
            Err(errors) => {
                for e in errors {
                    tracing::error!("policy change applied except: {e}");
                }
            }
        }
    }
}
