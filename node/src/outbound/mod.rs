//! Outbound delivery: every node takes part.
//!
//! Contract:
//! - A worker only attempts a recipient after a `Command::Claim` granted it a lease through
//!   Raft; claims are batched (one Raft write for up to `batch_size` recipients) and so are the
//!   results (`Command::Complete`, one write per batch of outcomes).
//! - A message accepted on this node is usually leased to it by its own enqueue
//!   (`Command::EnqueueLeased`, when the workers have room and no recipient is blocked) and
//!   handed to the workers from memory once committed ([`hato_cluster::Handoff`]): no claim,
//!   no queue scan, no read of the body. Everything else (retries, messages accepted while
//!   the workers were full, leases of a node that died) is found in the due index and claimed.
//! - A lease lasts `lease_secs`, longer than any attempt can take. A worker never starts an
//!   attempt it could not finish inside its lease, so two nodes attempt the same recipient only
//!   if one of them died (or was cut off) after the remote server's `250` and before the
//!   result was committed: that is the duplicate window. A recipient stays in this node's
//!   in-flight set until its outcome is committed, not merely attempted: the due index is
//!   read from the local copy of the state, which may not have applied the claim yet, and a
//!   recipient dropped from the set too early would be claimed and delivered again by the
//!   same node (found by the Jepsen campaign).
//! - Each recipient is its own SMTP transaction with a VERP return path
//!   (`bounce-<id>-<rcpt>@<bounce domain>`) when a bounce domain is configured. Connections
//!   are reused for later transactions to the same host.
//! - Temporary failures are retried on `retry_schedule_secs` until `expire_after_secs` after
//!   acceptance, then fail with reason `expired`; permanent (5xx) failures fail at once with
//!   the reason from the bounce classifier.
//! - The message bytes were signed (DKIM) at acceptance; delivery sends them unchanged.

mod pool;
pub mod route;
pub mod verp;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use hato_cluster::now_ms;
use hato_cluster::ClusterHandle;
use hato_smtp_client::{ClientConfig, Connection, Reply, SmtpError};
use hato_storage::command::{Claim, Complete, NewMessage, Outcome, OutcomeKind};
use hato_storage::{Command, CommandResult};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::settings::{self, Route};
use pool::{DomainLimit, Pool};
use route::{RouteError, Router};

/// Delivery settings of this node (from the `[delivery]` config section).
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    pub ehlo_name: String,
    pub max_connections: usize,
    pub max_connections_per_domain: usize,
    pub batch_size: usize,
    pub lease: Duration,
    pub retry_schedule: Vec<Duration>,
    pub expire_after: Duration,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    pub source_ips: Vec<IpAddr>,
    pub poll: Duration,
}

impl DeliveryOptions {
    /// The longest one attempt can take (connect, EHLO/STARTTLS/MAIL+RCPT, data).
    fn attempt_budget(&self) -> Duration {
        self.connect_timeout + self.command_timeout * 3 + self.data_timeout
    }
}

/// Start the delivery workers; they stop (and give back unstarted leases) when `stop` turns
/// true. The handle finishes once outcomes are recorded, or after a bounded drain time.
pub fn start(
    cluster: ClusterHandle,
    opts: DeliveryOptions,
    router: Router,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    let inflight: Inflight = Arc::default();
    let worker = Arc::new(Worker {
        node: cluster.id(),
        slots: Arc::new(Semaphore::new(opts.max_connections)),
        pool: Pool::new(),
        domains: Mutex::new(HashMap::new()),
        inflight: inflight.clone(),
        next_source: AtomicUsize::new(0),
        router,
        outcomes: tx,
        stop: stop.clone(),
        opts,
        cluster: cluster.clone(),
    });
    // Weak: the workers stop (and the committer with them) when `worker` is dropped below.
    cluster.set_handoff(Arc::new(Handoff(Arc::downgrade(&worker))));
    let committer = tokio::spawn(committer(cluster, rx, inflight, stop.clone()));
    tokio::spawn(close_idle_connections(Arc::downgrade(&worker)));
    tokio::spawn(async move {
        worker.clone().claim_loop().await;
        // Let attempts in progress finish (bounded), then flush their outcomes.
        let drain = tokio::time::Instant::now() + Duration::from_secs(10);
        while !worker.inflight.lock().expect("inflight").is_empty()
            && tokio::time::Instant::now() < drain
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let idle = worker.pool.take_all();
        drop(worker);
        pool::quit_all(idle, QUIT_ON_STOP).await;
        let _ = committer.await;
    })
}

