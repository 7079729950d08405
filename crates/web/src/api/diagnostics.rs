//! The diagnostics API (admins only: each makes outbound connections):
//! `POST /api/v1/diagnostics/mx` (MX/A/AAAA look-up of a domain through
//! the node's resolver), `.../probe` (connect to an SMTP server: banner
//! timing, EHLO, STARTTLS and the certificate) and `.../test-message`
//! (one message through the VIP or any address, with the reply that says
//! where it landed and, when this box tracked it, its tracking record).
//! Every input is bounded (names, port, timeout of at most
//! [`MAX_TIMEOUT_S`] s); a refused one is a 422 naming the field. The
//! checks and runs are shared with the Diagnostics page.

use super::ApiJson;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use mxgate_diagnostics::{MxReport, ProbeReport, TestMessageReport};
use mxgate_store::TrackQuery;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use utoipa::ToSchema;

/// The longest (and default) time a diagnostic may take, in seconds.
pub(crate) const MAX_TIMEOUT_S: i64 = 10;
/// How long to look for the test message's tracking record.
const TRACKING_WAIT: Duration = Duration::from_secs(3);

/// An MX look-up.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
pub(crate) struct MxRequest {
    /// The mail domain, e.g. `example.com` (IDNs allowed).
    pub domain: String,
}

/// An SMTP probe.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
pub(crate) struct ProbeRequest {
    /// Host name (resolved with the node's resolver, A record) or IP
    /// address.
    pub host: String,
    /// TCP port, 1..65535 (default 25).
    pub port: Option<i64>,
    /// The name for SNI and certificate verification (default: `host` when
    /// it is a name).
    pub server_name: Option<String>,
    /// Seconds, 1..10 (default 10).
    pub timeout_s: Option<i64>,
}

/// A test message.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
pub(crate) struct TestMessageRequest {
    /// Envelope recipient.
    pub to: String,
    /// Envelope sender (default `postmaster@<node name>`).
    pub from: Option<String>,
    /// `IP:port` to send to (default: the VRRP VIP on the first
    /// listener's port when VRRP runs, else the first listener).
    pub address: Option<String>,
    /// Seconds, 1..10 (default 10).
    pub timeout_s: Option<i64>,
}

/// A probe, with the host name look-up before it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProbeResult {
    /// The host as asked.
    pub host: String,
    /// Milliseconds the host name took to resolve (`None` for an address).
    pub resolve_millis: Option<f64>,
    /// The probe.
    #[serde(flatten)]
    pub report: ProbeReport,
}

/// A test message, with where the tracking has it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TestMessageResult {
    /// The conversation.
    #[serde(flatten)]
    pub report: TestMessageReport,
    /// This box's tracking record of the session, when it has one.
    pub tracking_session: Option<i64>,
    /// Its API address.
    pub tracking_url: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/diagnostics/mx", tag = "diagnostics",
    request_body = MxRequest,
    responses(
        (status = 200, description = "The MX hosts by preference with their A/AAAA addresses, warnings and timing"),
        (status = 403, description = "Read-only users cannot run diagnostics"),
        (status = 422, description = "Not a domain name: `{error, field, reason}`"),
        (status = 503, description = "The node has no resolver"),
    ), security(("session" = [])))]
pub(crate) async fn mx(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<MxRequest>,
) -> Result<Json<MxReport>, ApiError> {
    run_mx(&state, &request).await.map(Json)
}

#[utoipa::path(post, path = "/api/v1/diagnostics/probe", tag = "diagnostics",
    request_body = ProbeRequest,
    responses(
        (status = 200, description = "Banner timing, EHLO, STARTTLS and certificate details, each step timed"),
        (status = 403, description = "Read-only users cannot run diagnostics"),
        (status = 422, description = "A refused field (host, port, server_name, timeout_s)"),
    ), security(("session" = [])))]
pub(crate) async fn probe(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ProbeRequest>,
) -> Result<Json<ProbeResult>, ApiError> {
    run_probe(&state, &request).await.map(Json)
}

#[utoipa::path(post, path = "/api/v1/diagnostics/test-message", tag = "diagnostics",
    request_body = TestMessageRequest,
    responses(
        (status = 200, description = "Every reply, the final one, the queue id and the tracking record"),
        (status = 403, description = "Read-only users cannot run diagnostics"),
        (status = 422, description = "A refused field (to, from, address, timeout_s)"),
    ), security(("session" = [])))]
pub(crate) async fn test_message(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<TestMessageRequest>,
) -> Result<Json<TestMessageResult>, ApiError> {
    run_test_message(&state, &request).await.map(Json)
}

