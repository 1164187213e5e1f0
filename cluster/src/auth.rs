//! Shared-secret authentication of the internode port.
//!
//! Contract: when a cluster secret is set (config `cluster.secret`, or `HATO_CLUSTER_SECRET`
//! for the CLI), every internode RPC (Raft, forwarding, membership, the CLI's reads and
//! writes) carries it in the `x-hato-secret` metadata, and a node refuses requests without
//! the right one (`Unauthenticated`). Without a secret the port is open, as on a private
//! loopback or a firewalled network. The secret is set once per process, before any client
//! or server is built.

use std::sync::OnceLock;

use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

static SECRET: OnceLock<Option<String>> = OnceLock::new();

/// Set this process's cluster secret (empty: none). Only the first call has an effect.
pub fn set_secret(secret: Option<String>) {
    let _ = SECRET.set(secret.filter(|s| !s.is_empty()));
}

fn secret() -> Option<&'static str> {
    SECRET.get().and_then(|s| s.as_deref())
}

/// Adds the secret to outgoing requests.
#[derive(Clone, Copy, Debug, Default)]
pub struct AddSecret;

impl tonic::service::Interceptor for AddSecret {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(s) = secret() {
            let v = MetadataValue::try_from(s)
                .map_err(|_| Status::invalid_argument("cluster secret is not a valid header"))?;
            req.metadata_mut().insert("x-hato-secret", v);
        }
        Ok(req)
    }
}

/// A client connection that authenticates itself.
pub type Conn = InterceptedService<Channel, AddSecret>;

/// Server side: refuse requests without the secret (when one is set).
pub fn check(req: Request<()>) -> Result<Request<()>, Status> {
    let Some(want) = secret() else {
        return Ok(req);
    };
    let got = req
        .metadata()
        .get("x-hato-secret")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if constant_time_eq(got, want.as_bytes()) {
        Ok(req)
    } else {
        Err(Status::unauthenticated(
            "wrong or missing cluster secret (set HATO_CLUSTER_SECRET for the CLI)",
        ))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
