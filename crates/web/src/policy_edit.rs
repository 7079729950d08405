//! One change to the shared policy, made safely: read the stored policy,
//! apply the change to its raw form, validate the *whole* policy with the
//! same validation as a policy file, write it with the store's import path
//! ([`mxgate_store::Store::replace_policy`]: one transaction, published to
//! the running gateway at once, logged for peer sync) and record it in the
//! audit log. A refusal is a 422 naming the field, and nothing changes.
//!
//! The Listeners and Filtering pages and their API routes all go through
//! [`edit`]; the Backends code shares [`refusal`] to turn validation errors
//! into an [`ApiError`].

use crate::error::ApiError;
use crate::state::{lock, AppState};
use mxgate_config::raw::PolicyFile;
use mxgate_config::{Errors, Policy};
use std::sync::Mutex;

/// Serialises the read-modify-write of this process's edits, so two
/// browser tabs saving at once cannot lose one another's change.
static EDITS: Mutex<()> = Mutex::new(());

/// Where a change lands in the policy, for the audit log and for naming
/// the refused field.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Audit action (`listener.add`, `filtering.greylist`, ...).
    pub action: &'static str,
    /// Audit target (a listener name, a section name).
    pub name: String,
    /// Validation keys starting with this are preferred when several
    /// errors are found (`listener[mx].`, `greylist.`).
    pub key_prefix: String,
    /// Turns a validation key into the field the caller knows.
    pub field: fn(&str) -> String,
}

/// Applies `change` to the stored policy, validates and writes the result,
/// and audits it with `detail`.
///
/// # Errors
/// Whatever `change` refuses (404, 409, 422); 422 naming the field when
/// the result does not validate; 500 when the store fails. Nothing is
/// written on error.
pub(crate) async fn edit<F>(
    state: &AppState,
    user: &str,
    target: Target,
    detail: serde_json::Value,
    change: F,
) -> Result<(), ApiError>
where
    F: FnOnce(&mut PolicyFile) -> Result<(), ApiError> + Send + 'static,
{
    let user = user.to_string();
    state
        .blocking(move |store| {
            let _one_at_a_time = lock(&EDITS);
            let mut raw = store.policy()?.to_raw();
            change(&mut raw)?;
            let policy = Policy::validate(raw)
                .map_err(|errors| refusal(&errors, &target.key_prefix, target.field))?;
            store.replace_policy(&policy)?;
            store.audit(&user, target.action, &target.name, &detail)?;
            Ok(())
        })
        .await
}

/// The first validation error as a 422: preferably one whose key starts
/// with `prefix` (the part the user just changed), its key turned into a
/// field name by `field`.
pub(crate) fn refusal(errors: &Errors, prefix: &str, field: fn(&str) -> String) -> ApiError {
    let first = errors
        .0
        .iter()
        .find(|e| e.key.starts_with(prefix))
        .or(errors.0.first());
    match first {
        Some(e) => ApiError::invalid(field(&e.key), &e.message),
        None => ApiError::invalid("policy", "not valid"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::field_of;

    #[test]
    fn the_refusal_prefers_the_changed_part() {
        let mut errors = Errors::default();
        errors.push("relay.domains[0]", "elsewhere");
        errors.push("listener[mx].bind", "bad address");
        let e = refusal(&errors, "listener[mx].", field_of);
        assert_eq!(e.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.field.as_deref(), Some("bind"));
        assert_eq!(e.reason.as_deref(), Some("bad address"));
        let e = refusal(&errors, "screen.", field_of);
        assert_eq!(e.field.as_deref(), Some("relay.domains[0]"));
    }
}
