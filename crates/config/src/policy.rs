//! Validated shared policy (`POLICY.toml`): pools, servers, listeners, relay
//! domains and limits.

use crate::raw::{
    CheckSection, LimitsSection, ListenerSection, PolicyFile, PoolSection, RelaySection,
    ServerSection,
};
use crate::Errors;
use ipnet::IpNet;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

pub use crate::raw::{Balance, ListenerMode, ProxyVersion, ServerState};

/// The whole shared policy, validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy {
    /// Gateway-wide limits.
    pub limits: Limits,
    /// Recipient domains accepted (lowercase, no trailing dot).
    pub relay_domains: Vec<String>,
    /// Backend pools in file order.
    pub pools: Vec<Pool>,
    /// Listeners in file order.
    pub listeners: Vec<Listener>,
}

/// Gateway-wide limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once over all listeners.
    pub max_connections: u32,
}

impl Default for Limits {
    fn default() -> Self {
        let raw = LimitsSection::default();
        Limits {
            max_connections: raw.max_connections,
        }
    }
}

/// A backend pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// Name listeners refer to.
    pub name: String,
    /// Selection algorithm.
    pub balance: Balance,
    /// Health checks.
    pub check: CheckSettings,
    /// Weight ramp after recovery; zero = off.
    pub slow_start: Duration,
    /// Backend connect timeout.
    pub connect_timeout: Duration,
    /// Longest wait for a free server slot.
    pub queue_timeout: Duration,
    /// Most sessions waiting at once.
    pub max_queue: u32,
    /// Servers in file order.
    pub servers: Vec<Server>,
}

/// Health check settings of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSettings {
    /// Time between checks.
    pub interval: Duration,
    /// Time allowed for one check.
    pub timeout: Duration,
    /// Consecutive failures to go down.
    pub fall: u32,
    /// Consecutive successes to come up.
    pub rise: u32,
    /// Run STARTTLS in the check.
    pub starttls: bool,
    /// EHLO name of the check.
    pub ehlo: String,
    /// `check.send_proxy` as configured (`None`: follow the listeners).
    pub send_proxy: Option<ProxyVersion>,
    /// The PROXY header the check actually sends: `send_proxy`, or else the
    /// one the listeners using this pool send.
    pub proxy: ProxyVersion,
}

/// A backend server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Name, unique in its pool.
    pub name: String,
    /// Address of the MTA.
    pub address: SocketAddr,
    /// Relative share, 0..=256.
    pub weight: u32,
    /// Session cap; 0 = none.
    pub max_conn: u32,
    /// Administrative state.
    pub state: ServerState,
}

/// A listener.
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    /// Name in logs and metrics.
    pub name: String,
    /// Address to accept on.
    pub bind: SocketAddr,
    /// How sessions are handled.
    pub mode: ListenerMode,
    /// Pool name (always one of [`Policy::pools`]).
    pub pool: String,
    /// PROXY header to the backend.
    pub send_proxy: ProxyVersion,
    /// Expect a PROXY header from a trusted upstream.
    pub accept_proxy: bool,
    /// Who may send that header.
    pub proxy_trusted: Vec<IpNet>,
    /// Time allowed for the upstream's header.
    pub proxy_timeout: Duration,
    /// Idle timeout of a relayed session.
    pub idle_timeout: Duration,
    /// Per-listener connection cap; 0 = only the global one.
    pub max_connections: u32,
}

impl Policy {
    /// Reads and validates a policy file.
    ///
    /// # Errors
    /// Every problem found, each naming `path` and the key or line.
    pub fn load(path: &Path) -> Result<Policy, Errors> {
        Errors::load_file(path, Self::parse)
    }

    /// Parses and validates policy TOML text.
    ///
    /// # Errors
    /// Every problem found.
    pub fn parse(text: &str) -> Result<Policy, Errors> {
        let raw: PolicyFile = toml::from_str(text).map_err(|e| Errors::from_toml(text, &e))?;
        Self::validate(raw)
    }

