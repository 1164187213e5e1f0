//! The connection: setup (greeting, EHLO, STARTTLS) and transactions.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tracing::{debug, trace};

use crate::data::DotStuffer;
use crate::ehlo::Capabilities;
use crate::error::SmtpError;
use crate::reply::{parse_reply, Reply};

/// Bytes of the message encoded and written at a time.
const DATA_CHUNK: usize = 32 * 1024;

/// Whether to use STARTTLS (RFC 3207).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsPolicy {
    /// STARTTLS if the server offers it, plaintext otherwise. The certificate
    /// is NOT verified (opportunistic security, RFC 7435): it protects against
    /// passive eavesdropping only. A refused STARTTLS or a failed handshake is
    /// an error; the caller may retry with [`TlsPolicy::Disabled`].
    Opportunistic,
    /// STARTTLS must be offered ([`SmtpError::StartTlsNotOffered`] otherwise)
    /// and must succeed. The certificate is still NOT verified.
    Required,
    /// Never STARTTLS.
    Disabled,
}

/// Settings for [`Connection::connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Our name in EHLO/HELO: the sending host's FQDN.
    pub ehlo_name: String,
    /// Limit for opening the TCP connection.
    pub connect_timeout: Duration,
    /// Limit for each reply (greeting and commands, including the 354 to
    /// DATA), for each write to the socket, and for the TLS handshake.
    pub command_timeout: Duration,
    /// Limit for the reply to the end of the message data.
    pub data_timeout: Duration,
    /// Local address to send from; `None` lets the OS choose.
    pub source_ip: Option<IpAddr>,
}

impl ClientConfig {
    /// A configuration with RFC 5321 §4.5.3.2 style limits: 30 s to
    /// connect, 5 min per command, 10 min for the end of data.
    pub fn new(ehlo_name: impl Into<String>) -> ClientConfig {
        ClientConfig {
            ehlo_name: ehlo_name.into(),
            connect_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(600),
            source_ip: None,
        }
    }
}

/// An open SMTP session with one server, ready for transactions.
///
/// See the crate documentation for the contract.
pub struct Connection {
    wire: Wire<Box<dyn Io>>,
    caps: Capabilities,
    greeting: Reply,
    tls: bool,
    local: SocketAddr,
    peer: SocketAddr,
    server_name: String,
    command_timeout: Duration,
    data_timeout: Duration,
    /// A transaction may be open on the server side: RSET before the next.
    dirty: bool,
    /// An error left the protocol state unknown: refuse further use.
    broken: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .field("local", &self.local)
            .field("server_name", &self.server_name)
            .field("tls", &self.tls)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Opens a session: TCP connection (from `cfg.source_ip` if set), the
    /// 220 greeting, EHLO (HELO if EHLO gets a 5xx), then STARTTLS according
    /// to `tls` followed by a new EHLO. `server_name` is the MX host name,
    /// sent as TLS SNI (an IP address string is accepted too).
    pub async fn connect(
        cfg: &ClientConfig,
        addr: SocketAddr,
        server_name: &str,
        tls: TlsPolicy,
    ) -> Result<Connection, SmtpError> {
        let limit = cfg.command_timeout;
        let tcp = timeout(cfg.connect_timeout, tcp_connect(addr, cfg.source_ip))
            .await
            .map_err(|_| SmtpError::Timeout { stage: "connect" })?
            .map_err(|source| SmtpError::Connect { addr, source })?;
        // Our commands are written whole; don't let Nagle delay them.
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().map_err(|source| SmtpError::Io {
            stage: "connect",
            source,
        })?;
        debug!(%addr, %local, server_name, "connected");

        let mut wire = Wire::new(tcp);
        let greeting = wire.read_reply(limit, "greeting").await?;
        if greeting.code != 220 {
            return Err(wire.give_up(limit, "greeting", greeting).await);
        }
        let mut caps = hello(&mut wire, &cfg.ehlo_name, limit).await?;

        let starttls = match tls {
            TlsPolicy::Disabled => false,
            TlsPolicy::Opportunistic => caps.starttls,
            TlsPolicy::Required if caps.starttls => true,
            TlsPolicy::Required => {
                wire.send_quit(limit).await;
                return Err(SmtpError::StartTlsNotOffered);
            }
        };
        let wire: Wire<Box<dyn Io>> = if starttls {
            let reply = wire.command("STARTTLS\r\n", limit, "STARTTLS").await?;
            if reply.code != 220 {
                return Err(wire.give_up(limit, "STARTTLS", reply).await);
            }
            if !wire.buf.is_empty() {
                // Bytes sent before the handshake must not be taken as
                // protected replies (plaintext command injection).
                return Err(SmtpError::Protocol {
                    detail: "server sent data after its STARTTLS reply".into(),
                });
            }
            let name =
                ServerName::try_from(server_name.to_owned()).map_err(|e| SmtpError::Tls {
                    source: io::Error::new(io::ErrorKind::InvalidInput, e),
                })?;
            let stream = timeout(
                limit,
                TlsConnector::from(tls_config()).connect(name, wire.io),
            )
            .await
            .map_err(|_| SmtpError::Timeout {
                stage: "TLS handshake",
            })?
            .map_err(|source| SmtpError::Tls { source })?;
            debug!(%addr, "TLS established");
            let mut wire = Wire::new(Box::new(stream) as Box<dyn Io>);
            caps = hello(&mut wire, &cfg.ehlo_name, limit).await?;
            wire
        } else {
            Wire {
                io: Box::new(wire.io),
                buf: wire.buf,
            }
        };

        Ok(Connection {
            wire,
            caps,
            greeting,
            tls: starttls,
            local,
            peer: addr,
            server_name: server_name.to_owned(),
            command_timeout: limit,
            data_timeout: cfg.data_timeout,
            dirty: false,
            broken: false,
        })
    }

