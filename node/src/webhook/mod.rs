//! Webhook dispatch: the leader drains the replicated outbox to each endpoint.
//!
//! Contract:
//! - Only the leader sends. Each endpoint has its own task and its own cursor (the next
//!   outbox sequence number it should get), so a slow or dead endpoint never holds up
//!   another.
//! - A batch is events of one type, up to `batch_max`, sent once the oldest has waited
//!   `batch_ms` (CMC: 1 s or 100 events). After a 2xx the cursor is committed through Raft
//!   (`Command::WebhookProgress`); a new leader continues from the committed cursor. So an
//!   event is never lost; it is sent twice only if a leader dies between the endpoint's 2xx
//!   and the commit, and then with the same `Idempotency-Key`.
//! - A failing batch is retried with exponential backoff (1 s doubling, at most 60 s) for
//!   `retry_for_secs`, then recorded as failed (`hato webhook failures`) and skipped.
//! - Inbound mail (inbound rules) goes through the same outbox, one mail per request.

pub mod http;
pub mod payload;

use std::collections::HashMap;
use std::time::Duration;

use hato_cluster::now_ms;
use hato_cluster::ClusterHandle;
use hato_storage::command::{
    Event, OutboxEvent, WebhookEndpoint, WebhookFailure, WEBHOOK_ENDPOINTS,
};
use hato_storage::Command;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The configured endpoints (local read).
pub fn endpoints(cluster: &ClusterHandle) -> Vec<WebhookEndpoint> {
    cluster
        .reader()
        .setting(WEBHOOK_ENDPOINTS)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default()
}

/// Check an endpoint before storing it: a usable name and URL, known event kinds and
/// formats, and something to send (events or inbound rules).
pub fn validate(ep: &WebhookEndpoint) -> Result<(), String> {
    if ep.name.is_empty() || ep.name.len() > 64 || ep.name.contains(['/', ' ', ':']) {
        return Err(format!(
            "{:?} is not a valid endpoint name (1-64 characters, no spaces, '/' or ':')",
            ep.name
        ));
    }
    http::Url::parse(&ep.url)?;
    for e in &ep.events {
        if !hato_storage::command::EVENT_KINDS.contains(&e.as_str()) {
            return Err(format!(
                "unknown event kind {e:?}; use {}",
                hato_storage::command::EVENT_KINDS.join(",")
            ));
        }
    }
    if !["form", "json", "multipart"].contains(&ep.format.as_str()) {
        return Err("the format must be form, json or multipart".into());
    }
    for r in &ep.inbound {
        if r.filter.trim().is_empty() || r.matches.trim().is_empty() {
            return Err("an inbound rule needs a filter name and an address or domain".into());
        }
        if r.matches.contains(char::is_whitespace) || !r.matches.contains('.') {
            return Err(format!("{:?} is not an address or domain", r.matches));
        }
    }
    if ep.events.is_empty() && ep.inbound.is_empty() {
        return Err("choose at least one event kind or add an inbound rule".into());
    }
    Ok(())
}

/// POST a sample `succeeded` delivery event to `ep` now (not through the outbox); the HTTP
/// status it answered.
pub async fn send_test(ep: &WebhookEndpoint, timeout: Duration) -> Result<u16, String> {
    let url = http::Url::parse(&ep.url)?;
    let now = now_ms();
    let sample = OutboxEvent {
        seq: 0,
        at_ms: now,
        event: Event::Delivery(sample_delivery(now)),
    };
    let req = payload::batch(ep, &[sample], (now / 1000) as i64);
    http::post(&url, &req.headers, &req.content_type, &req.body, timeout).await
}

fn sample_delivery(now: u64) -> hato_storage::command::DeliveryRecord {
    hato_storage::command::DeliveryRecord {
        at_ms: now,
        message: "test".into(),
        recipient: "test@example.com".into(),
        mail_from: "hato@example.com".into(),
        status: "succeeded".into(),
        source_ip: "127.0.0.1".into(),
        subject: "Hato webhook test".into(),
        api_data: Some("test".into()),
        detail: "test event".into(),
        message_id: Some("<test@hato>".into()),
        remote: String::new(),
        reply: "250 2.0.0 Ok".into(),
        egress_ip: "127.0.0.1".into(),
        return_path: "hato@example.com".into(),
        reason: String::new(),
        node: 0,
    }
}

fn is_leader(cluster: &ClusterHandle) -> bool {
    cluster.status().role == "leader"
}

