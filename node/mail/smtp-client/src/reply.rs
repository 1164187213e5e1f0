//! SMTP replies: the [`Reply`] type and an incremental parser without I/O.

use std::fmt;

/// Most bytes one reply may take, line ends included.
const MAX_REPLY_BYTES: usize = 64 * 1024;
/// Most lines one reply may take.
const MAX_REPLY_LINES: usize = 100;

/// A server reply (RFC 5321 §4.2), possibly spread over several lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code, 200 to 599.
    pub code: u16,
    /// The enhanced status code (RFC 3463), e.g. `"5.1.1"`, when the first
    /// line's text starts with one whose class matches the reply code.
    pub enhanced: Option<String>,
    /// The text of all lines joined with `"\n"`, without the reply codes and
    /// without the enhanced code where a line starts with it.
    pub text: String,
}

impl Reply {
    /// A reply made up by this client, never sent by a server (used for
    /// per-recipient refusals decided before anything is sent).
    pub(crate) fn synthetic(code: u16, enhanced: &str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced: Some(enhanced.to_owned()),
            text: text.into(),
        }
    }

    /// 2xx (positive completion) or 3xx (positive intermediate, e.g. 354).
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// 4xx: transient negative, the same request may succeed later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: permanent negative, the same request will fail again.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// The reply on one line, e.g. `"550 5.1.1 user unknown"`; the lines of a
    /// multi-line text are joined with spaces.
    pub fn to_line(&self) -> String {
        let mut line = self.code.to_string();
        if let Some(enhanced) = &self.enhanced {
            line.push(' ');
            line.push_str(enhanced);
        }
        if !self.text.is_empty() {
            line.push(' ');
            line.push_str(&self.text.replace('\n', " "));
        }
        line
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_line())
    }
}

/// Parses the first complete reply at the start of `buf`.
///
/// Returns `Ok(Some((reply, consumed)))` once its last line (`"250 ..."`) is
/// in `buf`, `Ok(None)` when more bytes are needed, and `Err(detail)` when the
/// bytes are not an SMTP reply or it exceeds 64 KiB or 100 lines. Lines end
/// with CRLF or a bare LF.
pub(crate) fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    let mut pos = 0;
    let mut code = None;
    let mut lines: Vec<String> = Vec::new();
    loop {
        let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') else {
            if buf.len() > MAX_REPLY_BYTES {
                return Err(format!("reply longer than {MAX_REPLY_BYTES} bytes"));
            }
            return Ok(None);
        };
        let end = pos + nl + 1;
        if end > MAX_REPLY_BYTES {
            return Err(format!("reply longer than {MAX_REPLY_BYTES} bytes"));
        }
        if lines.len() == MAX_REPLY_LINES {
            return Err(format!("reply longer than {MAX_REPLY_LINES} lines"));
        }
        let line = &buf[pos..pos + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let (line_code, last, text) = parse_line(line)?;
        if *code.get_or_insert(line_code) != line_code {
            return Err(format!(
                "reply code changed within a reply: {}",
                shown(line)
            ));
        }
        lines.push(text);
        pos = end;
        if last {
            return Ok(Some((build(line_code, lines), pos)));
        }
    }
}

/// Splits one line (without its line end) into code, "is last", and text.
fn parse_line(line: &[u8]) -> Result<(u16, bool, String), String> {
    let bad = || format!("not an SMTP reply line: {}", shown(line));
    let digits = line.get(..3).ok_or_else(bad)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let code = digits
        .iter()
        .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if !(200..600).contains(&code) {
        return Err(bad());
    }
    let last = match line.get(3) {
        None | Some(b' ') => true,
        Some(b'-') => false,
        Some(_) => return Err(bad()),
    };
    let text = String::from_utf8_lossy(line.get(4..).unwrap_or_default()).into_owned();
    Ok((code, last, text))
}

