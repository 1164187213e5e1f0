//! openraft's network over tonic: one lazily connected gRPC channel per peer.
//!
//! Connection failures are reported as `Unreachable` so openraft backs off from dead peers;
//! other transport failures as `NetworkError`; errors returned by the peer's Raft as
//! `RemoteError`.

use std::time::Duration;

use hato_storage::{NodeId, NodeInfo, TypeConfig};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use tonic::transport::{Channel, Endpoint};

use crate::pb::{self, raft_client::RaftClient};
use crate::MAX_RPC_BYTES;

/// Builds connections to peers.
#[derive(Clone, Default)]
pub struct NetworkFactory;

/// A connection to one peer.
pub struct Connection {
    target: NodeId,
    addr: String,
    client: Option<RaftClient<crate::auth::Conn>>,
}

/// A lazily connecting channel to `addr` (`host:port`).
pub fn channel(addr: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_millis(1000))
        .tcp_nodelay(true)
        .max_frame_size(crate::INTERNODE_FRAME_BYTES)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .connect_lazy())
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> Self::Network {
        Connection {
            target,
            addr: node.raft_addr.clone(),
            client: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Msg(String);

impl Connection {
    fn client(&mut self) -> Result<RaftClient<crate::auth::Conn>, tonic::transport::Error> {
        if self.client.is_none() {
            let c = RaftClient::with_interceptor(channel(&self.addr)?, crate::auth::AddSecret)
                .max_decoding_message_size(MAX_RPC_BYTES)
                .max_encoding_message_size(MAX_RPC_BYTES);
            self.client = Some(c);
        }
        Ok(self.client.clone().expect("client set above"))
    }

    async fn call<Req, Resp, E>(
        &mut self,
        kind: &'static str,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RPCError<NodeId, NodeInfo, E>>
    where
        Req: serde::Serialize,
        Resp: serde::de::DeserializeOwned,
        E: std::error::Error + serde::de::DeserializeOwned,
    {
        let mut client = self
            .client()
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let blob = pb::blob(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let fut = async {
            match kind {
                "append" => client.append_entries(blob).await,
                "vote" => client.vote(blob).await,
                _ => client.install_snapshot(blob).await,
            }
        };
        let resp = match tokio::time::timeout(ttl, fut).await {
            Err(_) => {
                let e = Msg(format!(
                    "{kind} to node {} timed out after {ttl:?}",
                    self.target
                ));
                return Err(RPCError::Network(NetworkError::new(&e)));
            }
            Ok(Err(status)) if status.code() == tonic::Code::Unavailable => {
                self.client = None;
                return Err(RPCError::Unreachable(Unreachable::new(&status)));
            }
            Ok(Err(status)) => return Err(RPCError::Network(NetworkError::new(&status))),
            Ok(Ok(r)) => r.into_inner(),
        };
        let decoded: Result<Resp, E> =
            pb::unblob(&resp).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        decoded.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.call("append", &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeInfo, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call("snapshot", &rpc, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeInfo, RaftError<NodeId>>> {
        self.call("vote", &rpc, option.hard_ttl()).await
    }
}
