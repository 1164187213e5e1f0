//! SMTP ingress against real `hato` processes, driven by swaks and a byte-level client.

use std::time::{Duration, Instant};

use hato_tests::{delivery_log, hato_ok, swaks, wait_for, Cluster, Node, NodeOpts, Smtp};

fn node(opts: NodeOpts) -> (tempfile::TempDir, Node) {
    let root = tempfile::tempdir().unwrap();
    let mut n = Node::new(root.path(), 1, true, &[], &opts);
    n.start();
    wait_for("leader", Duration::from_secs(30), || {
        n.status().filter(|s| s["role"] == "leader")
    });
    (root, n)
}

/// Wait until the relay advertises STARTTLS (the cluster certificate is in place).
fn wait_tls(addr: &str) {
    wait_for("STARTTLS to be offered", Duration::from_secs(30), || {
        let (mut c, _) = Smtp::connect(addr);
        c.cmd("EHLO t.example").contains("STARTTLS").then_some(())
    });
}

fn allow(n: &Node, net: &str) {
    hato_ok(&["smtp", "allow", "add", "--node", &n.raft, net]);
}

fn records_for<'a>(log: &'a [serde_json::Value], rcpt: &str) -> Vec<&'a serde_json::Value> {
    log.iter().filter(|r| r["recipient"] == rcpt).collect()
}

