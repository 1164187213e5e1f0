//! Raw RFC 5322 bytes → [`InboundMail`].

use std::panic::{catch_unwind, AssertUnwindSafe};

use mail_parser::{
    parsers::MessageStream, Encoding as Cte, HeaderName, HeaderValue, Message, MessageParser,
    MessagePart, MimeHeaders, PartType,
};

use crate::charset::{self, classify, suspicious};
use crate::rfc2231;
use crate::{Attachment, InboundMail};

/// Parses a received message into an [`InboundMail`].
///
/// `filter`, `envelope_from` and `envelope_to` are copied into the result.
/// See the crate documentation for the decoding and attachment rules.
///
/// Never panics: mail-parser is written to be panic-free, but it contains
/// `debug_assert!`s and unchecked offset arithmetic on some recovery paths, so
/// the parse additionally runs under [`std::panic::catch_unwind`]; if it ever
/// unwinds, the result carries the envelope and filter with empty
/// headers/bodies (the default panic hook will still have printed the panic).
/// This relies on the default `panic = "unwind"` strategy.
pub fn parse(raw: &[u8], filter: &str, envelope_from: &str, envelope_to: &str) -> InboundMail {
    let parsed = catch_unwind(AssertUnwindSafe(|| parse_content(raw))).unwrap_or_default();
    InboundMail {
        filter: filter.to_owned(),
        envelope_from: envelope_from.to_owned(),
        envelope_to: envelope_to.to_owned(),
        ..parsed
    }
}

fn parse_content(raw: &[u8]) -> InboundMail {
    let mut out = InboundMail::default();
    let Some(message) = MessageParser::new().parse(raw) else {
        return out;
    };
    let Some(root) = message.parts.first() else {
        return out;
    };

    out.headers = root
        .headers
        .iter()
        .map(|h| {
            let start = h.offset_start as usize;
            let end = h.offset_end as usize;
            let name = raw
                .get(h.offset_field as usize..start)
                .map(|b| {
                    let b = b.strip_suffix(b":").unwrap_or(b);
                    String::from_utf8_lossy(b).trim().to_owned()
                })
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| h.name.as_str().to_owned());
            let value = raw
                .get(start..end)
                .map(decode_header_value)
                .unwrap_or_default();
            (name, value)
        })
        .collect();

    out.subject = out
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("subject"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();

    out.text = collect_bodies(&message, &message.text_body, raw, false);
    out.html = collect_bodies(&message, &message.html_body, raw, true);

    for (idx, part) in message.parts.iter().enumerate() {
        if let Some(att) = attachment(&message, idx, part, raw) {
            out.attachments.push(att);
        }
    }
    out
}

/// Decodes one raw header value (the bytes after the colon, folding
/// included): raw 8-bit is sniffed to UTF-8, then RFC 2047 encoded words are
/// decoded and folding whitespace collapsed by mail-parser's unstructured
/// field parser.
fn decode_header_value(bytes: &[u8]) -> String {
    let mut utf8 = charset::sniff(bytes);
    // The unstructured parser only returns a value once it sees the end of
    // line; a header at the very end of a truncated message has none.
    if !utf8.ends_with('\n') {
        utf8.push('\n');
    }
    match MessageStream::new(utf8.as_bytes()).parse_unstructured() {
        HeaderValue::Text(t) => t.trim().to_owned(),
        _ => String::new(),
    }
}

/// Concatenates the body parts listed in `list` that really are of the
/// wanted kind (mail-parser lists an HTML-only body under `text_body` too and
/// would convert it; we do not invent text).
fn collect_bodies(message: &Message<'_>, list: &[u32], raw: &[u8], html: bool) -> String {
    let mut out = String::new();
    for &id in list {
        let Some(part) = message.parts.get(id as usize) else {
            continue;
        };
        let text = match (&part.body, html) {
            (PartType::Text(t), false) | (PartType::Html(t), true) => t,
            _ => continue,
        };
        let label = part
            .content_type()
            .and_then(|ct| ct.attribute("charset"))
            .map(str::to_owned);
        let decoded = if suspicious(&classify(label.as_deref()), text) {
            transfer_decoded(part, raw)
                .map(|b| charset::sniff(&b))
                .unwrap_or_else(|| text.to_string())
        } else if text.contains('\u{FFFD}') {
            // A known charset that does not fit the bytes (e.g. Shift_JIS
            // labelled ISO-2022-JP): keep whichever reading is cleaner.
            transfer_decoded(part, raw)
                .map(|b| charset::sniff(&b))
                .filter(|s| charset::replacements(s) < charset::replacements(text))
                .unwrap_or_else(|| text.to_string())
        } else {
            text.to_string()
        };
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&decoded);
    }
    out
}