/// Checks and runs an MX look-up.
pub(crate) async fn run_mx(state: &AppState, request: &MxRequest) -> Result<MxReport, ApiError> {
    let domain = check_domain("domain", &request.domain)?;
    let resolver = resolver(state)?;
    let budget = Duration::from_secs(MAX_TIMEOUT_S.unsigned_abs());
    tokio::time::timeout(budget, mxgate_diagnostics::mx_lookup(&resolver, &domain))
        .await
        .map_err(|_| ApiError::new(StatusCode::GATEWAY_TIMEOUT, "the look-up took over 10 s"))
}

/// Checks a probe request, resolves the host and probes it.
pub(crate) async fn run_probe(
    state: &AppState,
    request: &ProbeRequest,
) -> Result<ProbeResult, ApiError> {
    let host = request.host.trim();
    let literal = host.parse::<IpAddr>().ok();
    let name = match literal {
        Some(_) => None,
        None => Some(check_domain("host", host)?),
    };
    let port = port("port", request.port)?;
    let timeout = timeout(request.timeout_s)?;
    let server_name = match request.server_name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => Some(check_domain("server_name", n)?),
        _ => name.clone(),
    };
    let (ip, resolve_millis) = match literal {
        Some(ip) => (ip, None),
        None => {
            let started = Instant::now();
            let ip = resolve(state, name.as_deref().unwrap_or(host)).await?;
            (ip, Some(started.elapsed().as_secs_f64() * 1000.0))
        }
    };
    let helo = helo_name(state);
    let report = mxgate_diagnostics::probe_smtp(
        SocketAddr::new(ip, port),
        server_name.as_deref(),
        &helo,
        timeout,
    )
    .await;
    Ok(ProbeResult {
        host: host.to_owned(),
        resolve_millis,
        report,
    })
}

/// Checks a test message request, sends it and looks for its tracking
/// record.
pub(crate) async fn run_test_message(
    state: &AppState,
    request: &TestMessageRequest,
) -> Result<TestMessageResult, ApiError> {
    let to = check_mailbox("to", &request.to)?;
    let from = match request.from.as_deref().map(str::trim) {
        Some(f) if !f.is_empty() => check_mailbox("from", f)?,
        _ => default_from(state),
    };
    let addr = match request.address.as_deref().map(str::trim) {
        Some(a) if !a.is_empty() => a.parse::<SocketAddr>().map_err(|_| {
            ApiError::invalid(
                "address",
                format!("{a:?} is not IP:port (e.g. 192.0.2.25:25)"),
            )
        })?,
        _ => default_address(state).ok_or_else(|| {
            ApiError::invalid("address", "no listener is configured: give an IP:port")
        })?,
    };
    if addr.port() == 0 || addr.ip().is_unspecified() {
        return Err(ApiError::invalid(
            "address",
            format!("{addr} cannot be connected to"),
        ));
    }
    let timeout = timeout(request.timeout_s)?;
    let since = unix_ms() - 1000;
    let helo = helo_name(state);
    let report = mxgate_diagnostics::send_test_message(addr, &helo, &from, &to, timeout).await;
    let tracking_session = if report.accepted {
        find_tracking(state, &from, &to, since).await
    } else {
        None
    };
    Ok(TestMessageResult {
        report,
        tracking_url: tracking_session.map(|id| format!("/api/v1/tracking/{id}")),
        tracking_session,
    })
}

/// The address a test message goes to by default: the VIP on the first
/// listener's port when VRRP runs, else the first listener's bound
/// address (loopback for a wildcard bind).
pub(crate) fn default_address(state: &AppState) -> Option<SocketAddr> {
    let first = state.inner.gateway.listeners().into_iter().next()?;
    let bound = first.local_addr.unwrap_or(first.bind);
    let vip = vips(state).into_iter().next();
    let ip = match (vip, bound.ip()) {
        (Some(vip), _) => vip,
        (None, ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        (None, ip) => ip,
    };
    Some(SocketAddr::new(ip, bound.port()))
}

/// The VRRP virtual IPs, when a virtual router runs.
pub(crate) fn vips(state: &AppState) -> Vec<IpAddr> {
    state.vrrp().map_or_else(Vec::new, |snapshot| {
        snapshot
            .virtual_ips
            .iter()
            .filter_map(|v| v.split('/').next()?.parse().ok())
            .collect()
    })
}

/// `postmaster@<node name>`.
pub(crate) fn default_from(state: &AppState) -> String {
    format!("postmaster@{}", state.inner.node)
}

/// The name the diagnostics say EHLO with: the node's name.
fn helo_name(state: &AppState) -> String {
    state.inner.node.clone()
}

fn resolver(state: &AppState) -> Result<Arc<mxgate_dns::Resolver>, ApiError> {
    state.inner.resolver.get().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node has no DNS resolver (see the log and [dns] servers in the node file)",
        )
    })
}

/// The first IPv4 address of `name`, through the node's resolver.
async fn resolve(state: &AppState, name: &str) -> Result<IpAddr, ApiError> {
    let answer = resolver(state)?
        .lookup_ipv4(name)
        .await
        .map_err(|e| ApiError::invalid("host", format!("{name}: look-up failed: {e}")))?;
    answer
        .records
        .first()
        .map(|ip| IpAddr::V4(*ip))
        .ok_or_else(|| ApiError::invalid("host", format!("{name} has no A record")))
}

