//! The delivery log search, message detail, bounces and the block list.
//!
//! Searches walk the time-ordered records newest first between `from` and `to` and stop after
//! `limit` matches or [`SCAN_LIMIT`] records (then `truncated` is set: narrow the range).

use hato_cluster::now_ms;
use hato_storage::command::{BlockRecord, DeliveryRecord};
use hato_storage::{Command, CommandResult, Order};
use serde::Deserialize;
use serde_json::json;

use super::http::{Answer, ApiError, Req};
use super::session::{audit, Session};
use super::Console;

/// Records examined per search at most.
const SCAN_LIMIT: usize = 500_000;
const DEFAULT_RANGE_MS: u64 = 7 * 86_400_000;

/// A search's time range and limit.
struct Range {
    from: u64,
    to: u64,
    limit: usize,
}

fn range(req: &Req) -> Result<Range, ApiError> {
    let to = req.q_num("to")?.unwrap_or(now_ms() + 60_000);
    let from = req
        .q_num("from")?
        .unwrap_or(to.saturating_sub(DEFAULT_RANGE_MS));
    if from > to {
        return Err(ApiError::field(
            400,
            "from",
            "the start of the range is after its end",
        ));
    }
    let limit = req.q_num("limit")?.unwrap_or(100).clamp(1, 1000) as usize;
    Ok(Range { from, to, limit })
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.to_ascii_lowercase()
        .contains(&needle.trim().to_ascii_lowercase())
}

const STATUSES: [&str; 5] = ["queued", "succeeded", "failed", "deferred", "blocked"];

pub fn deliveries(c: &Console, req: &Req) -> Result<Answer, ApiError> {
    let r = range(req)?;
    let status = req.q("status");
    if let Some(s) = status {
        if !STATUSES.contains(&s) {
            return Err(ApiError::field(
                400,
                "status",
                format!("status must be one of {}", STATUSES.join(", ")),
            ));
        }
    }
    let (sender, recipient) = (req.q("sender"), req.q("recipient"));
    let (api_data, message_id) = (req.q("api_data"), req.q("message_id").map(str::trim));
    let matches = |d: &DeliveryRecord| {
        status.is_none_or(|s| d.status == s)
            && sender.is_none_or(|s| contains_ci(&d.mail_from, s))
            && recipient.is_none_or(|s| contains_ci(&d.recipient, s))
            && api_data.is_none_or(|a| d.api_data.as_deref() == Some(a))
            && message_id.is_none_or(|m| {
                d.message == m
                    || d.message_id
                        .as_deref()
                        .is_some_and(|h| h.trim_matches(['<', '>']) == m.trim_matches(['<', '>']))
            })
    };
    // One more than asked for tells whether there are more.
    let (mut items, mut scanned) = (Vec::new(), 0usize);
    c.cluster
        .reader()
        .for_each_delivery(Order::NewestFirst, r.from, r.to, |d| {
            scanned += 1;
            if matches(&d) {
                items.push(d);
            }
            items.len() <= r.limit && scanned < SCAN_LIMIT
        })
        .map_err(ApiError::store)?;
    let truncated = scanned >= SCAN_LIMIT || items.len() > r.limit;
    items.truncate(r.limit);
    Answer::json(json!({ "items": items, "truncated": truncated }))
}

pub fn message(c: &Console, id: &str) -> Result<Answer, ApiError> {
    let reader = c.cluster.reader();
    let Some(meta) = reader.message(id).map_err(ApiError::store)? else {
        return Err(ApiError::new(404, format!("no message {id:?}")));
    };
    let work: Vec<_> = reader
        .work_items(id)
        .map_err(ApiError::store)?
        .into_iter()
        .map(|(i, w)| {
            let address = meta
                .recipients
                .get(i as usize)
                .map(|r| r.address.clone())
                .unwrap_or_default();
            json!({
                "index": i, "address": address, "next_at_ms": w.next_at_ms,
                "attempts": w.attempts, "lease": w.lease, "last_reply": w.last_reply,
            })
        })
        .collect();
    let (mut log, mut scanned) = (Vec::new(), 0usize);
    reader
        .for_each_delivery(Order::OldestFirst, meta.received_ms, u64::MAX, |d| {
            scanned += 1;
            if d.message == meta.id {
                log.push(d);
            }
            scanned < SCAN_LIMIT
        })
        .map_err(ApiError::store)?;
    let mut meta_json = serde_json::to_value(&meta).expect("message meta");
    meta_json["recipients"] = meta
        .recipients
        .iter()
        .map(|r| json!({"address": r.address, "status": r.status.as_str()}))
        .collect();
    Answer::json(json!({ "meta": meta_json, "work": work, "log": log }))
}

