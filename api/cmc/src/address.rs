//! Mail addresses in the three CMC forms.
//!
//! * Type 1: a plain address string, `user@example.com`.
//! * Type 2: an object `{"name": "Personal Name", "address": "user@example.com"}`; `name` may
//!   be `""`, `null` or absent. Extra properties are kept (bulk merge values; the PHP SDK also
//!   sends them to `emails/send`, where they are ignored).
//! * Type 3: an array of type 2 objects (type 1 strings are accepted as elements too, which is
//!   what a repeated form key produces).
//!
//! Any of these may arrive as JSON text inside a string (multipart and form bodies).
//!
//! Address syntax accepted: ASCII only; `local@domain`; the local part uses RFC 5322 atext
//! characters and dots, with dots allowed anywhere (Japanese carrier addresses such as
//! `taro..yamada.@docomo.ne.jp` are real and deliverable); at most 64 octets; the domain is
//! one or more LDH labels (1–63 characters, no leading/trailing hyphen), at most 253 octets;
//! the whole address at most 254 octets. Surrounding white space is trimmed.

use serde_json::Value;

use crate::error::{ApiError, ErrorCode};

/// A display name (optional) and an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// Display name; `None` when absent or empty.
    pub name: Option<String>,
    /// The address, as given (trimmed).
    pub address: String,
}

impl Mailbox {
    /// A mailbox without a display name.
    pub fn new(address: impl Into<String>) -> Self {
        Mailbox {
            name: None,
            address: address.into(),
        }
    }

    /// A mailbox with a display name (an empty name is stored as `None`).
    pub fn with_name(name: impl Into<String>, address: impl Into<String>) -> Self {
        let name = name.into();
        Mailbox {
            name: (!name.is_empty()).then_some(name),
            address: address.into(),
        }
    }
}

/// One parsed address entry with the extra properties of its object form (bulk merge values),
/// in the order given.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub mailbox: Mailbox,
    /// `name` and `address` first (always present), then every other property of the
    /// object form in the order given; values as JSON.
    pub props: Vec<(String, Value)>,
    /// How many properties were actually sent (1 for the string form).
    pub sent: usize,
}

/// True if `addr` is an acceptable address (see the module docs for the rules).
pub fn is_valid_address(addr: &str) -> bool {
    if addr.is_empty() || addr.len() > 254 || !addr.is_ascii() {
        return false;
    }
    let Some(at) = addr.rfind('@') else {
        return false;
    };
    let (local, domain) = (&addr[..at], &addr[at + 1..]);
    if local.is_empty() || local.len() > 64 || domain.is_empty() || domain.len() > 253 {
        return false;
    }
    let local_ok = local
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b));
    let domain_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    local_ok && domain_ok
}

/// Which parameter is being parsed; decides error codes and wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddrField {
    To,
    Cc,
    Bcc,
    From,
    ReplyTo,
}

impl AddrField {
    pub fn name(self) -> &'static str {
        match self {
            AddrField::To => "to",
            AddrField::Cc => "cc",
            AddrField::Bcc => "bcc",
            AddrField::From => "from",
            AddrField::ReplyTo => "replyto",
        }
    }

    fn invalid_code(self) -> ErrorCode {
        match self {
            AddrField::To => ErrorCode::InvalidTo,
            AddrField::Cc | AddrField::Bcc => ErrorCode::InvalidCcBcc,
            AddrField::From => ErrorCode::InvalidFrom,
            AddrField::ReplyTo => ErrorCode::InvalidReplyTo,
        }
    }

    /// Error for entry `index` (`None` for a single, non-array value).
    pub fn error(self, index: Option<usize>, detail: String) -> ApiError {
        let field = self.name();
        let message = match index {
            Some(i) => format!("{field}[{i}]: {detail}"),
            None => format!("{field}: {detail}"),
        };
        let e = ApiError::new(self.invalid_code(), field, message);
        match index {
            Some(i) => e.at_recipient(i),
            None => e,
        }
    }
}

/// Parses an address parameter in any of the three forms. `value` is the already
/// JSON-unwrapped parameter (see [`crate::Params::json`]). Every bad entry yields one error.
pub(crate) fn parse_entries(value: &Value, field: AddrField) -> Result<Vec<Entry>, Vec<ApiError>> {
    match value {
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut errors = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match parse_one(item, field, Some(i)) {
                    Ok(e) => out.push(e),
                    Err(e) => errors.push(e),
                }
            }
            if errors.is_empty() {
                Ok(out)
            } else {
                Err(errors)
            }
        }
        other => parse_one(other, field, None)
            .map(|e| vec![e])
            .map_err(|e| vec![e]),
    }
}

