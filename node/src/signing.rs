//! DKIM signing on acceptance.
//!
//! Contract: a message whose `From:` domain is a sending domain (`domain/<name>` setting) is
//! signed once, before it is proposed to the queue, so every node delivers the same bytes and
//! a retry never re-signs. A signing failure is logged and the message goes out unsigned
//! (refusing mail because of our own key trouble would lose it).

use hato_storage::ReadView;

use crate::inbound::message;
use crate::settings;

/// The domain of the first address in the `From:` header, lower-cased.
pub fn from_domain(msg: &[u8]) -> Option<String> {
    let from = message::headers(msg)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("from"))?
        .1;
    // `Name <user@example.com>` or `user@example.com`; take the address in angle brackets
    // if there is one.
    let addr = match (from.rfind('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => &from[a + 1..b],
        _ => from.as_str(),
    };
    let domain = addr.rsplit_once('@')?.1.trim().trim_end_matches('>');
    (!domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

/// Sign `msg` with its From domain's key, if the domain has one.
pub fn sign(reader: &ReadView, msg: Vec<u8>) -> Vec<u8> {
    let Some(domain) = from_domain(&msg) else {
        return msg;
    };
    let Some(key) = settings::sending_domain(reader, &domain) else {
        return msg;
    };
    match key.sign(&msg) {
        Ok(signed) => signed,
        Err(e) => {
            tracing::warn!(%domain, error = %e, "DKIM signing failed; sending unsigned");
            msg
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_domain_forms() {
        let d = |h: &str| from_domain(format!("{h}\r\nSubject: x\r\n\r\nbody\r\n").as_bytes());
        assert_eq!(d("From: a@Example.COM"), Some("example.com".into()));
        assert_eq!(
            d("From: \"Shop, Inc\" <news@shop.example>"),
            Some("shop.example".into())
        );
        assert_eq!(d("FROM:  <x@y.example> "), Some("y.example".into()));
        assert_eq!(d("To: a@b.example"), None);
        assert_eq!(d("From: undisclosed"), None);
    }
}
