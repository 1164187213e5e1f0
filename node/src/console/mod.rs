//! The admin console, served by every node on its own HTTPS listener (`[console] listen`) with
//! the cluster certificate (the configured one, else the replicated self-signed one).
//!
//! Contract: the page (`hato_console::assets`) talks to the JSON API of `console/API.md`.
//! Every call except the page, its assets and `POST /api/login` needs a session cookie;
//! every call other than GET also needs the session's CSRF token in `X-CSRF-Token`. Reads
//! come from this node's replica; every change is a Raft command, so it is visible on every
//! node's console once committed, and is written to the replicated audit log with who made
//! it and from where. A rejected request changes nothing.
//!
//! Modules: [`http`] (request/answer plumbing), [`session`] (accounts, login, lock-out,
//! audit), [`dashboard`] (statistics and charts), [`records`] (delivery log, messages,
//! bounces, blocks), [`setup`] (settings pages), [`nodes`] (cluster page).

pub mod http;
pub mod session;

mod dashboard;
mod nodes;
pub(crate) mod records;
mod setup;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hato_cluster::ClusterHandle;
use hickory_resolver::TokioResolver;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::inbound::tls::TlsState;
use http::{Answer, ApiError, Req};

/// What the console's handlers share.
pub struct Console {
    pub cluster: ClusterHandle,
    /// For the live DNS check of sending domains.
    pub resolver: TokioResolver,
    /// Delivery lease length (to count live leases per node).
    pub lease: Duration,
}

/// Accept HTTPS connections on `listener` until `stop` turns true.
pub async fn serve(
    console: Arc<Console>,
    listener: TcpListener,
    tls: TlsState,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "console accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => {
                if *stop.borrow() {
                    return;
                }
                continue;
            }
        };
        let Some(acceptor) = tls.acceptor() else {
            tracing::warn!("console connection refused: no certificate loaded yet");
            continue;
        };
        let console = console.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
            let stream = match handshake.await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "console TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let console = console.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&console, req, peer).await) }
            });
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "console connection ended");
            }
        });
    }
}

async fn handle(
    console: &Console,
    req: hyper::Request<Incoming>,
    peer: SocketAddr,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let answer = match Req::read(req, peer).await {
        Ok(req) => route(console, &req).await.unwrap_or_else(Answer::from),
        Err(e) => Answer::from(e),
    };
    answer.into_response()
}

