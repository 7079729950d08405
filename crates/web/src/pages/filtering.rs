//! The Filtering page: one form per section of the filter policy (relay
//! domains, allow/block lists, screening with its DNSBL zones,
//! greylisting, rate limits, sender authentication). Every form posts to
//! `POST /filtering/{section}` with an `op` (`save`, `add`, `remove`,
//! `add_zone`, `remove_zone`); the page builds the section's new value from
//! the current one and the form, and hands it to [`filtering::put`], like
//! the API. A refused field is shown next to its input with what was
//! typed, and nothing changes.

use super::form::{checkbox, field, labelled, select};
use super::layout::{self, csrf_field, respond, Frame};
use crate::api::filtering::{self, Filtering, Lists, RateLimits, Relay, Section};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use mxgate_config::raw::{
    AuthSection, DnsblSection, GreylistSection, ListSection, RateLimitSection, ScreenSection,
};
use mxgate_store::Role;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::str::FromStr;

/// A form's fields by name, as typed (or as the policy has them).
type Values = HashMap<String, String>;

/// A refused form: which one (`{section}-{op}`), what was typed, why.
struct Refused {
    form: String,
    typed: Values,
    error: ApiError,
}

/// What a list entry can match, as in the policy file.
const KINDS: &[(&str, &str)] = &[
    ("client", "client address or network"),
    ("reverse_name", "client reverse name"),
    ("helo", "HELO name"),
    ("sender", "sender address"),
    ("sender_domain", "sender domain"),
    ("recipient", "recipient address"),
];
const ACTIONS: &[(&str, &str)] = &[("block", "block"), ("allow", "allow")];
const GREET_ACTIONS: &[(&str, &str)] = &[
    ("reject", "reject (554, then close)"),
    ("drop", "drop (close at once)"),
    ("ignore", "ignore (only count it)"),
];
const RATE_KEYS: &[(&str, &str)] = &[
    ("client_ip", "client address"),
    ("client_net", "client network"),
    ("sender", "sender address"),
    ("sender_domain", "sender domain"),
    ("recipient_domain", "recipient domain"),
];
const CHECK_MODES: &[(&str, &str)] = &[
    ("off", "off"),
    ("tag", "tag (add the result header)"),
    ("reject", "reject on fail"),
];
const DMARC_MODES: &[(&str, &str)] = &[
    ("off", "off"),
    ("tag", "tag (add the result header)"),
    ("reject", "reject every fail"),
    ("enforce", "enforce the domain's p="),
];

pub(crate) async fn page(State(state): State<AppState>, user: AuthUser) -> Response {
    render(&state, &user, None)
}

pub(crate) async fn post(
    State(state): State<AppState>,
    user: AuthUser,
    Path(section): Path<String>,
    Form(typed): Form<Values>,
) -> Response {
    let op = typed.get("op").map_or("save", String::as_str).to_string();
    let result = match build(&section, &op, &typed, filtering::current(&state)) {
        Ok(value) => filtering::put(&state, &user.name, value).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to(&format!("/filtering#{section}")).into_response(),
        Err(error) => {
            let refused = Refused {
                form: format!("{section}-{op}"),
                typed,
                error: input_error(error),
            };
            render(&state, &user, Some(&refused))
        }
    }
}

