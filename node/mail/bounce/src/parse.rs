//! Bounce mail parsing: RFC 3464 DSNs, RFC 5965 ARF reports, auto-replies
//! and the plain-text formats of common MTAs and providers.

use serde::Serialize;

use crate::classify::{classify_reply, find_reply_code};
use crate::mime::{self, Part};
use crate::phrases::{normalize, wmatch, VACATION};
use crate::reason::Reason;
use crate::status::EnhancedStatus;

/// One recipient reported in a bounce (or feedback / auto-reply) message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BouncedRecipient {
    /// The failed recipient address (lowercased), from `Final-Recipient`
    /// (`rfc822;` prefix removed) or the MTA's text.
    pub recipient: String,
    /// `Original-Recipient` of a DSN, if present.
    pub original_recipient: Option<String>,
    /// Why it failed.
    pub reason: Reason,
    /// Customers Mail Cloud bounce code of `reason`.
    pub cmc_code: u16,
    /// Permanent failure (DSN `Action: failed`, or a 5xx / 5.x.x code).
    pub permanent: bool,
    /// Enhanced status code, e.g. `"5.1.1"`.
    pub status: Option<String>,
    /// Basic SMTP reply code, if one was reported.
    pub reply_code: Option<u16>,
    /// Diagnostic text (e.g. the remote server's reply), whitespace-collapsed.
    pub diagnostic: String,
    /// Diagnostic type from `Diagnostic-Code` (`"smtp"`, `"x-unix"`, ...).
    pub diagnostic_type: Option<String>,
    /// DSN `Action` (`"failed"`, `"delayed"`), lowercased.
    pub action: Option<String>,
    /// The remote MTA that rejected the message (`Remote-MTA` or from the text).
    pub remote_host: Option<String>,
    /// The MTA that generated the report (`Reporting-MTA`).
    pub reporting_mta: Option<String>,
    /// SMTP command the error was a reply to (`"RCPT"`, `"MAIL"`, `"DATA"`, `"CONN"`), if known.
    pub smtp_command: Option<String>,
    /// ARF `Feedback-Type` (`"abuse"`, ...) for [`Reason::Feedback`].
    pub feedback_type: Option<String>,
    /// `Message-ID` of the original message (with angle brackets stripped).
    pub original_message_id: Option<String>,
    /// `Return-Path` of the original message (address only).
    pub original_return_path: Option<String>,
    /// `From` address of the original message.
    pub original_from: Option<String>,
    /// `To` address of the original message.
    pub original_to: Option<String>,
    /// `Subject` of the original message (decoded).
    pub original_subject: Option<String>,
    /// DSN `Original-Envelope-Id`, if present.
    pub original_envelope_id: Option<String>,
    /// The bounce message's own envelope recipient: `Delivered-To`,
    /// `X-Original-To`, `Envelope-To`, `X-Envelope-To` or else `To`
    /// (address only). For VERP this is `bounce+<token>@...`.
    pub bounce_envelope_to: Option<String>,
    /// `From` address of the bounce message.
    pub bounce_from: Option<String>,
    /// `Subject` of the bounce message (decoded).
    pub bounce_subject: Option<String>,
    /// Which parser recognised the message: `"rfc3464"`, `"arf"`,
    /// `"vacation"`, `"unsubscribe"`, `"exim"`, `"qmail"`, `"sendmail"`, `"postfix"`,
    /// `"exchange"`, `"gmail"`, `"yahoo"`, `"kddi"`, `"plaintext"`.
    pub format: &'static str,
}

/// Header-derived context shared by all recipients of one bounce.
#[derive(Default, Clone)]
struct Context {
    original_message_id: Option<String>,
    original_return_path: Option<String>,
    original_from: Option<String>,
    original_to: Option<String>,
    original_subject: Option<String>,
    bounce_envelope_to: Option<String>,
    bounce_from: Option<String>,
    bounce_subject: Option<String>,
}

