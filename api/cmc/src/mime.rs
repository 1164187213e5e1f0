//! RFC 5322 / MIME message building and the SMTP envelope.
//!
//! Layout: `text/plain` and/or `text/html` (`multipart/alternative` when both); with
//! attachments the body goes first inside `multipart/mixed`. Header order: Date, From, To,
//! Cc, Reply-To, Subject, Message-ID, MIME-Version, the custom headers in request order, then
//! Content-Type / Content-Transfer-Encoding. `Bcc` is never written.
//!
//! Encodings:
//! * names and Subject: RFC 2047 B encoding in the request charset (ISO-2022-JP words are
//!   self-contained JIS sequences); printable ASCII is written as-is.
//! * UTF-8 bodies: `7bit` for short-lined ASCII, else `quoted-printable` for mostly-ASCII text
//!   and `base64` for the rest.
//! * ISO-2022-JP bodies: `7bit` (every line ends in ASCII state); `base64` only when a line
//!   would exceed 998 bytes.
//! * attachments: `base64`; file name as RFC 2231 `filename*` in Content-Disposition and as an
//!   RFC 2047 `name` in Content-Type for older readers.
//!
//! Line breaks in bodies (CRLF, CR, LF) all become CRLF; every line is at most 998 bytes.

use crate::address::Mailbox;
use crate::encoding::{
    base64_lines, encode_phrase, encode_unstructured, encoded_words, fold_tokens,
    is_printable_ascii, mime_param, quoted_printable, to_crlf, Charset,
};
use crate::send::SendRequest;

/// The SMTP envelope of `req`: MAIL FROM is `envfrom` or else the From address; RCPT TO is
/// To, then Cc, then Bcc, with duplicates (compared case-insensitively) removed, first
/// spelling kept.
pub fn envelope(req: &SendRequest) -> (String, Vec<String>) {
    let mail_from = req
        .envfrom
        .clone()
        .unwrap_or_else(|| req.from.address.clone());
    let mut seen = std::collections::HashSet::new();
    let rcpts = req
        .to
        .iter()
        .chain(&req.cc)
        .chain(&req.bcc)
        .filter(|m| seen.insert(m.address.to_ascii_lowercase()))
        .map(|m| m.address.clone())
        .collect();
    (mail_from, rcpts)
}

/// Builds the message bytes (CRLF line breaks) for `req`.
///
/// `message_id` may be given with or without angle brackets; `date_rfc2822` is written as the
/// Date header verbatim (see [`crate::time::format_rfc2822`]). Both are stripped of CR/LF
/// defensively. The MIME boundaries are derived from `message_id`, so the output is
/// deterministic.
pub fn build_message(req: &SendRequest, message_id: &str, date_rfc2822: &str) -> Vec<u8> {
    let cs = req.charset;
    let mut out = String::with_capacity(1024);
    let clean = |s: &str| {
        s.chars()
            .filter(|c| *c != '\r' && *c != '\n')
            .collect::<String>()
    };
    push_header(&mut out, "Date", &clean(date_rfc2822));
    push_header(
        &mut out,
        "From",
        &mailbox_list("From", std::slice::from_ref(&req.from), cs),
    );
    if !req.to.is_empty() {
        push_header(&mut out, "To", &mailbox_list("To", &req.to, cs));
    }
    if !req.cc.is_empty() {
        push_header(&mut out, "Cc", &mailbox_list("Cc", &req.cc, cs));
    }
    if let Some(ref r) = req.reply_to {
        push_header(
            &mut out,
            "Reply-To",
            &mailbox_list("Reply-To", std::slice::from_ref(r), cs),
        );
    }
    push_header(
        &mut out,
        "Subject",
        &encode_unstructured(7, &req.subject, cs),
    );
    let mid = clean(message_id);
    let mid = mid.trim().trim_start_matches('<').trim_end_matches('>');
    push_header(&mut out, "Message-ID", &format!("<{mid}>"));
    push_header(&mut out, "MIME-Version", "1.0");
    for h in &req.headers {
        let name: String = h
            .name
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != ':')
            .collect();
        if name.is_empty() {
            continue;
        }
        let value = encode_unstructured(name.len(), &h.value, cs);
        push_header(&mut out, &name, &value);
    }

    let seed = fnv1a(mid.as_bytes());
    let body = body_part(req);
    let root = if req.attachments.is_empty() {
        body
    } else {
        let mut parts = vec![body];
        parts.extend(req.attachments.iter().map(|a| attachment_part(a, cs)));
        Part::Multi {
            subtype: "mixed",
            parts,
        }
    };
    let mut counter = 0u32;
    let mut bytes = out.into_bytes();
    render(&root, &mut bytes, seed, &mut counter);
    bytes
}

