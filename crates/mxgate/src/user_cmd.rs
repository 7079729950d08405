//! `mxgate user add|passwd|list`: web UI accounts from the console (the
//! password is read from standard input: typed twice without echo on a
//! terminal, or the first line of a pipe, for scripts and tests).

use crate::service::open_store;
use crate::Failure;
use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use mxgate_store::Role;
use mxgate_web::auth::check_user_name;
use mxgate_web::auth::password::{check_password_rules, hash_password};
use serde_json::json;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

/// Who a console change is audited as.
const CONSOLE: &str = "(console)";

/// A role on the command line.
#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum RoleArg {
    /// Reads and changes everything.
    Admin,
    /// Reads everything, changes nothing.
    Readonly,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Readonly => Role::Readonly,
        }
    }
}

/// `mxgate user ...`.
#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Add a web UI account; the password is read from standard input.
    Add {
        /// The node's data directory (holds the store).
        #[arg(long)]
        data: PathBuf,
        /// User name: 1 to 64 of A-Z a-z 0-9 . _ @ -.
        name: String,
        /// What the user may do.
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// Set a user's password (read from standard input); ends its sessions.
    Passwd {
        /// The node's data directory (holds the store).
        #[arg(long)]
        data: PathBuf,
        /// User name.
        name: String,
    },
    /// List the web UI accounts.
    List {
        /// The node's data directory (holds the store).
        #[arg(long)]
        data: PathBuf,
    },
}

/// `mxgate user ...`.
pub(crate) fn run(cmd: UserCommand) -> Result<(), Failure> {
    match cmd {
        UserCommand::Add { data, name, role } => {
            if let Some(reason) = check_user_name(&name) {
                return Err(Failure::Config(format!("user name {name:?}: {reason}")));
            }
            let password = read_password()?;
            let store = open_store(&data)?;
            let role = Role::from(role);
            if !store
                .create_user(&name, role, &hash_password(&password))
                .context("cannot store the user")?
            {
                return Err(Failure::Config(format!(
                    "a user called {name:?} exists already (`mxgate user passwd` changes its password)"
                )));
            }
            store
                .audit(
                    CONSOLE,
                    "user.add",
                    &name,
                    &json!({ "role": role.as_str() }),
                )
                .context("cannot write the audit log")?;
            println!("user {name} added ({})", role.as_str());
            Ok(())
        }
        UserCommand::Passwd { data, name } => {
            let password = read_password()?;
            let store = open_store(&data)?;
            if !store
                .set_user_password(&name, &hash_password(&password))
                .context("cannot store the password")?
            {
                return Err(Failure::Config(format!("no user is called {name:?}")));
            }
            store
                .audit(CONSOLE, "user.passwd", &name, &json!({}))
                .context("cannot write the audit log")?;
            println!("password of {name} changed; its sessions were ended");
            Ok(())
        }
        UserCommand::List { data } => {
            let store = open_store(&data)?;
            for user in store.users().context("cannot read the users")? {
                println!("{}\t{}", user.name, user.role.as_str());
            }
            Ok(())
        }
    }
}

/// The password from standard input: on a terminal typed twice without
/// echo, else the first line.
fn read_password() -> Result<String, Failure> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = prompt("password (at least 10 characters): ")?;
        let again = prompt("password again: ")?;
        if first != again {
            return Err(Failure::Config("the two passwords differ".to_string()));
        }
        first
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if let Some(reason) = check_password_rules(&password) {
        return Err(Failure::Config(format!("password: {reason}")));
    }
    Ok(password)
}

/// Asks on the terminal with echo off (through `stty`, which the image's
/// busybox has too).
fn prompt(text: &str) -> anyhow::Result<String> {
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
    };
    eprint!("{text}");
    std::io::stderr().flush()?;
    let _ = stty("-echo");
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    let _ = stty("echo");
    eprintln!();
    read.context("cannot read the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
