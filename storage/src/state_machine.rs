//! The replicated state machine on RocksDB.
//!
//! Contract: `apply` turns a run of committed entries into exactly one `WriteBatch` that holds
//! every data change, the last membership and `last_applied`. Commands are applied by
//! [`apply_command`], the one place where replicated state is written. Apply is deterministic:
//! it reads only the database and the command (never the clock of the applying node).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{AnyError, EntryPayload, RaftSnapshotBuilder, StorageIOError};
use rocksdb::{WriteBatch, DB};

use crate::command::{
    AutoBlockRules, BlockRecord, BounceRecord, BounceReport, Claim, Command, CommandResult,
    Complete, DeliveryRecord, Event, Lease, MessageMeta, NewMessage, OutboxEvent, OutcomeKind,
    RecipientState, RecipientStatus, WebhookEndpoint, WorkItem, WEBHOOK_ENDPOINTS,
};
use crate::keys::{
    self, CF_BLOCKS, CF_BODIES, CF_BOUNCES, CF_DELIVERY_LOG, CF_OUTBOX, CF_QUEUE, CF_SETTINGS,
    CF_SM_META, CF_STATS,
};
use crate::read::ReadView;
use crate::snapshot;
use crate::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

/// The state machine. Cheap to clone: clones share the database.
#[derive(Clone)]
pub struct StateMachineStore {
    pub(crate) db: Arc<DB>,
    pub(crate) snap_dir: PathBuf,
    /// Serialises updates of the current-snapshot record (build and install may overlap).
    pub(crate) snap_lock: Arc<std::sync::Mutex<()>>,
    /// The last applied index, shared with the log store: entries applied are no longer
    /// kept in its memory (see `log_store::Recent`).
    pub(crate) applied: Arc<std::sync::atomic::AtomicU64>,
}

pub(crate) fn sm_read_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_state_machine(AnyError::new(&e)).into()
}

pub(crate) fn sm_write_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_state_machine(AnyError::new(&e)).into()
}

/// A write batch plus an overlay of what it has written, so commands applied later in the same
/// batch see the effects of earlier ones.
pub(crate) struct Txn<'a> {
    db: &'a DB,
    batch: WriteBatch,
    overlay: HashMap<(&'static str, Vec<u8>), Option<Vec<u8>>>,
    /// Parsed webhook endpoints, with the raw setting they were parsed from.
    endpoints: Option<(Option<Vec<u8>>, Vec<WebhookEndpoint>)>,
}

impl<'a> Txn<'a> {
    fn new(db: &'a DB) -> Self {
        Self {
            db,
            batch: WriteBatch::default(),
            overlay: HashMap::new(),
            endpoints: None,
        }
    }

    fn cf(&self, name: &'static str) -> &'a rocksdb::ColumnFamily {
        self.db.cf_handle(name).expect("known column family")
    }

    pub(crate) fn get(
        &self,
        cf: &'static str,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some(v) = self.overlay.get(&(cf, key.to_vec())) {
            return Ok(v.clone());
        }
        self.db.get_cf(self.cf(cf), key).map_err(sm_read_err)
    }

    pub(crate) fn put(&mut self, cf: &'static str, key: Vec<u8>, value: Vec<u8>) {
        self.batch.put_cf(self.cf(cf), &key, &value);
        self.overlay.insert((cf, key), Some(value));
    }

    /// Put a value no command reads back through the transaction (message bodies): written to
    /// the batch straight from `value`, without the overlay's copy.
    pub(crate) fn put_unread(&mut self, cf: &'static str, key: Vec<u8>, value: &[u8]) {
        self.batch.put_cf(self.cf(cf), &key, value);
        self.overlay.remove(&(cf, key));
    }

    /// Delete the keys `from..to` of `cf` (not reflected in the overlay: only for records
    /// no later command in the batch reads).
    pub(crate) fn delete_range(&mut self, cf: &'static str, from: Vec<u8>, to: Vec<u8>) {
        self.batch.delete_range_cf(self.cf(cf), from, to);
    }

    pub(crate) fn delete(&mut self, cf: &'static str, key: Vec<u8>) {
        self.batch.delete_cf(self.cf(cf), &key);
        self.overlay.insert((cf, key), None);
    }
}

/// Write a transaction with `last` as the last applied log id, to the memtables only: the
/// Raft log already holds every applied entry durably, so the state's writes skip the WAL
/// (which would otherwise write each message body a second time). The database flushes all
/// column families atomically (`db::open`), so what is on disk is always the state as of one
/// applied log id; after a crash openraft re-applies the entries after it from the log, and
/// the log store flushes before it purges entries (`LogStore::purge`).
fn commit(db: &DB, mut txn: Txn<'_>, last: LogId) -> Result<(), StorageError> {
    txn.put(
        CF_SM_META,
        keys::SM_LAST_APPLIED.to_vec(),
        bincode::serialize(&last).map_err(sm_write_err)?,
    );
    let mut wo = rocksdb::WriteOptions::default();
    wo.disable_wal(true);
    db.write_opt(txn.batch, &wo).map_err(sm_write_err)
}

