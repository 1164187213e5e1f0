//! Typed access to the cluster-wide settings that the mail pipeline reads.
//!
//! Settings are replicated key/value pairs (JSON values) written with `Command::PutSetting`.
//! Readers here use the local state machine: a change made on another node is visible after
//! the replication delay (milliseconds). Keys:
//! - `smtp/credential/<user>`: `{"hash": "<pbkdf2 hash>"}`, an SMTP AUTH login.
//! - `smtp/allowed_ip/<network>`: `{}`, one key per client network (CIDR) allowed to relay
//!   without AUTH (one key each, so concurrent changes never overwrite one another).
//! - `tls/self_signed`: `{"cert_pem": ..., "key_pem": ...}`, the certificate every node presents
//!   when no certificate files are configured.
//! - `domain/<domain>`: a sending domain with its DKIM key ([`hato_dkim::DkimKey`] as JSON).
//!   Mail whose From domain is listed is signed on acceptance.
//! - `route/<domain>` (or `route/*` for every domain): [`Route`], a static route / smart host
//!   and per-destination limits.
//! - `delivery/bounce_domain`: `"bounces.example.com"`, the domain of VERP return paths.
//! - `node/<id>/egress`: `["192.0.2.10"]`, the addresses a node sends from (for SPF).

use std::net::IpAddr;
use std::num::NonZeroU32;

use hato_storage::ReadView;
use serde::{Deserialize, Serialize};

pub const ALLOWED_IP_PREFIX: &str = "smtp/allowed_ip/";
pub const CREDENTIAL_PREFIX: &str = "smtp/credential/";
pub const TLS_SELF_SIGNED: &str = "tls/self_signed";
pub const DOMAIN_PREFIX: &str = "domain/";
pub const ROUTE_PREFIX: &str = "route/";
pub const BOUNCE_DOMAIN: &str = "delivery/bounce_domain";
/// `api/user/<name>`: `{"hash": ...}`, an HTTP API user and its hashed key.
pub const API_USER_PREFIX: &str = "api/user/";

/// Normalise and check a domain name (lower case, no trailing dot, LDH labels).
pub fn check_domain(d: &str) -> Result<String, String> {
    let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = d.contains('.')
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if ok {
        Ok(d)
    } else {
        Err(format!(
            "{d:?} is not a domain name (for example mail.example.com)"
        ))
    }
}

/// A DNS record to publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: String,
}

/// The records to publish for a sending domain: its DKIM key, and SPF listing the cluster's
/// egress addresses.
pub fn dns_records(key: &hato_dkim::DkimKey, egress: &[IpAddr]) -> Vec<DnsRecord> {
    vec![
        DnsRecord {
            name: key.dns_name(),
            kind: "TXT",
            value: key.dns_txt(),
        },
        DnsRecord {
            name: key.domain.clone(),
            kind: "TXT",
            value: hato_dkim::spf_txt(egress),
        },
    ]
}

