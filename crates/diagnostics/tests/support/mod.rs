//! The lab for the SMTP tests: a sink MTA storing into a Maildir, and in
//! front of it mxgate's own smtp-mode listener offering STARTTLS with a
//! self-signed certificate for `mx.example.test` — the "VIP" of the tests.
//! Everything runs in the test's runtime on loopback and is stopped when the
//! lab is dropped.

use mxgate_balance::Pools;
use mxgate_config::Policy;
use mxgate_gateway::Gateway;
use mxgate_sink::SinkOptions;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The certificate's end of validity (2035-01-01T00:00:00Z).
pub const NOT_AFTER_UNIX: i64 = 2_051_222_400;

/// A sink and a gateway in front of it.
pub struct Lab {
    /// The gateway's smtp listener (STARTTLS offered).
    pub gateway_addr: SocketAddr,
    /// The sink itself (no STARTTLS).
    pub sink_addr: SocketAddr,
    maildir: tempfile::TempDir,
    gateway: Arc<Gateway>,
    pools: Arc<Pools>,
    stop_sink: Option<oneshot::Sender<()>>,
}

impl Lab {
    /// Starts the sink, then the gateway relaying `example.test` to it.
    pub async fn start() -> Lab {
        let maildir = tempfile::tempdir().unwrap();
        let sink = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink_addr = sink.local_addr().unwrap();
        let options = SinkOptions {
            hostname: "backend.example.test".into(),
            maildir: Some(maildir.path().to_path_buf()),
            ..SinkOptions::default()
        };
        let (stop_sink, stopped) = oneshot::channel::<()>();
        tokio::spawn(mxgate_sink::serve(sink, options, async {
            let _ = stopped.await;
        }));
        // The policy wants a real port: take a free one (the gap until the
        // gateway binds it is a few microseconds).
        let bind = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let policy = Policy::parse(&format!(
            "[relay]\ndomains = [\"example.test\"]\n\
             [[pool]]\nname = \"mta\"\n\
             [[pool.server]]\nname = \"sink\"\naddress = \"{sink_addr}\"\n\
             [[listener]]\nname = \"mx\"\nbind = \"{bind}\"\nmode = \"smtp\"\npool = \"mta\"\n\
             hostname = \"mx.example.test\"\n"
        ))
        .unwrap();
        let pools = Pools::new();
        pools.apply(&policy.pools);
        let gateway = Gateway::new(Arc::clone(&pools), "gw.example.test", 1).unwrap();
        gateway.set_smtp_tls(Some(tls_config()));
        gateway.apply(&policy).unwrap();
        let gateway_addr = bind;
        Lab {
            gateway_addr,
            sink_addr,
            maildir,
            gateway,
            pools,
            stop_sink: Some(stop_sink),
        }
    }

    /// The messages the sink stored, as text (none before the sink has
    /// made its Maildir).
    pub fn delivered(&self) -> Vec<String> {
        let new: PathBuf = self.maildir.path().join("new");
        let Ok(entries) = std::fs::read_dir(new) else {
            return Vec::new();
        };
        entries
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect()
    }

    /// Stops the gateway (letting sessions finish) and the sink.
    pub async fn stop(self) {
        self.gateway
            .shutdown(std::time::Duration::from_secs(2))
            .await;
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.pools.shutdown();
        if let Some(stop) = self.stop_sink.take() {
            let _ = stop.send(());
        }
    }
}

/// A TLS server configuration with a fresh self-signed certificate for
/// `mx.example.test`, valid until 2035.
fn tls_config() -> Arc<rustls::ServerConfig> {
    let mut params = rcgen::CertificateParams::new(vec!["mx.example.test".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mx.example.test");
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    Arc::new(config)
}
