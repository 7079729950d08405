//! The raw level of the filter policy: `[[list]]` and `[[rate_limit]]`.

use serde::{Deserialize, Serialize};

/// `[[list]]`: one allow or block entry. Exactly one of the matchers is set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListSection {
    /// `allow` or `block`.
    pub action: String,
    /// A client address or network (`198.51.100.0/24`, `2001:db8::/32`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The client's reverse name (`mx.example.com`, or `.example.com` for
    /// every name under it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_name: Option<String>,
    /// The HELO/EHLO name (exact or `.suffix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helo: Option<String>,
    /// The envelope sender address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The envelope sender's domain (exact or `.suffix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_domain: Option<String>,
    /// An envelope recipient address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
}

impl ListSection {
    /// The matchers that are set, as (kind, value).
    pub fn matchers(&self) -> Vec<(&'static str, &str)> {
        [
            ("client", &self.client),
            ("reverse_name", &self.reverse_name),
            ("helo", &self.helo),
            ("sender", &self.sender),
            ("sender_domain", &self.sender_domain),
            ("recipient", &self.recipient),
        ]
        .into_iter()
        .filter_map(|(kind, v)| v.as_deref().map(|v| (kind, v)))
        .collect()
    }

    /// A section with one matcher set.
    pub fn with(action: &str, kind: &str, value: &str) -> ListSection {
        let mut s = ListSection {
            action: action.to_string(),
            ..ListSection::default()
        };
        let v = Some(value.to_string());
        match kind {
            "client" => s.client = v,
            "reverse_name" => s.reverse_name = v,
            "helo" => s.helo = v,
            "sender" => s.sender = v,
            "sender_domain" => s.sender_domain = v,
            _ => s.recipient = v,
        }
        s
    }
}

/// `[[rate_limit]]`: limits per key within a window.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    /// `client_ip`, `client_net`, `sender`, `sender_domain` or `recipient_domain`.
    pub key: String,
    /// The window the counts refill over.
    #[serde(default = "default_window_s")]
    pub window_s: u64,
    /// New connections per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections: Option<u32>,
    /// Messages (MAIL) per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<u32>,
    /// Recipients (RCPT) per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<u32>,
    /// Connections open at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

fn default_window_s() -> u64 {
    60
}

/// `[screen]`: checks before any backend is touched.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScreenSection {
    /// Pregreet window: smtp mode sends `220-` and waits, l4 stays silent
    /// before opening the backend connection; 0 = off.
    #[serde(default)]
    pub greet_wait_ms: u64,
    /// What happens to a client that talks first: `ignore`, `reject`, `drop`.
    #[serde(default = "default_greet_action")]
    pub greet_action: String,
    /// DNSBL score at which a client is refused.
    #[serde(default = "default_dnsbl_threshold")]
    pub dnsbl_threshold: i32,
    /// DNSBL score at or below which a client is allowlisted (negative
    /// weights are DNSWLs); 0 = never.
    #[serde(default)]
    pub dnsbl_allow_threshold: i32,
    /// Time allowed for the DNSBL lookups (all zones in parallel).
    #[serde(default = "default_dns_timeout_ms")]
    pub dns_timeout_ms: u64,
    /// Name the matching list in the refusal text.
    #[serde(default)]
    pub reveal_dnsbl: bool,
    /// A client that passed screening is not screened again for this long.
    #[serde(default = "default_allowlist_ttl_s")]
    pub allowlist_ttl_s: u64,
    /// Look up the client's forward-confirmed reverse name at connect (for
    /// the `Received:` header); it is looked up anyway when a `[[list]]`
    /// entry has a `reverse_name`. Off by default: no DNS unless asked.
    #[serde(default)]
    pub reverse_dns: bool,
    /// DNSBL/DNSWL zones.
    #[serde(default)]
    pub dnsbl: Vec<DnsblSection>,
}

impl Default for ScreenSection {
    fn default() -> Self {
        ScreenSection {
            greet_wait_ms: 0,
            greet_action: default_greet_action(),
            dnsbl_threshold: default_dnsbl_threshold(),
            dnsbl_allow_threshold: 0,
            dns_timeout_ms: default_dns_timeout_ms(),
            reveal_dnsbl: false,
            allowlist_ttl_s: default_allowlist_ttl_s(),
            reverse_dns: false,
            dnsbl: Vec::new(),
        }
    }
}

