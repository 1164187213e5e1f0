//! The log store keeps its newest entries in memory; reads must not be able to tell. A random
//! sequence of appends (small and large entries, so the memory bound evicts), truncations and
//! purges is checked against a model after every step, through the running store (memory where
//! it can) and, at the end, through a reopened one (RocksDB only).

use std::collections::BTreeMap;
use std::ops::Bound;

use hato_storage::log_store::MAX_APPEND_BYTES;
use hato_storage::types::Entry;
use hato_storage::{Command, LogStore};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{EntryPayload, RaftLogReader};

mod common;

/// xorshift64: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn entry(term: u64, index: u64, body_len: usize) -> Entry {
    let body = (0..body_len).map(|i| (i as u64 ^ index) as u8).collect();
    common::enqueue_entry(term, index, body)
}

fn body_len(e: &Entry) -> usize {
    match &e.payload {
        EntryPayload::Normal(Command::Enqueue(m)) => m.body.len(),
        _ => 0,
    }
}

/// Entries compared by their encoding (what the log stores).
fn encoded(entries: &[Entry]) -> Vec<Vec<u8>> {
    entries
        .iter()
        .map(|e| bincode::serialize(e).expect("encode"))
        .collect()
}

async fn check_reads(log: &mut LogStore, model: &BTreeMap<u64, Entry>, rng: &mut Rng, step: usize) {
    let last = model.keys().next_back().copied().unwrap_or(0);
    for _ in 0..8 {
        let start = rng.below(last + 3);
        let range = match rng.below(3) {
            0 => (Bound::Included(start), Bound::Unbounded),
            1 => (
                Bound::Included(start),
                Bound::Excluded(start + rng.below(6)),
            ),
            _ => (
                Bound::Included(start),
                Bound::Included(start + rng.below(6)),
            ),
        };
        let got = log.try_get_log_entries(range).await.expect("read");
        let want: Vec<Entry> = model.range(range).map(|(_, e)| e.clone()).collect();
        assert_eq!(
            encoded(&got),
            encoded(&want),
            "step {step}: range {range:?} (log ends at {last})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_served_from_memory_match_the_log_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut model: BTreeMap<u64, Entry> = BTreeMap::new();
    let mut purged = 0u64;
    let mut term = 1u64;
    let (mut log, sm) = hato_storage::open(dir.path()).expect("open");
    let mut evicting_reads = 0;
    for step in 0..300 {
        let last = model.keys().next_back().copied().unwrap_or(purged);
        match rng.below(20) {
            // Append one to four entries; one in four is 1-3 MB, so the 16 MB bound evicts.
            0..=14 => {
                let n = 1 + rng.below(4);
                let mut batch = Vec::new();
                for i in 1..=n {
                    let len = if rng.below(4) == 0 {
                        (1 << 20) + rng.below(2 << 20) as usize
                    } else {
                        rng.below(4096) as usize
                    };
                    batch.push(entry(term, last + i, len));
                }
                for e in &batch {
                    model.insert(e.log_id.index, e.clone());
                }
                log.blocking_append(batch).await.expect("append");
            }
            // A new leader overwrote the tail: truncate a few entries, append in a later term.
            15..=17 if last > purged + 1 => {
                let at = last - rng.below((last - purged - 1).min(5));
                let id = model[&at].log_id;
                log.truncate(id).await.expect("truncate");
                model.split_off(&at);
                term += 1;
            }
            18 if last > purged + 2 => {
                let to = purged + 1 + rng.below((last - purged) / 4);
                let id = model[&to].log_id;
                log.purge(id).await.expect("purge");
                model = model.split_off(&(to + 1));
                purged = to;
            }
            _ => {}
        }
        // With more than the memory bound in the log, reads reaching back exercise RocksDB.
        let bytes: usize = model.values().map(body_len).sum();
        if bytes > 20 << 20 {
            evicting_reads += 1;
        }
        check_reads(&mut log, &model, &mut rng, step).await;
    }
    assert!(
        evicting_reads > 50,
        "the log never outgrew the memory bound"
    );
    drop((log, sm));

    // Reopened: nothing in memory, every read from RocksDB.
    let (mut log, _sm) = hato_storage::open(dir.path()).expect("reopen");
    for step in 0..50 {
        check_reads(&mut log, &model, &mut rng, 1000 + step).await;
    }
    let state = log.get_log_state().await.expect("state");
    assert_eq!(
        state.last_log_id.map(|l| l.index),
        model
            .keys()
            .next_back()
            .copied()
            .or(Some(purged))
            .filter(|&i| i > 0)
    );
}

/// What one AppendEntries carries is bounded in bytes, from memory and from RocksDB alike:
/// the longest prefix of the range within `MAX_APPEND_BYTES`, or the first entry alone if
/// that is larger. (Unbounded, a follower that fell behind under 100 KB messages was sent
/// everything it lacked in one RPC, which never finished within the heartbeat interval.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_reads_are_bounded_in_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Twelve 1 MB entries, then one larger than the bound.
    let mut model: Vec<Entry> = (1..=12).map(|i| entry(1, i, 1 << 20)).collect();
    model.push(entry(1, 13, MAX_APPEND_BYTES + (1 << 20)));
    let (mut log, sm) = hato_storage::open(dir.path()).expect("open");
    log.blocking_append(model.clone()).await.expect("append");
    check_bounded_reads(&mut log, &model, "in memory").await;
    drop((log, sm));
    let (mut log, _sm) = hato_storage::open(dir.path()).expect("reopen");
    check_bounded_reads(&mut log, &model, "reopened").await;
}

async fn check_bounded_reads(log: &mut LogStore, model: &[Entry], how: &str) {
    let size = |e: &Entry| bincode::serialize(e).expect("encode").len();
    // The longest prefix of the entries [from, to) within the bound, at least one entry.
    let want = |from: u64, to: u64| {
        let mut bytes = 0;
        let mut out = Vec::new();
        for e in &model[(from - 1) as usize..(to - 1) as usize] {
            if !out.is_empty() && bytes + size(e) > MAX_APPEND_BYTES {
                break;
            }
            bytes += size(e);
            out.push(e.clone());
        }
        out
    };
    for (from, to) in [(1, 14), (5, 9), (10, 14), (12, 14), (13, 14), (2, 3)] {
        let got = log.limited_get_log_entries(from, to).await.expect("read");
        assert_eq!(
            encoded(&got),
            encoded(&want(from, to)),
            "{from}..{to}, {how}"
        );
    }
    // The bound cuts a long range short, and never to nothing.
    let got = log.limited_get_log_entries(1, 14).await.expect("read");
    assert!((2..12).contains(&got.len()), "{} entries, {how}", got.len());
    let alone = log.limited_get_log_entries(13, 14).await.expect("read");
    assert_eq!(alone.len(), 1, "{how}");
    // Reads other than replication's stay whole.
    let all = log.try_get_log_entries(1..14).await.expect("read");
    assert_eq!(encoded(&all), encoded(model), "{how}");
}
