//! RFC 3463 enhanced status codes (IANA "SMTP Enhanced Status Codes" registry).

use crate::reason::Reason;

/// A parsed enhanced status code `class.subject.detail`, e.g. `5.1.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancedStatus {
    /// 2, 4 or 5.
    pub class: u8,
    /// Subject (0..=999).
    pub subject: u16,
    /// Detail (0..=999).
    pub detail: u16,
}

impl EnhancedStatus {
    /// Parses `"5.1.1"` (surrounding blanks, a leading `#` and trailing
    /// punctuation are tolerated). Returns `None` for anything else.
    pub fn parse(s: &str) -> Option<EnhancedStatus> {
        let t = s
            .trim()
            .trim_start_matches('#')
            .trim_end_matches(|c: char| !c.is_ascii_digit());
        let mut it = t.split('.');
        let c = it.next()?;
        let sub = it.next()?;
        let det = it.next()?;
        if it.next().is_some() {
            return None;
        }
        let ok = |p: &str, max: usize| {
            !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
        };
        if !(ok(c, 1) && ok(sub, 3) && ok(det, 3)) {
            return None;
        }
        let class: u8 = c.parse().ok()?;
        if !matches!(class, 2 | 4 | 5) {
            return None;
        }
        Some(EnhancedStatus {
            class,
            subject: sub.parse().ok()?,
            detail: det.parse().ok()?,
        })
    }

    /// Finds the first enhanced status code embedded in free text
    /// (`"550-5.7.1 ..."`, `"(#5.1.1)"`, `"<host #5.0.0>"`).
    pub fn find_in(text: &str) -> Option<EnhancedStatus> {
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if matches!(b[i], b'4' | b'5')
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.'))
                && b.get(i + 1) == Some(&b'.')
            {
                let mut j = i + 2;
                let mut dots = 1;
                let mut run = 0;
                while j < b.len() {
                    if b[j].is_ascii_digit() {
                        run += 1;
                        if run > 3 {
                            break;
                        }
                    } else if b[j] == b'.' && run > 0 && dots < 2 {
                        dots += 1;
                        run = 0;
                    } else {
                        break;
                    }
                    j += 1;
                }
                let end_ok = j >= b.len() || !(b[j].is_ascii_alphanumeric() || b[j] == b'.');
                // A trailing '.' ends a sentence ("... (#5.1.1)." / "5.1.1.")
                let end_ok =
                    end_ok || (b[j] == b'.' && (j + 1 >= b.len() || !b[j + 1].is_ascii_digit()));
                if dots == 2 && run > 0 && end_ok {
                    if let Some(s) = EnhancedStatus::parse(&text[i..j]) {
                        return Some(s);
                    }
                }
            }
            i += 1;
        }
        None
    }

    /// True for class 5 (permanent failure).
    pub fn is_permanent(&self) -> bool {
        self.class == 5
    }

    /// The reason this status code indicates on its own, together with a
    /// flag telling whether the code is *specific* (`true`) or so widely
    /// (mis)used that the reply text must take precedence (`false`).
    pub fn reason(&self) -> Option<(Reason, bool)> {
        use Reason::*;
        let r = match (self.class, self.subject, self.detail) {
            (2, _, _) => return None,
            (_, 0, 0) => return None,
            // X.1.x addressing
            (_, 1, 0) => (UserUnknown, false),
            (_, 1, 1) => (UserUnknown, true),
            (_, 1, 2) => (HostUnknown, true),
            (_, 1, 3) => (UserUnknown, true),
            (_, 1, 4) => (Filtered, false),
            (_, 1, 6) => (HasMoved, true),
            (_, 1, 7) | (_, 1, 8) => (Rejected, true),
            (_, 1, 9) => (SystemError, false),
            (_, 1, 10) => (NotAccept, true),
            // X.2.x mailbox
            (_, 2, 0) => (Filtered, false),
            (_, 2, 1) => (Suspend, false),
            (_, 2, 2) => (MailboxFull, true),
            (_, 2, 3) => (ExceedLimit, true),
            (_, 2, 4) => (Filtered, false),
            // X.3.x mail system
            (_, 3, 0) => (SystemError, false),
            (_, 3, 1) => (SystemFull, true),
            (_, 3, 2) => (NotAccept, true),
            (_, 3, 3) | (_, 3, 5) => (SystemError, true),
            (_, 3, 4) => (MesgTooBig, true),
            // X.4.x network and routing
            (_, 4, 0) => (NetworkError, false),
            (4, 4, 1) => (Expired, false),
            (_, 4, 1) => (NetworkError, false),
            (_, 4, 2) => (NetworkError, false),
            (_, 4, 3) => (SystemError, false),
            (4, 4, 4) => (NetworkError, false),
            (_, 4, 4) => (HostUnknown, false),
            (_, 4, 5) => (SystemFull, false),
            (_, 4, 6) => (NetworkError, true),
            (_, 4, 7) => (Expired, true),
            (_, 4, _) => (NetworkError, false),
            // X.5.x protocol
            (_, 5, 0) => (SyntaxError, false),
            (_, 5, 1) | (_, 5, 2) | (_, 5, 4) => (SyntaxError, true),
            (_, 5, 3) => (TooManyConn, true),
            (_, 5, 5) => (SystemError, true),
            (_, 5, 6) => (SecurityError, false),
            (_, 5, _) => (SyntaxError, false),
            // X.6.x content
            (_, 6, _) => (ContentError, true),
            // X.7.x security or policy
            (_, 7, 0) | (_, 7, 1) | (_, 7, 2) => (SecurityError, false),
            (_, 7, 8) => (AuthFailure, true),
            (_, 7, 9) => (SecurityError, false),
            (_, 7, 13) => (Suspend, true),
            (_, 7, 16) => (MesgTooBig, true),
            (_, 7, 17) | (_, 7, 18) => (HasMoved, true),
            (_, 7, 20..=24) | (_, 7, 26) | (_, 7, 29) => (AuthFailure, true),
            (_, 7, 25) => (RequirePtr, true),
            (_, 7, 27) => (NotAccept, true),
            (_, 7, 28) => (Speeding, true),
            (_, 7, _) => (SecurityError, false),
            _ => return None,
        };
        Some(r)
    }
}

impl std::fmt::Display for EnhancedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}
