//! The [`Reason`] enum (Sisimai reason names) and its Customers Mail Cloud mapping.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a message was not delivered. Names and meanings follow Sisimai
/// (<https://libsisimai.org/en/reason/>).
///
/// Serialises (serde) as the lowercase Sisimai name, e.g. `"userunknown"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// SPF/DKIM/DMARC or SMTP authentication failure.
    AuthFailure,
    /// Rejected because of the sending IP's or domain's poor reputation.
    BadReputation,
    /// The sending IP/host is blocked (DNSBL, block list, ...).
    Blocked,
    /// Message content/headers are malformed or not acceptable.
    ContentError,
    /// Message exceeds a recipient-side administrative limit (e.g. per-message limit).
    ExceedLimit,
    /// Delivery time expired / gave up retrying.
    Expired,
    /// Feedback loop complaint (ARF, RFC 5965).
    Feedback,
    /// Rejected by a recipient-side filter (e.g. sender not accepted by the recipient).
    Filtered,
    /// The recipient address has moved.
    HasMoved,
    /// The recipient domain does not exist.
    HostUnknown,
    /// The recipient mailbox is full / over quota.
    MailboxFull,
    /// A mailer program (pipe, procmail, ...) failed on the receiving side.
    MailerError,
    /// The message is too big.
    MesgTooBig,
    /// DNS or network level problem (routing loop, no route to host, ...).
    NetworkError,
    /// Relaying was denied.
    NoRelaying,
    /// The receiving host does not accept mail (null MX, ...).
    NotAccept,
    /// The bounce was recognised but the reason could not be decided.
    OnHold,
    /// Rejected by a policy (DMARC-unrelated local policy, attachments, lists, ...).
    PolicyViolation,
    /// The envelope sender was rejected.
    Rejected,
    /// The sending host has no (valid) PTR record.
    RequirePtr,
    /// Security related error (TLS required, generic 5.7.x, ...).
    SecurityError,
    /// The message was detected as spam.
    SpamDetected,
    /// Sending too fast (rate limited).
    Speeding,
    /// The recipient mailbox is suspended / disabled.
    Suspend,
    /// SMTP command syntax error.
    SyntaxError,
    /// Generic error on the receiving system.
    SystemError,
    /// The receiving system's disk is full.
    SystemFull,
    /// Too many connections / recipients.
    TooManyConn,
    /// No reason could be found.
    Undefined,
    /// The recipient does not exist.
    UserUnknown,
    /// Auto-reply (out of office / vacation).
    Vacation,
    /// A virus was detected in the message.
    VirusDetected,
}

/// Error returned by [`Reason::from_str`] for an unknown name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownReason(pub String);

impl fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown bounce reason: {:?}", self.0)
    }
}

impl std::error::Error for UnknownReason {}

impl Reason {
    /// Every reason, in alphabetical order of their names.
    pub const ALL: [Reason; 32] = [
        Reason::AuthFailure,
        Reason::BadReputation,
        Reason::Blocked,
        Reason::ContentError,
        Reason::ExceedLimit,
        Reason::Expired,
        Reason::Feedback,
        Reason::Filtered,
        Reason::HasMoved,
        Reason::HostUnknown,
        Reason::MailboxFull,
        Reason::MailerError,
        Reason::MesgTooBig,
        Reason::NetworkError,
        Reason::NoRelaying,
        Reason::NotAccept,
        Reason::OnHold,
        Reason::PolicyViolation,
        Reason::Rejected,
        Reason::RequirePtr,
        Reason::SecurityError,
        Reason::SpamDetected,
        Reason::Speeding,
        Reason::Suspend,
        Reason::SyntaxError,
        Reason::SystemError,
        Reason::SystemFull,
        Reason::TooManyConn,
        Reason::Undefined,
        Reason::UserUnknown,
        Reason::Vacation,
        Reason::VirusDetected,
    ];

    /// The Sisimai name, e.g. `"userunknown"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AuthFailure => "authfailure",
            Reason::BadReputation => "badreputation",
            Reason::Blocked => "blocked",
            Reason::ContentError => "contenterror",
            Reason::ExceedLimit => "exceedlimit",
            Reason::Expired => "expired",
            Reason::Feedback => "feedback",
            Reason::Filtered => "filtered",
            Reason::HasMoved => "hasmoved",
            Reason::HostUnknown => "hostunknown",
            Reason::MailboxFull => "mailboxfull",
            Reason::MailerError => "mailererror",
            Reason::MesgTooBig => "mesgtoobig",
            Reason::NetworkError => "networkerror",
            Reason::NoRelaying => "norelaying",
            Reason::NotAccept => "notaccept",
            Reason::OnHold => "onhold",
            Reason::PolicyViolation => "policyviolation",
            Reason::Rejected => "rejected",
            Reason::RequirePtr => "requireptr",
            Reason::SecurityError => "securityerror",
            Reason::SpamDetected => "spamdetected",
            Reason::Speeding => "speeding",
            Reason::Suspend => "suspend",
            Reason::SyntaxError => "syntaxerror",
            Reason::SystemError => "systemerror",
            Reason::SystemFull => "systemfull",
            Reason::TooManyConn => "toomanyconn",
            Reason::Undefined => "undefined",
            Reason::UserUnknown => "userunknown",
            Reason::Vacation => "vacation",
            Reason::VirusDetected => "virusdetected",
        }
    }

    /// The Customers Mail Cloud bounce code for this reason (see the table in
    /// the crate documentation). Code 10 (our own suppression list) is never
    /// returned: it is assigned by the sender, not by classification.
    pub fn cmc_code(self) -> u16 {
        match self {
            Reason::HostUnknown => 1,
            Reason::UserUnknown | Reason::Suspend | Reason::HasMoved => 2,
            Reason::Expired | Reason::NetworkError => 3,
            Reason::AuthFailure
            | Reason::BadReputation
            | Reason::Blocked
            | Reason::ContentError
            | Reason::Filtered
            | Reason::NoRelaying
            | Reason::PolicyViolation
            | Reason::Rejected
            | Reason::RequirePtr
            | Reason::SecurityError
            | Reason::SpamDetected
            | Reason::Speeding
            | Reason::TooManyConn
            | Reason::VirusDetected => 4,
            Reason::MailboxFull | Reason::SystemFull => 5,
            Reason::MailerError | Reason::NotAccept | Reason::SystemError => 7,
            Reason::MesgTooBig | Reason::ExceedLimit => 8,
            Reason::SyntaxError => 9,
            Reason::Feedback => 11,
            Reason::OnHold | Reason::Undefined | Reason::Vacation => 99,
        }
    }

    /// True for reasons that say the address itself is bad and further mail
    /// to it is pointless (Sisimai's "hard bounce" set).
    pub fn is_hard(self) -> bool {
        matches!(
            self,
            Reason::HasMoved | Reason::HostUnknown | Reason::UserUnknown
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = UnknownReason;

    /// Parses a Sisimai reason name (case-insensitive, surrounding blanks ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Reason::ALL
            .iter()
            .copied()
            .find(|r| r.as_str().eq_ignore_ascii_case(t))
            .ok_or_else(|| UnknownReason(s.to_string()))
    }
}
