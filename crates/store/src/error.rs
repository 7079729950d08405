//! The store's error type: what went wrong opening, reading or changing the
//! shared policy, each variant saying whose fault it is and what to do.

use std::path::PathBuf;

/// An error from the policy store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite refused or failed an operation (including a CHECK, UNIQUE or
    /// foreign key constraint, the store's second line of defence).
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// The database was written by a newer mxgate whose schema this binary
    /// does not know; opening it could corrupt it.
    #[error(
        "store: the database has schema version {found}, but this mxgate ({version}) knows \
         only up to version {known}: it was written by a newer mxgate; run that newer version \
         (downgrading the store is not supported; restore a backup taken before the upgrade \
         to go back)",
        version = env!("CARGO_PKG_VERSION")
    )]
    SchemaTooNew {
        /// Schema version found in the database.
        found: i64,
        /// Newest schema version this binary knows.
        known: i64,
    },

    /// The policy (proposed, or read back from the database) does not pass
    /// validation; nothing was changed.
    #[error("policy is not valid:\n{0}")]
    Invalid(mxgate_config::Errors),

    /// A named row does not exist.
    #[error("no {what} is called {name:?}")]
    NotFound {
        /// What kind of thing was looked for (`pool`, `server`).
        what: &'static str,
        /// Its name (`pool/server` for a server).
        name: String,
    },

    /// A certificate or key handed to the store is not usable PEM (the
    /// caller's fault); nothing was stored.
    #[error("certificate {name:?}: {reason}")]
    InvalidCertificate {
        /// The certificate's name in the store.
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A self-signed certificate could not be generated (a host name that
    /// cannot go into a certificate, or a failure of the crypto library).
    #[error("certificate {name:?}: cannot generate a self-signed certificate: {reason}")]
    CertificateGeneration {
        /// The certificate's name in the store.
        name: String,
        /// The generator's error.
        reason: String,
    },

    /// Peer sync refused a batch or found the change log out of step
    /// (see [`SyncError`](crate::SyncError)); nothing was applied.
    #[error(transparent)]
    Sync(#[from] crate::SyncError),

    /// The data directory could not be created or used.
    #[error("store: {path}: {source}")]
    Io {
        /// The directory or file concerned.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl From<mxgate_config::Errors> for StoreError {
    fn from(errors: mxgate_config::Errors) -> Self {
        StoreError::Invalid(errors)
    }
}
