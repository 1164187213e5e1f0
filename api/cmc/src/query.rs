//! Parameters of the `transaction/v2` APIs: `deliveries/list`, `bounces/list`,
//! `blocks/list`, `blocks/cancel`, `statistics/list`.
//!
//! Parsing is pure: "today" and "now" come from the caller's `now_unix` and the time zone
//! the caller reports in (default UTC). Each parser returns all errors found.
//!
//! Matching: `from`, `to`, `api_data` and `email` are partial, case-insensitive matches by
//! default; `search_option` (`{"to":"full"}`, `search_option[to]=full`, as the PHP SDK sends)
//! switches a field to a full (whole-value, case-insensitive) match. Time filters are exposed
//! as [`TimeWindow`]s so the caller can scan its time index; `matches` checks the other
//! filters against a record.

use std::ops::Range;

use serde_json::Value;

use crate::error::{ApiError, ErrorCode};
use crate::params::Params;
use crate::records::{
    BlockRecord, BounceCode, BounceRecord, DeliveryRecord, DeliveryStatus, StatisticsRow,
};
use crate::time::{days_in_month, Date, TimeWindow, TzOffset};

/// Default page size (`r`).
pub const DEFAULT_ROWS: u32 = 10;
/// Largest page size (`r`).
pub const MAX_ROWS: u32 = 100;

/// `api_user` and `api_key` (checking them is the caller's job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `api_user`.
    pub api_user: String,
    /// `api_key`.
    pub api_key: String,
}

/// How a text filter compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchMode {
    /// The value contains the pattern (default).
    #[default]
    Partial,
    /// The value equals the pattern.
    Full,
}

/// A text filter on one record field (ASCII case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextFilter {
    /// The text searched for.
    pub pattern: String,
    /// Partial (default) or full match.
    pub mode: MatchMode,
}

impl TextFilter {
    /// True if `value` satisfies the filter.
    pub fn matches(&self, value: &str) -> bool {
        matches(self, value)
    }
}

/// True if `value` satisfies `filter` (partial = contains, full = equals; ASCII
/// case-insensitive either way).
pub fn matches(filter: &TextFilter, value: &str) -> bool {
    let v = value.to_ascii_lowercase();
    let p = filter.pattern.to_ascii_lowercase();
    match filter.mode {
        MatchMode::Partial => v.contains(&p),
        MatchMode::Full => v == p,
    }
}

fn opt_matches(filter: &Option<TextFilter>, value: &str) -> bool {
    filter.as_ref().is_none_or(|f| matches(f, value))
}

/// Paging: `p` (0-based page index, default 0) and `r` (rows per page, default 10, max 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// `p`.
    pub page: u32,
    /// `r`.
    pub rows: u32,
}

impl Default for Page {
    fn default() -> Self {
        Page {
            page: 0,
            rows: DEFAULT_ROWS,
        }
    }
}

impl Page {
    /// Index range of this page within `total` matching records.
    pub fn range(&self, total: usize) -> Range<usize> {
        let start = (self.page as usize)
            .saturating_mul(self.rows as usize)
            .min(total);
        let end = start.saturating_add(self.rows as usize).min(total);
        start..end
    }

    /// The records of this page.
    pub fn apply<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        &items[self.range(items.len())]
    }
}

/// `deliveries/list` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveriesQuery {
    /// Credentials.
    pub credentials: Credentials,
    /// `server_composition`.
    pub server_composition: String,
    /// `date` (required; not in the future).
    pub date: Date,
    /// `hour` 0–23 (one hour of `date`).
    pub hour: Option<u32>,
    /// `minute` 0–59 (one minute of `hour`; requires `hour`).
    pub minute: Option<u32>,
    /// `from`.
    pub from: Option<TextFilter>,
    /// `to`.
    pub to: Option<TextFilter>,
    /// `api_data`.
    pub api_data: Option<TextFilter>,
    /// `status`.
    pub status: Option<DeliveryStatus>,
    /// `p`/`r`.
    pub page: Page,
}

impl DeliveriesQuery {
    /// The `created` span selected by `date`/`hour`/`minute`, in time zone `tz`.
    pub fn window(&self, tz: TzOffset) -> TimeWindow {
        day_window(self.date, self.hour, self.minute, tz)
    }

    /// True if `rec` passes the `from`, `to`, `api_data` and `status` filters (the time filter
    /// is [`DeliveriesQuery::window`]).
    pub fn matches(&self, rec: &DeliveryRecord) -> bool {
        opt_matches(&self.from, &rec.from)
            && opt_matches(&self.to, &rec.to)
            && opt_matches(&self.api_data, &rec.api_data)
            && self.status.is_none_or(|s| s == rec.status)
    }
}

/// The period of a `bounces/list` query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BouncePeriod {
    /// `date` (with optional `hour`/`minute`).
    Day {
        /// The day.
        date: Date,
        /// One hour of it.
        hour: Option<u32>,
        /// One minute of that hour.
        minute: Option<u32>,
    },
    /// `start_date`..=`end_date` (either may be open; both absent = everything).
    Range {
        /// First day included.
        start: Option<Date>,
        /// Last day included.
        end: Option<Date>,
    },
}

