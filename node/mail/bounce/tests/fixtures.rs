//! One test per bounce format in tests/fixtures/.

use hato_bounce::{parse_bounce, BouncedRecipient, Reason};

fn load(name: &str) -> Vec<BouncedRecipient> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read(&path).expect("fixture");
    parse_bounce(&raw)
}

fn one(name: &str, rcpt: &str, reason: Reason, status: Option<&str>, cmc: u16) -> BouncedRecipient {
    let v = load(name);
    assert_eq!(v.len(), 1, "{name}: {v:#?}");
    let r = v.into_iter().next().unwrap();
    assert_eq!(r.recipient, rcpt, "{name}");
    assert_eq!(r.reason, reason, "{name}: {}", r.diagnostic);
    assert_eq!(r.status.as_deref(), status, "{name}");
    assert_eq!(r.cmc_code, cmc, "{name}");
    assert_eq!(r.cmc_code, r.reason.cmc_code(), "{name}");
    r
}

fn verp(r: &BouncedRecipient, tok: &str) {
    let want = format!("bounce+{tok}@bounce.example.com");
    assert_eq!(r.bounce_envelope_to.as_deref(), Some(want.as_str()));
}

#[test]
fn postfix_dsn_crlf() {
    let r = one(
        "postfix.eml",
        "nobody@example.org",
        Reason::UserUnknown,
        Some("5.1.1"),
        2,
    );
    verp(&r, "tok0001");
    assert_eq!(
        r.original_return_path.as_deref(),
        Some("bounce+tok0001@bounce.example.com")
    );
    assert_eq!(
        r.original_message_id.as_deref(),
        Some("m0001@hato.example.com")
    );
    assert_eq!(r.original_subject.as_deref(), Some("お知らせ"));
    assert_eq!(r.remote_host.as_deref(), Some("mx1.example.org"));
    assert_eq!(r.reporting_mta.as_deref(), Some("mx.example.net"));
    assert_eq!(r.action.as_deref(), Some("failed"));
    assert_eq!(r.diagnostic_type.as_deref(), Some("smtp"));
    assert_eq!(r.reply_code, Some(550));
    assert_eq!(r.smtp_command.as_deref(), Some("RCPT"));
    assert!(r.permanent);
    assert!(r
        .diagnostic
        .contains("User unknown in virtual mailbox table"));
}

#[test]
fn postfix_plain_text() {
    let r = one(
        "postfix_plain.eml",
        "big@example.net",
        Reason::MesgTooBig,
        Some("5.3.4"),
        8,
    );
    assert_eq!(r.format, "postfix");
    assert_eq!(r.reply_code, Some(552));
    assert_eq!(r.remote_host.as_deref(), Some("mx.example.net"));
    assert_eq!(r.smtp_command.as_deref(), Some("DATA"));
}

#[test]
fn sendmail_dsn() {
    let r = one(
        "sendmail.eml",
        "fulluser@example.jp",
        Reason::MailboxFull,
        Some("5.2.2"),
        5,
    );
    verp(&r, "tok0002");
    assert_eq!(
        r.original_message_id.as_deref(),
        Some("m0002@hato.example.com")
    );
    assert_eq!(r.remote_host.as_deref(), Some("mail.example.jp"));
}

#[test]
fn exim_reputation_is_not_userunknown() {
    let r = one(
        "exim.eml",
        "someone@gmail.com",
        Reason::BadReputation,
        Some("5.7.1"),
        4,
    );
    assert_eq!(r.format, "exim");
    verp(&r, "tok0003");
    assert_eq!(
        r.original_return_path.as_deref(),
        Some("bounce+tok0003@bounce.example.com")
    );
    assert_eq!(r.remote_host.as_deref(), Some("gmail-smtp-in.l.google.com"));
    assert_eq!(r.reply_code, Some(550));
    assert!(r.permanent);
}

#[test]
fn qmail_plain_text() {
    let r = one(
        "qmail.eml",
        "ghost@qmail.example.net",
        Reason::UserUnknown,
        Some("5.1.1"),
        2,
    );
    assert_eq!(r.format, "qmail");
    assert_eq!(
        r.original_message_id.as_deref(),
        Some("m0004@hato.example.com")
    );
    verp(&r, "tok0004");
}

