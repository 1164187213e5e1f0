//! The Customers Mail Cloud v2 compatible HTTP API against real nodes: sending (JSON, form,
//! multipart, bulk), the lists, error shapes, and no quorum.

use std::time::Duration;

use hato_tests::{
    debian_python, fast_delivery, hato_ok, http_post, route_all_to, wait_for, Cluster, Mx, Node,
    NodeOpts,
};
use serde_json::{json, Value};

struct Api {
    _root: tempfile::TempDir,
    node: Node,
    user: String,
    key: String,
    mx: Mx,
}

fn setup() -> Api {
    let mx = Mx::start();
    let (root, node) = hato_tests::single_node("");
    let n = node.raft.clone();
    route_all_to(&n, mx.port);
    hato_ok(&["domain", "add", "--node", &n, "shop.example"]);
    let u: Value =
        serde_json::from_str(&hato_ok(&["api", "user", "add", "--node", &n, "app"])).unwrap();
    Api {
        _root: root,
        user: u["api_user"].as_str().unwrap().into(),
        key: u["api_key"].as_str().unwrap().into(),
        node,
        mx,
    }
}

impl Api {
    fn post_json(&self, path: &str, mut body: Value) -> (u16, Value) {
        body["api_user"] = self.user.clone().into();
        body["api_key"] = self.key.clone().into();
        let (code, ct, text) = http_post(
            &self.node.http,
            path,
            "application/json",
            body.to_string().as_bytes(),
        )
        .unwrap();
        assert!(ct.starts_with("application/json"), "{ct}: {text}");
        (
            code,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
        )
    }

    fn today(&self) -> String {
        let out = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

fn error_code(v: &Value) -> String {
    v["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn send_json_is_signed_delivered_and_listed() {
    let a = setup();
    let (code, v) = a.post_json(
        "/api/v2/emails/send.json",
        json!({
            "to": [{"name": "山田 太郎", "address": "taro@dest.example"}, {"address": "hanako@dest.example"}],
            "cc": [{"address": "cc@dest.example"}],
            "bcc": [{"address": "hidden@dest.example"}],
            "from": {"name": "ショップ", "address": "news@shop.example"},
            "subject": "ご注文ありがとうございます",
            "text": "本文です。\nThank you.",
            "html": "<p>本文です。</p>",
            "headers": [{"name": "X-Api-Data", "value": "campaign-7"}],
        }),
    );
    assert_eq!(code, 200, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    wait_for("4 deliveries", Duration::from_secs(30), || {
        (a.mx.records().len() == 4).then_some(())
    });
    let msgs = a.mx.messages();
    let text = String::from_utf8_lossy(&msgs[0]).to_string();
    assert!(text.contains("DKIM-Signature:"), "{text}");
    assert!(
        !text.to_ascii_lowercase().contains("hidden@"),
        "Bcc must not be visible: {text}"
    );
    assert!(text.contains(&format!("Message-ID: <{id}@")), "{text}");

    // The Japanese subject survives MIME encoding (decoded by Python's email package).
    let script = "import sys,email,email.policy\nm=email.message_from_bytes(open(sys.argv[1],'rb').read(),policy=email.policy.default)\nprint(m['subject'])";
    let f =
        a.mx.dir
            .path()
            .join(a.mx.records()[0]["file"].as_str().unwrap());
    let out = std::process::Command::new(debian_python())
        .args(["-c", script])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ご注文ありがとうございます"
    );

    let today = a.today();
    let (code, v) = a.post_json(
        "/transaction/v2/deliveries/list.json",
        json!({"server_composition": "default", "date": today, "status": "succeeded", "api_data": "campaign", "r": 100}),
    );
    assert_eq!(code, 200, "{v}");
    let list = v["deliveries"].as_array().unwrap();
    assert_eq!(list.len(), 4, "{v}");
    assert!(list
        .iter()
        .all(|d| d["apiData"] == "campaign-7" && d["from"] == "news@shop.example"));
    assert!(list
        .iter()
        .any(|d| d["to"] == "hidden@dest.example" && d["senderIp"] == "127.0.0.1"));
    // Paging: r=3, p=1 gives the 4th.
    let (_, v) = a.post_json(
        "/transaction/v2/deliveries/list.json",
        json!({"server_composition": "default", "date": today, "status": "succeeded", "r": 3, "p": 1}),
    );
    assert_eq!(v["deliveries"].as_array().unwrap().len(), 1, "{v}");
    // The XML variant carries the same records.
    let body = json!({"api_user": a.user, "api_key": a.key, "server_composition": "default", "date": today, "status": "succeeded"});
    let (code, ct, xml) = http_post(
        &a.node.http,
        "/transaction/v2/deliveries/list.xml",
        "application/json",
        body.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 200);
    assert!(ct.contains("xml"), "{ct}");
    assert_eq!(xml.matches("taro@dest.example").count(), 1, "{xml}");
    // Statistics for this month count them.
    let (y, m) = (&today[..4], &today[5..7]);
    let (code, v) = a.post_json(
        "/transaction/v2/statistics/list.json",
        json!({"year": y, "month": m}),
    );
    assert_eq!(code, 200, "{v}");
    let row = v["statistics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["date"] == today.as_str())
        .cloned()
        .unwrap();
    assert_eq!(
        (
            row["queued"].as_u64(),
            row["succeeded"].as_u64(),
            row["valid"].as_u64()
        ),
        (Some(4), Some(4), Some(4)),
        "{row}"
    );
}

#[test]
fn errors_are_cmc_shaped_and_change_nothing() {
    let a = setup();
    let msg = json!({"to": "x@dest.example", "from": {"address": "news@shop.example"}, "subject": "s", "text": "t"});
    // Wrong key.
    let mut bad = msg.clone();
    bad["api_user"] = a.user.clone().into();
    bad["api_key"] = "wrong-key-wrong-key".into();
    let (code, _, text) = http_post(
        &a.node.http,
        "/api/v2/emails/send.json",
        "application/json",
        bad.to_string().as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 401, "{text}");
    assert_eq!(error_code(&serde_json::from_str(&text).unwrap()), "13-001");
    // A From domain without DKIM.
    let mut other = msg.clone();
    other["from"] = json!({"address": "news@unknown.example"});
    let (code, v) = a.post_json("/api/v2/emails/send.json", other);
    assert_eq!((code, error_code(&v)), (400, "13-006".to_string()), "{v}");
    // A malformed address, and too many recipients (send.json allows 10 in `to`).
    let mut badaddr = msg.clone();
    badaddr["to"] = "not-an-address".into();
    let (code, v) = a.post_json("/api/v2/emails/send.json", badaddr);
    assert_eq!(code, 400);
    assert!(
        v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "to"),
        "{v}"
    );
    let mut many = msg.clone();
    many["to"] = (0..11)
        .map(|i| json!({"address": format!("u{i}@dest.example")}))
        .collect::<Vec<_>>()
        .into();
    let (code, v) = a.post_json("/api/v2/emails/send.json", many);
    assert_eq!(code, 400);
    assert!(
        v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "to"),
        "{v}"
    );
    // Missing subject, bad JSON, unsupported content type.
    let mut nosub = msg.clone();
    nosub.as_object_mut().unwrap().remove("subject");
    let (code, v) = a.post_json("/api/v2/emails/send.json", nosub);
    assert_eq!(code, 400);
    assert!(
        v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "subject"),
        "{v}"
    );
    let (code, _, text) = http_post(
        &a.node.http,
        "/api/v2/emails/send.json",
        "application/json",
        b"{not json",
    )
    .unwrap();
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("\"errors\""), "{text}");
    let (code, _, _) = http_post(
        &a.node.http,
        "/api/v2/emails/send.json",
        "application/xml",
        b"<a/>",
    )
    .unwrap();
    assert_eq!(code, 415);
    // Nothing was queued.
    let stats: Value =
        serde_json::from_str(&hato_ok(&["queue", "stats", "--node", &a.node.raft])).unwrap();
    assert_eq!(stats["pending"], 0);
    assert!(hato_tests::delivery_log(&a.node.raft).is_empty());
    std::thread::sleep(Duration::from_millis(500));
    assert!(a.mx.records().is_empty());
}

