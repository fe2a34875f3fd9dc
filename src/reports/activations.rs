//! Office activations: per product type, users holding it and users who activated it
//! (ActivationsUserCounts), active activations per platform (ActivationCounts), and per user
//! and product type (ActivationsUserDetail).

use super::table::{Cell, Query, Sink};
use super::{Report, ReportError, name_cells};
use crate::engine::TenantState;
use crate::model::{Day, Platform};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationsUserCountsRow {
    pub product_type: String,
    pub assigned: u64,
    pub activated: u64,
    pub shared_computer_activation: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationCountsRow {
    pub product_type: String,
    /// Indexed by [`Platform::index`](crate::model::Platform::index).
    pub platforms: [u64; 5],
}

#[derive(Default, Clone)]
struct Tally {
    seen: bool,
    assigned: u64,
    activated: u64,
    shared: u64,
    platforms: [u64; 5],
}

/// One pass over existing users computing both reports' counters per product index.
fn tally(state: &TenantState, r: Day) -> Vec<Tally> {
    let mut t = vec![Tally::default(); state.product_count()];
    // Per-user scratch: (product, holds, activated, shared) for the products this user touches.
    let mut mine: Vec<(u32, bool, bool, bool)> = Vec::new();
    for user in state.users().iter().filter(|u| u.exists_on(r)) {
        mine.clear();
        for (p, span) in &user.products {
            if span.holds_on(r) {
                mine.push((*p, true, false, false));
            }
        }
        for a in user.activations.iter().filter(|a| a.active.holds_on(r)) {
            if let Some(x) = t.get_mut(a.product as usize) {
                x.platforms[a.platform.index()] += 1;
                x.seen = true;
            }
            match mine.iter_mut().find(|m| m.0 == a.product) {
                Some(m) => {
                    m.2 = true;
                    m.3 |= a.shared_computer;
                }
                None => mine.push((a.product, false, true, a.shared_computer)),
            }
        }
        for &(p, holds, activated, shared) in &mine {
            if let Some(x) = t.get_mut(p as usize) {
                x.seen = true;
                if holds {
                    x.assigned += 1;
                    x.activated += u64::from(activated);
                    x.shared += u64::from(shared);
                }
            }
        }
    }
    t
}

/// Product indices with a row, sorted by product type (byte order).
fn row_order(state: &TenantState, t: &[Tally]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..t.len()).filter(|&p| t[p].seen).collect();
    order.sort_by(|&a, &b| {
        state
            .product_name(a as u32)
            .as_bytes()
            .cmp(state.product_name(b as u32).as_bytes())
    });
    order
}

pub fn activations_user_counts(state: &TenantState) -> Report<ActivationsUserCountsRow> {
    let Some(r) = state.refresh_date() else {
        return Report::empty();
    };
    let t = tally(state, r);
    let rows = row_order(state, &t)
        .into_iter()
        .map(|p| ActivationsUserCountsRow {
            product_type: state.product_name(p as u32).to_string(),
            assigned: t[p].assigned,
            activated: t[p].activated,
            shared_computer_activation: t[p].shared,
        })
        .collect();
    Report {
        refresh_date: Some(r),
        rows,
    }
}

pub fn activation_counts(state: &TenantState) -> Report<ActivationCountsRow> {
    let Some(r) = state.refresh_date() else {
        return Report::empty();
    };
    let t = tally(state, r);
    let rows = row_order(state, &t)
        .into_iter()
        .map(|p| ActivationCountsRow {
            product_type: state.product_name(p as u32).to_string(),
            platforms: t[p].platforms,
        })
        .collect();
    Report {
        refresh_date: Some(r),
        rows,
    }
}

/// Rows of getOffice365ActivationsUserCounts.
pub(super) fn user_counts_rows(
    state: &TenantState,
    q: &Query,
    sink: &mut dyn Sink,
) -> Result<(), ReportError> {
    user_counts_into(state, q, sink, 5)
}

/// Rows of the 2017 `Office365ActivationsUserCounts`: the same without its last column.
pub(super) fn legacy_user_counts_rows(
    state: &TenantState,
    q: &Query,
    sink: &mut dyn Sink,
) -> Result<(), ReportError> {
    user_counts_into(state, q, sink, 4)
}