/// Apply one command to the transaction. The only writer of replicated data.
pub(crate) fn apply_command(
    txn: &mut Txn<'_>,
    cmd: &Command,
) -> Result<CommandResult, StorageError> {
    Ok(match cmd {
        Command::PutSetting { key, value } => {
            let k = keys::setting_key(key);
            let existed = txn.get(CF_SETTINGS, &k)?.is_some();
            txn.put(CF_SETTINGS, k, value.as_bytes().to_vec());
            if key == WEBHOOK_ENDPOINTS {
                start_new_endpoints(txn)?;
            }
            CommandResult::Changed(existed)
        }
        Command::PutSettingIfAbsent { key, value } => {
            let k = keys::setting_key(key);
            let existed = txn.get(CF_SETTINGS, &k)?.is_some();
            if !existed {
                txn.put(CF_SETTINGS, k, value.as_bytes().to_vec());
            }
            CommandResult::Changed(existed)
        }
        Command::DeleteSetting { key } => {
            let k = keys::setting_key(key);
            let existed = txn.get(CF_SETTINGS, &k)?.is_some();
            txn.delete(CF_SETTINGS, k);
            CommandResult::Changed(existed)
        }
        Command::Block {
            address,
            reason,
            at_ms,
        } => {
            let k = keys::block_key(address);
            let existed = txn.get(CF_BLOCKS, &k)?.is_some();
            let rec = BlockRecord {
                address: address.trim().to_string(),
                reason: reason.clone(),
                at_ms: *at_ms,
                code: 10,
                occurred: 1,
                effective_at_ms: *at_ms,
                expires_at_ms: None,
                auto: false,
            };
            txn.put(
                CF_BLOCKS,
                k,
                bincode::serialize(&rec).map_err(sm_write_err)?,
            );
            emit(
                txn,
                *at_ms,
                Event::Block {
                    blocked: true,
                    record: rec,
                },
            )?;
            CommandResult::Changed(existed)
        }
        Command::Unblock { address } => {
            let k = keys::block_key(address);
            let old = txn.get(CF_BLOCKS, &k)?;
            txn.delete(CF_BLOCKS, k);
            if let Some(v) = &old {
                let record: BlockRecord = dec(v)?;
                // An unblock carries no time of its own; the block's is the best we have.
                let at = record.at_ms;
                emit(
                    txn,
                    at,
                    Event::Block {
                        blocked: false,
                        record,
                    },
                )?;
            }
            CommandResult::Changed(old.is_some())
        }
        Command::Enqueue(m) => enqueue(txn, m, None)?,
        Command::EnqueueLeased {
            message,
            node,
            lease_ms,
        } => enqueue(
            txn,
            message,
            Some(Lease {
                node: *node,
                until_ms: message.received_ms.saturating_add(*lease_ms),
            }),
        )?,
        Command::Claim(c) => claim(txn, c)?,
        Command::Complete(c) => complete(txn, c)?,
        Command::Retry { ids, at_ms } => retry(txn, ids, *at_ms)?,
        Command::DeleteQueued { id, at_ms, by } => delete_queued(txn, id, *at_ms, by)?,
        Command::RecordBounce(b) => record_bounce(txn, b)?,
        Command::Inbound(m) => {
            append_event(txn, m.at_ms, Event::Inbound((**m).clone()))?;
            CommandResult::Ok
        }
        Command::WebhookProgress {
            endpoint,
            next_seq,
            failure,
        } => webhook_progress(txn, endpoint, *next_seq, failure.as_ref())?,
        Command::Batch(cmds) => CommandResult::Batch(
            cmds.iter()
                .map(|c| apply_command(txn, c))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Command::LoginFailed { key, at_ms } => {
            let k = keys::setting_key(key);
            let mut lock: crate::command::Lockout = txn
                .get(CF_SETTINGS, &k)?
                .and_then(|v| serde_json::from_slice(&v).ok())
                .unwrap_or_default();
            lock.fail(*at_ms);
            txn.put(
                CF_SETTINGS,
                k,
                serde_json::to_vec(&lock).map_err(sm_write_err)?,
            );
            CommandResult::Changed(lock.locked_at(*at_ms))
        }
        Command::Purge {
            before_ms,
            minutes_before_ms,
            after,
            max_messages,
        } => purge(
            txn,
            *before_ms,
            *minutes_before_ms,
            after.as_deref(),
            *max_messages,
        )?,
    })
}

/// Retention (see [`Command::Purge`]). Applied in a batch of its own (see `apply`), so the
/// range deletions and the scan see exactly the state before it on every replica.
fn purge(
    txn: &mut Txn<'_>,
    before_ms: u64,
    minutes_before_ms: u64,
    after: Option<&str>,
    max_messages: u32,
) -> Result<CommandResult, StorageError> {
    txn.delete_range(
        CF_STATS,
        keys::minute_stat_key(0, ""),
        keys::minute_stat_key(minutes_before_ms.max(before_ms) / 60_000, ""),
    );
    if before_ms == 0 {
        return Ok(CommandResult::Purged {
            deleted: 0,
            last: None,
        });
    }
    let time_prefix = |ms: u64| format!("{ms:016x}").into_bytes();
    txn.delete_range(CF_DELIVERY_LOG, time_prefix(0), time_prefix(before_ms));
    txn.delete_range(CF_BOUNCES, time_prefix(0), time_prefix(before_ms));
    txn.delete_range(
        CF_SETTINGS,
        keys::setting_key("audit/"),
        keys::setting_key(&format!("audit/{before_ms:016}")),
    );
    // Finished messages, oldest first (ids begin with the acceptance time).
    let start = match after {
        Some(id) => {
            let mut k = keys::message_key(id);
            k.push(0);
            k
        }
        None => keys::message_key(""),
    };
    let cf = txn.cf(CF_QUEUE);
    let mut found = Vec::new();
    for kv in txn
        .db
        .iterator_cf(
            cf,
            rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward),
        )
        .take(max_messages as usize)
    {
        let (k, _) = kv.map_err(sm_read_err)?;
        if !k.starts_with(b"m/") {
            break;
        }
        found.push(String::from_utf8_lossy(&k[2..]).into_owned());
    }
    let (mut deleted, mut last) = (0u32, None);
    for id in found {
        // Read through the batch so messages changed earlier in it are seen as they are now.
        let Some(meta) = get_meta(txn, &id)? else {
            last = Some(id);
            continue;
        };
        if meta.received_ms >= before_ms {
            last = None;
            break;
        }
        let pending = meta
            .recipients
            .iter()
            .any(|r| r.status == RecipientStatus::Queued);
        if !pending {
            txn.delete(CF_QUEUE, keys::message_key(&id));
            txn.delete(CF_BODIES, keys::body_key(&id));
            deleted += 1;
        }
        last = Some(id);
    }
    Ok(CommandResult::Purged { deleted, last })
}

