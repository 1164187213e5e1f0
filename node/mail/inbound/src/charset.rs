//! Charset helpers on top of mail-parser's `encoding_rs` backed decoders.
//!
//! mail-parser decodes a body with the declared charset, and falls back to
//! lossy UTF-8 when the charset is missing or unknown. Japanese mail often
//! lies about (or omits) its charset, so [`sniff`] guesses from the bytes.

use mail_parser::decoders::charsets::map::charset_decoder;

/// How a declared charset label should be treated.
pub(crate) enum Declared {
    /// No label, or a label mail-parser does not know.
    Unknown,
    /// `us-ascii` and aliases: only trusted when the bytes really are ASCII.
    Ascii,
    /// `utf-8` and aliases: only trusted when the bytes really are UTF-8.
    Utf8,
    /// Any other known label: trusted.
    Other,
}

/// Classifies a charset label.
pub(crate) fn classify(label: Option<&str>) -> Declared {
    let Some(label) = label else {
        return Declared::Unknown;
    };
    let l = label.trim().to_ascii_lowercase();
    match l.as_str() {
        "us-ascii" | "ascii" | "ansi_x3.4-1968" | "iso646-us" | "us" => Declared::Ascii,
        "utf-8" | "utf8" => Declared::Utf8,
        _ if charset_decoder(l.as_bytes()).is_some() => Declared::Other,
        _ => Declared::Unknown,
    }
}

/// True for `utf-8` / `utf8` (any case).
pub(crate) fn is_utf8_label(label: Option<&str>) -> bool {
    matches!(classify(label), Declared::Utf8)
}

/// Whether text that mail-parser decoded under `declared` looks wrong and
/// should be re-decoded from the raw bytes with [`sniff`].
pub(crate) fn suspicious(declared: &Declared, text: &str) -> bool {
    match declared {
        Declared::Other => false,
        Declared::Ascii => !text.is_ascii() || has_iso2022_escape(text.as_bytes()),
        Declared::Utf8 => text.contains('\u{FFFD}'),
        Declared::Unknown => text.contains('\u{FFFD}') || has_iso2022_escape(text.as_bytes()),
    }
}

/// True when `bytes` contain an ISO-2022-JP designation escape
/// (`ESC $ B`, `ESC $ @`, `ESC ( J`, `ESC ( I`).
pub(crate) fn has_iso2022_escape(bytes: &[u8]) -> bool {
    bytes.windows(3).any(|w| {
        w[0] == 0x1b
            && ((w[1] == b'$' && (w[2] == b'B' || w[2] == b'@'))
                || (w[1] == b'(' && (w[2] == b'J' || w[2] == b'I')))
    })
}

fn decode_with(label: &str, bytes: &[u8]) -> Option<String> {
    charset_decoder(label.as_bytes()).map(|f| f(bytes))
}

/// Number of U+FFFD replacement characters in `s`.
pub(crate) fn replacements(s: &str) -> usize {
    s.chars().filter(|&c| c == '\u{FFFD}').count()
}

/// Decodes bytes of unknown charset to UTF-8:
///
/// 1. ISO-2022-JP escapes present (and otherwise 7-bit) → ISO-2022-JP;
/// 2. valid UTF-8 → as is;
/// 3. otherwise the candidate among Shift_JIS (CP932), EUC-JP and lossy
///    UTF-8 with the fewest replacement characters (ties: that order).
pub(crate) fn sniff(bytes: &[u8]) -> String {
    if bytes.is_ascii() && has_iso2022_escape(bytes) {
        if let Some(s) = decode_with("iso-2022-jp", bytes) {
            return s;
        }
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return s.to_owned();
    }
    let mut best = String::from_utf8_lossy(bytes).into_owned();
    let mut best_bad = replacements(&best);
    for label in ["euc-jp", "shift_jis"] {
        if let Some(s) = decode_with(label, bytes) {
            let bad = replacements(&s);
            // `<=` so that the later (preferred) candidate wins ties.
            if bad <= best_bad {
                best_bad = bad;
                best = s;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_picks_japanese_encodings() {
        // "日本語" in each encoding.
        assert_eq!(sniff(b"\x1b$BF|K\\8l\x1b(B"), "日本語");
        assert_eq!(sniff(b"\x93\xfa\x96{\x8c\xea"), "日本語");
        assert_eq!(sniff(b"\xc6\xfc\xcb\xdc\xb8\xec"), "日本語");
        assert_eq!(sniff("日本語".as_bytes()), "日本語");
        assert_eq!(sniff(b""), "");
    }

    #[test]
    fn classify_labels() {
        assert!(matches!(classify(None), Declared::Unknown));
        assert!(matches!(classify(Some("x-nonsense")), Declared::Unknown));
        assert!(matches!(classify(Some("US-ASCII")), Declared::Ascii));
        assert!(matches!(classify(Some("UTF-8")), Declared::Utf8));
        assert!(matches!(classify(Some("ISO-2022-JP")), Declared::Other));
        assert!(matches!(classify(Some("Shift_JIS")), Declared::Other));
    }
}