/// The part's body after transfer decoding only (no charset conversion),
/// re-read from the raw message. `None` when the offsets do not describe a
/// slice of `raw` or the transfer encoding cannot be undone.
fn transfer_decoded(part: &MessagePart<'_>, raw: &[u8]) -> Option<Vec<u8>> {
    let slice = raw.get(part.offset_body as usize..part.offset_end as usize)?;
    match part.encoding {
        Cte::None => Some(slice.to_vec()),
        Cte::Base64 => {
            let (end, bytes) = MessageStream::new(slice).decode_base64_mime(b"");
            (end != usize::MAX).then(|| bytes.into_owned())
        }
        Cte::QuotedPrintable => {
            let (end, bytes) = MessageStream::new(slice).decode_quoted_printable_mime(b"");
            (end != usize::MAX).then(|| bytes.into_owned())
        }
    }
}

/// Returns the part as an attachment when it is one (see crate docs).
fn attachment(
    message: &Message<'_>,
    idx: usize,
    part: &MessagePart<'_>,
    raw: &[u8],
) -> Option<Attachment> {
    let is_body = match &part.body {
        PartType::Multipart(_) => return None,
        PartType::Text(_) => message.text_body.contains(&(idx as u32)),
        PartType::Html(_) => message.html_body.contains(&(idx as u32)),
        _ => false,
    };
    let disposition_attachment = part
        .content_disposition()
        .is_some_and(|d| d.is_attachment());
    let filename = filename(part, raw);
    if !(disposition_attachment || (!is_body && !filename.is_empty())) {
        return None;
    }

    let content_type = match part.content_type() {
        Some(ct) => {
            let mut s = ct.ctype().to_ascii_lowercase();
            if let Some(sub) = ct.subtype() {
                s.push('/');
                s.push_str(&sub.to_ascii_lowercase());
            }
            if s == "text" || s.starts_with("text/") {
                if let Some(cs) = ct.attribute("charset") {
                    s.push_str("; charset=");
                    s.push_str(cs);
                }
            }
            s
        }
        None if part.is_message() => "message/rfc822".to_owned(),
        None => "text/plain".to_owned(),
    };

    let data = match &part.body {
        PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
        // Text: keep the original charset. Message: mail-parser's nested
        // `raw_message` is the *outer* message for unencoded message/rfc822
        // parts, so re-read the part from `raw`.
        PartType::Text(_) | PartType::Html(_) => {
            transfer_decoded(part, raw).unwrap_or_else(|| part.contents().to_vec())
        }
        PartType::Message(_) => transfer_decoded(part, raw).unwrap_or_default(),
        PartType::Multipart(_) => return None,
    };

    Some(Attachment {
        filename,
        content_type: sanitize_header(&content_type),
        data,
    })
}

/// Raw value bytes of the part's first header named `name`.
fn raw_header<'r>(
    part: &MessagePart<'_>,
    raw: &'r [u8],
    name: &HeaderName<'_>,
) -> Option<&'r [u8]> {
    let h = part.headers.iter().find(|h| &h.name == name)?;
    raw.get(h.offset_start as usize..h.offset_end as usize)
}

/// `Content-Disposition: filename` else `Content-Type: name`; RFC 2231 forms
/// are decoded here (see [`crate::rfc2231`]), the rest (plain and RFC 2047)
/// by mail-parser.
fn filename(part: &MessagePart<'_>, raw: &[u8]) -> String {
    let name = raw_header(part, raw, &HeaderName::ContentDisposition)
        .and_then(|v| rfc2231::extended_param(v, "filename"))
        .filter(|n| !n.is_empty())
        .or_else(|| {
            part.content_disposition()
                .and_then(|d| d.attribute("filename"))
                .map(str::to_owned)
        })
        .filter(|n| !n.trim().is_empty())
        .or_else(|| {
            raw_header(part, raw, &HeaderName::ContentType)
                .and_then(|v| rfc2231::extended_param(v, "name"))
        })
        .filter(|n| !n.is_empty())
        .or_else(|| {
            part.content_type()
                .and_then(|c| c.attribute("name"))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    name.trim().to_owned()
}

/// Drops control characters (CR/LF/TAB/...) from a value later written into
/// an HTTP header line.
fn sanitize_header(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}
