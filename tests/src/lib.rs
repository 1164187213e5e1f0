//! Test harness: start real `hato` processes on loopback ports, kill them, query them.
//!
//! The binary is `target/<profile>/hato` next to the test executable (build it first:
//! `cargo build --bins`), or `$HATO_BIN`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Path of the `hato` binary under test.
pub fn hato_bin() -> PathBuf {
    if let Ok(p) = std::env::var("HATO_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/debug/deps/<test> -> target/debug/hato
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("hato");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build --bins` before the tests (or set HATO_BIN)",
        bin.display()
    );
    bin
}

/// A free loopback port. Ports are handed out from a per-process counter (starting at an
/// offset derived from the pid), so tests running in parallel threads never get the same one,
/// and each is checked to be bindable right now.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Stay below the kernel's ephemeral range (32768-60999 on Debian): a port picked there
    // can be taken as the source port of some outgoing connection while a killed node is
    // down, and its restart then fails to bind.
    const LOW: u32 = 10_000;
    const SPAN: u32 = 22_000;
    let base = (std::process::id() * 7919) % SPAN;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (base + n) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Poll `f` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Run the `hato` CLI with `args`.
pub fn hato(args: &[&str]) -> Output {
    Command::new(hato_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run hato")
}

/// Run the CLI and require success; returns stdout.
pub fn hato_ok(args: &[&str]) -> String {
    let out = hato(args);
    assert!(
        out.status.success(),
        "hato {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A plain HTTP/1.1 GET on loopback; returns (status code, body).
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// A plain HTTP/1.1 POST on loopback; returns (status code, content type, body).
pub fn http_post(
    addr: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let ct = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Ok((code, ct, body.to_string()))
}

/// Extra `[cluster]` keys for test nodes.
#[derive(Clone, Debug)]
pub struct NodeOpts {
    pub snapshot_every: u64,
    pub keep_logs: u64,
    pub write_timeout_ms: u64,
    /// Extra `[smtp]` keys, one per line.
    pub smtp_extra: String,
    /// `[delivery]` keys, one per line; empty: delivery disabled (tests of acceptance only).
    pub delivery: String,
    /// `cluster.secret` (empty: none).
    pub secret: String,
}

impl Default for NodeOpts {
    fn default() -> Self {
        Self {
            snapshot_every: 50_000,
            keep_logs: 1000,
            write_timeout_ms: 3000,
            smtp_extra: String::new(),
            delivery: String::new(),
            secret: String::new(),
        }
    }
}

/// One `hato serve` process with its own data dir and ports.
pub struct Node {
    pub id: u64,
    pub dir: PathBuf,
    pub raft: String,
    pub http: String,
    /// HTTPS admin console.
    pub console: String,
    /// SMTP relay listener (STARTTLS offered).
    pub smtp: String,
    /// SMTP submission listener (AUTH required).
    pub submission: String,
    /// Relay listener expecting a PROXY protocol header.
    pub smtp_proxy: String,
    /// Implicit-TLS relay listener.
    pub smtps: String,
    pub config: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// Write a config for node `id` under `root` (bootstrap, or join `join`).
    pub fn new(root: &Path, id: u64, bootstrap: bool, join: &[String], opts: &NodeOpts) -> Node {
        let dir = root.join(format!("node{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let raft = format!("127.0.0.1:{}", free_port());
        let http = format!("127.0.0.1:{}", free_port());
        let console = format!("127.0.0.1:{}", free_port());
        let join_list = join
            .iter()
            .map(|j| format!("{j:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let smtp = format!("127.0.0.1:{}", free_port());
        let submission = format!("127.0.0.1:{}", free_port());
        let smtp_proxy = format!("127.0.0.1:{}", free_port());
        let smtps = format!("127.0.0.1:{}", free_port());
        let config = dir.join("hato.toml");
        let text = format!(
            "node_id = {id}\ndata_dir = {data:?}\n\n[listen]\nraft = {raft:?}\nhttp = {http:?}\nconsole = {console:?}\n\n\
             [cluster]\nbootstrap = {bootstrap}\njoin = [{join_list}]\nwrite_timeout_ms = {wt}\n\
             heartbeat_ms = 100\nelection_timeout_min_ms = 500\nelection_timeout_max_ms = 1000\n\
             snapshot_every = {se}\nkeep_logs_after_snapshot = {kl}\nsecret = {secret:?}\n\n\
             [smtp]\nhostname = \"node{id}.hato.test\"\n{extra}\n\
             [[smtp.listener]]\naddr = {smtp:?}\nmode = \"relay\"\ntls = \"starttls\"\n\
             [[smtp.listener]]\naddr = {submission:?}\nmode = \"submission\"\ntls = \"starttls\"\n\
             [[smtp.listener]]\naddr = {smtp_proxy:?}\nmode = \"relay\"\ntls = \"starttls\"\nproxy_protocol = true\n\
             [[smtp.listener]]\naddr = {smtps:?}\nmode = \"relay\"\ntls = \"implicit\"\n\n\
             [delivery]\n{delivery}\n\n\
             [log]\nlevel = \"info\"\n",
            data = dir.join("data"),
            wt = opts.write_timeout_ms,
            se = opts.snapshot_every,
            kl = opts.keep_logs,
            extra = opts.smtp_extra,
            secret = opts.secret,
            delivery = if opts.delivery.is_empty() {
                "enabled = false"
            } else {
                opts.delivery.as_str()
            },
        );
        std::fs::write(&config, text).unwrap();
        Node {
            id,
            dir,
            raft,
            http,
            console,
            smtp,
            submission,
            smtp_proxy,
            smtps,
            config,
            child: None,
        }
    }

    /// Start the process (stderr goes to `<dir>/hato.log`).
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "node {} already running", self.id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("hato.log"))
            .unwrap();
        let child = Command::new(hato_bin())
            .args(["serve", "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn hato serve");
        self.child = Some(child);
        let http = self.http.clone();
        let start = Instant::now();
        loop {
            if http_get(&http, "/health").is_ok_and(|(c, _)| c == 200) {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "node {} exited at start ({status}):\n{}",
                    self.id,
                    self.log()
                );
            }
            if start.elapsed() > Duration::from_secs(30) {
                panic!(
                    "node {} did not answer /health within 30 s:\n{}",
                    self.id,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let start = Instant::now();
            loop {
                if c.try_wait().unwrap().is_some() {
                    break;
                }
                if start.elapsed() > Duration::from_secs(15) {
                    let _ = c.kill();
                    let _ = c.wait();
                    panic!("node {} did not stop within 15 s of SIGTERM", self.id);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// SIGSTOP / SIGCONT.
    pub fn pause(&self, on: bool) {
        if let Some(c) = &self.child {
            unsafe {
                libc::kill(
                    c.id() as i32,
                    if on { libc::SIGSTOP } else { libc::SIGCONT },
                );
            }
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `/status` as JSON.
    pub fn status(&self) -> Option<Value> {
        let (code, body) = http_get(&self.http, "/status").ok()?;
        if code != 200 {
            return None;
        }
        serde_json::from_str(&body).ok()
    }

    /// The last 80 lines of the node's log (for failure messages: the cause of an exit is
    /// at the end, and CI output is truncated).
    pub fn log(&self) -> String {
        let all = std::fs::read_to_string(self.dir.join("hato.log")).unwrap_or_default();
        let lines: Vec<&str> = all.lines().collect();
        lines[lines.len().saturating_sub(80)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A cluster of `hato` processes on loopback.
pub struct Cluster {
    pub root: tempfile::TempDir,
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Start `n` nodes: node 1 bootstraps, the others join through node 1. Waits until every
    /// node is a voter and knows the leader.
    pub fn start(n: u64, opts: NodeOpts) -> Cluster {
        let root = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        let mut first = Node::new(root.path(), 1, true, &[], &opts);
        first.start();
        let seed = vec![first.raft.clone()];
        nodes.push(first);
        for id in 2..=n {
            let mut node = Node::new(root.path(), id, false, &seed, &opts);
            node.start();
            nodes.push(node);
        }
        let c = Cluster { root, nodes };
        c.wait_voters(n as usize);
        c
    }

    pub fn node(&mut self, id: u64) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.id == id).expect("node id")
    }

    /// Wait until every running node reports `count` voters and the same leader.
    pub fn wait_voters(&self, count: usize) {
        wait_for(
            &format!("{count} voters agreeing on a leader"),
            Duration::from_secs(60),
            || {
                let mut leader = None;
                for n in self.nodes.iter().filter(|n| n.is_running()) {
                    let s = n.status()?;
                    if s["voters"].as_array()?.len() != count || s["leader_id"].is_null() {
                        return None;
                    }
                    if leader.is_some() && leader != Some(s["leader_id"].clone()) {
                        return None;
                    }
                    leader = Some(s["leader_id"].clone());
                }
                leader
            },
        );
    }

    /// The id of the leader as seen by a running node.
    pub fn leader(&self) -> u64 {
        wait_for("a leader", Duration::from_secs(30), || {
            self.nodes
                .iter()
                .filter(|n| n.is_running())
                .filter_map(|n| n.status())
                .find(|s| s["role"] == "leader")
                .and_then(|s| s["id"].as_u64())
        })
    }
}

/// A minimal SMTP client for driving sessions byte by byte.
pub struct Smtp {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Smtp {
    /// Connect and read the greeting.
    pub fn connect(addr: &str) -> (Smtp, String) {
        Smtp::try_connect(addr).expect("connect smtp")
    }

    /// Connect without reading anything.
    pub fn connect_raw(addr: &str) -> Smtp {
        Smtp::try_connect_raw(addr).expect("connect smtp")
    }

    /// Connect and read the greeting; a refused connection is an error, not a panic.
    pub fn try_connect(addr: &str) -> std::io::Result<(Smtp, String)> {
        let mut c = Smtp::try_connect_raw(addr)?;
        let g = c.reply();
        Ok((c, g))
    }

    fn try_connect_raw(addr: &str) -> std::io::Result<Smtp> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        Ok(Smtp {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Send one command line and read its reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Read one (possibly multi-line) reply; empty if the server closed the connection.
    pub fn reply(&mut self) -> String {
        let mut out = String::new();
        loop {
            let line = match self.line() {
                Some(l) => l,
                None => return out,
            };
            out.push_str(&line);
            out.push('\n');
            if line.len() < 4 || line.as_bytes()[3] == b' ' {
                return out;
            }
        }
    }

    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(p) = self.buf.iter().position(|&b| b == b'\n') {
                let l: Vec<u8> = self.buf.drain(..=p).collect();
                return Some(String::from_utf8_lossy(&l).trim_end().to_string());
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// True once the server has closed the connection.
    pub fn closed(&mut self) -> bool {
        self.line().is_none()
    }

    /// One whole transaction on a new connection to `addr`: EHLO, MAIL FROM `from`, one RCPT
    /// TO per address in `to`, then `message` (already dot-stuffed, ending in CRLF) and the
    /// final dot, then QUIT. Panics if the greeting, MAIL, a RCPT or DATA is refused; returns
    /// the reply to the message (the caller decides what it expects: 250 with the queue id,
    /// or a refusal).
    pub fn transaction(addr: &str, from: &str, to: &[&str], message: &str) -> String {
        Smtp::try_transaction(addr, from, to, message).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Smtp::transaction`] for callers that expect refusals (a node restarting, say): a
    /// failed connection, or a step before the message that is refused, is an `Err` naming the
    /// step and the reply.
    pub fn try_transaction(
        addr: &str,
        from: &str,
        to: &[&str],
        message: &str,
    ) -> Result<String, String> {
        let (mut c, greeting) = Smtp::try_connect(addr).map_err(|e| format!("connect: {e}"))?;
        if !greeting.starts_with("220") {
            return Err(format!("greeting: {greeting}"));
        }
        let mut steps = vec![
            ("EHLO client.example".to_string(), "250"),
            (format!("MAIL FROM:<{from}>"), "250"),
        ];
        steps.extend(to.iter().map(|t| (format!("RCPT TO:<{t}>"), "250")));
        steps.push(("DATA".to_string(), "354"));
        for (line, want) in steps {
            let r = c.cmd(&line);
            if !r.starts_with(want) {
                return Err(format!("{line}: {r}"));
            }
        }
        c.send(format!("{message}.\r\n").as_bytes());
        let r = c.reply();
        c.cmd("QUIT");
        Ok(r)
    }
}

