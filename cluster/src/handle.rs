//! [`ClusterHandle`]: propose writes, read, and change membership from any node.
//!
//! Routing: a request names no node. The handle looks up the current leader in the Raft
//! metrics; if that is this node it acts locally, otherwise it sends the request to the leader
//! with `forwarded = true` (the receiver then acts only if it is the leader, so requests never
//! bounce between nodes). Until the deadline it retries when the leader is unknown, moved, or
//! unreachable. Commands must therefore be idempotent when applied twice (they carry ids chosen
//! by the proposer), because a forwarded request whose reply was lost may be retried.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hato_storage::command::NewMessage;
use hato_storage::types::SnapshotMeta;
use hato_storage::{Command, CommandResult, NodeId, NodeInfo, ReadView, StateMachineStore};
use openraft::error::{ChangeMembershipError, ClientWriteError, InitializeError, RaftError};
use openraft::{ChangeMembers, ServerState};

use crate::error::ClusterError;
use crate::group_commit;
use crate::messages::{
    AdminEnvelope, AdminRequest, AdminResponse, NodeStatus, ReadEnvelope, ReadRequest,
    ReadResponse, WriteRequest,
};
use crate::pb::{self, cluster_client::ClusterClient};
use crate::{Raft, MAX_RPC_BYTES};

/// Time limits of cluster operations.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// How long a write may wait for a leader and a quorum commit.
    pub write_timeout: Duration,
    /// How long a membership change may take (a joining node may need a snapshot first).
    pub admin_timeout: Duration,
    /// A leader that has not heard from a quorum for this long reports itself not ready.
    pub quorum_stale_after: Duration,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            write_timeout: Duration::from_secs(5),
            admin_timeout: Duration::from_secs(60),
            quorum_stale_after: Duration::from_secs(3),
        }
    }
}

/// A cheap, cloneable handle to this node's Raft and the cluster behind it.
#[derive(Clone)]
pub struct ClusterHandle {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    info: NodeInfo,
    raft: Raft,
    reader: ReadView,
    /// The state machine, for the snapshot file a backup streams.
    sm: StateMachineStore,
    opts: ClusterOptions,
    peers: Mutex<HashMap<String, ClusterClient<crate::auth::Conn>>>,
    batcher: group_commit::Batcher,
    /// This node's delivery workers, once started (see [`Handoff`]).
    handoff: OnceLock<Arc<dyn Handoff>>,
}

/// Takes messages accepted on this node straight to its delivery workers: the enqueue leases
/// every recipient to this node ([`Command::EnqueueLeased`]) and the workers start at once
/// from the message in memory, with no `Claim` write and no read of the queue.
pub trait Handoff: Send + Sync {
    /// The lease to ask for with the next accepted message, or `None` when the workers have
    /// no room for it now (it then waits in the queue like any other).
    fn lease(&self) -> Option<Duration>;
    /// The message was committed with its recipients leased to this node until
    /// `lease_until_ms`: deliver it.
    fn deliver(&self, message: Box<NewMessage>, lease_until_ms: u64);
}

/// A connected client for the Cluster service of the node at `addr` (used by peers and the CLI).
pub fn cluster_client(addr: &str) -> Result<ClusterClient<crate::auth::Conn>, ClusterError> {
    let ch = crate::network::channel(addr)
        .map_err(|e| ClusterError::Unavailable(format!("{addr}: {e}")))?;
    Ok(ClusterClient::with_interceptor(ch, crate::auth::AddSecret)
        .max_decoding_message_size(MAX_RPC_BYTES)
        .max_encoding_message_size(MAX_RPC_BYTES))
}

fn status_err(addr: &str, s: tonic::Status) -> ClusterError {
    ClusterError::Unavailable(format!("{addr}: {}", s.message()))
}

