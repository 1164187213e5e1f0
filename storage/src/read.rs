//! Read-only views of the replicated state for queries.
//!
//! These read the local state machine: on a follower they may lag the leader by the
//! replication delay. Callers that need linearizable reads (block-list decisions, checkers)
//! first confirm leadership through the cluster layer, then read here on the leader.

use std::sync::Arc;

use rocksdb::{Direction, IteratorMode, DB};

use crate::command::{BlockRecord, DeliveryRecord, MessageMeta};
use crate::error::StoreError;
use crate::keys::{
    self, CF_BLOCKS, CF_BODIES, CF_DELIVERY_LOG, CF_QUEUE, CF_SETTINGS, CF_SM_META, CF_STATS,
};
use crate::types::LogId;

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

    /// A message's body.
    pub fn body(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_BODIES), keys::body_key(id))?)
    }

    /// Delivery-log records from `from_ms` on, oldest first, at most `limit`.
    pub fn deliveries(
        &self,
        from_ms: u64,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let start = format!("{from_ms:016x}");
        let mut out = Vec::new();
        let it = self.db.iterator_cf(
            self.cf(CF_DELIVERY_LOG),
            IteratorMode::From(start.as_bytes(), Direction::Forward),
        );
        for kv in it.take(limit) {
            let (_, v) = kv?;
            out.push(
                bincode::deserialize(&v).map_err(|source| StoreError::Decode {
                    what: "delivery",
                    source,
                })?,
            );
        }
        Ok(out)
    }

    /// A daily statistics counter.
    pub fn stat(&self, day: u64, counter: &str) -> Result<u64, StoreError> {
        Ok(
            match self
                .db
                .get_cf(self.cf(CF_STATS), keys::stat_key(day, counter))?
            {
                Some(v) if v.len() == 8 => u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
                _ => 0,
            },
        )
    }
}
