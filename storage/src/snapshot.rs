//! Snapshots: streamed files built from a RocksDB point-in-time view.
//!
//! File format (all integers big-endian):
//! ```text
//! "HATOSNP1" | u32 meta_len | bincode(SnapshotMeta)
//! { u8 cf_tag (index in keys::STATE_CFS) | u32 key_len | key | u32 value_len | value }*
//! 0xFF | u64 record_count
//! ```
//! Building reads a RocksDB snapshot, so it never blocks apply and is consistent with the
//! `last_applied` it records. Installing clears the state column families and streams the
//! records back in bounded write batches. An "installing" marker (the snapshot file's path) is
//! written in the same synced batch that clears the state; if the node dies mid-install, opening
//! the database finishes the install from that file before Raft starts.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::Snapshot;
use openraft::{AnyError, StorageIOError};
use rocksdb::{IteratorMode, WriteBatch, WriteOptions};

use crate::error::StoreError;
use crate::keys::{self, CF_SM_META, STATE_CFS};
use crate::state_machine::StateMachineStore;
use crate::types::{LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

const MAGIC: &[u8; 8] = b"HATOSNP1";
const TAG_END: u8 = 0xFF;
const SM_INSTALLING: &[u8] = b"installing_snapshot";
const BATCH_BYTES: usize = 4 << 20;

fn snap_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_snapshot(None, AnyError::new(&e)).into()
}

fn to_storage(e: StoreError) -> StorageError {
    snap_err(e)
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn snap_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("snap-{id}.snap"))
}

fn sync_opts() -> WriteOptions {
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    wo
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn decode<T: serde::de::DeserializeOwned>(what: &'static str, v: &[u8]) -> Result<T, StoreError> {
    bincode::deserialize(v).map_err(|source| StoreError::Decode { what, source })
}

/// Build a snapshot of the current state machine and make it the current snapshot.
pub(crate) async fn build(sm: &StateMachineStore) -> Result<Snapshot<TypeConfig>, StorageError> {
    let sm2 = sm.clone();
    let (meta, path) = tokio::task::spawn_blocking(move || build_blocking(&sm2))
        .await
        .map_err(|e| snap_err(std::io::Error::other(e)))?
        .map_err(to_storage)?;
    let f = tokio::fs::File::open(&path).await.map_err(snap_err)?;
    Ok(Snapshot {
        meta,
        snapshot: Box::new(f),
    })
}

fn build_blocking(sm: &StateMachineStore) -> Result<(SnapshotMeta, PathBuf), StoreError> {
    let db = &sm.db;
    let view = db.snapshot();
    let meta_cf = db.cf_handle(CF_SM_META).expect("sm_meta");
    let last_applied: Option<LogId> = match view.get_cf(meta_cf, keys::SM_LAST_APPLIED)? {
        Some(v) => Some(decode("last_applied", &v)?),
        None => None,
    };
    let membership: StoredMembership = match view.get_cf(meta_cf, keys::SM_MEMBERSHIP)? {
        Some(v) => decode("membership", &v)?,
        None => StoredMembership::default(),
    };
    let snapshot_id = match &last_applied {
        Some(l) => format!(
            "{}-{}-{}-{}",
            l.leader_id.term,
            l.leader_id.node_id,
            l.index,
            nanos()
        ),
        None => format!("0-0-0-{}", nanos()),
    };
    let meta = SnapshotMeta {
        last_log_id: last_applied,
        last_membership: membership,
        snapshot_id: snapshot_id.clone(),
    };
    let tmp = sm.snap_dir.join(format!("build-{snapshot_id}.tmp"));
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    write_header(&mut w, &meta)?;
    let mut count: u64 = 0;
    for (tag, name) in STATE_CFS.iter().enumerate() {
        let cf = db.cf_handle(name).expect("state column family");
        for kv in view.iterator_cf(cf, IteratorMode::Start) {
            let (k, v) = kv?;
            w.write_all(&[tag as u8])?;
            w.write_all(&(k.len() as u32).to_be_bytes())?;
            w.write_all(&k)?;
            w.write_all(&(v.len() as u32).to_be_bytes())?;
            w.write_all(&v)?;
            count += 1;
        }
    }
    w.write_all(&[TAG_END])?;
    w.write_all(&count.to_be_bytes())?;
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    drop(view);
    let path = snap_path(&sm.snap_dir, &snapshot_id);
    std::fs::rename(&tmp, &path)?;
    fsync_dir(&sm.snap_dir)?;
    set_current(sm, &meta)?;
    Ok((meta, path))
}

/// Record `meta` as the current snapshot unless a newer one is already current, then delete
/// other snapshot files.
fn set_current(sm: &StateMachineStore, meta: &SnapshotMeta) -> Result<(), StoreError> {
    let _g = sm.snap_lock.lock().unwrap_or_else(|p| p.into_inner());
    let cf = sm.db.cf_handle(CF_SM_META).expect("sm_meta");
    if let Some(v) = sm.db.get_cf(cf, keys::SM_SNAPSHOT_META)? {
        let cur: SnapshotMeta = decode("snapshot_meta", &v)?;
        if cur.last_log_id > meta.last_log_id {
            let _ = std::fs::remove_file(snap_path(&sm.snap_dir, &meta.snapshot_id));
            return Ok(());
        }
    }
    let v = bincode::serialize(meta).map_err(|source| StoreError::Decode {
        what: "meta",
        source,
    })?;
    sm.db
        .put_cf_opt(cf, keys::SM_SNAPSHOT_META, v, &sync_opts())?;
    let keep = format!("snap-{}.snap", meta.snapshot_id);
    for e in std::fs::read_dir(&sm.snap_dir)?.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with("snap-") && name != keep {
            let _ = std::fs::remove_file(e.path());
        }
    }
    Ok(())
}

