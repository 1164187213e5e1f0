//! Dates, times and time zones for CMC responses and list queries, without reading a clock.
//!
//! Timestamps are Unix seconds (`i64`). A [`TzOffset`] (a fixed UTC offset; default UTC)
//! decides which calendar day/hour a timestamp belongs to and how it is printed. CMC prints
//! `created` as `yyyy-mm-dd HH:MM:SS` in the configured time zone (the console has a
//! "Time Zone" setting); callers pass their configured offset, e.g. [`TzOffset::JST`].

use std::fmt;

/// A fixed offset from UTC, in minutes (east positive). The default is UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct TzOffset(i32);

impl TzOffset {
    /// UTC.
    pub const UTC: TzOffset = TzOffset(0);
    /// Japan Standard Time, UTC+09:00.
    pub const JST: TzOffset = TzOffset(9 * 60);

    /// An offset of `minutes` east of UTC; `None` outside ±18 hours.
    pub fn from_minutes(minutes: i32) -> Option<TzOffset> {
        (minutes.abs() <= 18 * 60).then_some(TzOffset(minutes))
    }

    /// Minutes east of UTC.
    pub fn minutes(self) -> i32 {
        self.0
    }

    /// Parses `Z`, `UTC`, `+09:00`, `+0900`, `-05` and the like.
    pub fn parse(s: &str) -> Option<TzOffset> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") {
            return Some(TzOffset::UTC);
        }
        let (sign, rest) = match s.as_bytes().first()? {
            b'+' => (1, &s[1..]),
            b'-' => (-1, &s[1..]),
            _ => return None,
        };
        let digits: String = rest.chars().filter(|c| *c != ':').collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (h, m) = match digits.len() {
            2 => (digits.parse::<i32>().ok()?, 0),
            4 => (
                digits[..2].parse::<i32>().ok()?,
                digits[2..].parse::<i32>().ok()?,
            ),
            _ => return None,
        };
        if m >= 60 {
            return None;
        }
        TzOffset::from_minutes(sign * (h * 60 + m))
    }

    fn seconds(self) -> i64 {
        i64::from(self.0) * 60
    }
}

/// A calendar date (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year, e.g. 2025.
    pub year: i32,
    /// Month 1–12.
    pub month: u32,
    /// Day 1–31.
    pub day: u32,
}

impl Date {
    /// A valid calendar date, or `None`.
    pub fn new(year: i32, month: u32, day: u32) -> Option<Date> {
        (1..=12)
            .contains(&month)
            .then_some(())
            .filter(|_| day >= 1 && day <= days_in_month(year, month))
            .map(|_| Date { year, month, day })
    }

