//! End-to-end: SDK-shaped request bodies → validation → MIME bytes → parsed back by an
//! independent parser (mail-parser 0.11) and by encoding_rs, for both charsets.

use hato_cmc::*;
use mail_parser::{HeaderName, MessageParser, MimeHeaders};

const BOUNDARY: &str = "----sdkboundary7MA4YWxkTrZu0gW";

/// A multipart body the way the CMC SDKs send it: objects as JSON text fields, files as
/// `attachment1..N` parts.
fn multipart(fields: &[(&str, String)], files: &[(&str, &str, &str, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, value) in fields {
        b.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                .as_bytes(),
        );
        b.extend_from_slice(value.as_bytes());
        b.extend_from_slice(b"\r\n");
    }
    for (name, disposition_filename, ct, data) in files {
        b.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; {disposition_filename}\r\nContent-Type: {ct}\r\n\r\n"
            )
            .as_bytes(),
        );
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

fn request(charset: &str, subject: &str, text: &str, html: &str) -> SendRequest {
    let fields = vec![
        ("api_user", "user".to_string()),
        ("api_key", "key".to_string()),
        (
            "to",
            r#"[{"name":"山田 太郎","address":"taro@example.jp"},{"name":"","address":"hanako@example.jp"}]"#
                .to_string(),
        ),
        ("cc", r#"[{"address":"cc@example.jp"}]"#.to_string()),
        ("bcc", r#"[{"name":"秘密","address":"hidden@example.jp"}]"#.to_string()),
        ("from", r#"{"name":"ショップ 事務局","address":"shop@example.jp"}"#.to_string()),
        ("replyto", "support@example.jp".to_string()),
        ("envfrom", "bounce@return.example.jp".to_string()),
        (
            "headers",
            r#"[{"name":"X-Api-Data","value":"campaign-42"},{"name":"X-Note","value":"メモ"}]"#
                .to_string(),
        ),
        ("charset", charset.to_string()),
        ("subject", subject.to_string()),
        ("text", text.to_string()),
        ("html", html.to_string()),
        ("attachments", "3".to_string()),
    ];
    let png: &[u8] = &[0x89, b'P', b'N', b'G', 0, 1, 2, 255, 254];
    let files: Vec<(&str, &str, &str, &[u8])> = vec![
        (
            "attachment1",
            "filename=\"請求書 2025年7月.pdf\"",
            "application/pdf",
            b"%PDF-1.4 fake",
        ),
        (
            "attachment2",
            "filename*=UTF-8''%E7%94%BB%E5%83%8F.png",
            "image/png",
            png,
        ),
        (
            "attachment3",
            "filename=\"notes.txt\"",
            "text/plain",
            b"plain notes\r\n",
        ),
    ];
    let body = multipart(&fields, &files);
    let params = parse_form(&format!("multipart/form-data; boundary={BOUNDARY}"), &body)
        .expect("multipart parses");
    send_request(&params).expect("request validates")
}

fn check_with_mail_parser(req: &SendRequest, raw: &[u8], subject: &str, text: &str, html: &str) {
    let msg = MessageParser::default()
        .parse(raw)
        .expect("mail-parser parses");
    assert_eq!(msg.subject(), Some(subject));
    let from = msg.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("ショップ 事務局"));
    assert_eq!(from.address(), Some("shop@example.jp"));
    let to: Vec<(Option<&str>, Option<&str>)> = msg
        .to()
        .unwrap()
        .iter()
        .map(|a| (a.name(), a.address()))
        .collect();
    assert_eq!(
        to,
        vec![
            (Some("山田 太郎"), Some("taro@example.jp")),
            (None, Some("hanako@example.jp"))
        ]
    );
    assert_eq!(
        msg.cc().unwrap().first().unwrap().address(),
        Some("cc@example.jp")
    );
    assert_eq!(
        msg.reply_to().unwrap().first().unwrap().address(),
        Some("support@example.jp")
    );
    assert!(msg.bcc().is_none(), "Bcc must not be written");
    assert!(!String::from_utf8_lossy(raw).contains("hidden@example.jp"));
    assert_eq!(msg.message_id(), Some("20250701.abc@hato.example"));
    assert_eq!(
        msg.header_raw("X-Api-Data").map(str::trim),
        Some("campaign-42")
    );
    let with_note = MessageParser::default()
        .header_text(HeaderName::Other("X-Note".into()))
        .parse(raw)
        .unwrap();
    let note = with_note
        .header("X-Note")
        .and_then(|h| h.as_text())
        .unwrap();
    assert_eq!(note, "メモ");
    let expect_text = text.replace("\r\n", "\n");
    assert_eq!(
        msg.body_text(0).unwrap().replace("\r\n", "\n").trim_end(),
        expect_text.trim_end()
    );
    assert_eq!(
        msg.body_html(0).unwrap().replace("\r\n", "\n").trim_end(),
        html
    );

    let atts: Vec<(String, String, Vec<u8>)> = msg
        .attachments()
        .map(|a| {
            let ct = a.content_type().unwrap();
            (
                a.attachment_name().unwrap().to_string(),
                format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")),
                a.contents().to_vec(),
            )
        })
        .collect();
    let expected: Vec<(String, String, Vec<u8>)> = req
        .attachments
        .iter()
        .map(|a| (a.filename.clone(), a.content_type.clone(), a.data.clone()))
        .collect();
    assert_eq!(atts, expected);
    assert_eq!(atts[0].0, "請求書 2025年7月.pdf");
    assert_eq!(atts[1].0, "画像.png");

    // wire rules: CRLF only, no line over 998 bytes
    let s = String::from_utf8_lossy(raw);
    assert!(!s.replace("\r\n", "").contains('\n'));
    assert!(raw.split(|b| *b == b'\n').all(|l| l.len() <= 999));
    // RFC 2047: a line holding encoded words is at most 76 characters
    for line in s.split("\r\n").filter(|l| l.contains("=?")) {
        assert!(line.len() <= 76, "{line}");
    }
}

#[test]
fn utf8_message_round_trips_through_mail_parser() {
    let subject =
        "【ご案内】7月のお知らせ – café ☕ and a fairly long subject line that needs folding";
    let text = "こんにちは、山田様。\nご注文ありがとうございます。\n\n-- \nShop ☕";
    let html = "<html><body><p>こんにちは <b>山田様</b></p><p>☕</p></body></html>";
    let req = request("UTF-8", subject, text, html);
    assert_eq!(req.charset, Charset::Utf8);
    let date = format_rfc2822(1_751_365_800, TzOffset::JST);
    let raw = build_message(&req, "<20250701.abc@hato.example>", &date);
    check_with_mail_parser(&req, &raw, subject, text, html);
    let msg = MessageParser::default().parse(&raw[..]).unwrap();
    assert_eq!(
        msg.date().unwrap().to_rfc3339(),
        "2025-07-01T19:30:00+09:00"
    );

    let (mail_from, rcpts) = envelope(&req);
    assert_eq!(mail_from, "bounce@return.example.jp");
    assert_eq!(
        rcpts,
        vec![
            "taro@example.jp",
            "hanako@example.jp",
            "cc@example.jp",
            "hidden@example.jp"
        ]
    );
}

/// Finds the body of the first part whose headers contain `marker`.
fn part_body<'a>(raw: &'a [u8], marker: &str) -> &'a [u8] {
    let s = std::str::from_utf8(raw).expect("ISO-2022-JP output is 7-bit");
    let at = s.find(marker).unwrap();
    let start = at + s[at..].find("\r\n\r\n").unwrap() + 4;
    let end = start + s[start..].find("\r\n--=_hato_").unwrap();
    &raw[start..end]
}

