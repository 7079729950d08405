//! The resolver: A and TXT lookups with typed failures, and parallel DNSBL
//! lookups through a [`DnsblCache`] (reverse names are in [`crate::ptr`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use tokio::task::JoinSet;

use crate::cache::{DnsblCache, TtlCache};
use crate::dnsbl::{classify, dnsbl_query_name, DnsblOutcome, ZoneResult};
use crate::ptr::ReverseName;

/// Entries kept by the DNSBL cache (and by the reverse-name cache) of a
/// [`Resolver`].
pub const DEFAULT_CACHE_ENTRIES: usize = 10_000;

/// TTL reported for a negative answer that carried no SOA.
const DEFAULT_NEGATIVE_TTL: Duration = Duration::from_secs(60);

/// How to reach DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverSettings {
    /// Servers to ask (UDP, then TCP on truncation); empty = the system
    /// resolver (`/etc/resolv.conf`).
    pub servers: Vec<SocketAddr>,
    /// The whole budget of one query, retries included (default 1500 ms);
    /// each of the `attempts` gets an equal share.
    pub timeout: Duration,
    /// Tries per query (at least 1; default 2).
    pub attempts: u32,
}

impl Default for ResolverSettings {
    fn default() -> Self {
        ResolverSettings {
            servers: Vec::new(),
            timeout: Duration::from_millis(1500),
            attempts: 2,
        }
    }
}

/// Records found for a name and how long they stay valid. NXDOMAIN and
/// NODATA are an empty `records` with the negative TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<T> {
    /// The records (in answer order).
    pub records: T,
    /// The smallest TTL of the records, or the negative TTL.
    pub ttl: Duration,
}

/// Why a lookup gave no answer (a missing name is not an error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    /// No answer within the timeout.
    #[error("timeout")]
    Timeout,
    /// The server answered SERVFAIL.
    #[error("servfail")]
    ServFail,
    /// Anything else (refused, bad name, unreadable configuration, I/O...).
    #[error("{0}")]
    Other(String),
}

/// An async DNS resolver (needs a tokio runtime); cheap to share by `Arc`.
pub struct Resolver {
    pub(crate) inner: TokioResolver,
    config: ResolverConfig,
    opts: ResolverOpts,
    pub(crate) timeout: Duration,
    cache: Arc<Mutex<DnsblCache>>,
    /// Forward-confirmed reverse names by client address (same bounds and
    /// TTL clamping as the DNSBL cache; failures are not kept).
    pub(crate) reverse_cache: Mutex<TtlCache<IpAddr, ReverseName>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("servers", &self.config.name_servers())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Resolver {
    /// Builds a resolver from `settings` (reads `/etc/resolv.conf` when no
    /// server is given). hickory's own cache is off: callers cache what
    /// they need (DNSBL answers go through [`DnsblCache`], reverse names
    /// through a cache of the same kind).
    pub fn new(settings: &ResolverSettings) -> Result<Resolver, DnsError> {
        let (config, mut opts) = if settings.servers.is_empty() {
            hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| DnsError::Other(format!("system resolver configuration: {e}")))?
        } else {
            let servers = settings.servers.iter().map(|addr| {
                let connections = [ConnectionConfig::udp(), ConnectionConfig::tcp()]
                    .into_iter()
                    .map(|mut c| {
                        c.port = addr.port();
                        c
                    })
                    .collect();
                NameServerConfig::new(addr.ip(), true, connections)
            });
            (
                ResolverConfig::from_name_servers(servers.collect()),
                ResolverOpts::default(),
            )
        };
        let attempts = settings.attempts.max(1);
        opts.attempts = usize::try_from(attempts).unwrap_or(1);
        opts.timeout = settings.timeout / attempts;
        opts.cache_size = 0;
        opts.ndots = 0;
        let inner =
            TokioResolver::builder_with_config(config.clone(), TokioRuntimeProvider::default())
                .with_options(opts.clone())
                .build()
                .map_err(|e| DnsError::Other(e.to_string()))?;
        Ok(Resolver {
            inner,
            config,
            opts,
            timeout: settings.timeout,
            cache: Arc::new(Mutex::new(DnsblCache::new(DEFAULT_CACHE_ENTRIES))),
            reverse_cache: Mutex::new(TtlCache::new(DEFAULT_CACHE_ENTRIES)),
        })
    }

    /// The hickory configuration in use (hickory-resolver 0.26, the version
    /// mail-auth 0.13 takes in `MessageAuthenticator::new(config, opts)`).
    pub fn hickory_config(&self) -> (ResolverConfig, ResolverOpts) {
        (self.config.clone(), self.opts.clone())
    }

