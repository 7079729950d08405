//! `POST /api/v1/dns-helper`: the zone lines to publish for the pair
//! (active-passive: one MX on the VIP; active-active: one MX per box at
//! equal priority), the MTA-STS and TLS-RPT records, the TTL advice, and
//! the MTA-STS policy text for the same MX hosts. Pure computation: it
//! changes nothing (saving the policy is `PUT /api/v1/mta-sts`); as a POST
//! it is for admins like every POST of the API, while the DNS helper page
//! (a GET form, open to read-only users) runs the same [`run`].

use super::mta_sts::{first_error, parse_mode};
use super::ApiJson;
use crate::error::ApiError;
use axum::Json;
use mxgate_diagnostics::{
    mta_sts_policy, zone_records, DeployMode, FieldError, MxHostSpec, ZoneReport, ZoneRequest,
};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};
use utoipa::ToSchema;

/// The default MTA-STS `max_age`: one week.
pub(crate) const DEFAULT_MAX_AGE: i64 = 604_800;

/// One public MX host.
#[derive(Debug, Default, Clone, Deserialize, Serialize, ToSchema)]
pub(crate) struct HostInput {
    /// Host name, e.g. `mx1.example.com`.
    pub name: String,
    /// Its public IPv4/IPv6 addresses.
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// What the DNS helper needs.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
pub(crate) struct DnsHelperRequest {
    /// The mail domain.
    pub domain: String,
    /// `active-passive` (one host, on the VIP) or `active-active` (one
    /// host per box).
    pub mode: String,
    /// The MX hosts.
    pub hosts: Vec<HostInput>,
    /// TLS-RPT report URIs (default `mailto:tlsrpt@<domain>`).
    pub tls_rpt_rua: Option<String>,
    /// `enforce`, `testing` (default, also for an empty value) or `none`.
    pub mta_sts_mode: Option<String>,
    /// Seconds (default one week).
    pub max_age: Option<i64>,
    /// The `_mta-sts` TXT id (default: the current Unix time).
    pub mta_sts_id: Option<String>,
    /// The MX records are being moved to these hosts now (short TTLs).
    pub migrating: Option<bool>,
}

/// The zone lines and the MTA-STS policy.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DnsHelperResult {
    /// Records, zone text, TTL advice and notes.
    pub zone: ZoneReport,
    /// The `/.well-known/mta-sts.txt` body for these hosts.
    pub mta_sts_policy: String,
}

#[utoipa::path(post, path = "/api/v1/dns-helper", tag = "dns",
    request_body = DnsHelperRequest,
    responses(
        (status = 200, description = "`{zone: {records, zone_text, ttl_advice, notes}, mta_sts_policy}`"),
        (status = 422, description = "A refused field (domain, mode, hosts, hosts[i].name, hosts[i].addresses, tls_rpt_rua, mta_sts_mode, max_age, mta_sts_id)"),
    ), security(("session" = [])))]
pub(crate) async fn generate(
    ApiJson(request): ApiJson<DnsHelperRequest>,
) -> Result<Json<DnsHelperResult>, ApiError> {
    run(&request).map(Json)
}

/// Checks `request` and builds the records and the policy.
///
/// # Errors
/// 422 naming the first refused field.
pub(crate) fn run(request: &DnsHelperRequest) -> Result<DnsHelperResult, ApiError> {
    let mode = match request.mode.trim() {
        "active-passive" => DeployMode::ActivePassive,
        "active-active" => DeployMode::ActiveActive,
        other => {
            return Err(ApiError::invalid(
                "mode",
                format!("{other:?} is not a mode: active-passive or active-active"),
            ))
        }
    };
    let sts_mode = parse_mode(
        "mta_sts_mode",
        request
            .mta_sts_mode
            .as_deref()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or("testing"),
    )?;
    let max_age = request.max_age.unwrap_or(DEFAULT_MAX_AGE);
    let max_age = u64::try_from(max_age)
        .map_err(|_| ApiError::invalid("max_age", format!("{max_age} s is negative")))?;
    let mut hosts = Vec::new();
    for (i, host) in request.hosts.iter().enumerate() {
        hosts.push(MxHostSpec {
            name: host.name.clone(),
            addresses: addresses(i, &host.addresses)?,
        });
    }
    let zone_request = ZoneRequest {
        domain: request.domain.clone(),
        mode,
        hosts,
        mta_sts_id: request
            .mta_sts_id
            .clone()
            .filter(|id| !id.trim().is_empty())
            .unwrap_or_else(policy_id),
        tls_rpt_rua: request.tls_rpt_rua.clone().filter(|r| !r.trim().is_empty()),
        migrating: request.migrating.unwrap_or(false),
    };
    let zone = zone_records(&zone_request).map_err(first_error)?;
    let names: Vec<String> = request.hosts.iter().map(|h| h.name.clone()).collect();
    let mta_sts_policy = mta_sts_policy(sts_mode, &names, max_age)
        .map_err(|errors| first_error(errors.into_iter().map(host_field).collect()))?;
    Ok(DnsHelperResult {
        zone,
        mta_sts_policy,
    })
}

/// The addresses of host `i`, parsed.
fn addresses(i: usize, texts: &[String]) -> Result<Vec<IpAddr>, ApiError> {
    texts
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse().map_err(|_| {
                ApiError::invalid(
                    format!("hosts[{i}].addresses"),
                    format!("{t:?} is not an IPv4 or IPv6 address"),
                )
            })
        })
        .collect()
}

/// The policy's `mx[i]` error as the request's `hosts[i].name`.
fn host_field(mut e: FieldError) -> FieldError {
    if let Some(i) = e
        .field
        .strip_prefix("mx[")
        .and_then(|r| r.strip_suffix(']'))
    {
        e.field = format!("hosts[{i}].name");
    } else if e.field == "mx" {
        e.field = "hosts".to_owned();
    }
    e
}

/// A fresh MTA-STS policy id: the Unix time in seconds.
fn policy_id() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .to_string()
}
