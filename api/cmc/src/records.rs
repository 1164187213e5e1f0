//! Records returned by the `transaction/v2/*/list` APIs, with the exact JSON field names, and
//! the CMC status vocabularies (delivery statuses, bounce reason codes).
//!
//! Field types follow what CMC emits and its SDKs read: delivery and bounce fields are all
//! strings (the PHP SDK assigns them to `string` properties under `strict_types`), block
//! `occurred`/`status` are strings (`"1"`, `"2"` in CMC's sample), statistics counters are
//! numbers.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Delivery status (`deliveries.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Received from the relay source.
    Queued,
    /// Accepted by the destination server.
    Succeeded,
    /// Failed permanently in SMTP.
    Failed,
    /// Temporary error; queued again (may repeat per message).
    Deferred,
}

impl DeliveryStatus {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Deferred => "deferred",
        }
    }

    /// Parses the wire string (case-insensitive).
    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Queued,
            DeliveryStatus::Succeeded,
            DeliveryStatus::Failed,
            DeliveryStatus::Deferred,
        ]
        .into_iter()
        .find(|d| d.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

impl Serialize for DeliveryStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DeliveryStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DeliveryStatus::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown delivery status '{s}'")))
    }
}

/// CMC bounce reason code (`bounces.status`, `blocks.status`), reference table 1.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BounceCode {
    /// 1: DNS resolution of the recipient domain failed.
    UnknownHost,
    /// 2: the mailbox does not exist.
    UnknownUser,
    /// 3: could not connect, or temporary errors until the retry period expired.
    RetransmissionTimeout,
    /// 4: refused by the receiver's policy.
    Rejection,
    /// 5: mailbox or disk full.
    Overcapacity,
    /// 6: the recipient's forwarding target failed.
    ForwardError,
    /// 7: misconfigured receiving server.
    ReceivingServerError,
    /// 8: message too large.
    Oversized,
    /// 9: syntactically invalid address.
    AddressFormatError,
    /// 10: suppressed by the delivery block list.
    BlockedAddress,
    /// 11: suppressed by one-click unsubscribe.
    UnsubscribedAddress,
    /// 99: any other permanent error.
    Others,
}

impl BounceCode {
    /// All codes in table order.
    pub const ALL: [BounceCode; 12] = [
        BounceCode::UnknownHost,
        BounceCode::UnknownUser,
        BounceCode::RetransmissionTimeout,
        BounceCode::Rejection,
        BounceCode::Overcapacity,
        BounceCode::ForwardError,
        BounceCode::ReceivingServerError,
        BounceCode::Oversized,
        BounceCode::AddressFormatError,
        BounceCode::BlockedAddress,
        BounceCode::UnsubscribedAddress,
        BounceCode::Others,
    ];

    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            BounceCode::UnknownHost => 1,
            BounceCode::UnknownUser => 2,
            BounceCode::RetransmissionTimeout => 3,
            BounceCode::Rejection => 4,
            BounceCode::Overcapacity => 5,
            BounceCode::ForwardError => 6,
            BounceCode::ReceivingServerError => 7,
            BounceCode::Oversized => 8,
            BounceCode::AddressFormatError => 9,
            BounceCode::BlockedAddress => 10,
            BounceCode::UnsubscribedAddress => 11,
            BounceCode::Others => 99,
        }
    }

    /// The code for a number, if it is one of CMC's.
    pub fn from_code(code: u16) -> Option<BounceCode> {
        BounceCode::ALL.into_iter().find(|c| c.code() == code)
    }

    /// CMC's English name for the reason ("Unknown host", …).
    pub fn description(self) -> &'static str {
        match self {
            BounceCode::UnknownHost => "Unknown host",
            BounceCode::UnknownUser => "Unknown user",
            BounceCode::RetransmissionTimeout => "Retransmission timeout",
            BounceCode::Rejection => "Rejection",
            BounceCode::Overcapacity => "Overcapacity",
            BounceCode::ForwardError => "Forward error",
            BounceCode::ReceivingServerError => "Receiving server error",
            BounceCode::Oversized => "Oversized",
            BounceCode::AddressFormatError => "Address format error",
            BounceCode::BlockedAddress => "Blocked address",
            BounceCode::UnsubscribedAddress => "Unsubscribed address",
            BounceCode::Others => "Others",
        }
    }
}