    /// The IPv4 addresses of `name` (asked as a fully qualified name).
    pub async fn lookup_ipv4(&self, name: &str) -> Result<Answer<Vec<Ipv4Addr>>, DnsError> {
        let (records, ttl) = lookup(&self.inner, self.timeout, name, RecordType::A).await?;
        let ips = records
            .into_iter()
            .filter_map(|r| match r {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect();
        Ok(Answer { records: ips, ttl })
    }

    /// The TXT records of `name`, each one's strings joined (lossy UTF-8).
    pub async fn lookup_txt(&self, name: &str) -> Result<Answer<Vec<String>>, DnsError> {
        let (records, ttl) = lookup(&self.inner, self.timeout, name, RecordType::TXT).await?;
        let texts = records
            .into_iter()
            .filter_map(|r| match r {
                RData::TXT(t) => Some(String::from_utf8_lossy(&t.txt_data.concat()).into_owned()),
                _ => None,
            })
            .collect();
        Ok(Answer {
            records: texts,
            ttl,
        })
    }

    /// Asks every zone about `ip` in parallel (each within the timeout) and
    /// returns one result per zone, in the order of `zones`. Answers are
    /// cached per (ip, zone) for their TTL clamped to [60 s, 1 h]; failures
    /// are not cached.
    pub async fn dnsbl(&self, ip: IpAddr, zones: &[String]) -> Vec<ZoneResult> {
        let now = Instant::now();
        let mut results: Vec<Option<ZoneResult>> = vec![None; zones.len()];
        let mut set = JoinSet::new();
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            for (index, zone) in zones.iter().enumerate() {
                if let Some((outcome, ttl)) = cache.get(ip, zone, now) {
                    results[index] = Some(ZoneResult {
                        zone: zone.clone(),
                        outcome,
                        ttl,
                    });
                    continue;
                }
                let (inner, timeout) = (self.inner.clone(), self.timeout);
                let name = dnsbl_query_name(ip, zone);
                set.spawn(async move {
                    let got = lookup(&inner, timeout, &name, RecordType::A).await;
                    (index, got)
                });
            }
        }
        while let Some(joined) = set.join_next().await {
            let Ok((index, got)) = joined else { continue };
            let (outcome, ttl) = match got {
                Ok((records, ttl)) => {
                    let codes = records
                        .into_iter()
                        .filter_map(|r| match r {
                            RData::A(a) => Some(a.0),
                            _ => None,
                        })
                        .collect();
                    (classify(codes), ttl)
                }
                Err(e) => (DnsblOutcome::Failed(e.to_string()), Duration::ZERO),
            };
            let zone = zones[index].clone();
            let ttl = self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(
                ip,
                &zone,
                outcome.clone(),
                ttl,
                Instant::now(),
            );
            results[index] = Some(ZoneResult { zone, outcome, ttl });
        }
        results
            .into_iter()
            .zip(zones)
            .map(|(r, zone)| {
                r.unwrap_or_else(|| ZoneResult {
                    zone: zone.clone(),
                    outcome: DnsblOutcome::Failed("lookup task failed".into()),
                    ttl: Duration::ZERO,
                })
            })
            .collect()
    }
}

/// One lookup bounded by `timeout`: the records (or none for NXDOMAIN and
/// NODATA) and their TTL.
pub(crate) async fn lookup(
    inner: &TokioResolver,
    timeout: Duration,
    name: &str,
    rtype: RecordType,
) -> Result<(Vec<RData>, Duration), DnsError> {
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    let got = tokio::time::timeout(timeout, inner.lookup(fqdn.as_str(), rtype))
        .await
        .map_err(|_| DnsError::Timeout)?;
    match got {
        Ok(lookup) => {
            let records: Vec<_> = lookup
                .answers()
                .iter()
                .filter(|r| r.record_type() == rtype)
                .collect();
            let ttl = records
                .iter()
                .map(|r| r.ttl)
                .min()
                .map_or(DEFAULT_NEGATIVE_TTL, |t| Duration::from_secs(u64::from(t)));
            Ok((records.into_iter().map(|r| r.data.clone()).collect(), ttl))
        }
        Err(e) => map_error(e),
    }
}

/// NXDOMAIN/NODATA become an empty answer; the rest typed failures.
fn map_error(e: NetError) -> Result<(Vec<RData>, Duration), DnsError> {
    match e {
        NetError::Timeout => Err(DnsError::Timeout),
        NetError::Dns(HickoryDnsError::NoRecordsFound(no)) => match no.response_code {
            ResponseCode::NXDomain | ResponseCode::NoError => {
                let ttl = no
                    .negative_ttl
                    .map_or(DEFAULT_NEGATIVE_TTL, |t| Duration::from_secs(u64::from(t)));
                Ok((Vec::new(), ttl))
            }
            ResponseCode::ServFail => Err(DnsError::ServFail),
            code => Err(DnsError::Other(format!("response code {code}"))),
        },
        NetError::Dns(HickoryDnsError::ResponseCode(ResponseCode::ServFail)) => {
            Err(DnsError::ServFail)
        }
        other => Err(DnsError::Other(other.to_string())),
    }
}
