//! The Customers Mail Cloud v2 API on every node (request forms, validation, MIME building
//! and response shapes are in the pure `hato-cmc` crate; this module does the I/O).
//!
//! Contract:
//! - `send.json` / `bulk.json` answer `{"id": ...}` only after every message of the request
//!   is committed through Raft (`Command::Enqueue`); without a quorum they answer 503 with
//!   error `90-003` and the client should retry.
//! - The From domain must be a sending domain (with a DKIM key), else `13-006`.
//! - List endpoints read this node's copy of the replicated state (it may lag the leader by
//!   the replication delay); `blocks/cancel` is a linearizable write.
//! - Times are shown in UTC (`yyyy-mm-dd HH:MM:SS`).
//! - Every answer has the JSON or XML form its path asks for (`.json` / `.xml`).
//! - `GET /api/v2/openapi.json` describes them (a test keeps it in step with the routes).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hato_cluster::now_ms;
use hato_cluster::ClusterHandle;
use hato_cmc::{
    ApiError, BlockRecord, BlocksResponse, BounceCode, BounceRecord, BouncesResponse,
    DeliveriesResponse, DeliveryRecord, DeliveryStatus, ErrorCode, Format, MessageResponse,
    SendRequest, SendResponse, StatisticsResponse, StatisticsRow, TzOffset,
};
use hato_storage::command::NewMessage;
use hato_storage::{Command, CommandResult, Order};
use warp::http::{Response, StatusCode};
use warp::{Filter, Rejection, Reply};

/// What the API needs from the node's mail pipeline.
pub trait Mailer: Send + Sync + 'static {
    /// A new cluster-unique, time-ordered message id and the acceptance time (ms).
    fn next_id(&self) -> (String, u64);
    /// The host name used in Message-IDs.
    fn hostname(&self) -> String;
    /// Whether `domain` is a sending domain (has a DKIM key).
    fn is_sending_domain(&self, domain: &str) -> bool;
    /// DKIM-sign a message (unchanged if its From domain has no key).
    fn sign(&self, message: Vec<u8>) -> Vec<u8>;
    /// Check an API user's key (may be slow: called off the async threads).
    fn check_api_key(&self, user: &str, key: &str) -> bool;
}

/// Largest request body accepted (attachments included).
const MAX_BODY: u64 = 30 * 1024 * 1024;
/// Most records a list request scans before answering with what it found.
const MAX_SCAN: usize = 500_000;

const TZ: TzOffset = TzOffset::UTC;

#[derive(Clone)]
struct Ctx {
    cluster: ClusterHandle,
    mailer: Arc<dyn Mailer>,
}

/// The CMC routes.
pub fn routes(
    cluster: ClusterHandle,
    mailer: Arc<dyn Mailer>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let ctx = Ctx { cluster, mailer };
    let with = warp::any().map(move || ctx.clone());
    let body = warp::header::optional::<String>("content-type")
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::bytes());
    // Path before method: an unknown path must stay a 404, not become a 405.
    let emails = warp::path!("api" / "v2" / "emails" / String)
        .and(warp::post())
        .and(with.clone())
        .and(warp::addr::remote())
        .and(body)
        .then(emails);
    let transaction = warp::path!("transaction" / "v2" / String / String)
        .and(warp::post())
        .and(with)
        .and(body)
        .then(transaction);
    let openapi = warp::path!("api" / "v2" / "openapi.json")
        .and(warp::get())
        .map(|| {
            warp::reply::with_header(OPENAPI, "content-type", "application/json; charset=utf-8")
        });
    emails.or(transaction).or(openapi)
}

/// The OpenAPI description of these endpoints, served at `GET /api/v2/openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi/openapi.json");

/// The error answer for a request body over the limit.
pub fn too_large() -> Response<String> {
    errors(
        Format::Json,
        &[ApiError::new(
            ErrorCode::BodyTooLarge,
            "",
            format!("the request body is larger than {} MB", MAX_BODY >> 20),
        )],
    )
}

fn answer(format: Format, status: u16, body: String) -> Response<String> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .header("content-type", format.content_type())
        .body(body)
        .expect("valid response")
}

fn ok<T: serde::Serialize>(format: Format, doc: &T) -> Response<String> {
    answer(format, 200, hato_cmc::render(format, doc))
}

fn errors(format: Format, errs: &[ApiError]) -> Response<String> {
    let body = match format {
        Format::Json => hato_cmc::errors_json(errs),
        Format::Xml => hato_cmc::errors_xml(errs),
    };
    answer(format, hato_cmc::errors_status(errs), body)
}

