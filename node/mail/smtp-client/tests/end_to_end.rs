//! End-to-end tests against `peers/scripted_mx.py` (aiosmtpd), a real SMTP
//! server in its own process, plus two hand-made misbehaving servers.
//!
//! Needs the Debian packages python3-aiosmtpd and openssl; a test fails
//! (never skips) with the package to install when one is missing.
//! `HATO_PYTHON` overrides the interpreter (default: Debian's
//! /usr/bin/python3, where python3-aiosmtpd installs), `HATO_SCRIPTED_MX` the
//! script's path.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use hato_smtp_client::{ClientConfig, Connection, Reply, SmtpError, TlsPolicy};
use serde_json::{json, Value};
use tempfile::TempDir;

const FROM: &str = "sender@hato.test";

/// The Python interpreter, checked once to have aiosmtpd.
fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let python = std::env::var("HATO_PYTHON").unwrap_or_else(|_| {
            let debian = "/usr/bin/python3";
            if Path::new(debian).exists() {
                debian
            } else {
                "python3"
            }
            .to_owned()
        });
        let has_aiosmtpd = Command::new(&python)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            has_aiosmtpd,
            "{python} cannot import aiosmtpd: install the Debian package python3-aiosmtpd \
             (apt-get install -y python3-aiosmtpd)"
        );
        python
    })
}

fn script() -> PathBuf {
    let path = std::env::var_os("HATO_SCRIPTED_MX").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../tests/peers/scripted_mx.py"),
        PathBuf::from,
    );
    assert!(path.exists(), "scripted MX not found at {}", path.display());
    path
}

/// A running scripted MX with its output directory.
struct Mx {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Mx {
    /// Starts the MX on a free loopback port and waits for "READY <port>".
    fn start(extra_args: &[&str]) -> Mx {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(python())
            .arg(script())
            .args(["--port", "0", "--out"])
            .arg(dir.path())
            .args(extra_args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the scripted MX");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("scripted MX printed nothing within 30 s");
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("scripted MX did not start: first line {line:?}"));
        Mx { child, port, dir }
    }

    fn addr(&self) -> SocketAddr {
        (Ipv4Addr::LOCALHOST, self.port).into()
    }

    /// The entries of log.jsonl, oldest first.
    fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("log.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("log.jsonl line is JSON"))
            .collect()
    }

    /// The stored messages, oldest first.
    fn messages(&self) -> Vec<Vec<u8>> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }

    /// SIGTERM, then waits (at most 10 s) for the exit status.
    fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "scripted MX ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Mx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate for CN=mx.test, made by openssl.
struct Cert {
    dir: TempDir,
}

impl Cert {
    fn new() -> Cert {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=mx.test",
            ])
            .args(["-days", "1", "-keyout", "key.pem", "-out", "cert.pem"])
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run openssl ({e}): install the Debian package openssl")
            });
        assert!(
            out.status.success(),
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Cert { dir }
    }

    fn mx_args(&self) -> [String; 4] {
        let path = |f: &str| self.dir.path().join(f).to_str().unwrap().to_owned();
        [
            "--tls-cert".into(),
            path("cert.pem"),
            "--tls-key".into(),
            path("key.pem"),
        ]
    }
}

fn config() -> ClientConfig {
    ClientConfig {
        ehlo_name: "out.hato.test".into(),
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(10),
        data_timeout: Duration::from_secs(10),
        source_ip: Some(Ipv4Addr::LOCALHOST.into()),
    }
}

fn message(id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {FROM}\r\nTo: rcpt@example.test\r\nSubject: test {id}\r\n\
         Message-ID: <{id}@hato.test>\r\nX-Hato-Id: {id}\r\n\r\n{body}"
    )
    .into_bytes()
}

async fn connect(mx: &Mx, tls: TlsPolicy) -> Connection {
    Connection::connect(&config(), mx.addr(), "mx.test", tls)
        .await
        .unwrap_or_else(|e| panic!("connect with {tls:?}: {e}"))
}

fn delivered(outcome: &Result<Reply, Reply>) -> &Reply {
    let reply = outcome.as_ref().expect("delivered");
    assert_eq!(reply.code, 250, "{reply}");
    reply
}

fn refused(outcome: &Result<Reply, Reply>) -> &Reply {
    outcome.as_ref().expect_err("refused")
}

