//! VERP return paths: `bounce-<message id>-<recipient index>@<bounce domain>`.
//!
//! Every recipient gets its own envelope sender on the bounce domain, so an asynchronous
//! bounce (a DSN sent to the return path) names exactly which message and recipient failed,
//! whatever the bounce's format. Pure functions; the bounce intake parses with [`decode`].

/// Local-part prefix of every VERP address.
pub const PREFIX: &str = "bounce-";

/// The return path for recipient `rcpt` of message `id`.
pub fn encode(id: &str, rcpt: u32, bounce_domain: &str) -> String {
    format!("{PREFIX}{id}-{rcpt}@{bounce_domain}")
}

/// `(message id, recipient index)` from a VERP address on `bounce_domain` (case-insensitive
/// domain; message ids are lower-case hex, so the local part is matched as lower case too).
pub fn decode(address: &str, bounce_domain: &str) -> Option<(String, u32)> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, domain) = address.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(bounce_domain) {
        return None;
    }
    let local = local.to_ascii_lowercase();
    let rest = local.strip_prefix(PREFIX)?;
    let (id, rcpt) = rest.rsplit_once('-')?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some((id.to_string(), rcpt.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let a = encode("18c2f0a1b2c0001", 7, "bounce.example.com");
        assert_eq!(a, "bounce-18c2f0a1b2c0001-7@bounce.example.com");
        assert_eq!(
            decode(&a, "bounce.example.com"),
            Some(("18c2f0a1b2c0001".into(), 7))
        );
        assert_eq!(
            decode(&format!("<{}>", a.to_uppercase()), "BOUNCE.example.com"),
            Some(("18c2f0a1b2c0001".into(), 7))
        );
    }

    #[test]
    fn foreign_or_malformed_addresses_are_not_matched() {
        assert_eq!(decode("bounce-abc-1@other.example", "bounce.example"), None);
        assert_eq!(decode("someone@bounce.example", "bounce.example"), None);
        assert_eq!(
            decode("bounce-abc-x@bounce.example", "bounce.example"),
            None
        );
        assert_eq!(decode("bounce--1@bounce.example", "bounce.example"), None);
        assert_eq!(
            decode("bounce-a.b-1@bounce.example", "bounce.example"),
            None
        );
        assert_eq!(decode("no-at-sign", "bounce.example"), None);
    }
}