fn not_found() -> Response<String> {
    answer(
        Format::Json,
        404,
        r#"{"errors":[{"code":"","field":"","message":"no such endpoint"}]}"#.into(),
    )
}

fn unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::Unavailable,
        "",
        format!("the cluster could not accept the request ({e}); nothing was stored, try again"),
    )
}

/// Split `send.json` into (`send`, format).
fn endpoint(file: &str) -> Option<(&str, Format)> {
    let (name, _) = file.rsplit_once('.')?;
    Some((name, Format::from_path(file)?))
}

async fn authenticate(ctx: &Ctx, user: &str, key: &str) -> Result<(), Vec<ApiError>> {
    let (m, u, k) = (ctx.mailer.clone(), user.to_string(), key.to_string());
    let good = tokio::task::spawn_blocking(move || m.check_api_key(&u, &k))
        .await
        .unwrap_or(false);
    if good {
        Ok(())
    } else {
        Err(vec![ApiError::authentication_failed()])
    }
}

fn parse(ct: &Option<String>, body: &Bytes) -> Result<hato_cmc::Params, Vec<ApiError>> {
    hato_cmc::parse_form(ct.as_deref().unwrap_or(""), body).map_err(|e| vec![e])
}

async fn emails(
    file: String,
    ctx: Ctx,
    remote: Option<SocketAddr>,
    ct: Option<String>,
    body: Bytes,
) -> Response<String> {
    let Some((name, format)) = endpoint(&file) else {
        return not_found();
    };
    let source_ip = remote.map(|a| a.ip().to_string()).unwrap_or_default();
    let result = match name {
        "send" => send(&ctx, &ct, &body, &source_ip).await,
        "bulk" => bulk(&ctx, &ct, &body, &source_ip).await,
        _ => return not_found(),
    };
    match result {
        Ok(id) => ok(format, &SendResponse { id }),
        Err(e) => errors(format, &e),
    }
}

fn check_from(ctx: &Ctx, req: &SendRequest) -> Result<(), Vec<ApiError>> {
    let domain = req
        .from
        .address
        .rsplit_once('@')
        .map(|(_, d)| d)
        .unwrap_or("");
    if ctx.mailer.is_sending_domain(domain) {
        Ok(())
    } else {
        Err(vec![ApiError::dkim_not_configured()])
    }
}

/// Build, sign and describe one message for the queue.
fn new_message(
    ctx: &Ctx,
    req: &SendRequest,
    id: String,
    at_ms: u64,
    source_ip: &str,
) -> NewMessage {
    let message_id = format!("{id}@{}", ctx.mailer.hostname());
    let date = hato_cmc::format_rfc2822((at_ms / 1000) as i64, TZ);
    let body = ctx
        .mailer
        .sign(hato_cmc::build_message(req, &message_id, &date));
    let (mail_from, recipients) = hato_cmc::envelope(req);
    NewMessage {
        id,
        received_ms: at_ms,
        via: "api".into(),
        source_ip: source_ip.to_string(),
        auth_user: Some(req.api_user.clone()),
        api_data: req.api_data().map(str::to_string),
        mail_from,
        recipients,
        subject: req.subject.clone(),
        message_id: Some(format!("<{message_id}>")),
        body: body.into(),
    }
}

async fn enqueue(ctx: &Ctx, msg: NewMessage) -> Result<(), Vec<ApiError>> {
    match ctx.cluster.write(Command::Enqueue(Box::new(msg))).await {
        Ok(CommandResult::Enqueued { .. }) => Ok(()),
        Ok(other) => Err(vec![unavailable(format!("unexpected result {other:?}"))]),
        Err(e) => Err(vec![unavailable(e)]),
    }
}

async fn send(
    ctx: &Ctx,
    ct: &Option<String>,
    body: &Bytes,
    source_ip: &str,
) -> Result<String, Vec<ApiError>> {
    let params = parse(ct, body)?;
    let req = hato_cmc::send_request(&params)?;
    authenticate(ctx, &req.api_user, &req.api_key).await?;
    check_from(ctx, &req)?;
    let (id, at_ms) = ctx.mailer.next_id();
    enqueue(ctx, new_message(ctx, &req, id.clone(), at_ms, source_ip)).await?;
    Ok(id)
}

