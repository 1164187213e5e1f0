//! The DATA stream: dot-stuffing (RFC 5321 §4.5.2) done chunk by chunk.
//!
//! The message is expected in CRLF form (RFC 5322). So that the stream holds
//! no line break other than CRLF, a bare LF or a bare CR is sent as CRLF: a
//! lenient receiver then cannot see an end of data that a strict one does
//! not ("SMTP smuggling"). A message already in CRLF form is sent byte for
//! byte apart from the stuffed dots.

/// Encodes a message into the DATA stream, one chunk at a time.
#[derive(Debug)]
pub(crate) struct DotStuffer {
    /// The next byte starts a line.
    at_line_start: bool,
    /// The last byte seen was a CR whose LF (if any) has not arrived yet.
    pending_cr: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        DotStuffer {
            at_line_start: true,
            pending_cr: false,
        }
    }
}

impl DotStuffer {
    /// Appends the encoding of the next chunk of the message to `out`. Runs of bytes without
    /// a line break are copied as they are (found with `memchr`, not byte by byte).
    pub fn push(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        out.reserve(chunk.len() + chunk.len() / 64 + 2);
        while let Some(&first) = chunk.first() {
            if self.pending_cr {
                self.pending_cr = false;
                out.extend_from_slice(b"\r\n");
                self.at_line_start = true;
                if first == b'\n' {
                    chunk = &chunk[1..];
                    continue;
                }
            }
            if self.at_line_start && first == b'.' {
                out.push(b'.');
            }
            let Some(end) = memchr::memchr2(b'\r', b'\n', chunk) else {
                out.extend_from_slice(chunk);
                self.at_line_start = false;
                return;
            };
            out.extend_from_slice(&chunk[..end]);
            if end > 0 {
                self.at_line_start = false;
            }
            if chunk[end] == b'\r' {
                self.pending_cr = true;
            } else {
                out.extend_from_slice(b"\r\n");
                self.at_line_start = true;
            }
            chunk = &chunk[end + 1..];
        }
    }

    /// Ends the last line with CRLF if needed and appends the terminating
    /// `".\r\n"`.
    pub fn finish(self, out: &mut Vec<u8>) {
        if self.pending_cr || !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes `message` split into chunks of `size` bytes.
    fn encode(message: &[u8], size: usize) -> Vec<u8> {
        let mut stuffer = DotStuffer::default();
        let mut out = Vec::new();
        for chunk in message.chunks(size) {
            stuffer.push(chunk, &mut out);
        }
        stuffer.finish(&mut out);
        out
    }

    /// The same result whichever way the message is cut into chunks.
    fn check(message: &[u8], expected: &[u8]) {
        for size in [1, 2, 3, 7, message.len().max(1)] {
            assert_eq!(
                String::from_utf8_lossy(&encode(message, size)),
                String::from_utf8_lossy(expected),
                "chunk size {size}"
            );
        }
    }

    #[test]
    fn crlf_message_passes_unchanged() {
        check(
            b"Subject: x\r\n\r\nbody\r\n",
            b"Subject: x\r\n\r\nbody\r\n.\r\n",
        );
    }

    #[test]
    fn leading_dots_are_doubled() {
        check(
            b".first\r\nmid.dle\r\n.\r\n..two\r\n",
            b"..first\r\nmid.dle\r\n..\r\n...two\r\n.\r\n",
        );
    }

    #[test]
    fn missing_final_crlf_is_added() {
        check(b"a\r\nlast", b"a\r\nlast\r\n.\r\n");
        check(b"a\r\n.", b"a\r\n..\r\n.\r\n");
    }

    /// The rules applied one byte at a time, as the RFC states them.
    fn byte_by_byte(message: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (mut line_start, mut cr) = (true, false);
        for &b in message {
            if cr {
                cr = false;
                out.extend_from_slice(b"\r\n");
                line_start = true;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\r' => cr = true,
                b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    line_start = true;
                }
                _ => {
                    if line_start && b == b'.' {
                        out.push(b'.');
                    }
                    out.push(b);
                    line_start = false;
                }
            }
        }
        if cr || !line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        out
    }

    #[test]
    fn matches_the_byte_by_byte_rules_on_random_input() {
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 40) as usize;
            let message: Vec<u8> = (0..len)
                .map(|i| b"\r\n.a"[((x >> (i % 60)) % 4) as usize])
                .collect();
            check(&message, &byte_by_byte(&message));
        }
    }

    #[test]
    fn empty_message_is_only_the_terminator() {
        check(b"", b".\r\n");
    }

    #[test]
    fn bare_lf_and_bare_cr_become_crlf() {
        check(b"a\nb\n", b"a\r\nb\r\n.\r\n");
        check(b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n");
        check(b"a\r.\r\nb\r", b"a\r\n..\r\nb\r\n.\r\n");
        check(b"a\r\r\nb", b"a\r\n\r\nb\r\n.\r\n");
        // The classic smuggling sequence cannot end the data early.
        check(
            b"x\r\n\n.\r\nMAIL FROM:<evil>\r\n",
            b"x\r\n\r\n..\r\nMAIL FROM:<evil>\r\n.\r\n",
        );
    }
}
