//! The Diagnostics page: three forms (MX/A/AAAA look-up of a domain,
//! connect to a mail server with banner timing and STARTTLS certificate
//! details, send a test message through the VIP) whose results are shown
//! as tables, every step with its timing. The forms run the same checks
//! and code as the API (`api::diagnostics`); admins only, since each
//! makes outbound connections. A refused field is shown next to its
//! input with what was typed.

use super::form::{field, optional_number};
use super::layout::{self, csrf_field, respond, Frame};
use crate::api::diagnostics::{
    default_address, default_from, run_mx, run_probe, run_test_message, MxRequest, ProbeRequest,
    ProbeResult, TestMessageRequest, TestMessageResult,
};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use maud::{html, Markup};
use mxgate_diagnostics::{MxOutcome, MxReport, StepTiming, TlsDetails};
use mxgate_store::Role;
use serde::Deserialize;

/// The MX form.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct MxForm {
    #[serde(default)]
    domain: String,
}

/// The probe form.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ProbeForm {
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    server_name: String,
}

/// The test message form.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct TestForm {
    #[serde(default)]
    to: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    address: String,
}

/// What one form gave.
enum Outcome {
    Mx(MxForm, Result<MxReport, ApiError>),
    Probe(ProbeForm, Result<ProbeResult, ApiError>),
    Test(TestForm, Result<TestMessageResult, ApiError>),
}

pub(crate) async fn page(State(state): State<AppState>, user: AuthUser) -> Response {
    render(&state, &user, None)
}

pub(crate) async fn mx(
    State(state): State<AppState>,
    user: AuthUser,
    Form(form): Form<MxForm>,
) -> Response {
    let request = MxRequest {
        domain: form.domain.clone(),
    };
    let result = run_mx(&state, &request).await;
    render(&state, &user, Some(Outcome::Mx(form, result)))
}

pub(crate) async fn probe(
    State(state): State<AppState>,
    user: AuthUser,
    Form(form): Form<ProbeForm>,
) -> Response {
    let result = match optional_number("port", &form.port) {
        Ok(port) => {
            let request = ProbeRequest {
                host: form.host.clone(),
                port,
                server_name: Some(form.server_name.clone()),
                timeout_s: None,
            };
            run_probe(&state, &request).await
        }
        Err(e) => Err(e),
    };
    render(&state, &user, Some(Outcome::Probe(form, result)))
}

pub(crate) async fn test_message(
    State(state): State<AppState>,
    user: AuthUser,
    Form(form): Form<TestForm>,
) -> Response {
    let request = TestMessageRequest {
        to: form.to.clone(),
        from: Some(form.from.clone()),
        address: Some(form.address.clone()),
        timeout_s: None,
    };
    let result = run_test_message(&state, &request).await;
    render(&state, &user, Some(Outcome::Test(form, result)))
}

fn render(state: &AppState, user: &AuthUser, outcome: Option<Outcome>) -> Response {
    let frame = Frame {
        node: &state.inner.node,
        user: Some(user),
        current: "/diagnostics",
    };
    let status = match &outcome {
        Some(Outcome::Mx(_, Err(e)) | Outcome::Probe(_, Err(e)) | Outcome::Test(_, Err(e))) => {
            e.status
        }
        _ => StatusCode::OK,
    };
    let body = if user.role == Role::Admin {
        forms(state, user, outcome.as_ref())
    } else {
        html! {
            div.card.empty {
                p { "Diagnostics make connections from this box to other servers: only admins can run them." }
                p.small { "Ask an admin, or log in as one." }
            }
        }
    };
    respond(status, layout::page(&frame, "Diagnostics", body))
}