/// The current snapshot, if any.
pub(crate) async fn current(
    sm: &StateMachineStore,
) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
    let meta: Option<SnapshotMeta> = sm.meta_get(keys::SM_SNAPSHOT_META)?;
    let Some(meta) = meta else { return Ok(None) };
    let path = snap_path(&sm.snap_dir, &meta.snapshot_id);
    let f = tokio::fs::File::open(&path)
        .await
        .map_err(|e| StorageError::from(StorageIOError::read_snapshot(None, AnyError::new(&e))))?;
    Ok(Some(Snapshot {
        meta,
        snapshot: Box::new(f),
    }))
}

/// The current snapshot's header and file path, if there is one (what `hato backup` streams).
/// The file may be replaced by a newer snapshot at any time; an open handle stays readable.
pub fn current_file(sm: &StateMachineStore) -> Result<Option<(SnapshotMeta, PathBuf)>, StoreError> {
    let cf = sm.db.cf_handle(CF_SM_META).expect("sm_meta");
    let Some(v) = sm.db.get_cf(cf, keys::SM_SNAPSHOT_META)? else {
        return Ok(None);
    };
    let meta: SnapshotMeta = decode("snapshot_meta", &v)?;
    let path = snap_path(&sm.snap_dir, &meta.snapshot_id);
    Ok(Some((meta, path)))
}

/// A fresh file to receive a snapshot stream into.
pub(crate) async fn begin_receiving(
    sm: &StateMachineStore,
) -> Result<Box<tokio::fs::File>, StorageError> {
    let path = sm.snap_dir.join(format!("incoming-{}.part", nanos()));
    let f = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .await
        .map_err(snap_err)?;
    Ok(Box::new(f))
}

/// Replace the state machine with the received snapshot.
pub(crate) async fn install(
    sm: &StateMachineStore,
    meta: &SnapshotMeta,
    file: tokio::fs::File,
) -> Result<(), StorageError> {
    let mut file = file.into_std().await;
    let sm2 = sm.clone();
    let meta = meta.clone();
    tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
        // Keep the received bytes under their final name first, so an interrupted install can
        // be finished from them after a restart.
        file.flush()?;
        file.seek(SeekFrom::Start(0))?;
        let path = snap_path(&sm2.snap_dir, &meta.snapshot_id);
        {
            let mut out = File::create(&path)?;
            std::io::copy(&mut file, &mut out)?;
            out.sync_all()?;
        }
        fsync_dir(&sm2.snap_dir)?;
        install_from_file(&sm2, &path, Some(&meta))?;
        for e in std::fs::read_dir(&sm2.snap_dir)?.flatten() {
            if e.file_name().to_string_lossy().starts_with("incoming-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(())
    })
    .await
    .map_err(|e| snap_err(std::io::Error::other(e)))?
    .map_err(to_storage)
}

