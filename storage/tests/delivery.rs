//! The delivery state machine (claim / complete / retry / delete) on a real RocksDB, applied
//! the way Raft applies it: in runs of entries, whose boundaries must not change the result.

use hato_storage::command::{
    Claim, Complete, NewMessage, Outcome, OutcomeKind, RecipientStatus, WorkItem,
};
use hato_storage::types::{Entry, LogId};
use hato_storage::{Command, CommandResult, StateMachineStore};
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, EntryPayload};

struct Sm {
    sm: StateMachineStore,
    index: u64,
    _dir: tempfile::TempDir,
}

impl Sm {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (_, sm) = hato_storage::open(dir.path()).unwrap();
        Sm {
            sm,
            index: 0,
            _dir: dir,
        }
    }

    async fn apply_all(&mut self, cmds: Vec<Command>) -> Vec<CommandResult> {
        let entries: Vec<Entry> = cmds
            .into_iter()
            .map(|c| {
                self.index += 1;
                Entry {
                    log_id: LogId::new(CommittedLeaderId::new(1, 1), self.index),
                    payload: EntryPayload::Normal(c),
                }
            })
            .collect();
        self.sm.apply(entries).await.unwrap()
    }

    async fn apply(&mut self, cmd: Command) -> CommandResult {
        self.apply_all(vec![cmd]).await.remove(0)
    }

    fn work(&self, id: &str) -> Vec<(u32, WorkItem)> {
        self.sm.reader().work_items(id).unwrap()
    }
}

fn message(id: &str, rcpts: &[&str], at: u64) -> Command {
    Command::Enqueue(Box::new(NewMessage {
        id: id.into(),
        received_ms: at,
        via: "smtp".into(),
        source_ip: "192.0.2.1".into(),
        auth_user: None,
        api_data: Some("tag".into()),
        mail_from: "app@example.com".into(),
        recipients: rcpts.iter().map(|r| r.to_string()).collect(),
        subject: "hi".into(),
        message_id: Some("<m@example.com>".into()),
        body: bytes::Bytes::from_static(b"Subject: hi\r\n\r\nbody\r\n"),
    }))
}

fn claim(node: u64, at_ms: u64, items: &[(&str, u32)]) -> Command {
    Command::Claim(Box::new(Claim {
        node,
        at_ms,
        lease_ms: 1000,
        items: items.iter().map(|(i, r)| (i.to_string(), *r)).collect(),
    }))
}

fn outcome(id: &str, rcpt: u32, at_ms: u64, kind: OutcomeKind) -> Outcome {
    Outcome {
        id: id.into(),
        rcpt,
        at_ms,
        kind,
        remote: "mx.example[127.0.0.1]:25".into(),
        reply: "250 2.0.0 Ok".into(),
        egress_ip: "127.0.0.1".into(),
        return_path: "b+x@bounce.example".into(),
    }
}

fn complete(node: u64, outcomes: Vec<Outcome>) -> Command {
    Command::Complete(Box::new(Complete { node, outcomes }))
}

#[tokio::test]
async fn a_recipient_is_leased_to_one_node_until_the_lease_expires() {
    let mut s = Sm::new();
    s.apply(message("m1", &["a@x.example", "b@y.example"], 100))
        .await;
    let r = s.sm.reader();
    assert_eq!(r.pending_count().unwrap(), 2);
    assert_eq!(
        r.due(99, 10).unwrap().len(),
        0,
        "nothing due before acceptance"
    );
    assert_eq!(r.due(100, 10).unwrap().len(), 2);

    // Node 1 takes both; node 2 asking at the same time gets nothing.
    let got = s.apply(claim(1, 200, &[("m1", 0), ("m1", 1)])).await;
    assert_eq!(got, CommandResult::Claimed(vec![true, true]));
    let got = s.apply(claim(2, 300, &[("m1", 0), ("m1", 1)])).await;
    assert_eq!(got, CommandResult::Claimed(vec![false, false]));
    assert!(
        r.due(1199, 10).unwrap().is_empty(),
        "leased items are not due"
    );

    // Node 1 dies; at 1200 its lease has run out and node 2 takes over.
    assert_eq!(r.due(1200, 10).unwrap().len(), 2);
    let got = s.apply(claim(2, 1200, &[("m1", 0)])).await;
    assert_eq!(got, CommandResult::Claimed(vec![true]));
    // Node 1 comes back and reports a late deferral: the new holder owns the schedule.
    s.apply(complete(
        1,
        vec![outcome(
            "m1",
            0,
            1300,
            OutcomeKind::Deferred { next_at_ms: 9000 },
        )],
    ))
    .await;
    let w = s.work("m1");
    assert_eq!(w[0].1.lease.as_ref().unwrap().node, 2);
    assert_eq!(w[0].1.attempts, 0);
}

