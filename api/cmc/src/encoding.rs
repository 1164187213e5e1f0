//! Character-set and MIME encodings: the two CMC charsets, RFC 2047 encoded words (encode and
//! decode), RFC 2231 parameters (encode and decode), quoted-printable and wrapped base64.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// The `charset` parameter of `emails/send`: `UTF-8` (default) or `ISO-2022-JP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Charset {
    /// `UTF-8` (the default).
    #[default]
    Utf8,
    /// `ISO-2022-JP` (JIS X 0208 via encoding_rs; halfwidth katakana become fullwidth).
    Iso2022Jp,
}

impl Charset {
    /// Parses the `charset` parameter (case-insensitive; `UTF8`, `ISO2022JP` and `_` spellings
    /// are accepted too).
    pub fn parse(s: &str) -> Option<Charset> {
        let norm: String = s
            .trim()
            .chars()
            .filter(|c| *c != '-' && *c != '_')
            .collect::<String>()
            .to_ascii_uppercase();
        match norm.as_str() {
            "UTF8" => Some(Charset::Utf8),
            "ISO2022JP" => Some(Charset::Iso2022Jp),
            _ => None,
        }
    }

    /// The MIME label: `UTF-8` or `ISO-2022-JP`.
    pub fn label(self) -> &'static str {
        match self {
            Charset::Utf8 => "UTF-8",
            Charset::Iso2022Jp => "ISO-2022-JP",
        }
    }

    /// Encodes `s` in this charset; `None` if a character cannot be represented.
    pub fn encode(self, s: &str) -> Option<Vec<u8>> {
        match self {
            Charset::Utf8 => Some(s.as_bytes().to_vec()),
            Charset::Iso2022Jp => {
                let (bytes, _, had_errors) = encoding_rs::ISO_2022_JP.encode(s);
                if had_errors {
                    None
                } else {
                    Some(bytes.into_owned())
                }
            }
        }
    }

    /// The first character of `s` this charset cannot represent, if any.
    pub fn first_unencodable(self, s: &str) -> Option<char> {
        match self {
            Charset::Utf8 => None,
            Charset::Iso2022Jp => {
                if self.encode(s).is_some() {
                    return None;
                }
                let mut buf = [0u8; 4];
                s.chars()
                    .find(|c| self.encode(c.encode_utf8(&mut buf)).is_none())
            }
        }
    }
}