/// The section value a form asks for, from the current policy `now`.
fn build(section: &str, op: &str, v: &Values, now: Filtering) -> Result<Section, ApiError> {
    Ok(match (section, op) {
        ("relay", "save") => Section::Relay(Relay {
            domains: words(text(v, "domains")),
        }),
        ("lists", "add") => {
            let mut entries = now.lists.entries;
            entries.push(list_entry(v)?);
            Section::Lists(Lists { entries })
        }
        ("lists", "remove") => {
            let mut entries = now.lists.entries;
            remove_at(&mut entries, v)?;
            Section::Lists(Lists { entries })
        }
        ("screen", "save") => Section::Screen(screen_settings(v, now.screen)?),
        ("screen", "add_zone") => {
            let mut screen = now.screen;
            screen.dnsbl.push(DnsblSection {
                zone: text(v, "zone").trim().to_string(),
                weight: optional(v, "weight")?.unwrap_or(1),
                filter: Some(text(v, "filter").trim().to_string()).filter(|f| !f.is_empty()),
            });
            Section::Screen(screen)
        }
        ("screen", "remove_zone") => {
            let mut screen = now.screen;
            remove_at(&mut screen.dnsbl, v)?;
            Section::Screen(screen)
        }
        ("greylist", "save") => Section::Greylist(greylist(v)?),
        ("rate_limits", "add") => {
            let mut rules = now.rate_limits.rules;
            rules.push(RateLimitSection {
                key: text(v, "key").to_string(),
                window_s: number(v, "window_s")?,
                connections: optional(v, "connections")?,
                messages: optional(v, "messages")?,
                recipients: optional(v, "recipients")?,
                concurrency: optional(v, "concurrency")?,
            });
            Section::RateLimits(RateLimits { rules })
        }
        ("rate_limits", "remove") => {
            let mut rules = now.rate_limits.rules;
            remove_at(&mut rules, v)?;
            Section::RateLimits(RateLimits { rules })
        }
        ("auth", "save") => Section::Auth(AuthSection {
            spf: text(v, "spf").to_string(),
            dkim: text(v, "dkim").to_string(),
            arc: text(v, "arc").to_string(),
            dmarc: text(v, "dmarc").to_string(),
            hold_memory_kb: number(v, "hold_memory_kb")?,
        }),
        _ => {
            return Err(ApiError::not_found(format!(
                "the Filtering page has no form {section}/{op}"
            )))
        }
    })
}

fn list_entry(v: &Values) -> Result<ListSection, ApiError> {
    let kind = text(v, "kind");
    if !KINDS.iter().any(|(k, _)| *k == kind) {
        let kinds: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
        return Err(ApiError::invalid(
            "kind",
            format!("{kind:?} is not one of {}", kinds.join(", ")),
        ));
    }
    let value = text(v, "value").trim();
    if value.is_empty() {
        return Err(ApiError::invalid("value", "type what the entry matches"));
    }
    Ok(ListSection::with(text(v, "action"), kind, value))
}

fn screen_settings(v: &Values, now: ScreenSection) -> Result<ScreenSection, ApiError> {
    Ok(ScreenSection {
        greet_wait_ms: number(v, "greet_wait_ms")?,
        greet_action: text(v, "greet_action").to_string(),
        dnsbl_threshold: number(v, "dnsbl_threshold")?,
        dnsbl_allow_threshold: number(v, "dnsbl_allow_threshold")?,
        dns_timeout_ms: number(v, "dns_timeout_ms")?,
        reveal_dnsbl: ticked(v, "reveal_dnsbl"),
        allowlist_ttl_s: number(v, "allowlist_ttl_s")?,
        reverse_dns: ticked(v, "reverse_dns"),
        dnsbl: now.dnsbl,
    })
}

fn greylist(v: &Values) -> Result<GreylistSection, ApiError> {
    Ok(GreylistSection {
        enabled: ticked(v, "enabled"),
        delay_s: number(v, "delay_s")?,
        retry_window_s: number(v, "retry_window_s")?,
        lifetime_s: number(v, "lifetime_s")?,
        ipv4_prefix: number(v, "ipv4_prefix")?,
        ipv6_prefix: number(v, "ipv6_prefix")?,
        auto_allow_after: number(v, "auto_allow_after")?,
        spf_domain_keying: ticked(v, "spf_domain_keying"),
        skip_dmarc_pass: ticked(v, "skip_dmarc_pass"),
    })
}

fn text<'a>(v: &'a Values, name: &str) -> &'a str {
    v.get(name).map_or("", String::as_str)
}

fn ticked(v: &Values, name: &str) -> bool {
    v.contains_key(name)
}

