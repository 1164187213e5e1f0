//! Behaviour tests for `hato_inbound` against fixtures made by
//! `tests/fixtures/gen.py` (Python codecs, independent of the Rust decoders).

use base64::Engine as _;
use hato_inbound::{encode, parse, Attachment, Encoding, InboundMail};

const ISO2022JP: &[u8] = include_bytes!("fixtures/iso2022jp.eml");
const SJIS: &[u8] = include_bytes!("fixtures/sjis.eml");
const UTF8_QP: &[u8] = include_bytes!("fixtures/utf8_qp.eml");
const BASE64: &[u8] = include_bytes!("fixtures/base64.eml");
const ALTERNATIVE: &[u8] = include_bytes!("fixtures/alternative.eml");
const MIXED: &[u8] = include_bytes!("fixtures/mixed_attachment.eml");
const HTML_ONLY: &[u8] = include_bytes!("fixtures/html_only.eml");
const UNDECLARED_SJIS: &[u8] = include_bytes!("fixtures/undeclared_sjis.eml");

fn p(raw: &[u8]) -> InboundMail {
    parse(
        raw,
        "support",
        "sender@example.jp",
        "support@hato.example.com",
    )
}

fn header<'a>(m: &'a InboundMail, name: &str) -> Vec<&'a str> {
    m.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn pdf_bytes() -> Vec<u8> {
    let mut v = b"%PDF-1.4\n".to_vec();
    v.extend(0u8..=255);
    v.extend_from_slice(b"\n%%EOF\n");
    v
}

fn png_bytes() -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    for _ in 0..20 {
        v.extend_from_slice(&[0, 1, 2, 0xff]);
    }
    v
}

/// "名前,値\r\n田中,1\r\n" in CP932.
const CSV_SJIS: &[u8] = &[
    150, 188, 145, 79, 44, 146, 108, 13, 10, 147, 99, 146, 134, 44, 49, 13, 10,
];

#[test]
fn envelope_and_filter_are_copied() {
    let m = p(ISO2022JP);
    assert_eq!(m.filter, "support");
    assert_eq!(m.envelope_from, "sender@example.jp");
    assert_eq!(m.envelope_to, "support@hato.example.com");
}

#[test]
fn iso_2022_jp_subject_and_body() {
    let m = p(ISO2022JP);
    // Two encoded words across a fold: joined without the folding space.
    assert_eq!(m.subject, "お問い合わせについて");
    assert_eq!(m.text, "こんにちは、世界。\r\n日本語の本文です。\r\n");
    assert_eq!(m.html, "");
    assert!(m.attachments.is_empty());
    assert_eq!(header(&m, "From"), ["山田太郎 <taro@example.jp>"]);
}

#[test]
fn headers_in_order_with_duplicates_and_original_names() {
    let m = p(ISO2022JP);
    let names: Vec<&str> = m.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "return-path",
            "Received",
            "Received",
            "From",
            "To",
            "Subject",
            "X-Folded",
            "Date",
            "MIME-Version",
            "Content-Type",
            "Content-Transfer-Encoding",
        ]
    );
    assert_eq!(m.headers[0].1, "<bounce@example.jp>");
    let received = header(&m, "Received");
    assert_eq!(
        received,
        [
            "from mx1.example.jp (mx1.example.jp [192.0.2.1]) by hato.example.com \
             with ESMTP id AAA111; Mon, 1 Jan 2024 10:00:00 +0900",
            "from client.example.jp by mx1.example.jp with ESMTP id BBB222",
        ]
    );
}

#[test]
fn folded_header_is_unfolded() {
    let m = p(ISO2022JP);
    assert_eq!(header(&m, "X-Folded"), ["first part second part"]);
    for (n, v) in &m.headers {
        assert!(!v.contains(['\r', '\n']), "{n}: {v:?} still folded");
    }
}

#[test]
fn shift_jis_body() {
    let m = p(SJIS);
    assert_eq!(m.subject, "シフトJIS");
    // 表/能/予 have 0x5C trail bytes; ① is a CP932 (NEC) extension.
    assert_eq!(m.text, "シフトJISの本文①です。\r\n表示と能力と予定\r\n");
    assert_eq!(m.html, "");
}

#[test]
fn utf8_quoted_printable_body() {
    let m = p(UTF8_QP);
    assert_eq!(m.subject, "Grüße");
    let expected = format!("Grüße aus Köln – {}\r\n", "長い行".repeat(12));
    assert_eq!(m.text, expected);
}

#[test]
fn base64_body() {
    let m = p(BASE64);
    assert_eq!(m.subject, "base64 body");
    assert_eq!(m.text, "Base64でエンコードされた本文。\r\nLine two.\r\n");
}

