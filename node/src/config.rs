//! The node's local configuration (a TOML file), validated before anything starts.
//!
//! Only what a node needs to start lives here: its id, data directory, listen and advertised
//! addresses, and how it finds its cluster. Everything cluster-wide (domains, credentials,
//! webhooks, ...) is replicated state, changed through the cluster. Unknown keys are errors, so
//! a typo never silently falls back to a default. `deploy/hato.example.toml` documents every
//! key and is kept valid by a test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

/// Why a configuration was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config: {0}")]
    Invalid(String),
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// This node's id: a positive integer, unique in the cluster and never reused.
    pub node_id: u64,
    /// Where the node keeps its database and snapshots.
    pub data_dir: PathBuf,
    pub listen: Listen,
    pub advertise: Advertise,
    pub cluster: ClusterSection,
    pub smtp: SmtpSection,
    pub delivery: DeliverySection,
    pub log: LogSection,
}

/// Outbound delivery (every node runs delivery workers).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySection {
    /// Run delivery workers on this node.
    pub enabled: bool,
    /// Name sent in EHLO (default: smtp.hostname).
    pub ehlo_name: String,
    /// Concurrent outbound SMTP transactions on this node.
    pub max_connections: usize,
    /// Default concurrent transactions per recipient domain (a route may override it).
    pub max_connections_per_domain: usize,
    /// Recipients claimed per Raft write.
    pub batch_size: usize,
    /// How long a claimed recipient stays with this node. Must exceed the longest attempt
    /// (connect + 3 commands + data timeouts); a node that dies holds its recipients this long.
    pub lease_secs: u64,
    /// Waits between attempts after temporary failures; the last one repeats.
    pub retry_schedule_secs: Vec<u64>,
    /// Give up (bounce with reason `expired`) this long after acceptance.
    pub expire_after_secs: u64,
    pub connect_timeout_secs: u64,
    pub command_timeout_secs: u64,
    pub data_timeout_secs: u64,
    /// Local addresses to send from, used in turn (empty: the system chooses).
    pub source_ips: Vec<String>,
    /// DNS servers for MX lookups, as `IP` or `IP:port` (empty: /etc/resolv.conf).
    pub dns_servers: Vec<String>,
    /// Port of recipients' MX servers (25; only tests change it).
    pub mx_port: u16,
    /// How often idle workers look for due mail, in milliseconds.
    pub poll_ms: u64,
}

impl Default for DeliverySection {
    fn default() -> Self {
        Self {
            enabled: true,
            ehlo_name: String::new(),
            max_connections: 100,
            max_connections_per_domain: 10,
            batch_size: 500,
            lease_secs: 600,
            retry_schedule_secs: vec![60, 300, 900, 1800, 3600, 7200, 14400],
            expire_after_secs: 48 * 3600,
            connect_timeout_secs: 30,
            command_timeout_secs: 60,
            data_timeout_secs: 300,
            source_ips: Vec::new(),
            dns_servers: Vec::new(),
            mx_port: 25,
            poll_ms: 200,
        }
    }
}

/// SMTP ingress.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSection {
    /// Name in the greeting, EHLO reply and trace headers.
    pub hostname: String,
    /// PEM certificate chain and key for STARTTLS/implicit TLS. When both are empty, the
    /// cluster generates one self-signed certificate at first start and every node uses it.
    pub cert_file: String,
    pub key_file: String,
    /// Offer AUTH only after STARTTLS (or on implicit-TLS listeners).
    pub require_tls_for_auth: bool,
    pub max_message_bytes: usize,
    pub max_recipients: usize,
    /// Longest line accepted in a message (RFC 5322: 998).
    pub max_line_length: usize,
    pub command_timeout_secs: u64,
    pub data_timeout_secs: u64,
    pub max_connections_per_ip: usize,
    /// Bad commands tolerated before the connection is closed with 421.
    pub max_bad_commands: u32,
    /// The listeners (`[[smtp.listener]]` tables).
    pub listener: Vec<crate::inbound::ListenerConfig>,
}

