//! The write language of the state machine.
//!
//! Every state change in Hato is one of these commands, proposed through Raft and applied by
//! the state machine. Commands carry everything apply needs (including timestamps chosen by the
//! proposer), so applying them is deterministic on every node. Validate input *before*
//! proposing: apply never fails for bad user input, it records what the command says.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A replicated state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Set a cluster-wide setting (`value` is a JSON document).
    PutSetting { key: String, value: String },
    /// Set a setting only if it does not exist yet (first writer wins).
    PutSettingIfAbsent { key: String, value: String },
    /// Remove a cluster-wide setting.
    DeleteSetting { key: String },
    /// Put an address on the block list (`at_ms`: proposer's wall clock, ms since epoch).
    Block {
        address: String,
        reason: String,
        at_ms: u64,
    },
    /// Take an address off the block list.
    Unblock { address: String },
    /// Accept a message into the queue: body stored once, one queue entry and one `queued`
    /// delivery-log record per recipient; recipients on the block list (checked at apply, so
    /// the check is ordered with block/unblock writes) are recorded as `blocked` instead of
    /// queued. Applying the same message id twice changes nothing (retries are safe).
    Enqueue(Box<NewMessage>),
    /// Several commands in one log entry, applied in order as if they were consecutive
    /// entries (group commit: one fsync and one replication round for all of them). Answers
    /// `CommandResult::Batch` with each command's result. Never holds a `Purge`.
    Batch(Vec<Command>),
    /// A delivery worker asks for leases on queued recipients. Granted for each item that is
    /// still pending, due at `at_ms`, and not leased by another node (or whose lease expired
    /// by `at_ms`); a recipient found on the block list is finalised as `blocked` instead.
    Claim(Box<Claim>),
    /// A delivery worker reports what happened to recipients it attempted (one Raft write
    /// for a whole batch).
    Complete(Box<Complete>),
    /// Make pending recipients of these messages due at `at_ms` (operator "retry now").
    /// Recipients leased to a node are left alone: they are being attempted already.
    Retry { ids: Vec<String>, at_ms: u64 },
    /// Remove a message's pending recipients from the queue (operator "delete"); each is
    /// recorded as `failed` with the reason "deleted". Finished recipients are untouched.
    DeleteQueued { id: String, at_ms: u64, by: String },
    /// A bounce mail (DSN) for a recipient we sent to, matched through its VERP return path.
    /// A pending recipient fails; one already delivered gets a bounce record (not counted in
    /// `failed`, as CMC does). Applying the same report twice changes nothing.
    RecordBounce(Box<BounceReport>),
    /// A mail for an inbound webhook rule, accepted by SMTP: written to the outbox.
    Inbound(Box<InboundMail>),
    /// The webhook dispatcher delivered (or gave up on) an endpoint's events up to
    /// `next_seq - 1`. The cursor only moves forward; events every endpoint has passed are
    /// removed from the outbox.
    WebhookProgress {
        endpoint: String,
        next_seq: u64,
        failure: Option<WebhookFailure>,
    },
    /// A failed console login for the account whose lock-out state is the setting `key`
    /// ([`Lockout`] as JSON): counted in apply, so parallel guesses through any node are all
    /// counted. Returns `Changed(true)` when the account is locked after it.
    LoginFailed { key: String, at_ms: u64 },
    /// Retention: remove records older than `before_ms` (0: none): delivery-log and bounce
    /// records, per-minute counters and audit entries (all at once), and finished messages
    /// (metadata and body; messages with a pending recipient are kept), examining at most
    /// `max_messages` messages after the id `after`. Daily statistics and block records stay.
    /// Per-minute counters are also removed before `minutes_before_ms` (they only feed the
    /// console's recent graph).
    Purge {
        before_ms: u64,
        minutes_before_ms: u64,
        after: Option<String>,
        max_messages: u32,
    },
    /// [`Command::Enqueue`], with every recipient leased at once to the accepting `node` for
    /// `lease_ms` from `received_ms`, so that node delivers the message straight from memory
    /// without a separate `Claim` (one Raft write per message instead of two). The leases are
    /// granted only if no recipient is on the block list and the message is new; otherwise
    /// this is a plain `Enqueue` (the result tells: `blocked == 0 && !duplicate`).
    EnqueueLeased {
        message: Box<NewMessage>,
        node: u64,
        lease_ms: u64,
    },
}

