//! CMC-style API errors: the `NN-NNN` code table, the error value and its constructors.
//!
//! Every error the crate produces is an [`ApiError`]; it serialises to the CMC shape
//! `{"code":"10-001","field":"subject","message":"..."}` (see [`crate::errors_json`]).
//! The codes CMC is known to use (`10-001`, `10-002`, `11-006`, `13-006`) keep their known
//! meaning; the rest of the table extends the same families (see [`ErrorCode`]).

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// Every error code this crate can emit, grouped by family.
///
/// * `10-xxx`: a required parameter is missing (one code per parameter, as CMC does for
///   `10-001` subject and `10-002` text).
/// * `11-xxx`: a parameter is present but malformed (`11-006` is CMC's cc/bcc format error).
/// * `12-xxx`: a documented limit is exceeded.
/// * `13-xxx`: the request is well formed but refused for this account; decided by the caller
///   (`13-006` is CMC's "from domain has no DKIM" error).
/// * `14-xxx`: a parameter of a `transaction/v2/*` list API is invalid.
/// * `90-xxx`: the HTTP body itself could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `10-001`: `subject` is missing or empty.
    SubjectRequired,
    /// `10-002`: `text` is missing or empty.
    TextRequired,
    /// `10-003`: `to` is missing or empty.
    ToRequired,
    /// `10-004`: `from` is missing.
    FromRequired,
    /// `10-005`: `api_user` is missing.
    ApiUserRequired,
    /// `10-006`: `api_key` is missing.
    ApiKeyRequired,
    /// `10-007`: `server_composition` is missing.
    ServerCompositionRequired,
    /// `10-008`: `date` is missing (deliveries/list).
    DateRequired,
    /// `10-009`: `year` is missing (statistics/list).
    YearRequired,
    /// `10-010`: `month` is missing (statistics/list).
    MonthRequired,
    /// `10-011`: `email` is missing (blocks/cancel).
    EmailRequired,
    /// `11-001`: a `to` address (or recipient object) is malformed.
    InvalidTo,
    /// `11-002`: `from` is malformed.
    InvalidFrom,
    /// `11-003`: `replyto` is malformed.
    InvalidReplyTo,
    /// `11-004`: `envfrom` is not a valid address.
    InvalidEnvFrom,
    /// `11-005`: `headers` is malformed, names a reserved header, or contains CR/LF.
    InvalidHeaders,
    /// `11-006`: a `cc` or `bcc` address is malformed (CMC's code).
    InvalidCcBcc,
    /// `11-007`: `charset` is neither `UTF-8` nor `ISO-2022-JP`.
    InvalidCharset,
    /// `11-008`: `attachments` is not a count, or a declared `attachmentN` part is missing.
    InvalidAttachments,
    /// `11-009`: a text cannot be represented in the requested charset (ISO-2022-JP).
    NotEncodable,
    /// `11-010`: a bulk merge value is not a string, number, boolean or null.
    InvalidMergeValue,
    /// `11-011`: a parameter has the wrong JSON type (for example an object where text is expected).
    InvalidType,
    /// `12-001`: too many `to` addresses (10 for send, 1000 for bulk).
    TooManyTo,
    /// `12-002`: too many `cc` addresses (10).
    TooManyCc,
    /// `12-003`: too many `bcc` addresses (10).
    TooManyBcc,
    /// `12-004`: `subject` is longer than 512 characters.
    SubjectTooLong,
    /// `12-005`: more than 10 attachments.
    TooManyAttachments,
    /// `12-006`: a bulk recipient has more than 100 JSON properties.
    TooManyProperties,
    /// `12-007`: a bulk merge value is longer than 5 KB.
    MergeValueTooLong,
    /// `13-001`: `api_user`/`api_key` do not authenticate (decided by the caller).
    AuthenticationFailed,
    /// `13-002`: the API user lacks the role or permission for this API (decided by the caller).
    PermissionDenied,
    /// `13-006`: the from address's domain has no DKIM set up (decided by the caller).
    DkimNotConfigured,
    /// `14-001`: a date parameter is not `yyyy-mm-dd` or not a calendar date.
    InvalidDate,
    /// `14-002`: a date parameter is in the future.
    FutureDate,
    /// `14-003`: `hour` is not an integer 0-23.
    InvalidHour,
    /// `14-004`: `minute` is not an integer 0-59, or is given without `hour`.
    InvalidMinute,
    /// `14-005`: `hour`/`minute` name a time in the future.
    FutureTime,
    /// `14-006`: `status` is not a known delivery status or bounce code.
    InvalidStatus,
    /// `14-007`: `p` is not a non-negative integer.
    InvalidPage,
    /// `14-008`: `r` is not an integer 1-100.
    InvalidRows,
    /// `14-009`: `start_date` is after `end_date`.
    InvalidDateRange,
    /// `14-010`: `year` is not a four-digit year.
    InvalidYear,
    /// `14-011`: `month` is not 1-12.
    InvalidMonth,
    /// `14-012`: a boolean parameter (`removed`, `total`) is not a boolean.
    InvalidBoolean,
    /// `14-013`: `search_option` is malformed.
    InvalidSearchOption,
    /// `14-014`: `date` is combined with `start_date`/`end_date`.
    ConflictingDates,
    /// `90-001`: the request body could not be decoded (bad JSON, bad multipart, bad UTF-8).
    MalformedBody,
    /// `90-002`: the request's Content-Type is not JSON, form-urlencoded or multipart.
    UnsupportedContentType,
    /// `90-003`: the cluster could not commit the request (no quorum); nothing was accepted,
    /// try again.
    Unavailable,
    /// `90-004`: the request body is larger than the server accepts.
    BodyTooLarge,
}

