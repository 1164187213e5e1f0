//! Hato's HTTP surface, served by every node.
//!
//! Contract: handlers never write storage; they read through a `ClusterHandle` and propose
//! commands through it. Currently served:
//! - `GET /health`: liveness. 200 with this node's [`NodeStatus`] as long as the process runs.
//! - `GET /ready`: readiness for traffic. 200 when the node is a member and knows a leader,
//!   503 otherwise (load balancers should use this one).
//! - `GET /status`: the same status document, always 200.
//!
//! [`NodeStatus`]: hato_cluster::NodeStatus

pub mod health;

use std::future::Future;

use hato_cluster::ClusterHandle;
use tokio::net::TcpListener;
use warp::Filter;

/// All routes of the HTTP surface.
pub fn routes(
    cluster: ClusterHandle,
) -> impl Filter<Extract = (impl warp::Reply,), Error = std::convert::Infallible> + Clone {
    health::routes(cluster).recover(health::not_found)
}

/// Serve HTTP on `listener` until `shutdown` resolves.
pub async fn serve(
    cluster: ClusterHandle,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    warp::serve(routes(cluster))
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}