pub fn bounces(c: &Console, req: &Req) -> Result<Answer, ApiError> {
    let r = range(req)?;
    let (recipient, reason) = (req.q("recipient"), req.q("reason"));
    let (mut items, mut scanned) = (Vec::new(), 0usize);
    c.cluster
        .reader()
        .for_each_bounce(Order::NewestFirst, r.from, r.to, |b| {
            scanned += 1;
            if recipient.is_none_or(|s| contains_ci(&b.recipient, s))
                && reason.is_none_or(|s| b.reason == s)
            {
                items.push(b);
            }
            items.len() <= r.limit && scanned < SCAN_LIMIT
        })
        .map_err(ApiError::store)?;
    let truncated = scanned >= SCAN_LIMIT || items.len() > r.limit;
    items.truncate(r.limit);
    Answer::json(json!({ "items": items, "truncated": truncated }))
}

pub fn blocks(c: &Console, req: &Req) -> Result<Answer, ApiError> {
    let now = now_ms();
    let q = req.q("q");
    let mut list = c.cluster.reader().blocks().map_err(ApiError::store)?;
    list.retain(|b| q.is_none_or(|q| contains_ci(&b.address, q)));
    list.sort_by_key(|b| std::cmp::Reverse(b.at_ms));
    let items: Vec<_> = list
        .iter()
        .map(|b| {
            let mut v = serde_json::to_value(b).expect("block record");
            v["active"] = json!(b.active_at(now));
            v
        })
        .collect();
    Answer::json(json!({ "items": items }))
}

/// Whether `a` looks like an e-mail address (one `@`, a dotted domain, no spaces).
pub fn check_address(a: &str) -> Result<String, ApiError> {
    let a = a.trim();
    let ok = a.len() <= 254
        && !a.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(a.rsplit_once('@'), Some((l, d)) if !l.is_empty() && !l.contains('@')
            && d.contains('.') && !d.starts_with('.') && !d.ends_with('.'));
    if ok {
        Ok(a.to_string())
    } else {
        Err(ApiError::field(
            400,
            "address",
            format!("{a:?} is not an e-mail address"),
        ))
    }
}

#[derive(Deserialize)]
struct BlockForm {
    address: String,
    #[serde(default)]
    reason: String,
}

pub async fn block(c: &Console, req: &Req, s: &Session) -> Result<Answer, ApiError> {
    let f: BlockForm = req.json()?;
    let address = check_address(&f.address)?;
    let reason = if f.reason.trim().is_empty() {
        "manual".to_string()
    } else {
        f.reason.trim().chars().take(200).collect()
    };
    c.write(Command::Block {
        address: address.clone(),
        reason,
        at_ms: now_ms(),
    })
    .await?;
    audit(c, &s.user, req, "block", &address, true).await;
    Answer::ok()
}

pub async fn unblock(
    c: &Console,
    req: &Req,
    s: &Session,
    address: &str,
) -> Result<Answer, ApiError> {
    let r = c
        .write(Command::Unblock {
            address: address.to_string(),
        })
        .await?;
    if r == CommandResult::Changed(false) {
        return Err(ApiError::new(
            404,
            format!("{address} is not on the block list"),
        ));
    }
    audit(c, &s.user, req, "unblock", address, true).await;
    Answer::ok()
}

pub fn blocks_csv(c: &Console) -> Result<Answer, ApiError> {
    let list = c.cluster.reader().blocks().map_err(ApiError::store)?;
    Ok(Answer::raw(
        200,
        "text/csv; charset=utf-8",
        blocks_to_csv(&list, now_ms(), false),
    )
    .with_header(
        "content-disposition",
        "attachment; filename=\"hato-blocks.csv\"".into(),
    ))
}

/// The block list as CSV (RFC 4180), as exported by the console and `hato blocks export`;
/// blocks whose watch period has ended are left out unless `expired`.
pub fn blocks_to_csv(list: &[BlockRecord], now: u64, expired: bool) -> String {
    let mut out = String::from("address,reason,code,occurred,created,effective,expires,auto\n");
    for b in list {
        if !expired && b.expires_at_ms.is_some_and(|e| e <= now) {
            continue;
        }
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            csv(&b.address),
            csv(&b.reason),
            b.code,
            b.occurred,
            rfc3339(b.at_ms),
            rfc3339(b.effective_at_ms),
            b.expires_at_ms.map(rfc3339).unwrap_or_default(),
            b.auto
        ));
    }
    out
}

/// A CSV field, quoted when needed (RFC 4180); a leading `=`, `+`, `-` or `@` is prefixed
/// with `'` so spreadsheets do not run it as a formula.
fn csv(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn rfc3339(ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv("a@b.example"), "a@b.example");
        assert_eq!(csv("x,y"), "\"x,y\"");
        assert_eq!(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv("=cmd()"), "'=cmd()");
    }

    #[test]
    fn addresses() {
        assert!(check_address("a@b.example").is_ok());
        for bad in [
            "not-an-address",
            "a@b",
            "a b@c.example",
            "@c.example",
            "a@@c.example",
        ] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }
}
