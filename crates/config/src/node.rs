//! Validated node settings (`NODE.toml`).

use crate::raw::NodeFile;
use crate::{Errors, VrrpSettings};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Settings local to one box.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// Unique name within the pair.
    pub name: String,
    /// Store, keys and certificates live here.
    pub data_dir: PathBuf,
    /// Grace period for open sessions on shutdown.
    pub shutdown_grace: Duration,
    /// Session worker threads; 0 = half the cores (at least one).
    pub workers: usize,
    /// Default log filter.
    pub log: String,
    /// Web UI and JSON API listener (HTTPS, with accounts; plain HTTP on
    /// it is redirected).
    pub web_listen: Option<SocketAddr>,
    /// `/metrics` and `/healthz` listener.
    pub metrics_listen: Option<SocketAddr>,
    /// `[dns] servers`: DNS servers for DNSBL lookups; empty = the system
    /// resolver (`/etc/resolv.conf`).
    pub dns_servers: Vec<SocketAddr>,
    /// `[vrrp]`: VRRP failover; `None` = no failover.
    pub vrrp: Option<VrrpSettings>,
    /// `[sync]`: peer sync; `None` = a single box.
    pub sync: Option<SyncSettings>,
}

/// `[sync]` of the node file, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// Where to accept the peer's connections.
    pub listen: Option<SocketAddr>,
    /// Where to dial the peer.
    pub peer: Option<SocketAddr>,
    /// SHA-256 of the peer's SubjectPublicKeyInfo; `None` until the boxes
    /// are paired (then every peer is refused).
    pub peer_key: Option<[u8; 32]>,
}

fn validate_sync(errors: &mut Errors, raw: &crate::raw::SyncSection) -> Option<SyncSettings> {
    let listen = raw
        .listen
        .as_ref()
        .and_then(|a| crate::validate::parse_addr(errors, "sync.listen", a));
    let peer = raw
        .peer
        .as_ref()
        .and_then(|a| crate::validate::parse_addr(errors, "sync.peer", a));
    if raw.listen.is_none() && raw.peer.is_none() {
        errors.push("sync", "needs listen, peer or both");
    }
    let peer_key = match &raw.peer_key {
        None => None,
        Some(text) => parse_pin(text).or_else(|| {
            errors.push(
                "sync.peer_key",
                format!(
                    "{text:?} is not a key pin: 64 hex digits (SHA-256), as `mxgate cluster pin` \
                     prints it"
                ),
            );
            None
        }),
    };
    Some(SyncSettings {
        listen,
        peer,
        peer_key,
    })
}