/// What a bounce mail said about one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BounceReport {
    pub id: String,
    pub rcpt: u32,
    /// When the bounce arrived (proposer's clock).
    pub at_ms: u64,
    /// Sisimai reason name.
    pub reason: String,
    /// CMC bounce code.
    pub code: u16,
    /// Enhanced status code from the DSN, if any.
    pub status: String,
    /// Diagnostic text.
    pub detail: String,
    /// The remote MTA that reported it.
    pub remote: String,
}

/// Auto-block policy (setting `autoblock/rules`, JSON). Failures (synchronous 5xx, expiry,
/// bounce mails) are counted per address and reason; when a reason's count reaches its
/// threshold the address is blocked cluster-wide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoBlockRules {
    /// `immediate`, or `daily`: blocks take effect at the next `daily_hour_utc`:00 (CMC's
    /// default schedule is daily at 00:00).
    #[serde(default = "default_mode")]
    pub mode: String,
    #[serde(default)]
    pub daily_hour_utc: u8,
    /// Unblock automatically this many days after the block takes effect (0: never).
    #[serde(default)]
    pub watch_days: u32,
    /// Per reason (Sisimai name): whether it counts, and after how many occurrences.
    #[serde(default)]
    pub rules: std::collections::BTreeMap<String, AutoBlockRule>,
}

fn default_mode() -> String {
    "immediate".into()
}

/// One reason's rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoBlockRule {
    pub enabled: bool,
    pub threshold: u32,
}

impl Default for AutoBlockRules {
    /// Hard bounces (the address itself is bad) block at the first occurrence, immediately.
    fn default() -> Self {
        let hard = AutoBlockRule {
            enabled: true,
            threshold: 1,
        };
        Self {
            mode: default_mode(),
            daily_hour_utc: 0,
            watch_days: 0,
            rules: ["userunknown", "hostunknown", "hasmoved"]
                .into_iter()
                .map(|r| (r.to_string(), hard.clone()))
                .collect(),
        }
    }
}

impl AutoBlockRules {
    /// Check values before storing.
    pub fn validate(&self) -> Result<(), String> {
        if self.mode != "immediate" && self.mode != "daily" {
            return Err(format!("mode {:?} must be immediate or daily", self.mode));
        }
        if self.daily_hour_utc > 23 {
            return Err("daily_hour_utc must be 0-23".into());
        }
        for (reason, r) in &self.rules {
            if r.threshold == 0 {
                return Err(format!("rule {reason}: threshold must be at least 1"));
            }
        }
        Ok(())
    }

    /// When a block decided at `at_ms` takes effect.
    pub fn effective_at(&self, at_ms: u64) -> u64 {
        if self.mode != "daily" {
            return at_ms;
        }
        const DAY: u64 = 86_400_000;
        let run = (at_ms / DAY) * DAY + self.daily_hour_utc as u64 * 3_600_000;
        if run > at_ms {
            run
        } else {
            run + DAY
        }
    }
}

/// Lease request of a delivery worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The claiming node.
    pub node: u64,
    /// Proposer's clock (ms since epoch): due-ness and lease expiry are judged against it.
    pub at_ms: u64,
    /// Lease length: the lease runs until `at_ms + lease_ms`.
    pub lease_ms: u64,
    /// `(message id, recipient index)` pairs.
    pub items: Vec<(String, u32)>,
}

/// Results of delivery attempts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Complete {
    /// The node that made the attempts.
    pub node: u64,
    pub outcomes: Vec<Outcome>,
}

/// What one attempt to deliver to one recipient produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub id: String,
    pub rcpt: u32,
    /// When the attempt ended (proposer's clock).
    pub at_ms: u64,
    pub kind: OutcomeKind,
    /// Remote host as `name[ip]:port`, empty if no connection was made.
    pub remote: String,
    /// The remote reply (`250 2.0.0 Ok`) or a description of the local error.
    pub reply: String,
    /// The local (egress) address used, empty if no connection was made.
    pub egress_ip: String,
    /// The envelope sender used (VERP return path).
    pub return_path: String,
}

/// The verdict of one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutcomeKind {
    /// The remote server accepted the message.
    Succeeded,
    /// Temporary failure: try again at `next_at_ms`.
    Deferred { next_at_ms: u64 },
    /// Permanent failure, with the bounce reason (Sisimai name) and CMC bounce code.
    Failed { reason: String, code: u16 },
    /// Not attempted (the worker ran out of time or is shutting down): give the lease back.
    Release,
}

