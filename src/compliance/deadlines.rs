//! Legal deadlines, counted as the law counts them: in the calendar of Oslo (the console
//! stores UTC and shows Oslo time), a period of months ending at the end of the day with the
//! same date in the last month, or that month's last day when it has no such date (EU
//! regulation 1182/71 art. 3, which the GDPR's "one month" follows).

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Oslo;

/// The day something is due by, and the instant that day ends in Oslo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    /// The last day (Oslo calendar) on which it is still on time.
    pub day: NaiveDate,
    /// The end of that day: at or after this instant it is late.
    pub ends: DateTime<Utc>,
}

impl Deadline {
    /// `months` calendar months after `from` (an event stored in UTC, read in Oslo).
    pub fn months_after(from: DateTime<Utc>, months: u32) -> Self {
        let received = from.with_timezone(&Oslo).date_naive();
        // chrono clamps to the month's last day (31 January + 1 month = 28/29 February).
        let day = received.checked_add_months(Months::new(months)).unwrap_or(received);
        Self { day, ends: start_of_day(day.checked_add_days(Days::new(1)).unwrap_or(day)) }
    }

    pub fn is_past(&self, now: DateTime<Utc>) -> bool {
        now >= self.ends
    }

    /// Whole days left until the end of the deadline's day (0 on the day itself), negative
    /// once past.
    pub fn days_left(&self, now: DateTime<Utc>) -> i64 {
        let today = now.with_timezone(&Oslo).date_naive();
        (self.day - today).num_days()
    }
}

/// Midnight at the start of `day` in Oslo (a day always starts at 00:00 there: the clocks
/// change at 02:00 and 03:00).
fn start_of_day(day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    Oslo.from_local_datetime(&midnight).earliest().map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc))
}

/// A moment as staff read it: Oslo wall-clock time, `2026-12-06 10:56`.
pub fn oslo(t: DateTime<Utc>) -> String {
    t.with_timezone(&Oslo).format("%Y-%m-%d %H:%M").to_string()
}

/// The Oslo calendar day of a moment.
pub fn oslo_day(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&Oslo).date_naive()
}

/// The calendar quarter (Oslo) a moment falls in: its first day and the first day of the
/// next, as UTC instants.
pub fn quarter_of(t: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let day = oslo_day(t);
    let first_month = (day.month0() / 3) * 3 + 1;
    let start = NaiveDate::from_ymd_opt(day.year(), first_month, 1).unwrap_or(day);
    let next = start.checked_add_months(Months::new(3)).unwrap_or(start);
    (start_of_day(start), start_of_day(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_month_ends_on_the_same_date_or_the_months_last_day() {
        let d = Deadline::months_after(utc("2026-01-15T09:00:00Z"), 1);
        assert_eq!(d.day, day("2026-02-15"));
        // 31 January: February has no 31st, so its last day.
        assert_eq!(Deadline::months_after(utc("2026-01-31T10:00:00Z"), 1).day, day("2026-02-28"));
        assert_eq!(Deadline::months_after(utc("2028-01-31T10:00:00Z"), 1).day, day("2028-02-29"));
        // Extended by two months: three from receipt, clamped the same way.
        assert_eq!(Deadline::months_after(utc("2026-11-30T10:00:00Z"), 3).day, day("2027-02-28"));
    }

    #[test]
    fn the_day_received_is_the_oslo_day() {
        // 23:30 UTC on 31 January is 00:30 on 1 February in Oslo: due 1 March, not 28 February.
        let d = Deadline::months_after(utc("2026-01-31T23:30:00Z"), 1);
        assert_eq!(d.day, day("2026-03-01"));
        // Ends at the end of that day in Oslo (CET, UTC+1).
        assert_eq!(d.ends, utc("2026-03-01T23:00:00Z"));
    }

    #[test]
    fn the_end_of_day_follows_summer_time() {
        // Received in winter, due in summer: the day ends at 22:00 UTC (CEST, UTC+2).
        let d = Deadline::months_after(utc("2026-03-28T23:30:00Z"), 1);
        assert_eq!(d.day, day("2026-04-29"));
        assert_eq!(d.ends, utc("2026-04-29T22:00:00Z"));
        assert!(!d.is_past(utc("2026-04-29T21:59:59Z")));
        assert!(d.is_past(utc("2026-04-29T22:00:00Z")));
        assert_eq!(d.days_left(utc("2026-04-29T21:00:00Z")), 0);
        assert_eq!(d.days_left(utc("2026-04-29T22:30:00Z")), -1);
    }

    #[test]
    fn quarters_are_oslo_quarters() {
        // 23:30 UTC on 31 March is already 1 April in Oslo: the second quarter.
        let (start, next) = quarter_of(utc("2026-03-31T22:30:00Z"));
        assert_eq!(start, utc("2026-03-31T22:00:00Z"));
        assert_eq!(next, utc("2026-06-30T22:00:00Z"));
        assert_eq!(oslo(utc("2026-12-06T09:56:00Z")), "2026-12-06 10:56");
    }
}
