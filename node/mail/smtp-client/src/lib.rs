//! Outbound SMTP client for Hato (RFC 5321), written by hand on tokio and
//! rustls (aws-lc-rs provider).
//!
//! # Contract
//!
//! - **One connection is one [`Connection`].** [`Connection::connect`] opens
//!   TCP, reads the greeting, says EHLO (HELO if EHLO gets a 5xx) and does
//!   STARTTLS as the [`TlsPolicy`] says.
//! - **A connection carries several transactions.** Call
//!   [`Connection::send`] once per message and [`Connection::reset`] (RSET)
//!   between them; `send` also says RSET itself first when an earlier
//!   transaction was left open. Finish with [`Connection::quit`].
//! - **Results are per recipient.** `send` returns, for each recipient in
//!   order, `Ok(reply)` when the server took the message for it (the reply to
//!   the end of data) or `Err(reply)` when it was refused (by RCPT, MAIL,
//!   DATA or the end of data). A few refusals are decided without sending
//!   and carry a synthetic reply (see [`Connection::send`]). [`Reply`] tells
//!   transient (4xx) from permanent (5xx).
//! - **Errors end the connection.** An [`SmtpError`] means the connection
//!   could not be set up, or that its state is unknown (timeout, I/O, bad
//!   reply); later calls on it fail at once, so drop it. Only a 5xx
//!   [`SmtpError::Rejected`] is permanent. An end-of-data timeout may mean
//!   the server did take the message: retrying can duplicate it.
//! - **No retries inside.** Nothing is retried, no other address or policy
//!   is tried (not even plaintext after a failed STARTTLS): the caller
//!   decides what, when and where.
//!
//! # Message form
//!
//! The message is the full RFC 5322 message in CRLF form. It is dot-stuffed
//! while it is streamed, chunk by chunk, and a final CRLF is added when
//! missing. A bare LF or bare CR is sent as CRLF, so that the data holds no
//! line break a lenient server could read differently ("SMTP smuggling");
//! this changes nothing for a message in CRLF form. `SIZE=n` is added when
//! the server offers SIZE, `BODY=8BITMIME` when the message has bytes of
//! 0x80 or more and the server offers 8BITMIME (without it the message is
//! sent anyway), `SMTPUTF8` when an address is not ASCII.
//!
//! # TLS
//!
//! Certificates are never verified: STARTTLS here is opportunistic
//! encryption (RFC 7435) against passive eavesdropping, whether it is
//! [`TlsPolicy::Opportunistic`] or [`TlsPolicy::Required`].
//!
//! # Example
//!
//! ```no_run
//! use hato_smtp_client::{ClientConfig, Connection, TlsPolicy};
//!
//! # async fn run() -> Result<(), hato_smtp_client::SmtpError> {
//! let cfg = ClientConfig::new("out1.hato.example");
//! let addr = "192.0.2.25:25".parse().unwrap();
//! let mut conn = Connection::connect(&cfg, addr, "mx.example.org", TlsPolicy::Opportunistic).await?;
//! let message = b"From: a@hato.example\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nhello\r\n";
//! for (rcpt, outcome) in ["b@example.org"].iter().zip(conn.send("a@hato.example", &["b@example.org"], message).await?) {
//!     match outcome {
//!         Ok(reply) => println!("{rcpt}: delivered, {reply}"),
//!         Err(reply) if reply.is_transient() => println!("{rcpt}: retry later, {reply}"),
//!         Err(reply) => println!("{rcpt}: bounce, {reply}"),
//!     }
//! }
//! conn.quit().await;
//! # Ok(())
//! # }
//! ```

mod client;
mod data;
mod ehlo;
mod error;
mod reply;

pub use client::{ClientConfig, Connection, TlsPolicy};
pub use error::SmtpError;
pub use reply::Reply;
