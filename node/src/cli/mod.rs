//! Client subcommands: they talk to a running node's internode port, which forwards to the
//! leader, so any node of the cluster can be named with `--node`.

use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use hato_cluster::handle::remote;
pub(crate) use hato_cluster::now_ms;
use hato_cluster::{AdminRequest, ReadRequest, ReadResponse};
use hato_storage::{Command, NodeInfo};

mod backup;
mod console;
mod delivery;
mod webhook;
pub use backup::{backup, restore, BackupArgs, RestoreArgs};
pub use console::{console, ConsoleCmd};
pub use delivery::{
    bounce_list, domain, events, queue, route, BounceListArgs, DomainCmd, EventsArgs, QueueCmd,
    RouteCmd,
};
pub use webhook::{webhook, WebhookCmd};

#[derive(Args, Debug, Clone)]
pub struct Target {
    /// Internode address of any node of the cluster.
    #[arg(
        long,
        short = 'n',
        env = "HATO_NODE",
        default_value = "127.0.0.1:9400",
        global = true
    )]
    pub(crate) node: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 10, global = true)]
    timeout: u64,
}

impl Target {
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
}

#[derive(Subcommand)]
pub enum ClusterCmd {
    /// Make the node a new one-node cluster (only on a node without state).
    Init {
        #[command(flatten)]
        t: Target,
    },
    /// Add a node as voter: it is added as learner, catches up, then is promoted.
    Join {
        #[command(flatten)]
        t: Target,
        /// The new node's id.
        #[arg(long)]
        id: u64,
        /// The new node's internode address.
        #[arg(long)]
        raft_addr: String,
        /// The new node's HTTP address.
        #[arg(long)]
        http_addr: String,
    },
    /// Add a node as learner (replicates, does not vote).
    AddLearner {
        #[command(flatten)]
        t: Target,
        #[arg(long)]
        id: u64,
        #[arg(long)]
        raft_addr: String,
        #[arg(long)]
        http_addr: String,
    },
    /// Promote a learner to voter.
    Promote {
        #[command(flatten)]
        t: Target,
        #[arg(long)]
        id: u64,
    },
    /// Remove a node from the cluster (stop it afterwards).
    Leave {
        #[command(flatten)]
        t: Target,
        #[arg(long)]
        id: u64,
    },
    /// Print a node's role, leader, term and indexes as JSON.
    Status {
        #[command(flatten)]
        t: Target,
        /// Ask every member of the cluster, not only --node.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
pub enum SettingsCmd {
    /// Print a setting's value (linearizable read).
    Get {
        #[command(flatten)]
        t: Target,
        key: String,
        /// Read the node's local copy instead (may lag the leader).
        #[arg(long)]
        local: bool,
    },
    /// Set a setting to a JSON value (a bare word is stored as a JSON string).
    Set {
        #[command(flatten)]
        t: Target,
        key: String,
        value: String,
    },
    /// Delete a setting.
    Delete {
        #[command(flatten)]
        t: Target,
        key: String,
    },
    /// List settings whose key starts with a prefix.
    List {
        #[command(flatten)]
        t: Target,
        #[arg(default_value = "")]
        prefix: String,
    },
}

#[derive(Subcommand)]
pub enum BlocksCmd {
    /// Block an address cluster-wide.
    Add {
        #[command(flatten)]
        t: Target,
        address: String,
        #[arg(long, default_value = "manual")]
        reason: String,
    },
    /// Unblock an address.
    Remove {
        #[command(flatten)]
        t: Target,
        address: String,
    },
    /// List blocked addresses as JSON lines (linearizable read).
    List {
        #[command(flatten)]
        t: Target,
        /// Include blocks whose watch period has ended.
        #[arg(long)]
        expired: bool,
    },
    /// Export the block list as CSV (address, reason, code, occurred, created, effective,
    /// expires, auto).
    Export {
        #[command(flatten)]
        t: Target,
        #[arg(long)]
        expired: bool,
    },
    /// Show the auto-block rules, or replace them with `--set JSON`.
    Rules {
        #[command(flatten)]
        t: Target,
        /// e.g. '{"mode":"daily","daily_hour_utc":0,"watch_days":30,
        /// "rules":{"userunknown":{"enabled":true,"threshold":1}}}'
        #[arg(long)]
        set: Option<String>,
    },
}

pub(crate) fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn cluster(cmd: ClusterCmd) -> anyhow::Result<()> {
    let (t, req) = match cmd {
        ClusterCmd::Status { t, all } => {
            let st = remote::status(&t.node, t.timeout()).await?;
            if !all {
                return print_json(&st);
            }
            let mut out = Vec::new();
            for (id, n) in &st.nodes {
                match remote::status(&n.raft_addr, t.timeout()).await {
                    Ok(s) => out.push(serde_json::to_value(s)?),
                    Err(e) => out.push(serde_json::json!({"id": id, "raft_addr": n.raft_addr, "error": e.to_string()})),
                }
            }
            return print_json(&out);
        }
        ClusterCmd::Init { t } => (t, AdminRequest::Init),
        ClusterCmd::Join {
            t,
            id,
            raft_addr,
            http_addr,
        } => (
            t,
            AdminRequest::Join {
                id,
                node: NodeInfo {
                    raft_addr,
                    http_addr,
                },
            },
        ),
        ClusterCmd::AddLearner {
            t,
            id,
            raft_addr,
            http_addr,
        } => (
            t,
            AdminRequest::AddLearner {
                id,
                node: NodeInfo {
                    raft_addr,
                    http_addr,
                },
            },
        ),
        ClusterCmd::Promote { t, id } => (t, AdminRequest::Promote { id }),
        ClusterCmd::Leave { t, id } => (t, AdminRequest::Remove { id }),
    };
    let m = remote::admin(&t.node, req, t.timeout())
        .await
        .with_context(|| format!("via {}", t.node))?;
    print_json(&m)
}

pub async fn settings(cmd: SettingsCmd) -> anyhow::Result<()> {
    match cmd {
        SettingsCmd::Get { t, key, local } => {
            match remote::read(
                &t.node,
                ReadRequest::Setting { key: key.clone() },
                !local,
                t.timeout(),
            )
            .await?
            {
                ReadResponse::Setting(Some(v)) => println!("{v}"),
                ReadResponse::Setting(None) => bail!("no setting named {key:?}"),
                other => bail!("unexpected answer {other:?}"),
            }
        }
        SettingsCmd::Set { t, key, value } => {
            if key.trim().is_empty() {
                bail!("the setting name must not be empty");
            }
            // Store JSON; a bare word becomes a JSON string.
            let json = match serde_json::from_str::<serde_json::Value>(&value) {
                Ok(v) => v.to_string(),
                Err(_) => serde_json::Value::String(value).to_string(),
            };
            remote::write(
                &t.node,
                Command::PutSetting { key, value: json },
                t.timeout(),
            )
            .await?;
        }
        SettingsCmd::Delete { t, key } => {
            remote::write(&t.node, Command::DeleteSetting { key }, t.timeout()).await?;
        }
        SettingsCmd::List { t, prefix } => {
            match remote::read(
                &t.node,
                ReadRequest::SettingsWithPrefix { prefix },
                true,
                t.timeout(),
            )
            .await?
            {
                ReadResponse::Settings(list) => {
                    for (k, v) in list {
                        println!("{k}\t{v}");
                    }
                }
                other => bail!("unexpected answer {other:?}"),
            }
        }
    }
    Ok(())
}

fn check_address(a: &str) -> anyhow::Result<()> {
    let a = a.trim();
    match a.rsplit_once('@') {
        Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !a.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => bail!("{a:?} is not an e-mail address"),
    }
}

async fn read_blocks(t: &Target) -> anyhow::Result<Vec<hato_storage::command::BlockRecord>> {
    match remote::read(&t.node, ReadRequest::Blocks, true, t.timeout()).await? {
        ReadResponse::Blocks(list) => Ok(list),
        other => bail!("unexpected answer {other:?}"),
    }
}

pub async fn blocks(cmd: BlocksCmd) -> anyhow::Result<()> {
    match cmd {
        BlocksCmd::Add { t, address, reason } => {
            check_address(&address)?;
            remote::write(
                &t.node,
                Command::Block {
                    address,
                    reason,
                    at_ms: now_ms(),
                },
                t.timeout(),
            )
            .await?;
        }
        BlocksCmd::Remove { t, address } => {
            check_address(&address)?;
            remote::write(&t.node, Command::Unblock { address }, t.timeout()).await?;
        }
        BlocksCmd::List { t, expired } => {
            let now = now_ms();
            for b in read_blocks(&t).await? {
                if expired || b.expires_at_ms.is_none_or(|e| now < e) {
                    println!("{}", serde_json::to_string(&b)?);
                }
            }
        }
        BlocksCmd::Export { t, expired } => {
            let list = read_blocks(&t).await?;
            print!(
                "{}",
                crate::console::records::blocks_to_csv(&list, now_ms(), expired)
            );
        }
        BlocksCmd::Rules { t, set } => {
            use hato_storage::command::AutoBlockRules;
            use hato_storage::keys::AUTOBLOCK_RULES;
            match set {
                Some(json) => {
                    let rules: AutoBlockRules = serde_json::from_str(&json)
                        .context("the rules are not valid auto-block JSON")?;
                    rules.validate().map_err(|e| anyhow::anyhow!(e))?;
                    remote::write(
                        &t.node,
                        Command::PutSetting {
                            key: AUTOBLOCK_RULES.into(),
                            value: serde_json::to_string(&rules)?,
                        },
                        t.timeout(),
                    )
                    .await?;
                }
                None => {
                    let req = ReadRequest::Setting {
                        key: AUTOBLOCK_RULES.into(),
                    };
                    let rules = match remote::read(&t.node, req, true, t.timeout()).await? {
                        ReadResponse::Setting(Some(v)) => serde_json::from_str(&v)?,
                        ReadResponse::Setting(None) => AutoBlockRules::default(),
                        other => bail!("unexpected answer {other:?}"),
                    };
                    print_json(&rules)?;
                }
            }
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum SmtpCmd {
    /// SMTP AUTH logins.
    #[command(subcommand)]
    User(SmtpUserCmd),
    /// Client networks allowed to relay without AUTH.
    #[command(subcommand)]
    Allow(SmtpAllowCmd),
}

#[derive(Subcommand)]
pub enum SmtpUserCmd {
    /// Create or replace a login (password from --password or the first line of stdin).
    Add {
        #[command(flatten)]
        t: Target,
        name: String,
        #[arg(long)]
        password: Option<String>,
    },
    /// Delete a login.
    Remove {
        #[command(flatten)]
        t: Target,
        name: String,
    },
    /// List logins.
    List {
        #[command(flatten)]
        t: Target,
    },
}

#[derive(Subcommand)]
pub enum SmtpAllowCmd {
    /// Allow a client address or CIDR network to relay without AUTH.
    Add {
        #[command(flatten)]
        t: Target,
        network: String,
    },
    /// Remove an allowed network.
    Remove {
        #[command(flatten)]
        t: Target,
        network: String,
    },
    /// List allowed networks.
    List {
        #[command(flatten)]
        t: Target,
    },
}

#[derive(Subcommand)]
pub enum ApiCmd {
    /// API users.
    #[command(subcommand)]
    User(ApiUserCmd),
}

#[derive(Subcommand)]
pub enum ApiUserCmd {
    /// Create or replace an API user; prints its api_key (generated unless --key is given).
    /// The key is stored hashed and cannot be shown again.
    Add {
        #[command(flatten)]
        t: Target,
        name: String,
        #[arg(long)]
        key: Option<String>,
    },
    /// Delete an API user.
    Remove {
        #[command(flatten)]
        t: Target,
        name: String,
    },
    /// List API users.
    List {
        #[command(flatten)]
        t: Target,
    },
}

/// Store a secret (SMTP password or API key) hashed under a setting key.
async fn put_credential(t: &Target, key: &str, secret: &str) -> anyhow::Result<()> {
    let value = serde_json::to_string(&crate::settings::Credential {
        hash: crate::settings::hash_password(secret),
    })?;
    remote::write(
        &t.node,
        Command::PutSetting {
            key: key.to_string(),
            value,
        },
        t.timeout(),
    )
    .await?;
    Ok(())
}

pub async fn api(cmd: ApiCmd) -> anyhow::Result<()> {
    use crate::settings::API_USER_PREFIX;
    match cmd {
        ApiCmd::User(ApiUserCmd::Add { t, name, key }) => {
            check_user_name(&name)?;
            let key = match key {
                Some(k) if k.len() >= 16 => k,
                Some(_) => bail!("an API key must have at least 16 characters"),
                None => {
                    let mut b = [0u8; 24];
                    aws_lc_rs::rand::fill(&mut b).map_err(|_| anyhow::anyhow!("no randomness"))?;
                    b.iter().map(|x| format!("{x:02x}")).collect()
                }
            };
            put_credential(&t, &format!("{API_USER_PREFIX}{name}"), &key).await?;
            println!("{}", serde_json::json!({"api_user": name, "api_key": key}));
        }
        ApiCmd::User(ApiUserCmd::Remove { t, name }) => {
            let key = format!("{API_USER_PREFIX}{name}");
            match remote::write(&t.node, Command::DeleteSetting { key }, t.timeout()).await? {
                hato_storage::CommandResult::Changed(true) => {}
                _ => bail!("no API user named {name:?}"),
            }
        }
        ApiCmd::User(ApiUserCmd::List { t }) => {
            for (k, _) in list_prefix(&t, API_USER_PREFIX).await? {
                println!("{}", &k[API_USER_PREFIX.len()..]);
            }
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct LogArgs {
    #[command(flatten)]
    t: Target,
    /// Records at or after this time (ms since the epoch).
    #[arg(long, default_value_t = 0)]
    since_ms: u64,
    /// At most this many records.
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

pub(crate) async fn list_prefix(t: &Target, prefix: &str) -> anyhow::Result<Vec<(String, String)>> {
    match remote::read(
        &t.node,
        ReadRequest::SettingsWithPrefix {
            prefix: prefix.into(),
        },
        true,
        t.timeout(),
    )
    .await?
    {
        ReadResponse::Settings(list) => Ok(list),
        other => bail!("unexpected answer {other:?}"),
    }
}

fn check_user_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.len() > 256
        || name.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        bail!("{name:?} is not a valid login name (1-256 characters, no spaces or control characters)");
    }
    Ok(())
}

pub async fn smtp(cmd: SmtpCmd) -> anyhow::Result<()> {
    use crate::settings::{Cidr, ALLOWED_IP_PREFIX, CREDENTIAL_PREFIX};
    match cmd {
        SmtpCmd::User(SmtpUserCmd::Add { t, name, password }) => {
            check_user_name(&name)?;
            let password = match password {
                Some(p) => p,
                None => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the password from stdin")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            if password.len() < 8 {
                bail!("the password must have at least 8 characters");
            }
            put_credential(&t, &format!("{CREDENTIAL_PREFIX}{name}"), &password).await?;
        }
        SmtpCmd::User(SmtpUserCmd::Remove { t, name }) => {
            let key = format!("{CREDENTIAL_PREFIX}{name}");
            match remote::write(&t.node, Command::DeleteSetting { key }, t.timeout()).await? {
                hato_storage::CommandResult::Changed(true) => {}
                _ => bail!("no SMTP login named {name:?}"),
            }
        }
        SmtpCmd::User(SmtpUserCmd::List { t }) => {
            for (k, _) in list_prefix(&t, CREDENTIAL_PREFIX).await? {
                println!("{}", &k[CREDENTIAL_PREFIX.len()..]);
            }
        }
        SmtpCmd::Allow(SmtpAllowCmd::Add { t, network }) => {
            let n: Cidr = network.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            remote::write(
                &t.node,
                Command::PutSetting {
                    key: format!("{ALLOWED_IP_PREFIX}{n}"),
                    value: "{}".into(),
                },
                t.timeout(),
            )
            .await?;
        }
        SmtpCmd::Allow(SmtpAllowCmd::Remove { t, network }) => {
            let n: Cidr = network.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            match remote::write(
                &t.node,
                Command::DeleteSetting {
                    key: format!("{ALLOWED_IP_PREFIX}{n}"),
                },
                t.timeout(),
            )
            .await?
            {
                hato_storage::CommandResult::Changed(true) => {}
                _ => bail!("{n} is not in the allow-list"),
            }
        }
        SmtpCmd::Allow(SmtpAllowCmd::List { t }) => {
            for (k, _) in list_prefix(&t, ALLOWED_IP_PREFIX).await? {
                println!("{}", &k[ALLOWED_IP_PREFIX.len()..]);
            }
        }
    }
    Ok(())
}

pub async fn log(a: LogArgs) -> anyhow::Result<()> {
    let req = ReadRequest::Deliveries {
        from_ms: a.since_ms,
        limit: a.limit,
    };
    match remote::read(&a.t.node, req, true, a.t.timeout()).await? {
        ReadResponse::Deliveries(list) => {
            for r in list {
                println!("{}", serde_json::to_string(&r)?);
            }
            Ok(())
        }
        other => bail!("unexpected answer {other:?}"),
    }
}

#[derive(Args)]
pub struct MessageArgs {
    #[command(flatten)]
    t: Target,
    /// The message id (from `250 2.0.0 Ok: queued as ID`).
    id: String,
    /// Print the stored message bytes instead of the metadata.
    #[arg(long)]
    body: bool,
}

pub async fn message(a: MessageArgs) -> anyhow::Result<()> {
    let req = if a.body {
        ReadRequest::Body { id: a.id.clone() }
    } else {
        ReadRequest::Message { id: a.id.clone() }
    };
    match remote::read(&a.t.node, req, true, a.t.timeout()).await? {
        ReadResponse::Body(Some(b)) => {
            use std::io::Write;
            std::io::stdout().write_all(&b)?;
            Ok(())
        }
        ReadResponse::Message(Some(m)) => print_json(&m),
        ReadResponse::Body(None) | ReadResponse::Message(None) => bail!("no message {:?}", a.id),
        other => bail!("unexpected answer {other:?}"),
    }
}

/// `hato bounce classify FILE`.
pub fn bounce_classify(file: &std::path::Path) -> anyhow::Result<()> {
    let raw = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let found = hato_bounce::parse_bounce(&raw);
    if found.is_empty() {
        bail!(
            "{} is not a bounce message this classifier recognises",
            file.display()
        );
    }
    for r in found {
        println!(
            "{}",
            serde_json::json!({
                "recipient": r.recipient,
                "reason": r.reason.as_str(),
                "code": r.cmc_code,
                "permanent": r.permanent,
                "status": r.status,
                "diagnostic": r.diagnostic,
                "remote_host": r.remote_host,
                "action": r.action,
                "original_message_id": r.original_message_id,
                "original_return_path": r.original_return_path,
                "bounce_envelope_to": r.bounce_envelope_to,
            })
        );
    }
    Ok(())
}
