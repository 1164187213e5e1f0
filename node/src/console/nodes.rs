//! The cluster page: every member with its role, term, log and applied index, health and
//! the deliveries it holds leases for; adding and removing nodes.

use std::collections::BTreeMap;
use std::time::Duration;

use hato_cluster::{now_ms, AdminRequest, ClusterError};
use hato_storage::NodeInfo;
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{Answer, ApiError, Req};
use super::session::{audit, Session};
use super::Console;

/// Due entries examined when counting leases.
const LEASE_SCAN_LIMIT: usize = 200_000;

/// Deliveries each node is making now (live leases), by node id.
pub fn leases_by_node(c: &Console) -> Result<BTreeMap<u64, u64>, ApiError> {
    let now = now_ms();
    let horizon = now + c.lease.as_millis() as u64 + 60_000;
    c.cluster
        .reader()
        .leases_by_node(now, horizon, LEASE_SCAN_LIMIT)
        .map_err(ApiError::store)
}

pub async fn overview(c: &Console) -> Result<Answer, ApiError> {
    let me = c.cluster.status();
    let leases = super::scan(|| leases_by_node(c))?;
    // Ask every other member for its own view, concurrently, briefly.
    let mut asks = Vec::new();
    for (id, info) in &me.nodes {
        if *id == me.id {
            continue;
        }
        let (id, addr) = (*id, info.raft_addr.clone());
        asks.push(tokio::spawn(async move {
            let r = hato_cluster::handle::remote::status(&addr, Duration::from_millis(1500)).await;
            (id, r.ok())
        }));
    }
    let mut others = BTreeMap::new();
    for a in asks {
        if let Ok((id, st)) = a.await {
            others.insert(id, st);
        }
    }
    let nodes: Vec<Value> = me
        .nodes
        .iter()
        .map(|(id, info)| {
            let st = if *id == me.id {
                Some(me.clone())
            } else {
                others.get(id).cloned().flatten()
            };
            json!({
                "id": id,
                "raft_addr": info.raft_addr,
                "http_addr": info.http_addr,
                "voter": me.voters.contains(id),
                "health": if st.is_some() { "up" } else { "down" },
                "role": st.as_ref().map(|s| s.role.clone()),
                "term": st.as_ref().map(|s| s.term),
                "last_log_index": st.as_ref().and_then(|s| s.last_log_index),
                "last_applied_index": st.as_ref().and_then(|s| s.last_applied_index),
                "ready": st.as_ref().map(|s| s.ready),
                "leased": leases.get(id).copied().unwrap_or(0),
            })
        })
        .collect();
    Answer::json(json!({
        "this_id": me.id, "leader_id": me.leader_id, "term": me.term, "nodes": nodes,
    }))
}

#[derive(Deserialize)]
struct AddForm {
    id: Value,
    raft_addr: String,
    http_addr: String,
}

fn check_addr(field: &str, a: &str) -> Result<String, ApiError> {
    let a = a.trim();
    let ok = matches!(a.rsplit_once(':'), Some((h, p)) if !h.is_empty()
        && !h.contains(char::is_whitespace) && p.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(a.to_string())
    } else {
        Err(ApiError::field(
            400,
            field,
            format!("{a:?} is not HOST:PORT"),
        ))
    }
}

fn parse_id(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|id| *id > 0)
}

fn admin_error(e: ClusterError) -> ApiError {
    match e {
        ClusterError::Invalid(m) => ApiError::new(400, m),
        other => ApiError::cluster(other),
    }
}

pub async fn add(c: &Console, req: &Req, s: &Session) -> Result<Answer, ApiError> {
    let f: AddForm = req.json()?;
    let id = parse_id(&f.id)
        .ok_or_else(|| ApiError::field(400, "id", "the node id must be a positive number"))?;
    let node = NodeInfo {
        raft_addr: check_addr("raft_addr", &f.raft_addr)?,
        http_addr: check_addr("http_addr", &f.http_addr)?,
    };
    let detail = format!("node {id} at {}", node.raft_addr);
    // Only a running node with that id is added: adding an unreachable one would leave a
    // learner in the membership that never catches up.
    match hato_cluster::handle::remote::status(&node.raft_addr, Duration::from_secs(3)).await {
        Ok(st) if st.id == id => {}
        Ok(st) => {
            return Err(ApiError::field(
                400,
                "id",
                format!("the node at {} has id {}, not {id}", node.raft_addr, st.id),
            ))
        }
        Err(e) => {
            return Err(ApiError::field(
                400,
                "raft_addr",
                format!(
                    "no Hato node answers at {} ({e}); start it first (hato serve with an \
                     empty data_dir and this node_id)",
                    node.raft_addr
                ),
            ))
        }
    }
    let r = c.cluster.admin(AdminRequest::Join { id, node }).await;
    audit(c, &s.user, req, "add node", &detail, r.is_ok()).await;
    r.map_err(admin_error)?;
    Answer::ok()
}

pub async fn remove(c: &Console, req: &Req, s: &Session, id: &str) -> Result<Answer, ApiError> {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::new(400, format!("{id:?} is not a node id")))?;
    let r = c.cluster.admin(AdminRequest::Remove { id }).await;
    audit(
        c,
        &s.user,
        req,
        "remove node",
        &format!("node {id}"),
        r.is_ok(),
    )
    .await;
    r.map_err(admin_error)?;
    Answer::ok()
}
