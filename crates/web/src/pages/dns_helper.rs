//! The DNS helper page: a form (domain, active-passive or active-active,
//! the MX hosts and their public addresses — prefilled from the VRRP VIP
//! or the listeners' addresses —, TLS-RPT address, MTA-STS mode and
//! max_age) that gives the zone lines to publish ready to copy, the TTL
//! advice and the MTA-STS policy; admins publish that policy at
//! `/.well-known/mta-sts.txt` with one button. Same checks as the API
//! (`api::dns_helper`, `api::mta_sts`); a refused field is shown next to
//! its input.

use super::form::{field, optional_number, select};
use super::layout::{self, csrf_field, respond, Frame};
use crate::api::diagnostics::vips;
use crate::api::dns_helper::{run, DnsHelperRequest, DnsHelperResult, HostInput, DEFAULT_MAX_AGE};
use crate::api::mta_sts::{current, save, MtaStsSetting, MtaStsView};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use mxgate_store::Role;
use serde::Deserialize;
use std::net::IpAddr;

/// The helper form, as typed (input names are the API's field names, so
/// a refusal lands next to its input).
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct HelperForm {
    #[serde(default)]
    domain: String,
    #[serde(default)]
    mode: String,
    #[serde(default, rename = "hosts[0].name")]
    host0_name: String,
    #[serde(default, rename = "hosts[0].addresses")]
    host0_addresses: String,
    #[serde(default, rename = "hosts[1].name")]
    host1_name: String,
    #[serde(default, rename = "hosts[1].addresses")]
    host1_addresses: String,
    #[serde(default)]
    tls_rpt_rua: String,
    #[serde(default)]
    mta_sts_mode: String,
    #[serde(default)]
    max_age: String,
    #[serde(default)]
    migrating: Option<String>,
    /// Set by the form's button: compute the records.
    #[serde(default)]
    show: Option<String>,
}

/// The publish button's fields.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct PublishForm {
    #[serde(default)]
    mode: String,
    /// MX names separated by spaces.
    #[serde(default)]
    mx: String,
    #[serde(default)]
    max_age: String,
}

/// `GET /dns`: the prefilled form; with the form's fields in the query
/// (`show` set), the records too. A GET, since it changes nothing: links
/// to it can be shared, and read-only users can use it.
pub(crate) async fn page(
    State(state): State<AppState>,
    user: AuthUser,
    Query(form): Query<HelperForm>,
) -> Response {
    if form.show.is_none() {
        let form = prefilled(&state);
        return render(&state, &user, &form, None).await;
    }
    let result = request(&form).and_then(|r| run(&r));
    render(&state, &user, &form, Some(result)).await
}

