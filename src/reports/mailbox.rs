//! Outlook mailbox usage from the `mailbox` and `mailboxDay` facts: per mailbox as of R
//! (MailboxUsageDetail), and per day of the period the mailboxes existing that day, the
//! active ones, their quota status and their storage (MailboxCounts, QuotaStatus..., Storage).
//!
//! A mailbox exists on day d if it was created on or before d and neither it nor its user was
//! deleted on or before d. Its state on d is the latest `mailboxDay` dated on or before d; its
//! quotas are the mailbox's current ones (quota history is not ingested).

use roaring::RoaringBitmap;

use super::active_users::{FIRST_CHUNK, last_activity, next_chunk};
use super::table::{Args, Cell, Query, Sink};
use super::{ReportError, name_cells};
use crate::engine::{MailboxFacts, TenantState};
use crate::model::{Day, Mailbox, MailboxState, Service};

/// The earlier of the mailbox's and its user's deletion dates.
fn deleted(state: &TenantState, ord: u32, m: &Mailbox) -> Option<Day> {
    let user = state
        .users()
        .get(ord as usize)
        .and_then(|u| u.deleted.date());
    match (m.deleted, user) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn exists_on(m: &Mailbox, deleted: Option<Day>, d: Day) -> bool {
    m.created <= d && deleted.is_none_or(|x| x > d)
}

/// Quota status as Graph names it, by storage used against the quotas (all zero, or no
/// state yet: indeterminate). Column order of QuotaStatusMailboxCounts.
fn quota_status(m: &Mailbox, s: Option<&MailboxState>) -> usize {
    let Some(s) = s else { return 4 };
    if m.issue_warning_quota == 0
        && m.prohibit_send_quota == 0
        && m.prohibit_send_receive_quota == 0
    {
        return 4;
    }
    let over = |q: u64| q > 0 && s.storage_used >= q;
    if over(m.prohibit_send_receive_quota) {
        3
    } else if over(m.prohibit_send_quota) {
        2
    } else if over(m.issue_warning_quota) {
        1
    } else {
        0
    }
}

/// Per day of the period (index 0 = R): total, active, the five quota statuses, storage.
type DayTotals = [u64; 8];

fn per_day(state: &TenantState, r: Day, days: u32) -> Vec<DayTotals> {
    let mut out = vec![[0u64; 8]; days as usize];
    let activity = state.activity(Service::Exchange);
    let first = r.minus(days as i32 - 1);
    for (ord, f) in state.mailboxes() {
        let Some(m) = &f.mailbox else { continue };
        let del = deleted(state, *ord, m);
        // Walk the period oldest first with a pointer into the mailbox's states.
        let mut next = f.days.partition_point(|x| x.0 < first);
        let mut current: Option<&MailboxState> = next.checked_sub(1).map(|i| &f.days[i].1);
        for i in (0..days).rev() {
            let d = r.minus(i as i32);
            while next < f.days.len() && f.days[next].0 <= d {
                current = Some(&f.days[next].1);
                next += 1;
            }
            if !exists_on(m, del, d) {
                continue;
            }
            let t = &mut out[i as usize];
            t[0] += 1;
            if activity.get(&d).is_some_and(|b| b.contains(*ord)) {
                t[1] += 1;
            }
            t[2 + quota_status(m, current)] += 1;
            t[7] += current.map_or(0, |s| s.storage_used);
        }
    }
    out
}

fn daily(
    state: &TenantState,
    q: &Query,
    sink: &mut dyn Sink,
    cols: &[usize],
) -> Result<(), ReportError> {
    let (Some(r), Args::Period(p)) = (state.refresh_date(), q.args) else {
        return Ok(());
    };
    let totals = per_day(state, r, p.days() as u32);
    super::totals_rows(q, sink, r, &totals, &[], cols);
    Ok(())
}

pub(super) fn mailbox_counts(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(s, q, k, &[0, 1])
}

pub(super) fn quota_status_counts(
    s: &TenantState,
    q: &Query,
    k: &mut dyn Sink,
) -> Result<(), ReportError> {
    daily(s, q, k, &[2, 3, 4, 5, 6])
}

pub(super) fn storage(s: &TenantState, q: &Query, k: &mut dyn Sink) -> Result<(), ReportError> {
    daily(s, q, k, &[7])
}

/// Rows of getMailboxUsageDetail(period): every mailbox existing on R, plus those deleted
/// within the period, in user ordinal order; state and quotas as of R; Last Activity Date =
/// the user's latest Exchange activity on or before R (as in ActiveUserDetail).
pub(super) fn detail(s: &TenantState, q: &Query, sink: &mut dyn Sink) -> Result<(), ReportError> {
    let (Some(r), Args::Period(p)) = (s.refresh_date(), q.args) else {
        return Ok(());
    };
    let first = r.minus(p.days() - 1);
    let n = s.users().len() as u32;
    let mut size = FIRST_CHUNK;
    let mut lo = q.from;
    let mut last = Vec::new();
    while lo < n {
        let hi = lo.saturating_add(next_chunk(&mut size)).min(n);
        let rows: Vec<(u32, &MailboxFacts, &Mailbox, Option<Day>)> = s
            .mailboxes()
            .range(lo..hi)
            .filter_map(|(ord, f)| {
                let m = f.mailbox.as_ref()?;
                let del = deleted(s, *ord, m);
                let listed = m.created <= r
                    && (exists_on(m, del, r) || del.is_some_and(|x| x >= first && x <= r));
                listed.then_some((*ord, f, m, del))
            })
            .collect();
        let chunk: RoaringBitmap = rows.iter().map(|x| x.0).collect();
        last.clear();
        last.resize((hi - lo) as usize, None::<Day>);
        last_activity(s, Service::Exchange, r, &chunk, lo, &mut last);
        for (ord, f, m, del) in rows {
            let gone = !exists_on(m, del, r);
            let st = f.state_on(r).copied().unwrap_or_default();
            let [upn, display] = name_cells(s, q, ord);
            let cells = [
                Cell::Date(Some(r)),
                upn,
                display,
                Cell::Bool(gone),
                Cell::Date(if gone { del } else { None }),
                Cell::Date(Some(m.created)),
                Cell::Date(last[(ord - lo) as usize]),
                Cell::Int(st.item_count),
                Cell::Int(st.storage_used),
                Cell::Int(m.issue_warning_quota),
                Cell::Int(m.prohibit_send_quota),
                Cell::Int(m.prohibit_send_receive_quota),
                Cell::Int(st.deleted_item_count),
                Cell::Int(st.deleted_item_size),
                Cell::Int(m.deleted_item_quota),
                Cell::Bool(m.has_archive),
                Cell::Period(p.days() as u32),
            ];
            sink.row(ord, &cells);
            if !sink.entity_done() {
                return Ok(());
            }
        }
        lo = hi;
    }
    Ok(())
}
