//! The setup page's second step, `/setup/policy`: right after the
//! administrator is created (and later while the policy has no listener),
//! a guided form for the common patterns — l4 or smtp, up to four backend
//! servers, relay domains, the listener's address, the PROXY version — that
//! writes a complete first policy through [`crate::api::setup_policy`]
//! (the API's builder) and goes on to the dashboard. Active-active or
//! active-passive is a DNS and VRRP matter, so the form explains it and
//! links to the DNS helper and the Cluster page instead of asking.

use super::form::{field, select};
use super::layout::{self, csrf_field, respond, Frame};
use crate::api::setup_policy::{self, PatternServer, PolicyPattern, DEFAULT_BIND, MAX_SERVERS};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;

const MODES: &[(&str, &str)] = &[
    (
        "smtp",
        "smtp: speak SMTP, filter, relay for the relay domains",
    ),
    ("l4", "l4: pass connections through to the backends"),
];
const PROXIES: &[(&str, &str)] = &[
    (
        "v2",
        "PROXY v2 (Postfix postscreen_upstream_proxy_protocol = haproxy)",
    ),
    ("v1", "PROXY v1"),
    ("none", "none (the backends see this box as the client)"),
];

pub(crate) async fn page(State(state): State<AppState>, user: AuthUser) -> Response {
    if !setup_policy::wanted(&state) {
        return Redirect::to("/").into_response();
    }
    let blank = PolicyPattern {
        mode: "smtp".to_string(),
        bind: Some(DEFAULT_BIND.to_string()),
        send_proxy: Some("v2".to_string()),
        ..PolicyPattern::default()
    };
    render(&state, &user, &blank, None)
}

pub(crate) async fn submit(
    State(state): State<AppState>,
    user: AuthUser,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let pattern = pattern_of(&fields);
    match setup_policy::apply(&state, &user.name, pattern.clone()).await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e) => render(&state, &user, &pattern, Some(&e)),
    }
}

/// The pattern from the form's fields (empty server rows left out; the
/// relay domains separated by commas or spaces).
fn pattern_of(fields: &[(String, String)]) -> PolicyPattern {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    let servers = (0..MAX_SERVERS)
        .map(|i| PatternServer {
            name: get(&format!("servers[{i}].name")),
            address: get(&format!("servers[{i}].address")),
        })
        .filter(|s| !s.name.is_empty() || !s.address.is_empty())
        .collect();
    PolicyPattern {
        mode: get("mode"),
        servers,
        relay_domains: get("relay_domains")
            .split([',', ' ', '\n'])
            .filter(|d| !d.trim().is_empty())
            .map(|d| d.trim().to_string())
            .collect(),
        bind: Some(get("bind")),
        send_proxy: Some(get("send_proxy")),
    }
}

/// The inputs of the form, for telling whether an error belongs to one.
fn is_input(name: &str) -> bool {
    ["mode", "relay_domains", "bind", "send_proxy"].contains(&name)
        || (0..MAX_SERVERS).any(|i| {
            name == format!("servers[{i}].name") || name == format!("servers[{i}].address")
        })
}

fn render(
    state: &AppState,
    user: &AuthUser,
    p: &PolicyPattern,
    error: Option<&ApiError>,
) -> Response {
    let frame = Frame {
        node: &state.inner.node,
        user: Some(user),
        current: "/setup/policy",
    };
    let general = error.filter(|e| !e.field.as_deref().is_some_and(is_input));
    let row = |i: usize| p.servers.get(i).cloned().unwrap_or_default();
    let body = html! {
        div.card {
            p { "The administrator is set up. Now tell this box where mail goes: the form builds "
                "the first policy (pool " code { "mta" } " with health checks, listener "
                code { "mx" } "). Everything can be changed later on the Backends, Listeners "
                "and Filtering pages." }
            @if let Some(e) = general { p.notice.bad role="alert" { (e.error) } }
            form method="post" action="/setup/policy" {
                (csrf_field(user))
                (select("pattern-mode", "mode", "Mode", MODES, &p.mode, error))
                fieldset {
                    legend { "Backend mail servers (1 to " (MAX_SERVERS) ")" }
                    @for i in 0..MAX_SERVERS {
                        @let s = row(i);
                        div.grid {
                            (field(&format!("pattern-server{i}-name"), &format!("servers[{i}].name"),
                                &format!("Server {} name", i + 1), "text", &s.name, error))
                            (field(&format!("pattern-server{i}-address"), &format!("servers[{i}].address"),
                                &format!("Server {} address (IP:port)", i + 1), "text", &s.address, error))
                        }
                    }
                }
                (field("pattern-relay", "relay_domains", "Relay domains (smtp mode; separated by commas)",
                    "text", &p.relay_domains.join(", "), error))
                (field("pattern-bind", "bind", "Accept mail on (IP:port)", "text",
                    p.bind.as_deref().unwrap_or(DEFAULT_BIND), error))
                (select("pattern-proxy", "send_proxy", "PROXY header to the backends (l4 mode)",
                    PROXIES, p.send_proxy.as_deref().unwrap_or("v2"), error))
                p { button.primary type="submit" { "Create the policy" } }
            }
        }
        section.card aria-labelledby="pair-h" {
            h2 #pair-h { "Active-active or active-passive?" }
            p { "That is decided in DNS and by VRRP, not here. " strong { "Active-active" }
                ": publish both boxes as MX records of the same preference. "
                strong { "Active-passive" } ": publish one virtual IP that VRRP moves to the "
                "box that is up (the node file's " code { "[vrrp]" } ")." }
            p { a href="/dns" { "DNS helper: the records to publish" } " · "
                a href="/cluster" { "Cluster: pair the boxes, failover state" } }
        }
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    respond(status, layout::page(&frame, "Set up the mail flow", body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_fields_make_a_pattern() {
        let f = |k: &str, v: &str| (k.to_string(), v.to_string());
        let p = pattern_of(&[
            f("mode", "smtp"),
            f("servers[0].name", "mta1"),
            f("servers[0].address", "10.0.0.1:25"),
            f("servers[1].name", ""),
            f("servers[1].address", ""),
            f("relay_domains", "a.example, b.example"),
        ]);
        assert_eq!(p.servers.len(), 1);
        assert_eq!(p.relay_domains, ["a.example", "b.example"]);
        assert!(is_input("servers[3].address"));
        assert!(!is_input("name"));
    }
}