fn read_u32(r: &mut impl Read) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn write_header(w: &mut impl Write, meta: &SnapshotMeta) -> Result<(), StoreError> {
    let m = bincode::serialize(meta).map_err(|source| StoreError::Decode {
        what: "meta",
        source,
    })?;
    w.write_all(MAGIC)?;
    w.write_all(&(m.len() as u32).to_be_bytes())?;
    w.write_all(&m)?;
    Ok(())
}

fn read_header(r: &mut impl Read) -> Result<SnapshotMeta, StoreError> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(StoreError::Snapshot("bad magic".into()));
    }
    let n = read_u32(r)? as usize;
    let mut m = vec![0u8; n];
    r.read_exact(&mut m)?;
    decode("snapshot meta", &m)
}

/// Read the records after a snapshot header up to the trailer, handing each to `f` as
/// (column family tag, key, value); checks the trailer's count. Returns the record count.
fn read_records(
    r: &mut impl Read,
    mut f: impl FnMut(u8, Vec<u8>, Vec<u8>) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut count: u64 = 0;
    loop {
        let mut tag = [0u8; 1];
        r.read_exact(&mut tag)?;
        if tag[0] == TAG_END {
            let mut c = [0u8; 8];
            r.read_exact(&mut c)?;
            let trailer = u64::from_be_bytes(c);
            if trailer != count {
                return Err(StoreError::Snapshot(format!(
                    "record count {count} does not match trailer {trailer}"
                )));
            }
            return Ok(count);
        }
        let kl = read_u32(r)? as usize;
        let mut k = vec![0u8; kl];
        r.read_exact(&mut k)?;
        let vl = read_u32(r)? as usize;
        let mut v = vec![0u8; vl];
        r.read_exact(&mut v)?;
        f(tag[0], k, v)?;
        count += 1;
    }
}

/// Check a snapshot or backup file end to end: magic, header, every record and the trailer's
/// count. Returns the header and the number of records.
pub fn verify_file(path: &Path) -> Result<(SnapshotMeta, u64), StoreError> {
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    let meta = read_header(&mut r)?;
    let count = read_records(&mut r, |tag, _, _| {
        if (tag as usize) < STATE_CFS.len() {
            Ok(())
        } else {
            Err(StoreError::Snapshot(format!(
                "unknown column family tag {tag}"
            )))
        }
    })?;
    Ok((meta, count))
}

/// Seed a node that has no state from a backup file (`hato restore`). The state machine gets
/// the backup's state under a membership of this node alone (`node_id` at `info`), and the Raft log starts
/// right after the backup's last entry with a vote for this node in that entry's term. The node
/// then elects itself and serves the restored state; nodes that join later receive it as a
/// snapshot, since no log entry before it exists. Refuses a node that already has state.
pub fn restore(
    log: &crate::LogStore,
    sm: &StateMachineStore,
    backup: &Path,
    node_id: crate::NodeId,
    info: crate::NodeInfo,
) -> Result<SnapshotMeta, StoreError> {
    let meta_cf = sm.db.cf_handle(CF_SM_META).expect("sm_meta");
    if sm.db.get_cf(meta_cf, keys::SM_LAST_APPLIED)?.is_some() || !log.is_pristine()? {
        return Err(StoreError::Snapshot(
            "this data directory already holds a node's state; restore into an empty one".into(),
        ));
    }
    let (old, _) = verify_file(backup)?;
    let last = old
        .last_log_id
        .ok_or_else(|| StoreError::Snapshot("the backup holds no applied entry".into()))?;
    let meta = SnapshotMeta {
        last_log_id: Some(last),
        last_membership: StoredMembership::new(
            Some(last),
            openraft::Membership::new(
                vec![std::collections::BTreeSet::from([node_id])],
                std::collections::BTreeMap::from([(node_id, info)]),
            ),
        ),
        snapshot_id: format!("restored-{}-{}", last.index, nanos()),
    };
    // The backup's records under a header carrying the new membership.
    let path = snap_path(&sm.snap_dir, &meta.snapshot_id);
    {
        let mut r = BufReader::with_capacity(1 << 20, File::open(backup)?);
        read_header(&mut r)?;
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&path)?);
        write_header(&mut w, &meta)?;
        std::io::copy(&mut r, &mut w)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    fsync_dir(&sm.snap_dir)?;
    install_from_file(sm, &path, None)?;
    log.seed_restored(
        &crate::types::Vote::new(last.leader_id.term, node_id),
        &last,
    )?;
    Ok(meta)
}

