//! Read-only views of the replicated state for queries.
//!
//! These read the local state machine: on a follower they may lag the leader by the
//! replication delay. Callers that need linearizable reads (block-list decisions, checkers)
//! first confirm leadership through the cluster layer, then read here on the leader.

use std::sync::Arc;

use rocksdb::{Direction, IteratorMode, DB};

use crate::command::{
    BlockRecord, BounceRecord, DeliveryRecord, MessageMeta, OutboxEvent, WebhookFailure, WorkItem,
};
use crate::error::StoreError;
use crate::keys::{
    self, CF_BLOCKS, CF_BODIES, CF_BOUNCES, CF_DELIVERY_LOG, CF_OUTBOX, CF_QUEUE, CF_SETTINGS,
    CF_SM_META, CF_STATS,
};
use crate::types::LogId;

/// Queue size and age, for metrics and `hato queue stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueueStats {
    /// Recipients waiting for delivery (queued or deferred, leased or not).
    pub pending: u64,
    /// Acceptance time of the oldest message with a pending recipient.
    pub oldest_received_ms: Option<u64>,
    /// When the earliest pending recipient becomes due.
    pub next_due_ms: Option<u64>,
}

/// The order in which time-ordered records are visited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    OldestFirst,
    NewestFirst,
}

/// A cheap, cloneable read handle.
#[derive(Clone)]
pub struct ReadView {
    db: Arc<DB>,
}

impl ReadView {
    pub(crate) fn new(db: Arc<DB>) -> Self {
        Self { db }
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(name).expect("known column family")
    }

    /// The last log id applied to this node's state machine.
    pub fn last_applied(&self) -> Result<Option<LogId>, StoreError> {
        match self.db.get_cf(self.cf(CF_SM_META), keys::SM_LAST_APPLIED)? {
            None => Ok(None),
            Some(v) => Ok(Some(bincode::deserialize(&v).map_err(|source| {
                StoreError::Decode {
                    what: "last_applied",
                    source,
                }
            })?)),
        }
    }

    /// A setting's value (JSON text).
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .db
            .get_cf(self.cf(CF_SETTINGS), keys::setting_key(key))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// All settings whose key starts with `prefix`, in key order.
    /// The last `limit` settings whose keys start with `prefix`, in reverse key order.
    pub fn settings_with_prefix_newest(
        &self,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut end = prefix.as_bytes().to_vec();
        end.push(0xff);
        let mut out = Vec::new();
        let it = self.db.iterator_cf(
            self.cf(CF_SETTINGS),
            IteratorMode::From(&end, Direction::Reverse),
        );
        for kv in it {
            let (k, v) = kv?;
            if !k.starts_with(prefix.as_bytes()) || out.len() >= limit {
                break;
            }
            out.push((
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            ));
        }
        Ok(out)
    }

