//! A report's window and its buckets (pure).
//!
//! Windows are whole UTC days, because click figures come from per-day rollups and every
//! figure of a report must count the same span: `since` names its first day, `until` its
//! last (a time is taken as its day). Default: the 30 days ending today; at most 731 days;
//! `since` after `until` → `400 invalid_query`. Events and commissions are counted by
//! their time within `[since 00:00, the day after until 00:00)`.

use crate::error::ApiError;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};

pub const DEFAULT_DAYS: i64 = 30;
pub const MAX_DAYS: i64 = 731;
/// Over this many days a time series is bucketed by week unless asked otherwise.
pub const DAILY_UP_TO_DAYS: i64 = 90;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First day counted.
    pub since: NaiveDate,
    /// Last day counted.
    pub until: NaiveDate,
}

impl Window {
    /// From the `since` and `until` query values (ISO 8601 times or `YYYY-MM-DD` dates),
    /// `today` being the default `until`.
    pub fn parse(
        since: Option<&str>,
        until: Option<&str>,
        today: NaiveDate,
    ) -> Result<Window, ApiError> {
        let until = match until {
            Some(v) => day("until", v)?,
            None => today,
        };
        let since = match since {
            Some(v) => day("since", v)?,
            None => until - Duration::days(DEFAULT_DAYS - 1),
        };
        if since > until {
            return Err(ApiError::invalid_query("since is after until"));
        }
        if (until - since).num_days() + 1 > MAX_DAYS {
            return Err(ApiError::invalid_query(format!(
                "a window spans at most {MAX_DAYS} days"
            )));
        }
        Ok(Window { since, until })
    }

    /// Days in the window.
    pub fn days(&self) -> i64 {
        (self.until - self.since).num_days() + 1
    }

    /// The first instant counted.
    pub fn start(&self) -> DateTime<Utc> {
        self.since.and_time(NaiveTime::MIN).and_utc()
    }

    /// The first instant no longer counted (the day after `until`).
    pub fn end(&self) -> DateTime<Utc> {
        (self.until + Duration::days(1))
            .and_time(NaiveTime::MIN)
            .and_utc()
    }
}

/// A query value as a day: `YYYY-MM-DD`, or an RFC 3339 time (its UTC day).
fn day(name: &str, v: &str) -> Result<NaiveDate, ApiError> {
    let v = v.trim();
    let parsed = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok().or_else(|| {
        DateTime::parse_from_rfc3339(v)
            .ok()
            .map(|t| t.with_timezone(&Utc).date_naive())
    });
    match parsed {
        Some(d) if (1970..=9999).contains(&d.year()) => Ok(d),
        _ => Err(ApiError::invalid_query(format!(
            "{name} must be a date (YYYY-MM-DD) or an ISO 8601 time"
        ))),
    }
}

/// Time-series bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Day,
    /// ISO weeks, starting on Monday.
    Week,
}

impl Bucket {
    /// From `bucket=day|week`; by default weeks over 90 days, else days.
    pub fn parse(raw: Option<&str>, window: &Window) -> Result<Bucket, ApiError> {
        match raw {
            Some("day") => Ok(Bucket::Day),
            Some("week") => Ok(Bucket::Week),
            Some(_) => Err(ApiError::invalid_query("bucket must be day or week")),
            None if window.days() > DAILY_UP_TO_DAYS => Ok(Bucket::Week),
            None => Ok(Bucket::Day),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Bucket::Day => "day",
            Bucket::Week => "week",
        }
    }

    /// The bucket a day falls in (its first day).
    pub fn of(self, d: NaiveDate) -> NaiveDate {
        match self {
            Bucket::Day => d,
            Bucket::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
        }
    }

    /// Every bucket the window touches, in order (dense: none is left out).
    pub fn all(self, w: &Window) -> Vec<NaiveDate> {
        let step = match self {
            Bucket::Day => 1,
            Bucket::Week => 7,
        };
        let mut out = Vec::new();
        let mut b = self.of(w.since);
        while b <= w.until {
            out.push(b);
            b += Duration::days(step);
        }
        out
    }
}