/// How often idle pooled connections are checked against their limit.
const CLOSE_IDLE_EVERY: Duration = Duration::from_secs(5);
/// How long a stopping node waits for its idle connections' QUITs.
const QUIT_ON_STOP: Duration = Duration::from_secs(2);

/// Closes (QUIT) pooled connections once idle past their limit, until the workers are gone.
/// Without it a destination that got no more mail kept our connections open until its own
/// timeout dropped them (`smtp-sink` warned "read timeout" for each after a benchmark run).
async fn close_idle_connections(worker: std::sync::Weak<Worker>) {
    let mut every = tokio::time::interval(CLOSE_IDLE_EVERY);
    loop {
        every.tick().await;
        let Some(w) = worker.upgrade() else {
            return;
        };
        let expired = w.pool.take_expired();
        let limit = w.opts.command_timeout;
        drop(w);
        if !expired.is_empty() {
            tracing::debug!(connections = expired.len(), "closing idle connections");
            pool::quit_all(expired, limit).await;
        }
    }
}

/// Recipients (message id, recipient index) a node holds a lease for and has not recorded
/// an outcome for: added when the claim is granted, removed by the committer.
type Inflight = Arc<Mutex<HashSet<(String, u32)>>>;

/// A message being delivered: what the attempts need, shared by its recipients.
struct Loaded {
    id: String,
    received_ms: u64,
    mail_from: String,
    recipients: Vec<String>,
    body: bytes::Bytes,
}

/// Messages accepted on this node go straight to its workers (see [`hato_cluster::Handoff`]).
struct Handoff(std::sync::Weak<Worker>);

impl hato_cluster::Handoff for Handoff {
    fn lease(&self) -> Option<Duration> {
        let w = self.0.upgrade()?;
        let held = w.inflight.lock().expect("inflight").len();
        (!w.stopped() && held < w.capacity()).then_some(w.opts.lease)
    }

    fn deliver(&self, message: Box<NewMessage>, lease_until_ms: u64) {
        // Workers already gone: the lease runs out and the message is claimed then.
        let Some(w) = self.0.upgrade() else {
            return;
        };
        let NewMessage {
            id,
            received_ms,
            mail_from,
            recipients,
            body,
            ..
        } = *message;
        let n = recipients.len() as u32;
        let loaded = Arc::new(Loaded {
            id,
            received_ms,
            mail_from,
            recipients,
            body,
        });
        {
            let mut inflight = w.inflight.lock().expect("inflight");
            for rcpt in 0..n {
                inflight.insert((loaded.id.clone(), rcpt));
            }
        }
        for rcpt in 0..n {
            w.spawn_attempt(loaded.clone(), rcpt, 0, lease_until_ms);
        }
    }
}

struct Worker {
    cluster: ClusterHandle,
    node: u64,
    opts: DeliveryOptions,
    router: Router,
    pool: Pool,
    /// One permit per outbound transaction in progress on this node.
    slots: Arc<Semaphore>,
    domains: Mutex<HashMap<String, Arc<DomainLimit>>>,
    /// Recipients this node holds a lease for and whose outcome is not committed yet.
    inflight: Inflight,
    next_source: AtomicUsize,
    outcomes: mpsc::UnboundedSender<Outcome>,
    stop: watch::Receiver<bool>,
}

