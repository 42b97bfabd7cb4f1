//! Schedule expressions: 5-field cron with names, ranges, steps, lists and `L` (last day of
//! the month), evaluated on the wall clock of an IANA time zone, and `rate(N unit)`.
//!
//! Daylight-saving rules, per UTC minute: a cron expression is due when it matches the local
//! time of that minute and that local time occurs there for the first time (so a 02:30 job
//! runs once on the autumn day the clock passes 02:30 twice), or when it matches a local
//! time that a forward jump skipped just before that minute (so a 02:30 job runs at 03:00 on
//! the spring-forward day). `rate(N minutes|hours|days)` runs in UTC at the minutes since
//! the Unix epoch divisible by N minutes (`rate(1 hour)` on the hour, `rate(1 day)` at
//! 00:00 UTC).

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// A cron expression in a zone.
    Cron {
        /// The fields.
        cron: Cron,
        /// The zone whose wall clock it reads (UTC when none is given).
        tz: Tz,
    },
    /// Every `minutes` minutes, aligned to the Unix epoch.
    Rate {
        /// The period.
        minutes: i64,
    },
}

/// The five fields of a cron expression as sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days: u64,
    last_day: bool,
    months: u64,
    weekdays: u64,
    days_any: bool,
    weekdays_any: bool,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn value(text: &str, min: u32, max: u32, names: &[&str], name_base: u32) -> Result<u32, String> {
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(i as u32 + name_base);
    }
    let v: u32 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number or a name"))?;
    if v < min || v > max {
        return Err(format!("{v} is outside {min}-{max}"));
    }
    Ok(v)
}

fn field(
    text: &str,
    min: u32,
    max: u32,
    names: &[&str],
    name_base: u32,
    what: &str,
) -> Result<u64, String> {
    let mut set = 0u64;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let s: u32 = s
                    .parse()
                    .map_err(|_| format!("{what}: bad step in `{item}`"))?;
                if s == 0 {
                    return Err(format!("{what}: step 0 in `{item}`"));
                }
                (r, s)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = value(a, min, max, names, name_base).map_err(|e| format!("{what}: {e}"))?;
            let b = value(b, min, max, names, name_base).map_err(|e| format!("{what}: {e}"))?;
            if a > b {
                return Err(format!("{what}: range `{range}` runs backwards"));
            }
            (a, b)
        } else {
            let a = value(range, min, max, names, name_base).map_err(|e| format!("{what}: {e}"))?;
            // `a/n` means from a to the end in steps of n.
            (a, if item.contains('/') { max } else { a })
        };
        let mut v = lo;
        while v <= hi {
            set |= 1 << v;
            v += step;
        }
    }
    Ok(set)
}

impl Cron {
    /// Parses `minute hour day-of-month month day-of-week`.
    pub fn parse(expr: &str) -> Result<Self, CronError> {
        Self::read(expr).map_err(CronError)
    }

    fn read(expr: &str) -> Result<Self, String> {
        let parts: Vec<&str> = expr.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(format!(
                "`{expr}` has {} fields; cron takes 5: minute hour day-of-month month day-of-week",
                parts.len()
            ));
        }
        let minutes = field(parts[0], 0, 59, &[], 0, "minute")?;
        let hours = field(parts[1], 0, 23, &[], 0, "hour")?;
        let (days, last_day) = {
            let items: Vec<&str> = parts[2].split(',').collect();
            let last_day = items.iter().any(|i| i.eq_ignore_ascii_case("L"));
            let rest: Vec<&str> = items
                .into_iter()
                .filter(|i| !i.eq_ignore_ascii_case("L"))
                .collect();
            let days = if rest.is_empty() {
                0
            } else {
                field(&rest.join(","), 1, 31, &[], 0, "day-of-month")?
            };
            (days, last_day)
        };
        let months = field(parts[3], 1, 12, &MONTHS, 1, "month")?;
        let mut weekdays = field(parts[4], 0, 7, &WEEKDAYS, 0, "day-of-week")?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & !(1 << 7);
        }
        Ok(Self {
            minutes,
            hours,
            days,
            last_day,
            months,
            weekdays,
            days_any: parts[2] == "*",
            weekdays_any: parts[4] == "*",
        })
    }

    /// Whether a local wall-clock minute matches. Day-of-month and day-of-week combine as in
    /// classic cron: when both are restricted, either may match.
    pub(crate) fn matches(&self, t: NaiveDateTime) -> bool {
        let bit = |set: u64, v: u32| set & (1 << v) != 0;
        if !bit(self.minutes, t.minute())
            || !bit(self.hours, t.hour())
            || !bit(self.months, t.month())
        {
            return false;
        }
        let last = last_day_of_month(t.year(), t.month());
        let dom = bit(self.days, t.day()) || (self.last_day && t.day() == last);
        let dow = bit(self.weekdays, t.weekday().num_days_from_sunday());
        match (self.days_any, self.weekdays_any) {
            (true, true) => true,
            (true, false) => dow,
            (false, true) => dom,
            (false, false) => dom || dow,
        }
    }
}

