//! Hato's HTTP surface, served by every node.
//!
//! Contract: handlers never write storage; they read through a `ClusterHandle` and propose
//! commands through it. Currently served:
//! - `GET /health`: liveness. 200 with this node's [`NodeStatus`] as long as the process runs.
//! - `GET /ready`: readiness for traffic. 200 when the node is a member and knows a leader,
//!   503 otherwise (load balancers should use this one).
//! - `GET /status`: the same status document, always 200.
//! - The Customers Mail Cloud v2 API ([`cmc`]): `POST /api/v2/emails/{send,bulk}.{json,xml}`
//!   and `POST /transaction/v2/{deliveries,bounces,blocks,statistics}/{list,cancel}.{json,xml}`.
//!
//! [`NodeStatus`]: hato_cluster::NodeStatus

pub mod cmc;
pub mod health;

use std::future::Future;
use std::sync::Arc;

use hato_cluster::ClusterHandle;
use tokio::net::TcpListener;
use warp::Filter;

/// All routes of the HTTP surface.
pub fn routes(
    cluster: ClusterHandle,
    mailer: Arc<dyn cmc::Mailer>,
) -> impl Filter<Extract = (impl warp::Reply,), Error = std::convert::Infallible> + Clone {
    health::routes(cluster.clone())
        .or(cmc::routes(cluster, mailer))
        .recover(health::not_found)
}

/// Serve HTTP on `listener` until `shutdown` resolves.
pub async fn serve(
    cluster: ClusterHandle,
    mailer: Arc<dyn cmc::Mailer>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    warp::serve(routes(cluster, mailer))
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
}
