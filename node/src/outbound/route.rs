//! Where mail for a recipient domain goes: a static route / smart host from the replicated
//! settings, else the domain's MX hosts (RFC 5321 section 5.1), else its A/AAAA address
//! ("implicit MX"). A null MX (RFC 7505) means the domain accepts no mail.
//!
//! Results are cached per domain for a minute so a backlog to one domain costs one lookup.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hato_smtp_client::TlsPolicy;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;

use crate::settings::Route;

/// One host to try, with its addresses in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name (MX exchange or smart host), used for TLS SNI and the log.
    pub name: String,
    pub addrs: Vec<SocketAddr>,
}

/// The resolved destination of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Hosts in preference order.
    pub targets: Vec<Target>,
    pub tls: TlsPolicy,
}

/// Why a domain has no destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// The domain does not exist or publishes no mail host: a permanent failure.
    NoSuchDomain(String),
    /// RFC 7505 null MX: the domain accepts no mail (permanent).
    NullMx,
    /// DNS trouble (timeout, SERVFAIL): try again later.
    Temporary(String),
}

pub struct Router {
    resolver: TokioResolver,
    mx_port: u16,
    cache: Mutex<HashMap<String, Cached>>,
}

/// A lookup result and when it was made.
type Cached = (Instant, Result<Vec<Target>, RouteError>);

const CACHE_FOR: Duration = Duration::from_secs(60);

/// A resolver using `dns_servers`, or the system's configuration when empty.
pub fn resolver(dns_servers: &[SocketAddr]) -> anyhow::Result<TokioResolver> {
    Ok(if dns_servers.is_empty() {
        match TokioResolver::builder_tokio() {
            Ok(b) => b.build()?,
            Err(e) => {
                // No usable /etc/resolv.conf: keep running (smart-host routes still work);
                // MX lookups fail as temporary errors until delivery.dns_servers is set.
                tracing::warn!(error = %e, "no system DNS configuration; set delivery.dns_servers");
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(Vec::new()),
                    TokioRuntimeProvider::default(),
                )
                .build()?
            }
        }
    } else {
        let servers = dns_servers
            .iter()
            .map(|s| {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = s.port();
                NameServerConfig::new(s.ip(), true, vec![udp, tcp])
            })
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
        .build()?
    })
}

impl Router {
    /// A router using `dns_servers` (empty: the system's resolv.conf).
    pub fn new(dns_servers: &[SocketAddr], mx_port: u16) -> anyhow::Result<Self> {
        let resolver = resolver(dns_servers)?;
        Ok(Self {
            resolver,
            mx_port,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Resolve the destination of `domain` under `route`.
    pub async fn resolve(&self, domain: &str, route: &Route) -> Result<Destination, RouteError> {
        let tls = match route.tls.as_deref() {
            Some("required") => TlsPolicy::Required,
            Some("disabled") => TlsPolicy::Disabled,
            _ => TlsPolicy::Opportunistic,
        };
        let targets = if !route.host.is_empty() {
            let port = route.port.unwrap_or(25);
            self.cached(&format!("host:{}:{port}", route.host), || {
                self.host_target(&route.host, port)
            })
            .await?
        } else {
            let domain = domain.to_ascii_lowercase();
            self.cached(&format!("mx:{domain}"), || self.mx_targets(&domain))
                .await?
        };
        Ok(Destination { targets, tls })
    }

    async fn cached<F, Fut>(&self, key: &str, f: F) -> Result<Vec<Target>, RouteError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<Target>, RouteError>>,
    {
        if let Some((at, r)) = self.cache.lock().expect("route cache").get(key) {
            if at.elapsed() < CACHE_FOR {
                return r.clone();
            }
        }
        let r = f().await;
        // Temporary errors are not cached: the next attempt asks again.
        if !matches!(r, Err(RouteError::Temporary(_))) {
            self.cache
                .lock()
                .expect("route cache")
                .insert(key.to_string(), (Instant::now(), r.clone()));
        }
        r
    }

    async fn host_target(&self, host: &str, port: u16) -> Result<Vec<Target>, RouteError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![Target {
                name: host.to_string(),
                addrs: vec![SocketAddr::new(ip, port)],
            }]);
        }
        let addrs = self.addresses(host, port).await?;
        if addrs.is_empty() {
            return Err(RouteError::NoSuchDomain(format!("{host} has no address")));
        }
        Ok(vec![Target {
            name: host.to_string(),
            addrs,
        }])
    }

    async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, RouteError> {
        match self.resolver.lookup_ip(fqdn(host)).await {
            Ok(l) => Ok(l.iter().map(|ip| SocketAddr::new(ip, port)).collect()),
            Err(e) if e.is_nx_domain() || e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(RouteError::Temporary(format!("looking up {host}: {e}"))),
        }
    }

    async fn mx_targets(&self, domain: &str) -> Result<Vec<Target>, RouteError> {
        let mx = match self.resolver.mx_lookup(fqdn(domain)).await {
            Ok(l) => l
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            Err(e) if e.is_nx_domain() => {
                return Err(RouteError::NoSuchDomain(format!(
                    "{domain}: no such domain (NXDOMAIN)"
                )))
            }
            Err(e) if e.is_no_records_found() => Vec::new(),
            Err(e) => return Err(RouteError::Temporary(format!("MX lookup of {domain}: {e}"))),
        };
        let hosts = order_mx(mx)?;
        let hosts = if hosts.is_empty() {
            vec![domain.to_string()] // implicit MX
        } else {
            hosts
        };
        let mut targets = Vec::new();
        let mut last_err = None;
        for h in hosts {
            match self.addresses(&h, self.mx_port).await {
                Ok(addrs) if !addrs.is_empty() => targets.push(Target { name: h, addrs }),
                Ok(_) => {}
                Err(e) => last_err = Some(e),
            }
        }
        if targets.is_empty() {
            return Err(last_err.unwrap_or_else(|| {
                RouteError::NoSuchDomain(format!("{domain}: no mail host has an address"))
            }));
        }
        Ok(targets)
    }
}

fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// MX records `(preference, exchange)` to host names in preference order (ties keep DNS
/// order); a null MX (a single `0 .`) is [`RouteError::NullMx`].
pub fn order_mx(mut mx: Vec<(u16, String)>) -> Result<Vec<String>, RouteError> {
    let is_root = |h: &str| h.is_empty() || h == ".";
    if mx.iter().any(|(_, h)| is_root(h)) {
        return Err(RouteError::NullMx);
    }
    mx.sort_by_key(|(p, _)| *p);
    let mut out: Vec<String> = Vec::new();
    for (_, h) in mx {
        let h = h.trim_end_matches('.').to_ascii_lowercase();
        if !out.contains(&h) {
            out.push(h);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mx_records_are_ordered_by_preference() {
        let got = order_mx(vec![
            (20, "b.mx.example.".into()),
            (10, "A.mx.example.".into()),
            (20, "c.mx.example.".into()),
            (10, "a.mx.example".into()),
        ])
        .unwrap();
        assert_eq!(got, vec!["a.mx.example", "b.mx.example", "c.mx.example"]);
    }

    #[test]
    fn null_mx_means_no_mail() {
        assert_eq!(order_mx(vec![(0, ".".into())]), Err(RouteError::NullMx));
        assert_eq!(order_mx(vec![]), Ok(vec![]));
    }
}
