//! The tonic services: Raft RPCs into openraft, and the Cluster service (writes, reads,
//! membership, status) that other nodes and the `hato` CLI call.

use std::pin::Pin;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::handle::ClusterHandle;
use crate::messages::{AdminEnvelope, BackupRequest, ReadEnvelope, WriteRequest};
use crate::pb::{self, Blob};

/// Serves openraft's RPCs.
pub struct RaftService {
    handle: ClusterHandle,
}

impl RaftService {
    pub fn new(handle: ClusterHandle) -> Self {
        Self { handle }
    }
}

#[tonic::async_trait]
impl pb::raft_server::Raft for RaftService {
    async fn append_entries(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let rpc = pb::unblob(req.get_ref())?;
        let res = self.handle.raft().append_entries(rpc).await;
        Ok(Response::new(pb::blob(&res)?))
    }

    async fn vote(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let rpc = pb::unblob(req.get_ref())?;
        let res = self.handle.raft().vote(rpc).await;
        Ok(Response::new(pb::blob(&res)?))
    }

    async fn install_snapshot(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let rpc = pb::unblob(req.get_ref())?;
        let res = self.handle.raft().install_snapshot(rpc).await;
        Ok(Response::new(pb::blob(&res)?))
    }
}

/// Serves writes, reads, membership changes and status.
pub struct ClusterService {
    handle: ClusterHandle,
}

impl ClusterService {
    pub fn new(handle: ClusterHandle) -> Self {
        Self { handle }
    }
}

#[tonic::async_trait]
impl pb::cluster_server::Cluster for ClusterService {
    async fn write(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let w: WriteRequest = pb::unblob(req.get_ref())?;
        let res = self.handle.serve_write(w).await;
        Ok(Response::new(pb::blob(&res)?))
    }

    async fn read(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let r: ReadEnvelope = pb::unblob(req.get_ref())?;
        let res = self.handle.serve_read(r).await;
        Ok(Response::new(pb::blob(&res)?))
    }

    async fn admin(&self, req: Request<Blob>) -> Result<Response<Blob>, Status> {
        let a: AdminEnvelope = pb::unblob(req.get_ref())?;
        let res = self.handle.serve_admin(a).await;
        Ok(Response::new(pb::blob(&res)?))
    }

    async fn status(&self, _req: Request<Blob>) -> Result<Response<Blob>, Status> {
        Ok(Response::new(pb::blob(&self.handle.status())?))
    }

    type BackupStream = Pin<Box<dyn Stream<Item = Result<Blob, Status>> + Send>>;

    async fn backup(&self, req: Request<Blob>) -> Result<Response<Self::BackupStream>, Status> {
        let r: BackupRequest = pb::unblob(req.get_ref())?;
        let timeout = Duration::from_millis(r.timeout_ms);
        let (_, file) = self
            .handle
            .backup_snapshot(timeout)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut file = file;
            let mut buf = vec![0u8; BACKUP_CHUNK];
            loop {
                let item = match file.read(&mut buf).await {
                    Ok(0) => break,
                    Ok(n) => Ok(Blob {
                        data: buf[..n].to_vec().into(),
                    }),
                    Err(e) => Err(Status::internal(format!("read snapshot: {e}"))),
                };
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// Bytes per message of a backup stream.
const BACKUP_CHUNK: usize = 1 << 20;