#[test]
fn allowed_ip_relays_with_swaks_and_the_log_records_source_and_tag() {
    let (_root, n) = node(NodeOpts::default());
    allow(&n, "127.0.0.0/8");
    let (ok, out) = swaks(&[
        "--server",
        &n.smtp,
        "--from",
        "app@example.com",
        "--to",
        "user@example.net",
        "--header",
        "Subject: hello",
        "--header",
        "X-Api-Data: campaign-42",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("250 2.0.0 Ok: queued as"), "{out}");
    let log = delivery_log(&n.raft);
    let r = records_for(&log, "user@example.net");
    assert_eq!(r.len(), 1, "{log:?}");
    assert_eq!(r[0]["status"], "queued");
    assert_eq!(r[0]["source_ip"], "127.0.0.1");
    assert_eq!(r[0]["api_data"], "campaign-42");
    assert_eq!(r[0]["subject"], "hello");
    assert_eq!(r[0]["mail_from"], "app@example.com");
}

#[test]
fn relay_is_denied_without_auth_or_an_allowed_address() {
    let (_root, n) = node(NodeOpts::default());
    allow(&n, "192.0.2.0/24"); // not us
    let (ok, out) = swaks(&[
        "--server",
        &n.smtp,
        "--from",
        "a@example.com",
        "--to",
        "b@example.net",
    ]);
    assert!(!ok);
    assert!(out.contains("554 5.7.1"), "{out}");
    // Submission requires AUTH at MAIL FROM.
    let (mut c, _) = Smtp::connect(&n.submission);
    c.cmd("EHLO t.example");
    assert!(c.cmd("MAIL FROM:<a@example.com>").starts_with("530 5.7.0"));
    assert!(delivery_log(&n.raft).is_empty(), "nothing may be queued");
}

#[test]
fn auth_plain_and_login_over_starttls_and_implicit_tls() {
    let (_root, n) = node(NodeOpts::default());
    hato_ok(&[
        "smtp",
        "user",
        "add",
        "--node",
        &n.raft,
        "app",
        "--password",
        "correct horse",
    ]);
    wait_tls(&n.submission);
    for mech in ["PLAIN", "LOGIN"] {
        let (ok, out) = swaks(&[
            "--server",
            &n.submission,
            "-tls",
            "-a",
            mech,
            "-au",
            "app",
            "-ap",
            "correct horse",
            "--from",
            "app@example.com",
            "--to",
            &format!("{mech}@example.net"),
        ]);
        assert!(ok, "{mech}: {out}");
        assert!(out.contains("235 2.7.0"), "{out}");
    }
    // Implicit TLS (465-style).
    let (ok, out) = swaks(&[
        "--server",
        &n.smtps,
        "--tlsc",
        "-a",
        "PLAIN",
        "-au",
        "app",
        "-ap",
        "correct horse",
        "--from",
        "app@example.com",
        "--to",
        "implicit@example.net",
    ]);
    assert!(ok, "{out}");
    // Wrong password.
    let (ok, out) = swaks(&[
        "--server",
        &n.submission,
        "-tls",
        "-a",
        "PLAIN",
        "-au",
        "app",
        "-ap",
        "wrong",
        "--from",
        "app@example.com",
        "--to",
        "x@example.net",
    ]);
    assert!(!ok);
    assert!(out.contains("535 5.7.8"), "{out}");
    // No AUTH in clear text: not offered, and refused if tried.
    let (mut c, _) = Smtp::connect(&n.submission);
    assert!(!c.cmd("EHLO t.example").contains("AUTH"));
    assert!(c
        .cmd("AUTH PLAIN AGFwcABjb3JyZWN0IGhvcnNl")
        .starts_with("538 5.7.11"));

    let log = delivery_log(&n.raft);
    for r in [
        "PLAIN@example.net",
        "LOGIN@example.net",
        "implicit@example.net",
    ] {
        assert_eq!(records_for(&log, r).len(), 1, "{r}: {log:?}");
    }
    assert!(records_for(&log, "x@example.net").is_empty());
}

#[test]
fn auth_without_tls_when_configured() {
    let (_root, n) = node(NodeOpts {
        smtp_extra: "require_tls_for_auth = false".into(),
        ..Default::default()
    });
    hato_ok(&[
        "smtp",
        "user",
        "add",
        "--node",
        &n.raft,
        "plainuser",
        "--password",
        "password123",
    ]);
    let (ok, out) = swaks(&[
        "--server",
        &n.submission,
        "-a",
        "LOGIN",
        "-au",
        "plainuser",
        "-ap",
        "password123",
        "--from",
        "a@example.com",
        "--to",
        "clear@example.net",
    ]);
    assert!(ok, "{out}");
}

#[test]
fn proxy_protocol_v1_and_v2_give_the_real_client_address() {
    let (_root, n) = node(NodeOpts::default());
    allow(&n, "203.0.113.9");
    // v1 from an allowed address.
    let mut c = Smtp::connect_raw(&n.smtp_proxy);
    c.send(b"PROXY TCP4 203.0.113.9 10.0.0.1 40000 25\r\n");
    assert!(c.reply().starts_with("220"));
    c.cmd("EHLO lb.example");
    assert!(c.cmd("MAIL FROM:<a@example.com>").starts_with("250"));
    assert!(c.cmd("RCPT TO:<v1@example.net>").starts_with("250"));
    assert!(c.cmd("DATA").starts_with("354"));
    assert!(c.cmd("Subject: v1\r\n\r\nhi\r\n.").starts_with("250 2.0.0"));
    // v2 from a address that is not allowed: relay denied.
    let mut c = Smtp::connect_raw(&n.smtp_proxy);
    let hdr = hato_proxyproto_v2("198.51.100.1", 40001);
    c.send(&hdr);
    assert!(c.reply().starts_with("220"));
    c.cmd("EHLO lb.example");
    c.cmd("MAIL FROM:<a@example.com>");
    assert!(c.cmd("RCPT TO:<v2@example.net>").starts_with("554 5.7.1"));
    // v2 from the allowed address.
    let mut c = Smtp::connect_raw(&n.smtp_proxy);
    c.send(&hato_proxyproto_v2("203.0.113.9", 40002));
    assert!(c.reply().starts_with("220"));
    c.cmd("EHLO lb.example");
    c.cmd("MAIL FROM:<a@example.com>");
    assert!(c.cmd("RCPT TO:<v2ok@example.net>").starts_with("250"));
    c.cmd("DATA");
    assert!(c.cmd("Subject: v2\r\n\r\nhi\r\n.").starts_with("250 2.0.0"));
    // No header: dropped without a greeting.
    let mut c = Smtp::connect_raw(&n.smtp_proxy);
    c.send(b"EHLO sneaky.example\r\n");
    assert!(c.closed());

    let log = delivery_log(&n.raft);
    assert_eq!(
        records_for(&log, "v1@example.net")[0]["source_ip"],
        "203.0.113.9"
    );
    assert_eq!(
        records_for(&log, "v2ok@example.net")[0]["source_ip"],
        "203.0.113.9"
    );
    assert!(records_for(&log, "v2@example.net").is_empty());
}

/// A v2 PROXY header for TCP4 `src:port` -> 10.0.0.1:25.
fn hato_proxyproto_v2(src: &str, port: u16) -> Vec<u8> {
    let ip: std::net::Ipv4Addr = src.parse().unwrap();
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend_from_slice(&[0x21, 0x11, 0, 12]);
    h.extend_from_slice(&ip.octets());
    h.extend_from_slice(&[10, 0, 0, 1]);
    h.extend_from_slice(&port.to_be_bytes());
    h.extend_from_slice(&25u16.to_be_bytes());
    h
}

#[test]
fn pipelining_data_and_bdat() {
    let (_root, n) = node(NodeOpts::default());
    allow(&n, "127.0.0.1");
    let (mut c, _) = Smtp::connect(&n.smtp);
    let ehlo = c.cmd("EHLO t.example");
    for cap in [
        "PIPELINING",
        "SIZE",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
        "CHUNKING",
    ] {
        assert!(ehlo.contains(cap), "{cap} missing: {ehlo}");
    }
    // Pipelined envelope and DATA in one write.
    c.send(b"MAIL FROM:<p@example.com>\r\nRCPT TO:<p1@example.net>\r\nRCPT TO:<p2@example.net>\r\nDATA\r\n");
    assert!(c.reply().starts_with("250 2.1.0"));
    assert!(c.reply().starts_with("250 2.1.5"));
    assert!(c.reply().starts_with("250 2.1.5"));
    assert!(c.reply().starts_with("354"));
    c.send(b"Subject: piped\r\n\r\n..leading dot\r\n.\r\n");
    let r = c.reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    let data_id = r.trim().rsplit(' ').next().unwrap().to_string();

    // BDAT in two chunks, the second one LAST.
    c.cmd("MAIL FROM:<b@example.com>");
    c.cmd("RCPT TO:<bdat@example.net>");
    let part1 = b"Subject: chunked\r\n\r\nfirst ";
    let part2 = b"second\r\n";
    c.send(format!("BDAT {}\r\n", part1.len()).as_bytes());
    c.send(part1);
    assert!(c.reply().starts_with("250 2.0.0"));
    c.send(format!("BDAT {} LAST\r\n", part2.len()).as_bytes());
    c.send(part2);
    let r = c.reply();
    assert!(r.starts_with("250 2.0.0 Ok: queued as "), "{r}");
    let bdat_id = r.trim().rsplit(' ').next().unwrap().to_string();
    assert!(c.cmd("QUIT").starts_with("221"));

    let body = hato_ok(&["message", "--node", &n.raft, "--body", &data_id]);
    assert!(
        body.contains("\r\n.leading dot\r\n"),
        "dot-unstuffing: {body:?}"
    );
    assert!(
        body.starts_with("Received: from t.example ([127.0.0.1])"),
        "{body}"
    );
    let body = hato_ok(&["message", "--node", &n.raft, "--body", &bdat_id]);
    assert!(
        body.ends_with("Subject: chunked\r\n\r\nfirst second\r\n"),
        "{body:?}"
    );
    let log = delivery_log(&n.raft);
    assert_eq!(log.len(), 3);
}

#[test]
fn limits_answer_with_the_right_codes() {
    let (_root, n) = node(NodeOpts {
        smtp_extra: "max_message_bytes = 2000\nmax_recipients = 3\nmax_bad_commands = 3\n\
                     command_timeout_secs = 2\nmax_connections_per_ip = 3"
            .into(),
        ..Default::default()
    });
    allow(&n, "127.0.0.1");
    let (mut c, _) = Smtp::connect(&n.smtp);
    c.cmd("EHLO t.example");
    assert!(c
        .cmd("MAIL FROM:<a@example.com> SIZE=5000")
        .starts_with("552 5.3.4"));
    assert!(c.cmd("MAIL FROM:<a@example.com>").starts_with("250"));
    for i in 0..3 {
        assert!(c
            .cmd(&format!("RCPT TO:<r{i}@example.net>"))
            .starts_with("250"));
    }
    assert!(c.cmd("RCPT TO:<r3@example.net>").starts_with("452 4.5.3"));
    c.cmd("DATA");
    let big = format!(
        "Subject: big\r\n\r\n{}\r\n.",
        "x".repeat(70)
            .repeat(40)
            .chars()
            .collect::<Vec<_>>()
            .chunks(70)
            .map(|l| l.iter().collect::<String>())
            .collect::<Vec<_>>()
            .join("\r\n")
    );
    assert!(c.cmd(&big).starts_with("552 5.3.4"));
    // Long line.
    c.cmd("MAIL FROM:<a@example.com>");
    c.cmd("RCPT TO:<long@example.net>");
    c.cmd("DATA");
    assert!(c
        .cmd(&format!("Subject: long\r\n\r\n{}\r\n.", "y".repeat(1200)))
        .starts_with("554 5.6.0"));
    // The session is still usable: RSET and a good message.
    assert!(c.cmd("RSET").starts_with("250"));
    c.cmd("MAIL FROM:<a@example.com>");
    c.cmd("RCPT TO:<fine@example.net>");
    c.cmd("DATA");
    assert!(c
        .cmd("Subject: fine\r\n\r\nok\r\n.")
        .starts_with("250 2.0.0"));
    // Bad commands: the third one closes the connection.
    assert!(c.cmd("FOO").starts_with("500 5.5.1"));
    assert!(c.cmd("RCPT TO:<x@example.net>").starts_with("503 5.5.1"));
    assert!(c.cmd("BAR").starts_with("421 4.7.0"));
    assert!(c.closed());

    // Idle past the command timeout.
    let (mut c, _) = Smtp::connect(&n.smtp);
    std::thread::sleep(Duration::from_secs(3));
    assert!(c.reply().starts_with("421 4.4.2"));

    // Connections per IP.
    let held: Vec<_> = (0..3).map(|_| Smtp::connect(&n.smtp)).collect();
    let (_, greeting) = Smtp::connect(&n.smtp);
    assert!(greeting.starts_with("421 4.7.0"), "{greeting}");
    drop(held);

    let log = delivery_log(&n.raft);
    assert_eq!(log.len(), 1, "only the fine message is queued: {log:?}");
    assert_eq!(log[0]["recipient"], "fine@example.net");
}

#[test]
fn malformed_commands_get_clear_errors() {
    let (_root, n) = node(NodeOpts::default());
    allow(&n, "127.0.0.1");
    let (mut c, _) = Smtp::connect(&n.smtp);
    assert!(
        c.cmd("MAIL FROM:<a@example.com>").starts_with("503 5.5.1"),
        "MAIL before EHLO"
    );
    assert!(c.cmd("EHLO").starts_with("501"));
    c.cmd("EHLO t.example");
    assert!(c.cmd("MAIL FROM:a@example.com>").starts_with("501"));
    assert!(c.cmd("DATA").starts_with("503 5.5.1"));
    assert!(c.cmd("NOOP").starts_with("250"));
    assert!(c.cmd("VRFY someone").starts_with("252"));
    assert!(c.cmd("EXPN list").starts_with("502"));
}

#[test]
fn non_ascii_addresses_with_smtputf8() {
    let (_root, n) = node(NodeOpts::default());
    allow(&n, "127.0.0.1");
    let (mut c, _) = Smtp::connect(&n.smtp);
    c.cmd("EHLO t.example");
    assert!(c
        .cmd("MAIL FROM:<пользователь@пример.рф>")
        .starts_with("553 5.6.7"));
    assert!(c
        .cmd("MAIL FROM:<пользователь@пример.рф> SMTPUTF8")
        .starts_with("250"));
    assert!(c.cmd("RCPT TO:<用户@例子.广告>").starts_with("250"));
    c.cmd("DATA");
    assert!(c
        .cmd("Subject: =?UTF-8?B?5pel5pys6Kqe?=\r\n\r\nこんにちは\r\n.")
        .starts_with("250 2.0.0"));
    let log = delivery_log(&n.raft);
    assert_eq!(log[0]["recipient"], "用户@例子.广告");
    assert_eq!(log[0]["mail_from"], "пользователь@пример.рф");
}

#[test]
fn disconnect_in_the_middle_of_data_queues_nothing() {
    let (_root, n) = node(NodeOpts::default());
    allow(&n, "127.0.0.1");
    {
        let (mut c, _) = Smtp::connect(&n.smtp);
        c.cmd("EHLO t.example");
        c.cmd("MAIL FROM:<a@example.com>");
        c.cmd("RCPT TO:<half@example.net>");
        assert!(c.cmd("DATA").starts_with("354"));
        c.send(b"Subject: half\r\n\r\nthis message never ends\r\n");
    }
    // BDAT without LAST, then gone.
    {
        let (mut c, _) = Smtp::connect(&n.smtp);
        c.cmd("EHLO t.example");
        c.cmd("MAIL FROM:<a@example.com>");
        c.cmd("RCPT TO:<half2@example.net>");
        c.send(b"BDAT 10\r\n0123456789");
        assert!(c.reply().starts_with("250"));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(delivery_log(&n.raft).is_empty());
}

#[test]
fn blocked_recipients_are_accepted_but_recorded_as_blocked() {
    let (_root, n) = node(NodeOpts::default());
    allow(&n, "127.0.0.1");
    hato_ok(&["blocks", "add", "--node", &n.raft, "Blocked@Example.net"]);
    let (ok, out) = swaks(&[
        "--server",
        &n.smtp,
        "--from",
        "a@example.com",
        "--to",
        "blocked@example.net,open@example.net",
    ]);
    assert!(ok, "{out}");
    let log = delivery_log(&n.raft);
    let b: Vec<_> = records_for(&log, "blocked@example.net")
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(b, ["queued", "blocked"]);
    let o: Vec<_> = records_for(&log, "open@example.net")
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(o, ["queued"]);
}

#[test]
fn follower_accepts_mail_and_without_quorum_the_answer_is_451() {
    let mut c = Cluster::start(
        3,
        NodeOpts {
            write_timeout_ms: 2000,
            ..Default::default()
        },
    );
    let leader = c.leader();
    hato_ok(&[
        "smtp",
        "allow",
        "add",
        "--node",
        &c.node(leader).raft.clone(),
        "127.0.0.1",
    ]);
    let follower = c.nodes.iter().find(|n| n.id != leader).unwrap().id;
    let fsmtp = c.node(follower).smtp.clone();
    // Wait until the follower has the allow-list entry (local read after replication).
    wait_for("allow-list replicated", Duration::from_secs(10), || {
        let (mut s, _) = Smtp::connect(&fsmtp);
        s.cmd("EHLO t.example");
        s.cmd("MAIL FROM:<a@example.com>");
        s.cmd("RCPT TO:<probe@example.net>")
            .starts_with("250")
            .then_some(())
    });
    let (ok, out) = swaks(&[
        "--server",
        &fsmtp,
        "--from",
        "a@example.com",
        "--to",
        "via-follower@example.net",
    ]);
    assert!(ok, "{out}");
    let log = delivery_log(&c.node(leader).raft.clone());
    assert_eq!(records_for(&log, "via-follower@example.net").len(), 1);

    // Lose the quorum: the survivor answers 451 4.3.0 within the write timeout.
    let others: Vec<u64> = c
        .nodes
        .iter()
        .map(|n| n.id)
        .filter(|id| *id != follower)
        .collect();
    for id in others {
        c.node(id).kill();
    }
    let (mut s, _) = Smtp::connect(&fsmtp);
    s.cmd("EHLO t.example");
    s.cmd("MAIL FROM:<a@example.com>");
    s.cmd("RCPT TO:<lost@example.net>");
    s.cmd("DATA");
    let t0 = Instant::now();
    let r = s.cmd("Subject: no quorum\r\n\r\nhello\r\n.");
    assert!(r.starts_with("451 4.3.0"), "{r}");
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t0.elapsed()
    );
}

/// The certificate a node presents after STARTTLS, as PEM (via `openssl s_client`).
fn presented_cert(addr: &str) -> String {
    let out = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-starttls",
            "smtp",
            "-connect",
            addr,
            "-servername",
            "hato.test",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text
        .find("-----BEGIN CERTIFICATE-----")
        .expect("a certificate was presented");
    let end = text
        .find("-----END CERTIFICATE-----")
        .expect("end of certificate");
    text[start..end].to_string()
}

#[test]
fn every_node_presents_the_same_generated_certificate() {
    let c = Cluster::start(3, NodeOpts::default());
    for n in &c.nodes {
        wait_tls(&n.smtp);
    }
    let first = presented_cert(&c.nodes[0].smtp);
    for n in &c.nodes[1..] {
        assert_eq!(
            presented_cert(&n.smtp),
            first,
            "node {} presents another certificate",
            n.id
        );
    }
}
