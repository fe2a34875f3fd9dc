//! `Day`: a calendar date as a day number, cheap to compare and to use as a bitmap key.

use chrono::{Datelike, NaiveDate};

/// A calendar date, stored as days since 1970-01-01 (negative before).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i32);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a date of the form yyyy-MM-dd")]
pub struct DayParseError(pub String);

const EPOCH_CE: i32 = 719_163; // NaiveDate(1970-01-01).num_days_from_ce()

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: i32) -> i32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm): the hot
/// path of ingest, where every activity date is parsed.
fn days_from_civil(y: i32, m: i32, d: i32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian (year, month, day) of a day number (Hinnant's inverse).
fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i32::from(m <= 2);
    (y, m, d)
}

impl Day {
    /// `yyyy-MM-dd` as ten ASCII bytes (years 0–9999; others are clamped): the hot path of
    /// rendering detail reports, where every row carries a dozen dates.
    pub fn iso_bytes(self) -> [u8; 10] {
        let (y, m, d) = civil_from_days(self.0);
        let y = y.clamp(0, 9999) as u32;
        let digit = |n: u32| b'0' + (n % 10) as u8;
        [
            digit(y / 1000),
            digit(y / 100),
            digit(y / 10),
            digit(y),
            b'-',
            digit(m / 10),
            digit(m),
            b'-',
            digit(d / 10),
            digit(d),
        ]
    }

    /// Parses exactly `yyyy-MM-dd` (four-digit year, two-digit month and day).
    pub fn parse(s: &str) -> Result<Day, DayParseError> {
        Day::from_iso_bytes(s.as_bytes()).ok_or_else(|| DayParseError(s.to_string()))
    }

    /// [`Day::parse`] on bytes, with no error value to build (the ingest fast path).
    pub fn from_iso_bytes(b: &[u8]) -> Option<Day> {
        let &[y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = b else {
            return None;
        };
        let digits = [y0, y1, y2, y3, m0, m1, d0, d1].map(|c| c.wrapping_sub(b'0'));
        if digits.iter().any(|d| *d > 9) {
            return None;
        }
        let n = |i: usize| i32::from(digits[i]);
        let y = n(0) * 1000 + n(1) * 100 + n(2) * 10 + n(3);
        let (m, d) = (n(4) * 10 + n(5), n(6) * 10 + n(7));
        if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
            return None;
        }
        Some(Day(days_from_civil(y, m, d)))
    }

    pub fn from_date(d: NaiveDate) -> Day {
        Day(d.num_days_from_ce() - EPOCH_CE)
    }

    pub fn to_date(self) -> NaiveDate {
        NaiveDate::from_num_days_from_ce_opt(self.0 + EPOCH_CE).unwrap_or(NaiveDate::MIN)
    }

    /// Today in UTC.
    pub fn today() -> Day {
        Day::from_date(chrono::Utc::now().date_naive())
    }

    pub fn minus(self, days: i32) -> Day {
        Day(self.0 - days)
    }

    pub fn plus(self, days: i32) -> Day {
        Day(self.0 + days)
    }

    /// Monday = 0 … Sunday = 6.
    pub fn weekday(self) -> u32 {
        self.to_date().weekday().num_days_from_monday()
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.iso_bytes();
        // Only ASCII digits and dashes are written into the array.
        f.write_str(std::str::from_utf8(&b).unwrap_or("0000-00-00"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_loose_forms() {
        let d = Day::parse("1970-01-02").unwrap();
        assert_eq!(d, Day(1));
        assert_eq!(Day::parse("2024-02-29").unwrap().to_string(), "2024-02-29");
        // The fast parser agrees with chrono on every day of four centuries.
        let mut d = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap();
        while d.year() < 2300 {
            let s = d.format("%Y-%m-%d").to_string();
            assert_eq!(Day::parse(&s).unwrap(), Day::from_date(d), "{s}");
            assert_eq!(Day::from_date(d).to_string(), s, "formatting {s}");
            d = d.succ_opt().unwrap();
        }
        assert!(Day::parse("2100-02-29").is_err() && Day::parse("2000-02-29").is_ok());
        assert!(
            Day::parse("2024-04-31").is_err()
                && Day::parse("2024-13-01").is_err()
                && Day::parse("2024-00-10").is_err()
        );
        for bad in [
            "2024-2-29",
            "2023-02-29",
            "20240229",
            "2024-02-29T00:00",
            "",
            "abcd-ef-gh",
        ] {
            assert!(Day::parse(bad).is_err(), "{bad}");
        }
    }
}
