//! Settings pages: API users and keys, SMTP logins and allowed networks, sending domains
//! (DKIM keys, the records to publish and a live DNS check), webhook endpoints and inbound
//! rules, auto-block rules and retention. Each change is one replicated setting write,
//! validated first, and audited.

use std::time::Duration;

use hato_storage::command::{
    AutoBlockRules, InboundRule, WebhookAuth, WebhookEndpoint, WebhookFailure, EVENT_KINDS,
    WEBHOOK_ENDPOINTS,
};
use hato_storage::keys::AUTOBLOCK_RULES;
use hato_storage::{Command, CommandResult};
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{Answer, ApiError, Req};
use super::session::{audit, Session};
use super::Console;
use crate::settings::{self, Cidr, ALLOWED_IP_PREFIX, API_USER_PREFIX, CREDENTIAL_PREFIX};

/// Which kind of login a credential page manages.
#[derive(Clone, Copy)]
pub enum Kind {
    Api,
    Smtp,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Api => API_USER_PREFIX,
            Kind::Smtp => CREDENTIAL_PREFIX,
        }
    }
    fn what(self) -> &'static str {
        match self {
            Kind::Api => "API user",
            Kind::Smtp => "SMTP login",
        }
    }
}

/// Whether `name` may be an API user or SMTP login.
fn check_login_name(name: &str) -> Result<(), ApiError> {
    super::http::check_name(name, 128, "._-@+")
}

