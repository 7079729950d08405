//! `mxgate cluster`: the sync identity of this box.
//!
//! Pairing is by pinned keys: `mxgate cluster pin --config NODE.toml`
//! prints this box's key pin (creating its sync key pair in the data dir on
//! first use); that pin goes into the other box's node file as
//! `[sync] peer_key`, and the other box's pin into this one's.

use crate::Failure;
use anyhow::Context;
use clap::Subcommand;
use mxgate_config::NodeConfig;
use std::path::PathBuf;

/// `mxgate cluster ...`
#[derive(Subcommand)]
pub(crate) enum ClusterCommand {
    /// Print this box's sync key pin (SHA-256 of its public key), the value
    /// of `[sync] peer_key` in the other box's node file.
    Pin {
        /// The node file.
        #[arg(long)]
        config: PathBuf,
    },
}

/// Runs a cluster command.
pub(crate) fn run(cmd: ClusterCommand) -> Result<(), Failure> {
    match cmd {
        ClusterCommand::Pin { config } => {
            let node = NodeConfig::load(&config)?;
            std::fs::create_dir_all(&node.data_dir).with_context(|| {
                format!(
                    "cannot create the data directory {}",
                    node.data_dir.display()
                )
            })?;
            let identity = mxgate_sync::Identity::load_or_create(&node.data_dir)
                .map_err(anyhow::Error::msg)
                .context("cannot load or create the sync key")?;
            println!("{}", identity.pin);
            Ok(())
        }
    }
}