/// True if `s` is printable ASCII (space through `~`) only.
pub(crate) fn is_printable_ascii(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Replaces every control character (CR, LF, TAB, …) by a space, so header text can never
/// break out of its header line.
pub(crate) fn flatten_controls(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// RFC 2047 B-encoded words for `text`: the first at most `first_max` characters (it shares
/// a line with the header name), the others at most 75, each a complete sequence in
/// `charset` (falls back to UTF-8 when `charset` cannot represent the text).
pub(crate) fn encoded_words(text: &str, charset: Charset, first_max: usize) -> Vec<String> {
    let charset = if charset.encode(text).is_some() {
        charset
    } else {
        Charset::Utf8
    };
    let label = charset.label();
    // "=?" label "?B?" … "?=" ; the rest is base64: 3 raw bytes per 4 characters
    let overhead = 2 + label.len() + 3 + 2;
    // never less than one character (ISO-2022-JP: ESC $ B, 2 bytes, ESC ( B = 8 bytes)
    let raw_budget = |max: usize| (max.saturating_sub(overhead) / 4 * 3).max(9);
    let mut max_raw = raw_budget(first_max.min(75));
    let mut words = Vec::new();
    let mut chunk = String::new();
    let mut chunk_bytes: Vec<u8> = Vec::new();
    for c in text.chars() {
        let mut candidate = chunk.clone();
        candidate.push(c);
        let encoded = charset.encode(&candidate).unwrap_or_default();
        if encoded.len() > max_raw && !chunk.is_empty() {
            words.push(format!("=?{label}?B?{}?=", B64.encode(&chunk_bytes)));
            max_raw = raw_budget(75);
            chunk.clear();
            chunk.push(c);
            chunk_bytes = charset.encode(&chunk).unwrap_or_default();
        } else {
            chunk = candidate;
            chunk_bytes = encoded;
        }
    }
    if !chunk.is_empty() {
        words.push(format!("=?{label}?B?{}?=", B64.encode(&chunk_bytes)));
    }
    words
}

/// Encodes an unstructured header value (Subject, custom headers): printable ASCII that does
/// not look like an encoded word is kept (folded at spaces near 78 columns), anything else
/// becomes RFC 2047 encoded words, one per line, so every line stays within 76 characters
/// (RFC 2047 section 2). Control characters become spaces. `name_len` is the length of the
/// header name.
pub(crate) fn encode_unstructured(name_len: usize, text: &str, charset: Charset) -> String {
    let text = flatten_controls(text);
    if is_printable_ascii(&text) && !text.contains("=?") {
        if let Some(folded) = fold_ascii(name_len + 2, &text) {
            return folded;
        }
    }
    encoded_words(&text, charset, 76usize.saturating_sub(name_len + 2)).join("\r\n ")
}

/// Joins header tokens with single spaces, folding before a token that would push the line
/// past 76 characters. `first_col` is where the value starts on the first line.
pub(crate) fn fold_tokens(first_col: usize, tokens: &[String]) -> String {
    let mut out = String::new();
    let mut col = first_col;
    for (i, t) in tokens.iter().enumerate() {
        if i > 0 {
            if col + 1 + t.len() > 76 {
                out.push_str("\r\n ");
                col = 1;
            } else {
                out.push(' ');
                col += 1;
            }
        }
        out.push_str(t);
        col += t.len();
    }
    out
}

/// Folds printable ASCII at spaces so lines stay near 78 columns; `None` if a single word
/// would make a line longer than 998 characters.
fn fold_ascii(first_col: usize, text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 8);
    let mut col = first_col;
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            if col + 1 + word.len() > 78 && col > 1 {
                out.push_str("\r\n ");
                col = 1;
            } else {
                out.push(' ');
                col += 1;
            }
        }
        out.push_str(word);
        col += word.len();
        if col > 998 {
            return None;
        }
    }
    Some(out)
}

/// A display name as RFC 5322 phrase tokens: atoms as-is, other printable ASCII as one
/// quoted string, non-ASCII as encoded words (the first at most `first_max` characters).
/// Control characters become spaces.
pub(crate) fn encode_phrase(name: &str, charset: Charset, first_max: usize) -> Vec<String> {
    let name = flatten_controls(name);
    if is_printable_ascii(&name) && !name.contains("=?") {
        let atom_ok = name.split(' ').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b))
        });
        if atom_ok {
            return name.split(' ').map(str::to_string).collect();
        }
        let mut q = String::with_capacity(name.len() + 2);
        q.push('"');
        for c in name.chars() {
            if c == '"' || c == '\\' {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        return vec![q];
    }
    encoded_words(&name, charset, first_max)
}