#[test]
fn multipart_alternative_text_and_html() {
    let m = p(ALTERNATIVE);
    assert_eq!(m.text, "こんにちは テキスト\r\n");
    assert_eq!(
        m.html,
        "<html><body><p>こんにちは <b>HTML</b></p></body></html>\r\n"
    );
    assert!(m.attachments.is_empty());
}

#[test]
fn html_only_mail_has_empty_text() {
    let m = p(HTML_ONLY);
    assert_eq!(m.text, "", "text must not be derived from html");
    assert_eq!(
        m.html,
        "<html><body><p>HTMLだけのメール</p></body></html>\r\n"
    );
}

#[test]
fn text_only_mail_has_empty_html() {
    let m = p(BASE64);
    assert_eq!(m.html, "", "html must not be derived from text");
}

#[test]
fn undeclared_charset_is_sniffed() {
    let m = p(UNDECLARED_SJIS);
    assert_eq!(m.subject, "生のシフトJIS件名");
    assert_eq!(m.text, "宣言なしの本文です。\r\n");
}

#[test]
fn mislabelled_charset_falls_back_to_the_cleaner_reading() {
    // Shift_JIS bytes ("日本語です") declared as ISO-2022-JP.
    let mut raw = b"From: a@example.jp\r\nSubject: x\r\n\
Content-Type: text/plain; charset=ISO-2022-JP\r\n\r\n"
        .to_vec();
    raw.extend_from_slice(b"\x93\xfa\x96{\x8c\xea\x82\xc5\x82\xb7\r\n");
    assert_eq!(p(&raw).text, "日本語です\r\n");
    // ISO-2022-JP bytes declared as us-ascii.
    let raw = b"Subject: x\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
\x1b$BF|K\\8l\x1b(B\r\n";
    assert_eq!(p(raw).text, "日本語\r\n");
}

#[test]
fn mixed_with_nested_alternative_and_attachments() {
    let m = p(MIXED);
    assert_eq!(m.subject, "請求書を送付します");
    assert_eq!(m.text, "請求書を添付します。\r\n");
    assert_eq!(m.html, "<p>請求書を添付します。</p>");
    let expected = vec![
        Attachment {
            filename: "請求書.pdf".into(),
            content_type: "application/pdf".into(),
            data: pdf_bytes(),
        },
        Attachment {
            filename: "一覧.csv".into(),
            content_type: "text/csv; charset=Shift_JIS".into(),
            data: CSV_SJIS.to_vec(),
        },
        Attachment {
            filename: "logo.png".into(),
            content_type: "image/png".into(),
            data: png_bytes(),
        },
        Attachment {
            filename: "長いファイル名の添付ファイル.txt".into(),
            content_type: "text/plain; charset=UTF-8".into(),
            data: "café\r\n".as_bytes().to_vec(),
        },
    ];
    assert_eq!(m.attachments.len(), expected.len(), "{:#?}", m.attachments);
    for (got, want) in m.attachments.iter().zip(&expected) {
        assert_eq!(got, want);
    }
}

#[test]
fn unnamed_inline_image_is_not_an_attachment_but_disposition_attachment_is() {
    let raw = b"From: a@example.jp\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/related; boundary=R\r\n\r\n\
--R\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n<img src=\"cid:i\">\r\n\
--R\r\nContent-Type: image/gif\r\nContent-ID: <i>\r\nContent-Transfer-Encoding: base64\r\n\r\nR0lGODlh\r\n\
--R\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment\r\n\
Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--R--\r\n";
    let m = p(raw);
    assert_eq!(m.html, "<img src=\"cid:i\">");
    assert_eq!(m.text, "");
    assert_eq!(
        m.attachments,
        [Attachment {
            filename: String::new(),
            content_type: "application/octet-stream".into(),
            data: vec![0, 1, 2],
        }]
    );
}

#[test]
fn attached_message_is_one_attachment_with_its_own_bytes() {
    let inner = "From: x@example.jp\r\nSubject: inner\r\n\r\ninner body\r\n";
    let raw = format!(
        "From: a@example.jp\r\nSubject: outer\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=M\r\n\r\n\
--M\r\nContent-Type: text/plain\r\n\r\nouter body\r\n\
--M\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=fwd.eml\r\n\r\n\
{inner}\r\n--M--\r\n"
    );
    let m = p(raw.as_bytes());
    assert_eq!(m.text, "outer body");
    assert_eq!(m.attachments.len(), 1, "{:#?}", m.attachments);
    let a = &m.attachments[0];
    assert_eq!(a.filename, "fwd.eml");
    assert_eq!(a.content_type, "message/rfc822");
    assert_eq!(String::from_utf8_lossy(&a.data), inner);
}

#[test]
fn no_headers_gives_empty_mail() {
    let m = p(b"");
    assert!(m.headers.is_empty());
    assert_eq!((m.subject.as_str(), m.text.as_str()), ("", ""));
    assert_eq!(m.filter, "support");
}

// ---------------------------------------------------------------- JSON

#[test]
fn json_payload_shape() {
    let m = p(MIXED);
    let payload = encode(&m, "pro", Some("KEY123"), Encoding::Json, "ignored");
    assert_eq!(payload.content_type, "application/json");
    let s = std::str::from_utf8(&payload.body).unwrap();
    let v: serde_json::Value = serde_json::from_str(s).unwrap();
    let obj = v.as_object().unwrap();

    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "api_key",
            "attachments",
            "envelope-from",
            "envelope-to",
            "filter",
            "headers",
            "html",
            "server_composition",
            "subject",
            "text",
        ]
    );
    assert_eq!(v["api_key"], "KEY123");
    assert_eq!(v["server_composition"], "pro");
    assert_eq!(v["filter"], "support");
    assert_eq!(v["subject"], "請求書を送付します");
    assert_eq!(v["text"], "請求書を添付します。\r\n");
    assert_eq!(v["html"], "<p>請求書を添付します。</p>");
    assert_eq!(v["envelope-from"], "sender@example.jp");
    assert_eq!(v["envelope-to"], "support@hato.example.com");
    // Files are not sent in JSON mode, but the count is.
    assert_eq!(v["attachments"], serde_json::json!(4));
    assert!(v["attachments"].is_u64());

    let headers = v["headers"].as_array().expect("headers is a JSON array");
    assert_eq!(headers.len(), m.headers.len());
    for (h, (n, val)) in headers.iter().zip(&m.headers) {
        let o = h.as_object().unwrap();
        assert_eq!(o.len(), 2);
        assert_eq!(o["name"], n.as_str());
        assert_eq!(o["value"], val.as_str());
    }

    // Keys appear in the CMC table order.
    let order = [
        "\"api_key\"",
        "\"server_composition\"",
        "\"filter\"",
        "\"headers\"",
        "\"text\"",
        "\"html\"",
        "\"subject\"",
        "\"envelope-from\"",
        "\"envelope-to\"",
        "\"attachments\"",
    ];
    let pos: Vec<usize> = order.iter().map(|k| s.find(k).unwrap()).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{pos:?}");
}