fn push_header(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    out.push_str(value);
    out.push_str("\r\n");
}

/// An address list header value; mailboxes are separated by commas and the value is folded
/// so lines with encoded words stay within 76 characters.
fn mailbox_list(header: &str, list: &[Mailbox], cs: Charset) -> String {
    let first_col = header.len() + 2;
    let mut tokens: Vec<String> = Vec::new();
    for (i, m) in list.iter().enumerate() {
        let mut mailbox_tokens = match m.name.as_deref().filter(|n| !n.trim().is_empty()) {
            Some(n) => {
                let first_max = if tokens.is_empty() {
                    76usize.saturating_sub(first_col)
                } else {
                    75
                };
                let mut t = encode_phrase(n, cs, first_max);
                t.push(format!("<{}>", m.address));
                t
            }
            None => vec![m.address.clone()],
        };
        if i + 1 < list.len() {
            if let Some(t) = mailbox_tokens.last_mut() {
                t.push(',');
            }
        }
        tokens.append(&mut mailbox_tokens);
    }
    fold_tokens(first_col, &tokens)
}

/// A MIME entity: headers (without the trailing blank line) and an encoded body, or a
/// multipart container.
enum Part {
    Leaf {
        headers: String,
        body: String,
    },
    Multi {
        subtype: &'static str,
        parts: Vec<Part>,
    },
}

fn body_part(req: &SendRequest) -> Part {
    let cs = req.charset;
    let text = req.text.as_deref().map(|t| text_part("plain", t, cs));
    let html = req.html.as_deref().map(|h| text_part("html", h, cs));
    match (text, html) {
        (Some(t), Some(h)) => Part::Multi {
            subtype: "alternative",
            parts: vec![t, h],
        },
        (Some(t), None) => t,
        (None, Some(h)) => h,
        (None, None) => text_part("plain", "", cs),
    }
}

fn text_part(subtype: &str, content: &str, cs: Charset) -> Part {
    let crlf = to_crlf(content);
    let bytes = cs
        .encode(&crlf)
        .unwrap_or_else(|| crlf.clone().into_bytes());
    // validation guarantees representability; an unrepresentable text falls back to UTF-8
    let cs = if cs.encode(&crlf).is_some() {
        cs
    } else {
        Charset::Utf8
    };
    let lines_ok = bytes.split(|b| *b == b'\n').all(|l| l.len() <= 998);
    let (cte, body) = if bytes.is_ascii() && lines_ok {
        ("7bit", String::from_utf8_lossy(&bytes).into_owned())
    } else if cs == Charset::Iso2022Jp {
        ("base64", base64_lines(&bytes))
    } else {
        let non_ascii = bytes.iter().filter(|b| !b.is_ascii()).count();
        if non_ascii * 6 <= bytes.len() {
            ("quoted-printable", quoted_printable(&bytes))
        } else {
            ("base64", base64_lines(&bytes))
        }
    };
    Part::Leaf {
        headers: format!(
            "Content-Type: text/{subtype}; charset={}\r\nContent-Transfer-Encoding: {cte}\r\n",
            cs.label()
        ),
        body,
    }
}

fn attachment_part(a: &crate::send::Attachment, cs: Charset) -> Part {
    let name_param = if is_printable_ascii(&a.filename) && a.filename.len() <= 60 {
        mime_param("name", &a.filename).join(";\r\n ")
    } else {
        // ` name="` + word + `"` stays within 76 columns
        format!(
            "name=\"{}\"",
            encoded_words(&a.filename, cs, 66).join("\r\n ")
        )
    };
    let disposition = mime_param("filename", &a.filename).join(";\r\n ");
    Part::Leaf {
        headers: format!(
            "Content-Type: {};\r\n {name_param}\r\nContent-Disposition: attachment;\r\n {disposition}\r\nContent-Transfer-Encoding: base64\r\n",
            a.content_type
        ),
        body: base64_lines(&a.data),
    }
}