/// Parses a bounce / DSN / ARF / auto-reply message and returns one entry
/// per affected recipient. Returns an empty vector for messages that are
/// not recognised as any of those. Never panics, whatever the input.
pub fn parse_bounce(raw: &[u8]) -> Vec<BouncedRecipient> {
    let root = mime::parse(raw);
    let mut parts = Vec::new();
    root.walk(&mut parts);

    let mut ctx = Context {
        bounce_envelope_to: [
            "delivered-to",
            "x-original-to",
            "envelope-to",
            "x-envelope-to",
            "to",
        ]
        .iter()
        .find_map(|h| root.header(h).and_then(first_addr)),
        bounce_from: root.header("from").and_then(first_addr),
        bounce_subject: root.header_text("subject"),
        ..Context::default()
    };
    let human = human_text(&parts);
    fill_original(&mut ctx, &parts, &human);

    // RFC 5965 feedback report
    if let Some(fb) = parts.iter().find(|p| p.ctype == "message/feedback-report") {
        return parse_arf(fb, &parts, &ctx, &human);
    }

    // Non-ARF complaint (Hotmail/Outlook JMRP style): an attached message
    // and a "complaint about message" subject.
    let subj = ctx
        .bounce_subject
        .clone()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if subj.contains("complaint about message") || subj.contains("abuse report") {
        if let Some(fake) = parts.iter().find(|p| p.embedded.is_some()) {
            let mut v = parse_arf(fake, &parts, &ctx, &human);
            for r in &mut v {
                r.feedback_type = Some("abuse".to_string());
            }
            if v.iter().any(|r| !r.recipient.is_empty()) {
                return v;
            }
        }
    }

    // RFC 3464 delivery status
    let mut out = Vec::new();
    for p in &parts {
        let is_ds = matches!(
            p.ctype.as_str(),
            "message/delivery-status" | "message/global-delivery-status"
        );
        if is_ds {
            out.extend(parse_dsn(&p.text(), &ctx, &human));
        }
    }
    if out.is_empty() {
        // Mislabelled delivery-status (text/plain holding DSN fields)
        for p in &parts {
            if p.ctype.starts_with("text/") && p.embedded.is_none() {
                let t = p.text();
                if has_field(&t, "final-recipient") && has_field(&t, "action") {
                    out.extend(parse_dsn(&t, &ctx, &human));
                }
            }
        }
    }
    if !out.is_empty() {
        dedup(&mut out);
        return out;
    }

    if is_bounce(&root, &ctx, &human) {
        let mut v = parse_plain(&root, &ctx, &human);
        dedup(&mut v);
        if !v.is_empty() {
            return v;
        }
    }
    if let Some(v) = parse_unsubscribe(&ctx, &human) {
        return vec![v];
    }
    if let Some(v) = parse_vacation(&root, &ctx, &human) {
        return vec![v];
    }
    Vec::new()
}

fn dedup(v: &mut Vec<BouncedRecipient>) {
    let mut seen = std::collections::HashSet::new();
    v.retain(|r| seen.insert((r.recipient.clone(), r.action.clone())));
}

// ---------------------------------------------------------------- helpers

fn is_local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"._%+-=/!#$&'*?^`{|}~".contains(&c)
}

fn is_domain_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'-'
}