/// Builds the reply: takes the enhanced code from the first line and strips
/// it from every line that repeats it.
fn build(code: u16, lines: Vec<String>) -> Reply {
    let class = (code / 100) as u8 + b'0';
    let enhanced = lines
        .first()
        .and_then(|first| enhanced_prefix(first))
        .filter(|e| e.as_bytes()[0] == class)
        .map(str::to_owned);
    let text = lines
        .iter()
        .map(|line| match &enhanced {
            Some(e) if enhanced_prefix(line) == Some(e.as_str()) => {
                line[e.len()..].trim_start_matches(' ')
            }
            _ => line.as_str(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    Reply {
        code,
        enhanced,
        text,
    }
}

/// The RFC 3463 code (`class.subject.detail`, class 2, 4 or 5, subject and
/// detail of 1 to 3 digits) at the start of `text`, followed by a space or
/// the end.
fn enhanced_prefix(text: &str) -> Option<&str> {
    let end = text.find(' ').unwrap_or(text.len());
    let candidate = &text[..end];
    let mut parts = candidate.split('.');
    let class = parts.next()?;
    let subject = parts.next()?;
    let detail = parts.next()?;
    let number = |s: &str| (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    let ok = matches!(class, "2" | "4" | "5")
        && number(subject)
        && number(detail)
        && parts.next().is_none();
    ok.then_some(candidate)
}

/// A line for an error message, shortened and made printable.
fn shown(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(80)]);
    format!("{:?}", text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(input: &str) -> Reply {
        let (reply, used) = parse_reply(input.as_bytes()).unwrap().unwrap();
        assert_eq!(used, input.len(), "whole input consumed");
        reply
    }

    #[test]
    fn single_line_with_enhanced_code() {
        let r = one("550 5.1.1 user unknown\r\n");
        assert_eq!(r.code, 550);
        assert_eq!(r.enhanced.as_deref(), Some("5.1.1"));
        assert_eq!(r.text, "user unknown");
        assert_eq!(r.to_line(), "550 5.1.1 user unknown");
        assert!(r.is_permanent() && !r.is_transient() && !r.is_positive());
    }

    #[test]
    fn multi_line_strips_repeated_enhanced_code() {
        let r = one("451-4.3.0 first\r\n451-4.3.0 second\r\n451 4.3.0 third\r\n");
        assert_eq!(r.code, 451);
        assert_eq!(r.enhanced.as_deref(), Some("4.3.0"));
        assert_eq!(r.text, "first\nsecond\nthird");
        assert_eq!(r.to_line(), "451 4.3.0 first second third");
        assert!(r.is_transient());
    }

    #[test]
    fn no_enhanced_code() {
        let r = one("220 mx.test ESMTP ready\r\n");
        assert_eq!(r.enhanced, None);
        assert_eq!(r.text, "mx.test ESMTP ready");
        let r = one("354 End data with <CR><LF>.<CR><LF>\r\n");
        assert!(r.is_positive());
        assert_eq!(r.enhanced, None);
        // Class must match the reply code; "3.0.0" is no enhanced code.
        assert_eq!(one("250 5.0.0 odd\r\n").enhanced, None);
        assert_eq!(one("250 2.0.0.1 odd\r\n").enhanced, None);
        assert_eq!(one("250 2.1234.0 odd\r\n").enhanced, None);
        assert_eq!(one("250 8BITMIME\r\n").enhanced, None);
    }

    #[test]
    fn code_only_lines_and_bare_lf() {
        let r = one("250\n");
        assert_eq!(
            (r.code, r.text.as_str(), r.enhanced.clone()),
            (250, "", None)
        );
        assert_eq!(r.to_line(), "250");
        let r = one("250-a\n250 b\n");
        assert_eq!(r.text, "a\nb");
    }

    #[test]
    fn incomplete_needs_more() {
        assert_eq!(parse_reply(b""), Ok(None));
        assert_eq!(parse_reply(b"250-first\r\n250 la"), Ok(None));
        assert_eq!(parse_reply(b"250-first\r\n"), Ok(None));
    }

    #[test]
    fn pipelined_replies_parse_one_at_a_time() {
        let buf = b"250 2.1.0 ok\r\n550 5.1.1 no\r\n";
        let (first, used) = parse_reply(buf).unwrap().unwrap();
        assert_eq!(first.code, 250);
        let (second, used2) = parse_reply(&buf[used..]).unwrap().unwrap();
        assert_eq!(second.code, 550);
        assert_eq!(used + used2, buf.len());
    }

    #[test]
    fn malformed_replies_are_errors() {
        for bad in [
            "hello\r\n",
            "25\r\n",
            "2500 x\r\n",
            "abc def\r\n",
            "150 too low\r\n",
            "600 too high\r\n",
            "250-a\r\n251 b\r\n",
        ] {
            assert!(parse_reply(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn caps_on_lines_and_bytes() {
        let lines = "250-x\r\n".repeat(100) + "250 x\r\n";
        assert!(parse_reply(lines.as_bytes()).unwrap_err().contains("lines"));
        let ok = "250-x\r\n".repeat(99) + "250 x\r\n";
        assert!(parse_reply(ok.as_bytes()).unwrap().is_some());

        let long = format!("250 {}\r\n", "x".repeat(70 * 1024));
        assert!(parse_reply(long.as_bytes()).unwrap_err().contains("bytes"));
        // Also while incomplete: the server must not make us buffer forever.
        let partial = format!("250 {}", "x".repeat(70 * 1024));
        assert!(parse_reply(partial.as_bytes()).is_err());
    }
}
