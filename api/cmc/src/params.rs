//! Request decoding: JSON, `application/x-www-form-urlencoded` and `multipart/form-data`
//! bodies all become one [`Params`] value.
//!
//! Representation: every field is a [`serde_json::Value`]. A JSON body contributes its
//! top-level members unchanged. A form or multipart field contributes a string; a key repeated
//! in a form body becomes an array of strings; PHP-style bracket keys (`to[0][address]=…`,
//! `to[]=…`, `search_option[to]=full`) become nested arrays/objects. Multipart parts that carry
//! a `filename` (and any part named `attachment<N>`) become [`FilePart`]s.
//!
//! The interpretation of a field (JSON text inside a string, numbers where strings are
//! expected) happens later, in the typed accessors used by the request validators.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorCode};
use crate::multipart;

/// One uploaded file from a multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePart {
    /// The form field name (`attachment1`, …).
    pub name: String,
    /// The decoded file name (RFC 2231, RFC 2047 and raw UTF-8 forms are understood; path
    /// components are removed). Empty when the part had no file name.
    pub filename: String,
    /// The part's `Content-Type` media type (lower-cased, without parameters), if it had one.
    pub content_type: Option<String>,
    /// The file contents.
    pub data: Vec<u8>,
}

/// Decoded request parameters: named JSON values plus uploaded files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    fields: BTreeMap<String, Value>,
    files: Vec<FilePart>,
}

impl Params {
    /// An empty parameter set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`, replacing any earlier value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.fields.insert(name.into(), value.into());
    }

    /// Adds one form field the way a form body does: plain keys repeat into arrays, bracket
    /// keys (`a[b][]`) build nested objects/arrays.
    pub fn append_form_field(&mut self, key: &str, value: String) {
        insert_form_pair(&mut self.fields, key, value);
    }

    /// Adds an uploaded file.
    pub fn add_file(&mut self, file: FilePart) {
        self.files.push(file);
    }

    /// The raw value of field `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.get(name)
    }

    /// All field names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// All uploaded files in body order.
    pub fn files(&self) -> &[FilePart] {
        &self.files
    }

    /// The first uploaded file whose field name is `name`.
    pub fn file(&self, name: &str) -> Option<&FilePart> {
        self.files.iter().find(|f| f.name == name)
    }

    /// Field `name` as text. Strings are returned as-is, numbers and booleans as SDKs send them
    /// (`2`, `true`) are converted to their text; `null`, a missing field and `""` are `None`.
    /// A repeated form key yields its last value (PHP semantics). Objects and arrays are a
    /// `11-011` error.
    pub fn text(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.fields.get(name) {
            None => Ok(None),
            Some(v) => scalar_text(v, name),
        }
    }

    /// Field `name` as structured JSON: a string holding JSON text (`{…}`/`[…]`, as multipart
    /// and form bodies carry objects) is parsed; arrays are returned with each string element
    /// that holds a JSON object parsed the same way. A string that is not JSON text is
    /// returned unchanged. `null`, `""` and a missing field are `None`.
    pub fn json(&self, name: &str) -> Option<Value> {
        let v = self.fields.get(name)?;
        let v = unwrap_json_text(v);
        match v {
            Value::Null => None,
            Value::String(ref s) if s.is_empty() => None,
            Value::Array(items) => Some(Value::Array(
                items.iter().map(unwrap_json_text).collect::<Vec<_>>(),
            )),
            other => Some(other),
        }
    }
}

/// Converts a scalar JSON value to text (see [`Params::text`]).
pub(crate) fn scalar_text(v: &Value, name: &str) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Array(items) if !items.is_empty() && items.iter().all(is_scalar) => {
            scalar_text(items.last().unwrap_or(&Value::Null), name)
        }
        _ => Err(ApiError::wrong_type(name, "a string")),
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// If `v` is a string holding JSON object/array text, the parsed value; otherwise a clone.
fn unwrap_json_text(v: &Value) -> Value {
    if let Value::String(s) = v {
        let t = s.trim();
        if (t.starts_with('{') && t.ends_with('}')) || (t.starts_with('[') && t.ends_with(']')) {
            if let Ok(parsed) = serde_json::from_str::<Value>(t) {
                return parsed;
            }
        }
    }
    v.clone()
}