/// Rewrite the state column families from the snapshot file at `path`.
fn install_from_file(
    sm: &StateMachineStore,
    path: &Path,
    expect: Option<&SnapshotMeta>,
) -> Result<(), StoreError> {
    let db = &sm.db;
    let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
    let meta = read_header(&mut r)?;
    if let Some(expect) = expect {
        if expect.snapshot_id != meta.snapshot_id || expect.last_log_id != meta.last_log_id {
            return Err(StoreError::Snapshot(format!(
                "file holds snapshot {} but {} was announced",
                meta.snapshot_id, expect.snapshot_id
            )));
        }
    }
    let meta_cf = db.cf_handle(CF_SM_META).expect("sm_meta");

    // 1. Clear the state and mark the install as in progress, durably and atomically.
    let mut batch = WriteBatch::default();
    for name in STATE_CFS {
        let cf = db.cf_handle(name).expect("state column family");
        let last = db.iterator_cf(cf, IteratorMode::End).next().transpose()?;
        if let Some((last, _)) = last {
            batch.delete_range_cf(cf, b"" as &[u8], &last);
            batch.delete_cf(cf, &last);
        }
    }
    batch.put_cf(meta_cf, SM_INSTALLING, path.to_string_lossy().as_bytes());
    db.write_opt(batch, &sync_opts())?;

    // 2. Stream the records in.
    let cfs: Vec<_> = STATE_CFS
        .iter()
        .map(|n| db.cf_handle(n).expect("state column family"))
        .collect();
    let mut batch = WriteBatch::default();
    read_records(&mut r, |tag, k, v| {
        let cf = cfs
            .get(tag as usize)
            .ok_or_else(|| StoreError::Snapshot(format!("unknown column family tag {tag}")))?;
        batch.put_cf(*cf, &k, &v);
        if batch.size_in_bytes() > BATCH_BYTES {
            db.write(std::mem::take(&mut batch))?;
        }
        Ok(())
    })?;

    // 3. Record what the state now reflects and clear the marker, in one synced batch.
    batch.put_cf(
        meta_cf,
        keys::SM_MEMBERSHIP,
        bincode::serialize(&meta.last_membership).map_err(|source| StoreError::Decode {
            what: "membership",
            source,
        })?,
    );
    match &meta.last_log_id {
        Some(l) => batch.put_cf(
            meta_cf,
            keys::SM_LAST_APPLIED,
            bincode::serialize(l).map_err(|source| StoreError::Decode {
                what: "log id",
                source,
            })?,
        ),
        None => batch.delete_cf(meta_cf, keys::SM_LAST_APPLIED),
    }
    batch.delete_cf(meta_cf, SM_INSTALLING);
    db.write_opt(batch, &sync_opts())?;
    set_current(sm, &meta)?;
    Ok(())
}

/// Finish a snapshot install that a crash interrupted (called when the database is opened).
pub(crate) fn resume_interrupted_install(sm: &StateMachineStore) -> Result<(), StoreError> {
    let cf = sm.db.cf_handle(CF_SM_META).expect("sm_meta");
    let Some(p) = sm.db.get_cf(cf, SM_INSTALLING)? else {
        return Ok(());
    };
    let path = PathBuf::from(String::from_utf8_lossy(&p).to_string());
    tracing::warn!(path = %path.display(), "finishing an interrupted snapshot install");
    install_from_file(sm, &path, None)
}
