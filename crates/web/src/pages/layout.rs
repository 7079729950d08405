//! The page frame: header (node, user, logout), the navigation, the main
//! area; and small pieces the pages share (the CSRF field, a badge).
//! Form controls are in [`super::form`].

use crate::auth::AuthUser;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

/// One navigation entry.
pub(crate) struct NavItem {
    /// Path of the page.
    pub path: &'static str,
    /// Label.
    pub label: &'static str,
    /// False while the page only says "not yet".
    pub built: bool,
}

/// The navigation, in order.
pub(crate) const NAV: &[NavItem] = &[
    NavItem {
        path: "/",
        label: "Dashboard",
        built: true,
    },
    NavItem {
        path: "/backends",
        label: "Backends",
        built: true,
    },
    NavItem {
        path: "/listeners",
        label: "Listeners",
        built: true,
    },
    NavItem {
        path: "/filtering",
        label: "Filtering",
        built: true,
    },
    NavItem {
        path: "/cluster",
        label: "Cluster",
        built: true,
    },
    NavItem {
        path: "/tracking",
        label: "Tracking",
        built: true,
    },
    NavItem {
        path: "/diagnostics",
        label: "Diagnostics",
        built: true,
    },
    NavItem {
        path: "/dns",
        label: "DNS",
        built: true,
    },
    NavItem {
        path: "/certificates",
        label: "Certificates",
        built: true,
    },
    NavItem {
        path: "/system",
        label: "System",
        built: true,
    },
    NavItem {
        path: "/logs",
        label: "Logs",
        built: true,
    },
];

/// What the frame needs to know about the request.
pub(crate) struct Frame<'a> {
    /// This box's name.
    pub node: &'a str,
    /// The logged-in user (none on the login and setup pages).
    pub user: Option<&'a AuthUser>,
    /// The current page's path (marked in the navigation).
    pub current: &'a str,
}

/// A whole page: `title` and `body` in the frame.
pub(crate) fn page(frame: &Frame<'_>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (frame.node) " · mxgate" }
                link rel="stylesheet" href="/assets/style.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "mxgate" }
                    span { (frame.node) }
                    @if let Some(user) = frame.user {
                        div.who {
                            span { (user.name) " (" (user.role.as_str()) ")" }
                            form.inline method="post" action="/logout" {
                                (csrf_field(user))
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                @if frame.user.is_some() {
                    nav.main aria-label="Main" {
                        @for item in NAV {
                            a href=(item.path) class=[(!item.built).then_some("todo")]
                                aria-current=[(item.path == frame.current).then_some("page")] {
                                (item.label)
                            }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field of a form.
pub(crate) fn csrf_field(user: &AuthUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.csrf); }
}

/// A status word as a coloured badge (`up`, `down`, `drain`, ...).
pub(crate) fn badge(word: &str) -> Markup {
    html! { span class={ "badge " (word) } { (word) } }
}

/// `markup` as an HTML response with `status`.
pub(crate) fn respond(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}
