//! Health, readiness and status endpoints.

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
        .map(|c: ClusterHandle| warp::reply::json(&c.status()));
    health.or(ready).or(status)
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
