//! One SMTP session: the ESMTP state machine over a plain or TLS connection.
//!
//! Durability contract (the heart of Hato): `finish_message` answers `250` only after
//! `ClusterHandle::write(Command::Enqueue)` returned `Ok`, i.e. after a Raft quorum committed
//! the message and the leader applied it. Any failure to commit answers `451 4.3.0` and the
//! message stays with the client. A connection that ends before the final dot (or the last
//! BDAT chunk) queues nothing.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine;
use hato_storage::command::{InboundMail, NewMessage};
use hato_storage::{Command, CommandResult};
use smtp_proto::request::receiver::{BdatReceiver, DataReceiver, RequestReceiver};
use smtp_proto::{Error as ProtoError, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::bounce;
use super::message::{self, Trace};
use super::{Inbound, ListenerConfig, ListenerMode, TlsMode};
use crate::outbound::verp;
use crate::settings;

/// A client connection, before or after TLS.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Closed,
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::Closed => Poll::Ready(Ok(())),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Closed => Poll::Ready(Err(std::io::ErrorKind::NotConnected.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Conn::Closed => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::Closed => Poll::Ready(Ok(())),
        }
    }
}

/// What the next input bytes are.
enum Input {
    Command,
    Data(DataReceiver),
    Bdat(BdatReceiver),
    /// A line answering an AUTH challenge.
    AuthLine(AuthStep),
}

#[derive(Clone)]
enum AuthStep {
    Plain,
    LoginUser,
    LoginPass(String),
}

/// The envelope and content of the message being received.
#[derive(Default)]
struct Transaction {
    mail_from: Option<String>,
    recipients: Vec<String>,
    /// Recipients on the bounce domain: reports about mail we sent, not mail to relay.
    bounces: Vec<bounce::VerpTarget>,
    /// Recipients matching an inbound webhook rule: (endpoint, filter, address).
    inbound: Vec<(String, String, String)>,
    body: Vec<u8>,
    too_big: bool,
    bdat: bool,
    /// A BDAT chunk arrived while the transaction could not accept it: swallow until LAST.
    bdat_rejected: bool,
}

/// What a handled command asks the read loop to do.
enum Next {
    Continue,
    Close,
    StartTls,
}

pub struct Session {
    inb: Arc<Inbound>,
    cfg: Arc<ListenerConfig>,
    conn: Conn,
    client: IpAddr,
    pending: Vec<u8>,
    rx: RequestReceiver,
    input: Input,
    line: Vec<u8>,
    out: Vec<u8>,
    helo: Option<String>,
    esmtp: bool,
    tls: bool,
    auth_user: Option<String>,
    tx: Transaction,
    bad: u32,
}

impl Session {
    pub fn new(
        inb: Arc<Inbound>,
        cfg: Arc<ListenerConfig>,
        conn: Conn,
        client: IpAddr,
        pending: Vec<u8>,
    ) -> Self {
        let tls = matches!(conn, Conn::Tls(_));
        Self {
            inb,
            cfg,
            conn,
            client,
            pending,
            rx: RequestReceiver::default(),
            input: Input::Command,
            line: Vec::new(),
            out: Vec::new(),
            helo: None,
            esmtp: false,
            tls,
            auth_user: None,
            tx: Transaction::default(),
            bad: 0,
        }
    }

