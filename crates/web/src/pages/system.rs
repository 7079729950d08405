//! The System page: this box (node, firmware version and revision,
//! uptime), the policy backup (download `/api/v1/policy`) and restore
//! (paste a policy file: validated, all or nothing), the accounts (add,
//! remove), one's own password, and the reboot button (appliance only).
//! Every form goes through the API's functions ([`crate::api::system`],
//! [`crate::api::users`]).

use super::dashboard::duration;
use super::form::field;
use super::layout::{self, csrf_field, respond, Frame};
use crate::api::system::{self, PasswordChange};
use crate::api::users::{self, NewUser};
use crate::api::ApiJson;
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

/// The restore form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PolicyForm {
    #[serde(default)]
    policy: String,
}

/// The add-user form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct UserForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

/// Which form a message belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Policy,
    Users,
    Password,
    Reboot,
}

/// The answer to the last form.
struct Outcome {
    part: Part,
    result: Result<&'static str, ApiError>,
    /// What was typed, shown again after a refusal (policy text or user name).
    typed: String,
}

pub(crate) async fn page(State(state): State<AppState>, user: AuthUser) -> Response {
    render(&state, &user, None).await
}

pub(crate) async fn restore(
    State(state): State<AppState>,
    user: AuthUser,
    Form(form): Form<PolicyForm>,
) -> Response {
    let result = system::import(&state, &user, &form.policy).await;
    let outcome = Outcome {
        part: Part::Policy,
        result: result
            .map(|()| "The policy is restored; the running gateway and the peer use it now."),
        typed: form.policy,
    };
    render(&state, &user, Some(outcome)).await
}

pub(crate) async fn add_user(
    State(state): State<AppState>,
    user: AuthUser,
    Form(form): Form<UserForm>,
) -> Response {
    let new = NewUser {
        name: form.name.trim().to_string(),
        role: form.role,
        password: form.password,
    };
    let result = users::create(State(state.clone()), user.clone(), ApiJson(new)).await;
    let outcome = Outcome {
        part: Part::Users,
        result: result.map(|_| "The user is added."),
        typed: form.name,
    };
    render(&state, &user, Some(outcome)).await
}

pub(crate) async fn remove_user(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
) -> Response {
    match users::remove(State(state.clone()), user.clone(), Path(name)).await {
        Ok(_) => Redirect::to("/system").into_response(),
        Err(error) => {
            let outcome = Outcome {
                part: Part::Users,
                result: Err(error),
                typed: String::new(),
            };
            render(&state, &user, Some(outcome)).await
        }
    }
}

pub(crate) async fn password(
    State(state): State<AppState>,
    user: AuthUser,
    Form(change): Form<PasswordChange>,
) -> Response {
    let result = system::change_password(&state, &user, change).await;
    let outcome = Outcome {
        part: Part::Password,
        result: result.map(|()| "Your password is changed."),
        typed: String::new(),
    };
    render(&state, &user, Some(outcome)).await
}

pub(crate) async fn reboot(State(state): State<AppState>, user: AuthUser) -> Response {
    let result = system::reboot(&state, &user).await;
    let outcome = Outcome {
        part: Part::Reboot,
        result: result.map(|()| "The box is rebooting; this page answers again in about a minute."),
        typed: String::new(),
    };
    render(&state, &user, Some(outcome)).await
}

