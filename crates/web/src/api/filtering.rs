//! The filter policy: `GET /api/v1/filtering` (every section as JSON) and
//! `PUT /api/v1/filtering/{section}` (one section replaced, in the shape
//! GET shows it): `relay` (relay domains), `lists` (allow/block entries),
//! `screen` (pregreet, DNSBL zones and thresholds, temporary allowlist),
//! `greylist`, `rate_limits`, `auth` (SPF, DKIM, ARC, DMARC actions). The
//! keys are the policy file's, with its defaults for keys left out. Each
//! change goes through [`crate::policy_edit`]; the Filtering page calls
//! [`put`] too.

use super::ApiJson;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::policy_edit::{self, Target};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use mxgate_config::raw::{
    AuthSection, GreylistSection, ListSection, PolicyFile, RateLimitSection, ScreenSection,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The whole filter policy.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct Filtering {
    /// `{domains}`: recipient domains smtp mode accepts.
    #[schema(value_type = Object)]
    pub relay: Relay,
    /// `{entries}`: allow and block entries, each an `action` and one of
    /// `client`, `reverse_name`, `helo`, `sender`, `sender_domain`,
    /// `recipient`.
    #[schema(value_type = Object)]
    pub lists: Lists,
    /// Pregreet, DNSBL/DNSWL zones and thresholds, the temporary allowlist.
    #[schema(value_type = Object)]
    pub screen: ScreenSection,
    /// Greylisting (smtp mode).
    #[schema(value_type = Object)]
    pub greylist: GreylistSection,
    /// `{rules}`: rate and concurrency limits.
    #[schema(value_type = Object)]
    pub rate_limits: RateLimits,
    /// Sender authentication actions (smtp mode).
    #[schema(value_type = Object)]
    pub auth: AuthSection,
}

/// The `relay` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Relay {
    /// Recipient domains.
    #[serde(default)]
    pub domains: Vec<String>,
}

/// The `lists` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Lists {
    /// Entries in policy order.
    #[serde(default)]
    pub entries: Vec<ListSection>,
}

/// The `rate_limits` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RateLimits {
    /// Rules in policy order.
    #[serde(default)]
    pub rules: Vec<RateLimitSection>,
}

/// The filter policy now.
pub(crate) fn current(state: &AppState) -> Filtering {
    let raw = state.store().current().to_raw();
    Filtering {
        relay: Relay {
            domains: raw.relay.domains,
        },
        lists: Lists { entries: raw.list },
        screen: raw.screen,
        greylist: raw.greylist,
        rate_limits: RateLimits {
            rules: raw.rate_limit,
        },
        auth: raw.auth,
    }
}

/// One section's new value.
#[derive(Debug, Clone)]
pub(crate) enum Section {
    Relay(Relay),
    Lists(Lists),
    Screen(ScreenSection),
    Greylist(GreylistSection),
    RateLimits(RateLimits),
    Auth(AuthSection),
}

/// The section names, as in the path.
pub(crate) const SECTIONS: [&str; 6] = [
    "relay",
    "lists",
    "screen",
    "greylist",
    "rate_limits",
    "auth",
];

fn body<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::invalid("body", e.to_string()))
}

impl Section {
    /// Section `name` from its JSON `value`.
    ///
    /// # Errors
    /// 404 for an unknown section, 422 (`body`) for a body of the wrong shape.
    pub(crate) fn parse(name: &str, value: Value) -> Result<Section, ApiError> {
        Ok(match name {
            "relay" => Section::Relay(body(value)?),
            "lists" => Section::Lists(body(value)?),
            "screen" => Section::Screen(body(value)?),
            "greylist" => Section::Greylist(body(value)?),
            "rate_limits" => Section::RateLimits(body(value)?),
            "auth" => Section::Auth(body(value)?),
            _ => {
                return Err(ApiError::not_found(format!(
                    "no filtering section is called {name:?} (sections: {})",
                    SECTIONS.join(", ")
                )))
            }
        })
    }