/// `bounces/list` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BouncesQuery {
    /// Credentials.
    pub credentials: Credentials,
    /// `server_composition`.
    pub server_composition: String,
    /// `date`/`hour`/`minute` or `start_date`/`end_date`.
    pub period: BouncePeriod,
    /// `from`.
    pub from: Option<TextFilter>,
    /// `to`.
    pub to: Option<TextFilter>,
    /// `api_data`.
    pub api_data: Option<TextFilter>,
    /// `status` (bounce reason code).
    pub status: Option<BounceCode>,
    /// `p`/`r`.
    pub page: Page,
}

impl BouncesQuery {
    /// The `created` span selected by the period, in time zone `tz`.
    pub fn window(&self, tz: TzOffset) -> TimeWindow {
        match self.period {
            BouncePeriod::Day { date, hour, minute } => day_window(date, hour, minute, tz),
            BouncePeriod::Range { start, end } => range_window(start, end, tz),
        }
    }

    /// True if `rec` passes the `from`, `to`, `api_data` and `status` filters.
    pub fn matches(&self, rec: &BounceRecord) -> bool {
        opt_matches(&self.from, &rec.from)
            && opt_matches(&self.to, &rec.to)
            && opt_matches(&self.api_data, &rec.api_data)
            && self.status.is_none_or(|s| s == rec.status)
    }
}

/// `blocks/list` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlocksQuery {
    /// Credentials.
    pub credentials: Credentials,
    /// `server_composition`.
    pub server_composition: String,
    /// `email` (partial match).
    pub email: Option<TextFilter>,
    /// `start_date` (by date blocked, inclusive).
    pub start_date: Option<Date>,
    /// `end_date` (inclusive).
    pub end_date: Option<Date>,
    /// `removed`: also list addresses that were unblocked (default false).
    pub removed: bool,
    /// `p`/`r`.
    pub page: Page,
}

impl BlocksQuery {
    /// The `created` span selected by `start_date`/`end_date`, in time zone `tz`.
    pub fn window(&self, tz: TzOffset) -> TimeWindow {
        range_window(self.start_date, self.end_date, tz)
    }

    /// True if `rec` passes the `email` filter; `is_removed` says whether the entry has been
    /// unblocked (such entries match only with `removed=true`).
    pub fn matches(&self, rec: &BlockRecord, is_removed: bool) -> bool {
        (self.removed || !is_removed) && opt_matches(&self.email, &rec.email)
    }
}

/// `blocks/cancel` parameters: unblock these addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlocksCancel {
    /// Credentials.
    pub credentials: Credentials,
    /// `server_composition`.
    pub server_composition: String,
    /// `email`: one address or an array (exact addresses, trimmed, order kept, duplicates
    /// removed case-insensitively).
    pub emails: Vec<String>,
}

/// `statistics/list` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatisticsQuery {
    /// Credentials.
    pub credentials: Credentials,
    /// `year` (four digits).
    pub year: i32,
    /// `month` 1–12 (`1` and `01` both accepted).
    pub month: u32,
    /// `server_composition` (optional: all when absent).
    pub server_composition: Option<String>,
    /// `total`: answer one `"date":"total"` row instead of one row per day.
    pub total: bool,
}

impl StatisticsQuery {
    /// Every day of the month, in order.
    pub fn days(&self) -> Vec<Date> {
        (1..=days_in_month(self.year, self.month))
            .filter_map(|d| Date::new(self.year, self.month, d))
            .collect()
    }

    /// The month as a time span in `tz`.
    pub fn window(&self, tz: TzOffset) -> TimeWindow {
        let days = self.days();
        range_window(days.first().copied(), days.last().copied(), tz)
    }

    /// The rows to answer with: the daily `rows` as given, or their single total row when
    /// `total` was requested.
    pub fn finish(&self, rows: Vec<StatisticsRow>) -> Vec<StatisticsRow> {
        if self.total {
            vec![StatisticsRow::total(&rows)]
        } else {
            rows
        }
    }
}

fn day_window(date: Date, hour: Option<u32>, minute: Option<u32>, tz: TzOffset) -> TimeWindow {
    let day_start = date.start_timestamp(tz);
    let (start, len) = match (hour, minute) {
        (Some(h), Some(m)) => (day_start + i64::from(h) * 3600 + i64::from(m) * 60, 60),
        (Some(h), None) => (day_start + i64::from(h) * 3600, 3600),
        _ => (day_start, 86_400),
    };
    TimeWindow {
        start: Some(start),
        end: Some(start + len),
    }
}

fn range_window(start: Option<Date>, end: Option<Date>, tz: TzOffset) -> TimeWindow {
    TimeWindow {
        start: start.map(|d| d.start_timestamp(tz)),
        end: end.map(|d| d.start_timestamp(tz) + 86_400),
    }
}