/// Serialised as the code in a string (`"2"`); deserialised from a string or a number.
impl Serialize for BounceCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.code().to_string())
    }
}

impl<'de> Deserialize<'de> for BounceCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        let n = match &v {
            serde_json::Value::String(s) => s.trim().parse::<u16>().ok(),
            serde_json::Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            _ => None,
        };
        n.and_then(BounceCode::from_code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown bounce code {v}")))
    }
}

/// One `deliveries/list` record (also the delivery webhook event shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// `yyyy-mm-dd HH:MM:SS` (see [`crate::time::format_datetime`]).
    pub created: String,
    /// Envelope sender.
    #[serde(rename = "returnPath")]
    pub return_path: String,
    /// From address.
    pub from: String,
    /// Recipient address.
    pub to: String,
    /// Message-ID header value.
    #[serde(rename = "messageId")]
    pub message_id: String,
    /// SMTP response / reason text (empty when none).
    pub reason: String,
    /// Our egress IP (set on succeeded/failed).
    #[serde(rename = "senderIp")]
    pub sender_ip: String,
    /// The client that injected the message (set on queued).
    #[serde(rename = "sourceIp")]
    pub source_ip: String,
    /// Delivery status.
    pub status: DeliveryStatus,
    /// Decoded subject.
    pub subject: String,
    /// `X-Api-Data` header value (empty when none).
    #[serde(rename = "apiData")]
    pub api_data: String,
}

/// One `bounces/list` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BounceRecord {
    /// `yyyy-mm-dd HH:MM:SS`.
    pub created: String,
    /// Bounce reason code, as a string.
    pub status: BounceCode,
    /// From address.
    pub from: String,
    /// Recipient address.
    pub to: String,
    /// Message-ID header value.
    #[serde(rename = "messageId")]
    pub message_id: String,
    /// Envelope sender.
    #[serde(rename = "returnPath")]
    pub return_path: String,
    /// Decoded subject.
    pub subject: String,
    /// `X-Api-Data` header value.
    #[serde(rename = "apiData")]
    pub api_data: String,
    /// Diagnostic text.
    pub reason: String,
}

/// One `blocks/list` record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    /// When the address was blocked, `yyyy-mm-dd HH:MM:SS`.
    pub created: String,
    /// The blocked address.
    pub email: String,
    /// Block entry id.
    pub id: String,
    /// How many errors led to the block, as a string (`"1"`).
    #[serde(with = "string_number")]
    pub occurred: u64,
    /// Reason code of the block, as a string (`"2"`).
    pub status: BounceCode,
}

/// One `statistics/list` row; `date` is `yyyy-mm-dd` or `"total"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatisticsRow {
    /// Day (`yyyy-mm-dd`) or `"total"`.
    pub date: String,
    /// Messages received.
    pub queued: u64,
    /// Recipients delivered.
    pub succeeded: u64,
    /// Recipients failed permanently.
    pub failed: u64,
    /// Recipients suppressed by the block list.
    pub blocked: u64,
    /// Billable count: `succeeded + failed` (blocked excluded).
    pub valid: u64,
}

impl StatisticsRow {
    /// A row with `valid = succeeded + failed`.
    pub fn new(
        date: impl Into<String>,
        queued: u64,
        succeeded: u64,
        failed: u64,
        blocked: u64,
    ) -> Self {
        StatisticsRow {
            date: date.into(),
            queued,
            succeeded,
            failed,
            blocked,
            valid: succeeded + failed,
        }
    }

    /// The `"total"` row summing `rows`.
    pub fn total(rows: &[StatisticsRow]) -> StatisticsRow {
        let sum = |f: fn(&StatisticsRow) -> u64| rows.iter().map(f).sum::<u64>();
        StatisticsRow::new(
            "total",
            sum(|r| r.queued),
            sum(|r| r.succeeded),
            sum(|r| r.failed),
            sum(|r| r.blocked),
        )
    }
}