#[tokio::test]
async fn outcomes_finalise_defer_and_count() {
    let mut s = Sm::new();
    s.apply(message("m1", &["ok@x", "later@x", "bad@x"], 100))
        .await;
    s.apply(claim(1, 100, &[("m1", 0), ("m1", 1), ("m1", 2)]))
        .await;
    let got = s
        .apply(complete(
            1,
            vec![
                outcome("m1", 0, 150, OutcomeKind::Succeeded),
                outcome("m1", 1, 150, OutcomeKind::Deferred { next_at_ms: 5000 }),
                outcome(
                    "m1",
                    2,
                    150,
                    OutcomeKind::Failed {
                        reason: "userunknown".into(),
                        code: 2,
                    },
                ),
            ],
        ))
        .await;
    assert_eq!(got, CommandResult::Count(3));
    let r = s.sm.reader();
    let meta = r.message("m1").unwrap().unwrap();
    let st: Vec<_> = meta.recipients.iter().map(|r| r.status).collect();
    assert_eq!(
        st,
        vec![
            RecipientStatus::Succeeded,
            RecipientStatus::Queued,
            RecipientStatus::Failed
        ]
    );
    assert_eq!(r.pending_count().unwrap(), 1);
    let w = s.work("m1");
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].0, w[0].1.attempts, w[0].1.next_at_ms), (1, 1, 5000));
    assert!(w[0].1.lease.is_none());
    assert!(r.due(4999, 10).unwrap().is_empty());
    assert_eq!(r.due(5000, 10).unwrap().len(), 1);

    let log = r.deliveries(0, 100).unwrap();
    let statuses: Vec<_> = log
        .iter()
        .map(|d| (d.recipient.as_str(), d.status.as_str()))
        .collect();
    for want in [
        ("ok@x", "queued"),
        ("ok@x", "succeeded"),
        ("later@x", "deferred"),
        ("bad@x", "failed"),
    ] {
        assert!(statuses.contains(&want), "{want:?} in {statuses:?}");
    }
    let failed = log.iter().find(|d| d.status == "failed").unwrap();
    assert_eq!(failed.reason, "userunknown");
    assert_eq!(failed.remote, "mx.example[127.0.0.1]:25");
    let bounces = r.bounces(0, 10).unwrap();
    assert_eq!(bounces.len(), 1);
    assert_eq!(
        (bounces[0].recipient.as_str(), bounces[0].code),
        ("bad@x", 2)
    );
    let day = 0;
    assert_eq!(r.stat(day, "succeeded").unwrap(), 1);
    assert_eq!(r.stat(day, "failed").unwrap(), 1);
    assert_eq!(r.stat(day, "deferred").unwrap(), 1);

    // A late duplicate success (after the recipient was finished) changes nothing but the
    // duplicate counter.
    s.apply(complete(
        2,
        vec![outcome("m1", 0, 160, OutcomeKind::Succeeded)],
    ))
    .await;
    assert_eq!(r.stat(day, "duplicate").unwrap(), 1);
    assert_eq!(r.stat(day, "succeeded").unwrap(), 1);
}

fn leased(message: Command, node: u64, lease_ms: u64) -> Command {
    let Command::Enqueue(message) = message else {
        unreachable!()
    };
    Command::EnqueueLeased {
        message,
        node,
        lease_ms,
    }
}

