//! A small SMTP client for delivering to MX servers and smart hosts.
//!
//! Contract: one [`Connection`] is one SMTP session. [`Connection::connect`] opens it (greeting,
//! EHLO with HELO fallback, STARTTLS according to the [`TlsPolicy`]); [`Connection::send`] runs
//! one mail transaction and reports a reply per recipient; a session can carry several
//! transactions ([`Connection::reset`] after a refused one). The client never retries: the
//! caller decides what a failure means. Every read has a timeout. Opportunistic TLS does not
//! verify certificates (RFC 7435): it protects against passive eavesdropping, and an MX's
//! certificate rarely names the MX host anyway.

mod reply;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

pub use reply::{capabilities, dot_stuff, parse_reply, Capabilities, Parsed, Reply};

/// Whether to use STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsPolicy {
    /// Use STARTTLS when the server offers it (certificate not verified).
    Opportunistic,
    /// Fail (temporarily) unless the server offers STARTTLS and the handshake succeeds.
    Required,
    /// Never use TLS.
    Disabled,
}

/// Session parameters.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Name sent in EHLO/HELO.
    pub ehlo_name: String,
    pub connect_timeout: Duration,
    /// Wait for each reply to a command (and the greeting).
    pub command_timeout: Duration,
    /// Wait for the reply after the message data.
    pub data_timeout: Duration,
    /// Local address to connect from.
    pub source_ip: Option<IpAddr>,
}

/// Why a session could not be opened or continued.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("timed out waiting for the reply to {stage}")]
    Timeout { stage: &'static str },
    #[error("connection failed during {stage}: {source}")]
    Io {
        stage: &'static str,
        source: std::io::Error,
    },
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("the server does not offer STARTTLS, and TLS is required")]
    StartTlsNotOffered,
    #[error("protocol error: {detail}")]
    Protocol { detail: String },
    #[error("{stage} refused: {}", reply.to_line())]
    Rejected { stage: &'static str, reply: Reply },
}

impl SmtpError {
    /// Only a 5xx refusal of the session is permanent; everything else may work later.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SmtpError::Rejected { reply, .. } if reply.is_permanent())
    }

    /// The server's reply, if the error is a refusal.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            SmtpError::Rejected { reply, .. } => Some(reply),
            _ => None,
        }
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// One SMTP session.
pub struct Connection {
    stream: Stream,
    buf: Vec<u8>,
    caps: Capabilities,
    greeting: Reply,
    local: SocketAddr,
    peer: SocketAddr,
    server_name: String,
    command_timeout: Duration,
    data_timeout: Duration,
}

