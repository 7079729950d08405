//! The Dashboard: this box (name, version, uptime, health) and its host
//! (CPU, load, memory, disk, interfaces: `/api/v1/host`), the mail counters
//! (accepted, rejected, deferred), sessions and messages per minute as
//! charts (`/api/v1/history`), the top reject reasons, VRRP and peer sync,
//! listeners and backend health (`/api/v1/status`). `/assets/dashboard.js`
//! reloads the live panels every 10 s; without it the page is complete.

use super::layout::{self, badge, respond, Frame};
use super::{chart, host};
use crate::auth::AuthUser;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Serialize;

/// A serde enum's name (`l4`, `master`, ...).
pub(crate) fn word<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// `3d 4h`, `5h 2m`, `42s`.
pub(crate) fn duration(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

pub(crate) async fn page(State(state): State<AppState>, user: AuthUser) -> Response {
    let status = state.status();
    let host = crate::api::host::read(&state).await.ok();
    let samples = crate::state::lock(&state.inner.history).samples();
    let frame = Frame {
        node: &state.inner.node,
        user: Some(&user),
        current: "/",
    };
    let health_word = if status.health == "ok" { "ok" } else { "bad" };
    let body = html! {
        div #live data-refresh="10" {
        (counters(&status, &state))
        (charts(&samples))
        div.grid {
            section.card aria-labelledby="box-h" {
                h2 #box-h { "This box" }
                dl.facts {
                    dt { "Node" } dd { (status.node) }
                    dt { "Version" } dd { (status.version) }
                    dt { "Uptime" } dd { (duration(status.uptime_s)) }
                    dt { "Health" } dd { span class={ "badge " (health_word) } { (status.health) } }
                    dt { "Open connections" } dd { (status.active_connections) }
                }
            }
            section.card aria-labelledby="vrrp-h" {
                h2 #vrrp-h { "Failover (VRRP)" }
                (vrrp(&status))
            }
            section.card aria-labelledby="sync-h" {
                h2 #sync-h { "Peer sync" }
                (sync(&status))
            }
        }
        @if let Some(h) = &host { (host::panel(h)) } @else { p.notice.bad { "The host readings are not available." } }
        section.card aria-labelledby="listeners-h" {
            h2 #listeners-h { "Listeners" }
            @if status.listeners.is_empty() {
                p.empty { "No listener is configured." }
            } @else {
                div.scroll { table {
                    thead { tr { th { "Name" } th { "Address" } th { "Mode" } th { "Pool" } th { "State" } th { "Open" } th.hide-small { "Accepted" } th.hide-small { "Rejected" } } }
                    tbody { @for l in &status.listeners { tr {
                        td { (l.name) }
                        td.mono { (l.local_addr.unwrap_or(l.bind).to_string()) }
                        td { (word(&l.mode)) }
                        td { (l.pool) }
                        td { @if l.bound { (badge("up")) } @else { (badge("down")) " " span.small { (l.error.as_deref().unwrap_or("")) } } }
                        td { (l.connections.active) }
                        td.hide-small { (l.connections.accepted) }
                        td.hide-small { (l.connections.rejected) }
                    } } }
                } }
            }
        }
        section.card aria-labelledby="backends-h" {
            h2 #backends-h { "Backends" }
            @if status.pools.is_empty() {
                p.empty { "No pool is configured." }
            }
            @for p in &status.pools {
                p {
                    strong { (p.name) } ": "
                    @for s in &p.servers {
                        span.small { (s.name) " " (badge(s.health.as_str())) " " }
                    }
                }
            }
            p { a href="/backends" { "Manage the backends" } }
        }
        }
        script src="/assets/dashboard.js" defer {}
    };
    respond(StatusCode::OK, layout::page(&frame, "Dashboard", body))
}

