//! The Backends page: every pool's servers with their settings, health and
//! last check; forms to add, edit and remove a server and buttons to set
//! it ready, draining or in maintenance (admins only). The forms go
//! through [`crate::backends`], like the API; a refused field is shown
//! next to its input with what was typed, and nothing changes.

use super::form::field;
use super::layout::{self, badge, csrf_field, respond, Frame};
use crate::auth::AuthUser;
use crate::backends::{self, parse_state, PoolView, ServerInput, ServerView};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use mxgate_config::ServerState;
use mxgate_store::Role;
use serde::Deserialize;

/// The add and edit forms' fields, as typed.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ServerForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    weight: String,
    #[serde(default)]
    max_conn: String,
}

/// The state buttons' field.
#[derive(Debug, Deserialize)]
pub(crate) struct StateForm {
    #[serde(default)]
    state: String,
}

/// A refused form, shown again with its error.
struct Refused {
    pool: String,
    /// The edited server; `None` for the add form.
    server: Option<String>,
    form: ServerForm,
    error: ApiError,
}

/// A form number field: empty means `default`.
fn number(field: &str, text: &str, default: u32) -> Result<u32, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(default);
    }
    text.parse::<i64>()
        .map_err(|_| ApiError::invalid(field, format!("{text:?} is not a whole number")))
        .and_then(|n| backends::u32_field(field, n))
}

fn input(name: String, form: &ServerForm) -> Result<ServerInput, ApiError> {
    Ok(ServerInput {
        name,
        address: form.address.trim().to_string(),
        weight: number("weight", &form.weight, 1)?,
        max_conn: number("max_conn", &form.max_conn, 0)?,
        state: ServerState::Ready,
    })
}

pub(crate) async fn page(State(state): State<AppState>, user: AuthUser) -> Response {
    render(&state, &user, None, None)
}

pub(crate) async fn add(
    State(state): State<AppState>,
    user: AuthUser,
    Path(pool): Path<String>,
    Form(form): Form<ServerForm>,
) -> Response {
    let result = match input(form.name.trim().to_string(), &form) {
        Ok(server) => backends::add(&state, &user.name, &pool, server).await,
        Err(e) => Err(e),
    };
    done(&state, &user, result, pool, None, form)
}

pub(crate) async fn edit(
    State(state): State<AppState>,
    user: AuthUser,
    Path((pool, name)): Path<(String, String)>,
    Form(form): Form<ServerForm>,
) -> Response {
    let result = match input(name.clone(), &form) {
        Ok(server) => backends::edit(&state, &user.name, &pool, server).await,
        Err(e) => Err(e),
    };
    done(&state, &user, result, pool, Some(name), form)
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    user: AuthUser,
    Path((pool, name)): Path<(String, String)>,
) -> Response {
    let result = backends::remove(&state, &user.name, &pool, &name).await;
    done(
        &state,
        &user,
        result,
        pool,
        Some(name),
        ServerForm::default(),
    )
}

pub(crate) async fn set_state(
    State(state): State<AppState>,
    user: AuthUser,
    Path((pool, name)): Path<(String, String)>,
    Form(form): Form<StateForm>,
) -> Response {
    let result = match parse_state("state", &form.state) {
        Ok(to) => backends::set_state(&state, &user.name, &pool, &name, to).await,
        Err(e) => Err(e),
    };
    done(
        &state,
        &user,
        result,
        pool,
        Some(name),
        ServerForm::default(),
    )
}

/// After a form: back to the page (303) when it worked, else the page
/// again with the error, with the error's status.
fn done(
    state: &AppState,
    user: &AuthUser,
    result: Result<(), ApiError>,
    pool: String,
    server: Option<String>,
    form: ServerForm,
) -> Response {
    match result {
        Ok(()) => Redirect::to("/backends").into_response(),
        Err(error) => {
            let status = error.status;
            let refused = Refused {
                pool,
                server,
                form,
                error,
            };
            render(state, user, Some(&refused), Some(status))
        }
    }
}

fn render(
    state: &AppState,
    user: &AuthUser,
    refused: Option<&Refused>,
    status: Option<StatusCode>,
) -> Response {
    let pools = backends::views(state);
    let frame = Frame {
        node: &state.inner.node,
        user: Some(user),
        current: "/backends",
    };
    let admin = user.role == Role::Admin;
    let body = html! {
        @if let Some(r) = refused.filter(|r| r.error.field.is_none()) {
            p.notice.bad role="alert" { (r.error.error) }
        }
        @if !admin {
            p.notice { "You are logged in read-only: you can look, not change." }
        }
        @if pools.is_empty() {
            div.card.empty { p { "No pool is configured. A pool comes with the policy ("
                code { "mxgate policy import" } ")." } }
        }
        @for pool in &pools {
            (pool_card(pool, user, admin, refused.filter(|r| r.pool == pool.name)))
        }
    };
    respond(
        status.unwrap_or(StatusCode::OK),
        layout::page(&frame, "Backends", body),
    )
}