fn random_hex(bytes: usize) -> Result<String, ApiError> {
    let mut b = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| ApiError::new(500, "no randomness"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Store `secret` hashed under `key` (PBKDF2, as the CLI does); `only_new`: refuse to
/// overwrite (409).
async fn store_credential(
    c: &Console,
    key: String,
    secret: String,
    only_new: bool,
) -> Result<(), ApiError> {
    let hash = tokio::task::spawn_blocking(move || settings::hash_password(&secret))
        .await
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    let value = serde_json::to_string(&settings::Credential { hash }).expect("credential");
    let cmd = if only_new {
        Command::PutSettingIfAbsent { key, value }
    } else {
        Command::PutSetting { key, value }
    };
    if c.write(cmd).await? == CommandResult::Changed(true) && only_new {
        return Err(ApiError::field(409, "name", "that name is already taken"));
    }
    Ok(())
}

pub fn list_credentials(c: &Console, kind: Kind) -> Result<Answer, ApiError> {
    let items: Vec<Value> = c
        .settings_with_prefix(kind.prefix())?
        .into_iter()
        .map(|(k, _)| json!({"name": &k[kind.prefix().len()..]}))
        .collect();
    Answer::json(json!({ "items": items }))
}

#[derive(Deserialize)]
struct NameForm {
    name: String,
}

pub async fn add_api_user(c: &Console, req: &Req, s: &Session) -> Result<Answer, ApiError> {
    let f: NameForm = req.json()?;
    check_login_name(&f.name)?;
    let key = random_hex(24)?;
    store_credential(c, format!("{API_USER_PREFIX}{}", f.name), key.clone(), true).await?;
    audit(c, &s.user, req, "add API user", &f.name, true).await;
    Answer::json(json!({"name": f.name, "key": key}))
}

pub async fn rotate_api_key(
    c: &Console,
    req: &Req,
    s: &Session,
    name: &str,
) -> Result<Answer, ApiError> {
    let k = format!("{API_USER_PREFIX}{name}");
    if c.setting(&k)?.is_none() {
        return Err(ApiError::new(404, format!("no API user {name:?}")));
    }
    let key = random_hex(24)?;
    store_credential(c, k, key.clone(), false).await?;
    audit(c, &s.user, req, "rotate API key", name, true).await;
    Answer::json(json!({"name": name, "key": key}))
}

#[derive(Deserialize)]
struct SmtpForm {
    name: String,
    #[serde(default)]
    password: Option<String>,
}

pub async fn add_smtp_user(c: &Console, req: &Req, s: &Session) -> Result<Answer, ApiError> {
    let f: SmtpForm = req.json()?;
    check_login_name(&f.name)?;
    let password = match f.password.filter(|p| !p.is_empty()) {
        Some(p) if p.chars().count() < 8 => {
            return Err(ApiError::field(
                400,
                "password",
                "the password must have at least 8 characters",
            ))
        }
        Some(p) => p,
        None => random_hex(12)?,
    };
    store_credential(
        c,
        format!("{CREDENTIAL_PREFIX}{}", f.name),
        password.clone(),
        true,
    )
    .await?;
    audit(c, &s.user, req, "add SMTP login", &f.name, true).await;
    Answer::json(json!({"name": f.name, "password": password}))
}

pub async fn remove_credential(
    c: &Console,
    req: &Req,
    s: &Session,
    kind: Kind,
    name: &str,
) -> Result<Answer, ApiError> {
    if !c
        .delete_setting(&format!("{}{name}", kind.prefix()))
        .await?
    {
        return Err(ApiError::new(404, format!("no {} {name:?}", kind.what())));
    }
    audit(
        c,
        &s.user,
        req,
        &format!("remove {}", kind.what()),
        name,
        true,
    )
    .await;
    Answer::ok()
}

pub fn allowed_ips(c: &Console) -> Result<Answer, ApiError> {
    let items: Vec<Value> = c
        .settings_with_prefix(ALLOWED_IP_PREFIX)?
        .into_iter()
        .map(|(k, _)| json!({"network": &k[ALLOWED_IP_PREFIX.len()..]}))
        .collect();
    Answer::json(json!({ "items": items }))
}

fn parse_network(s: &str) -> Result<Cidr, ApiError> {
    s.trim()
        .parse()
        .map_err(|e: String| ApiError::field(400, "network", e))
}

#[derive(Deserialize)]
struct NetworkForm {
    network: String,
}

pub async fn add_allowed_ip(c: &Console, req: &Req, s: &Session) -> Result<Answer, ApiError> {
    let f: NetworkForm = req.json()?;
    let n = parse_network(&f.network)?;
    c.put_setting(&format!("{ALLOWED_IP_PREFIX}{n}"), "{}".into())
        .await?;
    audit(c, &s.user, req, "allow network", &n.to_string(), true).await;
    Answer::ok()
}

pub async fn remove_allowed_ip(
    c: &Console,
    req: &Req,
    s: &Session,
    net: &str,
) -> Result<Answer, ApiError> {
    let n = parse_network(net)?;
    if !c.delete_setting(&format!("{ALLOWED_IP_PREFIX}{n}")).await? {
        return Err(ApiError::new(404, format!("{n} is not an allowed network")));
    }
    audit(c, &s.user, req, "disallow network", &n.to_string(), true).await;
    Answer::ok()
}

fn domain_json(key: &hato_dkim::DkimKey, egress: &[std::net::IpAddr]) -> Value {
    json!({
        "domain": key.domain, "selector": key.selector, "algorithm": key.algorithm,
        "records": settings::dns_records(key, egress),
    })
}

fn egress(c: &Console) -> Result<Vec<std::net::IpAddr>, ApiError> {
    Ok(settings::egress_ips(&c.settings_with_prefix("node/")?))
}

pub fn domains(c: &Console) -> Result<Answer, ApiError> {
    let egress = egress(c)?;
    let items: Vec<Value> = c
        .settings_with_prefix(settings::DOMAIN_PREFIX)?
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_str::<hato_dkim::DkimKey>(&v).ok())
        .map(|k| domain_json(&k, &egress))
        .collect();
    let bounce_domain = c
        .setting(settings::BOUNCE_DOMAIN)?
        .and_then(|v| serde_json::from_str::<String>(&v).ok());
    Answer::json(json!({ "items": items, "bounce_domain": bounce_domain }))
}

#[derive(Deserialize)]
struct DomainForm {
    domain: String,
    #[serde(default)]
    algorithm: Option<String>,
    #[serde(default)]
    selector: Option<String>,
}

pub async fn add_domain(c: &Console, req: &Req, s: &Session) -> Result<Answer, ApiError> {
    let f: DomainForm = req.json()?;
    let domain =
        settings::check_domain(&f.domain).map_err(|e| ApiError::field(400, "domain", e))?;
    let algorithm: hato_dkim::Algorithm = f
        .algorithm
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or("rsa")
        .parse()
        .map_err(|e: hato_dkim::DkimError| ApiError::field(400, "algorithm", e.to_string()))?;
    let selector = f
        .selector
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "hato".into());
    let selector_ok = selector.len() <= 63
        && selector
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !selector_ok {
        return Err(ApiError::field(
            400,
            "selector",
            format!("{selector:?} is not a DKIM selector"),
        ));
    }
    let key = {
        let (d, sel) = (domain.clone(), selector.clone());
        tokio::task::spawn_blocking(move || hato_dkim::generate(&d, &sel, algorithm))
            .await
            .map_err(|e| ApiError::new(500, e.to_string()))?
            .map_err(|e| ApiError::new(500, format!("generating the DKIM key failed: {e}")))?
    };
    let r = c
        .write(Command::PutSettingIfAbsent {
            key: format!("{}{domain}", settings::DOMAIN_PREFIX),
            value: serde_json::to_string(&key).expect("dkim key"),
        })
        .await?;
    if r == CommandResult::Changed(true) {
        return Err(ApiError::field(
            409,
            "domain",
            format!("{domain} is already a sending domain (remove it first to replace its key)"),
        ));
    }
    audit(c, &s.user, req, "add sending domain", &domain, true).await;
    Answer::json(domain_json(&key, &egress(c)?))
}