    pub fn settings_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        let it = self.db.iterator_cf(
            self.cf(CF_SETTINGS),
            IteratorMode::From(prefix.as_bytes(), Direction::Forward),
        );
        for kv in it {
            let (k, v) = kv?;
            if !k.starts_with(prefix.as_bytes()) {
                break;
            }
            out.push((
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            ));
        }
        Ok(out)
    }

    /// The block record for an address, if it is blocked.
    pub fn block(&self, address: &str) -> Result<Option<BlockRecord>, StoreError> {
        match self
            .db
            .get_cf(self.cf(CF_BLOCKS), keys::block_key(address))?
        {
            None => Ok(None),
            Some(v) => Ok(Some(bincode::deserialize(&v).map_err(|source| {
                StoreError::Decode {
                    what: "block",
                    source,
                }
            })?)),
        }
    }

    /// Every blocked address, in address order.
    pub fn blocks(&self) -> Result<Vec<BlockRecord>, StoreError> {
        let mut out = Vec::new();
        for kv in self.db.iterator_cf(self.cf(CF_BLOCKS), IteratorMode::Start) {
            let (_, v) = kv?;
            out.push(
                bincode::deserialize(&v).map_err(|source| StoreError::Decode {
                    what: "block",
                    source,
                })?,
            );
        }
        Ok(out)
    }

    /// A queued message's metadata.
    pub fn message(&self, id: &str) -> Result<Option<MessageMeta>, StoreError> {
        match self.db.get_cf(self.cf(CF_QUEUE), keys::message_key(id))? {
            None => Ok(None),
            Some(v) => Ok(Some(bincode::deserialize(&v).map_err(|source| {
                StoreError::Decode {
                    what: "message",
                    source,
                }
            })?)),
        }
    }

    /// Visit the time-ordered records of `cf` (keys start with the 16-hex-digit ms) with
    /// `from_ms <= at < to_ms`, oldest first (or newest first), while `f` returns true. Keys
    /// starting with `~` (counters kept after the records) are not records.
    #[allow(clippy::too_many_arguments)]
    fn for_each_timed<T: serde::de::DeserializeOwned>(
        &self,
        cf: &str,
        what: &'static str,
        from_ms: u64,
        to_ms: u64,
        order: Order,
        at_ms: impl Fn(&T) -> u64,
        mut f: impl FnMut(T) -> bool,
    ) -> Result<(), StoreError> {
        let newest_first = order == Order::NewestFirst;
        let (start, dir) = if newest_first {
            (format!("{to_ms:016x}"), Direction::Reverse)
        } else {
            (format!("{from_ms:016x}"), Direction::Forward)
        };
        let it = self
            .db
            .iterator_cf(self.cf(cf), IteratorMode::From(start.as_bytes(), dir));
        for kv in it {
            let (k, v) = kv?;
            if k.starts_with(b"~") {
                if newest_first {
                    continue;
                }
                break;
            }
            let r: T = Self::decode(what, &v)?;
            let at = at_ms(&r);
            if at >= to_ms || at < from_ms || !f(r) {
                break;
            }
        }
        Ok(())
    }

    /// Visit delivery-log records with `from_ms <= at < to_ms` in `order` while `f` returns
    /// true.
    pub fn for_each_delivery(
        &self,
        order: Order,
        from_ms: u64,
        to_ms: u64,
        f: impl FnMut(DeliveryRecord) -> bool,
    ) -> Result<(), StoreError> {
        self.for_each_timed(
            CF_DELIVERY_LOG,
            "delivery",
            from_ms,
            to_ms,
            order,
            |r: &DeliveryRecord| r.at_ms,
            f,
        )
    }

    /// Visit bounce records with `from_ms <= at < to_ms` in `order` while `f` returns true.
    pub fn for_each_bounce(
        &self,
        order: Order,
        from_ms: u64,
        to_ms: u64,
        f: impl FnMut(BounceRecord) -> bool,
    ) -> Result<(), StoreError> {
        self.for_each_timed(
            CF_BOUNCES,
            "bounce",
            from_ms,
            to_ms,
            order,
            |r: &BounceRecord| r.at_ms,
            f,
        )
    }

    /// Delivery-log records from `from_ms` on, oldest first, at most `limit`.
    pub fn deliveries(
        &self,
        from_ms: u64,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let mut out = Vec::new();
        self.for_each_delivery(Order::OldestFirst, from_ms, u64::MAX, |r| {
            if out.len() >= limit {
                return false;
            }
            out.push(r);
            true
        })?;
        Ok(out)
    }

    /// Bounce records from `from_ms` on, oldest first, at most `limit`.
    pub fn bounces(&self, from_ms: u64, limit: usize) -> Result<Vec<BounceRecord>, StoreError> {
        let mut out = Vec::new();
        self.for_each_bounce(Order::OldestFirst, from_ms, u64::MAX, |r| {
            if out.len() >= limit {
                return false;
            }
            out.push(r);
            true
        })?;
        Ok(out)
    }

    /// A message's body.
    pub fn body(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_BODIES), keys::body_key(id))?)
    }

    /// A daily statistics counter.
    pub fn stat(&self, day: u64, counter: &str) -> Result<u64, StoreError> {
        Ok(
            match self
                .db
                .get_cf(self.cf(CF_STATS), keys::stat_key(day, counter))?
            {
                Some(v) => counter_value(&v),
                None => 0,
            },
        )
    }

    /// A day's counters whose names start with `prefix` (name without the prefix, value).
    pub fn day_counters(&self, day: u64, prefix: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let start = keys::stat_key(day, prefix);
        let mut out = Vec::new();
        for kv in self.db.iterator_cf(
            self.cf(CF_STATS),
            rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward),
        ) {
            let (k, v) = kv?;
            if !k.starts_with(&start) {
                break;
            }
            let name = String::from_utf8_lossy(&k[start.len()..]).into_owned();
            out.push((name, counter_value(&v)));
        }
        Ok(out)
    }

    /// Every per-minute counter of minutes `from..to` (minutes since the epoch), as
    /// (minute, counter name, value), in minute order.
    pub fn minute_counters(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<(u64, String, u64)>, StoreError> {
        let start = format!("m/{from:010}/").into_bytes();
        let end = format!("m/{to:010}/").into_bytes();
        let mut out = Vec::new();
        for kv in self.db.iterator_cf(
            self.cf(CF_STATS),
            rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward),
        ) {
            let (k, v) = kv?;
            if k.as_ref() >= end.as_slice() || !k.starts_with(b"m/") {
                break;
            }
            let key = String::from_utf8_lossy(&k[2..]).into_owned();
            if let Some((minute, name)) = key.split_once('/') {
                if let Ok(minute) = minute.parse() {
                    out.push((minute, name.to_string(), counter_value(&v)));
                }
            }
        }
        Ok(out)
    }

    fn decode<T: serde::de::DeserializeOwned>(
        what: &'static str,
        v: &[u8],
    ) -> Result<T, StoreError> {
        bincode::deserialize(v).map_err(|source| StoreError::Decode { what, source })
    }

    /// Live leases per node: pending recipients whose due time lies in `from_ms..=to_ms` (a
    /// lease's expiry; pass now and now + the lease length) and that are leased, counted by
    /// the leasing node. Examines at most `limit` due entries.
    pub fn leases_by_node(
        &self,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<std::collections::BTreeMap<u64, u64>, StoreError> {
        let mut out = std::collections::BTreeMap::new();
        let cf = self.cf(CF_QUEUE);
        let start = format!("d/{from_ms:016x}");
        let it = self
            .db
            .iterator_cf(cf, IteratorMode::From(start.as_bytes(), Direction::Forward));
        for kv in it.take(limit) {
            let (k, _) = kv?;
            let Some((due, id, rcpt)) = keys::parse_due_key(&k) else {
                break;
            };
            if due > to_ms {
                break;
            }
            if let Some(v) = self.db.get_cf(cf, keys::work_key(&id, rcpt))? {
                let item: WorkItem = Self::decode("work item", &v)?;
                if let Some(l) = item.lease {
                    *out.entry(l.node).or_insert(0) += 1;
                }
            }
        }
        Ok(out)
    }

    /// Pending recipients due at `now_ms` (next attempt reached, or lease expired), oldest
    /// due first, at most `limit`: `(id, rcpt, item)`.
    pub fn due(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<(String, u32, WorkItem)>, StoreError> {
        let mut out = Vec::new();
        let cf = self.cf(CF_QUEUE);
        let it = self
            .db
            .iterator_cf(cf, IteratorMode::From(b"d/", Direction::Forward));
        for kv in it {
            let (k, _) = kv?;
            let Some((due, id, rcpt)) = keys::parse_due_key(&k) else {
                break;
            };
            if due > now_ms || out.len() >= limit {
                break;
            }
            if let Some(v) = self.db.get_cf(cf, keys::work_key(&id, rcpt))? {
                out.push((id, rcpt, Self::decode("work item", &v)?));
            }
        }
        Ok(out)
    }

    /// When the earliest pending recipient becomes due, if any.
    pub fn next_due(&self) -> Result<Option<u64>, StoreError> {
        let mut it = self.db.iterator_cf(
            self.cf(CF_QUEUE),
            IteratorMode::From(b"d/", Direction::Forward),
        );
        match it.next() {
            Some(kv) => Ok(keys::parse_due_key(&kv?.0).map(|(due, _, _)| due)),
            None => Ok(None),
        }
    }

    /// The pending recipients of one message: `(rcpt, item)`.
    pub fn work_items(&self, id: &str) -> Result<Vec<(u32, WorkItem)>, StoreError> {
        let prefix = keys::work_prefix(id);
        let mut out = Vec::new();
        let it = self.db.iterator_cf(
            self.cf(CF_QUEUE),
            IteratorMode::From(&prefix, Direction::Forward),
        );
        for kv in it {
            let (k, v) = kv?;
            if !k.starts_with(&prefix) {
                break;
            }
            if let Some((_, rcpt)) = keys::parse_work_key(&k) {
                out.push((rcpt, Self::decode("work item", &v)?));
            }
        }
        Ok(out)
    }

    /// Pending recipients in message-id order (ids are time-ordered, so oldest first),
    /// starting after the message id `after`, at most `limit`: `(id, rcpt, item)`.
    pub fn pending(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, u32, WorkItem)>, StoreError> {
        let start = match after {
            Some(id) => format!("w/{id}/~").into_bytes(),
            None => b"w/".to_vec(),
        };
        let mut out = Vec::new();
        let it = self.db.iterator_cf(
            self.cf(CF_QUEUE),
            IteratorMode::From(&start, Direction::Forward),
        );
        for kv in it.take(limit) {
            let (k, v) = kv?;
            let Some((id, rcpt)) = keys::parse_work_key(&k) else {
                break;
            };
            out.push((id, rcpt, Self::decode("work item", &v)?));
        }
        Ok(out)
    }

    /// How many recipients are pending (queued or deferred, leased or not).
    pub fn pending_count(&self) -> Result<u64, StoreError> {
        Ok(
            match self.db.get_cf(self.cf(CF_QUEUE), keys::QUEUE_PENDING)? {
                Some(v) => counter_value(&v),
                None => 0,
            },
        )
    }

    /// Queue size and age.
    pub fn queue_stats(&self) -> Result<QueueStats, StoreError> {
        let oldest_received_ms = match self.pending(None, 1)?.first() {
            Some((id, _, _)) => self.message(id)?.map(|m| m.received_ms),
            None => None,
        };
        Ok(QueueStats {
            pending: self.pending_count()?,
            oldest_received_ms,
            next_due_ms: self.next_due()?,
        })
    }

    /// Outbox events from sequence number `from_seq` on, at most `limit`.
    pub fn events(&self, from_seq: u64, limit: usize) -> Result<Vec<OutboxEvent>, StoreError> {
        let mut out = Vec::new();
        let it = self.db.iterator_cf(
            self.cf(CF_OUTBOX),
            IteratorMode::From(&keys::outbox_key(from_seq), Direction::Forward),
        );
        for kv in it.take(limit) {
            let (k, v) = kv?;
            if !k.starts_with(b"e/") {
                break;
            }
            out.push(Self::decode("event", &v)?);
        }
        Ok(out)
    }

    /// An endpoint's dispatch cursor: the next event sequence number it should get.
    pub fn webhook_cursor(&self, endpoint: &str) -> Result<Option<u64>, StoreError> {
        Ok(
            match self
                .db
                .get_cf(self.cf(CF_OUTBOX), keys::outbox_cursor_key(endpoint))?
            {
                Some(v) if v.len() == 8 => {
                    Some(u64::from_be_bytes(v[..8].try_into().expect("8 bytes")))
                }
                _ => None,
            },
        )
    }

    /// Webhook batches given up on, oldest first.
    pub fn webhook_failures(&self, limit: usize) -> Result<Vec<WebhookFailure>, StoreError> {
        let mut out = Vec::new();
        let it = self.db.iterator_cf(
            self.cf(CF_OUTBOX),
            IteratorMode::From(b"f/", Direction::Forward),
        );
        for kv in it.take(limit) {
            let (k, v) = kv?;
            if !k.starts_with(b"f/") {
                break;
            }
            out.push(Self::decode("webhook failure", &v)?);
        }
        Ok(out)
    }
}

fn counter_value(v: &[u8]) -> u64 {
    match v.try_into() {
        Ok(b) => u64::from_be_bytes(b),
        Err(_) => 0,
    }
}