#[tokio::test]
async fn an_enqueue_can_lease_the_message_to_the_accepting_node() {
    let mut s = Sm::new();
    let got = s
        .apply(leased(
            message("m1", &["a@x.example", "b@y.example"], 100),
            2,
            1000,
        ))
        .await;
    assert_eq!(
        got,
        CommandResult::Enqueued {
            queued: 2,
            blocked: 0,
            duplicate: false
        }
    );
    let r = s.sm.reader();
    assert_eq!(r.pending_count().unwrap(), 2);
    for (_, item) in s.work("m1") {
        let lease = item.lease.expect("leased at enqueue");
        assert_eq!((lease.node, lease.until_ms), (2, 1100));
    }
    // Leased: not due, and no other node can claim it, until the lease runs out.
    assert!(r.due(1099, 10).unwrap().is_empty());
    let got = s.apply(claim(1, 500, &[("m1", 0), ("m1", 1)])).await;
    assert_eq!(got, CommandResult::Claimed(vec![false, false]));
    assert_eq!(r.due(1100, 10).unwrap().len(), 2);
    // The holder records its outcome like any claimed attempt.
    s.apply(complete(
        2,
        vec![outcome("m1", 0, 600, OutcomeKind::Succeeded)],
    ))
    .await;
    assert_eq!(r.pending_count().unwrap(), 1);

    // Applying the same message again changes nothing, lease included.
    let again = s
        .apply(leased(
            message("m1", &["a@x.example", "b@y.example"], 100),
            3,
            1000,
        ))
        .await;
    assert!(matches!(
        again,
        CommandResult::Enqueued {
            duplicate: true,
            ..
        }
    ));
    assert_eq!(s.work("m1")[0].1.lease.as_ref().unwrap().node, 2);

    // One recipient on the block list: no lease for any (the workers only take messages
    // that are wholly deliverable); the other waits in the due queue.
    s.apply(Command::Block {
        address: "blocked@x.example".into(),
        reason: "manual".into(),
        at_ms: 10,
    })
    .await;
    let got = s
        .apply(leased(
            message("m2", &["blocked@x.example", "ok@x.example"], 100),
            2,
            1000,
        ))
        .await;
    assert_eq!(
        got,
        CommandResult::Enqueued {
            queued: 1,
            blocked: 1,
            duplicate: false
        }
    );
    let work = s.work("m2");
    assert_eq!(work.len(), 1);
    assert!(work[0].1.lease.is_none());
    assert_eq!(r.due(100, 10).unwrap().len(), 1);
}

#[tokio::test]
async fn a_block_while_queued_stops_the_next_attempt() {
    let mut s = Sm::new();
    s.apply(message("m1", &["a@x"], 100)).await;
    s.apply(Command::Block {
        address: "A@X".into(),
        reason: "manual".into(),
        at_ms: 110,
    })
    .await;
    let got = s.apply(claim(1, 120, &[("m1", 0)])).await;
    assert_eq!(got, CommandResult::Claimed(vec![false]));
    let r = s.sm.reader();
    assert_eq!(r.pending_count().unwrap(), 0);
    assert!(r.due(u64::MAX, 10).unwrap().is_empty());
    assert_eq!(
        r.message("m1").unwrap().unwrap().recipients[0].status,
        RecipientStatus::Blocked
    );
}

#[tokio::test]
async fn retry_and_delete_from_the_queue() {
    let mut s = Sm::new();
    s.apply(message("m1", &["a@x", "b@x"], 100)).await;
    s.apply(claim(1, 100, &[("m1", 0), ("m1", 1)])).await;
    s.apply(complete(
        1,
        vec![
            outcome("m1", 0, 150, OutcomeKind::Deferred { next_at_ms: 9000 }),
            outcome("m1", 1, 150, OutcomeKind::Deferred { next_at_ms: 9000 }),
        ],
    ))
    .await;
    assert_eq!(
        s.apply(Command::Retry {
            ids: vec!["m1".into(), "missing".into()],
            at_ms: 200
        })
        .await,
        CommandResult::Count(2)
    );
    let r = s.sm.reader();
    assert_eq!(r.due(200, 10).unwrap().len(), 2);
    assert_eq!(
        s.apply(Command::DeleteQueued {
            id: "m1".into(),
            at_ms: 300,
            by: "admin".into()
        })
        .await,
        CommandResult::Count(2)
    );
    assert_eq!(r.pending_count().unwrap(), 0);
    assert!(r.due(u64::MAX, 10).unwrap().is_empty());
    assert!(r
        .deliveries(0, 100)
        .unwrap()
        .iter()
        .any(|d| d.status == "failed" && d.reason == "deleted"));
}