/// Decodes a request body into [`Params`] according to its `Content-Type`.
///
/// * `application/json` (and `*+json`): the body must be a JSON object.
/// * `application/x-www-form-urlencoded`: UTF-8, `+` is a space, repeated and bracket keys as
///   described in the module docs.
/// * `multipart/form-data`: the boundary comes from the Content-Type; fields become strings,
///   file parts become [`FilePart`]s.
/// * A missing or `text/plain` Content-Type is sniffed: a body starting with `{` is JSON,
///   anything else is form-urlencoded.
///
/// Errors: `90-001` for a body that does not decode, `90-002` for any other media type.
pub fn parse_form(content_type: &str, body: &[u8]) -> Result<Params, ApiError> {
    let (media, ct_params) = crate::encoding::parse_header_params(content_type);
    let media = media.to_ascii_lowercase();
    let sniff_json = || {
        body.iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{')
    };
    match media.as_str() {
        "application/json" => parse_json(body),
        m if m.starts_with("application/") && m.ends_with("+json") => parse_json(body),
        "application/x-www-form-urlencoded" => parse_urlencoded(body),
        "multipart/form-data" => {
            let boundary = ct_params
                .iter()
                .find(|(k, _)| k == "boundary")
                .map(|(_, v)| v.clone())
                .filter(|b| !b.is_empty())
                .ok_or_else(|| ApiError::malformed("multipart/form-data without a boundary"))?;
            multipart::parse(&boundary, body)
        }
        "" | "text/plain" => {
            if sniff_json() {
                parse_json(body)
            } else {
                parse_urlencoded(body)
            }
        }
        other => Err(ApiError::new(
            ErrorCode::UnsupportedContentType,
            "",
            format!(
                "Unsupported Content-Type '{other}'. Use application/json, application/x-www-form-urlencoded or multipart/form-data."
            ),
        )),
    }
}

fn parse_json(body: &[u8]) -> Result<Params, ApiError> {
    let mut params = Params::new();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(params);
    }
    let v: Value = serde_json::from_slice(body).map_err(ApiError::malformed)?;
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                params.fields.insert(k, v);
            }
            Ok(params)
        }
        _ => Err(ApiError::malformed("the JSON body must be an object")),
    }
}

fn parse_urlencoded(body: &[u8]) -> Result<Params, ApiError> {
    let mut params = Params::new();
    for pair in body.split(|b| *b == b'&') {
        let pair = trim_ascii(pair);
        if pair.is_empty() {
            continue;
        }
        let (k, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let key = percent_decode(k)?;
        if key.is_empty() {
            continue;
        }
        let value = percent_decode(v)?;
        insert_form_pair(&mut params.fields, &key, value);
    }
    normalise_indexed_objects(&mut params.fields);
    Ok(params)
}

fn trim_ascii(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

/// Form percent-decoding: `+` is a space, `%XX` a byte; the result must be UTF-8.
fn percent_decode(s: &[u8]) -> Result<String, ApiError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex_val(s[i + 1]), hex_val(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ApiError::malformed("form data is not valid UTF-8"))
}

pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits `a[b][]` into (`a`, [`b`, ``]). A key without a well-formed bracket suffix is plain.
fn split_bracket_key(key: &str) -> (&str, Vec<&str>) {
    let Some(open) = key.find('[') else {
        return (key, Vec::new());
    };
    if open == 0 || !key.ends_with(']') {
        return (key, Vec::new());
    }
    let base = &key[..open];
    let mut segs = Vec::new();
    let mut rest = &key[open..];
    while !rest.is_empty() {
        if !rest.starts_with('[') {
            return (key, Vec::new());
        }
        let Some(close) = rest.find(']') else {
            return (key, Vec::new());
        };
        segs.push(&rest[1..close]);
        rest = &rest[close + 1..];
    }
    (base, segs)
}

/// Inserts one form pair into `fields` (plain keys repeat into arrays; bracket keys nest).
pub(crate) fn insert_form_pair(fields: &mut BTreeMap<String, Value>, key: &str, value: String) {
    let (base, segs) = split_bracket_key(key);
    if segs.is_empty() {
        match fields.get_mut(base) {
            None => {
                fields.insert(base.to_string(), Value::String(value));
            }
            Some(Value::Array(items)) => items.push(Value::String(value)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(value)]);
            }
        }
        return;
    }
    let slot = fields.entry(base.to_string()).or_insert(Value::Null);
    insert_path(slot, &segs, value);
}

