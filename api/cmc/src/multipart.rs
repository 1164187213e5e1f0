//! A small `multipart/form-data` (RFC 7578) parser.
//!
//! Tolerances: a preamble before the first delimiter, LF-only line breaks, transport padding
//! after a delimiter, folded part headers, `Content-Transfer-Encoding: base64` parts. File
//! names may come as RFC 2231 `filename*`, RFC 2047 encoded words, or raw UTF-8 (what Guzzle,
//! superagent and requests send); path components are removed.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::Value;

use crate::encoding::{decode_rfc2047, parse_header_params};
use crate::error::ApiError;
use crate::params::{insert_form_pair, normalise_indexed_objects, FilePart, Params};

/// Parses `body` with `boundary` into [`Params`].
pub(crate) fn parse(boundary: &str, body: &[u8]) -> Result<Params, ApiError> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut params = Params::new();
    let mut fields: BTreeMap<String, Value> = BTreeMap::new();

    // first delimiter: at the start or after a line break
    let mut pos = if body.starts_with(delim) {
        delim.len()
    } else {
        find_line_delim(body, delim, 0)
            .map(|(_, after)| after)
            .ok_or_else(|| ApiError::malformed("multipart boundary not found"))?
    };

    loop {
        if body[pos..].starts_with(b"--") {
            break; // closing delimiter
        }
        // transport padding, then the line break ending the delimiter line
        while pos < body.len() && (body[pos] == b' ' || body[pos] == b'\t') {
            pos += 1;
        }
        if body[pos..].starts_with(b"\r\n") {
            pos += 2;
        } else if body[pos..].starts_with(b"\n") {
            pos += 1;
        } else {
            return Err(ApiError::malformed("malformed multipart delimiter line"));
        }
        let (start_next, after_delim) = find_line_delim(body, delim, pos)
            .ok_or_else(|| ApiError::malformed("multipart body is truncated"))?;
        let part = &body[pos..start_next];
        handle_part(part, &mut params, &mut fields)?;
        pos = after_delim;
        if pos >= body.len() {
            return Err(ApiError::malformed("multipart body is truncated"));
        }
    }
    normalise_indexed_objects(&mut fields);
    for (k, v) in fields {
        params.insert(k, v);
    }
    Ok(params)
}

