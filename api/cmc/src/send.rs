//! `POST /api/v2/emails/send.json`: parameter validation into a [`SendRequest`].

use serde_json::Value;

use crate::address::{parse_entries, AddrField, Entry, Mailbox};
use crate::encoding::Charset;
use crate::error::{ApiError, ErrorCode};
use crate::params::{scalar_text, Params};

/// Most addresses allowed in each of `to`, `cc` and `bcc` of `emails/send`.
pub const MAX_ADDRESSES_PER_HEADER: usize = 10;
/// Most characters allowed in `subject`.
pub const MAX_SUBJECT_CHARS: usize = 512;
/// Most attachments per message.
pub const MAX_ATTACHMENTS: usize = 10;

/// Custom headers that would clash with the ones the message builder writes; naming one in
/// `headers` is a `11-005` error.
pub const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "return-path",
];

/// One custom header from the `headers` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name as given (printable ASCII, no `:`).
    pub name: String,
    /// Header value (no CR/LF; non-ASCII is RFC 2047-encoded by the builder).
    pub value: String,
}

/// One attachment from a multipart `attachmentN` part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// File name (never empty: `attachmentN` when the part had none).
    pub filename: String,
    /// Media type: the part's own when it was specific, else guessed from the extension,
    /// else `application/octet-stream`.
    pub content_type: String,
    /// File contents.
    pub data: Vec<u8>,
}

/// A validated `emails/send` request (also each personalised message of a bulk request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRequest {
    /// `api_user` (authentication is the caller's job).
    pub api_user: String,
    /// `api_key`.
    pub api_key: String,
    /// `To` recipients (1–10).
    pub to: Vec<Mailbox>,
    /// `Cc` recipients (0–10).
    pub cc: Vec<Mailbox>,
    /// `Bcc` recipients (0–10); envelope only, never written as a header.
    pub bcc: Vec<Mailbox>,
    /// `From`.
    pub from: Mailbox,
    /// `Reply-To`.
    pub reply_to: Option<Mailbox>,
    /// `envfrom`: the envelope sender (Return-Path); `None` means the From address.
    pub envfrom: Option<String>,
    /// Custom headers in the order given.
    pub headers: Vec<Header>,
    /// Charset of subject, names and bodies.
    pub charset: Charset,
    /// Subject (≤ 512 characters).
    pub subject: String,
    /// Plain-text body.
    pub text: Option<String>,
    /// HTML body.
    pub html: Option<String>,
    /// Attachments (≤ 10).
    pub attachments: Vec<Attachment>,
}

impl SendRequest {
    /// The value of the `X-Api-Data` custom header (CMC's searchable `apiData`), if set.
    pub fn api_data(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("X-Api-Data"))
            .map(|h| h.value.as_str())
    }
}

/// Validates the parameters of `POST /api/v2/emails/send.json`.
///
/// Rules (CMC v2 reference, plus the SDK quirks it lists):
/// * `api_user`, `api_key`, `to`, `from`, `subject` and `text` are required (`10-xxx`);
///   `""` and `null` count as missing, `[]` for `to` too.
/// * `to`/`cc`/`bcc`: type 1, 2 or 3 (JSON text in a string is fine), at most 10 each;
///   extra properties in recipient objects are ignored (no merge in `send`).
/// * `from`, `replyto`: one address, object or string.
/// * `envfrom`: a plain address.
/// * `headers`: `[{"name","value"}]` (order kept) or `{"Name":"value"}` (written in name
///   order, as serde_json keeps objects sorted); names are printable ASCII without
///   `:`, values must not contain CR, LF or other control characters except TAB, and the
///   headers the builder writes itself ([`RESERVED_HEADERS`]) are refused.
/// * `charset`: `UTF-8` (default) or `ISO-2022-JP`; with ISO-2022-JP every text must be
///   representable (`11-009`).
/// * `subject` ≤ 512 characters; `html` optional.
/// * `attachments`: the count of multipart files `attachment1..N` (≤ 10); without the count,
///   every `attachmentN` file is taken in numeric order.
///
/// All errors found are returned together.
pub fn send_request(p: &Params) -> Result<SendRequest, Vec<ApiError>> {
    let (req, _) = parse_request(p, RequestKind::Send)?;
    Ok(req)
}