/// `part / whole` rounded to 4 decimals, in [0, 1]; `None` when `whole` is 0.
pub fn rate(part: i64, whole: i64) -> Option<f64> {
    if whole <= 0 {
        return None;
    }
    let r = (part.max(0) as f64 / whole as f64).min(1.0);
    Some((r * 10_000.0).round() / 10_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn windows_default_to_thirty_days_ending_today() {
        let w = Window::parse(None, None, d("2026-03-31")).unwrap();
        assert_eq!(
            (w.since, w.until, w.days()),
            (d("2026-03-02"), d("2026-03-31"), 30)
        );
        assert_eq!(w.start().to_rfc3339(), "2026-03-02T00:00:00+00:00");
        assert_eq!(w.end().to_rfc3339(), "2026-04-01T00:00:00+00:00");
        let w = Window::parse(
            Some("2026-01-10T23:59:00Z"),
            Some("2026-01-12"),
            d("2026-03-31"),
        )
        .unwrap();
        assert_eq!((w.since, w.until), (d("2026-01-10"), d("2026-01-12")));
    }

    #[test]
    fn bad_windows_are_invalid_queries() {
        let today = d("2026-03-31");
        for (s, u) in [
            (Some("2026-02-01"), Some("2026-01-01")),
            (Some("2020-01-01"), Some("2026-01-01")),
            (Some("yesterday"), None),
            (None, Some("2026-13-01")),
            (Some("0001-01-01"), None),
        ] {
            let e = Window::parse(s, u, today).unwrap_err();
            assert_eq!(
                (e.status, e.code),
                (400, crate::error::ErrorCode::InvalidQuery)
            );
        }
        let w = Window::parse(Some("2024-01-01"), Some("2025-12-31"), today).unwrap();
        assert_eq!(w.days(), 731, "731 days is allowed");
        assert!(Window::parse(Some("2024-01-01"), Some("2026-01-01"), today).is_err());
    }

    #[test]
    fn buckets_are_dense_iso_weeks_or_days() {
        let w = Window::parse(Some("2026-01-01"), Some("2026-01-19"), d("2026-03-31")).unwrap();
        let weeks = Bucket::Week.all(&w);
        // 2026-01-01 is a Thursday: its week starts on Monday 2025-12-29.
        assert_eq!(
            weeks,
            vec![
                d("2025-12-29"),
                d("2026-01-05"),
                d("2026-01-12"),
                d("2026-01-19")
            ]
        );
        assert_eq!(Bucket::Day.all(&w).len(), 19);
        assert_eq!(Bucket::parse(None, &w).unwrap(), Bucket::Day);
        let year = Window::parse(Some("2025-01-01"), Some("2025-12-31"), d("2026-03-31")).unwrap();
        assert_eq!(Bucket::parse(None, &year).unwrap(), Bucket::Week);
        assert_eq!(Bucket::Week.all(&year).len(), 53);
        assert!(Bucket::parse(Some("month"), &w).is_err());
    }

    #[test]
    fn rates_are_rounded_and_null_without_a_denominator() {
        assert_eq!(rate(1, 3), Some(0.3333));
        assert_eq!(rate(2, 3), Some(0.6667));
        assert_eq!(rate(0, 0), None);
        assert_eq!(rate(5, 4), Some(1.0), "capped at 1");
    }

    proptest! {
        #[test]
        fn every_day_of_a_window_is_in_exactly_one_bucket(start in 0i64..20_000, len in 1i64..731, weekly: bool) {
            let since = d("1990-01-01") + Duration::days(start);
            let w = Window { since, until: since + Duration::days(len - 1) };
            let b = if weekly { Bucket::Week } else { Bucket::Day };
            let all = b.all(&w);
            let mut day = w.since;
            while day <= w.until {
                prop_assert_eq!(all.iter().filter(|x| **x == b.of(day)).count(), 1);
                day += Duration::days(1);
            }
            prop_assert!(all.windows(2).all(|p| p[0] < p[1]));
        }
    }
}
