//! Idle SMTP connections kept for reuse, and per-destination limits.
//!
//! Contract: a connection is reused only while it has been idle for less than the pool's
//! limit; past it, it is closed with QUIT, whether or not more mail goes to that destination
//! ([`Pool::take_expired`] is called every few seconds by the delivery workers, and
//! [`Pool::take_all`] when they stop). A receiver is never left holding our idle connections
//! until its own timeout drops them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hato_smtp_client::{Connection, TlsPolicy};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Idle connections older than this are closed rather than reused (servers drop idle
/// clients after a while; RFC 5321 suggests at least 5 minutes, many use less).
const IDLE_FOR: Duration = Duration::from_secs(20);
const MAX_IDLE_PER_HOST: usize = 16;

type Key = (SocketAddr, String, u8);

fn key(addr: SocketAddr, name: &str, tls: TlsPolicy) -> Key {
    let t = match tls {
        TlsPolicy::Opportunistic => 0,
        TlsPolicy::Required => 1,
        TlsPolicy::Disabled => 2,
    };
    (addr, name.to_ascii_lowercase(), t)
}

/// Idle connections by (address, host name, TLS policy).
pub struct Pool {
    idle_for: Duration,
    idle: Mutex<HashMap<Key, Vec<(Connection, Instant)>>>,
}

impl Pool {
    pub fn new() -> Self {
        Self::with_idle_limit(IDLE_FOR)
    }

