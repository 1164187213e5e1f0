//! `POST /api/v2/emails/bulk.json`: up to 1000 recipients, each with its own merge values
//! substituted into `subject`, `text` and `html` as `((#key#))`.

use std::collections::HashMap;

use serde_json::Value;

use crate::address::Mailbox;
use crate::encoding::Charset;
use crate::error::{ApiError, ErrorCode};
use crate::params::Params;
use crate::send::{
    not_encodable, parse_request, subject_too_long, RequestKind, SendRequest, MAX_SUBJECT_CHARS,
};

/// Most recipients in one bulk request.
pub const MAX_BULK_RECIPIENTS: usize = 1000;
/// Most JSON properties per recipient object (`name` and `address` count when sent).
pub const MAX_RECIPIENT_PROPERTIES: usize = 100;
/// Most bytes (UTF-8) in one merge value.
pub const MAX_MERGE_VALUE_BYTES: usize = 5 * 1024;

/// One bulk recipient and its merge values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRecipient {
    /// The recipient (becomes the message's only `To`).
    pub mailbox: Mailbox,
    /// Merge values by key, in the order given. Always includes `name` (possibly empty) and
    /// `address`, so `((#name#))` and `((#address#))` work. Numbers and booleans are kept as
    /// their JSON text, `null` as `""`.
    pub vars: Vec<(String, String)>,
}

/// A validated bulk request: the shared message (its `to` is empty) and the recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRequest {
    /// Everything except the recipients; `subject`/`text`/`html` still hold the merge tags.
    pub message: SendRequest,
    /// 1–1000 recipients.
    pub recipients: Vec<BulkRecipient>,
}

impl BulkRequest {
    /// Every recipient's personalised message, in order.
    pub fn messages(&self) -> impl Iterator<Item = SendRequest> + '_ {
        (0..self.recipients.len()).filter_map(move |i| personalise(self, i))
    }
}

/// Validates the parameters of `POST /api/v2/emails/bulk.json`.
///
/// Same rules as [`crate::send_request`] except for `to`: 1–1000 entries (`12-001` beyond),
/// each an address string or an object `{name, address, <key>: value, …}` with at most 100
/// properties (`12-006`), each value a string/number/boolean/null (`11-010`) of at most 5 KB
/// (`12-007`). With ISO-2022-JP, merge values must be representable (`11-009`), and every
/// personalised subject must stay within 512 characters (`12-004`). Every per-recipient
/// error has field `to`, names the recipient as `to[i] (address)` in its message and carries
/// the index in [`ApiError::recipient`].
pub fn bulk_request(p: &Params) -> Result<BulkRequest, Vec<ApiError>> {
    let (message, entries) = parse_request(p, RequestKind::Bulk)?;
    let mut errors = Vec::new();
    let mut recipients = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let addr = entry.mailbox.address.clone();
        let recipient_error = |code: ErrorCode, detail: String| {
            ApiError::new(code, "to", format!("to[{i}] ({addr}): {detail}")).at_recipient(i)
        };
        if entry.sent > MAX_RECIPIENT_PROPERTIES {
            errors.push(recipient_error(
                ErrorCode::TooManyProperties,
                format!(
                    "at most {MAX_RECIPIENT_PROPERTIES} properties are allowed ({} given).",
                    entry.sent
                ),
            ));
            continue;
        }
        let mut vars = Vec::with_capacity(entry.props.len());
        let mut ok = true;
        for (key, value) in entry.props {
            let text = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => String::new(),
                _ => {
                    errors.push(recipient_error(
                        ErrorCode::InvalidMergeValue,
                        format!("merge value '{key}' must be a string."),
                    ));
                    ok = false;
                    continue;
                }
            };
            if text.len() > MAX_MERGE_VALUE_BYTES {
                errors.push(recipient_error(
                    ErrorCode::MergeValueTooLong,
                    format!("merge value '{key}' exceeds {MAX_MERGE_VALUE_BYTES} bytes."),
                ));
                ok = false;
                continue;
            }
            if message.charset == Charset::Iso2022Jp {
                if let Some(c) = message.charset.first_unencodable(&text) {
                    let mut e = not_encodable("to", c).at_recipient(i);
                    e.message = format!("to[{i}] ({addr}): merge value '{key}': {}", e.message);
                    errors.push(e);
                    ok = false;
                    continue;
                }
            }
            vars.push((key, text));
        }
        if !ok {
            continue;
        }
        let map: HashMap<&str, &str> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if substitute(&message.subject, &map).chars().count() > MAX_SUBJECT_CHARS {
            errors.push(subject_too_long(Some((i, &addr))));
            continue;
        }
        recipients.push(BulkRecipient {
            mailbox: entry.mailbox,
            vars,
        });
    }
    if errors.is_empty() {
        Ok(BulkRequest {
            message,
            recipients,
        })
    } else {
        Err(errors)
    }
}

