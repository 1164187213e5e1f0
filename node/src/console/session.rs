//! Console accounts, sessions, lock-out and the audit log, all kept as replicated settings so
//! that a login on one node is valid on every node behind the load balancer:
//! - `console/user/<name>`: `{"hash": "<argon2id PHC>", "created_ms"}`;
//! - `console/session/<sha256 of the token>`: [`Session`] (the cookie holds the token; a copy
//!   of the settings never reveals a usable token);
//! - `console/lock/<name>`: [`Lockout`], failed logins of an existing account, counted by
//!   the state machine (`Command::LoginFailed`) so parallel guesses through any node count;
//! - `audit/<ms, 16 digits>/<node>/<random>`: [`AuditEntry`], one per login and change.

use std::path::Path;

use hato_cluster::{now_ms, ClusterHandle};
use hato_console::password;
use hato_storage::command::{Lockout, LOGIN_MAX_FAILURES};
use hato_storage::{Command, CommandResult};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::http::{Answer, ApiError, Req};
use super::Console;

pub const USER_PREFIX: &str = "console/user/";
pub const SESSION_PREFIX: &str = "console/session/";
pub const LOCK_PREFIX: &str = "console/lock/";
pub const AUDIT_PREFIX: &str = "audit/";
const COOKIE: &str = "hato_session";
/// Sessions end this long after login.
const SESSION_MS: u64 = 8 * 3600 * 1000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub hash: String,
    #[serde(default)]
    pub created_ms: u64,
    /// Sessions created before this (account creation or last password change) are void.
    #[serde(default)]
    pub valid_from_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub user: String,
    pub csrf: String,
    pub created_ms: u64,
    pub expires_ms: u64,
}