fn endpoints(txn: &Txn<'_>) -> Result<Vec<WebhookEndpoint>, StorageError> {
    Ok(txn
        .get(CF_SETTINGS, &keys::setting_key(WEBHOOK_ENDPOINTS))?
        .and_then(|v| serde_json::from_slice(&v).ok())
        .unwrap_or_default())
}

fn get_u64(txn: &Txn<'_>, cf: &'static str, key: &[u8]) -> Result<Option<u64>, StorageError> {
    Ok(match txn.get(cf, key)? {
        Some(v) if v.len() == 8 => Some(u64::from_be_bytes(v[..8].try_into().expect("8 bytes"))),
        _ => None,
    })
}

/// A newly configured endpoint starts at the end of the outbox: it gets the events raised
/// after it was added, not the history kept for other endpoints.
fn start_new_endpoints(txn: &mut Txn<'_>) -> Result<(), StorageError> {
    let next = get_u64(txn, CF_OUTBOX, keys::OUTBOX_NEXT)?.unwrap_or(0);
    for e in endpoints(txn)? {
        let k = keys::outbox_cursor_key(&e.name);
        if txn.get(CF_OUTBOX, &k)?.is_none() {
            txn.put(CF_OUTBOX, k, next.to_be_bytes().to_vec());
        }
    }
    Ok(())
}

/// The lowest cursor of the configured endpoints (events below it are delivered to all).
fn min_cursor(txn: &Txn<'_>) -> Result<Option<u64>, StorageError> {
    let mut min: Option<u64> = None;
    for e in endpoints(txn)? {
        let c = get_u64(txn, CF_OUTBOX, &keys::outbox_cursor_key(&e.name))?.unwrap_or(0);
        min = Some(min.map_or(c, |m| m.min(c)));
    }
    Ok(min)
}

fn webhook_progress(
    txn: &mut Txn<'_>,
    endpoint: &str,
    next_seq: u64,
    failure: Option<&crate::command::WebhookFailure>,
) -> Result<CommandResult, StorageError> {
    let key = keys::outbox_cursor_key(endpoint);
    let cur = get_u64(txn, CF_OUTBOX, &key)?.unwrap_or(0);
    if next_seq <= cur {
        return Ok(CommandResult::Changed(false)); // a replay, or a stale leader
    }
    let before = min_cursor(txn)?;
    txn.put(CF_OUTBOX, key, next_seq.to_be_bytes().to_vec());
    if let Some(f) = failure {
        txn.put(
            CF_OUTBOX,
            keys::outbox_failure_key(f.at_ms, &f.endpoint, f.first_seq),
            enc(f)?,
        );
    }
    if let (Some(before), Some(after)) = (before, min_cursor(txn)?) {
        for seq in before..after {
            txn.delete(CF_OUTBOX, keys::outbox_key(seq));
        }
    }
    Ok(CommandResult::Changed(true))
}

/// Write `event` to the outbox if a webhook endpoint subscribes to its kind (invariant 4:
/// in the same batch as the change it reports).
fn emit(txn: &mut Txn<'_>, at_ms: u64, event: Event) -> Result<(), StorageError> {
    let raw = txn.get(CF_SETTINGS, &keys::setting_key(WEBHOOK_ENDPOINTS))?;
    if txn.endpoints.as_ref().is_none_or(|(r, _)| *r != raw) {
        let parsed = raw
            .as_deref()
            .and_then(|v| serde_json::from_slice(v).ok())
            .unwrap_or_default();
        txn.endpoints = Some((raw, parsed));
    }
    let kind = event.kind();
    let wanted = txn
        .endpoints
        .as_ref()
        .is_some_and(|(_, eps)| eps.iter().any(|e| e.events.iter().any(|k| k == kind)));
    if !wanted {
        return Ok(());
    }
    append_event(txn, at_ms, event)
}