fn ms_of(d: Duration) -> u64 {
    d.as_millis() as u64
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Call one Cluster RPC on `addr`, bounded by `timeout`. A timeout means the outcome is
/// unknown, reported as `NoQuorum`.
async fn call<Req, Resp, F, Fut>(
    client: ClusterClient<crate::auth::Conn>,
    addr: &str,
    req: &Req,
    timeout: Duration,
    f: F,
) -> Result<Resp, ClusterError>
where
    Req: serde::Serialize,
    Resp: serde::de::DeserializeOwned,
    F: FnOnce(ClusterClient<crate::auth::Conn>, pb::Blob) -> Fut,
    Fut: Future<Output = Result<tonic::Response<pb::Blob>, tonic::Status>>,
{
    let blob = pb::blob(req).map_err(|s| status_err(addr, s))?;
    match tokio::time::timeout(timeout, f(client, blob)).await {
        Err(_) => Err(ClusterError::NoQuorum {
            waited_ms: ms(timeout),
        }),
        Ok(Err(s)) => Err(status_err(addr, s)),
        Ok(Ok(r)) => {
            let res: Result<Resp, ClusterError> =
                pb::unblob(r.get_ref()).map_err(|s| status_err(addr, s))?;
            res
        }
    }
}

/// Client-side helpers for talking to one node (the `hato` CLI uses these).
pub mod remote {
    use super::*;

    /// Ask the node at `addr` to apply `command` (it forwards to the leader).
    pub async fn write(
        addr: &str,
        command: Command,
        timeout: Duration,
    ) -> Result<CommandResult, ClusterError> {
        let req = WriteRequest {
            command,
            timeout_ms: ms(timeout),
            forwarded: false,
        };
        let c = cluster_client(addr)?;
        call(
            c,
            addr,
            &req,
            timeout + Duration::from_secs(1),
            |mut c, b| async move { c.write(b).await },
        )
        .await
    }

    /// Read through the node at `addr`.
    pub async fn read(
        addr: &str,
        request: ReadRequest,
        linearizable: bool,
        timeout: Duration,
    ) -> Result<ReadResponse, ClusterError> {
        let req = ReadEnvelope {
            request,
            linearizable,
            timeout_ms: ms(timeout),
            forwarded: false,
        };
        let c = cluster_client(addr)?;
        call(
            c,
            addr,
            &req,
            timeout + Duration::from_secs(1),
            |mut c, b| async move { c.read(b).await },
        )
        .await
    }

    /// Change membership through the node at `addr`.
    pub async fn admin(
        addr: &str,
        request: AdminRequest,
        timeout: Duration,
    ) -> Result<AdminResponse, ClusterError> {
        let req = AdminEnvelope {
            request,
            timeout_ms: ms(timeout),
            forwarded: false,
        };
        let c = cluster_client(addr)?;
        call(
            c,
            addr,
            &req,
            timeout + Duration::from_secs(1),
            |mut c, b| async move { c.admin(b).await },
        )
        .await
    }

    /// Stream a fresh snapshot of the node at `addr` into `out` (created; must not exist).
    /// Returns the bytes written. The caller checks the file (`snapshot::verify_file`).
    pub async fn backup(
        addr: &str,
        out: &std::path::Path,
        timeout: Duration,
    ) -> Result<u64, ClusterError> {
        use tokio::io::AsyncWriteExt;
        let io = |e: std::io::Error| ClusterError::Invalid(format!("{}: {e}", out.display()));
        let mut c = cluster_client(addr)?;
        let req = crate::messages::BackupRequest {
            timeout_ms: ms(timeout),
        };
        let blob = pb::blob(&req).map_err(|s| status_err(addr, s))?;
        let mut stream = c
            .backup(blob)
            .await
            .map_err(|s| status_err(addr, s))?
            .into_inner();
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(out)
            .await
            .map_err(io)?;
        let mut n = 0u64;
        while let Some(chunk) = stream.message().await.map_err(|s| status_err(addr, s))? {
            f.write_all(&chunk.data).await.map_err(io)?;
            n += chunk.data.len() as u64;
        }
        f.sync_all().await.map_err(io)?;
        Ok(n)
    }

    /// The status of the node at `addr`.
    pub async fn status(addr: &str, timeout: Duration) -> Result<NodeStatus, ClusterError> {
        let mut c = cluster_client(addr)?;
        let blob = pb::blob(&()).map_err(|s| status_err(addr, s))?;
        match tokio::time::timeout(timeout, c.status(blob)).await {
            Err(_) => Err(ClusterError::Unavailable(format!(
                "{addr}: no answer within {timeout:?}"
            ))),
            Ok(Err(s)) => Err(status_err(addr, s)),
            Ok(Ok(r)) => pb::unblob(r.get_ref()).map_err(|s| status_err(addr, s)),
        }
    }
}

enum Route {
    Local,
    Remote(String),
    Unknown,
}

impl ClusterHandle {
    pub(crate) fn new(
        id: NodeId,
        info: NodeInfo,
        raft: Raft,
        sm: StateMachineStore,
        opts: ClusterOptions,
    ) -> Self {
        let raft_for_batches = raft.clone();
        Self {
            inner: Arc::new(Inner {
                id,
                info,
                raft,
                reader: sm.reader(),
                sm,
                opts,
                peers: Mutex::new(HashMap::new()),
                batcher: group_commit::start(raft_for_batches),
                handoff: OnceLock::new(),
            }),
        }
    }

    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    pub fn info(&self) -> &NodeInfo {
        &self.inner.info
    }

    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    /// Local (possibly stale) reads of the replicated state.
    pub fn reader(&self) -> &ReadView {
        &self.inner.reader
    }

    pub fn options(&self) -> &ClusterOptions {
        &self.inner.opts
    }

    /// Build a snapshot of everything this node has applied and open its file (`hato backup`
    /// streams it). Waits at most `timeout` for the build.
    pub async fn backup_snapshot(
        &self,
        timeout: Duration,
    ) -> Result<(SnapshotMeta, tokio::fs::File), ClusterError> {
        let raft = &self.inner.raft;
        let applied = raft.metrics().borrow().last_applied;
        let Some(applied) = applied else {
            return Err(ClusterError::Invalid("this node has no state yet".into()));
        };
        raft.trigger()
            .snapshot()
            .await
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        raft.wait(Some(timeout))
            .metrics(
                |m| m.snapshot.is_some_and(|s| s.index >= applied.index),
                "a snapshot of the applied state",
            )
            .await
            .map_err(|e| ClusterError::Unavailable(format!("snapshot: {e}")))?;
        // A newer snapshot may replace the file between reading its record and opening it;
        // the newer one is as good, so read the record again.
        let mut last_err = None;
        for _ in 0..3 {
            let (meta, path) = hato_storage::snapshot::current_file(&self.inner.sm)
                .map_err(|e| ClusterError::Raft(e.to_string()))?
                .ok_or_else(|| ClusterError::Raft("no snapshot after building one".into()))?;
            match tokio::fs::File::open(&path).await {
                Ok(f) => return Ok((meta, f)),
                Err(e) => last_err = Some(e),
            }
        }
        Err(ClusterError::Raft(format!(
            "open snapshot: {}",
            last_err.map(|e| e.to_string()).unwrap_or_default()
        )))
    }

    fn peer(&self, addr: &str) -> Result<ClusterClient<crate::auth::Conn>, ClusterError> {
        let mut peers = self.inner.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = peers.get(addr) {
            return Ok(c.clone());
        }
        let c = cluster_client(addr)?;
        peers.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    fn route(&self) -> Route {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        match m.current_leader {
            Some(l) if l == self.inner.id => Route::Local,
            Some(l) => match m.membership_config.membership().get_node(&l) {
                Some(n) => Route::Remote(n.raft_addr.clone()),
                None => Route::Unknown,
            },
            None => Route::Unknown,
        }
    }

    /// Run `local` on the leader, wherever it is, until `timeout`.
    async fn routed<T, L, LF, R, RF>(
        &self,
        timeout: Duration,
        local: L,
        remote: R,
    ) -> Result<T, ClusterError>
    where
        L: Fn(Duration) -> LF,
        LF: Future<Output = Result<T, ClusterError>>,
        R: Fn(ClusterClient<crate::auth::Conn>, String, Duration) -> RF,
        RF: Future<Output = Result<T, ClusterError>>,
    {
        let start = Instant::now();
        let deadline = start + timeout;
        let mut reached_leader = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let waited_ms = ms(start.elapsed());
                return Err(if reached_leader {
                    ClusterError::NoQuorum { waited_ms }
                } else {
                    ClusterError::NoLeader { waited_ms }
                });
            }
            let res = match self.route() {
                Route::Local => {
                    reached_leader = true;
                    local(left).await
                }
                Route::Remote(addr) => match self.peer(&addr) {
                    Ok(c) => remote(c, addr, left).await,
                    Err(e) => Err(e),
                },
                Route::Unknown => Err(ClusterError::NoLeader { waited_ms: 0 }),
            };
            match res {
                Err(ClusterError::NotLeader { .. })
                | Err(ClusterError::Unavailable(_))
                | Err(ClusterError::NoLeader { .. }) => {
                    let pause = Duration::from_millis(50).min(left);
                    tokio::time::sleep(pause).await;
                }
                other => return other,
            }
        }
    }

    /// Register this node's delivery workers (once).
    pub fn set_handoff(&self, handoff: Arc<dyn Handoff>) {
        let _ = self.inner.handoff.set(handoff);
    }

    /// Apply `command` through the leader; `Ok` only after quorum commit and apply.
    ///
    /// A message to enqueue is leased to this node's delivery workers when they have room
    /// (see [`Handoff`]), and handed to them once committed.
    pub async fn write(&self, command: Command) -> Result<CommandResult, ClusterError> {
        let timeout = self.inner.opts.write_timeout;
        let handoff = self.inner.handoff.get();
        let lease = match (&command, handoff) {
            (Command::Enqueue(_), Some(h)) => h.lease().map(|l| (h, l)),
            _ => None,
        };
        let (handoff, lease, command) = match (lease, command) {
            (Some((h, lease)), Command::Enqueue(message)) => {
                let node = self.id();
                let lease_ms = ms(lease);
                let command = Command::EnqueueLeased {
                    message,
                    node,
                    lease_ms,
                };
                (h, lease, command)
            }
            (_, command) => return self.write_ref(&command, timeout).await,
        };
        let result = self.write_ref(&command, timeout).await;
        if let (
            Ok(CommandResult::Enqueued {
                queued: 1..,
                blocked: 0,
                duplicate: false,
            }),
            Command::EnqueueLeased { message, .. },
        ) = (&result, command)
        {
            let until = message.received_ms.saturating_add(ms(lease));
            handoff.deliver(message, until);
        }
        result
    }

    /// [`Self::write`] with an explicit time limit (and no hand-off).
    pub async fn write_with_timeout(
        &self,
        command: Command,
        timeout: Duration,
    ) -> Result<CommandResult, ClusterError> {
        self.write_ref(&command, timeout).await
    }

    async fn write_ref(
        &self,
        command: &Command,
        timeout: Duration,
    ) -> Result<CommandResult, ClusterError> {
        self.routed(
            timeout,
            |left| self.write_here(command.clone(), left),
            |c, addr, left| {
                let req = WriteRequest {
                    command: command.clone(),
                    timeout_ms: ms(left),
                    forwarded: true,
                };
                async move {
                    call(
                        c,
                        &addr,
                        &req,
                        left,
                        |mut c, b| async move { c.write(b).await },
                    )
                    .await
                }
            },
        )
        .await
    }

    /// Apply `command` if this node is the leader. Messages to enqueue and delivery outcomes
    /// go through the group commit ([`group_commit`]): those arriving while a write is in
    /// flight share the next log entry.
    pub async fn write_here(
        &self,
        command: Command,
        timeout: Duration,
    ) -> Result<CommandResult, ClusterError> {
        if matches!(
            command,
            Command::Enqueue(_) | Command::EnqueueLeased { .. } | Command::Complete(_)
        ) {
            return match tokio::time::timeout(timeout, self.inner.batcher.write(command)).await {
                Err(_) => Err(ClusterError::NoQuorum {
                    waited_ms: ms(timeout),
                }),
                Ok(r) => r,
            };
        }
        match tokio::time::timeout(timeout, self.inner.raft.client_write(command)).await {
            Err(_) => Err(ClusterError::NoQuorum {
                waited_ms: ms(timeout),
            }),
            Ok(Ok(resp)) => Ok(resp.data),
            Ok(Err(e)) => Err(crate::error::from_write_error(&e)),
        }
    }

    /// Serve a write request that arrived over the network.
    pub(crate) async fn serve_write(
        &self,
        req: WriteRequest,
    ) -> Result<CommandResult, ClusterError> {
        let t = Duration::from_millis(req.timeout_ms);
        if req.forwarded {
            self.write_here(req.command, t).await
        } else {
            self.write_with_timeout(req.command, t).await
        }
    }

    /// Read this node's state machine (may lag the leader).
    pub fn read_local(&self, req: &ReadRequest) -> Result<ReadResponse, ClusterError> {
        let r = &self.inner.reader;
        let e = |e: hato_storage::StoreError| ClusterError::Raft(e.to_string());
        Ok(match req {
            ReadRequest::Setting { key } => ReadResponse::Setting(r.setting(key).map_err(e)?),
            ReadRequest::SettingsWithPrefix { prefix } => {
                ReadResponse::Settings(r.settings_with_prefix(prefix).map_err(e)?)
            }
            ReadRequest::Block { address } => ReadResponse::Block(r.block(address).map_err(e)?),
            ReadRequest::Blocks => ReadResponse::Blocks(r.blocks().map_err(e)?),
            ReadRequest::Deliveries { from_ms, limit } => {
                ReadResponse::Deliveries(r.deliveries(*from_ms, *limit as usize).map_err(e)?)
            }
            ReadRequest::Message { id } => ReadResponse::Message(r.message(id).map_err(e)?),
            ReadRequest::Body { id } => ReadResponse::Body(r.body(id).map_err(e)?),
            ReadRequest::Queue { after, limit } => {
                ReadResponse::Queue(r.pending(after.as_deref(), *limit as usize).map_err(e)?)
            }
            ReadRequest::WorkItems { id } => ReadResponse::WorkItems(r.work_items(id).map_err(e)?),
            ReadRequest::QueueStats => ReadResponse::QueueStats(r.queue_stats().map_err(e)?),
            ReadRequest::Bounces { from_ms, limit } => {
                ReadResponse::Bounces(r.bounces(*from_ms, *limit as usize).map_err(e)?)
            }
            ReadRequest::Events { from_seq, limit } => {
                ReadResponse::Events(r.events(*from_seq, *limit as usize).map_err(e)?)
            }
            ReadRequest::WebhookFailures { limit } => {
                ReadResponse::WebhookFailures(r.webhook_failures(*limit as usize).map_err(e)?)
            }
        })
    }

    /// A linearizable read: confirmed by the leader with a quorum, then served from the
    /// leader's state machine once it has applied everything committed before the read.
    pub async fn read(&self, req: ReadRequest) -> Result<ReadResponse, ClusterError> {
        let timeout = self.inner.opts.write_timeout;
        self.routed(
            timeout,
            |left| self.read_linearizable_here(&req, left),
            |c, addr, left| {
                let env = ReadEnvelope {
                    request: req.clone(),
                    linearizable: true,
                    timeout_ms: ms(left),
                    forwarded: true,
                };
                async move {
                    call(
                        c,
                        &addr,
                        &env,
                        left,
                        |mut c, b| async move { c.read(b).await },
                    )
                    .await
                }
            },
        )
        .await
    }

    /// A linearizable read if this node is the leader.
    pub async fn read_linearizable_here(
        &self,
        req: &ReadRequest,
        timeout: Duration,
    ) -> Result<ReadResponse, ClusterError> {
        match tokio::time::timeout(timeout, self.inner.raft.ensure_linearizable()).await {
            Err(_) => Err(ClusterError::NoQuorum {
                waited_ms: ms(timeout),
            }),
            Ok(Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(
                f,
            )))) => Err(ClusterError::NotLeader {
                leader: f.leader_id,
            }),
            Ok(Err(RaftError::APIError(openraft::error::CheckIsLeaderError::QuorumNotEnough(
                _,
            )))) => Err(ClusterError::NoQuorum {
                waited_ms: ms(timeout),
            }),
            Ok(Err(e)) => Err(ClusterError::Raft(e.to_string())),
            Ok(Ok(_)) => self.read_local(req),
        }
    }

    pub(crate) async fn serve_read(&self, env: ReadEnvelope) -> Result<ReadResponse, ClusterError> {
        let t = Duration::from_millis(env.timeout_ms);
        match (env.linearizable, env.forwarded) {
            (false, _) => self.read_local(&env.request),
            (true, true) => self.read_linearizable_here(&env.request, t).await,
            (true, false) => self.read(env.request).await,
        }
    }

    /// Change membership through the leader (`Init` acts on this node only).
    pub async fn admin(&self, req: AdminRequest) -> Result<AdminResponse, ClusterError> {
        let timeout = self.inner.opts.admin_timeout;
        if req == AdminRequest::Init {
            return self.admin_here(req, timeout).await;
        }
        self.routed(
            timeout,
            |left| self.admin_here(req.clone(), left),
            |c, addr, left| {
                let env = AdminEnvelope {
                    request: req.clone(),
                    timeout_ms: ms(left),
                    forwarded: true,
                };
                async move {
                    call(
                        c,
                        &addr,
                        &env,
                        left,
                        |mut c, b| async move { c.admin(b).await },
                    )
                    .await
                }
            },
        )
        .await
    }

    pub(crate) async fn serve_admin(
        &self,
        env: AdminEnvelope,
    ) -> Result<AdminResponse, ClusterError> {
        if env.forwarded || env.request == AdminRequest::Init {
            self.admin_here(env.request, Duration::from_millis(env.timeout_ms))
                .await
        } else {
            self.admin(env.request).await
        }
    }

    fn membership(&self) -> AdminResponse {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        let mem = m.membership_config.membership();
        AdminResponse {
            voters: mem.voter_ids().collect(),
            learners: mem.learner_ids().collect(),
        }
    }

    fn map_change_err<E: std::fmt::Display>(
        e: RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>>,
        what: E,
    ) -> ClusterError {
        match e {
            RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ClusterError::NotLeader {
                leader: f.leader_id,
            },
            RaftError::APIError(ClientWriteError::ChangeMembershipError(c)) => match c {
                ChangeMembershipError::InProgress(_) => ClusterError::Unavailable(format!(
                    "{what}: another membership change is in progress"
                )),
                other => ClusterError::Invalid(format!("{what}: {other}")),
            },
            other => ClusterError::Raft(format!("{what}: {other}")),
        }
    }

    /// Carry out a membership change on this node (it must be the leader, except for `Init`).
    pub async fn admin_here(
        &self,
        req: AdminRequest,
        timeout: Duration,
    ) -> Result<AdminResponse, ClusterError> {
        let raft = &self.inner.raft;
        let fut = async {
            if req != AdminRequest::Init && raft.current_leader().await != Some(self.inner.id) {
                return Err(ClusterError::NotLeader {
                    leader: raft.current_leader().await,
                });
            }
            match req {
                AdminRequest::Init => {
                    let members = BTreeMap::from([(self.inner.id, self.inner.info.clone())]);
                    match raft.initialize(members).await {
                        Ok(()) => {}
                        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {
                            return Err(ClusterError::Invalid(
                                "this node already belongs to a cluster".into(),
                            ))
                        }
                        Err(e) => return Err(ClusterError::Raft(e.to_string())),
                    }
                }
                AdminRequest::Join { id, node } => {
                    let cur = self.membership();
                    if !cur.voters.contains(&id) {
                        raft.add_learner(id, node, true)
                            .await
                            .map_err(|e| Self::map_change_err(e, "add learner"))?;
                        raft.change_membership(
                            ChangeMembers::AddVoterIds(BTreeSet::from([id])),
                            false,
                        )
                        .await
                        .map_err(|e| Self::map_change_err(e, "promote"))?;
                    }
                }
                AdminRequest::AddLearner { id, node } => {
                    raft.add_learner(id, node, true)
                        .await
                        .map_err(|e| Self::map_change_err(e, "add learner"))?;
                }
                AdminRequest::Promote { id } => {
                    raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                        .await
                        .map_err(|e| Self::map_change_err(e, "promote"))?;
                }
                AdminRequest::Remove { id } => {
                    let cur = self.membership();
                    if cur.voters.contains(&id) {
                        if cur.voters.len() == 1 {
                            return Err(ClusterError::Invalid(
                                "cannot remove the last voter of the cluster".into(),
                            ));
                        }
                        raft.change_membership(
                            ChangeMembers::RemoveVoters(BTreeSet::from([id])),
                            false,
                        )
                        .await
                        .map_err(|e| Self::map_change_err(e, "remove voter"))?;
                    } else if cur.learners.contains(&id) {
                        raft.change_membership(
                            ChangeMembers::RemoveNodes(BTreeSet::from([id])),
                            false,
                        )
                        .await
                        .map_err(|e| Self::map_change_err(e, "remove learner"))?;
                    } else {
                        return Err(ClusterError::Invalid(format!("node {id} is not a member")));
                    }
                }
            }
            Ok(self.membership())
        };
        match tokio::time::timeout(timeout, fut).await {
            Err(_) => Err(ClusterError::NoQuorum {
                waited_ms: ms(timeout),
            }),
            Ok(r) => r,
        }
    }

    /// This node's view of itself and the cluster.
    pub fn status(&self) -> NodeStatus {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        let mem = m.membership_config.membership();
        let voters: Vec<NodeId> = mem.voter_ids().collect();
        let learners: Vec<NodeId> = mem.learner_ids().collect();
        let nodes: BTreeMap<NodeId, NodeInfo> =
            mem.nodes().map(|(id, n)| (*id, n.clone())).collect();
        let role = match m.state {
            ServerState::Leader => "leader",
            ServerState::Candidate => "candidate",
            ServerState::Shutdown => "shutdown",
            ServerState::Learner => "learner",
            ServerState::Follower if learners.contains(&self.inner.id) => "learner",
            ServerState::Follower => "follower",
        }
        .to_string();
        let member = voters.contains(&self.inner.id) || learners.contains(&self.inner.id);
        let last = m.last_log_index;
        let replication_lag = m
            .replication
            .as_ref()
            .map(|r| {
                r.iter()
                    .map(|(id, matched)| {
                        let lag = match (last, matched) {
                            (Some(l), Some(mt)) => Some(l.saturating_sub(mt.index)),
                            (Some(l), None) => Some(l + 1),
                            _ => None,
                        };
                        (*id, lag)
                    })
                    .collect()
            })
            .unwrap_or_default();
        NodeStatus {
            id: self.inner.id,
            raft_addr: self.inner.info.raft_addr.clone(),
            http_addr: self.inner.info.http_addr.clone(),
            role,
            leader_id: m.current_leader,
            leader_http_addr: m
                .current_leader
                .and_then(|l| nodes.get(&l).map(|n| n.http_addr.clone())),
            term: m.current_term,
            last_log_index: last,
            last_applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            voters,
            learners,
            nodes,
            replication_lag,
            millis_since_quorum_ack: m.millis_since_quorum_ack,
            ready: member
                && m.current_leader.is_some()
                && m.running_state.is_ok()
                && (m.state != ServerState::Leader
                    || m.millis_since_quorum_ack
                        .is_some_and(|ms| ms < ms_of(self.inner.opts.quorum_stale_after))),
        }
    }
}