fn insert_path(slot: &mut Value, segs: &[&str], value: String) {
    let Some((first, rest)) = segs.split_first() else {
        *slot = Value::String(value);
        return;
    };
    if first.is_empty() {
        if !slot.is_array() {
            *slot = Value::Array(Vec::new());
        }
        if let Value::Array(items) = slot {
            items.push(Value::Null);
            if let Some(last) = items.last_mut() {
                insert_path(last, rest, value);
            }
        }
    } else {
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        if let Value::Object(map) = slot {
            let child = map.entry(first.to_string()).or_insert(Value::Null);
            insert_path(child, rest, value);
        }
    }
}

/// Turns objects whose keys are all decimal indices (`to[0][…]`, `to[1][…]`) into arrays
/// ordered by index.
pub(crate) fn normalise_indexed_objects(fields: &mut BTreeMap<String, Value>) {
    for v in fields.values_mut() {
        normalise_value(v);
    }
}

fn normalise_value(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(normalise_value),
        Value::Object(map) => {
            map.values_mut().for_each(normalise_value);
            let all_indices = !map.is_empty()
                && map.keys().all(|k| {
                    !k.is_empty() && k.len() <= 9 && k.bytes().all(|b| b.is_ascii_digit())
                });
            if all_indices {
                let mut entries: Vec<(u64, Value)> = std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| (k.parse::<u64>().unwrap_or(0), v))
                    .collect();
                entries.sort_by_key(|(i, _)| *i);
                *v = Value::Array(entries.into_iter().map(|(_, v)| v).collect());
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_body_keeps_values() {
        let p = parse_form(
            "application/json; charset=utf-8",
            br#"{"api_user":"u","to":[{"name":"A","address":"a@example.com"}],"attachments":2,"flag":true}"#,
        )
        .unwrap();
        assert_eq!(p.text("api_user").unwrap().as_deref(), Some("u"));
        assert_eq!(p.text("attachments").unwrap().as_deref(), Some("2"));
        assert_eq!(p.text("flag").unwrap().as_deref(), Some("true"));
        assert_eq!(
            p.json("to").unwrap(),
            json!([{"name":"A","address":"a@example.com"}])
        );
        assert_eq!(p.text("missing").unwrap(), None);
        let err = p.text("to").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidType);
        assert_eq!(err.field, "to");
    }

    #[test]
    fn json_body_must_be_an_object() {
        let e = parse_form("application/json", b"[1,2]").unwrap_err();
        assert_eq!(e.code, ErrorCode::MalformedBody);
        let e = parse_form("application/json", b"{\"a\":").unwrap_err();
        assert_eq!(e.code, ErrorCode::MalformedBody);
        assert!(parse_form("application/json", b"  ")
            .unwrap()
            .names()
            .next()
            .is_none());
    }

    #[test]
    fn null_and_empty_are_absent() {
        let p = parse_form("application/json", br#"{"text":null,"html":"","cc":[]}"#).unwrap();
        assert_eq!(p.text("text").unwrap(), None);
        assert_eq!(p.text("html").unwrap(), None);
        assert_eq!(p.json("text"), None);
        assert_eq!(p.json("cc"), Some(json!([])));
    }

    #[test]
    fn urlencoded_with_repeated_keys_and_plus() {
        let p = parse_form(
            "application/x-www-form-urlencoded",
            b"to=a%40example.com&to=b%40example.com&subject=Hello+World&text=%E3%81%82&empty=&bare",
        )
        .unwrap();
        assert_eq!(
            p.get("to").unwrap(),
            &json!(["a@example.com", "b@example.com"])
        );
        assert_eq!(p.text("subject").unwrap().as_deref(), Some("Hello World"));
        assert_eq!(p.text("text").unwrap().as_deref(), Some("あ"));
        assert_eq!(p.text("empty").unwrap(), None);
        assert_eq!(p.get("bare"), Some(&json!("")));
        // a repeated scalar key yields the last value
        assert_eq!(p.text("to").unwrap().as_deref(), Some("b@example.com"));
    }

    #[test]
    fn urlencoded_bracket_keys_nest() {
        let p = parse_form(
            "application/x-www-form-urlencoded",
            b"to[1][address]=b%40x.jp&to[0][name]=A&to[0][address]=a%40x.jp&cc[]=c%40x.jp&cc[]=d%40x.jp&search_option[to]=full",
        )
        .unwrap();
        assert_eq!(
            p.json("to").unwrap(),
            json!([{"name":"A","address":"a@x.jp"},{"address":"b@x.jp"}])
        );
        assert_eq!(p.json("cc").unwrap(), json!(["c@x.jp", "d@x.jp"]));
        assert_eq!(p.json("search_option").unwrap(), json!({"to":"full"}));
    }

    #[test]
    fn urlencoded_bad_percent_and_utf8() {
        let p = parse_form("application/x-www-form-urlencoded", b"a=100%&b=%zz&c=%4").unwrap();
        assert_eq!(p.text("a").unwrap().as_deref(), Some("100%"));
        assert_eq!(p.text("b").unwrap().as_deref(), Some("%zz"));
        assert_eq!(p.text("c").unwrap().as_deref(), Some("%4"));
        let e = parse_form("application/x-www-form-urlencoded", b"a=%FF").unwrap_err();
        assert_eq!(e.code, ErrorCode::MalformedBody);
    }

    #[test]
    fn json_text_inside_strings_is_parsed() {
        let mut p = Params::new();
        p.insert("from", r#" {"name":"差出人","address":"f@example.com"} "#);
        p.insert(
            "to",
            json!([r#"{"address":"a@example.com"}"#, "b@example.com"]),
        );
        p.insert("replyto", "r@example.com");
        p.insert("bad", "[not json");
        assert_eq!(
            p.json("from").unwrap(),
            json!({"name":"差出人","address":"f@example.com"})
        );
        assert_eq!(
            p.json("to").unwrap(),
            json!([{"address":"a@example.com"}, "b@example.com"])
        );
        assert_eq!(p.json("replyto").unwrap(), json!("r@example.com"));
        assert_eq!(p.json("bad").unwrap(), json!("[not json"));
    }

    #[test]
    fn content_type_sniffing_and_rejection() {
        let p = parse_form("", br#" {"a":"b"}"#).unwrap();
        assert_eq!(p.text("a").unwrap().as_deref(), Some("b"));
        let p = parse_form("text/plain", b"a=b").unwrap();
        assert_eq!(p.text("a").unwrap().as_deref(), Some("b"));
        let p = parse_form("application/vnd.api+json", br#"{"a":1}"#).unwrap();
        assert_eq!(p.text("a").unwrap().as_deref(), Some("1"));
        let e = parse_form("application/xml", b"<a/>").unwrap_err();
        assert_eq!(e.code, ErrorCode::UnsupportedContentType);
        assert_eq!(e.http_status(), 415);
        let e = parse_form("multipart/form-data", b"").unwrap_err();
        assert_eq!(e.code, ErrorCode::MalformedBody);
    }

    #[test]
    fn append_form_field_and_files() {
        let mut p = Params::new();
        p.append_form_field("to", "a@x.jp".into());
        p.append_form_field("to", "b@x.jp".into());
        p.add_file(FilePart {
            name: "attachment1".into(),
            filename: "a.txt".into(),
            content_type: None,
            data: b"x".to_vec(),
        });
        assert_eq!(p.get("to").unwrap(), &json!(["a@x.jp", "b@x.jp"]));
        assert_eq!(p.file("attachment1").unwrap().filename, "a.txt");
        assert!(p.file("attachment2").is_none());
        assert_eq!(p.files().len(), 1);
    }

    #[test]
    fn malformed_bracket_keys_are_plain() {
        let (b, s) = split_bracket_key("a[b]c");
        assert_eq!((b, s.len()), ("a[b]c", 0));
        let (b, s) = split_bracket_key("[x]");
        assert_eq!((b, s.len()), ("[x]", 0));
        let (b, s) = split_bracket_key("a[b][]");
        assert_eq!((b, s), ("a", vec!["b", ""]));
    }
}
