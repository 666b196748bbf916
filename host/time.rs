//! Times of AIA files and tables on one scale, [`UtcTime`]: a proleptic Gregorian
//! calendar, the TAI − UTC table, and a parser for the ISO 8601 and JSOC forms.
//!
//! Every time is converted to one scale, [`UtcTime`]: nanoseconds since
//! 1970-01-01T00:00:00 UTC **not counting leap seconds** (POSIX time, the same as astropy's
//! `Time.unix` for UTC), so comparisons are exact integer comparisons. Accepted forms:
//!
//! * ISO 8601: `2011-02-15T00:00:00Z`, `2011-02-15T00:00:00.34Z`, `2011-02-15T00:00:00`,
//!   `2011-02-15 00:00:00.000` (the date/time separator may be `T`, a blank or `_`);
//! * JSOC: `2011.02.15_00:00:00_TAI`, `…_UTC`, `…Z`, `…_Z`.
//!
//! A time without a zone is UTC (as aiapy, which reads the table columns with
//! `Time(…, scale="utc")`, and the AIA `T_OBS` keyword, which is UTC). A `_TAI`/` TAI`
//! suffix means International Atomic Time and is converted with the built-in table of
//! TAI − UTC ([`tai_minus_utc`]: 10 s in 1972 … 34 s from 2009-01-01, 35 s from 2012-07-01,
//! 36 s from 2015-07-01, 37 s from 2017-01-01). The table must be extended if the IERS
//! announces another leap second; TAI times before 1972 are rejected. A UTC time during a
//! leap second (`23:59:60.x`) and a TAI time inside an inserted leap second both map onto
//! the first second of the next day (POSIX has no leap second). Up to nine fractional
//! digits are kept; further digits are ignored.
//!

use std::fmt;

const NS_PER_S: i64 = 1_000_000_000;
const S_PER_DAY: i64 = 86_400;

/// An instant on the UTC time scale: nanoseconds since 1970-01-01T00:00:00 UTC, leap
/// seconds not counted (POSIX time in ns). Ordering is chronological.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime(pub i64);

impl UtcTime {
    /// Parse a time string (ISO 8601 or JSOC form, UTC or TAI; see the module docs) and
    /// convert it to UTC. The error is a short reason without the string itself.
    pub fn parse(s: &str) -> std::result::Result<UtcTime, String> {
        parse_time(s)
    }

    /// Build from a UTC calendar date and time of day (`second` in `[0, 61)`, seconds
    /// ≥ 60 roll over into the next minute as POSIX does).
    pub fn from_civil(
        year: i64,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: f64,
    ) -> UtcTime {
        let days = days_from_civil(year, month, day);
        let whole = (days * S_PER_DAY + i64::from(hour) * 3600 + i64::from(minute) * 60) * NS_PER_S;
        UtcTime(whole + (second * 1e9).round() as i64)
    }

    /// Seconds since 1970-01-01T00:00:00 UTC, leap seconds not counted (astropy `Time.unix`).
    pub fn unix_seconds(self) -> f64 {
        let s = self.0.div_euclid(NS_PER_S);
        let ns = self.0.rem_euclid(NS_PER_S);
        s as f64 + ns as f64 * 1e-9
    }
}

impl fmt::Display for UtcTime {
    /// ISO 8601 with a `Z`, fractional seconds only when non-zero (trailing zeros trimmed).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.div_euclid(NS_PER_S);
        let ns = self.0.rem_euclid(NS_PER_S);
        let days = secs.div_euclid(S_PER_DAY);
        let sod = secs.rem_euclid(S_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        )?;
        if ns != 0 {
            let frac = format!("{ns:09}");
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1–12, day 1–31).
const fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Shift the year to start in March so that the leap day is the last day of the year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = month as i64;
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + day as i64 - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: `(year, month, day)`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_leap_year(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(y) => 29,
        _ => 28,
    }
}

/// TAI − UTC in whole seconds from the UTC date (year, month, day) on which it took effect
/// (IERS Bulletin C; every leap second since 1972).
const LEAP_SECONDS: [(i64, u32, u32, i64); 28] = [
    (1972, 1, 1, 10),
    (1972, 7, 1, 11),
    (1973, 1, 1, 12),
    (1974, 1, 1, 13),
    (1975, 1, 1, 14),
    (1976, 1, 1, 15),
    (1977, 1, 1, 16),
    (1978, 1, 1, 17),
    (1979, 1, 1, 18),
    (1980, 1, 1, 19),
    (1981, 7, 1, 20),
    (1982, 7, 1, 21),
    (1983, 7, 1, 22),
    (1985, 7, 1, 23),
    (1988, 1, 1, 24),
    (1990, 1, 1, 25),
    (1991, 1, 1, 26),
    (1992, 7, 1, 27),
    (1993, 7, 1, 28),
    (1994, 7, 1, 29),
    (1996, 1, 1, 30),
    (1997, 7, 1, 31),
    (1999, 1, 1, 32),
    (2006, 1, 1, 33),
    (2009, 1, 1, 34),
    (2012, 7, 1, 35),
    (2015, 7, 1, 36),
    (2017, 1, 1, 37),
];

/// TAI − UTC in seconds at a UTC instant (`None` before 1972-01-01, where the offset was not
/// a whole number of seconds).
pub fn tai_minus_utc(t: UtcTime) -> Option<i64> {
    LEAP_SECONDS
        .iter()
        .rev()
        .find(|&&(y, m, d, _)| t.0 >= days_from_civil(y, m, d) * S_PER_DAY * NS_PER_S)
        .map(|&(_, _, _, dt)| dt)
}