/// Run the dispatcher until `stop`.
pub fn start(cluster: ClusterHandle, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tasks: HashMap<String, (WebhookEndpoint, JoinHandle<()>)> = HashMap::new();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(300)) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            let wanted = if is_leader(&cluster) {
                endpoints(&cluster)
            } else {
                Vec::new()
            };
            tasks.retain(|name, (ep, handle)| {
                let keep =
                    !handle.is_finished() && wanted.iter().any(|w| w == ep && &w.name == name);
                if !keep {
                    handle.abort();
                }
                keep
            });
            for ep in wanted {
                if !tasks.contains_key(&ep.name) {
                    let h = tokio::spawn(endpoint_loop(cluster.clone(), ep.clone()));
                    tasks.insert(ep.name.clone(), (ep, h));
                }
            }
        }
        for (_, (_, h)) in tasks {
            h.abort();
        }
    })
}

/// What to send next for an endpoint.
enum Next {
    /// Nothing for this endpoint; move the cursor to `skip_to` if it advanced.
    Idle { skip_to: Option<u64> },
    /// Not yet: the batch is still filling.
    Wait,
    /// Send these, then move the cursor to `next`.
    Send { events: Vec<OutboxEvent>, next: u64 },
}

/// Choose the next batch from the events at and after the cursor.
fn select(ep: &WebhookEndpoint, evs: Vec<OutboxEvent>, more: bool, now: u64) -> Next {
    let mut batch: Vec<OutboxEvent> = Vec::new();
    let mut next = None;
    for e in evs {
        if !payload::wanted(ep, &e.event) {
            next = Some(e.seq + 1);
            continue;
        }
        let inbound = matches!(e.event, Event::Inbound(_));
        if let Some(first) = batch.first() {
            let same = payload::event_type(&first.event) == payload::event_type(&e.event);
            if inbound || !same || batch.len() >= ep.batch_max.max(1) as usize {
                return Next::Send {
                    events: batch,
                    next: e.seq,
                };
            }
        }
        next = Some(e.seq + 1);
        batch.push(e);
        if inbound {
            let n = next.expect("set");
            return Next::Send {
                events: batch,
                next: n,
            };
        }
    }
    let Some(first) = batch.first() else {
        return Next::Idle { skip_to: next };
    };
    let full = batch.len() >= ep.batch_max.max(1) as usize;
    if !full && !more && now < first.at_ms + ep.batch_ms {
        return Next::Wait;
    }
    Next::Send {
        events: batch,
        next: next.expect("set"),
    }
}