/// The lines (or comma-separated items) of `text`, trimmed: a line with
/// a space in it stays one item, so the policy's check refuses it.
fn words(text: &str) -> Vec<String> {
    text.split(['\n', ','])
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Field `name` as a whole number.
fn number<T: FromStr>(v: &Values, name: &str) -> Result<T, ApiError> {
    optional(v, name)?.ok_or_else(|| ApiError::invalid(name, "required: a whole number"))
}

/// Field `name` as a whole number, `None` when left blank.
fn optional<T: FromStr>(v: &Values, name: &str) -> Result<Option<T>, ApiError> {
    let typed = text(v, name).trim();
    if typed.is_empty() {
        return Ok(None);
    }
    typed
        .parse()
        .map(Some)
        .map_err(|_| ApiError::invalid(name, format!("{typed:?} is not a whole number in range")))
}

/// Removes item `index` of `items` if it is still the one shown (`expect`,
/// its JSON), so a stale page cannot remove the wrong entry.
fn remove_at<T: Serialize>(items: &mut Vec<T>, v: &Values) -> Result<(), ApiError> {
    let index: usize = number(v, "index")?;
    let shown = items.get(index).map(identity);
    if shown.as_deref() != Some(text(v, "expect")) {
        return Err(ApiError::conflict(
            "the list changed since this page was loaded; nothing was removed (look again below)",
        ));
    }
    items.remove(index);
    Ok(())
}

/// An entry's identity for [`remove_at`].
fn identity<T: Serialize>(item: &T) -> String {
    serde_json::to_string(item).unwrap_or_default()
}

/// `error` with its field as the form's input name: `entries[2].client`
/// → `value` (the list form's value input), `dnsbl[0].weight` → `weight`,
/// `domains[1]` → `domains`.
fn input_error(mut error: ApiError) -> ApiError {
    if let Some(field) = &error.field {
        let name = match field.rfind("].") {
            Some(i) => &field[i + 2..],
            None => field.split('[').next().unwrap_or(field),
        };
        let name = if KINDS.iter().any(|(k, _)| *k == name) {
            "value"
        } else {
            name
        };
        error.field = Some(name.to_string());
    }
    error
}

/// A section's settings as form values (`true` as `on`, `false` absent).
fn values_of<T: Serialize>(section: &T) -> Values {
    let Ok(Value::Object(map)) = serde_json::to_value(section) else {
        return Values::new();
    };
    map.into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            Value::Number(n) => Some((k, n.to_string())),
            Value::Bool(true) => Some((k, "on".to_string())),
            _ => None,
        })
        .collect()
}

/// What the page knows while rendering: who, and the refused form if any.
struct Ctx<'a> {
    user: &'a AuthUser,
    admin: bool,
    refused: Option<&'a Refused>,
}

impl Ctx<'_> {
    /// Form `id`'s values: as typed when it was refused, else `current`.
    fn values(&self, id: &str, current: Values) -> Values {
        match self.refused.filter(|r| r.form == id) {
            Some(r) => r.typed.clone(),
            None => current,
        }
    }

    /// The error of form `id`, if it was the refused one.
    fn error(&self, id: &str) -> Option<&ApiError> {
        self.refused.filter(|r| r.form == id).map(|r| &r.error)
    }

    /// A form posting `op` to the section's route, disabled for read-only
    /// users.
    fn form(&self, section: &str, op: &str, button: &str, inner: Markup) -> Markup {
        html! {
            form method="post" action={ "/filtering/" (section) } {
                (csrf_field(self.user))
                input type="hidden" name="op" value=(op);
                fieldset.plain disabled[!self.admin] { div.fields { (inner) } }
                @if self.admin { p { button.primary type="submit" { (button) } } }
            }
        }
    }

    /// The remove button of item `index` of a table.
    fn remove<T: Serialize>(
        &self,
        section: &str,
        op: &str,
        index: usize,
        item: &T,
        label: &str,
    ) -> Markup {
        html! {
            @if self.admin {
                td { form.inline method="post" action={ "/filtering/" (section) } {
                    (csrf_field(self.user))
                    input type="hidden" name="op" value=(op);
                    input type="hidden" name="index" value=(index);
                    input type="hidden" name="expect" value=(identity(item));
                    button.danger type="submit" aria-label={ "remove " (label) } { "remove" }
                } }
            }
        }
    }
}

fn render(state: &AppState, user: &AuthUser, refused: Option<&Refused>) -> Response {
    let now = filtering::current(state);
    let ctx = Ctx {
        user,
        admin: user.role == Role::Admin,
        refused,
    };
    let frame = Frame {
        node: &state.inner.node,
        user: Some(user),
        current: "/filtering",
    };
    let body = html! {
        @if let Some(r) = refused {
            p.notice.bad role="alert" { "Not saved: " (r.error.error) }
        }
        @if !ctx.admin { p.notice { "You are logged in read-only: you can look, not change." } }
        p.small.muted { "Every change is checked with the policy file's rules, applied by the running gateway at once and sent to the peer. "
            "The same settings are in " code { "mxgate policy export" } "." }
        (relay(&ctx, &now.relay))
        (lists(&ctx, &now.lists))
        (screen(&ctx, &now.screen))
        (greylist_card(&ctx, &now.greylist))
        (rate_limits(&ctx, &now.rate_limits))
        (auth(&ctx, &now.auth))
    };
    let status = refused.map_or(StatusCode::OK, |r| r.error.status);
    respond(status, layout::page(&frame, "Filtering", body))
}

