//! The login page, the first-boot setup page and logout. They call the
//! same login and setup code as the API (`auth::login`, `api::setup`).

use super::form::field;
use super::layout::{page, respond, Frame};
use crate::api::{setup, SetupRequest};
use crate::auth::{self, AuthUser, ClientAddr, NewSession};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

/// The login form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

/// The setup form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SetupForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
}

/// A redirect to `to` that sets the new session's cookie.
fn logged_in(session: &NewSession, to: &str) -> Response {
    (
        [(header::SET_COOKIE, auth::session_cookie(&session.token))],
        Redirect::to(to),
    )
        .into_response()
}

async fn is_set_up(state: &AppState) -> Result<bool, ApiError> {
    state.blocking(|store| Ok(store.has_admin()?)).await
}

fn login_markup(state: &AppState, name: &str, error: Option<&ApiError>) -> Markup {
    let frame = Frame {
        node: &state.inner.node,
        user: None,
        current: "/login",
    };
    let body = html! {
        div.card.narrow {
            @if let Some(e) = error {
                p.notice.bad role="alert" { (e.error) }
            }
            form method="post" action="/login" {
                (field("login-name", "name", "User name", "text", name, None))
                (field("login-password", "password", "Password", "password", "", None))
                p { button.primary type="submit" { "Log in" } }
            }
        }
    };
    page(&frame, "Log in", body)
}

pub(crate) async fn login_page(State(state): State<AppState>) -> Result<Response, ApiError> {
    if !is_set_up(&state).await? {
        return Ok(Redirect::to("/setup").into_response());
    }
    Ok(respond(StatusCode::OK, login_markup(&state, "", None)))
}

pub(crate) async fn login_form(
    State(state): State<AppState>,
    client: ClientAddr,
    Form(form): Form<LoginForm>,
) -> Response {
    match auth::login(&state, client.0, &form.name, &form.password).await {
        Ok(session) => logged_in(&session, "/"),
        Err(e) => {
            let mut response = respond(e.status, login_markup(&state, &form.name, Some(&e)));
            if let Some(s) = e.retry_after_s {
                response.headers_mut().insert(header::RETRY_AFTER, s.into());
            }
            response
        }
    }
}

fn setup_markup(state: &AppState, form: &SetupForm, error: Option<&ApiError>) -> Markup {
    let frame = Frame {
        node: &state.inner.node,
        user: None,
        current: "/setup",
    };
    let body = html! {
        div.card.narrow {
            p {
                "This box has no administrator yet. Enter the setup code printed on its "
                "console and in its log (" code { "setup code: XXXX-XXXX" } "), and choose "
                "the administrator's name and password."
            }
            @if let Some(e) = error.filter(|e| e.field.is_none()) {
                p.notice.bad role="alert" { (e.error) }
            }
            form method="post" action="/setup" {
                (field("setup-code", "code", "Setup code", "text", &form.code, error))
                (field("setup-name", "name", "Administrator name", "text", &form.name, error))
                (field("setup-password", "password", "Password (at least 10 characters)", "password", "", error))
                (field("setup-again", "password_again", "Password again", "password", "", error))
                p { button.primary type="submit" { "Create the administrator" } }
            }
        }
    };
    page(&frame, "Set up this box", body)
}

pub(crate) async fn setup_page(State(state): State<AppState>) -> Result<Response, ApiError> {
    if is_set_up(&state).await? {
        return Ok(Redirect::to("/login").into_response());
    }
    Ok(respond(
        StatusCode::OK,
        setup_markup(&state, &SetupForm::default(), None),
    ))
}

pub(crate) async fn setup_form(
    State(state): State<AppState>,
    client: ClientAddr,
    Form(form): Form<SetupForm>,
) -> Response {
    if form.password != form.password_again {
        let e = ApiError::invalid("password_again", "the two passwords differ");
        return respond(e.status, setup_markup(&state, &form, Some(&e)));
    }
    let req = SetupRequest {
        code: form.code.clone(),
        name: form.name.clone(),
        password: form.password.clone(),
    };
    match setup(&state, client, req).await {
        // The second step: the guided first policy, while it has no listener.
        Ok(session) if crate::api::setup_policy::wanted(&state) => {
            logged_in(&session, "/setup/policy")
        }
        Ok(session) => logged_in(&session, "/"),
        Err(e) if e.status == StatusCode::CONFLICT => Redirect::to("/login").into_response(),
        Err(e) => respond(e.status, setup_markup(&state, &form, Some(&e))),
    }
}

pub(crate) async fn logout_form(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Response, ApiError> {
    auth::logout(&state, &user).await?;
    Ok((
        [(header::SET_COOKIE, auth::clear_cookie())],
        Redirect::to("/login"),
    )
        .into_response())
}