/// Give `event` the next outbox sequence number and store it.
fn append_event(txn: &mut Txn<'_>, at_ms: u64, event: Event) -> Result<(), StorageError> {
    let seq = match txn.get(CF_OUTBOX, keys::OUTBOX_NEXT)? {
        Some(v) if v.len() == 8 => u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
        _ => 0,
    };
    txn.put(
        CF_OUTBOX,
        keys::OUTBOX_NEXT.to_vec(),
        (seq + 1).to_be_bytes().to_vec(),
    );
    let e = OutboxEvent { seq, at_ms, event };
    txn.put(CF_OUTBOX, keys::outbox_key(seq), enc(&e)?);
    Ok(())
}

/// Store a delivery-log record and raise its event.
fn put_delivery(txn: &mut Txn<'_>, key: Vec<u8>, rec: &DeliveryRecord) -> Result<(), StorageError> {
    txn.put(CF_DELIVERY_LOG, key, enc(rec)?);
    if matches!(
        rec.status.as_str(),
        "queued" | "succeeded" | "failed" | "deferred"
    ) {
        emit(txn, rec.at_ms, Event::Delivery(rec.clone()))?;
    }
    Ok(())
}

/// The block on `address` in force at `at_ms`, if any.
fn active_block(
    txn: &Txn<'_>,
    address: &str,
    at_ms: u64,
) -> Result<Option<BlockRecord>, StorageError> {
    Ok(txn
        .get(CF_BLOCKS, &keys::block_key(address))?
        .map(|v| dec::<BlockRecord>(&v))
        .transpose()?
        .filter(|b| b.active_at(at_ms)))
}

fn autoblock_rules(txn: &Txn<'_>) -> Result<AutoBlockRules, StorageError> {
    Ok(txn
        .get(CF_SETTINGS, &keys::setting_key(keys::AUTOBLOCK_RULES))?
        .and_then(|v| serde_json::from_slice(&v).ok())
        .unwrap_or_default())
}

/// Count a permanent failure of `address` for the auto-block rules, and block the address
/// when its reason's threshold is reached (deterministic: rules and counters are replicated
/// state, the time is the proposer's).
fn note_failure(
    txn: &mut Txn<'_>,
    address: &str,
    reason: &str,
    code: u16,
    at_ms: u64,
) -> Result<(), StorageError> {
    let rules = autoblock_rules(txn)?;
    let Some(rule) = rules.rules.get(reason).filter(|r| r.enabled) else {
        return Ok(());
    };
    if active_block(txn, address, at_ms)?.is_some() {
        return Ok(());
    }
    let key = keys::failure_counter_key(address, reason);
    let count = match txn.get(CF_BOUNCES, &key)? {
        Some(v) if v.len() == 4 => u32::from_be_bytes(v[..4].try_into().expect("4 bytes")),
        _ => 0,
    } + 1;
    if count < rule.threshold {
        txn.put(CF_BOUNCES, key, count.to_be_bytes().to_vec());
        return Ok(());
    }
    txn.delete(CF_BOUNCES, key);
    let effective = rules.effective_at(at_ms);
    let rec = BlockRecord {
        address: address.trim().to_string(),
        reason: format!("auto: {reason}"),
        at_ms,
        code,
        occurred: count,
        effective_at_ms: effective,
        expires_at_ms: (rules.watch_days > 0)
            .then(|| effective + rules.watch_days as u64 * 86_400_000),
        auto: true,
    };
    txn.put(CF_BLOCKS, keys::block_key(address), enc(&rec)?);
    emit(
        txn,
        at_ms,
        Event::Block {
            blocked: true,
            record: rec,
        },
    )
}

fn record_bounce(txn: &mut Txn<'_>, b: &BounceReport) -> Result<CommandResult, StorageError> {
    let Some(mut meta) = get_meta(txn, &b.id)? else {
        return Ok(CommandResult::Count(0));
    };
    let Some(state) = meta.recipients.get(b.rcpt as usize).cloned() else {
        return Ok(CommandResult::Count(0));
    };
    let mut rec = record(&meta, b.rcpt, b.at_ms, "failed");
    rec.reason = b.reason.clone();
    rec.remote = b.remote.clone();
    rec.reply = if b.status.is_empty() {
        b.detail.clone()
    } else {
        format!("{} {}", b.status, b.detail)
    };
    match state.status {
        RecipientStatus::Queued => {
            let Some(item) = get_work(txn, &b.id, b.rcpt)? else {
                return Ok(CommandResult::Count(0));
            };
            rec.detail = format!("bounce mail: {}", b.reason);
            finalise(
                txn,
                &mut meta,
                b.rcpt,
                &item,
                RecipientStatus::Failed,
                rec,
                Some(b.code),
            )?;
        }
        RecipientStatus::Succeeded => {
            // Accepted by the remote server, bounced later. CMC lists it as a bounce but does
            // not count it in `failed`.
            rec.detail = format!("bounce mail after delivery: {}", b.reason);
            meta.recipients[b.rcpt as usize].status = RecipientStatus::Failed;
            put_bounce(txn, &meta, b.rcpt, &rec, b.code)?;
            bump(txn, b.at_ms, "bounced_after_delivery", 1)?;
            let seq = 1000 + get_work(txn, &b.id, b.rcpt)?.map_or(0, |w| w.attempts);
            log_attempt(txn, &meta, b.rcpt, seq, rec)?;
        }
        RecipientStatus::Failed | RecipientStatus::Blocked => {
            return Ok(CommandResult::Count(0));
        }
    }
    txn.put(CF_QUEUE, keys::message_key(&b.id), enc(&meta)?);
    note_failure(txn, &state.address, &b.reason, b.code, b.at_ms)?;
    Ok(CommandResult::Count(1))
}