fn relay(ctx: &Ctx<'_>, now: &Relay) -> Markup {
    let current = Values::from([("domains".to_string(), now.domains.join("\n"))]);
    let v = ctx.values("relay-save", current);
    let error = ctx.error("relay-save");
    html! {
        section.card #relay {
            h2 { "Relay domains" }
            p.small.muted { "Recipient domains smtp-mode listeners accept mail for; every other recipient gets 554. l4 listeners do not look at recipients." }
            (ctx.form("relay", "save", "Save relay domains", html! {
                (labelled("relay-domains", "domains", "Domains, one per line", error, |aria| html! {
                    textarea #relay-domains name="domains" rows="5" spellcheck="false"
                        aria-invalid=[aria.invalid]
                        aria-describedby=[aria.described_by] { (text(&v, "domains")) }
                }))
            }))
        }
    }
}

fn lists(ctx: &Ctx<'_>, now: &Lists) -> Markup {
    let id = "lists-add";
    let v = ctx.values(
        id,
        Values::from([
            ("action".to_string(), "block".to_string()),
            ("kind".to_string(), "client".to_string()),
        ]),
    );
    let error = ctx.error(id);
    html! {
        section.card #lists {
            h2 { "Allow and block lists" }
            @if now.entries.is_empty() {
                p.empty { "No allow or block entry: every client goes through the other checks. Add one below." }
            } @else {
                div.scroll { table {
                    thead { tr { th { "Action" } th { "Matches" } th { "Value" } @if ctx.admin { th { "Actions" } } } }
                    tbody { @for (i, entry) in now.entries.iter().enumerate() {
                        @let matchers = entry.matchers();
                        @let (kind, value) = matchers.first().copied().unwrap_or(("", ""));
                        tr {
                            td { (super::layout::badge(if entry.action == "allow" { "up" } else { "down" })) " " (entry.action) }
                            td { (KINDS.iter().find(|(k, _)| *k == kind).map_or(kind, |(_, label)| label)) }
                            td.mono { (value) }
                            (ctx.remove("lists", "remove", i, entry, &format!("{} {kind} {value}", entry.action)))
                        }
                    } }
                } }
            }
            @if ctx.admin {
                h3 { "Add an entry" }
                (ctx.form("lists", "add", "Add entry", html! {
                    (select("lists-action", "action", "Action", ACTIONS, text(&v, "action"), error))
                    (select("lists-kind", "kind", "Matches", KINDS, text(&v, "kind"), error))
                    (field("lists-value", "value", "Value (address, network, name or .suffix)", "text", text(&v, "value"), error))
                }))
            }
        }
    }
}

