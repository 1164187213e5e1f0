//! Classification of SMTP replies / diagnostic texts into a [`Reason`].

use serde::Serialize;

use crate::phrases::{match_text, normalize, GENERIC_USERUNKNOWN};
use crate::reason::Reason;
use crate::status::EnhancedStatus;

/// Result of [`classify_reply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    /// Why the message was not delivered.
    pub reason: Reason,
    /// `true` when the failure is permanent (5xx reply or class-5 status;
    /// for replies with neither, when the reason is a hard one).
    pub permanent: bool,
    /// Customers Mail Cloud bounce code of `reason` ([`Reason::cmc_code`]).
    pub cmc_code: u16,
    /// The basic SMTP reply code used (argument, or found in the text), if any.
    pub reply_code: Option<u16>,
    /// The enhanced status used (argument, or found in the text), e.g. `"5.1.1"`.
    pub status: Option<String>,
    /// What decided the reason: `"text:<phrase>"`, `"status:<x.y.z>"`,
    /// `"code:<nnn>"` or `"none"`.
    pub matched: String,
}

/// Reasons that a text phrase yields but that a *specific* enhanced status
/// code overrides (the phrases behind them are generic).
fn weak_text_reason(r: Reason) -> bool {
    matches!(
        r,
        Reason::Expired
            | Reason::SystemError
            | Reason::Filtered
            | Reason::OnHold
            | Reason::SyntaxError
            | Reason::ContentError
    )
}

/// A specific status that is a more precise variant of the text's reason
/// (e.g. `5.2.3` for a "message too big" text, `5.1.6` for "not our user").
fn refines(status: Reason, text: Reason) -> bool {
    matches!(
        (status, text),
        (Reason::ExceedLimit, Reason::MesgTooBig)
            | (
                Reason::HasMoved | Reason::Suspend | Reason::HostUnknown,
                Reason::UserUnknown
            )
    )
}

/// Finds a basic SMTP reply code (`2xx`/`4xx`/`5xx`) in free text: the
/// first three-digit number standing alone or followed by `-`.
pub(crate) fn find_reply_code(text: &str) -> Option<u16> {
    let b = text.as_bytes();
    let mut i = 0;
    while i + 3 <= b.len() {
        let prev_ok = i == 0
            || matches!(
                b[i - 1],
                b' ' | b'\t'
                    | b'\n'
                    | b'\r'
                    | b'('
                    | b'"'
                    | b'\''
                    | b';'
                    | b':'
                    | b'<'
                    | b'>'
                    | b'#'
            );
        if prev_ok
            && matches!(b[i], b'4' | b'5')
            && b[i + 1].is_ascii_digit()
            && b[i + 2].is_ascii_digit()
        {
            let next = b.get(i + 3).copied();
            let next_ok = match next {
                None => true,
                Some(c) => matches!(c, b' ' | b'-' | b'\t' | b')' | b',' | b':' | b'\r' | b'\n'),
            };
            if next_ok {
                let v = (u16::from(b[i] - b'0')) * 100
                    + u16::from(b[i + 1] - b'0') * 10
                    + u16::from(b[i + 2] - b'0');
                if (b[i + 1] - b'0') <= 5 {
                    return Some(v);
                }
            }
        }
        i += 1;
    }
    None
}

/// Fallback reason from the basic reply code alone (RFC 5321 meanings).
fn code_reason(code: u16) -> Option<Reason> {
    match code {
        500..=504 | 555 => Some(Reason::SyntaxError),
        551 => Some(Reason::HasMoved),
        552 => Some(Reason::MailboxFull),
        452 => Some(Reason::SystemFull),
        _ => None,
    }
}

/// Classifies a synchronous SMTP reply.
///
/// * `code` — the basic reply code (`550`); `0` when unknown (it is then
///   looked for in `text`).
/// * `enhanced` — the RFC 3463 enhanced status (`"5.1.1"`) when known; when
///   `None` it is looked for in `text`.
/// * `text` — the reply text (multi-line replies may be passed with their
///   `550-5.7.1` continuation prefixes; they are ignored for matching).
///
/// Provider phrases in the text take precedence over ambiguous enhanced
/// codes (`5.7.1`, `5.0.0`, `5.5.0`, ...); a specific enhanced code
/// (`5.1.1`, `5.2.2`, ...) only overrides generic text phrases (time-outs,
/// "system error", ...). Reputation, block-list and rate-limit phrases are
/// checked before any "unknown user" phrase, so such replies are never
/// classified as [`Reason::UserUnknown`].
pub fn classify_reply(code: u16, enhanced: Option<&str>, text: &str) -> Classification {
    let status = enhanced
        .and_then(EnhancedStatus::parse)
        .or_else(|| EnhancedStatus::find_in(text));
    let code = if (200..600).contains(&code) {
        Some(code)
    } else {
        find_reply_code(text)
    };
    let norm = normalize(text);
    let text_hit = match_text(&norm);
    let status_hit = status.and_then(|s| s.reason());

    let status_label = || {
        format!(
            "status:{}",
            status.map(|x| x.to_string()).unwrap_or_default()
        )
    };
    let (reason, matched) = match (text_hit, status_hit) {
        (Some((t, p)), Some((s, specific)))
            if t != s
                && (GENERIC_USERUNKNOWN.contains(&p)
                    || specific && (weak_text_reason(t) || refines(s, t))) =>
        {
            (s, status_label())
        }
        (Some((t, p)), _) => (t, format!("text:{p}")),
        (None, Some((s, _))) => (s, status_label()),
        (None, None) => match code.and_then(code_reason) {
            Some(r) => (r, format!("code:{}", code.unwrap_or(0))),
            None => (Reason::Undefined, "none".to_string()),
        },
    };

    let permanent = match (code, status) {
        (Some(c), _) if (500..600).contains(&c) => true,
        (Some(c), _) if (400..500).contains(&c) => false,
        (_, Some(s)) => s.is_permanent(),
        _ => reason.is_hard(),
    };
    Classification {
        reason,
        permanent,
        cmc_code: reason.cmc_code(),
        reply_code: code,
        status: status.map(|s| s.to_string()),
        matched,
    }
}
