//! Request and answer plumbing of the console: parsing paths, queries, cookies and JSON
//! bodies; JSON errors in the `{"error", "field"}` shape; security headers on every answer.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// Largest request body accepted (settings forms are small).
const MAX_BODY: usize = 256 * 1024;

/// A request, read completely.
pub struct Req {
    pub method: ::http::Method,
    /// Percent-decoded path segments (empty ones dropped).
    pub segs: Vec<String>,
    pub query: HashMap<String, String>,
    pub headers: ::http::HeaderMap,
    pub body: Bytes,
    pub peer: SocketAddr,
}

impl Req {
    pub async fn read(req: hyper::Request<Incoming>, peer: SocketAddr) -> Result<Req, ApiError> {
        let (parts, body) = req.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(|_| ApiError::new(413, "the request body is too large"))?
            .to_bytes();
        let mut segs = Vec::new();
        for s in parts.uri.path().split('/').filter(|s| !s.is_empty()) {
            segs.push(percent_decode(s).ok_or_else(|| ApiError::new(400, "malformed path"))?);
        }
        let query = parts.uri.query().map(parse_query).unwrap_or_default();
        Ok(Req {
            method: parts.method,
            segs,
            query,
            headers: parts.headers,
            body,
            peer,
        })
    }

    /// The client's IP address, for the audit log.
    pub fn ip(&self) -> String {
        self.peer.ip().to_string()
    }

    /// A query parameter, if present and not empty.
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// A numeric query parameter (absent: `None`; not a number: a 400 naming it).
    pub fn q_num(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.q(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::field(400, name, format!("{name} must be a number"))),
        }
    }

    /// The JSON body as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ApiError::new(
                400,
                format!("the request is not valid JSON for this form: {e}"),
            )
        })
    }

    /// A cookie's value.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(::http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Reject cross-site writes: a browser sends `Origin` with every POST/PUT/DELETE; it must
    /// name this same host.
    pub fn check_same_origin(&self) -> Result<(), ApiError> {
        let Some(origin) = self.header("origin") else {
            return Ok(()); // Not a browser (curl, scripts): the CSRF token still applies.
        };
        let host = self.header("host").unwrap_or_default();
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
        if origin_host.eq_ignore_ascii_case(host) {
            Ok(())
        } else {
            Err(ApiError::new(403, "cross-origin request refused"))
        }
    }
}

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| percent_decode(&s.replace('+', " "));
            Some((dec(k)?, dec(v)?))
        })
        .collect()
}

/// Decode `%XX` escapes (UTF-8); `None` for malformed input.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Check a name typed into a form (the `name` field): 1 to `max` ASCII letters, digits and
/// the characters in `extra`.
pub fn check_name(name: &str, max: usize, extra: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || extra.contains(c));
    if ok {
        return Ok(());
    }
    let extra: Vec<String> = extra.chars().map(|c| format!("'{c}'")).collect();
    Err(ApiError::field(
        400,
        "name",
        format!(
            "{name:?} is not a valid name (1-{max} letters, digits, {})",
            extra.join(", ")
        ),
    ))
}

/// A failed request: status and a message for the person at the console.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub error: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, error: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            field: None,
        }
    }

    /// An error about one input of a form.
    pub fn field(status: u16, field: &str, error: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            field: Some(field.into()),
        }
    }

    /// A storage read failed.
    pub fn store(e: impl std::fmt::Display) -> Self {
        ApiError::new(500, format!("reading this node's data failed: {e}"))
    }

    /// A Raft write or forwarded read failed (typically: no quorum).
    pub fn cluster(e: impl std::fmt::Display) -> Self {
        ApiError::new(
            503,
            format!("the cluster could not commit the change (is a majority of nodes up?): {e}"),
        )
    }
}

/// An answer: status, content type, body and extra headers.
pub struct Answer {
    status: u16,
    content_type: &'static str,
    body: Bytes,
    headers: Vec<(&'static str, String)>,
    cache: bool,
}

impl Answer {
    pub fn json(v: Value) -> Result<Answer, ApiError> {
        Ok(Answer::raw(200, "application/json", v.to_string()))
    }

    pub fn ok() -> Result<Answer, ApiError> {
        Answer::json(json!({}))
    }

    pub fn raw(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Answer {
        Answer {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
            cache: false,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> Answer {
        self.headers.push((name, value));
        self
    }

    pub fn page() -> Answer {
        Answer::raw(
            200,
            "text/html; charset=utf-8",
            hato_console::assets::INDEX_HTML,
        )
    }

    pub fn asset(name: &str) -> Result<Answer, ApiError> {
        let (ct, body) = match name {
            "app.js" => (
                "text/javascript; charset=utf-8",
                hato_console::assets::APP_JS,
            ),
            "app.css" => ("text/css; charset=utf-8", hato_console::assets::APP_CSS),
            _ => return Err(ApiError::new(404, "no such asset")),
        };
        let mut a = Answer::raw(200, ct, body);
        a.cache = true;
        Ok(a)
    }

    pub fn into_response(self) -> hyper::Response<Full<Bytes>> {
        let mut b = hyper::Response::builder()
            .status(self.status)
            .header("content-type", self.content_type)
            .header("content-security-policy", hato_console::assets::CSP)
            .header("x-content-type-options", "nosniff")
            .header("x-frame-options", "DENY")
            .header("referrer-policy", "no-referrer")
            .header("strict-transport-security", "max-age=31536000")
            .header(
                "cache-control",
                if self.cache {
                    "max-age=300"
                } else {
                    "no-store"
                },
            );
        for (k, v) in self.headers {
            b = b.header(k, v);
        }
        b.body(Full::new(self.body)).unwrap_or_else(|_| {
            let mut r = hyper::Response::new(Full::new(Bytes::from_static(b"bad header")));
            *r.status_mut() = ::http::StatusCode::INTERNAL_SERVER_ERROR;
            r
        })
    }
}

impl From<ApiError> for Answer {
    fn from(e: ApiError) -> Answer {
        let mut v = json!({"error": e.error});
        if let Some(f) = e.field {
            v["field"] = json!(f);
        }
        Answer::raw(e.status, "application/json", v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_and_queries() {
        assert_eq!(
            percent_decode("a%40b.example").as_deref(),
            Some("a@b.example")
        );
        assert_eq!(percent_decode("%E3%81%82").as_deref(), Some("あ"));
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%+A"), None);
        let q = parse_query("recipient=a%2Bb%40x.example&status=&sender=c+d");
        assert_eq!(q["recipient"], "a+b@x.example");
        assert_eq!(q["status"], "");
        assert_eq!(q["sender"], "c d");
    }
}
