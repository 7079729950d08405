//! Node and policy settings of mxgate, in two levels.
//!
//! The *raw* level ([`raw`]) is what the TOML files say: serde structures that
//! refuse unknown keys and fill documented defaults. The *validated* level
//! ([`node::NodeConfig`], [`policy::Policy`]) is what the rest of the code sees:
//! parsed addresses, checked ranges, resolved references. Validation collects
//! every problem at once ([`Errors`]), each naming the file, the key and what
//! would be valid, so an operator fixes a file in one pass and nothing is
//! applied half-way.

mod error;
pub mod node;
mod node_vrrp;
pub mod policy;
pub mod raw;
mod raw_filter;
mod validate;
mod validate_auth;
mod validate_screen;

pub use validate::is_dns_name;

pub use error::{ConfigError, Errors};
pub use node::NodeConfig;
pub use node_vrrp::{VrrpSettings, WEIGHT_FAULT};
pub use policy::{
    BackendTls, Balance, CheckSettings, ClientIdentity, Limits, Listener, ListenerMode, Policy,
    Pool, ProxyVersion, RelaySettings, Server, ServerState, SmtpSettings,
};
pub use validate_auth::{AuthSettings, CheckMode, DmarcMode, SpfMode};