impl Default for SmtpSection {
    fn default() -> Self {
        use crate::inbound::{ListenerConfig, ListenerMode, TlsMode};
        Self {
            hostname: "localhost".into(),
            cert_file: String::new(),
            key_file: String::new(),
            require_tls_for_auth: true,
            max_message_bytes: 25 * 1024 * 1024,
            max_recipients: 1000,
            max_line_length: 998,
            command_timeout_secs: 300,
            data_timeout_secs: 600,
            max_connections_per_ip: 100,
            max_bad_commands: 10,
            listener: vec![
                ListenerConfig {
                    addr: "127.0.0.1:2525".into(),
                    mode: ListenerMode::Relay,
                    tls: TlsMode::Starttls,
                    proxy_protocol: false,
                },
                ListenerConfig {
                    addr: "127.0.0.1:5587".into(),
                    mode: ListenerMode::Submission,
                    tls: TlsMode::Starttls,
                    proxy_protocol: false,
                },
            ],
        }
    }
}

/// Addresses this node binds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// Internode gRPC (Raft, forwarding, membership, CLI).
    pub raft: String,
    /// HTTP (API, health).
    pub http: String,
    /// HTTPS admin console, with the cluster certificate (empty: no console on this node).
    pub console: String,
}

/// Addresses other nodes and clients use to reach this node (default: the listen addresses).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Advertise {
    pub raft: Option<String>,
    pub http: Option<String>,
}

/// How the node finds or forms its cluster, and Raft timing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// On first start with an empty data dir, form a new one-node cluster.
    pub bootstrap: bool,
    /// On first start, ask these nodes (internode addresses) to add this node as a voter.
    pub join: Vec<String>,
    /// How long a write may wait for the leader and a quorum before failing.
    pub write_timeout_ms: u64,
    pub heartbeat_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Snapshot (and purge the Raft log) every this many applied entries.
    pub snapshot_every: u64,
    /// Log entries kept after a snapshot, so a briefly lagging node catches up from the log
    /// rather than by a whole snapshot.
    pub keep_logs_after_snapshot: u64,
    /// Shared secret every internode request must carry (empty: the internode port is open;
    /// use only on a private network). The CLI reads it from HATO_CLUSTER_SECRET.
    pub secret: String,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// A tracing filter such as `info` or `info,hato_cluster=debug`.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            node_id: 1,
            data_dir: PathBuf::from("hato-data"),
            listen: Listen::default(),
            advertise: Advertise::default(),
            cluster: ClusterSection::default(),
            smtp: SmtpSection::default(),
            delivery: DeliverySection::default(),
            log: LogSection::default(),
        }
    }
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            raft: "127.0.0.1:9400".into(),
            http: "127.0.0.1:8400".into(),
            console: "127.0.0.1:8443".into(),
        }
    }
}

impl Default for ClusterSection {
    fn default() -> Self {
        Self {
            bootstrap: true,
            join: Vec::new(),
            write_timeout_ms: 5000,
            heartbeat_ms: 150,
            election_timeout_min_ms: 750,
            election_timeout_max_ms: 1500,
            snapshot_every: 50_000,
            keep_logs_after_snapshot: 1000,
            secret: String::new(),
        }
    }
}

impl Default for LogSection {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

fn check_host_port(what: &str, v: &str) -> Result<(), ConfigError> {
    let bad = || {
        ConfigError::Invalid(format!(
            "{what} = {v:?} is not a host:port address (for example \"10.0.0.1:9400\")"
        ))
    };
    let (host, port) = v.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(bad());
    }
    Ok(())
}

