//! Errors seen by users of the cluster layer.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a cluster operation did not succeed. Travels between nodes, so it is serializable.
#[derive(Debug, Clone, Error, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterError {
    /// No quorum acknowledged the write in time. The write may still commit later; callers
    /// must report a temporary failure (SMTP 451 4.3.0, HTTP 503), never success.
    #[error("no quorum: the write was not committed within {waited_ms} ms")]
    NoQuorum { waited_ms: u64 },
    /// No leader is known (election in progress, or this node is cut off).
    #[error("no leader: the cluster has no reachable leader (waited {waited_ms} ms)")]
    NoLeader { waited_ms: u64 },
    /// Asked a node that is not the leader to act as one (internal; callers retry elsewhere).
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader { leader: Option<u64> },
    /// The request was invalid (bad membership change, already initialised, ...).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A peer could not be reached.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Raft reported an error (storage failure, shutdown, ...).
    #[error("raft: {0}")]
    Raft(String),
}

/// What a failed `client_write` means for the caller. A leader that is shutting down
/// answers `Unavailable`, so a forwarding node retries with the next leader (commands are
/// idempotent) instead of failing a write that the cluster can still take.
pub(crate) fn from_write_error(
    e: &openraft::error::RaftError<
        hato_storage::NodeId,
        openraft::error::ClientWriteError<hato_storage::NodeId, hato_storage::NodeInfo>,
    >,
) -> ClusterError {
    use openraft::error::{ClientWriteError, Fatal, RaftError};
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ClusterError::NotLeader {
            leader: f.leader_id,
        },
        RaftError::Fatal(Fatal::Stopped) => {
            ClusterError::Unavailable("the leader is shutting down".into())
        }
        other => ClusterError::Raft(other.to_string()),
    }
}

impl ClusterError {
    /// True when the caller may retry later and the request might succeed.
    pub fn is_temporary(&self) -> bool {
        !matches!(self, ClusterError::Invalid(_))
    }
}