#[tokio::test]
async fn two_messages_over_one_connection() {
    let mut mx = Mx::start(&[]);
    let mut conn = connect(&mx, TlsPolicy::Opportunistic).await;
    assert!(!conn.is_tls(), "this MX offers no STARTTLS");
    assert_eq!(conn.greeting().code, 220);
    assert_eq!(conn.peer(), mx.addr());
    assert_eq!(conn.server_name(), "mx.test");
    assert_eq!(conn.local_addr().ip(), Ipv4Addr::LOCALHOST);

    let first = message("m1", "first\r\n");
    let out = conn
        .send(FROM, &["a@example.test", "b@example.test"], &first)
        .await
        .unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(delivered(&out[0]).enhanced.as_deref(), Some("2.0.0"));
    delivered(&out[1]);
    conn.reset().await.unwrap();
    let second = message("m2", "second\r\n");
    let out = conn.send(FROM, &["c@example.test"], &second).await.unwrap();
    delivered(&out[0]);
    conn.quit().await;

    let log = mx.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0]["mail_from"], FROM);
    assert_eq!(
        log[0]["rcpt_tos"],
        json!(["a@example.test", "b@example.test"])
    );
    assert_eq!(log[0]["x_hato_id"], "m1");
    assert_eq!(log[0]["message_id"], "<m1@hato.test>");
    assert_eq!(log[0]["tls"], false);
    assert_eq!(log[0]["size"], first.len());
    assert_eq!(log[1]["rcpt_tos"], json!(["c@example.test"]));
    assert_eq!(log[1]["x_hato_id"], "m2");
    assert_eq!(mx.messages(), [first, second]);
    assert!(mx.terminate().success(), "MX exits cleanly on SIGTERM");
}

/// ok, perm and temp1 recipients in one transaction, then the retries.
async fn per_recipient_outcomes(mx_args: &[&str]) {
    let mx = Mx::start(mx_args);
    let mut conn = connect(&mx, TlsPolicy::Disabled).await;
    let rcpts = ["ok@x.test", "perm@x.test", "temp1@x.test"];
    let out = conn
        .send(FROM, &rcpts, &message("mix", "x\r\n"))
        .await
        .unwrap();
    delivered(&out[0]);
    let perm = refused(&out[1]);
    assert_eq!(perm.to_line(), "550 5.1.1 user unknown");
    assert!(perm.is_permanent());
    let temp = refused(&out[2]);
    assert_eq!((temp.code, temp.enhanced.as_deref()), (451, Some("4.3.0")));
    assert!(temp.is_transient());

    // No recipient accepted: every one refused, the connection stays usable.
    let out = conn
        .send(FROM, &["perm@x.test"], &message("none", "x\r\n"))
        .await
        .unwrap();
    assert_eq!(refused(&out[0]).code, 550);
    // temp1 is accepted on its second attempt.
    let out = conn
        .send(FROM, &["temp1@x.test"], &message("retry", "x\r\n"))
        .await
        .unwrap();
    delivered(&out[0]);
    conn.quit().await;

    let log = mx.log();
    let rcpts: Vec<&Value> = log.iter().map(|e| &e["rcpt_tos"]).collect();
    assert_eq!(rcpts, [&json!(["ok@x.test"]), &json!(["temp1@x.test"])]);
    assert_eq!(log[1]["x_hato_id"], "retry");
}

#[tokio::test]
async fn per_recipient_outcomes_pipelined() {
    per_recipient_outcomes(&[]).await;
}

#[tokio::test]
async fn per_recipient_outcomes_one_by_one() {
    per_recipient_outcomes(&["--no-pipelining"]).await;
}

#[tokio::test]
async fn starttls_with_self_signed_certificate() {
    let cert = Cert::new();
    let args = cert.mx_args();
    let mx = Mx::start(&args.each_ref().map(String::as_str));
    let policies = [
        (TlsPolicy::Opportunistic, true),
        (TlsPolicy::Required, true),
        (TlsPolicy::Disabled, false),
    ];
    for (policy, tls) in policies {
        let mut conn = connect(&mx, policy).await;
        assert_eq!(conn.is_tls(), tls, "{policy:?}");
        let id = format!("{policy:?}");
        let out = conn
            .send(FROM, &["ok@x.test"], &message(&id, "x\r\n"))
            .await
            .unwrap();
        delivered(&out[0]);
        conn.quit().await;
    }
    let seen: Vec<(Value, Value)> = mx
        .log()
        .iter()
        .map(|e| (e["x_hato_id"].clone(), e["tls"].clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (json!("Opportunistic"), json!(true)),
            (json!("Required"), json!(true)),
            (json!("Disabled"), json!(false)),
        ]
    );
}

