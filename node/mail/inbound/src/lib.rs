//! # hato-inbound
//!
//! Turns a received RFC 5322 message into the payload of the Customers Mail
//! Cloud (CMC) compatible **inbound webhook** that Hato POSTs to a customer's
//! endpoint.
//!
//! This crate is pure: no I/O, no clock, no randomness. The caller supplies the
//! raw message and the SMTP envelope, gets an [`InboundMail`] back from
//! [`parse`], and turns it into an HTTP body with [`encode`].
//!
//! ## The wire contract (CMC inbound webhook, API v2)
//!
//! Parameters (all values UTF-8 text unless noted):
//!
//! | name                 | always sent | value |
//! |----------------------|-------------|-------|
//! | `api_key`            | no          | the API key configured for the webhook, only when one is set |
//! | `server_composition` | yes         | name of the server configuration (e.g. `pro`) |
//! | `filter`             | yes         | the inbound notification name (receiving rule) that matched |
//! | `headers`            | yes         | JSON array of `{"name": .., "value": ..}` objects, one per header field of the top-level message, **in original order, duplicates kept** (two `Received:` give two entries). Names keep their original spelling; values are unfolded and RFC 2047 decoded to UTF-8 |
//! | `text`               | yes (may be empty) | the text/plain body, decoded to UTF-8 |
//! | `html`               | yes (may be empty) | the text/html body, decoded to UTF-8 |
//! | `subject`            | yes         | the decoded `Subject:` (empty if none) |
//! | `envelope-from`      | yes         | SMTP `MAIL FROM` |
//! | `envelope-to`        | yes         | SMTP `RCPT TO` |
//! | `attachments`        | yes         | integer: number of attachments in the received mail, `0` if none |
//! | `attachment1`..`N`   | multipart only | one file upload per attachment, numbered from 1 up to `attachments` |
//!
//! Two encodings ([`Encoding`]):
//!
//! * **JSON** (`application/json`): one object with the fields above;
//!   `headers` is a JSON array (not a string) and `attachments` is a JSON
//!   number. Attachment files are **not** sent, but `attachments` still
//!   reports how many the mail had (CMC: "the number of attachments in the
//!   email you received").
//! * **multipart/form-data**: the same fields as form fields (with `headers`
//!   carried as a JSON *string*, `attachments` as the decimal count), then the
//!   files as `attachment1`..`attachmentN`, each with its content type and a
//!   filename. A non-ASCII filename is sent twice: `filename="=?UTF-8?B?..?="`
//!   (an ASCII RFC 2047 form, which is how CMC delivers Japanese names, so
//!   existing receivers that call e.g. `mb_decode_mimeheader` keep working) and
//!   `filename*=UTF-8''..` (RFC 2231/5987 percent-encoded UTF-8, which
//!   RFC 6266-aware parsers prefer).
//!
//! ## Parsing rules ([`parse`])
//!
//! * Never panics, whatever the bytes (truncated, binary, hostile MIME). A
//!   message with no recognisable header yields empty headers/bodies.
//! * Bodies are decoded from their transfer encoding (base64,
//!   quoted-printable, 7bit/8bit) and charset (ISO-2022-JP, Shift_JIS/CP932,
//!   EUC-JP, UTF-8, ISO-8859-*, ... via `encoding_rs`). When the charset is
//!   missing, unknown, or `us-ascii` while the bytes are not, the bytes are
//!   sniffed: valid UTF-8, ISO-2022-JP escapes, else the better of
//!   Shift_JIS / EUC-JP. When a declared charset yields replacement
//!   characters (e.g. Shift_JIS bytes labelled ISO-2022-JP) the sniffed
//!   reading is used if it is cleaner. Raw 8-bit header values are sniffed
//!   the same way before RFC 2047 decoding.
//! * `text` is the text/plain body and `html` the text/html body. Nothing is
//!   invented: a mail with only HTML has an empty `text` (no HTML-to-text
//!   conversion), a text-only mail an empty `html`. When a mail has several
//!   inline bodies of one kind (e.g. text, image, text), they are joined with
//!   a newline.
//! * Nested multiparts (`mixed` > `alternative` > `related` ...) are walked.
//!   An attached `message/rfc822` is an attachment; its own bodies are not
//!   merged into the outer mail.
//! * Attachments are, in MIME order: parts with `Content-Disposition:
//!   attachment`, and other non-body parts that carry a filename (an inline
//!   image with a `name`, a text part with a filename that is not used as the
//!   body). Parts without a filename that are merely inline (e.g. a `cid:`
//!   image with no name) are not attachments.
//! * Attachment data is the transfer-decoded bytes **as sent**: a Shift_JIS
//!   CSV stays Shift_JIS; its charset is kept in `content_type`
//!   (`text/csv; charset=Shift_JIS`).
//! * Attachment filenames come from `Content-Disposition: filename` else
//!   `Content-Type: name`, decoded from RFC 2231 (`filename*=`, continuations)
//!   or RFC 2047 encoded words; empty when the part has none.
//!
//! ## Example
//!
//! ```
//! use hato_inbound::{encode, parse, Encoding};
//!
//! let raw = b"From: a@example.jp\r\nSubject: hi\r\n\r\nhello\r\n";
//! let mail = parse(raw, "support", "a@example.jp", "support@example.com");
//! assert_eq!(mail.subject, "hi");
//! assert_eq!(mail.text, "hello\r\n");
//!
//! let payload = encode(&mail, "pro", Some("key"), Encoding::Json, "");
//! assert_eq!(payload.content_type, "application/json");
//! let v: serde_json::Value = serde_json::from_slice(&payload.body).unwrap();
//! assert_eq!(v["attachments"], 0);
//! assert_eq!(v["headers"][0]["name"], "From");
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod charset;
mod encode;
mod parse;
mod rfc2231;