    /// The policy as TOML, every key written out (export format).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.to_raw()).expect("policy serialises to TOML")
    }

    /// Validates the raw form.
    ///
    /// # Errors
    /// Every problem found.
    pub fn validate(raw: PolicyFile) -> Result<Policy, Errors> {
        let mut errors = Errors::default();
        if raw.limits.max_connections == 0 || raw.limits.max_connections > 1_000_000 {
            errors.push("limits.max_connections", "must be 1..1000000");
        }
        let relay_domains = validate_domains(&mut errors, &raw.relay.domains);
        let pools = validate_pools(&mut errors, &raw.pool);
        let pool_names: HashSet<&str> = pools.iter().map(|p| p.name.as_str()).collect();
        let listeners = validate_listeners(&mut errors, &raw.listener, &pool_names);
        let mut pools = pools;
        resolve_check_proxy(&mut errors, &mut pools, &listeners);
        errors.into_result(Policy {
            limits: Limits {
                max_connections: raw.limits.max_connections,
            },
            relay_domains,
            pools,
            listeners,
        })
    }

    /// The raw form with every value explicit.
    pub fn to_raw(&self) -> PolicyFile {
        PolicyFile {
            limits: LimitsSection {
                max_connections: self.limits.max_connections,
            },
            relay: RelaySection {
                domains: self.relay_domains.clone(),
            },
            pool: self.pools.iter().map(Pool::to_raw).collect(),
            listener: self.listeners.iter().map(Listener::to_raw).collect(),
        }
    }

    /// The pool called `name`.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name == name)
    }
}

impl Pool {
    fn to_raw(&self) -> PoolSection {
        PoolSection {
            name: self.name.clone(),
            balance: self.balance,
            check: CheckSection {
                interval_ms: ms(self.check.interval),
                timeout_ms: ms(self.check.timeout),
                fall: self.check.fall,
                rise: self.check.rise,
                starttls: self.check.starttls,
                ehlo: self.check.ehlo.clone(),
                send_proxy: self.check.send_proxy,
            },
            slow_start_ms: ms(self.slow_start),
            connect_timeout_ms: ms(self.connect_timeout),
            queue_timeout_ms: ms(self.queue_timeout),
            max_queue: self.max_queue,
            server: self
                .servers
                .iter()
                .map(|s| ServerSection {
                    name: s.name.clone(),
                    address: s.address.to_string(),
                    weight: s.weight,
                    max_conn: s.max_conn,
                    state: s.state,
                })
                .collect(),
        }
    }
}

impl Listener {
    fn to_raw(&self) -> ListenerSection {
        ListenerSection {
            name: self.name.clone(),
            bind: self.bind.to_string(),
            mode: self.mode,
            pool: self.pool.clone(),
            send_proxy: self.send_proxy,
            accept_proxy: self.accept_proxy,
            proxy_trusted: self.proxy_trusted.iter().map(|n| n.to_string()).collect(),
            proxy_timeout_ms: ms(self.proxy_timeout),
            idle_timeout_ms: ms(self.idle_timeout),
            max_connections: self.max_connections,
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Checks a name: 1..64 of `A-Z a-z 0-9 . _ -`.
pub(crate) fn check_name(errors: &mut Errors, key: &str, name: &str) {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        errors.push(
            key,
            format!("{name:?} is not a valid name: use 1 to 64 of A-Z a-z 0-9 . _ -"),
        );
    }
}

/// Parses `IP:port` (port not 0).
pub(crate) fn parse_addr(errors: &mut Errors, key: &str, text: &str) -> Option<SocketAddr> {
    match text.parse::<SocketAddr>() {
        Ok(a) if a.port() != 0 => Some(a),
        _ => {
            errors.push(
                key,
                format!(
                    "{text:?} is not an IP address and port like 10.0.0.11:25 or [2001:db8::11]:25"
                ),
            );
            None
        }
    }
}

fn check_ms(errors: &mut Errors, key: &str, value: u64, min: u64, max: u64) -> Duration {
    if value < min || value > max {
        errors.push(
            key,
            format!("{value} is out of range: must be {min}..{max}"),
        );
    }
    Duration::from_millis(value)
}

fn check_unique<'a>(errors: &mut Errors, seen: &mut HashSet<&'a str>, key: &str, name: &'a str) {
    if !seen.insert(name) {
        errors.push(key, format!("{name:?} is used twice: names must be unique"));
    }
}

/// True for a DNS host name: labels of 1..63 letters, digits, hyphens, total ≤ 253.
pub fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn validate_domains(errors: &mut Errors, domains: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, d) in domains.iter().enumerate() {
        let norm = d.trim_end_matches('.').to_ascii_lowercase();
        if !is_dns_name(&norm) {
            errors.push(
                format!("relay.domains[{i}]"),
                format!("{d:?} is not a domain name like example.com"),
            );
        } else if out.contains(&norm) {
            errors.push(
                format!("relay.domains[{i}]"),
                format!("{d:?} is listed twice"),
            );
        } else {
            out.push(norm);
        }
    }
    out
}

