//! Turning received bytes into a queue entry: trace header, header facts for the log.
//!
//! Pure functions, no I/O. The body is kept byte for byte; only a `Received:` trace header is
//! prepended (and `Message-ID`/`Date` when a submission lacks them, as submission servers do).

/// Facts read from the header section.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeaderFacts {
    pub subject: String,
    pub message_id: Option<String>,
    pub api_data: Option<String>,
    pub has_date: bool,
}

/// Length of the header section (up to and including the blank line), or the whole message
/// if it has no body.
fn header_len(msg: &[u8]) -> usize {
    let mut i = 0;
    while i < msg.len() {
        let line_end = msg[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| i + p + 1)
            .unwrap_or(msg.len());
        let line = &msg[i..line_end];
        if line == b"\r\n" || line == b"\n" {
            return line_end;
        }
        i = line_end;
    }
    msg.len()
}

/// Unfolded header fields `(name, value)` in order.
pub fn headers(msg: &[u8]) -> Vec<(String, String)> {
    let head = String::from_utf8_lossy(&msg[..header_len(msg)]).into_owned();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    out
}

/// What the delivery log and API need from the header.
pub fn facts(msg: &[u8]) -> HeaderFacts {
    let mut f = HeaderFacts::default();
    for (name, value) in headers(msg) {
        match name.to_ascii_lowercase().as_str() {
            "subject" if f.subject.is_empty() => f.subject = truncate(&value, 998),
            "message-id" if f.message_id.is_none() => f.message_id = Some(truncate(&value, 998)),
            "x-api-data" if f.api_data.is_none() => f.api_data = Some(truncate(&value, 998)),
            "date" => f.has_date = true,
            _ => {}
        }
    }
    f
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// The longest line (without its line ending) in `msg`.
pub fn longest_line(msg: &[u8]) -> usize {
    // Line ends found with memchr (SIMD), not byte by byte: every accepted message is scanned.
    let mut longest = 0;
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', msg).chain(std::iter::once(msg.len())) {
        let line = &msg[start..end];
        longest = longest.max(line.strip_suffix(b"\r").unwrap_or(line).len());
        start = end + 1;
    }
    longest
}

/// Everything the trace header says about the session.
pub struct Trace<'a> {
    pub helo: &'a str,
    pub client_ip: &'a str,
    pub hostname: &'a str,
    pub protocol: &'a str,
    pub id: &'a str,
    pub single_recipient: Option<&'a str>,
    pub date: &'a str,
}

/// Prepend `Received:` (and add `Message-ID`/`Date` if missing) to the message.
pub fn stamp(msg: Vec<u8>, t: &Trace<'_>, facts: &HeaderFacts) -> Vec<u8> {
    let mut head = format!(
        "Received: from {} ([{}])\r\n\tby {} (Hato) with {} id {}",
        t.helo, t.client_ip, t.hostname, t.protocol, t.id
    );
    if let Some(r) = t.single_recipient {
        head.push_str(&format!("\r\n\tfor <{r}>"));
    }
    head.push_str(&format!(";\r\n\t{}\r\n", t.date));
    if facts.message_id.is_none() {
        head.push_str(&format!("Message-ID: <{}@{}>\r\n", t.id, t.hostname));
    }
    if !facts.has_date {
        head.push_str(&format!("Date: {}\r\n", t.date));
    }
    let mut out = Vec::with_capacity(head.len() + msg.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(&msg);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: a@example.com\r\nSubject: Hello\r\n  world\r\nX-Api-Data: batch-7\r\n\r\nbody\r\nSubject: not a header\r\n";

    #[test]
    fn facts_come_from_the_header_only() {
        let f = facts(MSG);
        assert_eq!(f.subject, "Hello world");
        assert_eq!(f.api_data.as_deref(), Some("batch-7"));
        assert_eq!(f.message_id, None);
        assert!(!f.has_date);
    }

    #[test]
    fn lf_only_messages_work_too() {
        let f = facts(b"Subject: lf\nMessage-ID: <x@y>\nDate: now\n\nbody\n");
        assert_eq!(f.subject, "lf");
        assert_eq!(f.message_id.as_deref(), Some("<x@y>"));
        assert!(f.has_date);
    }

    #[test]
    fn stamp_prepends_trace_and_missing_fields() {
        let f = facts(MSG);
        let t = Trace {
            helo: "client.example",
            client_ip: "192.0.2.1",
            hostname: "mx.hato",
            protocol: "ESMTPSA",
            id: "abc",
            single_recipient: Some("r@example.net"),
            date: "Thu, 26 Nov 2026 00:00:00 +0000",
        };
        let out = String::from_utf8(stamp(MSG.to_vec(), &t, &f)).unwrap();
        assert!(out.starts_with("Received: from client.example ([192.0.2.1])\r\n\tby mx.hato (Hato) with ESMTPSA id abc\r\n\tfor <r@example.net>;"));
        assert!(out.contains("Message-ID: <abc@mx.hato>\r\n"));
        assert!(out.ends_with(std::str::from_utf8(MSG).unwrap()));
    }

    #[test]
    fn longest_line_ignores_line_endings() {
        assert_eq!(longest_line(b"ab\r\nabcd\r\n"), 4);
        assert_eq!(longest_line(b""), 0);
        assert_eq!(longest_line(b"abc"), 3);
        assert_eq!(longest_line(b"a\nabcdef"), 6);
        assert_eq!(longest_line(b"abcdef\r\n\r\n"), 6);
        assert_eq!(longest_line(b"\n\n"), 0);
    }
}