/// Which endpoint is being validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RequestKind {
    Send,
    Bulk,
}

/// Shared validation of `send` and `bulk`: returns the request (with `to` filled for send,
/// empty for bulk) and the parsed `to` entries with their properties.
pub(crate) fn parse_request(
    p: &Params,
    kind: RequestKind,
) -> Result<(SendRequest, Vec<Entry>), Vec<ApiError>> {
    let mut errors: Vec<ApiError> = Vec::new();

    let text_field = |name: &str, errors: &mut Vec<ApiError>| match p.text(name) {
        Ok(v) => v,
        Err(e) => {
            errors.push(e);
            None
        }
    };

    let api_user = text_field("api_user", &mut errors);
    if api_user.is_none() && !errors.iter().any(|e| e.field == "api_user") {
        errors.push(ApiError::required(ErrorCode::ApiUserRequired, "api_user"));
    }
    let api_key = text_field("api_key", &mut errors);
    if api_key.is_none() && !errors.iter().any(|e| e.field == "api_key") {
        errors.push(ApiError::required(ErrorCode::ApiKeyRequired, "api_key"));
    }

    // to
    let max_to = match kind {
        RequestKind::Send => MAX_ADDRESSES_PER_HEADER,
        RequestKind::Bulk => crate::bulk::MAX_BULK_RECIPIENTS,
    };
    let to_entries = match p.json("to") {
        None => {
            errors.push(ApiError::required(ErrorCode::ToRequired, "to"));
            Vec::new()
        }
        Some(v) => address_list(&v, AddrField::To, max_to, ErrorCode::TooManyTo, &mut errors),
    };
    if to_entries.is_empty() && p.json("to").is_some_and(|v| v == Value::Array(vec![])) {
        errors.push(ApiError::required(ErrorCode::ToRequired, "to"));
    }
    let cc = p
        .json("cc")
        .map(|v| {
            address_list(
                &v,
                AddrField::Cc,
                MAX_ADDRESSES_PER_HEADER,
                ErrorCode::TooManyCc,
                &mut errors,
            )
        })
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.mailbox)
        .collect::<Vec<_>>();
    let bcc = p
        .json("bcc")
        .map(|v| {
            address_list(
                &v,
                AddrField::Bcc,
                MAX_ADDRESSES_PER_HEADER,
                ErrorCode::TooManyBcc,
                &mut errors,
            )
        })
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.mailbox)
        .collect::<Vec<_>>();

    // from / replyto
    let from = match p.json("from") {
        None => {
            errors.push(ApiError::required(ErrorCode::FromRequired, "from"));
            None
        }
        Some(v) => single_address(&v, AddrField::From, &mut errors),
    };
    let reply_to = p
        .json("replyto")
        .and_then(|v| single_address(&v, AddrField::ReplyTo, &mut errors));

    // envfrom
    let envfrom = text_field("envfrom", &mut errors).map(|s| s.trim().to_string());
    if let Some(ref e) = envfrom {
        if !crate::address::is_valid_address(e) {
            errors.push(ApiError::new(
                ErrorCode::InvalidEnvFrom,
                "envfrom",
                format!("envfrom: '{e}' is not a valid email address."),
            ));
        }
    }

    let headers = parse_headers(p, &mut errors);

    let charset = match text_field("charset", &mut errors) {
        None => Charset::Utf8,
        Some(c) => Charset::parse(&c).unwrap_or_else(|| {
            errors.push(ApiError::new(
                ErrorCode::InvalidCharset,
                "charset",
                format!("charset '{c}' is not supported. Use UTF-8 or ISO-2022-JP."),
            ));
            Charset::Utf8
        }),
    };

    let subject = text_field("subject", &mut errors);
    match subject {
        None if !errors.iter().any(|e| e.field == "subject") => {
            errors.push(ApiError::required(ErrorCode::SubjectRequired, "subject"));
        }
        Some(ref s) if s.chars().count() > MAX_SUBJECT_CHARS => {
            errors.push(subject_too_long(None));
        }
        _ => {}
    }
    let text = text_field("text", &mut errors);
    if text.is_none() && !errors.iter().any(|e| e.field == "text") {
        errors.push(ApiError::required(ErrorCode::TextRequired, "text"));
    }
    let html = text_field("html", &mut errors);

    let attachments = parse_attachments(p, &mut errors);

    // charset representability
    if charset == Charset::Iso2022Jp {
        let mut check = |field: &str, value: &str, recipient: Option<usize>| {
            if let Some(c) = charset.first_unencodable(value) {
                let mut e = not_encodable(field, c);
                e.recipient = recipient;
                errors.push(e);
            }
        };
        if let Some(ref s) = subject {
            check("subject", s, None);
        }
        if let Some(ref s) = text {
            check("text", s, None);
        }
        if let Some(ref s) = html {
            check("html", s, None);
        }
        for (field, list) in [
            (
                "to",
                to_entries.iter().map(|e| &e.mailbox).collect::<Vec<_>>(),
            ),
            ("cc", cc.iter().collect()),
            ("bcc", bcc.iter().collect()),
        ] {
            for (i, m) in list.into_iter().enumerate() {
                if let Some(ref n) = m.name {
                    check(field, n, Some(i));
                }
            }
        }
        for (field, m) in [("from", from.as_ref()), ("replyto", reply_to.as_ref())] {
            if let Some(n) = m.and_then(|m| m.name.as_ref()) {
                check(field, n, None);
            }
        }
        for h in &headers {
            check("headers", &h.value, None);
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    let (Some(api_user), Some(api_key), Some(from), Some(subject)) =
        (api_user, api_key, from, subject)
    else {
        // unreachable: each missing value pushed an error above
        return Err(vec![ApiError::malformed("incomplete request")]);
    };
    let to = match kind {
        RequestKind::Send => to_entries.iter().map(|e| e.mailbox.clone()).collect(),
        RequestKind::Bulk => Vec::new(),
    };
    Ok((
        SendRequest {
            api_user,
            api_key,
            to,
            cc,
            bcc,
            from,
            reply_to,
            envfrom,
            headers,
            charset,
            subject,
            text,
            html,
            attachments,
        },
        to_entries,
    ))
}

/// `12-004` for a subject over 512 characters (optionally after bulk substitution).
pub(crate) fn subject_too_long(recipient: Option<(usize, &str)>) -> ApiError {
    match recipient {
        None => ApiError::new(
            ErrorCode::SubjectTooLong,
            "subject",
            format!("subject must be at most {MAX_SUBJECT_CHARS} characters."),
        ),
        Some((i, addr)) => ApiError::new(
            ErrorCode::SubjectTooLong,
            "subject",
            format!("subject for to[{i}] ({addr}) must be at most {MAX_SUBJECT_CHARS} characters after substitution."),
        )
        .at_recipient(i),
    }
}

/// `11-009` for a character the ISO-2022-JP charset cannot carry.
pub(crate) fn not_encodable(field: &str, c: char) -> ApiError {
    ApiError::new(
        ErrorCode::NotEncodable,
        field,
        format!(
            "{field} contains '{c}' (U+{:04X}), which cannot be encoded in ISO-2022-JP.",
            c as u32
        ),
    )
}

fn address_list(
    v: &Value,
    field: AddrField,
    max: usize,
    too_many: ErrorCode,
    errors: &mut Vec<ApiError>,
) -> Vec<Entry> {
    let count = match v {
        Value::Array(items) => items.len(),
        _ => 1,
    };
    if count > max {
        errors.push(ApiError::new(
            too_many,
            field.name(),
            format!(
                "{} accepts at most {max} addresses ({count} given).",
                field.name()
            ),
        ));
        return Vec::new();
    }
    match parse_entries(v, field) {
        Ok(list) => list,
        Err(mut e) => {
            errors.append(&mut e);
            Vec::new()
        }
    }
}

fn single_address(v: &Value, field: AddrField, errors: &mut Vec<ApiError>) -> Option<Mailbox> {
    // a one-element array is tolerated
    let v = match v {
        Value::Array(items) if items.len() == 1 => &items[0],
        Value::Array(_) => {
            errors.push(field.error(None, "exactly one address is allowed.".to_string()));
            return None;
        }
        other => other,
    };
    match parse_entries(v, field) {
        Ok(mut list) => list.pop().map(|e| e.mailbox),
        Err(mut e) => {
            errors.append(&mut e);
            None
        }
    }
}

fn header_error(detail: String) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidHeaders,
        "headers",
        format!("headers: {detail}"),
    )
}

