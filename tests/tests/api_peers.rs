//! The HTTP API against real outside clients: the official Customers Mail Cloud Python SDK
//! (PyPI `customersmailcloud`), schemathesis fuzzing from our OpenAPI document, and the
//! document itself checked against the routes.

use std::io::{Read, Write};
use std::time::Duration;

use hato_tests::{hato_ok, http_get, http_post, route_all_to, venv_python, wait_for, Mx, Node};
use serde_json::Value;

fn node_with_mx() -> (tempfile::TempDir, Node, Mx, String, String) {
    let mx = Mx::start();
    let (root, n) = hato_tests::single_node("");
    route_all_to(&n.raft, mx.port);
    hato_ok(&["domain", "add", "--node", &n.raft, "shop.example"]);
    let u: Value =
        serde_json::from_str(&hato_ok(&["api", "user", "add", "--node", &n.raft, "app"])).unwrap();
    let (user, key) = (
        u["api_user"].as_str().unwrap().to_string(),
        u["api_key"].as_str().unwrap().to_string(),
    );
    (root, n, mx, user, key)
}

#[test]
fn the_official_python_sdk_sends_through_hato() {
    let (root, n, mx, user, key) = node_with_mx();
    let attachment = root.path().join("invoice.txt");
    std::fs::write(&attachment, "total: 100 JPY\n").unwrap();
    // Only the URL changes: the SDK's plan presets point at smtps.jp.
    let script = format!(
        r#"
from CustomersMailCloud import CustomersMailCloud
def client():
    c = CustomersMailCloud({user:?}, {key:?})
    c.standard()
    c.url = "http://{http}/api/v2/emails/send.json"
    c.setFrom("ショップ", "news@shop.example")
    c.subject = "SDK からのテスト"
    c.text = "hello from the official SDK"
    return c
c = client()
c.addTo("山田", "sdk1@dest.example")
print(c.send()["id"])
c = client()
c.addTo("", "sdk2@dest.example")
c.addFile({path:?})
print(c.send()["id"])
"#,
        http = n.http,
        path = attachment.display().to_string(),
    );
    let out = std::process::Command::new(venv_python("python"))
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    wait_for("2 arrivals", Duration::from_secs(30), || {
        (mx.records().len() == 2).then_some(())
    });
    let all: Vec<String> = mx
        .messages()
        .iter()
        .map(|m| String::from_utf8_lossy(m).to_string())
        .collect();
    assert!(all.iter().any(|m| m.contains("invoice.txt")), "{all:?}");
    assert!(all.iter().all(|m| m.contains("DKIM-Signature:")));
    for id in ids {
        assert!(
            all.iter()
                .any(|m| m.contains(&format!("Message-ID: <{id}@"))),
            "{id}"
        );
    }
}

#[test]
fn openapi_document_matches_the_routes() {
    let (_root, n, _mx, user, key) = node_with_mx();
    let (code, text) = http_get(&n.http, "/api/v2/openapi.json").unwrap();
    assert_eq!(code, 200);
    let doc: Value = serde_json::from_str(&text).unwrap();
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    let mut want = Vec::new();
    for p in [
        "/api/v2/emails/send",
        "/api/v2/emails/bulk",
        "/transaction/v2/deliveries/list",
        "/transaction/v2/bounces/list",
        "/transaction/v2/blocks/list",
        "/transaction/v2/blocks/cancel",
        "/transaction/v2/statistics/list",
    ] {
        for ext in ["json", "xml"] {
            want.push(format!("{p}.{ext}"));
        }
    }
    let mut got: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // Every documented operation is served (a CMC error, never a 404), with the documented
    // content type.
    for p in &want {
        let body = format!(r#"{{"api_user":"{user}","api_key":"{key}"}}"#);
        let (code, ct, text) = http_post(&n.http, p, "application/json", body.as_bytes()).unwrap();
        assert_eq!(code, 400, "{p}: {text}");
        let documented = doc["paths"][p]["post"]["responses"]["400"]["content"]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        assert!(ct.starts_with(&documented), "{p}: {ct} vs {documented}");
        assert!(text.contains("errors"), "{p}: {text}");
    }
    let (code, _, _) = http_post(
        &n.http,
        "/api/v2/emails/nothing.json",
        "application/json",
        b"{}",
    )
    .unwrap();
    assert_eq!(code, 404);
    // A body over the limit is refused with the CMC error shape before it is read.
    let mut s = std::net::TcpStream::connect(&n.http).unwrap();
    write!(s, "POST /api/v2/emails/send.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 40000000\r\n\r\n{{}}").unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(resp.contains("90-004"), "{resp}");
}

#[test]
fn schemathesis_finds_no_server_error() {
    let (_root, n, _mx, _user, _key) = node_with_mx();
    let out = std::process::Command::new(venv_python("st"))
        .args(["run", &format!("http://{}/api/v2/openapi.json", n.http)])
        .args([
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "20",
            "--seed",
            "1",
        ])
        .args([
            "--phases",
            "examples,coverage,fuzzing",
            "--request-timeout",
            "20",
        ])
        .args(["--suppress-health-check", "all", "--workers", "1"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Coverage") && text.contains("Fuzzing"),
        "schemathesis did not run:\n{text}"
    );
    // Judge the server, not the tool: schemathesis/hypothesis occasionally report internal
    // errors of their own ("Runtime Error"), which say nothing about Hato.
    for sign in [
        "Server error",
        "Network Error",
        "Server Unavailable",
        "stopped responding",
    ] {
        assert!(
            !text.contains(sign),
            "schemathesis found a server problem ({sign}):\n{text}"
        );
    }
    assert!(n.status().is_some(), "the node survived");
}
