//! Webhooks against a real HTTP receiver: CMC payloads, batching, signatures, retries,
//! isolation between endpoints, a leader killed during dispatch, and inbound mail.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use hato_tests::{
    fast_delivery, hato_ok, route_all_to, wait_for, Cluster, Mx, Node, NodeOpts, Receiver, Smtp,
};
use serde_json::Value;

fn single(mx: &Mx) -> (tempfile::TempDir, Node) {
    let (root, n) = hato_tests::single_node("");
    setup(&n.raft, mx);
    (root, n)
}

fn setup(node: &str, mx: &Mx) {
    hato_ok(&["smtp", "allow", "add", "--node", node, "127.0.0.0/8"]);
    route_all_to(node, mx.port);
}

fn send(smtp: &str, to: &str, subject: &str) -> String {
    let r = Smtp::transaction(
        smtp,
        "app@src.example",
        &[to],
        &format!("From: app@src.example\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nbody\r\n"),
    );
    assert!(r.starts_with("250"), "{r}");
    r.trim().rsplit(' ').next().unwrap().to_string()
}

/// The CMC records of every request body: (event_type, records).
fn cmc_events(body: &[u8], content_type: &str) -> (String, Vec<Value>, Value) {
    let doc: Value = if content_type.starts_with("application/json") {
        serde_json::from_slice(body).unwrap()
    } else {
        // form: decode with Python to stay independent of our encoder.
        let out = Command::new(hato_tests::debian_python())
            .args(["-c", "import sys,json,urllib.parse; print(json.dumps(dict(urllib.parse.parse_qsl(sys.stdin.read()))))"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(body)?;
                c.wait_with_output()
            })
            .unwrap();
        let mut v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["event"] = serde_json::from_str(v["event"].as_str().unwrap()).unwrap();
        v
    };
    let kind = doc["event_type"].as_str().unwrap().to_string();
    let recs = doc["event"][&kind].as_array().unwrap().clone();
    (kind, recs, doc)
}

fn hmac_hex(secret: &str, msg: &[u8]) -> String {
    let mut c = Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret, "-hex"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl");
    {
        use std::io::Write;
        c.stdin.take().unwrap().write_all(msg).unwrap();
    }
    let out = String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap();
    out.trim().rsplit(' ').next().unwrap().to_string()
}