pub(crate) async fn publish(
    State(state): State<AppState>,
    user: AuthUser,
    Form(form): Form<PublishForm>,
) -> Response {
    let result = match optional_number("max_age", &form.max_age) {
        Ok(max_age) => {
            let setting = MtaStsSetting {
                mode: form.mode.clone(),
                mx: form.mx.split_whitespace().map(str::to_owned).collect(),
                max_age: max_age.unwrap_or(DEFAULT_MAX_AGE),
            };
            save(&state, &user.name, setting).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Redirect::to("/dns#served").into_response(),
        Err(e) => render(&state, &user, &prefilled(&state), Some(Err(e))).await,
    }
}

/// The form's first values: the first relay domain, the VIP (one host,
/// active-passive) or the listeners' public addresses.
fn prefilled(state: &AppState) -> HelperForm {
    let domain = state
        .store()
        .current()
        .relay_domains
        .first()
        .cloned()
        .unwrap_or_default();
    let vips = vips(state);
    let addresses: Vec<IpAddr> = if vips.is_empty() {
        let mut ips: Vec<IpAddr> = state
            .inner
            .gateway
            .listeners()
            .iter()
            .map(|l| l.local_addr.unwrap_or(l.bind).ip())
            .filter(|ip| !ip.is_unspecified() && !ip.is_loopback())
            .collect();
        ips.sort();
        ips.dedup();
        ips
    } else {
        vips
    };
    HelperForm {
        host0_name: if domain.is_empty() {
            String::new()
        } else {
            format!("mx.{domain}")
        },
        domain,
        mode: "active-passive".to_owned(),
        host0_addresses: join(&addresses),
        mta_sts_mode: "testing".to_owned(),
        max_age: DEFAULT_MAX_AGE.to_string(),
        ..HelperForm::default()
    }
}

fn join(ips: &[IpAddr]) -> String {
    ips.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The API request of a form: hosts with a name or an address.
fn request(form: &HelperForm) -> Result<DnsHelperRequest, ApiError> {
    let hosts = [
        (&form.host0_name, &form.host0_addresses),
        (&form.host1_name, &form.host1_addresses),
    ]
    .into_iter()
    .filter(|(name, addresses)| !name.trim().is_empty() || !addresses.trim().is_empty())
    .map(|(name, addresses)| HostInput {
        name: name.trim().to_owned(),
        addresses: addresses
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect(),
    })
    .collect();
    Ok(DnsHelperRequest {
        domain: form.domain.clone(),
        mode: form.mode.clone(),
        hosts,
        tls_rpt_rua: Some(form.tls_rpt_rua.clone()),
        mta_sts_mode: Some(form.mta_sts_mode.clone()),
        max_age: optional_number("max_age", &form.max_age)?,
        mta_sts_id: None,
        migrating: Some(form.migrating.is_some()),
    })
}

async fn render(
    state: &AppState,
    user: &AuthUser,
    form: &HelperForm,
    result: Option<Result<DnsHelperResult, ApiError>>,
) -> Response {
    let served = current(state).await.ok().flatten();
    let error = result.as_ref().and_then(|r| r.as_ref().err());
    let status = error.map_or(StatusCode::OK, |e| e.status);
    let frame = Frame {
        node: &state.inner.node,
        user: Some(user),
        current: "/dns",
    };
    let body = html! {
        @if let Some(e) = error {
            p.notice.bad role="alert" { (e.error) }
        }
        (helper_form(form, error))
        @if let Some(Ok(done)) = &result {
            (zone(done))
            (policy(user, form, done))
        }
        (served_policy(served.as_ref()))
    };
    respond(status, layout::page(&frame, "DNS helper", body))
}

fn helper_form(form: &HelperForm, error: Option<&ApiError>) -> Markup {
    html! {
        section.card aria-labelledby="helper-title" {
            h2 #helper-title { "Records to publish" }
            p.small.muted { "Active-passive: one MX host name on the VIP. Active-active: one MX host per box, at equal priority." }
            form method="get" action="/dns" {
                div.fields {
                    (field("dns-domain", "domain", "Mail domain", "text", &form.domain, error))
                    (select("dns-mode", "mode", "Mode", &[("active-passive", "active-passive"), ("active-active", "active-active")], &form.mode, error))
                }
                @if let Some(reason) = error.and_then(|e| e.reason_for("hosts")) {
                    p.error { (reason) }
                }
                div.fields {
                    (field("dns-host0-name", "hosts[0].name", "MX host 1 name", "text", &form.host0_name, error))
                    (field("dns-host0-addresses", "hosts[0].addresses", "MX host 1 public addresses", "text", &form.host0_addresses, error))
                    (field("dns-host1-name", "hosts[1].name", "MX host 2 name (active-active)", "text", &form.host1_name, error))
                    (field("dns-host1-addresses", "hosts[1].addresses", "MX host 2 public addresses", "text", &form.host1_addresses, error))
                }
                div.fields {
                    (field("dns-rua", "tls_rpt_rua", "TLS-RPT reports to (default mailto:tlsrpt@domain)", "text", &form.tls_rpt_rua, error))
                    (select("dns-sts-mode", "mta_sts_mode", "MTA-STS mode", &[("testing", "testing"), ("enforce", "enforce"), ("none", "none")], &form.mta_sts_mode, error))
                    (field("dns-max-age", "max_age", "MTA-STS max_age (seconds)", "number", &form.max_age, error))
                }
                div {
                    label for="dns-migrating" {
                        input #dns-migrating type="checkbox" name="migrating" value="on" checked[form.migrating.is_some()];
                        " The MX records are moving to these hosts now (short TTLs)"
                    }
                }
                p { button.primary type="submit" name="show" value="1" { "Show the records" } }
            }
        }
    }
}

fn zone(done: &DnsHelperResult) -> Markup {
    let z = &done.zone;
    html! {
        section.card aria-labelledby="zone-title" {
            h2 #zone-title { "Zone lines" }
            p.small.muted { "Copy these into the domain's zone (or the DNS provider's form, one record per line)." }
            pre.copy #zone-text { (z.zone_text) }
            div.scroll { table {
                thead { tr { th { "Name" } th { "TTL" } th { "Type" } th { "Value" } th { "For" } } }
                tbody { @for r in &z.records {
                    tr { td.mono { (r.name) } td { (r.ttl) } td { (r.rtype) } td.mono { (r.value) } td.small { (r.purpose) } }
                } }
            } }
            h3 { "TTL advice" }
            div.scroll { table #ttl-advice {
                thead { tr { th { "Records" } th { "TTL" } th { "Why" } } }
                tbody { @for a in &z.ttl_advice {
                    tr { td { (a.records) } td { (a.ttl) " s" } td.small { (a.reason) } }
                } }
            } }
            @if !z.notes.is_empty() {
                h3 { "Also" }
                ul { @for n in &z.notes { li.small { (n) } } }
            }
        }
    }
}

fn policy(user: &AuthUser, form: &HelperForm, done: &DnsHelperResult) -> Markup {
    let mx: Vec<&str> = done
        .mta_sts_policy
        .lines()
        .filter_map(|l| l.strip_prefix("mx: "))
        .collect();
    html! {
        section.card aria-labelledby="policy-title" {
            h2 #policy-title { "MTA-STS policy" }
            p.small.muted { "Served at https://mta-sts." (form.domain.trim()) "/.well-known/mta-sts.txt once published." }
            pre.copy #mta-sts-policy { (done.mta_sts_policy) }
            @if user.role == Role::Admin {
                form method="post" action="/dns/mta-sts" {
                    (csrf_field(user))
                    input type="hidden" name="mode" value=(form.mta_sts_mode);
                    input type="hidden" name="mx" value=(mx.join(" "));
                    input type="hidden" name="max_age" value=(form.max_age);
                    p { button.primary type="submit" { "Publish this policy" } }
                }
            }
        }
    }
}

fn served_policy(served: Option<&MtaStsView>) -> Markup {
    html! {
        section.card #served aria-labelledby="served-title" {
            h2 #served-title { "Served now at /.well-known/mta-sts.txt" }
            @match served {
                Some(view) => pre.copy { (view.policy) },
                None => p.empty { "No MTA-STS policy is served yet: fill in the form above, press \"Show the records\", then \"Publish this policy\"." },
            }
        }
    }
}