    /// The section's name in the path and the audit log.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Section::Relay(_) => "relay",
            Section::Lists(_) => "lists",
            Section::Screen(_) => "screen",
            Section::Greylist(_) => "greylist",
            Section::RateLimits(_) => "rate_limits",
            Section::Auth(_) => "auth",
        }
    }

    /// The prefix of the validation keys of this section.
    fn key_prefix(&self) -> &'static str {
        match self {
            Section::Relay(_) => "relay.",
            Section::Lists(_) => "list[",
            Section::Screen(_) => "screen.",
            Section::Greylist(_) => "greylist.",
            Section::RateLimits(_) => "rate_limit[",
            Section::Auth(_) => "auth.",
        }
    }

    fn detail(&self) -> Value {
        let value = match self {
            Section::Relay(s) => serde_json::to_value(s),
            Section::Lists(s) => serde_json::to_value(s),
            Section::Screen(s) => serde_json::to_value(s),
            Section::Greylist(s) => serde_json::to_value(s),
            Section::RateLimits(s) => serde_json::to_value(s),
            Section::Auth(s) => serde_json::to_value(s),
        };
        value.unwrap_or_default()
    }

    fn apply(self, raw: &mut PolicyFile) {
        match self {
            Section::Relay(s) => raw.relay.domains = s.domains,
            Section::Lists(s) => raw.list = s.entries,
            Section::Screen(s) => raw.screen = s,
            Section::Greylist(s) => raw.greylist = s,
            Section::RateLimits(s) => raw.rate_limit = s.rules,
            Section::Auth(s) => raw.auth = s,
        }
    }
}

/// A validation key as a field of the section's body: `greylist.delay_s`
/// → `delay_s`, `list[2].client` → `entries[2].client`,
/// `rate_limit[0]` → `rules[0]`.
pub(crate) fn section_field(key: &str) -> String {
    for (prefix, field) in [
        ("relay.", ""),
        ("screen.", ""),
        ("greylist.", ""),
        ("auth.", ""),
        ("list", "entries"),
        ("rate_limit", "rules"),
    ] {
        if let Some(rest) = key.strip_prefix(prefix) {
            if field.is_empty() || rest.starts_with('[') {
                return format!("{field}{rest}");
            }
        }
    }
    key.to_string()
}

/// Replaces one section of the policy.
///
/// # Errors
/// 422 naming the field (relative to the section's body) when the policy
/// would not validate; nothing changes then.
pub(crate) async fn put(state: &AppState, user: &str, section: Section) -> Result<(), ApiError> {
    let target = Target {
        action: "filtering.edit",
        name: section.name().to_string(),
        key_prefix: section.key_prefix().to_string(),
        field: section_field,
    };
    let detail = section.detail();
    policy_edit::edit(state, user, target, detail, move |raw| {
        section.apply(raw);
        Ok(())
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/filtering", tag = "filtering",
    responses((status = 200, description = "Every section of the filter policy", body = Filtering)),
    security(("session" = [])))]
pub(crate) async fn get_all(State(state): State<AppState>) -> Json<Filtering> {
    Json(current(&state))
}

#[utoipa::path(put, path = "/api/v1/filtering/{section}", tag = "filtering",
    params(("section" = String, Path,
        description = "relay, lists, screen, greylist, rate_limits or auth")),
    request_body(content = Object, description = "The section in the shape GET /api/v1/filtering shows it"),
    responses(
        (status = 204, description = "Replaced; the running gateway applies it at once"),
        (status = 404, description = "No such section"),
        (status = 422, description = "A refused field (named inside the section): `{error, field, reason}`; nothing changed"),
    ), security(("session" = [])))]
pub(crate) async fn put_section(
    State(state): State<AppState>,
    user: AuthUser,
    Path(section): Path<String>,
    ApiJson(value): ApiJson<Value>,
) -> Result<StatusCode, ApiError> {
    put(&state, &user.name, Section::parse(&section, value)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_keys_become_fields_of_the_section_body() {
        assert_eq!(section_field("greylist.delay_s"), "delay_s");
        assert_eq!(section_field("screen.dnsbl[1].weight"), "dnsbl[1].weight");
        assert_eq!(section_field("list[2].client"), "entries[2].client");
        assert_eq!(section_field("list[2]"), "entries[2]");
        assert_eq!(section_field("rate_limit[0].window_s"), "rules[0].window_s");
        assert_eq!(section_field("relay.domains[0]"), "domains[0]");
        assert_eq!(section_field("listener[mx].bind"), "listener[mx].bind");
    }

    #[test]
    fn an_unknown_section_or_key_is_refused() {
        let e = Section::parse("nope", Value::Null).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let e = Section::parse("greylist", serde_json::json!({"delay": 3})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("body"));
        assert!(e.error.contains("delay"), "{}", e.error);
    }
}
