//! [`InboundMail`] → webhook request body ([`Payload`]).

use base64::Engine as _;
use serde::Serialize;

use crate::{Encoding, InboundMail, Payload};

#[derive(Serialize)]
struct HeaderObj<'a> {
    name: &'a str,
    value: &'a str,
}

/// JSON body; field order follows the CMC parameter table.
#[derive(Serialize)]
struct JsonBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    api_key: Option<&'a str>,
    server_composition: &'a str,
    filter: &'a str,
    headers: Vec<HeaderObj<'a>>,
    text: &'a str,
    html: &'a str,
    subject: &'a str,
    #[serde(rename = "envelope-from")]
    envelope_from: &'a str,
    #[serde(rename = "envelope-to")]
    envelope_to: &'a str,
    attachments: usize,
}

fn header_objs(mail: &InboundMail) -> Vec<HeaderObj<'_>> {
    mail.headers
        .iter()
        .map(|(name, value)| HeaderObj { name, value })
        .collect()
}

/// Encodes `mail` as the body of a CMC-compatible inbound webhook request.
///
/// * `server_composition`: the server configuration name sent as
///   `server_composition`.
/// * `api_key`: sent as `api_key` when `Some` (even if empty), omitted when
///   `None`.
/// * `enc`: [`Encoding::Json`] → `application/json`, one object, `headers` a
///   JSON array, `attachments` the attachment count, no files.
///   [`Encoding::Multipart`] → `multipart/form-data`, one text field per
///   parameter (`headers` as a JSON string, `attachments` as a decimal
///   count), then `attachment1..N` file parts. Text fields carry
///   `Content-Type: text/plain; charset=UTF-8`.
/// * `boundary`: the multipart boundary (ignored for JSON), passed in so the
///   output is deterministic. The caller must pick one that cannot occur in
///   the content (e.g. 32+ random alphanumerics); it is not checked here.
///   It is quoted in `content_type` when it is not an RFC 2045 token.
///
/// File parts: `Content-Type` is the attachment's (`application/octet-stream`
/// if empty); the filename is `attachmentN` when the attachment has none. A
/// filename made of printable ASCII without `"` or `\` is sent as
/// `filename="..."` alone; any other name is sent as an ASCII fallback
/// `filename="..."` (the RFC 2047 form `=?UTF-8?B?...?=` for non-ASCII names,
/// as CMC does, or the name with unsafe characters replaced by `_`) followed
/// by the exact name as `filename*=UTF-8''<percent-encoded>` (RFC 2231/5987).
pub fn encode(
    mail: &InboundMail,
    server_composition: &str,
    api_key: Option<&str>,
    enc: Encoding,
    boundary: &str,
) -> Payload {
    match enc {
        Encoding::Json => {
            let body = JsonBody {
                api_key,
                server_composition,
                filter: &mail.filter,
                headers: header_objs(mail),
                text: &mail.text,
                html: &mail.html,
                subject: &mail.subject,
                envelope_from: &mail.envelope_from,
                envelope_to: &mail.envelope_to,
                attachments: mail.attachments.len(),
            };
            Payload {
                content_type: "application/json".to_owned(),
                // Only strings and an integer: serialization cannot fail.
                body: serde_json::to_vec(&body).unwrap_or_default(),
            }
        }
        Encoding::Multipart => multipart(mail, server_composition, api_key, boundary),
    }
}

