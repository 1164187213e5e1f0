//! Hato storage: the RocksDB-backed Raft log and state machine.
//!
//! Contract:
//! - Two RocksDB instances per node ([`db`]): the Raft log (`raft_log`, `raft_meta`) in
//!   `data_dir/raft`, and the replicated state machine (one column family per kind of data,
//!   see [`keys`]) in `data_dir/db`.
//! - [`Command`] is the only write language of the state machine. Every committed command is
//!   applied by [`StateMachineStore::apply`] in one `WriteBatch` that also records
//!   `last_applied` (and the membership), so the state on disk is always a prefix of the log.
//! - Raft log appends are fsync'd (`sync = true`) before openraft is told they are flushed;
//!   state-machine writes skip the WAL and the state's column families flush atomically, so
//!   after a crash the state on disk is the state as of one applied entry and the entries
//!   after it are re-applied from the log on restart (the log store flushes before it purges).
//! - Snapshots are streamed files built from a RocksDB point-in-time snapshot of the state
//!   column families ([`snapshot`]), and installed by rewriting those column families.
//! - Nothing in this crate opens a socket.

// openraft's trait methods return `openraft::StorageError` by value; our helpers return the
// same type so `?` works without conversions. Boxing it is not an option for trait methods.
#![allow(clippy::result_large_err)]

pub mod command;
pub mod db;
pub mod error;
pub mod keys;
pub mod log_store;
pub mod read;
pub mod snapshot;
pub mod state_machine;
pub mod types;

pub use command::{Command, CommandResult};
pub use db::open;
pub use error::StoreError;
pub use log_store::LogStore;
pub use read::{Order, ReadView};
pub use state_machine::StateMachineStore;
pub use types::{NodeId, NodeInfo, TypeConfig};