/// Run swaks (the Debian `swaks` package) with `args`; returns (success, combined output).
pub fn swaks(args: &[&str]) -> (bool, String) {
    let out = Command::new("swaks")
        .args(args)
        .args(["--timeout", "20"])
        .stdin(Stdio::null())
        .output()
        .expect("swaks is installed (apt-get install swaks)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The delivery log of a node as JSON records.
pub fn delivery_log(node: &str) -> Vec<Value> {
    hato_ok(&["log", "--node", node, "--limit", "10000"])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("log line is JSON"))
        .collect()
}

/// Delivery settings for fast tests: short timeouts and leases, one-second retries. Lines of
/// `extra` (`key = value`) replace the defaults of the same key.
pub fn fast_delivery(extra: &str) -> String {
    let defaults = [
        ("enabled", "true"),
        ("poll_ms", "50"),
        ("lease_secs", "20"),
        ("connect_timeout_secs", "2"),
        ("command_timeout_secs", "2"),
        ("data_timeout_secs", "5"),
        ("retry_schedule_secs", "[1]"),
        ("dns_servers", "[\"127.0.0.1:9\"]"),
    ];
    let key = |l: &str| l.split('=').next().unwrap_or("").trim().to_string();
    let overridden: Vec<String> = extra.lines().map(key).collect();
    let mut out: Vec<String> = defaults
        .iter()
        .filter(|(k, _)| !overridden.iter().any(|o| o == k))
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    out.extend(
        extra
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from),
    );
    out.join("\n")
}

