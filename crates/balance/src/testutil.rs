//! Test helpers: configurations and a health check with scripted results.

use crate::check::{BoxFuture, CheckError, CheckReport, HealthCheck, Step};
use mxgate_config::{
    BackendTls, Balance, CheckSettings, ClientIdentity, Pool as PoolConfig, ProxyVersion,
    RelaySettings, Server as ServerConfig, ServerState,
};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;

/// Answers each probe from a per-address script (then `default`), and
/// reports every probe on a channel.
pub(crate) struct ScriptedCheck {
    script: Mutex<HashMap<SocketAddr, VecDeque<bool>>>,
    default: bool,
    calls: mpsc::UnboundedSender<SocketAddr>,
}

impl ScriptedCheck {
    pub(crate) fn new(default: bool) -> (Self, mpsc::UnboundedReceiver<SocketAddr>) {
        let (calls, rx) = mpsc::unbounded_channel();
        let check = ScriptedCheck {
            script: Mutex::new(HashMap::new()),
            default,
            calls,
        };
        (check, rx)
    }

    pub(crate) fn script(&self, address: SocketAddr, results: &[bool]) {
        self.script
            .lock()
            .unwrap()
            .entry(address)
            .or_default()
            .extend(results);
    }
}

impl HealthCheck for ScriptedCheck {
    fn check<'a>(
        &'a self,
        address: SocketAddr,
        _settings: &'a CheckSettings,
    ) -> BoxFuture<'a, Result<CheckReport, CheckError>> {
        let ok = self
            .script
            .lock()
            .unwrap()
            .get_mut(&address)
            .and_then(VecDeque::pop_front)
            .unwrap_or(self.default);
        let _ = self.calls.send(address);
        Box::pin(async move {
            if ok {
                Ok(CheckReport {
                    banner: "fake ESMTP".into(),
                    tls: None,
                })
            } else {
                Err(CheckError::Timeout { step: Step::Banner })
            }
        })
    }
}

pub(crate) fn server_cfg(name: &str, port: u16, weight: u32, max_conn: u32) -> ServerConfig {
    ServerConfig {
        name: name.into(),
        address: format!("127.0.0.1:{port}").parse().unwrap(),
        weight,
        max_conn,
        state: ServerState::Ready,
    }
}

pub(crate) fn pool_cfg(balance: Balance, servers: Vec<ServerConfig>) -> PoolConfig {
    PoolConfig {
        name: "mta".into(),
        balance,
        check: CheckSettings {
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            fall: 2,
            rise: 2,
            starttls: false,
            ehlo: "mxgate.test".into(),
            send_proxy: None,
            proxy: ProxyVersion::None,
        },
        slow_start: Duration::ZERO,
        connect_timeout: Duration::from_secs(1),
        queue_timeout: Duration::from_secs(5),
        max_queue: 10,
        relay: RelaySettings {
            client_identity: ClientIdentity::None,
            backend_tls: BackendTls::Opportunistic,
            backend_tls_name: None,
            recipient_positive_ttl: Duration::ZERO,
            recipient_negative_ttl: Duration::ZERO,
        },
        servers,
    }
}