pub async fn remove_domain(
    c: &Console,
    req: &Req,
    s: &Session,
    d: &str,
) -> Result<Answer, ApiError> {
    let domain = settings::check_domain(d).map_err(|e| ApiError::field(400, "domain", e))?;
    if !c
        .delete_setting(&format!("{}{domain}", settings::DOMAIN_PREFIX))
        .await?
    {
        return Err(ApiError::new(
            404,
            format!("{domain} is not a sending domain"),
        ));
    }
    audit(c, &s.user, req, "remove sending domain", &domain, true).await;
    Answer::ok()
}

/// Whether a published TXT value satisfies the expected one: DKIM compares the tags ignoring
/// whitespace; SPF needs a `v=spf1` record naming every expected address.
fn txt_matches(expected: &str, found: &str) -> bool {
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    if expected.starts_with("v=spf1") {
        let words: Vec<&str> = found.split_whitespace().collect();
        return words.first() == Some(&"v=spf1")
            && expected
                .split_whitespace()
                .filter(|w| w.starts_with("ip4:") || w.starts_with("ip6:"))
                .all(|w| words.contains(&w));
    }
    squash(expected) == squash(found)
}

pub async fn check_domain_dns(c: &Console, d: &str) -> Result<Answer, ApiError> {
    let domain = settings::check_domain(d).map_err(|e| ApiError::field(400, "domain", e))?;
    let Some(v) = c.setting(&format!("{}{domain}", settings::DOMAIN_PREFIX))? else {
        return Err(ApiError::new(
            404,
            format!("{domain} is not a sending domain"),
        ));
    };
    let key: hato_dkim::DkimKey =
        serde_json::from_str(&v).map_err(|e| ApiError::new(500, e.to_string()))?;
    let mut checks = Vec::new();
    for rec in settings::dns_records(&key, &egress(c)?) {
        let lookup = tokio::time::timeout(
            Duration::from_secs(5),
            c.resolver.txt_lookup(format!("{}.", rec.name)),
        )
        .await;
        let (found, error): (Vec<String>, Option<String>) = match lookup {
            Ok(Ok(txt)) => (
                txt.answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        hickory_resolver::proto::rr::RData::TXT(t) => Some(
                            t.txt_data
                                .iter()
                                .map(|p| String::from_utf8_lossy(p).into_owned())
                                .collect::<String>(),
                        ),
                        _ => None,
                    })
                    .collect(),
                None,
            ),
            Ok(Err(e)) => (Vec::new(), Some(e.to_string())),
            Err(_) => (Vec::new(), Some("the DNS lookup timed out".into())),
        };
        let ok = found.iter().any(|f| txt_matches(&rec.value, f));
        checks.push(json!({
            "name": rec.name, "type": rec.kind, "expected": rec.value,
            "found": found, "ok": ok, "error": error,
        }));
    }
    Answer::json(json!({ "checks": checks }))
}

