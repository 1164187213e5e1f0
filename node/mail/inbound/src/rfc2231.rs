//! RFC 2231 extended / continued parameters (`filename*=`, `filename*0*=`).
//!
//! mail-parser 0.11 decodes each `name*N*` continuation on its own and only
//! applies the charset to the first one, so a UTF-8 character split across
//! two segments (legal per RFC 2231) turns into U+FFFD, and segments after
//! the first of a Shift_JIS / ISO-2022-JP name are read as UTF-8. Here all
//! segments are concatenated as bytes first and the charset of segment 0 is
//! applied to the whole.

use mail_parser::decoders::charsets::map::charset_decoder;

use crate::charset;

/// Splits a raw parameter list (`type/sub; a=b; c="d;e"`) into
/// `(lower-case key, unquoted value bytes)`. Folding (CR/LF) is dropped.
fn params(raw: &[u8]) -> Vec<(String, Vec<u8>)> {
    let bytes: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    let mut out = Vec::new();
    let mut pieces: Vec<Vec<u8>> = vec![Vec::new()];
    let mut in_quote = false;
    let mut escaped = false;
    for &b in &bytes {
        let cur = pieces.last_mut().expect("never empty");
        if in_quote {
            cur.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quote = false;
            }
        } else if b == b';' {
            pieces.push(Vec::new());
        } else {
            if b == b'"' {
                in_quote = true;
            }
            cur.push(b);
        }
    }
    // The first piece is the type/disposition itself.
    for piece in pieces.into_iter().skip(1) {
        let Some(eq) = piece.iter().position(|&b| b == b'=') else {
            continue;
        };
        let key = String::from_utf8_lossy(&piece[..eq])
            .trim()
            .to_ascii_lowercase();
        let value = piece[eq + 1..].trim_ascii();
        let value = match value.strip_prefix(b"\"") {
            Some(inner) => {
                let inner = inner.strip_suffix(b"\"").unwrap_or(inner);
                let mut v = Vec::with_capacity(inner.len());
                let mut esc = false;
                for &b in inner {
                    if !esc && b == b'\\' {
                        esc = true;
                    } else {
                        v.push(b);
                        esc = false;
                    }
                }
                v
            }
            None => value.to_vec(),
        };
        out.push((key, value));
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Lenient percent-decoding: malformed escapes are kept literally.
fn pct_decode(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' && i + 2 < v.len() {
            if let (Some(h), Some(l)) = (hex(v[i + 1]), hex(v[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(v[i]);
        i += 1;
    }
    out
}

/// Splits `charset'language'value` (the first extended segment).
fn split_charset(v: &[u8]) -> (Option<String>, &[u8]) {
    let mut it = v.splitn(3, |&b| b == b'\'');
    match (it.next(), it.next(), it.next()) {
        (Some(cs), Some(_lang), Some(rest)) => {
            let cs = String::from_utf8_lossy(cs).trim().to_owned();
            ((!cs.is_empty()).then_some(cs), rest)
        }
        _ => (None, v),
    }
}

/// The RFC 2231 value of parameter `name` in a raw `Content-Type` /
/// `Content-Disposition` value, decoded to UTF-8. `None` when the parameter
/// is not present in an extended (`name*`) or continued (`name*N`) form, so
/// that the caller falls back to the plain `name=` value.
pub(crate) fn extended_param(raw: &[u8], name: &str) -> Option<String> {
    let mut single: Option<Vec<u8>> = None;
    // (index, extended, value)
    let mut segments: Vec<(u32, bool, Vec<u8>)> = Vec::new();
    for (key, value) in params(raw) {
        let Some(rest) = key.strip_prefix(name).and_then(|r| r.strip_prefix('*')) else {
            continue;
        };
        if rest.is_empty() {
            single = Some(value);
        } else {
            let (num, extended) = match rest.strip_suffix('*') {
                Some(n) => (n, true),
                None => (rest, false),
            };
            if let Ok(n) = num.parse::<u32>() {
                segments.push((n, extended, value));
            }
        }
    }

    let (charset, bytes) = if let Some(v) = single {
        let (cs, rest) = split_charset(&v);
        (cs, pct_decode(rest))
    } else if !segments.is_empty() {
        segments.sort_by_key(|s| s.0);
        let mut charset = None;
        let mut bytes = Vec::new();
        for (i, (n, extended, v)) in segments.iter().enumerate() {
            if *extended {
                let v = if i == 0 && *n == 0 {
                    let (cs, rest) = split_charset(v);
                    charset = cs;
                    rest
                } else {
                    v.as_slice()
                };
                bytes.extend(pct_decode(v));
            } else {
                bytes.extend_from_slice(v);
            }
        }
        (charset, bytes)
    } else {
        return None;
    };

    let text = match charset
        .as_deref()
        .and_then(|c| charset_decoder(c.as_bytes()))
    {
        Some(decode) if !charset::is_utf8_label(charset.as_deref()) => decode(&bytes),
        _ => charset::sniff(&bytes),
    };
    Some(text.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_extended() {
        let raw = b" attachment; filename*=UTF-8''%E8%AB%8B%E6%B1%82%E6%9B%B8.pdf\r\n";
        assert_eq!(extended_param(raw, "filename").unwrap(), "請求書.pdf");
        assert_eq!(extended_param(raw, "name"), None);
    }

    #[test]
    fn continuation_split_inside_a_utf8_character() {
        // "の" = E3 81 AE, split after E3 81.
        let raw = b" attachment;\r\n filename*0*=UTF-8''%E5%90%8D%E3%81;\r\n filename*1*=%AE.txt";
        assert_eq!(extended_param(raw, "filename").unwrap(), "名の.txt");
    }

    #[test]
    fn continuation_with_charset_only_on_first_segment() {
        // "日本語.txt" in Shift_JIS: 93 FA 96 7B 8C EA
        let raw = b"inline; filename*1*=%96%7B; filename*0*=shift_jis'ja'%93%FA; \
                    filename*2*=%8C%EA; filename*3=\".txt\"";
        assert_eq!(extended_param(raw, "filename").unwrap(), "日本語.txt");
    }

    #[test]
    fn plain_forms_are_left_to_mail_parser() {
        assert_eq!(
            extended_param(b"attachment; filename=\"a;b.txt\"", "filename"),
            None
        );
        assert_eq!(extended_param(b"", "filename"), None);
    }

    #[test]
    fn malformed_input_does_not_panic() {
        for raw in [
            &b"a; filename*=%"[..],
            b"a; filename*=%4",
            b"a; filename*0*='''",
            b"a; filename*99999999999*=x",
            b"a; filename*=\"unterminated",
            b";;;=;*=",
        ] {
            let _ = extended_param(raw, "filename");
        }
        assert_eq!(
            extended_param(b"a; filename*=%4", "filename").unwrap(),
            "%4"
        );
    }
}