#[test]
fn json_without_api_key_omits_it_and_counts_zero() {
    let m = p(BASE64);
    let payload = encode(&m, "standard", None, Encoding::Json, "");
    let v: serde_json::Value = serde_json::from_slice(&payload.body).unwrap();
    assert!(v.get("api_key").is_none());
    assert_eq!(v["attachments"], serde_json::json!(0));
    assert_eq!(v["html"], "");
}

// ----------------------------------------------------------- multipart

#[derive(Debug)]
struct FormPart {
    name: String,
    filename: Option<String>,
    filename_star: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn param(disposition: &str, key: &str) -> Option<String> {
    for piece in disposition.split(';').map(str::trim) {
        if let Some(v) = piece.strip_prefix(&format!("{key}=")) {
            return Some(v.trim_matches('"').to_owned());
        }
    }
    None
}

fn pct_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap(),
            );
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// A small strict multipart/form-data parser: exactly `--B\r\n` delimiters,
/// CRLF header lines, a closing `--B--\r\n` and nothing after it.
fn parse_form(body: &[u8], boundary: &str) -> Vec<FormPart> {
    let open = format!("--{boundary}\r\n");
    let delim = format!("\r\n--{boundary}");
    assert!(
        body.starts_with(open.as_bytes()),
        "body must start with the boundary"
    );
    let mut rest = &body[open.len()..];
    let mut parts = Vec::new();
    loop {
        let hdr_end = find(rest, b"\r\n\r\n").expect("part headers end");
        let head = std::str::from_utf8(&rest[..hdr_end]).expect("ASCII/UTF-8 part headers");
        let after = &rest[hdr_end + 4..];
        let body_end = find(after, delim.as_bytes()).expect("next delimiter");
        let mut part = FormPart {
            name: String::new(),
            filename: None,
            filename_star: None,
            content_type: None,
            body: after[..body_end].to_vec(),
        };
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(": ").expect("header line");
            match k.to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    assert!(v.starts_with("form-data;"), "{v}");
                    part.name = param(v, "name").expect("name");
                    part.filename = param(v, "filename");
                    part.filename_star = param(v, "filename*");
                }
                "content-type" => part.content_type = Some(v.to_owned()),
                other => panic!("unexpected part header {other}"),
            }
        }
        parts.push(part);
        let tail = &after[body_end + delim.len()..];
        if tail == b"--\r\n" {
            return parts;
        }
        assert!(tail.starts_with(b"\r\n"), "delimiter must end with CRLF");
        rest = &tail[2..];
    }
}

