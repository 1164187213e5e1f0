//! `hato`: the node binary and its command line.
//!
//! `hato serve` runs a node (see [`serve`]); the other subcommands are clients that talk to a
//! running node's internode port (see [`cli`]).

mod api_glue;
mod cli;
mod config;
mod console;
mod inbound;
mod outbound;
mod retention;
mod serve;
mod settings;
mod signing;
mod webhook;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hato",
    version,
    about = "Hato: a Raft-replicated email delivery appliance"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node. Without --config: a single node on ./hato-data, 127.0.0.1 ports.
    Serve(serve::ServeArgs),
    /// Form, grow, shrink and inspect the cluster.
    #[command(subcommand)]
    Cluster(cli::ClusterCmd),
    /// Read and change cluster-wide settings.
    #[command(subcommand)]
    Settings(cli::SettingsCmd),
    /// Manage the cluster-wide block list.
    #[command(subcommand)]
    Blocks(cli::BlocksCmd),
    /// HTTP API users (api_user / api_key of the CMC-compatible API).
    #[command(subcommand)]
    Api(cli::ApiCmd),
    /// SMTP relay access: credentials and allowed client addresses.
    #[command(subcommand)]
    Smtp(cli::SmtpCmd),
    /// Sending domains (DKIM keys, DNS records) and the bounce domain.
    #[command(subcommand)]
    Domain(cli::DomainCmd),
    /// Static routes / smart hosts and per-destination limits.
    #[command(subcommand)]
    Route(cli::RouteCmd),
    /// The delivery queue: list, show, retry, delete, stats.
    #[command(subcommand)]
    Queue(cli::QueueCmd),
    /// Webhook endpoints: events (CMC format) and inbound mail.
    #[command(subcommand)]
    Webhook(cli::WebhookCmd),
    /// Admin console accounts.
    #[command(subcommand)]
    Console(cli::ConsoleCmd),
    /// Events in the replicated outbox (for webhook endpoints), as JSON lines.
    Events(cli::EventsArgs),
    /// Show the delivery log.
    Log(cli::LogArgs),
    /// Show a queued message (metadata as JSON, or its bytes with --body).
    Message(cli::MessageArgs),
    /// Bounce analysis.
    #[command(subcommand)]
    Bounce(BounceCmd),
    /// Copy the replicated state from a running node into a file (a checked snapshot).
    Backup(cli::BackupArgs),
    /// Seed a stopped node with an empty data_dir from a backup: it starts as a one-node
    /// cluster holding the backup's state (disaster recovery).
    Restore(cli::RestoreArgs),
    /// Check configuration files.
    #[command(subcommand)]
    Config(ConfigCmd),
}

#[derive(Subcommand)]
enum BounceCmd {
    /// Classify a bounce mail (a file holding one raw message): one JSON object per bounced
    /// recipient, with the Sisimai reason name and the CMC bounce code.
    Classify { file: PathBuf },
    /// Bounce records (failures, expiries, bounce mails, blocked recipients) as JSON lines.
    List(cli::BounceListArgs),
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Validate a node config file and print it with defaults filled in.
    Check { file: PathBuf },
}

fn main() -> ExitCode {
    let args = Args::parse();
    if matches!(args.command, Command::Serve(_)) {
        limit_malloc_arenas();
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !matches!(args.command, Command::Serve(_)) {
        // Client subcommands authenticate to the internode port with this secret.
        hato_cluster::auth::set_secret(std::env::var("HATO_CLUSTER_SECRET").ok());
        // Output piped into `head` or `grep -q`: end quietly when the reader goes away, as
        // other command-line tools do, instead of panicking on the failed write. (The server
        // keeps ignoring SIGPIPE: a client hanging up must not stop it.)
        // SAFETY: called before any other thread writes to a pipe; SIG_DFL is a valid handler.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let res = rt.block_on(async move {
        match args.command {
            Command::Serve(a) => serve::run(a).await,
            Command::Cluster(c) => cli::cluster(c).await,
            Command::Settings(c) => cli::settings(c).await,
            Command::Blocks(c) => cli::blocks(c).await,
            Command::Smtp(c) => cli::smtp(c).await,
            Command::Api(c) => cli::api(c).await,
            Command::Domain(c) => cli::domain(c).await,
            Command::Route(c) => cli::route(c).await,
            Command::Queue(c) => cli::queue(c).await,
            Command::Events(a) => cli::events(a).await,
            Command::Console(c) => cli::console(c).await,
            Command::Webhook(c) => cli::webhook(c).await,
            Command::Log(a) => cli::log(a).await,
            Command::Message(a) => cli::message(a).await,
            Command::Bounce(BounceCmd::Classify { file }) => cli::bounce_classify(&file),
            Command::Bounce(BounceCmd::List(a)) => cli::bounce_list(a).await,
            Command::Backup(a) => cli::backup(a).await,
            Command::Restore(a) => cli::restore(a),
            Command::Config(ConfigCmd::Check { file }) => {
                let mut cfg = config::Config::load(&file)?;
                // The effective settings, without the secret (this runs from units and scripts
                // whose output ends up in logs).
                if !cfg.cluster.secret.is_empty() {
                    cfg.cluster.secret = "(set, not shown)".into();
                }
                println!("{file:?}: ok\n{cfg:#?}", file = file.display());
                Ok(())
            }
        }
    });
    // Do not wait for background blocking work still running (a snapshot being built of a
    // large state can take minutes): everything committed is already in the synced Raft log,
    // and an unfinished snapshot is simply built again later.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates under contention an arena of its own and keeps what
/// those arenas once held: a node taking a million messages peaked at 308 MB, 220 MB with two
/// arenas, at the same throughput. `MALLOC_ARENA_MAX` in the environment still wins.
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called before any other thread exists; M_ARENA_MAX takes a count.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