/// The session this box tracked for a message from `from` to `to` since
/// `since_unix_ms`, looked for during [`TRACKING_WAIT`] (records are
/// written just after the session ends).
async fn find_tracking(state: &AppState, from: &str, to: &str, since_unix_ms: i64) -> Option<i64> {
    let query = TrackQuery {
        sender: Some(from.to_owned()),
        recipient: Some(to.to_owned()),
        since_unix_ms: Some(since_unix_ms),
        limit: 1,
        ..TrackQuery::default()
    };
    let deadline = Instant::now() + TRACKING_WAIT;
    loop {
        let q = query.clone();
        let found = state
            .blocking(move |store| Ok(store.search(&q)?))
            .await
            .ok()
            .and_then(|sessions| sessions.first().and_then(|s| s.id));
        if found.is_some() || Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `text` as a domain name (lower case, no trailing dot): 1..253
/// characters, labels of 1..63 letters (any script), digits, `-` or `_`.
///
/// # Errors
/// 422 naming `field`.
pub(crate) fn check_domain(field: &str, text: &str) -> Result<String, ApiError> {
    let name = text.trim().trim_end_matches('.').to_lowercase();
    let bad = |why: &str| ApiError::invalid(field, format!("{name:?} is not a domain name: {why}"));
    if name.is_empty() {
        return Err(ApiError::invalid(
            field,
            "empty; expected a name such as example.com",
        ));
    }
    if name.len() > 253 {
        return Err(bad("longer than 253 characters"));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(bad("every label must be 1 to 63 characters"));
        }
        if !label
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad("only letters, digits, '-' and '_' between the dots"));
        }
    }
    Ok(name)
}

/// `text` as a mail address `local@domain` (at most 254 characters, no
/// spaces or angle brackets).
///
/// # Errors
/// 422 naming `field`.
pub(crate) fn check_mailbox(field: &str, text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    let bad = || {
        ApiError::invalid(
            field,
            format!("{text:?} is not a mail address like user@example.com"),
        )
    };
    if text.len() > 254
        || text.contains(|c: char| c.is_whitespace() || c.is_control() || "<>\"".contains(c))
    {
        return Err(bad());
    }
    let (local, domain) = text.rsplit_once('@').ok_or_else(bad)?;
    if local.is_empty() || local.len() > 64 {
        return Err(bad());
    }
    check_domain(field, domain).map_err(|_| bad())?;
    Ok(text.to_owned())
}

/// A port, 1..65535; `None` is 25.
fn port(field: &str, port: Option<i64>) -> Result<u16, ApiError> {
    let port = port.unwrap_or(25);
    u16::try_from(port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| ApiError::invalid(field, format!("{port} is not a port: 1 to 65535")))
}

/// A timeout in seconds, 1..[`MAX_TIMEOUT_S`]; `None` is the longest.
fn timeout(seconds: Option<i64>) -> Result<Duration, ApiError> {
    let s = seconds.unwrap_or(MAX_TIMEOUT_S);
    if (1..=MAX_TIMEOUT_S).contains(&s) {
        Ok(Duration::from_secs(s.unsigned_abs()))
    } else {
        Err(ApiError::invalid(
            "timeout_s",
            format!("{s} s is out of range: 1 to {MAX_TIMEOUT_S}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_bounded_with_the_field_named() {
        assert_eq!(
            check_domain("domain", " Example.COM. ").unwrap(),
            "example.com"
        );
        assert!(check_domain("domain", "b\u{fc}cher.de").is_ok());
        for bad in [
            "",
            "a..b",
            "a b.c",
            "x;rm.c",
            &"a".repeat(64),
            &"a.".repeat(130),
        ] {
            let e = check_domain("domain", bad).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.field.as_deref()),
                (422, Some("domain")),
                "{bad:?}"
            );
        }
        assert_eq!(port("port", None).unwrap(), 25);
        for bad in [0, -1, 65_536] {
            assert_eq!(
                port("port", Some(bad)).unwrap_err().field.as_deref(),
                Some("port")
            );
        }
        assert_eq!(timeout(None).unwrap(), Duration::from_secs(10));
        for bad in [0, 11, -5] {
            assert_eq!(
                timeout(Some(bad)).unwrap_err().field.as_deref(),
                Some("timeout_s")
            );
        }
        assert_eq!(
            check_mailbox("to", "a@example.test").unwrap(),
            "a@example.test"
        );
        for bad in ["a", "@example.test", "a@", "a b@c.d", "<a@b.c>", "a@b..c"] {
            assert_eq!(
                check_mailbox("to", bad).unwrap_err().field.as_deref(),
                Some("to"),
                "{bad:?}"
            );
        }
    }
}