/// A message accepted by SMTP or the API, as proposed for the queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    /// Cluster-unique id chosen by the accepting node (time-ordered).
    pub id: String,
    /// Proposer's clock when the message was accepted (ms since epoch).
    pub received_ms: u64,
    /// How it arrived: `smtp` or `api`.
    pub via: String,
    /// The client's address (after PROXY protocol).
    pub source_ip: String,
    /// SMTP AUTH or API user, if authenticated.
    pub auth_user: Option<String>,
    /// The `X-Api-Data` tag, if present.
    pub api_data: Option<String>,
    /// Envelope sender (may be empty for the null reverse-path).
    pub mail_from: String,
    /// Envelope recipients, in the order given.
    pub recipients: Vec<String>,
    /// Decoded Subject (for the delivery log).
    pub subject: String,
    /// The Message-ID header, if present.
    pub message_id: Option<String>,
    /// The message as it will be delivered (headers and body). Shared, not copied, by the
    /// clones a write makes on its way through the batcher, the log cache and the hand-off.
    #[serde(with = "serde_bytes_compat")]
    pub body: Bytes,
}

/// Serialized as bytes: bincode writes them as they are, and other serializers get a byte
/// string rather than a sequence of numbers (JSON still reads either).
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: From<Vec<u8>>,
    {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = a.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_byte_buf(V).map(T::from)
    }
}

/// What applying a [`Command`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    /// Membership and blank entries, and commands with nothing to report.
    #[default]
    Ok,
    /// The command changed an existing record (`true`) or created/removed nothing (`false`).
    Changed(bool),
    /// A message was enqueued: how many recipients were queued and how many blocked;
    /// `duplicate` when the id had been applied before (nothing changed this time).
    Enqueued {
        queued: u32,
        blocked: u32,
        duplicate: bool,
    },
    /// For each claimed item, in order: whether the lease was granted.
    Claimed(Vec<bool>),
    /// How many records a batch command changed.
    Count(u32),
    /// The results of a `Command::Batch`, in order.
    Batch(Vec<CommandResult>),
    /// A purge step: messages removed, and the last message id examined (`None`: no older
    /// message is left to examine).
    Purged { deleted: u32, last: Option<String> },
}

impl Command {
    /// Short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::PutSetting { .. } => "put_setting",
            Command::PutSettingIfAbsent { .. } => "put_setting_if_absent",
            Command::DeleteSetting { .. } => "delete_setting",
            Command::Block { .. } => "block",
            Command::Unblock { .. } => "unblock",
            Command::Enqueue(_) => "enqueue",
            Command::Batch(_) => "batch",
            Command::Claim(_) => "claim",
            Command::Complete(_) => "complete",
            Command::Retry { .. } => "retry",
            Command::DeleteQueued { .. } => "delete_queued",
            Command::RecordBounce(_) => "record_bounce",
            Command::Inbound(_) => "inbound",
            Command::WebhookProgress { .. } => "webhook_progress",
            Command::Purge { .. } => "purge",
            Command::LoginFailed { .. } => "login_failed",
            Command::EnqueueLeased { .. } => "enqueue_leased",
        }
    }
}

/// A block-list record as stored in the `blocks` column family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    pub address: String,
    pub reason: String,
    /// When the block was decided.
    pub at_ms: u64,
    /// CMC bounce code of the reason (10 for a manual block).
    pub code: u16,
    /// How many failures led to it.
    pub occurred: u32,
    /// In force from this time (later than `at_ms` for daily auto-block schedules).
    pub effective_at_ms: u64,
    /// Lifted automatically at this time (auto-block watch period), if set.
    pub expires_at_ms: Option<u64>,
    /// Set by the auto-block rules rather than an operator.
    pub auto: bool,
}

impl BlockRecord {
    /// Whether the block applies at `at_ms`.
    pub fn active_at(&self, at_ms: u64) -> bool {
        self.effective_at_ms <= at_ms && self.expires_at_ms.is_none_or(|e| at_ms < e)
    }
}

/// Where a recipient of a queued message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecipientStatus {
    /// Waiting for delivery (first attempt or retry).
    Queued,
    /// On the block list: never delivered.
    Blocked,
    /// Accepted by the remote server.
    Succeeded,
    /// Permanently failed (bounced, expired or deleted).
    Failed,
}

