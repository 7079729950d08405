//! `mxgate`: the one binary of the appliance. The command line lives here;
//! each command is a module.

mod allowlist;
mod cluster;
mod demo;
mod greylisting;
mod logging;
mod policy_cmd;
mod service;
mod tls;
mod tracking;
mod user_cmd;
mod vrrp;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code for bad usage or invalid configuration.
pub(crate) const EXIT_CONFIG: u8 = 2;
/// Exit code for a runtime failure.
pub(crate) const EXIT_RUNTIME: u8 = 1;

/// mxgate: inbound MX gateway firmware (SMTP balancing and filtering, VRRP, peer sync).
#[derive(Parser)]
#[command(name = "mxgate", version, about, disable_help_subcommand = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a self-contained demo: a gateway balancing over two built-in sink MTAs on loopback.
    Demo(demo::DemoArgs),
    /// Run the appliance service.
    Run {
        /// The node file (settings local to this box).
        #[arg(long)]
        config: PathBuf,
        /// A policy file to import into the store at start (replaces the shared policy).
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Validate a node file (and a policy file) without starting anything.
    CheckConfig {
        /// The node file.
        #[arg(long)]
        config: PathBuf,
        /// A policy file.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Peer sync identity: print this box's key pin for the peer's `[sync] peer_key`.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Export or import the shared policy of a store.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Run a small SMTP sink MTA that accepts every message.
    Sink {
        /// Address to listen on (IP:port).
        #[arg(long)]
        listen: SocketAddr,
        /// Store each message in this Maildir (tmp/, new/); without it mail is discarded.
        #[arg(long)]
        maildir: Option<PathBuf>,
        /// Expect a PROXY v1/v2 header first and record its source address.
        #[arg(long)]
        accept_proxy: bool,
        /// Host name in the banner.
        #[arg(long, default_value = "sink.localdomain")]
        hostname: String,
    },
    /// Web UI accounts: add one, set a password, list them.
    #[command(subcommand)]
    User(user_cmd::UserCommand),
    /// Print the version, git revision and target triple.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Run { config, policy } => service::run(&config, policy.as_deref()),
        Command::CheckConfig { config, policy } => {
            policy_cmd::check_config(&config, policy.as_deref())
        }
        Command::Policy(cmd) => policy_cmd::run(cmd),
        Command::Cluster(cmd) => cluster::run(cmd),
        Command::User(cmd) => user_cmd::run(cmd),
        Command::Sink {
            listen,
            maildir,
            accept_proxy,
            hostname,
        } => demo::run_sink(listen, maildir, accept_proxy, hostname),
        Command::Version => {
            println!(
                "mxgate {} (git {}, {})",
                env!("CARGO_PKG_VERSION"),
                env!("MXGATE_GIT_REV"),
                env!("MXGATE_TARGET")
            );
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(text)) => {
            eprintln!("{text}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("mxgate: {e:#}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// Why a command failed, deciding the exit code.
pub(crate) enum Failure {
    /// Invalid settings or usage (exit 2); the text lists every problem.
    Config(String),
    /// Anything that went wrong while running (exit 1).
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

impl From<mxgate_config::Errors> for Failure {
    fn from(e: mxgate_config::Errors) -> Self {
        let n = e.0.len();
        Failure::Config(format!(
            "{e}\n{n} error{} found; nothing was changed",
            if n == 1 { "" } else { "s" }
        ))
    }
}