fn validate_pools(errors: &mut Errors, raw: &[PoolSection]) -> Vec<Pool> {
    let mut names = HashSet::new();
    let mut pools = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let key = if p.name.is_empty() {
            format!("pool[{i}]")
        } else {
            format!("pool[{}]", p.name)
        };
        check_name(errors, &format!("{key}.name"), &p.name);
        check_unique(errors, &mut names, &format!("{key}.name"), &p.name);
        let c = &p.check;
        let check = CheckSettings {
            interval: check_ms(
                errors,
                &format!("{key}.check.interval_ms"),
                c.interval_ms,
                100,
                3_600_000,
            ),
            timeout: check_ms(
                errors,
                &format!("{key}.check.timeout_ms"),
                c.timeout_ms,
                100,
                600_000,
            ),
            fall: c.fall,
            rise: c.rise,
            starttls: c.starttls,
            ehlo: c.ehlo.clone(),
            send_proxy: c.send_proxy,
            proxy: c.send_proxy.unwrap_or_default(),
        };
        for (what, v) in [("fall", c.fall), ("rise", c.rise)] {
            if !(1..=100).contains(&v) {
                errors.push(
                    format!("{key}.check.{what}"),
                    format!("{v} is out of range: must be 1..100"),
                );
            }
        }
        if !is_dns_name(&c.ehlo) {
            errors.push(
                format!("{key}.check.ehlo"),
                format!("{:?} is not a host name", c.ehlo),
            );
        }
        let servers = validate_servers(errors, &key, &p.server);
        pools.push(Pool {
            name: p.name.clone(),
            balance: p.balance,
            check,
            slow_start: check_ms(
                errors,
                &format!("{key}.slow_start_ms"),
                p.slow_start_ms,
                0,
                3_600_000,
            ),
            connect_timeout: check_ms(
                errors,
                &format!("{key}.connect_timeout_ms"),
                p.connect_timeout_ms,
                10,
                600_000,
            ),
            queue_timeout: check_ms(
                errors,
                &format!("{key}.queue_timeout_ms"),
                p.queue_timeout_ms,
                0,
                600_000,
            ),
            max_queue: p.max_queue,
            servers,
        });
    }
    pools
}

fn validate_servers(errors: &mut Errors, pool_key: &str, raw: &[ServerSection]) -> Vec<Server> {
    let mut names = HashSet::new();
    let mut servers = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        let key = if s.name.is_empty() {
            format!("{pool_key}.server[{i}]")
        } else {
            format!("{pool_key}.server[{}]", s.name)
        };
        check_name(errors, &format!("{key}.name"), &s.name);
        check_unique(errors, &mut names, &format!("{key}.name"), &s.name);
        if s.weight > 256 {
            errors.push(
                format!("{key}.weight"),
                format!("{} is out of range: must be 0..256", s.weight),
            );
        }
        if let Some(address) = parse_addr(errors, &format!("{key}.address"), &s.address) {
            servers.push(Server {
                name: s.name.clone(),
                address,
                weight: s.weight,
                max_conn: s.max_conn,
                state: s.state,
            });
        }
    }
    servers
}

