//! `mxgate cluster`: the sync identity of this box.
//!
//! Pairing is by pinned keys. With a one-time code: `mxgate cluster pair
//! --data DIR` on box A prints a code (valid 15 minutes, one use);
//! `mxgate cluster join --data DIR --peer HOST:PORT CODE` on box B
//! connects to A's running sync listener, proves the code, and each box
//! stores the other's pin in its data dir (`sync_peer_pin`); the running
//! services pick it up at their next connection (see
//! `mxgate_sync::pairing`). By hand: `mxgate cluster pin --config
//! NODE.toml` prints this box's key pin (creating its sync key pair in the
//! data dir on first use); that pin goes into the other box's node file as
//! `[sync] peer_key` (which wins over a pin stored by pairing).

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
    /// On box A: print a one-time pairing code (valid 15 minutes, one use)
    /// for `cluster join` on the other box. A new pairing replaces the
    /// trusted peer: use it to replace a box.
    Pair {
        /// This box's data directory.
        #[arg(long)]
        data: PathBuf,
        /// How long the code is good for, in seconds (1 to 3600).
        #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=3600))]
        valid_s: u64,
    },
    /// On box B: pair with box A's running sync listener using A's code;
    /// both boxes then trust each other's key.
    Join {
        /// This box's data directory.
        #[arg(long)]
        data: PathBuf,
        /// Box A's `[sync] listen` address (HOST:PORT).
        #[arg(long)]
        peer: String,
        /// The code printed by `mxgate cluster pair` on box A.
        code: String,
    },
}

fn create_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))
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
        ClusterCommand::Pair { data, valid_s } => {
            create_dir(&data)?;
            let now = mxgate_sync::pairing::now_unix();
            let valid = std::time::Duration::from_secs(valid_s);
            let code = mxgate_sync::pairing::create(&data, now, valid)
                .map_err(anyhow::Error::msg)
                .context("cannot create the pairing")?;
            println!("{code}");
            eprintln!(
                "pairing code printed above: valid {valid_s} s, for one box; on the other box run\n  \
                 mxgate cluster join --data DIR --peer THIS_BOX_SYNC_ADDRESS CODE\n\
                 while `mxgate run` with [sync] listen runs here"
            );
            Ok(())
        }
        ClusterCommand::Join { data, peer, code } => {
            create_dir(&data)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let pin = runtime
                .block_on(mxgate_sync::pairing::join(&data, &peer, &code))
                .map_err(anyhow::Error::msg)
                .context("pairing failed; nothing was stored")?;
            println!("paired with {peer} (key {pin})");
            eprintln!(
                "nothing else to do: with [sync] peer set in both node files, the running \
                 services connect by themselves"
            );
            Ok(())
        }
    }
}