    /// Whether STARTTLS succeeded on this connection.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Our end of the TCP connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The server's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The server name given to [`Connection::connect`].
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The server's 220 greeting.
    pub fn greeting(&self) -> &Reply {
        &self.greeting
    }

    /// Runs one mail transaction and reports per recipient, in the order of
    /// `rcpts`: `Ok(reply to the end of data)` if the server took the message
    /// for that recipient, `Err(reply)` if its RCPT or the DATA refused it.
    ///
    /// When MAIL FROM is refused every recipient gets MAIL's reply. Some
    /// refusals are decided here, without sending anything, with a synthetic
    /// reply: an address with control characters or `<>` (553 5.1.7 for the
    /// sender, for all; 553 5.1.3 for that recipient), a non-ASCII address
    /// without SMTPUTF8 advertised (553 5.6.7, for all: the message needs
    /// SMTPUTF8), a message over the advertised SIZE (552 5.3.4, for all).
    /// These outcomes leave the connection usable; an `Err(SmtpError)` does
    /// not (see the crate documentation).
    ///
    /// `message` is the full message in CRLF form; see the crate
    /// documentation for how line ends and dots are sent. Empty `rcpts`
    /// returns an empty list without talking to the server.
    pub async fn send(
        &mut self,
        mail_from: &str,
        rcpts: &[&str],
        message: &[u8],
    ) -> Result<Vec<Result<Reply, Reply>>, SmtpError> {
        self.check_usable()?;
        let result = self.transaction(mail_from, rcpts, message).await;
        // `transaction` may also give the connection up itself (see there).
        self.broken |= result.is_err();
        result
    }

    /// Sends RSET, ending any transaction the server has open.
    pub async fn reset(&mut self) -> Result<(), SmtpError> {
        self.check_usable()?;
        let result = self.rset().await;
        self.broken = result.is_err();
        result
    }

    /// Sends QUIT, waits for the reply and closes the connection; errors are
    /// ignored (the server may already have gone).
    pub async fn quit(mut self) {
        if !self.broken {
            self.wire.quit(self.command_timeout).await;
        }
        let _ = timeout(self.command_timeout, self.wire.io.shutdown()).await;
    }

    fn check_usable(&self) -> Result<(), SmtpError> {
        if self.broken {
            return Err(SmtpError::Io {
                stage: "reuse",
                source: io::Error::new(
                    io::ErrorKind::NotConnected,
                    "connection unusable after an earlier error",
                ),
            });
        }
        Ok(())
    }

    async fn rset(&mut self) -> Result<(), SmtpError> {
        let reply = self
            .wire
            .command("RSET\r\n", self.command_timeout, "RSET")
            .await?;
        if reply.code / 100 != 2 {
            return Err(SmtpError::Rejected {
                stage: "RSET",
                reply,
            });
        }
        self.dirty = false;
        Ok(())
    }