/// Error collector with typed field readers.
struct Reader<'a> {
    p: &'a Params,
    errors: Vec<ApiError>,
}

impl<'a> Reader<'a> {
    fn new(p: &'a Params) -> Self {
        Reader {
            p,
            errors: Vec::new(),
        }
    }

    fn text(&mut self, name: &str) -> Option<String> {
        match self.p.text(name) {
            Ok(v) => v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    fn required(&mut self, name: &str, code: ErrorCode) -> Option<String> {
        let had = self.errors.len();
        let v = self.text(name);
        if v.is_none() && self.errors.len() == had {
            self.errors.push(ApiError::required(code, name));
        }
        v
    }

    fn credentials(&mut self) -> Option<Credentials> {
        let api_user = self.required("api_user", ErrorCode::ApiUserRequired);
        let api_key = self.required("api_key", ErrorCode::ApiKeyRequired);
        Some(Credentials {
            api_user: api_user?,
            api_key: api_key?,
        })
    }

    fn error(&mut self, code: ErrorCode, field: &str, message: String) {
        self.errors.push(ApiError::new(code, field, message));
    }

    fn date(&mut self, name: &str) -> Option<Date> {
        let s = self.text(name)?;
        let d = Date::parse(&s);
        if d.is_none() {
            self.error(
                ErrorCode::InvalidDate,
                name,
                format!("{name} must be a date in yyyy-mm-dd format ('{s}' given)."),
            );
        }
        d
    }

    fn int_in(
        &mut self,
        name: &str,
        range: Range<i64>,
        code: ErrorCode,
        what: &str,
    ) -> Option<i64> {
        let s = self.text(name)?;
        match s.parse::<i64>() {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                self.error(code, name, format!("{name} must be {what} ('{s}' given)."));
                None
            }
        }
    }

    fn boolean(&mut self, name: &str) -> bool {
        let Some(s) = self.text(name) else {
            return false;
        };
        match s.to_ascii_lowercase().as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                self.error(
                    ErrorCode::InvalidBoolean,
                    name,
                    format!("{name} must be true or false ('{s}' given)."),
                );
                false
            }
        }
    }

    fn page(&mut self) -> Page {
        let page = self
            .int_in(
                "p",
                0..i64::from(u32::MAX),
                ErrorCode::InvalidPage,
                "an integer of 0 or more",
            )
            .unwrap_or(0) as u32;
        let rows = self
            .int_in(
                "r",
                1..i64::from(MAX_ROWS) + 1,
                ErrorCode::InvalidRows,
                "an integer from 1 to 100",
            )
            .map_or(DEFAULT_ROWS, |r| r as u32);
        Page { page, rows }
    }

    /// `search_option`: field → `full`/`partial`.
    fn search_modes(&mut self) -> Vec<(String, MatchMode)> {
        let Some(v) = self.p.json("search_option") else {
            return Vec::new();
        };
        let Value::Object(map) = v else {
            self.error(
                ErrorCode::InvalidSearchOption,
                "search_option",
                "search_option must be an object such as {\"to\":\"full\"}.".to_string(),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in map {
            let mode = match v.as_str().map(|s| s.trim().to_ascii_lowercase()).as_deref() {
                Some("full") | Some("exact") => MatchMode::Full,
                Some("partial") | Some("") => MatchMode::Partial,
                _ => {
                    self.error(
                        ErrorCode::InvalidSearchOption,
                        "search_option",
                        format!("search_option.{k} must be \"full\" or \"partial\"."),
                    );
                    continue;
                }
            };
            out.push((k, mode));
        }
        out
    }

    fn filter(&mut self, name: &str, modes: &[(String, MatchMode)]) -> Option<TextFilter> {
        let pattern = self.text(name)?;
        let mode = modes
            .iter()
            .find(|(k, _)| k == name)
            .map_or(MatchMode::Partial, |(_, m)| *m);
        Some(TextFilter { pattern, mode })
    }

    /// `date` (+ `hour`, `minute`) with the "not in the future" rules.
    /// `date_given` says whether a `date` parameter was sent at all (an invalid one has
    /// already been reported).
    fn day(
        &mut self,
        date: Option<Date>,
        date_given: bool,
        now_unix: i64,
        tz: TzOffset,
    ) -> (Option<u32>, Option<u32>) {
        let hour = self
            .int_in(
                "hour",
                0..24,
                ErrorCode::InvalidHour,
                "an integer from 0 to 23",
            )
            .map(|h| h as u32);
        let minute_given = self.p.text("minute").ok().flatten().is_some();
        let minute = self
            .int_in(
                "minute",
                0..60,
                ErrorCode::InvalidMinute,
                "an integer from 0 to 59",
            )
            .map(|m| m as u32);
        if minute.is_some() && hour.is_none() && !self.errors.iter().any(|e| e.field == "hour") {
            self.error(
                ErrorCode::InvalidMinute,
                "minute",
                "minute can only be given together with hour.".to_string(),
            );
        }
        let Some(date) = date else {
            if !date_given && (hour.is_some() || minute_given) {
                self.error(
                    ErrorCode::InvalidHour,
                    "hour",
                    "hour and minute can only be given together with date.".to_string(),
                );
            }
            return (None, None);
        };
        let today = Date::of_timestamp(now_unix, tz);
        if date > today {
            self.error(
                ErrorCode::FutureDate,
                "date",
                format!("date must not be in the future ({date} given)."),
            );
        } else if date == today {
            let secs = (now_unix + i64::from(tz.minutes()) * 60).rem_euclid(86_400);
            let (now_h, now_m) = ((secs / 3600) as u32, (secs / 60 % 60) as u32);
            if let Some(h) = hour {
                if h > now_h {
                    self.error(
                        ErrorCode::FutureTime,
                        "hour",
                        format!("hour must not be in the future ({h} given)."),
                    );
                } else if h == now_h && minute.is_some_and(|m| m > now_m) {
                    self.error(
                        ErrorCode::FutureTime,
                        "minute",
                        format!(
                            "minute must not be in the future ({} given).",
                            minute.unwrap_or(0)
                        ),
                    );
                }
            }
        }
        (hour, minute)
    }

    fn range(&mut self) -> (Option<Date>, Option<Date>) {
        let start = self.date("start_date");
        let end = self.date("end_date");
        if let (Some(s), Some(e)) = (start, end) {
            if s > e {
                self.error(
                    ErrorCode::InvalidDateRange,
                    "start_date",
                    format!("start_date ({s}) must be on or before end_date ({e})."),
                );
            }
        }
        (start, end)
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, Vec<ApiError>> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            _ if !self.errors.is_empty() => Err(self.errors),
            // every None above pushed an error; keep a defensive answer
            _ => Err(vec![ApiError::malformed("incomplete parameters")]),
        }
    }
}

