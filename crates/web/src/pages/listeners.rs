//! The Listeners page: every listener with its settings and whether the
//! gateway has it bound; forms to add, edit and remove one (admins). The
//! forms call [`crate::api::listeners`], like the API; a refused field is
//! shown next to its input with what was typed, and nothing changes. Also
//! the small form pieces the policy pages share ([`select`], [`checkbox`],
//! [`form_error`]).

use super::form::{checkbox, field, form_error, select};
use super::layout::{self, csrf_field, respond, Frame};
use crate::api::listeners::{self, ListenerView};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use mxgate_store::Role;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The add and edit forms' fields, as typed.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ListenerForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    bind: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    pool: String,
    #[serde(default)]
    send_proxy: String,
    #[serde(default)]
    accept_proxy: Option<String>,
    #[serde(default)]
    proxy_trusted: String,
}

impl ListenerForm {
    fn of(l: &ListenerView) -> ListenerForm {
        ListenerForm {
            name: l.name.clone(),
            bind: l.bind.clone(),
            mode: l.mode.clone(),
            pool: l.pool.clone(),
            send_proxy: l.send_proxy.clone(),
            accept_proxy: l.accept_proxy.then(|| "on".to_string()),
            proxy_trusted: l.proxy_trusted.join(", "),
        }
    }