fn load_webhooks(c: &Console) -> Result<Vec<WebhookEndpoint>, ApiError> {
    Ok(c.setting(WEBHOOK_ENDPOINTS)?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default())
}

/// The endpoint list as the leader has it, for read-modify-write edits (this replica may not
/// have applied a change made a moment ago through another node).
async fn load_webhooks_fresh(c: &Console) -> Result<Vec<WebhookEndpoint>, ApiError> {
    Ok(c.setting_from_leader(WEBHOOK_ENDPOINTS)
        .await?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default())
}

async fn save_webhooks(c: &Console, list: &[WebhookEndpoint]) -> Result<(), ApiError> {
    c.put_setting(
        WEBHOOK_ENDPOINTS,
        serde_json::to_string(list).expect("endpoints"),
    )
    .await
}

/// An endpoint as the page shows it; `failures`: every recorded failure (all endpoints).
fn webhook_json(
    c: &Console,
    ep: &WebhookEndpoint,
    failures: &[WebhookFailure],
) -> Result<Value, ApiError> {
    let r = c.cluster.reader();
    let cursor = r.webhook_cursor(&ep.name).map_err(ApiError::store)?;
    let pending = r
        .events(cursor.unwrap_or(0), 10_000)
        .map_err(ApiError::store)?
        .iter()
        .filter(|e| crate::webhook::payload::wanted(ep, &e.event))
        .count();
    let mut failures: Vec<&WebhookFailure> =
        failures.iter().filter(|f| f.endpoint == ep.name).collect();
    failures.sort_by_key(|f| std::cmp::Reverse(f.at_ms));
    failures.truncate(10);
    let auth_kind = match &ep.auth {
        None => "none",
        Some(WebhookAuth::Basic { .. }) => "basic",
        Some(WebhookAuth::Bearer(_)) => "bearer",
        Some(WebhookAuth::ApiKey(_)) => "api_key",
    };
    Ok(json!({
        "name": ep.name, "url": ep.url, "events": ep.events, "format": ep.format,
        "auth_kind": auth_kind, "secrets": ep.secrets.len(), "inbound": ep.inbound,
        "pending": pending, "failures": failures,
    }))
}

fn all_failures(c: &Console) -> Result<Vec<WebhookFailure>, ApiError> {
    c.cluster
        .reader()
        .webhook_failures(10_000)
        .map_err(ApiError::store)
}

pub fn webhooks(c: &Console) -> Result<Answer, ApiError> {
    let failures = all_failures(c)?;
    let items = load_webhooks(c)?
        .iter()
        .map(|e| webhook_json(c, e, &failures))
        .collect::<Result<Vec<_>, _>>()?;
    Answer::json(json!({ "items": items, "event_kinds": EVENT_KINDS }))
}

#[derive(Deserialize)]
struct AuthForm {
    kind: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    key: String,
}

#[derive(Deserialize)]
struct WebhookForm {
    name: String,
    url: String,
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    auth: Option<AuthForm>,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    inbound: Vec<InboundRule>,
}

fn parse_auth(a: Option<AuthForm>) -> Result<Option<WebhookAuth>, ApiError> {
    let bad = |m: &str| ApiError::field(400, "auth", m.to_string());
    let Some(a) = a else { return Ok(None) };
    Ok(match a.kind.as_str() {
        "" | "none" => None,
        "basic" if !a.user.is_empty() && !a.user.contains(':') => Some(WebhookAuth::Basic {
            user: a.user,
            password: a.password,
        }),
        "basic" => return Err(bad("basic authentication needs a user name without ':'")),
        "bearer" if !a.token.is_empty() => Some(WebhookAuth::Bearer(a.token)),
        "bearer" => return Err(bad("bearer authentication needs a token")),
        "api_key" if !a.key.is_empty() => Some(WebhookAuth::ApiKey(a.key)),
        "api_key" => return Err(bad("api_key authentication needs a key")),
        other => return Err(bad(&format!("unknown authentication {other:?}"))),
    })
}