fn parse_headers(p: &Params, errors: &mut Vec<ApiError>) -> Vec<Header> {
    let Some(v) = p.json("headers") else {
        return Vec::new();
    };
    let mut raw: Vec<(String, Value)> = Vec::new();
    match v {
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                match item {
                    Value::Object(mut map) => {
                        let name = match map.remove("name") {
                            Some(Value::String(s)) => s,
                            _ => {
                                errors.push(header_error(format!(
                                    "headers[{i}] needs a string \"name\"."
                                )));
                                continue;
                            }
                        };
                        raw.push((name, map.remove("value").unwrap_or(Value::Null)));
                    }
                    _ => errors.push(header_error(format!(
                        "headers[{i}] must be an object {{\"name\",\"value\"}}."
                    ))),
                }
            }
        }
        Value::Object(map) => raw.extend(map),
        _ => {
            errors.push(header_error(
                "must be a JSON array of {\"name\",\"value\"} objects or a JSON object."
                    .to_string(),
            ));
            return Vec::new();
        }
    }
    let mut out = Vec::with_capacity(raw.len());
    for (name, value) in raw {
        let name_ok =
            !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
        if !name_ok {
            errors.push(header_error(format!(
                "'{}' is not a valid header name.",
                name.escape_debug()
            )));
            continue;
        }
        if RESERVED_HEADERS
            .iter()
            .any(|r| r.eq_ignore_ascii_case(&name))
        {
            errors.push(header_error(format!(
                "'{name}' cannot be set through headers; use the dedicated parameter."
            )));
            continue;
        }
        let value = match scalar_text(&value, "headers") {
            Ok(v) => v.unwrap_or_default(),
            Err(_) => {
                errors.push(header_error(format!("value of '{name}' must be a string.")));
                continue;
            }
        };
        if value.contains(['\r', '\n']) {
            errors.push(header_error(format!(
                "value of '{name}' must not contain CR or LF."
            )));
            continue;
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            errors.push(header_error(format!(
                "value of '{name}' must not contain control characters."
            )));
            continue;
        }
        out.push(Header { name, value });
    }
    out
}