fn parse_one(item: &Value, field: AddrField, index: Option<usize>) -> Result<Entry, ApiError> {
    match item {
        Value::String(s) => {
            let addr = s.trim();
            if !is_valid_address(addr) {
                return Err(field.error(index, format!("'{addr}' is not a valid email address.")));
            }
            Ok(Entry {
                mailbox: Mailbox::new(addr),
                props: vec![
                    ("name".to_string(), Value::String(String::new())),
                    ("address".to_string(), Value::String(addr.to_string())),
                ],
                sent: 1,
            })
        }
        Value::Object(map) => {
            let address = match map.get("address") {
                Some(Value::String(s)) => s.trim().to_string(),
                None | Some(Value::Null) => {
                    return Err(field.error(index, "address is required.".to_string()))
                }
                Some(_) => return Err(field.error(index, "address must be a string.".to_string())),
            };
            if !is_valid_address(&address) {
                return Err(
                    field.error(index, format!("'{address}' is not a valid email address."))
                );
            }
            let name = match map.get("name") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(_) => {
                    return Err(field.error(index, format!("name of '{address}' must be a string.")))
                }
            };
            let mut props = vec![
                ("name".to_string(), Value::String(name.clone())),
                ("address".to_string(), Value::String(address.clone())),
            ];
            props.extend(
                map.iter()
                    .filter(|(k, _)| k.as_str() != "name" && k.as_str() != "address")
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            Ok(Entry {
                mailbox: Mailbox::with_name(name, address),
                props,
                sent: map.len(),
            })
        }
        Value::Array(_) => {
            Err(field.error(index, "nested arrays are not an address form.".to_string()))
        }
        _ => Err(field.error(
            index,
            "must be an address string or a {\"name\",\"address\"} object.".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn address_syntax() {
        for ok in [
            "user@example.com",
            "a.b+tag@sub.example.co.jp",
            "taro..yamada.@docomo.ne.jp",
            ".dot@ezweb.ne.jp",
            "x@localhost",
            "o'brien@example.ie",
        ] {
            assert!(is_valid_address(ok), "{ok}");
        }
        for bad in [
            "",
            "user",
            "@example.com",
            "user@",
            "user@-example.com",
            "user@example..com",
            "us er@example.com",
            "user@exa_mple.com",
            "ユーザー@example.com",
            "Name <user@example.com>",
            "a@b@c",
            "user@example.com\r\nBcc: x@y.z",
        ] {
            assert!(!is_valid_address(bad), "{bad}");
        }
        assert!(!is_valid_address(&format!(
            "{}@example.com",
            "a".repeat(65)
        )));
        assert!(!is_valid_address(&format!("a@{}.com", "b".repeat(64))));
    }

    #[test]
    fn type1_string() {
        let e = parse_entries(&json!(" user@example.com "), AddrField::To).unwrap();
        assert_eq!(e[0].mailbox, Mailbox::new("user@example.com"));
    }

    #[test]
    fn type2_object_with_and_without_name() {
        let e = parse_entries(
            &json!({"name":"山田","address":"y@example.jp"}),
            AddrField::From,
        )
        .unwrap();
        assert_eq!(e[0].mailbox, Mailbox::with_name("山田", "y@example.jp"));
        let e = parse_entries(
            &json!({"name":"","address":"y@example.jp"}),
            AddrField::From,
        )
        .unwrap();
        assert_eq!(e[0].mailbox.name, None);
        let e = parse_entries(
            &json!({"address":"y@example.jp","name":null}),
            AddrField::Cc,
        )
        .unwrap();
        assert_eq!(e[0].mailbox.name, None);
        let e = parse_entries(&json!({"address":"y@example.jp","name":7}), AddrField::Cc).unwrap();
        assert_eq!(e[0].mailbox.name.as_deref(), Some("7"));
    }

    #[test]
    fn type3_array_mixed_and_props() {
        let e = parse_entries(
            &json!([{"name":"A","address":"a@x.jp","item1":"v1"}, "b@x.jp"]),
            AddrField::To,
        )
        .unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].props[2], ("item1".to_string(), json!("v1")));
        assert_eq!((e[0].sent, e[1].sent), (3, 1));
        assert_eq!(e[1].mailbox, Mailbox::new("b@x.jp"));
    }

    #[test]
    fn errors_name_the_entry() {
        let errs = parse_entries(
            &json!(["ok@x.jp", "bad", {"name":"n"}, {"address": 5}, 7, [1], {"address":"c@x.jp","name":{}}]),
            AddrField::Bcc,
        )
        .unwrap_err();
        assert_eq!(errs.len(), 6);
        assert!(errs
            .iter()
            .all(|e| e.code == ErrorCode::InvalidCcBcc && e.field == "bcc"));
        assert_eq!(errs[0].recipient, Some(1));
        assert_eq!(
            errs[0].message,
            "bcc[1]: 'bad' is not a valid email address."
        );
        assert_eq!(errs[1].message, "bcc[2]: address is required.");
        assert_eq!(errs[2].recipient, Some(3));
        assert_eq!(errs[5].recipient, Some(6));
        let e = parse_entries(&json!("nope"), AddrField::ReplyTo).unwrap_err();
        assert_eq!(e[0].code, ErrorCode::InvalidReplyTo);
        assert_eq!(e[0].recipient, None);
        assert_eq!(
            e[0].message,
            "replyto: 'nope' is not a valid email address."
        );
        let e = parse_entries(&json!(true), AddrField::From).unwrap_err();
        assert_eq!(e[0].code, ErrorCode::InvalidFrom);
        let e = parse_entries(&json!("x"), AddrField::To).unwrap_err();
        assert_eq!(e[0].code, ErrorCode::InvalidTo);
    }
}