#[test]
fn iso2022jp_message_round_trips_through_mail_parser_and_encoding_rs() {
    let subject = "【重要】ご注文確認のお知らせ（第１２３号）";
    let text =
        "山田様\n\nいつもご利用ありがとうございます。\n①番の商品を発送しました。\nASCII line";
    let html = "<p>山田様</p><p>発送しました。</p>";
    let req = request("ISO-2022-JP", subject, text, html);
    assert_eq!(req.charset, Charset::Iso2022Jp);
    let raw = build_message(
        &req,
        "20250701.abc@hato.example",
        "Tue, 01 Jul 2025 19:30:00 +0900",
    );
    assert!(raw.is_ascii(), "ISO-2022-JP messages are 7-bit");
    let s = String::from_utf8(raw.clone()).unwrap();
    assert!(s.contains("Subject: =?ISO-2022-JP?B?"));
    assert!(s.contains("From: =?ISO-2022-JP?B?"));
    assert!(s.contains(
        "Content-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit"
    ));
    check_with_mail_parser(&req, &raw, subject, text, html);

    // decode the body bytes with encoding_rs directly
    let body = part_body(&raw, "text/plain; charset=ISO-2022-JP");
    let (decoded, _, had_errors) = encoding_rs::ISO_2022_JP.decode(body);
    assert!(!had_errors);
    assert_eq!(decoded.replace("\r\n", "\n"), text);
    let body = part_body(&raw, "text/html; charset=ISO-2022-JP");
    assert_eq!(encoding_rs::ISO_2022_JP.decode(body).0, html);

    // decode the Subject's encoded words by hand with encoding_rs
    let subject_line: String = s
        .split("\r\n")
        .skip_while(|l| !l.starts_with("Subject: "))
        .take_while(|l| l.starts_with("Subject: ") || l.starts_with(' '))
        .collect::<Vec<_>>()
        .join("");
    let mut decoded_subject = String::new();
    for word in subject_line
        .trim_start_matches("Subject: ")
        .split_whitespace()
    {
        let b64 = word
            .strip_prefix("=?ISO-2022-JP?B?")
            .and_then(|w| w.strip_suffix("?="))
            .expect("every word is an ISO-2022-JP B word");
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert!(bytes.ends_with(b"\x1b(B"), "each word ends in ASCII state");
        decoded_subject.push_str(&encoding_rs::ISO_2022_JP.decode(&bytes).0);
    }
    assert_eq!(decoded_subject, subject);
}