fn parse_attachments(p: &Params, errors: &mut Vec<ApiError>) -> Vec<Attachment> {
    let declared = match p.text("attachments") {
        Ok(v) => v,
        Err(e) => {
            errors.push(ApiError::new(
                ErrorCode::InvalidAttachments,
                "attachments",
                e.message,
            ));
            return Vec::new();
        }
    };
    let indices: Vec<usize> = match declared {
        Some(s) => {
            let Ok(n) = s.trim().parse::<usize>() else {
                errors.push(ApiError::new(
                    ErrorCode::InvalidAttachments,
                    "attachments",
                    format!("attachments must be the number of attached files ('{s}' given)."),
                ));
                return Vec::new();
            };
            // Refuse an absurd count before building anything from it (a fuzzer sent 2^63).
            if n > MAX_ATTACHMENTS {
                errors.push(ApiError::new(
                    ErrorCode::TooManyAttachments,
                    "attachments",
                    format!("at most {MAX_ATTACHMENTS} attachments are allowed ({n} given)."),
                ));
                return Vec::new();
            }
            (1..=n).collect()
        }
        None => {
            let mut found: Vec<usize> = p
                .files()
                .iter()
                .filter_map(|f| f.name.strip_prefix("attachment")?.parse::<usize>().ok())
                .filter(|n| *n > 0)
                .collect();
            found.sort_unstable();
            found.dedup();
            found
        }
    };
    if indices.len() > MAX_ATTACHMENTS {
        errors.push(ApiError::new(
            ErrorCode::TooManyAttachments,
            "attachments",
            format!(
                "at most {MAX_ATTACHMENTS} attachments are allowed ({} given).",
                indices.len()
            ),
        ));
        return Vec::new();
    }
    let mut out = Vec::with_capacity(indices.len());
    for i in indices {
        let field = format!("attachment{i}");
        match p.file(&field) {
            None => errors.push(ApiError::new(
                ErrorCode::InvalidAttachments,
                field.clone(),
                format!("{field} is declared by attachments but no such file part was sent."),
            )),
            Some(f) => {
                let filename = if f.filename.is_empty() {
                    field.clone()
                } else {
                    f.filename.clone()
                };
                let content_type = media_type(f.content_type.as_deref(), &filename);
                out.push(Attachment {
                    filename,
                    content_type,
                    data: f.data.clone(),
                });
            }
        }
    }
    out
}