impl ErrorCode {
    /// The wire code, e.g. `"10-001"`.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            SubjectRequired => "10-001",
            TextRequired => "10-002",
            ToRequired => "10-003",
            FromRequired => "10-004",
            ApiUserRequired => "10-005",
            ApiKeyRequired => "10-006",
            ServerCompositionRequired => "10-007",
            DateRequired => "10-008",
            YearRequired => "10-009",
            MonthRequired => "10-010",
            EmailRequired => "10-011",
            InvalidTo => "11-001",
            InvalidFrom => "11-002",
            InvalidReplyTo => "11-003",
            InvalidEnvFrom => "11-004",
            InvalidHeaders => "11-005",
            InvalidCcBcc => "11-006",
            InvalidCharset => "11-007",
            InvalidAttachments => "11-008",
            NotEncodable => "11-009",
            InvalidMergeValue => "11-010",
            InvalidType => "11-011",
            TooManyTo => "12-001",
            TooManyCc => "12-002",
            TooManyBcc => "12-003",
            SubjectTooLong => "12-004",
            TooManyAttachments => "12-005",
            TooManyProperties => "12-006",
            MergeValueTooLong => "12-007",
            AuthenticationFailed => "13-001",
            PermissionDenied => "13-002",
            DkimNotConfigured => "13-006",
            InvalidDate => "14-001",
            FutureDate => "14-002",
            InvalidHour => "14-003",
            InvalidMinute => "14-004",
            FutureTime => "14-005",
            InvalidStatus => "14-006",
            InvalidPage => "14-007",
            InvalidRows => "14-008",
            InvalidDateRange => "14-009",
            InvalidYear => "14-010",
            InvalidMonth => "14-011",
            InvalidBoolean => "14-012",
            InvalidSearchOption => "14-013",
            ConflictingDates => "14-014",
            MalformedBody => "90-001",
            UnsupportedContentType => "90-002",
            Unavailable => "90-003",
            BodyTooLarge => "90-004",
        }
    }

    /// The HTTP status to answer with when this error is returned.
    ///
    /// 401 for authentication, 403 for permission, 415 for an unsupported body type, 400 for
    /// everything else (CMC SDKs read the `errors` body from any 4xx answer).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::AuthenticationFailed => 401,
            ErrorCode::PermissionDenied => 403,
            ErrorCode::UnsupportedContentType => 415,
            ErrorCode::Unavailable => 503,
            ErrorCode::BodyTooLarge => 413,
            _ => 400,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One CMC error: `code`, `field` (the parameter name, `""` when not about one parameter) and