#[test]
fn form_multipart_bulk_bounces_and_blocks() {
    let a = setup();
    // form-urlencoded, ISO-2022-JP.
    let form = format!(
        "api_user={}&api_key={}&to=form@dest.example&from=news@shop.example&charset=ISO-2022-JP&subject={}&text={}",
        a.user, a.key, "%E3%81%93%E3%82%93%E3%81%AB%E3%81%A1%E3%81%AF", "%E6%9C%AC%E6%96%87"
    );
    let (code, _, text) = http_post(
        &a.node.http,
        "/api/v2/emails/send.json",
        "application/x-www-form-urlencoded",
        form.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 200, "{text}");
    // multipart with JSON-string fields and an attachment.
    let b = "XyZzY";
    let mut mp = String::new();
    for (k, v) in [
        ("api_user", a.user.clone()),
        ("api_key", a.key.clone()),
        ("to", r#"[{"address":"multi@dest.example"}]"#.to_string()),
        (
            "from",
            r#"{"address":"news@shop.example","name":"Shop"}"#.to_string(),
        ),
        ("subject", "with attachment".to_string()),
        ("text", "see attached".to_string()),
    ] {
        mp.push_str(&format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    mp.push_str(&format!("--{b}\r\nContent-Disposition: form-data; name=\"attachment1\"; filename=\"report.csv\"\r\nContent-Type: text/csv\r\n\r\na,b\r\n1,2\r\n\r\n--{b}--\r\n"));
    let (code, _, text) = http_post(
        &a.node.http,
        "/api/v2/emails/send.json",
        &format!("multipart/form-data; boundary={b}"),
        mp.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 200, "{text}");
    // bulk with substitution; one recipient is unknown at the MX.
    let (code, v) = a.post_json(
        "/api/v2/emails/bulk.json",
        json!({
            "from": {"address": "news@shop.example"},
            "subject": "Hello ((#name#))",
            "text": "Dear ((#name#)), your code is ((#code#)).",
            "to": [
                {"address": "b1@dest.example", "name": "Aoi", "code": "A1"},
                {"address": "b2@dest.example", "name": "Ren", "code": "B2"},
                {"address": "perm@dest.example", "name": "Nobody", "code": "C3"},
            ],
        }),
    );
    assert_eq!(code, 200, "{v}");
    assert!(v["id"].is_string());
    wait_for("4 arrivals", Duration::from_secs(30), || {
        (a.mx.records().len() == 4).then_some(())
    });
    let all: Vec<String> =
        a.mx.messages()
            .iter()
            .map(|m| String::from_utf8_lossy(m).to_string())
            .collect();
    assert!(
        all.iter()
            .any(|m| m.contains("charset=\"ISO-2022-JP\"") || m.contains("charset=ISO-2022-JP")),
        "{all:?}"
    );
    assert!(all.iter().any(|m| m.contains("report.csv")), "attachment");
    assert!(all
        .iter()
        .any(|m| m.contains("Subject: Hello Aoi") && m.contains("your code is A1")));
    assert!(all
        .iter()
        .any(|m| m.contains("Subject: Hello Ren") && m.contains("your code is B2")));

    // The 5xx for perm@ is a bounce (code 2) and, by the default rules, a block.
    let today = a.today();
    let v = wait_for("bounce listed", Duration::from_secs(30), || {
        let (_, v) = a.post_json(
            "/transaction/v2/bounces/list.json",
            json!({"server_composition": "default", "date": today}),
        );
        (!v["bounces"].as_array()?.is_empty()).then_some(v)
    });
    let b = &v["bounces"][0];
    assert_eq!(
        (b["to"].as_str(), b["status"].as_str()),
        (Some("perm@dest.example"), Some("2")),
        "{v}"
    );
    let (_, v) = a.post_json(
        "/transaction/v2/blocks/list.json",
        json!({"server_composition": "default"}),
    );
    assert_eq!(v["blocks"][0]["email"], "perm@dest.example", "{v}");
    assert_eq!(v["blocks"][0]["status"], "2");
    let (code, v) = a.post_json(
        "/transaction/v2/blocks/cancel.json",
        json!({"server_composition": "default", "email": "perm@dest.example"}),
    );
    assert_eq!(code, 200, "{v}");
    let (_, v) = a.post_json(
        "/transaction/v2/blocks/list.json",
        json!({"server_composition": "default"}),
    );
    assert!(v["blocks"].as_array().unwrap().is_empty(), "{v}");
}

/// Invariant 1 for the API: `{"id"}` only after replication; without a quorum a clear 503.
#[test]
fn a_follower_accepts_and_a_lone_node_refuses() {
    let mx = Mx::start();
    let opts = NodeOpts {
        delivery: fast_delivery(""),
        ..Default::default()
    };
    let mut c = Cluster::start(3, opts);
    let n1 = c.node(1).raft.clone();
    route_all_to(&n1, mx.port);
    hato_ok(&["domain", "add", "--node", &n1, "shop.example"]);
    let u: Value =
        serde_json::from_str(&hato_ok(&["api", "user", "add", "--node", &n1, "app"])).unwrap();
    let leader = c.leader();
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    let body = |to: &str| {
        json!({"api_user": u["api_user"], "api_key": u["api_key"], "to": to,
               "from": {"address": "news@shop.example"}, "subject": "s", "text": "t"})
        .to_string()
    };
    let http = c.node(follower).http.clone();
    // Settings replicate in milliseconds; the follower may need a moment to see the user.
    let (code, _, text) = wait_for("follower accepts", Duration::from_secs(10), || {
        let r = http_post(
            &http,
            "/api/v2/emails/send.json",
            "application/json",
            body("f@dest.example").as_bytes(),
        )
        .ok()?;
        (r.0 == 200).then_some(r)
    });
    assert_eq!(code, 200, "{text}");
    wait_for("delivery", Duration::from_secs(30), || {
        (mx.records().len() == 1).then_some(())
    });
    // The follower also answers reads from its copy of the log.
    let today = String::from_utf8_lossy(
        &std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d"])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .to_string();
    let q = json!({"api_user": u["api_user"], "api_key": u["api_key"], "server_composition": "default", "date": today, "status": "succeeded"});
    let v = wait_for(
        "follower lists the delivery",
        Duration::from_secs(10),
        || {
            let (code, _, text) = http_post(
                &http,
                "/transaction/v2/deliveries/list.json",
                "application/json",
                q.to_string().as_bytes(),
            )
            .ok()?;
            let v: Value = serde_json::from_str(&text).ok()?;
            (code == 200 && v["deliveries"].as_array()?.len() == 1).then_some(v)
        },
    );
    assert_eq!(v["deliveries"][0]["to"], "f@dest.example");
    for i in (1..=3).filter(|i| *i != follower) {
        c.node(i).kill();
    }
    let t = std::time::Instant::now();
    let (code, _, text) = http_post(
        &http,
        "/api/v2/emails/send.json",
        "application/json",
        body("g@dest.example").as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 503, "{text}");
    assert!(text.contains("90-003"), "{text}");
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "answered in {:?}",
        t.elapsed()
    );
}
