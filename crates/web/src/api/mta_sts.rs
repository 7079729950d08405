//! The MTA-STS policy (RFC 8461): `GET`/`PUT /api/v1/mta-sts` read and set
//! it (validated by `mxgate_diagnostics::mta_sts_policy`, audited), and
//! `GET /.well-known/mta-sts.txt` serves it to senders without a session
//! (`text/plain`; 404 while none is set). It is one shared setting of the
//! store ([`mxgate_store::MTA_STS_KEY`]), so both boxes serve the same
//! policy. The DNS helper page saves it through [`save`] too.

use super::ApiJson;
use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use mxgate_diagnostics::{mta_sts_policy, FieldError, MtaStsMode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// The policy's settings, as stored and as the API takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct MtaStsSetting {
    /// `enforce`, `testing` or `none`.
    pub mode: String,
    /// MX host names or `*.` wildcards senders may deliver to.
    pub mx: Vec<String>,
    /// Seconds senders cache the policy (one day to one year for
    /// enforce/testing).
    pub max_age: i64,
}

/// The policy with the text served.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct MtaStsView {
    /// The settings.
    #[serde(flatten)]
    pub setting: MtaStsSetting,
    /// The body of `/.well-known/mta-sts.txt`.
    pub policy: String,
}

#[utoipa::path(get, path = "/api/v1/mta-sts", tag = "mta-sts",
    responses(
        (status = 200, description = "The policy served", body = MtaStsView),
        (status = 404, description = "No policy is configured"),
    ), security(("session" = [])))]
pub(crate) async fn get(State(state): State<AppState>) -> Result<Json<MtaStsView>, ApiError> {
    current(&state)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("no MTA-STS policy is configured"))
}

#[utoipa::path(put, path = "/api/v1/mta-sts", tag = "mta-sts",
    request_body = MtaStsSetting,
    responses(
        (status = 200, description = "Stored and served (on both boxes once synced)", body = MtaStsView),
        (status = 422, description = "A refused field (mode, mx, mx[i], max_age); the previous policy stays"),
    ), security(("session" = [])))]
pub(crate) async fn put(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(setting): ApiJson<MtaStsSetting>,
) -> Result<Json<MtaStsView>, ApiError> {
    save(&state, &user.name, setting).await.map(Json)
}

#[utoipa::path(get, path = "/.well-known/mta-sts.txt", tag = "mta-sts",
    responses(
        (status = 200, description = "The MTA-STS policy (text/plain, RFC 8461 §3.2)"),
        (status = 404, description = "No policy is configured"),
    ), security(()))]
pub(crate) async fn well_known(State(state): State<AppState>) -> Response {
    match current(&state).await {
        Ok(Some(view)) => ([(header::CONTENT_TYPE, "text/plain")], view.policy).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain")],
            "no MTA-STS policy is configured\n",
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The stored policy, `None` when none is set (or the stored one is not
/// valid any more, which is logged).
pub(crate) async fn current(state: &AppState) -> Result<Option<MtaStsView>, ApiError> {
    let stored = state.blocking(|store| Ok(store.mta_sts_setting()?)).await?;
    let Some(text) = stored else {
        return Ok(None);
    };
    let checked = serde_json::from_str::<MtaStsSetting>(&text)
        .map_err(|e| e.to_string())
        .and_then(|setting| view(setting).map_err(|e| e.error));
    match checked {
        Ok(view) => Ok(Some(view)),
        Err(e) => {
            tracing::error!(error = %e, "web: the stored MTA-STS policy is not valid; not served");
            Ok(None)
        }
    }
}

/// Checks `setting` and stores it for `user` (audited); nothing changes
/// when it is refused.
///
/// # Errors
/// 422 naming the first refused field.
pub(crate) async fn save(
    state: &AppState,
    user: &str,
    setting: MtaStsSetting,
) -> Result<MtaStsView, ApiError> {
    let view = view(setting)?;
    let text = serde_json::to_string(&view.setting).map_err(ApiError::internal)?;
    let (user, detail) = (user.to_owned(), json!(view.setting));
    state
        .blocking(move |store| {
            store.set_mta_sts_setting(&text)?;
            Ok(store.audit(&user, "mta_sts.set", "mta-sts", &detail)?)
        })
        .await?;
    Ok(view)
}

/// The setting, normalised, with its policy text.
fn view(setting: MtaStsSetting) -> Result<MtaStsView, ApiError> {
    let mode = parse_mode("mode", &setting.mode)?;
    let max_age = u64::try_from(setting.max_age)
        .map_err(|_| ApiError::invalid("max_age", format!("{} s is negative", setting.max_age)))?;
    let policy = mta_sts_policy(mode, &setting.mx, max_age).map_err(first_error)?;
    let mx = policy
        .lines()
        .filter_map(|l| l.strip_prefix("mx: "))
        .map(str::to_owned)
        .collect();
    Ok(MtaStsView {
        setting: MtaStsSetting {
            mode: mode.to_string(),
            mx,
            max_age: setting.max_age,
        },
        policy,
    })
}

/// The MTA-STS mode called `text`.
///
/// # Errors
/// 422 naming `field`.
pub(crate) fn parse_mode(field: &str, text: &str) -> Result<MtaStsMode, ApiError> {
    match text.trim() {
        "enforce" => Ok(MtaStsMode::Enforce),
        "testing" => Ok(MtaStsMode::Testing),
        "none" => Ok(MtaStsMode::None),
        other => Err(ApiError::invalid(
            field,
            format!("{other:?} is not a mode: enforce, testing or none"),
        )),
    }
}

/// The first of `errors` as a 422.
pub(crate) fn first_error(errors: Vec<FieldError>) -> ApiError {
    errors.into_iter().next().map_or_else(
        || ApiError::invalid("body", "not valid"),
        |e| ApiError::invalid(e.field, e.reason),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(mode: &str, mx: &[&str], max_age: i64) -> MtaStsSetting {
        MtaStsSetting {
            mode: mode.to_owned(),
            mx: mx.iter().map(|s| (*s).to_owned()).collect(),
            max_age,
        }
    }

    #[test]
    fn a_setting_is_normalised_or_refused_by_field() {
        let v = view(setting("testing", &["MX.Example.com."], 604_800)).unwrap();
        assert_eq!(v.setting.mx, ["mx.example.com"]);
        assert_eq!(
            v.policy,
            "version: STSv1\r\nmode: testing\r\nmx: mx.example.com\r\nmax_age: 604800\r\n"
        );
        for (bad, field) in [
            (setting("strict", &["a.b"], 604_800), "mode"),
            (setting("enforce", &["a.b"], -1), "max_age"),
            (setting("enforce", &["a.b"], 60), "max_age"),
            (setting("enforce", &[], 604_800), "mx"),
        ] {
            assert_eq!(view(bad).unwrap_err().field.as_deref(), Some(field));
        }
    }
}
