//! Every column family name and key encoding in one place.
//!
//! Keys are byte strings ordered the way they are scanned: big-endian integers, and text keys
//! lower-cased where the product treats them case-insensitively (e-mail addresses).

/// Raft log entries, key = log index (u64 big-endian).
pub const CF_RAFT_LOG: &str = "raft_log";
/// Raft vote, committed id, last purged id.
pub const CF_RAFT_META: &str = "raft_meta";
/// State-machine metadata: last applied log id, last membership, current snapshot meta.
pub const CF_SM_META: &str = "sm_meta";
/// Queued recipients (message meta and per-recipient state).
pub const CF_QUEUE: &str = "queue";
/// Message bodies, stored once under the message id.
pub const CF_BODIES: &str = "bodies";
/// Delivery log records (queued/succeeded/deferred/failed/blocked).
pub const CF_DELIVERY_LOG: &str = "delivery_log";
/// Block list, key = lower-cased address.
pub const CF_BLOCKS: &str = "blocks";
/// Bounce records.
pub const CF_BOUNCES: &str = "bounces";
/// Statistics counters.
pub const CF_STATS: &str = "stats";
/// Webhook outbox (events written in the same batch as the change that caused them).
pub const CF_OUTBOX: &str = "outbox";
/// Cluster-wide settings (API users, SMTP credentials, domains, ...), key = setting name.
pub const CF_SETTINGS: &str = "settings";

/// Column families that make up the replicated state machine, in snapshot order.
/// The position in this list is the column-family tag written into snapshot files, so only
/// append to it.
pub const STATE_CFS: &[&str] = &[
    CF_QUEUE,
    CF_BODIES,
    CF_DELIVERY_LOG,
    CF_BLOCKS,
    CF_BOUNCES,
    CF_STATS,
    CF_OUTBOX,
    CF_SETTINGS,
];

/// Column families of the Raft log's database (`data_dir/raft`).
pub const LOG_CFS: &[&str] = &[CF_RAFT_LOG, CF_RAFT_META];

/// Column families of the state machine's database (`data_dir/db`).
pub fn state_db_cfs() -> Vec<&'static str> {
    let mut v = vec![CF_SM_META];
    v.extend_from_slice(STATE_CFS);
    v
}

pub const META_VOTE: &[u8] = b"vote";
/// The committed log id before it moved to the state's `sm_meta` (read when that has none).
pub const META_COMMITTED: &[u8] = b"committed";
pub const META_LAST_PURGED: &[u8] = b"last_purged";
pub const SM_LAST_APPLIED: &[u8] = b"last_applied";
/// The committed log id, a hint for re-applying after a restart (`LogStore::save_committed`).
pub const SM_COMMITTED: &[u8] = b"committed";
pub const SM_MEMBERSHIP: &[u8] = b"membership";
pub const SM_SNAPSHOT_META: &[u8] = b"snapshot_meta";
pub const SM_SNAPSHOT_SEQ: &[u8] = b"snapshot_seq";

/// Raft log key for `index`.
pub fn log_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

/// Inverse of [`log_key`].
pub fn log_index(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[..8]);
    u64::from_be_bytes(b)
}

/// Block-list key: addresses compare case-insensitively.
pub fn block_key(address: &str) -> Vec<u8> {
    address.trim().to_lowercase().into_bytes()
}

/// Settings key.
pub fn setting_key(name: &str) -> Vec<u8> {
    name.as_bytes().to_vec()
}