    fn reply(&mut self, code: u16, esc: &str, text: &str) {
        let lines: Vec<&str> = text.split('\n').collect();
        for (i, l) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            if esc.is_empty() {
                self.out
                    .extend_from_slice(format!("{code}{sep}{l}\r\n").as_bytes());
            } else {
                self.out
                    .extend_from_slice(format!("{code}{sep}{esc} {l}\r\n").as_bytes());
            }
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            let out = std::mem::take(&mut self.out);
            self.conn.write_all(&out).await?;
            self.conn.flush().await?;
        }
        Ok(())
    }

    pub async fn run(mut self) -> std::io::Result<()> {
        let host = self.inb.hostname.clone();
        self.reply(220, "", &format!("{host} ESMTP Hato"));
        self.flush().await?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut first = std::mem::take(&mut self.pending);
        loop {
            // Input read ahead of the session (by the PROXY header parser) first, then reads
            // straight into `buf`: the bytes are processed where they were read, not copied.
            let pending = std::mem::take(&mut first);
            let data: &[u8] = if !pending.is_empty() {
                &pending
            } else {
                let limit = match self.input {
                    Input::Data(_) | Input::Bdat(_) => self.inb.limits.data_timeout,
                    _ => self.inb.limits.command_timeout,
                };
                match tokio::time::timeout(limit, self.conn.read(&mut buf)).await {
                    Err(_) => {
                        self.reply(421, "4.4.2", &format!("{host} Timeout, closing connection"));
                        let _ = self.flush().await;
                        return Ok(());
                    }
                    // Closed by the client: whatever was in flight is dropped, nothing queued.
                    Ok(Ok(0)) => return Ok(()),
                    Ok(Ok(n)) => &buf[..n],
                    Ok(Err(e)) => return Err(e),
                }
            };
            match self.ingest(data).await {
                Next::Continue => self.flush().await?,
                Next::Close => {
                    let _ = self.flush().await;
                    let _ = self.conn.shutdown().await;
                    return Ok(());
                }
                Next::StartTls => {
                    self.flush().await?;
                    // Anything pipelined after STARTTLS was sent in clear text: discard it
                    // (STARTTLS command injection).
                    self.rx = RequestReceiver::default();
                    let Conn::Plain(tcp) = std::mem::replace(&mut self.conn, Conn::Closed) else {
                        return Ok(());
                    };
                    let Some(acceptor) = self.inb.tls.acceptor() else {
                        return Ok(());
                    };
                    match tokio::time::timeout(
                        self.inb.limits.command_timeout,
                        acceptor.accept(tcp),
                    )
                    .await
                    {
                        Ok(Ok(s)) => self.conn = Conn::Tls(Box::new(s)),
                        _ => return Ok(()),
                    }
                    self.tls = true;
                    self.helo = None;
                    self.auth_user = None;
                    self.tx = Transaction::default();
                }
            }
        }
    }

    /// Process one chunk of input; pipelined commands are answered in order.
    async fn ingest(&mut self, data: &[u8]) -> Next {
        let mut it = data.iter();
        loop {
            match std::mem::replace(&mut self.input, Input::Command) {
                Input::Data(mut dr) => {
                    let done = dr.ingest(&mut it, &mut self.tx.body);
                    self.check_size();
                    if !done {
                        self.input = Input::Data(dr);
                        return Next::Continue;
                    }
                    self.finish_message().await;
                }
                Input::Bdat(mut br) => {
                    let done = br.ingest(&mut it, &mut self.tx.body);
                    let last = br.is_last;
                    self.check_size();
                    if !done {
                        self.input = Input::Bdat(br);
                        return Next::Continue;
                    }
                    if self.tx.bdat_rejected {
                        self.tx.body.clear();
                        if last {
                            self.tx = Transaction::default();
                        }
                    } else if last {
                        self.finish_message().await;
                    } else {
                        let n = self.tx.body.len();
                        self.reply(250, "2.0.0", &format!("{n} octets received"));
                    }
                }
                Input::AuthLine(step) => {
                    let Some(line) = self.take_line(&mut it) else {
                        self.input = Input::AuthLine(step);
                        return Next::Continue;
                    };
                    if let Next::Close = self.auth_continue(step, line).await {
                        return Next::Close;
                    }
                }
                Input::Command => {
                    if it.len() == 0 {
                        return Next::Continue;
                    }
                    let req = match self.rx.ingest(&mut it) {
                        Ok(r) => r.into_owned(),
                        Err(ProtoError::NeedsMoreData { .. }) => return Next::Continue,
                        Err(e) => {
                            let (code, esc, text) = proto_error(&e);
                            if let Next::Close = self.bad_command(code, esc, &text) {
                                return Next::Close;
                            }
                            continue;
                        }
                    };
                    match self.command(req).await {
                        Next::Continue => {}
                        other => return other,
                    }
                }
            }
        }
    }

    fn check_size(&mut self) {
        if self.tx.body.len() > self.inb.limits.max_message_bytes {
            self.tx.too_big = true;
            self.tx.body.clear();
        }
    }

    fn take_line(&mut self, it: &mut std::slice::Iter<'_, u8>) -> Option<String> {
        for &b in it.by_ref() {
            if b == b'\n' {
                let mut l = std::mem::take(&mut self.line);
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
                return Some(String::from_utf8_lossy(&l).into_owned());
            }
            if self.line.len() < 16 * 1024 {
                self.line.push(b);
            }
        }
        None
    }

    fn bad_command(&mut self, code: u16, esc: &str, text: &str) -> Next {
        self.bad += 1;
        if self.bad >= self.inb.limits.max_bad_commands {
            self.reply(421, "4.7.0", "Too many errors, closing connection");
            return Next::Close;
        }
        self.reply(code, esc, text);
        Next::Continue
    }

    fn authorized_to_relay(&self) -> bool {
        if self.auth_user.is_some() {
            return true;
        }
        if self.cfg.mode == ListenerMode::Submission {
            return false;
        }
        settings::allowed_ips(self.inb.cluster.reader())
            .iter()
            .any(|n| n.contains(self.client))
    }

    fn auth_offered(&self) -> bool {
        self.tls || !self.inb.require_tls_for_auth
    }

    async fn command(&mut self, req: Request<String>) -> Next {
        use smtp_proto::*;
        match req {
            Request::Ehlo { host } | Request::Helo { host } | Request::Lhlo { host }
                if host.is_empty() =>
            {
                self.bad_command(501, "5.5.4", "Syntax: EHLO hostname")
            }
            Request::Ehlo { host } => {
                self.helo = Some(host);
                self.esmtp = true;
                self.tx = Transaction::default();
                let mut lines = vec![format!("{} Hello [{}]", self.inb.hostname, self.client)];
                lines.push("PIPELINING".into());
                lines.push(format!("SIZE {}", self.inb.limits.max_message_bytes));
                lines.push("8BITMIME".into());
                lines.push("ENHANCEDSTATUSCODES".into());
                lines.push("SMTPUTF8".into());
                lines.push("CHUNKING".into());
                if !self.tls
                    && self.cfg.tls == TlsMode::Starttls
                    && self.inb.tls.acceptor().is_some()
                {
                    lines.push("STARTTLS".into());
                }
                if self.auth_offered() {
                    lines.push("AUTH PLAIN LOGIN".into());
                }
                let text = lines.join("\n");
                self.reply(250, "", &text);
                Next::Continue
            }
            Request::Helo { host } => {
                self.helo = Some(host);
                self.esmtp = false;
                self.tx = Transaction::default();
                let text = format!("{} Hello [{}]", self.inb.hostname, self.client);
                self.reply(250, "", &text);
                Next::Continue
            }
            Request::Lhlo { .. } => self.bad_command(500, "5.5.1", "LHLO is for LMTP; use EHLO"),
            Request::StartTls => {
                if self.tls {
                    return self.bad_command(503, "5.5.1", "TLS already active");
                }
                if self.cfg.tls != TlsMode::Starttls || self.inb.tls.acceptor().is_none() {
                    return self.bad_command(502, "5.5.1", "STARTTLS not available");
                }
                self.reply(220, "2.0.0", "Ready to start TLS");
                Next::StartTls
            }
            Request::Auth {
                mechanism,
                initial_response,
            } => {
                if self.helo.is_none() {
                    return self.bad_command(503, "5.5.1", "Send EHLO first");
                }
                if self.auth_user.is_some() {
                    return self.bad_command(503, "5.5.1", "Already authenticated");
                }
                if self.tx.mail_from.is_some() {
                    return self.bad_command(
                        503,
                        "5.5.1",
                        "AUTH not allowed during a mail transaction",
                    );
                }
                if !self.auth_offered() {
                    return self.bad_command(
                        538,
                        "5.7.11",
                        "Encryption required: issue STARTTLS first",
                    );
                }
                let initial = initial_response.trim().to_string();
                if mechanism & AUTH_PLAIN != 0 {
                    if initial.is_empty() {
                        self.reply(334, "", "");
                        self.input = Input::AuthLine(AuthStep::Plain);
                        Next::Continue
                    } else {
                        self.auth_continue(AuthStep::Plain, initial).await
                    }
                } else if mechanism & AUTH_LOGIN != 0 {
                    if initial.is_empty() {
                        self.reply(334, "", "VXNlcm5hbWU6");
                        self.input = Input::AuthLine(AuthStep::LoginUser);
                        Next::Continue
                    } else {
                        self.auth_continue(AuthStep::LoginUser, initial).await
                    }
                } else {
                    self.bad_command(
                        504,
                        "5.5.4",
                        "Unrecognized authentication type; use PLAIN or LOGIN",
                    )
                }
            }
            Request::Mail { from } => {
                if self.helo.is_none() {
                    return self.bad_command(503, "5.5.1", "Send EHLO/HELO first");
                }
                if self.tx.mail_from.is_some() {
                    return self.bad_command(503, "5.5.1", "Sender already specified");
                }
                if self.cfg.mode == ListenerMode::Submission && self.auth_user.is_none() {
                    return self.bad_command(530, "5.7.0", "Authentication required");
                }
                if from.size > self.inb.limits.max_message_bytes {
                    self.reply(
                        552,
                        "5.3.4",
                        "Message size exceeds fixed maximum message size",
                    );
                    return Next::Continue;
                }
                if !from.address.is_ascii() && from.flags & MAIL_SMTPUTF8 == 0 {
                    self.reply(
                        553,
                        "5.6.7",
                        "Non-ASCII address requires the SMTPUTF8 parameter",
                    );
                    return Next::Continue;
                }
                self.tx = Transaction {
                    mail_from: Some(from.address),
                    ..Default::default()
                };
                self.reply(250, "2.1.0", "Sender OK");
                Next::Continue
            }
            Request::Rcpt { to } => {
                if self.tx.mail_from.is_none() {
                    return self.bad_command(503, "5.5.1", "Need MAIL command first");
                }
                // Bounce mail for our VERP return paths is accepted from anyone (we are the
                // bounce domain's MX); everything else needs relay permission.
                if let Some(domain) = settings::bounce_domain(self.inb.cluster.reader()) {
                    let on_bounce_domain = to
                        .address
                        .rsplit_once('@')
                        .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&domain));
                    if on_bounce_domain {
                        return match verp::decode(&to.address, &domain) {
                            Some((id, rcpt)) => {
                                self.tx.bounces.push(bounce::VerpTarget { id, rcpt });
                                self.reply(250, "2.1.5", "Recipient OK");
                                Next::Continue
                            }
                            None => {
                                let text = format!("<{}>: no such bounce address", to.address);
                                self.bad_command(550, "5.1.1", &text)
                            }
                        };
                    }
                }
                // Mail for an inbound webhook rule is accepted from anyone, like an MX.
                let rule = crate::webhook::endpoints(&self.inb.cluster)
                    .into_iter()
                    .find_map(|ep| {
                        let r = ep.inbound.iter().find(|r| r.applies_to(&to.address))?;
                        Some((ep.name.clone(), r.filter.clone()))
                    });
                if let Some((endpoint, filter)) = rule {
                    self.tx.inbound.push((endpoint, filter, to.address));
                    self.reply(250, "2.1.5", "Recipient OK");
                    return Next::Continue;
                }
                if !self.authorized_to_relay() {
                    let text = format!("<{}>: Relay access denied", to.address);
                    return self.bad_command(554, "5.7.1", &text);
                }
                let addr = to.address;
                let valid = match addr.rsplit_once('@') {
                    Some((l, d)) => {
                        !l.is_empty() && !d.is_empty() && !addr.contains(char::is_whitespace)
                    }
                    None => false,
                };
                if !valid {
                    return self.bad_command(501, "5.1.3", "Bad recipient address syntax");
                }
                if self.tx.recipients.len() >= self.inb.limits.max_recipients {
                    self.reply(452, "4.5.3", "Too many recipients");
                    return Next::Continue;
                }
                self.tx.recipients.push(addr);
                self.reply(250, "2.1.5", "Recipient OK");
                Next::Continue
            }
            Request::Data => {
                if self.tx.mail_from.is_none() {
                    return self.bad_command(503, "5.5.1", "Need MAIL command first");
                }
                if self.tx.recipients.is_empty()
                    && self.tx.bounces.is_empty()
                    && self.tx.inbound.is_empty()
                {
                    return self.bad_command(554, "5.5.1", "No valid recipients");
                }
                if self.tx.bdat {
                    return self.bad_command(503, "5.5.1", "DATA not allowed after BDAT");
                }
                self.reply(354, "", "End data with <CR><LF>.<CR><LF>");
                self.input = Input::Data(DataReceiver::new());
                Next::Continue
            }
            Request::Bdat {
                chunk_size,
                is_last,
            } => {
                // The chunk's bytes follow the command whatever we answer, so always read
                // them; a refused chunk is swallowed.
                self.input = Input::Bdat(BdatReceiver::new(chunk_size, is_last));
                let refuse = if self.tx.mail_from.is_none() {
                    Some((503, "5.5.1", "Need MAIL command first"))
                } else if self.tx.recipients.is_empty()
                    && self.tx.bounces.is_empty()
                    && self.tx.inbound.is_empty()
                {
                    Some((554, "5.5.1", "No valid recipients"))
                } else {
                    None
                };
                if let Some((code, esc, text)) = refuse {
                    self.tx.bdat_rejected = true;
                    return self.bad_command(code, esc, text);
                }
                self.tx.bdat = true;
                Next::Continue
            }
            Request::Rset => {
                self.tx = Transaction::default();
                self.reply(250, "2.0.0", "Reset OK");
                Next::Continue
            }
            Request::Noop { .. } => {
                self.reply(250, "2.0.0", "OK");
                Next::Continue
            }
            Request::Quit => {
                self.reply(221, "2.0.0", "Bye");
                Next::Close
            }
            Request::Vrfy { .. } => {
                self.reply(
                    252,
                    "2.5.0",
                    "Cannot VRFY user, but will accept message and attempt delivery",
                );
                Next::Continue
            }
            Request::Help { .. } => {
                self.reply(214, "2.0.0", "See RFC 5321");
                Next::Continue
            }
            Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.bad_command(502, "5.5.1", "Command not implemented"),
        }
    }

    async fn auth_continue(&mut self, step: AuthStep, line: String) -> Next {
        if line.trim() == "*" {
            return self.bad_command(501, "5.0.0", "Authentication cancelled");
        }
        let decoded = match base64::engine::general_purpose::STANDARD.decode(line.trim()) {
            Ok(d) => d,
            Err(_) => return self.bad_command(501, "5.5.2", "Invalid base64 data"),
        };
        let (user, pass) = match step {
            AuthStep::Plain => {
                let parts: Vec<&[u8]> = decoded.split(|&b| b == 0).collect();
                if parts.len() != 3 {
                    return self.bad_command(501, "5.5.2", "Malformed PLAIN response");
                }
                (
                    String::from_utf8_lossy(parts[1]).into_owned(),
                    String::from_utf8_lossy(parts[2]).into_owned(),
                )
            }
            AuthStep::LoginUser => {
                self.reply(334, "", "UGFzc3dvcmQ6");
                self.input = Input::AuthLine(AuthStep::LoginPass(
                    String::from_utf8_lossy(&decoded).into_owned(),
                ));
                return Next::Continue;
            }
            AuthStep::LoginPass(user) => (user, String::from_utf8_lossy(&decoded).into_owned()),
        };
        let reader = self.inb.cluster.reader().clone();
        let u = user.clone();
        let ok =
            tokio::task::spawn_blocking(move || settings::check_smtp_login(&reader, &u, &pass))
                .await
                .unwrap_or(false);
        if ok {
            self.auth_user = Some(user);
            self.reply(235, "2.7.0", "Authentication successful");
            Next::Continue
        } else {
            tracing::info!(client = %self.client, user = %user, "SMTP authentication failed");
            self.bad_command(535, "5.7.8", "Authentication credentials invalid")
        }
    }

    /// The end of DATA or the last BDAT chunk: validate, replicate, answer.
    async fn finish_message(&mut self) {
        let tx = std::mem::take(&mut self.tx);
        if tx.too_big {
            self.reply(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            );
            return;
        }
        let longest = message::longest_line(&tx.body);
        if longest > self.inb.limits.max_line_length {
            let text = format!(
                "Message has a line of {longest} characters; the limit is {}",
                self.inb.limits.max_line_length
            );
            self.reply(554, "5.6.0", &text);
            return;
        }
        let (id, received_ms) = self.inb.next_id();
        if !tx.bounces.is_empty() {
            let reports = bounce::reports(&tx.body, &tx.bounces, received_ms);
            for r in reports {
                let (msg, rcpt) = (r.id.clone(), r.rcpt);
                if let Err(e) = self
                    .inb
                    .cluster
                    .write(Command::RecordBounce(Box::new(r)))
                    .await
                {
                    tracing::warn!(%msg, rcpt, error = %e, "bounce not recorded");
                    self.reply(
                        451,
                        "4.3.0",
                        "Temporary failure: bounce not recorded, try again later",
                    );
                    return;
                }
                tracing::info!(%msg, rcpt, "bounce recorded");
            }
            if tx.recipients.is_empty() && tx.inbound.is_empty() {
                self.reply(250, "2.0.0", &format!("Ok: bounce processed as {id}"));
                return;
            }
        }
        for (n, (endpoint, filter, to)) in tx.inbound.iter().enumerate() {
            let mail = InboundMail {
                id: format!("{id}i{n}"),
                at_ms: received_ms,
                endpoint: endpoint.clone(),
                filter: filter.clone(),
                envelope_from: tx.mail_from.clone().unwrap_or_default(),
                envelope_to: to.clone(),
                raw: tx.body.clone(),
            };
            if let Err(e) = self
                .inb
                .cluster
                .write(Command::Inbound(Box::new(mail)))
                .await
            {
                tracing::warn!(%id, error = %e, "inbound mail not recorded");
                self.reply(
                    451,
                    "4.3.0",
                    "Temporary failure: message not replicated, try again later",
                );
                return;
            }
        }
        if tx.recipients.is_empty() {
            self.reply(250, "2.0.0", &format!("Ok: queued as {id}"));
            return;
        }
        let facts = message::facts(&tx.body);
        let protocol = match (self.esmtp, self.tls, self.auth_user.is_some()) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, true, true) => "ESMTPSA",
        };
        let client_ip = self.client.to_string();
        let date = chrono::Utc::now().to_rfc2822();
        let helo = self.helo.clone().unwrap_or_default();
        let body = message::stamp(
            tx.body,
            &Trace {
                helo: &helo,
                client_ip: &client_ip,
                hostname: &self.inb.hostname,
                protocol,
                id: &id,
                single_recipient: (tx.recipients.len() == 1).then(|| tx.recipients[0].as_str()),
                date: &date,
            },
            &facts,
        );
        let body = crate::signing::sign(self.inb.cluster.reader(), body);
        let msg = NewMessage {
            id: id.clone(),
            received_ms,
            via: "smtp".into(),
            source_ip: client_ip,
            auth_user: self.auth_user.clone(),
            api_data: facts.api_data,
            mail_from: tx.mail_from.unwrap_or_default(),
            recipients: tx.recipients,
            subject: facts.subject,
            message_id: facts.message_id,
            body: body.into(),
        };
        match self
            .inb
            .cluster
            .write(Command::Enqueue(Box::new(msg)))
            .await
        {
            Ok(CommandResult::Enqueued {
                queued, blocked, ..
            }) => {
                tracing::debug!(%id, queued, blocked, "message accepted");
                self.reply(250, "2.0.0", &format!("Ok: queued as {id}"));
            }
            Ok(other) => {
                tracing::error!(%id, ?other, "unexpected enqueue result");
                self.reply(451, "4.3.0", "Temporary failure, try again later");
            }
            Err(e) => {
                tracing::warn!(%id, error = %e, "enqueue not committed");
                self.reply(
                    451,
                    "4.3.0",
                    "Temporary failure: message not replicated, try again later",
                );
            }
        }
    }
}

fn proto_error(e: &ProtoError) -> (u16, &'static str, String) {
    match e {
        ProtoError::UnknownCommand => (500, "5.5.1", "Unknown command".into()),
        ProtoError::InvalidSenderAddress => (501, "5.1.7", "Bad sender address syntax".into()),
        ProtoError::InvalidRecipientAddress => {
            (501, "5.1.3", "Bad recipient address syntax".into())
        }
        ProtoError::SyntaxError { syntax } => (501, "5.5.4", format!("Syntax: {syntax}")),
        ProtoError::InvalidParameter { param } => {
            (501, "5.5.4", format!("Invalid parameter {param}"))
        }
        ProtoError::UnsupportedParameter { param } => {
            (555, "5.5.4", format!("Unsupported parameter {param}"))
        }
        ProtoError::ResponseTooLong => (500, "5.5.2", "Line too long".into()),
        ProtoError::NeedsMoreData { .. } | ProtoError::InvalidResponse { .. } => {
            (500, "5.5.2", "Syntax error".into())
        }
    }
}
