//! Retention: while this node is the leader, purge records older than the `retention/days`
//! setting (delivery log, bounces, per-minute counters, audit entries, finished messages and
//! their bodies) every ten minutes, in bounded steps (`Command::Purge`), so applying one
//! step never holds the state machine for long. Without the setting only the per-minute
//! counters older than two days are removed (the console graphs at most one day).

use std::time::Duration;

use hato_cluster::{now_ms, ClusterHandle};
use hato_storage::keys::RETENTION_DAYS;
use hato_storage::{Command, CommandResult};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const EVERY: Duration = Duration::from_secs(600);
const DAY_MS: u64 = 86_400_000;
/// Messages examined per purge step.
const STEP: u32 = 2000;

pub fn start(cluster: ClusterHandle, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        // First sweep shortly after start, then every ten minutes.
        let mut wait = Duration::from_secs(30);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            wait = EVERY;
            if cluster.status().role != "leader" {
                continue;
            }
            let days = cluster
                .reader()
                .setting(RETENTION_DAYS)
                .ok()
                .flatten()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|d| *d > 0);
            let before = days.map_or(0, |d| now_ms().saturating_sub(d * DAY_MS));
            match sweep(&cluster, before, &stop).await {
                Ok(n) if n > 0 => {
                    tracing::info!(messages = n, ?days, "retention purged old records")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "retention purge failed; retrying later"),
            }
        }
    })
}

/// Purge everything older than `before_ms` (0: only old per-minute counters); the number of
/// messages removed.
pub async fn sweep(
    cluster: &ClusterHandle,
    before_ms: u64,
    stop: &watch::Receiver<bool>,
) -> Result<u64, hato_cluster::ClusterError> {
    let (mut after, mut total) = (None, 0u64);
    loop {
        let r = cluster
            .write(Command::Purge {
                before_ms,
                minutes_before_ms: now_ms().saturating_sub(2 * DAY_MS),
                after: after.clone(),
                max_messages: STEP,
            })
            .await?;
        match r {
            CommandResult::Purged { deleted, last } => {
                total += deleted as u64;
                match last {
                    Some(id) if !*stop.borrow() => after = Some(id),
                    _ => return Ok(total),
                }
            }
            _ => return Ok(total),
        }
    }
}