fn put_bounce(
    txn: &mut Txn<'_>,
    meta: &MessageMeta,
    rcpt: u32,
    rec: &DeliveryRecord,
    code: u16,
) -> Result<(), StorageError> {
    let b = BounceRecord {
        at_ms: rec.at_ms,
        message: meta.id.clone(),
        recipient: rec.recipient.clone(),
        mail_from: meta.mail_from.clone(),
        return_path: rec.return_path.clone(),
        subject: meta.subject.clone(),
        message_id: meta.message_id.clone(),
        api_data: meta.api_data.clone(),
        reason: rec.reason.clone(),
        code,
        detail: if rec.reply.is_empty() {
            rec.detail.clone()
        } else {
            rec.reply.clone()
        },
    };
    bump(
        txn,
        rec.at_ms,
        &format!("{}{}", keys::REASON_COUNTER, b.reason),
        1,
    )?;
    txn.put(
        CF_BOUNCES,
        keys::bounce_key(rec.at_ms, &meta.id, rcpt),
        enc(&b)?,
    );
    emit(txn, rec.at_ms, Event::Bounce(b))
}

fn dec<T: serde::de::DeserializeOwned>(v: &[u8]) -> Result<T, StorageError> {
    bincode::deserialize(v).map_err(sm_read_err)
}

fn enc<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StorageError> {
    bincode::serialize(v).map_err(sm_write_err)
}

/// Add `n` to a statistics counter, for the UTC day and the minute of `at_ms` (the minute
/// counters feed the console's per-minute graph).
pub(crate) fn bump(
    txn: &mut Txn<'_>,
    at_ms: u64,
    counter: &str,
    n: u64,
) -> Result<(), StorageError> {
    if n == 0 {
        return Ok(());
    }
    for k in [
        keys::stat_key(keys::day_of(at_ms), counter),
        keys::minute_stat_key(at_ms / 60_000, counter),
    ] {
        let cur = match txn.get(CF_STATS, &k)? {
            Some(v) if v.len() == 8 => u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
            _ => 0,
        };
        txn.put(CF_STATS, k, (cur + n).to_be_bytes().to_vec());
    }
    Ok(())
}

/// `lease`: the accepting node delivers the recipients itself (see
/// [`Command::EnqueueLeased`]); dropped when a recipient is blocked.
fn enqueue(
    txn: &mut Txn<'_>,
    m: &NewMessage,
    lease: Option<Lease>,
) -> Result<CommandResult, StorageError> {
    let mk = keys::message_key(&m.id);
    if txn.get(CF_QUEUE, &mk)?.is_some() {
        return Ok(CommandResult::Enqueued {
            queued: 0,
            blocked: 0,
            duplicate: true,
        });
    }
    let mut recipients = Vec::with_capacity(m.recipients.len());
    let mut blocked_bounces = Vec::new();
    let (mut queued, mut blocked) = (0u32, 0u32);
    let statuses = m
        .recipients
        .iter()
        .map(|rcpt| Ok(active_block(txn, rcpt, m.received_ms)?.is_some()))
        .collect::<Result<Vec<bool>, StorageError>>()?;
    // The accepting node only delivers messages that are wholly deliverable.
    let lease = lease.filter(|_| !statuses.contains(&true));
    for (i, rcpt) in m.recipients.iter().enumerate() {
        let is_blocked = statuses[i];
        let status = if is_blocked {
            blocked += 1;
            RecipientStatus::Blocked
        } else {
            queued += 1;
            RecipientStatus::Queued
        };
        let mut rec = DeliveryRecord {
            at_ms: m.received_ms,
            message: m.id.clone(),
            recipient: rcpt.clone(),
            mail_from: m.mail_from.clone(),
            status: "queued".into(),
            source_ip: m.source_ip.clone(),
            subject: m.subject.clone(),
            api_data: m.api_data.clone(),
            detail: format!("received via {}", m.via),
            message_id: m.message_id.clone(),
            remote: String::new(),
            reply: String::new(),
            egress_ip: String::new(),
            return_path: String::new(),
            reason: String::new(),
            node: 0,
        };
        put_delivery(txn, keys::delivery_key(m.received_ms, &m.id, i, 0), &rec)?;
        if is_blocked {
            rec.status = "blocked".into();
            rec.detail = "recipient is on the block list".into();
            rec.reason = "blocked".into();
            put_delivery(txn, keys::delivery_key(m.received_ms, &m.id, i, 1), &rec)?;
            blocked_bounces.push((i as u32, rec));
        } else {
            let item = WorkItem {
                next_at_ms: m.received_ms,
                attempts: 0,
                lease: lease.clone(),
                last_reply: String::new(),
            };
            txn.put(CF_QUEUE, keys::work_key(&m.id, i as u32), enc(&item)?);
            txn.put(
                CF_QUEUE,
                keys::due_key(item.due_ms(), &m.id, i as u32),
                Vec::new(),
            );
        }
        recipients.push(RecipientState {
            address: rcpt.clone(),
            status,
        });
    }
    let meta = MessageMeta {
        id: m.id.clone(),
        received_ms: m.received_ms,
        via: m.via.clone(),
        source_ip: m.source_ip.clone(),
        auth_user: m.auth_user.clone(),
        api_data: m.api_data.clone(),
        mail_from: m.mail_from.clone(),
        subject: m.subject.clone(),
        message_id: m.message_id.clone(),
        size: m.body.len() as u64,
        recipients,
    };
    // Blocked recipients are bounces with CMC code 10.
    for (i, rec) in &blocked_bounces {
        put_bounce(txn, &meta, *i, rec, 10)?;
    }
    txn.put(CF_QUEUE, mk, enc(&meta)?);
    txn.put_unread(CF_BODIES, keys::body_key(&m.id), &m.body);
    bump(txn, m.received_ms, "received", (queued + blocked) as u64)?;
    bump(txn, m.received_ms, "queued", queued as u64)?;
    bump(txn, m.received_ms, "blocked", blocked as u64)?;
    add_pending(txn, queued as i64)?;
    Ok(CommandResult::Enqueued {
        queued,
        blocked,
        duplicate: false,
    })
}

