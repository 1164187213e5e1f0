//! Response bodies in JSON and XML.
//!
//! JSON is what CMC documents. XML (the `.xml` endpoint variants) is not documented in the
//! reference, so this crate uses a direct mapping of the same JSON document:
//!
//! * an `<?xml version="1.0" encoding="UTF-8"?>` declaration;
//! * the top-level object's single member becomes the root element (`{"deliveries":[…]}` →
//!   `<deliveries>…</deliveries>`, `{"id":"x"}` → `<id>x</id>`); a top-level object with
//!   several members is wrapped in `<response>`;
//! * an object becomes child elements named after its members, in serialisation order;
//! * an array becomes one child element per item, named by the singular of the array's
//!   name (`deliveries`→`delivery`, `bounces`→`bounce`, `blocks`→`block`,
//!   `statistics`→`statistic`, `errors`→`error`, otherwise without the trailing `s`, or
//!   `item`);
//! * strings, numbers and booleans become escaped text; `null` an empty element.
//!   Characters XML 1.0 forbids are replaced by U+FFFD.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Serialize;

use crate::error::ApiError;
use crate::records::{BlockRecord, BounceRecord, DeliveryRecord, StatisticsRow};

/// Response format, chosen by the endpoint suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `.json` (the default).
    #[default]
    Json,
    /// `.xml`.
    Xml,
}

impl Format {
    /// The format named by a request path's suffix (`…/list.xml` → Xml); `None` for another
    /// suffix.
    pub fn from_path(path: &str) -> Option<Format> {
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
        match ext.as_deref() {
            Some("json") => Some(Format::Json),
            Some("xml") => Some(Format::Xml),
            _ => None,
        }
    }

    /// The Content-Type header value for this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json; charset=utf-8",
            Format::Xml => "application/xml; charset=utf-8",
        }
    }
}

/// `{"id": "<message id>"}`: the answer to `emails/send` and `emails/bulk`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendResponse {
    /// The accepted message's id.
    pub id: String,
}

/// `{"message": "success"}`: the answer to `blocks/cancel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageResponse {
    /// `"success"`.
    pub message: String,
}

impl MessageResponse {
    /// `{"message":"success"}`.
    pub fn success() -> Self {
        MessageResponse {
            message: "success".to_string(),
        }
    }
}

/// `{"deliveries": […]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveriesResponse {
    /// The page of records.
    pub deliveries: Vec<DeliveryRecord>,
}

/// `{"bounces": […]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BouncesResponse {
    /// The page of records.
    pub bounces: Vec<BounceRecord>,
}

/// `{"blocks": […]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlocksResponse {
    /// The page of records.
    pub blocks: Vec<BlockRecord>,
}

/// `{"statistics": […]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatisticsResponse {
    /// Daily rows, or the single `"total"` row.
    pub statistics: Vec<StatisticsRow>,
}

/// `{"errors": […]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorsResponse<'a> {
    /// The errors.
    pub errors: &'a [ApiError],
}

/// Renders any of the response documents above in `format`.
pub fn render<T: Serialize>(format: Format, doc: &T) -> String {
    let json = serde_json::to_string(doc).unwrap_or_else(|_| "{}".to_string());
    match format {
        Format::Json => json,
        Format::Xml => {
            let node = serde_json::from_str::<Node>(&json).unwrap_or(Node::Null);
            to_xml(&node)
        }
    }
}

/// `{"errors":[{"code":"…","field":"…","message":"…"}]}`.
pub fn errors_json(errors: &[ApiError]) -> String {
    render(Format::Json, &ErrorsResponse { errors })
}

/// The XML form of [`errors_json`]: `<errors><error><code>…</code><field>…</field>
/// <message>…</message></error>…</errors>`.
pub fn errors_xml(errors: &[ApiError]) -> String {
    render(Format::Xml, &ErrorsResponse { errors })
}

/// The HTTP status for an error answer: the highest of the errors' statuses (400 for
/// validation, 401 authentication, 403 permission, 415 body type); 400 for an empty list.
pub fn errors_status(errors: &[ApiError]) -> u16 {
    errors
        .iter()
        .map(ApiError::http_status)
        .max()
        .unwrap_or(400)
}

