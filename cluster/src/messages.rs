//! Request and response types of the Cluster service (bincode-encoded in `Blob`s).

use std::collections::BTreeMap;

use hato_storage::command::{
    BlockRecord, BounceRecord, DeliveryRecord, MessageMeta, OutboxEvent, WebhookFailure, WorkItem,
};
use hato_storage::read::QueueStats;
use hato_storage::{Command, NodeId, NodeInfo};
use serde::{Deserialize, Serialize};

/// A write to apply through the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteRequest {
    pub command: Command,
    /// How long the leader may wait for the commit.
    pub timeout_ms: u64,
    /// Sent by a node to the leader: the receiver acts only if it is the leader.
    pub forwarded: bool,
}

/// A query of the replicated state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadRequest {
    Setting {
        key: String,
    },
    SettingsWithPrefix {
        prefix: String,
    },
    Block {
        address: String,
    },
    Blocks,
    /// Delivery-log records from `from_ms` on, oldest first.
    Deliveries {
        from_ms: u64,
        limit: u32,
    },
    /// A queued message's metadata.
    Message {
        id: String,
    },
    /// A message's stored bytes.
    Body {
        id: String,
    },
    /// Pending recipients in message order, after message id `after`.
    Queue {
        after: Option<String>,
        limit: u32,
    },
    /// The pending recipients of one message.
    WorkItems {
        id: String,
    },
    /// Queue size and age.
    QueueStats,
    /// Bounce records from `from_ms` on, oldest first.
    Bounces {
        from_ms: u64,
        limit: u32,
    },
    /// Outbox events from sequence number `from_seq` on.
    Events {
        from_seq: u64,
        limit: u32,
    },
    /// Webhook batches given up on.
    WebhookFailures {
        limit: u32,
    },
}

/// The answer to a [`ReadRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadResponse {
    Setting(Option<String>),
    Settings(Vec<(String, String)>),
    Block(Option<BlockRecord>),
    Blocks(Vec<BlockRecord>),
    Deliveries(Vec<DeliveryRecord>),
    Message(Option<MessageMeta>),
    Body(Option<Vec<u8>>),
    Queue(Vec<(String, u32, WorkItem)>),
    WorkItems(Vec<(u32, WorkItem)>),
    QueueStats(QueueStats),
    Bounces(Vec<BounceRecord>),
    Events(Vec<OutboxEvent>),
    WebhookFailures(Vec<WebhookFailure>),
}

/// A read sent to another node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadEnvelope {
    pub request: ReadRequest,
    /// Serve on the leader after confirming leadership with a quorum.
    pub linearizable: bool,
    pub timeout_ms: u64,
    /// Sent by a node to the leader: the receiver acts only if it is the leader.
    pub forwarded: bool,
}

/// A membership change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Make the receiving node a one-node cluster (only on a node that has no state yet).
    Init,
    /// Add a node as learner, wait until it caught up, then promote it to voter.
    Join { id: NodeId, node: NodeInfo },
    /// Add a node as learner (it replicates but does not vote).
    AddLearner { id: NodeId, node: NodeInfo },
    /// Promote a learner to voter.
    Promote { id: NodeId },
    /// Remove a node (voter or learner) from the cluster.
    Remove { id: NodeId },
}

/// An admin request sent to another node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminEnvelope {
    pub request: AdminRequest,
    pub timeout_ms: u64,
    /// Sent by a node to the leader: the receiver acts only if it is the leader.
    pub forwarded: bool,
}

/// Ask a node for a backup (a snapshot file of its applied state).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupRequest {
    /// How long the node may take to build the snapshot.
    pub timeout_ms: u64,
}

/// The membership after an admin request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminResponse {
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
}

/// What a node reports about itself (health, readiness, `hato cluster status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub id: NodeId,
    pub raft_addr: String,
    pub http_addr: String,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: String,
    pub leader_id: Option<NodeId>,
    pub leader_http_addr: Option<String>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub last_applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    /// On the leader: how far each follower's matched index is behind the last log index.
    pub replication_lag: BTreeMap<NodeId, Option<u64>>,
    /// On the leader: milliseconds since a quorum last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
    /// Ready to serve writes: this node is a member and knows a leader; a leader must have
    /// heard from a quorum recently (a leader cut off from its followers is not ready).
    pub ready: bool,
}