    /// The policy keys the form sets.
    fn fields(&self, with_name: bool) -> Map<String, Value> {
        let trusted: Vec<&str> = self
            .proxy_trusted
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .collect();
        let mut fields = json!({
            "bind": self.bind.trim(),
            "mode": self.mode,
            "pool": self.pool,
            "send_proxy": self.send_proxy,
            "accept_proxy": self.accept_proxy.is_some(),
            "proxy_trusted": trusted,
        });
        if with_name {
            fields["name"] = json!(self.name.trim());
        }
        match fields {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }
}

/// A refused form, shown again with its error.
struct Refused {
    /// The edited listener; `None` for the add form.
    listener: Option<String>,
    form: ListenerForm,
    error: ApiError,
}

pub(crate) async fn page(State(state): State<AppState>, user: AuthUser) -> Response {
    render(&state, &user, None)
}

pub(crate) async fn add(
    State(state): State<AppState>,
    user: AuthUser,
    Form(form): Form<ListenerForm>,
) -> Response {
    let result = listeners::add(&state, &user.name, form.fields(true)).await;
    done(&state, &user, result, None, form)
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    Form(form): Form<ListenerForm>,
) -> Response {
    let result = listeners::edit(&state, &user.name, &name, form.fields(false)).await;
    done(&state, &user, result, Some(name), form)
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Response {
    let result = listeners::remove(&state, &user.name, &name).await;
    done(&state, &user, result, Some(name), ListenerForm::default())
}

fn done(
    state: &AppState,
    user: &AuthUser,
    result: Result<(), ApiError>,
    listener: Option<String>,
    form: ListenerForm,
) -> Response {
    match result {
        Ok(()) => Redirect::to("/listeners").into_response(),
        Err(error) => {
            let refused = Refused {
                listener,
                form,
                error: form_error(error),
            };
            render(state, user, Some(&refused))
        }
    }
}

const MODES: &[(&str, &str)] = &[
    ("l4", "l4 (splice to a backend)"),
    ("smtp", "smtp (mxgate speaks SMTP)"),
];
const PROXIES: &[(&str, &str)] = &[("none", "none"), ("v1", "PROXY v1"), ("v2", "PROXY v2")];

fn render(state: &AppState, user: &AuthUser, refused: Option<&Refused>) -> Response {
    let views = listeners::views(state);
    let pools: Vec<String> = state
        .store()
        .current()
        .pools
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let frame = Frame {
        node: &state.inner.node,
        user: Some(user),
        current: "/listeners",
    };
    let admin = user.role == Role::Admin;
    let add_refused = refused.filter(|r| r.listener.is_none());
    let body = html! {
        @if let Some(r) = refused.filter(|r| r.error.field.as_deref().is_none_or(|f| f == "body")) {
            p.notice.bad role="alert" { (r.error.error) }
        }
        @if !admin { p.notice { "You are logged in read-only: you can look, not change." } }
        section.card {
            h2 { "Listeners" }
            @if views.is_empty() {
                p.empty { "No listener yet: nothing accepts mail on this box. Add one below (a pool must exist first, on the Backends page or in the policy file)." }
            } @else {
                div.scroll { table {
                    thead { tr {
                        th { "Name" } th { "Bind" } th { "Mode" } th { "Pool" } th.hide-small { "PROXY out" }
                        th.hide-small { "PROXY in" } th { "Status" } @if admin { th { "Actions" } }
                    } }
                    tbody { @for l in &views {
                        (row(l, user, admin, &pools, refused.filter(|r| r.listener.as_deref() == Some(l.name.as_str()))))
                    } }
                } }
            }
        }
        @if admin {
            section.card {
                h2 { "Add a listener" }
                (listener_form("/listeners", "add", &add_refused.map_or_else(|| ListenerForm { mode: "l4".into(), send_proxy: "none".into(), ..ListenerForm::default() }, |r| r.form.clone()),
                    true, &pools, user, add_refused.map(|r| &r.error)))
            }
        }
    };
    let status = refused.map_or(StatusCode::OK, |r| r.error.status);
    respond(status, layout::page(&frame, "Listeners", body))
}

fn row(
    l: &ListenerView,
    user: &AuthUser,
    admin: bool,
    pools: &[String],
    refused: Option<&Refused>,
) -> Markup {
    let base = format!("/listeners/{}", l.name);
    let status_word = if l.status == "bound" {
        "up"
    } else if l.status == "pending" {
        "pending"
    } else {
        "down"
    };
    html! {
        tr {
            td { (l.name) }
            td.mono { (l.bind) @if let Some(a) = &l.local_addr { @if *a != l.bind { br; span.small { "(" (a) ")" } } } }
            td { (l.mode) }
            td { (l.pool) }
            td.hide-small { (l.send_proxy) }
            td.hide-small {
                @if l.accept_proxy { "from " (l.proxy_trusted.join(", ")) } @else { "no" }
            }
            td { span class={ "badge " (status_word) } { (l.status) }
                @if let Some(e) = &l.error { br; span.mono.small { (e) } } }
            @if admin {
                td {
                    form.inline method="post" action={ (base) "/delete" } {
                        (csrf_field(user))
                        button.danger type="submit" aria-label={ "remove " (l.name) } { "remove" }
                    }
                    details open[refused.is_some()] {
                        summary { "edit" }
                        (listener_form(&base, &format!("edit-{}", l.name),
                            &refused.map_or_else(|| ListenerForm::of(l), |r| r.form.clone()),
                            false, pools, user, refused.map(|r| &r.error)))
                    }
                }
            }
        }
    }
}

fn listener_form(
    action: &str,
    id: &str,
    form: &ListenerForm,
    with_name: bool,
    pools: &[String],
    user: &AuthUser,
    error: Option<&ApiError>,
) -> Markup {
    let pool_options: Vec<(&str, &str)> = pools.iter().map(|p| (p.as_str(), p.as_str())).collect();
    html! {
        form method="post" action=(action) {
            (csrf_field(user))
            div.fields {
                @if with_name { (field(&format!("{id}-name"), "name", "Name", "text", &form.name, error)) }
                (field(&format!("{id}-bind"), "bind", "Bind (IP:port)", "text", &form.bind, error))
                (select(&format!("{id}-mode"), "mode", "Mode", MODES, &form.mode, error))
                (select(&format!("{id}-pool"), "pool", "Pool", &pool_options, &form.pool, error))
                (select(&format!("{id}-send_proxy"), "send_proxy", "PROXY header to the backend", PROXIES, &form.send_proxy, error))
                (checkbox(&format!("{id}-accept_proxy"), "accept_proxy", "Read a PROXY header from a trusted upstream", form.accept_proxy.is_some(), error))
                (field(&format!("{id}-proxy_trusted"), "proxy_trusted", "Trusted upstreams (networks, comma-separated)", "text", &form.proxy_trusted, error))
            }
            p { button.primary type="submit" { @if with_name { "Add listener" } @else { "Save" } } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_policy_keys() {
        let form = ListenerForm {
            name: " mx2 ".into(),
            bind: "127.0.0.1:2525".into(),
            mode: "l4".into(),
            pool: "mta".into(),
            send_proxy: "v2".into(),
            accept_proxy: Some("on".into()),
            proxy_trusted: "10.0.0.0/8, 192.0.2.1".into(),
        };
        let fields = form.fields(true);
        assert_eq!(fields["name"], "mx2");
        assert_eq!(fields["accept_proxy"], true);
        assert_eq!(fields["proxy_trusted"], json!(["10.0.0.0/8", "192.0.2.1"]));
        assert!(!ListenerForm::default().fields(false).contains_key("name"));
    }
}
