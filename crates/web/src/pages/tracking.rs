//! The Tracking page: a GET search form (sender, recipient, client, time
//! range in UTC, result, how many) over the store's session records
//! ([`mxgate_store::Store::search`], as `GET /api/v1/tracking`), one row
//! per transaction linking to `/tracking/{id}`: the session with every
//! transaction, its recipients and replies, its full verdict trail, TLS,
//! size, backend and timings. Only smtp-mode listeners record sessions.

use super::form::{field, select};
use super::layout::{self, badge, respond, Frame};
use super::time::{civil_from_days, days_from_civil};
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use mxgate_store::{SessionRecord, TrackQuery, TransactionRecord};
use serde::Deserialize;

/// The search form, as typed.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct Search {
    sender: String,
    recipient: String,
    client: String,
    /// `YYYY-MM-DDTHH:MM` (UTC), as a `datetime-local` input sends it.
    since: String,
    until: String,
    /// `accepted`, `rejected`, `tempfail`, `abandoned` or blank.
    result: String,
    limit: String,
}

const RESULTS: &[(&str, &str)] = &[
    ("", "any"),
    ("accepted", "accepted"),
    ("rejected", "rejected"),
    ("tempfail", "deferred (4xx)"),
    ("abandoned", "abandoned"),
];

impl Search {
    /// The store query, or the refused field.
    fn query(&self) -> Result<TrackQuery, ApiError> {
        let some = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let limit = match self.limit.trim() {
            "" => 0,
            n => n
                .parse()
                .map_err(|_| ApiError::invalid("limit", "a whole number, at most 1000"))?,
        };
        Ok(TrackQuery {
            sender: some(&self.sender),
            recipient: some(&self.recipient),
            client: some(&self.client),
            since_unix_ms: time_field(&self.since, "since")?,
            until_unix_ms: time_field(&self.until, "until")?,
            limit,
        })
    }

    fn is_empty(&self) -> bool {
        [
            &self.sender,
            &self.recipient,
            &self.client,
            &self.since,
            &self.until,
            &self.result,
        ]
        .iter()
        .all(|s| s.trim().is_empty())
    }
}

fn time_field(text: &str, name: &str) -> Result<Option<i64>, ApiError> {
    match text.trim() {
        "" => Ok(None),
        t => parse_utc(t)
            .map(Some)
            .ok_or_else(|| ApiError::invalid(name, "a date and time like 2025-03-01T14:30 (UTC)")),
    }
}

pub(crate) async fn page(
    State(state): State<AppState>,
    user: AuthUser,
    Query(search): Query<Search>,
) -> Response {
    let outcome = match search.query() {
        Ok(query) => state.blocking(move |store| Ok(store.search(&query)?)).await,
        Err(e) => Err(e),
    };
    let frame = Frame {
        node: &state.inner.node,
        user: Some(&user),
        current: "/tracking",
    };
    let error = outcome.as_ref().err();
    let rows: Vec<(&SessionRecord, Option<&TransactionRecord>)> = match &outcome {
        Ok(sessions) => sessions.iter().flat_map(rows_of).collect(),
        Err(_) => Vec::new(),
    };
    let wanted = search.result.trim();
    let shown: Vec<_> = rows
        .into_iter()
        .filter(|(s, t)| wanted.is_empty() || result_of(s, *t) == wanted)
        .collect();
    let body = html! {
        section.card {
            h2 { "Search" }
            form method="get" action="/tracking" {
                div.fields {
                    (field("t-sender", "sender", "Sender contains", "text", &search.sender, error))
                    (field("t-recipient", "recipient", "Recipient contains", "text", &search.recipient, error))
                    (field("t-client", "client", "Client address starts with", "text", &search.client, error))
                    (field("t-since", "since", "From (UTC)", "datetime-local", &search.since, error))
                    (field("t-until", "until", "Until (UTC)", "datetime-local", &search.until, error))
                    (select("t-result", "result", "Result", RESULTS, wanted, error))
                    (field("t-limit", "limit", "Sessions at most (default 100)", "number", &search.limit, error))
                }
                p { button.primary type="submit" { "Search" } " " a href="/tracking" { "clear" } }
            }
        }
        section.card {
            h2 { "Sessions, newest first" }
            @if let Some(e) = error.filter(|e| e.field.is_none()) { p.notice.bad role="alert" { (e.error) } }
            @if shown.is_empty() && error.is_none() {
                p.empty {
                    @if search.is_empty() { "No session recorded yet. " } @else { "No session matches this search. " }
                    "Only smtp-mode listeners record sessions; mail through an l4 listener is passed to a backend unread and is not tracked (look in the backend's log)."
                }
            } @else if !shown.is_empty() {
                div.scroll { table {
                    thead { tr { th { "Time (UTC)" } th { "Client" } th { "Sender" } th { "Recipients" }
                        th { "Result" } th.hide-small { "Backend" } th.hide-small { "Reply" } } }
                    tbody { @for (s, t) in &shown { (row(s, *t)) } }
                } }
                @if !wanted.is_empty() { p.small.muted { "The result filter applies to the sessions the search found (at most the limit)." } }
            }
        }
    };
    let status = error.map_or(StatusCode::OK, |e| e.status);
    respond(status, layout::page(&frame, "Tracking", body))
}

