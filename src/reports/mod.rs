//! The report computations: pure functions from a tenant's state to typed rows, as of its
//! Report Refresh Date. No I/O, no HTTP types, no CSV or JSON: rendering is the API's job.

mod activations;
mod services;

pub use activations::{
    ActivationCountsRow, ActivationsUserCountsRow, activation_counts, activations_user_counts,
};
pub use services::{ServicesUserCountsRow, services_user_counts};

use crate::model::Day;
pub use crate::model::Period;

/// A computed report: its refresh date (none when the tenant has no data yet) and its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<R> {
    pub refresh_date: Option<Day>,
    pub rows: Vec<R>,
}

impl<R> Report<R> {
    /// The answer for a tenant without data: no refresh date, header row only.
    pub fn empty() -> Report<R> {
        Report {
            refresh_date: None,
            rows: Vec::new(),
        }
    }
}
