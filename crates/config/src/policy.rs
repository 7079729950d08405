//! Validated shared policy (`POLICY.toml`): pools, servers, listeners, relay
//! domains and limits.

use crate::raw::{AuthSection, GreylistSection, ListSection, RateLimitSection, ScreenSection};
use crate::raw::{
    CheckSection, LimitsSection, ListenerSection, PolicyFile, PoolSection, RelaySection,
    ServerSection,
};
use crate::validate::{
    resolve_check_proxy, validate_domains, validate_greylist, validate_listeners, validate_lists,
    validate_pools, validate_rate_limits,
};
use crate::validate_auth::{validate_auth, AuthSettings, CheckMode, DmarcMode, SpfMode};
use crate::validate_screen::validate_screen;
use crate::Errors;
use ipnet::IpNet;
use mxgate_filter::lists::ListEntry;
use mxgate_filter::rate::RateRule;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub use crate::raw::{
    BackendTls, Balance, ClientIdentity, ListenerMode, ProxyVersion, ServerState,
};

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
    /// Allow/block lists, validated and normalised, in file order.
    pub lists: Vec<ListSection>,
    /// Rate and concurrency limits, validated, in file order.
    pub rate_limits: Vec<RateLimitSection>,
    /// `[screen]`, validated (zones normalised).
    pub screen: ScreenSection,
    /// `[greylist]`, validated.
    pub greylist: GreylistSection,
    /// `[auth]`, validated (values lowercase).
    pub auth: AuthSection,
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
    /// smtp mode: how backends are spoken to.
    pub relay: RelaySettings,
    /// Servers in file order.
    pub servers: Vec<Server>,
}

/// How an smtp-mode relay speaks to the backends of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySettings {
    /// How the backend learns the real client.
    pub client_identity: ClientIdentity,
    /// TLS towards the backend.
    pub backend_tls: BackendTls,
    /// Certificate name required with [`BackendTls::Verify`].
    pub backend_tls_name: Option<String>,
    /// How long an accepted recipient is remembered.
    pub recipient_positive_ttl: Duration,
    /// How long an unknown recipient is refused from memory.
    pub recipient_negative_ttl: Duration,
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
    /// Connections at once from one client address; 0 = no limit.
    pub max_connections_per_client: u32,
    /// smtp mode settings (ignored by l4 listeners).
    pub smtp: SmtpSettings,
}

/// Settings of an smtp-mode listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// Banner/EHLO/Received name; `None` = the node's name.
    pub hostname: Option<String>,
    /// Largest message in octets.
    pub max_message_size: u64,
    /// Recipients per message.
    pub max_recipients: u32,
    /// Protocol errors before disconnect.
    pub max_errors: u32,
    /// Longest text line in octets, without CRLF.
    pub max_line_length: u32,
    /// Offer STARTTLS.
    pub starttls: bool,
    /// Wait for a command at most this long.
    pub command_timeout: Duration,
    /// Wait between two reads of message data at most this long.
    pub data_timeout: Duration,
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
        let lists = validate_lists(&mut errors, &raw.list);
        let rate_limits = validate_rate_limits(&mut errors, &raw.rate_limit);
        let screen = validate_screen(&mut errors, &raw.screen);
        let greylist = validate_greylist(&mut errors, &raw.greylist);
        let auth = validate_auth(&mut errors, &raw.auth);
        errors.into_result(Policy {
            limits: Limits {
                max_connections: raw.limits.max_connections,
            },
            relay_domains,
            pools,
            listeners,
            lists,
            rate_limits,
            screen,
            greylist,
            auth,
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
            list: self.lists.clone(),
            rate_limit: self.rate_limits.clone(),
            screen: self.screen.clone(),
            greylist: self.greylist.clone(),
            auth: self.auth.clone(),
        }
    }

    /// The lists as filter entries.
    pub fn list_entries(&self) -> Vec<ListEntry> {
        self.lists
            .iter()
            .filter_map(crate::validate::list_entry)
            .collect()
    }

    /// The rate limits as filter rules.
    pub fn rate_rules(&self) -> Vec<RateRule> {
        self.rate_limits
            .iter()
            .filter_map(crate::validate::rate_rule)
            .collect()
    }

    /// The greylisting settings, or `None` when `[greylist]` is disabled.
    ///
    /// `spf_domain_keying` applies when SPF (`[auth] spf`) passed for the
    /// sender; DMARC is not evaluated yet, so `skip_dmarc_pass` has no
    /// effect for now.
    pub fn greylist_settings(&self) -> Option<mxgate_filter::greylist::GreylistSettings> {
        self.greylist
            .enabled
            .then(|| crate::validate::greylist_settings(&self.greylist))
    }

    /// True when a client's reverse name is to be looked up at connect:
    /// `[screen] reverse_dns` is on, or a `[[list]]` entry has a
    /// `reverse_name` (it could not match otherwise).
    pub fn reverse_dns_wanted(&self) -> bool {
        self.screen.reverse_dns || self.lists.iter().any(|l| l.reverse_name.is_some())
    }

    /// What smtp mode does with SPF (`[auth] spf`).
    pub fn spf_mode(&self) -> SpfMode {
        SpfMode::parse(&self.auth.spf).unwrap_or_default()
    }

    /// `[auth]`: every sender-authentication check and its action.
    pub fn auth_settings(&self) -> AuthSettings {
        AuthSettings {
            spf: self.spf_mode(),
            dkim: CheckMode::parse(&self.auth.dkim).unwrap_or_default(),
            arc: CheckMode::parse(&self.auth.arc).unwrap_or_default(),
            dmarc: DmarcMode::parse(&self.auth.dmarc).unwrap_or_default(),
            hold_memory: usize::try_from(self.auth.hold_memory_kb.saturating_mul(1024))
                .unwrap_or(usize::MAX),
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
            client_identity: self.relay.client_identity,
            backend_tls: self.relay.backend_tls,
            backend_tls_name: self.relay.backend_tls_name.clone(),
            recipient_cache_positive_ttl_s: self.relay.recipient_positive_ttl.as_secs(),
            recipient_cache_negative_ttl_s: self.relay.recipient_negative_ttl.as_secs(),
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
            max_connections_per_client: self.max_connections_per_client,
            hostname: self.smtp.hostname.clone(),
            max_message_size: self.smtp.max_message_size,
            max_recipients: self.smtp.max_recipients,
            max_errors: self.smtp.max_errors,
            max_line_length: self.smtp.max_line_length,
            starttls: self.smtp.starttls,
            command_timeout_ms: ms(self.smtp.command_timeout),
            data_timeout_ms: ms(self.smtp.data_timeout),
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
