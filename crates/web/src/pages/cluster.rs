//! The Cluster page: peer sync (peer, connection, last sync, lag, pending,
//! conflicts, refusals, last error, clock skew), VRRP state and settings
//! (read-only, from the running virtual router), and pairing: an admin
//! creates a one-time code here (shown once, with its expiry and the
//! `mxgate cluster join` command for the other box) or joins a peer with
//! the peer's code. Both go through [`crate::api::cluster`], like the API.

use super::dashboard::{duration, word};
use super::form::field;
use super::layout::{self, badge, csrf_field, respond, Frame};
use super::time::civil_from_days;
use crate::api::cluster::{self, ClusterView, JoinRequest, PairingCode};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use mxgate_store::Role;

/// What the last form did.
enum Outcome {
    /// A new pairing code, shown once.
    Code(PairingCode),
    /// The join worked.
    Joined(String),
    /// A refused form.
    Refused {
        /// The join form as typed (none for the pairing button).
        form: Option<JoinRequest>,
        error: ApiError,
    },
}

pub(crate) async fn page(State(state): State<AppState>, user: AuthUser) -> Response {
    render(&state, &user, None)
}

pub(crate) async fn create_pairing(State(state): State<AppState>, user: AuthUser) -> Response {
    let outcome = match cluster::create_pairing(&state, &user).await {
        Ok(code) => Outcome::Code(code),
        Err(error) => Outcome::Refused { form: None, error },
    };
    render(&state, &user, Some(outcome))
}

/// The hand-over form's hold.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct HandOverForm {
    #[serde(default)]
    hold_s: Option<u64>,
}

/// "Hand over to peer": back to the page, which shows the new state.
pub(crate) async fn handover(
    State(state): State<AppState>,
    user: AuthUser,
    Form(form): Form<HandOverForm>,
) -> Response {
    match crate::api::handover::hand_over(&state, &user, form.hold_s).await {
        Ok(_) => {
            axum::response::IntoResponse::into_response(axum::response::Redirect::to("/cluster"))
        }
        Err(error) => render(&state, &user, Some(Outcome::Refused { form: None, error })),
    }
}

pub(crate) async fn join(
    State(state): State<AppState>,
    user: AuthUser,
    Form(form): Form<JoinRequest>,
) -> Response {
    let outcome = match cluster::join(&state, &user, &form).await {
        Ok(_) => Outcome::Joined(form.peer.trim().to_string()),
        Err(error) => Outcome::Refused {
            form: Some(form),
            error,
        },
    };
    render(&state, &user, Some(outcome))
}

