//! The raw level: what the TOML files say, with unknown keys refused and
//! documented defaults filled in. Serialising a raw value writes every key
//! explicitly, which makes `policy export` round-trip exact.

use serde::{Deserialize, Serialize};

pub use crate::raw_filter::{
    AuthSection, DnsblSection, GreylistSection, ListSection, RateLimitSection, ScreenSection,
};
use std::path::PathBuf;

/// `NODE.toml`: settings local to one box, never synced.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFile {
    /// Unique name of this box within the pair.
    pub name: String,
    /// Directory of the SQLite store, keys and certificates.
    pub data_dir: PathBuf,
    /// How long a stopping service lets open sessions finish.
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// Session worker threads; 0 = half the cores (at least one).
    #[serde(default)]
    pub workers: u32,
    /// Default log filter (`error`, `warn`, `info`, `debug`, `trace`, or a
    /// tracing directive); `RUST_LOG` overrides it.
    #[serde(default = "default_log")]
    pub log: String,
    /// The web UI / JSON API listener.
    pub web: Option<ListenSection>,
    /// The plain-HTTP `/metrics` and `/healthz` listener.
    pub metrics: Option<ListenSection>,
    /// DNS servers for DNSBL lookups; absent = the system resolver.
    pub dns: Option<DnsNodeSection>,
    /// VRRP failover; absent = no failover.
    pub vrrp: Option<VrrpSection>,
    /// Peer sync; absent = a single box.
    pub sync: Option<SyncSection>,
}

/// `[sync]` of the node file.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSection {
    /// `IP:port` to accept the peer's sync connections on.
    pub listen: Option<String>,
    /// `IP:port` of the peer's `[sync] listen`.
    pub peer: Option<String>,
    /// The peer's key pin: SHA-256 of its public key, 64 hex digits, as
    /// `mxgate cluster pin` prints it on the peer.
    pub peer_key: Option<String>,
}

/// `[vrrp]` of the node file. Numbers are read wide (`i64`) so that an out
/// of range value gets a message naming its range rather than a TOML type
/// error.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpSection {
    /// Interface the adverts go out on and the virtual IPs are added to.
    pub interface: String,
    /// Virtual Router ID, 1..255, the same on both boxes.
    pub vrid: i64,
    /// 1..255; the higher wins; 255 = the address owner.
    #[serde(default = "default_vrrp_priority")]
    pub priority: i64,
    /// Advertisement interval, 10..40950 in 10 ms steps.
    #[serde(default = "default_advert_interval_ms")]
    pub advert_interval_ms: i64,
    /// The virtual IPs, `A.B.C.D/N` (or a bare address: /32).
    pub virtual_ips: Vec<String>,
    /// Empty: multicast to 224.0.0.18; else unicast to (and only from) these.
    #[serde(default)]
    pub unicast_peers: Vec<String>,
    /// Take over from a lower-priority master.
    #[serde(default = "default_true")]
    pub preempt: bool,
    /// Tolerate a lower-priority master this long before preempting it.
    #[serde(default)]
    pub preempt_delay_ms: i64,
    /// Gratuitous ARP rounds after becoming master.
    #[serde(default = "default_garp_count")]
    pub garp_count: i64,
    /// Time between those rounds.
    #[serde(default = "default_garp_interval_ms")]
    pub garp_interval_ms: i64,
    /// While master, one more round this often; 0 = never.
    #[serde(default)]
    pub garp_refresh_s: i64,
    /// Weight of "every server of a pool is down".
    #[serde(default = "default_track_weight")]
    pub track_pool_weight: i64,
    /// Weight of "a listener is not bound".
    #[serde(default = "default_track_weight")]
    pub track_listener_weight: i64,
    /// Weight of "the VRRP interface's link is down" (255 = fault).
    #[serde(default = "default_track_link_weight")]
    pub track_link_weight: i64,
    /// Weight of "the store cannot be written".
    #[serde(default = "default_track_weight")]
    pub track_store_weight: i64,
    /// A program run with the new state on each transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
}

fn default_vrrp_priority() -> i64 {
    100
}
fn default_advert_interval_ms() -> i64 {
    1000
}
fn default_garp_count() -> i64 {
    5
}
fn default_garp_interval_ms() -> i64 {
    200
}
fn default_track_weight() -> i64 {
    50
}
fn default_track_link_weight() -> i64 {
    255
}

/// `[dns]` of the node file.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsNodeSection {
    /// `IP:port` of each server to ask; empty = the system resolver.
    #[serde(default)]
    pub servers: Vec<String>,
}

/// A section holding one `listen` address.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenSection {
    /// `IP:port` to listen on.
    pub listen: String,
}

fn default_shutdown_grace_ms() -> u64 {
    30_000
}
fn default_log() -> String {
    "info".to_string()
}

