//! The Raft log on RocksDB (`raft_log` and `raft_meta` column families).
//!
//! Contract: `append` writes all given entries in one synced write batch, then reports them
//! flushed; `save_vote` is synced too, `save_committed` is not (see there). Entries are bincode-encoded
//! `openraft::Entry<TypeConfig>` under their big-endian index.

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, OptionalSend, RaftLogReader, StorageIOError};
use rocksdb::{ColumnFamily, Direction, IteratorMode, WriteBatch, WriteOptions, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::StoreError;
use crate::keys::{self, CF_RAFT_LOG, CF_RAFT_META};
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// Raft log storage. Cheap to clone: clones share the database.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
}

fn sync_opts() -> WriteOptions {
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    wo
}

pub(crate) fn read_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

pub(crate) fn write_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

impl LogStore {
    pub(crate) fn new(db: Arc<DB>) -> Self {
        Self { db }
    }

    fn cf_log(&self) -> &ColumnFamily {
        self.db
            .cf_handle(CF_RAFT_LOG)
            .expect("raft_log column family")
    }

    fn cf_meta(&self) -> &ColumnFamily {
        self.db
            .cf_handle(CF_RAFT_META)
            .expect("raft_meta column family")
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        match self.db.get_cf(self.cf_meta(), key).map_err(read_err)? {
            None => Ok(None),
            Some(v) => Ok(Some(bincode::deserialize(&v).map_err(read_err)?)),
        }
    }

    fn put_meta<T: Serialize>(&self, key: &[u8], value: &T) -> Result<(), StorageError> {
        let v = bincode::serialize(value).map_err(write_err)?;
        self.db
            .put_cf_opt(self.cf_meta(), key, v, &sync_opts())
            .map_err(write_err)
    }

    /// No vote, no log entry and nothing purged: a node that never took part in a cluster.
    pub fn is_pristine(&self) -> Result<bool, StoreError> {
        let meta = self.cf_meta();
        Ok(self.db.get_cf(meta, keys::META_VOTE)?.is_none()
            && self.db.get_cf(meta, keys::META_LAST_PURGED)?.is_none()
            && self
                .db
                .iterator_cf(self.cf_log(), IteratorMode::Start)
                .next()
                .transpose()?
                .is_none())
    }

    /// After a restore: the log starts after `purged` (the backup's last entry), and this node
    /// has voted in that entry's term. One synced write.
    pub fn seed_restored(&self, vote: &Vote, purged: &LogId) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf_meta(),
            keys::META_VOTE,
            bincode::serialize(vote).map_err(|source| StoreError::Decode {
                what: "vote",
                source,
            })?,
        );
        batch.put_cf(
            self.cf_meta(),
            keys::META_LAST_PURGED,
            bincode::serialize(purged).map_err(|source| StoreError::Decode {
                what: "log id",
                source,
            })?,
        );
        Ok(self.db.write_opt(batch, &sync_opts())?)
    }

    fn last_log_id(&self) -> Result<Option<LogId>, StorageError> {
        let mut it = self.db.iterator_cf(self.cf_log(), IteratorMode::End);
        match it.next() {
            None => Ok(None),
            Some(r) => {
                let (_, v) = r.map_err(read_err)?;
                let e: Entry = bincode::deserialize(&v).map_err(read_err)?;
                Ok(Some(e.log_id))
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        use std::ops::Bound;
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut out = Vec::new();
        let it = self.db.iterator_cf(
            self.cf_log(),
            IteratorMode::From(&keys::log_key(start), Direction::Forward),
        );
        for r in it {
            let (k, v) = r.map_err(read_err)?;
            let idx = keys::log_index(&k);
            if !range.contains(&idx) {
                break;
            }
            out.push(bincode::deserialize::<Entry>(&v).map_err(read_err)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self.get_meta(keys::META_LAST_PURGED)?;
        let last = self.last_log_id()?.or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.put_meta(keys::META_VOTE, vote)
            .map_err(|e| StorageIOError::write_vote(AnyError::new(&e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.get_meta(keys::META_VOTE)
    }

    /// Not synced: the committed index is a hint for re-applying after a restart (openraft
    /// recovers it from a quorum otherwise); syncing it cost one extra fsync per commit.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let v = bincode::serialize(&committed).map_err(write_err)?;
        self.db
            .put_cf(self.cf_meta(), keys::META_COMMITTED, v)
            .map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self
            .get_meta::<Option<LogId>>(keys::META_COMMITTED)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // One synced batch per append call: openraft hands us every entry that queued up
        // since the last flush, which is what makes concurrent proposals share one fsync.
        let mut batch = WriteBatch::default();
        for e in entries {
            let v = bincode::serialize(&e).map_err(write_err)?;
            batch.put_cf(self.cf_log(), keys::log_key(e.log_id.index), v);
        }
        let db = self.db.clone();
        let res = tokio::task::spawn_blocking(move || db.write_opt(batch, &sync_opts()))
            .await
            .map_err(|e| write_err(std::io::Error::other(e)))?;
        match res {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let io = std::io::Error::other(e.to_string());
                callback.log_io_completed(Err(io));
                Err(write_err(e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.cf_log(),
            keys::log_key(log_id.index),
            keys::log_key(u64::MAX),
        );
        batch.delete_cf(self.cf_log(), keys::log_key(u64::MAX));
        self.db.write_opt(batch, &sync_opts()).map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // Record the purge point first, so a crash in between leaves only extra entries.
        self.put_meta(keys::META_LAST_PURGED, &log_id)?;
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.cf_log(),
            keys::log_key(0),
            keys::log_key(log_id.index.saturating_add(1)),
        );
        self.db.write_opt(batch, &sync_opts()).map_err(write_err)
    }
}