/// All e-mail addresses in `s`, lowercased, in order.
pub(crate) fn find_addrs(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'@' {
            let mut l = i;
            while l > 0 && is_local_char(b[l - 1]) {
                l -= 1;
            }
            let mut r = i + 1;
            while r < b.len() && is_domain_char(b[r]) {
                r += 1;
            }
            // trim leading dots / quotes from local part, trailing dots from domain
            while l < i && matches!(b[l], b'.' | b'\'' | b'`' | b'=' | b'/') {
                l += 1;
            }
            let mut re = r;
            while re > i + 1 && matches!(b[re - 1], b'.' | b'-') {
                re -= 1;
            }
            if l < i && re > i + 1 {
                let local = &s[l..i];
                let domain = &s[i + 1..re];
                if domain.contains('.') && !domain.starts_with('.') && !domain.contains("..") {
                    out.push(format!("{local}@{domain}").to_ascii_lowercase());
                }
            }
            i = r.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

fn first_addr(s: &str) -> Option<String> {
    find_addrs(&mime::decode_words(s)).into_iter().next()
}

/// Strips `rfc822;` / `dns;` style type prefixes.
fn strip_type(v: &str) -> (Option<String>, String) {
    match v.split_once(';') {
        Some((t, rest))
            if !t.trim().is_empty()
                && t.trim().len() <= 20
                && t.trim()
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-') =>
        {
            (Some(t.trim().to_ascii_lowercase()), rest.trim().to_string())
        }
        _ => (None, v.trim().to_string()),
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn has_field(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        l.split_once(':')
            .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
    })
}

/// Text parts meant for humans (not inside attached messages), decoded.
fn human_text(parts: &[&Part]) -> String {
    let mut plain = String::new();
    let mut html = String::new();
    for p in parts {
        if p.embedded.is_some() {
            continue;
        }
        match p.ctype.as_str() {
            "text/plain" => {
                plain.push_str(&p.text());
                plain.push('\n');
            }
            "text/html" => {
                html.push_str(&mime::strip_html(&p.text()));
                html.push('\n');
            }
            _ => {}
        }
    }
    if plain.trim().is_empty() {
        html
    } else {
        plain
    }
}

const ORIGINAL_MARKERS: &[&str] = &[
    "below this line is a copy of the message",
    "this is a copy of the message",
    "this is a copy of the headers",
    "original message follows",
    "original message headers",
    "----- original message -----",
    "------ original message ------",
    "unsent message below",
    "message header follows",
    "header of the original message",
    "headers of the original message",
    "text of the original message",
    "the original message follows",
    "content-type: message/rfc822",
    "returned message follows",
    "message headers follow",
    "------- returned message --------",
    "------ the original message",
];

/// The human-readable error text, cut before any copy of the original message.
fn error_section(human: &str) -> &str {
    let mut pos = 0;
    for line in human.split_inclusive('\n') {
        let l = line.trim().to_ascii_lowercase();
        if ORIGINAL_MARKERS.iter().any(|m| l.contains(m))
            || (l.len() >= 40 && l.bytes().all(|c| c == b'-'))
        {
            return &human[..pos];
        }
        pos += line.len();
    }
    human
}

/// Headers of an inline copy of the original message after a marker.
fn inline_original(human: &str) -> Option<Part> {
    let cut = error_section(human).len();
    let rest = human.get(cut..)?;
    // skip the marker line and blank lines, then parse a header block
    let mut off = rest.find('\n').map_or(rest.len(), |p| p + 1);
    loop {
        let tail = rest.get(off..)?;
        let line = tail.lines().next()?;
        if line.trim().is_empty() {
            off += line.len() + 1;
            if off >= rest.len() {
                return None;
            }
            continue;
        }
        break;
    }
    let tail = rest.get(off..)?;
    let p = mime::parse(tail.as_bytes());
    if p.header("message-id").is_some()
        || p.header("return-path").is_some()
        || p.header("from").is_some()
        || p.header("to").is_some()
    {
        Some(p)
    } else {
        None
    }
}

fn fill_original(ctx: &mut Context, parts: &[&Part], human: &str) {
    let from_part = parts
        .iter()
        .filter_map(|p| p.embedded.as_deref())
        .find(|e| !e.headers.is_empty());
    let inline;
    let orig = match from_part {
        Some(o) => Some(o),
        None => {
            inline = inline_original(human);
            inline.as_ref()
        }
    };
    if let Some(o) = orig {
        ctx.original_message_id = o
            .header("message-id")
            .map(|m| {
                m.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .trim()
                    .to_string()
            })
            .filter(|m| !m.is_empty());
        ctx.original_return_path = o.header("return-path").and_then(first_addr);
        ctx.original_from = o.header("from").and_then(first_addr);
        ctx.original_to = o.header("to").and_then(first_addr);
        ctx.original_subject = o.header_text("subject");
    }
}

fn new_record(ctx: &Context, recipient: String, format: &'static str) -> BouncedRecipient {
    BouncedRecipient {
        recipient,
        original_recipient: None,
        reason: Reason::Undefined,
        cmc_code: Reason::Undefined.cmc_code(),
        permanent: false,
        status: None,
        reply_code: None,
        diagnostic: String::new(),
        diagnostic_type: None,
        action: None,
        remote_host: None,
        reporting_mta: None,
        smtp_command: None,
        feedback_type: None,
        original_message_id: ctx.original_message_id.clone(),
        original_return_path: ctx.original_return_path.clone(),
        original_from: ctx.original_from.clone(),
        original_to: ctx.original_to.clone(),
        original_subject: ctx.original_subject.clone(),
        original_envelope_id: None,
        bounce_envelope_to: ctx.bounce_envelope_to.clone(),
        bounce_from: ctx.bounce_from.clone(),
        bounce_subject: ctx.bounce_subject.clone(),
        format,
    }
}

fn set_reason(r: &mut BouncedRecipient, reason: Reason) {
    r.reason = reason;
    r.cmc_code = reason.cmc_code();
}

/// Detects the SMTP command an error answered.
fn smtp_command(text: &str) -> Option<String> {
    let l = text.to_ascii_lowercase();
    let cmds = [
        ("rcpt to", "RCPT"),
        ("[rcpt_to]", "RCPT"),
        ("[mail_from]", "MAIL"),
        ("mail from", "MAIL"),
        ("end of data", "DATA"),
        ("after data", "DATA"),
        ("in reply to data", "DATA"),
        ("in reply to end of data", "DATA"),
        (">>> data", "DATA"),
        ("smtp command data", "DATA"),
        ("for text command", "DATA"),
        ("in reply to helo", "HELO"),
        ("in reply to ehlo", "EHLO"),
        ("after initial connection", "CONN"),
        ("in reply to starttls", "STARTTLS"),
    ];
    let mut best: Option<(usize, &str)> = None;
    for (pat, name) in cmds {
        if let Some(p) = l.find(pat) {
            if best.is_none_or(|(bp, _)| p < bp) {
                best = Some((p, name));
            }
        }
    }
    best.map(|(_, n)| n.to_string())
}

fn clean_host(h: &str) -> Option<String> {
    let h = h
        .trim()
        .trim_matches(|c: char| matches!(c, '(' | ')' | ':' | ',' | '\'' | '"' | '<' | '>'))
        .trim_end_matches('.');
    let h = h.split('[').next().unwrap_or(h).trim_end_matches('.');
    let valid = !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':'))
        && (h.contains('.') || h.contains(':'));
    if valid {
        Some(h.to_ascii_lowercase())
    } else {
        None
    }
}