impl Connection {
    /// Connect, read the greeting, EHLO, and STARTTLS per `tls`.
    pub async fn connect(
        cfg: &ClientConfig,
        addr: SocketAddr,
        server_name: &str,
        tls: TlsPolicy,
    ) -> Result<Connection, SmtpError> {
        let connect = async {
            let sock = if addr.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }?;
            if let Some(ip) = cfg.source_ip {
                sock.bind(SocketAddr::new(ip, 0))?;
            }
            sock.connect(addr).await
        };
        let tcp = match tokio::time::timeout(cfg.connect_timeout, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => return Err(SmtpError::Connect { addr, source }),
            Err(_) => return Err(SmtpError::Timeout { stage: "connect" }),
        };
        let _ = tcp.set_nodelay(true);
        let local = tcp.local_addr().map_err(|source| SmtpError::Io {
            stage: "connect",
            source,
        })?;
        let mut c = Connection {
            stream: Stream::Plain(tcp),
            buf: Vec::new(),
            caps: Capabilities::default(),
            greeting: Reply::local(220, "2.0.0", ""),
            local,
            peer: addr,
            server_name: server_name.to_string(),
            command_timeout: cfg.command_timeout,
            data_timeout: cfg.data_timeout,
        };
        let greeting = c.read_reply("greeting", c.command_timeout).await?;
        if greeting.code != 220 {
            return Err(SmtpError::Rejected {
                stage: "greeting",
                reply: greeting,
            });
        }
        c.greeting = greeting;
        c.hello(&cfg.ehlo_name).await?;
        match tls {
            TlsPolicy::Disabled => {}
            TlsPolicy::Opportunistic if !c.caps.starttls => {}
            TlsPolicy::Required if !c.caps.starttls => return Err(SmtpError::StartTlsNotOffered),
            TlsPolicy::Opportunistic | TlsPolicy::Required => {
                let r = c.command("STARTTLS", "STARTTLS").await?;
                if r.code != 220 {
                    return Err(SmtpError::Rejected {
                        stage: "STARTTLS",
                        reply: r,
                    });
                }
                c = c.upgrade().await?;
                c.hello(&cfg.ehlo_name).await?;
            }
        }
        Ok(c)
    }

    async fn hello(&mut self, name: &str) -> Result<(), SmtpError> {
        let r = self.command("EHLO", &format!("EHLO {name}")).await?;
        if r.code == 250 {
            self.caps = capabilities(&r);
            return Ok(());
        }
        let r = self.command("HELO", &format!("HELO {name}")).await?;
        if r.code != 250 {
            return Err(SmtpError::Rejected {
                stage: "HELO",
                reply: r,
            });
        }
        self.caps = Capabilities::default();
        Ok(())
    }

    async fn upgrade(self) -> Result<Connection, SmtpError> {
        let Stream::Plain(tcp) = self.stream else {
            return Err(SmtpError::Protocol {
                detail: "STARTTLS on a TLS session".into(),
            });
        };
        if !self.buf.is_empty() {
            // Bytes after the 220 would be injected plaintext (CVE-2011-0411 style).
            return Err(SmtpError::Protocol {
                detail: "data after the STARTTLS reply".into(),
            });
        }
        let name = ServerName::try_from(self.server_name.clone())
            .unwrap_or_else(|_| ServerName::try_from("invalid.invalid").expect("valid name"));
        let connector = tokio_rustls::TlsConnector::from(opportunistic_tls_config());
        let tls = tokio::time::timeout(self.command_timeout, connector.connect(name, tcp))
            .await
            .map_err(|_| SmtpError::Timeout { stage: "STARTTLS" })?
            .map_err(|e| SmtpError::Tls(e.to_string()))?;
        Ok(Connection {
            stream: Stream::Tls(Box::new(tls)),
            ..self
        })
    }

    /// Whether the session is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
    pub fn server_name(&self) -> &str {
        &self.server_name
    }
    pub fn greeting(&self) -> &Reply {
        &self.greeting
    }
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// One transaction: per recipient, `Ok(reply)` if the server accepted the message for it,
    /// `Err(reply)` if it refused (at MAIL, RCPT or after the data). Locally decided refusals
    /// (message over the advertised SIZE, non-ASCII addresses without SMTPUTF8) send nothing.
    pub async fn send(
        &mut self,
        mail_from: &str,
        rcpts: &[&str],
        message: &[u8],
    ) -> Result<Vec<Result<Reply, Reply>>, SmtpError> {
        let all = |r: Reply| rcpts.iter().map(|_| Err(r.clone())).collect::<Vec<_>>();
        let utf8 = !mail_from.is_ascii() || rcpts.iter().any(|r| !r.is_ascii());
        if utf8 && !self.caps.smtputf8 {
            return Ok(all(Reply::local(
                553,
                "5.6.7",
                "non-ASCII address and the server does not support SMTPUTF8",
            )));
        }
        if let Some(max) = self.caps.size.filter(|m| *m > 0) {
            if message.len() as u64 > max {
                return Ok(all(Reply::local(
                    552,
                    "5.3.4",
                    &format!(
                        "message of {} bytes exceeds the server's SIZE {max}",
                        message.len()
                    ),
                )));
            }
        }
        let mut mail = format!("MAIL FROM:<{mail_from}>");
        if self.caps.size.is_some() {
            mail.push_str(&format!(" SIZE={}", message.len()));
        }
        if self.caps.eight_bit && message.iter().any(|b| *b >= 0x80) {
            mail.push_str(" BODY=8BITMIME");
        }
        if utf8 {
            mail.push_str(" SMTPUTF8");
        }
        let rcpt_cmds: Vec<String> = rcpts.iter().map(|r| format!("RCPT TO:<{r}>")).collect();

        let (mail_reply, rcpt_replies) = if self.caps.pipelining {
            let mut batch = format!("{mail}\r\n");
            for c in &rcpt_cmds {
                batch.push_str(c);
                batch.push_str("\r\n");
            }
            self.write("MAIL", batch.as_bytes()).await?;
            let m = self.read_reply("MAIL", self.command_timeout).await?;
            let mut rr = Vec::new();
            for _ in rcpts {
                rr.push(self.read_reply("RCPT", self.command_timeout).await?);
            }
            (m, rr)
        } else {
            let m = self.command("MAIL", &mail).await?;
            let mut rr = Vec::new();
            if m.is_positive() {
                for c in &rcpt_cmds {
                    rr.push(self.command("RCPT", c).await?);
                }
            }
            (m, rr)
        };
        if !mail_reply.is_positive() {
            return Ok(all(mail_reply));
        }
        if !rcpt_replies.iter().any(Reply::is_positive) {
            return Ok(rcpt_replies.into_iter().map(Err).collect());
        }
        let data = self.command("DATA", "DATA").await?;
        if data.code != 354 {
            return Ok(rcpt_replies
                .into_iter()
                .map(|r| {
                    if r.is_positive() {
                        Err(data.clone())
                    } else {
                        Err(r)
                    }
                })
                .collect());
        }
        self.write("DATA", &dot_stuff(message)).await?;
        let last = self.read_reply("end of data", self.data_timeout).await?;
        Ok(rcpt_replies
            .into_iter()
            .map(|r| {
                if !r.is_positive() {
                    Err(r)
                } else if last.is_positive() {
                    Ok(last.clone())
                } else {
                    Err(last.clone())
                }
            })
            .collect())
    }

    /// RSET: end a refused transaction so the session can carry another one.
    pub async fn reset(&mut self) -> Result<(), SmtpError> {
        let r = self.command("RSET", "RSET").await?;
        if r.code == 250 {
            Ok(())
        } else {
            Err(SmtpError::Rejected {
                stage: "RSET",
                reply: r,
            })
        }
    }

    /// QUIT and close; errors are ignored.
    pub async fn quit(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.command("QUIT", "QUIT")).await;
    }

    async fn command(&mut self, stage: &'static str, line: &str) -> Result<Reply, SmtpError> {
        self.write(stage, format!("{line}\r\n").as_bytes()).await?;
        self.read_reply(stage, self.command_timeout).await
    }

    async fn write(&mut self, stage: &'static str, bytes: &[u8]) -> Result<(), SmtpError> {
        let io = async {
            match &mut self.stream {
                Stream::Plain(s) => s.write_all(bytes).await,
                Stream::Tls(s) => {
                    s.write_all(bytes).await?;
                    s.flush().await
                }
            }
        };
        match tokio::time::timeout(self.command_timeout.max(self.data_timeout), io).await {
            Ok(r) => r.map_err(|source| SmtpError::Io { stage, source }),
            Err(_) => Err(SmtpError::Timeout { stage }),
        }
    }

    async fn read_reply(
        &mut self,
        stage: &'static str,
        timeout: Duration,
    ) -> Result<Reply, SmtpError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match parse_reply(&self.buf) {
                Parsed::Done(r, n) => {
                    self.buf.drain(..n);
                    return Ok(r);
                }
                Parsed::Invalid(detail) => return Err(SmtpError::Protocol { detail }),
                Parsed::Incomplete => {}
            }
            let mut chunk = [0u8; 4096];
            let read = async {
                match &mut self.stream {
                    Stream::Plain(s) => s.read(&mut chunk).await,
                    Stream::Tls(s) => s.read(&mut chunk).await,
                }
            };
            let n = match tokio::time::timeout_at(deadline, read).await {
                Err(_) => return Err(SmtpError::Timeout { stage }),
                Ok(Err(source)) => return Err(SmtpError::Io { stage, source }),
                Ok(Ok(0)) => {
                    return Err(SmtpError::Io {
                        stage,
                        source: std::io::ErrorKind::UnexpectedEof.into(),
                    })
                }
                Ok(Ok(n)) => n,
            };
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// TLS for opportunistic STARTTLS: any certificate is accepted, but the handshake signatures
/// are still checked against the presented certificate.
fn opportunistic_tls_config() -> Arc<rustls::ClientConfig> {
    use std::sync::OnceLock;
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            Arc::new(cfg)
        })
        .clone()
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