/// Decodes RFC 2047 encoded words in `s` (B and Q, any charset encoding_rs knows); whitespace
/// between adjacent encoded words is dropped. Text that is not an encoded word is kept.
pub(crate) fn decode_rfc2047(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    let mut pending_ws = String::new();
    let mut last_was_word = false;
    while !rest.is_empty() {
        if rest.starts_with("=?") {
            if let Some((decoded, len)) = decode_one_word(rest) {
                if !last_was_word {
                    out.push_str(&pending_ws);
                }
                pending_ws.clear();
                out.push_str(&decoded);
                rest = &rest[len..];
                last_was_word = true;
                continue;
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
            pending_ws.push(c);
        } else {
            out.push_str(&pending_ws);
            pending_ws.clear();
            out.push(c);
            last_was_word = false;
        }
        rest = &rest[c.len_utf8()..];
    }
    out.push_str(&pending_ws);
    out
}

/// Decodes one `=?charset?enc?text?=` at the start of `s`: (decoded text, bytes consumed).
fn decode_one_word(s: &str) -> Option<(String, usize)> {
    let body = &s[2..];
    let q1 = body.find('?')?;
    let charset = &body[..q1];
    let after = &body[q1 + 1..];
    let (enc, tail) = after.split_once('?')?;
    let end = tail.find("?=")?;
    let payload = &tail[..end];
    if payload.contains(' ') {
        return None;
    }
    let bytes = match enc {
        "B" | "b" => B64
            .decode(payload)
            .or_else(|_| {
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(payload.trim_end_matches('='))
            })
            .ok()?,
        "Q" | "q" => {
            let mut out = Vec::new();
            let p = payload.as_bytes();
            let mut i = 0;
            while i < p.len() {
                match p[i] {
                    b'_' => out.push(b' '),
                    b'=' if i + 2 < p.len() => {
                        let h = crate::params::hex_val(p[i + 1])?;
                        let l = crate::params::hex_val(p[i + 2])?;
                        out.push(h << 4 | l);
                        i += 2;
                    }
                    b => out.push(b),
                }
                i += 1;
            }
            out
        }
        _ => return None,
    };
    // RFC 2231 language suffix: charset*lang
    let label = charset.split('*').next().unwrap_or(charset);
    let encoding = encoding_rs::Encoding::for_label(label.as_bytes())?;
    let (text, _, _) = encoding.decode(&bytes);
    let consumed = 2 + q1 + 1 + enc.len() + 1 + end + 2;
    Some((text.into_owned(), consumed))
}

/// Parses a header value with parameters, e.g. `form-data; name="a"; filename*=UTF-8''%E3%81%82`.
///
/// Returns the leading value (trimmed) and the parameters with lower-cased names. Quoted
/// strings are unquoted (`\"` and `\\` unescaped); RFC 2231 extended values (`name*=`) and
/// continuations (`name*0*=`, `name*1=`) are decoded and joined into one `name` entry.
pub(crate) fn parse_header_params(header: &str) -> (String, Vec<(String, String)>) {
    let mut segments = split_params(header).into_iter();
    let value = segments.next().unwrap_or_default().trim().to_string();
    let mut plain: Vec<(String, String)> = Vec::new();
    // (name, index, extended, raw value)
    let mut continued: Vec<(String, u32, bool, String)> = Vec::new();
    for seg in segments {
        let Some(eq) = seg.find('=') else { continue };
        let key = seg[..eq].trim().to_ascii_lowercase();
        let raw = seg[eq + 1..].trim();
        let val = unquote(raw);
        if key.is_empty() {
            continue;
        }
        if let Some(star) = key.find('*') {
            let name = key[..star].to_string();
            let suffix = &key[star + 1..];
            if suffix.is_empty() {
                continued.push((name, 0, true, val));
            } else {
                let (num, ext) = match suffix.strip_suffix('*') {
                    Some(n) => (n, true),
                    None => (suffix, false),
                };
                if let Ok(n) = num.parse::<u32>() {
                    continued.push((name, n, ext, val));
                }
            }
        } else {
            plain.push((key, val));
        }
    }
    continued.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut i = 0;
    while i < continued.len() {
        let name = continued[i].0.clone();
        let mut charset: Option<String> = None;
        let mut bytes: Vec<u8> = Vec::new();
        while i < continued.len() && continued[i].0 == name {
            let (_, idx, ext, ref v) = continued[i];
            let mut v = v.as_str();
            if ext && idx == 0 {
                // charset'language'value
                let mut it = v.splitn(3, '\'');
                if let (Some(cs), Some(_lang), Some(rest)) = (it.next(), it.next(), it.next()) {
                    charset = Some(cs.to_string());
                    v = rest;
                }
            }
            if ext {
                bytes.extend(pct_decode_lenient(v));
            } else {
                bytes.extend_from_slice(v.as_bytes());
            }
            i += 1;
        }
        let decoded = match charset
            .as_deref()
            .and_then(|cs| encoding_rs::Encoding::for_label(cs.as_bytes()))
        {
            Some(enc) => enc.decode(&bytes).0.into_owned(),
            None => String::from_utf8_lossy(&bytes).into_owned(),
        };
        plain.retain(|(k, _)| *k != name);
        plain.push((name, decoded));
    }
    (value, plain)
}

fn pct_decode_lenient(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (
                crate::params::hex_val(b[i + 1]),
                crate::params::hex_val(b[i + 2]),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Splits at `;` outside double quotes.
fn split_params(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quote => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                in_quote = !in_quote;
                cur.push(c);
            }
            ';' if !in_quote => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn unquote(raw: &str) -> String {
    if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
        let inner = &raw[1..raw.len() - 1];
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some(n @ ('"' | '\\')) => out.push(n),
                    Some(n) => {
                        out.push('\\');
                        out.push(n);
                    }
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        raw.to_string()
    }
}

/// Emits a MIME parameter `name=value` as one or more `; `-separated segments: plain quoted
/// form for short printable ASCII, RFC 2231 `name*=UTF-8''…` (with `name*N*` continuations
/// for long values) otherwise. Segments are meant to be joined with `;\r\n `.
pub(crate) fn mime_param(name: &str, value: &str) -> Vec<String> {
    let value = flatten_controls(value);
    if is_printable_ascii(&value) && value.len() <= 60 {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        return vec![format!("{name}=\"{escaped}\"")];
    }
    let mut pct = String::new();
    let mut pieces: Vec<String> = Vec::new();
    for c in value.chars() {
        let mut buf = [0u8; 4];
        let mut enc = String::new();
        for b in c.encode_utf8(&mut buf).bytes() {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                enc.push(b as char);
            } else {
                enc.push_str(&format!("%{b:02X}"));
            }
        }
        if pct.len() + enc.len() > 50 {
            pieces.push(std::mem::take(&mut pct));
        }
        pct.push_str(&enc);
    }
    pieces.push(pct);
    if pieces.len() == 1 {
        return vec![format!("{name}*=UTF-8''{}", pieces[0])];
    }
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            if i == 0 {
                format!("{name}*0*=UTF-8''{p}")
            } else {
                format!("{name}*{i}*={p}")
            }
        })
        .collect()
}