fn check_listen(what: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    v.parse::<SocketAddr>().map_err(|_| {
        ConfigError::Invalid(format!(
            "{what} = {v:?} is not an IP:port to listen on (for example \"0.0.0.0:9400\")"
        ))
    })
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parse and validate config text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Check values that the types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.node_id == 0 {
            return Err(ConfigError::Invalid(
                "node_id must be a positive integer".into(),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid("data_dir must not be empty".into()));
        }
        let raft = check_listen("listen.raft", &self.listen.raft)?;
        let http = check_listen("listen.http", &self.listen.http)?;
        if raft == http {
            return Err(ConfigError::Invalid(
                "listen.raft and listen.http must be different addresses".into(),
            ));
        }
        for (what, listen, adv) in [
            ("raft", raft, &self.advertise.raft),
            ("http", http, &self.advertise.http),
        ] {
            match adv {
                Some(a) => check_host_port(&format!("advertise.{what}"), a)?,
                None if listen.ip().is_unspecified() => {
                    return Err(ConfigError::Invalid(format!(
                        "listen.{what} = {listen} binds every interface, so set advertise.{what} \
                         to the address other nodes should use"
                    )))
                }
                None => {}
            }
        }
        let c = &self.cluster;
        if c.bootstrap && !c.join.is_empty() {
            return Err(ConfigError::Invalid(
                "cluster.bootstrap = true and cluster.join are exclusive: bootstrap forms a new \
                 cluster, join enters an existing one"
                    .into(),
            ));
        }
        for (i, j) in c.join.iter().enumerate() {
            check_host_port(&format!("cluster.join[{i}]"), j)?;
        }
        if c.write_timeout_ms == 0 {
            return Err(ConfigError::Invalid(
                "cluster.write_timeout_ms must be > 0".into(),
            ));
        }
        if c.heartbeat_ms == 0 {
            return Err(ConfigError::Invalid(
                "cluster.heartbeat_ms must be > 0".into(),
            ));
        }
        if c.election_timeout_min_ms <= c.heartbeat_ms * 2 {
            return Err(ConfigError::Invalid(format!(
                "cluster.election_timeout_min_ms ({}) must be more than twice heartbeat_ms ({})",
                c.election_timeout_min_ms, c.heartbeat_ms
            )));
        }
        if c.election_timeout_max_ms <= c.election_timeout_min_ms {
            return Err(ConfigError::Invalid(format!(
                "cluster.election_timeout_max_ms ({}) must be greater than election_timeout_min_ms ({})",
                c.election_timeout_max_ms, c.election_timeout_min_ms
            )));
        }
        if !c.secret.is_empty()
            && (c.secret.len() < 16 || !c.secret.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(ConfigError::Invalid(
                "cluster.secret must be at least 16 printable characters without spaces".into(),
            ));
        }
        if c.snapshot_every < 10 {
            return Err(ConfigError::Invalid(
                "cluster.snapshot_every must be at least 10".into(),
            ));
        }
        let sm = &self.smtp;
        if sm.hostname.trim().is_empty() || sm.hostname.contains(char::is_whitespace) {
            return Err(ConfigError::Invalid(format!(
                "smtp.hostname = {:?} must be a host name",
                sm.hostname
            )));
        }
        if sm.cert_file.is_empty() != sm.key_file.is_empty() {
            return Err(ConfigError::Invalid(
                "smtp.cert_file and smtp.key_file must be set together".into(),
            ));
        }
        for (name, v) in [
            ("max_message_bytes", sm.max_message_bytes as u64),
            ("max_recipients", sm.max_recipients as u64),
            ("command_timeout_secs", sm.command_timeout_secs),
            ("data_timeout_secs", sm.data_timeout_secs),
            ("max_connections_per_ip", sm.max_connections_per_ip as u64),
            ("max_bad_commands", sm.max_bad_commands as u64),
        ] {
            if v == 0 {
                return Err(ConfigError::Invalid(format!("smtp.{name} must be > 0")));
            }
        }
        if sm.max_line_length < 78 {
            return Err(ConfigError::Invalid(
                "smtp.max_line_length must be at least 78".into(),
            ));
        }
        let mut seen = vec![raft, http];
        if !self.listen.console.is_empty() {
            let c = check_listen("listen.console", &self.listen.console)?;
            if seen.contains(&c) {
                return Err(ConfigError::Invalid(
                    "listen.console must differ from listen.raft and listen.http".into(),
                ));
            }
            seen.push(c);
        }
        for (i, l) in sm.listener.iter().enumerate() {
            let a = check_listen(&format!("smtp.listener[{i}].addr"), &l.addr)?;
            if seen.contains(&a) {
                return Err(ConfigError::Invalid(format!(
                    "smtp.listener[{i}].addr {a} is already used by another listener"
                )));
            }
            seen.push(a);
        }
        self.validate_delivery()?;
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigError::Invalid(format!(
                "log.level = {:?} is not a valid filter (try \"info\")",
                self.log.level
            )));
        }
        Ok(())
    }

    fn validate_delivery(&self) -> Result<(), ConfigError> {
        let d = &self.delivery;
        let bad = |m: String| Err(ConfigError::Invalid(format!("delivery.{m}")));
        for (name, v) in [
            ("max_connections", d.max_connections as u64),
            (
                "max_connections_per_domain",
                d.max_connections_per_domain as u64,
            ),
            ("batch_size", d.batch_size as u64),
            ("lease_secs", d.lease_secs),
            ("expire_after_secs", d.expire_after_secs),
            ("connect_timeout_secs", d.connect_timeout_secs),
            ("command_timeout_secs", d.command_timeout_secs),
            ("data_timeout_secs", d.data_timeout_secs),
            ("mx_port", d.mx_port as u64),
            ("poll_ms", d.poll_ms),
        ] {
            if v == 0 {
                return bad(format!("{name} must be > 0"));
            }
        }
        let attempt = d.connect_timeout_secs + 3 * d.command_timeout_secs + d.data_timeout_secs;
        if d.lease_secs <= attempt {
            return bad(format!(
                "lease_secs ({}) must exceed the longest attempt, connect_timeout_secs + \
                 3 * command_timeout_secs + data_timeout_secs = {attempt}",
                d.lease_secs
            ));
        }
        if d.retry_schedule_secs.is_empty() || d.retry_schedule_secs.contains(&0) {
            return bad("retry_schedule_secs must be a non-empty list of positive numbers".into());
        }
        if d.ehlo_name.contains(char::is_whitespace) {
            return bad(format!("ehlo_name = {:?} must be a host name", d.ehlo_name));
        }
        for (i, ip) in d.source_ips.iter().enumerate() {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return bad(format!("source_ips[{i}] = {ip:?} is not an IP address"));
            }
        }
        for (i, s) in d.dns_servers.iter().enumerate() {
            if parse_dns_server(s).is_none() {
                return bad(format!(
                    "dns_servers[{i}] = {s:?} is not an IP or IP:port (for example \"10.0.0.2\")"
                ));
            }
        }
        Ok(())
    }

    /// The EHLO name for outbound delivery.
    pub fn ehlo_name(&self) -> String {
        if self.delivery.ehlo_name.is_empty() {
            self.smtp.hostname.clone()
        } else {
            self.delivery.ehlo_name.clone()
        }
    }

    pub fn raft_advertise(&self) -> String {
        self.advertise
            .raft
            .clone()
            .unwrap_or_else(|| self.listen.raft.clone())
    }

    pub fn http_advertise(&self) -> String {
        self.advertise
            .http
            .clone()
            .unwrap_or_else(|| self.listen.http.clone())
    }

    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.cluster.write_timeout_ms)
    }
}