fn pool_card(pool: &PoolView, user: &AuthUser, admin: bool, refused: Option<&Refused>) -> Markup {
    let add_refused = refused.filter(|r| r.server.is_none());
    let add_form = add_refused.map_or_else(ServerForm::default, |r| r.form.clone());
    let add_error = add_refused.map(|r| &r.error);
    let id = format!("add-{}", pool.name);
    html! {
        section.card aria-labelledby={ "pool-" (pool.name) } {
            h2 id={ "pool-" (pool.name) } { "Pool " (pool.name) " " span.muted.small { "(" (pool.balance) ")" } }
            @if pool.servers.is_empty() {
                p.empty { "This pool has no server yet." }
            } @else {
                div.scroll { table {
                    thead { tr {
                        th { "Server" } th { "Address" } th { "Weight" } th.hide-small { "Max conn" }
                        th { "State" } th { "Health" } th.hide-small { "Open" } th { "Last check" }
                        @if admin { th { "Actions" } }
                    } }
                    tbody { @for s in &pool.servers {
                        (server_row(&pool.name, s, user, admin, refused.filter(|r| r.server.as_deref() == Some(s.name.as_str()))))
                    } }
                } }
            }
            @if admin {
                details open[add_refused.is_some()] {
                    summary { "Add a server to " (pool.name) }
                    form method="post" action={ "/backends/" (pool.name) "/servers" } {
                        (csrf_field(user))
                        div.fields {
                            (field(&format!("{id}-name"), "name", "Name", "text", &add_form.name, add_error))
                            (field(&format!("{id}-address"), "address", "Address (IP:port)", "text", &add_form.address, add_error))
                            (field(&format!("{id}-weight"), "weight", "Weight (0–256)", "number", or(&add_form.weight, "1"), add_error))
                            (field(&format!("{id}-max_conn"), "max_conn", "Max connections (0 = no cap)", "number", or(&add_form.max_conn, "0"), add_error))
                        }
                        p { button.primary type="submit" { "Add server" } }
                    }
                }
            }
        }
    }
}

fn or<'a>(value: &'a str, default: &'a str) -> &'a str {
    if value.is_empty() {
        default
    } else {
        value
    }
}

fn server_row(
    pool: &str,
    s: &ServerView,
    user: &AuthUser,
    admin: bool,
    refused: Option<&Refused>,
) -> Markup {
    let base = format!("/backends/{pool}/servers/{}", s.name);
    let id = format!("edit-{pool}-{}", s.name);
    let form = refused.map_or_else(
        || ServerForm {
            name: s.name.clone(),
            address: s.address.clone(),
            weight: s.weight.to_string(),
            max_conn: s.max_conn.to_string(),
        },
        |r| r.form.clone(),
    );
    let error = refused.map(|r| &r.error);
    html! {
        tr {
            td { (s.name) }
            td.mono { (s.address) }
            td { (s.weight) }
            td.hide-small { @if s.max_conn == 0 { "no cap" } @else { (s.max_conn) } }
            td { (badge(&s.state)) }
            td { (badge(&s.health)) }
            td.hide-small { (s.active_sessions) }
            td.small { (last_check(s)) }
            @if admin {
                td {
                    div.actions {
                        @for to in ["ready", "drain", "maint"] {
                            @if to != s.state {
                                form.inline method="post" action={ (base) "/state" } {
                                    (csrf_field(user))
                                    input type="hidden" name="state" value=(to);
                                    button type="submit" aria-label={ (to) " " (s.name) } { (to) }
                                }
                            }
                        }
                        form.inline method="post" action={ (base) "/delete" } {
                            (csrf_field(user))
                            button.danger type="submit" aria-label={ "remove " (s.name) } { "remove" }
                        }
                    }
                    details open[refused.is_some()] {
                        summary { "edit" }
                        form method="post" action=(base) {
                            (csrf_field(user))
                            (field(&format!("{id}-address"), "address", "Address (IP:port)", "text", &form.address, error))
                            (field(&format!("{id}-weight"), "weight", "Weight (0–256)", "number", &form.weight, error))
                            (field(&format!("{id}-max_conn"), "max_conn", "Max connections", "number", &form.max_conn, error))
                            p { button.primary type="submit" { "Save" } }
                        }
                    }
                }
            }
        }
    }
}

/// The last health check: passed (with its banner and duration) or the
/// error; TLS and certificate expiry when STARTTLS ran.
fn last_check(s: &ServerView) -> Markup {
    html! {
        @match &s.last_check {
            None => span.muted { "not yet" },
            Some(c) => {
                @if c.ok { span.ok { "ok" } } @else { span.bad { "failed" } }
                " in " (c.duration_ms) " ms"
                @if let Some(e) = &c.error { br; span.mono { (e) } }
                @if let Some(b) = &c.banner { br; span.mono { (b) } }
                @if let Some(tls) = &c.tls { br; span.mono { (tls_line(tls)) } }
            }
        }
    }
}

fn tls_line(tls: &mxgate_balance::TlsInfo) -> String {
    match tls.cert_days_left {
        Some(days) => format!("{}, certificate expires in {days} days", tls.version),
        None => format!("{}, certificate not readable", tls.version),
    }
}