/// A session's rows: one per transaction, or the session alone.
fn rows_of(s: &SessionRecord) -> Vec<(&SessionRecord, Option<&TransactionRecord>)> {
    if s.transactions.is_empty() {
        vec![(s, None)]
    } else {
        s.transactions.iter().map(|t| (s, Some(t))).collect()
    }
}

/// The result word of a row.
fn result_of(s: &SessionRecord, t: Option<&TransactionRecord>) -> String {
    t.map_or_else(|| s.result.clone(), |t| t.result.as_str().to_string())
}

fn client_text(s: &SessionRecord) -> String {
    match s.proxy_ip {
        Some(p) => format!("{p} (via {})", s.client_ip),
        None => s.client_ip.to_string(),
    }
}

fn sender_text(sender: &str) -> &str {
    if sender.is_empty() {
        "<>"
    } else {
        sender
    }
}

fn row(s: &SessionRecord, t: Option<&TransactionRecord>) -> Markup {
    let link = format!("/tracking/{}", s.id.unwrap_or_default());
    let word = result_of(s, t);
    html! {
        tr {
            td { a href=(link) { (utc(t.map_or(s.started_unix_ms, |t| t.started_unix_ms))) } }
            td.mono { (client_text(s)) }
            @if let Some(t) = t {
                td.mono { (sender_text(&t.sender)) }
                td.mono { @for r in &t.recipients { (r.recipient) br; } }
            } @else {
                td.muted { "no transaction" } td {}
            }
            td { (badge(result_badge(&word))) " " (word) }
            td.hide-small.mono { (t.and_then(|t| t.server.as_deref()).unwrap_or("—")) }
            td.hide-small.small { (t.and_then(|t| t.final_reply.as_deref()).unwrap_or(&s.end_reason)) }
        }
    }
}

/// The badge colour of a result word.
fn result_badge(word: &str) -> &'static str {
    match word {
        "accepted" | "pass" | "ok" => "ok",
        "tempfail" | "abandoned" | "defer" => "pending",
        "rejected" | "block" | "fail" | "refused" => "bad",
        _ => "unknown",
    }
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<i64>,
) -> Response {
    let found = state
        .blocking(move |store| Ok(store.tracked_session(id)?))
        .await;
    let frame = Frame {
        node: &state.inner.node,
        user: Some(&user),
        current: "/tracking",
    };
    let title = format!("Session {id}");
    let (status, body) = match found {
        Ok(Some(s)) => (StatusCode::OK, session(&s)),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            html! { p.empty { "No tracked session " (id) " (records older than the retention are pruned). " a href="/tracking" { "Search again" } "." } },
        ),
        Err(e) => (e.status, html! { p.notice.bad role="alert" { (e.error) } }),
    };
    respond(status, layout::page(&frame, &title, body))
}