/// Raft may hand the same entries to apply in different runs on different nodes; the state
/// must not depend on where the runs are cut.
#[tokio::test]
async fn batch_boundaries_do_not_change_the_outcome() {
    let cmds = vec![
        message("m1", &["a@x", "b@x"], 100),
        claim(1, 100, &[("m1", 0), ("m1", 1)]),
        complete(
            1,
            vec![
                outcome("m1", 0, 120, OutcomeKind::Succeeded),
                outcome("m1", 1, 120, OutcomeKind::Deferred { next_at_ms: 500 }),
            ],
        ),
        claim(2, 600, &[("m1", 1)]),
        Command::Block {
            address: "b@x".into(),
            reason: "r".into(),
            at_ms: 610,
        },
        complete(2, vec![outcome("m1", 1, 620, OutcomeKind::Release)]),
        claim(2, 630, &[("m1", 1)]),
    ];
    let mut one = Sm::new();
    let r1 = one.apply_all(cmds.clone()).await;
    let mut many = Sm::new();
    let mut rn = Vec::new();
    for c in cmds {
        rn.push(many.apply(c).await);
    }
    assert_eq!(r1, rn);
    let (a, b) = (one.sm.reader(), many.sm.reader());
    assert_eq!(a.message("m1").unwrap(), b.message("m1").unwrap());
    assert_eq!(a.deliveries(0, 100).unwrap(), b.deliveries(0, 100).unwrap());
    assert_eq!(a.queue_stats().unwrap(), b.queue_stats().unwrap());
    assert_eq!(
        a.message("m1").unwrap().unwrap().recipients[1].status,
        RecipientStatus::Blocked
    );
}

fn fail(id: &str, rcpt: u32, at_ms: u64, reason: &str, code: u16) -> Command {
    complete(
        1,
        vec![Outcome {
            reply: "550 5.1.1 no".into(),
            ..outcome(
                id,
                rcpt,
                at_ms,
                OutcomeKind::Failed {
                    reason: reason.into(),
                    code,
                },
            )
        }],
    )
}

/// Daily schedule: a block decided during the day takes effect at the configured hour; the
/// watch period lifts it again; both decided from proposer timestamps only.
#[tokio::test]
async fn auto_block_daily_schedule_and_watch_period() {
    const DAY: u64 = 86_400_000;
    let mut s = Sm::new();
    s.apply(Command::PutSetting {
        key: "autoblock/rules".into(),
        value: r#"{"mode":"daily","daily_hour_utc":3,"watch_days":2,
                   "rules":{"userunknown":{"enabled":true,"threshold":2}}}"#
            .into(),
    })
    .await;
    let t0 = 10 * DAY + 5 * 3_600_000; // day 10, 05:00 UTC
    for (i, id) in ["a", "b"].iter().enumerate() {
        s.apply(message(id, &["x@y.example"], t0 + i as u64)).await;
        s.apply(claim(1, t0 + 10, &[(id, 0)])).await;
    }
    s.apply(fail("a", 0, t0 + 20, "userunknown", 2)).await;
    let r = s.sm.reader();
    assert!(r.block("x@y.example").unwrap().is_none(), "threshold is 2");
    s.apply(fail("b", 0, t0 + 30, "userunknown", 2)).await;
    let b = r
        .block("x@y.example")
        .unwrap()
        .expect("blocked after 2 failures");
    assert_eq!(
        b.effective_at_ms,
        11 * DAY + 3 * 3_600_000,
        "next 03:00 UTC"
    );
    assert_eq!(b.expires_at_ms, Some(13 * DAY + 3 * 3_600_000));
    assert_eq!((b.code, b.occurred, b.auto), (2, 2, true));

    // Before it takes effect mail is queued; while in force it is blocked; after the watch
    // period it is queued again.
    for (id, at, status) in [
        ("c", 11 * DAY, RecipientStatus::Queued),
        ("d", 12 * DAY, RecipientStatus::Blocked),
        ("e", 14 * DAY, RecipientStatus::Queued),
    ] {
        s.apply(message(id, &["X@Y.example"], at)).await;
        assert_eq!(
            r.message(id).unwrap().unwrap().recipients[0].status,
            status,
            "message {id}"
        );
    }
    let bounces = r.bounces(0, 100).unwrap();
    assert!(bounces.iter().any(|b| b.message == "d" && b.code == 10));
}

