//! The Certificates page: the store's certificates (the `smtp` STARTTLS
//! one) and the web UI's, with subject, names, expiry and days left
//! (highlighted under [`WARN_DAYS`]); upload forms (PEM chain and key in
//! text areas) posting to `POST /certificates/{name}` and
//! `POST /certificates/web`, which call [`certificates::put_store`] and
//! [`certificates::put_web`] like the API. A refused chain or key is shown
//! next to its text area, and nothing changes.

use super::form::labelled;
use super::layout::{self, badge, csrf_field, respond, Frame};
use crate::api::certificates::{self, CertificateView, Upload, WEB_TAKES_EFFECT};
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

/// Days left under which a certificate is highlighted.
const WARN_DAYS: i64 = 21;

/// The upload form.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct UploadForm {
    #[serde(default)]
    cert_pem: String,
    #[serde(default)]
    key_pem: String,
}

/// A refused upload: for which certificate, the chain typed (the key is
/// never sent back), why.
struct Refused {
    name: String,
    cert_pem: String,
    error: ApiError,
}

pub(crate) async fn page(State(state): State<AppState>, user: AuthUser) -> Response {
    render(&state, &user, None).await
}

pub(crate) async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    Path(name): Path<String>,
    Form(form): Form<UploadForm>,
) -> Response {
    let cert_pem = form.cert_pem.clone();
    let upload = Upload {
        cert_pem: form.cert_pem,
        key_pem: form.key_pem,
    };
    let result = if name == "web" {
        certificates::put_web(&state, &user.name, upload).await
    } else {
        certificates::put_store(&state, &user.name, &name, upload).await
    };
    match result {
        Ok(()) => Redirect::to("/certificates").into_response(),
        Err(error) => {
            let refused = Refused {
                name,
                cert_pem,
                error,
            };
            render(&state, &user, Some(&refused)).await
        }
    }
}

async fn render(state: &AppState, user: &AuthUser, refused: Option<&Refused>) -> Response {
    let frame = Frame {
        node: &state.inner.node,
        user: Some(user),
        current: "/certificates",
    };
    let admin = user.role == Role::Admin;
    let body = match certificates::list(state).await {
        Err(e) => html! { p.notice.bad role="alert" { (e.error) } },
        Ok(all) => html! {
            @if let Some(r) = refused { p.notice.bad role="alert" { "Not installed: " (r.error.error) } }
            @if !admin { p.notice { "You are logged in read-only: you can look, not change." } }
            section.card {
                h2 { "Certificates in use" }
                div.scroll { table {
                    thead { tr { th { "Name" } th { "Used for" } th { "Subject" } th { "Names (SANs)" }
                        th { "Valid until" } th { "Days left" } } }
                    tbody {
                        @for c in &all.store { (row(c)) }
                        (row(&all.web))
                    }
                } }
                p.small.muted { "Private keys are never shown. The smtp certificate is used at once by this box's smtp listeners and sent to the peer (used there from its next start); "
                    "a new web UI certificate takes effect " (WEB_TAKES_EFFECT) "." }
            }
            @if admin {
                @for c in &all.store {
                    (upload_form(user, &c.name, &format!("Replace the {} certificate", c.name), &c.purpose, refused))
                }
                (upload_form(user, "web", "Replace the web UI certificate",
                    &format!("Takes effect {WEB_TAKES_EFFECT}: restart the service after uploading."), refused))
            }
        },
    };
    let status = refused.map_or(StatusCode::OK, |r| r.error.status);
    respond(status, layout::page(&frame, "Certificates", body))
}

fn row(c: &CertificateView) -> Markup {
    html! {
        tr {
            td { (c.name) }
            td { (c.purpose) }
            @match &c.leaf {
                Some(leaf) => {
                    td.mono { (leaf.subject) @if leaf.self_signed { " " span.small.muted { "(self-signed)" } } }
                    td.mono { (leaf.sans.join(", ")) }
                    td { (leaf.not_after) }
                    td class=[(leaf.days_left < WARN_DAYS).then_some("expiring")] {
                        @if leaf.days_left < 0 { (badge("bad")) " expired" }
                        @else if leaf.days_left < WARN_DAYS { (badge("pending")) " " (leaf.days_left) " days: renew soon" }
                        @else { (leaf.days_left) }
                    }
                }
                None => {
                    td colspan="4" .muted {
                        @if c.present { "present but not readable as a certificate: upload a new one below" }
                        @else { "none yet (made self-signed when an smtp listener first starts, or upload one below)" }
                    }
                }
            }
        }
    }
}

fn upload_form(
    user: &AuthUser,
    name: &str,
    title: &str,
    note: &str,
    refused: Option<&Refused>,
) -> Markup {
    let refused = refused.filter(|r| r.name == name);
    let error = refused.map(|r| &r.error);
    let typed = refused.map_or("", |r| r.cert_pem.as_str());
    html! {
        section.card {
            h2 { (title) }
            p.small.muted { (note) }
            form method="post" action={ "/certificates/" (name) } {
                (csrf_field(user))
                (pem_area(&format!("{name}-cert"), "cert_pem", "Certificate chain (PEM, the server's certificate first)", typed, error))
                (pem_area(&format!("{name}-key"), "key_pem", "Private key (PEM)", "", error))
                p { button.primary type="submit" { "Install" } }
            }
        }
    }
}

fn pem_area(id: &str, name: &str, label: &str, value: &str, error: Option<&ApiError>) -> Markup {
    labelled(id, name, label, error, |aria| {
        html! {
            textarea id=(id) name=(name) rows="8" spellcheck="false" autocomplete="off"
                aria-invalid=[aria.invalid]
                aria-describedby=[aria.described_by] { (value) }
        }
    })
}