fn screen(ctx: &Ctx<'_>, now: &ScreenSection) -> Markup {
    let v = ctx.values("screen-save", values_of(now));
    let error = ctx.error("screen-save");
    let zone_id = "screen-add_zone";
    let zv = ctx.values(
        zone_id,
        Values::from([("weight".to_string(), "1".to_string())]),
    );
    let zerr = ctx.error(zone_id);
    html! {
        section.card #screen {
            h2 { "Screening" }
            p.small.muted { "Checks at connect, before any backend is touched: the pregreet wait, DNSBL/DNSWL scores, the temporary allowlist of clients that passed." }
            (ctx.form("screen", "save", "Save screening", html! {
                (field("screen-greet_wait_ms", "greet_wait_ms", "Pregreet wait (ms, 0 = off)", "number", text(&v, "greet_wait_ms"), error))
                (select("screen-greet_action", "greet_action", "A client that talks first", GREET_ACTIONS, text(&v, "greet_action"), error))
                (field("screen-dnsbl_threshold", "dnsbl_threshold", "DNSBL score that refuses", "number", text(&v, "dnsbl_threshold"), error))
                (field("screen-dnsbl_allow_threshold", "dnsbl_allow_threshold", "DNSWL score that allowlists (0 = never)", "number", text(&v, "dnsbl_allow_threshold"), error))
                (field("screen-dns_timeout_ms", "dns_timeout_ms", "DNSBL look-up time (ms)", "number", text(&v, "dns_timeout_ms"), error))
                (field("screen-allowlist_ttl_s", "allowlist_ttl_s", "Allowlist a passed client for (s)", "number", text(&v, "allowlist_ttl_s"), error))
                (checkbox("screen-reveal_dnsbl", "reveal_dnsbl", "Name the DNSBL in the refusal", v.contains_key("reveal_dnsbl"), error))
                (checkbox("screen-reverse_dns", "reverse_dns", "Look up the client's reverse name", v.contains_key("reverse_dns"), error))
            }))
            h3 { "DNSBL and DNSWL zones" }
            @if now.dnsbl.is_empty() {
                p.empty { "No zone: clients are not scored. Add a DNSBL (positive weight) or a DNSWL (negative weight) below." }
            } @else {
                div.scroll { table {
                    thead { tr { th { "Zone" } th { "Weight" } th { "Reply filter" } @if ctx.admin { th { "Actions" } } } }
                    tbody { @for (i, zone) in now.dnsbl.iter().enumerate() { tr {
                        td.mono { (zone.zone) }
                        td { (zone.weight) }
                        td.mono { (zone.filter.as_deref().unwrap_or("any 127.x answer")) }
                        (ctx.remove("screen", "remove_zone", i, zone, &zone.zone))
                    } } }
                } }
            }
            @if ctx.admin {
                (ctx.form("screen", "add_zone", "Add zone", html! {
                    (field("zone-zone", "zone", "Zone", "text", text(&zv, "zone"), zerr))
                    (field("zone-weight", "weight", "Weight (negative: allowlist)", "number", text(&zv, "weight"), zerr))
                    (field("zone-filter", "filter", "Reply filter (optional, e.g. 127.0.0.[2..11])", "text", text(&zv, "filter"), zerr))
                }))
            }
        }
    }
}

fn greylist_card(ctx: &Ctx<'_>, now: &GreylistSection) -> Markup {
    let v = ctx.values("greylist-save", values_of(now));
    let e = ctx.error("greylist-save");
    let n = |name: &str, label: &str| {
        field(
            &format!("greylist-{name}"),
            name,
            label,
            "number",
            text(&v, name),
            e,
        )
    };
    let c = |name: &str, label: &str| {
        checkbox(
            &format!("greylist-{name}"),
            name,
            label,
            v.contains_key(name),
            e,
        )
    };
    html! {
        section.card #greylist {
            h2 { "Greylisting" }
            p.small.muted { "smtp mode: a new (client network, sender, recipient) triplet gets 451 until it retries after the delay." }
            (ctx.form("greylist", "save", "Save greylisting", html! {
                (c("enabled", "Greylist new triplets"))
                (n("delay_s", "Accept a retry after (s)"))
                (n("retry_window_s", "... within (s) of the first attempt"))
                (n("lifetime_s", "Remember a passed triplet for (s)"))
                (n("ipv4_prefix", "IPv4 client network size (prefix)"))
                (n("ipv6_prefix", "IPv6 client network size (prefix)"))
                (n("auto_allow_after", "Skip greylisting after this many passed triplets"))
                (c("spf_domain_keying", "Key on the SPF-validated sender domain"))
                (c("skip_dmarc_pass", "Skip greylisting for DMARC-aligned passes"))
            }))
        }
    }
}