/// Parse a `delivery.dns_servers` entry: `IP` (port 53) or `IP:port`.
pub fn parse_dns_server(s: &str) -> Option<SocketAddr> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    s.parse::<SocketAddr>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default_single_node() {
        let c = Config::parse("").unwrap();
        assert_eq!(c, Config::default());
        assert!(c.cluster.bootstrap);
    }

    #[test]
    fn example_template_is_valid_and_complete() {
        let text = include_str!("../../deploy/hato.example.toml");
        let c = Config::parse(text).expect("deploy/hato.example.toml must stay valid");
        // The template sets every key explicitly (so it documents all of them).
        for key in [
            "node_id",
            "data_dir",
            "[listen]",
            "raft",
            "http",
            "[advertise]",
            "[cluster]",
            "bootstrap",
            "join",
            "write_timeout_ms",
            "heartbeat_ms",
            "election_timeout_min_ms",
            "election_timeout_max_ms",
            "snapshot_every",
            "keep_logs_after_snapshot",
            "[smtp]",
            "hostname",
            "cert_file",
            "key_file",
            "require_tls_for_auth",
            "max_message_bytes",
            "max_recipients",
            "max_line_length",
            "command_timeout_secs",
            "data_timeout_secs",
            "max_connections_per_ip",
            "max_bad_commands",
            "[[smtp.listener]]",
            "mode",
            "tls",
            "proxy_protocol",
            "[log]",
            "level",
        ] {
            assert!(text.contains(key), "template lacks {key}");
        }
        assert_eq!(c.node_id, 1);
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let e = Config::parse("node_idd = 3\n").unwrap_err().to_string();
        assert!(e.contains("node_idd"), "{e}");
        let e = Config::parse("[cluster]\nbootstarp = true\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bootstarp"), "{e}");
    }

    #[test]
    fn bad_values_are_rejected_with_clear_messages() {
        let cases = [
            ("node_id = 0", "node_id must be a positive"),
            ("node_id = \"one\"", "invalid type"),
            ("[listen]\nraft = \"nowhere\"", "listen.raft"),
            (
                "[listen]\nraft = \"127.0.0.1:1\"\nhttp = \"127.0.0.1:1\"",
                "must be different",
            ),
            ("[listen]\nraft = \"0.0.0.0:9400\"", "set advertise.raft"),
            ("[cluster]\njoin = [\"10.0.0.2:9400\"]", "exclusive"),
            (
                "[cluster]\nbootstrap = false\njoin = [\"nohost\"]",
                "cluster.join[0]",
            ),
            ("[cluster]\nwrite_timeout_ms = 0", "write_timeout_ms"),
            ("[cluster]\nheartbeat_ms = 500", "twice heartbeat_ms"),
            (
                "[cluster]\nelection_timeout_max_ms = 100",
                "election_timeout_max_ms",
            ),
            ("[log]\nlevel = \"[[[\"", "log.level"),
            ("[smtp]\nmax_message_bytes = 0", "smtp.max_message_bytes"),
            ("[smtp]\ncert_file = \"/x.pem\"", "set together"),
            (
                "[[smtp.listener]]\naddr = \"127.0.0.1:9400\"",
                "already used",
            ),
            (
                "[[smtp.listener]]\naddr = \"127.0.0.1:25\"\nmode = \"open\"",
                "unknown variant",
            ),
            (
                "[[smtp.listener]]\naddr = \"127.0.0.1:25\"\ntls = \"maybe\"",
                "unknown variant",
            ),
        ];
        for (text, want) in cases {
            let e = Config::parse(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: got {e:?}, want {want:?}");
        }
    }

    #[test]
    fn advertise_overrides_listen() {
        let c = Config::parse(
            "[listen]\nraft = \"0.0.0.0:9400\"\nhttp = \"0.0.0.0:8400\"\n\
             [advertise]\nraft = \"node1.internal:9400\"\nhttp = \"node1.internal:8400\"\n",
        )
        .unwrap();
        assert_eq!(c.raft_advertise(), "node1.internal:9400");
        assert_eq!(c.http_advertise(), "node1.internal:8400");
    }
}
