//! Idle SMTP connections kept for reuse, and per-destination limits.

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
    idle: Mutex<HashMap<Key, Vec<(Connection, Instant)>>>,
}

impl Pool {
    pub fn new() -> Self {
        Self {
            idle: Mutex::new(HashMap::new()),
        }
    }

    /// The most recently used idle connection, if one is fresh enough.
    pub fn take(&self, addr: SocketAddr, name: &str, tls: TlsPolicy) -> Option<Connection> {
        let mut idle = self.idle.lock().expect("pool");
        let list = idle.get_mut(&key(addr, name, tls))?;
        while let Some((c, at)) = list.pop() {
            if at.elapsed() < IDLE_FOR {
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
        list.retain(|(_, at)| at.elapsed() < IDLE_FOR);
        if list.len() < MAX_IDLE_PER_HOST {
            list.push((c, Instant::now()));
        } else {
            tokio::spawn(c.quit());
        }
    }
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