/// Finds the remote host named in an MTA's error text.
fn remote_host_in(text: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        let next = words.get(i + 1).copied().unwrap_or("");
        // Postfix "host mx.example.com[1.2.3.4] said:", Exim "host mx.example.com [1.2.3.4]:"
        if *w == "host" {
            if let Some(h) = clean_host(next) {
                return Some(h);
            }
        }
        // Sendmail "while talking to mx.example.com.:"
        if *w == "talking" && next == "to" {
            if let Some(h) = words.get(i + 2).and_then(|x| clean_host(x)) {
                return Some(h);
            }
        }
        // qmail "1.2.3.4 does not like recipient."
        if next == "does" && words.get(i + 2) == Some(&"not") && words.get(i + 3) == Some(&"like") {
            if let Some(h) = clean_host(w) {
                return Some(h);
            }
        }
        // Exchange "Remote server returned" has no host; "Generating server: x"
        if *w == "server:" && i > 0 && words[i - 1] == "generating" {
            if let Some(h) = clean_host(next) {
                return Some(h);
            }
        }
    }
    None
}

/// Unfolds an RFC 822-style field block (DSN) into `(lowercase name, value)`.
fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks: Vec<Vec<(String, String)>> = Vec::new();
    let mut cur: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !cur.is_empty() {
                blocks.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = cur.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((n, v)) = line.split_once(':') {
            let n = n.trim();
            if !n.is_empty() && !n.contains(' ') {
                cur.push((n.to_ascii_lowercase(), v.trim().to_string()));
            }
        }
    }
    if !cur.is_empty() {
        blocks.push(cur);
    }
    blocks
}

fn get<'a>(block: &'a [(String, String)], name: &str) -> Option<&'a str> {
    block
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.trim().is_empty())
}

// ------------------------------------------------------------------ DSN

fn parse_dsn(text: &str, ctx: &Context, human: &str) -> Vec<BouncedRecipient> {
    let blocks = field_blocks(text);
    let mut reporting_mta = None;
    let mut envid = None;
    let mut out = Vec::new();
    let errtext = error_section(human);
    for b in &blocks {
        if get(b, "final-recipient").is_none() && get(b, "original-recipient").is_none() {
            if let Some(v) = get(b, "reporting-mta") {
                reporting_mta = Some(strip_type(v).1);
            }
            if let Some(v) = get(b, "original-envelope-id") {
                envid = Some(v.trim().to_string());
            }
            continue;
        }
        let action = get(b, "action").map(|a| {
            a.split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        });
        if matches!(
            action.as_deref(),
            Some("delivered" | "relayed" | "expanded")
        ) {
            continue;
        }
        let final_rcpt = get(b, "final-recipient")
            .and_then(|v| first_addr(&strip_type(v).1))
            .or_else(|| get(b, "x-actual-recipient").and_then(|v| first_addr(&strip_type(v).1)));
        let orig_rcpt = get(b, "original-recipient").and_then(|v| first_addr(&strip_type(v).1));
        let Some(recipient) = final_rcpt.clone().or_else(|| orig_rcpt.clone()) else {
            continue;
        };
        let status_field = get(b, "status")
            .and_then(|s| s.split_whitespace().next().and_then(EnhancedStatus::parse));
        if status_field.is_some_and(|s| s.class == 2) {
            continue;
        }
        let (dtype, diag) = match get(b, "diagnostic-code") {
            Some(d) => {
                let (t, v) = strip_type(d);
                (t, collapse(&v))
            }
            None => (None, String::new()),
        };
        let mut rec = new_record(ctx, recipient.clone(), "rfc3464");
        rec.original_recipient = orig_rcpt;
        rec.action = action.clone();
        rec.reporting_mta = reporting_mta.clone();
        rec.original_envelope_id = envid.clone();
        rec.remote_host = get(b, "remote-mta")
            .and_then(|v| clean_host(strip_type(v).1.split_whitespace().next().unwrap_or("")));
        rec.diagnostic_type = dtype.clone();

        // Prefer the status in the diagnostic over a generic X.0.0 Status field.
        let diag_status = EnhancedStatus::find_in(&diag);
        let status = match (status_field, diag_status) {
            (Some(s), Some(d)) if s.subject == 0 && s.detail == 0 && d.class == s.class => Some(d),
            (Some(s), _) => Some(s),
            (None, d) => d,
        };
        let status_str = status.map(|s| s.to_string());

        // Diagnostic: the DSN's own, else the recipient's block in the text.
        let mut diagnostic = diag.clone();
        let text_block = recipient_block(errtext, &recipient);
        if diagnostic.is_empty() {
            diagnostic = text_block.clone().unwrap_or_default();
        }
        let mut c = classify_reply(0, status_str.as_deref(), &diagnostic);
        if matches!(c.reason, Reason::Undefined) || c.matched.starts_with("status:") {
            // The human-readable part sometimes says more (Gmail, Exchange).
            let more = text_block.unwrap_or_else(|| collapse(errtext));
            let c2 = classify_reply(0, status_str.as_deref(), &format!("{diagnostic} {more}"));
            if c2.matched.starts_with("text:") {
                c.reason = c2.reason;
                c.cmc_code = c2.cmc_code;
                c.matched = c2.matched;
            }
        }
        let mut reason = c.reason;
        if dtype.as_deref() == Some("x-unix")
            && matches!(
                reason,
                Reason::Undefined | Reason::OnHold | Reason::SystemError
            )
        {
            reason = Reason::MailerError;
        }
        if action.as_deref() == Some("delayed")
            && matches!(reason, Reason::Undefined | Reason::OnHold)
        {
            reason = Reason::Expired;
        }
        if reason == Reason::Undefined {
            reason = Reason::OnHold;
        }
        let cmd = smtp_command(&diagnostic)
            .or_else(|| recipient_block(errtext, &recipient).and_then(|t| smtp_command(&t)))
            .or_else(|| smtp_command(errtext));
        reason = after_data(reason, status_str.as_deref(), cmd.as_deref());
        reason = provider_override(
            &recipient,
            rec.remote_host.as_deref(),
            status_str.as_deref(),
            cmd.as_deref(),
            &diagnostic,
            reason,
        );
        set_reason(&mut rec, reason);
        rec.status = status_str.or(c.status);
        rec.reply_code = c.reply_code;
        rec.permanent = match action.as_deref() {
            Some("failed") => true,
            Some("delayed") => false,
            _ => c.permanent,
        };
        if rec.remote_host.is_none() {
            rec.remote_host = remote_host_in(&diagnostic);
        }
        rec.smtp_command = cmd;
        rec.diagnostic = diagnostic;
        out.push(rec);
    }
    out
}

