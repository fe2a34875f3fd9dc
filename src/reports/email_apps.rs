//! Outlook email app usage from the `emailClients` facts: which clients and Outlook versions
//! users used, per day, over the period, and per user. Distinct users are bitmap unions of
//! the per-day client bitmaps; only users existing on R count in the summary reports.

use roaring::RoaringBitmap;

use super::active_users::{first_chunk, first_day, last_activity, listed, next_chunk};
use super::table::{Args, Cell, Query, Sink};
use super::{ReportError, as_of, name_cells};
use crate::engine::TenantState;
use crate::model::{Day, EMAIL_APPS, Service};

/// Users of `b` existing on R: all but the (few) the engine keeps as not existing on R.
fn live(state: &TenantState, b: &RoaringBitmap) -> u64 {
    b.len() - b.intersection_len(state.not_existing_on_r())
}

/// Per signal, the users with it on some day of `first ..= last`.
fn window(state: &TenantState, first: Day, last: Day) -> Vec<RoaringBitmap> {
    let mut out = vec![RoaringBitmap::new(); crate::store::CLIENT_SIGNALS];
    for (_, signals) in state.email_clients().range(first..=last) {
        for (u, b) in out.iter_mut().zip(signals) {
            *u |= b;
        }
    }
    out
}

/// Rows of getEmailAppUsageAppsUserCounts(period): one row, users per client over the period.
pub(super) fn apps_user_counts(
    s: &TenantState,
    q: &Query,
    sink: &mut dyn Sink,
) -> Result<(), ReportError> {
    let (Some(r), Args::Period(p), 0) = (s.refresh_date(), q.args, q.from) else {
        return Ok(());
    };
    // Kept per period by the engine as batches apply.
    let w = s.client_windows().window(p).unwrap_or_default();
    let mut cells = vec![Cell::Date(Some(r))];
    cells.extend((0..EMAIL_APPS.len()).map(|i| Cell::Int(w.get(i).map_or(0, |b| live(s, b)))));
    cells.push(Cell::Period(p.days() as u32));
    sink.row(0, &cells);
    sink.entity_done();
    Ok(())
}

/// Rows of getEmailAppUsageUserCounts(period): per day, users per client.
pub(super) fn user_counts(
    s: &TenantState,
    q: &Query,
    sink: &mut dyn Sink,
) -> Result<(), ReportError> {
    let (Some(r), Args::Period(p)) = (s.refresh_date(), q.args) else {
        return Ok(());
    };
    for i in q.from..p.days() as u32 {
        let day = r.minus(i as i32);
        let mut cells = vec![Cell::Date(Some(r))];
        // Kept per day by the engine as batches apply.
        let counts = s.client_windows().day(day).unwrap_or_default();
        cells.extend((0..EMAIL_APPS.len()).map(|i| Cell::Int(counts.get(i).copied().unwrap_or(0))));
        cells.push(Cell::Date(Some(day)));
        cells.push(Cell::Period(p.days() as u32));
        sink.row(i, &cells);
        if !sink.entity_done() {
            break;
        }
    }
    Ok(())
}

/// Rows of getEmailAppUsageVersionsUserCounts(period): one row, users per Outlook version,
/// in Graph's column order (2016, 2013, 2010, 2007, Undetermined, Report Period, M365, 2019).
pub(super) fn versions_user_counts(
    s: &TenantState,
    q: &Query,
    sink: &mut dyn Sink,
) -> Result<(), ReportError> {
    let (Some(r), Args::Period(p), 0) = (s.refresh_date(), q.args, q.from) else {
        return Ok(());
    };
    let w = s.client_windows().window(p).unwrap_or_default();
    // Indices into OUTLOOK_VERSIONS: 2007, 2010, 2013, 2016, 2019, M365, undetermined.
    let v = |i: usize| Cell::Int(w.get(EMAIL_APPS.len() + i).map_or(0, |b| live(s, b)));
    let cells = [
        Cell::Date(Some(r)),
        v(3),
        v(2),
        v(1),
        v(0),
        v(6),
        Cell::Period(p.days() as u32),
        v(5),
        v(4),
    ];
    sink.row(0, &cells);
    sink.entity_done();
    Ok(())
}

/// Rows of getEmailAppUsageUserDetail(period | date): the users ActiveUserDetail lists who
/// hold an Exchange license on the as-of day or used an email client in the window; each
/// client `Yes` if used in the window, else empty (Graph's docs show the columns, not their
/// values: our reading).
pub(super) fn user_detail(
    s: &TenantState,
    q: &Query,
    sink: &mut dyn Sink,
) -> Result<(), ReportError> {
    let Some(d) = as_of(s, q.args)? else {
        return Ok(());
    };
    let first = first_day(q.args, d);
    let period = match q.args {
        Args::Period(p) => p.days() as u32,
        _ => 1,
    };
    let w = window(s, first, d);
    let mut any = RoaringBitmap::new();
    for b in &w[..EMAIL_APPS.len()] {
        any |= b;
    }
    let users = s.users();
    let n = users.len() as u32;
    let mut size = first_chunk(sink);
    let mut lo = q.from;
    let mut last = Vec::new();
    while lo < n {
        let hi = lo.saturating_add(next_chunk(&mut size)).min(n);
        let chunk: RoaringBitmap = (lo..hi)
            .filter(|&o| {
                let u = &users[o as usize];
                listed(u, d, first)
                    && (any.contains(o) || u.licenses[Service::Exchange.index()].holds_on(d))
            })
            .collect();
        last.clear();
        last.resize((hi - lo) as usize, None::<Day>);
        last_activity(s, Service::Exchange, d, &chunk, lo, &mut last);
        for ord in &chunk {
            let u = &users[ord as usize];
            let deleted = !u.exists_on(d);
            let [upn, display] = name_cells(s, q, ord);
            let mut cells = vec![
                Cell::Date(Some(d)),
                upn,
                display,
                Cell::Bool(deleted),
                Cell::Date(if deleted { u.deleted.date() } else { None }),
                Cell::Date(last[(ord - lo) as usize]),
            ];
            cells.extend(
                w[..EMAIL_APPS.len()]
                    .iter()
                    .map(|b| Cell::Text(if b.contains(ord) { "Yes" } else { "" }.into())),
            );
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
