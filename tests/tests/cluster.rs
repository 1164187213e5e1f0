//! Three real nodes on loopback: forwarding, leader SIGKILL, catch-up, membership, no quorum,
//! the internode port's secret and HTTP/2 frames.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use hato_tests::{
    get_local_setting, hato, hato_ok, http_get, set_setting, wait_for, Cluster, Node, NodeOpts,
    Smtp,
};

#[test]
fn leader_sigkill_loses_nothing_acknowledged_and_the_node_catches_up() {
    let mut c = Cluster::start(3, NodeOpts::default());
    let leader = c.leader();
    let follower = c
        .nodes
        .iter()
        .find(|n| n.id != leader)
        .unwrap()
        .raft
        .clone();

    // A follower accepts writes: they are forwarded to the leader.
    let mut acked = Vec::new();
    for i in 0..30 {
        let k = format!("before{i}");
        assert!(
            set_setting(&follower, &k, &i.to_string()),
            "write via follower failed"
        );
        acked.push((k, i.to_string()));
    }

    // Kill the leader; writes through the survivors continue after the election.
    c.node(leader).kill();
    let survivors: Vec<String> = c
        .nodes
        .iter()
        .filter(|n| n.is_running())
        .map(|n| n.raft.clone())
        .collect();
    let t0 = Instant::now();
    for i in 0..30 {
        let k = format!("after{i}");
        let via = &survivors[i % 2];
        // Each write is retried until acknowledged (the first ones may fall into the election).
        wait_for(&format!("write {k}"), Duration::from_secs(30), || {
            set_setting(via, &k, &i.to_string()).then_some(())
        });
        acked.push((k, i.to_string()));
    }
    eprintln!("30 writes with the leader dead took {:?}", t0.elapsed());
    let new_leader = c.leader();
    assert_ne!(new_leader, leader);

    // Every acknowledged write is on both survivors, through a linearizable read too.
    for (k, v) in &acked {
        for s in &survivors {
            assert_eq!(
                hato_ok(&["settings", "get", "--node", s, k]).trim(),
                v.as_str(),
                "{k} missing via {s}"
            );
        }
    }

    // The killed node restarts and catches up from the log.
    c.node(leader).start();
    let old = c.node(leader).raft.clone();
    for (k, v) in &acked {
        wait_for(
            &format!("{k} on the restarted node"),
            Duration::from_secs(30),
            || (get_local_setting(&old, k).as_deref() == Some(v.as_str())).then_some(()),
        );
    }
    c.wait_voters(3);
}

#[test]
fn lagging_node_catches_up_by_snapshot() {
    let opts = NodeOpts {
        snapshot_every: 20,
        keep_logs: 0,
        ..Default::default()
    };
    let mut c = Cluster::start(3, opts.clone());
    let leader = c.leader();
    let via = c.node(leader).raft.clone();
    for i in 0..120 {
        assert!(set_setting(&via, &format!("s{i:03}"), &i.to_string()));
    }
    // The leader snapshots and purges the log entries every follower already has.
    let purged = wait_for(
        "the leader to purge its log",
        Duration::from_secs(20),
        || {
            c.node(leader).status()?["purged_index"]
                .as_u64()
                .filter(|p| *p > 20)
        },
    );

    // A node that joins now cannot be fed from the log: it must receive the snapshot.
    let mut n4 = Node::new(c.root.path(), 4, false, std::slice::from_ref(&via), &opts);
    n4.start();
    let raft = n4.raft.clone();
    c.nodes.push(n4);
    c.wait_voters(4);
    wait_for(
        "the new node to receive data",
        Duration::from_secs(30),
        || (get_local_setting(&raft, "s119").as_deref() == Some("119")).then_some(()),
    );
    let st = c.node(4).status().unwrap();
    assert!(
        st["snapshot_index"].as_u64().unwrap_or(0) >= purged,
        "caught up without a snapshot? {st}\n{}",
        c.node(4).log()
    );
    for i in 0..120 {
        assert_eq!(
            get_local_setting(&raft, &format!("s{i:03}")).as_deref(),
            Some(i.to_string().as_str())
        );
    }
    // And it keeps following new writes.
    assert!(set_setting(&via, "after_snapshot", "yes"));
    wait_for(
        "new write on caught-up node",
        Duration::from_secs(10),
        || (get_local_setting(&raft, "after_snapshot").as_deref() == Some("\"yes\"")).then_some(()),
    );
    // A restart of the snapshotted node recovers from its own disk.
    c.node(4).kill();
    c.node(4).start();
    assert_eq!(get_local_setting(&raft, "s050").as_deref(), Some("50"));
}