/// An "unknown user" answer given only after DATA (i.e. after the server
/// accepted RCPT TO) is a content/recipient filter, not a missing mailbox
/// (Sisimai's rule) -- unless the status explicitly says X.1.1.
fn after_data(r: Reason, status: Option<&str>, command: Option<&str>) -> Reason {
    let x11 = status
        .and_then(EnhancedStatus::parse)
        .is_some_and(|s| s.subject == 1 && s.detail == 1);
    if r == Reason::UserUnknown && command == Some("DATA") && !x11 {
        Reason::Filtered
    } else {
        r
    }
}

/// Provider-specific corrections (what Sisimai does in its Rhost modules).
fn provider_override(
    recipient: &str,
    remote: Option<&str>,
    status: Option<&str>,
    command: Option<&str>,
    diag: &str,
    r: Reason,
) -> Reason {
    let domain = recipient.rsplit('@').next().unwrap_or("");
    let remote = remote.unwrap_or("");
    let d = normalize(diag);
    let kddi = domain.ends_with("ezweb.ne.jp")
        || domain == "au.com"
        || remote.ends_with(".au.com")
        || remote.ends_with("ezweb.ne.jp");
    if kddi && (d.contains("550 : user unknown") || d.contains("550: : user unknown")) {
        // au answers "550 : User unknown" when the recipient's filter refused the sender.
        return Reason::Filtered;
    }
    let docomo = domain == "docomo.ne.jp" || remote.ends_with("docomo.ne.jp");
    if docomo && r == Reason::UserUnknown {
        // docomo answers "550 Unknown user" for filter rejections too; the
        // status (5.2.0) or the command (after DATA) tells them apart.
        match (status, command) {
            (Some("5.2.0"), _) => return Reason::Filtered,
            (Some("5.0.0"), Some("DATA")) => return Reason::Rejected,
            _ => {}
        }
    }
    r
}

// ------------------------------------------------------------------ ARF

fn parse_arf(fb: &Part, parts: &[&Part], ctx: &Context, human: &str) -> Vec<BouncedRecipient> {
    let text = fb.text();
    let mut fields: Vec<(String, String)> = Vec::new();
    for b in field_blocks(&text) {
        fields.extend(b);
    }
    let f = |n: &str| get(&fields, n).map(str::to_string);
    let mut rcpts: Vec<String> = fields
        .iter()
        .filter(|(n, _)| n == "original-rcpt-to" || n == "removal-recipient")
        .filter_map(|(_, v)| first_addr(v))
        .collect();
    if rcpts.is_empty() {
        if let Some(t) = ctx.original_to.clone() {
            rcpts.push(t);
        }
    }
    if rcpts.is_empty() {
        // the attached original message may be a headers-only part not yet seen
        if let Some(t) = parts
            .iter()
            .filter_map(|p| p.embedded.as_deref())
            .find_map(|e| e.header("to").and_then(first_addr))
        {
            rcpts.push(t);
        }
    }
    if rcpts.is_empty() {
        // Still a complaint about one of our messages: report it with an
        // empty recipient so the caller can use the original Return-Path.
        rcpts.push(String::new());
    }
    let ftype = f("feedback-type").map(|s| s.to_ascii_lowercase());
    let reporting = f("reporting-mta").map(|v| strip_type(&v).1);
    let diag = collapse(error_section(human));
    let mut out = Vec::new();
    for r in rcpts {
        let mut rec = new_record(ctx, r, "arf");
        set_reason(&mut rec, Reason::Feedback);
        rec.permanent = false;
        rec.feedback_type = ftype.clone();
        rec.reporting_mta = reporting.clone();
        rec.remote_host = f("source-ip").or_else(|| reporting.clone());
        rec.diagnostic = if diag.is_empty() {
            format!("Feedback-Type: {}", ftype.clone().unwrap_or_default())
        } else {
            diag.clone()
        };
        if rec.original_from.is_none() {
            rec.original_from = f("original-mail-from").and_then(|v| first_addr(&v));
        }
        if rec.original_return_path.is_none() {
            rec.original_return_path = f("original-mail-from").and_then(|v| first_addr(&v));
        }
        out.push(rec);
    }
    out
}

