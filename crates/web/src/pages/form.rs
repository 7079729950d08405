//! The form controls every page builds its forms from: a labelled input,
//! select, textarea or checkbox with the refused field's reason shown next
//! to it (`aria-invalid` and `aria-describedby` pointing at the reason),
//! and the helpers that map a refused API field or a number input to the
//! form's inputs.

use crate::error::ApiError;
use maud::{html, Markup};

/// The ARIA attribute values for a control whose field may be refused:
/// both `None` when the field is fine.
pub(crate) struct Aria<'a> {
    /// `aria-invalid`: `"true"` when refused.
    pub(crate) invalid: Option<&'a str>,
    /// `aria-describedby`: the id of the paragraph giving the reason.
    pub(crate) described_by: Option<&'a str>,
}

/// A `div` with a label for `id`, the control `control` builds (given its
/// ARIA values) and the reason `error` gives for field `name`, if any.
pub(crate) fn labelled(
    id: &str,
    name: &str,
    label: &str,
    error: Option<&ApiError>,
    control: impl FnOnce(Aria<'_>) -> Markup,
) -> Markup {
    let reason = error.and_then(|e| e.reason_for(name));
    let error_id = format!("{id}-error");
    let aria = Aria {
        invalid: reason.map(|_| "true"),
        described_by: reason.map(|_| error_id.as_str()),
    };
    html! {
        div {
            label for=(id) { (label) }
            (control(aria))
            @if let Some(reason) = reason {
                p.error id=(error_id) { (reason) }
            }
        }
    }
}

/// A labelled input with the error for it, if any.
pub(crate) fn field(
    id: &str,
    name: &str,
    label: &str,
    kind: &str,
    value: &str,
    error: Option<&ApiError>,
) -> Markup {
    labelled(id, name, label, error, |aria| {
        html! {
            input id=(id) type=(kind) name=(name) value=(value)
                aria-invalid=[aria.invalid] aria-describedby=[aria.described_by];
        }
    })
}

/// A labelled `<select>` of `options` (value, label) with the error for it.
pub(crate) fn select(
    id: &str,
    name: &str,
    label: &str,
    options: &[(&str, &str)],
    value: &str,
    error: Option<&ApiError>,
) -> Markup {
    labelled(id, name, label, error, |aria| {
        html! {
            select id=(id) name=(name) aria-invalid=[aria.invalid]
                aria-describedby=[aria.described_by] {
                @for (v, text) in options {
                    option value=(v) selected[*v == value] { (text) }
                }
            }
        }
    })
}

/// A labelled checkbox (sent as `on` when ticked) with the error for it.
pub(crate) fn checkbox(
    id: &str,
    name: &str,
    label: &str,
    checked: bool,
    error: Option<&ApiError>,
) -> Markup {
    let reason = error.and_then(|e| e.reason_for(name));
    html! {
        div.check {
            input id=(id) type="checkbox" name=(name) checked[checked];
            label for=(id) { (label) }
            @if let Some(reason) = reason { p.error { (reason) } }
        }
    }
}

/// `error` with its field cut to the form input's name
/// (`proxy_trusted[1]` → `proxy_trusted`, `dnsbl[0].weight` → `dnsbl`).
pub(crate) fn form_error(mut error: ApiError) -> ApiError {
    if let Some(field) = &error.field {
        let cut = field
            .find(['[', '.'])
            .map_or(field.as_str(), |i| &field[..i]);
        error.field = Some(cut.to_string());
    }
    error
}

/// A number input `text` of field `field`: empty is `None`.
pub(crate) fn optional_number(field: &str, text: &str) -> Result<Option<i64>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| ApiError::invalid(field, format!("{text:?} is not a whole number")))
}

#[cfg(test)]
mod tests {
    use super::{field, form_error, optional_number};
    use crate::error::ApiError;

    #[test]
    fn a_form_error_names_the_input() {
        let e = form_error(ApiError::invalid("proxy_trusted[1]", "bad"));
        assert_eq!(e.reason_for("proxy_trusted"), Some("bad"));
        let e = form_error(ApiError::invalid("dnsbl[0].weight", "bad"));
        assert_eq!(e.field.as_deref(), Some("dnsbl"));
    }

    #[test]
    fn a_refused_field_points_at_its_reason() {
        let error = ApiError::invalid("port", "too big");
        let html = field("f-port", "port", "Port", "number", "99999", Some(&error)).into_string();
        assert!(html.contains(r#"aria-invalid="true" aria-describedby="f-port-error""#));
        assert!(html.contains(r#"<p class="error" id="f-port-error">too big</p>"#));
        let fine = field("f-port", "port", "Port", "number", "25", None).into_string();
        assert!(!fine.contains("aria-") && !fine.contains("error"));
    }

    #[test]
    fn an_empty_number_is_none() {
        assert_eq!(optional_number("port", " ").unwrap(), None);
        assert_eq!(optional_number("port", " 25 ").unwrap(), Some(25));
        let e = optional_number("port", "x").unwrap_err();
        assert_eq!(e.reason_for("port"), Some("\"x\" is not a whole number"));
    }
}
