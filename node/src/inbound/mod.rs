//! SMTP ingress: the relay/submission listeners every node runs.
//!
//! Contract:
//! - A message is answered `250` only after its `Command::Enqueue` is committed by a Raft
//!   quorum and applied (see `session::Session::finish_message`). If the cluster cannot commit
//!   within the write timeout the reply is `451 4.3.0`, and the client keeps the message.
//! - Relay needs SMTP AUTH (PLAIN/LOGIN, only over TLS unless configured otherwise) or a client
//!   address in the replicated allow-list; everyone else gets `554 5.7.1` (relay listeners) or
//!   `530 5.7.0` (submission listeners). Hato never relays openly.
//! - On PROXY-protocol listeners the address from the PROXY header is the client address (for
//!   allow-lists and logs); a connection without a valid header is dropped.
//! - Limits (size, recipients, line length, timeouts, connections per IP, bad commands) answer
//!   with RFC 5321/3463 codes and never leave a half-queued message.

mod bounce;
pub(crate) mod message;
mod session;
pub mod tls;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hato_cluster::now_ms;
use hato_cluster::ClusterHandle;
use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub use session::Conn;

/// How a listener treats TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text, STARTTLS offered (ports 25/587).
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS at all (only for trusted networks).
    None,
}

/// What a listener is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerMode {
    /// Port-25 style: AUTH or an allowed client address.
    Relay,
    /// Port-587 style: AUTH required.
    Submission,
}

/// One SMTP listener.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub addr: String,
    #[serde(default = "default_mode")]
    pub mode: ListenerMode,
    #[serde(default = "default_tls")]
    pub tls: TlsMode,
    /// Expect a HAProxy PROXY v1/v2 header first (listeners behind a load balancer).
    #[serde(default)]
    pub proxy_protocol: bool,
}

fn default_mode() -> ListenerMode {
    ListenerMode::Relay
}

fn default_tls() -> TlsMode {
    TlsMode::Starttls
}

/// Protocol limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_recipients: usize,
    pub max_line_length: usize,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    pub max_connections_per_ip: usize,
    pub max_bad_commands: u32,
}

/// Shared state of all SMTP listeners of a node.
pub struct Inbound {
    pub cluster: ClusterHandle,
    pub hostname: String,
    pub limits: Limits,
    pub require_tls_for_auth: bool,
    pub tls: tls::TlsState,
    conns: Mutex<HashMap<IpAddr, usize>>,
    ids: IdGen,
}

impl Inbound {
    pub fn new(
        cluster: ClusterHandle,
        hostname: String,
        limits: Limits,
        require_tls_for_auth: bool,
        tls: tls::TlsState,
    ) -> Arc<Self> {
        let node = cluster.id();
        Arc::new(Self {
            cluster,
            hostname,
            limits,
            require_tls_for_auth,
            tls,
            conns: Mutex::new(HashMap::new()),
            ids: IdGen::new(node),
        })
    }

    pub(crate) fn next_id(&self) -> (String, u64) {
        self.ids.next()
    }
}

/// Time-ordered, cluster-unique message ids: `<ms hex><node hex><seq hex>`.
struct IdGen {
    node: u64,
    last: Mutex<(u64, u32)>,
}

impl IdGen {
    fn new(node: u64) -> Self {
        Self {
            node,
            last: Mutex::new((0, 0)),
        }
    }

    fn next(&self) -> (String, u64) {
        let now = now_ms();
        let mut g = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let (ms, seq) = if now > g.0 { (now, 0) } else { (g.0, g.1 + 1) };
        *g = (ms, seq);
        (format!("{ms:011x}{:03x}{seq:05x}", self.node & 0xfff), ms)
    }
}

/// Counts a connection against its client address while alive.
struct ConnSlot {
    inb: Arc<Inbound>,
    ip: IpAddr,
}

impl ConnSlot {
    fn take(inb: &Arc<Inbound>, ip: IpAddr) -> Option<ConnSlot> {
        let mut m = inb.conns.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= inb.limits.max_connections_per_ip {
            return None;
        }
        *n += 1;
        Some(ConnSlot {
            inb: inb.clone(),
            ip,
        })
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut m = self.inb.conns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// Accept connections on `listener` until `stop` turns true.
pub async fn serve(
    inb: Arc<Inbound>,
    listener: TcpListener,
    cfg: ListenerConfig,
    mut stop: watch::Receiver<bool>,
) {
    let cfg = Arc::new(cfg);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "smtp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let inb = inb.clone();
        let cfg = cfg.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(inb, cfg, tcp, peer).await {
                tracing::debug!(%peer, error = %e, "smtp connection ended with an error");
            }
        });
    }
}

async fn handle(
    inb: Arc<Inbound>,
    cfg: Arc<ListenerConfig>,
    mut tcp: TcpStream,
    peer: SocketAddr,
) -> std::io::Result<()> {
    let _ = tcp.set_nodelay(true);
    let mut client = peer.ip();
    let mut pending = Vec::new();
    if cfg.proxy_protocol {
        match tokio::time::timeout(Duration::from_secs(10), read_proxy_header(&mut tcp)).await {
            Ok(Ok((hdr, rest))) => {
                if let hato_proxyproto::ProxyHeader::Proxied { source, .. } = hdr {
                    client = source.ip();
                }
                pending = rest;
            }
            Ok(Err(e)) => {
                tracing::info!(%peer, error = %e, "dropping connection without a valid PROXY header");
                return Ok(());
            }
            Err(_) => return Ok(()),
        }
    }
    let Some(_slot) = ConnSlot::take(&inb, client) else {
        use tokio::io::AsyncWriteExt;
        let _ = tcp
            .write_all(b"421 4.7.0 Too many connections from your address, try again later\r\n")
            .await;
        return Ok(());
    };
    let conn = if cfg.tls == TlsMode::Implicit {
        let Some(acceptor) = inb.tls.acceptor() else {
            tracing::warn!("implicit TLS listener has no certificate yet; closing");
            return Ok(());
        };
        match tokio::time::timeout(Duration::from_secs(30), acceptor.accept(tcp)).await {
            Ok(Ok(s)) => Conn::Tls(Box::new(s)),
            _ => return Ok(()),
        }
    } else {
        Conn::Plain(tcp)
    };
    session::Session::new(inb, cfg, conn, client, pending)
        .run()
        .await
}

async fn read_proxy_header(
    tcp: &mut TcpStream,
) -> std::io::Result<(hato_proxyproto::ProxyHeader, Vec<u8>)> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        match hato_proxyproto::parse(&buf) {
            Ok(Some((hdr, used))) => return Ok((hdr, buf[used..].to_vec())),
            Ok(None) => {}
            Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
        if buf.len() > 65_552 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "PROXY header too long",
            ));
        }
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before PROXY header",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