/// The part's media type when it is a specific, well-formed `type/subtype`; otherwise a guess
/// from the file extension; otherwise `application/octet-stream`.
fn media_type(given: Option<&str>, filename: &str) -> String {
    let token_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    if let Some(ct) = given {
        let ct = ct.trim().to_ascii_lowercase();
        if let Some((t, s)) = ct.split_once('/') {
            if token_ok(t) && token_ok(s) && ct != "application/octet-stream" {
                return ct;
            }
        }
    }
    let ext = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "pdf" => "application/pdf",
        "txt" | "log" => "text/plain",
        "csv" => "text/csv",
        "htm" | "html" => "text/html",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "zip" => "application/zip",
        "json" => "application/json",
        "xml" => "application/xml",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ics" => "text/calendar",
        _ => "application/octet-stream",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{parse_form, FilePart};
    use serde_json::json;

    fn base() -> Value {
        json!({
            "api_user": "user", "api_key": "key",
            "to": "to@example.com",
            "from": {"name": "Sender", "address": "from@example.com"},
            "subject": "Hello", "text": "Body"
        })
    }

    fn parse(v: Value) -> Result<SendRequest, Vec<ApiError>> {
        let p = parse_form("application/json", v.to_string().as_bytes()).unwrap();
        send_request(&p)
    }

    fn with(mut v: Value, k: &str, x: Value) -> Value {
        v[k] = x;
        v
    }

    fn codes(e: &[ApiError]) -> Vec<&'static str> {
        e.iter().map(|e| e.code.as_str()).collect()
    }

    #[test]
    fn minimal_request() {
        let r = parse(base()).unwrap();
        assert_eq!(r.api_user, "user");
        assert_eq!(r.to, vec![Mailbox::new("to@example.com")]);
        assert_eq!(r.from, Mailbox::with_name("Sender", "from@example.com"));
        assert_eq!(r.charset, Charset::Utf8);
        assert_eq!(r.text.as_deref(), Some("Body"));
        assert_eq!(r.html, None);
        assert!(r.cc.is_empty() && r.bcc.is_empty() && r.attachments.is_empty());
        assert_eq!(r.reply_to, None);
        assert_eq!(r.envfrom, None);
    }

    #[test]
    fn missing_everything() {
        let e = parse(json!({})).unwrap_err();
        assert_eq!(
            codes(&e),
            vec!["10-005", "10-006", "10-003", "10-004", "10-001", "10-002"]
        );
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["api_user", "api_key", "to", "from", "subject", "text"]
        );
        // PHP SDK style empty strings / JS SDK style nulls and empty arrays
        let e = parse(json!({"api_user":"u","api_key":"k","to":[],"from":{"address":"f@x.jp"},"subject":"","text":null,"html":"","envfrom":"","cc":[],"bcc":[]})).unwrap_err();
        assert_eq!(codes(&e), vec!["10-003", "10-001", "10-002"]);
    }

    #[test]
    fn all_three_address_forms() {
        let r = parse(with(
            base(),
            "to",
            json!({"name":"宛先","address":"a@x.jp"}),
        ))
        .unwrap();
        assert_eq!(r.to, vec![Mailbox::with_name("宛先", "a@x.jp")]);
        let r = parse(with(
            base(),
            "to",
            json!([{"name":"A","address":"a@x.jp","item1":"ignored"},{"name":"","address":"b@x.jp"}]),
        ))
        .unwrap();
        assert_eq!(
            r.to,
            vec![Mailbox::with_name("A", "a@x.jp"), Mailbox::new("b@x.jp")]
        );
        let r = parse(with(base(), "cc", json!(["c@x.jp", {"address":"d@x.jp"}]))).unwrap();
        assert_eq!(r.cc.len(), 2);
        let r = parse(with(base(), "bcc", json!("e@x.jp"))).unwrap();
        assert_eq!(r.bcc, vec![Mailbox::new("e@x.jp")]);
    }

    #[test]
    fn address_errors_and_limits() {
        let e = parse(with(base(), "cc", json!(["ok@x.jp", "bad@"]))).unwrap_err();
        assert_eq!(codes(&e), vec!["11-006"]);
        assert_eq!(e[0].field, "cc");
        assert_eq!(e[0].recipient, Some(1));
        let eleven: Vec<String> = (0..11).map(|i| format!("u{i}@x.jp")).collect();
        let e = parse(with(base(), "to", json!(eleven))).unwrap_err();
        assert_eq!(codes(&e), vec!["12-001"]);
        let e = parse(with(
            with(base(), "cc", json!(eleven)),
            "bcc",
            json!(eleven),
        ))
        .unwrap_err();
        assert_eq!(codes(&e), vec!["12-002", "12-003"]);
        let ten: Vec<String> = (0..10).map(|i| format!("u{i}@x.jp")).collect();
        assert!(parse(with(base(), "to", json!(ten))).is_ok());
        let e = parse(with(base(), "to", json!("x"))).unwrap_err();
        assert_eq!(codes(&e), vec!["11-001"]);
        let e = parse(with(base(), "from", json!("not-an-address"))).unwrap_err();
        assert_eq!(codes(&e), vec!["11-002"]);
        let e = parse(with(base(), "from", json!(["a@x.jp", "b@x.jp"]))).unwrap_err();
        assert_eq!(codes(&e), vec!["11-002"]);
        let r = parse(with(base(), "from", json!([{"address":"a@x.jp"}]))).unwrap();
        assert_eq!(r.from, Mailbox::new("a@x.jp"));
        let e = parse(with(base(), "envfrom", json!("bounce at x"))).unwrap_err();
        assert_eq!(codes(&e), vec!["11-004"]);
        let r = parse(with(base(), "envfrom", json!("bounce@x.jp"))).unwrap();
        assert_eq!(r.envfrom.as_deref(), Some("bounce@x.jp"));
    }

    #[test]
    fn replyto_as_object_and_string() {
        let r = parse(with(
            base(),
            "replyto",
            json!({"name":"返信","address":"r@x.jp"}),
        ))
        .unwrap();
        assert_eq!(r.reply_to, Some(Mailbox::with_name("返信", "r@x.jp")));
        let r = parse(with(base(), "replyto", json!("r@x.jp"))).unwrap();
        assert_eq!(r.reply_to, Some(Mailbox::new("r@x.jp")));
        let e = parse(with(base(), "replyto", json!({"name":"x"}))).unwrap_err();
        assert_eq!(codes(&e), vec!["11-003"]);
    }

    #[test]
    fn headers_array_and_object_forms() {
        let r = parse(with(
            base(),
            "headers",
            json!([{"name":"X-Api-Data","value":"campaign-7"},{"name":"X-Num","value":5}]),
        ))
        .unwrap();
        assert_eq!(r.headers.len(), 2);
        assert_eq!(r.api_data(), Some("campaign-7"));
        assert_eq!(r.headers[1].value, "5");
        let r = parse(with(
            base(),
            "headers",
            json!({"X-Api-Data":"v","List-Id":"<l.x.jp>"}),
        ))
        .unwrap();
        assert_eq!(r.headers.len(), 2);
        assert_eq!(r.api_data(), Some("v"));
        // as JSON text (multipart)
        let r = parse(with(base(), "headers", json!("{\"x-api-data\":\"t\"}"))).unwrap();
        assert_eq!(r.api_data(), Some("t"));
    }

    #[test]
    fn header_injection_and_bad_headers_refused() {
        for bad in [
            json!([{"name":"X-A","value":"v\r\nBcc: victim@x.jp"}]),
            json!({"X-A":"v\nInjected: yes"}),
            json!({"X-A":"v\rx"}),
            json!({"Bad Name":"v"}),
            json!({"X-A:B":"v"}),
            json!({"X-Ä":"v"}),
            json!({"Subject":"override"}),
            json!({"content-type":"text/plain"}),
            json!({"X-A":"nul\u{0}"}),
            json!({"X-A":{"nested":1}}),
            json!([{"value":"no name"}]),
            json!(["X-A: v"]),
            json!("X-A: v"),
        ] {
            let e = parse(with(base(), "headers", bad.clone())).unwrap_err();
            assert_eq!(codes(&e), vec!["11-005"], "{bad}");
            assert_eq!(e[0].field, "headers");
        }
        let r = parse(with(base(), "headers", json!({"X-Tab":"a\tb"}))).unwrap();
        assert_eq!(r.headers[0].value, "a\tb");
    }

    #[test]
    fn charset_and_subject_rules() {
        let r = parse(with(base(), "charset", json!("iso-2022-jp"))).unwrap();
        assert_eq!(r.charset, Charset::Iso2022Jp);
        let e = parse(with(base(), "charset", json!("EUC-JP"))).unwrap_err();
        assert_eq!(codes(&e), vec!["11-007"]);
        let e = parse(with(base(), "subject", json!("あ".repeat(513)))).unwrap_err();
        assert_eq!(codes(&e), vec!["12-004"]);
        assert!(parse(with(base(), "subject", json!("あ".repeat(512)))).is_ok());
        let e = parse(with(base(), "subject", json!({"a":1}))).unwrap_err();
        assert_eq!(codes(&e), vec!["11-011"]);
        // numbers where strings are expected are accepted
        let r = parse(with(base(), "subject", json!(12345))).unwrap();
        assert_eq!(r.subject, "12345");
    }

    #[test]
    fn iso2022jp_unencodable_text_is_refused() {
        let mut v = with(base(), "charset", json!("ISO-2022-JP"));
        v["subject"] = json!("絵文字😀");
        v["text"] = json!("本文");
        v["html"] = json!("<p>🍣</p>");
        v["to"] = json!([{"name":"😀","address":"a@x.jp"}]);
        v["headers"] = json!({"X-Note":"🍣"});
        let e = parse(v).unwrap_err();
        assert_eq!(codes(&e), vec!["11-009"; 4]);
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["subject", "html", "to", "headers"]);
        assert_eq!(e[2].recipient, Some(0));
        assert!(e[0].message.contains("U+1F600"));
    }

    fn multipart_params(files: &[(&str, &str, Option<&str>)], count: Option<&str>) -> Params {
        let mut p = parse_form("application/json", base().to_string().as_bytes()).unwrap();
        if let Some(c) = count {
            p.insert("attachments", c);
        }
        for (name, filename, ct) in files {
            p.add_file(FilePart {
                name: name.to_string(),
                filename: filename.to_string(),
                content_type: ct.map(str::to_string),
                data: filename.as_bytes().to_vec(),
            });
        }
        p
    }

    #[test]
    fn a_huge_attachment_count_is_an_error_not_an_allocation() {
        let mut p = Params::new();
        p.insert("attachments", "9223372036854775808");
        let errs = super::parse_attachments(&p, &mut Vec::new());
        assert!(errs.is_empty());
        let mut errors = Vec::new();
        p.insert("attachments", "4611686018427387904");
        super::parse_attachments(&p, &mut errors);
        assert_eq!(errors[0].code, ErrorCode::TooManyAttachments);
    }

    #[test]
    fn attachments_by_count_and_by_discovery() {
        let p = multipart_params(
            &[
                ("attachment2", "b.png", Some("image/png")),
                ("attachment1", "資料.pdf", None),
                ("other", "x.bin", None),
            ],
            Some("2"),
        );
        let r = send_request(&p).unwrap();
        assert_eq!(r.attachments.len(), 2);
        assert_eq!(r.attachments[0].filename, "資料.pdf");
        assert_eq!(r.attachments[0].content_type, "application/pdf");
        assert_eq!(r.attachments[1].content_type, "image/png");
        // without a count every attachmentN is taken in order
        let p = multipart_params(
            &[
                ("attachment10", "j.txt", Some("application/octet-stream")),
                ("attachment3", "", Some("bogus type")),
            ],
            None,
        );
        let r = send_request(&p).unwrap();
        assert_eq!(r.attachments[0].filename, "attachment3");
        assert_eq!(r.attachments[0].content_type, "application/octet-stream");
        assert_eq!(r.attachments[1].filename, "j.txt");
        assert_eq!(r.attachments[1].content_type, "text/plain");
    }

    #[test]
    fn attachment_errors() {
        let p = multipart_params(&[("attachment1", "a.txt", None)], Some("2"));
        let e = send_request(&p).unwrap_err();
        assert_eq!(codes(&e), vec!["11-008"]);
        assert_eq!(e[0].field, "attachment2");
        let p = multipart_params(&[], Some("two"));
        assert_eq!(codes(&send_request(&p).unwrap_err()), vec!["11-008"]);
        let p = multipart_params(&[], Some("11"));
        assert_eq!(codes(&send_request(&p).unwrap_err()), vec!["12-005"]);
        let names: Vec<String> = (1..=11).map(|i| format!("attachment{i}")).collect();
        let files: Vec<(&str, &str, Option<&str>)> =
            names.iter().map(|n| (n.as_str(), "f.txt", None)).collect();
        let p = multipart_params(&files, None);
        assert_eq!(codes(&send_request(&p).unwrap_err()), vec!["12-005"]);
        let mut p = multipart_params(&[], None);
        p.insert("attachments", json!({"a": 1}));
        assert_eq!(codes(&send_request(&p).unwrap_err()), vec!["11-008"]);
        let p = multipart_params(&[], Some("0"));
        assert!(send_request(&p).unwrap().attachments.is_empty());
    }

    #[test]
    fn wrong_types_for_credentials() {
        let e = parse(with(base(), "api_user", json!({"x":1}))).unwrap_err();
        assert_eq!(codes(&e), vec!["11-011"]);
        assert_eq!(e[0].field, "api_user");
    }
}
