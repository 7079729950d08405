//! The log ring and `GET /api/v1/logs?limit=N`: the last
//! [`LogRing::CAPACITY`] log lines of this process, kept in memory (the
//! binary's logging writes every line into it as well as to stderr), for
//! the Logs page and the API. Read-only users may read them.

use crate::state::AppState;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Mutex;
use utoipa::{IntoParams, ToSchema};

/// The last log lines, oldest first, at most [`LogRing::CAPACITY`].
#[derive(Debug, Default)]
pub struct LogRing {
    lines: Mutex<VecDeque<String>>,
}

impl LogRing {
    /// Lines kept.
    pub const CAPACITY: usize = 1_000;

    /// Adds `line` (without its newline), dropping the oldest when full.
    pub fn push(&self, line: String) {
        let mut lines = crate::state::lock(&self.lines);
        if lines.len() == Self::CAPACITY {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The newest `n` lines, oldest first.
    pub fn last(&self, n: usize) -> Vec<String> {
        let lines = crate::state::lock(&self.lines);
        lines
            .iter()
            .skip(lines.len().saturating_sub(n))
            .cloned()
            .collect()
    }
}

/// How many lines.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct LogQuery {
    /// Newest lines to return (1..=1000, default 200).
    pub limit: Option<usize>,
}

/// The lines.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LogLines {
    /// Oldest first; empty when this process keeps no log ring.
    pub lines: Vec<String>,
}

/// The newest `limit` lines (clamped to 1..=1000).
pub(crate) fn lines(state: &AppState, limit: usize) -> Vec<String> {
    state
        .inner
        .logs
        .get()
        .map(|ring| ring.last(limit.clamp(1, LogRing::CAPACITY)))
        .unwrap_or_default()
}

#[utoipa::path(get, path = "/api/v1/logs", tag = "system", params(LogQuery),
    responses((status = 200, description = "The newest log lines of this process, oldest first", body = LogLines)),
    security(("session" = [])))]
pub(crate) async fn get_logs(
    State(state): State<AppState>,
    Query(q): Query<LogQuery>,
) -> Json<LogLines> {
    Json(LogLines {
        lines: lines(&state, q.limit.unwrap_or(200)),
    })
}

#[cfg(test)]
mod tests {
    use super::LogRing;

    #[test]
    fn the_ring_keeps_the_newest_lines() {
        let ring = LogRing::default();
        for i in 0..LogRing::CAPACITY + 5 {
            ring.push(format!("line {i}"));
        }
        assert_eq!(ring.last(2), ["line 1003", "line 1004"]);
        assert_eq!(ring.last(5000).len(), LogRing::CAPACITY);
        assert_eq!(ring.last(5000)[0], "line 5");
    }
}