/// Parses `deliveries/list` (`now_unix` and `tz` decide what "future" means).
pub fn deliveries_query(
    p: &Params,
    now_unix: i64,
    tz: TzOffset,
) -> Result<DeliveriesQuery, Vec<ApiError>> {
    let mut r = Reader::new(p);
    let credentials = r.credentials();
    let server_composition = r.required("server_composition", ErrorCode::ServerCompositionRequired);
    let date = r
        .required("date", ErrorCode::DateRequired)
        .and_then(|_| r.date("date"));
    let (hour, minute) = r.day(date, true, now_unix, tz);
    let modes = r.search_modes();
    let from = r.filter("from", &modes);
    let to = r.filter("to", &modes);
    let api_data = r.filter("api_data", &modes);
    let status = r.text("status").and_then(|s| {
        let st = DeliveryStatus::parse(&s);
        if st.is_none() {
            r.error(
                ErrorCode::InvalidStatus,
                "status",
                format!("status must be queued, succeeded, failed or deferred ('{s}' given)."),
            );
        }
        st
    });
    let page = r.page();
    let value = (|| {
        Some(DeliveriesQuery {
            credentials: credentials?,
            server_composition: server_composition?,
            date: date?,
            hour,
            minute,
            from,
            to,
            api_data,
            status,
            page,
        })
    })();
    r.finish(value)
}

/// Parses `bounces/list`. `date` (with `hour`/`minute`) and `start_date`/`end_date` are
/// alternatives; giving both is `14-014`.
pub fn bounces_query(
    p: &Params,
    now_unix: i64,
    tz: TzOffset,
) -> Result<BouncesQuery, Vec<ApiError>> {
    let mut r = Reader::new(p);
    let credentials = r.credentials();
    let server_composition = r.required("server_composition", ErrorCode::ServerCompositionRequired);
    let date_given = p.text("date").ok().flatten().is_some();
    let date = r.date("date");
    let (hour, minute) = r.day(date, date_given, now_unix, tz);
    let (start, end) = r.range();
    if date.is_some() && (start.is_some() || end.is_some()) {
        r.error(
            ErrorCode::ConflictingDates,
            "date",
            "date cannot be combined with start_date or end_date.".to_string(),
        );
    }
    let period = match date {
        Some(date) => BouncePeriod::Day { date, hour, minute },
        None => BouncePeriod::Range { start, end },
    };
    let modes = r.search_modes();
    let from = r.filter("from", &modes);
    let to = r.filter("to", &modes);
    let api_data = r.filter("api_data", &modes);
    let status = r.text("status").and_then(|s| {
        let code = s.parse::<u16>().ok().and_then(BounceCode::from_code);
        if code.is_none() {
            r.error(
                ErrorCode::InvalidStatus,
                "status",
                format!("status must be a bounce code (1-11 or 99) ('{s}' given)."),
            );
        }
        code
    });
    let page = r.page();
    let value = (|| {
        Some(BouncesQuery {
            credentials: credentials?,
            server_composition: server_composition?,
            period,
            from,
            to,
            api_data,
            status,
            page,
        })
    })();
    r.finish(value)
}