mod string_number {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&n.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => s.trim().parse().map_err(serde::de::Error::custom),
            serde_json::Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| serde::de::Error::custom("not a non-negative integer")),
            other => Err(serde::de::Error::custom(format!("not a number: {other}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bounce_codes_table() {
        let codes: Vec<u16> = BounceCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(codes, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 99]);
        assert_eq!(BounceCode::from_code(99), Some(BounceCode::Others));
        assert_eq!(BounceCode::from_code(12), None);
        assert_eq!(BounceCode::UnknownUser.description(), "Unknown user");
        assert_eq!(
            serde_json::to_value(BounceCode::Rejection).unwrap(),
            json!("4")
        );
        assert_eq!(
            serde_json::from_value::<BounceCode>(json!(2)).unwrap(),
            BounceCode::UnknownUser
        );
        assert_eq!(
            serde_json::from_value::<BounceCode>(json!("11")).unwrap(),
            BounceCode::UnsubscribedAddress
        );
        assert!(serde_json::from_value::<BounceCode>(json!("x")).is_err());
    }

    #[test]
    fn delivery_record_field_names() {
        let r = DeliveryRecord {
            created: "2023-01-25 14:03:09".into(),
            return_path: "info@return.example.jp".into(),
            from: "info@example.com".into(),
            to: "user@example.jp".into(),
            message_id: "<m@example.com>".into(),
            reason: "".into(),
            sender_ip: "100.100.100.3".into(),
            source_ip: "".into(),
            status: DeliveryStatus::Succeeded,
            subject: "メールマガジンのテスト".into(),
            api_data: "".into(),
        };
        let v = serde_json::to_value(&r).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = vec![
            "created",
            "returnPath",
            "from",
            "to",
            "messageId",
            "reason",
            "senderIp",
            "sourceIp",
            "status",
            "subject",
            "apiData",
        ];
        expected.sort();
        assert_eq!(keys, expected);
        assert_eq!(v["status"], json!("succeeded"));
        let back: DeliveryRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        assert_eq!(
            DeliveryStatus::parse(" Deferred "),
            Some(DeliveryStatus::Deferred)
        );
        assert!(serde_json::from_value::<DeliveryStatus>(json!("sent")).is_err());
    }

    #[test]
    fn bounce_block_and_statistics_shapes() {
        let b = BounceRecord {
            created: "2025-01-01 00:00:00".into(),
            status: BounceCode::UnknownUser,
            from: "f@x.jp".into(),
            to: "t@x.jp".into(),
            message_id: "<id>".into(),
            return_path: "r@x.jp".into(),
            subject: "s".into(),
            api_data: "a".into(),
            reason: "550 5.1.1 unknown".into(),
        };
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["status"], json!("2"));
        assert_eq!(v["messageId"], json!("<id>"));
        assert_eq!(v["returnPath"], json!("r@x.jp"));
        assert_eq!(v["apiData"], json!("a"));

        let block: BlockRecord = serde_json::from_value(json!({
            "created": "2015-12-14 08:46:00", "email": "to1@example.com",
            "id": "cp0ihzuyl3445", "occurred": "1", "status": "2"
        }))
        .unwrap();
        assert_eq!(block.occurred, 1);
        assert_eq!(
            serde_json::to_string(&block).unwrap(),
            r#"{"created":"2015-12-14 08:46:00","email":"to1@example.com","id":"cp0ihzuyl3445","occurred":"1","status":"2"}"#
        );
        let from_num: BlockRecord = serde_json::from_value(json!({
            "created": "", "email": "", "id": "", "occurred": 3, "status": 10
        }))
        .unwrap();
        assert_eq!(from_num.occurred, 3);
        assert!(serde_json::from_value::<BlockRecord>(json!({
            "created": "", "email": "", "id": "", "occurred": true, "status": 10
        }))
        .is_err());

        let rows = vec![
            StatisticsRow::new("2015-12-01", 7833, 7800, 33, 0),
            StatisticsRow::new("2015-12-02", 10, 8, 1, 1),
        ];
        assert_eq!(rows[0].valid, 7833);
        assert_eq!(
            serde_json::to_string(&rows[0]).unwrap(),
            r#"{"date":"2015-12-01","queued":7833,"succeeded":7800,"failed":33,"blocked":0,"valid":7833}"#
        );
        let t = StatisticsRow::total(&rows);
        assert_eq!(t, StatisticsRow::new("total", 7843, 7808, 34, 1));
        assert_eq!(t.valid, 7842);
    }
}