/// A JSON value that keeps object members in document order (serde_json's `Value` sorts
/// them), so XML elements come out in the same order as the JSON members.
enum Node {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Node, E> {
                Ok(Node::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
                Ok(Node::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Node, E> {
                Ok(Node::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Node, E> {
                Ok(Node::Number(n.into()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Node, E> {
                Ok(serde_json::Number::from_f64(n).map_or(Node::Null, Node::Number))
            }
            fn visit_str<E>(self, s: &str) -> Result<Node, E> {
                Ok(Node::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<Node, E> {
                Ok(Node::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Node::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut members = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Node>()? {
                    members.push((k, v));
                }
                Ok(Node::Object(members))
            }
        }
        d.deserialize_any(V)
    }
}

/// Converts a JSON document to XML as described in the module docs.
fn to_xml(doc: &Node) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    match doc {
        Node::Object(members) if members.len() == 1 => {
            let (k, v) = &members[0];
            element(&mut out, k, v);
        }
        other => element(&mut out, "response", other),
    }
    out.push('\n');
    out
}

fn element(out: &mut String, name: &str, v: &Node) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    match v {
        Node::Null => {}
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Number(n) => out.push_str(&n.to_string()),
        Node::String(s) => escape_into(out, s),
        Node::Array(items) => {
            let child = singular(name);
            for item in items {
                element(out, &child, item);
            }
        }
        Node::Object(members) => {
            for (k, v) in members {
                element(out, k, v);
            }
        }
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn singular(name: &str) -> String {
    match name {
        "statistics" => "statistic".to_string(),
        n if n.ends_with("ies") && n.len() > 3 => format!("{}y", &n[..n.len() - 3]),
        n if n.ends_with('s') && n.len() > 1 => n[..n.len() - 1].to_string(),
        _ => "item".to_string(),
    }
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::records::{BounceCode, DeliveryStatus};

    fn delivery() -> DeliveryRecord {
        DeliveryRecord {
            created: "2023-01-25 14:03:09".into(),
            return_path: "info@return.example.jp".into(),
            from: "info@example.com".into(),
            to: "user@example.jp".into(),
            message_id: "<031a32d4@example.com>".into(),
            reason: "".into(),
            sender_ip: "100.100.100.3".into(),
            source_ip: "".into(),
            status: DeliveryStatus::Succeeded,
            subject: "メールマガジン & <test>".into(),
            api_data: "".into(),
        }
    }

    #[test]
    fn errors_shapes_and_status() {
        let errs = vec![
            ApiError::new(
                ErrorCode::SubjectRequired,
                "subject",
                "subject is required.",
            ),
            ApiError::new(ErrorCode::TextRequired, "text", "text is required."),
        ];
        assert_eq!(
            errors_json(&errs),
            r#"{"errors":[{"code":"10-001","field":"subject","message":"subject is required."},{"code":"10-002","field":"text","message":"text is required."}]}"#
        );
        assert_eq!(
            errors_xml(&errs),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<errors><error><code>10-001</code><field>subject</field><message>subject is required.</message></error><error><code>10-002</code><field>text</field><message>text is required.</message></error></errors>\n"
        );
        assert_eq!(errors_status(&errs), 400);
        assert_eq!(errors_status(&[ApiError::authentication_failed()]), 401);
        assert_eq!(errors_status(&[]), 400);
        assert_eq!(errors_json(&[]), r#"{"errors":[]}"#);
    }

    #[test]
    fn list_responses_json_and_xml() {
        let doc = DeliveriesResponse {
            deliveries: vec![delivery()],
        };
        let json: serde_json::Value = serde_json::from_str(&render(Format::Json, &doc)).unwrap();
        assert_eq!(
            json["deliveries"][0]["returnPath"],
            "info@return.example.jp"
        );
        assert_eq!(json["deliveries"][0]["status"], "succeeded");
        let xml = render(Format::Xml, &doc);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<deliveries><delivery><created>2023-01-25 14:03:09</created><returnPath>info@return.example.jp</returnPath>"));
        assert!(xml.contains("<subject>メールマガジン &amp; &lt;test&gt;</subject>"));
        assert!(xml.contains("<reason></reason>"));
        assert!(xml.trim_end().ends_with("</delivery></deliveries>"));

        let stats = StatisticsResponse {
            statistics: vec![StatisticsRow::new("total", 3, 2, 1, 0)],
        };
        assert_eq!(
            render(Format::Json, &stats),
            r#"{"statistics":[{"date":"total","queued":3,"succeeded":2,"failed":1,"blocked":0,"valid":3}]}"#
        );
        assert!(render(Format::Xml, &stats)
            .contains("<statistics><statistic><date>total</date><queued>3</queued>"));

        let blocks = BlocksResponse {
            blocks: vec![BlockRecord {
                created: "2015-12-14 08:46:00".into(),
                email: "to1@example.com".into(),
                id: "cp0ihzuyl3445".into(),
                occurred: 1,
                status: BounceCode::UnknownUser,
            }],
        };
        assert!(render(Format::Xml, &blocks).contains("<blocks><block><created>2015-12-14 08:46:00</created><email>to1@example.com</email><id>cp0ihzuyl3445</id><occurred>1</occurred><status>2</status></block></blocks>"));
        let bounces = BouncesResponse { bounces: vec![] };
        assert_eq!(render(Format::Json, &bounces), r#"{"bounces":[]}"#);
        assert!(render(Format::Xml, &bounces).contains("<bounces></bounces>"));
    }

    #[test]
    fn simple_documents() {
        let id = SendResponse {
            id: "<abc@hato>".into(),
        };
        assert_eq!(render(Format::Json, &id), r#"{"id":"<abc@hato>"}"#);
        assert_eq!(
            render(Format::Xml, &id),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<id>&lt;abc@hato&gt;</id>\n"
        );
        assert_eq!(
            render(Format::Json, &MessageResponse::success()),
            r#"{"message":"success"}"#
        );
        assert!(
            render(Format::Xml, &MessageResponse::success()).contains("<message>success</message>")
        );
    }

    #[test]
    fn generic_xml_mapping() {
        let v = serde_json::json!({"s": "bad\u{1}'\"", "a": 1.5, "b": [true, null, -2], "categories": ["x"]});
        let xml = render(Format::Xml, &v);
        assert!(xml.contains("<response><a>1.5</a><b><item>true</item><item></item><item>-2</item></b><categories><category>x</category></categories><s>bad\u{fffd}&apos;&quot;</s></response>"), "{xml}");
    }

    #[test]
    fn format_from_path() {
        assert_eq!(
            Format::from_path("/transaction/v2/deliveries/list.xml"),
            Some(Format::Xml)
        );
        assert_eq!(
            Format::from_path("/api/v2/emails/send.json?x=1"),
            Some(Format::Json)
        );
        assert_eq!(
            Format::from_path("/api/v2/emails/send.JSON"),
            Some(Format::Json)
        );
        assert_eq!(Format::from_path("/api/v2/emails/send"), None);
        assert_eq!(Format::Xml.content_type(), "application/xml; charset=utf-8");
        assert_eq!(
            Format::default().content_type(),
            "application/json; charset=utf-8"
        );
    }
}
