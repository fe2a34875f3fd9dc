//! Active users per service over a period: the engine's running union of the period's
//! per-day activity bitmaps, intersected with the users licensed (and existing) on the
//! refresh date.

use roaring::RoaringBitmap;

use super::table::{Args, Cell, Query, Sink};
use super::{Period, Report, ReportError};
use crate::engine::TenantState;
use crate::model::Service;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicesUserCountsRow {
    /// Active and inactive per service in [`Service::ALL`] order, then Office 365 at index 6.
    pub active: [u64; 7],
    pub inactive: [u64; 7],
    pub period_days: u32,
}

pub fn services_user_counts(state: &TenantState, period: Period) -> Report<ServicesUserCountsRow> {
    let Some(r) = state.refresh_date() else {
        return Report::empty();
    };
    let licensed = state.licensed_on(r);
    let mut row = ServicesUserCountsRow {
        active: [0; 7],
        inactive: [0; 7],
        period_days: period.days() as u32,
    };
    let mut any_active = RoaringBitmap::new();
    for s in Service::ALL {
        let active = state.active_in_window(s, period) & &licensed[s.index()];
        let total = licensed[s.index()].len();
        row.active[s.index()] = active.len();
        row.inactive[s.index()] = total - active.len();
        any_active |= active;
    }
    row.active[6] = any_active.len();
    row.inactive[6] = licensed[6].len() - any_active.len();
    Report {
        refresh_date: Some(r),
        rows: vec![row],
    }
}

/// Rows of getOffice365ServicesUserCounts (one row).
pub(super) fn services_user_counts_rows(
    state: &TenantState,
    q: &Query,
    sink: &mut dyn Sink,
) -> Result<(), ReportError> {
    let Args::Period(p) = q.args else {
        return Ok(());
    };
    let r = services_user_counts(state, p);
    for (i, x) in r.rows.iter().enumerate().skip(q.from as usize) {
        let mut cells = vec![Cell::Date(r.refresh_date)];
        for s in 0..7 {
            cells.push(Cell::Int(x.active[s]));
            cells.push(Cell::Int(x.inactive[s]));
        }
        cells.push(Cell::Period(x.period_days));
        sink.row(i as u32, &cells);
        if !sink.entity_done() {
            break;
        }
    }
    Ok(())
}