impl Session {
    pub fn check_csrf(&self, req: &Req) -> Result<(), ApiError> {
        match req.header("x-csrf-token") {
            Some(t) if password::constant_time_eq(t, &self.csrf) => Ok(()),
            _ => Err(ApiError::new(403, "missing or wrong CSRF token")),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at_ms: u64,
    pub user: String,
    pub ip: String,
    pub action: String,
    pub detail: String,
    pub ok: bool,
}

fn sha256_hex(s: &str) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `name` may be a console account name.
fn check_name(name: &str) -> Result<(), ApiError> {
    super::http::check_name(name, 64, "._-@")
}

/// Record an entry in the audit log (a failure to record is logged, not fatal: the change it
/// describes has already been committed).
pub async fn audit(c: &Console, user: &str, req: &Req, action: &str, detail: &str, ok: bool) {
    let at_ms = now_ms();
    let e = AuditEntry {
        at_ms,
        user: user.into(),
        ip: req.ip(),
        action: action.into(),
        detail: detail.into(),
        ok,
    };
    let rand = password::token().unwrap_or_default();
    let key = format!(
        "{AUDIT_PREFIX}{at_ms:016}/{}/{}",
        c.cluster.id(),
        &rand[..rand.len().min(8)]
    );
    let value = serde_json::to_string(&e).expect("audit entry serialises");
    if let Err(e) = c.put_setting(&key, value).await {
        tracing::warn!(action, error = %e.error, "could not record an audit entry");
    }
}

/// The session of a request, or 401.
pub async fn authenticate(c: &Console, req: &Req) -> Result<Session, ApiError> {
    let unauth = || ApiError::new(401, "not logged in");
    let token = req.cookie(COOKIE).ok_or_else(unauth)?;
    if token.len() != 64 {
        return Err(unauth());
    }
    let key = format!("{SESSION_PREFIX}{}", sha256_hex(&token));
    let s: Session = c
        .setting_fresh(&key)
        .await?
        .and_then(|v| serde_json::from_str(&v).ok())
        .ok_or_else(unauth)?;
    if s.expires_ms <= now_ms() {
        return Err(ApiError::new(401, "the session has expired; log in again"));
    }
    // A removed account's sessions end with it; a password change ends older sessions.
    let account: Account = c
        .setting(&format!("{USER_PREFIX}{}", s.user))?
        .and_then(|v| serde_json::from_str(&v).ok())
        .ok_or_else(unauth)?;
    if s.created_ms < account.valid_from_ms {
        return Err(ApiError::new(
            401,
            "the session ended (the password was changed); log in again",
        ));
    }
    Ok(s)
}

#[derive(Deserialize)]
struct LoginForm {
    user: String,
    password: String,
}

/// Argon2 runs at most this many at once (19 MiB and tens of milliseconds each): a flood of
/// login attempts queues instead of exhausting memory and blocking threads.
static KDF_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Verify a password off the async threads.
async fn verify(hash: String, password: String) -> bool {
    let Ok(_slot) = KDF_SLOTS.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || password::verify(&hash, &password))
        .await
        .unwrap_or(false)
}

async fn hash(pw: String) -> Result<String, ApiError> {
    let _slot = KDF_SLOTS
        .acquire()
        .await
        .map_err(|e| ApiError::new(500, e.to_string()))?;
    tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(|e| ApiError::new(500, e.to_string()))?
        .map_err(|e| ApiError::field(400, "password", e.to_string()))
}

pub async fn login(c: &Console, req: &Req) -> Result<Answer, ApiError> {
    let f: LoginForm = req.json()?;
    let wrong = || ApiError::new(401, "wrong user name or password");
    // What the audit log records as the user: never more than a valid name's length.
    let who = if check_name(&f.user).is_ok() {
        f.user.clone()
    } else {
        "(invalid name)".to_string()
    };
    let lock_key = format!("{LOCK_PREFIX}{}", f.user);
    let account: Option<Account> = if check_name(&f.user).is_ok() {
        c.setting_fresh(&format!("{USER_PREFIX}{}", f.user))
            .await?
            .and_then(|v| serde_json::from_str(&v).ok())
    } else {
        None
    };
    let Some(account) = account else {
        // Same cost as a real check, so timing does not reveal which names exist.
        verify(DUMMY_HASH.into(), f.password).await;
        audit(c, &who, req, "login", "unknown account", false).await;
        return Err(wrong());
    };
    let lock = |v: Option<String>| -> Lockout {
        v.and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default()
    };
    let before = lock(c.setting(&lock_key)?);
    if before.locked_at(now_ms()) {
        audit(c, &who, req, "login", "refused: account locked", false).await;
        return Err(locked(&before, now_ms()));
    }
    if !verify(account.hash.clone(), f.password).await {
        // Counted by the state machine, so guesses in parallel or through other nodes count.
        let now = now_ms();
        let r = c
            .write(Command::LoginFailed {
                key: lock_key.clone(),
                at_ms: now,
            })
            .await?;
        let locked_now = r == CommandResult::Changed(true);
        let detail = if locked_now {
            "wrong password; account locked"
        } else {
            "wrong password"
        };
        audit(c, &who, req, "login", detail, false).await;
        if locked_now {
            return Err(locked(&lock(c.setting_fresh(&lock_key).await?), now));
        }
        return Err(wrong());
    }
    // Right password: check the lock again as the leader sees it (guesses running in parallel
    // may have locked the account meanwhile).
    let current = lock(c.setting_from_leader(&lock_key).await?);
    let now = now_ms();
    if current.locked_at(now) {
        audit(c, &who, req, "login", "refused: account locked", false).await;
        return Err(locked(&current, now));
    }
    if current.failures > 0 {
        c.delete_setting(&lock_key).await?;
    }
    let token = password::token().map_err(|e| ApiError::new(500, e.to_string()))?;
    let csrf = password::token().map_err(|e| ApiError::new(500, e.to_string()))?;
    let s = Session {
        user: f.user.clone(),
        csrf: csrf.clone(),
        created_ms: now,
        expires_ms: now + SESSION_MS,
    };
    c.put_setting(
        &format!("{SESSION_PREFIX}{}", sha256_hex(&token)),
        serde_json::to_string(&s).expect("session"),
    )
    .await?;
    audit(c, &who, req, "login", "", true).await;
    forget_expired_sessions(c, now).await;
    Ok(
        Answer::json(json!({"user": f.user, "csrf": csrf, "node_id": c.cluster.id()}))?
            .with_header(
                "set-cookie",
                format!(
                    "{COOKIE}={token}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
                    SESSION_MS / 1000
                ),
            ),
    )
}

/// An Argon2id hash of a random password, checked against when the account does not exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2qTsmJ3w2lL7MhxBqmz4yF7Xh1fFvXzGq0Qw1t0ZlXc";

fn locked(lock: &Lockout, now: u64) -> ApiError {
    let mins = lock
        .locked_until_ms
        .unwrap_or(now)
        .saturating_sub(now)
        .div_ceil(60_000);
    ApiError::new(
        423,
        format!(
            "this account is locked after {LOGIN_MAX_FAILURES} failed logins; try again in \
             {mins} minute(s)"
        ),
    )
}

async fn forget_expired_sessions(c: &Console, now: u64) {
    let Ok(all) = c.settings_with_prefix(SESSION_PREFIX) else {
        return;
    };
    for (k, v) in all {
        let expired = serde_json::from_str::<Session>(&v).map_or(true, |s| s.expires_ms <= now);
        if expired {
            let _ = c.delete_setting(&k).await;
        }
    }
}

pub async fn logout(c: &Console, req: &Req, s: &Session) -> Result<Answer, ApiError> {
    if let Some(token) = req.cookie(COOKIE) {
        c.delete_setting(&format!("{SESSION_PREFIX}{}", sha256_hex(&token)))
            .await?;
    }
    audit(c, &s.user, req, "logout", "", true).await;
    Ok(Answer::ok()?.with_header(
        "set-cookie",
        format!("{COOKIE}=; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=0"),
    ))
}

pub fn me(c: &Console, s: &Session) -> Result<Answer, ApiError> {
    Answer::json(json!({"user": s.user, "csrf": s.csrf, "node_id": c.cluster.id()}))
}

#[derive(Deserialize)]
struct PasswordForm {
    current: String,
    new: String,
}

pub async fn change_password(c: &Console, req: &Req, s: &Session) -> Result<Answer, ApiError> {
    let f: PasswordForm = req.json()?;
    let key = format!("{USER_PREFIX}{}", s.user);
    let account: Account = c
        .setting(&key)?
        .and_then(|v| serde_json::from_str(&v).ok())
        .ok_or_else(|| ApiError::new(401, "not logged in"))?;
    if !verify(account.hash, f.current).await {
        audit(
            c,
            &s.user,
            req,
            "change password",
            "wrong current password",
            false,
        )
        .await;
        return Err(ApiError::field(
            400,
            "current",
            "the current password is wrong",
        ));
    }
    let hash = hash(f.new).await.map_err(|mut e| {
        e.field = Some("new".into());
        e
    })?;
    let value = serde_json::to_string(&Account {
        hash,
        created_ms: account.created_ms,
        // Ends every other session of this account, including this one: log in again.
        valid_from_ms: now_ms(),
    })
    .expect("account");
    c.put_setting(&key, value).await?;
    audit(c, &s.user, req, "change password", "", true).await;
    Answer::ok()
}

pub fn list_users(c: &Console) -> Result<Answer, ApiError> {
    let now = now_ms();
    let mut items = Vec::new();
    for (k, _) in c.settings_with_prefix(USER_PREFIX)? {
        let name = &k[USER_PREFIX.len()..];
        let locked_until_ms = c
            .setting(&format!("{LOCK_PREFIX}{name}"))?
            .and_then(|v| serde_json::from_str::<Lockout>(&v).ok())
            .filter(|l| l.locked_at(now))
            .and_then(|l| l.locked_until_ms);
        items.push(json!({"name": name, "locked_until_ms": locked_until_ms}));
    }
    Answer::json(json!({ "items": items }))
}

#[derive(Deserialize)]
struct UserForm {
    name: String,
    password: String,
}

pub async fn add_user(c: &Console, req: &Req, s: &Session) -> Result<Answer, ApiError> {
    let f: UserForm = req.json()?;
    check_name(&f.name)?;
    let hash = hash(f.password).await?;
    let now = now_ms();
    let value = serde_json::to_string(&Account {
        hash,
        created_ms: now,
        valid_from_ms: now,
    })
    .expect("account");
    let r = c
        .write(Command::PutSettingIfAbsent {
            key: format!("{USER_PREFIX}{}", f.name),
            value,
        })
        .await?;
    if r == CommandResult::Changed(true) {
        return Err(ApiError::field(
            409,
            "name",
            format!("{:?} already exists", f.name),
        ));
    }
    audit(c, &s.user, req, "add console user", &f.name, true).await;
    Answer::json(json!({"name": f.name}))
}

pub async fn remove_user(
    c: &Console,
    req: &Req,
    s: &Session,
    name: &str,
) -> Result<Answer, ApiError> {
    if name == s.user {
        return Err(ApiError::new(400, "you cannot remove your own account"));
    }
    if !c.delete_setting(&format!("{USER_PREFIX}{name}")).await? {
        return Err(ApiError::new(404, format!("no console user {name:?}")));
    }
    c.delete_setting(&format!("{LOCK_PREFIX}{name}")).await?;
    audit(c, &s.user, req, "remove console user", name, true).await;
    Answer::ok()
}

pub fn audit_list(c: &Console, req: &Req) -> Result<Answer, ApiError> {
    let limit = req.q_num("limit")?.unwrap_or(200).clamp(1, 5000) as usize;
    let items: Vec<AuditEntry> = c
        .cluster
        .reader()
        .settings_with_prefix_newest(AUDIT_PREFIX, limit)
        .map_err(ApiError::store)?
        .iter()
        .filter_map(|(_, v)| serde_json::from_str(v).ok())
        .collect();
    Answer::json(json!({ "items": items }))
}

/// Create the first console account (`admin`) when none exists: on the node that forms the
/// cluster, at first start. The password goes to `<data_dir>/console-admin-password` (mode
/// 0600) and is never logged.
pub async fn ensure_first_account(cluster: ClusterHandle, data_dir: &Path) -> anyhow::Result<()> {
    let reader = cluster.reader();
    if !reader.settings_with_prefix(USER_PREFIX)?.is_empty() {
        return Ok(());
    }
    let pw = password::token()?[..24].to_string();
    let hash = tokio::task::spawn_blocking({
        let pw = pw.clone();
        move || password::hash(&pw)
    })
    .await??;
    let value = serde_json::to_string(&Account {
        hash,
        created_ms: now_ms(),
        valid_from_ms: now_ms(),
    })?;
    let r = cluster
        .write(Command::PutSettingIfAbsent {
            key: format!("{USER_PREFIX}admin"),
            value,
        })
        .await?;
    if r == CommandResult::Changed(false) {
        let path = data_dir.join("console-admin-password");
        write_private(&path, &format!("{pw}\n"))?;
        tracing::info!(
            file = %path.display(),
            "created the console account 'admin'; its password is in this file"
        );
    }
    Ok(())
}

fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(content.as_bytes())
}
