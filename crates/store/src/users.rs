//! Web UI accounts (`users`, synced between the boxes): a name, a role and
//! an argon2id password hash. The store keeps the hash it is given; hashing
//! and verifying happen in the web crate.

use crate::tracking::now_unix_ms;
use crate::{Store, StoreError};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};

/// What a user may do in the web UI and API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads and changes everything.
    Admin,
    /// Reads everything, changes nothing.
    Readonly,
}

impl Role {
    /// The name stored and shown (`admin`, `readonly`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Readonly => "readonly",
        }
    }

    /// The role called `text`, if there is one.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "readonly" => Some(Role::Readonly),
            _ => None,
        }
    }
}

/// A user as listed (never with the hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// When the account was created (Unix seconds).
    pub created_unix: i64,
    /// When the account (role or password) last changed (Unix seconds).
    pub updated_unix: i64,
}

/// A user's role and password hash, for checking a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Role.
    pub role: Role,
    /// The argon2id hash in PHC string form.
    pub password_hash: String,
}

pub(crate) fn now_unix() -> i64 {
    now_unix_ms() / 1000
}

/// A stored role this binary does not know (a newer peer's) reads as
/// read-only: fail closed.
fn role_of(text: &str) -> Role {
    Role::parse(text).unwrap_or(Role::Readonly)
}

impl Store {
    /// Every user, by name.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the query fails.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT name, role, created_unix, updated_unix FROM users ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(User {
                    name: r.get(0)?,
                    role: role_of(&r.get::<_, String>(1)?),
                    created_unix: r.get(2)?,
                    updated_unix: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// True when at least one admin exists (the box is set up).
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the query fails.
    pub fn has_admin(&self) -> Result<bool, StoreError> {
        self.with_conn(|conn| {
            Ok(conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin')",
                [],
                |r| r.get(0),
            )?)
        })
    }

    /// The role and password hash of `name`, if such a user exists.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the query fails.
    pub fn user_credentials(&self, name: &str) -> Result<Option<Credentials>, StoreError> {
        self.with_conn(|conn| {
            Ok(conn
                .query_row(
                    "SELECT role, password_hash FROM users WHERE name = ?1",
                    [name],
                    |r| {
                        Ok(Credentials {
                            role: role_of(&r.get::<_, String>(0)?),
                            password_hash: r.get(1)?,
                        })
                    },
                )
                .optional()?)
        })
    }

    /// Creates user `name`; `false` (nothing changed) when the name is taken.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the write fails (a name the table's
    /// constraints refuse, too).
    pub fn create_user(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        self.with_conn(|conn| {
            let now = now_unix();
            let n = conn.execute(
                "INSERT INTO users (name, role, password_hash, created_unix, updated_unix)
                 VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (name) DO NOTHING",
                params![name, role.as_str(), password_hash, now],
            )?;
            Ok(n == 1)
        })
    }

    /// Creates the first admin, only while no admin exists (first-boot
    /// setup); `false` (nothing changed) when one exists already. Check and
    /// insert are one write transaction, so two setups cannot both win.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the write fails.
    pub fn create_first_admin(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin')",
                [],
                |r| r.get(0),
            )?;
            if exists {
                return Ok(false);
            }
            let now = now_unix();
            tx.execute(
                "INSERT OR REPLACE INTO users (name, role, password_hash, created_unix, updated_unix)
                 VALUES (?1, 'admin', ?2, ?3, ?3)",
                params![name, password_hash, now],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    /// Replaces the password hash of `name` and ends its web sessions;
    /// `false` when there is no such user.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the write fails.
    pub fn set_user_password(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction()?;
            let n = tx.execute(
                "UPDATE users SET password_hash = ?2, updated_unix = ?3 WHERE name = ?1",
                params![name, password_hash, now_unix()],
            )?;
            tx.execute("DELETE FROM web_sessions WHERE user = ?1", [name])?;
            tx.commit()?;
            Ok(n == 1)
        })
    }

    /// Deletes user `name` and its web sessions; `false` when there is no
    /// such user.
    ///
    /// # Errors
    /// [`StoreError::Sqlite`] when the write fails.
    pub fn delete_user(&self, name: &str) -> Result<bool, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction()?;
            let n = tx.execute("DELETE FROM users WHERE name = ?1", [name])?;
            tx.execute("DELETE FROM web_sessions WHERE user = ?1", [name])?;
            tx.commit()?;
            Ok(n == 1)
        })
    }
}
