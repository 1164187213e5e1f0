//! A small, panic-free MIME walker: headers (unfolding, RFC 2047
//! encoded-words), multipart bodies, nested messages, base64 /
//! quoted-printable transfer encodings and charset decoding to UTF-8.

use encoding_rs::Encoding;

const MAX_DEPTH: usize = 12;
const MAX_PARTS: usize = 256;

/// One MIME entity.
#[derive(Debug, Clone, Default)]
pub(crate) struct Part {
    /// `(lowercase name, unfolded raw value)` in order of appearance.
    pub headers: Vec<(String, String)>,
    /// Lowercase `type/subtype` (default `text/plain`).
    pub ctype: String,
    /// Content-Type parameters, names lowercased.
    pub params: Vec<(String, String)>,
    /// Body after transfer decoding (for multiparts: the raw body).
    pub body: Vec<u8>,
    /// Sub-parts of a multipart.
    pub children: Vec<Part>,
    /// The enclosed message of a `message/rfc822`-like part.
    pub embedded: Option<Box<Part>>,
}

impl Part {
    /// First header `name` (lowercase), raw.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of header `name`.
    pub fn headers_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// First header `name`, RFC 2047 decoded and trimmed.
    pub fn header_text(&self, name: &str) -> Option<String> {
        self.header(name)
            .map(|v| decode_words(v).trim().to_string())
    }

    /// Content-Type parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body decoded to UTF-8 according to its charset.
    pub fn text(&self) -> String {
        decode_charset(&self.body, self.param("charset"))
    }

    /// Depth-first walk over this part and its descendants (not entering
    /// embedded messages).
    pub fn walk<'a>(&'a self, out: &mut Vec<&'a Part>) {
        out.push(self);
        for c in &self.children {
            c.walk(out);
        }
    }
}

/// Parses a complete message.
pub(crate) fn parse(raw: &[u8]) -> Part {
    let mut budget = MAX_PARTS;
    parse_entity(raw, 0, &mut budget, "text/plain")
}

fn is_header_name(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|b| b.is_ascii_graphic() && *b != b':')
}

/// Splits a header block from a body; returns (headers, body offset).
fn parse_headers(raw: &[u8]) -> (Vec<(String, String)>, usize) {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut pos = 0usize;
    let mut first = true;
    while pos < raw.len() {
        let end = raw[pos..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(raw.len(), |p| pos + p);
        let next = if end < raw.len() { end + 1 } else { end };
        let line = &raw[pos..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return (headers, next);
        }
        if first && line.starts_with(b"From ") {
            // mbox separator
            first = false;
            pos = next;
            continue;
        }
        first = false;
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some(last) = headers.last_mut() {
                let t = bytes_to_string(line);
                last.1.push(' ');
                last.1.push_str(t.trim());
                pos = next;
                continue;
            }
            return (headers, pos);
        }
        match line.iter().position(|b| *b == b':') {
            Some(c) if is_header_name(&line[..c]) => {
                let name = String::from_utf8_lossy(&line[..c]).to_ascii_lowercase();
                let value = bytes_to_string(&line[c + 1..]).trim().to_string();
                headers.push((name, value));
            }
            _ => return (headers, pos),
        }
        pos = next;
    }
    (headers, raw.len())
}

fn parse_entity(raw: &[u8], depth: usize, budget: &mut usize, default_ct: &str) -> Part {
    *budget = budget.saturating_sub(1);
    let (headers, off) = parse_headers(raw);
    let body_raw = raw.get(off..).unwrap_or(&[]);
    let mut part = Part {
        headers,
        ..Part::default()
    };
    let (ct, params) = match part.header("content-type") {
        Some(v) => parse_content_type(v),
        None => (default_ct.to_string(), Vec::new()),
    };
    part.ctype = ct;
    part.params = params;
    let cte = part
        .header("content-transfer-encoding")
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_default();

    if part.ctype.starts_with("multipart/") && depth < MAX_DEPTH && *budget > 0 {
        if let Some(b) = part.param("boundary").map(str::to_string) {
            let child_default = if part.ctype == "multipart/digest" {
                "message/rfc822"
            } else {
                "text/plain"
            };
            let pieces = split_multipart(body_raw, b.as_bytes());
            if !pieces.is_empty() {
                for p in pieces {
                    if *budget == 0 {
                        break;
                    }
                    part.children
                        .push(parse_entity(p, depth + 1, budget, child_default));
                }
                part.body = body_raw.to_vec();
                return part;
            }
        }
        // no usable boundary: treat as text
        part.ctype = "text/plain".to_string();
    }

    let body = decode_transfer(body_raw, &cte);
    let enclosed = matches!(
        part.ctype.as_str(),
        "message/rfc822"
            | "message/global"
            | "text/rfc822-headers"
            | "message/rfc822-headers"
            | "message/partial"
    );
    if enclosed && depth < MAX_DEPTH && *budget > 0 {
        part.embedded = Some(Box::new(parse_entity(
            &body,
            depth + 1,
            budget,
            "text/plain",
        )));
    }
    part.body = body;
    part
}

