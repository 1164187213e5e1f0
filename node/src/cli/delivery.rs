//! Delivery commands: sending domains (DKIM keys and the DNS records to publish), routes,
//! the bounce domain, and queue operations.

use anyhow::{bail, Context};
use clap::Subcommand;
use hato_cluster::handle::remote;
use hato_cluster::{ReadRequest, ReadResponse};
use hato_storage::{Command, CommandResult};
use serde_json::json;

use super::{list_prefix, now_ms, print_json, Target};
use crate::settings::{Route, BOUNCE_DOMAIN, DOMAIN_PREFIX, ROUTE_PREFIX};

#[derive(Subcommand)]
pub enum DomainCmd {
    /// Add a sending domain and generate its DKIM key; prints the DNS records to publish.
    Add {
        #[command(flatten)]
        t: Target,
        domain: String,
        /// DKIM selector (the `<selector>._domainkey` name).
        #[arg(long, default_value = "hato")]
        selector: String,
        /// `rsa` (2048 bits, rsa-sha256) or `ed25519` (RFC 8463).
        #[arg(long, default_value = "rsa")]
        algorithm: hato_dkim::Algorithm,
    },
    /// Print a sending domain's DKIM and SPF records to publish.
    Show {
        #[command(flatten)]
        t: Target,
        domain: String,
    },
    /// List sending domains.
    List {
        #[command(flatten)]
        t: Target,
    },
    /// Remove a sending domain (its mail is no longer signed).
    Remove {
        #[command(flatten)]
        t: Target,
        domain: String,
    },
    /// Show, set (DOMAIN) or clear (--clear) the bounce domain of VERP return paths.
    BounceDomain {
        #[command(flatten)]
        t: Target,
        domain: Option<String>,
        #[arg(long, conflicts_with = "domain")]
        clear: bool,
    },
}

#[derive(Subcommand)]
pub enum RouteCmd {
    /// Route a recipient domain (or `*` for all) to a smart host, and/or limit it.
    Set {
        #[command(flatten)]
        t: Target,
        domain: String,
        /// Smart host name or IP (omit to keep MX lookup and only set limits).
        #[arg(long, default_value = "")]
        host: String,
        #[arg(long)]
        port: Option<u16>,
        /// `opportunistic`, `required` or `disabled`.
        #[arg(long)]
        tls: Option<String>,
        #[arg(long)]
        max_connections: Option<usize>,
        #[arg(long)]
        max_per_minute: Option<u32>,
    },
    /// List routes as JSON lines.
    List {
        #[command(flatten)]
        t: Target,
    },
    /// Remove a route.
    Remove {
        #[command(flatten)]
        t: Target,
        domain: String,
    },
}

