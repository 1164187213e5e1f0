//! Opening a node's two RocksDB databases: the Raft log (`data_dir/raft`) and the state
//! machine (`data_dir/db`).
//!
//! Contract: the log's writes are synced through its own WAL, whose files are recycled; the
//! state's writes skip the WAL, and its column families flush atomically. Two databases, not
//! one, because RocksDB orders every write of a database through one write queue: in a shared
//! database an apply (a memtable insert) waited for the next append's fsync, and a WAL-less
//! write forbids recycling WAL files (deleting a WAL file every flush stalled the next fsync
//! behind the file system's discard). A data directory from before the split, with the log in
//! `db`, is converted on open (`migrate_log`).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rocksdb::{ColumnFamilyDescriptor, IteratorMode, Options, WriteBatch, WriteOptions, DB};

use crate::error::StoreError;
use crate::keys;
use crate::log_store::LogStore;
use crate::state_machine::StateMachineStore;

/// Open (or create) the databases under `dir` and return the two openraft stores. Snapshot
/// files live in `dir/snapshots`.
pub fn open(dir: &Path) -> Result<(LogStore, StateMachineStore), StoreError> {
    std::fs::create_dir_all(dir)?;
    // Every column family of both databases reads through one block cache. SST index blocks
    // stay outside it (in a cache this small they were evicted by bodies and decompressed
    // again on every read: LZ4 took over half the CPU of a drain).
    let cache = rocksdb::Cache::new_lru_cache(BLOCK_CACHE_BYTES);
    let state_path = dir.join("db");
    let legacy = legacy_log_cfs(&state_path)?;
    let mut names = keys::state_db_cfs();
    names.extend(legacy.iter().copied());
    let mut state = DB::open_cf_descriptors(
        &state_options(),
        &state_path,
        names
            .iter()
            .map(|n| ColumnFamilyDescriptor::new(*n, cf_options(n, &cache))),
    )?;
    let log_path = dir.join("raft");
    if !legacy.is_empty() {
        if !log_path.exists() {
            migrate_log(&state, dir, &cache)?;
        }
        for name in legacy {
            state.drop_cf(name)?;
        }
    }
    let state = Arc::new(state);
    let log = Arc::new(open_log_db(&log_path, &cache)?);
    let applied = Arc::default();
    let log = LogStore::new(log, state.clone(), Arc::clone(&applied));
    let sm = StateMachineStore::new(state, dir.join("snapshots"), applied)?;
    if let Err(e) = idle_background_threads() {
        tracing::warn!(error = %e, "RocksDB's background threads keep their CPU priority");
    }
    Ok((log, sm))
}

/// Memtables of the log's database...
const LOG_MEMTABLES_BYTES: usize = 32 << 20;
/// ...and of the state's: each database flushes when its memtables reach this, whatever the
/// queue holds (64 MB in all, as when both shared one database).
const STATE_MEMTABLES_BYTES: usize = 32 << 20;
/// Block cache shared by every column family.
const BLOCK_CACHE_BYTES: usize = 48 << 20;
/// WAL files the log's database keeps for reuse instead of deleting them.
const RECYCLED_WAL_FILES: usize = 4;

/// RocksDB's environment with its flush and compaction threads at a lower I/O priority than
/// the rest of the process. Their CPU priority is set by [`idle_background_threads`] instead
/// of RocksDB's own "lower CPU priority" (nice 19), which it would reapply over ours.
fn background_env() -> &'static rocksdb::Env {
    static ENV: OnceLock<rocksdb::Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = rocksdb::Env::new().expect("RocksDB's default environment");
        env.lower_thread_pool_io_priority();
        env.lower_high_priority_thread_pool_io_priority();
        env
    })
}

/// Run RocksDB's flush and compaction threads (named `rocksdb:*`, started when the first
/// database opens) under `SCHED_IDLE`: they get a core only when no thread of normal priority
/// wants it, and give it up as soon as one wakes. On a busy node the threads that accept mail
/// and sync the log go first. At nice 19 a flush compressing tens of MB of bodies still kept
/// waking acceptance threads waiting: with 100 KB messages at half of peak, messages slower
/// than 8 ms overlapped a flush four to five times as often as the others. Under SCHED_IDLE
/// (alternated runs on one machine) one node's p99 went from 9.0-10.5 ms to 5.8-10.1 ms, and
/// three nodes' was lower in 8 of 11 pairs (median 14.4 to 11.5 ms). A flush only waits for
/// an idle core; should memtables fill meanwhile, RocksDB's write stall slows the writers
/// and frees the cores.
fn idle_background_threads() -> std::io::Result<()> {
    for (tid, _) in rocksdb_threads()? {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler reads `param` and changes only the scheduling policy of
        // thread `tid` of this process.
        if unsafe { libc::sched_setscheduler(tid, libc::SCHED_IDLE, &param) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The threads of this process that RocksDB started (named `rocksdb:*`): id and name.
fn rocksdb_threads() -> std::io::Result<Vec<(i32, String)>> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let task = task?;
        let Ok(name) = std::fs::read_to_string(task.path().join("comm")) else {
            continue; // the thread has exited
        };
        if !name.starts_with("rocksdb:") {
            continue;
        }
        if let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) {
            threads.push((tid, name.trim_end().to_string()));
        }
    }
    Ok(threads)
}