/// Parses `blocks/list`.
pub fn blocks_query(p: &Params) -> Result<BlocksQuery, Vec<ApiError>> {
    let mut r = Reader::new(p);
    let credentials = r.credentials();
    let server_composition = r.required("server_composition", ErrorCode::ServerCompositionRequired);
    let email = r.filter("email", &[]);
    let (start_date, end_date) = r.range();
    let removed = r.boolean("removed");
    let page = r.page();
    let value = (|| {
        Some(BlocksQuery {
            credentials: credentials?,
            server_composition: server_composition?,
            email,
            start_date,
            end_date,
            removed,
            page,
        })
    })();
    r.finish(value)
}

/// Parses `blocks/cancel`: `server_composition` and `email` (a string or an array of strings)
/// are required.
pub fn blocks_cancel(p: &Params) -> Result<BlocksCancel, Vec<ApiError>> {
    let mut r = Reader::new(p);
    let credentials = r.credentials();
    let server_composition = r.required("server_composition", ErrorCode::ServerCompositionRequired);
    let mut emails: Vec<String> = Vec::new();
    match p.json("email") {
        None => r
            .errors
            .push(ApiError::required(ErrorCode::EmailRequired, "email")),
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) if !s.trim().is_empty() => emails.push(s.trim().to_string()),
                    _ => {
                        r.errors.push(ApiError::wrong_type(
                            "email",
                            "a string or an array of strings",
                        ));
                        break;
                    }
                }
            }
            if emails.is_empty() && !r.errors.iter().any(|e| e.field == "email") {
                r.errors
                    .push(ApiError::required(ErrorCode::EmailRequired, "email"));
            }
        }
        Some(Value::String(s)) => emails.push(s.trim().to_string()),
        Some(_) => r.errors.push(ApiError::wrong_type(
            "email",
            "a string or an array of strings",
        )),
    }
    let mut seen = std::collections::HashSet::new();
    emails.retain(|e| seen.insert(e.to_ascii_lowercase()));
    let value = (|| {
        Some(BlocksCancel {
            credentials: credentials?,
            server_composition: server_composition?,
            emails,
        })
    })();
    r.finish(value)
}

