//! `mxgate demo` (the embedded default: a gateway balancing over two built-in
//! sink MTAs on loopback, nothing to install) and `mxgate sink`.

use crate::service::{open_store, Service};
use crate::{logging, Failure};
use anyhow::Context;
use clap::Args;
use mxgate_config::{NodeConfig, Policy};
use mxgate_sink::SinkOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// `mxgate demo` options.
#[derive(Args)]
pub(crate) struct DemoArgs {
    /// l4 listener of the gateway (port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:2525")]
    smtp: SocketAddr,
    /// smtp-mode listener of the gateway (port 0 = any free port).
    #[arg(long, default_value = "127.0.0.1:2526")]
    smtp_mode: SocketAddr,
    /// `/metrics` and `/healthz` listener.
    #[arg(long, default_value = "127.0.0.1:9100")]
    metrics: SocketAddr,
    /// Web UI and JSON API listener (HTTPS; plain HTTP on it is redirected).
    #[arg(long, alias = "web", default_value = "127.0.0.1:8025")]
    api: SocketAddr,
    /// Keep data and mail here instead of a temporary directory removed on exit.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// `mxgate demo`.
pub(crate) fn run(args: DemoArgs) -> Result<(), Failure> {
    logging::init("info");
    let temp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.clone()
        }
        None => {
            temp = tempfile::Builder::new()
                .prefix("mxgate-demo-")
                .tempdir()
                .context("cannot create a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(demo(&args, &dir))?;
    Ok(())
}

async fn demo(args: &DemoArgs, dir: &Path) -> Result<(), Failure> {
    let stop_sinks = CancellationToken::new();
    let mut sinks = tokio::task::JoinSet::new();
    let mut sink_addrs = Vec::new();
    for name in ["mta1", "mta2"] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind a sink")?;
        sink_addrs.push(listener.local_addr().context("sink address")?);
        let options = SinkOptions {
            hostname: format!("{name}.demo.test"),
            maildir: Some(dir.join(name)),
            accept_proxy: true,
            ..SinkOptions::default()
        };
        let stop = stop_sinks.clone();
        sinks.spawn(async move {
            if let Err(e) =
                mxgate_sink::serve(listener, options, async move { stop.cancelled().await }).await
            {
                tracing::error!(error = %e, "demo sink failed");
            }
        });
    }
    let policy_text = demo_policy(
        concrete_port(args.smtp)?,
        concrete_port(args.smtp_mode)?,
        &sink_addrs,
    );
    let policy_path = dir.join("demo-policy.toml");
    std::fs::write(&policy_path, &policy_text).context("cannot write the demo policy")?;
    let policy = Policy::parse(&policy_text).map_err(|e| e.in_file(&policy_path))?;
    let node = NodeConfig {
        name: "demo".to_string(),
        data_dir: dir.join("data"),
        shutdown_grace: Duration::from_secs(10),
        workers: 0,
        log: "info".to_string(),
        web_listen: Some(args.api),
        metrics_listen: Some(args.metrics),
        dns_servers: Vec::new(),
        vrrp: None,
        sync: None,
    };
    let store = open_store(&node.data_dir)?;
    store
        .replace_policy(&policy)
        .context("cannot store the demo policy")?;
    let service = Service::start(&node, store).await?;
    print_banner(dir, &node.data_dir, &service, &policy_path);
    service.wait_for_signals(Some(policy_path)).await?;
    service.stop(node.shutdown_grace).await;
    stop_sinks.cancel();
    while sinks.join_next().await.is_some() {}
    Ok(())
}

/// A policy names real ports: for port 0, ask the kernel for a free one now.
fn concrete_port(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let probe = std::net::TcpListener::bind(addr).with_context(|| format!("cannot bind {addr}"))?;
    Ok(probe.local_addr()?)
}

/// The demo's policy: an l4 and an smtp-mode listener over a pool of the two
/// sinks, which read the PROXY v2 header and record the real client address.
fn demo_policy(smtp: SocketAddr, smtp_mode: SocketAddr, sinks: &[SocketAddr]) -> String {
    let mut text = String::from(
        "# mxgate demo policy: edit and send SIGHUP (or Ctrl-C and restart) to change it.\n\
         [relay]\ndomains = [\"example.test\"]\n\n\
         [[pool]]\nname = \"demo\"\nbalance = \"roundrobin\"\n\
         client_identity = \"proxy_v2\"\nbackend_tls = \"off\"\n\
         check = { interval_ms = 1000, timeout_ms = 1000, fall = 2, rise = 2 }\n",
    );
    for (i, addr) in sinks.iter().enumerate() {
        text.push_str(&format!(
            "\n[[pool.server]]\nname = \"mta{}\"\naddress = \"{addr}\"\n",
            i + 1
        ));
    }
    text.push_str(&format!(
        "\n[[listener]]\nname = \"mx\"\nbind = \"{smtp}\"\nmode = \"l4\"\npool = \"demo\"\nsend_proxy = \"v2\"\n\
         \n[[listener]]\nname = \"mx-smtp\"\nbind = \"{smtp_mode}\"\nmode = \"smtp\"\npool = \"demo\"\n"
    ));
    text
}

fn print_banner(dir: &Path, data_dir: &Path, service: &Service, policy: &Path) {
    let listeners = service.gateway().listeners();
    let addr = |name: &str| {
        listeners
            .iter()
            .find(|l| l.name == name)
            .and_then(|l| l.local_addr)
            .map_or("(off)".to_string(), |a| a.to_string())
    };
    let (l4, smtp) = (addr("mx"), addr("mx-smtp"));
    let show = |a: Option<SocketAddr>| a.map_or("(off)".to_string(), |a| a.to_string());
    let api = show(service.api_addr);
    let cert = mxgate_web::tls::web_dir(data_dir).join(mxgate_web::tls::CERT_FILE);
    let setup = service.setup_code.as_deref().map_or_else(
        || "(an admin exists already: log in)".to_string(),
        |code| format!("{code}   (open the web UI; it asks for this code once)"),
    );
    println!(
        "\nmxgate demo is running: a gateway balancing over two sink MTAs.\n\
         \n  SMTP, l4 mode (PROXY v2 to the sinks)    {l4}\
         \n  SMTP, smtp mode (STARTTLS, relay check)  {smtp}\
         \n  web UI (HTTPS, self-signed certificate)  https://{api}/\
         \n  setup code                               {setup}\
         \n  web certificate                          {}\
         \n  metrics                                  http://{}/metrics\
         \n  policy                                   {}\
         \n  mail lands in                            {}/mta1/new and {}/mta2/new\
         \n\nSend a test message (relay domain: example.test):\
         \n  swaks --server {l4} --from demo@example.test --to postmaster@example.test\
         \n  swaks --server {smtp} --tls --from demo@example.test --to postmaster@example.test\
         \nThe JSON API (after the setup, with the admin you created):\
         \n  curl -s --cacert {0} -c jar -H 'content-type: application/json' \\\
         \n       -d '{{\"name\":\"admin\",\"password\":\"...\"}}' https://{api}/api/v1/login\
         \n  curl -s --cacert {0} -b jar https://{api}/api/v1/status\
         \nCtrl-C stops the demo cleanly (open sessions finish first).\n",
        cert.display(),
        show(service.metrics_addr),
        policy.display(),
        dir.display(),
        dir.display(),
    );
}

/// `mxgate sink`.
pub(crate) fn run_sink(
    listen: SocketAddr,
    maildir: Option<PathBuf>,
    accept_proxy: bool,
    hostname: String,
) -> Result<(), Failure> {
    logging::init("info");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot bind {listen}"))?;
        tracing::info!(addr = %listener.local_addr()?, "sink listening");
        let options = SinkOptions {
            hostname,
            maildir,
            accept_proxy,
            ..SinkOptions::default()
        };
        let stop = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("signal handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        mxgate_sink::serve(listener, options, stop).await?;
        anyhow::Ok(())
    })?;
    Ok(())
}
