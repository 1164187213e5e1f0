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
    let cfs = keys::all_cfs()
        .into_iter()
        .map(|name| ColumnFamilyDescriptor::new(name, cf_options(name)));
    let db = Arc::new(DB::open_cf_descriptors(&opts, dir.join("db"), cfs)?);
    let log = LogStore::new(db.clone());
    let sm = StateMachineStore::new(db, dir.join("snapshots"))?;
    Ok((log, sm))
}

fn cf_options(name: &str) -> Options {
    let mut o = Options::default();
    o.set_compression_type(rocksdb::DBCompressionType::Lz4);
    if name == keys::CF_RAFT_LOG || name == keys::CF_BODIES {
        // Large, write-once values: bigger memtables, fewer compactions.
        o.set_write_buffer_size(64 << 20);
    }
    o
}