/// Route every domain to a local MX on `port` (`hato route set '*'`) through `node`.
pub fn route_all_to(node: &str, port: u16) {
    hato_ok(&[
        "route",
        "set",
        "--node",
        node,
        "*",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
    ]);
}

/// `hato settings set` through `node`, retried by nobody: true once acknowledged.
pub fn set_setting(node: &str, k: &str, v: &str) -> bool {
    hato(&["settings", "set", "--node", node, "--timeout", "8", k, v])
        .status
        .success()
}

/// A setting from `node`'s own copy (`--local`), if it has one.
pub fn get_local_setting(node: &str, k: &str) -> Option<String> {
    let out = hato(&["settings", "get", "--local", "--node", node, k]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Debian's python3, which sees the apt-installed modules (aiosmtpd, dkim) even when a pyenv
/// python3 comes first on PATH.
pub fn debian_python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// The Python of the test venv (official CMC SDK, schemathesis), created by `tests/run.sh`.
pub fn venv_python(tool: &str) -> PathBuf {
    let dir = std::env::var_os("HATO_PY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/hato-py")
        });
    let p = dir.join("bin").join(tool);
    assert!(
        p.exists(),
        "{} not found: run tests/run.sh once (it creates the Python venv), or set HATO_PY_VENV",
        p.display()
    );
    p
}