#[tokio::test]
async fn required_tls_without_starttls_fails() {
    let mx = Mx::start(&[]);
    let err = Connection::connect(&config(), mx.addr(), "mx.test", TlsPolicy::Required)
        .await
        .expect_err("no STARTTLS offered");
    assert!(matches!(err, SmtpError::StartTlsNotOffered), "{err:?}");
    assert!(!err.is_permanent());
}

#[tokio::test]
async fn closed_port_is_a_transient_connect_error() {
    // A port bound and not listening: connecting is refused, and no other test's listener
    // can be given it meanwhile (a port freed by dropping a listener could be, and then the
    // connection was reset instead of refused).
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind((Ipv4Addr::LOCALHOST, 0).into()).unwrap();
    let addr = reserved.local_addr().unwrap();
    let err = Connection::connect(&config(), addr, "mx.test", TlsPolicy::Opportunistic)
        .await
        .expect_err("nothing listens");
    match &err {
        SmtpError::Connect { addr: a, source } => {
            assert_eq!(*a, addr);
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    assert!(!err.is_permanent());
}

#[tokio::test]
async fn silent_server_times_out() {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept and hold the connection without ever greeting.
    let server = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(socket);
    });
    let cfg = ClientConfig {
        command_timeout: Duration::from_millis(500),
        ..config()
    };
    let start = Instant::now();
    let err = Connection::connect(&cfg, addr, "mx.test", TlsPolicy::Opportunistic)
        .await
        .expect_err("no greeting");
    let elapsed = start.elapsed();
    assert!(
        matches!(err, SmtpError::Timeout { stage: "greeting" }),
        "{err:?}"
    );
    assert!(!err.is_permanent());
    assert!(
        (Duration::from_millis(450)..Duration::from_secs(3)).contains(&elapsed),
        "{elapsed:?}"
    );
    server.abort();
}

#[tokio::test]
async fn dot_stuffing_survives() {
    let mx = Mx::start(&[]);
    let mut conn = connect(&mx, TlsPolicy::Disabled).await;
    let body = ".hidden\r\n..two dots\r\n.\r\nafter a lone dot\r\nno final line end";
    let msg = message("dots", body);
    let out = conn.send(FROM, &["ok@x.test"], &msg).await.unwrap();
    delivered(&out[0]);
    conn.quit().await;

    let mut expected = msg;
    expected.extend_from_slice(b"\r\n");
    let stored = mx.messages();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        String::from_utf8_lossy(&stored[0]),
        String::from_utf8_lossy(&expected)
    );
}

#[tokio::test]
async fn non_ascii_address_without_smtputf8_is_refused_unsent() {
    let mx = Mx::start(&[]);
    let mut conn = connect(&mx, TlsPolicy::Disabled).await;
    let out = conn
        .send(
            FROM,
            &["ok@x.test", "j\u{fc}rgen@x.test"],
            &message("utf8", "x\r\n"),
        )
        .await
        .unwrap();
    for outcome in &out {
        assert_eq!(refused(outcome).code, 553);
        assert_eq!(refused(outcome).enhanced.as_deref(), Some("5.6.7"));
    }
    let out = conn
        .send(FROM, &["ok@x.test"], &message("ascii", "x\r\n"))
        .await
        .unwrap();
    delivered(&out[0]);
    conn.quit().await;
    let ids: Vec<Value> = mx.log().iter().map(|e| e["x_hato_id"].clone()).collect();
    assert_eq!(ids, [json!("ascii")]);
}

#[tokio::test]
async fn slow_end_of_data_times_out_and_poisons_the_connection() {
    let mx = Mx::start(&[]);
    let cfg = ClientConfig {
        data_timeout: Duration::from_secs(1),
        ..config()
    };
    let mut conn = Connection::connect(&cfg, mx.addr(), "mx.test", TlsPolicy::Disabled)
        .await
        .unwrap();
    let start = Instant::now();
    let err = conn
        .send(FROM, &["slow@x.test"], &message("slow", "x\r\n"))
        .await
        .expect_err("the MX answers after 3 s");
    assert!(
        matches!(
            err,
            SmtpError::Timeout {
                stage: "end of data"
            }
        ),
        "{err:?}"
    );
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
    // The late reply must never be taken for the next command's.
    let err = conn
        .send(FROM, &["ok@x.test"], &message("after", "x\r\n"))
        .await
        .expect_err("connection is unusable");
    assert!(
        matches!(err, SmtpError::Io { stage: "reuse", .. }),
        "{err:?}"
    );
}
