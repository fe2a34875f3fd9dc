//! Active users per service over a period: the union of the period's per-day activity
//! bitmaps, intersected with the users licensed (and existing) on the refresh date.

use roaring::RoaringBitmap;

use super::{Period, Report};
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
        return Report {
            refresh_date: None,
            rows: Vec::new(),
        };
    };
    let first = r.minus(period.days() - 1);
    // Users licensed for each service on R, built in ordinal order (cheap appends).
    let mut licensed: [RoaringBitmap; 6] = Default::default();
    for (ord, user) in state.users().iter().enumerate() {
        if !user.exists_on(r) {
            continue;
        }
        for s in Service::ALL {
            if user.licenses[s.index()].is_some_and(|l| l.holds_on(r)) {
                // Ordinals ascend, so this is an append; `insert` is the safe general form.
                licensed[s.index()].insert(ord as u32);
            }
        }
    }
    let mut row = ServicesUserCountsRow {
        active: [0; 7],
        inactive: [0; 7],
        period_days: period.days() as u32,
    };
    let mut any_licensed = RoaringBitmap::new();
    let mut any_active = RoaringBitmap::new();
    for s in Service::ALL {
        let mut window = RoaringBitmap::new();
        for (_, day) in state.activity(s).range(first..=r) {
            window |= day;
        }
        window &= &licensed[s.index()];
        let total = licensed[s.index()].len();
        row.active[s.index()] = window.len();
        row.inactive[s.index()] = total - window.len();
        any_licensed |= &licensed[s.index()];
        any_active |= &window;
    }
    row.active[6] = any_active.len();
    row.inactive[6] = any_licensed.len() - any_active.len();
    Report {
        refresh_date: Some(r),
        rows: vec![row],
    }
}