/// Splits a multipart body at `--boundary` lines.
fn split_multipart<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<&'a [u8]> {
    let mut delim = Vec::with_capacity(boundary.len() + 2);
    delim.extend_from_slice(b"--");
    delim.extend_from_slice(boundary);
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0usize;
    while pos <= body.len() {
        let end = body[pos..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(body.len(), |p| pos + p);
        let line = &body[pos..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.starts_with(&delim) {
            let rest = &line[delim.len()..];
            let closing = rest.starts_with(b"--");
            let rest_ok = rest
                .iter()
                .skip(if closing { 2 } else { 0 })
                .all(|b| b.is_ascii_whitespace());
            if rest_ok {
                if let Some(s) = start {
                    // exclude the line break before the delimiter
                    let mut e = pos;
                    if e > s && body.get(e - 1) == Some(&b'\n') {
                        e -= 1;
                        if e > s && body.get(e - 1) == Some(&b'\r') {
                            e -= 1;
                        }
                    }
                    out.push(&body[s..e.max(s)]);
                }
                if closing {
                    return out;
                }
                start = Some((end + 1).min(body.len()));
            }
        }
        if end >= body.len() {
            break;
        }
        pos = end + 1;
    }
    if let Some(s) = start {
        if s < body.len() {
            out.push(&body[s..]);
        }
    }
    out
}

/// Parses `type/subtype; a=b; c="d"` into lowercase type and params.
pub(crate) fn parse_content_type(v: &str) -> (String, Vec<(String, String)>) {
    let mut items = split_params(v).into_iter();
    let ty = items
        .next()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| s.contains('/'))
        .unwrap_or_else(|| "text/plain".to_string());
    let mut params = Vec::new();
    for it in items {
        if let Some((k, val)) = it.split_once('=') {
            let k = k.trim().to_ascii_lowercase();
            let k = k.trim_end_matches('*').to_string();
            let mut val = val.trim();
            if val.len() >= 2 && val.starts_with('"') && val.ends_with('"') {
                val = &val[1..val.len() - 1];
            }
            params.push((k, val.replace("\\\"", "\"")));
        }
    }
    (ty, params)
}

fn split_params(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut inq = false;
    let mut esc = false;
    for ch in v.chars() {
        if esc {
            cur.push(ch);
            esc = false;
            continue;
        }
        match ch {
            '\\' if inq => {
                cur.push(ch);
                esc = true;
            }
            '"' => {
                inq = !inq;
                cur.push(ch);
            }
            ';' if !inq => out.push(std::mem::take(&mut cur)),
            _ => cur.push(ch),
        }
    }
    out.push(cur);
    out
}

fn bytes_to_string(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => {
            if s.contains("\u{1b}$") {
                decode_charset(b, Some("iso-2022-jp"))
            } else {
                s.to_string()
            }
        }
        Err(_) => decode_charset(b, None),
    }
}

/// Transfer decoding (base64, quoted-printable); anything else is identity.
pub(crate) fn decode_transfer(body: &[u8], cte: &str) -> Vec<u8> {
    match cte {
        "base64" => decode_base64(body),
        "quoted-printable" => decode_qp(body, false),
        _ => body.to_vec(),
    }
}

fn b64val(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// Lenient base64 decoder: skips anything outside the alphabet, stops at `=`.
pub(crate) fn decode_base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut n = 0u8;
    for &c in input {
        if c == b'=' {
            // padding; a later line may hold more data (concatenated blocks)
            acc = 0;
            n = 0;
            continue;
        }
        let Some(v) = b64val(c) else { continue };
        acc = (acc << 6) | u32::from(v);
        n += 1;
        if n == 4 {
            out.push((acc >> 16) as u8);
            out.push((acc >> 8) as u8);
            out.push(acc as u8);
            acc = 0;
            n = 0;
        }
    }
    match n {
        2 => out.push((acc >> 4) as u8),
        3 => {
            out.push((acc >> 10) as u8);
            out.push((acc >> 2) as u8);
        }
        _ => {}
    }
    out
}

fn hexval(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Quoted-printable decoder; `header` mode turns `_` into space (RFC 2047 Q).
pub(crate) fn decode_qp(input: &[u8], header: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        if c == b'=' {
            // soft line break
            if input.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if input.get(i + 1) == Some(&b'\r') && input.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if let (Some(h), Some(l)) = (
                input.get(i + 1).copied().and_then(hexval),
                input.get(i + 2).copied().and_then(hexval),
            ) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
            out.push(c);
        } else if header && c == b'_' {
            out.push(b' ');
        } else {
            out.push(c);
        }
        i += 1;
    }
    out
}

