//! Table-driven tests of `classify_reply` with real-world SMTP replies.

use hato_bounce::{classify_reply, Reason};
use std::str::FromStr;

use Reason::*;

/// (code, enhanced, text, expected reason, expected permanent)
const CASES: &[(u16, Option<&str>, &str, Reason, bool)] = &[
    // ---- reputation / block lists / rate limits: never userunknown
    (550, Some("5.7.1"), "550-5.7.1 [192.0.2.10 12] Our system has detected that this message is\n550-5.7.1 likely suspicious due to the very low reputation of the sending IP\n550-5.7.1 address. To best protect our users from spam, the message has been\n550 5.7.1 blocked. Please visit https://support.google.com/mail/answer/188131", BadReputation, true),
    (550, None, "550-5.7.1 [192.0.2.10] Our system has detected that this message is likely suspicious due to the very low reputation of the sending domain.", BadReputation, true),
    (421, None, "421-4.7.28 [192.0.2.10 15] Our system has detected an unusual rate of\n421-4.7.28 unsolicited mail originating from your IP address. To protect our\n421-4.7.28 users from spam, mail sent from your IP address has been temporarily\n421 4.7.28 rate limited.", Speeding, false),
    (421, Some("4.7.0"), "[192.0.2.10] Our system has detected an unusual rate of unsolicited mail originating from your IP address.", Speeding, false),
    (550, Some("5.7.1"), "Unfortunately, messages from [192.0.2.10] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors.", Blocked, true),
    (421, Some("4.7.0"), "[TSS04] Messages from 192.0.2.10 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes", BadReputation, false),
    (421, Some("4.7.0"), "[TS03] All messages from 192.0.2.10 will be permanently deferred; Retrying will NOT succeed. See https://postmaster.yahooinc.com/error-codes", Blocked, false),
    (553, Some("5.7.1"), "[BL21] Connections will not be accepted from 192.0.2.10, because the ip is in Spamhaus's list; see https://postmaster.yahooinc.com/error-codes", Blocked, true),
    (554, Some("5.7.1"), "Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.10", Blocked, true),
    (550, Some("5.7.1"), "Service unavailable, Client host [192.0.2.10] blocked using Spamhaus. To request removal from this list see https://www.spamhaus.org/query/ip/192.0.2.10 (AS3130). [BN8NAM12FT053.eop-nam12.prod.protection.outlook.com]", Blocked, true),
    (550, Some("5.7.606"), "Access denied, banned sending IP [192.0.2.10]. To request removal from this list please visit https://sender.office.com/ and follow the directions.", Blocked, true),
    (550, Some("5.7.1"), "550 5.1.1 rejected: 192.0.2.10 is listed at bl.spamcop.net", Blocked, true),
    (554, None, "554 Your access to this mail system has been rejected due to the sending MTA's poor reputation. If you believe that this failure is in error, please contact the intended recipient via alternate means.", BadReputation, true),
    (421, Some("4.7.650"), "The mail server [192.0.2.10] has been temporarily rate limited due to IP reputation. For e-mail delivery information, see https://postmaster.live.com (S775)", BadReputation, false),
    (451, Some("4.7.500"), "Server busy. Please try again later from [192.0.2.10]. (S77714) [DM6NAM12FT012.eop-nam12.prod.protection.outlook.com]", Speeding, false),
    (450, Some("4.2.1"), "The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered. Please resend your message at a later time.", Speeding, false),
    (421, None, "421 4.7.0 mx.example.org Error: too many connections from 192.0.2.10", TooManyConn, false),
    (452, Some("4.5.3"), "Too many recipients", TooManyConn, false),
    (550, Some("5.1.1"), "550 5.1.1 <x@example.org>: Recipient address rejected: blocked using bl.example.net", Blocked, true),
    // ---- unknown users
    (550, Some("5.1.1"), "550-5.1.1 The email account that you tried to reach does not exist. Please try\n550-5.1.1 double-checking the recipient's email address for typos or\n550-5.1.1 unnecessary spaces. For more information, go to\n550 5.1.1  https://support.google.com/mail/?p=NoSuchUser", UserUnknown, true),
    (550, Some("5.1.1"), "user unknown", UserUnknown, true),
    (550, Some("5.1.1"), "<nobody@example.org>: Recipient address rejected: User unknown in local recipient table", UserUnknown, true),
    (550, Some("5.1.10"), "RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup", UserUnknown, true),
    (550, Some("5.5.0"), "Requested action not taken: mailbox unavailable (S2017062302). [DM6NAM12FT040.eop-nam12.prod.protection.outlook.com]", UserUnknown, true),
    (550, Some("5.4.1"), "Recipient address rejected: Access denied. AS(201806281) [DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com]", UserUnknown, true),
    (554, None, "delivery error: dd This user doesn't have a yahoo.com account (x@yahoo.com) [0] - mta1001.mail.bf1.yahoo.com", UserUnknown, true),
    (550, None, "Sorry, no mailbox here by that name. (#5.1.1)", UserUnknown, true),
    (550, Some("5.1.1"), "<x@example.jp>... User unknown", UserUnknown, true),
    (550, None, "550 Unknown user x@docomo.ne.jp", UserUnknown, true),
    (550, None, "550 Invalid recipient: <x@i.softbank.jp>", UserUnknown, true),
    (550, Some("5.1.1"), "Mailbox does not exist", UserUnknown, true),
    (550, None, "550 No such user - psmtp", UserUnknown, true),
    (511, None, "511 sorry, no mailbox here by that name (#5.1.1 - chkuser)", UserUnknown, true),
    (550, Some("5.1.1"), "Address rejected. Unknown recipient", UserUnknown, true),
    (552, None, "552 1 Requested mail action aborted, mailbox not found", UserUnknown, true),
    // ---- mailbox full / size / limits
    (552, Some("5.2.2"), "mailbox full", MailboxFull, true),
    (452, Some("4.2.2"), "The email account that you tried to reach is over quota. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp", MailboxFull, false),
    (552, Some("5.2.2"), "<x@example.com>: user is over quota", MailboxFull, true),
    (554, Some("5.2.2"), "mailbox full; STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded", MailboxFull, true),
    (522, None, "522 Mailbox quota exceeded", MailboxFull, true),
    (552, None, "552 too much mail data", MailboxFull, true),
    (552, Some("5.3.4"), "Message size exceeds fixed limit", MesgTooBig, true),
    (552, Some("5.2.3"), "Your message exceeded Google's message size limits. Please visit https://support.google.com/mail/?p=MaxSizeError to view our size guidelines.", ExceedLimit, true),
    (554, None, "554 30 Sorry, your message size exceeds 41943040 bytes", MesgTooBig, true),
    (552, Some("5.2.3"), "Message header size exceeds limit", ExceedLimit, true),
    // ---- hosts / routing
    (550, Some("5.1.2"), "We weren't able to find the recipient domain. Please check for any spelling errors.", HostUnknown, true),
    (450, Some("4.1.2"), "<x@nonexistent.example>: Recipient address rejected: Domain not found", HostUnknown, false),
    (0, None, "Host or domain name not found. Name service error for name=example.invalid type=A: Host not found", HostUnknown, true),
    (0, None, "Sorry, I couldn't find any host named example.invalid. (#5.1.2)", HostUnknown, true),
    (556, Some("5.1.10"), "Recipient address has null MX", NotAccept, true),
    (0, None, "connect to mx.example.org[203.0.113.5]:25: Connection timed out", Expired, false),
    (0, None, "retry timeout exceeded", Expired, false),
    (554, Some("5.4.7"), "delivery expired (message too old)", Expired, true),
    (550, Some("5.4.316"), "Message expired, connection refused(Socket error code 10061)", Expired, true),
    (554, Some("5.4.6"), "Too many hops", NetworkError, true),
    (0, None, "mail for example.org loops back to myself", SystemError, false),
    (0, None, "connect to mx.example.org[203.0.113.5]:25: No route to host", NetworkError, false),
    // ---- sender side / policy / auth
    (554, Some("5.7.1"), "<x@example.org>: Relay access denied", NoRelaying, true),
    (550, Some("5.7.1"), "<x@example.org>... Relaying denied", NoRelaying, true),
    (553, None, "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)", NoRelaying, true),
    (550, Some("5.1.0"), "<bounce@bounce.example.com>: Sender address rejected: Domain not found", Rejected, true),
    (550, None, "550 Sender verify failed", Rejected, true),
    (550, Some("5.7.26"), "This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM.", AuthFailure, true),
    (550, Some("5.7.26"), "Unauthenticated email from example.com is not accepted due to domain's DMARC policy. Please contact the administrator of example.com domain.", AuthFailure, true),
    (550, Some("5.7.509"), "Access denied, sending domain [example.com] does not pass DMARC verification and has a DMARC policy of reject.", AuthFailure, true),
    (550, Some("5.7.25"), "The IP address sending this message does not have a PTR record setup, or the corresponding forward DNS entry does not point to the sending IP.", RequirePtr, true),
    (450, Some("4.7.1"), "Client host rejected: cannot find your hostname, [192.0.2.10]", RequirePtr, false),
    (554, Some("5.7.9"), "Message not accepted for policy reasons. See https://help.yahoo.com/kb/postmaster/SLN7253.html", PolicyViolation, true),
    (552, Some("5.7.0"), "This message was blocked because its content presents a potential security issue. Please visit https://support.google.com/mail/?p=BlockedMessage", PolicyViolation, true),
    (550, Some("5.7.1"), "The user or domain that you are sending to (or from) has a policy that prohibited the mail that you sent.", PolicyViolation, true),
    (550, Some("5.7.520"), "Access denied, Your organization does not allow external forwarding.", PolicyViolation, true),
    (550, Some("5.7.1"), "Gmail has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked.", SpamDetected, true),
    (554, Some("5.7.1"), "Message rejected as spam by Content Filtering.", SpamDetected, true),
    (550, None, "550 High probability of spam", SpamDetected, true),
    (554, Some("5.7.0"), "Reject, id=12345-01 - INFECTED: Eicar-Test-Signature (virus detected)", VirusDetected, true),
    (530, Some("5.7.0"), "Must issue a STARTTLS command first", SecurityError, true),
    (421, Some("4.7.0"), "TLS required for RCPT domain, closing connection.", SecurityError, false),
    (550, Some("5.7.1"), "Delivery not authorized, message refused", SecurityError, true),
    // ---- suspend / moved / content / system / syntax
    (550, Some("5.2.1"), "The email account that you tried to reach is disabled.", Suspend, true),
    (554, None, "delivery error: dd Sorry your message to x@yahoo.com cannot be delivered. This mailbox is disabled (554.30)", Suspend, true),
    (551, Some("5.1.6"), "User has moved to new address", HasMoved, true),
    (554, Some("5.6.0"), "Mail message is malformed. Not accepted.", ContentError, true),
    (550, None, "550 5.6.0 Message contains invalid MIME headers", ContentError, true),
    (452, Some("4.3.1"), "Insufficient system storage", SystemFull, false),
    (421, Some("4.3.0"), "Temporary System Problem. Try again later.", SystemError, false),
    (0, None, "Command died with status 1: \"/usr/bin/procmail\". Command output: procmail: Error while writing", MailerError, false),
    (501, Some("5.5.2"), "Syntax error in parameters or arguments", SyntaxError, true),
    (503, None, "503 Bad sequence of commands", SyntaxError, true),
    (500, None, "", SyntaxError, true),
    (550, None, "550 Message rejected", Undefined, true),
];

