//! SMTP reply and EHLO parsing (pure).

/// One (possibly multi-line) SMTP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Enhanced status code (RFC 3463) from the start of the text, e.g. `"5.1.1"`.
    pub enhanced: Option<String>,
    /// The text of all lines joined with `"\n"`, without codes.
    pub text: String,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }
    /// The reply as one line: `550 5.1.1 user unknown`.
    pub fn to_line(&self) -> String {
        let text = self.text.replace('\n', " ");
        match &self.enhanced {
            Some(e) => format!("{} {e} {text}", self.code),
            None => format!("{} {text}", self.code),
        }
    }

    /// A reply made up locally (for refusals decided before sending).
    pub fn local(code: u16, enhanced: &str, text: &str) -> Reply {
        Reply {
            code,
            enhanced: Some(enhanced.into()),
            text: text.into(),
        }
    }
}

/// Largest reply accepted.
pub const MAX_REPLY_BYTES: usize = 64 * 1024;
pub const MAX_REPLY_LINES: usize = 100;

/// Outcome of [`parse_reply`].
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete reply and the number of bytes it used.
    Done(Reply, usize),
    /// More bytes needed.
    Incomplete,
    /// Not an SMTP reply.
    Invalid(String),
}

/// Parse one reply from the start of `buf` (lines end in CRLF or a bare LF).
pub fn parse_reply(buf: &[u8]) -> Parsed {
    let mut pos = 0;
    let mut code: Option<u16> = None;
    let mut lines: Vec<String> = Vec::new();
    loop {
        let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') else {
            if buf.len() > MAX_REPLY_BYTES {
                return Parsed::Invalid("reply too long".into());
            }
            return Parsed::Incomplete;
        };
        let raw = &buf[pos..pos + nl];
        let line = String::from_utf8_lossy(raw.strip_suffix(b"\r").unwrap_or(raw)).into_owned();
        pos += nl + 1;
        if line.len() < 3 || !line.as_bytes()[..3].iter().all(u8::is_ascii_digit) {
            return Parsed::Invalid(format!("not a reply line: {line:?}"));
        }
        let c: u16 = line[..3].parse().expect("three digits");
        if !(200..600).contains(&c) || code.is_some_and(|p| p != c) {
            return Parsed::Invalid(format!("bad reply code in {line:?}"));
        }
        code = Some(c);
        let sep = line.as_bytes().get(3).copied();
        let text = line.get(4..).unwrap_or("").to_string();
        lines.push(text);
        match sep {
            None | Some(b' ') => break,
            Some(b'-') => {}
            Some(_) => return Parsed::Invalid(format!("bad separator in {line:?}")),
        }
        if lines.len() > MAX_REPLY_LINES || pos > MAX_REPLY_BYTES {
            return Parsed::Invalid("reply too long".into());
        }
    }
    let code = code.expect("at least one line");
    // The enhanced code appears at the start of each line; take it from the first.
    let enhanced =
        enhanced_status(&lines[0]).filter(|e| e.starts_with(char::from(b'0' + (code / 100) as u8)));
    let text = lines
        .iter()
        .map(|l| match &enhanced {
            Some(e) => l
                .strip_prefix(e.as_str())
                .unwrap_or(l)
                .trim_start()
                .to_string(),
            None => l.clone(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    Parsed::Done(
        Reply {
            code,
            enhanced,
            text,
        },
        pos,
    )
}

/// `class.subject.detail` at the start of `text` (class 2, 4 or 5).
fn enhanced_status(text: &str) -> Option<String> {
    let word = text.split_whitespace().next()?;
    let parts: Vec<&str> = word.split('.').collect();
    if parts.len() != 3
        || !matches!(parts[0], "2" | "4" | "5")
        || parts[1..]
            .iter()
            .any(|p| p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some(word.to_string())
}

/// What an EHLO reply advertises.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub starttls: bool,
    pub pipelining: bool,
    pub eight_bit: bool,
    pub smtputf8: bool,
    /// `SIZE n` (0 = no limit given).
    pub size: Option<u64>,
}

/// Parse the lines after the first of an EHLO reply.
pub fn capabilities(ehlo: &Reply) -> Capabilities {
    let mut c = Capabilities::default();
    for line in ehlo.text.lines().skip(1) {
        let mut words = line.split_whitespace();
        let kw = words.next().unwrap_or("").to_ascii_uppercase();
        match kw.as_str() {
            "STARTTLS" => c.starttls = true,
            "PIPELINING" => c.pipelining = true,
            "8BITMIME" => c.eight_bit = true,
            "SMTPUTF8" => c.smtputf8 = true,
            "SIZE" => c.size = Some(words.next().and_then(|n| n.parse().ok()).unwrap_or(0)),
            _ => {}
        }
    }
    c
}

/// Dot-stuff `msg` for DATA and append the terminator; the message is normalised to end
/// with CRLF. Lines are expected to end in CRLF already (the queue stores them so).
pub fn dot_stuff(msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(msg.len() + msg.len() / 64 + 5);
    let mut at_line_start = true;
    for &b in msg {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        if out.ends_with(b"\n") {
            out.pop();
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(s: &str) -> (Reply, usize) {
        match parse_reply(s.as_bytes()) {
            Parsed::Done(r, n) => (r, n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn single_and_multi_line_replies() {
        let (r, n) = done("250 2.0.0 Ok: queued\r\nextra");
        assert_eq!(
            (r.code, r.enhanced.as_deref(), r.text.as_str()),
            (250, Some("2.0.0"), "Ok: queued")
        );
        assert_eq!(n, "250 2.0.0 Ok: queued\r\n".len());
        let (r, _) = done(
            "550-5.1.1 The email account\r\n550-5.1.1 does not exist.\r\n550 5.1.1 Try again\r\n",
        );
        assert_eq!(r.code, 550);
        assert_eq!(r.enhanced.as_deref(), Some("5.1.1"));
        assert_eq!(r.text, "The email account\ndoes not exist.\nTry again");
        assert_eq!(
            r.to_line(),
            "550 5.1.1 The email account does not exist. Try again"
        );
        let (r, _) = done("220\n");
        assert_eq!((r.code, r.text.as_str(), r.enhanced), (220, "", None));
        // An enhanced code of the wrong class is text, not a status.
        let (r, _) = done("451 5.1.1 odd\r\n");
        assert_eq!(r.enhanced, None);
    }

    #[test]
    fn incomplete_and_invalid() {
        assert_eq!(parse_reply(b"250-a\r\n250 b"), Parsed::Incomplete);
        assert!(matches!(parse_reply(b"hello\r\n"), Parsed::Invalid(_)));
        assert!(matches!(
            parse_reply(b"250-a\r\n251 b\r\n"),
            Parsed::Invalid(_)
        ));
        assert!(matches!(parse_reply(b"999 x\r\n"), Parsed::Invalid(_)));
        let long = "250-x\r\n".repeat(200);
        assert!(matches!(parse_reply(long.as_bytes()), Parsed::Invalid(_)));
    }

    #[test]
    fn ehlo_capabilities() {
        let (r, _) = done("250-mx.example greets you\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-starttls\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n");
        let c = capabilities(&r);
        assert!(c.starttls && c.pipelining && c.eight_bit && c.smtputf8);
        assert_eq!(c.size, Some(10_240_000));
        let (r, _) = done("250 mx.example\r\n");
        assert_eq!(capabilities(&r), Capabilities::default());
    }

    #[test]
    fn dot_stuffing() {
        assert_eq!(
            dot_stuff(b".a\r\nb\r\n..c\r\n"),
            b"..a\r\nb\r\n...c\r\n.\r\n"
        );
        assert_eq!(dot_stuff(b"no newline"), b"no newline\r\n.\r\n");
        assert_eq!(dot_stuff(b"x\n"), b"x\r\n.\r\n");
        assert_eq!(dot_stuff(b"a\r\n.\r\n"), b"a\r\n..\r\n.\r\n");
    }
}
