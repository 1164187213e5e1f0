//! Storage errors.

use thiserror::Error;

/// Errors of the storage layer, outside of openraft's own `StorageError`.
#[derive(Debug, Error)]
pub enum StoreError {
    /// RocksDB failed (I/O, corruption, options).
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A stored value could not be decoded.
    #[error("decode {what}: {source}")]
    Decode {
        what: &'static str,
        #[source]
        source: bincode::Error,
    },
    /// A snapshot file is malformed.
    #[error("snapshot file: {0}")]
    Snapshot(String),
    /// Filesystem error.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}