fn rate_limits(ctx: &Ctx<'_>, now: &RateLimits) -> Markup {
    let id = "rate_limits-add";
    let v = ctx.values(
        id,
        Values::from([
            ("key".to_string(), "client_ip".to_string()),
            ("window_s".to_string(), "60".to_string()),
        ]),
    );
    let e = ctx.error(id);
    let limit = |n: Option<u32>| n.map_or_else(|| "—".to_string(), |n| n.to_string());
    html! {
        section.card #rate_limits {
            h2 { "Rate limits" }
            @if now.rules.is_empty() {
                p.empty { "No rate limit: a client may connect and send as often as it likes. Add a rule below." }
            } @else {
                div.scroll { table {
                    thead { tr { th { "Per" } th { "Window (s)" } th { "Connections" } th { "Messages" }
                        th { "Recipients" } th { "At once" } @if ctx.admin { th { "Actions" } } } }
                    tbody { @for (i, rule) in now.rules.iter().enumerate() { tr {
                        td { (rule.key) } td { (rule.window_s) } td { (limit(rule.connections)) }
                        td { (limit(rule.messages)) } td { (limit(rule.recipients)) } td { (limit(rule.concurrency)) }
                        (ctx.remove("rate_limits", "remove", i, rule, &format!("the {} rule", rule.key)))
                    } } }
                } }
            }
            @if ctx.admin {
                h3 { "Add a rule" }
                (ctx.form("rate_limits", "add", "Add rule", html! {
                    (select("rate-key", "key", "Per", RATE_KEYS, text(&v, "key"), e))
                    (field("rate-window_s", "window_s", "Window (s)", "number", text(&v, "window_s"), e))
                    (field("rate-connections", "connections", "Connections per window", "number", text(&v, "connections"), e))
                    (field("rate-messages", "messages", "Messages per window", "number", text(&v, "messages"), e))
                    (field("rate-recipients", "recipients", "Recipients per window", "number", text(&v, "recipients"), e))
                    (field("rate-concurrency", "concurrency", "Connections at once", "number", text(&v, "concurrency"), e))
                }))
            }
        }
    }
}

fn auth(ctx: &Ctx<'_>, now: &AuthSection) -> Markup {
    let v = ctx.values("auth-save", values_of(now));
    let e = ctx.error("auth-save");
    html! {
        section.card #auth {
            h2 { "Sender authentication" }
            p.small.muted { "smtp mode: SPF at MAIL FROM; DKIM, ARC and DMARC at the end of the data." }
            (ctx.form("auth", "save", "Save authentication", html! {
                (select("auth-spf", "spf", "SPF", CHECK_MODES, text(&v, "spf"), e))
                (select("auth-dkim", "dkim", "DKIM", CHECK_MODES, text(&v, "dkim"), e))
                (select("auth-arc", "arc", "ARC", CHECK_MODES, text(&v, "arc"), e))
                (select("auth-dmarc", "dmarc", "DMARC", DMARC_MODES, text(&v, "dmarc"), e))
                (field("auth-hold_memory_kb", "hold_memory_kb", "Message held in memory up to (KiB)", "number", text(&v, "hold_memory_kb"), e))
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn refused_fields_name_the_form_input() {
        let named = |f: &str| input_error(ApiError::invalid(f, "bad")).field.unwrap();
        assert_eq!(named("entries[2].client"), "value");
        assert_eq!(named("dnsbl[0].weight"), "weight");
        assert_eq!(named("domains[1]"), "domains");
        assert_eq!(named("delay_s"), "delay_s");
    }

    #[test]
    fn numbers_are_checked_on_the_page() {
        let v = values(&[("weight", "x"), ("blank", " ")]);
        let e = optional::<i32>(&v, "weight").unwrap_err();
        assert_eq!(
            e.reason_for("weight"),
            Some("\"x\" is not a whole number in range")
        );
        assert_eq!(optional::<i32>(&v, "blank").unwrap(), None);
        assert!(number::<u64>(&v, "blank").is_err());
    }

    #[test]
    fn a_stale_remove_removes_nothing() {
        let mut items = vec!["a".to_string(), "b".to_string()];
        let stale = values(&[("index", "0"), ("expect", "\"b\"")]);
        assert_eq!(
            remove_at(&mut items, &stale).unwrap_err().status,
            StatusCode::CONFLICT
        );
        remove_at(&mut items, &values(&[("index", "1"), ("expect", "\"b\"")])).unwrap();
        assert_eq!(items, ["a"]);
    }

    #[test]
    fn settings_become_form_values() {
        let v = values_of(&GreylistSection::default());
        assert_eq!(v["delay_s"], "300");
        assert_eq!(v["spf_domain_keying"], "on");
        assert!(!v.contains_key("enabled"));
        assert_eq!(
            words("a.test\r\nb.test, c.test"),
            ["a.test", "b.test", "c.test"]
        );
    }
}