    async fn transaction(
        &mut self,
        mail_from: &str,
        rcpts: &[&str],
        message: &[u8],
    ) -> Result<Vec<Result<Reply, Reply>>, SmtpError> {
        let plan = match Plan::new(&self.caps, mail_from, rcpts, message) {
            Ok(plan) => plan,
            Err(reply) => return Ok(vec![Err(reply); rcpts.len()]),
        };
        let commands: Vec<&str> = plan.rcpt.iter().filter_map(|r| r.as_deref().ok()).collect();
        if commands.is_empty() {
            return Ok(plan.outcomes(|_| unreachable!("no recipient was sent")));
        }
        if self.dirty {
            self.rset().await?;
        }
        let limit = self.command_timeout;
        self.dirty = true;

        // MAIL, the RCPTs and DATA in one write with PIPELINING (DATA may end a pipelined
        // group, RFC 2920 §3.1): one round trip instead of three. Without it, one by one.
        let mail_reply;
        let mut rcpt_replies = Vec::with_capacity(commands.len());
        let mut data_reply = None;
        if self.caps.pipelining {
            let batch = std::iter::once(plan.mail.as_str())
                .chain(commands.iter().copied())
                .chain(std::iter::once("DATA\r\n"))
                .collect::<String>();
            self.wire
                .write_all(batch.as_bytes(), limit, "MAIL FROM")
                .await?;
            mail_reply = self.wire.read_reply(limit, "MAIL FROM").await?;
            for _ in &commands {
                rcpt_replies.push(self.wire.read_reply(limit, "RCPT TO").await?);
            }
            data_reply = Some(self.wire.read_reply(limit, "DATA").await?);
        } else {
            mail_reply = self.wire.command(&plan.mail, limit, "MAIL FROM").await?;
            if mail_reply.code / 100 == 2 {
                for command in &commands {
                    rcpt_replies.push(self.wire.command(command, limit, "RCPT TO").await?);
                }
            }
        }
        let accepted: Vec<bool> = rcpt_replies.iter().map(|r| r.code / 100 == 2).collect();
        if mail_reply.code / 100 != 2 || !accepted.contains(&true) {
            if data_reply.as_ref().is_some_and(|r| r.code == 354) {
                // The server wants the message although it took no recipient: it is not
                // following RFC 2920. Sending data could deliver to no one or to anyone;
                // give the connection up instead (closing it aborts the transaction).
                self.broken = true;
            }
            if mail_reply.code / 100 != 2 {
                return Ok(plan.outcomes(|_| Err(mail_reply.clone())));
            }
            return Ok(plan.outcomes(|k| Err(rcpt_replies[k].clone())));
        }

        let data_reply = match data_reply {
            Some(r) => r,
            None => self.wire.command("DATA\r\n", limit, "DATA").await?,
        };
        if data_reply.code != 354 {
            return Ok(plan.outcomes(|k| {
                Err(if accepted[k] {
                    &data_reply
                } else {
                    &rcpt_replies[k]
                }
                .clone())
            }));
        }

        // The message, dot-stuffed chunk by chunk (the terminator goes out with the last
        // chunk: one write for a small message), then the final reply.
        let mut stuffer = DotStuffer::default();
        let mut out = Vec::with_capacity(DATA_CHUNK + DATA_CHUNK / 32 + 5);
        let mut chunks = message.chunks(DATA_CHUNK).peekable();
        loop {
            out.clear();
            if let Some(chunk) = chunks.next() {
                stuffer.push(chunk, &mut out);
            }
            if chunks.peek().is_none() {
                break;
            }
            self.wire.write_all(&out, limit, "message data").await?;
        }
        stuffer.finish(&mut out);
        self.wire.write_all(&out, limit, "message data").await?;
        let done = self
            .wire
            .read_reply(self.data_timeout, "end of data")
            .await?;
        self.dirty = false;
        debug!(peer = %self.peer, reply = %done, "end of data");
        Ok(
            plan.outcomes(|k| match (accepted[k], done.code / 100 == 2) {
                (true, true) => Ok(done.clone()),
                (true, false) => Err(done.clone()),
                (false, _) => Err(rcpt_replies[k].clone()),
            }),
        )
    }
}

/// The commands of one transaction, or the synthetic refusals decided before
/// sending anything.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    /// `MAIL FROM:<...> params\r\n`.
    mail: String,
    /// Per recipient: its `RCPT TO:<...>\r\n`, or why it is not sent.
    rcpt: Vec<Result<String, Reply>>,
}