/// Base64 with CRLF line breaks every 76 characters (and a final CRLF).
pub(crate) fn base64_lines(data: &[u8]) -> String {
    let enc = B64.encode(data);
    let mut out = String::with_capacity(enc.len() + enc.len() / 76 * 2 + 2);
    for chunk in enc.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

/// Quoted-printable (RFC 2045) of text whose line breaks are already CRLF: hard breaks are
/// kept, lines are soft-broken at 76 columns, `=`, non-ASCII and trailing white space are
/// escaped.
pub(crate) fn quoted_printable(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 3 / 2);
    let lines: Vec<&[u8]> = split_crlf(data);
    for (li, line) in lines.iter().enumerate() {
        let mut col = 0;
        for (i, &b) in line.iter().enumerate() {
            let last = i + 1 == line.len();
            let literal =
                (b == b' ' || b == b'\t') && !last || (33..=126).contains(&b) && b != b'=';
            let piece_len = if literal { 1 } else { 3 };
            if col + piece_len > 75 {
                out.push_str("=\r\n");
                col = 0;
            }
            if literal {
                out.push(b as char);
            } else {
                out.push_str(&format!("={b:02X}"));
            }
            col += piece_len;
        }
        if li + 1 < lines.len() {
            out.push_str("\r\n");
        }
    }
    out
}