impl RecipientStatus {
    /// Lower-case name as used in the delivery log and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientStatus::Queued => "queued",
            RecipientStatus::Blocked => "blocked",
            RecipientStatus::Succeeded => "succeeded",
            RecipientStatus::Failed => "failed",
        }
    }
}

/// Delivery state of a pending recipient (`w/` records in the queue column family).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkItem {
    /// Not attempted before this time (ms since epoch).
    pub next_at_ms: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// The node delivering it now, if any.
    pub lease: Option<Lease>,
    /// The last attempt's reply, for operators.
    pub last_reply: String,
}

impl WorkItem {
    /// When this item shows up in the due index: the lease expiry while leased, else the
    /// next attempt time.
    pub fn due_ms(&self) -> u64 {
        self.lease.as_ref().map_or(self.next_at_ms, |l| l.until_ms)
    }
}

/// A delivery lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub node: u64,
    pub until_ms: u64,
}

/// A bounce: a recipient that permanently failed (synchronous 5xx, expiry, or a bounce mail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BounceRecord {
    pub at_ms: u64,
    pub message: String,
    pub recipient: String,
    pub mail_from: String,
    pub return_path: String,
    pub subject: String,
    pub message_id: Option<String>,
    pub api_data: Option<String>,
    /// Sisimai reason name (`userunknown`, `expired`, ...).
    pub reason: String,
    /// CMC bounce code (1-11, 99).
    pub code: u16,
    /// The remote reply or diagnostic text.
    pub detail: String,
}

/// A message's metadata in the queue (the body is stored separately, once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    pub id: String,
    pub received_ms: u64,
    pub via: String,
    pub source_ip: String,
    pub auth_user: Option<String>,
    pub api_data: Option<String>,
    pub mail_from: String,
    pub subject: String,
    pub message_id: Option<String>,
    pub size: u64,
    pub recipients: Vec<RecipientState>,
}

/// One recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientState {
    pub address: String,
    pub status: RecipientStatus,
}

/// One delivery-log record: `queued` and `blocked` at acceptance; `succeeded`, `deferred`,
/// `failed` (and `blocked`) for each delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub at_ms: u64,
    pub message: String,
    pub recipient: String,
    pub mail_from: String,
    pub status: String,
    pub source_ip: String,
    pub subject: String,
    pub api_data: Option<String>,
    pub detail: String,
    /// The Message-ID header.
    pub message_id: Option<String>,
    /// Remote host of an attempt (`name[ip]:port`).
    pub remote: String,
    /// The remote reply of an attempt.
    pub reply: String,
    /// The egress address of an attempt (CMC `senderIp`).
    pub egress_ip: String,
    /// The envelope sender used for the attempt (CMC `returnPath`).
    pub return_path: String,
    /// Bounce reason of a `failed` record (Sisimai name), else empty.
    pub reason: String,
    /// The node that made the attempt (0 for acceptance records).
    pub node: u64,
}

/// Setting that lists the webhook endpoints (JSON array of [`WebhookEndpoint`]). One key for
/// all endpoints, so apply can read it deterministically in the middle of a batch.
pub const WEBHOOK_ENDPOINTS: &str = "webhook/endpoints";

/// Event kinds an endpoint can subscribe to: delivery statuses, `bounced`, `blocks`.
pub const EVENT_KINDS: [&str; 6] = [
    "queued",
    "succeeded",
    "failed",
    "deferred",
    "bounced",
    "blocks",
];

/// A webhook endpoint, the events it wants, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub name: String,
    pub url: String,
    /// Subset of [`EVENT_KINDS`].
    #[serde(default)]
    pub events: Vec<String>,
    /// `form` (CMC's default: `event` as a JSON string field) or `json`; inbound mail is sent
    /// as `json` (no files) or `multipart` (with attachments).
    #[serde(default = "default_format")]
    pub format: String,
    /// How the endpoint authenticates us.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<WebhookAuth>,
    /// HMAC-SHA256 keys; every request is signed with each (add the new key, then remove the
    /// old one to rotate).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// The `server_composition` value sent in payloads.
    #[serde(default = "default_composition")]
    pub server_composition: String,
    /// Inbound rules: mail to these addresses or domains is posted here.
    #[serde(default)]
    pub inbound: Vec<InboundRule>,
    /// Flush a batch after this long...
    #[serde(default = "default_batch_ms")]
    pub batch_ms: u64,
    /// ...or at this many events.
    #[serde(default = "default_batch_max")]
    pub batch_max: u32,
    /// Keep retrying a failing batch this long, then record it as failed and move on.
    #[serde(default = "default_retry_for")]
    pub retry_for_secs: u64,
}