async fn render(state: &AppState, user: &AuthUser, outcome: Option<Outcome>) -> Response {
    let view = system::view(state);
    let accounts = users::list(State(state.clone())).await.map(|j| j.0);
    let status = match &outcome {
        Some(Outcome { result: Err(e), .. }) => e.status,
        _ => StatusCode::OK,
    };
    let admin = user.role == Role::Admin;
    let message = |part: Part| -> Markup {
        html! {
            @if let Some(o) = outcome.as_ref().filter(|o| o.part == part) {
                @match &o.result {
                    Ok(text) => p.notice role="status" { (text) },
                    Err(e) if e.field.is_none() || part == Part::Policy => p.notice.bad role="alert" { (e.error) },
                    Err(_) => {}
                }
            }
        }
    };
    let error_of = |part: Part| {
        outcome
            .as_ref()
            .filter(|o| o.part == part)
            .and_then(|o| o.result.as_ref().err())
    };
    let typed = |part: Part| {
        outcome
            .as_ref()
            .filter(|o| o.part == part && o.result.is_err())
            .map_or("", |o| o.typed.as_str())
    };
    let frame = Frame {
        node: &state.inner.node,
        user: Some(user),
        current: "/system",
    };
    let body = html! {
        @if !admin { p.notice { "You are logged in read-only: you can look and change your own password." } }
        section.card aria-labelledby="box-h" {
            h2 #box-h { "This box" }
            dl.facts {
                dt { "Node" } dd { (view.node) }
                dt { "Firmware" } dd #firmware { (view.version)
                    @if let Some(rev) = &view.git_revision { " (" span.mono { (rev) } ")" } }
                dt { "Service uptime" } dd { (duration(view.uptime_s)) }
            }
            (message(Part::Reboot))
            @if admin {
                form method="post" action="/system/reboot" {
                    (csrf_field(user))
                    @if view.appliance {
                        button.danger type="submit" { "Reboot" }
                    } @else {
                        button.danger type="submit" disabled aria-describedby="reboot-hint" { "Reboot" }
                        p.small.muted #reboot-hint { "Not the appliance image: restart the service with your own init system." }
                    }
                }
            }
        }
        section.card aria-labelledby="policy-h" {
            h2 #policy-h { "Policy backup and restore" }
            p { a href="/api/v1/policy" download { "Download the policy (TOML)" }
                " — the same text as " code { "mxgate policy export" } "." }
            (message(Part::Policy))
            @if admin {
                form method="post" action="/system/policy" {
                    (csrf_field(user))
                    label for="policy-text" { "Restore: paste a whole policy file" }
                    textarea #policy-text name="policy" rows="12" spellcheck="false"
                        aria-invalid=[error_of(Part::Policy).map(|_| "true")] { (typed(Part::Policy)) }
                    p.small.muted { "Checked first; a refused key leaves the current policy as it is. The peer gets it too." }
                    p { button.primary type="submit" { "Restore policy" } }
                }
            }
        }
        section.card aria-labelledby="users-h" {
            h2 #users-h { "Users" }
            (message(Part::Users))
            @match &accounts {
                Err(e) => p.notice.bad { (e.error) },
                Ok(list) => div.scroll { table {
                    thead { tr { th { "Name" } th { "Role" } @if admin { th { "Actions" } } } }
                    tbody { @for u in list { tr {
                        td { (u.name) } td { (u.role) }
                        @if admin { td {
                            form.inline method="post" action={ "/system/users/" (u.name) "/delete" } {
                                (csrf_field(user))
                                button.danger type="submit" aria-label={ "remove " (u.name) } { "remove" }
                            }
                        } }
                    } } }
                } },
            }
            @if admin {
                details open[error_of(Part::Users).is_some()] {
                    summary { "Add a user" }
                    form method="post" action="/system/users" {
                        (csrf_field(user))
                        div.fields {
                            (field("user-name", "name", "Name", "text", typed(Part::Users), error_of(Part::Users)))
                            div {
                                label for="user-role" { "Role" }
                                select #user-role name="role" {
                                    option value="readonly" { "read-only" }
                                    option value="admin" { "admin" }
                                }
                            }
                            (field("user-password", "password", "Password (at least 10 characters)", "password", "", error_of(Part::Users)))
                        }
                        p { button.primary type="submit" { "Add user" } }
                    }
                }
            }
        }
        section.card aria-labelledby="password-h" {
            h2 #password-h { "Change your password" }
            (message(Part::Password))
            form method="post" action="/system/password" {
                (csrf_field(user))
                div.fields {
                    (field("password-current", "current", "Current password", "password", "", error_of(Part::Password)))
                    (field("password-new", "new", "New password (at least 10 characters)", "password", "", error_of(Part::Password)))
                }
                p { button.primary type="submit" { "Change password" } }
            }
        }
    };
    respond(status, layout::page(&frame, "System", body))
}