/// Options shared by both databases, with `memtables` bytes of memtables in all.
fn db_options(memtables: usize) -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    // Every column family of a database flushes together. The state: it is written without
    // the WAL (`state_machine::commit`), so what is on disk stays one consistent applied
    // state. The log: a WAL file is freed only once every column family has flushed what it
    // holds, and the small `raft_meta` would otherwise pin them all.
    opts.set_atomic_flush(true);
    opts.set_db_write_buffer_size(memtables);
    opts.set_env(background_env());
    opts
}

fn state_options() -> Options {
    db_options(STATE_MEMTABLES_BYTES)
}

fn log_options() -> Options {
    let mut opts = db_options(LOG_MEMTABLES_BYTES);
    // Reuse WAL files: no delete (and discard) of the old file and no new file to allocate at
    // every flush, and an fsync that overwrites an existing file has no size to record.
    opts.set_recycle_log_file_num(RECYCLED_WAL_FILES);
    opts
}

fn open_log_db(path: &Path, cache: &rocksdb::Cache) -> Result<DB, StoreError> {
    Ok(DB::open_cf_descriptors(
        &log_options(),
        path,
        keys::LOG_CFS
            .iter()
            .map(|n| ColumnFamilyDescriptor::new(*n, cf_options(n, cache))),
    )?)
}

/// The log's column families still in the state's database (a data directory written before
/// the log had its own), if any.
fn legacy_log_cfs(state_path: &Path) -> Result<Vec<&'static str>, StoreError> {
    if !state_path.join("CURRENT").exists() {
        return Ok(Vec::new()); // no database yet
    }
    let names = DB::list_cf(&Options::default(), state_path)?;
    Ok(keys::LOG_CFS
        .iter()
        .copied()
        .filter(|c| names.iter().any(|n| n == c))
        .collect())
}

/// Copy the log out of the state's database into `dir/raft`. The copy is built in
/// `dir/raft.new` and renamed into place once synced, so a crash part-way leaves the old
/// layout, which the next open converts again from the start.
fn migrate_log(state: &DB, dir: &Path, cache: &rocksdb::Cache) -> Result<(), StoreError> {
    let tmp = dir.join("raft.new");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    let log = open_log_db(&tmp, cache)?;
    let mut sync = WriteOptions::default();
    sync.set_sync(true);
    for name in keys::LOG_CFS {
        let (from, to) = (cf(state, name), cf(&log, name));
        let mut batch = WriteBatch::default();
        for item in state.iterator_cf(from, IteratorMode::Start) {
            let (k, v) = item?;
            batch.put_cf(to, k, v);
            if batch.size_in_bytes() >= 16 << 20 {
                log.write_opt(std::mem::take(&mut batch), &sync)?;
            }
        }
        log.write_opt(batch, &sync)?;
    }
    log.flush_wal(true)?;
    drop(log);
    std::fs::rename(&tmp, dir.join("raft"))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn cf<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name)
        .expect("both databases are opened with every log column family")
}

fn cf_options(name: &str, cache: &rocksdb::Cache) -> Options {
    let mut o = Options::default();
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_block_cache(cache);
    if name == keys::CF_RAFT_LOG || name == keys::CF_BODIES {
        // Large, write-once values: bigger memtables, fewer compactions, bigger blocks (and
        // so a smaller index: ~8 MB per million queued 4 KB bodies).
        o.set_write_buffer_size(32 << 20);
        table.set_block_size(16 << 10);
    }
    if name == keys::CF_QUEUE {
        // Every enqueue looks up its message id, which is new: a filter answers without
        // reading the files (10 bits per key, ~1% false positives).
        table.set_bloom_filter(10.0, false);
    }
    o.set_block_based_table_factory(&table);
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Once a store is open, every RocksDB background thread of the process runs under
    /// SCHED_IDLE (and there are some: the flush and the compaction thread).
    #[test]
    fn background_threads_run_idle() {
        let dir = tempfile::tempdir().unwrap();
        let _stores = open(dir.path()).unwrap();
        let threads = rocksdb_threads().unwrap();
        for (tid, name) in &threads {
            // SAFETY: sched_getscheduler only reads the policy of thread `tid`.
            let policy = unsafe { libc::sched_getscheduler(*tid) };
            assert_eq!(policy, libc::SCHED_IDLE, "{name} ({tid})");
        }
        let seen = threads.len();
        assert!(seen >= 2, "flush and compaction threads: {seen}");
    }
}