fn forms(state: &AppState, user: &AuthUser, outcome: Option<&Outcome>) -> Markup {
    let (mx_form, mx_result) = match outcome {
        Some(Outcome::Mx(f, r)) => (f.clone(), Some(r)),
        _ => (MxForm::default(), None),
    };
    let (probe_form, probe_result) = match outcome {
        Some(Outcome::Probe(f, r)) => (f.clone(), Some(r)),
        _ => (ProbeForm::default(), None),
    };
    let (test_form, test_result) = match outcome {
        Some(Outcome::Test(f, r)) => (f.clone(), Some(r)),
        _ => (TestForm::default(), None),
    };
    let address = default_address(state).map_or_else(String::new, |a| a.to_string());
    html! {
        section.card aria-labelledby="mx-title" {
            h2 #mx-title { "MX look-up" }
            p.small.muted { "The mail hosts of a domain by preference, with their A and AAAA addresses, through this box's resolver." }
            form method="post" action="/diagnostics/mx" {
                (csrf_field(user))
                div.fields {
                    (field("mx-domain", "domain", "Domain", "text", &mx_form.domain, mx_result.and_then(|r| r.as_ref().err())))
                }
                p { button.primary type="submit" { "Look up" } }
            }
            @match mx_result {
                Some(Ok(report)) => (mx_report(report)),
                Some(Err(e)) => (general_error(e)),
                None => {},
            }
        }
        section.card aria-labelledby="probe-title" {
            h2 #probe-title { "Connect to a mail server" }
            p.small.muted { "Banner timing, EHLO, STARTTLS and the certificate, each step timed." }
            form method="post" action="/diagnostics/probe" {
                (csrf_field(user))
                div.fields {
                    (field("probe-host", "host", "Host name or IP address", "text", &probe_form.host, probe_result.and_then(|r| r.as_ref().err())))
                    (field("probe-port", "port", "Port (default 25)", "number", &probe_form.port, probe_result.and_then(|r| r.as_ref().err())))
                    (field("probe-server_name", "server_name", "Certificate name (optional)", "text", &probe_form.server_name, probe_result.and_then(|r| r.as_ref().err())))
                }
                p { button.primary type="submit" { "Connect" } }
            }
            @match probe_result {
                Some(Ok(result)) => (probe_report(result)),
                Some(Err(e)) => (general_error(e)),
                None => {},
            }
        }
        section.card aria-labelledby="test-title" {
            h2 #test-title { "Send a test message" }
            p.small.muted {
                "One message through the VIP (or any address), with every reply: the last one says where it landed. Default address: "
                @if address.is_empty() { "none (no listener)" } @else { span.mono { (address) } }
                ", default sender " span.mono { (default_from(state)) } "."
            }
            form method="post" action="/diagnostics/test-message" {
                (csrf_field(user))
                div.fields {
                    (field("test-to", "to", "Recipient", "email", &test_form.to, test_result.and_then(|r| r.as_ref().err())))
                    (field("test-from", "from", "Sender (optional)", "text", &test_form.from, test_result.and_then(|r| r.as_ref().err())))
                    (field("test-address", "address", "Address IP:port (optional)", "text", &test_form.address, test_result.and_then(|r| r.as_ref().err())))
                }
                p { button.primary type="submit" { "Send" } }
            }
            @match test_result {
                Some(Ok(result)) => (test_report(result)),
                Some(Err(e)) => (general_error(e)),
                None => {},
            }
        }
    }
}

/// An error that is not about one field (shown above the result area).
fn general_error(e: &ApiError) -> Markup {
    html! {
        @if e.field.is_none() { p.notice.bad role="alert" { (e.error) } }
    }
}

fn ms(millis: f64) -> String {
    format!("{millis:.1} ms")
}

fn mx_report(r: &MxReport) -> Markup {
    let outcome = match &r.outcome {
        MxOutcome::Records => "MX records found".to_owned(),
        MxOutcome::Implicit => {
            "no MX records: senders use the domain's own address (implicit MX)".to_owned()
        }
        MxOutcome::NullMx => "null MX: the domain accepts no mail".to_owned(),
        MxOutcome::NoSuchDomain => "the domain does not exist (NXDOMAIN)".to_owned(),
        MxOutcome::InvalidName { reason } => format!("not a domain name: {reason}"),
        MxOutcome::Failed { error } => format!("the look-up failed: {error}"),
    };
    html! {
        div #mx-result role="status" {
            p { strong { (r.domain) } ": " (outcome) " — " (ms(r.millis)) }
            @if !r.hosts.is_empty() {
                div.scroll { table {
                    thead { tr { th { "Preference" } th { "Host" } th { "TTL" } th { "IPv4 (A)" } th { "IPv6 (AAAA)" } th { "Problem" } } }
                    tbody { @for h in &r.hosts {
                        tr {
                            td { (h.preference) }
                            td.mono { (h.name) }
                            td { @if let Some(t) = h.ttl_s { (t) " s" } @else { "—" } }
                            td.mono { @for ip in &h.ipv4 { (ip) br; } }
                            td.mono { @for ip in &h.ipv6 { (ip) br; } }
                            td { @if let Some(e) = &h.error { span.bad { (e) } } }
                        }
                    } }
                } }
            }
            @for w in &r.warnings { p.notice.bad { (w) } }
        }
    }
}

