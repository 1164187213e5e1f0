//! The operations an operator runs on a live cluster, as documented in README.md
//! ("Operations"), each run against real processes: a rolling restart (the procedure for an
//! upgrade) under continuous SMTP load, replacing a node whose disk is gone, and restoring a
//! node from a backup of its data directory.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hato_tests::{
    fast_delivery, get_local_setting, hato, hato_ok, http_get, route_all_to, set_setting, wait_for,
    Cluster, Mx, Node, NodeOpts, Smtp,
};

fn ready(http: &str) -> bool {
    http_get(http, "/ready").is_ok_and(|(c, _)| c == 200)
}

/// One SMTP transaction; `Ok(())` on 250 after DATA, else the first reply that was not the
/// expected one (or the connection error).
fn send_one(addr: &str, rcpt: &str) -> Result<(), String> {
    let r = Smtp::try_transaction(
        addr,
        "app@shop.example",
        &[rcpt],
        &format!("From: app@shop.example\r\nTo: {rcpt}\r\nSubject: {rcpt}\r\n\r\nhi\r\n"),
    )?;
    if r.starts_with("250") {
        Ok(())
    } else {
        Err(format!("end of data: {r}"))
    }
}

/// The rolling-restart procedure from README.md, with a client that behaves like the load
/// balancer in front of the cluster: it sends only to nodes marked in service, and a node is
/// taken out of service (drained) before SIGTERM and put back once `/ready` answers 200.
/// Every node, leader last, is restarted while mail flows; not one message may be refused,
/// and every accepted one must reach the MX exactly once. The one expected hiccup: while the
/// old leader stops, writes wait for the election (openraft 0.9 cannot hand leadership over);
/// one that waits longer than the write timeout is answered `451` and the client retries it,
/// as an MTA does. Those deferrals are counted and bounded.
#[test]
fn rolling_restart_refuses_no_mail_and_loses_none() {
    let mx = Mx::start();
    let opts = NodeOpts {
        delivery: fast_delivery(""),
        // The production default (the harness uses 3 s to keep failure tests short).
        write_timeout_ms: 5000,
        ..Default::default()
    };
    let mut c = Cluster::start(3, opts);
    let n1 = c.nodes[0].raft.clone();
    hato_ok(&["smtp", "allow", "add", "--node", &n1, "127.0.0.0/8"]);
    route_all_to(&n1, mx.port);

    let smtp: Vec<String> = c.nodes.iter().map(|n| n.smtp.clone()).collect();
    let in_service: Arc<Vec<AtomicBool>> =
        Arc::new((0..smtp.len()).map(|_| AtomicBool::new(true)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(Mutex::new(Vec::<String>::new()));
    let deferred = Arc::new(Mutex::new(Vec::<String>::new()));
    let counter = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..3)
        .map(|t| {
            let (smtp, in_service, stop, accepted, refused, deferred, counter) = (
                smtp.clone(),
                in_service.clone(),
                stop.clone(),
                accepted.clone(),
                refused.clone(),
                deferred.clone(),
                counter.clone(),
            );
            std::thread::spawn(move || {
                let mut turn = t;
                while !stop.load(Ordering::SeqCst) {
                    turn += 1;
                    let i = turn % smtp.len();
                    if !in_service[i].load(Ordering::SeqCst) {
                        continue;
                    }
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let rcpt = format!("r{n}@dest.example");
                    // A 451 is retried (up to 5 times), a refusal is not.
                    for _ in 0..5 {
                        match send_one(&smtp[i], &rcpt) {
                            Ok(()) => {
                                accepted.lock().unwrap().push(rcpt);
                                break;
                            }
                            Err(e) if e.contains(": 451 ") => {
                                deferred.lock().unwrap().push(rcpt.clone());
                                eprintln!("{rcpt} deferred by node {}: {e}", i + 1);
                                std::thread::sleep(Duration::from_millis(200));
                            }
                            Err(e) => {
                                refused.lock().unwrap().push(format!("node {}: {e}", i + 1));
                                break;
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        })
        .collect();

    // Followers first, the leader last (each restart of the leader costs an election).
    std::thread::sleep(Duration::from_secs(2));
    let leader = c.leader();
    let mut order: Vec<u64> = (1..=3).filter(|&id| id != leader).collect();
    order.push(leader);
    for id in order {
        let idx = (id - 1) as usize;
        in_service[idx].store(false, Ordering::SeqCst);
        // Let transactions already sent to it finish (the load balancer's drain).
        std::thread::sleep(Duration::from_millis(500));
        let t0 = Instant::now();
        c.node(id).stop();
        c.node(id).start();
        let http = c.node(id).http.clone();
        wait_for(&format!("node {id} ready"), Duration::from_secs(30), || {
            ready(&http).then_some(())
        });
        eprintln!("node {id} restarted and ready in {:?}", t0.elapsed());
        c.wait_voters(3);
        in_service[idx].store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(1));
    }
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    for t in clients {
        t.join().unwrap();
    }

    let accepted = accepted.lock().unwrap().clone();
    let refused = refused.lock().unwrap().clone();
    let deferred = deferred.lock().unwrap().clone();
    eprintln!(
        "{} accepted, {} refused, {} deferred (451, retried): {deferred:?}",
        accepted.len(),
        refused.len(),
        deferred.len()
    );
    assert!(
        refused.is_empty(),
        "mail refused during the rolling restart: {refused:?}"
    );
    assert!(
        accepted.len() > 50,
        "too little load to mean anything: {}",
        accepted.len()
    );

    // Every accepted message arrives, and none twice.
    wait_for(
        "every accepted message at the MX",
        Duration::from_secs(60),
        || {
            let got: HashSet<String> = mx
                .records()
                .iter()
                .filter_map(|r| r["rcpt_tos"][0].as_str().map(String::from))
                .collect();
            accepted.iter().all(|r| got.contains(r)).then_some(())
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    // A deferred message may have been committed anyway (451 means "unknown"), so the retry
    // can deliver it a second time; every other one exactly once.
    let mut seen = HashSet::new();
    for r in mx.records() {
        let rcpt = r["rcpt_tos"][0].as_str().unwrap().to_string();
        assert!(
            seen.insert(rcpt.clone()) || deferred.contains(&rcpt),
            "{rcpt} delivered twice"
        );
    }
}

/// A node's disk is gone for good: remove it from the membership, start a new machine with a
/// new id, and it receives the whole state. Writes go on throughout.
#[test]
fn a_dead_node_is_replaced_by_a_new_one_with_the_whole_state() {
    let opts = NodeOpts {
        snapshot_every: 30,
        keep_logs: 5,
        ..Default::default()
    };
    let mut c = Cluster::start(3, opts.clone());
    let n1 = c.nodes[0].raft.clone();
    for i in 0..40 {
        assert!(set_setting(&n1, &format!("k{i}"), &i.to_string()));
    }
    // Some megabytes of queued mail (delivery is off), so the new node needs a snapshot
    // larger than one transfer chunk.
    hato_ok(&["smtp", "allow", "add", "--node", &n1, "127.0.0.0/8"]);
    let body = "x".repeat(998) + "\r\n";
    let body = body.repeat(60);
    let smtp1 = c.nodes[0].smtp.clone();
    for i in 0..150 {
        let r = Smtp::transaction(
            &smtp1,
            "app@shop.example",
            &[&format!("big{i}@dest.example")],
            &format!("Subject: big {i}\r\n\r\n{body}"),
        );
        assert!(r.starts_with("250"), "{r}");
    }

    // Node 3 dies with its disk.
    c.node(3).kill();
    let dead_dir = c.node(3).dir.join("data");
    std::fs::remove_dir_all(&dead_dir).unwrap();
    for i in 40..50 {
        assert!(
            set_setting(&n1, &format!("k{i}"), &i.to_string()),
            "write with one node dead"
        );
    }

    // Remove it, then add a new node (id 4: ids are never reused).
    let m: serde_json::Value =
        serde_json::from_str(&hato_ok(&["cluster", "leave", "--node", &n1, "--id", "3"])).unwrap();
    assert_eq!(m["voters"], serde_json::json!([1, 2]));
    c.nodes.retain(|n| n.id != 3);
    let mut n4 = Node::new(c.root.path(), 4, false, std::slice::from_ref(&n1), &opts);
    n4.start();
    c.nodes.push(n4);
    c.wait_voters(3);
    let s = c.node(4).status().unwrap();
    assert_eq!(s["voters"], serde_json::json!([1, 2, 4]));

    let via4 = c.node(4).raft.clone();
    for i in 0..50 {
        let k = format!("k{i}");
        wait_for(&format!("{k} on node 4"), Duration::from_secs(30), || {
            (get_local_setting(&via4, &k).as_deref() == Some(i.to_string().as_str())).then_some(())
        });
    }
    let st = c.node(4).status().unwrap();
    assert!(st["snapshot_index"].as_u64().is_some(), "{st}");
    // The new node carries quorum: with node 1 down, nodes 2 and 4 still accept writes.
    c.node(1).kill();
    wait_for("a write with node 1 down", Duration::from_secs(30), || {
        set_setting(&via4, "after", "1").then_some(())
    });
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Backup of a node: stop it, copy its data directory, start it again (the cluster keeps
/// serving on the other two). Later the node's disk is lost; the copy is put back, and the
/// node catches up on everything written since (by snapshot: the log it missed is purged).
#[test]
fn a_node_restored_from_a_backup_of_its_data_dir_catches_up() {
    let opts = NodeOpts {
        snapshot_every: 20,
        keep_logs: 0,
        ..Default::default()
    };
    let mut c = Cluster::start(3, opts);
    let n1 = c.nodes[0].raft.clone();
    for i in 0..10 {
        assert!(set_setting(&n1, &format!("before{i}"), "1"));
    }
    let n2 = c.node(2).raft.clone();
    wait_for(
        "node 2 has the first writes",
        Duration::from_secs(20),
        || get_local_setting(&n2, "before9").filter(|v| v == "1"),
    );

    // The backup: a clean stop, a copy, a restart.
    let data = c.node(2).dir.join("data");
    let backup = c.root.path().join("node2-backup");
    c.node(2).stop();
    assert!(
        set_setting(&n1, "while_stopped", "1"),
        "the cluster serves with one node stopped"
    );
    copy_dir(&data, &backup);
    c.node(2).start();
    c.wait_voters(3);
    let backup_applied = c.node(2).status().unwrap()["last_applied_index"]
        .as_u64()
        .unwrap_or(0);

    // More writes than a snapshot interval, then the disk is lost.
    for i in 0..60 {
        assert!(set_setting(&n1, &format!("after{i}"), "2"));
    }
    // The scenario needs a snapshot: the entries the backup lacks are gone from the log.
    let leader = c.leader();
    let purged = c.node(leader).status().unwrap()["purged_index"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        purged > backup_applied,
        "log not purged past the backup ({purged})"
    );
    c.node(2).kill();
    std::fs::remove_dir_all(&data).unwrap();
    copy_dir(&backup, &data);
    c.node(2).start();
    c.wait_voters(3);
    for k in ["before0", "while_stopped", "after0", "after59"] {
        wait_for(
            &format!("{k} on the restored node"),
            Duration::from_secs(30),
            || get_local_setting(&n2, k).filter(|v| !v.is_empty()),
        );
    }
}

/// Disaster recovery: every node is lost. A backup taken earlier from a running node seeds a
/// new node, which starts as a one-node cluster with the backed-up state; new nodes join it
/// and receive that state. Damaged backups and non-empty data directories are refused
/// without changing anything.
#[test]
fn a_lost_cluster_is_rebuilt_from_a_backup() {
    let mut c = Cluster::start(3, NodeOpts::default());
    let n1 = c.nodes[0].raft.clone();
    for i in 0..20 {
        assert!(set_setting(&n1, &format!("k{i}"), &i.to_string()));
    }
    hato_ok(&["blocks", "add", "--node", &n1, "blocked@example.com"]);

    // A backup through a follower (any member holds the whole state).
    let leader = c.leader();
    let follower = c
        .nodes
        .iter()
        .find(|n| n.id != leader)
        .unwrap()
        .raft
        .clone();
    let file = c.root.path().join("cluster.backup");
    let out: serde_json::Value = serde_json::from_str(&hato_ok(&[
        "backup",
        "--node",
        &follower,
        "--out",
        file.to_str().unwrap(),
    ]))
    .unwrap();
    assert!(out["records"].as_u64().unwrap() > 20, "{out}");
    assert_eq!(out["members"], serde_json::json!([1, 2, 3]));
    // A second backup into the same file is refused.
    assert!(!hato(&[
        "backup",
        "--node",
        &follower,
        "--out",
        file.to_str().unwrap()
    ])
    .status
    .success());
    assert!(set_setting(&n1, "after_backup", "1"));

    // The disaster.
    for id in 1..=3 {
        c.node(id).kill();
    }

    let opts = NodeOpts::default();
    let mut n11 = Node::new(c.root.path(), 11, false, &[], &opts);
    let cfg = n11.config.to_str().unwrap().to_string();

    // A damaged backup is refused and leaves the data directory untouched.
    let bytes = std::fs::read(&file).unwrap();
    let damaged = c.root.path().join("damaged.backup");
    std::fs::write(&damaged, &bytes[..bytes.len() - 100]).unwrap();
    let r = hato(&[
        "restore",
        "--config",
        &cfg,
        "--from",
        damaged.to_str().unwrap(),
    ]);
    assert!(!r.status.success());
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("not a usable backup"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(!n11.dir.join("data").join("db").exists());
    assert!(!n11.dir.join("data").join("raft").exists());

    hato_ok(&[
        "restore",
        "--config",
        &cfg,
        "--from",
        file.to_str().unwrap(),
    ]);
    // Restoring twice into the same directory is refused.
    let r = hato(&[
        "restore",
        "--config",
        &cfg,
        "--from",
        file.to_str().unwrap(),
    ]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("already holds a database"));

    n11.start();
    let via = n11.raft.clone();
    wait_for("the restored node leads", Duration::from_secs(30), || {
        n11.status().filter(|s| s["role"] == "leader")
    });
    for i in 0..20 {
        assert_eq!(
            hato_ok(&["settings", "get", "--node", &via, &format!("k{i}")]).trim(),
            i.to_string()
        );
    }
    assert!(hato_ok(&["blocks", "list", "--node", &via]).contains("blocked@example.com"));
    let r = hato(&["settings", "get", "--node", &via, "after_backup"]);
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("no setting named"),
        "a write made after the backup came back: {r:?}"
    );

    // New members join the restored node and receive its state.
    let seed = vec![via.clone()];
    let mut c2 = Cluster {
        root: tempfile::tempdir().unwrap(),
        nodes: vec![n11],
    };
    for id in [12, 13] {
        let mut n = Node::new(c2.root.path(), id, false, &seed, &opts);
        n.start();
        c2.nodes.push(n);
    }
    c2.wait_voters(3);
    let n13 = c2.node(13).raft.clone();
    wait_for("the state on a new member", Duration::from_secs(30), || {
        (get_local_setting(&n13, "k19").as_deref() == Some("19")).then_some(())
    });
    assert!(set_setting(&n13, "after_restore", "1"));
}
