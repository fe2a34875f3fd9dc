//! Office activations: per product type, users holding it and users who activated it
//! (ActivationsUserCounts), and active activations per platform (ActivationCounts).

use super::Report;
use crate::engine::TenantState;
use crate::model::Day;

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