#[test]
fn bulk_messages_round_trip() {
    let body = serde_json::json!({
        "api_user": "u", "api_key": "k",
        "from": {"name": "Shop", "address": "shop@example.jp"},
        "to": [
            {"name": "山田", "address": "yamada@example.jp", "code": "A-100"},
            {"name": "Smith", "address": "smith@example.com", "code": 200}
        ],
        "charset": "ISO-2022-JP",
        "subject": "((#name#))様 クーポン((#code#))",
        "text": "((#name#))様\nコード: ((#code#))",
        "html": "<p>((#code#))</p>"
    });
    let params = parse_form("application/json", body.to_string().as_bytes()).unwrap();
    let bulk = bulk_request(&params).unwrap();
    let msgs: Vec<SendRequest> = bulk.messages().collect();
    assert_eq!(msgs.len(), 2);
    for (i, (m, (name, addr, code))) in msgs
        .iter()
        .zip([
            ("山田", "yamada@example.jp", "A-100"),
            ("Smith", "smith@example.com", "200"),
        ])
        .enumerate()
    {
        let raw = build_message(
            m,
            &format!("bulk.{i}@hato.example"),
            "Tue, 01 Jul 2025 19:30:00 +0900",
        );
        let parsed = MessageParser::default().parse(&raw[..]).unwrap();
        assert_eq!(
            parsed.subject(),
            Some(format!("{name}様 クーポン{code}").as_str())
        );
        let to = parsed.to().unwrap();
        assert_eq!(to.iter().count(), 1);
        assert_eq!(to.first().unwrap().address(), Some(addr));
        assert_eq!(
            parsed
                .body_text(0)
                .unwrap()
                .replace("\r\n", "\n")
                .trim_end(),
            format!("{name}様\nコード: {code}")
        );
        assert_eq!(envelope(m).1, vec![addr.to_string()]);
    }
}

#[test]
fn text_only_and_html_only_shapes_parse() {
    let mut req = request("UTF-8", "s", "only text", "<p>x</p>");
    req.attachments.clear();
    req.html = None;
    let raw = build_message(&req, "a@b", "Tue, 01 Jul 2025 19:30:00 +0900");
    let msg = MessageParser::default().parse(&raw[..]).unwrap();
    assert_eq!(msg.body_text(0).unwrap().trim_end(), "only text");
    assert_eq!(msg.attachment_count(), 0);
    assert!(msg.root_part().is_text());
}