fn split_crlf(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < data.len() {
        if data[i] == b'\r' && data[i + 1] == b'\n' {
            out.push(&data[start..i]);
            i += 2;
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(&data[start..]);
    out
}

/// Converts CRLF, lone CR and lone LF line breaks to CRLF.
pub(crate) fn to_crlf(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 40);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_parse_and_encode() {
        assert_eq!(Charset::parse("utf-8"), Some(Charset::Utf8));
        assert_eq!(Charset::parse("UTF8"), Some(Charset::Utf8));
        assert_eq!(Charset::parse("iso-2022-jp"), Some(Charset::Iso2022Jp));
        assert_eq!(Charset::parse("ISO_2022_JP"), Some(Charset::Iso2022Jp));
        assert_eq!(Charset::parse("Shift_JIS"), None);
        assert_eq!(Charset::Iso2022Jp.label(), "ISO-2022-JP");
        let jis = Charset::Iso2022Jp.encode("あA").unwrap();
        assert_eq!(jis, b"\x1b$B$\"\x1b(BA");
        assert_eq!(Charset::Iso2022Jp.encode("😀"), None);
        assert_eq!(Charset::Iso2022Jp.first_unencodable("あ😀"), Some('😀'));
        assert_eq!(Charset::Iso2022Jp.first_unencodable("あ"), None);
        assert_eq!(Charset::Utf8.first_unencodable("😀"), None);
    }

    #[test]
    fn encoded_words_round_trip_and_length() {
        let text = "日本語の件名がとても長い場合でも正しく分割されることを確認します。😀";
        for cs in [Charset::Utf8, Charset::Iso2022Jp] {
            let words = encoded_words(text, cs, 60);
            assert!(words.len() > 1);
            assert!(words[0].len() <= 60, "{}", words[0]);
            for w in &words {
                assert!(w.len() <= 75, "{w}");
            }
            // the emoji forces UTF-8 even for ISO-2022-JP
            assert!(words[0].starts_with("=?UTF-8?B?"));
            assert_eq!(decode_rfc2047(&words.join("\r\n ")), text);
        }
        let words = encoded_words("日本語", Charset::Iso2022Jp, 75);
        assert!(words[0].starts_with("=?ISO-2022-JP?B?"));
        assert_eq!(decode_rfc2047(&words.join(" ")), "日本語");
    }

    #[test]
    fn unstructured_ascii_folds_and_controls_flatten() {
        assert_eq!(encode_unstructured(7, "Hello", Charset::Utf8), "Hello");
        let subject = encode_unstructured(7, &"件名".repeat(40), Charset::Iso2022Jp);
        for (i, line) in subject.split("\r\n").enumerate() {
            let width = if i == 0 { line.len() + 9 } else { line.len() };
            assert!(width <= 76, "{line}");
        }
        assert_eq!(decode_rfc2047(&subject), "件名".repeat(40));
        // even a very long header name leaves room for one character per word
        let odd = encode_unstructured(90, "あい", Charset::Iso2022Jp);
        assert_eq!(decode_rfc2047(&odd), "あい");
        let long = "word ".repeat(40);
        let folded = encode_unstructured(7, long.trim_end(), Charset::Utf8);
        assert!(folded.contains("\r\n "));
        for line in folded.split("\r\n") {
            assert!(line.len() <= 78);
        }
        assert_eq!(
            encode_unstructured(7, "a\r\nBcc: x@y", Charset::Utf8),
            "a  Bcc: x@y"
        );
        // a token longer than 998 characters is encoded instead
        let huge = "x".repeat(1200);
        let enc = encode_unstructured(7, &huge, Charset::Utf8);
        assert!(enc.starts_with("=?UTF-8?B?"));
        assert_eq!(decode_rfc2047(&enc), huge);
        // text that looks like an encoded word is encoded so it survives decoding
        let enc = encode_unstructured(7, "=?x?", Charset::Utf8);
        assert_eq!(decode_rfc2047(&enc), "=?x?");
    }

    #[test]
    fn phrases() {
        assert_eq!(
            encode_phrase("John Smith", Charset::Utf8, 70),
            vec!["John", "Smith"]
        );
        assert_eq!(
            encode_phrase("Smith, \"J\"", Charset::Utf8, 70),
            vec!["\"Smith, \\\"J\\\"\""]
        );
        let enc = encode_phrase("山田 太郎", Charset::Iso2022Jp, 70).join(" ");
        assert!(enc.starts_with("=?ISO-2022-JP?B?"));
        assert_eq!(decode_rfc2047(&enc), "山田 太郎");
        let tokens: Vec<String> = vec!["a".repeat(40), "b".repeat(30), "c".repeat(10)];
        assert_eq!(
            fold_tokens(6, &tokens),
            format!(
                "{}\r\n {} {}",
                "a".repeat(40),
                "b".repeat(30),
                "c".repeat(10)
            )
        );
    }

    #[test]
    fn rfc2047_decoding_variants() {
        assert_eq!(
            decode_rfc2047("=?UTF-8?Q?caf=C3=A9_au_lait?="),
            "café au lait"
        );
        assert_eq!(
            decode_rfc2047("a =?UTF-8?B?44GC?= =?UTF-8?B?44GE?= b"),
            "a あい b"
        );
        assert_eq!(decode_rfc2047("=?Shift_JIS?B?gqA=?="), "あ");
        assert_eq!(decode_rfc2047("=?utf-8?b?44GC?="), "あ");
        assert_eq!(decode_rfc2047("=?UTF-8*ja?B?44GC?="), "あ");
        assert_eq!(decode_rfc2047("=?bogus?B?gqA=?= x"), "=?bogus?B?gqA=?= x");
        assert_eq!(decode_rfc2047("plain"), "plain");
    }

    #[test]
    fn header_params_rfc2231() {
        let (v, p) = parse_header_params(
            "form-data; name=\"attachment1\"; filename*=UTF-8''%E8%B3%87%E6%96%99.pdf; filename=\"fallback.pdf\"",
        );
        assert_eq!(v, "form-data");
        assert!(p.contains(&("name".into(), "attachment1".into())));
        assert!(p.contains(&("filename".into(), "資料.pdf".into())));
        assert_eq!(p.iter().filter(|(k, _)| k == "filename").count(), 1);

        let (_, p) = parse_header_params(
            "attachment; filename*0*=UTF-8''%E3%81%82; filename*1*=%E3%81%84; filename*2=.txt",
        );
        assert_eq!(p, vec![("filename".to_string(), "あい.txt".to_string())]);

        let (_, p) = parse_header_params(r#"form-data; name="a;b"; filename="x\"y.txt""#);
        assert_eq!(p[0], ("name".to_string(), "a;b".to_string()));
        assert_eq!(p[1], ("filename".to_string(), "x\"y.txt".to_string()));
        let (v, p) = parse_header_params("multipart/form-data; boundary=abc");
        assert_eq!(v, "multipart/form-data");
        assert_eq!(p[0], ("boundary".to_string(), "abc".to_string()));
    }

    #[test]
    fn mime_param_emission_round_trips() {
        assert_eq!(mime_param("filename", "a.txt"), vec!["filename=\"a.txt\""]);
        let short = mime_param("filename", "資料.pdf");
        assert_eq!(short, vec!["filename*=UTF-8''%E8%B3%87%E6%96%99.pdf"]);
        let long_name = "とても長いファイル名の添付ファイルです・テスト用.txt";
        let segs = mime_param("filename", long_name);
        assert!(segs.len() > 1);
        let header = format!("attachment;\r\n {}", segs.join(";\r\n "));
        for line in header.split("\r\n") {
            assert!(line.len() < 78, "{line}");
        }
        let (_, p) = parse_header_params(&header.replace("\r\n", ""));
        assert_eq!(p, vec![("filename".to_string(), long_name.to_string())]);
    }

    #[test]
    fn qp_and_base64() {
        let text = "caf\u{e9} = ok \r\nline2 \r\n".to_string() + &"x".repeat(100);
        let qp = quoted_printable(text.as_bytes());
        assert!(qp.starts_with("caf=C3=A9 =3D ok=20\r\nline2=20\r\n"));
        for line in qp.split("\r\n") {
            assert!(line.len() <= 76, "{line}");
        }
        let b = base64_lines(&[0u8; 100]);
        assert!(b.split("\r\n").all(|l| l.len() <= 76));
        assert!(b.ends_with("\r\n"));
        assert_eq!(to_crlf("a\nb\r\nc\rd"), "a\r\nb\r\nc\r\nd");
    }
}
