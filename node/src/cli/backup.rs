//! `hato backup` and `hato restore`: a consistent copy of the replicated state taken from a
//! running node, and a new cluster seeded from such a copy (disaster recovery).
//!
//! A backup is a snapshot file (`storage::snapshot` format) built by the node on request and
//! streamed over the internode port; it is checked end to end before it is kept. A restore
//! writes that state into an empty data directory as a one-node cluster of the configured
//! node; the other nodes then join it as new members and receive the state as a snapshot.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use hato_cluster::handle::remote;
use hato_storage::snapshot;
use hato_storage::NodeInfo;

use crate::config::Config;

#[derive(Args)]
pub struct BackupArgs {
    /// Internode address of the node to copy (any member: every one holds the whole state).
    #[arg(long, short = 'n', env = "HATO_NODE", default_value = "127.0.0.1:9400")]
    node: String,
    /// File to write (must not exist).
    #[arg(long, short = 'o')]
    out: PathBuf,
    /// Give up if the node needs longer than this to build the snapshot (seconds).
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

pub async fn backup(a: BackupArgs) -> anyhow::Result<()> {
    if a.out.exists() {
        bail!("{} exists; choose a new file", a.out.display());
    }
    let part = a.out.with_extension("part");
    let _ = std::fs::remove_file(&part);
    let bytes = remote::backup(&a.node, &part, Duration::from_secs(a.timeout))
        .await
        .with_context(|| format!("backup from {}", a.node))?;
    let (meta, records) = match snapshot::verify_file(&part) {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            bail!("the backup received is damaged ({e}); nothing was kept");
        }
    };
    std::fs::rename(&part, &a.out)?;
    let last = meta.last_log_id.map(|l| l.index);
    println!(
        "{}",
        serde_json::json!({
            "file": a.out.display().to_string(),
            "bytes": bytes,
            "records": records,
            "last_applied_index": last,
            "members": meta.last_membership.membership().voter_ids().collect::<Vec<_>>(),
        })
    );
    Ok(())
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The configuration of the node to seed (its node_id, data_dir and addresses). The node
    /// must be stopped and its data_dir empty or absent.
    #[arg(long, short = 'c')]
    config: PathBuf,
    /// Backup file written by `hato backup`.
    #[arg(long)]
    from: PathBuf,
}

pub fn restore(a: RestoreArgs) -> anyhow::Result<()> {
    let cfg = Config::load(&a.config)?;
    let holds_data = |d: &str| -> std::io::Result<bool> {
        let dir = cfg.data_dir.join(d);
        Ok(dir.exists() && std::fs::read_dir(&dir)?.next().is_some())
    };
    if holds_data("db")? || holds_data("raft")? {
        bail!(
            "{} already holds a database; restore into an empty data_dir (move it away first)",
            cfg.data_dir.display()
        );
    }
    // Check the file before the data directory is created: a damaged backup changes nothing.
    snapshot::verify_file(&a.from)
        .with_context(|| format!("{} is not a usable backup", a.from.display()))?;
    let info = NodeInfo {
        raft_addr: cfg.raft_advertise(),
        http_addr: cfg.http_advertise(),
    };
    let (log, sm) = hato_storage::open(&cfg.data_dir)
        .with_context(|| format!("open {}", cfg.data_dir.display()))?;
    let meta = snapshot::restore(&log, &sm, &a.from, cfg.node_id, info)
        .with_context(|| format!("restore from {}", a.from.display()))?;
    println!(
        "{}",
        serde_json::json!({
            "node_id": cfg.node_id,
            "data_dir": cfg.data_dir.display().to_string(),
            "restored_index": meta.last_log_id.map(|l| l.index),
        })
    );
    eprintln!(
        "Restored. Start this node (it forms a one-node cluster with the restored state), then \
         add the others with fresh data directories and new node ids (join = [\"{}\"]).",
        cfg.raft_advertise()
    );
    Ok(())
}
