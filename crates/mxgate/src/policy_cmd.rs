//! `mxgate check-config` and `mxgate policy export|import`.

use crate::service::open_store;
use crate::Failure;
use anyhow::Context;
use clap::Subcommand;
use mxgate_config::{NodeConfig, Policy};
use std::path::{Path, PathBuf};

/// `mxgate policy ...`.
#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Write the shared policy as TOML to FILE (or standard output).
    Export {
        /// The node's data directory (holds the store).
        #[arg(long)]
        data: PathBuf,
        /// Output file; standard output when absent.
        file: Option<PathBuf>,
    },
    /// Replace the shared policy with FILE, all or nothing.
    Import {
        /// The node's data directory (holds the store).
        #[arg(long)]
        data: PathBuf,
        /// The policy file.
        file: PathBuf,
    },
}

/// `mxgate check-config`.
pub(crate) fn check_config(config: &Path, policy: Option<&Path>) -> Result<(), Failure> {
    let node = NodeConfig::load(config);
    let policy = policy.map(Policy::load).transpose();
    let mut all = mxgate_config::Errors::default();
    if let Err(e) = &node {
        all.0.extend(e.0.iter().cloned());
    }
    if let Err(e) = &policy {
        all.0.extend(e.0.iter().cloned());
    }
    if !all.is_empty() {
        return Err(all.into());
    }
    println!("configuration ok");
    Ok(())
}

/// `mxgate policy export|import`.
pub(crate) fn run(cmd: PolicyCommand) -> Result<(), Failure> {
    match cmd {
        PolicyCommand::Export { data, file } => {
            require_store(&data)?;
            let store = open_store(&data)?;
            let policy = store.policy().context("cannot read the policy")?;
            let text = policy.to_toml();
            match file {
                Some(path) => std::fs::write(&path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(())
        }
        PolicyCommand::Import { data, file } => {
            let policy = Policy::load(&file)?;
            let store = open_store(&data)?;
            store
                .replace_policy(&policy)
                .context("policy not imported; the store is unchanged")?;
            println!(
                "imported {}: {} pools, {} servers, {} listeners, {} relay domains",
                file.display(),
                policy.pools.len(),
                policy.pools.iter().map(|p| p.servers.len()).sum::<usize>(),
                policy.listeners.len(),
                policy.relay_domains.len()
            );
            Ok(())
        }
    }
}

/// Refuses to export from a directory that holds no store (rather than
/// creating an empty one and exporting nothing).
fn require_store(data: &Path) -> Result<(), Failure> {
    if data.join(mxgate_store::DB_FILE).exists() {
        Ok(())
    } else {
        Err(Failure::Config(format!(
            "{}: no mxgate store here (expected {}); give the node's data_dir",
            data.display(),
            mxgate_store::DB_FILE
        )))
    }
}