/// an English `message`.
///
/// `recipient` is not serialised; for errors about one entry of an address array (`to`, `cc`,
/// `bcc`, and every bulk recipient) it holds that entry's 0-based index, which the message also
/// names together with the address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[{code}] {message}")]
pub struct ApiError {
    /// The error code.
    pub code: ErrorCode,
    /// The parameter the error is about (`""` for none).
    pub field: String,
    /// Human-readable English message.
    pub message: String,
    /// 0-based index into the address array the error is about, if any.
    pub recipient: Option<usize>,
}

impl Serialize for ApiError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ApiError", 3)?;
        s.serialize_field("code", self.code.as_str())?;
        s.serialize_field("field", &self.field)?;
        s.serialize_field("message", &self.message)?;
        s.end()
    }
}

impl ApiError {
    /// A new error about `field`.
    pub fn new(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            code,
            field: field.into(),
            message: message.into(),
            recipient: None,
        }
    }

    /// The same error, tagged with the index of the address-array entry it is about.
    pub fn at_recipient(mut self, index: usize) -> Self {
        self.recipient = Some(index);
        self
    }

    /// HTTP status for this error (see [`ErrorCode::http_status`]).
    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }

    /// `13-006`: the from address's domain is not set up for DKIM signing. The caller decides
    /// this (it owns the DKIM key store); the message is CMC's own text.
    pub fn dkim_not_configured() -> Self {
        ApiError::new(
            ErrorCode::DkimNotConfigured,
            "",
            "Can not send email with specified from address. Please set up DKIM.",
        )
    }

    /// `13-001`: `api_user`/`api_key` did not authenticate (decided by the caller).
    pub fn authentication_failed() -> Self {
        ApiError::new(
            ErrorCode::AuthenticationFailed,
            "api_key",
            "Authentication failed. Check api_user and api_key.",
        )
    }

    /// `13-002`: the API user lacks the role or permission this API needs (decided by the caller).
    pub fn permission_denied() -> Self {
        ApiError::new(
            ErrorCode::PermissionDenied,
            "",
            "The API user does not have permission for this operation.",
        )
    }

    /// A `10-xxx` "required parameter" error.
    pub(crate) fn required(code: ErrorCode, field: &str) -> Self {
        ApiError::new(code, field, format!("{field} is required."))
    }

    /// `11-011`: `field` has the wrong JSON type.
    pub(crate) fn wrong_type(field: &str, expected: &str) -> Self {
        ApiError::new(
            ErrorCode::InvalidType,
            field,
            format!("{field} must be {expected}."),
        )
    }

    /// `90-001`: the body could not be decoded.
    pub(crate) fn malformed(detail: impl std::fmt::Display) -> Self {
        ApiError::new(
            ErrorCode::MalformedBody,
            "",
            format!("The request body could not be parsed: {detail}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_cmc_codes_keep_their_meaning() {
        assert_eq!(ErrorCode::SubjectRequired.as_str(), "10-001");
        assert_eq!(ErrorCode::TextRequired.as_str(), "10-002");
        assert_eq!(ErrorCode::InvalidCcBcc.as_str(), "11-006");
        assert_eq!(ErrorCode::DkimNotConfigured.as_str(), "13-006");
        let e = ApiError::dkim_not_configured();
        assert_eq!(e.field, "");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":"13-006","field":"","message":"Can not send email with specified from address. Please set up DKIM."}"#
        );
        assert_eq!(e.http_status(), 400);
    }

    #[test]
    fn caller_decided_errors_have_their_statuses() {
        assert_eq!(ApiError::authentication_failed().http_status(), 401);
        assert_eq!(ApiError::authentication_failed().code.as_str(), "13-001");
        assert_eq!(ApiError::permission_denied().http_status(), 403);
        assert_eq!(ApiError::permission_denied().code.as_str(), "13-002");
        assert_eq!(ErrorCode::UnsupportedContentType.http_status(), 415);
    }

    #[test]
    fn display_and_recipient_tag() {
        let e = ApiError::required(ErrorCode::SubjectRequired, "subject").at_recipient(3);
        assert_eq!(e.to_string(), "[10-001] subject is required.");
        assert_eq!(e.recipient, Some(3));
        // the recipient index is not part of the wire shape
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 3);
        assert_eq!(ErrorCode::InvalidRows.to_string(), "14-008");
    }
}