/// Dispatch one request: public routes, then the session and CSRF checks, then the API.
async fn route(c: &Console, req: &Req) -> Result<Answer, ApiError> {
    use ::http::Method;
    let segs: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    match (&req.method, segs.as_slice()) {
        (&Method::GET, [] | ["index.html"]) => return Ok(Answer::page()),
        (&Method::GET, ["assets", name]) => return Answer::asset(name),
        (&Method::POST, ["api", "login"]) => {
            req.check_same_origin()?;
            return session::login(c, req).await;
        }
        _ => {}
    }
    let s = session::authenticate(c, req).await?;
    if req.method != Method::GET {
        req.check_same_origin()?;
        s.check_csrf(req)?;
    }
    let m = &req.method;
    let (get, post, put, delete) = (
        m == Method::GET,
        m == Method::POST,
        m == Method::PUT,
        m == Method::DELETE,
    );
    match segs.as_slice() {
        ["api", "logout"] if post => session::logout(c, req, &s).await,
        ["api", "me"] if get => session::me(c, &s),
        ["api", "password"] if post => session::change_password(c, req, &s).await,
        ["api", "console-users"] if get => session::list_users(c),
        ["api", "console-users"] if post => session::add_user(c, req, &s).await,
        ["api", "console-users", name] if delete => session::remove_user(c, req, &s, name).await,
        ["api", "audit"] if get => scan(|| session::audit_list(c, req)),

        ["api", "dashboard"] if get => scan(|| dashboard::summary(c)),
        ["api", "stats", "minutes"] if get => scan(|| dashboard::minutes(c, req)),
        ["api", "stats", "daily"] if get => scan(|| dashboard::daily(c, req)),
        ["api", "stats", "reasons"] if get => scan(|| dashboard::reasons(c, req)),
        ["charts", "minutes.svg"] if get => scan(|| dashboard::minutes_chart(c, req)),
        ["charts", "reasons.svg"] if get => scan(|| dashboard::reasons_chart(c, req)),

        ["api", "deliveries"] if get => scan(|| records::deliveries(c, req)),
        ["api", "messages", id] if get => scan(|| records::message(c, id)),
        ["api", "bounces"] if get => scan(|| records::bounces(c, req)),
        ["api", "blocks"] if get => scan(|| records::blocks(c, req)),
        ["api", "blocks"] if post => records::block(c, req, &s).await,
        ["api", "blocks", address] if delete => records::unblock(c, req, &s, address).await,
        ["blocks.csv"] if get => scan(|| records::blocks_csv(c)),

        ["api", "api-users"] if get => setup::list_credentials(c, setup::Kind::Api),
        ["api", "api-users"] if post => setup::add_api_user(c, req, &s).await,
        ["api", "api-users", name, "key"] if post => setup::rotate_api_key(c, req, &s, name).await,
        ["api", "api-users", name] if delete => {
            setup::remove_credential(c, req, &s, setup::Kind::Api, name).await
        }
        ["api", "smtp-users"] if get => setup::list_credentials(c, setup::Kind::Smtp),
        ["api", "smtp-users"] if post => setup::add_smtp_user(c, req, &s).await,
        ["api", "smtp-users", name] if delete => {
            setup::remove_credential(c, req, &s, setup::Kind::Smtp, name).await
        }
        ["api", "allowed-ips"] if get => setup::allowed_ips(c),
        ["api", "allowed-ips"] if post => setup::add_allowed_ip(c, req, &s).await,
        ["api", "allowed-ips", net] if delete => setup::remove_allowed_ip(c, req, &s, net).await,
        ["api", "domains"] if get => setup::domains(c),
        ["api", "domains"] if post => setup::add_domain(c, req, &s).await,
        ["api", "domains", d] if delete => setup::remove_domain(c, req, &s, d).await,
        ["api", "domains", d, "check"] if get => setup::check_domain_dns(c, d).await,
        ["api", "webhooks"] if get => setup::webhooks(c),
        ["api", "webhooks"] if post => setup::add_webhook(c, req, &s).await,
        ["api", "webhooks", name] if delete => setup::remove_webhook(c, req, &s, name).await,
        ["api", "webhooks", name, "test"] if post => setup::test_webhook(c, req, &s, name).await,
        ["api", "webhooks", name, "inbound"] if post => {
            setup::add_inbound_rule(c, req, &s, name).await
        }
        ["api", "webhooks", name, "inbound", matches] if delete => {
            setup::remove_inbound_rule(c, req, &s, name, matches).await
        }
        ["api", "autoblock"] if get => setup::autoblock(c),
        ["api", "autoblock"] if put => setup::set_autoblock(c, req, &s).await,
        ["api", "retention"] if get => setup::retention(c),
        ["api", "retention"] if put => setup::set_retention(c, req, &s).await,

        ["api", "cluster"] if get => nodes::overview(c).await,
        ["api", "cluster", "nodes"] if post => nodes::add(c, req, &s).await,
        ["api", "cluster", "nodes", id] if delete => nodes::remove(c, req, &s, id).await,

        _ => Err(ApiError::new(404, "no such console page or endpoint")),
    }
}

/// Run a handler that reads many records on a blocking-capable thread, so a long scan never
/// stalls the async threads that SMTP and Raft share with the console.
fn scan<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

impl Console {
    /// A setting from this node's replica.
    fn setting(&self, key: &str) -> Result<Option<String>, ApiError> {
        self.cluster.reader().setting(key).map_err(ApiError::store)
    }

    /// A setting, confirmed with the leader when this replica does not have it yet (a value
    /// written a moment ago through another node may not have been applied here).
    async fn setting_fresh(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.setting(key)? {
            Some(v) => Ok(Some(v)),
            None => self.setting_from_leader(key).await,
        }
    }

    /// A setting as the leader has it (a linearizable read).
    async fn setting_from_leader(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self
            .cluster
            .read(hato_cluster::ReadRequest::Setting { key: key.into() })
            .await
        {
            Ok(hato_cluster::ReadResponse::Setting(v)) => Ok(v),
            Ok(_) => Ok(None),
            Err(e) => Err(ApiError::cluster(e)),
        }
    }

    fn settings_with_prefix(&self, prefix: &str) -> Result<Vec<(String, String)>, ApiError> {
        self.cluster
            .reader()
            .settings_with_prefix(prefix)
            .map_err(ApiError::store)
    }

    /// Propose a command through Raft and wait for it to commit.
    async fn write(
        &self,
        command: hato_storage::Command,
    ) -> Result<hato_storage::CommandResult, ApiError> {
        self.cluster.write(command).await.map_err(ApiError::cluster)
    }

    async fn put_setting(&self, key: &str, value: String) -> Result<(), ApiError> {
        self.write(hato_storage::Command::PutSetting {
            key: key.into(),
            value,
        })
        .await
        .map(|_| ())
    }

    /// Delete a setting; whether it existed.
    async fn delete_setting(&self, key: &str) -> Result<bool, ApiError> {
        let r = self
            .write(hato_storage::Command::DeleteSetting { key: key.into() })
            .await?;
        Ok(r == hato_storage::CommandResult::Changed(true))
    }
}