/// Every node's egress addresses (see [`egress_key`]), without repeats.
pub fn egress_ips(settings: &[(String, String)]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for (k, v) in settings {
        if k.starts_with("node/") && k.ends_with("/egress") {
            for ip in serde_json::from_str::<Vec<IpAddr>>(v).unwrap_or_default() {
                if !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
    }
    out
}

/// The setting key of a node's egress addresses.
pub fn egress_key(node: u64) -> String {
    format!("node/{node}/egress")
}

/// How mail for a domain leaves the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Smart host (name or IP); empty: look up the domain's MX.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// Port of the smart host (default 25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `opportunistic` (default), `required` or `disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// Concurrent transactions to this destination (default: delivery.max_connections_per_domain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Messages per minute to this destination (default: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_minute: Option<u32>,
}

impl Route {
    /// Check values before storing.
    pub fn validate(&self) -> Result<(), String> {
        if self.host.contains(char::is_whitespace) {
            return Err(format!("host {:?} must be a host name or IP", self.host));
        }
        if self.port == Some(0) {
            return Err("port must be 1-65535".into());
        }
        if let Some(t) = &self.tls {
            if !["opportunistic", "required", "disabled"].contains(&t.as_str()) {
                return Err(format!(
                    "tls {t:?} must be opportunistic, required or disabled"
                ));
            }
        }
        if self.max_connections == Some(0) || self.max_per_minute == Some(0) {
            return Err("limits must be positive".into());
        }
        Ok(())
    }
}

/// The route for `domain`: its own, else the `*` route, else the default (MX lookup).
pub fn route_for(r: &ReadView, domain: &str) -> Route {
    let domain = domain.to_ascii_lowercase();
    for key in [
        format!("{ROUTE_PREFIX}{domain}"),
        format!("{ROUTE_PREFIX}*"),
    ] {
        if let Ok(Some(v)) = r.setting(&key) {
            if let Ok(route) = serde_json::from_str(&v) {
                return route;
            }
            tracing::warn!(%key, "ignoring an unreadable route setting");
        }
    }
    Route::default()
}

/// The DKIM key of a sending domain.
pub fn sending_domain(r: &ReadView, domain: &str) -> Option<hato_dkim::DkimKey> {
    let v = r
        .setting(&format!("{DOMAIN_PREFIX}{}", domain.to_ascii_lowercase()))
        .ok()??;
    serde_json::from_str(&v).ok()
}

/// The bounce domain for VERP return paths, if configured.
pub fn bounce_domain(r: &ReadView) -> Option<String> {
    let v = r.setting(BOUNCE_DOMAIN).ok()??;
    serde_json::from_str::<String>(&v)
        .ok()
        .filter(|d| !d.is_empty())
}

const PBKDF2_ITERATIONS: u32 = 100_000;

/// An IPv4/IPv6 network in CIDR notation (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR network"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0..={max}"))?,
        };
        Ok(Cidr { net, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

impl Cidr {
    /// Whether `ip` is inside the network (IPv4-mapped IPv6 addresses match IPv4 networks).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The relay allow-list.
pub fn allowed_ips(r: &ReadView) -> Vec<Cidr> {
    r.settings_with_prefix(ALLOWED_IP_PREFIX)
        .unwrap_or_default()
        .iter()
        .filter_map(|(k, _)| k[ALLOWED_IP_PREFIX.len()..].parse().ok())
        .collect()
}

/// A stored SMTP credential.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Credential {
    pub hash: String,
}

/// Hash a password for storage: `pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>`.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).expect("system randomness");
    let mut out = [0u8; 32];
    let iters = NonZeroU32::new(PBKDF2_ITERATIONS).expect("non-zero");
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        iters,
        &salt,
        password.as_bytes(),
        &mut out,
    );
    format!(
        "pbkdf2-sha256${PBKDF2_ITERATIONS}${}${}",
        hex(&salt),
        hex(&out)
    )
}

/// Check a password against a stored hash (constant time in the hash comparison).
pub fn verify_password(stored: &str, password: &str) -> bool {
    let parts: Vec<&str> = stored.split('$').collect();
    let [scheme, iters, salt, hash] = parts[..] else {
        return false;
    };
    if scheme != "pbkdf2-sha256" {
        return false;
    }
    let (Some(iters), Some(salt), Some(hash)) = (
        iters.parse::<u32>().ok().and_then(NonZeroU32::new),
        unhex(salt),
        unhex(hash),
    ) else {
        return false;
    };
    aws_lc_rs::pbkdf2::verify(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        iters,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

/// Check an SMTP login against the replicated credentials.
pub fn check_smtp_login(r: &ReadView, user: &str, password: &str) -> bool {
    check_credential(r, &format!("{CREDENTIAL_PREFIX}{user}"), password)
}

/// Check an HTTP API user's key (same hashing and timing as SMTP logins).
pub fn check_api_key(r: &ReadView, user: &str, key: &str) -> bool {
    check_credential(r, &format!("{API_USER_PREFIX}{user}"), key)
}

/// Check `secret` against the hashed credential stored under setting `key`.
fn check_credential(r: &ReadView, key: &str, secret: &str) -> bool {
    let Ok(Some(v)) = r.setting(key) else {
        // Spend the same time as a real check so user names cannot be probed by timing.
        let _ = verify_password(DUMMY_HASH, secret);
        return false;
    };
    match serde_json::from_str::<Credential>(&v) {
        Ok(c) => verify_password(&c.hash, secret),
        Err(_) => false,
    }
}

const DUMMY_HASH: &str = "pbkdf2-sha256$100000$00000000000000000000000000000000$0000000000000000000000000000000000000000000000000000000000000000";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The replicated self-signed certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelfSigned {
    pub cert_pem: String,
    pub key_pem: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_matching() {
        let n: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.2.3".parse().unwrap()));
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!v6.contains("10.1.2.3".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("example.com".parse::<Cidr>().is_err());
        assert_eq!(
            "10.0.0.0/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
    }

    #[test]
    fn password_hashes_verify_and_differ() {
        let a = hash_password("s3cret");
        let b = hash_password("s3cret");
        assert_ne!(a, b, "salted");
        assert!(verify_password(&a, "s3cret"));
        assert!(!verify_password(&a, "s3cret "));
        assert!(!verify_password("garbage", "s3cret"));
        assert!(!verify_password(DUMMY_HASH, ""));
    }
}
