//! `hato console user add|list|remove|unlock`: console accounts from the command line (the
//! first account, or a forgotten password). Passwords are hashed here (Argon2id) and only
//! the hash travels to the cluster.

use std::io::BufRead;

use anyhow::{bail, Context};
use clap::Subcommand;
use hato_cluster::handle::remote;
use hato_storage::Command;

use super::{list_prefix, now_ms, Target};
use crate::console::session::{Account, LOCK_PREFIX, USER_PREFIX};

#[derive(Subcommand)]
pub enum ConsoleCmd {
    /// Console accounts.
    #[command(subcommand)]
    User(ConsoleUserCmd),
}

#[derive(Subcommand)]
pub enum ConsoleUserCmd {
    /// Add an account, or set a new password for an existing one (and unlock it). The
    /// password is read from stdin (one line); with --generate a random one is printed.
    Add {
        #[command(flatten)]
        t: Target,
        name: String,
        #[arg(long)]
        generate: bool,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        t: Target,
    },
    /// Remove an account.
    Remove {
        #[command(flatten)]
        t: Target,
        name: String,
    },
}

pub async fn console(cmd: ConsoleCmd) -> anyhow::Result<()> {
    match cmd {
        ConsoleCmd::User(ConsoleUserCmd::Add { t, name, generate }) => {
            if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
            {
                bail!("{name:?} is not a valid account name (1-64 letters, digits, '.', '_', '-', '@')");
            }
            let password = if generate {
                hato_console::password::token()?[..24].to_string()
            } else {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("reading the password from stdin")?;
                line.trim_end_matches(['\r', '\n']).to_string()
            };
            let hash = hato_console::password::hash(&password)?;
            let value = serde_json::to_string(&Account {
                hash,
                created_ms: now_ms(),
                valid_from_ms: now_ms(),
            })?;
            remote::write(
                &t.node,
                Command::PutSetting {
                    key: format!("{USER_PREFIX}{name}"),
                    value,
                },
                t.timeout(),
            )
            .await?;
            remote::write(
                &t.node,
                Command::DeleteSetting {
                    key: format!("{LOCK_PREFIX}{name}"),
                },
                t.timeout(),
            )
            .await?;
            if generate {
                println!(
                    "{}",
                    serde_json::json!({"user": name, "password": password})
                );
            }
        }
        ConsoleCmd::User(ConsoleUserCmd::List { t }) => {
            for (k, _) in list_prefix(&t, USER_PREFIX).await? {
                println!("{}", &k[USER_PREFIX.len()..]);
            }
        }
        ConsoleCmd::User(ConsoleUserCmd::Remove { t, name }) => {
            let key = format!("{USER_PREFIX}{name}");
            match remote::write(&t.node, Command::DeleteSetting { key }, t.timeout()).await? {
                hato_storage::CommandResult::Changed(true) => {}
                _ => bail!("no console account named {name:?}"),
            }
        }
    }
    Ok(())
}