// ---------------------------------------------------------- unsubscribe

/// A mailto: List-Unsubscribe request sent by a mail client (Apple Mail,
/// Gmail, ...): reported as [`Reason::Feedback`] with feedback type
/// `"unsubscribe"` for the sending address.
fn parse_unsubscribe(ctx: &Context, human: &str) -> Option<BouncedRecipient> {
    let subj = normalize(&ctx.bounce_subject.clone().unwrap_or_default());
    let body = normalize(human);
    let hit = body.contains("sent this email to unsubscribe")
        || body.contains("this message was automatically generated by gmail")
            && subj == "unsubscribe"
        || subj == "unsubscribe" && body.contains("unsubscribe");
    if !hit {
        return None;
    }
    let from = ctx.bounce_from.clone()?;
    let mut rec = new_record(ctx, from, "unsubscribe");
    set_reason(&mut rec, Reason::Feedback);
    rec.feedback_type = Some("unsubscribe".to_string());
    rec.diagnostic = collapse(human).chars().take(300).collect();
    Some(rec)
}

// ------------------------------------------------------------- vacation

fn parse_vacation(root: &Part, ctx: &Context, human: &str) -> Option<BouncedRecipient> {
    let auto = root
        .header("auto-submitted")
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("auto-replied"));
    let xauto = root.header("x-autoreply").is_some()
        || root.header("x-autorespond").is_some()
        || root.header("x-autoreply-from").is_some()
        || root.header("x-mail-autoreply").is_some()
        || root
            .header("precedence")
            .is_some_and(|v| v.eq_ignore_ascii_case("auto_reply"));
    let subj = ctx.bounce_subject.clone().unwrap_or_default();
    let s = normalize(&subj);
    let subj_hit = [
        "out of office",
        "automatic reply",
        "auto reply",
        "autoreply",
        "auto-reply",
        "auto:",
        "vacation",
        "away from",
        "abwesenheit",
        "自動応答",
        "自動返信",
        "不在",
    ]
    .iter()
    .any(|p| s.contains(p));
    let body = normalize(human);
    let body_hit = VACATION.iter().any(|p| body.contains(p));
    let strong_subj = [
        "auto reply",
        "automatic reply",
        "autoreply",
        "auto-reply",
        "out of office",
        "自動応答",
        "自動返信",
    ]
    .iter()
    .any(|p| s.starts_with(p));
    // RFC 3834: "Auto-Submitted: auto-replied" is an automatic response.
    let ok = strong_subj
        || auto
        || (xauto || subj.to_ascii_lowercase().starts_with("re:")) && (subj_hit || body_hit)
        || subj_hit && body_hit;
    if !ok {
        return None;
    }
    let from = ctx.bounce_from.clone()?;
    let mut rec = new_record(ctx, from, "vacation");
    set_reason(&mut rec, Reason::Vacation);
    rec.diagnostic = collapse(human).chars().take(300).collect();
    Some(rec)
}

// ------------------------------------------------------------ plaintext

fn is_bounce(root: &Part, ctx: &Context, human: &str) -> bool {
    let from = root
        .header_text("from")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let subj = normalize(&ctx.bounce_subject.clone().unwrap_or_default());
    let from_hit = [
        "mailer-daemon",
        "postmaster",
        "mail delivery",
        "mailer",
        "mail administrator",
        "mail.delivery",
    ]
    .iter()
    .any(|p| from.contains(p));
    let subj_hit = [
        "undeliver",
        "undelivered",
        "delivery status notification",
        "delivery failure",
        "delivery failed",
        "failure notice",
        "returned mail",
        "mail delivery failed",
        "mail system error",
        "could not be delivered",
        "couldn't be delivered",
        "non remis",
        "nicht zustellbar",
        "delivery has failed",
        "mail delivery subsystem",
        "not delivered",
        "message delivery failure",
        "returned to sender",
        "エラー",
        "不達",
    ]
    .iter()
    .any(|p| subj.contains(p));
    let body = normalize(error_section(human));
    let body_hit = PLAIN_MARKERS.iter().any(|(_, m)| wmatch(&body, m));
    from_hit || subj_hit || body_hit || root.header("x-failed-recipients").is_some()
}