fn default_format() -> String {
    "form".into()
}
fn default_composition() -> String {
    "hato".into()
}
fn default_batch_ms() -> u64 {
    1000
}
fn default_batch_max() -> u32 {
    100
}
fn default_retry_for() -> u64 {
    86_400
}

/// Endpoint authentication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookAuth {
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
    /// Sent as the `api_key` field of the payload (CMC).
    ApiKey(String),
}

/// Mail to `matches` (an address, or a domain for every address in it) is accepted by SMTP
/// on every node and posted to the endpoint under `filter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundRule {
    pub filter: String,
    pub matches: String,
}

impl InboundRule {
    /// Whether an envelope recipient falls under this rule.
    pub fn applies_to(&self, address: &str) -> bool {
        let m = self.matches.trim().trim_start_matches('@');
        if m.contains('@') {
            address.eq_ignore_ascii_case(m)
        } else {
            address
                .rsplit_once('@')
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(m))
        }
    }
}

/// A mail accepted for an inbound rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMail {
    pub id: String,
    pub at_ms: u64,
    pub endpoint: String,
    pub filter: String,
    pub envelope_from: String,
    pub envelope_to: String,
    #[serde(with = "serde_bytes_compat")]
    pub raw: Vec<u8>,
}

/// A webhook batch that could not be delivered within the endpoint's retry time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookFailure {
    pub endpoint: String,
    pub first_seq: u64,
    pub last_seq: u64,
    pub at_ms: u64,
    pub attempts: u32,
    pub error: String,
}

/// An event in the replicated outbox, written in the same batch as the change it reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEvent {
    /// Position in the outbox (gapless, in apply order).
    pub seq: u64,
    pub at_ms: u64,
    pub event: Event,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A delivery-log record (`queued`, `succeeded`, `failed`, `deferred`).
    Delivery(DeliveryRecord),
    /// A bounce record (including blocked recipients, code 10).
    Bounce(BounceRecord),
    /// An address was blocked (`blocked: true`) or unblocked.
    Block { blocked: bool, record: BlockRecord },
    /// A mail for an inbound rule, to post to one endpoint.
    Inbound(InboundMail),
}

impl Event {
    /// The event kind endpoints subscribe to.
    pub fn kind(&self) -> &str {
        match self {
            Event::Delivery(r) => r.status.as_str(),
            Event::Bounce(_) => "bounced",
            Event::Block { .. } => "blocks",
            Event::Inbound(_) => "inbound",
        }
    }
}

// Lock-out after repeated failed console logins. Per account: `LOGIN_MAX_FAILURES` failures
// within `LOGIN_WINDOW_MS` lock it for `LOGIN_LOCK_MS`. The state is replicated and changed
// only in apply (`Command::LoginFailed`), so the limit holds across every node behind the
// load balancer and under parallel guesses. A successful login deletes it.

pub const LOGIN_MAX_FAILURES: u32 = 5;
pub const LOGIN_WINDOW_MS: u64 = 15 * 60 * 1000;
pub const LOGIN_LOCK_MS: u64 = 15 * 60 * 1000;

/// One account's lock-out state (setting `console/lock/<name>`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lockout {
    /// Failures counted in the current window.
    pub failures: u32,
    /// When the current window began.
    pub window_start_ms: u64,
    /// Locked until this time, if locked.
    #[serde(default)]
    pub locked_until_ms: Option<u64>,
}

impl Lockout {
    /// Whether the account is locked at `now`.
    pub fn locked_at(&self, now: u64) -> bool {
        self.locked_until_ms.is_some_and(|u| now < u)
    }

    /// Record a failure at `now`; returns whether this failure locked the account.
    pub fn fail(&mut self, now: u64) -> bool {
        if self.locked_at(now) {
            return false;
        }
        if now.saturating_sub(self.window_start_ms) > LOGIN_WINDOW_MS
            || self.locked_until_ms.is_some()
        {
            *self = Lockout {
                failures: 0,
                window_start_ms: now,
                locked_until_ms: None,
            };
        }
        self.failures += 1;
        if self.failures >= LOGIN_MAX_FAILURES {
            self.locked_until_ms = Some(now + LOGIN_LOCK_MS);
            return true;
        }
        false
    }
}
