//! The report computations: pure functions from a tenant's state to rows, as of its Report
//! Refresh Date (or the `date=` asked for). No I/O, no HTTP types, no CSV or JSON: rendering
//! is the API's job. [`catalogue`] lists every function with its columns; [`table`] is the
//! generic row shape they all produce.

mod activations;
mod active_users;
pub mod catalogue;
mod email_apps;
mod mailbox;
mod services;
mod sites;
pub mod table;
mod usage;

pub use activations::{
    ActivationCountsRow, ActivationsUserCountsRow, activation_counts, activations_user_counts,
};
pub use catalogue::{CATALOGUE, ColType, Column, Depends, Kind, Params, ReportDef, ReportId};
pub use services::{ServicesUserCountsRow, services_user_counts};
pub use table::{Args, Cell, Concealer, Query, Rows, Sink};

use crate::engine::TenantState;
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Graph's own message for a `date=` outside the last 28 days.
    #[error("Invalid date value specified: {0}. Only support data for the past 28 days.")]
    DateOutOfRange(Day),
    #[error("The function {function} does not take {what}.")]
    BadArgs {
        function: &'static str,
        what: &'static str,
    },
}

/// How many days back `date=` reaches: R−27 … R.
pub const DATE_WINDOW_DAYS: i32 = 28;

/// A call of one catalogue function with its arguments: what a link or a cache entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Call {
    pub report: ReportId,
    pub args: Args,
}

impl Call {
    pub fn def(&self) -> &'static ReportDef {
        self.report.def()
    }
}

/// Runs a call's computation into `sink`.
pub fn run(
    state: &TenantState,
    call: Call,
    q: &Query,
    sink: &mut dyn Sink,
) -> Result<(), ReportError> {
    let def = call.def();
    let ok = matches!(
        (def.params, q.args),
        (Params::None, Args::None)
            | (Params::Period | Params::PeriodOrDate, Args::Period(_))
            | (Params::PeriodOrDate, Args::Date(_))
    );
    if !ok {
        return Err(ReportError::BadArgs {
            function: def.name,
            what: "these arguments",
        });
    }
    (def.compute)(state, q, sink)
}

/// The day a report is "as of": R, or the `date=` asked for, checked against R−27 … R.
/// `None` when the tenant has no data yet (the answer is the header row alone).
pub fn as_of(state: &TenantState, args: Args) -> Result<Option<Day>, ReportError> {
    let Some(r) = state.refresh_date() else {
        return Ok(None);
    };
    match args {
        Args::Date(d) if d > r || d < r.minus(DATE_WINDOW_DAYS - 1) => {
            Err(ReportError::DateOutOfRange(d))
        }
        Args::Date(d) => Ok(Some(d)),
        _ => Ok(Some(r)),
    }
}

/// Emits one row per day of a period from per-day totals (index 0 = R, newest first), from
/// `q.from`: the refresh date, the `lead` cells, the totals at `cols`, Report Date and
/// Report Period — the shape of the daily mailbox and site reports.
pub(crate) fn totals_rows<const N: usize>(
    q: &Query,
    sink: &mut dyn Sink,
    r: Day,
    totals: &[[u64; N]],
    lead: &[Cell<'_>],
    cols: &[usize],
) {
    for (i, t) in totals.iter().enumerate().skip(q.from as usize) {
        let mut cells = vec![Cell::Date(Some(r))];
        cells.extend(lead.iter().cloned());
        cells.extend(cols.iter().map(|c| Cell::Int(t[*c])));
        cells.push(Cell::Date(Some(r.minus(i as i32))));
        cells.push(Cell::Period(totals.len() as u32));
        sink.row(i as u32, &cells);
        if !sink.entity_done() {
            break;
        }
    }
}

/// The user principal name and display name cells of a user: the names as ingested, or
/// both the concealed digest of the user id.
pub(crate) fn name_cells<'a>(state: &'a TenantState, q: &Query, ord: u32) -> [Cell<'a>; 2] {
    let (id, upn, display) = state.names(ord);
    match &q.conceal {
        Some(c) => {
            let d = c.digest(id);
            [Cell::Text(d.clone().into()), Cell::Text(d.into())]
        }
        None => [Cell::Text(upn.into()), Cell::Text(display.into())],
    }
}