fn render(state: &AppState, user: &AuthUser, outcome: Option<Outcome>) -> Response {
    let view = cluster::view(state);
    let status = match &outcome {
        Some(Outcome::Refused { error, .. }) => error.status,
        _ => StatusCode::OK,
    };
    let frame = Frame {
        node: &state.inner.node,
        user: Some(user),
        current: "/cluster",
    };
    let admin = user.role == Role::Admin;
    let body = html! {
        @match &outcome {
            Some(Outcome::Joined(peer)) => p.notice role="status" {
                "Paired with " strong { (peer) } ". Both boxes trust each other now; the running \
                 services connect by themselves within seconds (watch “Connected” below)." },
            Some(Outcome::Refused { error, form }) if form.is_none() || error.field.is_none() =>
                p.notice.bad role="alert" { (error.error) },
            _ => {}
        }
        @if !admin { p.notice { "You are logged in read-only: you can look, not change." } }
        div.grid {
            section.card aria-labelledby="sync-h" { h2 #sync-h { "Peer sync" } (sync(&view)) }
            section.card aria-labelledby="vrrp-h" { h2 #vrrp-h { "Failover (VRRP)" } (vrrp(&view)) }
        }
        @if admin { (handover_form(user, &view)) (pairing(state, user, &view, outcome.as_ref())) }
    };
    respond(status, layout::page(&frame, "Cluster", body))
}

fn sync(view: &ClusterView) -> Markup {
    html! {
        @if let Some(s) = &view.sync {
            dl.facts {
                dt { "Peer" } dd.mono { (s.peer) @if let Some(n) = &s.peer_name { " (" (n) ")" } }
                dt { "Connected" } dd #sync-up { @if s.up { (badge("up")) } @else { (badge("down")) } }
                dt { "Last sync" } dd { (s.last_sync_unix_ms.map_or("never".to_string(), ago)) }
                dt { "Lag" } dd { (s.lag_ms.map_or("–".to_string(), |l| format!("{l} ms"))) }
                dt { "Pending changes" } dd { (s.pending) }
                dt { "Conflicts" } dd { (s.conflicts_total) }
                dt { "Refusals" } dd { (s.refused_total) }
                dt { "Max clock skew" } dd { (s.max_skew_ms.map_or("–".to_string(), |k| format!("{k} ms"))) }
                @if let Some(e) = &s.last_error { dt { "Last error" } dd.small.mono { (e) } }
            }
            @if let Some(expires) = view.pairing_expires_unix {
                p.small { "A pairing code of this box is waiting for the other box (expires in "
                    (duration(expires.saturating_sub(mxgate_sync::pairing::now_unix()))) ")." }
            }
        } @else {
            p.muted #sync-not-configured { "Peer sync is not configured on this box: add "
                code { "[sync] listen" } " and " code { "peer" } " to its node file and restart it, then pair the boxes here." }
        }
    }
}

/// `12 s ago` for a Unix-ms time.
fn ago(unix_ms: u64) -> String {
    let now = mxgate_sync::pairing::now_unix();
    format!("{} ago", duration(now.saturating_sub(unix_ms / 1000)))
}

fn vrrp(view: &ClusterView) -> Markup {
    html! {
        @if let Some(v) = &view.vrrp {
            dl.facts {
                dt { "State" } dd { (badge(&word(&v.report.state))) " for " (duration(v.report.in_state_ms / 1000)) }
                dt { "Virtual router" } dd { (v.report.vrid) }
                dt { "Priority (effective)" } dd { (v.report.priority) }
                dt { "Interface" } dd { (v.interface) " " @match v.link_up { Some(true) => (badge("up")), Some(false) => (badge("down")), None => "" } }
                dt { "Virtual IPs" } dd.mono { (v.virtual_ips.join(", ")) }
                dt { "Master" } dd.mono { (v.master.map_or("unknown".to_string(), |m| m.to_string())) }
                dt { "Tracked weight" } dd { (v.tracked_weight) @if v.tracked_fault { " " (badge("fault")) } }
                dt { "Adverts" } dd { (v.adverts_received) " received, " (v.adverts_sent) " sent" }
            }
            @if !v.report.transitions.is_empty() {
                details { summary { "Last transitions" }
                    ul.small { @for t in &v.report.transitions {
                        li { (duration(t.ago_ms / 1000)) " ago: " (word(&t.from)) " → " (word(&t.to)) " (" (t.description) ")" }
                    } }
                }
            }
            p.small.muted { "Settings come from the node file's " code { "[vrrp]" } " section (change them there and restart)." }
        } @else {
            p.muted { "VRRP is not configured on this box (no " code { "[vrrp]" } " in its node file): it holds no virtual IP." }
        }
    }
}

/// "Hand over to peer" (admins): a Master steps down for the hold time.
fn handover_form(user: &AuthUser, view: &ClusterView) -> Markup {
    let master = view
        .vrrp
        .as_ref()
        .is_some_and(|v| v.report.state == mxgate_vrrp::StateName::Master);
    html! {
        section.card aria-labelledby="handover-h" {
            h2 #handover-h { "Hand over to peer" }
            p.small #handover-hint { "This box sends a priority-0 advert and stays out (as if faulted) for the hold \
                time, so the peer takes the virtual IPs within a second. After the hold it is backup again; \
                with preempt and a higher priority it takes them back. For longer maintenance: " (view.handover) "." }
            form method="post" action="/cluster/handover" {
                (csrf_field(user))
                (field("handover-hold", "hold_s", "Hold (seconds, 5 to 600)", "number", "30", None))
                p { button.primary type="submit" disabled[!master] aria-describedby="handover-hint" { "Hand over to peer" } }
            }
        }
    }
}

fn pairing(
    state: &AppState,
    user: &AuthUser,
    view: &ClusterView,
    outcome: Option<&Outcome>,
) -> Markup {
    let (join_form, join_error) = match outcome {
        Some(Outcome::Refused {
            form: Some(f),
            error,
        }) => (Some(f), Some(error)),
        _ => (None, None),
    };
    html! {
        section.card aria-labelledby="pair-h" {
            h2 #pair-h { "Pair with the other box" }
            p { "On one box create a code; on the other box join with it (here or with "
                code { "mxgate cluster join" } "). A new pairing replaces the trusted peer." }
            div.grid {
                div {
                    h3 { "Create a pairing code" }
                    @if let Some(Outcome::Code(code)) = outcome {
                        p role="status" { "Pairing code (shown once, valid until "
                            strong #pairing-expires data-unix=(code.expires_unix) { (utc(code.expires_unix)) } ", for one box):" }
                        pre.copy #pairing-code { (code.code) }
                        p { "On the other box, open its Cluster page and join with this code, or run:" }
                        pre.copy #join-command { "mxgate cluster join --data DATA_DIR --peer THIS_BOX_SYNC_LISTEN " (code.code) }
                        p.small.muted { code { "THIS_BOX_SYNC_LISTEN" } " is this box's " code { "[sync] listen" } " address as the other box reaches it." }
                    }
                    form method="post" action="/cluster/pairing" {
                        (csrf_field(user))
                        button.primary type="submit" disabled[view.sync.is_none()] { "Create pairing code" }
                    }
                }
                div {
                    h3 { "Join a peer" }
                    form method="post" action="/cluster/join" {
                        (csrf_field(user))
                        (field("join-peer", "peer", "Peer sync address (HOST:PORT)", "text",
                            join_form.map_or("", |f| f.peer.as_str()), join_error))
                        (field("join-code", "code", "Pairing code from the peer", "text",
                            join_form.map_or("", |f| f.code.as_str()), join_error))
                        p { button.primary type="submit" { "Join" } }
                    }
                }
            }
            p.small.muted { "This box: " (state.inner.node) }
        }
    }
}

/// `2025-01-31 12:00 UTC` for Unix seconds.
fn utc(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // At most u64::MAX / 86_400 days: always fits an i64.
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn expiry_is_shown_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_735_689_600 + 3_660), "2025-01-01 01:01 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
    }
}