/// Adjust the pending-recipients counter.
fn add_pending(txn: &mut Txn<'_>, delta: i64) -> Result<(), StorageError> {
    if delta == 0 {
        return Ok(());
    }
    let cur = match txn.get(CF_QUEUE, keys::QUEUE_PENDING)? {
        Some(v) if v.len() == 8 => u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
        _ => 0,
    };
    let next = (cur as i64 + delta).max(0) as u64;
    txn.put(
        CF_QUEUE,
        keys::QUEUE_PENDING.to_vec(),
        next.to_be_bytes().to_vec(),
    );
    Ok(())
}

fn get_work(txn: &Txn<'_>, id: &str, rcpt: u32) -> Result<Option<WorkItem>, StorageError> {
    txn.get(CF_QUEUE, &keys::work_key(id, rcpt))?
        .map(|v| dec(&v))
        .transpose()
}

fn get_meta(txn: &Txn<'_>, id: &str) -> Result<Option<MessageMeta>, StorageError> {
    txn.get(CF_QUEUE, &keys::message_key(id))?
        .map(|v| dec(&v))
        .transpose()
}

/// Store a pending item, moving its due-index entry from `old_due` to its new due time.
fn put_work(
    txn: &mut Txn<'_>,
    id: &str,
    rcpt: u32,
    old_due: u64,
    item: &WorkItem,
) -> Result<(), StorageError> {
    let new_due = item.due_ms();
    if new_due != old_due {
        txn.delete(CF_QUEUE, keys::due_key(old_due, id, rcpt));
        txn.put(CF_QUEUE, keys::due_key(new_due, id, rcpt), Vec::new());
    }
    txn.put(CF_QUEUE, keys::work_key(id, rcpt), enc(item)?);
    Ok(())
}

/// A pending recipient reached a final state: drop it from the queue, set the message's
/// recipient status, write the delivery-log record (and the bounce record for failures).
#[allow(clippy::too_many_arguments)]
fn finalise(
    txn: &mut Txn<'_>,
    meta: &mut MessageMeta,
    rcpt: u32,
    item: &WorkItem,
    status: RecipientStatus,
    mut rec: DeliveryRecord,
    bounce_code: Option<u16>,
) -> Result<(), StorageError> {
    txn.delete(CF_QUEUE, keys::due_key(item.due_ms(), &meta.id, rcpt));
    txn.delete(CF_QUEUE, keys::work_key(&meta.id, rcpt));
    add_pending(txn, -1)?;
    if let Some(r) = meta.recipients.get_mut(rcpt as usize) {
        r.status = status;
    }
    rec.status = status.as_str().into();
    let at = rec.at_ms;
    match status {
        RecipientStatus::Succeeded => bump(txn, at, "succeeded", 1)?,
        RecipientStatus::Failed => bump(txn, at, "failed", 1)?,
        RecipientStatus::Blocked => bump(txn, at, "blocked", 1)?,
        RecipientStatus::Queued => {}
    }
    if let Some(code) = bounce_code {
        put_bounce(txn, meta, rcpt, &rec, code)?;
    }
    log_attempt(txn, meta, rcpt, item.attempts + 1, rec)
}