/// Invariant 4: events are written with the change that causes them, only for subscribed
/// kinds, numbered without gaps in apply order.
#[tokio::test]
async fn events_are_written_with_their_change_when_subscribed() {
    let mut s = Sm::new();
    s.apply(message("m0", &["a@x"], 50)).await;
    assert!(
        s.sm.reader().events(0, 10).unwrap().is_empty(),
        "no endpoint, no events"
    );
    let cmds = vec![
        Command::PutSetting {
            key: "webhook/endpoints".into(),
            value: r#"[{"name":"n","url":"http://h/","events":["queued","failed","blocks"]}]"#
                .into(),
        },
        message("m1", &["a@x", "b@x"], 100),
        claim(1, 100, &[("m1", 0)]),
        fail("m1", 0, 110, "userunknown", 2),
    ];
    s.apply_all(cmds).await;
    let ev = s.sm.reader().events(0, 100).unwrap();
    let kinds: Vec<&str> = ev.iter().map(|e| e.event.kind()).collect();
    // queued x2, failed, and the auto-block of a@x (userunknown blocks by default); the
    // bounce record is not subscribed.
    assert_eq!(kinds, ["queued", "queued", "blocks", "failed"]);
    assert_eq!(ev.iter().map(|e| e.seq).collect::<Vec<_>>(), [0, 1, 2, 3]);
}

/// Webhook cursors: a new endpoint starts at the end of the outbox, progress only moves
/// forward, and events every endpoint has passed are removed.
#[tokio::test]
async fn webhook_cursors_start_at_the_end_and_trim_the_outbox() {
    let mut s = Sm::new();
    let eps = |names: &[&str]| Command::PutSetting {
        key: "webhook/endpoints".into(),
        value: serde_json::to_string(
            &names
                .iter()
                .map(|n| serde_json::json!({"name": n, "url": "http://h/", "events": ["queued"]}))
                .collect::<Vec<_>>(),
        )
        .unwrap(),
    };
    s.apply(eps(&["a"])).await;
    s.apply(message("m1", &["x@y", "z@y"], 10)).await; // events 0, 1
    s.apply(eps(&["a", "b"])).await; // b starts at 2
    s.apply(message("m2", &["w@y"], 20)).await; // event 2
    let r = s.sm.reader();
    assert_eq!(r.webhook_cursor("a").unwrap(), Some(0));
    assert_eq!(r.webhook_cursor("b").unwrap(), Some(2));
    let progress = |ep: &str, next: u64| Command::WebhookProgress {
        endpoint: ep.into(),
        next_seq: next,
        failure: None,
    };
    assert_eq!(
        s.apply(progress("a", 3)).await,
        CommandResult::Changed(true)
    );
    assert_eq!(
        s.apply(progress("a", 1)).await,
        CommandResult::Changed(false),
        "never backwards"
    );
    // a is at 3, b at 2: events 0 and 1 are gone, 2 is kept for b.
    let seqs: Vec<u64> = r.events(0, 10).unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [2]);
    s.apply(progress("b", 3)).await;
    assert!(r.events(0, 10).unwrap().is_empty());
}