/// Convert a TAI calendar reading (nanoseconds of the TAI calendar since 1970-01-01, every
/// day 86 400 s) to UTC.
fn tai_to_utc(tai_ns: i64) -> Option<UtcTime> {
    LEAP_SECONDS
        .iter()
        .rev()
        .find(|&&(y, m, d, dt)| tai_ns >= (days_from_civil(y, m, d) * S_PER_DAY + dt) * NS_PER_S)
        .map(|&(_, _, _, dt)| UtcTime(tai_ns - dt * NS_PER_S))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scale {
    Utc,
    Tai,
}

fn parse_uint(
    s: &str,
    what: &str,
    digits: std::ops::RangeInclusive<usize>,
) -> std::result::Result<u32, String> {
    if !digits.contains(&s.len()) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad {what} '{s}'"));
    }
    s.parse::<u32>().map_err(|_| format!("bad {what} '{s}'"))
}

pub(crate) fn parse_time(input: &str) -> std::result::Result<UtcTime, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err("empty time".into());
    }
    // Zone suffix.
    let upper = s.to_ascii_uppercase();
    let (body, scale) = if let Some(b) = upper
        .strip_suffix("_TAI")
        .or_else(|| upper.strip_suffix(" TAI"))
    {
        (b, Scale::Tai)
    } else if let Some(b) = upper
        .strip_suffix("_UTC")
        .or_else(|| upper.strip_suffix(" UTC"))
        .or_else(|| upper.strip_suffix("_Z"))
        .or_else(|| upper.strip_suffix('Z'))
    {
        (b, Scale::Utc)
    } else {
        (upper.as_str(), Scale::Utc)
    };
    let body = body.trim_end();
    // Date and time of day.
    let (date, tod) = match body.find(['T', '_', ' ']) {
        Some(i) => (&body[..i], Some(body[i + 1..].trim_start())),
        None => (body, None),
    };
    let sep = if date.contains('-') { '-' } else { '.' };
    let parts: Vec<&str> = date.split(sep).collect();
    if parts.len() != 3 {
        return Err(format!(
            "bad date '{date}' (expected YYYY-MM-DD or YYYY.MM.DD)"
        ));
    }
    let year = i64::from(parse_uint(parts[0], "year", 4..=4)?);
    let month = parse_uint(parts[1], "month", 1..=2)?;
    let day = parse_uint(parts[2], "day", 1..=2)?;
    if !(1..=12).contains(&month) {
        return Err(format!("month {month} out of range"));
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(format!("day {day} out of range for {year}-{month:02}"));
    }
    let (mut hour, mut minute, mut sec, mut ns) = (0u32, 0u32, 0u32, 0i64);
    if let Some(tod) = tod.filter(|t| !t.is_empty()) {
        let f: Vec<&str> = tod.split(':').collect();
        if f.len() < 2 || f.len() > 3 {
            return Err(format!("bad time of day '{tod}' (expected HH:MM:SS[.fff])"));
        }
        hour = parse_uint(f[0], "hour", 1..=2)?;
        minute = parse_uint(f[1], "minute", 1..=2)?;
        if let Some(sf) = f.get(2) {
            let (whole, frac) = match sf.split_once('.') {
                Some((w, fr)) => (w, fr),
                None => (*sf, ""),
            };
            sec = parse_uint(whole, "second", 1..=2)?;
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("bad fraction of a second '{frac}'"));
            }
            let mut digits: String = frac.chars().take(9).collect();
            while digits.len() < 9 {
                digits.push('0');
            }
            ns = digits
                .parse::<i64>()
                .map_err(|_| format!("bad fraction '{frac}'"))?;
        }
        if hour > 23 || minute > 59 || sec > 60 {
            return Err(format!("time of day '{tod}' out of range"));
        }
    }
    // Nanoseconds in an i64 span 1677-09-21 to 2262-04-11: later or earlier years (the
    // format allows 0000–9999) are an error, not an overflow.
    let naive = (days_from_civil(year, month, day) * S_PER_DAY
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(sec))
    .checked_mul(NS_PER_S)
    .and_then(|v| v.checked_add(ns))
    .ok_or_else(|| format!("year {year} out of range (1678 to 2261)"))?;
    match scale {
        Scale::Utc => Ok(UtcTime(naive)),
        Scale::Tai => tai_to_utc(naive)
            .ok_or_else(|| "TAI time before 1972-01-01 (TAI-UTC not tabulated)".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for days in [-719_468, -1, 0, 1, 10_957, 15_020, 17_167, 20_000, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2011, 2, 15), 15_020);
    }

    /// Years whose nanoseconds do not fit an i64 (found by the `time_parse` fuzz target:
    /// "6011-03-07" overflowed) are an error; the ends of the range still parse.
    #[test]
    fn years_out_of_range_are_an_error() {
        for s in [
            "6011-03-07",
            "9999-12-31T23:59:59.999999999",
            "0000-01-01",
            "1000.01.01_00:00:00_TAI",
        ] {
            let e = parse_time(s).unwrap_err();
            assert!(e.contains("out of range"), "{s}: {e}");
        }
        for s in ["1678-01-01T00:00:00", "2261-12-31T23:59:59.999999999"] {
            let t = parse_time(s).unwrap();
            assert_eq!(parse_time(&t.to_string()).unwrap(), t, "{s}");
        }
    }

    #[test]
    fn display_trims_fraction() {
        let t = parse_time("2011-02-15T00:00:01.340Z").unwrap();
        assert_eq!(t.to_string(), "2011-02-15T00:00:01.34Z");
        let t = parse_time("2011.02.15_00:00:00_UTC").unwrap();
        assert_eq!(t.to_string(), "2011-02-15T00:00:00Z");
    }
}
