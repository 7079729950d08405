//! DNS queries for the diagnostics, through the same servers and options as
//! the box's [`mxgate_dns::Resolver`], but keeping NXDOMAIN ("no such
//! domain") apart from NODATA ("no record of this type"): the MX look-up
//! needs the difference (RFC 5321 §5.1 falls back to the address records
//! only when the domain exists).

use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use mxgate_dns::Resolver;
use std::time::Duration;

/// What a query found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Found {
    /// Records of the asked type with their TTLs, in answer order.
    Records(Vec<(RData, u32)>),
    /// The name exists but has no record of this type.
    NoData,
    /// The name does not exist.
    NxDomain,
}

/// A hickory resolver built from the box's resolver configuration.
#[derive(Clone)]
pub(crate) struct Dns {
    inner: TokioResolver,
    /// The budget of one query, retries included.
    limit: Duration,
}

impl Dns {
    /// Uses the servers and options of `resolver`.
    pub(crate) fn new(resolver: &Resolver) -> Result<Dns, String> {
        let (config, opts) = resolver.hickory_config();
        let limit = opts.timeout * u32::try_from(opts.attempts.max(1)).unwrap_or(1);
        let inner = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| format!("resolver configuration: {e}"))?;
        Ok(Dns { inner, limit })
    }

    /// Asks for the `rtype` records of `name` (as a fully qualified name).
    ///
    /// # Errors
    /// A sentence for the page: `timeout`, `SERVFAIL`, or what went wrong.
    pub(crate) async fn query(&self, name: &str, rtype: RecordType) -> Result<Found, String> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let got = tokio::time::timeout(self.limit, self.inner.lookup(fqdn.as_str(), rtype))
            .await
            .map_err(|_| "timeout".to_owned())?;
        match got {
            Ok(lookup) => {
                let records: Vec<_> = lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == rtype)
                    .map(|r| (r.data.clone(), r.ttl))
                    .collect();
                Ok(if records.is_empty() {
                    Found::NoData
                } else {
                    Found::Records(records)
                })
            }
            Err(e) => classify(e),
        }
    }
}

/// Negative answers become [`Found`]; the rest a failure text.
fn classify(e: NetError) -> Result<Found, String> {
    match e {
        NetError::Timeout => Err("timeout".to_owned()),
        NetError::Dns(HickoryDnsError::NoRecordsFound(no)) => match no.response_code {
            ResponseCode::NXDomain => Ok(Found::NxDomain),
            ResponseCode::NoError => Ok(Found::NoData),
            code => Err(rcode_text(code)),
        },
        NetError::Dns(HickoryDnsError::ResponseCode(code)) => Err(rcode_text(code)),
        other => Err(other.to_string()),
    }
}

fn rcode_text(code: ResponseCode) -> String {
    match code {
        ResponseCode::ServFail => "SERVFAIL (the domain's name servers failed)".to_owned(),
        ResponseCode::Refused => "REFUSED by the name server".to_owned(),
        code => format!("response code {code}"),
    }
}
