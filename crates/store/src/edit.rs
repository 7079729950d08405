//! Typed single-row edits (what the UI changes one click at a time).
//!
//! Each edit runs in one transaction: load the current policy, apply the
//! change to it and validate the result (so a refusal names the key, like a
//! file error would), write the one row, read the whole policy back and
//! validate it again, commit, publish.

use crate::{rows, Store, StoreError};
use mxgate_config::raw::{PolicyFile, PoolSection, ServerSection};
use mxgate_config::{Policy, Server, ServerState};

impl Store {
    /// Sets the administrative state of `server` in `pool`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown pool or server.
    pub fn set_server_state(
        &self,
        pool: &str,
        server: &str,
        state: ServerState,
    ) -> Result<(), StoreError> {
        self.commit_with(|tx| {
            let mut raw = rows::read_policy(tx)?;
            let section = find_server(find_pool(&mut raw, pool)?, pool, server)?;
            section.state = state;
            Policy::validate(raw)?;
            rows::set_server_state(tx, pool, server, state)?;
            Ok(())
        })
    }

    /// Adds `server` at the end of `pool`, or replaces the pool's server of
    /// the same name in place (keeping its position).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown pool; [`StoreError::Invalid`]
    /// when the resulting policy does not validate (a bad name or weight).
    pub fn upsert_server(&self, pool: &str, server: &Server) -> Result<(), StoreError> {
        let new = ServerSection {
            name: server.name.clone(),
            address: server.address.to_string(),
            weight: server.weight,
            max_conn: server.max_conn,
            state: server.state,
        };
        self.commit_with(|tx| {
            let mut raw = rows::read_policy(tx)?;
            let p = find_pool(&mut raw, pool)?;
            match p.server.iter_mut().find(|s| s.name == new.name) {
                Some(old) => *old = new.clone(),
                None => p.server.push(new.clone()),
            }
            Policy::validate(raw)?;
            rows::upsert_server(tx, pool, &new)
        })
    }

    /// Removes `server` from `pool`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown pool or server.
    pub fn remove_server(&self, pool: &str, server: &str) -> Result<(), StoreError> {
        self.commit_with(|tx| {
            let mut raw = rows::read_policy(tx)?;
            let p = find_pool(&mut raw, pool)?;
            find_server(p, pool, server)?;
            p.server.retain(|s| s.name != server);
            Policy::validate(raw)?;
            rows::delete_server(tx, pool, server)?;
            Ok(())
        })
    }
}

fn find_pool<'a>(raw: &'a mut PolicyFile, pool: &str) -> Result<&'a mut PoolSection, StoreError> {
    raw.pool
        .iter_mut()
        .find(|p| p.name == pool)
        .ok_or_else(|| StoreError::NotFound {
            what: "pool",
            name: pool.to_string(),
        })
}

fn find_server<'a>(
    p: &'a mut PoolSection,
    pool: &str,
    server: &str,
) -> Result<&'a mut ServerSection, StoreError> {
    p.server
        .iter_mut()
        .find(|s| s.name == server)
        .ok_or_else(|| StoreError::NotFound {
            what: "server",
            name: format!("{pool}/{server}"),
        })
}
