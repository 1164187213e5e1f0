//! The EHLO extensions this client uses (RFC 5321 §4.1.1.1).

use crate::reply::Reply;

/// What the server advertised in its EHLO reply. After HELO (no ESMTP) all
/// of it is off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Capabilities {
    /// STARTTLS (RFC 3207).
    pub starttls: bool,
    /// PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// 8BITMIME (RFC 6152).
    pub eightbitmime: bool,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// SIZE was advertised, so `SIZE=n` may be given with MAIL (RFC 1870).
    pub size: bool,
    /// The fixed maximum message size, when SIZE came with a non-zero number.
    pub size_limit: Option<u64>,
}

impl Capabilities {
    /// Reads the extension lines of a 250 EHLO reply. The first line is the
    /// server's greeting, not an extension; keywords are case-insensitive and
    /// unknown ones are ignored.
    pub fn parse(ehlo: &Reply) -> Capabilities {
        let mut caps = Capabilities::default();
        for line in ehlo.text.lines().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "STARTTLS" => caps.starttls = true,
                "PIPELINING" => caps.pipelining = true,
                "8BITMIME" => caps.eightbitmime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "SIZE" => {
                    caps.size = true;
                    caps.size_limit = words
                        .next()
                        .and_then(|n| n.parse::<u64>().ok())
                        .filter(|&n| n > 0);
                }
                _ => {}
            }
        }
        caps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::parse_reply;

    fn caps(raw: &str) -> Capabilities {
        let (reply, _) = parse_reply(raw.as_bytes()).unwrap().unwrap();
        Capabilities::parse(&reply)
    }

    #[test]
    fn typical_postfix_reply() {
        let c = caps(
            "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n\
             250-ETRN\r\n250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n\
             250-DSN\r\n250 SMTPUTF8\r\n",
        );
        assert_eq!(
            c,
            Capabilities {
                starttls: true,
                pipelining: true,
                eightbitmime: true,
                smtputf8: true,
                size: true,
                size_limit: Some(10_240_000),
            }
        );
    }

    #[test]
    fn greeting_line_is_not_an_extension() {
        // A host literally named "starttls" must not turn STARTTLS on.
        let c = caps("250-STARTTLS greets you\r\n250 HELP\r\n");
        assert_eq!(c, Capabilities::default());
    }

    #[test]
    fn single_line_reply_has_no_extensions() {
        assert_eq!(caps("250 mx.test\r\n"), Capabilities::default());
    }

    #[test]
    fn keywords_are_case_insensitive() {
        let c = caps("250-mx\r\n250-starttls\r\n250-Pipelining\r\n250 8bitmime\r\n");
        assert!(c.starttls && c.pipelining && c.eightbitmime && !c.smtputf8);
    }

    #[test]
    fn size_without_or_with_zero_limit() {
        let c = caps("250-mx\r\n250 SIZE\r\n");
        assert!(c.size);
        assert_eq!(c.size_limit, None);
        let c = caps("250-mx\r\n250 SIZE 0\r\n");
        assert!(c.size);
        assert_eq!(c.size_limit, None);
        let c = caps("250-mx\r\n250 SIZE lots\r\n");
        assert!(c.size);
        assert_eq!(c.size_limit, None);
    }
}