/// Recipient `index`'s own message: `To` is that recipient alone, and its merge values are
/// substituted into `subject`, `text` and `html`. `None` if `index` is out of range.
///
/// Substitution is a single pass: `((#key#))` with a known key becomes the value (not
/// HTML-escaped, values are not re-scanned); an unknown key is left as written.
pub fn personalise(bulk: &BulkRequest, index: usize) -> Option<SendRequest> {
    let r = bulk.recipients.get(index)?;
    let map: HashMap<&str, &str> = r
        .vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut msg = bulk.message.clone();
    msg.to = vec![r.mailbox.clone()];
    msg.subject = substitute(&msg.subject, &map);
    msg.text = msg.text.map(|t| substitute(&t, &map));
    msg.html = msg.html.map(|t| substitute(&t, &map));
    Some(msg)
}

/// Replaces `((#key#))` tags whose key is in `vars`.
pub(crate) fn substitute(template: &str, vars: &HashMap<&str, &str>) -> String {
    const OPEN: &str = "((#";
    const CLOSE: &str = "#))";
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find(OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        match after.find(CLOSE) {
            Some(end) => {
                let key = &after[..end];
                match vars.get(key) {
                    Some(v) if !key.contains(OPEN) => {
                        out.push_str(v);
                        rest = &after[end + CLOSE.len()..];
                    }
                    _ => {
                        out.push_str(OPEN);
                        rest = after;
                    }
                }
            }
            None => {
                out.push_str(OPEN);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::parse_form;
    use serde_json::json;

    fn base(to: Value) -> Value {
        json!({
            "api_user": "u", "api_key": "k",
            "from": {"name": "Shop", "address": "shop@example.jp"},
            "to": to,
            "subject": "((#name#))様: ご注文((#order#))",
            "text": "((#name#))様\n注文番号 ((#order#)) / 金額 ((#price#))円 ((#unknown#))",
            "html": "<p>((#name#))</p>"
        })
    }

    fn parse(v: Value) -> Result<BulkRequest, Vec<ApiError>> {
        bulk_request(&parse_form("application/json", v.to_string().as_bytes()).unwrap())
    }

    #[test]
    fn substitution_per_recipient() {
        let b = parse(base(json!([
            {"name":"山田","address":"yamada@example.jp","order":"A-1","price":1200},
            {"name":"佐藤","address":"sato@example.jp","order":"B-2","price":null},
            "plain@example.jp"
        ])))
        .unwrap();
        assert_eq!(b.recipients.len(), 3);
        assert!(b.message.to.is_empty());
        let m0 = personalise(&b, 0).unwrap();
        assert_eq!(m0.to, vec![Mailbox::with_name("山田", "yamada@example.jp")]);
        assert_eq!(m0.subject, "山田様: ご注文A-1");
        assert_eq!(
            m0.text.as_deref(),
            Some("山田様\n注文番号 A-1 / 金額 1200円 ((#unknown#))")
        );
        assert_eq!(m0.html.as_deref(), Some("<p>山田</p>"));
        let m1 = personalise(&b, 1).unwrap();
        assert_eq!(m1.subject, "佐藤様: ご注文B-2");
        assert!(m1.text.unwrap().contains("金額 円"));
        let m2 = personalise(&b, 2).unwrap();
        assert_eq!(m2.subject, "様: ご注文((#order#))");
        assert!(personalise(&b, 3).is_none());
        assert_eq!(b.messages().count(), 3);
    }

    #[test]
    fn substitute_edge_cases() {
        let vars: HashMap<&str, &str> = [("a", "((#b#))"), ("b", "B"), ("", "E")]
            .into_iter()
            .collect();
        assert_eq!(substitute("((#a#))", &vars), "((#b#))");
        assert_eq!(substitute("x((#a", &vars), "x((#a");
        assert_eq!(substitute("((#((#b#))", &vars), "((#B");
        assert_eq!(substitute("((##))", &vars), "E");
        assert_eq!(substitute("no tags", &vars), "no tags");
    }

    #[test]
    fn thousand_recipients_allowed_and_more_refused() {
        let to: Vec<Value> = (0..1000)
            .map(|i| json!({"address": format!("u{i}@x.jp"), "order": i}))
            .collect();
        let b = parse(base(json!(to))).unwrap();
        assert_eq!(b.recipients.len(), 1000);
        assert_eq!(personalise(&b, 999).unwrap().subject, "様: ご注文999");
        let to: Vec<Value> = (0..1001).map(|i| json!(format!("u{i}@x.jp"))).collect();
        let e = parse(base(json!(to))).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].code, ErrorCode::TooManyTo);
    }

    #[test]
    fn per_recipient_errors_name_the_recipient() {
        let mut many = serde_json::Map::new();
        many.insert("address".into(), json!("many@x.jp"));
        for k in 0..100 {
            many.insert(format!("k{k}"), json!("v"));
        }
        let e = parse(base(json!([
            {"address":"ok@x.jp"},
            {"address":"nested@x.jp","order":{"x":1}},
            {"address":"long@x.jp","order":"x".repeat(5121)},
            Value::Object(many),
            {"address":"bad address"},
            {"address":"subj@x.jp","name":"あ".repeat(520)}
        ])))
        .unwrap_err();
        // the malformed address is reported by the shared address parser first
        assert_eq!(e[0].code, ErrorCode::InvalidTo);
        assert_eq!(e[0].recipient, Some(4));
        let e = parse(base(json!([
            {"address":"ok@x.jp"},
            {"address":"nested@x.jp","order":{"x":1}},
            {"address":"long@x.jp","order":"x".repeat(5121)},
            Value::Object({
                let mut m = serde_json::Map::new();
                m.insert("address".into(), json!("many@x.jp"));
                for k in 0..100 { m.insert(format!("k{k}"), json!("v")); }
                m
            }),
            {"address":"subj@x.jp","name":"あ".repeat(520)}
        ])))
        .unwrap_err();
        let got: Vec<(&str, Option<usize>)> =
            e.iter().map(|e| (e.code.as_str(), e.recipient)).collect();
        assert_eq!(
            got,
            vec![
                ("11-010", Some(1)),
                ("12-007", Some(2)),
                ("12-006", Some(3)),
                ("12-004", Some(4))
            ]
        );
        assert!(e.iter().all(|e| e.field == "to" || e.field == "subject"));
        assert!(e[0].message.starts_with("to[1] (nested@x.jp): "));
        assert!(e[3].message.contains("to[4] (subj@x.jp)"));
        // exactly 100 properties (address + 99) is fine
        let mut hundred = serde_json::Map::new();
        hundred.insert("address".into(), json!("h@x.jp"));
        for k in 0..99 {
            hundred.insert(format!("k{k}"), json!("v"));
        }
        assert!(parse(base(json!([Value::Object(hundred)]))).is_ok());
        // exactly 5 KB is fine
        assert!(parse(base(json!([{"address":"a@x.jp","note":"x".repeat(5120)}]))).is_ok());
    }

    #[test]
    fn iso2022jp_merge_values_checked() {
        let mut v =
            base(json!([{"address":"a@x.jp","order":"🍣"}, {"address":"b@x.jp","order":"寿司"}]));
        v["charset"] = json!("ISO-2022-JP");
        let e = parse(v.clone()).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].code, ErrorCode::NotEncodable);
        assert_eq!(e[0].recipient, Some(0));
        assert!(e[0]
            .message
            .starts_with("to[0] (a@x.jp): merge value 'order'"));
        v["to"] = json!([{"address":"b@x.jp","order":"寿司"}]);
        let b = parse(v).unwrap();
        assert_eq!(personalise(&b, 0).unwrap().charset, Charset::Iso2022Jp);
    }

    #[test]
    fn shared_validation_still_applies() {
        let mut v = base(json!([{"address":"a@x.jp"}]));
        v.as_object_mut().unwrap().remove("subject");
        let e = parse(v).unwrap_err();
        assert_eq!(e[0].code, ErrorCode::SubjectRequired);
        let e = parse(base(json!([]))).unwrap_err();
        assert_eq!(e[0].code, ErrorCode::ToRequired);
    }
}