/// Decodes bytes in `charset` (or a guess) to UTF-8.
pub(crate) fn decode_charset(bytes: &[u8], charset: Option<&str>) -> String {
    let has_jis_escape = bytes.windows(2).any(|w| w == b"\x1b$" || w == b"\x1b(");
    let label = charset.map(|c| c.trim().trim_matches('"').to_ascii_lowercase());
    let mut enc = label.as_deref().and_then(|l| {
        let l = match l {
            "x-sjis" | "sjis" | "shift-jis" | "cp932" | "windows-31j" | "ms932" => "shift_jis",
            "iso-2022-jp-1" | "iso-2022-jp-2" | "iso-2022-jp-3" | "iso-2022-jp-ms" => "iso-2022-jp",
            other => other,
        };
        Encoding::for_label(l.as_bytes())
    });
    if has_jis_escape
        && enc.is_none_or(|e| e == encoding_rs::UTF_8 || e == encoding_rs::WINDOWS_1252)
    {
        enc = Some(encoding_rs::ISO_2022_JP);
    }
    match enc {
        Some(e) if e != encoding_rs::UTF_8 => {
            let (s, _) = e.decode_without_bom_handling(bytes);
            s.into_owned()
        }
        _ => match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(_) if enc == Some(encoding_rs::UTF_8) => {
                String::from_utf8_lossy(bytes).into_owned()
            }
            Err(_) => {
                // Unlabelled 8-bit: try Shift_JIS, then EUC-JP, then windows-1252.
                for e in [encoding_rs::SHIFT_JIS, encoding_rs::EUC_JP] {
                    let (s, had_err) = e.decode_without_bom_handling(bytes);
                    if !had_err {
                        return s.into_owned();
                    }
                }
                encoding_rs::WINDOWS_1252
                    .decode_without_bom_handling(bytes)
                    .0
                    .into_owned()
            }
        },
    }
}

/// Decodes RFC 2047 encoded-words in a header value.
pub(crate) fn decode_words(v: &str) -> String {
    if !v.contains("=?") {
        return v.to_string();
    }
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    let mut pending_ws = String::new();
    let mut last_was_word = false;
    while !rest.is_empty() {
        if let Some((decoded, used)) = try_word(rest) {
            if !last_was_word {
                out.push_str(&pending_ws);
            }
            pending_ws.clear();
            out.push_str(&decoded);
            rest = &rest[used..];
            last_was_word = true;
            continue;
        }
        let Some(ch) = rest.chars().next() else { break };
        if ch == ' ' || ch == '\t' {
            pending_ws.push(ch);
        } else {
            out.push_str(&pending_ws);
            pending_ws.clear();
            out.push(ch);
            last_was_word = false;
        }
        rest = &rest[ch.len_utf8()..];
    }
    out.push_str(&pending_ws);
    out
}

/// Tries to decode one `=?cs?E?text?=` at the start of `s`.
fn try_word(s: &str) -> Option<(String, usize)> {
    let body = s.strip_prefix("=?")?;
    let q1 = body.find('?')?;
    let charset = &body[..q1];
    let after = &body[q1 + 1..];
    let mut chars = after.chars();
    let enc = chars.next()?;
    if !enc.is_ascii() {
        return None;
    }
    if chars.next()? != '?' {
        return None;
    }
    let text_start = q1 + 1 + 2;
    let text_all = &body[text_start..];
    let end = text_all.find("?=")?;
    let text = &text_all[..end];
    if text.contains(' ') || charset.is_empty() {
        return None;
    }
    let bytes = match enc {
        'b' | 'B' => decode_base64(text.as_bytes()),
        'q' | 'Q' => decode_qp(text.as_bytes(), true),
        _ => return None,
    };
    let cs = charset.split('*').next().unwrap_or(charset);
    let used = 2 + text_start + end + 2;
    Some((decode_charset(&bytes, Some(cs)), used))
}

/// Crude HTML to text (for bounces that only have an HTML part).
pub(crate) fn strip_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    let lower = html.to_ascii_lowercase();
    let lb = lower.as_bytes();
    let mut skip_until: Option<&str> = None;
    let mut i = 0;
    let hb = html.as_bytes();
    while i < hb.len() {
        if let Some(end) = skip_until {
            if lb[i..].starts_with(end.as_bytes()) {
                skip_until = None;
                i += end.len();
            } else {
                i += 1;
            }
            continue;
        }
        let c = hb[i];
        if c == b'<' {
            if lb[i..].starts_with(b"<style") {
                skip_until = Some("</style>");
                i += 1;
                continue;
            }
            if lb[i..].starts_with(b"<script") {
                skip_until = Some("</script>");
                i += 1;
                continue;
            }
            let tag = &lb[i..];
            if [
                &b"<br"[..],
                b"<p",
                b"</p",
                b"<div",
                b"</div",
                b"<tr",
                b"</tr",
                b"<li",
            ]
            .iter()
            .any(|t| tag.starts_with(t))
            {
                out.push('\n');
            }
            in_tag = true;
            i += 1;
            continue;
        }
        if c == b'>' && in_tag {
            in_tag = false;
            i += 1;
            continue;
        }
        if !in_tag {
            // copy one whole char
            let ch_len = utf8_len(c);
            let end = (i + ch_len).min(hb.len());
            if let Some(s) = html.get(i..end) {
                out.push_str(s);
            }
            i = end;
            continue;
        }
        i += 1;
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 1,
    }
}
