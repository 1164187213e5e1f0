//! Errors that end a connection attempt or leave a connection unusable.

use std::io;
use std::net::SocketAddr;

use crate::reply::Reply;

/// Why a connection could not be set up or used. Refusals of single
/// recipients are not errors: [`crate::Connection::send`] returns them as
/// per-recipient results.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// The TCP connection could not be opened (refused, unreachable, or the
    /// source address could not be bound).
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// The address being connected to.
        addr: SocketAddr,
        /// The underlying error.
        source: io::Error,
    },
    /// The server did not answer (or the socket did not take our bytes) in
    /// time; `stage` names the step, e.g. `"greeting"` or `"end of data"`.
    #[error("timed out at {stage}")]
    Timeout {
        /// The step that timed out.
        stage: &'static str,
    },
    /// Reading or writing failed, or the server closed the connection.
    #[error("i/o error at {stage}: {source}")]
    Io {
        /// The step that failed.
        stage: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// The TLS handshake after STARTTLS failed (or the server name is not
    /// usable for SNI).
    #[error("TLS handshake failed: {source}")]
    Tls {
        /// The underlying error (wrapping the `rustls::Error` if any).
        source: io::Error,
    },
    /// [`crate::TlsPolicy::Required`] but the server did not offer STARTTLS.
    #[error("server does not offer STARTTLS but TLS is required")]
    StartTlsNotOffered,
    /// The server sent something that is not a well-formed reply (including
    /// one over 64 KiB or 100 lines), or sent bytes it should not have.
    #[error("protocol error: {detail}")]
    Protocol {
        /// What was wrong.
        detail: String,
    },
    /// The server refused a step outside any transaction: the greeting,
    /// EHLO/HELO, STARTTLS or RSET.
    #[error("{stage} refused: {reply}")]
    Rejected {
        /// The refused step.
        stage: &'static str,
        /// The server's reply.
        reply: Reply,
    },
}

impl SmtpError {
    /// Whether trying again later is pointless: only a 5xx refusal is.
    /// Connect errors, timeouts, I/O, TLS and protocol errors are transient.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SmtpError::Rejected { reply, .. } if reply.is_permanent())
    }

    /// Whether the error happened before the server could have taken a message: while
    /// resetting or at MAIL FROM, the first exchange of a transaction. A connection that
    /// sat idle and fails there was most likely closed by the server meanwhile, and the
    /// transaction can be tried again on a new connection without risk of a duplicate.
    pub fn before_transaction(&self) -> bool {
        matches!(
            self,
            SmtpError::Io { stage, .. } | SmtpError::Timeout { stage }
                if matches!(*stage, "MAIL FROM" | "RSET" | "reuse")
        ) || matches!(self, SmtpError::Rejected { stage: "RSET", .. })
    }

    /// The server's reply, for [`SmtpError::Rejected`].
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            SmtpError::Rejected { reply, .. } => Some(reply),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_5xx_rejections_are_permanent() {
        let rejected = |code| SmtpError::Rejected {
            stage: "greeting",
            reply: Reply {
                code,
                enhanced: None,
                text: String::new(),
            },
        };
        assert!(rejected(554).is_permanent());
        assert!(!rejected(421).is_permanent());
        assert_eq!(rejected(554).reply().map(|r| r.code), Some(554));
        assert!(!SmtpError::Timeout { stage: "greeting" }.is_permanent());
        assert!(!SmtpError::StartTlsNotOffered.is_permanent());
        assert!(SmtpError::StartTlsNotOffered.reply().is_none());
    }
}