#[test]
fn exchange_plain_text_crlf_qp() {
    let r = one(
        "exchange.eml",
        "taro.yamada@corp.example.com",
        Reason::UserUnknown,
        Some("5.1.10"),
        2,
    );
    assert_eq!(r.format, "exchange");
    assert_eq!(r.reply_code, Some(550));
    assert_eq!(
        r.original_message_id.as_deref(),
        Some("m0005@hato.example.com")
    );
    assert_eq!(r.bounce_subject.as_deref(), Some("Undeliverable: お知らせ"));
}

#[test]
fn exchange2003_relay_denied() {
    let r = one(
        "exchange2003.eml",
        "someone@elsewhere.example",
        Reason::NoRelaying,
        Some("5.7.1"),
        4,
    );
    assert_eq!(r.format, "exchange");
}

#[test]
fn office365_block_list_is_blocked() {
    let r = one(
        "office365.eml",
        "alice@outlook.com",
        Reason::Blocked,
        Some("5.7.1"),
        4,
    );
    assert!(r.diagnostic.contains("S3150"));
    assert_eq!(
        r.remote_host.as_deref(),
        Some("outlook-com.olc.protection.outlook.com")
    );
    verp(&r, "tok0006");
}

#[test]
fn gmail_address_not_found() {
    let r = one(
        "gmail.eml",
        "nosuchuser@example.co.jp",
        Reason::UserUnknown,
        Some("5.1.1"),
        2,
    );
    assert_eq!(r.remote_host.as_deref(), Some("mx.example.co.jp"));
    assert_eq!(
        r.original_message_id.as_deref(),
        Some("m0007@hato.example.com")
    );
    verp(&r, "tok0007");
}

#[test]
fn gmail_rate_limited_delayed() {
    let r = one(
        "gmail_ratelimit.eml",
        "busy@gmail.com",
        Reason::Speeding,
        Some("4.7.28"),
        4,
    );
    assert!(!r.permanent);
    assert_eq!(r.action.as_deref(), Some("delayed"));
    assert_eq!(r.reply_code, Some(421));
}

#[test]
fn yahoo_plain_text() {
    let r = one(
        "yahoo.eml",
        "gone.user@yahoo.com",
        Reason::UserUnknown,
        None,
        2,
    );
    assert_eq!(r.format, "yahoo");
    assert_eq!(r.reply_code, Some(554));
    assert!(r.permanent);
}

#[test]
fn amazon_ses_dsn_crlf() {
    let r = one(
        "amazonses.eml",
        "quota.user@example.com",
        Reason::MailboxFull,
        Some("5.2.2"),
        5,
    );
    assert_eq!(
        r.reporting_mta.as_deref(),
        Some("a8-1.smtp-out.amazonses.com")
    );
    assert_eq!(
        r.original_return_path.as_deref(),
        Some("bounce+tok0010@bounce.example.com")
    );
}

#[test]
fn docomo_dsn_shift_jis() {
    let r = one(
        "docomo.eml",
        "taro.docomo@docomo.ne.jp",
        Reason::UserUnknown,
        Some("5.0.0"),
        2,
    );
    assert_eq!(r.remote_host.as_deref(), Some("mfsmax.docomo.ne.jp"));
}

#[test]
fn kddi_au_iso2022jp_plain_text() {
    let r = one(
        "kddi.eml",
        "hanako@ezweb.ne.jp",
        Reason::MailboxFull,
        None,
        5,
    );
    assert_eq!(r.format, "kddi");
    verp(&r, "tok0012");
    assert_eq!(
        r.original_message_id.as_deref(),
        Some("m0012@hato.example.com")
    );
}

#[test]
fn softbank_dsn_iso2022jp_crlf() {
    let r = one(
        "softbank.eml",
        "jiro@i.softbank.jp",
        Reason::UserUnknown,
        Some("5.1.1"),
        2,
    );
    assert_eq!(
        r.bounce_from.as_deref(),
        Some("mailer-daemon@mx.i.softbank.jp")
    );
}

#[test]
fn arf_feedback() {
    let r = one(
        "arf.eml",
        "complainer@yahoo.co.jp",
        Reason::Feedback,
        None,
        11,
    );
    assert_eq!(r.feedback_type.as_deref(), Some("abuse"));
    assert_eq!(r.format, "arf");
    assert_eq!(
        r.original_return_path.as_deref(),
        Some("bounce+tok0014@bounce.example.com")
    );
    assert_eq!(
        r.original_message_id.as_deref(),
        Some("m0014@hato.example.com")
    );
    verp(&r, "tok0014");
}

#[test]
fn vacation_auto_reply() {
    let r = one(
        "vacation.eml",
        "away@example.org",
        Reason::Vacation,
        None,
        99,
    );
    assert!(!r.permanent);
    verp(&r, "tok0015");
}

