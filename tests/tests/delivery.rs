//! Outbound delivery end to end: real `hato` processes deliver to a real scripted MX
//! (aiosmtpd), DKIM signatures are checked by an independent verifier (dkimpy), and a node is
//! SIGKILLed while it holds leases.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use hato_tests::{
    delivery_log, fast_delivery, hato_ok, route_all_to, wait_for, Cluster, Mx, Node, NodeOpts, Smtp,
};
use serde_json::Value;

fn single(delivery: &str) -> (tempfile::TempDir, Node) {
    let (root, n) = hato_tests::single_node(delivery);
    hato_ok(&["smtp", "allow", "add", "--node", &n.raft, "127.0.0.0/8"]);
    (root, n)
}

/// Send one message over SMTP; returns the queue id.
fn send(smtp: &str, from: &str, to: &[&str], headers: &str, body: &str) -> String {
    let r = Smtp::transaction(
        smtp,
        from,
        to,
        &format!(
            "From: {from}\r\nTo: {}\r\n{headers}\r\n{body}\r\n",
            to.join(", ")
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    r.trim().rsplit(' ').next().unwrap().to_string()
}

fn statuses(log: &[Value], rcpt: &str) -> Vec<String> {
    log.iter()
        .filter(|r| r["recipient"] == rcpt)
        .map(|r| r["status"].as_str().unwrap().to_string())
        .collect()
}

/// Verify a message's DKIM signature with dkimpy, answering its DNS query with `txt`.
fn dkim_verifies(msg: &[u8], dns_name: &str, txt: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.eml");
    std::fs::write(&path, msg).unwrap();
    let script = format!(
        "import sys, dkim\n\
         def dns(name, timeout=5):\n\
         \x20   return {txt:?}.encode() if name.decode().rstrip('.') == {dns_name:?} else None\n\
         msg = open({path:?}, 'rb').read()\n\
         sys.exit(0 if dkim.verify(msg, dnsfunc=dns) else 1)\n",
        path = path.display().to_string(),
    );
    let out = Command::new(hato_tests::debian_python())
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .expect("python3");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("ModuleNotFoundError"),
        "dkimpy is missing (apt-get install python3-dkim python3-nacl): {err}"
    );
    out.status.success()
}

#[test]
fn delivers_signed_mail_with_verp_retries_and_bounces() {
    let mx = Mx::start();
    let (_root, n) = single("");
    route_all_to(&n.raft, mx.port);
    let rsa: Value = serde_json::from_str(&hato_ok(&[
        "domain",
        "add",
        "--node",
        &n.raft,
        "shop.example",
    ]))
    .unwrap();
    let ed: Value = serde_json::from_str(&hato_ok(&[
        "domain",
        "add",
        "--node",
        &n.raft,
        "ed.example",
        "--selector",
        "ed1",
        "--algorithm",
        "ed25519",
    ]))
    .unwrap();
    assert_eq!(rsa["dns"][0]["name"], "hato._domainkey.shop.example");
    assert!(rsa["dns"][0]["value"]
        .as_str()
        .unwrap()
        .starts_with("v=DKIM1; k=rsa; p="));
    assert!(rsa["dns"][1]["value"]
        .as_str()
        .unwrap()
        .starts_with("v=spf1"));
    hato_ok(&[
        "domain",
        "bounce-domain",
        "--node",
        &n.raft,
        "bounces.hato.test",
    ]);

    let id = send(
        &n.smtp,
        "news@shop.example",
        &["ok@dest.example", "temp2@dest.example", "perm@dest.example"],
        "Subject: =?UTF-8?B?44GT44KT44Gr44Gh44Gv?=\r\nMessage-ID: <m1@shop.example>\r\n",
        "Hello,\r\n..leading dot\r\nbye",
    );
    let id_ed = send(
        &n.smtp,
        "info@ed.example",
        &["ed@dest.example"],
        "Subject: ed25519\r\n",
        "signed with ed25519",
    );

    let log = wait_for("all recipients final", Duration::from_secs(60), || {
        let log = delivery_log(&n.raft);
        let done = [
            "ok@dest.example",
            "temp2@dest.example",
            "perm@dest.example",
            "ed@dest.example",
        ]
        .iter()
        .all(|r| {
            statuses(&log, r)
                .iter()
                .any(|s| s == "succeeded" || s == "failed")
        });
        done.then_some(log)
    });
    assert_eq!(statuses(&log, "ok@dest.example"), ["queued", "succeeded"]);
    assert_eq!(
        statuses(&log, "temp2@dest.example"),
        ["queued", "deferred", "deferred", "succeeded"]
    );
    assert_eq!(statuses(&log, "perm@dest.example"), ["queued", "failed"]);
    let failed = log
        .iter()
        .find(|r| r["recipient"] == "perm@dest.example" && r["status"] == "failed")
        .unwrap();
    assert_eq!(failed["reason"], "userunknown", "{failed}");
    assert!(
        failed["reply"].as_str().unwrap().starts_with("550"),
        "{failed}"
    );
    let ok = log
        .iter()
        .find(|r| r["recipient"] == "ok@dest.example" && r["status"] == "succeeded")
        .unwrap();
    assert_eq!(ok["egress_ip"], "127.0.0.1");
    assert!(ok["remote"]
        .as_str()
        .unwrap()
        .contains(&mx.port.to_string()));
    assert_eq!(
        ok["return_path"],
        format!("bounce-{id}-0@bounces.hato.test")
    );
    let deferred = log
        .iter()
        .find(|r| r["recipient"] == "temp2@dest.example" && r["status"] == "deferred")
        .unwrap();
    assert!(
        deferred["reply"].as_str().unwrap().starts_with("451"),
        "{deferred}"
    );

    // What arrived: one copy each for ok, temp2 and ed, none for perm; VERP return paths.
    let recs = mx.records();
    let mut by_rcpt: HashMap<String, Vec<&Value>> = HashMap::new();
    for r in &recs {
        for t in r["rcpt_tos"].as_array().unwrap() {
            by_rcpt
                .entry(t.as_str().unwrap().to_string())
                .or_default()
                .push(r);
        }
    }
    assert_eq!(by_rcpt["ok@dest.example"].len(), 1, "{recs:?}");
    assert_eq!(by_rcpt["temp2@dest.example"].len(), 1, "{recs:?}");
    assert!(!by_rcpt.contains_key("perm@dest.example"));
    assert_eq!(
        by_rcpt["temp2@dest.example"][0]["mail_from"],
        format!("bounce-{id}-1@bounces.hato.test")
    );
    assert_eq!(
        by_rcpt["ed@dest.example"][0]["mail_from"],
        format!("bounce-{id_ed}-0@bounces.hato.test")
    );

    // Signatures verify with an independent verifier; a changed byte breaks them.
    let msgs = mx.messages();
    assert_eq!(msgs.len(), 3);
    let (rsa_name, rsa_txt) = (
        rsa["dns"][0]["name"].as_str().unwrap(),
        rsa["dns"][0]["value"].as_str().unwrap(),
    );
    let (ed_name, ed_txt) = (
        ed["dns"][0]["name"].as_str().unwrap(),
        ed["dns"][0]["value"].as_str().unwrap(),
    );
    for m in &msgs {
        let text = String::from_utf8_lossy(m);
        assert!(text.contains("DKIM-Signature:"), "{text}");
        assert!(text.contains("\r\n.leading dot\r\n") || text.contains("signed with ed25519"));
        let (name, txt) = if text.contains("d=ed.example") {
            (ed_name, ed_txt)
        } else {
            (rsa_name, rsa_txt)
        };
        assert!(dkim_verifies(m, name, txt), "DKIM fails for:\n{text}");
        let tampered = text
            .replacen("Hello,", "Hallo,", 1)
            .replacen("signed with", "signed by", 1);
        assert!(!dkim_verifies(tampered.as_bytes(), name, txt));
    }
    let stats: Value =
        serde_json::from_str(&hato_ok(&["queue", "stats", "--node", &n.raft])).unwrap();
    assert_eq!(stats["pending"], 0, "{stats}");
}

#[test]
fn queue_retry_delete_expiry_and_blocks_while_queued() {
    let mx = Mx::start();
    // Long retry interval, so only an operator's "retry now" brings the next attempt.
    let (_root, n) = single("retry_schedule_secs = [600]\nexpire_after_secs = 3600\n");
    route_all_to(&n.raft, mx.port);
    let id = send(
        &n.smtp,
        "a@src.example",
        &["temp9@dest.example"],
        "Subject: q\r\n",
        "x",
    );
    let first = wait_for("first attempt", Duration::from_secs(30), || {
        let l = hato_ok(&["queue", "list", "--node", &n.raft]);
        let v: Value = serde_json::from_str(l.lines().next()?).ok()?;
        (v["attempts"] == 1).then_some(v)
    });
    assert_eq!(first["id"], id.as_str());
    assert_eq!(first["recipient"], "temp9@dest.example");
    assert!(first["last_reply"].as_str().unwrap().starts_with("451"));
    assert!(hato_ok(&["queue", "retry", "--node", &n.raft, &id]).contains("1 recipient"));
    wait_for(
        "second attempt after retry",
        Duration::from_secs(30),
        || {
            let v: Value =
                serde_json::from_str(&hato_ok(&["queue", "show", "--node", &n.raft, &id])).ok()?;
            (v["pending"][0]["attempts"] == 2).then_some(())
        },
    );
    assert!(hato_ok(&["queue", "delete", "--node", &n.raft, &id]).contains("1 recipient"));
    let log = delivery_log(&n.raft);
    assert_eq!(
        statuses(&log, "temp9@dest.example"),
        ["queued", "deferred", "deferred", "failed"]
    );
    assert!(log.iter().any(|r| r["reason"] == "deleted"));
    let stats: Value =
        serde_json::from_str(&hato_ok(&["queue", "stats", "--node", &n.raft])).unwrap();
    assert_eq!(stats["pending"], 0);
    let out = hato_tests::hato(&["queue", "delete", "--node", &n.raft, &id]);
    assert!(!out.status.success(), "deleting twice is an error");

    // Blocked while waiting for a retry: the next attempt does not happen.
    let id2 = send(
        &n.smtp,
        "a@src.example",
        &["temp1@dest.example"],
        "Subject: b\r\n",
        "x",
    );
    wait_for("deferral", Duration::from_secs(30), || {
        statuses(&delivery_log(&n.raft), "temp1@dest.example")
            .contains(&"deferred".to_string())
            .then_some(())
    });
    hato_ok(&["blocks", "add", "--node", &n.raft, "temp1@dest.example"]);
    hato_ok(&["queue", "retry", "--node", &n.raft, &id2]);
    wait_for(
        "blocked at the next attempt",
        Duration::from_secs(30),
        || {
            statuses(&delivery_log(&n.raft), "temp1@dest.example")
                .contains(&"blocked".to_string())
                .then_some(())
        },
    );
    assert!(
        mx.records().is_empty(),
        "nothing may arrive: {:?}",
        mx.records()
    );
}

#[test]
fn retries_stop_at_the_expiry_with_reason_expired() {
    let mx = Mx::start();
    let (_root, n) = single("expire_after_secs = 3\n");
    route_all_to(&n.raft, mx.port);
    send(
        &n.smtp,
        "a@src.example",
        &["temp99@dest.example"],
        "Subject: e\r\n",
        "x",
    );
    let log = wait_for("expiry", Duration::from_secs(30), || {
        let log = delivery_log(&n.raft);
        statuses(&log, "temp99@dest.example")
            .contains(&"failed".to_string())
            .then_some(log)
    });
    let st = statuses(&log, "temp99@dest.example");
    assert!(
        st.iter().filter(|s| *s == "deferred").count() >= 1,
        "{st:?}"
    );
    let failed = log.iter().find(|r| r["status"] == "failed").unwrap();
    assert_eq!(failed["reason"], "expired", "{failed}");
}

#[test]
fn unreachable_destinations_are_deferred_not_lost() {
    let (_root, n) = single("");
    // Nothing listens on this port.
    let port = hato_tests::free_port();
    hato_ok(&[
        "route",
        "set",
        "--node",
        &n.raft,
        "dest.example",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
    ]);
    send(
        &n.smtp,
        "a@src.example",
        &["x@dest.example"],
        "Subject: u\r\n",
        "x",
    );
    let log = wait_for("deferrals", Duration::from_secs(30), || {
        let log = delivery_log(&n.raft);
        (statuses(&log, "x@dest.example").len() >= 3).then_some(log)
    });
    let d = log.iter().find(|r| r["status"] == "deferred").unwrap();
    assert!(d["reply"].as_str().unwrap().starts_with("451 4.4.1"), "{d}");
    let stats: Value =
        serde_json::from_str(&hato_ok(&["queue", "stats", "--node", &n.raft])).unwrap();
    assert_eq!(stats["pending"], 1);
}

/// Invariant 3: SIGKILL the node holding the most leases in the middle of a batch; every
/// accepted message still arrives, and duplicates stay rare (only the window between the
/// remote 250 and the commit of the result).
#[test]
fn killing_a_lease_holder_loses_nothing() {
    let mx = Mx::start();
    let opts = NodeOpts {
        delivery: fast_delivery("max_connections_per_domain = 20\n"),
        ..Default::default()
    };
    let mut c = Cluster::start(3, opts);
    let n1 = c.node(1).raft.clone();
    hato_ok(&["smtp", "allow", "add", "--node", &n1, "127.0.0.0/8"]);
    route_all_to(&n1, mx.port);
    // "slow" recipients take 3 s each at the MX, so deliveries are in flight when we kill.
    let smtps: Vec<String> = (1..=3).map(|i| c.node(i).smtp.clone()).collect();
    let mut ids = Vec::new();
    for i in 0..90 {
        let id = send(
            &smtps[i % 3],
            "a@src.example",
            &[&format!("slow{i}@dest.example")],
            &format!("Subject: k{i}\r\nMessage-ID: <k{i}@src.example>\r\n"),
            "x",
        );
        ids.push(id);
    }
    // Find the node holding the most leases right now and kill it.
    let victim = wait_for("leases held", Duration::from_secs(20), || {
        let out = hato_ok(&["queue", "list", "--node", &n1, "--limit", "1000"]);
        let mut count: HashMap<u64, usize> = HashMap::new();
        for l in out.lines() {
            let v: Value = serde_json::from_str(l).ok()?;
            if let Some(node) = v["lease"]["node"].as_u64() {
                *count.entry(node).or_default() += 1;
            }
        }
        count
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .filter(|(_, n)| *n >= 5)
    })
    .0;
    c.node(victim).kill();
    let survivor = (1..=3).find(|i| *i != victim).unwrap();
    let node = c.node(survivor).raft.clone();

    // Everything arrives at least once.
    wait_for("every message at the MX", Duration::from_secs(120), || {
        let got: std::collections::HashSet<String> = mx
            .records()
            .iter()
            .filter_map(|r| r["message_id"].as_str().map(str::to_string))
            .collect();
        (0..90)
            .all(|i| got.contains(&format!("<k{i}@src.example>")))
            .then_some(())
    });
    let recs = mx.records();
    let duplicates = recs.len() - 90;
    eprintln!(
        "killed node {victim}: {} deliveries for 90 messages, {duplicates} duplicate(s)",
        recs.len()
    );
    // The victim had up to ~20 transactions at the MX at once; only those that got their 250
    // but not their commit can be repeated.
    assert!(duplicates <= 20, "{duplicates} duplicates");
    wait_for("queue drained", Duration::from_secs(60), || {
        let s: Value = serde_json::from_str(&hato_ok(&["queue", "stats", "--node", &node])).ok()?;
        (s["pending"] == 0).then_some(())
    });
}

/// A DSN that answers one of our VERP return paths.
fn dsn(verp: &str, rcpt: &str, status: &str, diagnostic: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.remote.example\r\nTo: {verp}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"BB\"\r\n\r\n\
         --BB\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --BB\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; mx.remote.example\r\n\r\n\
         Final-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: {status}\r\n\
         Remote-MTA: dns; mailbox.remote.example\r\nDiagnostic-Code: smtp; {diagnostic}\r\n\r\n\
         --BB--\r\n"
    )
}