fn probe_report(r: &ProbeResult) -> Markup {
    let p = &r.report;
    html! {
        div #probe-result role="status" {
            dl.facts {
                dt { "Server" } dd.mono { (p.addr) @if let Some(n) = &p.server_name { " (" (n) ")" } }
                @if let Some(m) = r.resolve_millis { dt { "Name look-up" } dd { (ms(m)) } }
                dt { "Banner time" } dd { @if let Some(m) = p.banner_millis { (ms(m)) } @else { "—" } }
                dt { "Banner" } dd.mono { @if let Some(b) = &p.banner { (b.one_line()) } @else { "—" } }
                dt { "STARTTLS" } dd { @if p.starttls_offered { span.ok { "offered" } } @else { span.bad { "not offered" } } }
                dt { "Total" } dd { (ms(p.total_millis)) }
                @if let Some(e) = &p.error { dt { "Failed at" } dd.bad { (e.step) ": " (e.message) } }
            }
            @if let Some(tls) = &p.tls { (tls_table(tls)) }
            (steps_table(&p.steps))
        }
    }
}

fn tls_table(tls: &TlsDetails) -> Markup {
    html! {
        h3 { "TLS and certificate" }
        dl.facts {
            dt { "Protocol" } dd { (tls.version) ", " (tls.cipher_suite) }
            dt { "SNI" } dd.mono { (tls.sni.as_deref().unwrap_or("none")) }
            dt { "Chain" } dd { (tls.chain_length) " certificate(s)" }
            @if let Some(c) = &tls.certificate {
                dt { "Subject" } dd.mono { (c.subject) }
                dt { "Names" } dd.mono { (c.sans.join(", ")) }
                dt { "Issuer" } dd.mono { (c.issuer) @if c.self_signed { " (self-signed)" } }
                dt { "Expires" } dd { (c.not_after) " (" (c.days_left) " days)" }
            }
            dt { "Trusted" } dd {
                @if tls.verification.trusted { span.ok { "yes" } } @else { span.bad { "no" } }
                @if let Some(n) = &tls.verification.name { " for " span.mono { (n) } }
                @if let Some(why) = &tls.verification.reason { ": " (why) }
            }
        }
    }
}

fn steps_table(steps: &[StepTiming]) -> Markup {
    html! {
        div.scroll { table {
            caption.small.muted { "Every step with its timing" }
            thead { tr { th { "Step" } th { "Sent" } th { "Reply" } th { "Time" } th { "Result" } } }
            tbody { @for s in steps {
                tr {
                    td { (s.step) }
                    td.mono { (s.command.as_deref().unwrap_or("")) }
                    td.mono { @if let Some(r) = &s.reply { (r.one_line()) } }
                    td { (ms(s.millis)) }
                    td { @if s.ok { span.ok { "ok" } } @else { span.bad { "failed" } } }
                }
            } }
        } }
    }
}

fn test_report(r: &TestMessageResult) -> Markup {
    let t = &r.report;
    html! {
        div #test-result role="status" {
            dl.facts {
                dt { "Sent to" } dd.mono { (t.addr) }
                dt { "Result" } dd { @if t.accepted { span.ok { "accepted" } } @else { span.bad { "not accepted" } } }
                dt { "Final reply" } dd.mono { @if let Some(f) = &t.final_reply { (f.one_line()) } @else { "—" } }
                dt { "Queue id" } dd.mono { (t.queue_id.as_deref().unwrap_or("—")) }
                dt { "Message-ID" } dd.mono { (t.message_id) }
                dt { "Tracking" } dd {
                    @match (&r.tracking_url, r.tracking_session) {
                        (Some(url), Some(id)) => a href=(url) { "session " (id) " on this box" },
                        _ => span.muted { "not tracked by this box (an l4 listener, the peer, or another server)" },
                    }
                }
                dt { "Total" } dd { (ms(t.total_millis)) }
                @if let Some(e) = &t.error { dt { "Failed at" } dd.bad { (e.step) ": " (e.message) } }
            }
            (steps_table(&t.steps))
        }
    }
}
