//! Backend pools of mxgate: servers, SMTP-aware health checks with rise/fall
//! and slow start, per-server session caps with a bounded wait queue,
//! drain/maint states, and the selection algorithms (roundrobin, leastconn,
//! source hash, first).
//!
//! Split by concern, after pingora's load balancer:
//!
//! - [`registry`]: [`Pools`], the live set of pools, swapped lock-free.
//! - [`pool`]: [`Pool`], choosing a server and taking a [`Lease`] on it.
//! - [`server`]: [`Server`], its atomics, [`Lease`] and [`ServerStatus`].
//! - [`selection`]: the [`BackendSelection`] algorithms.
//! - [`health`]: [`HealthTracker`], rise/fall driven by explicit time.
//! - [`check`]: the SMTP probe ([`SmtpCheck`]) behind the [`HealthCheck`] seam.
//! - `background`: one check task per server.
//! - [`slowstart`]: the weight ramp after recovery.
//!
//! ```no_run
//! # async fn demo(policy: mxgate_config::Policy) {
//! use mxgate_balance::Pools;
//! let pools = Pools::new();
//! pools.apply(&policy.pools); // again on every policy change
//! let pool = pools.get("mta").expect("configured");
//! let client = "192.0.2.7".parse().unwrap();
//! let lease = pool.acquire(client, &[]).await.expect("a server");
//! println!("relay to {}", lease.server().address());
//! drop(lease); // the slot is free again
//! pools.shutdown();
//! # }
//! ```

mod background;
pub mod check;
pub mod health;
pub mod pool;
mod queue;
pub mod registry;
pub mod selection;
pub mod server;
pub mod slowstart;
#[cfg(test)]
mod testutil;

pub use check::{CheckError, CheckOutcome, CheckReport, HealthCheck, SmtpCheck, Step, TlsInfo};
pub use health::{Health, HealthTracker, Thresholds, Transition};
pub use pool::{NoServer, Pool};
pub use registry::Pools;
pub use selection::{BackendSelection, Candidate};
pub use server::{Lease, Server, ServerStatus};