/// `(format, marker)`: the first matching marker names the format.
const PLAIN_MARKERS: &[(&str, &str)] = &[
    ("qmail", "this is the qmail-send program"),
    ("qmail", "qmail-send"),
    (
        "exim",
        "this message was created automatically by mail delivery software",
    ),
    ("exim", "the following address(es) failed"),
    (
        "sendmail",
        "the following addresses had permanent fatal errors",
    ),
    ("sendmail", "transcript of session follows"),
    ("postfix", "this is the mail system at host"),
    (
        "postfix",
        "i'm sorry to have to inform you that your message could not",
    ),
    (
        "exchange",
        "delivery has failed to these recipients or groups",
    ),
    ("exchange", "your message to * couldn't be delivered"),
    (
        "exchange",
        "did not reach some or all of the intended recipients",
    ),
    (
        "exchange",
        "the following recipient(s) could not be reached",
    ),
    ("exchange", "diagnostic information for administrators"),
    (
        "gmail",
        "delivery to the following recipient failed permanently",
    ),
    ("gmail", "your message wasn't delivered to"),
    ("gmail", "address not found"),
    (
        "yahoo",
        "sorry, we were unable to deliver your message to the following address",
    ),
    ("kddi", "could not be delivered to the following address"),
    ("kddi", "your mail sent on:"),
    ("kddi", "your mail attempted to be delivered on:"),
    ("kddi", "the user(s) account"),
    ("kddi", "each of the following recipients was rejected"),
    ("kddi", "your message was not delivered within"),
    ("plaintext", "could not be delivered to"),
    ("plaintext", "delivery to the following recipients failed"),
    ("plaintext", "following recipients failed"),
    ("plaintext", "unable to deliver"),
    ("plaintext", "undeliverable"),
    ("plaintext", "permanent error"),
];

/// Lines of `text` about `recipient`: the line naming it and the following
/// lines up to the next address line or blank line (indented continuation
/// lines are kept), whitespace-collapsed.
fn recipient_block(text: &str, recipient: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut collected = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if find_addrs(l).iter().any(|a| a == recipient) {
            let mut buf = vec![l.trim().to_string()];
            let mut j = i + 1;
            let mut blank_run = 0;
            while j < lines.len() && j < i + 30 {
                let n = lines[j];
                if n.trim().is_empty() {
                    if buf.len() == 1 && blank_run == 0 {
                        // one blank line after the address line (Exchange, Gmail)
                        blank_run = 1;
                        j += 1;
                        continue;
                    }
                    let next_indented = lines
                        .get(j + 1)
                        .is_some_and(|x| x.starts_with([' ', '\t']) && !x.trim().is_empty());
                    if next_indented && blank_run == 0 && lines[j - 1].starts_with([' ', '\t']) {
                        blank_run = 1;
                        j += 1;
                        continue;
                    }
                    break;
                }
                blank_run = 0;
                let addrs = find_addrs(n);
                let is_new_rcpt = !addrs.is_empty()
                    && !addrs.iter().any(|a| a == recipient)
                    && looks_like_rcpt_line(n);
                if is_new_rcpt {
                    break;
                }
                buf.push(n.trim().to_string());
                j += 1;
            }
            collected.push(buf.join(" "));
            i = j;
            continue;
        }
        i += 1;
    }
    if collected.is_empty() {
        None
    } else {
        Some(collapse(&collected.join(" ")))
    }
}

/// A line that introduces a recipient (and little else).
fn looks_like_rcpt_line(line: &str) -> bool {
    let t = line.trim();
    let addrs = find_addrs(t);
    if addrs.is_empty() {
        return false;
    }
    let lower = t.to_ascii_lowercase();
    if lower.starts_with('<') {
        return true;
    }
    if lower.starts_with("recipient:")
        || lower.starts_with("original-recipient")
        || lower.starts_with("final-recipient")
        || lower.starts_with("could not be delivered to:")
    {
        return true;
    }
    // "user@example.com", "user@example.com (user@example.com)",
    // "user@example.com on 1/1/2020 ...", "user@example.com:"
    let first = lower.split_whitespace().next().unwrap_or("");
    let first_is_addr = first.contains('@') && find_addrs(first).len() == 1;
    if first_is_addr && first.ends_with(':') {
        // OpenSMTPD / DragonFly style "user@example.com: 550 ..."
        return true;
    }
    let words = lower.split_whitespace().count();
    first_is_addr && (words <= 3 || lower.contains(" on "))
}

