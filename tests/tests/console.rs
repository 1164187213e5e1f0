//! The admin console against real nodes over HTTPS: login, sessions, CSRF, lock-out, the
//! audit log, bad input in every form, changes visible on every node, and the page itself
//! driven end to end in headless Chromium (`tests/console/e2e.py`, Selenium).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hato_tests::{hato_ok, route_all_to, venv_python, wait_for, Cluster, Mx, Node, NodeOpts};
use serde_json::{json, Value};

/// A console client: curl over HTTPS (the certificate is the cluster's self-signed one),
/// with a session cookie and CSRF token once logged in.
struct Console {
    base: String,
    cookie: Option<String>,
    csrf: Option<String>,
}

struct Answer {
    status: u16,
    headers: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body))
    }
}

impl Console {
    fn new(addr: &str) -> Console {
        Console {
            base: format!("https://{addr}"),
            cookie: None,
            csrf: None,
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<&str>, csrf: bool) -> Answer {
        let dir = tempfile::tempdir().unwrap();
        let headers = dir.path().join("h");
        let mut c = Command::new("curl");
        c.args(["-k", "-s", "-S", "--max-time", "60", "-X", method, "-D"])
            .arg(&headers)
            .args(["-w", "\n%{http_code}"]);
        if let Some(k) = &self.cookie {
            c.args(["-H", &format!("Cookie: hato_session={k}")]);
        }
        if csrf {
            if let Some(t) = &self.csrf {
                c.args(["-H", &format!("X-CSRF-Token: {t}")]);
            }
        }
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        let out = c
            .arg(format!("{}{path}", self.base))
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        Answer {
            status: code.trim().parse().unwrap_or(0),
            headers: std::fs::read_to_string(&headers).unwrap_or_default(),
            body: body.to_string(),
        }
    }

    fn get(&self, path: &str) -> Answer {
        self.call("GET", path, None, false)
    }

    /// A change with the CSRF token.
    fn send(&self, method: &str, path: &str, body: Value) -> Answer {
        self.call(method, path, Some(&body.to_string()), true)
    }

    fn login(&mut self, user: &str, password: &str) -> Answer {
        let a = self.call(
            "POST",
            "/api/login",
            Some(&json!({"user": user, "password": password}).to_string()),
            false,
        );
        if a.status == 200 {
            let cookie = a
                .headers
                .lines()
                .find_map(|l| l.strip_prefix("set-cookie: hato_session="))
                .expect("session cookie");
            self.cookie = Some(cookie.split(';').next().unwrap().to_string());
            self.csrf = Some(a.json()["csrf"].as_str().unwrap().to_string());
        }
        a
    }
}

/// The first account's password, written by the bootstrapping node at first start.
fn admin_password(node: &Node) -> String {
    let file = node.dir.join("data").join("console-admin-password");
    wait_for("the first console account", Duration::from_secs(30), || {
        std::fs::read_to_string(&file).ok()
    })
    .trim()
    .to_string()
}

fn wait_console(addr: &str) {
    wait_for("the console to answer", Duration::from_secs(30), || {
        (Console::new(addr).get("/").status == 200).then_some(())
    });
}

fn logged_in(node: &Node) -> Console {
    wait_console(&node.console);
    let mut c = Console::new(&node.console);
    let a = c.login("admin", &admin_password(node));
    assert_eq!(a.status, 200, "{}", a.body);
    c
}

fn names(c: &Console, path: &str) -> Vec<String> {
    let a = c.get(path);
    assert_eq!(a.status, 200, "{path}: {}", a.body);
    a.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i.get("name")
                .or(i.get("network"))
                .or(i.get("domain"))
                .or(i.get("address"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// Every settings list, to compare before and after refused input.
fn every_list(c: &Console) -> Vec<Vec<String>> {
    [
        "/api/api-users",
        "/api/smtp-users",
        "/api/allowed-ips",
        "/api/domains",
        "/api/webhooks",
        "/api/blocks",
        "/api/console-users",
    ]
    .iter()
    .map(|p| names(c, p))
    .collect()
}

#[test]
fn login_sessions_csrf_lockout_audit_and_bad_input() {
    let (_root, node) = hato_tests::single_node("");
    wait_console(&node.console);
    let anon = Console::new(&node.console);

    // The page is served with a strict policy; the API needs a session.
    let page = anon.get("/");
    assert!(
        page.body.contains("<html") || page.body.contains("<!doctype"),
        "{}",
        page.body
    );
    assert!(page
        .headers
        .to_lowercase()
        .contains("content-security-policy: default-src 'self'"));
    assert_eq!(anon.get("/api/me").status, 401);
    assert_eq!(anon.get("/charts/minutes.svg").status, 401);

    let mut c = Console::new(&node.console);
    let pw = admin_password(&node);
    assert_eq!(c.login("admin", "wrong password!").status, 401);
    assert_eq!(c.login("nobody", &pw).status, 401);
    let a = c.login("admin", &pw);
    assert_eq!(a.status, 200, "{}", a.body);
    let cookie = a.headers.to_lowercase();
    for flag in ["httponly", "secure", "samesite=strict"] {
        assert!(cookie.contains(flag), "cookie lacks {flag}: {}", a.headers);
    }
    assert_eq!(c.get("/api/me").json()["user"], "admin");

    // Changes need the CSRF token; without it nothing changes.
    let no_csrf = c.call("POST", "/api/api-users", Some(r#"{"name":"app"}"#), false);
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.body);
    assert!(names(&c, "/api/api-users").is_empty());
    // A cross-site origin is refused even with the token.
    let mut cross = Command::new("curl");
    cross.args([
        "-k",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        "POST",
    ]);
    cross.args(["-H", "Origin: https://evil.example"]);
    cross.args([
        "-H",
        &format!("Cookie: hato_session={}", c.cookie.as_ref().unwrap()),
    ]);
    cross.args(["-H", &format!("X-CSRF-Token: {}", c.csrf.as_ref().unwrap())]);
    cross.args([
        "-H",
        "Content-Type: application/json",
        "--data",
        r#"{"name":"evil"}"#,
    ]);
    let out = cross
        .arg(format!("{}/api/api-users", c.base))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "403");

    // Bad input in every form: a clear error, nothing changed.
    let before = every_list(&c);
    let autoblock_before = c.get("/api/autoblock").body;
    let bad: Vec<(&str, &str, Value, &str)> = vec![
        (
            "POST",
            "/api/api-users",
            json!({"name": "bad name!"}),
            "not a valid name",
        ),
        (
            "POST",
            "/api/api-users",
            json!({"nom": "x"}),
            "not valid JSON",
        ),
        (
            "POST",
            "/api/smtp-users",
            json!({"name": "mailer", "password": "short"}),
            "at least 8",
        ),
        (
            "POST",
            "/api/allowed-ips",
            json!({"network": "300.1.1.1/99"}),
            "",
        ),
        (
            "POST",
            "/api/domains",
            json!({"domain": "bad domain"}),
            "not a domain",
        ),
        (
            "POST",
            "/api/domains",
            json!({"domain": "ok.example", "algorithm": "dsa"}),
            "",
        ),
        (
            "POST",
            "/api/webhooks",
            json!({"name": "h", "url": "ftp://x", "events": ["succeeded"]}),
            "",
        ),
        (
            "POST",
            "/api/webhooks",
            json!({"name": "h", "url": "http://127.0.0.1:9/x", "events": ["nope"]}),
            "unknown event",
        ),
        (
            "POST",
            "/api/blocks",
            json!({"address": "not-an-address"}),
            "not an e-mail address",
        ),
        (
            "PUT",
            "/api/autoblock",
            json!({"mode": "sometimes"}),
            "immediate or daily",
        ),
        ("PUT", "/api/retention", json!({"days": -5}), "whole number"),
        (
            "POST",
            "/api/console-users",
            json!({"name": "ops", "password": "short"}),
            "at least 12",
        ),
        (
            "POST",
            "/api/cluster/nodes",
            json!({"id": 0, "raft_addr": "x", "http_addr": "y"}),
            "positive",
        ),
        (
            "POST",
            "/api/password",
            json!({"current": "wrong", "new": "a new long password"}),
            "current password is wrong",
        ),
    ];
    for (method, path, body, says) in bad {
        let a = c.send(method, path, body.clone());
        assert!(
            (400..500).contains(&a.status),
            "{method} {path} {body}: {} {}",
            a.status,
            a.body
        );
        let err = a.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(
            !err.is_empty() && err.contains(says),
            "{method} {path}: {err:?}"
        );
    }
    let bad_json = c.call("POST", "/api/domains", Some("{not json"), true);
    assert_eq!(bad_json.status, 400);
    let after = every_list(&c);
    assert_eq!(before, after, "bad input changed nothing");
    assert_eq!(c.get("/api/autoblock").body, autoblock_before);
    assert_eq!(c.get("/api/retention").json()["days"], Value::Null);

    // Good input works, and each form's change is readable back.
    let key = c
        .send("POST", "/api/api-users", json!({"name": "app"}))
        .json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(key.len(), 48);
    assert_eq!(
        c.send("POST", "/api/api-users", json!({"name": "app"}))
            .status,
        409
    );
    assert_eq!(
        c.send("PUT", "/api/retention", json!({"days": 30})).json()["days"],
        30
    );
    assert_eq!(c.get("/api/retention").json()["days"], 30);
    assert_eq!(
        c.send(
            "POST",
            "/api/allowed-ips",
            json!({"network": "192.0.2.0/24"})
        )
        .status,
        200
    );
    assert_eq!(names(&c, "/api/allowed-ips"), vec!["192.0.2.0/24"]);
    let d = c.send(
        "POST",
        "/api/domains",
        json!({"domain": "shop.example", "algorithm": "ed25519"}),
    );
    assert_eq!(d.status, 200, "{}", d.body);
    let recs = d.json()["records"].as_array().unwrap().clone();
    assert!(
        recs[0]["name"] == "hato._domainkey.shop.example"
            && recs[0]["value"].as_str().unwrap().contains("k=ed25519")
    );
    assert!(recs[1]["value"].as_str().unwrap().starts_with("v=spf1"));
    // The live DNS check answers (nothing is published for shop.example here).
    let check = c.get("/api/domains/shop.example/check");
    assert_eq!(check.status, 200, "{}", check.body);
    assert_eq!(check.json()["checks"].as_array().unwrap().len(), 2);
    assert!(check.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["ok"] == false));

    // Charts are SVG drawn by the server.
    let svg = c.get("/charts/minutes.svg?minutes=30&tz=540");
    assert_eq!(svg.status, 200);
    assert!(svg.headers.contains("image/svg+xml") && svg.body.starts_with("<svg"));
    assert!(c.get("/charts/reasons.svg").body.contains("No bounces"));

    // Lock-out: five wrong passwords lock the account, even with the right one after.
    let ops_pw = "ops password 123";
    assert_eq!(
        c.send(
            "POST",
            "/api/console-users",
            json!({"name": "ops", "password": ops_pw})
        )
        .status,
        200
    );
    let mut ops = Console::new(&node.console);
    for i in 1..=5 {
        let a = ops.login("ops", "not the password");
        assert_eq!(
            a.status,
            if i < 5 { 401 } else { 423 },
            "attempt {i}: {}",
            a.body
        );
    }
    let locked = ops.login("ops", ops_pw);
    assert_eq!(locked.status, 423, "{}", locked.body);
    assert!(locked.json()["error"].as_str().unwrap().contains("locked"));
    let users = c.get("/api/console-users").json();
    let ops_row = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "ops")
        .unwrap()
        .clone();
    assert!(ops_row["locked_until_ms"].as_u64().is_some(), "{users}");
    // The CLI resets the password and unlocks.
    let mut cli = Command::new(hato_tests::hato_bin());
    cli.args(["console", "user", "add", "--node", &node.raft, "ops"])
        .stdin(std::process::Stdio::piped());
    let mut child = cli.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a fresh password 456\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(ops.login("ops", "a fresh password 456").status, 200);
    // Changing the password ends the account's sessions (a stolen one too).
    let stolen = Console {
        base: ops.base.clone(),
        cookie: ops.cookie.clone(),
        csrf: ops.csrf.clone(),
    };
    let changed = ops.send(
        "POST",
        "/api/password",
        json!({"current": "a fresh password 456", "new": "another password 789"}),
    );
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(stolen.get("/api/me").status, 401);
    assert_eq!(ops.login("ops", "another password 789").status, 200);

    // Guesses in parallel are all counted: eight at once lock the account.
    assert_eq!(
        c.send(
            "POST",
            "/api/console-users",
            json!({"name": "par", "password": "par password 123"})
        )
        .status,
        200
    );
    let guesses: Vec<_> = (0..8)
        .map(|_| {
            let base = c.base.clone();
            std::thread::spawn(move || {
                let mut g = Console {
                    base,
                    cookie: None,
                    csrf: None,
                };
                g.login("par", "a wrong guess").status
            })
        })
        .collect();
    let codes: Vec<u16> = guesses.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(codes.iter().all(|c| *c == 401 || *c == 423), "{codes:?}");
    assert_eq!(
        Console::new(&node.console)
            .login("par", "par password 123")
            .status,
        423
    );

    // The audit log shows logins (failed and not) and changes, with the client address.
    let audit = c.get("/api/audit").json();
    let items = audit["items"].as_array().unwrap();
    let has = |action: &str, ok: bool| items.iter().any(|e| e["action"] == action && e["ok"] == ok);
    assert!(has("login", true) && has("login", false), "{audit}");
    assert!(
        has("add API user", true) && has("set retention", true),
        "{audit}"
    );
    assert!(items.iter().all(|e| e["ip"] == "127.0.0.1"), "{audit}");

    // Logout ends the session.
    assert_eq!(c.send("POST", "/api/logout", json!({})).status, 200);
    assert_eq!(c.get("/api/me").status, 401);
}

#[test]
fn a_change_on_one_nodes_console_shows_on_every_node() {
    let mut cluster = Cluster::start(3, NodeOpts::default());
    cluster.wait_voters(3);
    let mut c1 = logged_in(cluster.node(1));
    for id in 2..=3 {
        wait_console(&cluster.node(id).console);
    }
    // One login is valid on every node behind the load balancer.
    let mut on = |id: u64| {
        let mut c = Console::new(&cluster.node(id).console);
        c.cookie = c1.cookie.clone();
        c.csrf = c1.csrf.clone();
        c
    };
    let (c2, c3) = (on(2), on(3));
    assert_eq!(c2.get("/api/me").json()["user"], "admin");

    // An API user made on node 2 is listed by node 3; a block made on node 3 by node 1.
    assert_eq!(
        c2.send("POST", "/api/api-users", json!({"name": "shop"}))
            .status,
        200
    );
    wait_for("the API user on node 3", Duration::from_secs(5), || {
        names(&c3, "/api/api-users")
            .contains(&"shop".to_string())
            .then_some(())
    });
    assert_eq!(
        c3.send(
            "POST",
            "/api/blocks",
            json!({"address": "gone@dest.example"})
        )
        .status,
        200
    );
    wait_for("the block on node 1", Duration::from_secs(5), || {
        names(&c1, "/api/blocks")
            .contains(&"gone@dest.example".to_string())
            .then_some(())
    });
    assert_eq!(
        c1.send("DELETE", "/api/blocks/gone%40dest.example", json!({}))
            .status,
        200
    );
    wait_for("the unblock on node 2", Duration::from_secs(5), || {
        names(&c2, "/api/blocks").is_empty().then_some(())
    });
    assert_eq!(
        c1.send("DELETE", "/api/blocks/gone%40dest.example", json!({}))
            .status,
        404
    );

    // The cluster page: three voters, all up, one leader, same term.
    let view = c3.get("/api/cluster").json();
    let nodes = view["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{view}");
    assert!(
        nodes
            .iter()
            .all(|n| n["health"] == "up" && n["voter"] == true),
        "{view}"
    );
    assert_eq!(
        nodes.iter().filter(|n| n["role"] == "leader").count(),
        1,
        "{view}"
    );
    assert!(view["leader_id"].as_u64().is_some());

    // With node 3 down, the page says so; a node that is not running cannot be added.
    cluster.node(3).kill();
    wait_for("node 3 shown down", Duration::from_secs(10), || {
        let v = c1.get("/api/cluster").json();
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == 3 && n["health"] == "down")
            .then_some(())
    });
    let add = c1.send(
        "POST",
        "/api/cluster/nodes",
        json!({"id": 9, "raft_addr": "127.0.0.1:9", "http_addr": "127.0.0.1:9"}),
    );
    assert_eq!(add.status, 400, "{}", add.body);
    assert!(add.json()["error"]
        .as_str()
        .unwrap()
        .contains("no Hato node answers"));
    let view = c1.get("/api/cluster").json();
    assert_eq!(
        view["nodes"].as_array().unwrap().len(),
        3,
        "nothing added: {view}"
    );
    let _ = c1.login("admin", "x"); // a failed login does not end the existing session
    assert_eq!(c2.get("/api/me").status, 200);
}

fn screenshots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_console_in_headless_chromium() {
    let mx = Mx::start();
    let (_root, node) = hato_tests::single_node("");
    let n = node.raft.clone();
    route_all_to(&n, mx.port);
    hato_ok(&["domain", "add", "--node", &n, "shop.example"]);
    hato_ok(&["blocks", "add", "--node", &n, "blocked@dest.example"]);
    wait_console(&node.console);
    let shots = screenshots();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("console")
        .join("e2e.py");
    let out = Command::new(venv_python("python"))
        .arg(&script)
        .args(["--url", &format!("https://{}", node.console)])
        .args(["--user", "admin", "--password", &admin_password(&node)])
        .args(["--api", &format!("http://{}", node.http)])
        .args(["--from", "sender@shop.example", "--to", "rcpt@dest.example"])
        .args(["--block", "blocked@dest.example"])
        .arg("--shots")
        .arg(&shots)
        .output()
        .expect("the e2e script runs");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "headless Chromium run failed:\n{text}"
    );
    println!("{text}\nscreenshots in {}", shots.display());
    assert!(shots.join("dashboard.png").exists());
    // What the browser did really happened: the mail was delivered, the address unblocked.
    wait_for("the mail at the MX", Duration::from_secs(20), || {
        mx.records()
            .iter()
            .any(|r| r.to_string().contains("rcpt@dest.example"))
            .then_some(())
    });
    let blocks = hato_ok(&["blocks", "list", "--node", &n]);
    assert!(!blocks.contains("blocked@dest.example"), "{blocks}");
}