pub async fn add_webhook(c: &Console, req: &Req, s: &Session) -> Result<Answer, ApiError> {
    let f: WebhookForm = req.json()?;
    let ep = WebhookEndpoint {
        name: f.name.trim().to_string(),
        url: f.url.trim().to_string(),
        events: f.events,
        format: f
            .format
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| "form".into()),
        auth: parse_auth(f.auth)?,
        secrets: f.secret.into_iter().filter(|s| !s.is_empty()).collect(),
        server_composition: "hato".into(),
        inbound: f
            .inbound
            .into_iter()
            .map(|r| InboundRule {
                filter: r.filter.trim().into(),
                matches: r.matches.trim().to_ascii_lowercase(),
            })
            .collect(),
        batch_ms: 1000,
        batch_max: 100,
        retry_for_secs: 86_400,
    };
    crate::webhook::validate(&ep).map_err(|e| ApiError::new(400, e))?;
    let mut list = load_webhooks_fresh(c).await?;
    if list.iter().any(|e| e.name == ep.name) {
        return Err(ApiError::field(
            409,
            "name",
            format!("an endpoint named {:?} exists", ep.name),
        ));
    }
    list.push(ep.clone());
    save_webhooks(c, &list).await?;
    audit(
        c,
        &s.user,
        req,
        "add webhook",
        &format!("{} {}", ep.name, ep.url),
        true,
    )
    .await;
    Answer::json(webhook_json(c, &ep, &all_failures(c)?)?)
}

pub async fn remove_webhook(
    c: &Console,
    req: &Req,
    s: &Session,
    name: &str,
) -> Result<Answer, ApiError> {
    let mut list = load_webhooks_fresh(c).await?;
    let before = list.len();
    list.retain(|e| e.name != name);
    if list.len() == before {
        return Err(ApiError::new(404, format!("no webhook endpoint {name:?}")));
    }
    save_webhooks(c, &list).await?;
    audit(c, &s.user, req, "remove webhook", name, true).await;
    Answer::ok()
}

pub async fn test_webhook(
    c: &Console,
    req: &Req,
    s: &Session,
    name: &str,
) -> Result<Answer, ApiError> {
    let Some(ep) = load_webhooks(c)?.into_iter().find(|e| e.name == name) else {
        return Err(ApiError::new(404, format!("no webhook endpoint {name:?}")));
    };
    let (ok, message) = match crate::webhook::send_test(&ep, Duration::from_secs(10)).await {
        Ok(code) if (200..300).contains(&code) => (true, format!("the endpoint answered {code}")),
        Ok(code) => (false, format!("the endpoint answered {code}")),
        Err(e) => (false, format!("sending failed: {e}")),
    };
    audit(
        c,
        &s.user,
        req,
        "test webhook",
        &format!("{name}: {message}"),
        ok,
    )
    .await;
    Answer::json(json!({"ok": ok, "message": message}))
}

pub async fn add_inbound_rule(
    c: &Console,
    req: &Req,
    s: &Session,
    name: &str,
) -> Result<Answer, ApiError> {
    let rule: InboundRule = req.json()?;
    let rule = InboundRule {
        filter: rule.filter.trim().into(),
        matches: rule.matches.trim().to_ascii_lowercase(),
    };
    let mut list = load_webhooks_fresh(c).await?;
    let Some(ep) = list.iter_mut().find(|e| e.name == name) else {
        return Err(ApiError::new(404, format!("no webhook endpoint {name:?}")));
    };
    ep.inbound.retain(|r| r.matches != rule.matches);
    ep.inbound.push(rule.clone());
    crate::webhook::validate(ep).map_err(|e| ApiError::field(400, "matches", e))?;
    let ep = ep.clone();
    save_webhooks(c, &list).await?;
    audit(
        c,
        &s.user,
        req,
        "add inbound rule",
        &format!("{name}: {}={}", rule.filter, rule.matches),
        true,
    )
    .await;
    Answer::json(webhook_json(c, &ep, &all_failures(c)?)?)
}