/// Send a bounce to the node as a remote MTA would: null sender, no AUTH, not allow-listed.
fn send_bounce(smtp: &str, verp: &str, body: &str) -> String {
    Smtp::transaction(smtp, "", &[verp], &format!("{body}\r\n"))
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn bounce_mail_is_matched_by_verp_recorded_and_auto_blocks() {
    let mx = Mx::start();
    let (_root, n) = hato_tests::single_node("retry_schedule_secs = [600]\n");
    route_all_to(&n.raft, mx.port);
    hato_ok(&[
        "domain",
        "bounce-domain",
        "--node",
        &n.raft,
        "bounces.hato.test",
    ]);
    // Rules: user unknown blocks at once; mailbox full only on the second occurrence.
    hato_ok(&[
        "blocks",
        "rules",
        "--node",
        &n.raft,
        "--set",
        r#"{"mode":"immediate","watch_days":30,"rules":{"userunknown":{"enabled":true,"threshold":1},"mailboxfull":{"enabled":true,"threshold":2}}}"#,
    ]);
    // A webhook endpoint subscribed to bounces, blocks and successes: those events are written
    // to the outbox with the changes that cause them (dispatching them is the webhook issue).
    hato_ok(&[
        "settings",
        "set",
        "--node",
        &n.raft,
        "webhook/endpoints",
        r#"[{"name":"t","url":"http://127.0.0.1:9/","events":["bounced","blocks","succeeded"]}]"#,
    ]);
    // Only bounce addresses are open to anyone; relaying is still refused (no allow-list).
    let (mut c, _) = Smtp::connect(&n.smtp);
    c.cmd("EHLO mx.remote.example");
    c.cmd("MAIL FROM:<>");
    assert!(c
        .cmd("RCPT TO:<someone@elsewhere.example>")
        .starts_with("554 5.7.1"));
    assert!(c
        .cmd("RCPT TO:<postmaster@bounces.hato.test>")
        .starts_with("550 5.1.1"));
    c.cmd("QUIT");

    hato_ok(&["smtp", "allow", "add", "--node", &n.raft, "127.0.0.1"]);
    let id = send(
        &n.smtp,
        "app@src.example",
        &[
            "gone@dest.example",
            "later@dest.example",
            "temp1@dest.example",
        ],
        "Subject: b\r\n",
        "x",
    );
    hato_ok(&["smtp", "allow", "remove", "--node", &n.raft, "127.0.0.1"]);
    // gone@ and later@ are delivered; temp1@ is deferred for 10 minutes.
    wait_for("deliveries", Duration::from_secs(30), || {
        let log = delivery_log(&n.raft);
        (statuses(&log, "later@dest.example").contains(&"succeeded".to_string())
            && statuses(&log, "gone@dest.example").contains(&"succeeded".to_string())
            && statuses(&log, "temp1@dest.example").contains(&"deferred".to_string()))
        .then_some(())
    });
    let verp = |i: u32| format!("bounce-{id}-{i}@bounces.hato.test");
    assert_eq!(mx.records().len(), 2);

    // 1. A late bounce for a delivered recipient: a bounce record, not a `failed` statistic.
    let r = send_bounce(
        &n.smtp,
        &verp(0),
        &dsn(
            &verp(0),
            "gone@dest.example",
            "5.1.1",
            "550 5.1.1 <gone@dest.example>: User unknown",
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    // 2. A bounce for the deferred recipient: it fails now, and is not retried.
    let r = send_bounce(
        &n.smtp,
        &verp(2),
        &dsn(
            &verp(2),
            "temp1@dest.example",
            "5.2.2",
            "552 5.2.2 Mailbox full",
        ),
    );
    assert!(r.starts_with("250"), "{r}");
    // The same bounce twice changes nothing.
    send_bounce(
        &n.smtp,
        &verp(2),
        &dsn(
            &verp(2),
            "temp1@dest.example",
            "5.2.2",
            "552 5.2.2 Mailbox full",
        ),
    );

    let bounces = json_lines(&hato_ok(&["bounce", "list", "--node", &n.raft]));
    let gone: Vec<_> = bounces
        .iter()
        .filter(|b| b["recipient"] == "gone@dest.example")
        .collect();
    assert_eq!(gone.len(), 1, "{bounces:?}");
    assert_eq!(
        (gone[0]["reason"].as_str(), gone[0]["code"].as_u64()),
        (Some("userunknown"), Some(2))
    );
    let full: Vec<_> = bounces
        .iter()
        .filter(|b| b["recipient"] == "temp1@dest.example")
        .collect();
    assert_eq!(full.len(), 1, "{bounces:?}");
    assert_eq!(full[0]["reason"], "mailboxfull");
    assert_eq!(full[0]["code"], 5);
    let log = delivery_log(&n.raft);
    assert_eq!(
        statuses(&log, "temp1@dest.example"),
        ["queued", "deferred", "failed"]
    );
    assert_eq!(
        statuses(&log, "gone@dest.example"),
        ["queued", "succeeded", "failed"]
    );
    let stats: Value =
        serde_json::from_str(&hato_ok(&["queue", "stats", "--node", &n.raft])).unwrap();
    assert_eq!(stats["pending"], 0, "the bounced recipient left the queue");

    // Auto-block: userunknown (threshold 1) blocked gone@; mailboxfull needs 2, so temp1@ is not.
    let blocks = json_lines(&hato_ok(&["blocks", "list", "--node", &n.raft]));
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    assert_eq!(blocks[0]["address"], "gone@dest.example");
    assert_eq!(blocks[0]["code"], 2);
    assert_eq!(blocks[0]["auto"], true);
    assert!(
        blocks[0]["expires_at_ms"].as_u64().unwrap()
            > blocks[0]["at_ms"].as_u64().unwrap() + 29 * 86_400_000
    );
    let csv = hato_ok(&["blocks", "export", "--node", &n.raft]);
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("gone@dest.example,auto: userunknown,2,1,"),
        "{csv}"
    );

    let events = json_lines(&hato_ok(&["events", "--node", &n.raft, "--limit", "1000"]));
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            let ev = &e["event"];
            let who = ev["Delivery"]["recipient"]
                .as_str()
                .or(ev["Bounce"]["recipient"].as_str())
                .or(ev["Block"]["record"]["address"].as_str())
                .unwrap_or("");
            (e["kind"].as_str().unwrap(), who)
        })
        .collect();
    for want in [
        ("succeeded", "gone@dest.example"),
        ("succeeded", "later@dest.example"),
        ("bounced", "gone@dest.example"),
        ("bounced", "temp1@dest.example"),
        ("blocks", "gone@dest.example"),
    ] {
        assert!(kinds.contains(&want), "{want:?} not in {kinds:?}");
    }
    assert!(
        !kinds
            .iter()
            .any(|(k, _)| *k == "queued" || *k == "deferred"),
        "not subscribed: {kinds:?}"
    );
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "gapless, in order"
    );

    // Mail to the blocked address is accepted, recorded as blocked with code 10, never sent.
    hato_ok(&["smtp", "allow", "add", "--node", &n.raft, "127.0.0.1"]);
    send(
        &n.smtp,
        "app@src.example",
        &["gone@dest.example"],
        "Subject: again\r\n",
        "x",
    );
    let bounces = json_lines(&hato_ok(&["bounce", "list", "--node", &n.raft]));
    assert!(
        bounces
            .iter()
            .any(|b| b["recipient"] == "gone@dest.example" && b["code"] == 10),
        "{bounces:?}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(mx.records().len(), 2, "nothing more may arrive");
    // Unblocking is immediate.
    hato_ok(&["blocks", "remove", "--node", &n.raft, "gone@dest.example"]);
    send(
        &n.smtp,
        "app@src.example",
        &["gone@dest.example"],
        "Subject: third\r\n",
        "x",
    );
    wait_for("delivery after unblock", Duration::from_secs(30), || {
        (mx.records().len() == 3).then_some(())
    });
}

