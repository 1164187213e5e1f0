//! Snapshot build / install round trips through real RocksDB instances.

use hato_storage::types::{Entry, LogId};
use hato_storage::{Command, LogStore, StateMachineStore};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{CommittedLeaderId, EntryPayload, RaftSnapshotBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn entry(index: u64, cmd: Command) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(cmd),
    }
}

fn open(dir: &std::path::Path) -> (LogStore, StateMachineStore) {
    hato_storage::open(dir).expect("open")
}

async fn fill(sm: &mut StateMachineStore, n: u64) {
    let mut entries = Vec::new();
    for i in 1..=n {
        entries.push(entry(
            i,
            Command::PutSetting {
                key: format!("k{i:05}"),
                value: format!("\"v{i}\""),
            },
        ));
    }
    entries.push(entry(
        n + 1,
        Command::Block {
            address: "Blocked@Example.com".into(),
            reason: "manual".into(),
            at_ms: 42,
        },
    ));
    sm.apply(entries).await.expect("apply");
}

async fn copy_into(src: Snapshot<hato_storage::TypeConfig>, dst: &mut StateMachineStore) {
    let mut data = Vec::new();
    let mut f = src.snapshot;
    f.read_to_end(&mut data).await.unwrap();
    let mut incoming = dst.begin_receiving_snapshot().await.unwrap();
    // Write in small chunks, the way openraft streams them.
    for chunk in data.chunks(1000) {
        incoming.write_all(chunk).await.unwrap();
    }
    dst.install_snapshot(&src.meta, incoming).await.unwrap();
}

#[tokio::test]
async fn snapshot_round_trip_replaces_state() {
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let (_la, mut a) = open(a_dir.path());
    let (_lb, mut b) = open(b_dir.path());
    fill(&mut a, 2000).await;
    // b has state that the snapshot must remove.
    b.apply(vec![entry(
        1,
        Command::PutSetting {
            key: "stale".into(),
            value: "1".into(),
        },
    )])
    .await
    .unwrap();

    let snap = a
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(snap.meta.last_log_id.unwrap().index, 2001);
    copy_into(snap, &mut b).await;

    let r = b.reader();
    assert_eq!(r.setting("k01999").unwrap().as_deref(), Some("\"v1999\""));
    assert_eq!(r.setting("stale").unwrap(), None);
    assert!(r.block("blocked@example.com").unwrap().is_some());
    let (applied, _) = b.applied_state().await.unwrap();
    assert_eq!(applied.unwrap().index, 2001);
    let cur = b
        .get_current_snapshot()
        .await
        .unwrap()
        .expect("current snapshot");
    assert_eq!(cur.meta.last_log_id.unwrap().index, 2001);
    assert_eq!(r.settings_with_prefix("k0").unwrap().len(), 2000);
}

#[tokio::test]
async fn state_and_snapshot_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_l, mut sm) = open(dir.path());
        fill(&mut sm, 10).await;
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
    }
    let (_l, mut sm) = open(dir.path());
    let cur = sm
        .get_current_snapshot()
        .await
        .unwrap()
        .expect("snapshot kept");
    assert_eq!(cur.meta.last_log_id.unwrap().index, 11);
    assert_eq!(
        sm.reader().setting("k00003").unwrap().as_deref(),
        Some("\"v3\"")
    );
}

#[tokio::test]
async fn corrupt_snapshot_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let (_l, mut sm) = open(dir.path());
    fill(&mut sm, 5).await;
    let snap = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut incoming = sm.begin_receiving_snapshot().await.unwrap();
    incoming.write_all(b"not a snapshot at all").await.unwrap();
    assert!(sm.install_snapshot(&snap.meta, incoming).await.is_err());
}

#[tokio::test]
async fn a_backup_seeds_an_empty_node_as_a_cluster_of_its_own() {
    use openraft::storage::RaftLogStorage;
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let (_la, mut a) = open(a_dir.path());
    fill(&mut a, 50).await;
    a.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let (_, file) = hato_storage::snapshot::current_file(&a).unwrap().unwrap();
    let (meta, records) = hato_storage::snapshot::verify_file(&file).unwrap();
    assert_eq!(meta.last_log_id.unwrap().index, 51);
    assert!(records >= 51, "{records}");

    // A truncated copy fails the check.
    let bytes = std::fs::read(&file).unwrap();
    let cut = b_dir.path().join("cut.snap");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert!(hato_storage::snapshot::verify_file(&cut).is_err());

    let (mut lb, mut b) = open(&b_dir.path().join("node"));
    let info = hato_storage::NodeInfo {
        raft_addr: "10.0.0.9:9400".into(),
        http_addr: "10.0.0.9:8400".into(),
    };
    let restored = hato_storage::snapshot::restore(&lb, &b, &file, 9, info.clone()).unwrap();
    assert_eq!(restored.last_log_id, meta.last_log_id);

    // The state is there, the node alone is the membership, the log starts after the backup.
    assert_eq!(
        b.reader().setting("k00050").unwrap().as_deref(),
        Some("\"v50\"")
    );
    let (applied, membership) = b.applied_state().await.unwrap();
    assert_eq!(applied, meta.last_log_id);
    assert_eq!(
        membership.membership().voter_ids().collect::<Vec<_>>(),
        vec![9]
    );
    assert_eq!(membership.membership().get_node(&9), Some(&info));
    let st = lb.get_log_state().await.unwrap();
    assert_eq!(st.last_purged_log_id, meta.last_log_id);
    assert_eq!(st.last_log_id, meta.last_log_id);
    let vote = lb.read_vote().await.unwrap().unwrap();
    assert_eq!(vote.leader_id().voted_for(), Some(9));
    // Joining nodes are sent this snapshot, carrying the new membership.
    let cur = b.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(
        cur.meta
            .last_membership
            .membership()
            .voter_ids()
            .collect::<Vec<_>>(),
        vec![9]
    );

    // A second restore into a node with state is refused and changes nothing.
    assert!(hato_storage::snapshot::restore(&lb, &b, &file, 10, Default::default()).is_err());
    let (_, membership) = b.applied_state().await.unwrap();
    assert_eq!(
        membership.membership().voter_ids().collect::<Vec<_>>(),
        vec![9]
    );
}
