//! The Dashboard: this box (name, version, uptime, health), its listeners,
//! its backends' health, VRRP and peer sync, from the same status document
//! as `/api/v1/status`.

use super::layout::{self, badge, respond, Frame};
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
fn duration(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

pub(crate) async fn page(State(state): State<AppState>, user: AuthUser) -> Response {
    let status = state.status();
    let frame = Frame {
        node: &state.inner.node,
        user: Some(&user),
        current: "/",
    };
    let health_word = if status.health == "ok" { "ok" } else { "bad" };
    let body = html! {
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
