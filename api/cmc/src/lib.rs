//! # hato-cmc: the Customers Mail Cloud v2 API, as pure functions
//!
//! Hato answers the Customers Mail Cloud (CMC) v2 HTTP API so that existing CMC clients and
//! SDKs (PHP, JS, Python, Ruby) work by changing only the base URL. This crate holds
//! everything about that API that does not need I/O: the HTTP layer (warp) hands it a
//! Content-Type and a body, storage hands it records, and it returns typed requests,
//! message bytes, and response bodies.
//!
//! ## Contract
//!
//! * **Pure.** No I/O, no clock, no randomness, no global state. Anything time-dependent
//!   takes `now_unix` and a [`TzOffset`] (default UTC) from the caller; message boundaries are
//!   derived from the Message-ID, so [`build_message`] is deterministic.
//! * **Decoding.** [`parse_form`] turns a JSON, form-urlencoded or multipart/form-data body
//!   into [`Params`]. Objects sent as JSON text inside form/multipart fields (what every CMC
//!   SDK does when it attaches files), numbers and booleans where strings are expected,
//!   repeated form keys and PHP-style bracket keys are all understood.
//! * **Validation.** [`send_request`], [`bulk_request`] and the `*_query` functions return
//!   either a typed request or **every** error found, each a CMC-shaped [`ApiError`]
//!   (`code`/`field`/`message`; the code table is [`ErrorCode`]). Bad input never panics.
//! * **Decided by the caller.** Authentication (`13-001`), permissions (`13-002`) and
//!   whether the From domain has DKIM (`13-006`, [`ApiError::dkim_not_configured`]) need
//!   state this crate does not have; constructors are provided.
//! * **Messages.** [`build_message`] writes RFC 5322 bytes with CRLF line breaks, RFC 2047
//!   headers, UTF-8 or ISO-2022-JP bodies, attachments, no Bcc header, no line over 998
//!   bytes, and no way for input to inject a header line. [`envelope`] gives MAIL FROM and
//!   the de-duplicated RCPT TO list. [`personalise`] produces each bulk recipient's message.
//! * **Responses.** [`render`] writes any response document as JSON or XML ([`Format`]);
//!   [`errors_json`]/[`errors_xml`] and [`errors_status`] give the error answer and its
//!   4xx status. Record structs ([`DeliveryRecord`], [`BounceRecord`], [`BlockRecord`],
//!   [`StatisticsRow`]) carry the exact CMC JSON field names.
//!
//! ## Endpoints covered
//!
//! | Endpoint | Parse | Answer |
//! |---|---|---|
//! | `POST /api/v2/emails/send.{json,xml}` | [`send_request`] | [`SendResponse`] |
//! | `POST /api/v2/emails/bulk.{json,xml}` | [`bulk_request`], [`personalise`] | [`SendResponse`] |
//! | `POST /transaction/v2/deliveries/list.{json,xml}` | [`deliveries_query`] | [`DeliveriesResponse`] |
//! | `POST /transaction/v2/bounces/list.{json,xml}` | [`bounces_query`] | [`BouncesResponse`] |
//! | `POST /transaction/v2/blocks/list.{json,xml}` | [`blocks_query`] | [`BlocksResponse`] |
//! | `POST /transaction/v2/blocks/cancel.{json,xml}` | [`blocks_cancel`] | [`MessageResponse`] |
//! | `POST /transaction/v2/statistics/list.{json,xml}` | [`statistics_query`] | [`StatisticsResponse`] |
//!
//! ## Example
//!
//! ```
//! use hato_cmc::*;
//!
//! let body = br#"{"api_user":"u","api_key":"k","to":"user@example.jp",
//!                 "from":{"name":"Shop","address":"shop@example.jp"},
//!                 "subject":"Hello","text":"Hi there"}"#;
//! let params = parse_form("application/json", body).unwrap();
//! let req = send_request(&params).unwrap();
//! let date = format_rfc2822(1_751_365_800, TzOffset::JST);
//! let bytes = build_message(&req, "id-1@hato.example", &date);
//! let (mail_from, rcpts) = envelope(&req);
//! assert_eq!(mail_from, "shop@example.jp");
//! assert_eq!(rcpts, vec!["user@example.jp"]);
//! assert!(bytes.starts_with(b"Date: Tue, 01 Jul 2025 19:30:00 +0900\r\n"));
//! let answer = render(Format::Json, &SendResponse { id: "id-1@hato.example".into() });
//! assert_eq!(answer, r#"{"id":"id-1@hato.example"}"#);
//!
//! let bad = parse_form("application/json", br#"{"api_user":"u"}"#).unwrap();
//! let errors = send_request(&bad).unwrap_err();
//! assert_eq!(errors_status(&errors), 400);
//! assert!(errors_json(&errors).starts_with(r#"{"errors":[{"code":"10-006","field":"api_key""#));
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod address;
mod bulk;
mod encoding;
mod error;
mod mime;
mod multipart;
mod params;
mod query;
mod records;
mod response;
mod send;
pub mod time;

pub use address::{is_valid_address, Mailbox};
pub use bulk::{
    bulk_request, personalise, BulkRecipient, BulkRequest, MAX_BULK_RECIPIENTS,
    MAX_MERGE_VALUE_BYTES, MAX_RECIPIENT_PROPERTIES,
};
pub use encoding::Charset;
pub use error::{ApiError, ErrorCode};
pub use mime::{build_message, envelope};
pub use params::{parse_form, FilePart, Params};
pub use query::{
    blocks_cancel, blocks_query, bounces_query, deliveries_query, matches, statistics_query,
    BlocksCancel, BlocksQuery, BouncePeriod, BouncesQuery, Credentials, DeliveriesQuery, MatchMode,
    Page, StatisticsQuery, TextFilter, DEFAULT_ROWS, MAX_ROWS,
};
pub use records::{
    BlockRecord, BounceCode, BounceRecord, DeliveryRecord, DeliveryStatus, StatisticsRow,
};
pub use response::{
    errors_json, errors_status, errors_xml, render, BlocksResponse, BouncesResponse,
    DeliveriesResponse, ErrorsResponse, Format, MessageResponse, SendResponse, StatisticsResponse,
};
pub use send::{
    send_request, Attachment, Header, SendRequest, MAX_ADDRESSES_PER_HEADER, MAX_ATTACHMENTS,
    MAX_SUBJECT_CHARS, RESERVED_HEADERS,
};
pub use time::{format_date, format_datetime, format_rfc2822, Date, TimeWindow, TzOffset};