#[test]
fn events_are_cmc_shaped_batched_signed_and_authenticated() {
    let mx = Mx::start();
    let (_root, n) = single(&mx);
    let json_rx = Receiver::start(0);
    let form_rx = Receiver::start(0);
    hato_ok(&[
        "webhook",
        "add",
        "--node",
        &n.raft,
        "deliv",
        &json_rx.url(),
        "--events",
        "queued,succeeded",
        "--format",
        "json",
        "--bearer",
        "tok-1",
        "--secret",
        "old-key",
        "--secret",
        "new-key",
        "--server-composition",
        "pro",
    ]);
    hato_ok(&[
        "webhook",
        "add",
        "--node",
        &n.raft,
        "bnc",
        &form_rx.url(),
        "--events",
        "bounced",
        "--api-key",
        "k-123",
    ]);
    let listed = hato_ok(&["webhook", "list", "--node", &n.raft]);
    assert!(
        !listed.contains("old-key") && !listed.contains("tok-1"),
        "{listed}"
    );
    for i in 0..4 {
        send(&n.smtp, &format!("u{i}@dest.example"), &format!("s{i}"));
    }
    send(&n.smtp, "perm@dest.example", "bounce me");
    // 5 queued + 4 succeeded delivery events; 1 bounce.
    wait_for("delivery events", Duration::from_secs(30), || {
        let n: usize = json_rx
            .requests()
            .iter()
            .map(|(_, h, b)| cmc_events(b, h["content-type"].as_str().unwrap()).1.len())
            .sum();
        (n >= 9).then_some(())
    });
    let reqs = json_rx.requests();
    let mut statuses: HashMap<String, usize> = HashMap::new();
    for (_, h, body) in &reqs {
        let ct = h["content-type"].as_str().unwrap();
        assert!(ct.starts_with("application/json"));
        assert_eq!(h["authorization"], "Bearer tok-1");
        let (kind, recs, doc) = cmc_events(body, ct);
        assert_eq!(kind, "deliveries");
        assert_eq!(doc["server_composition"], "pro");
        for r in &recs {
            for f in [
                "created",
                "returnPath",
                "from",
                "to",
                "messageId",
                "reason",
                "senderIp",
                "sourceIp",
                "status",
                "subject",
                "apiData",
            ] {
                assert!(r.get(f).is_some(), "{f} missing in {r}");
            }
            *statuses
                .entry(r["status"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        // Signature: t=<unix>,v1=<hmac(old-key)>,v1=<hmac(new-key)> over "<t>.<body>".
        let sig = h["x-hato-signature"].as_str().unwrap();
        let t = sig.split(',').next().unwrap().strip_prefix("t=").unwrap();
        let mut signed = format!("{t}.").into_bytes();
        signed.extend_from_slice(body);
        for key in ["old-key", "new-key"] {
            assert!(
                sig.contains(&format!("v1={}", hmac_hex(key, &signed))),
                "{key}: {sig}"
            );
        }
        assert!(h["idempotency-key"].as_str().unwrap().starts_with("deliv:"));
    }
    assert_eq!(statuses.get("queued"), Some(&5), "{statuses:?}");
    assert_eq!(statuses.get("succeeded"), Some(&4), "{statuses:?}");
    assert!(
        reqs.len() < 9,
        "events are batched: {} requests for 9 events",
        reqs.len()
    );

    let b = wait_for("bounce event", Duration::from_secs(30), || {
        form_rx.requests().into_iter().next()
    });
    let ct = b.1["content-type"].as_str().unwrap().to_string();
    assert!(ct.starts_with("application/x-www-form-urlencoded"), "{ct}");
    let (kind, recs, doc) = cmc_events(&b.2, &ct);
    assert_eq!(kind, "bounces");
    assert_eq!(doc["api_key"], "k-123");
    assert_eq!(recs[0]["to"], "perm@dest.example");
    assert_eq!(recs[0]["status"], "2");
}

#[test]
fn a_failing_endpoint_is_retried_without_holding_up_another() {
    let mx = Mx::start();
    let (_root, n) = single(&mx);
    let flaky = Receiver::start(2);
    let healthy = Receiver::start(0);
    let dead = Receiver::start(1_000_000);
    for (name, rx, retry) in [
        ("flaky", &flaky, "600"),
        ("healthy", &healthy, "600"),
        ("dead", &dead, "2"),
    ] {
        hato_ok(&[
            "webhook",
            "add",
            "--node",
            &n.raft,
            name,
            &rx.url(),
            "--events",
            "queued",
            "--format",
            "json",
            "--batch-ms",
            "100",
            "--retry-for-secs",
            retry,
        ]);
    }
    let t0 = std::time::Instant::now();
    send(&n.smtp, "x@dest.example", "retry");
    wait_for("healthy endpoint", Duration::from_secs(10), || {
        (!healthy.requests().is_empty()).then_some(())
    });
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "not held up: {:?}",
        t0.elapsed()
    );
    let got = wait_for("flaky endpoint recovers", Duration::from_secs(30), || {
        let r = flaky.requests();
        r.iter().any(|(s, _, _)| *s == 200).then_some(r)
    });
    assert_eq!(
        got.iter().map(|(s, _, _)| *s).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    let keys: Vec<&str> = got
        .iter()
        .map(|(_, h, _)| h["idempotency-key"].as_str().unwrap())
        .collect();
    assert!(
        keys.iter().all(|k| *k == keys[0]),
        "retries carry the same key: {keys:?}"
    );
    // The dead endpoint gives up after its retry time and records the failure.
    let f = wait_for("failure recorded", Duration::from_secs(30), || {
        let out = hato_ok(&["webhook", "failures", "--node", &n.raft]);
        out.lines()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
    });
    assert_eq!(f["endpoint"], "dead");
    assert!(f["error"].as_str().unwrap().contains("500"), "{f}");
    assert!(f["attempts"].as_u64().unwrap() >= 2);
}

/// Invariant 4: kill the leader while it dispatches; the new leader continues from the
/// committed cursor, so no event is lost.
#[test]
fn no_event_is_lost_when_the_leader_dies_during_dispatch() {
    let mx = Mx::start();
    let mut c = Cluster::start(
        3,
        NodeOpts {
            delivery: fast_delivery(""),
            ..Default::default()
        },
    );
    let n1 = c.node(1).raft.clone();
    setup(&n1, &mx);
    let rx = Receiver::start(0);
    hato_ok(&[
        "webhook",
        "add",
        "--node",
        &n1,
        "all",
        &rx.url(),
        "--events",
        "queued",
        "--format",
        "json",
        "--batch-ms",
        "50",
        "--batch-max",
        "3",
    ]);
    let smtps: Vec<String> = (1..=3).map(|i| c.node(i).smtp.clone()).collect();
    let leader = c.leader();
    let mut sent = Vec::new();
    for i in 0..40 {
        if i == 20 {
            c.node(leader).kill();
        }
        let alive: Vec<&String> = (1..=3u64)
            .filter(|n| *n != leader || i < 20)
            .map(|n| &smtps[(n - 1) as usize])
            .collect();
        // Through a surviving node; retry while the cluster elects a new leader.
        let to = format!("k{i}@dest.example");
        let id = wait_for("accepted", Duration::from_secs(30), || {
            let addr = alive[i % alive.len()];
            std::panic::catch_unwind(|| send(addr, &to, "x")).ok()
        });
        sent.push(to);
        let _ = id;
    }
    let seen = wait_for("every queued event", Duration::from_secs(60), || {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (_, h, b) in rx.requests() {
            for r in cmc_events(&b, h["content-type"].as_str().unwrap()).1 {
                *seen
                    .entry(r["to"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
        sent.iter().all(|t| seen.contains_key(t)).then_some(seen)
    });
    let repeated: usize = seen.values().map(|n| n - 1).sum();
    eprintln!(
        "leader {leader} killed: {} events, {repeated} repeated",
        seen.values().sum::<usize>()
    );
    assert!(
        repeated <= 3,
        "at most the batch in flight is repeated: {repeated}"
    );
}

#[test]
fn inbound_mail_is_parsed_and_posted() {
    let mx = Mx::start();
    let (_root, n) = single(&mx);
    let rx = Receiver::start(0);
    hato_ok(&[
        "webhook",
        "add",
        "--node",
        &n.raft,
        "in",
        &rx.url(),
        "--inbound",
        "support=support@in.example",
        "--inbound",
        "any=in2.example",
        "--format",
        "json",
    ]);
    hato_ok(&["smtp", "allow", "remove", "--node", &n.raft, "127.0.0.0/8"]);
    // From an outside MTA: no AUTH, not allow-listed; ISO-2022-JP subject and body.
    let (mut c, _) = Smtp::connect(&n.smtp);
    c.cmd("EHLO mx.sender.example");
    assert!(c
        .cmd("MAIL FROM:<customer@sender.example>")
        .starts_with("250"));
    assert!(c.cmd("RCPT TO:<support@in.example>").starts_with("250"));
    assert!(
        c.cmd("RCPT TO:<other@elsewhere.example>")
            .starts_with("554"),
        "still no open relay"
    );
    assert!(c.cmd("DATA").starts_with("354"));
    c.send(b"From: customer@sender.example\r\nTo: support@in.example\r\nReceived: from a\r\nReceived: from b\r\n\
Subject: =?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\x1b$B$3$s$K$A$O\x1b(B\r\n.\r\n");
    assert!(c.reply().starts_with("250"));
    c.cmd("QUIT");
    let (_, h, body) = wait_for("inbound post", Duration::from_secs(30), || {
        rx.requests().into_iter().next()
    });
    assert!(h["content-type"]
        .as_str()
        .unwrap()
        .starts_with("application/json"));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["filter"], "support");
    assert_eq!(v["subject"], "こんにちは");
    assert_eq!(v["text"].as_str().unwrap().trim(), "こんにちは");
    assert_eq!(v["envelope-from"], "customer@sender.example");
    assert_eq!(v["envelope-to"], "support@in.example");
    let names: Vec<&str> = v["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    let r1 = names.iter().position(|n| *n == "Received").unwrap();
    assert_eq!(
        names[r1 + 1],
        "Received",
        "headers in original order: {names:?}"
    );
    // A domain rule matches any address in it.
    let (mut c, _) = Smtp::connect(&n.smtp);
    c.cmd("EHLO mx.sender.example");
    c.cmd("MAIL FROM:<x@sender.example>");
    assert!(c.cmd("RCPT TO:<anyone@in2.example>").starts_with("250"));
    c.cmd("QUIT");
}
