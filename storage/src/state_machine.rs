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
    BlockRecord, Command, CommandResult, DeliveryRecord, MessageMeta, NewMessage, RecipientState,
    RecipientStatus,
};
use crate::keys::{
    self, CF_BLOCKS, CF_BODIES, CF_DELIVERY_LOG, CF_QUEUE, CF_SETTINGS, CF_SM_META, CF_STATS,
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
}

impl<'a> Txn<'a> {
    fn new(db: &'a DB) -> Self {
        Self {
            db,
            batch: WriteBatch::default(),
            overlay: HashMap::new(),
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

    pub(crate) fn delete(&mut self, cf: &'static str, key: Vec<u8>) {
        self.batch.delete_cf(self.cf(cf), &key);
        self.overlay.insert((cf, key), None);
    }
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
            };
            txn.put(
                CF_BLOCKS,
                k,
                bincode::serialize(&rec).map_err(sm_write_err)?,
            );
            CommandResult::Changed(existed)
        }
        Command::Unblock { address } => {
            let k = keys::block_key(address);
            let existed = txn.get(CF_BLOCKS, &k)?.is_some();
            txn.delete(CF_BLOCKS, k);
            CommandResult::Changed(existed)
        }
        Command::Enqueue(m) => enqueue(txn, m)?,
    })
}

fn enc<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StorageError> {
    bincode::serialize(v).map_err(sm_write_err)
}

/// Add `n` to a statistics counter.
pub(crate) fn bump(txn: &mut Txn<'_>, day: u64, counter: &str, n: u64) -> Result<(), StorageError> {
    if n == 0 {
        return Ok(());
    }
    let k = keys::stat_key(day, counter);
    let cur = match txn.get(CF_STATS, &k)? {
        Some(v) if v.len() == 8 => u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
        _ => 0,
    };
    txn.put(CF_STATS, k, (cur + n).to_be_bytes().to_vec());
    Ok(())
}

fn enqueue(txn: &mut Txn<'_>, m: &NewMessage) -> Result<CommandResult, StorageError> {
    let mk = keys::message_key(&m.id);
    if txn.get(CF_QUEUE, &mk)?.is_some() {
        return Ok(CommandResult::Enqueued {
            queued: 0,
            blocked: 0,
            duplicate: true,
        });
    }
    let mut recipients = Vec::with_capacity(m.recipients.len());
    let (mut queued, mut blocked) = (0u32, 0u32);
    for (i, rcpt) in m.recipients.iter().enumerate() {
        let is_blocked = txn.get(CF_BLOCKS, &keys::block_key(rcpt))?.is_some();
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
        };
        txn.put(
            CF_DELIVERY_LOG,
            keys::delivery_key(m.received_ms, &m.id, i, 0),
            enc(&rec)?,
        );
        if is_blocked {
            rec.status = "blocked".into();
            rec.detail = "recipient is on the block list".into();
            txn.put(
                CF_DELIVERY_LOG,
                keys::delivery_key(m.received_ms, &m.id, i, 1),
                enc(&rec)?,
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
    txn.put(CF_QUEUE, mk, enc(&meta)?);
    txn.put(CF_BODIES, keys::body_key(&m.id), m.body.clone());
    let day = keys::day_of(m.received_ms);
    bump(txn, day, "received", (queued + blocked) as u64)?;
    bump(txn, day, "blocked", blocked as u64)?;
    Ok(CommandResult::Enqueued {
        queued,
        blocked,
        duplicate: false,
    })
}

impl StateMachineStore {
    pub(crate) fn new(db: Arc<DB>, snap_dir: PathBuf) -> Result<Self, crate::StoreError> {
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
        }
        if let Some(last) = last {
            txn.put(
                CF_SM_META,
                keys::SM_LAST_APPLIED.to_vec(),
                bincode::serialize(&last).map_err(sm_write_err)?,
            );
            // Not synced on its own: the Raft log (same WAL) is synced, and anything lost here
            // is re-applied from the log after a crash.
            db.write(txn.batch).map_err(sm_write_err)?;
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