/// One job id; each recipient becomes its own message `<job>n<index>`, all proposed at once
/// so they share Raft appends.
async fn bulk(
    ctx: &Ctx,
    ct: &Option<String>,
    body: &Bytes,
    source_ip: &str,
) -> Result<String, Vec<ApiError>> {
    let params = parse(ct, body)?;
    let req = hato_cmc::bulk_request(&params)?;
    authenticate(ctx, &req.message.api_user, &req.message.api_key).await?;
    check_from(ctx, &req.message)?;
    let (job, at_ms) = ctx.mailer.next_id();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, one) in req.messages().enumerate() {
        let msg = new_message(ctx, &one, format!("{job}n{i}"), at_ms, source_ip);
        let ctx = ctx.clone();
        tasks.spawn(async move { enqueue(&ctx, msg).await });
    }
    let mut first_err = None;
    while let Some(r) = tasks.join_next().await {
        if let Ok(Err(e)) = r {
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        // Some messages may have been accepted; a retry sends those again.
        Some(e) => Err(e),
        None => Ok(job),
    }
}

async fn transaction(
    kind: String,
    file: String,
    ctx: Ctx,
    ct: Option<String>,
    body: Bytes,
) -> Response<String> {
    let Some((action, format)) = endpoint(&file) else {
        return not_found();
    };
    let params = match parse(&ct, &body) {
        Ok(p) => p,
        Err(e) => return errors(format, &e),
    };
    let now_unix = (now_ms() / 1000) as i64;
    let result = match (kind.as_str(), action) {
        ("deliveries", "list") => deliveries(&ctx, &params, now_unix, format).await,
        ("bounces", "list") => bounces(&ctx, &params, now_unix, format).await,
        ("blocks", "list") => blocks(&ctx, &params, format).await,
        ("blocks", "cancel") => cancel(&ctx, &params, format).await,
        ("statistics", "list") => statistics(&ctx, &params, format).await,
        _ => return not_found(),
    };
    result.unwrap_or_else(|e| errors(format, &e))
}

fn created(ms: u64) -> String {
    hato_cmc::format_datetime((ms / 1000) as i64, TZ)
}

/// A delivery-log record as CMC shows it (lists and webhook events); `None` for statuses
/// CMC does not have (`blocked` recipients appear as bounces with code 10).
pub fn delivery_record(r: hato_storage::command::DeliveryRecord) -> Option<DeliveryRecord> {
    let status = DeliveryStatus::parse(&r.status)?;
    Some(DeliveryRecord {
        created: created(r.at_ms),
        return_path: if r.return_path.is_empty() {
            r.mail_from.clone()
        } else {
            r.return_path
        },
        from: r.mail_from,
        to: r.recipient,
        message_id: r.message_id.unwrap_or_default(),
        reason: r.reason,
        sender_ip: r.egress_ip,
        source_ip: r.source_ip,
        status,
        subject: r.subject,
        api_data: r.api_data.unwrap_or_default(),
    })
}

/// A bounce record as CMC shows it.
pub fn bounce_record(r: hato_storage::command::BounceRecord) -> BounceRecord {
    BounceRecord {
        created: created(r.at_ms),
        status: BounceCode::from_code(r.code).unwrap_or(BounceCode::Others),
        return_path: if r.return_path.is_empty() {
            r.mail_from.clone()
        } else {
            r.return_path
        },
        from: r.mail_from,
        to: r.recipient,
        message_id: r.message_id.unwrap_or_default(),
        subject: r.subject,
        api_data: r.api_data.unwrap_or_default(),
        reason: r.detail,
    }
}

/// A block-list entry as CMC shows it.
pub fn block_record(b: &hato_storage::command::BlockRecord) -> BlockRecord {
    BlockRecord {
        created: created(b.at_ms),
        email: b.address.clone(),
        id: block_id(&b.address),
        occurred: b.occurred as u64,
        status: BounceCode::from_code(b.code).unwrap_or(BounceCode::Others),
    }
}

fn window_ms(w: hato_cmc::TimeWindow) -> (u64, u64) {
    (
        w.start.map_or(0, |s| s.max(0) as u64 * 1000),
        w.end.map_or(u64::MAX, |e| e.max(0) as u64 * 1000),
    )
}

/// Collect the records a time-ordered scan offers (`None`: scanned, not matching) until the
/// requested page is full or `MAX_SCAN` records were looked at.
fn first_matches<T>(
    page: &hato_cmc::Page,
    scan: impl FnOnce(&mut dyn FnMut(Option<T>) -> bool) -> Result<(), hato_storage::StoreError>,
) -> Result<Vec<T>, Vec<ApiError>> {
    let want = (page.page as usize + 1) * page.rows as usize;
    let mut all = Vec::new();
    let mut scanned = 0;
    scan(&mut |rec| {
        scanned += 1;
        all.extend(rec);
        all.len() < want && scanned < MAX_SCAN
    })
    .map_err(|e| vec![unavailable(e)])?;
    Ok(all)
}

