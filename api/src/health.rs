//! Health, readiness and status endpoints (`/health` and `/status` include queue size and age).

use std::convert::Infallible;

use hato_cluster::ClusterHandle;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

pub fn routes(
    cluster: ClusterHandle,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let with = warp::any().map(move || cluster.clone());
    let health = warp::path!("health")
        .and(warp::get())
        .and(with.clone())
        .map(|c: ClusterHandle| {
            let mut st = serde_json::to_value(c.status()).unwrap_or_default();
            st["status"] = "ok".into();
            st["queue"] = queue(&c);
            warp::reply::json(&st)
        });
    let ready = warp::path!("ready")
        .and(warp::get())
        .and(with.clone())
        .map(|c: ClusterHandle| {
            let st = c.status();
            let code = if st.ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            warp::reply::with_status(warp::reply::json(&st), code)
        });
    let status = warp::path!("status")
        .and(warp::get())
        .and(with)
        .map(|c: ClusterHandle| {
            let mut st = serde_json::to_value(c.status()).unwrap_or_default();
            st["queue"] = queue(&c);
            warp::reply::json(&st)
        });
    health.or(ready).or(status)
}

/// Queue size and age on this node's copy of the state (for monitoring).
fn queue(c: &ClusterHandle) -> serde_json::Value {
    match c.reader().queue_stats() {
        Ok(q) => {
            let now = hato_cluster::now_ms();
            serde_json::json!({
                "pending": q.pending,
                "oldest_received_ms": q.oldest_received_ms,
                "oldest_age_secs": q.oldest_received_ms.map(|t| now.saturating_sub(t) / 1000),
                "next_due_ms": q.next_due_ms,
            })
        }
        Err(e) => serde_json::json!({"error": e.to_string()}),
    }
}

/// Unknown paths and methods get a JSON error, not an empty body; an oversized API request
/// gets the CMC error shape.
pub async fn not_found(r: Rejection) -> Result<warp::reply::Response, Infallible> {
    if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        return Ok(crate::cmc::too_large().into_response());
    }
    let (code, msg) = if r.is_not_found() {
        (StatusCode::NOT_FOUND, "not found")
    } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
    } else {
        (StatusCode::BAD_REQUEST, "bad request")
    };
    Ok(
        warp::reply::with_status(warp::reply::json(&serde_json::json!({"error": msg})), code)
            .into_response(),
    )
}
