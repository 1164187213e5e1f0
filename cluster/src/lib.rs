//! Hato cluster: openraft wiring, the internode gRPC services and write forwarding.
//!
//! Contract:
//! - [`start`] builds a Raft node over a storage pair and a tonic network; [`serve`] serves the
//!   Raft and Cluster gRPC services on one internode port.
//! - [`ClusterHandle`] is how the rest of Hato changes state: [`ClusterHandle::write`] proposes
//!   a `Command` and returns only after it is committed by a quorum and applied. Any node can be
//!   asked: followers forward to the leader transparently. A write that cannot reach a quorum
//!   within the configured timeout fails with [`ClusterError::NoQuorum`] (outcome unknown to
//!   the caller, so callers must answer "try again later", never success).
//! - Membership changes (init, join, add learner, promote, remove) go through
//!   [`ClusterHandle::admin`], forwarded to the leader the same way.

pub mod auth;
pub mod error;
mod group_commit;
pub mod handle;
pub mod messages;
pub mod network;
pub mod pb;
pub mod service;

use std::sync::Arc;
use std::time::Duration;

use tonic::service::interceptor::InterceptedService;

pub use error::ClusterError;
pub use handle::{ClusterHandle, ClusterOptions, Handoff};
pub use messages::{AdminRequest, AdminResponse, NodeStatus, ReadRequest, ReadResponse};

use hato_storage::{LogStore, NodeId, NodeInfo, StateMachineStore, TypeConfig};

/// The Raft node type.
pub type Raft = openraft::Raft<TypeConfig>;

/// Largest gRPC message accepted between nodes (append batches carry message bodies).
pub const MAX_RPC_BYTES: usize = 256 << 20;

/// Largest HTTP/2 frame each side of an internode connection accepts, and so the largest the
/// other side sends. HTTP/2's default, 16 KB, split every 100 KB message body into seven DATA
/// frames, each its own `writev` and wake-up of the receiver: a three-node cluster taking
/// 711 msg/s of 100 KB made 20 `writev` calls per message on the leader; with 256 KB frames it
/// makes 9, and the cluster's peak rose about 4%. Not larger: frames of one stream go out
/// whole, so a heartbeat queued behind a catch-up batch waits for at most one frame.
pub const INTERNODE_FRAME_BYTES: u32 = 256 << 10;

/// Timing of the Raft protocol.
#[derive(Debug, Clone)]
pub struct RaftTiming {
    pub heartbeat: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Build a snapshot (and purge the log) every this many applied entries.
    pub snapshot_every: u64,
    /// Log entries kept after a snapshot.
    pub keep_logs_after_snapshot: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_millis(150),
            election_timeout_min: Duration::from_millis(750),
            election_timeout_max: Duration::from_millis(1500),
            snapshot_every: 50_000,
            keep_logs_after_snapshot: 1000,
        }
    }
}

/// Create the Raft node for `id` over the given stores.
pub async fn start(
    id: NodeId,
    info: NodeInfo,
    timing: &RaftTiming,
    opts: ClusterOptions,
    log: LogStore,
    sm: StateMachineStore,
) -> Result<ClusterHandle, ClusterError> {
    let config = openraft::Config {
        cluster_name: "hato".into(),
        heartbeat_interval: timing.heartbeat.as_millis() as u64,
        election_timeout_min: timing.election_timeout_min.as_millis() as u64,
        election_timeout_max: timing.election_timeout_max.as_millis() as u64,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(timing.snapshot_every),
        // Keep enough log after a snapshot for a briefly-down follower to catch up from the
        // log; longer outages catch up by snapshot.
        max_in_snapshot_log_to_keep: timing.keep_logs_after_snapshot,
        purge_batch_size: timing.snapshot_every.clamp(1, 256),
        snapshot_max_chunk_size: 1 << 20,
        // Each snapshot chunk is one RPC bounded by this (openraft's default, 200 ms, is too
        // short for a megabyte on a busy node: a joining node then never caught up).
        install_snapshot_timeout: 20_000,
        // A joining node is promoted to voter only once it is this close to the leader's log
        // (default 5000 entries: a young cluster promoted nodes that had nothing yet).
        replication_lag_threshold: 100,
        ..Default::default()
    };
    let config = Arc::new(
        config
            .validate()
            .map_err(|e| ClusterError::Invalid(format!("raft config: {e}")))?,
    );
    let network = network::NetworkFactory;
    let raft = openraft::Raft::new(id, config, network, log, sm.clone())
        .await
        .map_err(|e| ClusterError::Raft(e.to_string()))?;
    Ok(ClusterHandle::new(id, info, raft, sm, opts))
}

/// The proposer's wall clock in milliseconds since the Unix epoch: the time commands carry
/// (apply never reads a clock of its own).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Serve the Raft and Cluster services on `listener` until `shutdown` resolves.
pub async fn serve(
    handle: ClusterHandle,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ClusterError> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
    tonic::transport::Server::builder()
        .max_frame_size(INTERNODE_FRAME_BYTES)
        .add_service(InterceptedService::new(
            pb::raft_server::RaftServer::new(service::RaftService::new(handle.clone()))
                .max_decoding_message_size(MAX_RPC_BYTES)
                .max_encoding_message_size(MAX_RPC_BYTES),
            auth::check,
        ))
        .add_service(InterceptedService::new(
            pb::cluster_server::ClusterServer::new(service::ClusterService::new(handle))
                .max_decoding_message_size(MAX_RPC_BYTES)
                .max_encoding_message_size(MAX_RPC_BYTES),
            auth::check,
        ))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| ClusterError::Unavailable(format!("internode server: {e}")))
}