fn session(s: &SessionRecord) -> Markup {
    html! {
        p { a href="/tracking" { "← back to the search" } }
        section.card {
            h2 { "Connection" }
            dl.facts {
                dt { "Started" } dd { (utc(s.started_unix_ms)) " (UTC)" }
                dt { "Lasted" } dd { (ms(s.ended_unix_ms - s.started_unix_ms)) }
                dt { "Listener" } dd { (s.listener) }
                dt { "Client" } dd.mono { (client_text(s)) " port " (s.client_port) }
                dt { "HELO" } dd.mono { @if s.helo.is_empty() { span.muted { "none sent" } } @else { (s.helo) } }
                dt { "TLS" } dd { (s.tls.as_deref().unwrap_or("none (plain text)")) }
                dt { "Result" } dd { (badge(result_badge(&s.result))) " " (s.result) }
                dt { "Ended by" } dd { (s.end_reason) }
            }
            h3 { "Checks at connect" }
            (trail(s.checks.0.iter().map(|c| (&*c.check, c.result.as_str(), c.detail.as_str()))))
        }
        @if s.transactions.is_empty() {
            p.empty.card { "The client sent no MAIL FROM in this session." }
        }
        @for (i, t) in s.transactions.iter().enumerate() {
            section.card {
                h2 { "Transaction " (i + 1) }
                dl.facts {
                    dt { "MAIL FROM at" } dd { (utc(t.started_unix_ms)) " (UTC)" }
                    dt { "Sender" } dd.mono { (sender_text(&t.sender)) }
                    dt { "Size" } dd { (t.size) " bytes" }
                    dt { "Backend" } dd.mono { (t.server.as_deref().unwrap_or("not relayed")) }
                    dt { "Result" } dd { (badge(result_badge(t.result.as_str()))) " " (t.result.as_str()) }
                    dt { "Final reply" } dd.mono { (t.final_reply.as_deref().unwrap_or("—")) }
                    dt { "Took" } dd { (ms(i64::try_from(t.duration_ms).unwrap_or(i64::MAX))) " from MAIL FROM to the final reply" }
                }
                h3 { "Recipients" }
                @if t.recipients.is_empty() { p.muted { "none given" } } @else {
                    div.scroll { table {
                        thead { tr { th { "Recipient" } th { "Reply" } } }
                        tbody { @for r in &t.recipients { tr {
                            td.mono { (r.recipient) } td.mono { (r.reply_code) " " (r.reply_text) }
                        } } }
                    } }
                }
                h3 { "Verdict trail" }
                (trail(t.checks.0.iter().map(|c| (&*c.check, c.result.as_str(), c.detail.as_str()))))
            }
        }
    }
}

/// A verdict trail: (check, result, detail) in order.
fn trail<'a>(checks: impl Iterator<Item = (&'a str, &'a str, &'a str)>) -> Markup {
    let checks: Vec<_> = checks.collect();
    html! {
        @if checks.is_empty() { p.muted { "No check recorded." } } @else {
            div.scroll { table.trail {
                thead { tr { th { "Check" } th { "Result" } th { "Detail" } } }
                tbody { @for (check, result, detail) in &checks { tr {
                    td { (check) } td { (badge(result_badge(result))) " " (result) } td.small { (detail) }
                } } }
            } }
        }
    }
}

fn ms(millis: i64) -> String {
    if millis < 1000 {
        format!("{millis} ms")
    } else {
        format!("{:.1} s", millis as f64 / 1000.0)
    }
}

/// `unix_ms` as `YYYY-MM-DD HH:MM:SS` in UTC.
fn utc(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// `YYYY-MM-DDTHH:MM[:SS]` (UTC) as Unix milliseconds.
fn parse_utc(text: &str) -> Option<i64> {
    let (date, time) = text.split_once(['T', ' '])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, min) = (t.next()??, t.next()??);
    let s = t.next().flatten().unwrap_or(0);
    let valid = (1..=12).contains(&m) && (1..=31).contains(&day) && h < 24 && min < 60 && s < 60;
    valid.then(|| (days_from_civil(y, m, day) * 86_400 + h * 3600 + min * 60 + s) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_go_both_ways_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        let t = parse_utc("2025-03-01T14:30").unwrap();
        assert_eq!(t, 1_740_839_400_000);
        assert_eq!(utc(t), "2025-03-01 14:30:00");
        assert_eq!(
            parse_utc("2024-02-29 23:59:59").map(utc).unwrap(),
            "2024-02-29 23:59:59"
        );
        assert!(parse_utc("yesterday").is_none() && parse_utc("2025-13-01T00:00").is_none());
    }

    #[test]
    fn a_bad_search_names_the_field() {
        let search = Search {
            since: "soon".into(),
            ..Search::default()
        };
        assert_eq!(search.query().unwrap_err().field.as_deref(), Some("since"));
        let search = Search {
            sender: " a@b ".into(),
            ..Search::default()
        };
        assert_eq!(search.query().unwrap().sender.as_deref(), Some("a@b"));
    }
}