/// Retention removes old records and finished messages but keeps pending ones, daily
/// statistics and blocks; per-minute and per-reason counters feed the console.
#[tokio::test]
async fn purge_removes_old_finished_records_only() {
    let mut s = Sm::new();
    let min = 60_000u64;
    // Old (minute 10): one finished, one still pending. New (minute 500): finished.
    s.apply(message("00a-old-done", &["a@x.example"], 10 * min))
        .await;
    s.apply(message("00b-old-pending", &["b@x.example"], 10 * min + 1))
        .await;
    s.apply(message("00c-new", &["c@x.example"], 500 * min))
        .await;
    s.apply(claim(1, 10 * min + 5, &[("00a-old-done", 0)]))
        .await;
    s.apply(complete(
        1,
        vec![outcome(
            "00a-old-done",
            0,
            10 * min + 10,
            OutcomeKind::Failed {
                reason: "userunknown".into(),
                code: 5,
            },
        )],
    ))
    .await;
    s.apply(claim(1, 500 * min + 5, &[("00c-new", 0)])).await;
    s.apply(complete(
        1,
        vec![outcome(
            "00c-new",
            0,
            500 * min + 10,
            OutcomeKind::Succeeded,
        )],
    ))
    .await;
    s.apply(Command::Block {
        address: "z@x.example".into(),
        reason: "manual".into(),
        at_ms: 10 * min,
    })
    .await;
    let r = s.sm.reader();
    // Counters: per minute and per reason.
    let minutes = r.minute_counters(10, 11).unwrap();
    assert!(minutes.contains(&(10, "queued".into(), 2)), "{minutes:?}");
    assert!(minutes.contains(&(10, "failed".into(), 1)), "{minutes:?}");
    assert_eq!(
        r.day_counters(0, "reason/").unwrap(),
        vec![("userunknown".to_string(), 1)]
    );
    // Newest first.
    let mut seen = Vec::new();
    r.for_each_delivery(hato_storage::Order::NewestFirst, 0, u64::MAX, |d| {
        seen.push(d.at_ms);
        true
    })
    .unwrap();
    assert!(
        seen.windows(2).all(|w| w[0] >= w[1]) && seen.len() == 5,
        "{seen:?}"
    );

    // Purge everything before minute 100, in steps of one message.
    let mut after = None;
    let mut deleted = 0;
    loop {
        match s
            .apply(Command::Purge {
                before_ms: 100 * min,
                minutes_before_ms: 0,
                after: after.clone(),
                max_messages: 1,
            })
            .await
        {
            CommandResult::Purged { deleted: d, last } => {
                deleted += d;
                match last {
                    Some(id) => after = Some(id),
                    None => break,
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(deleted, 1, "only the old finished message");
    assert!(r.message("00a-old-done").unwrap().is_none());
    assert!(r.body("00a-old-done").unwrap().is_none());
    assert!(
        r.message("00b-old-pending").unwrap().is_some(),
        "pending stays"
    );
    assert!(r.body("00b-old-pending").unwrap().is_some());
    assert!(r.message("00c-new").unwrap().is_some(), "new stays");
    let left = r.deliveries(0, 100).unwrap();
    assert!(left.iter().all(|d| d.at_ms >= 100 * min), "{left:?}");
    assert_eq!(left.len(), 2);
    assert!(r.bounces(0, 10).unwrap().is_empty());
    assert!(r.minute_counters(0, 100).unwrap().is_empty());
    assert!(!r.minute_counters(500, 501).unwrap().is_empty());
    assert_eq!(r.stat(0, "failed").unwrap(), 1, "daily statistics stay");
    assert!(r.block("z@x.example").unwrap().is_some(), "blocks stay");
}

/// A group-commit batch applies exactly like the same commands as separate entries, and
/// answers each command's own result in order. Delivery outcomes share batches with enqueues.
#[tokio::test]
async fn a_batch_applies_like_separate_entries() {
    let setup = vec![
        Command::Block {
            address: "blocked@x.example".into(),
            reason: "manual".into(),
            at_ms: 1,
        },
        leased(message("d1", &["d@x.example", "e@x.example"], 50), 1, 1000),
    ];
    let cmds = vec![
        message("b1", &["a@x.example", "blocked@x.example"], 100),
        complete(
            1,
            vec![
                outcome("d1", 0, 100, OutcomeKind::Succeeded),
                outcome("d1", 1, 100, OutcomeKind::Deferred { next_at_ms: 9000 }),
            ],
        ),
        message("b2", &["c@y.example"], 101),
        message("b1", &["a@x.example"], 102), // a retry of b1: a duplicate
    ];
    let mut one = Sm::new();
    one.apply_all(setup.clone()).await;
    let separate = one.apply_all(cmds.clone()).await;
    let mut two = Sm::new();
    two.apply_all(setup).await;
    let batched = two.apply(Command::Batch(cmds)).await;
    assert_eq!(batched, CommandResult::Batch(separate.clone()));
    assert_eq!(
        separate[0],
        CommandResult::Enqueued {
            queued: 1,
            blocked: 1,
            duplicate: false
        }
    );
    assert!(matches!(
        separate[3],
        CommandResult::Enqueued {
            duplicate: true,
            ..
        }
    ));
    let (r1, r2) = (one.sm.reader(), two.sm.reader());
    assert_eq!(
        r1.pending_count().unwrap(),
        3,
        "b1, b2, and d1's deferred recipient"
    );
    assert_eq!(r1.pending_count().unwrap(), r2.pending_count().unwrap());
    assert_eq!(one.work("d1"), two.work("d1"));
    assert_eq!(r1.message("d1").unwrap(), r2.message("d1").unwrap());
    assert_eq!(
        r1.deliveries(0, 100).unwrap(),
        r2.deliveries(0, 100).unwrap()
    );
    assert_eq!(r1.bounces(0, 100).unwrap(), r2.bounces(0, 100).unwrap());
    assert_eq!(r1.message("b1").unwrap(), r2.message("b1").unwrap());
}