/// 64 hex digits (`:` separators allowed) to 32 bytes.
fn parse_pin(text: &str) -> Option<[u8; 32]> {
    let digits: Vec<u8> = text.bytes().filter(|b| *b != b':').collect();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(digits.chunks(2)) {
        *o = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

impl NodeConfig {
    /// Reads and validates a node file.
    ///
    /// # Errors
    /// Every problem found, each naming `path` and the key or line.
    pub fn load(path: &Path) -> Result<NodeConfig, Errors> {
        Errors::load_file(path, Self::parse)
    }

    /// Parses and validates node TOML text.
    ///
    /// # Errors
    /// Every problem found.
    pub fn parse(text: &str) -> Result<NodeConfig, Errors> {
        let raw: NodeFile = toml::from_str(text).map_err(|e| Errors::from_toml(text, &e))?;
        Self::validate(raw)
    }

    /// Validates the raw form.
    ///
    /// # Errors
    /// Every problem found.
    pub fn validate(raw: NodeFile) -> Result<NodeConfig, Errors> {
        let mut errors = Errors::default();
        crate::validate::check_name(&mut errors, "name", &raw.name);
        if raw.data_dir.as_os_str().is_empty() {
            errors.push("data_dir", "must be a directory path");
        }
        if raw.shutdown_grace_ms > 3_600_000 {
            errors.push("shutdown_grace_ms", "must be 0..3600000 (one hour)");
        }
        if raw.workers > 256 {
            errors.push(
                "workers",
                format!(
                    "{} is out of range: must be 0..256 (0 = half the cores)",
                    raw.workers
                ),
            );
        }
        let web_listen = raw
            .web
            .as_ref()
            .and_then(|w| crate::validate::parse_addr(&mut errors, "web.listen", &w.listen));
        let metrics_listen = raw
            .metrics
            .as_ref()
            .and_then(|m| crate::validate::parse_addr(&mut errors, "metrics.listen", &m.listen));
        let dns_servers = raw
            .dns
            .iter()
            .flat_map(|d| d.servers.iter().enumerate())
            .filter_map(|(i, s)| {
                crate::validate::parse_addr(&mut errors, &format!("dns.servers[{i}]"), s)
            })
            .collect();
        let vrrp = raw
            .vrrp
            .as_ref()
            .map(|v| crate::node_vrrp::validate(&mut errors, v));
        let sync = raw
            .sync
            .as_ref()
            .and_then(|s| validate_sync(&mut errors, s));
        errors.into_result(NodeConfig {
            name: raw.name,
            data_dir: raw.data_dir,
            shutdown_grace: Duration::from_millis(raw.shutdown_grace_ms),
            workers: raw.workers as usize,
            log: raw.log,
            web_listen,
            metrics_listen,
            dns_servers,
            vrrp,
            sync,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_node_gets_defaults() {
        let n = NodeConfig::parse("name = \"gw-a\"\ndata_dir = \"/data\"\n").unwrap();
        assert_eq!(n.shutdown_grace, Duration::from_secs(30));
        assert_eq!(n.metrics_listen, None);
    }

    #[test]
    fn unknown_key_names_the_line() {
        let err = NodeConfig::parse("name = \"a\"\ndata_dir = \"/d\"\nfoo = 1\n").unwrap_err();
        assert_eq!(err.0[0].key, "line 3");
        assert!(err.0[0].message.contains("foo"), "{err}");
    }

    #[test]
    fn dns_servers_are_ip_and_port() {
        let n = NodeConfig::parse(
            "name = \"a\"\ndata_dir = \"/d\"\n[dns]\nservers = [\"127.0.0.1:5353\"]\n",
        )
        .unwrap();
        assert_eq!(n.dns_servers, ["127.0.0.1:5353".parse().unwrap()]);
        let none = NodeConfig::parse("name = \"a\"\ndata_dir = \"/d\"\n").unwrap();
        assert!(none.dns_servers.is_empty());
        let err = NodeConfig::parse(
            "name = \"a\"\ndata_dir = \"/d\"\n[dns]\nservers = [\"127.0.0.1:53\", \"ns1\"]\n",
        )
        .unwrap_err();
        let keys: Vec<_> = err.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["dns.servers[1]"]);
    }

    #[test]
    fn sync_needs_an_address_and_a_valid_pin_if_given() {
        let head = "name = \"a\"\ndata_dir = \"/d\"\n[sync]\n";
        let pin = "ab".repeat(32);
        let n = NodeConfig::parse(&format!(
            "{head}listen = \"127.0.0.1:4747\"\npeer = \"127.0.0.1:4748\"\npeer_key = \"{pin}\"\n"
        ))
        .unwrap();
        let s = n.sync.unwrap();
        assert_eq!(s.listen, Some("127.0.0.1:4747".parse().unwrap()));
        assert_eq!(s.peer_key, Some([0xab; 32]));
        let err =
            NodeConfig::parse(&format!("{head}peer = \"x\"\npeer_key = \"12\"\n")).unwrap_err();
        let keys: Vec<_> = err.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["sync.peer", "sync.peer_key"]);
        let err = NodeConfig::parse(head).unwrap_err();
        let keys: Vec<_> = err.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["sync"]);
        // Not paired yet: accepted, every peer will be refused.
        let n = NodeConfig::parse(&format!("{head}listen = \"127.0.0.1:4747\"\n")).unwrap();
        assert_eq!(n.sync.unwrap().peer_key, None);
    }

    #[test]
    fn web_may_listen_on_any_address() {
        let n =
            NodeConfig::parse("name = \"a\"\ndata_dir = \"/d\"\n[web]\nlisten = \"0.0.0.0:443\"\n")
                .unwrap();
        assert_eq!(n.web_listen, Some("0.0.0.0:443".parse().unwrap()));
        let err = NodeConfig::parse(
            "name = \"a\"\ndata_dir = \"/d\"\n[web]\nlisten = \"x\"\n[metrics]\nlisten = \"y\"\n",
        )
        .unwrap_err();
        let keys: Vec<_> = err.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys, ["web.listen", "metrics.listen"]);
    }
}
