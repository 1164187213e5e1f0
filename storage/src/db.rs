//! Opening a node's RocksDB with every column family.

use std::path::Path;
use std::sync::Arc;

use rocksdb::{ColumnFamilyDescriptor, Options, DB};

use crate::error::StoreError;
use crate::keys;
use crate::log_store::LogStore;
use crate::state_machine::StateMachineStore;

/// Open (or create) the database under `dir/db` and return the two openraft stores that share
/// it. Snapshot files live in `dir/snapshots`.
pub fn open(dir: &Path) -> Result<(LogStore, StateMachineStore), StoreError> {
    std::fs::create_dir_all(dir)?;
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    // The state machine writes without the WAL (`state_machine::commit`): flushing every
    // column family together keeps what is on disk one consistent applied state.
    opts.set_atomic_flush(true);
    // Memory bounds, whatever the queue holds: all memtables together flush at 64 MB (each
    // column family would otherwise keep up to 2 x 64 MB), and every column family reads
    // through one 48 MB block cache. SST index blocks stay outside the cache (in a cache this
    // small they were evicted by bodies and decompressed again on every read: LZ4 took over
    // half the CPU of a drain); bodies use 16 KB blocks so their index stays small (~8 MB
    // per million queued 4 KB messages).
    opts.set_db_write_buffer_size(MEMTABLES_BYTES);
    let cache = rocksdb::Cache::new_lru_cache(BLOCK_CACHE_BYTES);
    let cfs = keys::all_cfs()
        .into_iter()
        .map(|name| ColumnFamilyDescriptor::new(name, cf_options(name, &cache)));
    let db = Arc::new(DB::open_cf_descriptors(&opts, dir.join("db"), cfs)?);
    let applied = Arc::default();
    let log = LogStore::new(db.clone(), Arc::clone(&applied));
    let sm = StateMachineStore::new(db, dir.join("snapshots"), applied)?;
    Ok((log, sm))
}

/// Memtable budget of the whole database.
const MEMTABLES_BYTES: usize = 64 << 20;
/// Block cache shared by every column family.
const BLOCK_CACHE_BYTES: usize = 48 << 20;

fn cf_options(name: &str, cache: &rocksdb::Cache) -> Options {
    let mut o = Options::default();
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_block_cache(cache);
    if name == keys::CF_RAFT_LOG || name == keys::CF_BODIES {
        // Large, write-once values: bigger memtables, fewer compactions, bigger blocks.
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