fn user_counts_into(
    state: &TenantState,
    q: &Query,
    sink: &mut dyn Sink,
    columns: usize,
) -> Result<(), ReportError> {
    let r = activations_user_counts(state);
    for (i, x) in r.rows.iter().enumerate().skip(q.from as usize) {
        let cells = [
            Cell::Date(r.refresh_date),
            Cell::Text(x.product_type.as_str().into()),
            Cell::Int(x.assigned),
            Cell::Int(x.activated),
            Cell::Int(x.shared_computer_activation),
        ];
        sink.row(i as u32, &cells[..columns]);
        if !sink.entity_done() {
            break;
        }
    }
    Ok(())
}

/// Rows of getOffice365ActivationCounts.
pub(super) fn counts_rows(
    state: &TenantState,
    q: &Query,
    sink: &mut dyn Sink,
) -> Result<(), ReportError> {
    let r = activation_counts(state);
    for (i, x) in r.rows.iter().enumerate().skip(q.from as usize) {
        let mut cells = vec![
            Cell::Date(r.refresh_date),
            Cell::Text(x.product_type.as_str().into()),
        ];
        cells.extend(x.platforms.iter().map(|n| Cell::Int(*n)));
        sink.row(i as u32, &cells);
        if !sink.entity_done() {
            break;
        }
    }
    Ok(())
}

/// One product type of one user in the detail report.
#[derive(Default, Clone, Copy)]
struct UserProduct {
    product: u32,
    last_activated: Option<Day>,
    platforms: [u64; 5],
    shared: bool,
}

/// The detail report's platform column order: Windows, Mac, Windows 10 Mobile, iOS, Android.
const DETAIL_PLATFORMS: [Platform; 5] = [
    Platform::Windows,
    Platform::Mac,
    Platform::Windows10Mobile,
    Platform::Ios,
    Platform::Android,
];

/// Rows of getOffice365ActivationsUserDetail: per existing user (in ordinal order, from
/// `q.from`) and per product type held or actively activated on R (in byte order of the
/// name): the latest activation date and the count per platform of the active activations,
/// and whether one of them is on a shared computer.
pub(super) fn user_detail_rows(
    state: &TenantState,
    q: &Query,
    sink: &mut dyn Sink,
) -> Result<(), ReportError> {
    let Some(r) = state.refresh_date() else {
        return Ok(());
    };
    let mut mine: Vec<UserProduct> = Vec::new();
    let users = state.users();
    for ord in q.from..users.len() as u32 {
        let user = &users[ord as usize];
        if !user.exists_on(r) {
            continue;
        }
        mine.clear();
        for (p, span) in user.products.iter() {
            if span.holds_on(r) {
                mine.push(UserProduct {
                    product: *p,
                    ..UserProduct::default()
                });
            }
        }
        for a in user.activations.iter().filter(|a| a.active.holds_on(r)) {
            let i = match mine.iter().position(|m| m.product == a.product) {
                Some(i) => i,
                None => {
                    mine.push(UserProduct {
                        product: a.product,
                        ..UserProduct::default()
                    });
                    mine.len() - 1
                }
            };
            let m = &mut mine[i];
            m.platforms[a.platform.index()] += 1;
            m.shared |= a.shared_computer;
            m.last_activated = m.last_activated.max(a.active.start());
        }
        if mine.is_empty() {
            continue;
        }
        mine.sort_by(|a, b| {
            state
                .product_name(a.product)
                .as_bytes()
                .cmp(state.product_name(b.product).as_bytes())
        });
        let [upn, display] = name_cells(state, q, ord);
        for m in &mine {
            let mut cells = Vec::with_capacity(11);
            cells.extend([
                Cell::Date(Some(r)),
                upn.clone(),
                display.clone(),
                Cell::Text(state.product_name(m.product).into()),
                Cell::Date(m.last_activated),
            ]);
            cells.extend(
                DETAIL_PLATFORMS
                    .iter()
                    .map(|p| Cell::Int(m.platforms[p.index()])),
            );
            cells.push(Cell::Bool(m.shared));
            sink.row(ord, &cells);
        }
        if !sink.entity_done() {
            break;
        }
    }
    Ok(())
}