/// Recipients named in the error text, in order.
fn text_recipients(err: &str, exclude: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let lines: Vec<&str> = err.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let lower = l.to_ascii_lowercase();
        let mut cands: Vec<String> = Vec::new();
        if looks_like_rcpt_line(l) {
            cands.extend(find_addrs(l).into_iter().take(1));
        }
        for intro in [
            "delivering your mail to",
            "wasn't delivered to",
            "was not delivered to",
            "your message to",
            "delivery to the following recipient",
            "could not be delivered to",
            "couldn't be delivered to",
            "failed to deliver to",
            "delivery has failed to",
            "undeliverable to",
            "message to",
        ] {
            if let Some(p) = lower.find(intro) {
                let mut a = find_addrs(&l[p..]);
                if a.is_empty() {
                    if let Some(n) = lines.get(i + 1) {
                        a = find_addrs(n);
                    }
                    if a.is_empty() {
                        if let Some(n) = lines.get(i + 2) {
                            a = find_addrs(n);
                        }
                    }
                }
                cands.extend(a.into_iter().take(1));
            }
        }
        for c in cands {
            if !exclude.contains(&c) && !out.contains(&c) && !is_system_addr(&c) {
                out.push(c);
            }
        }
    }
    out
}

fn is_system_addr(a: &str) -> bool {
    let local = a.split('@').next().unwrap_or("");
    matches!(
        local,
        "mailer-daemon" | "postmaster" | "mail-daemon" | "mailer_daemon" | "no-reply" | "noreply"
    )
}

fn parse_plain(root: &Part, ctx: &Context, human: &str) -> Vec<BouncedRecipient> {
    let err = error_section(human);
    let norm_err = normalize(err);
    let format = PLAIN_MARKERS
        .iter()
        .find(|(_, m)| wmatch(&norm_err, m))
        .map_or("plaintext", |(f, _)| *f);

    let mut exclude: Vec<String> = Vec::new();
    for a in [
        &ctx.bounce_from,
        &ctx.bounce_envelope_to,
        &ctx.original_from,
        &ctx.original_return_path,
    ]
    .into_iter()
    .flatten()
    {
        exclude.push(a.clone());
    }
    let mut rcpts = text_recipients(err, &exclude);
    if rcpts.is_empty() {
        // Some MTAs bounce to the failed address itself (tests, aliases).
        rcpts = text_recipients(err, &[]);
    }
    if rcpts.is_empty() {
        rcpts = root
            .headers_all("x-failed-recipients")
            .flat_map(find_addrs)
            .collect();
    }
    if rcpts.is_empty() {
        // any address in the error text that is not one of ours
        rcpts = find_addrs(err)
            .into_iter()
            .filter(|a| !exclude.contains(a) && !is_system_addr(a))
            .take(1)
            .collect();
    }
    if rcpts.is_empty() {
        if let Some(t) = ctx.original_to.clone() {
            rcpts.push(t);
        }
    }
    let whole = collapse(err);
    let mut out = Vec::new();
    for r in rcpts {
        let block = recipient_block(err, &r).unwrap_or_default();
        // Exchange repeats the address in "Diagnostic information for administrators".
        let diag = if block.is_empty() {
            whole.clone()
        } else {
            block
        };
        let mut c = classify_reply(0, None, &diag);
        if !c.matched.starts_with("text:") {
            let c2 = classify_reply(c.reply_code.unwrap_or(0), c.status.as_deref(), &whole);
            if c2.matched.starts_with("text:") || c.reason == Reason::Undefined {
                c = c2;
            }
        }
        let status = c
            .status
            .clone()
            .or_else(|| EnhancedStatus::find_in(&whole).map(|s| s.to_string()));
        let code = c.reply_code.or_else(|| find_reply_code(&whole));
        let mut reason = c.reason;
        if reason == Reason::Undefined {
            reason = Reason::OnHold;
        }
        let mut rec = new_record(ctx, r.clone(), format);
        let remote = remote_host_in(&diag).or_else(|| remote_host_in(&whole));
        let cmd = smtp_command(&diag).or_else(|| smtp_command(err));
        reason = after_data(reason, status.as_deref(), cmd.as_deref());
        if reason == Reason::OnHold || reason == Reason::UserUnknown {
            let n = normalize(err);
            if n.contains("googlegroups.com") || n.contains("groups.google.com") {
                // Google Groups: the group does not exist or posting is not allowed
                reason = Reason::Rejected;
            }
        }
        reason = provider_override(
            &r,
            remote.as_deref(),
            status.as_deref(),
            cmd.as_deref(),
            &diag,
            reason,
        );
        set_reason(&mut rec, reason);
        rec.status = status.clone();
        rec.reply_code = code;
        rec.permanent = match (code, status.as_deref().and_then(EnhancedStatus::parse)) {
            (_, Some(s)) if s.class == 5 => true,
            (Some(c), _) if c >= 500 => true,
            (_, Some(_)) | (Some(_), _) => reason == Reason::Expired,
            _ => {
                !matches!(reason, Reason::Expired | Reason::OnHold)
                    || norm_err.contains("permanent")
            }
        };
        rec.remote_host = remote;
        rec.smtp_command = cmd;
        rec.action = Some(if rec.permanent { "failed" } else { "delayed" }.to_string());
        rec.diagnostic = diag;
        out.push(rec);
    }
    out
}