fn log_attempt(
    txn: &mut Txn<'_>,
    meta: &MessageMeta,
    rcpt: u32,
    seq: u32,
    rec: DeliveryRecord,
) -> Result<(), StorageError> {
    put_delivery(
        txn,
        keys::delivery_key(rec.at_ms, &meta.id, rcpt as usize, seq),
        &rec,
    )
}

/// A delivery-log record for `rcpt` of `meta` with the acceptance facts filled in.
fn record(meta: &MessageMeta, rcpt: u32, at_ms: u64, status: &str) -> DeliveryRecord {
    DeliveryRecord {
        at_ms,
        message: meta.id.clone(),
        recipient: meta
            .recipients
            .get(rcpt as usize)
            .map(|r| r.address.clone())
            .unwrap_or_default(),
        mail_from: meta.mail_from.clone(),
        status: status.into(),
        source_ip: meta.source_ip.clone(),
        subject: meta.subject.clone(),
        api_data: meta.api_data.clone(),
        detail: String::new(),
        message_id: meta.message_id.clone(),
        remote: String::new(),
        reply: String::new(),
        egress_ip: String::new(),
        return_path: String::new(),
        reason: String::new(),
        node: 0,
    }
}

fn claim(txn: &mut Txn<'_>, c: &Claim) -> Result<CommandResult, StorageError> {
    let mut granted = Vec::with_capacity(c.items.len());
    for (id, rcpt) in &c.items {
        let Some(mut item) = get_work(txn, id, *rcpt)? else {
            granted.push(false);
            continue;
        };
        let held_by_other = item
            .lease
            .as_ref()
            .is_some_and(|l| l.node != c.node && l.until_ms > c.at_ms);
        if held_by_other || item.next_at_ms > c.at_ms {
            granted.push(false);
            continue;
        }
        let Some(mut meta) = get_meta(txn, id)? else {
            granted.push(false);
            continue;
        };
        let address = meta
            .recipients
            .get(*rcpt as usize)
            .map(|r| r.address.clone())
            .unwrap_or_default();
        // Invariant 5: the block list is checked again before every attempt.
        if active_block(txn, &address, c.at_ms)?.is_some() {
            let mut rec = record(&meta, *rcpt, c.at_ms, "blocked");
            rec.detail = "recipient was put on the block list while queued".into();
            rec.reason = "blocked".into();
            rec.node = c.node;
            finalise(
                txn,
                &mut meta,
                *rcpt,
                &item,
                RecipientStatus::Blocked,
                rec,
                Some(10),
            )?;
            txn.put(CF_QUEUE, keys::message_key(id), enc(&meta)?);
            granted.push(false);
            continue;
        }
        let old_due = item.due_ms();
        item.lease = Some(Lease {
            node: c.node,
            until_ms: c.at_ms.saturating_add(c.lease_ms),
        });
        put_work(txn, id, *rcpt, old_due, &item)?;
        granted.push(true);
    }
    Ok(CommandResult::Claimed(granted))
}

fn complete(txn: &mut Txn<'_>, c: &Complete) -> Result<CommandResult, StorageError> {
    let mut changed = 0u32;
    for o in &c.outcomes {
        let Some(mut item) = get_work(txn, &o.id, o.rcpt)? else {
            // Already final (another node finished it after our lease expired, or an
            // operator deleted it). A second success is a duplicate delivery: count it.
            if o.kind == OutcomeKind::Succeeded {
                bump(txn, o.at_ms, "duplicate", 1)?;
            }
            continue;
        };
        let Some(mut meta) = get_meta(txn, &o.id)? else {
            continue;
        };
        let ours = item.lease.as_ref().is_none_or(|l| l.node == c.node);
        let mut rec = record(&meta, o.rcpt, o.at_ms, "");
        rec.remote = o.remote.clone();
        rec.reply = o.reply.clone();
        rec.egress_ip = o.egress_ip.clone();
        rec.return_path = o.return_path.clone();
        rec.node = c.node;
        let old_due = item.due_ms();
        match &o.kind {
            OutcomeKind::Succeeded => {
                rec.detail = format!("delivered to {}", o.remote);
                finalise(
                    txn,
                    &mut meta,
                    o.rcpt,
                    &item,
                    RecipientStatus::Succeeded,
                    rec,
                    None,
                )?;
            }
            OutcomeKind::Failed { reason, code } => {
                rec.reason = reason.clone();
                rec.detail = format!("permanent failure: {reason}");
                let address = rec.recipient.clone();
                note_failure(txn, &address, reason, *code, o.at_ms)?;
                finalise(
                    txn,
                    &mut meta,
                    o.rcpt,
                    &item,
                    RecipientStatus::Failed,
                    rec,
                    Some(*code),
                )?;
            }
            // A deferral or release only counts from the lease holder: if the lease moved
            // on, the new holder owns the schedule.
            OutcomeKind::Deferred { .. } | OutcomeKind::Release if !ours => continue,
            OutcomeKind::Deferred { next_at_ms } => {
                item.attempts += 1;
                item.lease = None;
                item.next_at_ms = *next_at_ms;
                item.last_reply = o.reply.clone();
                rec.status = "deferred".into();
                rec.detail = format!("temporary failure, next attempt at {next_at_ms}");
                bump(txn, o.at_ms, "deferred", 1)?;
                put_work(txn, &o.id, o.rcpt, old_due, &item)?;
                log_attempt(txn, &meta, o.rcpt, item.attempts, rec)?;
                changed += 1;
                continue;
            }
            OutcomeKind::Release => {
                item.lease = None;
                put_work(txn, &o.id, o.rcpt, old_due, &item)?;
                changed += 1;
                continue;
            }
        }
        txn.put(CF_QUEUE, keys::message_key(&o.id), enc(&meta)?);
        changed += 1;
    }
    Ok(CommandResult::Count(changed))
}

