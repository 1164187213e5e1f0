//! Bounce intake: mail to a VERP address on the bounce domain is a report about a recipient
//! we sent to, not mail to relay.
//!
//! Contract: the envelope recipient names the message and recipient (see
//! [`crate::outbound::verp`]); the body is analysed with `hato-bounce` for the reason, status
//! and diagnostic. Auto-replies (reason `vacation`) and mail the analyser does not recognise
//! as a bounce are accepted and dropped: they say nothing about deliverability. Pure
//! function; the session proposes the resulting `Command::RecordBounce`s.

use hato_bounce::{parse_bounce, Reason};
use hato_storage::command::BounceReport;

/// One envelope recipient on the bounce domain, already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerpTarget {
    pub id: String,
    pub rcpt: u32,
}

/// The reports a bounce mail makes for the VERP targets it was addressed to.
pub fn reports(body: &[u8], targets: &[VerpTarget], at_ms: u64) -> Vec<BounceReport> {
    let found = parse_bounce(body);
    // With VERP each bounce mail concerns one recipient of ours; a DSN listing several
    // recipients (rare) is attributed by its first failed one.
    let Some(b) = found
        .iter()
        .find(|b| b.permanent && b.reason != Reason::Vacation)
        .or_else(|| found.iter().find(|b| b.reason != Reason::Vacation))
    else {
        return Vec::new();
    };
    targets
        .iter()
        .map(|t| BounceReport {
            id: t.id.clone(),
            rcpt: t.rcpt,
            at_ms,
            reason: b.reason.as_str().to_string(),
            code: b.cmc_code,
            status: b.status.clone().unwrap_or_default(),
            detail: b.diagnostic.clone(),
            remote: b.remote_host.clone().unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &str = "From: MAILER-DAEMON@mx.example.net\r\n\
        To: bounce-abc-0@bounces.example\r\n\
        Subject: Undelivered Mail Returned to Sender\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
        --B\r\nContent-Type: text/plain\r\n\r\nCould not deliver.\r\n\
        --B\r\nContent-Type: message/delivery-status\r\n\r\n\
        Reporting-MTA: dns; mx.example.net\r\n\r\n\
        Final-Recipient: rfc822; nobody@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\
        Remote-MTA: dns; mx1.example.org\r\n\
        Diagnostic-Code: smtp; 550 5.1.1 <nobody@example.org>: User unknown\r\n\r\n\
        --B--\r\n";

    #[test]
    fn a_dsn_becomes_a_report_for_the_verp_target() {
        let t = [VerpTarget {
            id: "abc".into(),
            rcpt: 0,
        }];
        let r = reports(DSN.as_bytes(), &t, 42);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].reason, "userunknown");
        assert_eq!(r[0].code, 2);
        assert_eq!(r[0].status, "5.1.1");
        assert_eq!((r[0].id.as_str(), r[0].rcpt, r[0].at_ms), ("abc", 0, 42));
        assert!(r[0].detail.contains("User unknown"));
    }

    #[test]
    fn mail_that_is_not_a_bounce_reports_nothing() {
        let t = [VerpTarget {
            id: "abc".into(),
            rcpt: 0,
        }];
        let plain = b"From: a@b.example\r\nSubject: hello\r\n\r\nJust saying hi.\r\n";
        assert!(reports(plain, &t, 1).is_empty());
    }
}
