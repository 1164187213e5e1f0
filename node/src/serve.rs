//! `hato serve`: wire a node together, top to bottom.
//!
//! config → logging → storage (RocksDB) → Raft → internode gRPC → console (HTTPS) → HTTP →
//! SMTP listeners → form or join the cluster (first console account) → delivery workers →
//! webhook dispatch → retention → wait for SIGTERM/SIGINT → stop accepting, drain delivery,
//! shut Raft down.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use hato_cluster::{AdminRequest, ClusterError, ClusterHandle, ClusterOptions, RaftTiming};
use hato_storage::NodeInfo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{parse_dns_server, Config};
use crate::{api_glue, inbound, outbound, settings};

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Node config file (TOML). Without it, built-in defaults (a single local node).
    #[arg(long, short = 'c', env = "HATO_CONFIG")]
    config: Option<PathBuf>,
    /// Override data_dir.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    // 1. Configuration.
    let mut cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(d) = args.data_dir {
        cfg.data_dir = d;
    }
    cfg.validate()?;

    // 2. Logging.
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| cfg.log.level.clone());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        // Colour only on a terminal: journald and `docker logs` get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    tracing::info!(node_id = cfg.node_id, data_dir = %cfg.data_dir.display(), "starting hato");

    // Internode authentication: the config's secret, else the environment's.
    let secret = if cfg.cluster.secret.is_empty() {
        std::env::var("HATO_CLUSTER_SECRET").ok()
    } else {
        Some(cfg.cluster.secret.clone())
    };
    hato_cluster::auth::set_secret(secret);

    // 3. Storage.
    let (log, sm) = hato_storage::open(&cfg.data_dir)
        .with_context(|| format!("opening the database in {}", cfg.data_dir.display()))?;

    // 4. Raft.
    let info = NodeInfo {
        raft_addr: cfg.raft_advertise(),
        http_addr: cfg.http_advertise(),
    };
    let timing = RaftTiming {
        heartbeat: Duration::from_millis(cfg.cluster.heartbeat_ms),
        election_timeout_min: Duration::from_millis(cfg.cluster.election_timeout_min_ms),
        election_timeout_max: Duration::from_millis(cfg.cluster.election_timeout_max_ms),
        snapshot_every: cfg.cluster.snapshot_every,
        keep_logs_after_snapshot: cfg.cluster.keep_logs_after_snapshot,
    };
    let opts = ClusterOptions {
        write_timeout: cfg.write_timeout(),
        quorum_stale_after: Duration::from_millis(cfg.cluster.election_timeout_max_ms * 2),
        ..Default::default()
    };
    let cluster = hato_cluster::start(cfg.node_id, info, &timing, opts, log, sm).await?;

    // 5. Listeners: bind both before announcing ourselves anywhere.
    let (stop_tx, stop_rx) = watch::channel(false);
    let raft_listener = TcpListener::bind(&cfg.listen.raft)
        .await
        .with_context(|| format!("binding listen.raft {}", cfg.listen.raft))?;
    let http_listener = TcpListener::bind(&cfg.listen.http)
        .await
        .with_context(|| format!("binding listen.http {}", cfg.listen.http))?;
    let internode = tokio::spawn(hato_cluster::serve(
        cluster.clone(),
        raft_listener,
        stopped(stop_rx.clone()),
    ));
    tracing::info!(raft = %cfg.listen.raft, "listening");

    // 6. SMTP ingress: bind every listener now so a bad address fails the start.
    let tls = inbound::tls::TlsState::default();
    if cfg.smtp.cert_file.is_empty() {
        tokio::spawn(inbound::tls::ensure_self_signed(
            cluster.clone(),
            cfg.smtp.hostname.clone(),
            tls.clone(),
        ));
    } else {
        tls.load_files(cfg.smtp.cert_file.as_ref(), cfg.smtp.key_file.as_ref())?;
    }
    let limits = inbound::Limits {
        max_message_bytes: cfg.smtp.max_message_bytes,
        max_recipients: cfg.smtp.max_recipients,
        max_line_length: cfg.smtp.max_line_length,
        command_timeout: Duration::from_secs(cfg.smtp.command_timeout_secs),
        data_timeout: Duration::from_secs(cfg.smtp.data_timeout_secs),
        max_connections_per_ip: cfg.smtp.max_connections_per_ip,
        max_bad_commands: cfg.smtp.max_bad_commands,
    };
    let inb = inbound::Inbound::new(
        cluster.clone(),
        cfg.smtp.hostname.clone(),
        limits,
        cfg.smtp.require_tls_for_auth,
        tls.clone(),
    );
    // The admin console (HTTPS with the same certificate as SMTP).
    let console = if cfg.listen.console.is_empty() {
        None
    } else {
        let listener = TcpListener::bind(&cfg.listen.console)
            .await
            .with_context(|| format!("binding listen.console {}", cfg.listen.console))?;
        let dns: Vec<_> = cfg
            .delivery
            .dns_servers
            .iter()
            .filter_map(|s| parse_dns_server(s))
            .collect();
        let c = crate::console::Console {
            cluster: cluster.clone(),
            resolver: outbound::route::resolver(&dns)?,
            lease: Duration::from_secs(cfg.delivery.lease_secs),
        };
        tracing::info!(console = %cfg.listen.console, "console listening (https)");
        Some(tokio::spawn(crate::console::serve(
            Arc::new(c),
            listener,
            tls.clone(),
            stop_rx.clone(),
        )))
    };
    // HTTP: health and the CMC-compatible API (which shares message ids and signing with
    // SMTP ingress).
    let http = tokio::spawn(hato_api::serve(
        cluster.clone(),
        Arc::new(api_glue::ApiGlue::new(inb.clone())),
        http_listener,
        stopped(stop_rx.clone()),
    ));
    tracing::info!(http = %cfg.listen.http, "http listening");
    let mut smtp_tasks = Vec::new();
    for l in &cfg.smtp.listener {
        let listener = TcpListener::bind(&l.addr)
            .await
            .with_context(|| format!("binding smtp listener {}", l.addr))?;
        tracing::info!(addr = %l.addr, mode = ?l.mode, tls = ?l.tls, proxy = l.proxy_protocol, "smtp listening");
        smtp_tasks.push(tokio::spawn(inbound::serve(
            inb.clone(),
            listener,
            l.clone(),
            stop_rx.clone(),
        )));
    }

    // 7. Form or join the cluster (first start only).
    if !cluster.raft().is_initialized().await? {
        if cfg.cluster.bootstrap {
            match cluster.admin(AdminRequest::Init).await {
                Ok(_) | Err(ClusterError::Invalid(_)) => {
                    tracing::info!("formed a new one-node cluster")
                }
                Err(e) => bail!("bootstrap failed: {e}"),
            }
            // The first console account, on the node that formed the cluster.
            let (c, dir) = (cluster.clone(), cfg.data_dir.clone());
            tokio::spawn(async move {
                if let Err(e) = crate::console::session::ensure_first_account(c, &dir).await {
                    tracing::warn!(error = %e, "could not create the first console account");
                }
            });
        } else if !cfg.cluster.join.is_empty() {
            tokio::spawn(join_loop(
                cluster.clone(),
                cfg.cluster.join.clone(),
                stop_rx.clone(),
            ));
        } else {
            tracing::info!("waiting to be added to a cluster (hato cluster join / init)");
        }
    }

    // 8. Delivery workers, and the egress addresses other nodes list in SPF records.
    let d = &cfg.delivery;
    let source_ips: Vec<std::net::IpAddr> =
        d.source_ips.iter().filter_map(|s| s.parse().ok()).collect();
    tokio::spawn(publish_egress(
        cluster.clone(),
        source_ips.clone(),
        stop_rx.clone(),
    ));
    let delivery = if d.enabled {
        let dns: Vec<_> = d
            .dns_servers
            .iter()
            .filter_map(|s| parse_dns_server(s))
            .collect();
        let router = outbound::route::Router::new(&dns, d.mx_port)
            .context("setting up the DNS resolver for delivery")?;
        let opts = outbound::DeliveryOptions {
            ehlo_name: cfg.ehlo_name(),
            max_connections: d.max_connections,
            max_connections_per_domain: d.max_connections_per_domain,
            batch_size: d.batch_size,
            lease: Duration::from_secs(d.lease_secs),
            retry_schedule: d
                .retry_schedule_secs
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            expire_after: Duration::from_secs(d.expire_after_secs),
            connect_timeout: Duration::from_secs(d.connect_timeout_secs),
            command_timeout: Duration::from_secs(d.command_timeout_secs),
            data_timeout: Duration::from_secs(d.data_timeout_secs),
            source_ips,
            poll: Duration::from_millis(d.poll_ms),
        };
        Some(outbound::start(
            cluster.clone(),
            opts,
            router,
            stop_rx.clone(),
        ))
    } else {
        tracing::info!("delivery is disabled on this node");
        None
    };

    // 9. Webhook dispatch (acts only while this node is the leader).
    let webhooks = crate::webhook::start(cluster.clone(), stop_rx.clone());
    // 10. Retention purges (acts only while this node is the leader).
    let retention = crate::retention::start(cluster.clone(), stop_rx.clone());

    // 11. Run until told to stop.
    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    if let Some(d) = delivery {
        // Finish attempts in progress and record their outcomes while Raft still runs.
        let _ = tokio::time::timeout(Duration::from_secs(15), d).await;
    }
    let _ = webhooks.await;
    let _ = retention.await;
    let _ = cluster.raft().shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = internode.await;
        let _ = http.await;
        if let Some(c) = console {
            let _ = c.await;
        }
        for t in smtp_tasks {
            let _ = t.await;
        }
    })
    .await;
    tracing::info!("stopped");
    Ok(())
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Ask the seed nodes to add this node until one of them succeeds.
async fn join_loop(cluster: ClusterHandle, seeds: Vec<String>, stop: watch::Receiver<bool>) {
    let req = AdminRequest::Join {
        id: cluster.id(),
        node: cluster.info().clone(),
    };
    let timeout = cluster.options().admin_timeout;
    loop {
        for seed in &seeds {
            if *stop.borrow() {
                return;
            }
            match hato_cluster::handle::remote::admin(seed, req.clone(), timeout).await {
                Ok(m) => {
                    tracing::info!(via = %seed, voters = ?m.voters, "joined the cluster");
                    return;
                }
                Err(e) => tracing::warn!(via = %seed, error = %e, "join attempt failed; retrying"),
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Record this node's egress addresses (configured source IPs, else the address the system
/// uses for outbound traffic) in the replicated settings, for SPF records.
async fn publish_egress(
    cluster: ClusterHandle,
    source_ips: Vec<std::net::IpAddr>,
    stop: watch::Receiver<bool>,
) {
    let ips = if source_ips.is_empty() {
        // Connecting a UDP socket sends nothing; it only picks the route's source address.
        let probe = std::net::UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| s.connect("192.0.2.1:25").map(|_| s))
            .and_then(|s| s.local_addr());
        match probe {
            Ok(a) if !a.ip().is_unspecified() => vec![a.ip()],
            _ => Vec::new(),
        }
    } else {
        source_ips
    };
    let key = settings::egress_key(cluster.id());
    let value = serde_json::to_string(&ips).expect("ips serialise");
    loop {
        if *stop.borrow() {
            return;
        }
        if cluster.reader().setting(&key).ok().flatten().as_deref() == Some(value.as_str()) {
            return;
        }
        match cluster
            .write(hato_storage::Command::PutSetting {
                key: key.clone(),
                value: value.clone(),
            })
            .await
        {
            Ok(_) => return,
            Err(_) => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}