/// `POLICY.toml`: the shared settings, kept in the store and synced.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Gateway-wide limits.
    #[serde(default)]
    pub limits: LimitsSection,
    /// Domains the gateway accepts mail for.
    #[serde(default)]
    pub relay: RelaySection,
    /// Backend pools.
    #[serde(default)]
    pub pool: Vec<PoolSection>,
    /// Listeners.
    #[serde(default)]
    pub listener: Vec<ListenerSection>,
    /// Allow and block lists.
    #[serde(default)]
    pub list: Vec<ListSection>,
    /// Rate and concurrency limits.
    #[serde(default)]
    pub rate_limit: Vec<RateLimitSection>,
    /// Pregreet, DNSBL/DNSWL and the temporary allowlist.
    #[serde(default)]
    pub screen: ScreenSection,
    /// Greylisting (smtp mode).
    #[serde(default)]
    pub greylist: GreylistSection,
    /// Sender authentication (smtp mode).
    #[serde(default)]
    pub auth: AuthSection,
}

/// `[limits]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Connections open at once over all listeners; beyond it a client gets
    /// `421 4.3.2`.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_connections: default_max_connections(),
        }
    }
}

fn default_max_connections() -> u32 {
    20_000
}

/// `[relay]`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RelaySection {
    /// Recipient domains accepted in smtp mode.
    #[serde(default)]
    pub domains: Vec<String>,
}

/// Backend selection algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Balance {
    /// Weighted round robin (smooth, nginx style).
    #[default]
    Roundrobin,
    /// Fewest active sessions relative to weight.
    Leastconn,
    /// Hash of the client address: the same client goes to the same server.
    Source,
    /// The first usable server in file order.
    First,
}

/// `[[pool]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSection {
    /// Name listeners refer to.
    pub name: String,
    /// Selection algorithm.
    #[serde(default)]
    pub balance: Balance,
    /// Health check settings.
    #[serde(default)]
    pub check: CheckSection,
    /// Ramp a recovered server's weight up over this time; 0 = off.
    #[serde(default)]
    pub slow_start_ms: u64,
    /// Give up a backend connect attempt after this long and try the next.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// How long a session may wait for a free slot when every server is at
    /// `max_conn`.
    #[serde(default = "default_queue_timeout_ms")]
    pub queue_timeout_ms: u64,
    /// Sessions that may wait at once; beyond it they get `421` at once.
    #[serde(default = "default_max_queue")]
    pub max_queue: u32,
    /// smtp mode: how the backend learns the real client.
    #[serde(default)]
    pub client_identity: ClientIdentity,
    /// smtp mode: TLS towards the backend.
    #[serde(default)]
    pub backend_tls: BackendTls,
    /// smtp mode: name the backend certificate must carry with
    /// `backend_tls = "verify"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_tls_name: Option<String>,
    /// smtp mode: how long a recipient the backends accepted is remembered.
    #[serde(default = "default_positive_ttl_s")]
    pub recipient_cache_positive_ttl_s: u64,
    /// smtp mode: how long a recipient the backends called unknown (5.1.x)
    /// is refused from memory without asking them; 0 = never.
    #[serde(default = "default_negative_ttl_s")]
    pub recipient_cache_negative_ttl_s: u64,
    /// The servers.
    #[serde(default)]
    pub server: Vec<ServerSection>,
}

/// How an smtp-mode relay tells the backend who the client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientIdentity {
    /// Not at all: the backend sees mxgate as the client.
    #[default]
    None,
    /// Postfix XCLIENT (the backend must authorise mxgate).
    Xclient,
    /// A PROXY v1 header on each backend connection.
    ProxyV1,
    /// A PROXY v2 header on each backend connection.
    ProxyV2,
}

/// TLS from an smtp-mode relay to the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendTls {
    /// Plain SMTP.
    Off,
    /// STARTTLS when the backend offers it, any certificate.
    #[default]
    Opportunistic,
    /// STARTTLS required, any certificate.
    Require,
    /// STARTTLS required and the certificate verified.
    Verify,
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}
fn default_queue_timeout_ms() -> u64 {
    5_000
}
fn default_positive_ttl_s() -> u64 {
    3_600
}
fn default_negative_ttl_s() -> u64 {
    600
}
fn default_max_queue() -> u32 {
    1_000
}

/// `[pool.check]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSection {
    /// Time between checks of one server.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// A check not finished in this time failed.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Consecutive failures that take an up server down.
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// Consecutive successes that bring a down server up.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Also run STARTTLS and a TLS handshake, recording certificate expiry.
    #[serde(default)]
    pub starttls: bool,
    /// The name the check sends in EHLO.
    #[serde(default = "default_ehlo")]
    pub ehlo: String,
    /// PROXY header the check sends first (v2: a LOCAL command; v1: the
    /// check connection's own addresses). Absent: the same as the listeners
    /// that use the pool, so a backend that requires the header passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_proxy: Option<ProxyVersion>,
}