fn vrrp(status: &crate::Status) -> Markup {
    html! {
        @if let Some(v) = &status.vrrp {
            dl.facts {
                dt { "State" } dd { (badge(&word(&v.report.state))) }
                dt { "Priority" } dd { (v.report.priority) }
                dt { "Virtual IPs" } dd.mono { (v.virtual_ips.join(", ")) }
                dt { "Master" } dd.mono { (v.master.map_or("unknown".to_string(), |m| m.to_string())) }
                dt { "Interface" } dd { (v.interface) }
            }
        } @else {
            p.muted { "Not configured on this box (no " code { "[vrrp]" } " in its node file)." }
        }
    }
}

fn sync(status: &crate::Status) -> Markup {
    html! {
        @if let Some(s) = &status.sync {
            dl.facts {
                dt { "Peer" } dd.mono { (s.peer) @if let Some(n) = &s.peer_name { " (" (n) ")" } }
                dt { "Connected" } dd { @if s.up { (badge("up")) } @else { (badge("down")) } }
                dt { "Lag" } dd { (s.lag_ms.map_or("–".to_string(), |l| format!("{l} ms"))) }
                dt { "Pending" } dd { (s.pending) }
                @if let Some(e) = &s.last_error { dt { "Last error" } dd.small { (e) } }
            }
        } @else {
            p.muted { "Not configured on this box (no " code { "[sync]" } " in its node file)." }
        }
    }
}

/// Verdict results that turned a sender away (or made it wait).
const REFUSING: &[&str] = &[
    "block",
    "limited",
    "reject",
    "drop",
    "listed",
    "fail",
    "defer",
    "deferred",
    "greylisted",
];

/// The mail counters since start and the top reject reasons.
fn counters(status: &crate::Status, state: &AppState) -> Markup {
    let sum = |f: fn(&mxgate_gateway::ListenerStatus) -> u64| -> u64 {
        status.listeners.iter().map(f).sum()
    };
    let mut reasons: Vec<(String, u64)> = state
        .inner
        .gateway
        .filter_verdicts()
        .into_iter()
        .filter(|(_, result, n)| *n > 0 && REFUSING.contains(&result.as_str()))
        .map(|(check, result, n)| (format!("{check}: {result}"), n))
        .collect();
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    reasons.truncate(5);
    html! {
        div.grid {
            section.card aria-labelledby="mail-h" {
                h2 #mail-h { "Mail since start" }
                div.scroll { table {
                    thead { tr { th { "" } th { "Accepted" } th { "Rejected" } th { "Deferred" } } }
                    tbody {
                        tr { th scope="row" { "Connections" }
                            td.ok { (sum(|l| l.connections.accepted)) }
                            td.bad { (sum(|l| l.connections.rejected)) }
                            td.pending { (sum(|l| l.connections.tempfail)) } }
                        tr { th scope="row" { "Messages (smtp mode)" }
                            td.ok { (sum(|l| l.connections.messages_accepted)) }
                            td.bad { (sum(|l| l.connections.messages_rejected)) }
                            td.pending { (sum(|l| l.connections.messages_tempfail)) } }
                    }
                } }
            }
            section.card aria-labelledby="reasons-h" {
                h2 #reasons-h { "Top reject reasons" }
                @if reasons.is_empty() {
                    p.muted { "Nothing was refused by screening or policy since start." }
                } @else {
                    ol { @for (reason, n) in &reasons { li { (reason) " — " strong { (n) } } } }
                }
            }
        }
    }
}

/// Sessions and messages per minute over the kept history.
fn charts(samples: &[crate::history::Sample]) -> Markup {
    let minutes = samples
        .first()
        .zip(samples.last())
        .map_or(0, |(a, b)| (b.unix_ms - a.unix_ms) / 60_000);
    let span = format!("last {minutes} min, one point per 10 s");
    let sessions: Vec<Option<f64>> = samples.iter().map(|s| s.sessions_per_min).collect();
    let messages: Vec<Option<f64>> = samples.iter().map(|s| s.messages_per_min).collect();
    html! {
        section.card aria-labelledby="rates-h" {
            h2 #rates-h { "Traffic" }
            div.grid {
                (chart::line("chart-sessions", "Sessions per minute", "/min", &span, &sessions))
                (chart::line("chart-messages", "Messages per minute", "/min", &span, &messages))
            }
        }
    }
}