impl Plan {
    /// `Err` is one refusal for every recipient.
    fn new(
        caps: &Capabilities,
        mail_from: &str,
        rcpts: &[&str],
        message: &[u8],
    ) -> Result<Plan, Reply> {
        if !address_ok(mail_from) {
            return Err(Reply::synthetic(
                553,
                "5.1.7",
                "invalid sender address syntax",
            ));
        }
        let utf8 = !mail_from.is_ascii() || rcpts.iter().any(|r| !r.is_ascii());
        if utf8 && !caps.smtputf8 {
            return Err(Reply::synthetic(
                553,
                "5.6.7",
                "non-ASCII address but the server does not offer SMTPUTF8",
            ));
        }
        if let Some(limit) = caps.size_limit {
            if message.len() as u64 > limit {
                return Err(Reply::synthetic(
                    552,
                    "5.3.4",
                    format!(
                        "message size {} exceeds the server's limit of {limit}",
                        message.len()
                    ),
                ));
            }
        }

        let mut mail = format!("MAIL FROM:<{mail_from}>");
        if caps.size {
            mail.push_str(&format!(" SIZE={}", message.len()));
        }
        if caps.eightbitmime && !message.is_ascii() {
            mail.push_str(" BODY=8BITMIME");
        }
        if utf8 {
            mail.push_str(" SMTPUTF8");
        }
        mail.push_str("\r\n");
        let rcpt = rcpts
            .iter()
            .map(|r| {
                if !r.is_empty() && address_ok(r) {
                    Ok(format!("RCPT TO:<{r}>\r\n"))
                } else {
                    Err(Reply::synthetic(
                        553,
                        "5.1.3",
                        "invalid recipient address syntax",
                    ))
                }
            })
            .collect();
        Ok(Plan { mail, rcpt })
    }

    /// Per-recipient results: synthetic refusals as they are, and `f(k)` for
    /// the k-th recipient that was sent.
    fn outcomes(
        &self,
        mut f: impl FnMut(usize) -> Result<Reply, Reply>,
    ) -> Vec<Result<Reply, Reply>> {
        let mut k = 0;
        self.rcpt
            .iter()
            .map(|r| match r {
                Err(reply) => Err(reply.clone()),
                Ok(_) => {
                    k += 1;
                    f(k - 1)
                }
            })
            .collect()
    }
}

/// An address we can put between `<>`: no control characters, no `<`/`>`
/// (they would allow command injection). The empty sender is the null
/// reverse-path of bounces.
fn address_ok(address: &str) -> bool {
    !address
        .chars()
        .any(|c| c.is_control() || c == '<' || c == '>')
}

/// EHLO, or HELO when EHLO gets a 5xx (RFC 5321 §3.2).
async fn hello<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    name: &str,
    limit: Duration,
) -> Result<Capabilities, SmtpError> {
    let reply = wire
        .command(&format!("EHLO {name}\r\n"), limit, "EHLO")
        .await?;
    if reply.code == 250 {
        return Ok(Capabilities::parse(&reply));
    }
    if !reply.is_permanent() {
        return Err(wire.give_up(limit, "EHLO", reply).await);
    }
    let reply = wire
        .command(&format!("HELO {name}\r\n"), limit, "HELO")
        .await?;
    if reply.code == 250 {
        return Ok(Capabilities::default());
    }
    Err(wire.give_up(limit, "HELO", reply).await)
}