pub use encode::encode;
pub use parse::parse;

/// A received mail, reduced to what the CMC inbound webhook carries.
///
/// Built by [`parse`]; may also be built by hand (all fields are public).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InboundMail {
    /// Name of the inbound notification rule ("filter") that matched.
    pub filter: String,
    /// SMTP envelope sender (`MAIL FROM`).
    pub envelope_from: String,
    /// SMTP envelope recipient (`RCPT TO`).
    pub envelope_to: String,
    /// Header fields of the top-level message as `(name, value)`, in original
    /// order with duplicates kept. Names keep their original spelling (e.g.
    /// `return-path`); values are unfolded and decoded to UTF-8 (RFC 2047
    /// encoded words, raw 8-bit sniffed), leading/trailing blanks trimmed.
    pub headers: Vec<(String, String)>,
    /// Decoded `Subject:` (the first one), empty if absent.
    pub subject: String,
    /// text/plain body decoded to UTF-8; empty if the mail has none.
    pub text: String,
    /// text/html body decoded to UTF-8; empty if the mail has none.
    pub html: String,
    /// Attachments in MIME order.
    pub attachments: Vec<Attachment>,
}

/// One attachment of an [`InboundMail`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attachment {
    /// Decoded filename (RFC 2231 / RFC 2047); empty when the part has none.
    pub filename: String,
    /// MIME type, lower-case `type/subtype`; for `text/*` parts the declared
    /// charset is appended (`text/csv; charset=Shift_JIS`) because `data` is
    /// kept in that charset. `text/plain` when the part had no Content-Type.
    pub content_type: String,
    /// The attachment bytes after transfer decoding (base64 /
    /// quoted-printable), without any charset conversion.
    pub data: Vec<u8>,
}

/// Body encoding of the webhook request (the console's "use JSON format").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/json`; attachment files are not sent, only their count.
    Json,
    /// `multipart/form-data`; attachment files sent as `attachment1..N`.
    Multipart,
}

/// An encoded webhook request body together with its `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// Value for the HTTP `Content-Type` header, e.g. `application/json` or
    /// `multipart/form-data; boundary=...`.
    pub content_type: String,
    /// The HTTP request body.
    pub body: Vec<u8>,
}