pub async fn remove_inbound_rule(
    c: &Console,
    req: &Req,
    s: &Session,
    name: &str,
    matches: &str,
) -> Result<Answer, ApiError> {
    let mut list = load_webhooks_fresh(c).await?;
    let Some(ep) = list.iter_mut().find(|e| e.name == name) else {
        return Err(ApiError::new(404, format!("no webhook endpoint {name:?}")));
    };
    let before = ep.inbound.len();
    ep.inbound.retain(|r| r.matches != matches);
    if ep.inbound.len() == before {
        return Err(ApiError::new(
            404,
            format!("{name} has no inbound rule for {matches:?}"),
        ));
    }
    crate::webhook::validate(ep).map_err(|e| ApiError::new(400, e))?;
    let ep = ep.clone();
    save_webhooks(c, &list).await?;
    audit(
        c,
        &s.user,
        req,
        "remove inbound rule",
        &format!("{name}: {matches}"),
        true,
    )
    .await;
    Answer::json(webhook_json(c, &ep, &all_failures(c)?)?)
}

pub fn autoblock(c: &Console) -> Result<Answer, ApiError> {
    let rules: AutoBlockRules = c
        .setting(AUTOBLOCK_RULES)?
        .and_then(|v| serde_json::from_str(&v).ok())
        .unwrap_or_default();
    Answer::json(serde_json::to_value(rules).expect("rules"))
}

pub async fn set_autoblock(c: &Console, req: &Req, s: &Session) -> Result<Answer, ApiError> {
    let rules: AutoBlockRules = req.json()?;
    rules.validate().map_err(|e| ApiError::new(400, e))?;
    let value = serde_json::to_string(&rules).expect("rules");
    c.put_setting(AUTOBLOCK_RULES, value.clone()).await?;
    audit(c, &s.user, req, "set auto-block rules", &value, true).await;
    Answer::json(serde_json::to_value(rules).expect("rules"))
}

pub fn retention(c: &Console) -> Result<Answer, ApiError> {
    let days = c
        .setting(hato_storage::keys::RETENTION_DAYS)?
        .and_then(|v| serde_json::from_str::<u64>(&v).ok());
    Answer::json(json!({ "days": days }))
}

#[derive(Deserialize)]
struct RetentionForm {
    days: Option<Value>,
}

pub async fn set_retention(c: &Console, req: &Req, s: &Session) -> Result<Answer, ApiError> {
    let f: RetentionForm = req.json()?;
    let bad = || {
        ApiError::field(
            400,
            "days",
            "days must be a whole number from 1 to 3650, or empty to keep everything",
        )
    };
    let days = match f.days {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(bad)?,
        ),
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(
            s.trim()
                .parse::<u64>()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(bad)?,
        ),
        Some(_) => return Err(bad()),
    };
    match days {
        Some(d) => {
            c.put_setting(hato_storage::keys::RETENTION_DAYS, d.to_string())
                .await?
        }
        None => {
            c.delete_setting(hato_storage::keys::RETENTION_DAYS).await?;
        }
    }
    let detail = days.map_or("keep forever".to_string(), |d| format!("{d} days"));
    audit(c, &s.user, req, "set retention", &detail, true).await;
    Answer::json(json!({ "days": days }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_checks() {
        assert!(txt_matches(
            "v=DKIM1; k=rsa; p=AB CD",
            "v=DKIM1;k=rsa;p=ABCD"
        ));
        assert!(!txt_matches(
            "v=DKIM1; k=rsa; p=ABCD",
            "v=DKIM1; k=rsa; p=ABCE"
        ));
        assert!(txt_matches(
            "v=spf1 ip4:192.0.2.1 ~all",
            "v=spf1 include:x ip4:192.0.2.1 -all"
        ));
        assert!(!txt_matches(
            "v=spf1 ip4:192.0.2.1 ~all",
            "v=spf1 ip4:192.0.2.2 ~all"
        ));
    }
}
