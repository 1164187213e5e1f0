//! `hato webhook`: event and inbound webhook endpoints.
//!
//! Endpoints live in one replicated setting (`webhook/endpoints`, a JSON list), so apply can
//! read them deterministically; edits are read-modify-write (two operators editing at the
//! same instant: the last write wins).

use anyhow::{bail, Context};
use clap::Subcommand;
use hato_cluster::handle::remote;
use hato_cluster::{ReadRequest, ReadResponse};
use hato_storage::command::{InboundRule, WebhookAuth, WebhookEndpoint, WEBHOOK_ENDPOINTS};
use hato_storage::Command;

use super::Target;

// Parsed once per process; the size of `Add` does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum WebhookCmd {
    /// Add or replace an endpoint.
    Add {
        #[command(flatten)]
        t: Target,
        name: String,
        url: String,
        /// Event kinds, comma-separated: queued,succeeded,failed,deferred,bounced,blocks.
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// `form` (CMC default) or `json`; for inbound mail `json` or `multipart`.
        #[arg(long, default_value = "form")]
        format: String,
        /// Basic authentication, USER:PASSWORD.
        #[arg(long)]
        basic: Option<String>,
        #[arg(long)]
        bearer: Option<String>,
        /// Sent as the `api_key` field.
        #[arg(long)]
        api_key: Option<String>,
        /// HMAC-SHA256 signing key (repeat to rotate: every key signs).
        #[arg(long)]
        secret: Vec<String>,
        /// Inbound rule FILTER=ADDRESS or FILTER=DOMAIN (repeatable).
        #[arg(long)]
        inbound: Vec<String>,
        #[arg(long, default_value = "hato")]
        server_composition: String,
        #[arg(long, default_value_t = 1000)]
        batch_ms: u64,
        #[arg(long, default_value_t = 100)]
        batch_max: u32,
        #[arg(long, default_value_t = 86_400)]
        retry_for_secs: u64,
    },
    /// Remove an endpoint.
    Remove {
        #[command(flatten)]
        t: Target,
        name: String,
    },
    /// List endpoints as JSON lines (secrets and credentials shown as "***").
    List {
        #[command(flatten)]
        t: Target,
    },
    /// Batches given up on after retry_for_secs, as JSON lines.
    Failures {
        #[command(flatten)]
        t: Target,
    },
    /// POST a sample event to an endpoint now (not through the outbox) and print the status.
    Test {
        #[command(flatten)]
        t: Target,
        name: String,
    },
}

async fn load(t: &Target) -> anyhow::Result<Vec<WebhookEndpoint>> {
    let req = ReadRequest::Setting {
        key: WEBHOOK_ENDPOINTS.into(),
    };
    match remote::read(&t.node, req, true, t.timeout()).await? {
        ReadResponse::Setting(Some(v)) => {
            serde_json::from_str(&v).context("webhook/endpoints is not a valid endpoint list")
        }
        ReadResponse::Setting(None) => Ok(Vec::new()),
        other => bail!("unexpected answer {other:?}"),
    }
}

async fn save(t: &Target, list: &[WebhookEndpoint]) -> anyhow::Result<()> {
    remote::write(
        &t.node,
        Command::PutSetting {
            key: WEBHOOK_ENDPOINTS.into(),
            value: serde_json::to_string(list)?,
        },
        t.timeout(),
    )
    .await?;
    Ok(())
}

pub async fn webhook(cmd: WebhookCmd) -> anyhow::Result<()> {
    match cmd {
        WebhookCmd::Add {
            t,
            name,
            url,
            events,
            format,
            basic,
            bearer,
            api_key,
            secret,
            inbound,
            server_composition,
            batch_ms,
            batch_max,
            retry_for_secs,
        } => {
            let auth = match (basic, bearer, api_key) {
                (Some(b), None, None) => {
                    let (user, password) =
                        b.split_once(':').context("--basic takes USER:PASSWORD")?;
                    Some(WebhookAuth::Basic {
                        user: user.into(),
                        password: password.into(),
                    })
                }
                (None, Some(t), None) => Some(WebhookAuth::Bearer(t)),
                (None, None, Some(k)) => Some(WebhookAuth::ApiKey(k)),
                (None, None, None) => None,
                _ => bail!("choose one of --basic, --bearer and --api-key"),
            };
            let mut rules = Vec::new();
            for r in inbound {
                let (filter, matches) = r
                    .split_once('=')
                    .context("--inbound takes FILTER=ADDRESS or FILTER=DOMAIN")?;
                rules.push(InboundRule {
                    filter: filter.into(),
                    matches: matches.trim().to_ascii_lowercase(),
                });
            }
            let ep = WebhookEndpoint {
                name: name.clone(),
                url,
                events,
                format,
                auth,
                secrets: secret,
                server_composition,
                inbound: rules,
                batch_ms,
                batch_max: batch_max.max(1),
                retry_for_secs,
            };
            crate::webhook::validate(&ep).map_err(|e| anyhow::anyhow!(e))?;
            let mut list = load(&t).await?;
            list.retain(|e| e.name != name);
            list.push(ep);
            save(&t, &list).await
        }
        WebhookCmd::Remove { t, name } => {
            let mut list = load(&t).await?;
            let before = list.len();
            list.retain(|e| e.name != name);
            if list.len() == before {
                bail!("no webhook endpoint named {name:?}");
            }
            save(&t, &list).await
        }
        WebhookCmd::List { t } => {
            for mut e in load(&t).await? {
                e.secrets = e.secrets.iter().map(|_| "***".to_string()).collect();
                e.auth = e.auth.map(|a| match a {
                    WebhookAuth::Basic { user, .. } => WebhookAuth::Basic {
                        user,
                        password: "***".into(),
                    },
                    WebhookAuth::Bearer(_) => WebhookAuth::Bearer("***".into()),
                    WebhookAuth::ApiKey(_) => WebhookAuth::ApiKey("***".into()),
                });
                println!("{}", serde_json::to_string(&e)?);
            }
            Ok(())
        }
        WebhookCmd::Failures { t } => {
            match remote::read(
                &t.node,
                ReadRequest::WebhookFailures { limit: 1000 },
                true,
                t.timeout(),
            )
            .await?
            {
                ReadResponse::WebhookFailures(list) => {
                    for f in list {
                        println!("{}", serde_json::to_string(&f)?);
                    }
                    Ok(())
                }
                other => bail!("unexpected answer {other:?}"),
            }
        }
        WebhookCmd::Test { t, name } => {
            let list = load(&t).await?;
            let Some(ep) = list.into_iter().find(|e| e.name == name) else {
                bail!("no webhook endpoint named {name:?}");
            };
            let code = crate::webhook::send_test(&ep, t.timeout())
                .await
                .map_err(|e| anyhow::anyhow!(e))?;
            println!("{}", serde_json::json!({"endpoint": name, "status": code}));
            if !(200..300).contains(&code) {
                bail!("the endpoint answered {code}");
            }
            Ok(())
        }
    }
}