impl Default for CheckSection {
    fn default() -> Self {
        CheckSection {
            interval_ms: default_interval_ms(),
            timeout_ms: default_timeout_ms(),
            fall: default_fall(),
            rise: default_rise(),
            starttls: false,
            ehlo: default_ehlo(),
            send_proxy: None,
        }
    }
}

fn default_interval_ms() -> u64 {
    2_000
}
fn default_timeout_ms() -> u64 {
    2_000
}
fn default_fall() -> u32 {
    3
}
fn default_rise() -> u32 {
    2
}
fn default_ehlo() -> String {
    "mxgate.localdomain".to_string()
}

/// Administrative state of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerState {
    /// Takes sessions when healthy.
    #[default]
    Ready,
    /// Finishes its sessions, takes no new ones.
    Drain,
    /// Out of service; no checks, no sessions.
    Maint,
}

/// `[[pool.server]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Name, unique in its pool.
    pub name: String,
    /// `IP:port` of the backend MTA.
    pub address: String,
    /// Relative share of sessions, 0..256 (0 = only when no other is usable).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Sessions open at once on this server; 0 = no cap.
    #[serde(default)]
    pub max_conn: u32,
    /// Administrative state.
    #[serde(default)]
    pub state: ServerState,
}

fn default_weight() -> u32 {
    1
}

/// How a listener handles a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerMode {
    /// Layer 4: splice bytes to a backend (STARTTLS end to end).
    #[default]
    L4,
    /// mxgate speaks SMTP itself and relays each transaction.
    Smtp,
}

/// PROXY protocol version sent to backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyVersion {
    /// No header.
    #[default]
    None,
    /// Text header.
    V1,
    /// Binary header.
    V2,
}

/// `[[listener]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSection {
    /// Name in logs and metrics.
    pub name: String,
    /// `IP:port` to accept on.
    pub bind: String,
    /// `l4` or `smtp`.
    #[serde(default)]
    pub mode: ListenerMode,
    /// The pool sessions go to.
    pub pool: String,
    /// PROXY header sent to the backend.
    #[serde(default)]
    pub send_proxy: ProxyVersion,
    /// Read a PROXY v1/v2 header from a trusted upstream first.
    #[serde(default)]
    pub accept_proxy: bool,
    /// Networks allowed to send that header; anyone else is refused.
    #[serde(default)]
    pub proxy_trusted: Vec<String>,
    /// Time allowed for the upstream's PROXY header.
    #[serde(default = "default_proxy_timeout_ms")]
    pub proxy_timeout_ms: u64,
    /// Close a session with no traffic either way for this long.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Connections open at once on this listener; 0 = only the global limit.
    #[serde(default)]
    pub max_connections: u32,
    /// Connections open at once from one client address; 0 = no limit.
    /// Not applied with `accept_proxy` (every peer is the upstream there).
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: u32,
    /// smtp mode: the name in the banner, EHLO and Received; absent = the
    /// node's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// smtp mode: largest message (octets), advertised with SIZE.
    #[serde(default = "default_max_message_size")]
    pub max_message_size: u64,
    /// smtp mode: recipients per message.
    #[serde(default = "default_max_recipients")]
    pub max_recipients: u32,
    /// smtp mode: protocol errors before the session is closed.
    #[serde(default = "default_max_errors")]
    pub max_errors: u32,
    /// smtp mode: longest text line in a message (octets, without CRLF).
    #[serde(default = "default_max_line_length")]
    pub max_line_length: u32,
    /// smtp mode: offer STARTTLS.
    #[serde(default = "default_true")]
    pub starttls: bool,
    /// smtp mode: time allowed for the next command.
    #[serde(default = "default_command_timeout_ms")]
    pub command_timeout_ms: u64,
    /// smtp mode: time allowed between two reads of message data.
    #[serde(default = "default_data_timeout_ms")]
    pub data_timeout_ms: u64,
}

fn default_max_connections_per_client() -> u32 {
    50
}
fn default_max_message_size() -> u64 {
    52_428_800
}
fn default_max_recipients() -> u32 {
    1_000
}
fn default_max_errors() -> u32 {
    20
}
fn default_max_line_length() -> u32 {
    998
}
fn default_true() -> bool {
    true
}
fn default_command_timeout_ms() -> u64 {
    300_000
}
fn default_data_timeout_ms() -> u64 {
    180_000
}

fn default_proxy_timeout_ms() -> u64 {
    3_000
}
fn default_idle_timeout_ms() -> u64 {
    300_000
}
