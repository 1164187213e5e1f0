//! # hato-bounce
//!
//! Tells **why** a message was not delivered, for Hato's delivery appliance.
//! Reason names and semantics follow [Sisimai](https://libsisimai.org/); each
//! reason maps to a Customers Mail Cloud (CMC) bounce code.
//!
//! Two entry points:
//!
//! * [`classify_reply`] — classify a synchronous SMTP reply (basic code,
//!   optional RFC 3463 enhanced status, reply text).
//! * [`parse_bounce`] — parse a bounce message (RFC 3464 DSN, RFC 5965 ARF,
//!   auto-replies, and the plain-text formats of Postfix, Sendmail, Exim,
//!   qmail, Exchange/Office 365, Gmail, Yahoo, Amazon SES and the Japanese
//!   carriers docomo, au/KDDI and SoftBank) into [`BouncedRecipient`]s.
//!   Complaints (ARF, non-ARF provider complaints, mailto: unsubscribe
//!   requests) yield [`Reason::Feedback`]; auto-replies yield
//!   [`Reason::Vacation`] for the auto-replying address.
//!
//! For VERP, [`BouncedRecipient::bounce_envelope_to`] holds the address the
//! bounce was delivered to (`Delivered-To`, `X-Original-To`, `Envelope-To`,
//! else `To`, e.g. `bounce+<token>@bounce.example.com`) and
//! [`BouncedRecipient::original_return_path`] the `Return-Path` of the
//! returned original message when the bounce includes it.
//!
//! ## Contract
//!
//! * Pure: no I/O, no sockets, no filesystem, no global state, no `unsafe`.
//! * Never panics on any input (arbitrary bytes, truncated or malformed
//!   MIME); unparseable input yields an empty `Vec` / [`Reason::Undefined`].
//! * Accepts CRLF and LF, RFC 2047 encoded-words, quoted-printable and
//!   base64 bodies; bodies in ISO-2022-JP, Shift_JIS, EUC-JP and any other
//!   charset known to `encoding_rs` are decoded to UTF-8.
//! * Precedence: provider phrases in the text win over ambiguous enhanced
//!   codes (`X.0.0`, `X.7.1`, `5.5.0`, ...). Reputation, block-list and
//!   rate-limit phrases are checked before any "unknown user" phrase, so a
//!   reply such as Gmail's `550-5.7.1 ... low reputation ...` or Yahoo's
//!   `421 4.7.0 [TSS04] ...` is **never** [`Reason::UserUnknown`]. A
//!   specific enhanced code (`5.1.1`, `5.2.2`, `5.3.4`, ...) only overrides
//!   generic text (time-outs, "system error", "try again later").
//! * `permanent` is `true` for 5xx / class-5 failures and for DSN
//!   `Action: failed` (including expired 4.x.x deliveries the MTA gave up on).
//! * In [`parse_bounce`], an "unknown user" answer that the remote server
//!   gave only after `DATA` (and without an `X.1.1` status) is reported as
//!   [`Reason::Filtered`], as Sisimai does; [`classify_reply`] has no command
//!   context and assumes the reply answered `RCPT TO`.
//! * Code 10 (blocked address) is never produced: it marks Hato's own
//!   suppression list. Code 6 (forward error) is not produced either:
//!   Sisimai has no forwarding reason; forwarding loops are `networkerror`.
//!
//! ## Reason → CMC bounce code
//!
//! | Reason | CMC | CMC meaning | Note |
//! |---|---|---|---|
//! | `hostunknown` | 1 | unknown host | |
//! | `userunknown` | 2 | unknown user | |
//! | `hasmoved` | 2 | unknown user | address no longer valid (551 / X.1.6) |
//! | `suspend` | 2 | unknown user | mailbox disabled; stop sending like an unknown user |
//! | `expired` | 3 | retransmission timeout | |
//! | `networkerror` | 3 | retransmission timeout | DNS/routing/connection failures |
//! | `authfailure` | 4 | rejection | SPF/DKIM/DMARC |
//! | `badreputation` | 4 | rejection | |
//! | `blocked` | 4 | rejection | IP/host on a block list |
//! | `contenterror` | 4 | rejection | |
//! | `filtered` | 4 | rejection | recipient-side filter |
//! | `norelaying` | 4 | rejection | |
//! | `policyviolation` | 4 | rejection | |
//! | `rejected` | 4 | rejection | envelope sender refused |
//! | `requireptr` | 4 | rejection | |
//! | `securityerror` | 4 | rejection | |
//! | `spamdetected` | 4 | rejection | |
//! | `speeding` | 4 | rejection | rate limited |
//! | `toomanyconn` | 4 | rejection | |
//! | `virusdetected` | 4 | rejection | |
//! | `mailboxfull` | 5 | overcapacity | |
//! | `systemfull` | 5 | overcapacity | receiving system out of storage |
//! | — | 6 | forward error | not produced |
//! | `mailererror` | 7 | receiving server error | |
//! | `notaccept` | 7 | receiving server error | null MX, host accepts no mail |
//! | `systemerror` | 7 | receiving server error | |
//! | `mesgtoobig` | 8 | oversized | |
//! | `exceedlimit` | 8 | oversized | X.2.3: message exceeds the recipient's size limit (Sisimai's meaning) |
//! | `syntaxerror` | 9 | address format error | SMTP syntax errors (5.5.x, 500–504) |
//! | — | 10 | blocked address | Hato's own suppression; not produced |
//! | `feedback` | 11 | unsubscribed | ARF complaint or mailto: unsubscribe request: treat as opt-out |
//! | `onhold` | 99 | others | bounce recognised, reason unknown |
//! | `undefined` | 99 | others | nothing recognised |
//! | `vacation` | 99 | others | auto-reply, not a failure |
//!
//! ## Example
//!
//! ```
//! use hato_bounce::{classify_reply, Reason};
//! let c = classify_reply(550, Some("5.7.1"),
//!     "Our system has detected that this message is likely suspicious due to \
//!      the very low reputation of the sending IP address.");
//! assert_eq!(c.reason, Reason::BadReputation);
//! assert!(c.permanent);
//! assert_eq!(c.reason.cmc_code(), 4);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod classify;
mod mime;
mod parse;
mod phrases;
mod reason;
mod status;

pub use classify::{classify_reply, Classification};
pub use parse::{parse_bounce, BouncedRecipient};
pub use reason::{Reason, UnknownReason};
pub use status::EnhancedStatus;