fn multipart(
    mail: &InboundMail,
    server_composition: &str,
    api_key: Option<&str>,
    boundary: &str,
) -> Payload {
    let headers_json = serde_json::to_string(&header_objs(mail)).unwrap_or_default();
    let count = mail.attachments.len().to_string();

    let mut fields: Vec<(&str, &str)> = Vec::with_capacity(10);
    if let Some(key) = api_key {
        fields.push(("api_key", key));
    }
    fields.extend([
        ("server_composition", server_composition),
        ("filter", mail.filter.as_str()),
        ("headers", headers_json.as_str()),
        ("text", mail.text.as_str()),
        ("html", mail.html.as_str()),
        ("subject", mail.subject.as_str()),
        ("envelope-from", mail.envelope_from.as_str()),
        ("envelope-to", mail.envelope_to.as_str()),
        ("attachments", count.as_str()),
    ]);

    let mut body = Vec::new();
    for (name, value) in fields {
        start_part(&mut body, boundary);
        body.extend_from_slice(b"Content-Disposition: form-data; name=\"");
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(b"\"\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n");
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    for (i, att) in mail.attachments.iter().enumerate() {
        let n = i + 1;
        start_part(&mut body, boundary);
        body.extend_from_slice(b"Content-Disposition: form-data; name=\"attachment");
        body.extend_from_slice(n.to_string().as_bytes());
        body.extend_from_slice(b"\"; ");
        let fallback_name;
        let filename = if att.filename.is_empty() {
            fallback_name = format!("attachment{n}");
            fallback_name.as_str()
        } else {
            att.filename.as_str()
        };
        body.extend_from_slice(filename_params(filename).as_bytes());
        body.extend_from_slice(b"\r\nContent-Type: ");
        let ct: String = att
            .content_type
            .chars()
            .filter(|c| !c.is_control())
            .collect();
        let ct = if ct.trim().is_empty() {
            "application/octet-stream"
        } else {
            ct.trim()
        };
        body.extend_from_slice(ct.as_bytes());
        body.extend_from_slice(b"\r\n\r\n");
        body.extend_from_slice(&att.data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--");
    body.extend_from_slice(boundary.as_bytes());
    body.extend_from_slice(b"--\r\n");

    let quoted = if !boundary.is_empty() && boundary.bytes().all(is_token_char) {
        boundary.to_owned()
    } else {
        format!("\"{boundary}\"")
    };
    Payload {
        content_type: format!("multipart/form-data; boundary={quoted}"),
        body,
    }
}

fn start_part(body: &mut Vec<u8>, boundary: &str) {
    body.extend_from_slice(b"--");
    body.extend_from_slice(boundary.as_bytes());
    body.extend_from_slice(b"\r\n");
}

/// RFC 2045 token character (printable ASCII minus tspecials and space).
fn is_token_char(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b)
}

/// Printable ASCII that can sit in a quoted-string without escaping.
fn is_plain_filename(name: &str) -> bool {
    name.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// RFC 5987 attr-char.
fn is_attr_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b)
}

/// The `filename=...` (and, when needed, `filename*=...`) parameters.
fn filename_params(name: &str) -> String {
    if is_plain_filename(name) {
        return format!("filename=\"{name}\"");
    }
    let fallback = if name.is_ascii() {
        name.chars()
            .map(|c| {
                if c.is_ascii_control() || c == '"' || c == '\\' {
                    '_'
                } else {
                    c
                }
            })
            .collect()
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(name.as_bytes())
        )
    };
    let mut pct = String::with_capacity(name.len() * 3);
    for &b in name.as_bytes() {
        if is_attr_char(b) {
            pct.push(b as char);
        } else {
            pct.push_str(&format!("%{b:02X}"));
        }
    }
    format!("filename=\"{fallback}\"; filename*=UTF-8''{pct}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filename_forms() {
        assert_eq!(filename_params("a b.pdf"), "filename=\"a b.pdf\"");
        assert_eq!(
            filename_params("請求書.pdf"),
            "filename=\"=?UTF-8?B?6KuL5rGC5pu4LnBkZg==?=\"; \
             filename*=UTF-8''%E8%AB%8B%E6%B1%82%E6%9B%B8.pdf"
        );
        assert_eq!(
            filename_params("a\"b\r\n.txt"),
            "filename=\"a_b__.txt\"; filename*=UTF-8''a%22b%0D%0A.txt"
        );
    }

    #[test]
    fn boundary_quoting() {
        let m = InboundMail::default();
        let p = encode(&m, "pro", None, Encoding::Multipart, "abc123");
        assert_eq!(p.content_type, "multipart/form-data; boundary=abc123");
        let p = encode(&m, "pro", None, Encoding::Multipart, "a b:c");
        assert_eq!(p.content_type, "multipart/form-data; boundary=\"a b:c\"");
    }
}