/// Parses `statistics/list`.
pub fn statistics_query(p: &Params) -> Result<StatisticsQuery, Vec<ApiError>> {
    let mut r = Reader::new(p);
    let credentials = r.credentials();
    let year = r.required("year", ErrorCode::YearRequired).and_then(|s| {
        let ok = s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit());
        let y = s.parse::<i32>().ok().filter(|y| ok && *y >= 1970);
        if y.is_none() {
            r.error(
                ErrorCode::InvalidYear,
                "year",
                format!("year must be a four-digit year ('{s}' given)."),
            );
        }
        y
    });
    let month = r.required("month", ErrorCode::MonthRequired).and_then(|s| {
        let m = s
            .parse::<u32>()
            .ok()
            .filter(|m| (1..=12).contains(m) && s.len() <= 2);
        if m.is_none() {
            r.error(
                ErrorCode::InvalidMonth,
                "month",
                format!("month must be 1 to 12 ('{s}' given)."),
            );
        }
        m
    });
    let server_composition = r.text("server_composition");
    let total = r.boolean("total");
    let value = (|| {
        Some(StatisticsQuery {
            credentials: credentials?,
            year: year?,
            month: month?,
            server_composition,
            total,
        })
    })();
    r.finish(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::parse_form;
    use serde_json::json;

    // 2025-07-01 10:30:00 UTC
    const NOW: i64 = 1_751_365_800;

    fn params(v: Value) -> Params {
        parse_form("application/json", v.to_string().as_bytes()).unwrap()
    }

    fn auth(mut v: Value) -> Value {
        v["api_user"] = json!("u");
        v["api_key"] = json!("k");
        v["server_composition"] = json!("sandbox");
        v
    }

    fn codes(e: &[ApiError]) -> Vec<(&'static str, &str)> {
        e.iter()
            .map(|e| (e.code.as_str(), e.field.as_str()))
            .collect()
    }

    #[test]
    fn deliveries_defaults_and_filters() {
        let q = deliveries_query(
            &params(auth(json!({"date":"2025-06-30"}))),
            NOW,
            TzOffset::UTC,
        )
        .unwrap();
        assert_eq!(q.page, Page { page: 0, rows: 10 });
        assert_eq!(q.hour, None);
        assert_eq!(q.credentials.api_user, "u");
        let w = q.window(TzOffset::UTC);
        assert_eq!(w.end.unwrap() - w.start.unwrap(), 86_400);

        let q = deliveries_query(
            &params(auth(json!({
                "date":"2025-07-01","hour":9,"minute":"15","from":"shop@","to":"Example.JP",
                "api_data":"camp-1","status":"failed","p":2,"r":"100",
                "search_option":{"api_data":"full"}
            }))),
            NOW,
            TzOffset::UTC,
        )
        .unwrap();
        assert_eq!((q.hour, q.minute), (Some(9), Some(15)));
        assert_eq!(q.status, Some(DeliveryStatus::Failed));
        assert_eq!(q.page, Page { page: 2, rows: 100 });
        assert_eq!(q.api_data.as_ref().unwrap().mode, MatchMode::Full);
        let w = q.window(TzOffset::UTC);
        assert_eq!(w.start, Some(1_751_361_300));
        assert_eq!(w.end, Some(1_751_361_360));

        let mut rec = DeliveryRecord {
            created: "2025-07-01 09:15:10".into(),
            return_path: "r@x".into(),
            from: "shop@example.com".into(),
            to: "user@example.jp".into(),
            message_id: "<m>".into(),
            reason: "".into(),
            sender_ip: "".into(),
            source_ip: "".into(),
            status: DeliveryStatus::Failed,
            subject: "s".into(),
            api_data: "camp-1".into(),
        };
        assert!(q.matches(&rec));
        rec.api_data = "camp-10".into();
        assert!(!q.matches(&rec), "full match on api_data");
        rec.api_data = "CAMP-1".into();
        assert!(q.matches(&rec));
        rec.status = DeliveryStatus::Succeeded;
        assert!(!q.matches(&rec));
    }

    #[test]
    fn deliveries_validation_errors() {
        let e = deliveries_query(&params(json!({})), NOW, TzOffset::UTC).unwrap_err();
        assert_eq!(
            codes(&e),
            vec![
                ("10-005", "api_user"),
                ("10-006", "api_key"),
                ("10-007", "server_composition"),
                ("10-008", "date")
            ]
        );
        let e = deliveries_query(
            &params(auth(
                json!({"date":"2025/07/01","hour":24,"minute":60,"status":"sent","p":-1,"r":101}),
            )),
            NOW,
            TzOffset::UTC,
        )
        .unwrap_err();
        assert_eq!(
            codes(&e),
            vec![
                ("14-001", "date"),
                ("14-003", "hour"),
                ("14-004", "minute"),
                ("14-006", "status"),
                ("14-007", "p"),
                ("14-008", "r")
            ]
        );
        let e = deliveries_query(
            &params(auth(json!({"date":"2025-06-30","r":0}))),
            NOW,
            TzOffset::UTC,
        )
        .unwrap_err();
        assert_eq!(codes(&e), vec![("14-008", "r")]);
        let e = deliveries_query(
            &params(auth(json!({"date":"2025-06-30","r":"ten"}))),
            NOW,
            TzOffset::UTC,
        )
        .unwrap_err();
        assert_eq!(codes(&e), vec![("14-008", "r")]);
        let e = deliveries_query(
            &params(auth(json!({"date":"2025-06-30","minute":5}))),
            NOW,
            TzOffset::UTC,
        )
        .unwrap_err();
        assert_eq!(codes(&e), vec![("14-004", "minute")]);
        let e = deliveries_query(
            &params(auth(json!({"date":"2025-06-30","search_option":"full"}))),
            NOW,
            TzOffset::UTC,
        )
        .unwrap_err();
        assert_eq!(codes(&e), vec![("14-013", "search_option")]);
        let e = deliveries_query(
            &params(auth(
                json!({"date":"2025-06-30","search_option":{"to":"fuzzy"}}),
            )),
            NOW,
            TzOffset::UTC,
        )
        .unwrap_err();
        assert_eq!(codes(&e), vec![("14-013", "search_option")]);
    }

    #[test]
    fn future_dates_and_times_depend_on_time_zone() {
        // 10:30 UTC on 2025-07-01 is 19:30 JST on the same day
        let q = |v: Value, tz| deliveries_query(&params(auth(v)), NOW, tz);
        assert_eq!(
            codes(&q(json!({"date":"2025-07-02"}), TzOffset::UTC).unwrap_err()),
            vec![("14-002", "date")]
        );
        assert!(q(
            json!({"date":"2025-07-01","hour":10,"minute":30}),
            TzOffset::UTC
        )
        .is_ok());
        assert_eq!(
            codes(&q(json!({"date":"2025-07-01","hour":11}), TzOffset::UTC).unwrap_err()),
            vec![("14-005", "hour")]
        );
        assert_eq!(
            codes(
                &q(
                    json!({"date":"2025-07-01","hour":10,"minute":31}),
                    TzOffset::UTC
                )
                .unwrap_err()
            ),
            vec![("14-005", "minute")]
        );
        assert!(q(json!({"date":"2025-07-01","hour":19}), TzOffset::JST).is_ok());
        assert!(q(json!({"date":"2025-07-01","hour":20}), TzOffset::JST).is_err());
        // just after midnight JST, 2025-07-02 is "today" in Japan but the future in UTC
        let late = 1_751_382_000; // 2025-07-01 15:00 UTC = 2025-07-02 00:00 JST
        assert!(deliveries_query(
            &params(auth(json!({"date":"2025-07-02"}))),
            late,
            TzOffset::JST
        )
        .is_ok());
        assert!(deliveries_query(
            &params(auth(json!({"date":"2025-07-02"}))),
            late,
            TzOffset::UTC
        )
        .is_err());
        let w = q(json!({"date":"2025-07-01","hour":9}), TzOffset::JST)
            .unwrap()
            .window(TzOffset::JST);
        assert_eq!(w.start, Some(1_751_328_000)); // 2025-07-01 00:00 UTC
    }

    #[test]
    fn form_encoded_queries_work_too() {
        let p = parse_form(
            "application/x-www-form-urlencoded",
            b"api_user=u&api_key=k&server_composition=pro&date=2025-06-30&search_option%5Bto%5D=full&to=a%40x.jp&r=5",
        )
        .unwrap();
        let q = deliveries_query(&p, NOW, TzOffset::UTC).unwrap();
        assert_eq!(
            q.to,
            Some(TextFilter {
                pattern: "a@x.jp".into(),
                mode: MatchMode::Full
            })
        );
        assert_eq!(q.page.rows, 5);
    }

    #[test]
    fn bounces_periods_and_status() {
        let q = bounces_query(
            &params(auth(
                json!({"start_date":"2025-06-01","end_date":"2025-06-30","status":2}),
            )),
            NOW,
            TzOffset::UTC,
        )
        .unwrap();
        assert_eq!(
            q.period,
            BouncePeriod::Range {
                start: Date::new(2025, 6, 1),
                end: Date::new(2025, 6, 30)
            }
        );
        assert_eq!(q.status, Some(BounceCode::UnknownUser));
        let w = q.window(TzOffset::UTC);
        assert_eq!(w.end.unwrap() - w.start.unwrap(), 30 * 86_400);
        let q = bounces_query(&params(auth(json!({}))), NOW, TzOffset::UTC).unwrap();
        assert_eq!(
            q.period,
            BouncePeriod::Range {
                start: None,
                end: None
            }
        );
        assert_eq!(
            q.window(TzOffset::UTC),
            TimeWindow {
                start: None,
                end: None
            }
        );
        let q = bounces_query(
            &params(auth(json!({"date":"2025-06-30","hour":"3"}))),
            NOW,
            TzOffset::UTC,
        )
        .unwrap();
        assert!(matches!(q.period, BouncePeriod::Day { hour: Some(3), .. }));
        assert_eq!(
            q.window(TzOffset::UTC).end.unwrap() - q.window(TzOffset::UTC).start.unwrap(),
            3600
        );

        let rec = BounceRecord {
            created: "".into(),
            status: BounceCode::UnknownUser,
            from: "f@x.jp".into(),
            to: "t@y.jp".into(),
            message_id: "".into(),
            return_path: "".into(),
            subject: "".into(),
            api_data: "".into(),
            reason: "".into(),
        };
        let q = bounces_query(
            &params(auth(json!({"to":"@y.jp","status":"2"}))),
            NOW,
            TzOffset::UTC,
        )
        .unwrap();
        assert!(q.matches(&rec));
        let q = bounces_query(&params(auth(json!({"status":"99"}))), NOW, TzOffset::UTC).unwrap();
        assert!(!q.matches(&rec));

        let e = bounces_query(
            &params(auth(json!({"date":"2025-06-30","start_date":"2025-06-02","end_date":"2025-06-01","status":12}))),
            NOW,
            TzOffset::UTC,
        )
        .unwrap_err();
        assert_eq!(
            codes(&e),
            vec![
                ("14-009", "start_date"),
                ("14-014", "date"),
                ("14-006", "status")
            ]
        );
        let e = bounces_query(&params(auth(json!({"hour":1}))), NOW, TzOffset::UTC).unwrap_err();
        assert_eq!(codes(&e), vec![("14-003", "hour")]);
        let e = bounces_query(
            &params(auth(json!({"date":"2025-02-30"}))),
            NOW,
            TzOffset::UTC,
        )
        .unwrap_err();
        assert_eq!(codes(&e), vec![("14-001", "date")]);
    }

    #[test]
    fn blocks_list_and_cancel() {
        let q = blocks_query(&params(auth(
            json!({"email":"example.com","removed":"true","start_date":"2015-12-14"}),
        )))
        .unwrap();
        assert!(q.removed);
        assert_eq!(q.start_date, Date::new(2015, 12, 14));
        assert_eq!(q.window(TzOffset::UTC).end, None);
        let rec = BlockRecord {
            created: "2015-12-14 08:46:00".into(),
            email: "to1@example.com".into(),
            id: "cp0ihzuyl3445".into(),
            occurred: 1,
            status: BounceCode::UnknownUser,
        };
        assert!(q.matches(&rec, true));
        let q = blocks_query(&params(auth(json!({})))).unwrap();
        assert!(!q.removed && q.email.is_none());
        assert!(q.matches(&rec, false) && !q.matches(&rec, true));
        let e = blocks_query(&params(auth(
            json!({"removed":"maybe","start_date":"2015-12-15","end_date":"2015-12-14"}),
        )))
        .unwrap_err();
        assert_eq!(
            codes(&e),
            vec![("14-009", "start_date"), ("14-012", "removed")]
        );

        let c = blocks_cancel(&params(auth(
            json!({"email":["A@x.jp"," a@x.jp","b@x.jp"]}),
        )))
        .unwrap();
        assert_eq!(c.emails, vec!["A@x.jp", "b@x.jp"]);
        let c = blocks_cancel(&params(auth(json!({"email":"c@x.jp"})))).unwrap();
        assert_eq!(c.emails, vec!["c@x.jp"]);
        assert_eq!(
            codes(&blocks_cancel(&params(auth(json!({})))).unwrap_err()),
            vec![("10-011", "email")]
        );
        assert_eq!(
            codes(&blocks_cancel(&params(auth(json!({"email":[]})))).unwrap_err()),
            vec![("10-011", "email")]
        );
        assert_eq!(
            codes(&blocks_cancel(&params(auth(json!({"email":[1]})))).unwrap_err()),
            vec![("11-011", "email")]
        );
        assert_eq!(
            codes(&blocks_cancel(&params(auth(json!({"email":{"a":1}})))).unwrap_err()),
            vec![("11-011", "email")]
        );
        let p = parse_form(
            "application/x-www-form-urlencoded",
            b"api_user=u&api_key=k&server_composition=s&email%5B%5D=d%40x.jp&email%5B%5D=e%40x.jp",
        )
        .unwrap();
        assert_eq!(blocks_cancel(&p).unwrap().emails, vec!["d@x.jp", "e@x.jp"]);
    }

    #[test]
    fn statistics() {
        let q = statistics_query(&params(
            json!({"api_user":"u","api_key":"k","year":2024,"month":"02","total":true}),
        ))
        .unwrap();
        assert_eq!((q.year, q.month, q.total), (2024, 2, true));
        assert_eq!(q.days().len(), 29);
        assert_eq!(q.server_composition, None);
        let w = q.window(TzOffset::UTC);
        assert_eq!(w.end.unwrap() - w.start.unwrap(), 29 * 86_400);
        let rows = vec![
            StatisticsRow::new("2024-02-01", 3, 2, 1, 0),
            StatisticsRow::new("2024-02-02", 1, 1, 0, 1),
        ];
        assert_eq!(
            q.finish(rows.clone()),
            vec![StatisticsRow::new("total", 4, 3, 1, 1)]
        );
        let q = statistics_query(&params(json!({"api_user":"u","api_key":"k","year":"2024","month":1,"server_composition":"pro"}))).unwrap();
        assert_eq!(q.finish(rows.clone()), rows);
        assert_eq!(q.server_composition.as_deref(), Some("pro"));

        let e = statistics_query(&params(json!({"api_user":"u","api_key":"k"}))).unwrap_err();
        assert_eq!(codes(&e), vec![("10-009", "year"), ("10-010", "month")]);
        let e = statistics_query(&params(
            json!({"api_user":"u","api_key":"k","year":"24","month":13,"total":"yes"}),
        ))
        .unwrap_err();
        assert_eq!(
            codes(&e),
            vec![("14-010", "year"), ("14-011", "month"), ("14-012", "total")]
        );
        let e = statistics_query(&params(
            json!({"api_user":"u","api_key":"k","year":2024,"month":"001"}),
        ))
        .unwrap_err();
        assert_eq!(codes(&e), vec![("14-011", "month")]);
    }

    #[test]
    fn paging_and_matching_helpers() {
        let items: Vec<u32> = (0..25).collect();
        assert_eq!(Page { page: 0, rows: 10 }.apply(&items), &items[0..10]);
        assert_eq!(Page { page: 2, rows: 10 }.apply(&items), &items[20..25]);
        assert!(Page { page: 3, rows: 10 }.apply(&items).is_empty());
        assert_eq!(
            Page {
                page: u32::MAX,
                rows: 100
            }
            .range(5),
            5..5
        );
        assert_eq!(
            Page::default(),
            Page {
                page: 0,
                rows: DEFAULT_ROWS
            }
        );
        let f = TextFilter {
            pattern: "Example".into(),
            mode: MatchMode::Partial,
        };
        assert!(matches(&f, "user@example.com") && f.matches("EXAMPLE"));
        assert!(!matches(&f, "exampl"));
        let f = TextFilter {
            pattern: "a@x.jp".into(),
            mode: MatchMode::Full,
        };
        assert!(f.matches("A@X.JP") && !f.matches("aa@x.jp"));
        let e = deliveries_query(
            &params(auth(json!({"date":"2025-06-30","from":{"x":1}}))),
            NOW,
            TzOffset::UTC,
        )
        .unwrap_err();
        assert_eq!(codes(&e), vec![("11-011", "from")]);
    }
}
