//! The Logs page: the newest lines of this process's log (the in-memory
//! ring the API's `GET /api/v1/logs` reads), newest at the bottom. On the
//! appliance the whole system log is also in `logread`.

use super::layout::{self, respond, Frame};
use crate::api::logs;
use crate::auth::AuthUser;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

/// Lines shown.
const SHOWN: usize = 500;

pub(crate) async fn page(State(state): State<AppState>, user: AuthUser) -> Response {
    let lines = logs::lines(&state, SHOWN);
    let frame = Frame {
        node: &state.inner.node,
        user: Some(&user),
        current: "/logs",
    };
    let body = html! {
        p.small.muted { "The newest " (SHOWN) " lines of this box's mxgate log, oldest first "
            "(also as JSON: " code { "GET /api/v1/logs?limit=N" } "). Reload for newer lines." }
        @if lines.is_empty() {
            p.muted { "No log lines yet." }
        } @else {
            pre.log tabindex="0" aria-label="Log lines" { @for line in &lines { (line) "\n" } }
        }
    };
    respond(StatusCode::OK, layout::page(&frame, "Logs", body))
}