impl Worker {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Find due recipients in the local state machine, claim them through Raft, and start an
    /// attempt for each granted one.
    async fn claim_loop(self: Arc<Self>) {
        let cap = self.capacity();
        let mut stop = self.stop.clone();
        while !self.stopped() {
            let held = self.inflight.lock().expect("inflight").len();
            let room = cap.saturating_sub(held).min(self.opts.batch_size);
            let now = now_ms();
            let (share, nodes) = self.share();
            let due = if room == 0 {
                Vec::new()
            } else {
                match self.cluster.reader().due(now, room * nodes + held) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::error!(error = %e, "reading the due queue failed");
                        Vec::new()
                    }
                }
            };
            // Every node scans the same due index. To keep nodes from racing for the same
            // recipients, each prefers the messages that hash to its own share, and takes
            // others' only when it has room left (so an idle or dead node's share is still
            // picked up).
            let mut due: Vec<_> = {
                let inflight = self.inflight.lock().expect("inflight");
                due.into_iter()
                    .filter(|(id, r, _)| !inflight.contains(&(id.clone(), *r)))
                    .collect()
            };
            due.sort_by_key(|(id, _, _)| (fnv(id) % nodes as u64) != share as u64);
            due.truncate(room);
            if due.is_empty() {
                tokio::select! {
                    _ = tokio::time::sleep(self.opts.poll) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let claim = Claim {
                node: self.node,
                at_ms: now,
                lease_ms: self.opts.lease.as_millis() as u64,
                items: due.iter().map(|(id, r, _)| (id.clone(), *r)).collect(),
            };
            match self.cluster.write(Command::Claim(Box::new(claim))).await {
                Ok(CommandResult::Claimed(granted)) => {
                    let lease_until = now + self.opts.lease.as_millis() as u64;
                    let mut n = 0;
                    for ((id, rcpt, item), ok) in due.into_iter().zip(granted) {
                        if !ok {
                            continue;
                        }
                        n += 1;
                        self.inflight
                            .lock()
                            .expect("inflight")
                            .insert((id.clone(), rcpt));
                        let Some(message) = self.load(&id) else {
                            tracing::error!(%id, "leased message is missing locally; giving the lease back");
                            let mut out = released(&id, rcpt);
                            out.at_ms = now_ms();
                            let _ = self.outcomes.send(out);
                            continue;
                        };
                        self.spawn_attempt(message, rcpt, item.attempts, lease_until);
                    }
                    if n == 0 {
                        // Another node won them all; wait for the local copy to catch up.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    tracing::debug!(claimed = n, "claimed recipients");
                }
                Ok(other) => tracing::error!(?other, "unexpected claim result"),
                Err(e) => {
                    tracing::warn!(error = %e, "claim not committed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// This node's position among the voters, and their number.
    fn share(&self) -> (usize, usize) {
        let metrics = self.cluster.raft().metrics();
        let m = metrics.borrow();
        let mut ids: Vec<u64> = m.membership_config.membership().voter_ids().collect();
        ids.sort_unstable();
        match ids.iter().position(|id| *id == self.node) {
            Some(i) => (i, ids.len()),
            None => (0, 1),
        }
    }

    fn domain_limit(&self, domain: &str, route: &Route) -> Arc<DomainLimit> {
        let max = route
            .max_connections
            .unwrap_or(self.opts.max_connections_per_domain);
        let mut m = self.domains.lock().expect("domains");
        let e = m
            .entry(domain.to_string())
            .or_insert_with(|| Arc::new(DomainLimit::new(max, route.max_per_minute)));
        if e.max() != max || e.per_minute() != route.max_per_minute {
            *e = Arc::new(DomainLimit::new(max, route.max_per_minute));
        }
        e.clone()
    }

    fn client_config(&self) -> ClientConfig {
        let source_ip = if self.opts.source_ips.is_empty() {
            None
        } else {
            let i = self.next_source.fetch_add(1, Ordering::Relaxed);
            Some(self.opts.source_ips[i % self.opts.source_ips.len()])
        };
        ClientConfig {
            ehlo_name: self.opts.ehlo_name.clone(),
            connect_timeout: self.opts.connect_timeout,
            command_timeout: self.opts.command_timeout,
            data_timeout: self.opts.data_timeout,
            source_ip,
        }
    }

    /// The most recipients in flight on this node (leased and not yet recorded).
    fn capacity(&self) -> usize {
        self.opts.max_connections * 4
    }

    /// Start an attempt for a recipient this node holds a lease for; its outcome goes to the
    /// committer, which releases it from `inflight` once recorded.
    fn spawn_attempt(
        self: &Arc<Self>,
        message: Arc<Loaded>,
        rcpt: u32,
        attempts: u32,
        lease_until: u64,
    ) {
        let w = self.clone();
        tokio::spawn(async move {
            let o = w.attempt(&message, rcpt, attempts, lease_until).await;
            if w.outcomes.send(o).is_err() {
                let key = (message.id.clone(), rcpt);
                w.inflight.lock().expect("inflight").remove(&key);
            }
        });
    }

    /// A queued message as delivery needs it, from the local state machine.
    fn load(&self, id: &str) -> Option<Arc<Loaded>> {
        let reader = self.cluster.reader();
        match (reader.message(id), reader.body(id)) {
            (Ok(Some(m)), Ok(Some(b))) => Some(Arc::new(Loaded {
                id: id.to_string(),
                received_ms: m.received_ms,
                mail_from: m.mail_from,
                recipients: m.recipients.into_iter().map(|r| r.address).collect(),
                body: b.into(),
            })),
            _ => None,
        }
    }

    /// One attempt for one leased recipient; always returns an outcome to record.
    async fn attempt(&self, msg: &Loaded, rcpt: u32, attempts: u32, lease_until: u64) -> Outcome {
        let reader = self.cluster.reader();
        let id = msg.id.as_str();
        let mut out = released(id, rcpt);
        let Some(address) = msg.recipients.get(rcpt as usize).cloned() else {
            out.at_ms = now_ms();
            return out;
        };
        out.return_path = match settings::bounce_domain(reader) {
            Some(d) => verp::encode(id, rcpt, &d),
            None => msg.mail_from.clone(),
        };
        let Some((_, domain)) = address.rsplit_once('@') else {
            out.at_ms = now_ms();
            out.reply = format!("553 5.1.3 {address:?} has no domain");
            out.kind = OutcomeKind::Failed {
                reason: "syntaxerror".into(),
                code: 9,
            };
            return out;
        };
        let domain = domain.to_ascii_lowercase();
        let route = settings::route_for(reader, &domain);
        let limit = self.domain_limit(&domain, &route);

        // Wait for a per-domain and a node-wide slot, but never past the point where the
        // attempt could outlive the lease.
        let budget = self.opts.attempt_budget().as_millis() as u64;
        let latest_start = lease_until.saturating_sub(budget + 1000);
        let wait = Duration::from_millis(latest_start.saturating_sub(now_ms()));
        let mut stop = self.stop.clone();
        let permits = tokio::select! {
            p = async {
                let d = limit.acquire().await;
                let s = self.slots.clone().acquire_owned().await;
                (d, s)
            } => Some(p),
            _ = tokio::time::sleep(wait) => None,
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some((_domain_permit, Ok(_slot))) = permits else {
            out.at_ms = now_ms();
            return out; // Release: not attempted.
        };

        let result = self
            .deliver(&domain, &route, &out.return_path, &address, &msg.body)
            .await;
        out.at_ms = now_ms();
        match result {
            Delivered::Reply {
                remote,
                egress,
                reply,
            } => {
                out.remote = remote;
                out.egress_ip = egress;
                out.reply = reply.to_line();
                out.kind = if reply.is_positive() {
                    OutcomeKind::Succeeded
                } else if reply.is_permanent() {
                    let c = hato_bounce::classify_reply(
                        reply.code,
                        reply.enhanced.as_deref(),
                        &reply.text,
                    );
                    OutcomeKind::Failed {
                        reason: c.reason.as_str().into(),
                        code: c.cmc_code,
                    }
                } else {
                    self.deferral(msg.received_ms, attempts, out.at_ms)
                };
            }
            Delivered::Permanent {
                remote,
                reason,
                code,
                detail,
            } => {
                out.remote = remote;
                out.reply = detail;
                out.kind = OutcomeKind::Failed {
                    reason: reason.into(),
                    code,
                };
            }
            Delivered::Temporary { remote, detail } => {
                out.remote = remote;
                out.reply = detail;
                out.kind = self.deferral(msg.received_ms, attempts, out.at_ms);
            }
        }
        tracing::debug!(%id, rcpt, kind = ?out.kind, reply = %out.reply, "attempt done");
        out
    }

    /// A temporary failure: retry later, or give up once the message is too old.
    fn deferral(&self, received_ms: u64, attempts: u32, now: u64) -> OutcomeKind {
        next_step(
            &self.opts.retry_schedule,
            self.opts.expire_after,
            received_ms,
            attempts,
            now,
        )
    }

    /// Resolve the destination and run one transaction on the first host that answers.
    async fn deliver(
        &self,
        domain: &str,
        route: &Route,
        return_path: &str,
        rcpt: &str,
        body: &[u8],
    ) -> Delivered {
        let dest = match self.router.resolve(domain, route).await {
            Ok(d) => d,
            Err(RouteError::NoSuchDomain(detail)) => {
                return Delivered::Permanent {
                    remote: String::new(),
                    reason: "hostunknown",
                    code: 1,
                    detail: format!("550 5.1.2 {detail}"),
                }
            }
            Err(RouteError::NullMx) => {
                return Delivered::Permanent {
                    remote: String::new(),
                    reason: "notaccept",
                    code: 7,
                    detail: format!("556 5.1.10 {domain} accepts no mail (null MX)"),
                }
            }
            Err(RouteError::Temporary(detail)) => {
                return Delivered::Temporary {
                    remote: String::new(),
                    detail: format!("451 4.4.3 {detail}"),
                }
            }
        };
        let mut last = Delivered::Temporary {
            remote: String::new(),
            detail: "451 4.4.1 no mail host could be reached".into(),
        };
        for target in &dest.targets {
            for addr in &target.addrs {
                let remote = format!("{}[{}]:{}", target.name, addr.ip(), addr.port());
                let mut pooled = self.pool.take(*addr, &target.name, dest.tls);
                let sent = loop {
                    let reused = pooled.is_some();
                    let mut conn = match pooled.take() {
                        Some(c) => c,
                        None => {
                            match Connection::connect(
                                &self.client_config(),
                                *addr,
                                &target.name,
                                dest.tls,
                            )
                            .await
                            {
                                Ok(c) => c,
                                Err(e) => break Err(e),
                            }
                        }
                    };
                    match conn.send(return_path, &[rcpt], body).await {
                        // A pooled connection the server closed while it was idle fails
                        // before the transaction starts (or says 421 at once): nothing was
                        // taken, so try again on a new connection.
                        Err(e) if reused && e.before_transaction() => continue,
                        Ok(r) if reused && r.first().is_some_and(is_closing) => continue,
                        r => break r.map(|replies| (conn, replies)),
                    }
                };
                match sent {
                    Ok((mut conn, mut replies)) => {
                        let egress = conn.local_addr().ip().to_string();
                        let reply = match replies.pop() {
                            Some(Ok(r)) => r,
                            Some(Err(r)) => r,
                            None => Reply {
                                code: 451,
                                enhanced: Some("4.3.0".into()),
                                text: "no reply for the recipient".into(),
                            },
                        };
                        let usable = reply.is_positive() || conn.reset().await.is_ok();
                        if usable {
                            self.pool.put(*addr, &target.name, dest.tls, conn);
                        }
                        return Delivered::Reply {
                            remote,
                            egress,
                            reply,
                        };
                    }
                    Err(e) => {
                        tracing::debug!(%remote, error = %e, "connection or transaction failed");
                        last = from_error(remote, &e);
                        // A refused connection, or a 5xx greeting or EHLO from one host: try
                        // the next MX.
                    }
                }
            }
        }
        last
    }
}

/// A 421 reply: the server is closing the connection (RFC 5321 §3.8).
fn is_closing(r: &Result<Reply, Reply>) -> bool {
    matches!(r, Err(r) if r.code == 421)
}

/// The outcome that gives a lease back unattempted; attempts fill in what happened.
fn released(id: &str, rcpt: u32) -> Outcome {
    Outcome {
        id: id.to_string(),
        rcpt,
        at_ms: 0,
        kind: OutcomeKind::Release,
        remote: String::new(),
        reply: String::new(),
        egress_ip: String::new(),
        return_path: String::new(),
    }
}

/// FNV-1a: a stable hash of a message id (the same on every node).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

/// The result of trying the destination's hosts.
enum Delivered {
    /// A host answered the transaction for the recipient.
    Reply {
        remote: String,
        egress: String,
        reply: Reply,
    },
    /// Nothing to retry: the domain cannot receive mail, or every host refused the session.
    Permanent {
        remote: String,
        reason: &'static str,
        code: u16,
        detail: String,
    },
    /// No host could be reached, or the session failed: retry later.
    Temporary { remote: String, detail: String },
}

fn from_error(remote: String, e: &SmtpError) -> Delivered {
    match e.reply() {
        Some(r) if e.is_permanent() => {
            let c = hato_bounce::classify_reply(r.code, r.enhanced.as_deref(), &r.text);
            Delivered::Permanent {
                remote,
                reason: c.reason.as_str(),
                code: c.cmc_code,
                detail: r.to_line(),
            }
        }
        Some(r) => Delivered::Temporary {
            remote,
            detail: r.to_line(),
        },
        None => Delivered::Temporary {
            remote,
            detail: format!("451 4.4.1 {e}"),
        },
    }
}

/// After a temporary failure of attempt number `attempts + 1`: retry on the schedule, or fail
/// with `expired` when the next try would come after the expiry.
pub fn next_step(
    schedule: &[Duration],
    expire_after: Duration,
    received_ms: u64,
    attempts: u32,
    now: u64,
) -> OutcomeKind {
    let wait = schedule
        .get(attempts as usize)
        .or(schedule.last())
        .copied()
        .unwrap_or(Duration::from_secs(300));
    let next = now + wait.as_millis() as u64;
    if next > received_ms + expire_after.as_millis() as u64 {
        OutcomeKind::Failed {
            reason: "expired".into(),
            code: 3,
        }
    } else {
        OutcomeKind::Deferred { next_at_ms: next }
    }
}

/// Record outcomes through Raft in batches: whatever arrived while the previous write was in
/// flight goes into the next one (group commit). Retries until committed, then releases the
/// recipients from `inflight`.
async fn committer(
    cluster: ClusterHandle,
    mut rx: mpsc::UnboundedReceiver<Outcome>,
    inflight: Inflight,
    stop: watch::Receiver<bool>,
) {
    const MAX_BATCH: usize = 2000;
    let node = cluster.id();
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => break,
            }
        }
        let n = batch.len();
        let keys: Vec<(String, u32)> = batch.iter().map(|o| (o.id.clone(), o.rcpt)).collect();
        let cmd = Command::Complete(Box::new(Complete {
            node,
            outcomes: batch,
        }));
        let mut tries = 0u32;
        loop {
            match cluster.write(cmd.clone()).await {
                Ok(_) => break,
                Err(e) => {
                    tries += 1;
                    tracing::warn!(error = %e, outcomes = n, "outcomes not committed; retrying");
                    if *stop.borrow() && tries >= 3 {
                        tracing::error!(
                            outcomes = n,
                            "shutting down without recording outcomes; their leases will expire and they will be retried"
                        );
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        let mut set = inflight.lock().expect("inflight");
        for k in &keys {
            set.remove(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_then_expire() {
        let s = [Duration::from_secs(60), Duration::from_secs(600)];
        let exp = Duration::from_secs(3600);
        assert_eq!(
            next_step(&s, exp, 0, 0, 1000),
            OutcomeKind::Deferred { next_at_ms: 61_000 }
        );
        assert_eq!(
            next_step(&s, exp, 0, 1, 1000),
            OutcomeKind::Deferred {
                next_at_ms: 601_000
            }
        );
        // The last interval repeats.
        assert_eq!(
            next_step(&s, exp, 0, 5, 2_000_000),
            OutcomeKind::Deferred {
                next_at_ms: 2_600_000
            }
        );
        // A retry after the expiry is not scheduled: the recipient fails.
        assert_eq!(
            next_step(&s, exp, 0, 5, 3_100_000),
            OutcomeKind::Failed {
                reason: "expired".into(),
                code: 3
            }
        );
    }
}
