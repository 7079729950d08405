//! The clear empty state of a navigation entry whose page is not built
//! yet, saying where the same thing can be done meanwhile.

use super::layout::{self, respond, Frame, NAV};
use crate::auth::AuthUser;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use maud::html;

pub(crate) async fn page(State(state): State<AppState>, user: AuthUser, uri: Uri) -> Response {
    let path = uri.path();
    let label = NAV
        .iter()
        .find(|n| n.path == path)
        .map_or("Page", |n| n.label);
    let frame = Frame {
        node: &state.inner.node,
        user: Some(&user),
        current: path,
    };
    let body = html! {
        div.card.empty {
            p { "The " (label) " page is not built yet." }
            p.small {
                "Meanwhile the same settings are in the policy file ("
                code { "mxgate policy export" } " / " code { "mxgate policy import" }
                ") and the JSON API (" a href="/api/openapi.json" { "/api/openapi.json" } ")."
            }
        }
    };
    respond(StatusCode::OK, layout::page(&frame, label, body))
}
