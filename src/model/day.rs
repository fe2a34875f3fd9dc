//! `Day`: a calendar date as a day number, cheap to compare and to use as a bitmap key.

use chrono::{Datelike, NaiveDate};

/// A calendar date, stored as days since 1970-01-01 (negative before).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Day(pub i32);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("'{0}' is not a date of the form yyyy-MM-dd")]
pub struct DayParseError(pub String);

const EPOCH_CE: i32 = 719_163; // NaiveDate(1970-01-01).num_days_from_ce()

impl Day {
    /// Parses exactly `yyyy-MM-dd` (four-digit year, two-digit month and day).
    pub fn parse(s: &str) -> Result<Day, DayParseError> {
        let b = s.as_bytes();
        let shape_ok = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shape_ok {
            return Err(DayParseError(s.to_string()));
        }
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Day::from_date)
            .map_err(|_| DayParseError(s.to_string()))
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
        write!(f, "{}", self.to_date().format("%Y-%m-%d"))
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