fn retry(txn: &mut Txn<'_>, ids: &[String], at_ms: u64) -> Result<CommandResult, StorageError> {
    let mut changed = 0u32;
    for id in ids {
        let Some(meta) = get_meta(txn, id)? else {
            continue;
        };
        for rcpt in 0..meta.recipients.len() as u32 {
            let Some(mut item) = get_work(txn, id, rcpt)? else {
                continue;
            };
            if item.lease.is_some() || item.next_at_ms <= at_ms {
                continue;
            }
            let old_due = item.due_ms();
            item.next_at_ms = at_ms;
            put_work(txn, id, rcpt, old_due, &item)?;
            changed += 1;
        }
    }
    Ok(CommandResult::Count(changed))
}

fn delete_queued(
    txn: &mut Txn<'_>,
    id: &str,
    at_ms: u64,
    by: &str,
) -> Result<CommandResult, StorageError> {
    let Some(mut meta) = get_meta(txn, id)? else {
        return Ok(CommandResult::Count(0));
    };
    let mut changed = 0u32;
    for rcpt in 0..meta.recipients.len() as u32 {
        let Some(item) = get_work(txn, id, rcpt)? else {
            continue;
        };
        let mut rec = record(&meta, rcpt, at_ms, "failed");
        rec.reason = "deleted".into();
        rec.detail = format!("deleted from the queue by {by}");
        finalise(
            txn,
            &mut meta,
            rcpt,
            &item,
            RecipientStatus::Failed,
            rec,
            None,
        )?;
        changed += 1;
    }
    if changed > 0 {
        txn.put(CF_QUEUE, keys::message_key(id), enc(&meta)?);
    }
    Ok(CommandResult::Count(changed))
}

impl StateMachineStore {
    pub(crate) fn new(
        db: Arc<DB>,
        snap_dir: PathBuf,
        applied: Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<Self, crate::StoreError> {
        std::fs::create_dir_all(&snap_dir)?;
        for e in std::fs::read_dir(&snap_dir)?.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("incoming-") || name.starts_with("build-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let sm = Self {
            db,
            snap_dir,
            snap_lock: Arc::default(),
            applied,
        };
        snapshot::resume_interrupted_install(&sm)?;
        Ok(sm)
    }

    /// A read-only view for queries (local, possibly behind the leader).
    pub fn reader(&self) -> ReadView {
        ReadView::new(self.db.clone())
    }

    pub(crate) fn meta_get<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageError> {
        let cf = self.db.cf_handle(CF_SM_META).expect("sm_meta");
        match self.db.get_cf(cf, key).map_err(sm_read_err)? {
            None => Ok(None),
            Some(v) => Ok(Some(bincode::deserialize(&v).map_err(sm_read_err)?)),
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let last: Option<LogId> = self.meta_get(keys::SM_LAST_APPLIED)?;
        let m: Option<StoredMembership> = self.meta_get(keys::SM_MEMBERSHIP)?;
        Ok((last, m.unwrap_or_default()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let db = self.db.clone();
        let mut txn = Txn::new(&db);
        let mut results = Vec::new();
        let mut last: Option<LogId> = None;
        for entry in entries {
            // A purge deletes ranges the overlay cannot see: it gets a batch of its own, so
            // its effect does not depend on where Raft cut the run of entries.
            let alone = matches!(&entry.payload, EntryPayload::Normal(Command::Purge { .. }));
            if alone {
                if let Some(prev) = last.take() {
                    commit(&db, std::mem::replace(&mut txn, Txn::new(&db)), prev)?;
                }
            }
            last = Some(entry.log_id);
            let r = match &entry.payload {
                EntryPayload::Blank => CommandResult::Ok,
                EntryPayload::Normal(cmd) => apply_command(&mut txn, cmd)?,
                EntryPayload::Membership(m) => {
                    let sm = StoredMembership::new(Some(entry.log_id), m.clone());
                    txn.put(
                        CF_SM_META,
                        keys::SM_MEMBERSHIP.to_vec(),
                        bincode::serialize(&sm).map_err(sm_write_err)?,
                    );
                    CommandResult::Ok
                }
            };
            results.push(r);
            if alone {
                if let Some(this) = last.take() {
                    commit(&db, std::mem::replace(&mut txn, Txn::new(&db)), this)?;
                }
            }
        }
        if let Some(last) = last {
            commit(&db, txn, last)?;
            self.applied
                .store(last.index, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        snapshot::begin_receiving(self).await
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        snapshot::install(self, meta, *snapshot).await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        snapshot::current(self).await
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        snapshot::build(self).await
    }
}
