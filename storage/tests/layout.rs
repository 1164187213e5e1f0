//! The Raft log has its own database (`data_dir/raft`), apart from the state machine's
//! (`data_dir/db`). A data directory written before the split, with the log's column families
//! inside `db`, is converted when it is opened, and a conversion that was cut short starts
//! again from the old layout.

use std::path::Path;

use hato_storage::keys;
use hato_storage::types::{Entry, Vote};
use hato_storage::LogStore;
use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::RaftLogReader;
use rocksdb::{IteratorMode, Options, DB};

mod common;

fn entry(index: u64, body_len: usize) -> Entry {
    common::enqueue_entry(2, index, vec![b'a' + (index % 26) as u8; body_len])
}

fn encoded(entries: &[Entry]) -> Vec<Vec<u8>> {
    entries
        .iter()
        .map(|e| bincode::serialize(e).expect("encode"))
        .collect()
}

/// Move the log's column families into `db` and delete `raft`: the layout of a data directory
/// written before the log had a database of its own.
fn make_old_layout(dir: &Path) {
    let mut opts = Options::default();
    opts.create_missing_column_families(true);
    let log = DB::open_cf(&opts, dir.join("raft"), keys::LOG_CFS).expect("open raft");
    let mut all = keys::state_db_cfs();
    all.extend_from_slice(keys::LOG_CFS);
    let state = DB::open_cf(&opts, dir.join("db"), &all).expect("open db");
    for name in keys::LOG_CFS {
        let (from, to) = (log.cf_handle(name).unwrap(), state.cf_handle(name).unwrap());
        for item in log.iterator_cf(from, IteratorMode::Start) {
            let (k, v) = item.expect("read");
            state.put_cf(to, k, v).expect("write");
        }
    }
    drop((log, state));
    std::fs::remove_dir_all(dir.join("raft")).expect("remove raft");
}

async fn assert_log(log: &mut LogStore, want: &[Entry], vote: &Vote) {
    assert_eq!(log.read_vote().await.expect("vote").as_ref(), Some(vote));
    let got = log.try_get_log_entries(0..).await.expect("entries");
    assert_eq!(encoded(&got), encoded(want));
    let state = log.get_log_state().await.expect("state");
    assert_eq!(state.last_log_id, want.last().map(|e| e.log_id));
}

fn state_db_has_log_cfs(dir: &Path) -> bool {
    let names = DB::list_cf(&Options::default(), dir.join("db")).expect("list column families");
    keys::LOG_CFS.iter().any(|c| names.iter().any(|n| n == c))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_with_the_log_in_the_state_database_is_converted_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vote = Vote::new(2, 1);
    // 40 entries, every fifth with a 300 KB body, so the copy spans several write batches.
    let entries: Vec<Entry> = (1..=40)
        .map(|i| entry(i, if i % 5 == 0 { 300 << 10 } else { 100 }))
        .collect();
    {
        let (mut log, _sm) = hato_storage::open(dir.path()).expect("open");
        log.save_vote(&vote).await.expect("vote");
        log.blocking_append(entries.clone()).await.expect("append");
    }
    make_old_layout(dir.path());
    assert!(state_db_has_log_cfs(dir.path()));
    // A conversion cut short by a crash left a partial copy behind.
    std::fs::create_dir_all(dir.path().join("raft.new")).expect("mkdir");
    std::fs::write(dir.path().join("raft.new/CURRENT"), b"garbage").expect("write");

    let (mut log, sm) = hato_storage::open(dir.path()).expect("open the old layout");
    assert_log(&mut log, &entries, &vote).await;
    assert!(dir.path().join("raft").is_dir());
    assert!(!dir.path().join("raft.new").exists());
    assert!(
        !state_db_has_log_cfs(dir.path()),
        "the old copy stays in db"
    );

    // It keeps working, and opens again as the new layout.
    let more = vec![entry(41, 200)];
    log.blocking_append(more.clone()).await.expect("append");
    drop((log, sm));
    let (mut log, _sm) = hato_storage::open(dir.path()).expect("reopen");
    assert_log(&mut log, &[entries, more].concat(), &vote).await;
}

/// The committed log id lives with the state (written without a WAL, on disk with the state's
/// flush), so saving it never waits behind an append's fsync; a value an older version kept in
/// the log's metadata is still read until a new one is saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_index_is_kept_with_the_state() {
    use hato_storage::types::LogId;
    use openraft::CommittedLeaderId;
    let id = |i| LogId::new(CommittedLeaderId::new(2, 1), i);
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _sm) = hato_storage::open(dir.path()).expect("open");
        assert_eq!(log.read_committed().await.expect("read"), None);
    }
    // An older version's value, in the log's metadata.
    {
        let log = DB::open_cf(&Options::default(), dir.path().join("raft"), keys::LOG_CFS)
            .expect("open raft");
        let cf = log.cf_handle(keys::CF_RAFT_META).expect("raft_meta");
        let v = bincode::serialize(&Some(id(7))).expect("encode");
        log.put_cf(cf, keys::META_COMMITTED, v).expect("write");
    }
    {
        let (mut log, _sm) = hato_storage::open(dir.path()).expect("open");
        assert_eq!(log.read_committed().await.expect("read"), Some(id(7)));
        log.save_committed(Some(id(9))).await.expect("save");
        assert_eq!(log.read_committed().await.expect("read"), Some(id(9)));
    }
    let (mut log, _sm) = hato_storage::open(dir.path()).expect("reopen");
    assert_eq!(
        log.read_committed().await.expect("read"),
        Some(id(9)),
        "flushed with the state when the database closed"
    );
    let state = DB::open_cf_for_read_only(
        &Options::default(),
        dir.path().join("db"),
        keys::state_db_cfs(),
        false,
    )
    .expect("open db read-only");
    let cf = state.cf_handle(keys::CF_SM_META).expect("sm_meta");
    assert!(state.get_cf(cf, keys::SM_COMMITTED).expect("get").is_some());
}