/// Finds the next `CRLF--boundary` (or `LF--boundary`) at or after `from`: returns (end of the
/// part content, index just after the boundary).
fn find_line_delim(body: &[u8], delim: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut search = from;
    loop {
        let i = find(body, delim, search)?;
        if i >= from + 2 && &body[i - 2..i] == b"\r\n" {
            return Some((i - 2, i + delim.len()));
        }
        if i > from && body[i - 1] == b'\n' {
            return Some((i - 1, i + delim.len()));
        }
        search = i + 1;
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from >= hay.len() {
        return None;
    }
    let first = needle[0];
    let mut i = from;
    while i + needle.len() <= hay.len() {
        match hay[i..].iter().position(|b| *b == first) {
            None => return None,
            Some(off) => {
                i += off;
                if i + needle.len() <= hay.len() && &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

fn handle_part(
    part: &[u8],
    params: &mut Params,
    fields: &mut BTreeMap<String, Value>,
) -> Result<(), ApiError> {
    // headers end at the first empty line
    let (head, content) = if let Some(i) = find(part, b"\r\n\r\n", 0) {
        (&part[..i], &part[i + 4..])
    } else if let Some(i) = find(part, b"\n\n", 0) {
        (&part[..i], &part[i + 2..])
    } else if part.starts_with(b"\r\n") {
        (&part[..0], &part[2..])
    } else {
        return Err(ApiError::malformed("multipart part without a header block"));
    };
    let head = String::from_utf8_lossy(head);
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some(colon) = line.find(':') {
            headers.push((
                line[..colon].trim().to_ascii_lowercase(),
                line[colon + 1..].trim().to_string(),
            ));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let disposition = header("content-disposition")
        .ok_or_else(|| ApiError::malformed("multipart part without Content-Disposition"))?;
    let (_, dparams) = parse_header_params(disposition);
    let dparam = |name: &str| {
        dparams
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let name = dparam("name")
        .map(|n| decode_rfc2047(&n))
        .ok_or_else(|| ApiError::malformed("multipart part without a name"))?;
    let data = match header("content-transfer-encoding").map(str::to_ascii_lowercase) {
        Some(ref te) if te == "base64" => {
            let compact: Vec<u8> = content
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|_| ApiError::malformed("invalid base64 in multipart part"))?
        }
        _ => content.to_vec(),
    };
    let content_type =
        header("content-type").map(|ct| parse_header_params(ct).0.to_ascii_lowercase());
    let filename = dparam("filename");
    let is_attachment_name = name
        .strip_prefix("attachment")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if filename.is_some() || is_attachment_name {
        params.add_file(FilePart {
            filename: clean_filename(&filename.unwrap_or_default()),
            name,
            content_type: content_type.filter(|c| !c.is_empty()),
            data,
        });
    } else {
        let text = String::from_utf8(data)
            .map_err(|_| ApiError::malformed(format!("field '{name}' is not valid UTF-8")))?;
        insert_form_pair(fields, &name, text);
    }
    Ok(())
}

/// Decodes RFC 2047 words and HTML5 form escapes (`%22`, `%0D`, `%0A`), drops any directory
/// part and control characters.
fn clean_filename(raw: &str) -> String {
    let decoded = decode_rfc2047(raw)
        .replace("%22", "\"")
        .replace("%0D", "")
        .replace("%0A", "");
    let base = decoded
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .to_string();
    base.chars().filter(|c| !c.is_control()).collect::<String>()
}

#[cfg(test)]
mod tests {
    use crate::params::parse_form;
    use serde_json::json;

    fn body(parts: &[&str]) -> Vec<u8> {
        let mut b = Vec::new();
        for p in parts {
            b.extend_from_slice(b"--XyZ\r\n");
            b.extend_from_slice(p.as_bytes());
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(b"--XyZ--\r\n");
        b
    }

    #[test]
    fn fields_json_strings_and_files() {
        let b = body(&[
            "Content-Disposition: form-data; name=\"api_user\"\r\n\r\nuser",
            "Content-Disposition: form-data; name=\"to\"\r\n\r\n[{\"name\":\"宛先\",\"address\":\"a@example.com\"}]",
            "Content-Disposition: form-data; name=\"attachments\"\r\n\r\n2",
            "Content-Disposition: form-data; name=\"attachment1\"; filename=\"C:\\\\docs\\\\report.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n--not-a-boundary\r\n",
            "Content-Disposition: form-data; name=\"attachment2\"; filename=\"見積書.txt\"\r\n\r\nhello",
        ]);
        let p = parse_form("multipart/form-data; boundary=\"XyZ\"", &b).unwrap();
        assert_eq!(p.text("api_user").unwrap().as_deref(), Some("user"));
        assert_eq!(
            p.json("to").unwrap(),
            json!([{"name":"宛先","address":"a@example.com"}])
        );
        assert_eq!(p.text("attachments").unwrap().as_deref(), Some("2"));
        let f1 = p.file("attachment1").unwrap();
        assert_eq!(f1.filename, "report.pdf");
        assert_eq!(f1.content_type.as_deref(), Some("application/pdf"));
        assert_eq!(f1.data, b"%PDF\r\n--not-a-boundary\r\n");
        let f2 = p.file("attachment2").unwrap();
        assert_eq!(f2.filename, "見積書.txt");
        assert_eq!(f2.content_type, None);
        assert_eq!(f2.data, b"hello");
    }

    #[test]
    fn encoded_filenames_and_base64_parts() {
        let b = body(&[
            "Content-Disposition: form-data; name=\"attachment1\"; filename*=utf-8''%E8%AB%8B%E6%B1%82%E6%9B%B8.pdf\r\n\r\nA",
            "Content-Disposition: form-data; name=\"attachment2\"; filename=\"=?UTF-8?B?5pel5pys6KqeLnR4dA==?=\"\r\nContent-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8=",
            "Content-Disposition: form-data;\r\n name=\"attachment3\"\r\n\r\nno filename",
            "Content-Disposition: form-data; name=\"x\"; filename=\"a%22b.txt\"\r\n\r\n",
        ]);
        let p = parse_form("multipart/form-data; boundary=XyZ", &b).unwrap();
        assert_eq!(p.file("attachment1").unwrap().filename, "請求書.pdf");
        let f2 = p.file("attachment2").unwrap();
        assert_eq!(f2.filename, "日本語.txt");
        assert_eq!(f2.data, b"hello");
        let f3 = p.file("attachment3").unwrap();
        assert_eq!(f3.filename, "");
        assert_eq!(f3.data, b"no filename");
        let fx = p.file("x").unwrap();
        assert_eq!(fx.filename, "a\"b.txt");
        assert!(fx.data.is_empty());
    }

    #[test]
    fn preamble_lf_only_and_repeated_fields() {
        let raw = "preamble text\n--b1\nContent-Disposition: form-data; name=\"to\"\n\nx@example.com\n--b1  \nContent-Disposition: form-data; name=\"to\"\n\ny@example.com\n--b1\nContent-Disposition: form-data; name=\"to_obj[0][address]\"\n\nz@example.com\n--b1--";
        let p = parse_form("multipart/form-data; boundary=b1", raw.as_bytes()).unwrap();
        assert_eq!(
            p.get("to").unwrap(),
            &json!(["x@example.com", "y@example.com"])
        );
        assert_eq!(
            p.json("to_obj").unwrap(),
            json!([{"address":"z@example.com"}])
        );
    }

    #[test]
    fn malformed_bodies() {
        let cases: [&[u8]; 5] = [
            b"no boundary here",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nvalue without end",
            b"--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\r\n--XyZ--",
            b"--XyZjunk\r\n",
        ];
        for c in cases {
            let e = parse_form("multipart/form-data; boundary=XyZ", c).unwrap_err();
            assert_eq!(
                e.code,
                crate::ErrorCode::MalformedBody,
                "{:?}",
                String::from_utf8_lossy(c)
            );
        }
    }

    #[test]
    fn empty_multipart_is_empty_params() {
        let p = parse_form("multipart/form-data; boundary=XyZ", b"--XyZ--\r\n").unwrap();
        assert!(p.names().next().is_none());
        assert!(p.files().is_empty());
    }
}