/// A backlog drains into Postfix's `smtp-sink` (a real, fast MX) without stalling: 2000
/// messages sent with Postfix's `smtp-source`, every one recorded as delivered.
#[test]
fn a_backlog_drains_into_smtp_sink() {
    let sink_port = hato_tests::free_port();
    let mut sink = Command::new("smtp-sink");
    if unsafe { libc::geteuid() } == 0 {
        sink.args(["-u", "nobody"]); // required (and only allowed) when running as root
    }
    let mut sink = sink
        .args([&format!("127.0.0.1:{sink_port}"), "100"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("smtp-sink (apt-get install postfix)");
    let (_root, n) = single("max_connections_per_domain = 20\n");
    route_all_to(&n.raft, sink_port);
    const N: usize = 2000;
    let out = Command::new("smtp-source")
        .args(["-s", "10", "-m", &N.to_string(), "-l", "2048"])
        .args(["-f", "load@src.example", "-t", "sink@dest.example", &n.smtp])
        .output()
        .expect("smtp-source (apt-get install postfix)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t0 = std::time::Instant::now();
    let mut last = u64::MAX;
    let mut stalled_since = std::time::Instant::now();
    loop {
        let s: Value =
            serde_json::from_str(&hato_ok(&["queue", "stats", "--node", &n.raft])).unwrap();
        let pending = s["pending"].as_u64().unwrap();
        if pending == 0 {
            break;
        }
        if pending < last {
            last = pending;
            stalled_since = std::time::Instant::now();
        }
        assert!(
            stalled_since.elapsed() < Duration::from_secs(15),
            "the queue stalled at {pending} pending"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "{N} messages drained in {:?} after acceptance",
        t0.elapsed()
    );
    let log = delivery_log(&n.raft);
    let ok = log.iter().filter(|r| r["status"] == "succeeded").count();
    assert_eq!(ok, N);
    let _ = sink.kill();
    let _ = sink.wait();
}

/// Connections to the MX are kept for the next message without a probe; when the MX went
/// away meanwhile, the next message notices before its transaction starts and goes over a new
/// connection: delivered at its first attempt, not deferred.
#[test]
fn a_pooled_connection_the_server_closed_is_replaced_without_a_deferral() {
    let mut mx = Mx::start_fast();
    let (_root, n) = single("");
    route_all_to(&n.raft, mx.port);
    let first = send(
        &n.smtp,
        "a@src.example",
        &["one@dest.example"],
        "Subject: 1",
        "x",
    );
    wait_for("first delivered", Duration::from_secs(20), || {
        (mx.records().len() == 1).then_some(())
    });
    mx.restart();
    let second = send(
        &n.smtp,
        "a@src.example",
        &["two@dest.example"],
        "Subject: 2",
        "x",
    );
    wait_for("second delivered", Duration::from_secs(20), || {
        (mx.records().len() == 2).then_some(())
    });
    let log = json_lines(&hato_ok(&["log", "--node", &n.raft]));
    for (id, rcpt) in [(&first, "one@dest.example"), (&second, "two@dest.example")] {
        assert_eq!(
            statuses(&log, rcpt),
            ["queued", "succeeded"],
            "{id}: {log:?}"
        );
    }
}

/// Without any fault, no recipient is delivered twice, also by followers, whose local copy of
/// the due queue lags the leader: a recipient stays in the node's in-flight set until its
/// outcome is committed (the Jepsen campaign found a follower re-claiming and re-delivering
/// recipients whose outcome was still on its way). And each message is delivered by the node
/// that accepted it: the enqueue leases it to that node, which starts from memory (hand-off).
#[test]
fn followers_deliver_each_recipient_exactly_once() {
    let mx = Mx::start_fast();
    let opts = NodeOpts {
        delivery: fast_delivery(""),
        ..Default::default()
    };
    let c = Cluster::start(3, opts);
    let n1 = c.nodes[0].raft.clone();
    hato_ok(&["smtp", "allow", "add", "--node", &n1, "127.0.0.0/8"]);
    route_all_to(&n1, mx.port);
    let total = 450;
    let mut accepted_by = HashMap::<String, u64>::new();
    for i in 0..total {
        let via = &c.nodes[i % 3].smtp;
        let id = send(
            via,
            "app@shop.example",
            &[&format!("r{i}@dest.example")],
            "Subject: once",
            "x",
        );
        accepted_by.insert(id, (i % 3 + 1) as u64);
    }
    wait_for("every message at the MX", Duration::from_secs(90), || {
        (mx.records().len() >= total).then_some(())
    });
    let delivered_by: HashMap<String, u64> =
        wait_for("every success logged", Duration::from_secs(30), || {
            let out = hato_ok(&["log", "--node", &n1, "--limit", "5000"]);
            let m: HashMap<String, u64> = json_lines(&out)
                .into_iter()
                .filter(|r| r["status"] == "succeeded")
                .map(|r| {
                    (
                        r["message"].as_str().unwrap().to_string(),
                        r["node"].as_u64().unwrap(),
                    )
                })
                .collect();
            (m.len() >= total).then_some(m)
        });
    let elsewhere: Vec<_> = accepted_by
        .iter()
        .filter(|(id, node)| delivered_by.get(*id) != Some(node))
        .collect();
    assert!(
        elsewhere.is_empty(),
        "{} of {total} messages were not delivered by the node that accepted them: {:?}",
        elsewhere.len(),
        elsewhere.iter().take(5).collect::<Vec<_>>()
    );
    std::thread::sleep(Duration::from_secs(2));
    let mut seen = HashMap::<String, usize>::new();
    for r in mx.records() {
        *seen
            .entry(r["rcpt_tos"][0].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert_eq!(seen.len(), total);
    assert!(dups.is_empty(), "delivered more than once: {dups:?}");
}
