//! The report computations: pure functions from a tenant's state to typed rows, as of its
//! Report Refresh Date. No I/O, no HTTP types, no CSV or JSON: rendering is the API's job.

mod activations;
mod services;

pub use activations::{
    ActivationCountsRow, ActivationsUserCountsRow, activation_counts, activations_user_counts,
};
pub use services::{ServicesUserCountsRow, services_user_counts};

use crate::model::Day;

/// A report's aggregation period, `Dn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    D7,
    D30,
    D90,
    D180,
}

impl Period {
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

/// A computed report: its refresh date (none when the tenant has no data yet) and its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<R> {
    pub refresh_date: Option<Day>,
    pub rows: Vec<R>,
}