fn last_day_of_month(year: i32, month: u32) -> u32 {
    let (y, m) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    chrono::NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

fn parse_rate(expr: &str) -> Option<Result<i64, String>> {
    let inner = expr.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let bad = || format!("`{expr}` is not rate(N minutes|hours|days)");
    let mut words = inner.split_whitespace();
    let (Some(n), Some(unit), None) = (words.next(), words.next(), words.next()) else {
        return Some(Err(bad()));
    };
    let Ok(n) = n.parse::<i64>() else {
        return Some(Err(bad()));
    };
    if n <= 0 {
        return Some(Err(format!("`{expr}`: the period must be positive")));
    }
    let per = match unit {
        "minute" | "minutes" => 1,
        "hour" | "hours" => 60,
        "day" | "days" => 1440,
        _ => return Some(Err(bad())),
    };
    Some(Ok(n * per))
}

/// Whole minutes since the Unix epoch of a time.
pub fn minute_of(t: time::OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(60)
}

/// The UTC time of a minute since the epoch.
pub fn time_of(minute: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(minute * 60)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// A minute as `2026-03-27T08:00Z` (tick ids, listings).
pub fn minute_text(minute: i64) -> String {
    utc_of(minute).format("%Y-%m-%dT%H:%MZ").to_string()
}

// The zone arithmetic is chrono-tz's; chrono stays inside this module.
fn utc_of(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(minute * 60, 0).unwrap_or_default()
}

impl Schedule {
    /// Parses an expression (`cron` text or `rate(...)`) with an optional IANA zone.
    pub fn parse(expr: &str, timezone: Option<&str>) -> Result<Self, (&'static str, String)> {
        if let Some(rate) = parse_rate(expr) {
            if timezone.is_some() {
                return Err((
                    "timezone",
                    "rate() runs in UTC; a timezone applies to cron expressions only".into(),
                ));
            }
            return rate
                .map(|minutes| Self::Rate { minutes })
                .map_err(|e| ("cron", e));
        }
        let cron = Cron::parse(expr).map_err(|e| ("cron", e.0))?;
        let tz = match timezone {
            None => Tz::UTC,
            Some(name) => name.parse::<Tz>().map_err(|_| {
                (
                    "timezone",
                    format!("`{name}` is not an IANA time zone name"),
                )
            })?,
        };
        Ok(Self::Cron { cron, tz })
    }

    /// Whether the schedule is due at this UTC minute (see the module doc for DST rules).
    pub fn is_due(&self, minute: i64) -> bool {
        match self {
            Self::Rate { minutes } => minute.rem_euclid(*minutes) == 0,
            Self::Cron { cron, tz } => {
                let utc = utc_of(minute);
                let local = utc.with_timezone(tz).naive_local();
                if cron.matches(local) {
                    // Only the first occurrence of an ambiguous (autumn) local time counts.
                    let first = tz
                        .from_local_datetime(&local)
                        .earliest()
                        .map(|t| t.timestamp());
                    if first == Some(utc.timestamp()) {
                        return true;
                    }
                }
                // Local minutes a spring-forward jump skipped just before this one.
                let before = (utc - Duration::minutes(1)).with_timezone(tz).naive_local();
                let mut skipped = before + Duration::minutes(1);
                while skipped < local {
                    if cron.matches(skipped)
                        && tz.from_local_datetime(&skipped).earliest().is_none()
                    {
                        return true;
                    }
                    skipped += Duration::minutes(1);
                }
                false
            }
        }
    }

    /// The next `n` due minutes after `after` (searching at most a year ahead).
    pub fn next_after(&self, after: time::OffsetDateTime, n: usize) -> Vec<i64> {
        let start = minute_of(after) + 1;
        (start..start + 366 * 1440)
            .filter(|m| self.is_due(*m))
            .take(n)
            .collect()
    }

    /// The IANA name of its zone (`UTC` for rates).
    pub fn zone_name(&self) -> &'static str {
        self.zone().name()
    }

    /// `minute` in the schedule's zone, as RFC 3339 with the zone's offset.
    pub fn local_rfc3339(&self, minute: i64) -> String {
        (utc_of(minute).with_timezone(&self.zone()))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// `minute` in the schedule's zone for people: `2026-03-27 09:00 CET`.
    pub fn local_text(&self, minute: i64) -> String {
        (utc_of(minute).with_timezone(&self.zone()))
            .format("%Y-%m-%d %H:%M %Z")
            .to_string()
    }

    fn zone(&self) -> Tz {
        match self {
            Self::Cron { tz, .. } => *tz,
            Self::Rate { .. } => Tz::UTC,
        }
    }
}

crate::message_error! {
    /// Why a cron expression is refused.
    CronError
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> time::OffsetDateTime {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    }

    fn next(expr: &str, tz: Option<&str>, after: &str, n: usize) -> Vec<String> {
        Schedule::parse(expr, tz)
            .unwrap()
            .next_after(at(after), n)
            .into_iter()
            .map(minute_text)
            .collect()
    }

    #[test]
    fn every_five_minutes() {
        assert_eq!(
            next("*/5 * * * *", None, "2026-11-22T10:02:00Z", 3),
            [
                "2026-11-22T10:05Z",
                "2026-11-22T10:10Z",
                "2026-11-22T10:15Z"
            ]
        );
    }

    #[test]
    fn weekdays_at_nine_in_berlin_across_the_spring_change() {
        // 2026-03-29 (Sunday) Berlin moves from UTC+1 to UTC+2.
        assert_eq!(
            next(
                "0 9 * * MON-FRI",
                Some("Europe/Berlin"),
                "2026-03-26T12:00:00Z",
                4
            ),
            [
                "2026-03-27T08:00Z",
                "2026-03-30T07:00Z",
                "2026-03-31T07:00Z",
                "2026-04-01T07:00Z"
            ]
        );
        // And back on 2026-10-25.
        assert_eq!(
            next(
                "0 9 * * MON-FRI",
                Some("Europe/Berlin"),
                "2026-10-22T12:00:00Z",
                2
            ),
            ["2026-10-23T07:00Z", "2026-10-26T08:00Z"]
        );
    }

    #[test]
    fn a_0230_job_runs_once_on_both_dst_days() {
        // Spring: 02:00-02:59 does not exist in Berlin on 2026-03-29; the job runs at 03:00 local.
        assert_eq!(
            next(
                "30 2 * * *",
                Some("Europe/Berlin"),
                "2026-03-28T12:00:00Z",
                2
            ),
            ["2026-03-29T01:00Z", "2026-03-30T00:30Z"]
        );
        // Autumn: 02:30 happens twice on 2026-10-25; the job runs at the first one only.
        assert_eq!(
            next(
                "30 2 * * *",
                Some("Europe/Berlin"),
                "2026-10-24T12:00:00Z",
                2
            ),
            ["2026-10-25T00:30Z", "2026-10-26T01:30Z"]
        );
        // A job every 15 minutes runs once per skipped quarter at 03:00, not four times.
        let s = Schedule::parse("*/15 2 * * *", Some("Europe/Berlin")).unwrap();
        let spring: Vec<_> = s.next_after(at("2026-03-29T00:00:00Z"), 1);
        assert_eq!(spring, [minute_of(at("2026-03-29T01:00:00Z"))]);
    }

    #[test]
    fn last_day_of_month_ranges() {
        assert_eq!(
            next("0 0 L * *", None, "2026-01-15T00:00:00Z", 3),
            [
                "2026-01-31T00:00Z",
                "2026-02-28T00:00Z",
                "2026-03-31T00:00Z"
            ]
        );
        assert_eq!(
            next("0 0 L 2 *", None, "2027-06-01T00:00:00Z", 1),
            ["2028-02-29T00:00Z"]
        );
        // 28-31 fires on the days each month has.
        assert_eq!(
            next("0 12 28-31 2 *", None, "2027-06-01T00:00:00Z", 3),
            ["2028-02-28T12:00Z", "2028-02-29T12:00Z"]
        );
        // Day-of-month and day-of-week both restricted: either matches.
        assert_eq!(
            next("0 0 1 * MON", None, "2026-06-01T00:00:00Z", 2),
            ["2026-06-08T00:00Z", "2026-06-15T00:00Z"]
        );
    }

    #[test]
    fn rates_run_in_utc_from_the_epoch() {
        assert_eq!(
            next("rate(1 hour)", None, "2026-11-22T10:02:00Z", 2),
            ["2026-11-22T11:00Z", "2026-11-22T12:00Z"]
        );
        assert_eq!(
            next("rate(15 minutes)", None, "2026-11-22T10:02:00Z", 1),
            ["2026-11-22T10:15Z"]
        );
        assert_eq!(
            next("rate(1 day)", None, "2026-11-22T10:02:00Z", 1),
            ["2026-11-23T00:00Z"]
        );
    }

    #[test]
    fn names_lists_steps_and_sunday_as_seven() {
        let c = Cron::parse("0,30 8-18/2 * jan,Jul SUN,7").unwrap();
        let t = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        assert!(c.matches(t("2026-01-04 08:30")));
        assert!(c.matches(t("2026-07-05 18:00")));
        assert!(!c.matches(t("2026-07-05 09:00")));
        assert!(!c.matches(t("2026-02-01 08:00")));
        assert!(!c.matches(t("2026-01-05 08:00")));
    }

    #[test]
    fn bad_expressions_and_zones_are_errors() {
        for bad in [
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 8",
            "*/0 * * * *",
            "5-1 * * * *",
            "* * * FOO *",
            "rate(0 hours)",
            "rate(5 weeks)",
            "rate(x minutes)",
        ] {
            assert!(Schedule::parse(bad, None).is_err(), "{bad}");
        }
        assert_eq!(
            Schedule::parse("0 9 * * *", Some("Mars/Olympus"))
                .unwrap_err()
                .0,
            "timezone"
        );
        assert_eq!(
            Schedule::parse("rate(1 hour)", Some("Europe/Berlin"))
                .unwrap_err()
                .0,
            "timezone"
        );
    }
}
