//! Dashboard data: queue figures, daily statistics, per-minute counts and bounce reasons,
//! read from the counters the state machine keeps (`d/<day>/…` and `m/<minute>/…`), and the
//! SVG charts drawn from them.

use hato_cluster::now_ms;
use hato_console::charts::{self, MinutePoint};
use hato_storage::keys::{day_of, REASON_COUNTER};
use serde_json::{json, Value};

use super::http::{Answer, ApiError, Req};
use super::Console;

const DAY_MS: u64 = 86_400_000;

fn day_row(c: &Console, day: u64) -> Result<Value, ApiError> {
    let r = c.cluster.reader();
    let n = |name: &str| r.stat(day, name).map_err(ApiError::store);
    let (received, succeeded, failed, blocked) =
        (n("received")?, n("succeeded")?, n("failed")?, n("blocked")?);
    let valid = succeeded + failed;
    let error_rate = if valid == 0 {
        0.0
    } else {
        failed as f64 / valid as f64
    };
    let date = chrono::DateTime::from_timestamp_millis((day * DAY_MS) as i64)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    Ok(json!({
        "date": date, "received": received, "succeeded": succeeded, "failed": failed,
        "blocked": blocked, "valid": valid, "deferred": n("deferred")?,
        "error_rate": error_rate,
    }))
}

pub fn summary(c: &Console) -> Result<Answer, ApiError> {
    let r = c.cluster.reader();
    let q = r.queue_stats().map_err(ApiError::store)?;
    let status = c.cluster.status();
    let leased = super::nodes::leases_by_node(c)?.values().sum::<u64>();
    Answer::json(json!({
        "queue": {"pending": q.pending, "oldest_ms": q.oldest_received_ms, "leased": leased},
        "today": day_row(c, day_of(now_ms()))?,
        "node_id": c.cluster.id(),
        "leader_id": status.leader_id,
    }))
}

pub fn daily(c: &Console, req: &Req) -> Result<Answer, ApiError> {
    let days = req.q_num("days")?.unwrap_or(14).clamp(1, 366);
    let today = day_of(now_ms());
    let rows = (0..days)
        .map(|i| day_row(c, today.saturating_sub(i)))
        .collect::<Result<Vec<_>, _>>()?;
    Answer::json(json!({ "days": rows }))
}

/// Per-minute counts of the last `minutes` minutes (including the current one), oldest first.
fn minute_points(c: &Console, minutes: u64) -> Result<Vec<MinutePoint>, ApiError> {
    let now_min = now_ms() / 60_000;
    let from = now_min + 1 - minutes;
    let mut points: Vec<MinutePoint> = (from..=now_min)
        .map(|m| MinutePoint {
            at_ms: m * 60_000,
            ..Default::default()
        })
        .collect();
    let counters = c
        .cluster
        .reader()
        .minute_counters(from, now_min + 1)
        .map_err(ApiError::store)?;
    for (minute, name, v) in counters {
        let Some(p) = points.get_mut((minute - from) as usize) else {
            continue;
        };
        match name.as_str() {
            "queued" => p.queued += v,
            "succeeded" => p.succeeded += v,
            "failed" => p.failed += v,
            "deferred" => p.deferred += v,
            _ => {}
        }
    }
    Ok(points)
}

fn minutes_param(req: &Req) -> Result<u64, ApiError> {
    Ok(req.q_num("minutes")?.unwrap_or(60).clamp(2, 24 * 60))
}

pub fn minutes(c: &Console, req: &Req) -> Result<Answer, ApiError> {
    Answer::json(json!({ "minutes": minute_points(c, minutes_param(req)?)? }))
}

/// Bounce counts per reason over the last `days` days, largest first.
fn reason_counts(c: &Console, days: u64) -> Result<Vec<(String, u64)>, ApiError> {
    let today = day_of(now_ms());
    let mut sum = std::collections::BTreeMap::<String, u64>::new();
    for i in 0..days {
        let counters = c
            .cluster
            .reader()
            .day_counters(today.saturating_sub(i), REASON_COUNTER)
            .map_err(ApiError::store)?;
        for (reason, n) in counters {
            *sum.entry(reason).or_default() += n;
        }
    }
    let mut v: Vec<(String, u64)> = sum.into_iter().filter(|(_, n)| *n > 0).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(v)
}

fn days_param(req: &Req) -> Result<u64, ApiError> {
    Ok(req.q_num("days")?.unwrap_or(7).clamp(1, 366))
}

pub fn reasons(c: &Console, req: &Req) -> Result<Answer, ApiError> {
    let list: Vec<Value> = reason_counts(c, days_param(req)?)?
        .into_iter()
        .map(|(reason, count)| {
            let code = reason
                .parse::<hato_bounce::Reason>()
                .map(|r| r.cmc_code())
                .unwrap_or(if reason == "blocked" { 10 } else { 99 });
            json!({"reason": reason, "code": code, "count": count})
        })
        .collect();
    Answer::json(json!({ "reasons": list }))
}

/// `tz`: the viewer's offset from UTC in minutes east (JavaScript's `-getTimezoneOffset()`).
fn tz_param(req: &Req) -> i32 {
    req.q("tz")
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|m| (-14 * 60..=14 * 60).contains(m))
        .unwrap_or(0)
}

fn svg(body: String) -> Result<Answer, ApiError> {
    Ok(Answer::raw(200, "image/svg+xml", body))
}

pub fn minutes_chart(c: &Console, req: &Req) -> Result<Answer, ApiError> {
    let points = minute_points(c, minutes_param(req)?)?;
    svg(charts::minutes_svg(&points, tz_param(req), (860, 280)))
}

pub fn reasons_chart(c: &Console, req: &Req) -> Result<Answer, ApiError> {
    svg(charts::reasons_svg(
        &reason_counts(c, days_param(req)?)?,
        (520, 280),
    ))
}