#[test]
fn not_a_bounce_is_empty() {
    let raw = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hello\r\n\r\nJust a normal message.\r\n";
    assert!(parse_bounce(raw).is_empty());
    assert!(parse_bounce(b"").is_empty());
}

#[test]
fn serde_names() {
    let r = load("postfix.eml").remove(0);
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["reason"], "userunknown");
    assert_eq!(j["cmc_code"], 2);
}

#[test]
fn docomo_filter_rejection_status_5_2_0() {
    let path = format!("{}/tests/fixtures/docomo.eml", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read_to_string(path).unwrap();
    let v = parse_bounce(raw.replace("Status: 5.0.0", "Status: 5.2.0").as_bytes());
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].reason, Reason::Filtered);
    assert_eq!(v[0].cmc_code, 4);
}

#[test]
fn multiple_recipients_in_one_dsn() {
    let path = format!("{}/tests/fixtures/postfix.eml", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read_to_string(path).unwrap();
    let extra = "Final-Recipient: rfc822; second@example.org\r\nAction: failed\r\nStatus: 5.2.2\r\nDiagnostic-Code: smtp; 552 5.2.2 Mailbox full\r\n\r\n--3F1A2.1772499605/mx.example.net\r\nContent-Description: Undelivered";
    let raw = raw.replacen(
        "--3F1A2.1772499605/mx.example.net\r\nContent-Description: Undelivered",
        &format!("\r\n{extra}"),
        1,
    );
    let v = parse_bounce(raw.as_bytes());
    assert_eq!(v.len(), 2, "{v:#?}");
    assert_eq!(v[0].reason, Reason::UserUnknown);
    assert_eq!(v[1].recipient, "second@example.org");
    assert_eq!(v[1].reason, Reason::MailboxFull);
}

#[test]
fn mailto_unsubscribe_is_feedback() {
    let raw = "From: someone@icloud.com\r\nTo: unsub+tok0020@bounce.example.com\r\nSubject: unsubscribe\r\nAuto-Submitted: auto-replied\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nApple Mail sent this email to unsubscribe from the message =E2=80=9CNews=\r\n=E2=80=9D.\r\n";
    let v = parse_bounce(raw.as_bytes());
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].recipient, "someone@icloud.com");
    assert_eq!(v[0].reason, Reason::Feedback);
    assert_eq!(v[0].cmc_code, 11);
    assert_eq!(v[0].feedback_type.as_deref(), Some("unsubscribe"));
    assert_eq!(
        v[0].bounce_envelope_to.as_deref(),
        Some("unsub+tok0020@bounce.example.com")
    );
}

#[test]
fn auto_reply_subject_without_headers() {
    let raw = b"From: kijitora@example.com\nTo: bounce+tok0021@bounce.example.com\nSubject: Auto reply: News\n\nI'm only sleeping.\n";
    let v = parse_bounce(raw);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].reason, Reason::Vacation);
}

#[test]
fn hotmail_style_complaint_without_arf() {
    let raw = "From: <staff@hotmail.com>\nTo: abuse@example.com\nSubject: complaint about message from 192.0.2.10\nContent-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Type: message/rfc822\n\nReturn-Path: <bounce+tok0022@bounce.example.com>\nTo: reader@hotmail.com\nFrom: news@example.com\nMessage-ID: <m0022@hato.example.com>\nSubject: News\n\nHello\n--B--\n";
    let v = parse_bounce(raw.as_bytes());
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].recipient, "reader@hotmail.com");
    assert_eq!(v[0].reason, Reason::Feedback);
    assert_eq!(
        v[0].original_return_path.as_deref(),
        Some("bounce+tok0022@bounce.example.com")
    );
}

#[test]
fn rejection_after_data_is_filtered() {
    let raw = "From: MAILER-DAEMON@relay.example.com\nTo: bounce+tok0023@bounce.example.com\nSubject: Undelivered Mail Returned to Sender\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"R\"\n\n--R\nContent-Type: text/plain\n\n<a@example.net>: host mx.example.net[203.0.113.1] said: 550 Unknown user\n    a@example.net (in reply to end of DATA command)\n\n--R\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; relay.example.com\n\nFinal-Recipient: rfc822; a@example.net\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: smtp; 550 Unknown user a@example.net\n\n--R--\n";
    let v = parse_bounce(raw.as_bytes());
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].smtp_command.as_deref(), Some("DATA"));
    assert_eq!(v[0].reason, Reason::Filtered);
}