async fn tcp_connect(addr: SocketAddr, source_ip: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = source_ip {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    socket.connect(addr).await
}

/// A byte stream (TCP, or TLS over TCP) that replies are read from.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The stream plus the bytes received but not yet parsed.
struct Wire<S> {
    io: S,
    buf: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    fn new(io: S) -> Self {
        Wire {
            io,
            buf: Vec::new(),
        }
    }

    /// Reads one reply; the whole reply must arrive within `limit`.
    async fn read_reply(
        &mut self,
        limit: Duration,
        stage: &'static str,
    ) -> Result<Reply, SmtpError> {
        let read = async {
            let mut chunk = [0u8; 4096];
            loop {
                match parse_reply(&self.buf) {
                    Ok(Some((reply, used))) => {
                        self.buf.drain(..used);
                        trace!(stage, reply = %reply, "<-");
                        return Ok(reply);
                    }
                    Ok(None) => {}
                    Err(detail) => return Err(SmtpError::Protocol { detail }),
                }
                let n = self
                    .io
                    .read(&mut chunk)
                    .await
                    .map_err(|source| SmtpError::Io { stage, source })?;
                if n == 0 {
                    return Err(SmtpError::Io {
                        stage,
                        source: io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed by the server",
                        ),
                    });
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
        };
        timeout(limit, read)
            .await
            .map_err(|_| SmtpError::Timeout { stage })?
    }

    /// Writes and flushes `bytes` within `limit`.
    async fn write_all(
        &mut self,
        bytes: &[u8],
        limit: Duration,
        stage: &'static str,
    ) -> Result<(), SmtpError> {
        let write = async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        };
        timeout(limit, write)
            .await
            .map_err(|_| SmtpError::Timeout { stage })?
            .map_err(|source| SmtpError::Io { stage, source })
    }

    /// Sends one command line and reads its reply.
    async fn command(
        &mut self,
        line: &str,
        limit: Duration,
        stage: &'static str,
    ) -> Result<Reply, SmtpError> {
        trace!(stage, command = line.trim_end(), "->");
        self.write_all(line.as_bytes(), limit, stage).await?;
        self.read_reply(limit, stage).await
    }

    /// QUIT and its reply, errors ignored.
    async fn quit(&mut self, limit: Duration) {
        let _ = self.command("QUIT\r\n", limit, "QUIT").await;
    }

    /// QUIT without waiting for the reply, errors ignored.
    async fn send_quit(&mut self, limit: Duration) {
        let _ = self.write_all(b"QUIT\r\n", limit, "QUIT").await;
    }

    /// Says QUIT (best effort) and returns the refusal as an error.
    async fn give_up(&mut self, limit: Duration, stage: &'static str, reply: Reply) -> SmtpError {
        debug!(stage, reply = %reply, "refused");
        self.send_quit(limit).await;
        SmtpError::Rejected { stage, reply }
    }
}

/// One rustls configuration for every connection: aws-lc-rs provider (set
/// explicitly, so a process with several providers still works) and a
/// verifier that accepts any certificate.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("the aws-lc-rs provider supports TLS 1.2 and 1.3")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// Accepts any server certificate (RFC 7435 opportunistic TLS) but still
/// checks the handshake signatures, so the session key belongs to whoever
/// holds the presented certificate's key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps() -> Capabilities {
        Capabilities {
            pipelining: true,
            eightbitmime: true,
            size: true,
            size_limit: Some(100),
            ..Capabilities::default()
        }
    }

    #[test]
    fn mail_parameters_follow_capabilities() {
        let plan = Plan::new(&caps(), "a@x", &["b@y"], b"hi\r\n").unwrap();
        assert_eq!(plan.mail, "MAIL FROM:<a@x> SIZE=4\r\n");
        assert_eq!(plan.rcpt, vec![Ok("RCPT TO:<b@y>\r\n".to_string())]);

        let plan = Plan::new(&caps(), "", &["b@y"], "h\u{e9}\r\n".as_bytes()).unwrap();
        assert_eq!(plan.mail, "MAIL FROM:<> SIZE=5 BODY=8BITMIME\r\n");

        let plain = Capabilities::default();
        let plan = Plan::new(&plain, "a@x", &["b@y"], "h\u{e9}\r\n".as_bytes()).unwrap();
        assert_eq!(plan.mail, "MAIL FROM:<a@x>\r\n");

        let utf8 = Capabilities {
            smtputf8: true,
            ..Capabilities::default()
        };
        let plan = Plan::new(&utf8, "a@x", &["j\u{fc}rgen@y"], b"hi\r\n").unwrap();
        assert_eq!(plan.mail, "MAIL FROM:<a@x> SMTPUTF8\r\n");
    }

    #[test]
    fn refusals_decided_before_sending() {
        let all = |r: Result<Plan, Reply>| r.unwrap_err().to_line();
        assert!(all(Plan::new(&caps(), "a@x", &["j\u{fc}rgen@y"], b"x")).starts_with("553 5.6.7"));
        assert!(all(Plan::new(&caps(), "a@x", &["b@y"], &[b'x'; 101])).starts_with("552 5.3.4"));
        assert!(Plan::new(&caps(), "a@x", &["b@y"], &[b'x'; 100]).is_ok());
        assert!(all(Plan::new(&caps(), "a@x>\r\nRSET", &["b@y"], b"x")).starts_with("553 5.1.7"));

        let plan = Plan::new(&caps(), "a@x", &["ok@y", "b@y>\r\nDATA", "", "c@y"], b"x").unwrap();
        let sent: Vec<bool> = plan.rcpt.iter().map(Result::is_ok).collect();
        assert_eq!(sent, [true, false, false, true]);
        assert_eq!(
            plan.rcpt[1].as_ref().unwrap_err().to_line(),
            "553 5.1.3 invalid recipient address syntax"
        );
    }

    #[test]
    fn outcomes_map_sent_recipients_in_order() {
        let plan = Plan::new(&caps(), "a@x", &["1@y", "<bad>", "2@y"], b"x").unwrap();
        let got = plan.outcomes(|k| Ok(Reply::synthetic(250, "2.0.0", k.to_string())));
        let texts: Vec<_> = got
            .iter()
            .map(|r| match r {
                Ok(r) => format!("ok {}", r.text),
                Err(r) => format!("err {}", r.code),
            })
            .collect();
        assert_eq!(texts, ["ok 0", "err 553", "ok 1"]);
    }
}
