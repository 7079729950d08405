//! Web UI sessions (`web_sessions`, node-local): looked up by the SHA-256
//! of the cookie's token, each with its CSRF token and an idle expiry that
//! every use pushes forward.

use crate::users::{now_unix, Role};
use crate::{Store, StoreError};
use rusqlite::{params, OptionalExtension};

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    /// Who is logged in.
    pub user: String,
    /// The user's role now (a role change applies at once).
    pub role: Role,
    /// The token every state-changing request must carry.
    pub csrf: String,
    /// When the session ends unless used again (Unix seconds).
    pub expires_unix: i64,
}

impl Store {
    /// Records a new session of `user` under `token_hash`, idle for at most
    /// `idle_s` seconds.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the write fails.
    pub fn create_web_session(
        &self,
        token_hash: &str,
        user: &str,
        csrf: &str,
        idle_s: i64,
    ) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            let now = now_unix();
            conn.execute(
                "INSERT INTO web_sessions (token_hash, user, csrf, expires_unix, created_unix)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![token_hash, user, csrf, now + idle_s, now],
            )?;
            // Expired sessions of anyone are dropped now and then: here.
            conn.execute("DELETE FROM web_sessions WHERE expires_unix <= ?1", [now])?;
            Ok(())
        })
    }

    /// The live session under `token_hash` (its user still existing), its
    /// expiry pushed to `idle_s` seconds from now; `None` when there is
    /// none or it expired.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the query fails.
    pub fn touch_web_session(
        &self,
        token_hash: &str,
        idle_s: i64,
    ) -> Result<Option<WebSession>, StoreError> {
        self.with_conn(|conn| {
            let now = now_unix();
            let found = conn
                .query_row(
                    "SELECT s.user, u.role, s.csrf FROM web_sessions AS s
                     JOIN users AS u ON u.name = s.user
                     WHERE s.token_hash = ?1 AND s.expires_unix > ?2",
                    params![token_hash, now],
                    |r| {
                        Ok(WebSession {
                            user: r.get(0)?,
                            role: Role::parse(&r.get::<_, String>(1)?).unwrap_or(Role::Readonly),
                            csrf: r.get(2)?,
                            expires_unix: now + idle_s,
                        })
                    },
                )
                .optional()?;
            if found.is_some() {
                conn.execute(
                    "UPDATE web_sessions SET expires_unix = ?2 WHERE token_hash = ?1",
                    params![token_hash, now + idle_s],
                )?;
            }
            Ok(found)
        })
    }

    /// Ends the session under `token_hash` (logout).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the write fails.
    pub fn delete_web_session(&self, token_hash: &str) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            conn.execute(
                "DELETE FROM web_sessions WHERE token_hash = ?1",
                [token_hash],
            )?;
            Ok(())
        })
    }
}