    /// A pool that keeps connections for at most `idle_for` between uses.
    pub fn with_idle_limit(idle_for: Duration) -> Self {
        Self {
            idle_for,
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// The most recently used idle connection, if one is fresh enough.
    pub fn take(&self, addr: SocketAddr, name: &str, tls: TlsPolicy) -> Option<Connection> {
        let mut idle = self.idle.lock().expect("pool");
        let list = idle.get_mut(&key(addr, name, tls))?;
        while let Some((c, at)) = list.pop() {
            if !self.expired(at) {
                return Some(c);
            }
            tokio::spawn(c.quit());
        }
        None
    }

    /// Keep a connection for reuse.
    pub fn put(&self, addr: SocketAddr, name: &str, tls: TlsPolicy, c: Connection) {
        let mut idle = self.idle.lock().expect("pool");
        let list = idle.entry(key(addr, name, tls)).or_default();
        for (old, _) in list.extract_if(.., |(_, at)| self.expired(*at)) {
            tokio::spawn(old.quit());
        }
        if list.len() < MAX_IDLE_PER_HOST {
            list.push((c, Instant::now()));
        } else {
            tokio::spawn(c.quit());
        }
    }

    /// Removes the connections idle for longer than the limit, for the caller to close.
    pub fn take_expired(&self) -> Vec<Connection> {
        self.take_where(|at| self.expired(at))
    }

    /// Removes every idle connection (the workers are stopping).
    pub fn take_all(&self) -> Vec<Connection> {
        self.take_where(|_| true)
    }

    /// Whether a connection idle since `at` is past the limit.
    fn expired(&self, at: Instant) -> bool {
        at.elapsed() >= self.idle_for
    }

    fn take_where(&self, gone: impl Fn(Instant) -> bool) -> Vec<Connection> {
        let mut idle = self.idle.lock().expect("pool");
        let mut out = Vec::new();
        for list in idle.values_mut() {
            out.extend(list.extract_if(.., |(_, at)| gone(*at)).map(|(c, _)| c));
        }
        idle.retain(|_, list| !list.is_empty());
        out
    }
}

/// Says QUIT to each connection and closes it, all at once, giving up after `within`.
pub async fn quit_all(conns: Vec<Connection>, within: Duration) {
    let quits: Vec<_> = conns.into_iter().map(|c| tokio::spawn(c.quit())).collect();
    let _ = tokio::time::timeout(within, async {
        for q in quits {
            let _ = q.await;
        }
    })
    .await;
}

/// Concurrency and rate limit of one destination domain.
pub struct DomainLimit {
    max: usize,
    per_minute: Option<u32>,
    conns: Semaphore,
    /// Token bucket: (tokens, last refill).
    bucket: Mutex<(f64, Instant)>,
}

impl DomainLimit {
    pub fn new(max: usize, per_minute: Option<u32>) -> Self {
        Self {
            max,
            per_minute,
            conns: Semaphore::new(max),
            bucket: Mutex::new((per_minute.unwrap_or(0) as f64, Instant::now())),
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    pub fn per_minute(&self) -> Option<u32> {
        self.per_minute
    }

    /// Wait for a transaction slot and, with a rate limit, a token.
    pub async fn acquire(&self) -> SemaphorePermit<'_> {
        let permit = self.conns.acquire().await.expect("never closed");
        if let Some(rate) = self.per_minute {
            let per_ms = rate as f64 / 60_000.0;
            loop {
                let wait = {
                    let mut b = self.bucket.lock().expect("bucket");
                    let now = Instant::now();
                    b.0 = (b.0 + now.duration_since(b.1).as_millis() as f64 * per_ms)
                        .min(rate as f64);
                    b.1 = now;
                    if b.0 >= 1.0 {
                        b.0 -= 1.0;
                        None
                    } else {
                        Some(Duration::from_millis(((1.0 - b.0) / per_ms).ceil() as u64))
                    }
                };
                match wait {
                    None => break,
                    Some(d) => tokio::time::sleep(d).await,
                }
            }
        }
        permit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_smtp_client::ClientConfig;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    /// A server that greets, answers EHLO and QUIT, and reports each session's commands
    /// once the client has closed it.
    async fn server() -> (SocketAddr, mpsc::UnboundedReceiver<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut lines = BufReader::new(r).lines();
                    let mut seen = Vec::new();
                    w.write_all(b"220 test ESMTP\r\n").await.unwrap();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let reply: &[u8] = match line.to_ascii_uppercase().as_str() {
                            l if l.starts_with("EHLO") => b"250 test\r\n",
                            "QUIT" => b"221 bye\r\n",
                            _ => b"502 no\r\n",
                        };
                        seen.push(line);
                        let _ = w.write_all(reply).await;
                    }
                    let _ = tx.send(seen);
                });
            }
        });
        (addr, rx)
    }

    async fn connect(addr: SocketAddr) -> Connection {
        let cfg = ClientConfig::new("client.test");
        Connection::connect(&cfg, addr, "localhost", TlsPolicy::Disabled)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn idle_connections_are_closed_with_quit_once_past_their_limit() {
        let (addr, mut sessions) = server().await;
        let pool = Pool::with_idle_limit(Duration::from_millis(300));
        pool.put(addr, "localhost", TlsPolicy::Disabled, connect(addr).await);

        // Fresh: kept, and reusable.
        assert!(pool.take_expired().is_empty());
        let c = pool
            .take(addr, "localhost", TlsPolicy::Disabled)
            .expect("reusable");
        pool.put(addr, "localhost", TlsPolicy::Disabled, c);

        tokio::time::sleep(Duration::from_millis(400)).await;
        let expired = pool.take_expired();
        assert_eq!(expired.len(), 1);
        assert!(pool.take(addr, "localhost", TlsPolicy::Disabled).is_none());
        quit_all(expired, Duration::from_secs(5)).await;
        let seen = tokio::time::timeout(Duration::from_secs(5), sessions.recv())
            .await
            .expect("the server saw the session end")
            .unwrap();
        assert_eq!(seen, ["EHLO client.test", "QUIT"]);
    }

    #[tokio::test]
    async fn stopping_closes_every_idle_connection() {
        let (addr, mut sessions) = server().await;
        let pool = Pool::new();
        for _ in 0..3 {
            pool.put(addr, "localhost", TlsPolicy::Disabled, connect(addr).await);
        }
        assert!(pool.take_expired().is_empty());
        quit_all(pool.take_all(), Duration::from_secs(5)).await;
        for _ in 0..3 {
            let seen = tokio::time::timeout(Duration::from_secs(5), sessions.recv())
                .await
                .expect("every session ended")
                .unwrap();
            assert_eq!(seen.last().map(String::as_str), Some("QUIT"));
        }
        assert!(pool.take(addr, "localhost", TlsPolicy::Disabled).is_none());
    }
}
