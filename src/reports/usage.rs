//! Workload activity from the `activityCounts` facts (email, OneDrive, SharePoint): per-day
//! sums of a counter (EmailActivityCounts, ...ActivityFileCounts, SharePointActivityPages),
//! per-day users with a non-zero counter (...ActivityUserCounts), and per-user sums over the
//! period (...ActivityUserDetail). Only users existing on R count in the daily reports, as in
//! the core reports; the detail lists users as ActiveUserDetail does.

use roaring::RoaringBitmap;

use super::active_users::{
    assigned_products, first_chunk, first_day, last_activity, listed, next_chunk,
};
use super::table::{Args, Cell, Query, Sink};
use super::{ReportError, as_of, name_cells};
use crate::engine::TenantState;
use crate::model::{Day, MAX_COUNTERS, Workload};

/// Counter positions (into [`Workload::counters`]) of SharePoint's visited pages.
pub(super) const VISITED_PAGES: usize = 4;

/// What a daily row holds per column: the sum of a counter, or the users with it non-zero.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Daily {
    Sum,
    Users,
}

fn daily(
    state: &TenantState,
    q: &Query,
    sink: &mut dyn Sink,
    w: Workload,
    cols: &[usize],
    what: Daily,
) -> Result<(), ReportError> {
    let (Some(r), Args::Period(p)) = (state.refresh_date(), q.args) else {
        return Ok(());
    };
    for i in q.from..p.days() as u32 {
        let day = r.minus(i as i32);
        // Kept per day as batches are applied, over the users existing on R.
        let totals = state
            .counter_totals(w, day)
            .map_or([0; MAX_COUNTERS], |t| match what {
                Daily::Sum => t.sums,
                Daily::Users => t.users,
            });
        let mut cells = Vec::with_capacity(cols.len() + 3);
        cells.push(Cell::Date(Some(r)));
        cells.extend(cols.iter().map(|c| Cell::Int(totals[*c])));
        cells.push(Cell::Date(Some(day)));
        cells.push(Cell::Period(p.days() as u32));
        sink.row(i, &cells);
        if !sink.entity_done() {
            break;
        }
    }
    Ok(())
}

/// Per-user rows: users listed as in ActiveUserDetail who hold the workload's license on the
/// as-of day d or were active in it within the window; Last Activity Date from the activity
/// facts (as ActiveUserDetail's), the counters summed over the window's days.
fn user_detail(
    state: &TenantState,
    q: &Query,
    sink: &mut dyn Sink,
    w: Workload,
    cols: &[usize],
    display_name: bool,
) -> Result<(), ReportError> {
    let Some(d) = as_of(state, q.args)? else {
        return Ok(());
    };
    let first = first_day(q.args, d);
    // `date=` is a single day: Report Period 1 (Graph's docs do not say; uncertain).
    let period = match q.args {
        Args::Period(p) => p.days() as u32,
        _ => 1,
    };
    let service = w.service();
    let users = state.users();
    let n = users.len() as u32;
    let mut size = first_chunk(sink);
    let mut lo = q.from;
    let mut last = Vec::new();
    let mut sums: Vec<[u64; MAX_COUNTERS]> = Vec::new();
    while lo < n {
        let hi = lo.saturating_add(next_chunk(&mut size)).min(n);
        let width = (hi - lo) as usize;
        let candidates: RoaringBitmap = (lo..hi)
            .filter(|&o| listed(&users[o as usize], d, first))
            .collect();
        last.clear();
        last.resize(width, None::<Day>);
        last_activity(state, service, d, &candidates, lo, &mut last);
        sums.clear();
        sums.resize(width, [0; MAX_COUNTERS]);
        for (_, b) in state.counters(w).range(first..=d) {
            let range = b.range(lo, hi);
            for (o, v) in b.ords[range.clone()].iter().zip(&b.values[range]) {
                for (s, x) in sums[(o - lo) as usize].iter_mut().zip(v) {
                    *s += u64::from(*x);
                }
            }
        }
        for ord in &candidates {
            let i = (ord - lo) as usize;
            let u = &users[ord as usize];
            let active = last[i].is_some_and(|x| x >= first);
            if !(active || u.licenses[service.index()].holds_on(d)) {
                continue;
            }
            let deleted = !u.exists_on(d);
            let [upn, display] = name_cells(state, q, ord);
            let mut cells = Vec::with_capacity(cols.len() + 8);
            cells.push(Cell::Date(Some(d)));
            cells.push(upn);
            if display_name {
                cells.push(display);
            }
            cells.push(Cell::Bool(deleted));
            cells.push(Cell::Date(if deleted { u.deleted.date() } else { None }));
            cells.push(Cell::Date(last[i]));
            cells.extend(cols.iter().map(|c| Cell::Int(sums[i][*c])));
            cells.push(assigned_products(state, u, d));
            cells.push(Cell::Period(period));
            sink.row(ord, &cells);
            if !sink.entity_done() {
                return Ok(());
            }
        }
        lo = hi;
    }
    Ok(())
}

/// The catalogue's entry points, one per function.
pub(super) fn email_activity_counts(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(s, q, k, Workload::Exchange, &[0, 1, 2, 3, 4], Daily::Sum)
}
pub(super) fn email_activity_user_counts(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(s, q, k, Workload::Exchange, &[0, 1, 2, 3, 4], Daily::Users)
}
pub(super) fn email_activity_user_detail(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    user_detail(s, q, k, Workload::Exchange, &[0, 1, 2, 3, 4], true)
}
pub(super) fn onedrive_activity_file_counts(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(s, q, k, Workload::OneDrive, &[0, 1, 2, 3], Daily::Sum)
}
pub(super) fn onedrive_activity_user_counts(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(s, q, k, Workload::OneDrive, &[0, 1, 2, 3], Daily::Users)
}
pub(super) fn onedrive_activity_user_detail(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    user_detail(s, q, k, Workload::OneDrive, &[0, 1, 2, 3], false)
}
pub(super) fn sharepoint_activity_file_counts(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(s, q, k, Workload::SharePoint, &[0, 1, 2, 3], Daily::Sum)
}
pub(super) fn sharepoint_activity_pages(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(s, q, k, Workload::SharePoint, &[VISITED_PAGES], Daily::Sum)
}
pub(super) fn sharepoint_activity_user_counts(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(
        s,
        q,
        k,
        Workload::SharePoint,
        &[VISITED_PAGES, 0, 1, 2, 3],
        Daily::Users,
    )
}
pub(super) fn sharepoint_activity_user_detail(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    user_detail(
        s,
        q,
        k,
        Workload::SharePoint,
        &[0, 1, 2, 3, VISITED_PAGES],
        false,
    )
}
