//! Webhook request bodies in the CMC v2 format, and the headers Hato adds.
//!
//! One request carries events of one `event_type` (`deliveries`, `bounces`, `blocks`):
//! form-encoded `server_composition`, `event_type`, `event` (a JSON string), and `api_key`
//! when the endpoint authenticates that way, or the same as one JSON object. Beyond CMC every
//! request carries `Idempotency-Key` (endpoint and event sequence range: a retry or a new
//! leader resending a batch sends the same key) and `X-Hato-Signature: t=<unix>,v1=<hex>`,
//! an HMAC-SHA256 of `<t>.<body>` per configured secret.

use base64::Engine;
use hato_storage::command::{Event, OutboxEvent, WebhookAuth, WebhookEndpoint};
use serde_json::{json, Value};

/// A ready-to-send request.
#[derive(Debug, Clone)]
pub struct Request {
    pub content_type: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// The CMC `event_type` of an event.
pub fn event_type(e: &Event) -> &'static str {
    match e {
        Event::Delivery(_) => "deliveries",
        Event::Bounce(_) => "bounces",
        Event::Block { .. } => "blocks",
        Event::Inbound(_) => "inbound",
    }
}

/// Whether `ep` wants `e`.
pub fn wanted(ep: &WebhookEndpoint, e: &Event) -> bool {
    match e {
        Event::Inbound(m) => m.endpoint == ep.name,
        other => ep.events.iter().any(|k| k == other.kind()),
    }
}

fn record(e: &Event) -> Value {
    match e {
        Event::Delivery(r) => hato_api::cmc::delivery_record(r.clone())
            .map(|r| serde_json::to_value(r).unwrap_or_default())
            .unwrap_or_default(),
        Event::Bounce(b) => {
            serde_json::to_value(hato_api::cmc::bounce_record(b.clone())).unwrap_or_default()
        }
        Event::Block { blocked, record } => {
            let mut v =
                serde_json::to_value(hato_api::cmc::block_record(record)).unwrap_or_default();
            v["operation"] = if *blocked { "block" } else { "unblock" }.into();
            v
        }
        Event::Inbound(_) => Value::Null,
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `t=<unix>,v1=<hex>[,v1=<hex>]`: HMAC-SHA256 over `<t>.<body>` with each secret.
pub fn signature(secrets: &[String], unix: i64, body: &[u8]) -> String {
    let mut out = format!("t={unix}");
    for s in secrets {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, s.as_bytes());
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
        ctx.update(unix.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        let tag = ctx.sign();
        out.push_str(",v1=");
        for b in tag.as_ref() {
            out.push_str(&format!("{b:02x}"));
        }
    }
    out
}

fn common_headers(
    ep: &WebhookEndpoint,
    first: u64,
    last: u64,
    unix: i64,
    body: &[u8],
) -> Vec<(String, String)> {
    let mut h = vec![
        (
            "Idempotency-Key".to_string(),
            format!("{}:{first}-{last}", ep.name),
        ),
        ("X-Hato-Event-Seq".to_string(), format!("{first}-{last}")),
    ];
    if !ep.secrets.is_empty() {
        h.push((
            "X-Hato-Signature".to_string(),
            signature(&ep.secrets, unix, body),
        ));
    }
    match &ep.auth {
        Some(WebhookAuth::Basic { user, password }) => h.push((
            "Authorization".into(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ),
        )),
        Some(WebhookAuth::Bearer(t)) => h.push(("Authorization".into(), format!("Bearer {t}"))),
        _ => {}
    }
    h
}

fn api_key(ep: &WebhookEndpoint) -> Option<&str> {
    match &ep.auth {
        Some(WebhookAuth::ApiKey(k)) => Some(k),
        _ => None,
    }
}

/// The request for a batch of events of one type (not inbound).
pub fn batch(ep: &WebhookEndpoint, events: &[OutboxEvent], unix: i64) -> Request {
    let kind = events
        .first()
        .map(|e| event_type(&e.event))
        .unwrap_or("deliveries");
    let records: Vec<Value> = events.iter().map(|e| record(&e.event)).collect();
    let event = json!({ kind: records });
    let (content_type, body) = if ep.format == "json" {
        let mut doc = json!({"server_composition": ep.server_composition, "event_type": kind, "event": event});
        if let Some(k) = api_key(ep) {
            doc["api_key"] = k.into();
        }
        ("application/json".to_string(), doc.to_string().into_bytes())
    } else {
        let mut form = String::new();
        if let Some(k) = api_key(ep) {
            form.push_str(&format!("api_key={}&", form_encode(k)));
        }
        form.push_str(&format!(
            "server_composition={}&event_type={kind}&event={}",
            form_encode(&ep.server_composition),
            form_encode(&event.to_string())
        ));
        (
            "application/x-www-form-urlencoded".to_string(),
            form.into_bytes(),
        )
    };
    let first = events.first().map_or(0, |e| e.seq);
    let last = events.last().map_or(0, |e| e.seq);
    let headers = common_headers(ep, first, last, unix, &body);
    Request {
        content_type,
        body,
        headers,
    }
}

/// The request for one inbound mail.
pub fn inbound(ep: &WebhookEndpoint, ev: &OutboxEvent, unix: i64) -> Option<Request> {
    let Event::Inbound(m) = &ev.event else {
        return None;
    };
    let mail = hato_inbound::parse(&m.raw, &m.filter, &m.envelope_from, &m.envelope_to);
    let enc = if ep.format == "multipart" {
        hato_inbound::Encoding::Multipart
    } else {
        hato_inbound::Encoding::Json
    };
    let boundary = format!("hato-{}-{}", m.id, ev.seq);
    let p = hato_inbound::encode(&mail, &ep.server_composition, api_key(ep), enc, &boundary);
    let headers = common_headers(ep, ev.seq, ev.seq, unix, &p.body);
    Some(Request {
        content_type: p.content_type,
        body: p.body,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 style check against an independently computed value:
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
        let sig = signature(&["key".into()], 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            sig,
            "t=1700000000,v1=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
        );
        let two = signature(&["key".into(), "new".into()], 1_700_000_000, b"x");
        assert_eq!(two.matches(",v1=").count(), 2);
    }

    #[test]
    fn form_encoding() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