fn validate_listeners(
    errors: &mut Errors,
    raw: &[ListenerSection],
    pools: &HashSet<&str>,
) -> Vec<Listener> {
    let mut names = HashSet::new();
    let mut binds = HashSet::new();
    let mut listeners = Vec::new();
    for (i, l) in raw.iter().enumerate() {
        let key = if l.name.is_empty() {
            format!("listener[{i}]")
        } else {
            format!("listener[{}]", l.name)
        };
        check_name(errors, &format!("{key}.name"), &l.name);
        check_unique(errors, &mut names, &format!("{key}.name"), &l.name);
        let bind = parse_addr(errors, &format!("{key}.bind"), &l.bind);
        if let Some(b) = bind {
            if !binds.insert(b) {
                errors.push(
                    format!("{key}.bind"),
                    format!("{b} is used by another listener"),
                );
            }
        }
        if l.mode == ListenerMode::Smtp {
            errors.push(
                format!("{key}.mode"),
                "\"smtp\" is not available in this version: use \"l4\"",
            );
        }
        if !pools.contains(l.pool.as_str()) {
            let known: Vec<_> = pools.iter().copied().collect();
            errors.push(
                format!("{key}.pool"),
                format!(
                    "no pool is called {:?} (pools: {})",
                    l.pool,
                    known.join(", ")
                ),
            );
        }
        let mut proxy_trusted = Vec::new();
        for (j, t) in l.proxy_trusted.iter().enumerate() {
            match parse_net(t) {
                Some(n) => proxy_trusted.push(n),
                None => errors.push(
                    format!("{key}.proxy_trusted[{j}]"),
                    format!(
                        "{t:?} is not an address or network like 192.0.2.0/24 or 2001:db8::/32"
                    ),
                ),
            }
        }
        if l.accept_proxy && l.proxy_trusted.is_empty() {
            errors.push(
                format!("{key}.proxy_trusted"),
                "accept_proxy = true needs at least one trusted upstream network",
            );
        }
        let proxy_timeout = check_ms(
            errors,
            &format!("{key}.proxy_timeout_ms"),
            l.proxy_timeout_ms,
            10,
            60_000,
        );
        let idle_timeout = check_ms(
            errors,
            &format!("{key}.idle_timeout_ms"),
            l.idle_timeout_ms,
            1_000,
            86_400_000,
        );
        if let Some(bind) = bind {
            listeners.push(Listener {
                name: l.name.clone(),
                bind,
                mode: l.mode,
                pool: l.pool.clone(),
                send_proxy: l.send_proxy,
                accept_proxy: l.accept_proxy,
                proxy_trusted,
                proxy_timeout,
                idle_timeout,
                max_connections: l.max_connections,
            });
        }
    }
    listeners
}

/// Gives each pool's check the PROXY header its listeners send, unless the
/// pool says otherwise. Listeners that send different headers to one pool are
/// an error: a backend accepts one kind only.
fn resolve_check_proxy(errors: &mut Errors, pools: &mut [Pool], listeners: &[Listener]) {
    for pool in pools {
        let mut users = listeners.iter().filter(|l| l.pool == pool.name);
        let Some(first) = users.next() else {
            continue;
        };
        if let Some(other) = users.find(|l| l.send_proxy != first.send_proxy) {
            errors.push(
                format!("listener[{}].send_proxy", other.name),
                format!(
                    "differs from listener {:?} ({:?}) though both use pool {:?}: a backend \
                     accepts one kind of PROXY header only",
                    first.name, first.send_proxy, pool.name
                ),
            );
        }
        if pool.check.send_proxy.is_none() {
            pool.check.proxy = first.send_proxy;
        }
    }
}

/// Parses a network (`192.0.2.0/24`) or a single address (taken as /32 or /128).
/// Host bits must be zero, so a typo cannot widen trust silently.
fn parse_net(text: &str) -> Option<IpNet> {
    if let Ok(net) = text.parse::<IpNet>() {
        return (net.trunc() == net).then_some(net);
    }
    text.parse::<IpAddr>().ok().map(IpNet::from)
}