/// Writes `part` (headers, blank line, body) into `out`.
fn render(part: &Part, out: &mut Vec<u8>, seed: u64, counter: &mut u32) {
    match part {
        Part::Leaf { headers, body } => {
            out.extend_from_slice(headers.as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(body.as_bytes());
            if !body.is_empty() && !body.ends_with("\r\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
        Part::Multi { subtype, parts } => {
            let mut rendered: Vec<Vec<u8>> = Vec::with_capacity(parts.len());
            for p in parts {
                let mut buf = Vec::new();
                render(p, &mut buf, seed, counter);
                rendered.push(buf);
            }
            *counter += 1;
            let mut nonce = 0u32;
            let boundary = loop {
                let b = format!("=_hato_{seed:016x}_{}_{nonce}", *counter);
                let clash = rendered
                    .iter()
                    .any(|r| contains(r, format!("--{b}").as_bytes()));
                if !clash {
                    break b;
                }
                nonce += 1;
            };
            out.extend_from_slice(
                format!("Content-Type: multipart/{subtype};\r\n boundary=\"{boundary}\"\r\n\r\n")
                    .as_bytes(),
            );
            for r in &rendered {
                out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                out.extend_from_slice(r);
            }
            out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// FNV-1a, for deterministic boundaries.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::{Attachment, Header};

    fn req() -> SendRequest {
        SendRequest {
            api_user: "u".into(),
            api_key: "k".into(),
            to: vec![
                Mailbox::with_name("宛先 太郎", "to@example.jp"),
                Mailbox::new("TO@example.jp"),
            ],
            cc: vec![Mailbox::with_name("Smith, John", "cc@example.jp")],
            bcc: vec![
                Mailbox::new("secret@example.jp"),
                Mailbox::new("to@EXAMPLE.jp"),
            ],
            from: Mailbox::with_name("Shop", "shop@example.jp"),
            reply_to: Some(Mailbox::new("reply@example.jp")),
            envfrom: None,
            headers: vec![Header {
                name: "X-Api-Data".into(),
                value: "tag-1".into(),
            }],
            charset: Charset::Utf8,
            subject: "Hello".into(),
            text: Some("line1\nline2".into()),
            html: None,
            attachments: vec![],
        }
    }

    fn as_text(b: &[u8]) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn envelope_dedups_case_insensitively() {
        let mut r = req();
        let (from, rcpts) = envelope(&r);
        assert_eq!(from, "shop@example.jp");
        assert_eq!(
            rcpts,
            vec!["to@example.jp", "cc@example.jp", "secret@example.jp"]
        );
        r.envfrom = Some("bounce@example.jp".into());
        assert_eq!(envelope(&r).0, "bounce@example.jp");
    }

    #[test]
    fn simple_text_message_layout() {
        let m = as_text(&build_message(
            &req(),
            "<abc@hato>",
            "Tue, 01 Jul 2025 12:00:00 +0000",
        ));
        let (head, body) = m.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("Date: Tue, 01 Jul 2025 12:00:00 +0000\r\nFrom: Shop <shop@example.jp>\r\nTo: =?UTF-8?B?"));
        assert!(head.contains("\r\nCc: \"Smith, John\" <cc@example.jp>\r\n"));
        assert!(head.contains("\r\nReply-To: reply@example.jp\r\n"));
        assert!(head.contains("\r\nSubject: Hello\r\n"));
        assert!(head.contains("\r\nMessage-ID: <abc@hato>\r\n"));
        assert!(head.contains("\r\nX-Api-Data: tag-1\r\n"));
        assert!(head.contains(
            "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 7bit"
        ));
        assert!(!m.to_ascii_lowercase().contains("bcc"));
        assert!(!m.contains("secret@example.jp"));
        assert_eq!(body, "line1\r\nline2\r\n");
        // no bare LF anywhere
        assert!(!m.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn alternative_and_mixed_structure() {
        let mut r = req();
        r.html = Some("<p>hi</p>".into());
        let m = as_text(&build_message(&r, "id1@x", "d"));
        assert!(m.contains("Content-Type: multipart/alternative;"));
        assert!(m.find("text/plain").unwrap() < m.find("text/html").unwrap());
        r.attachments = vec![Attachment {
            filename: "報告書.pdf".into(),
            content_type: "application/pdf".into(),
            data: vec![0, 1, 2, 3],
        }];
        let m = as_text(&build_message(&r, "id1@x", "d"));
        assert!(m.contains("Content-Type: multipart/mixed;"));
        assert!(m.contains("filename*=UTF-8''%E5%A0%B1%E5%91%8A%E6%9B%B8.pdf"));
        assert!(m.contains("name=\"=?UTF-8?B?"));
        assert!(m.contains("AAECAw==\r\n"));
        // deterministic
        assert_eq!(
            build_message(&r, "id1@x", "d"),
            build_message(&r, "id1@x", "d")
        );
        for line in m.split("\r\n") {
            assert!(line.len() <= 998);
            if line.contains("=?") {
                assert!(line.len() <= 76, "{line}");
            }
        }
    }

    #[test]
    fn body_transfer_encodings() {
        let mut r = req();
        r.text = Some("Hello, café".into());
        let m = as_text(&build_message(&r, "a@b", "d"));
        assert!(m.contains("Content-Transfer-Encoding: quoted-printable"));
        assert!(m.contains("caf=C3=A9"));
        r.text = Some("日本語の本文です。".into());
        let m = as_text(&build_message(&r, "a@b", "d"));
        assert!(m.contains("Content-Transfer-Encoding: base64"));
        r.text = Some("x".repeat(2000));
        let m = as_text(&build_message(&r, "a@b", "d"));
        assert!(m.contains("Content-Transfer-Encoding: quoted-printable"));
        r.charset = Charset::Iso2022Jp;
        r.text = Some("日本語の本文です。\nASCII line".into());
        let m = build_message(&r, "a@b", "d");
        let s = String::from_utf8_lossy(&m);
        assert!(s.contains(
            "Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit"
        ));
        assert!(m.is_ascii());
        // each line ends in ASCII state
        let body = s.split_once("\r\n\r\n").unwrap().1;
        for line in body.split("\r\n").filter(|l| l.contains('\x1b')) {
            assert!(line.ends_with("\x1b(B"), "{line:?}");
        }
        r.text = Some("あ".repeat(600));
        let m = as_text(&build_message(&r, "a@b", "d"));
        assert!(m.contains("charset=ISO-2022-JP\r\nContent-Transfer-Encoding: base64"));
    }

    #[test]
    fn headers_cannot_inject_even_if_constructed_directly() {
        let mut r = req();
        r.subject = "a\r\nBcc: evil@x.jp".into();
        r.headers = vec![Header {
            name: "X-Bad\r\nName".into(),
            value: "v\r\nInjected: 1".into(),
        }];
        let m = as_text(&build_message(&r, "id\r\nX: y", "date\r\nX: z"));
        for line in m.split("\r\n") {
            assert!(
                !line.starts_with("Bcc:")
                    && !line.starts_with("Injected:")
                    && !line.starts_with("X:")
            );
        }
        assert!(m.contains("X-BadName: v  Injected: 1\r\n"));
    }

    #[test]
    fn empty_bodies_still_form_a_message() {
        let mut r = req();
        r.text = None;
        r.html = Some("<b>x</b>".into());
        let m = as_text(&build_message(&r, "a@b", "d"));
        assert!(m.contains("Content-Type: text/html; charset=UTF-8"));
        assert!(!m.contains("text/plain"));
        r.html = None;
        let m = as_text(&build_message(&r, "a@b", "d"));
        assert!(m.ends_with("Content-Transfer-Encoding: 7bit\r\n\r\n"));
    }

    #[test]
    fn boundary_clash_is_avoided() {
        let mut r = req();
        let seed = fnv1a(b"clash@x");
        r.text = Some(format!("--=_hato_{seed:016x}_1_0"));
        r.html = Some("<p>x</p>".into());
        let m = as_text(&build_message(&r, "clash@x", "d"));
        assert!(m.contains(&format!("boundary=\"=_hato_{seed:016x}_1_1\"")));
    }
}