#[test]
fn real_world_replies() {
    let mut failures = Vec::new();
    for (i, (code, enh, text, want, perm)) in CASES.iter().enumerate() {
        let c = classify_reply(*code, *enh, text);
        if c.reason != *want || c.permanent != *perm || c.cmc_code != want.cmc_code() {
            failures.push(format!(
                "#{i} {code} {enh:?} {text:?}\n   got {:?} permanent={} via {}",
                c.reason, c.permanent, c.matched
            ));
        }
    }
    assert!(CASES.len() >= 60);
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn reputation_and_rate_limits_never_userunknown() {
    // Every reputation / rate-limit reply, with and without a misleading 5.1.1.
    for (code, enh, text, want, _) in CASES {
        if matches!(want, BadReputation | Blocked | Speeding | TooManyConn) {
            for e in [*enh, Some("5.1.1"), Some("5.0.0"), None] {
                let c = classify_reply(*code, e, text);
                assert_ne!(c.reason, UserUnknown, "{text}");
                assert_eq!(c.reason, *want, "{e:?} {text}");
            }
        }
    }
}

#[test]
fn status_and_code_found_in_text() {
    let c = classify_reply(
        0,
        None,
        "host x said: 550 5.1.1 <a@b.example>: User unknown",
    );
    assert_eq!(c.reply_code, Some(550));
    assert_eq!(c.status.as_deref(), Some("5.1.1"));
    assert!(c.permanent);
    let c = classify_reply(0, None, "Remote host said: 421-4.7.28 blah");
    assert_eq!(c.status.as_deref(), Some("4.7.28"));
    assert!(!c.permanent);
}

#[test]
fn status_only_fallback() {
    assert_eq!(classify_reply(550, Some("5.1.1"), "").reason, UserUnknown);
    assert_eq!(classify_reply(552, Some("5.2.2"), "").reason, MailboxFull);
    assert_eq!(classify_reply(554, Some("5.3.4"), "").reason, MesgTooBig);
    assert_eq!(classify_reply(550, Some("5.7.1"), "").reason, SecurityError);
    assert_eq!(classify_reply(550, Some("5.7.25"), "").reason, RequirePtr);
    assert_eq!(classify_reply(0, None, "").reason, Undefined);
    // a specific status beats generic text
    assert_eq!(
        classify_reply(550, Some("5.1.1"), "timeout waiting for input").reason,
        UserUnknown
    );
}

#[test]
fn reason_names_roundtrip() {
    assert_eq!(Reason::ALL.len(), 32);
    for r in Reason::ALL {
        assert_eq!(Reason::from_str(r.as_str()).unwrap(), r);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            format!("\"{}\"", r.as_str())
        );
        let back: Reason = serde_json::from_str(&format!("\"{}\"", r.as_str())).unwrap();
        assert_eq!(back, r);
        assert_eq!(r.to_string(), r.as_str());
    }
    assert!(Reason::from_str("nosuchreason").is_err());
    assert_eq!(Reason::from_str(" UserUnknown ").unwrap(), UserUnknown);
}

#[test]
fn cmc_table() {
    let expect = [
        (HostUnknown, 1),
        (UserUnknown, 2),
        (HasMoved, 2),
        (Suspend, 2),
        (Expired, 3),
        (NetworkError, 3),
        (Blocked, 4),
        (BadReputation, 4),
        (SpamDetected, 4),
        (Speeding, 4),
        (MailboxFull, 5),
        (SystemFull, 5),
        (ExceedLimit, 8),
        (SystemError, 7),
        (MailerError, 7),
        (NotAccept, 7),
        (MesgTooBig, 8),
        (SyntaxError, 9),
        (Feedback, 11),
        (Undefined, 99),
        (OnHold, 99),
        (Vacation, 99),
    ];
    for (r, c) in expect {
        assert_eq!(r.cmc_code(), c, "{r}");
    }
    for r in Reason::ALL {
        assert!([1, 2, 3, 4, 5, 7, 8, 9, 11, 99].contains(&r.cmc_code()));
    }
}