/// Queue key of a message's metadata.
pub fn message_key(id: &str) -> Vec<u8> {
    let mut k = b"m/".to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

/// Pending-recipient key (`w/{id}/{rcpt}`): its [`crate::command::WorkItem`].
pub fn work_key(id: &str, rcpt: u32) -> Vec<u8> {
    format!("w/{id}/{rcpt:05}").into_bytes()
}

/// Prefix of all pending recipients of a message.
pub fn work_prefix(id: &str) -> Vec<u8> {
    format!("w/{id}/").into_bytes()
}

/// Parse a [`work_key`] back into `(id, rcpt)`.
pub fn parse_work_key(key: &[u8]) -> Option<(String, u32)> {
    let s = std::str::from_utf8(key.strip_prefix(b"w/")?).ok()?;
    let (id, rcpt) = s.rsplit_once('/')?;
    Some((id.to_string(), rcpt.parse().ok()?))
}

/// Due-index key (`d/{due}/{id}/{rcpt}`): scanned in time order by delivery workers.
pub fn due_key(due_ms: u64, id: &str, rcpt: u32) -> Vec<u8> {
    format!("d/{due_ms:016x}/{id}/{rcpt:05}").into_bytes()
}

/// Parse a [`due_key`] into `(due_ms, id, rcpt)`.
pub fn parse_due_key(key: &[u8]) -> Option<(u64, String, u32)> {
    let s = std::str::from_utf8(key.strip_prefix(b"d/")?).ok()?;
    let (due, rest) = s.split_once('/')?;
    let (id, rcpt) = rest.rsplit_once('/')?;
    Some((
        u64::from_str_radix(due, 16).ok()?,
        id.to_string(),
        rcpt.parse().ok()?,
    ))
}

/// Counter of pending recipients in the queue column family.
pub const QUEUE_PENDING: &[u8] = b"c/pending";

/// Auto-block failure counter of an address and reason, in the bounces column family. The
/// `~` prefix sorts after every time-ordered bounce key, so bounce scans stop before it.
pub fn failure_counter_key(address: &str, reason: &str) -> Vec<u8> {
    format!("~count/{}/{reason}", address.trim().to_lowercase()).into_bytes()
}

/// Outbox key of event `seq`.
pub fn outbox_key(seq: u64) -> Vec<u8> {
    let mut k = b"e/".to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// An endpoint's dispatch cursor (next sequence number to deliver) in the outbox CF.
pub fn outbox_cursor_key(endpoint: &str) -> Vec<u8> {
    format!("c/{endpoint}").into_bytes()
}

/// A recorded webhook failure, time-ordered, in the outbox CF.
pub fn outbox_failure_key(at_ms: u64, endpoint: &str, first_seq: u64) -> Vec<u8> {
    format!("f/{at_ms:016x}/{endpoint}/{first_seq:016x}").into_bytes()
}

/// The next outbox sequence number (in the outbox column family).
pub const OUTBOX_NEXT: &[u8] = b"~next";

/// Setting that holds the auto-block rules (JSON [`crate::command::AutoBlockRules`]).
pub const AUTOBLOCK_RULES: &str = "autoblock/rules";

/// Retention (setting, JSON number of days): delivery-log, bounce and audit records, finished
/// messages' bodies and statistics older than this are purged. Absent: keep everything.
pub const RETENTION_DAYS: &str = "retention/days";

/// Bounce-record key: time-ordered like the delivery log.
pub fn bounce_key(at_ms: u64, id: &str, rcpt: u32) -> Vec<u8> {
    format!("{at_ms:016x}/{id}/{rcpt:05}").into_bytes()
}

/// Body key of a message.
pub fn body_key(id: &str) -> Vec<u8> {
    id.as_bytes().to_vec()
}

/// Delivery-log key: time-ordered, unique per (message, recipient, event sequence number);
/// events of one recipient sort in the order they happened.
pub fn delivery_key(at_ms: u64, id: &str, rcpt: usize, seq: u32) -> Vec<u8> {
    format!("{at_ms:016x}/{id}/{rcpt:04}/{seq:04}").into_bytes()
}

/// Daily statistics counter key (`day` = days since the Unix epoch, UTC).
pub fn stat_key(day: u64, counter: &str) -> Vec<u8> {
    format!("d/{day:08}/{counter}").into_bytes()
}

/// Per-minute statistics counter key (`minute` = minutes since the Unix epoch).
pub fn minute_stat_key(minute: u64, counter: &str) -> Vec<u8> {
    format!("m/{minute:010}/{counter}").into_bytes()
}

/// Prefix of the per-reason bounce counters (`reason/userunknown`, ...), kept per day and
/// minute like every counter.
pub const REASON_COUNTER: &str = "reason/";

/// The UTC day number of a timestamp.
pub fn day_of(ms: u64) -> u64 {
    ms / 86_400_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_keys_round_trip_and_sort_by_time() {
        assert_eq!(
            parse_work_key(&work_key("0a1b-c/d", 7)),
            Some(("0a1b-c/d".to_string(), 7))
        );
        assert_eq!(
            parse_due_key(&due_key(1_700_000_000_000, "x/y", 42)),
            Some((1_700_000_000_000, "x/y".to_string(), 42))
        );
        assert!(due_key(9, "z", 0) < due_key(10, "a", 0));
        assert!(due_key(0xff, "z", 0) < due_key(0x100, "a", 0));
        assert!(work_key("a", 0).starts_with(&work_prefix("a")));
        assert!(!work_key("ab", 0).starts_with(&work_prefix("a")));
    }

    #[test]
    fn log_keys_sort_numerically() {
        assert!(log_key(2) < log_key(10));
        assert!(log_key(255) < log_key(256));
        assert_eq!(log_index(&log_key(123_456)), 123_456);
    }

    #[test]
    fn block_keys_ignore_case_and_spaces() {
        assert_eq!(
            block_key(" User@Example.COM "),
            b"user@example.com".to_vec()
        );
    }

    #[test]
    fn delivery_keys_sort_by_time() {
        assert!(delivery_key(9, "b", 0, 0) < delivery_key(10, "a", 0, 0));
        assert!(delivery_key(0xff, "a", 0, 0) < delivery_key(0x100, "a", 0, 0));
        assert!(delivery_key(5, "a", 0, 0) < delivery_key(5, "a", 0, 1));
        assert_eq!(day_of(86_400_000 * 3 + 5), 3);
    }

    #[test]
    fn state_cfs_do_not_include_raft_cfs() {
        assert!(!STATE_CFS.contains(&CF_RAFT_LOG));
        assert_eq!(state_db_cfs().len(), STATE_CFS.len() + 1);
        assert!(state_db_cfs().iter().all(|c| !LOG_CFS.contains(c)));
    }
}