#[test]
fn without_quorum_writes_fail_clearly_and_never_hang() {
    let opts = NodeOpts {
        write_timeout_ms: 2000,
        ..Default::default()
    };
    let mut c = Cluster::start(3, opts);
    let leader = c.leader();
    let others: Vec<u64> = c
        .nodes
        .iter()
        .map(|n| n.id)
        .filter(|id| *id != leader)
        .collect();
    for id in &others {
        c.node(*id).kill();
    }
    let lone = c.node(leader).raft.clone();
    let http = c.node(leader).http.clone();
    let t0 = Instant::now();
    let out = hato(&[
        "settings",
        "set",
        "--node",
        &lone,
        "--timeout",
        "3",
        "k",
        "v",
    ]);
    let took = t0.elapsed();
    assert!(
        !out.status.success(),
        "a write without quorum reported success"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no quorum") || err.contains("no leader"),
        "{err}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // The write was not applied anywhere it could be read.
    assert_eq!(get_local_setting(&lone, "k"), None);
    // Readiness turns to 503 once the lone node notices it lost the cluster.
    wait_for("/ready to report 503", Duration::from_secs(20), || {
        http_get(&http, "/ready")
            .ok()
            .filter(|(code, _)| *code == 503)
    });
    // A linearizable read fails too rather than returning possibly stale data.
    let out = hato(&["settings", "get", "--node", &lone, "--timeout", "3", "k"]);
    assert!(!out.status.success());

    // Quorum back: writes succeed again.
    c.node(others[0]).start();
    wait_for(
        "write after quorum returns",
        Duration::from_secs(30),
        || set_setting(&lone, "k2", "v2").then_some(()),
    );
}

#[test]
fn membership_changes_from_the_command_line() {
    let mut c = Cluster::start(3, NodeOpts::default());
    let any = c.nodes[0].raft.clone();

    // Add node 4 as a learner, then promote it.
    let mut n4 = Node::new(c.root.path(), 4, false, &[], &NodeOpts::default());
    n4.start();
    let out = hato_ok(&[
        "cluster",
        "add-learner",
        "--node",
        &any,
        "--id",
        "4",
        "--raft-addr",
        &n4.raft,
        "--http-addr",
        &n4.http,
    ]);
    let m: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(m["learners"], serde_json::json!([4]));
    wait_for("node 4 to report learner", Duration::from_secs(10), || {
        n4.status().filter(|s| s["role"] == "learner")
    });
    let out = hato_ok(&["cluster", "promote", "--node", &n4.raft, "--id", "4"]);
    let m: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(m["voters"], serde_json::json!([1, 2, 3, 4]));
    c.nodes.push(n4);
    c.wait_voters(4);

    // Remove node 2 (through node 4, which forwards to the leader), then stop it.
    let via4 = c.node(4).raft.clone();
    let out = hato_ok(&["cluster", "leave", "--node", &via4, "--id", "2"]);
    let m: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(m["voters"], serde_json::json!([1, 3, 4]));
    c.node(2).stop();
    c.wait_voters(3);
    assert!(set_setting(&via4, "after_leave", "1"));

    // Status of every member.
    let all: serde_json::Value =
        serde_json::from_str(&hato_ok(&["cluster", "status", "--all", "--node", &via4])).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3);
    assert_eq!(
        all.as_array()
            .unwrap()
            .iter()
            .filter(|s| s["role"] == "leader")
            .count(),
        1
    );

    // Removing a node that is not a member is a clear error.
    let out = hato(&["cluster", "leave", "--node", &via4, "--id", "9"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a member"));
}

#[test]
fn node_down_while_the_log_is_purged_catches_up_by_snapshot() {
    let opts = NodeOpts {
        snapshot_every: 20,
        keep_logs: 0,
        ..Default::default()
    };
    let mut c = Cluster::start(3, opts);
    let leader = c.leader();
    let via = c.node(leader).raft.clone();
    let down = c.nodes.iter().find(|n| n.id != leader).unwrap().id;
    assert!(set_setting(&via, "before", "1"));
    let down_applied = c.node(down).status().unwrap()["last_applied_index"]
        .as_u64()
        .unwrap();
    c.node(down).kill();
    for i in 0..150 {
        assert!(set_setting(&via, &format!("d{i:03}"), &i.to_string()));
    }
    let purged = wait_for(
        "the leader to purge past the down node",
        Duration::from_secs(20),
        || {
            c.node(leader).status()?["purged_index"]
                .as_u64()
                .filter(|p| *p > down_applied + 20)
        },
    );
    c.node(down).start();
    let raft = c.node(down).raft.clone();
    wait_for(
        "the restarted node to catch up",
        Duration::from_secs(30),
        || (get_local_setting(&raft, "d149").as_deref() == Some("149")).then_some(()),
    );
    let st = c.node(down).status().unwrap();
    assert!(st["snapshot_index"].as_u64().unwrap_or(0) >= purged, "{st}");
    assert_eq!(get_local_setting(&raft, "before").as_deref(), Some("1"));
}

/// With `cluster.secret` set, nodes talk to each other (join, Raft, forwarding) and the CLI
/// is refused unless it presents the secret.
#[test]
fn the_internode_port_requires_the_cluster_secret() {
    const SECRET: &str = "0123456789abcdef-secret";
    let opts = NodeOpts {
        secret: SECRET.into(),
        ..Default::default()
    };
    let mut c = Cluster::start(2, opts);
    let n1 = c.node(1).raft.clone();
    let n2 = c.node(2).raft.clone();
    let out = hato_tests::hato(&["settings", "set", "--node", &n1, "k", "v"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cluster secret"), "{err}");
    let with = |args: &[&str]| {
        std::process::Command::new(hato_tests::hato_bin())
            .args(args)
            .env("HATO_CLUSTER_SECRET", SECRET)
            .output()
            .unwrap()
    };
    let wrong = std::process::Command::new(hato_tests::hato_bin())
        .args(["settings", "get", "--node", &n1, "k"])
        .env("HATO_CLUSTER_SECRET", "not-the-secret-at-all")
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    // With the secret: a write through node 2 (forwarded to the leader) and a read on node 1.
    assert!(with(&["settings", "set", "--node", &n2, "k", "v"])
        .status
        .success());
    let got = with(&["settings", "get", "--node", &n1, "k"]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), "\"v\"");
    let _ = c.node(1);
}

/// Internode RPCs carry message bodies. Every node offers HTTP/2 frames of up to 256 KB on its
/// internode port (not the default 16 KB, which cut each 100 KB body into seven frames), and a
/// message larger than one frame still reaches every node.
#[test]
fn internode_frames_hold_whole_bodies_and_larger_ones_replicate() {
    let c = Cluster::start(3, NodeOpts::default());
    for n in &c.nodes {
        let settings = h2_server_settings(&n.raft);
        assert!(
            settings.contains(&(SETTINGS_MAX_FRAME_SIZE, 256 << 10)),
            "node {}: {settings:?}",
            n.id
        );
    }

    let via = &c.nodes[0];
    hato_ok(&["smtp", "allow", "add", "--node", &via.raft, "127.0.0.0/8"]);
    let body = ("y".repeat(998) + "\r\n").repeat(700); // 700 KB: three frames
    let r = Smtp::transaction(
        &via.smtp,
        "app@shop.example",
        &["big@dest.example"],
        &format!("Subject: big\r\n\r\n{body}"),
    );
    assert!(r.starts_with("250"), "{r}");
    for n in &c.nodes {
        wait_for(
            &format!("the message queued on node {}", n.id),
            Duration::from_secs(10),
            || (n.status()?["queue"]["pending"] == 1).then_some(()),
        );
    }
}

/// HTTP/2's SETTINGS_MAX_FRAME_SIZE parameter.
const SETTINGS_MAX_FRAME_SIZE: u16 = 5;

/// The parameters of the first SETTINGS frame the HTTP/2 server at `addr` sends.
fn h2_server_settings(addr: &str) -> Vec<(u16, u32)> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // The client preface, then an empty SETTINGS frame.
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    loop {
        let mut head = [0u8; 9];
        s.read_exact(&mut head).unwrap();
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0; len];
        s.read_exact(&mut payload).unwrap();
        let (kind, ack) = (head[3], head[4] & 1 == 1);
        if kind == 4 && !ack {
            return payload
                .chunks_exact(6)
                .map(|p| {
                    (
                        u16::from_be_bytes([p[0], p[1]]),
                        u32::from_be_bytes([p[2], p[3], p[4], p[5]]),
                    )
                })
                .collect();
        }
    }
}
