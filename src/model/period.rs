//! `Period`: the `Dn` look-back of the services report.

/// A report's aggregation period, `Dn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    D7,
    D30,
    D90,
    D180,
}

impl Period {
    pub const ALL: [Period; 4] = [Period::D7, Period::D30, Period::D90, Period::D180];

    /// Position in [`Period::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Parses `D7`, `D30`, `D90` or `D180` (case-insensitive, as Graph is).
    pub fn parse(s: &str) -> Option<Period> {
        Some(match s.to_ascii_uppercase().as_str() {
            "D7" => Period::D7,
            "D30" => Period::D30,
            "D90" => Period::D90,
            "D180" => Period::D180,
            _ => return None,
        })
    }

    pub fn days(self) -> i32 {
        match self {
            Period::D7 => 7,
            Period::D30 => 30,
            Period::D90 => 90,
            Period::D180 => 180,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::D7 => "D7",
            Period::D30 => "D30",
            Period::D90 => "D90",
            Period::D180 => "D180",
        }
    }
}
