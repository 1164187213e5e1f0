//! The Raft log on RocksDB (`raft_log` and `raft_meta` column families).
//!
//! Contract: `append` writes all given entries in one synced write batch, then reports them
//! flushed; `save_vote` is synced too. `save_committed` writes to the state's database, not
//! synced (see there). Entries are bincode-encoded `openraft::Entry<TypeConfig>` under their
//! big-endian index. What replication reads for one AppendEntries (`limited_get_log_entries`)
//! is at most [`MAX_APPEND_BYTES`] of entries, or a single entry that is larger.
//!
//! The newest entries this process appended are also kept in memory ([`Recent`], a bounded
//! contiguous suffix of the log), because openraft reads each entry back right after appending
//! it: once per follower to replicate it and once to apply it. Served from memory those reads
//! share the entries' message bodies instead of reading and decoding a copy from RocksDB each.
//! Entries leave the memory once applied (with a margin for a follower a round behind) or when
//! it exceeds its byte bound; reads of older entries go to RocksDB.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, OptionalSend, RaftLogReader, StorageIOError};
use rocksdb::{ColumnFamily, Direction, FlushOptions, IteratorMode, WriteBatch, WriteOptions, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::StoreError;
use crate::keys::{self, CF_RAFT_LOG, CF_RAFT_META};
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// Raft log storage. Cheap to clone: clones share the database and the recent entries.
#[derive(Clone)]
pub struct LogStore {
    /// The log's own database (`data_dir/raft`).
    db: Arc<DB>,
    /// The state machine's database, flushed before entries are purged.
    state: Arc<DB>,
    recent: Arc<Mutex<Recent>>,
    /// The state machine's last applied index.
    applied: Arc<AtomicU64>,
}

/// The newest appended entries, as written. Invariant: `entries` is empty or holds every
/// index from its first key to the last index of the log (a contiguous suffix), so a read
/// starting at or after the first key is answered entirely from here.
#[derive(Default)]
pub(crate) struct Recent {
    /// Each entry with its encoded size.
    entries: BTreeMap<u64, (Entry, usize)>,
    bytes: usize,
}

impl Recent {
    /// Encoded bytes kept at most (the oldest entries go first): enough for the entries a
    /// leader has appended and not yet replicated and applied, at any message size.
    const MAX_BYTES: usize = 16 << 20;
    /// Applied entries kept, for a follower that is a round or two behind.
    const KEEP_APPLIED: u64 = 16;

    /// Add an entry just written to the log, and drop what is no longer needed: entries
    /// applied more than [`Self::KEEP_APPLIED`] entries ago, and the oldest beyond
    /// [`Self::MAX_BYTES`].
    fn push(&mut self, entry: Entry, size: usize, applied: u64) {
        let index = entry.log_id.index;
        let follows = self
            .entries
            .last_key_value()
            .is_none_or(|(last, _)| index == last + 1);
        if !follows {
            // Not the next index (the log was replaced under us): start over from here.
            self.clear_from(0);
        }
        self.entries.insert(index, (entry, size));
        self.bytes += size;
        let stale = applied.saturating_sub(Self::KEEP_APPLIED);
        while let Some((&first, _)) = self.entries.first_key_value() {
            let over = self.bytes > Self::MAX_BYTES && self.entries.len() > 1;
            if first >= stale && !over {
                break;
            }
            if let Some((_, (_, n))) = self.entries.pop_first() {
                self.bytes -= n;
            }
        }
    }

    /// Forget the entries from `index` on (a truncated log).
    fn clear_from(&mut self, index: u64) {
        for (_, (_, n)) in self.entries.split_off(&index) {
            self.bytes -= n;
        }
    }

    /// Forget the entries up to and including `index` (a purged log).
    fn clear_to(&mut self, index: u64) {
        let kept = self.entries.split_off(&index.saturating_add(1));
        let gone = std::mem::replace(&mut self.entries, kept);
        for (_, (_, n)) in gone {
            self.bytes -= n;
        }
    }

    /// The entries of `range`, if they start here, up to `max_bytes` encoded (at least one).
    fn get<RB: RangeBounds<u64>>(
        &self,
        start: u64,
        range: &RB,
        max_bytes: usize,
    ) -> Option<Vec<Entry>> {
        let (&first, _) = self.entries.first_key_value()?;
        if start < first {
            return None;
        }
        let mut out = Vec::new();
        let mut bytes = 0;
        for (i, (e, n)) in self.entries.range(start..) {
            if !range.contains(i) || !fits(bytes, *n, max_bytes) {
                break;
            }
            bytes += n;
            out.push(e.clone());
        }
        Some(out)
    }
}

/// Whether an entry of `n` bytes may join `bytes` already read under `max_bytes`: the first
/// entry always does, so a read of a non-empty range is never empty.
fn fits(bytes: usize, n: usize, max_bytes: usize) -> bool {
    bytes == 0 || bytes.saturating_add(n) <= max_bytes
}

/// About this many encoded bytes of entries go in one AppendEntries (at least one entry).
/// openraft gives each AppendEntries the heartbeat interval (150 ms by default) to be sent,
/// written and synced by the follower, and otherwise sends a follower that fell behind
/// everything it lacks at once (up to 300 entries, each up to 8 MB under group commit). With
/// 100 KB messages a follower paused for 10 s under load never caught up: every catch-up RPC
/// timed out and was retried whole, and the leader's memory grew past 1 GB.
pub const MAX_APPEND_BYTES: usize = 4 << 20;

fn sync_opts() -> WriteOptions {
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    wo
}

/// The bincode value under `key`, if any.
fn get_decoded<T: DeserializeOwned>(
    db: &DB,
    cf: &ColumnFamily,
    key: &[u8],
) -> Result<Option<T>, StorageError> {
    match db.get_cf(cf, key).map_err(read_err)? {
        None => Ok(None),
        Some(v) => Ok(Some(bincode::deserialize(&v).map_err(read_err)?)),
    }
}

pub(crate) fn read_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_logs(AnyError::new(&e)).into()
}