fn default_greet_action() -> String {
    "reject".to_string()
}
fn default_dnsbl_threshold() -> i32 {
    3
}
fn default_dns_timeout_ms() -> u64 {
    1_500
}
fn default_allowlist_ttl_s() -> u64 {
    86_400
}

/// `[[screen.dnsbl]]`: one DNSBL (positive weight) or DNSWL (negative).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DnsblSection {
    /// The zone (`zen.example`).
    pub zone: String,
    /// Score added when listed; negative for allowlists.
    #[serde(default = "default_weight")]
    pub weight: i32,
    /// Reply filter such as `127.0.0.[2..11]`; absent = any 127.x answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

fn default_weight() -> i32 {
    1
}

/// `[greylist]` (smtp mode).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GreylistSection {
    /// Greylist new triplets.
    #[serde(default)]
    pub enabled: bool,
    /// A retry is accepted after this long.
    #[serde(default = "default_delay_s")]
    pub delay_s: u64,
    /// ... and within this long after the first attempt.
    #[serde(default = "default_retry_window_s")]
    pub retry_window_s: u64,
    /// A passed triplet is remembered this long since last seen.
    #[serde(default = "default_lifetime_s")]
    pub lifetime_s: u64,
    /// Client network size for IPv4 triplets.
    #[serde(default = "default_ipv4_prefix")]
    pub ipv4_prefix: u8,
    /// Client network size for IPv6 triplets.
    #[serde(default = "default_ipv6_prefix")]
    pub ipv6_prefix: u8,
    /// A client network that passed this many triplets skips greylisting.
    #[serde(default = "default_auto_allow_after")]
    pub auto_allow_after: u32,
    /// Key on the SPF-validated sender domain instead of the client network.
    #[serde(default = "default_on")]
    pub spf_domain_keying: bool,
    /// Skip greylisting for DMARC-aligned passes.
    #[serde(default = "default_on")]
    pub skip_dmarc_pass: bool,
}

impl Default for GreylistSection {
    fn default() -> Self {
        GreylistSection {
            enabled: false,
            delay_s: default_delay_s(),
            retry_window_s: default_retry_window_s(),
            lifetime_s: default_lifetime_s(),
            ipv4_prefix: default_ipv4_prefix(),
            ipv6_prefix: default_ipv6_prefix(),
            auto_allow_after: default_auto_allow_after(),
            spf_domain_keying: true,
            skip_dmarc_pass: true,
        }
    }
}

fn default_delay_s() -> u64 {
    300
}
fn default_retry_window_s() -> u64 {
    172_800
}
fn default_lifetime_s() -> u64 {
    3_024_000
}
fn default_ipv4_prefix() -> u8 {
    24
}
fn default_ipv6_prefix() -> u8 {
    64
}
fn default_auto_allow_after() -> u32 {
    5
}
fn default_on() -> bool {
    true
}

/// `[auth]`: sender authentication in smtp mode.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// SPF at MAIL FROM: `off`, `tag` (add `Received-SPF:`) or `reject`
    /// (refuse an SPF `fail` with `550 5.7.23`, tag the rest).
    #[serde(default = "default_spf")]
    pub spf: String,
    /// DKIM at end of data: `off`, `tag` (result in
    /// `Authentication-Results:`) or `reject` (refuse a message whose
    /// signatures all fail).
    #[serde(default = "default_off")]
    pub dkim: String,
    /// ARC chain validation at end of data: `off`, `tag` or `reject`
    /// (refuse a broken chain).
    #[serde(default = "default_off")]
    pub arc: String,
    /// DMARC at end of data: `off`, `tag`, `reject` (refuse every DMARC
    /// `fail`) or `enforce` (honour the domain's `p=`: refuse under
    /// `p=reject`, tag under `p=quarantine` and `p=none`).
    #[serde(default = "default_off")]
    pub dmarc: String,
    /// Octets of a message held in memory while it is checked; beyond
    /// that the message spills to an unnamed temporary file.
    #[serde(default = "default_hold_memory_kb")]
    pub hold_memory_kb: u64,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            spf: default_spf(),
            dkim: default_off(),
            arc: default_off(),
            dmarc: default_off(),
            hold_memory_kb: default_hold_memory_kb(),
        }
    }
}

fn default_hold_memory_kb() -> u64 {
    256
}
fn default_spf() -> String {
    "off".to_string()
}
fn default_off() -> String {
    "off".to_string()
}