#[derive(Subcommand)]
pub enum QueueCmd {
    /// Pending recipients, oldest message first, as JSON lines.
    List {
        #[command(flatten)]
        t: Target,
        /// Continue after this message id.
        #[arg(long)]
        after: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// A message's metadata and the delivery state of its pending recipients.
    Show {
        #[command(flatten)]
        t: Target,
        id: String,
    },
    /// Attempt these messages' deferred recipients now.
    Retry {
        #[command(flatten)]
        t: Target,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Remove a message's pending recipients from the queue (recorded as failed, "deleted").
    Delete {
        #[command(flatten)]
        t: Target,
        id: String,
    },
    /// Queue size and age.
    Stats {
        #[command(flatten)]
        t: Target,
    },
}

fn check_domain(d: &str) -> anyhow::Result<String> {
    crate::settings::check_domain(d).map_err(|e| anyhow::anyhow!(e))
}

async fn read_setting(t: &Target, key: &str) -> anyhow::Result<Option<String>> {
    match remote::read(
        &t.node,
        ReadRequest::Setting { key: key.into() },
        true,
        t.timeout(),
    )
    .await?
    {
        ReadResponse::Setting(v) => Ok(v),
        other => bail!("unexpected answer {other:?}"),
    }
}

/// The DNS records to publish for a sending domain.
fn records(key: &hato_dkim::DkimKey, egress: &[std::net::IpAddr]) -> serde_json::Value {
    json!({
        "domain": key.domain,
        "selector": key.selector,
        "algorithm": key.algorithm,
        "dns": crate::settings::dns_records(key, egress),
    })
}

async fn egress(t: &Target) -> anyhow::Result<Vec<std::net::IpAddr>> {
    Ok(crate::settings::egress_ips(&list_prefix(t, "node/").await?))
}

pub async fn domain(cmd: DomainCmd) -> anyhow::Result<()> {
    match cmd {
        DomainCmd::Add {
            t,
            domain,
            selector,
            algorithm,
        } => {
            let domain = check_domain(&domain)?;
            let key = hato_dkim::generate(&domain, &selector, algorithm)?;
            let r = remote::write(
                &t.node,
                Command::PutSettingIfAbsent {
                    key: format!("{DOMAIN_PREFIX}{domain}"),
                    value: serde_json::to_string(&key)?,
                },
                t.timeout(),
            )
            .await?;
            if r == CommandResult::Changed(true) {
                bail!("{domain} is already a sending domain (remove it first to replace its key)");
            }
            print_json(&records(&key, &egress(&t).await?))
        }
        DomainCmd::Show { t, domain } => {
            let domain = check_domain(&domain)?;
            let Some(v) = read_setting(&t, &format!("{DOMAIN_PREFIX}{domain}")).await? else {
                bail!("{domain} is not a sending domain (add it with `hato domain add {domain}`)");
            };
            let key: hato_dkim::DkimKey =
                serde_json::from_str(&v).context("the stored key is unreadable")?;
            print_json(&records(&key, &egress(&t).await?))
        }
        DomainCmd::List { t } => {
            for (k, _) in list_prefix(&t, DOMAIN_PREFIX).await? {
                println!("{}", &k[DOMAIN_PREFIX.len()..]);
            }
            Ok(())
        }
        DomainCmd::Remove { t, domain } => {
            let domain = check_domain(&domain)?;
            let key = format!("{DOMAIN_PREFIX}{domain}");
            match remote::write(&t.node, Command::DeleteSetting { key }, t.timeout()).await? {
                CommandResult::Changed(true) => Ok(()),
                _ => bail!("{domain} is not a sending domain"),
            }
        }
        DomainCmd::BounceDomain { t, domain, clear } => {
            if clear {
                remote::write(
                    &t.node,
                    Command::DeleteSetting {
                        key: BOUNCE_DOMAIN.into(),
                    },
                    t.timeout(),
                )
                .await?;
                return Ok(());
            }
            match domain {
                Some(d) => {
                    let d = check_domain(&d)?;
                    remote::write(
                        &t.node,
                        Command::PutSetting {
                            key: BOUNCE_DOMAIN.into(),
                            value: serde_json::to_string(&d)?,
                        },
                        t.timeout(),
                    )
                    .await?;
                }
                None => match read_setting(&t, BOUNCE_DOMAIN).await? {
                    Some(v) => println!("{}", serde_json::from_str::<String>(&v)?),
                    None => bail!("no bounce domain is set: return paths are the senders' own"),
                },
            }
            Ok(())
        }
    }
}

pub async fn route(cmd: RouteCmd) -> anyhow::Result<()> {
    match cmd {
        RouteCmd::Set {
            t,
            domain,
            host,
            port,
            tls,
            max_connections,
            max_per_minute,
        } => {
            let domain = if domain == "*" {
                domain
            } else {
                check_domain(&domain)?
            };
            let route = Route {
                host,
                port,
                tls,
                max_connections,
                max_per_minute,
            };
            route.validate().map_err(|e| anyhow::anyhow!(e))?;
            remote::write(
                &t.node,
                Command::PutSetting {
                    key: format!("{ROUTE_PREFIX}{domain}"),
                    value: serde_json::to_string(&route)?,
                },
                t.timeout(),
            )
            .await?;
            Ok(())
        }
        RouteCmd::List { t } => {
            for (k, v) in list_prefix(&t, ROUTE_PREFIX).await? {
                let route: serde_json::Value = serde_json::from_str(&v).unwrap_or(json!(v));
                println!(
                    "{}",
                    json!({"domain": &k[ROUTE_PREFIX.len()..], "route": route})
                );
            }
            Ok(())
        }
        RouteCmd::Remove { t, domain } => {
            let key = format!("{ROUTE_PREFIX}{}", domain.to_ascii_lowercase());
            match remote::write(&t.node, Command::DeleteSetting { key }, t.timeout()).await? {
                CommandResult::Changed(true) => Ok(()),
                _ => bail!("no route for {domain}"),
            }
        }
    }
}

async fn read(t: &Target, req: ReadRequest) -> anyhow::Result<ReadResponse> {
    Ok(remote::read(&t.node, req, true, t.timeout()).await?)
}

pub async fn queue(cmd: QueueCmd) -> anyhow::Result<()> {
    match cmd {
        QueueCmd::List { t, after, limit } => {
            let ReadResponse::Queue(items) = read(&t, ReadRequest::Queue { after, limit }).await?
            else {
                bail!("unexpected answer");
            };
            let mut meta: Option<hato_storage::command::MessageMeta> = None;
            for (id, rcpt, item) in items {
                if meta.as_ref().is_none_or(|m| m.id != id) {
                    meta = match read(&t, ReadRequest::Message { id: id.clone() }).await? {
                        ReadResponse::Message(m) => m,
                        _ => None,
                    };
                }
                let recipient = meta
                    .as_ref()
                    .and_then(|m| m.recipients.get(rcpt as usize))
                    .map(|r| r.address.clone());
                println!(
                    "{}",
                    json!({
                        "id": id, "rcpt": rcpt, "recipient": recipient,
                        "attempts": item.attempts, "next_at_ms": item.next_at_ms,
                        "lease": item.lease, "last_reply": item.last_reply,
                    })
                );
            }
            Ok(())
        }
        QueueCmd::Show { t, id } => {
            let ReadResponse::Message(Some(m)) =
                read(&t, ReadRequest::Message { id: id.clone() }).await?
            else {
                bail!("no message {id:?}");
            };
            let ReadResponse::WorkItems(items) =
                read(&t, ReadRequest::WorkItems { id: id.clone() }).await?
            else {
                bail!("unexpected answer");
            };
            let pending: Vec<_> = items
                .into_iter()
                .map(|(rcpt, w)| json!({"rcpt": rcpt, "attempts": w.attempts, "next_at_ms": w.next_at_ms, "lease": w.lease, "last_reply": w.last_reply}))
                .collect();
            print_json(&json!({"message": m, "pending": pending}))
        }
        QueueCmd::Retry { t, ids } => {
            let r = remote::write(
                &t.node,
                Command::Retry {
                    ids,
                    at_ms: now_ms(),
                },
                t.timeout(),
            )
            .await?;
            if let CommandResult::Count(n) = r {
                println!("{n} recipient(s) due now");
            }
            Ok(())
        }
        QueueCmd::Delete { t, id } => {
            let by = std::env::var("USER").unwrap_or_else(|_| "operator".into());
            let r = remote::write(
                &t.node,
                Command::DeleteQueued {
                    id: id.clone(),
                    at_ms: now_ms(),
                    by: format!("{by} (hato queue delete)"),
                },
                t.timeout(),
            )
            .await?;
            match r {
                CommandResult::Count(0) => bail!("message {id:?} has no pending recipients"),
                CommandResult::Count(n) => {
                    println!("{n} recipient(s) removed");
                    Ok(())
                }
                other => bail!("unexpected answer {other:?}"),
            }
        }
        QueueCmd::Stats { t } => {
            let ReadResponse::QueueStats(s) = read(&t, ReadRequest::QueueStats).await? else {
                bail!("unexpected answer");
            };
            let now = now_ms();
            print_json(&json!({
                "pending": s.pending,
                "oldest_received_ms": s.oldest_received_ms,
                "oldest_age_secs": s.oldest_received_ms.map(|t| now.saturating_sub(t) / 1000),
                "next_due_ms": s.next_due_ms,
            }))
        }
    }
}

/// `hato bounce list`.
#[derive(clap::Args)]
pub struct BounceListArgs {
    #[command(flatten)]
    t: Target,
    /// Records at or after this time (ms since the epoch).
    #[arg(long, default_value_t = 0)]
    since_ms: u64,
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

/// Print bounce records (synchronous failures, expiries, bounce mails, blocked recipients
/// with code 10) as JSON lines, oldest first.
pub async fn bounce_list(a: BounceListArgs) -> anyhow::Result<()> {
    let req = ReadRequest::Bounces {
        from_ms: a.since_ms,
        limit: a.limit,
    };
    match read(&a.t, req).await? {
        ReadResponse::Bounces(list) => {
            for b in list {
                println!("{}", serde_json::to_string(&b)?);
            }
            Ok(())
        }
        other => bail!("unexpected answer {other:?}"),
    }
}

/// `hato events`.
#[derive(clap::Args)]
pub struct EventsArgs {
    #[command(flatten)]
    t: Target,
    /// Start at this outbox sequence number.
    #[arg(long, default_value_t = 0)]
    from_seq: u64,
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

/// Print outbox events (those a webhook endpoint subscribes to) as JSON lines.
pub async fn events(a: EventsArgs) -> anyhow::Result<()> {
    let req = ReadRequest::Events {
        from_seq: a.from_seq,
        limit: a.limit,
    };
    match read(&a.t, req).await? {
        ReadResponse::Events(list) => {
            for e in list {
                println!(
                    "{}",
                    json!({"seq": e.seq, "at_ms": e.at_ms, "kind": e.event.kind(), "event": e.event})
                );
            }
            Ok(())
        }
        other => bail!("unexpected answer {other:?}"),
    }
}