pub(crate) fn write_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_logs(AnyError::new(&e)).into()
}

impl LogStore {
    pub(crate) fn new(db: Arc<DB>, state: Arc<DB>, applied: Arc<AtomicU64>) -> Self {
        Self {
            db,
            state,
            recent: Arc::default(),
            applied,
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        // Every update leaves `Recent` consistent, so a panic elsewhere cannot corrupt it.
        self.recent.lock().unwrap_or_else(|p| p.into_inner())
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

    /// The state database's `sm_meta`, where the committed index is kept.
    fn cf_state_meta(&self) -> &ColumnFamily {
        self.state
            .cf_handle(keys::CF_SM_META)
            .expect("sm_meta column family")
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError> {
        get_decoded(&self.db, self.cf_meta(), key)
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

impl LogStore {
    /// The entries of `range`, up to `max_bytes` encoded (at least one): from memory when
    /// they start there, else from RocksDB.
    fn read<RB: RangeBounds<u64>>(
        &self,
        range: RB,
        max_bytes: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        use std::ops::Bound;
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        if let Some(entries) = self.recent().get(start, &range, max_bytes) {
            return Ok(entries);
        }
        let mut out = Vec::new();
        let mut bytes = 0;
        let it = self.db.iterator_cf(
            self.cf_log(),
            IteratorMode::From(&keys::log_key(start), Direction::Forward),
        );
        for r in it {
            let (k, v) = r.map_err(read_err)?;
            let idx = keys::log_index(&k);
            if !range.contains(&idx) || !fits(bytes, v.len(), max_bytes) {
                break;
            }
            bytes += v.len();
            out.push(bincode::deserialize::<Entry>(&v).map_err(read_err)?);
        }
        Ok(out)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.read(range, usize::MAX)
    }

    /// What replication sends in one AppendEntries: a prefix of `[start, end)` of at most
    /// [`MAX_APPEND_BYTES`] (one entry if that alone is larger).
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        self.read(start..end, MAX_APPEND_BYTES)
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

    /// Kept with the state, not the log, and written without a WAL: the committed index is a
    /// hint for re-applying after a restart (openraft recovers it from a quorum otherwise, and
    /// a value behind the applied state is ignored), and it reaches disk with the state's
    /// atomic flush. Openraft awaits this call before it applies the entries: written to the
    /// log's database it queued behind the next append's fsync in RocksDB's write queue,
    /// holding the applies (and every reply) for that long. For the same reason it never waits
    /// out a write stall of the state's database (its memtables full, a flush behind): that
    /// would hold the Raft core, heartbeats included, on a runtime thread. Then this value is
    /// skipped; the next commit writes a newer one.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        let v = bincode::serialize(&committed).map_err(write_err)?;
        let cf = self.cf_state_meta();
        let mut wo = WriteOptions::default();
        wo.disable_wal(true);
        wo.set_no_slowdown(true);
        match self.state.put_cf_opt(cf, keys::SM_COMMITTED, v, &wo) {
            Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete => {
                tracing::debug!(error = %e, "committed index not saved: write stall");
                Ok(())
            }
            r => r.map_err(write_err),
        }
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        match get_decoded::<Option<LogId>>(&self.state, self.cf_state_meta(), keys::SM_COMMITTED)? {
            Some(committed) => Ok(committed),
            // Written by an older version, in the log's metadata.
            None => Ok(self
                .get_meta::<Option<LogId>>(keys::META_COMMITTED)?
                .flatten()),
        }
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
        let mut written = Vec::new();
        for e in entries {
            let v = bincode::serialize(&e).map_err(write_err)?;
            batch.put_cf(self.cf_log(), keys::log_key(e.log_id.index), &v);
            written.push((e, v.len()));
        }
        let db = self.db.clone();
        let res = tokio::task::spawn_blocking(move || db.write_opt(batch, &sync_opts()))
            .await
            .map_err(|e| write_err(std::io::Error::other(e)))?;
        match res {
            Ok(()) => {
                let applied = self.applied.load(Ordering::Relaxed);
                let mut recent = self.recent();
                for (e, size) in written {
                    recent.push(e, size, applied);
                }
                drop(recent);
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
        self.recent().clear_from(log_id.index);
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
        // The state machine's writes skip the WAL: before entries leave the log, put what
        // applying them did on disk, or a crash could leave the state behind the log's start.
        let db = self.state.clone();
        tokio::task::spawn_blocking(move || {
            let cfs: Vec<_> = keys::state_db_cfs()
                .into_iter()
                .filter_map(|n| db.cf_handle(n))
                .collect();
            let mut fo = FlushOptions::default();
            fo.set_wait(true);
            db.flush_cfs_opt(&cfs, &fo)
        })
        .await
        .map_err(|e| write_err(std::io::Error::other(e)))?
        .map_err(write_err)?;
        // Record the purge point first, so a crash in between leaves only extra entries.
        self.put_meta(keys::META_LAST_PURGED, &log_id)?;
        self.recent().clear_to(log_id.index);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(
            self.cf_log(),
            keys::log_key(0),
            keys::log_key(log_id.index.saturating_add(1)),
        );
        self.db.write_opt(batch, &sync_opts()).map_err(write_err)
    }
}