async fn deliveries(
    ctx: &Ctx,
    p: &hato_cmc::Params,
    now_unix: i64,
    format: Format,
) -> Result<Response<String>, Vec<ApiError>> {
    let q = hato_cmc::deliveries_query(p, now_unix, TZ)?;
    authenticate(ctx, &q.credentials.api_user, &q.credentials.api_key).await?;
    let (start, end) = window_ms(q.window(TZ));
    let all = first_matches(&q.page, |keep| {
        ctx.cluster
            .reader()
            .for_each_delivery(Order::OldestFirst, start, end, |r| {
                keep(delivery_record(r).filter(|rec| q.matches(rec)))
            })
    })?;
    let deliveries = q.page.apply(&all).to_vec();
    Ok(ok(format, &DeliveriesResponse { deliveries }))
}

async fn bounces(
    ctx: &Ctx,
    p: &hato_cmc::Params,
    now_unix: i64,
    format: Format,
) -> Result<Response<String>, Vec<ApiError>> {
    let q = hato_cmc::bounces_query(p, now_unix, TZ)?;
    authenticate(ctx, &q.credentials.api_user, &q.credentials.api_key).await?;
    let (start, end) = window_ms(q.window(TZ));
    let all = first_matches(&q.page, |keep| {
        ctx.cluster
            .reader()
            .for_each_bounce(Order::OldestFirst, start, end, |r| {
                keep(Some(bounce_record(r)).filter(|rec| q.matches(rec)))
            })
    })?;
    let bounces = q.page.apply(&all).to_vec();
    Ok(ok(format, &BouncesResponse { bounces }))
}

/// A stable short id for a block entry (CMC shows one; we derive it from the address).
fn block_id(address: &str) -> String {
    let h = address
        .to_lowercase()
        .bytes()
        .fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
    format!("b{h:016x}")
}

async fn blocks(
    ctx: &Ctx,
    p: &hato_cmc::Params,
    format: Format,
) -> Result<Response<String>, Vec<ApiError>> {
    let q = hato_cmc::blocks_query(p)?;
    authenticate(ctx, &q.credentials.api_user, &q.credentials.api_key).await?;
    let window = q.window(TZ);
    let now = now_ms();
    let list = ctx
        .cluster
        .reader()
        .blocks()
        .map_err(|e| vec![unavailable(e)])?;
    let mut all: Vec<BlockRecord> = Vec::new();
    for b in list {
        let rec = block_record(&b);
        let removed = b.expires_at_ms.is_some_and(|e| e <= now);
        if window.contains((b.at_ms / 1000) as i64) && q.matches(&rec, removed) {
            all.push(rec);
        }
    }
    let blocks = q.page.apply(&all).to_vec();
    Ok(ok(format, &BlocksResponse { blocks }))
}

async fn cancel(
    ctx: &Ctx,
    p: &hato_cmc::Params,
    format: Format,
) -> Result<Response<String>, Vec<ApiError>> {
    let q = hato_cmc::blocks_cancel(p)?;
    authenticate(ctx, &q.credentials.api_user, &q.credentials.api_key).await?;
    for address in q.emails {
        ctx.cluster
            .write(Command::Unblock { address })
            .await
            .map_err(|e| vec![unavailable(e)])?;
    }
    Ok(ok(format, &MessageResponse::success()))
}

async fn statistics(
    ctx: &Ctx,
    p: &hato_cmc::Params,
    format: Format,
) -> Result<Response<String>, Vec<ApiError>> {
    let q = hato_cmc::statistics_query(p)?;
    authenticate(ctx, &q.credentials.api_user, &q.credentials.api_key).await?;
    let r = ctx.cluster.reader();
    let mut rows = Vec::new();
    for day in q.days() {
        let d = day.days_since_epoch().max(0) as u64;
        let n = |c: &str| r.stat(d, c).unwrap_or(0);
        rows.push(StatisticsRow::new(
            format!("{:04}-{:02}-{:02}", day.year, day.month, day.day),
            n("received"),
            n("succeeded"),
            n("failed"),
            n("blocked"),
        ));
    }
    let statistics = q.finish(rows);
    Ok(ok(format, &StatisticsResponse { statistics }))
}