    /// Parses exactly `yyyy-mm-dd` (the CMC DATE type).
    pub fn parse(s: &str) -> Option<Date> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = &s[r];
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())
                .flatten()
        };
        Date::new(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)
    }

    /// Days since 1970-01-01.
    pub fn days_since_epoch(self) -> i64 {
        // Howard Hinnant's days_from_civil
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` days after 1970-01-01.
    pub fn from_days_since_epoch(days: i64) -> Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        Date { year, month, day }
    }

    /// The calendar date of `unix` seconds in time zone `tz`.
    pub fn of_timestamp(unix: i64, tz: TzOffset) -> Date {
        Date::from_days_since_epoch((unix + tz.seconds()).div_euclid(86_400))
    }

    /// Unix seconds of this date's 00:00:00 in time zone `tz`.
    pub fn start_timestamp(self, tz: TzOffset) -> i64 {
        self.days_since_epoch() * 86_400 - tz.seconds()
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Number of days in `month` of `year`.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// `yyyy-mm-dd HH:MM:SS` (CMC's `created` format) of `unix` seconds in `tz`.
pub fn format_datetime(unix: i64, tz: TzOffset) -> String {
    let local = unix + tz.seconds();
    let date = Date::from_days_since_epoch(local.div_euclid(86_400));
    let secs = local.rem_euclid(86_400);
    format!(
        "{date} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `yyyy-mm-dd` of `unix` seconds in `tz` (statistics row dates).
pub fn format_date(unix: i64, tz: TzOffset) -> String {
    Date::of_timestamp(unix, tz).to_string()
}

/// RFC 5322 date, e.g. `Tue, 01 Jul 2025 21:00:00 +0900`, for the Date header.
pub fn format_rfc2822(unix: i64, tz: TzOffset) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let local = unix + tz.seconds();
    let days = local.div_euclid(86_400);
    let date = Date::from_days_since_epoch(days);
    let secs = local.rem_euclid(86_400);
    let off = tz.minutes();
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} {}{:02}{:02}",
        DAYS[days.rem_euclid(7) as usize],
        date.day,
        MONTHS[(date.month - 1) as usize],
        date.year,
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        if off < 0 { '-' } else { '+' },
        off.abs() / 60,
        off.abs() % 60
    )
}

/// A half-open span of Unix seconds `[start, end)`; either side may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    /// Inclusive start, if bounded.
    pub start: Option<i64>,
    /// Exclusive end, if bounded.
    pub end: Option<i64>,
}

impl TimeWindow {
    /// True if `unix` lies inside the window.
    pub fn contains(&self, unix: i64) -> bool {
        self.start.is_none_or(|s| unix >= s) && self.end.is_none_or(|e| unix < e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tz_parsing() {
        assert_eq!(TzOffset::parse("+09:00"), Some(TzOffset::JST));
        assert_eq!(TzOffset::parse("+0900"), Some(TzOffset::JST));
        assert_eq!(TzOffset::parse("-05"), TzOffset::from_minutes(-300));
        assert_eq!(TzOffset::parse("Z"), Some(TzOffset::UTC));
        assert_eq!(TzOffset::parse("UTC"), Some(TzOffset::default()));
        for bad in ["", "09:00", "+9", "+19:00", "+09:60", "+ab:cd"] {
            assert_eq!(TzOffset::parse(bad), None, "{bad}");
        }
        assert_eq!(TzOffset::JST.minutes(), 540);
    }

    #[test]
    fn dates() {
        assert_eq!(Date::parse("2024-02-29"), Date::new(2024, 2, 29));
        assert!(Date::parse("2023-02-29").is_none());
        assert!(Date::parse("2024-13-01").is_none());
        assert!(Date::parse("2024-1-01").is_none());
        assert!(Date::parse("2024/01/01").is_none());
        assert!(Date::parse("+024-01-01").is_none());
        assert!(Date::new(1900, 2, 29).is_none());
        assert!(Date::new(2000, 2, 29).is_some());
        for days in [-800_000, -1, 0, 1, 19_000, 20_000, 2_932_896] {
            let d = Date::from_days_since_epoch(days);
            assert_eq!(d.days_since_epoch(), days);
        }
        assert_eq!(Date::new(1970, 1, 1).unwrap().days_since_epoch(), 0);
        assert_eq!(Date::parse("2025-07-01").unwrap().to_string(), "2025-07-01");
    }

    #[test]
    fn formatting_in_time_zones() {
        // 2025-06-30T15:30:05Z
        let t = 1_751_297_405;
        assert_eq!(format_datetime(t, TzOffset::UTC), "2025-06-30 15:30:05");
        assert_eq!(format_datetime(t, TzOffset::JST), "2025-07-01 00:30:05");
        assert_eq!(format_date(t, TzOffset::JST), "2025-07-01");
        assert_eq!(
            format_rfc2822(t, TzOffset::UTC),
            "Mon, 30 Jun 2025 15:30:05 +0000"
        );
        assert_eq!(
            format_rfc2822(t, TzOffset::JST),
            "Tue, 01 Jul 2025 00:30:05 +0900"
        );
        let est = TzOffset::parse("-05:30").unwrap();
        assert_eq!(format_rfc2822(t, est), "Mon, 30 Jun 2025 10:00:05 -0530");
        assert_eq!(format_datetime(-1, TzOffset::UTC), "1969-12-31 23:59:59");
        assert_eq!(
            Date::of_timestamp(t, TzOffset::JST).start_timestamp(TzOffset::JST),
            1_751_295_600
        );
    }

    #[test]
    fn windows() {
        let w = TimeWindow {
            start: Some(10),
            end: Some(20),
        };
        assert!(w.contains(10) && w.contains(19) && !w.contains(20) && !w.contains(9));
        let open = TimeWindow {
            start: None,
            end: None,
        };
        assert!(open.contains(i64::MIN) && open.contains(i64::MAX));
    }
}