/// Start `tests/peers/<script>` on a free port with an output directory; waits for its
/// `READY` line.
fn spawn_peer(script: &str, args: &[&str], hint: &str) -> (u16, tempfile::TempDir, Child) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = spawn_peer_at(script, port, dir.path(), args, hint);
    (port, dir, child)
}

/// Start `tests/peers/<script>` on `port`, storing into `dir`; returns once it said READY.
fn spawn_peer_at(script: &str, port: u16, dir: &Path, args: &[&str], hint: &str) -> Child {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("peers")
        .join(script);
    let mut child = Command::new(debian_python())
        .arg(&path)
        .args(["--port", &port.to_string()])
        .args(args)
        .arg("--out")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert!(line.starts_with("READY"), "{hint}: {line:?}");
    child
}

/// A single bootstrapped node with `delivery` settings, started and leading.
pub fn single_node(delivery: &str) -> (tempfile::TempDir, Node) {
    let root = tempfile::tempdir().unwrap();
    let opts = NodeOpts {
        delivery: fast_delivery(delivery),
        ..Default::default()
    };
    let mut n = Node::new(root.path(), 1, true, &[], &opts);
    n.start();
    wait_for("leader", Duration::from_secs(30), || {
        n.status().filter(|s| s["role"] == "leader")
    });
    (root, n)
}

/// The scripted MX (`tests/peers/scripted_mx.py`, on Debian's python3-aiosmtpd): answers by
/// recipient local part (`perm` 550, `tempN` 451 N times, `slow` waits 3 s, else 250) and
/// stores every accepted message (fsync'd) plus a JSON line per message in `log.jsonl`.
pub struct Mx {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Mx {
    pub fn start() -> Mx {
        let (port, dir, child) = spawn_peer(
            "scripted_mx.py",
            &[],
            "scripted MX did not start (apt-get install python3-aiosmtpd)",
        );
        Mx { port, dir, child }
    }

    /// The same MX answering without waiting for its disk: attempts take a few milliseconds.
    pub fn start_fast() -> Mx {
        let (port, dir, child) = spawn_peer(
            "scripted_mx.py",
            &["--no-fsync"],
            "scripted MX did not start (apt-get install python3-aiosmtpd)",
        );
        Mx { port, dir, child }
    }

    /// Stop the MX (closing every connection to it) and start it again on the same port,
    /// keeping what it stored.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_peer_at(
            "scripted_mx.py",
            self.port,
            self.dir.path(),
            &["--no-fsync"],
            "scripted MX did not restart",
        );
    }

    /// One JSON object per accepted message.
    pub fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("log.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Raw bytes of every accepted message.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        files.sort();
        files.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }
}

impl Drop for Mx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The webhook receiver (`tests/peers/webhook_receiver.py`): records every POST; the first
/// `fail_first` are answered 500.
pub struct Receiver {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Receiver {
    pub fn start(fail_first: u32) -> Receiver {
        let (port, dir, child) = spawn_peer(
            "webhook_receiver.py",
            &["--fail-first", &fail_first.to_string()],
            "webhook receiver did not start",
        );
        Receiver { port, dir, child }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Every request so far: (status answered, headers, body).
    pub fn requests(&self) -> Vec<(u16, Value, Vec<u8>)> {
        use base64::Engine;
        std::fs::read_to_string(self.dir.path().join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| {
                let body = base64::engine::general_purpose::STANDARD
                    .decode(v["body_b64"].as_str().unwrap_or(""))
                    .unwrap_or_default();
                (
                    v["status"].as_u64().unwrap_or(0) as u16,
                    v["headers"].clone(),
                    body,
                )
            })
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