#[test]
fn multipart_payload_round_trip() {
    let m = p(MIXED);
    let boundary = "hato-7Jx2Qm9ZkP4vT1aB";
    let payload = encode(&m, "pro", Some("KEY123"), Encoding::Multipart, boundary);
    assert_eq!(
        payload.content_type,
        format!("multipart/form-data; boundary={boundary}")
    );
    let parts = parse_form(&payload.body, boundary);

    let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "api_key",
            "server_composition",
            "filter",
            "headers",
            "text",
            "html",
            "subject",
            "envelope-from",
            "envelope-to",
            "attachments",
            "attachment1",
            "attachment2",
            "attachment3",
            "attachment4",
        ]
    );
    let field = |n: &str| {
        let part = parts.iter().find(|p| p.name == n).unwrap();
        assert!(part.filename.is_none(), "{n} must be a plain field");
        String::from_utf8(part.body.clone()).unwrap()
    };
    assert_eq!(field("api_key"), "KEY123");
    assert_eq!(field("server_composition"), "pro");
    assert_eq!(field("filter"), "support");
    assert_eq!(field("subject"), "請求書を送付します");
    assert_eq!(field("text"), "請求書を添付します。\r\n");
    assert_eq!(field("html"), "<p>請求書を添付します。</p>");
    assert_eq!(field("envelope-from"), "sender@example.jp");
    assert_eq!(field("envelope-to"), "support@hato.example.com");
    assert_eq!(field("attachments"), "4");

    let headers: Vec<serde_json::Value> = serde_json::from_str(&field("headers")).unwrap();
    let got: Vec<(String, String)> = headers
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().to_owned(),
                h["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(got, m.headers);

    for (i, att) in m.attachments.iter().enumerate() {
        let part = &parts[10 + i];
        assert_eq!(part.name, format!("attachment{}", i + 1));
        assert_eq!(part.body, att.data, "bytes of {}", att.filename);
        assert_eq!(
            part.content_type.as_deref(),
            Some(att.content_type.as_str())
        );
        let fallback = part.filename.clone().expect("filename=");
        if att.filename.is_ascii() {
            assert_eq!(fallback, att.filename);
            assert!(part.filename_star.is_none());
        } else {
            // ASCII fallback in RFC 2047 form, exact name in RFC 2231 form.
            assert!(fallback.is_ascii());
            let b64 = fallback
                .strip_prefix("=?UTF-8?B?")
                .and_then(|s| s.strip_suffix("?="))
                .expect("RFC 2047 fallback");
            let dec = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            assert_eq!(String::from_utf8(dec).unwrap(), att.filename);
            let star = part.filename_star.clone().expect("filename*=");
            let pct = star.strip_prefix("UTF-8''").expect("UTF-8''");
            assert_eq!(String::from_utf8(pct_decode(pct)).unwrap(), att.filename);
        }
    }
    assert_eq!(parts[10].body, pdf_bytes());
    assert_eq!(parts[11].body, CSV_SJIS);
}

#[test]
fn multipart_without_attachments_or_key() {
    let m = p(ISO2022JP);
    let payload = encode(&m, "standard", None, Encoding::Multipart, "XyZ");
    let parts = parse_form(&payload.body, "XyZ");
    assert!(parts.iter().all(|p| p.name != "api_key"));
    assert!(parts.iter().all(|p| p.filename.is_none()));
    let count = parts.iter().find(|p| p.name == "attachments").unwrap();
    assert_eq!(count.body, b"0");
    assert_eq!(parts.len(), 9);
}

#[test]
fn multipart_unnamed_attachment_gets_a_filename() {
    let mut m = InboundMail::default();
    m.attachments.push(Attachment {
        filename: String::new(),
        content_type: String::new(),
        data: vec![1, 2, 3],
    });
    let payload = encode(&m, "pro", None, Encoding::Multipart, "b");
    let parts = parse_form(&payload.body, "b");
    let a = parts.last().unwrap();
    assert_eq!(a.name, "attachment1");
    assert_eq!(a.filename.as_deref(), Some("attachment1"));
    assert_eq!(a.content_type.as_deref(), Some("application/octet-stream"));
    assert_eq!(a.body, [1, 2, 3]);
}
