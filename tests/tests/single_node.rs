//! One real node: writes survive SIGTERM and SIGKILL restarts; health endpoints answer.

use std::time::Duration;

use hato_tests::{hato, hato_ok, http_get, set_setting, wait_for, Node, NodeOpts};

fn ready(n: &Node) {
    wait_for("node ready", Duration::from_secs(30), || {
        http_get(&n.http, "/ready").ok().filter(|(c, _)| *c == 200)
    });
}

#[test]
fn put_restart_read() {
    let root = tempfile::tempdir().unwrap();
    let mut n = Node::new(root.path(), 1, true, &[], &NodeOpts::default());
    n.start();
    ready(&n);

    hato_ok(&["settings", "set", "--node", &n.raft, "greeting", "hello"]);
    hato_ok(&[
        "settings",
        "set",
        "--node",
        &n.raft,
        "limits",
        r#"{"max":5}"#,
    ]);
    hato_ok(&[
        "blocks",
        "add",
        "--node",
        &n.raft,
        "Bad@Example.com",
        "--reason",
        "userunknown",
    ]);
    assert_eq!(
        hato_ok(&["settings", "get", "--node", &n.raft, "greeting"]).trim(),
        "\"hello\""
    );

    // Clean restart.
    n.stop();
    n.start();
    ready(&n);
    assert_eq!(
        hato_ok(&["settings", "get", "--node", &n.raft, "greeting"]).trim(),
        "\"hello\""
    );
    assert_eq!(
        hato_ok(&["settings", "get", "--node", &n.raft, "limits"]).trim(),
        r#"{"max":5}"#
    );

    // Crash restart: everything acknowledged before SIGKILL is there afterwards.
    for i in 0..20 {
        assert!(set_setting(&n.raft, &format!("k{i}"), &i.to_string()));
    }
    n.kill();
    n.start();
    ready(&n);
    for i in 0..20 {
        let v = hato_ok(&["settings", "get", "--node", &n.raft, &format!("k{i}")]);
        assert_eq!(v.trim(), i.to_string(), "k{i} lost after SIGKILL");
    }
    let blocks = hato_ok(&["blocks", "list", "--node", &n.raft]);
    assert!(
        blocks.contains("Bad@Example.com") && blocks.contains("userunknown"),
        "{blocks}"
    );

    // Unblock and delete are writes too.
    hato_ok(&["blocks", "remove", "--node", &n.raft, "bad@example.com"]);
    assert_eq!(hato_ok(&["blocks", "list", "--node", &n.raft]).trim(), "");
    hato_ok(&["settings", "delete", "--node", &n.raft, "greeting"]);
    let out = hato(&["settings", "get", "--node", &n.raft, "greeting"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no setting named"));
}

#[test]
fn health_ready_and_status_report_role_and_indexes() {
    let root = tempfile::tempdir().unwrap();
    let mut n = Node::new(root.path(), 7, true, &[], &NodeOpts::default());
    n.start();
    ready(&n);
    hato_ok(&["settings", "set", "--node", &n.raft, "x", "1"]);

    let (code, body) = http_get(&n.http, "/health").unwrap();
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["id"], 7);
    assert_eq!(v["role"], "leader");
    assert_eq!(v["leader_id"], 7);
    assert!(v["term"].as_u64().unwrap() >= 1);
    let last_log = v["last_log_index"].as_u64().unwrap();
    let applied = v["last_applied_index"].as_u64().unwrap();
    assert!(last_log >= 2 && applied == last_log, "{v}");

    let st = serde_json::from_str::<serde_json::Value>(&hato_ok(&[
        "cluster", "status", "--node", &n.raft,
    ]))
    .unwrap();
    assert_eq!(st["role"], "leader");
    assert_eq!(st["voters"], serde_json::json!([7]));

    let (code, _) = http_get(&n.http, "/nope").unwrap();
    assert_eq!(code, 404);
}

#[test]
fn invalid_cli_input_is_refused_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let mut n = Node::new(root.path(), 1, true, &[], &NodeOpts::default());
    n.start();
    ready(&n);
    // The node's own first-start writes (first console account, egress addresses) land
    // shortly after it is ready: wait until the log index stays put.
    let file = n.dir.join("data").join("console-admin-password");
    wait_for("the first console account", Duration::from_secs(30), || {
        file.exists().then_some(())
    });
    let mut before = n.status().unwrap()["last_log_index"].clone();
    wait_for("a quiet log", Duration::from_secs(30), || {
        std::thread::sleep(Duration::from_millis(500));
        let now = n.status().unwrap()["last_log_index"].clone();
        let quiet = now == before;
        before = now;
        quiet.then_some(())
    });
    let out = hato(&["blocks", "add", "--node", &n.raft, "not-an-address"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an e-mail address"));
    let out = hato(&["settings", "set", "--node", &n.raft, " ", "x"]);
    assert!(!out.status.success());
    assert_eq!(
        n.status().unwrap()["last_log_index"],
        before,
        "a refused command was proposed"
    );

    // Joining a node that is already a one-node cluster is refused clearly.
    let out = hato(&["cluster", "init", "--node", &n.raft]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already belongs to a cluster"));

    // A CLI aimed at a port where nothing listens fails fast with a clear message.
    let out = hato(&[
        "settings",
        "get",
        "--node",
        "127.0.0.1:1",
        "--timeout",
        "2",
        "x",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:1"));
}

/// The state machine writes skip the WAL and are re-applied from the log after a crash; a
/// snapshot lets the log be purged, and the purge first puts the applied state on disk. Here
/// snapshots and purges happen every few writes, then SIGKILL: nothing acknowledged is lost
/// and the node comes back with its state and log in step.
#[test]
fn a_crash_after_the_log_was_purged_keeps_every_write() {
    let root = tempfile::tempdir().unwrap();
    let opts = NodeOpts {
        snapshot_every: 10,
        keep_logs: 0,
        ..NodeOpts::default()
    };
    let mut n = Node::new(root.path(), 1, true, &[], &opts);
    n.start();
    ready(&n);
    for i in 0..60 {
        assert!(set_setting(&n.raft, &format!("p{i}"), &i.to_string()));
    }
    let before = n.status().unwrap();
    n.kill();
    n.start();
    ready(&n);
    for i in 0..60 {
        let v = hato_ok(&["settings", "get", "--node", &n.raft, &format!("p{i}")]);
        assert_eq!(v.trim(), i.to_string(), "p{i} lost after SIGKILL");
    }
    let after = n.status().unwrap();
    assert!(
        after["last_applied_index"].as_u64() >= before["last_applied_index"].as_u64(),
        "before {before}, after {after}"
    );
}