async fn commit(
    cluster: &ClusterHandle,
    ep: &str,
    next_seq: u64,
    failure: Option<WebhookFailure>,
) -> bool {
    for _ in 0..5 {
        if !is_leader(cluster) {
            return false;
        }
        let cmd = Command::WebhookProgress {
            endpoint: ep.to_string(),
            next_seq,
            failure: failure.clone(),
        };
        match cluster.write(cmd).await {
            Ok(_) => return true,
            Err(e) => {
                tracing::warn!(endpoint = %ep, error = %e, "webhook progress not committed");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    false
}

async fn endpoint_loop(cluster: ClusterHandle, ep: WebhookEndpoint) {
    let url = match http::Url::parse(&ep.url) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(endpoint = %ep.name, error = %e, "webhook endpoint URL unusable");
            return;
        }
    };
    const SCAN: usize = 1000;
    loop {
        if !is_leader(&cluster) {
            return;
        }
        let reader = cluster.reader();
        let cursor = reader.webhook_cursor(&ep.name).ok().flatten().unwrap_or(0);
        let evs = reader.events(cursor, SCAN).unwrap_or_default();
        let more = evs.len() == SCAN;
        match select(&ep, evs, more, now_ms()) {
            Next::Idle { skip_to } => {
                if let Some(s) = skip_to.filter(|s| *s > cursor) {
                    commit(&cluster, &ep.name, s, None).await;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Next::Wait => tokio::time::sleep(Duration::from_millis(50)).await,
            Next::Send { events, next } => {
                let failure = deliver(&cluster, &ep, &url, &events).await;
                let Some(failure) = failure else {
                    return; // lost leadership while retrying
                };
                if !commit(&cluster, &ep.name, next, failure).await {
                    return;
                }
            }
        }
    }
}

/// Send one batch until it is accepted (`Some(None)`), given up (`Some(Some(failure))`), or
/// this node stops being the leader (`None`).
async fn deliver(
    cluster: &ClusterHandle,
    ep: &WebhookEndpoint,
    url: &http::Url,
    events: &[OutboxEvent],
) -> Option<Option<WebhookFailure>> {
    let started = now_ms();
    let mut attempts = 0u32;
    loop {
        let unix = (now_ms() / 1000) as i64;
        let req = if matches!(events[0].event, Event::Inbound(_)) {
            payload::inbound(ep, &events[0], unix)?
        } else {
            payload::batch(ep, events, unix)
        };
        attempts += 1;
        let result = http::post(
            url,
            &req.headers,
            &req.content_type,
            &req.body,
            Duration::from_secs(10),
        )
        .await;
        let error = match result {
            Ok(code) if (200..300).contains(&code) => return Some(None),
            Ok(code) => format!("HTTP {code}"),
            Err(e) => e,
        };
        let (first, last) = (events[0].seq, events[events.len() - 1].seq);
        tracing::warn!(endpoint = %ep.name, first, last, attempts, %error, "webhook delivery failed");
        if now_ms() >= started + ep.retry_for_secs * 1000 {
            return Some(Some(WebhookFailure {
                endpoint: ep.name.clone(),
                first_seq: first,
                last_seq: last,
                at_ms: now_ms(),
                attempts,
                error,
            }));
        }
        let backoff = Duration::from_secs(1u64 << attempts.min(6)).min(Duration::from_secs(60));
        let until = tokio::time::Instant::now() + backoff;
        while tokio::time::Instant::now() < until {
            if !is_leader(cluster) {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hato_storage::command::{BlockRecord, DeliveryRecord};

    fn ep(events: &[&str], batch_max: u32) -> WebhookEndpoint {
        serde_json::from_value(serde_json::json!({
            "name": "e", "url": "http://127.0.0.1:1/", "events": events, "batch_max": batch_max
        }))
        .unwrap()
    }

    fn delivery(seq: u64, at_ms: u64, status: &str) -> OutboxEvent {
        OutboxEvent {
            seq,
            at_ms,
            event: Event::Delivery(DeliveryRecord {
                at_ms,
                message: "m".into(),
                recipient: "r@x".into(),
                mail_from: "f@x".into(),
                status: status.into(),
                source_ip: String::new(),
                subject: String::new(),
                api_data: None,
                detail: String::new(),
                message_id: None,
                remote: String::new(),
                reply: String::new(),
                egress_ip: String::new(),
                return_path: String::new(),
                reason: String::new(),
                node: 0,
            }),
        }
    }

    fn block(seq: u64, at_ms: u64) -> OutboxEvent {
        OutboxEvent {
            seq,
            at_ms,
            event: Event::Block {
                blocked: true,
                record: BlockRecord {
                    address: "a@x".into(),
                    reason: "manual".into(),
                    at_ms,
                    code: 10,
                    occurred: 1,
                    effective_at_ms: at_ms,
                    expires_at_ms: None,
                    auto: false,
                },
            },
        }
    }

    #[test]
    fn batches_wait_fill_split_by_type_and_skip_unwanted() {
        let e = ep(&["succeeded", "blocks"], 2);
        // One wanted event younger than batch_ms: wait.
        assert!(matches!(
            select(&e, vec![delivery(5, 1000, "succeeded")], false, 1500),
            Next::Wait
        ));
        // Old enough: send it.
        match select(&e, vec![delivery(5, 1000, "succeeded")], false, 2000) {
            Next::Send { events, next } => assert_eq!((events.len(), next), (1, 6)),
            _ => panic!(),
        }
        // Full at batch_max, even if young; the cursor stops after the second.
        match select(
            &e,
            vec![
                delivery(1, 1000, "succeeded"),
                delivery(2, 1000, "queued"),
                delivery(3, 1000, "succeeded"),
                delivery(4, 1000, "succeeded"),
            ],
            false,
            1000,
        ) {
            Next::Send { events, next } => {
                assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 3]);
                assert_eq!(next, 4);
            }
            _ => panic!(),
        }
        // A different type ends the batch.
        match select(
            &e,
            vec![delivery(1, 0, "succeeded"), block(2, 0)],
            false,
            5000,
        ) {
            Next::Send { events, next } => assert_eq!((events.len(), next), (1, 2)),
            _ => panic!(),
        }
        // Only unwanted events: move past them.
        assert!(matches!(
            select(&e, vec![delivery(7, 0, "queued")], false, 5000),
            Next::Idle { skip_to: Some(8) }
        ));
    }
}
